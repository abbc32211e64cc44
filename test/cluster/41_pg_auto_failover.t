#!/bin/bash
# pg_auto_failover instead of repmgr: the monitor on its own host (PREFIX-monitor),
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
bha_major=${BHA_PG_MAJOR:-$(pg_config --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')}
{ [ -x /usr/bin/pg_autoctl ] && [ -f "/usr/share/postgresql/$bha_major/extension/pgautofailover.control" ]; } ||
	{ echo "1..0 # SKIP pg_auto_failover is not installed for PostgreSQL $bha_major (pg-auto-failover-cli, postgresql-$bha_major-auto-failover)"; exit 0; }
BHA_PREFIX=${BHA_PREFIX:-bhm}af
BHA_MANAGER=pg_auto_failover
BHA_STANDBY_SLOT=sync
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"
bha_test_setup

pgaf_show() { bha_pgaf monitor show state --pgdata "$BHA_DATA/monitor/pgdata" 2>&1 | sed 's/^/# /'; }

# ------------------------------------------------------------ 1. steady state
t_ok "both endpoints lead to db1" bha_endpoints_on db1
t_ok "barman check $BHA_SERVER OK" bha_barman_check_ok
t_ok "monitor: db1 primary" bha_pgaf_state_is db1 primary
t_ok "monitor: db2 secondary" bha_pgaf_state_is db2 secondary
is "$(bha_slots db1)" "barman pgautofailover_standby_2" "db1: pg_auto_failover's slot and ours side by side"
t_ok "db2 keeps a copy of the barman slot (standby_slot=sync)" bha_wait 30 "slot on db2" bha_slot_exists db2
diag "synchronous_standby_names on db1 (pg_auto_failover's): $(bha_sql db1 "SHOW synchronous_standby_names")"
t_ok "Barman streams from db1" bha_barman_streams_from db1
pgaf_show

# ------------------------------------------------------------ 2. pg_autoctl perform failover
# in the background, so that the watch sees each step as it happens (the command waits for the end)
bha_fault_failover w1 0 db2 "pg_autoctl perform failover" pgaf_show \
	bha_bg "$BHA_DATA/monitor/failover.log" bha_pgaf monitor perform failover --pgdata "$BHA_DATA/monitor/pgdata" --wait 120
bha_bg_ok "pg_autoctl perform failover succeeded"
rto1=$BHA_RTO
bha_writer_kept w1 db2
t_ok "monitor: db1 secondary again" bha_wait 60 "db1 secondary" bha_pgaf_state_is db1 secondary
t_ok "db2: pg_auto_failover's slot and ours side by side" bha_wait 30 "slots on db2" \
	test "$(bha_slots db2)" = "barman pgautofailover_standby_1"
bha_moved_to db2 db1

# ------------------------------------------------------------ 3. db2's host crashes
bha_mgr_host_crash "kill -9 of db2 (keeper and postmaster)" pgaf_show
rto2=$BHA_RTO

# ------------------------------------------------------------ 4. the stale primary db2 comes back
bha_pg_stale_locks db2
t_ok "db2's keeper started again" bha_pgaf_run db2
t_ok "monitor: db2 rejoins as a secondary" bha_wait 120 "db2 secondary" bha_pgaf_state_is db2 secondary || pgaf_show
t_ok "db2 is a standby" bha_wait 30 "db2 standby" bha_is_standby db2
bha_mgr_stale_back
is "$(bha_slots db1)" "barman pgautofailover_standby_2" "db1: pg_auto_failover's slot and ours side by side"
pgaf_show

echo "# FIGURE pg_auto_failover_rto perform_failover $rto1"
echo "# FIGURE pg_auto_failover_rto kill_primary_host $rto2"
done_testing
