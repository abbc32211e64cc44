#!/bin/bash
# Patroni instead of repmgr: etcd on its own host (PREFIX-etcd), Patroni on db1 and db2,
# the extension loaded.  The barman slot lives with Patroni through ignore_slots (Patroni leaves
# it alone on every node) and barman_ha.standby_slot = sync (our worker keeps the replicas'
# copies in step); synchronous_mode off, so our synchronous_standby_names with Barman stays.
#   1. steady state: Patroni's member slot and ours side by side; the replica's copy survives
#      Patroni's loops
#   2. patronictl switchover under a writer: db2 leads, both endpoints and Barman follow
#   3. db2's host crashes (kill -9 of Patroni and the postmaster) under a writer: db1 promoted
#      when the leader key expires (ttl), both endpoints and Barman follow, no row lost
#   4. db2's Patroni started again: the stale primary rejoins as a replica (pg_rewind), fenced
#      from the endpoints meanwhile
#   5. the other integration measured: Patroni's permanent slot with standby_slot = keep (and
#      sync): what Patroni does with the replicas' copies, 3.0.2 drops them, 4 keeps them
#      (docs/managers.md)
# Longer suite: runs with BHA_LONG=1 (docs/managers.md).
set -u
[ "${BHA_LONG:-0}" = 1 ] || { echo "1..0 # SKIP set BHA_LONG=1 (longer suite)"; exit 0; }
{ [ -x /usr/bin/patroni ] && [ -x /usr/bin/etcd ]; } || { echo "1..0 # SKIP Patroni or etcd is not installed (patroni, etcd-server)"; exit 0; }
BHA_PREFIX=${BHA_PREFIX:-bhm}pa
BHA_MANAGER=patroni
BHA_PATRONI_SLOT=ignore
BHA_STANDBY_SLOT=sync
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"
bha_test_setup

patroni_version=$(/usr/bin/patroni --version | sed -n 's/^patroni //p')
patroni_major=${patroni_version%%.*}
plist() { bha_patronictl "$1" list 2>&1 | sed 's/^/# /'; }
plist1() { plist db1; }
dropped() { grep -c "Dropped unknown replication slot '$BHA_SLOT'" "$BHA_DATA/$1/manager.log"; }

# ------------------------------------------------------------ 1. steady state
t_ok "both endpoints lead to db1" bha_endpoints_on db1
t_ok "barman check $BHA_SERVER OK" bha_barman_check_ok
t_ok "Patroni: db1 is the leader" bha_patroni_is db1 primary
is "$(bha_slots db1)" "barman db2" "db1: Patroni's member slot and ours side by side"
t_ok "db2 keeps a copy of the barman slot (standby_slot=sync)" bha_wait 30 "slot on db2" bha_slot_exists db2
sleep 5		# five Patroni loops (loop_wait 1)
t_ok "...and Patroni leaves it there (ignore_slots)" bha_slot_exists db2
is "$(bha_sql db1 "SHOW synchronous_standby_names")" "FIRST 1 (db2, barman_receive_wal)" "synchronous_mode off: our synchronous_standby_names stays"
is "$(bha_sync_states db1)" "barman_receive_wal=potential db2=sync" "db2 synchronous, Barman potential"
plist db1

# ------------------------------------------------------------ 2. patronictl switchover
bha_fault_failover w1 0 db2 "patronictl switchover" plist1 \
	bha_bg "$BHA_DATA/db1/switchover.log" bha_patronictl db1 switchover --leader db1 --candidate db2 --force
bha_bg_ok "patronictl switchover succeeded"
rto1=$BHA_RTO
bha_writer_kept w1 db2
t_ok "db1 is a replica of db2" bha_wait 60 "db1 streaming from db2" bha_streams_from db2 db1
t_ok "db2: Patroni's member slot and ours side by side" bha_wait 30 "slots on db2" test "$(bha_slots db2)" = "barman db1"
bha_moved_to db2 db1

# ------------------------------------------------------------ 3. db2's host crashes
bha_mgr_host_crash "kill -9 of db2 (Patroni and postmaster)" plist1
rto2=$BHA_RTO

# ------------------------------------------------------------ 4. db2's Patroni again
bha_pg_stale_locks db2
t_ok "db2's Patroni started again" bha_patroni_start db2
t_ok "db2 rejoins as a replica of db1" bha_wait 120 "db2 streaming from db1" bha_streams_from db1 db2 || plist db1
bha_mgr_stale_back
plist db1

# ------------------------------------------------------------ 5. the other integration: permanent slots
# ignore_slots removed, barman a permanent physical slot of Patroni's.  Patroni reads the node's
# slots when it starts (and after a role change) and drops there every slot it does not want;
# on a replica 3.0.2 wants no permanent physical slot, 4 keeps it.  Its restart shows which.
patroni_restart() {
	local p
	p=$(head -n 1 "$BHA_DATA/$1/manager.pid")
	bha_kill_pidfile "$BHA_DATA/$1/manager.pid"
	bha_wait 60 "Patroni $p to exit" bha_gone "$p" && bha_patroni_start "$1"
}
set_standby_slot() { local n; for n in db1 db2; do bha_sql "$n" "ALTER SYSTEM SET barman_ha.standby_slot = '$1'" >/dev/null && bha_sql "$n" "SELECT pg_reload_conf()" >/dev/null || return 1; done; }
t_ok "Patroni: barman a permanent slot, ignore_slots removed" \
	bha_patronictl db1 edit-config --force -q -s "ignore_slots=null" -s "slots.$BHA_SLOT.type=physical"
t_ok "barman_ha.standby_slot = keep on both" set_standby_slot keep
d0=$(dropped db2)
t_ok "db2's Patroni restarted" patroni_restart db2
t_ok "db2 streams from db1 again" bha_wait 120 "db2 streaming from db1" bha_streams_from db1 db2
sleep 3
if [ "$patroni_major" -lt 4 ]; then
	is "$(( $(dropped db2) - d0 ))" 1 "permanent slot: Patroni $patroni_version dropped the replica's copy of barman at its start"
	t_ok "permanent + keep: the replica has no copy (WAL Barman still needs is not kept there)" bha_slot_absent db2
else
	is "$(( $(dropped db2) - d0 ))" 0 "permanent slot: Patroni $patroni_version kept the replica's copy of barman at its start"
	t_ok "permanent + keep: the replica keeps a copy" bha_slot_exists db2
fi
t_ok "permanent: the leader keeps the barman slot" bha_slot_exists db1
t_ok "barman_ha.standby_slot = sync on both" set_standby_slot sync
t_ok "permanent + sync: the replica has a copy" bha_wait 30 "slot on db2" bha_slot_exists db2
[ "$patroni_major" -lt 4 ] &&
	diag "permanent + sync: Patroni drops it again at its next start or role change; the copy made again starts at the replica's position, not Barman's"

echo "# FIGURE patroni_rto switchover $rto1"
echo "# FIGURE patroni_rto kill_primary_host $rto2"
done_testing
