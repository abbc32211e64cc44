#!/bin/bash
# pg_auto_failover instead of repmgr (issue 14): the monitor on its own host (PREFIX-monitor),
# pg_autoctl keepers on db1 and db2, the extension loaded, barman_ha.standby_slot = sync.
#   1. steady state: pg_auto_failover's pgautofailover_standby_* slots and our barman slot side by side
#   2. pg_autoctl perform failover under a writer: db2 promoted, both endpoints and Barman follow
#   3. db2's host crashes (kill -9 of everything in its namespace: keeper and postmaster) under a
#      writer: the monitor promotes db1, both endpoints and Barman follow, no row lost
#   4. db2's keeper started again: the stale primary is demoted and rejoins as a secondary
#      (pg_rewind by pg_autoctl); nothing ever routes to it
# Longer suite: runs with BHA_LONG=1 (docs/managers.md).
set -u
[ "${BHA_LONG:-0}" = 1 ] || { echo "1..0 # SKIP set BHA_LONG=1 (longer suite)"; exit 0; }
[ -x /usr/bin/pg_autoctl ] || { echo "1..0 # SKIP pg_auto_failover is not installed (pg-auto-failover-cli, postgresql-15-auto-failover)"; exit 0; }
BHA_PREFIX=${BHA_PREFIX:-bhm}af
BHA_MANAGER=pg_auto_failover
BHA_STANDBY_SLOT=sync
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"
bha_test_setup

slots() { bha_sql "$1" "SELECT string_agg(slot_name, ' ' ORDER BY slot_name) FROM pg_replication_slots" 2>/dev/null; }
pgaf_show() { bha_pgaf monitor show state --pgdata "$BHA_DATA/monitor/pgdata" 2>&1 | sed 's/^/# /'; }
# crash HOST: kill -9 every process of HOST's namespace (the keeper, postgres, sshd), as a host crash would
# shellcheck disable=SC2086  # one pid per word
crash() { local p; p=$(ip netns pids "$(bha_ns "$1")"); [ -n "$p" ] && kill -9 $p 2>/dev/null; return 0; }

# ------------------------------------------------------------ 1. steady state
t_ok "both endpoints lead to db1" bha_endpoints_on db1
t_ok "barman check $BHA_SERVER OK" bha_barman_check_ok
t_ok "monitor: db1 primary" bha_pgaf_state_is db1 primary
t_ok "monitor: db2 secondary" bha_pgaf_state_is db2 secondary
t_is "$(slots db1)" "barman pgautofailover_standby_2" "db1: pg_auto_failover's slot and ours side by side"
t_ok "db2 keeps a copy of the barman slot (standby_slot=sync)" bha_wait 30 "slot on db2" bha_slot_exists db2
diag "synchronous_standby_names on db1 (pg_auto_failover's): $(bha_sql db1 "SHOW synchronous_standby_names")"
t_ok "Barman streams from db1" bha_barman_streams_from db1
pgaf_show

# ------------------------------------------------------------ 2. pg_autoctl perform failover
bha_writer_start w1 0
t_ok "writer commits through $BHA_APP_PORT" bha_wait 30 "20 commits" bha_writer_has w1 20
t0=$(bha_now_ms)
# in the background, so that the watch sees each step as it happens (the command waits for the end)
bha_pgaf monitor perform failover --pgdata "$BHA_DATA/monitor/pgdata" --wait 120 >"$BHA_DATA/monitor/failover.log" 2>&1 &
pf=$!
t_ok "failover to db2: promoted, slot, both endpoints, Barman streaming, writer resumes" \
	bha_failover_watch "$t0" db2 w1 || bail "the failover did not complete"
wait "$pf"
ok $? "pg_autoctl perform failover succeeded" || sed 's/^/# /' "$BHA_DATA/monitor/failover.log"
rto1=$(bha_failover_report)
diag "pg_autoctl perform failover: $rto1"
bha_wait 30 "20 more commits" bha_writer_has w1 20 "$t0"
bha_writer_stop w1
t_is "$(bha_writer_lost w1 db2)" "" "every row writer 1 saw committed ($(bha_writer_count w1)) is on db2"
t_ok "monitor: db1 secondary again" bha_wait 60 "db1 secondary" bha_pgaf_state_is db1 secondary
t_ok "db2: pg_auto_failover's slot and ours side by side" bha_wait 30 "slots on db2" \
	test "$(slots db2)" = "barman pgautofailover_standby_1"
t_ok "db1 keeps a copy of the barman slot" bha_wait 30 "slot on db1" bha_slot_exists db1
t_ok "Barman needed no receive-wal --reset" bha_barman_no_reset
t_ok "barman check OK on db2" bha_wait 90 "barman check OK" bha_barman_check_ok || bha_barman_check | grep -v ': OK'
t_ok "barman_ha_status() on db2 says ok" bha_wait 30 "route ok" bha_route_ok db2

# ------------------------------------------------------------ 3. db2's host crashes
bha_writer_start w2 1000000
t_ok "writer 2 commits through $BHA_APP_PORT" bha_wait 30 "20 commits" bha_writer_has w2 20
t_kill=$(bha_now_ms)
crash db2
t_ok "failover to db1: promoted, slot, both endpoints, Barman streaming, writer resumes" \
	bha_failover_watch "$t_kill" db1 w2 || { pgaf_show; bail "the failover did not complete"; }
rto2=$(bha_failover_report)
diag "kill -9 of db2 (keeper and postmaster): $rto2"
bha_wait 30 "20 more commits" bha_writer_has w2 20 "$t_kill"
bha_writer_stop w2
t_is "$(bha_writer_lost w2 db1)" "" "every row writer 2 saw committed ($(bha_writer_count w2)) is on db1"
t_is "$(bha_writer_lost w1 db1)" "" "every row writer 1 saw committed is on db1"
t_ok "Barman needed no receive-wal --reset" bha_barman_no_reset

# ------------------------------------------------------------ 4. the stale primary db2 comes back
rm -f "$BHA_DATA/db2/pgdata/postmaster.pid"
t_ok "db2's keeper started again" bha_pgaf_run db2
t_ok "monitor: db2 rejoins as a secondary" bha_wait 120 "db2 secondary" bha_pgaf_state_is db2 secondary || pgaf_show
t_ok "db2 is a standby" bha_wait 30 "db2 standby" bha_is_standby db2
t_ok "both endpoints stay on db1" bha_endpoints_on db1
t_ok "db2 keeps a copy of the barman slot again" bha_wait 30 "slot on db2" bha_slot_exists db2
t_is "$(slots db1)" "barman pgautofailover_standby_2" "db1: pg_auto_failover's slot and ours side by side"
t_ok "barman check OK on db1" bha_wait 90 "barman check OK" bha_barman_check_ok || bha_barman_check | grep -v ': OK'
t_is "$(bhf_wal_report)" 0 "no WAL segment missing from Barman's archive across timelines 1, 2, 3"
pgaf_show

echo "# FIGURE pg_auto_failover_rto perform_failover $rto1"
echo "# FIGURE pg_auto_failover_rto kill_primary_host $rto2"
done_testing
