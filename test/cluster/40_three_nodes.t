#!/bin/bash
# Three DB nodes under repmgr, one bring-up, two failovers in a row:
#   1. db1, db2, db3 with synchronous_standby_names = 'ANY 1 (the other two, barman_receive_wal)'
#      and barman_ha.standby_slot = sync: both standbys keep a copy of the barman slot
#   2. kill -9 of db1 under a writer: repmgrd promotes db2, db3 follows db2 (standby follow),
#      db3's copy of the slot follows db2's slot, Barman goes on without --reset, no row lost
#   3. the stale primary db1 started again (timeline 1): fenced, nothing routes to it
#   4. every node switched to 'FIRST 1 (…)'; kill -9 of db2 under a writer: db3 promoted
#   5. the stale primary db2 started again: fenced
#   6. db1 and db2 rejoin db3 (node rejoin --force-rewind, then a fresh repmgrd: a rejoined one stays stuck)
#   7. Barman's archive has no WAL gap; PITR of a backup from timeline 1 to a time on timeline 3
# Write RTO of both failovers as the benchmark measures it (bha_failover_watch).
set -u
BHA_PREFIX=${BHA_PREFIX:-bhm}3n
BHA_NODE_COUNT=3
BHA_STANDBY_SLOT=sync
BHA_SYNC=ANY
BHA_TEMPLATE=		# the only scenario of its configuration: a template would cost, not save
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"
bha_test_setup

slot_lsn() { bha_sql "$1" "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '$BHA_SLOT'" 2>/dev/null; }
# slot_reached NODE LSN: NODE's barman slot is at LSN or past it
slot_reached() {
	local l
	l=$(slot_lsn "$1"); [ -n "$l" ] || return 1
	[ "$(bha_sql "$1" "SELECT '$l'::pg_lsn >= '$2'::pg_lsn")" = t ]
}
# the newest event of the standby's slot sync (an event marks each change of its state)
last_sync_event() { bha_sql "$1" "SELECT event FROM barman_ha_events() WHERE event IN ('slot_sync_following', 'slot_sync_failed', 'slot_sync_behind', 'primary_slot_missing') ORDER BY at DESC LIMIT 1"; }
# stale_primary_fenced NODE: start the killed primary again as it was (its old timeline)
stale_start() {
	bha_kill_pidfile "$BHA_DATA/$1/repmgrd.pid"	# a crashed host's repmgrd is gone too
	bha_pg_start "$1"
}
# set_sync MODE NODE...: synchronous_standby_names of every node under MODE, reload the live ones
set_sync() {
	local n mode=$1; shift
	BHA_SYNC=$mode
	for n in $BHA_NODES; do bha_node_conf "$n" 1 1; done
	for n; do bha_sql "$n" "SELECT pg_reload_conf()" >/dev/null || return 1; done
}

# ------------------------------------------------------------ 1. steady state, three nodes, quorum
t_ok "both endpoints lead to db1" bha_endpoints_on db1
t_ok "barman check $BHA_SERVER OK" bha_barman_check_ok
is "$(bha_sql db1 "SHOW synchronous_standby_names")" "ANY 1 (db2, db3, barman_receive_wal)" "db1: quorum commit over db2, db3 and Barman"
t_ok "db2, db3 and Barman are quorum standbys of db1" bha_wait 30 "quorum standbys" \
	test "$(bha_sync_states db1)" = "barman_receive_wal=quorum db2=quorum db3=quorum"
diag "db1 pg_stat_replication: $(bha_sync_states db1)"
for n in db2 db3; do
	t_ok "$n keeps a copy of slot $BHA_SLOT (standby_slot=sync)" bha_wait 30 "slot on $n" bha_slot_exists "$n"
	t_ok "barman_ha_status() healthy on $n" bha_ext_healthy "$n"
done
t_ok "app can write through $BHA_APP_PORT" bha_app_sql "INSERT INTO rows (i) VALUES (-100)"

# ------------------------------------------------------------ 2. kill -9 of db1 -> db2, db3 follows
bha_fault_failover w1 0 db2 "kill -9 db1 -> db2 (ANY 1)" : kill -9 "$(bha_pg_pid db1)"
t_kill1=$BHA_T0 rto1=$BHA_RTO
t_ok "db3 follows db2 (repmgrd: standby follow)" bha_wait 60 "db3 streaming from db2" bha_streams_from db2 db3
diag "db3 streaming from db2 after $(bhf_since "$t_kill1") ms"
bha_writer_kept w1 db2
t_ok "Barman needed no receive-wal --reset" bha_barman_no_reset
bha_sql db2 "CHECKPOINT" >/dev/null
bha_switch_wal >/dev/null
l2=$(slot_lsn db2)
t_ok "db3's copy of the slot follows db2's slot (reaches $l2)" bha_wait 40 "db3's slot at $l2" slot_reached db3 "$l2"
is "$(last_sync_event db3)" slot_sync_following "db3's worker: its copy follows the primary's (last slot-sync event)"
t_ok "barman check OK on db2" bha_wait 90 "barman check OK" bha_barman_check_ok || bha_barman_check | grep -v ': OK'

# ------------------------------------------------------------ 3. the stale primary db1 comes back
t_ok "db1 (timeline 1) started again as the primary it was" stale_start db1
t_ok "the stale primary db1 is fenced" bha_wait 40 "db1 fenced" bha_route_state_is db1 fenced
bha_status_row db1 | sed 's/^/# db1 status: /'
t_ok "both endpoints stay on db2" bha_endpoints_on db2
t_ok "Barman still streams from db2" bha_barman_streams_from db2
bha_pg_stop db1 fast

# ------------------------------------------------------------ 4. FIRST 1; kill -9 of db2 -> db3
t_ok "synchronous_standby_names switched to FIRST 1 on db2 and db3" set_sync FIRST db2 db3
is "$(bha_sql db2 "SHOW synchronous_standby_names")" "FIRST 1 (db1, db3, barman_receive_wal)" "db2: FIRST 1 (db1, db3, Barman)"
t_ok "db3 is db2's synchronous standby, Barman potential" bha_wait 30 "priority standbys" \
	test "$(bha_sync_states db2)" = "barman_receive_wal=potential db3=sync"
diag "db2 pg_stat_replication: $(bha_sync_states db2)"
bha_fault_failover w2 1000000 db3 "kill -9 db2 -> db3 (FIRST 1)" : kill -9 "$(bha_pg_pid db2)"
t_kill2=$BHA_T0 rto2=$BHA_RTO
bha_writer_kept w2 db3
is "$(bha_writer_lost w1 db3)" "" "every row writer 1 saw committed is on db3"
t_ok "Barman needed no receive-wal --reset" bha_barman_no_reset
is "$(bha_sql db3 "SELECT timeline_id FROM pg_control_checkpoint()")" 3 "db3 is on timeline 3"

# ------------------------------------------------------------ 5. the stale primary db2 comes back
t_ok "db2 (timeline 2) started again as the primary it was" stale_start db2
t_ok "the stale primary db2 is fenced" bha_wait 40 "db2 fenced" bha_route_state_is db2 fenced
bha_status_row db2 | sed 's/^/# db2 status: /'
t_ok "both endpoints stay on db3" bha_endpoints_on db3
bha_pg_stop db2 fast

# ------------------------------------------------------------ 6. both rejoin db3
for n in db1 db2; do
	t_ok "$n rejoins db3 (repmgr node rejoin --force-rewind), a fresh repmgrd follows db3" bha_rejoin "$n" db3
	t_ok "$n streams from db3" bha_wait 60 "$n streaming from db3" bha_streams_from db3 "$n"
done
t_ok "db3: db1 synchronous, db2 and Barman potential (FIRST 1)" bha_wait 30 "priority standbys" \
	test "$(bha_sync_states db3)" = "barman_receive_wal=potential db1=sync db2=potential"
bha_sql db3 "CHECKPOINT" >/dev/null
bha_switch_wal >/dev/null
l3=$(slot_lsn db3)
for n in db1 db2; do
	t_ok "$n's copy of the slot follows db3's (reaches $l3)" bha_wait 40 "$n's slot at $l3" slot_reached "$n" "$l3"
done
t_ok "both endpoints on db3" bha_endpoints_on db3
t_ok "barman check OK on db3" bha_wait 90 "barman check OK" bha_barman_check_ok || bha_barman_check | grep -v ': OK'
t_ok "a new backup on db3" bha_backup

# ------------------------------------------------------------ 7. the archive across both failovers
target=$(bha_sql db3 "SELECT now()")
sleep 1
bha_sql db3 appdb "INSERT INTO rows (i) VALUES (-1)" >/dev/null
missing=$(bhf_wal_report)
is "$missing" 0 "no WAL segment missing from Barman's archive across timelines 1, 2, 3"
first=$(bha_in backup barman list-backups --minimal "$BHA_SERVER" | tail -n 1)
if t_ok "PITR of backup $first (timeline 1) to $target (timeline 3)" bha_pitr "$first" "$target"; then
	read -r a b c m <<<"$(bha_pitr_sql "SELECT count(*) FILTER (WHERE i > 0 AND i < 1000000 AND at < to_timestamp($t_kill1 / 1000.0)) || ' ' ||
		count(*) FILTER (WHERE i > 0 AND i < 1000000 AND at > to_timestamp($t_kill1 / 1000.0)) || ' ' ||
		count(*) FILTER (WHERE i >= 1000000 AND at > to_timestamp($t_kill2 / 1000.0)) || ' ' || count(*) FILTER (WHERE i = -1) FROM rows")"
	diag "PITR: ${a:-?} rows from timeline 1, ${b:-?} from timeline 2, ${c:-?} from timeline 3, marker ${m:-?}"
	t_ok "PITR has rows of timelines 1, 2 and 3" test "${a:-0}" -gt 0 -a "${b:-0}" -gt 0 -a "${c:-0}" -gt 0
	is "${m:-x}" 0 "PITR stopped at the target"
	t_ok "PITR holds every row both writers saw committed" \
		test "$(bha_pitr_sql "SELECT count(*) FROM rows WHERE i > 0")" -ge "$(( $(bha_writer_count w1) + $(bha_writer_count w2) ))"
	bha_pitr_stop
fi

echo "# FIGURE three_nodes_rto kill_db1_any1 $rto1"
echo "# FIGURE three_nodes_rto kill_db2_first1 $rto2"
done_testing
