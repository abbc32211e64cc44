#!/bin/bash
# The cluster's scenarios on one bring-up, in the order of value:
#   1. steady state; the orchestrator's `barman reset` against the real Barman
#   2. failover by kill -9 of db1's postmaster under a writer through 54322, no lost row
#   3. PITR of a backup taken before the failover to a time after it
#   4. rejoin of db1 as a standby: its slot is dropped, nothing routes to it
#   5. switchover back to db1
#   6. failover with db1's host gone (link cut) under a writer, no lost row
#   7. db1's cable plugged back: the stale primary is fenced, nothing routes to it
set -u
BHA_PREFIX=${BHA_PREFIX:-bha}t1
. "$(dirname "$0")/lib.sh"
bha_test_setup

# ------------------------------------------------------------ 1. steady state
t_ok "barman endpoint $BHA_BARMAN_PORT leads to db1" bha_endpoint_is $BHA_BARMAN_PORT db1
t_ok "app endpoint $BHA_APP_PORT leads to db1" bha_endpoint_is $BHA_APP_PORT db1
t_ok "barman check $BHA_SERVER OK" bha_barman_check_ok
t_ok "slot $BHA_SLOT on db1" bha_slot_exists db1
t_ok "db2's slot as standby_slot=$BHA_STANDBY_SLOT wants" bha_standby_slot_ok db2
t_ok "Barman streams from db1" bha_barman_streams_from db1
t_ok "app can write through $BHA_APP_PORT" bha_app_sql "INSERT INTO rows (i) VALUES (-100)"
for n in db1 db2; do t_ok "barman_ha_status() healthy on $n" bha_ext_healthy "$n" || bha_status_row "$n"; done
is "$(bha_sql db1 "SELECT role || ' ' || route_state || ' ' || coalesce(routed_node, '-') FROM barman_ha_status()")" \
	"primary ok db1" "db1: primary, route ok to db1"
first=$(cat "$BHA_DATA/first_start_ms")
t_ok "first start: route_state ok on db1 ${first} ms after the extension was switched on (at most 10 s)" \
	test "$first" -le 10000 || diag "$(sed 's/^/db1 event: /' "$BHA_DATA/first_start_events")"

old=$(bha_sql db1 "SELECT pid FROM pg_stat_replication WHERE application_name = 'barman_receive_wal'")
t_ok "barman_ha_orchestrator barman reset (backup host, real Barman)" bha_diag_run bha_orchestrator barman reset
t_ok "Barman streams from db1 again after the reset" bha_wait 30 "Barman streaming" bha_barman_streams_from db1
new=$(bha_sql db1 "SELECT pid FROM pg_stat_replication WHERE application_name = 'barman_receive_wal'")
t_ok "the reset restarted receive-wal (walsender $old -> $new)" test -n "$new" -a "$old" != "$new"
t_ok "synchronous commit through $BHA_APP_PORT works after the reset" bha_app_sql "INSERT INTO rows (i) VALUES (-101)"
t_ok "barman check OK after the reset" bha_wait 60 "barman check OK" bha_barman_check_ok

# ------------------------------------------------------------ 2. failover by kill -9 under a writer
bha_writer_start w1 0
t_ok "writer commits through $BHA_APP_PORT" bha_wait 30 "20 commits" bha_writer_has w1 20
t_kill=$(bha_now_ms)
kill -9 "$(bha_pg_pid db1)"
t_ok "failover to db2: promoted, slot, both endpoints, Barman streaming, writer resumes" \
	bha_failover_watch "$t_kill" db2 w1 || bail "the failover did not complete"
diag "kill -9 failover: $(bha_failover_report)"
bha_wait 30 "20 more commits" bha_writer_has w1 20 "$t_kill"
bha_writer_stop w1
lost=$(bha_writer_lost w1 db2)
is "$lost" "" "every row the writer saw committed ($(bha_writer_count w1)) is on db2"
t_ok "barman check OK on db2" bha_wait 90 "barman check OK" bha_barman_check_ok || bha_barman_check | grep -v ': OK'
t_ok "Barman needed no receive-wal --reset" bha_barman_no_reset
t_ok "slot $BHA_SLOT on db2" bha_slot_exists db2
t_ok "a new barman backup succeeds after the failover" bha_backup
t_ok "barman_ha_status() on db2 says ok" bha_wait 30 "route ok" bha_route_ok db2
bha_events db2 | sed 's/^/# db2 event: /'

# ------------------------------------------------------------ 3. PITR across the failover
target=$(bha_sql db2 "SELECT now()")
sleep 1
bha_sql db2 appdb "INSERT INTO rows (i) VALUES (-1)" >/dev/null		# after the target: must not appear
t_ok "WAL after the target archived (switch-wal --archive)" bha_switch_wal
first=$(bha_in backup barman list-backups --minimal "$BHA_SERVER" | tail -n 1)
t_ok "PITR of backup $first (before the failover) to $target" bha_pitr "$first" "$target" ||
	diag "PITR across the failover FAILED: if the log above says a WAL segment could not be restored," \
		"the archive has a gap at the timeline switch and backups from before the failover cannot be recovered past it"
pitr_rows=$(bha_pitr_sql "SELECT count(*) FILTER (WHERE i > 0 AND at < to_timestamp($t_kill / 1000.0)) || ' ' || count(*) FILTER (WHERE i > 0 AND at > to_timestamp($t_kill / 1000.0)) || ' ' || count(*) FILTER (WHERE i = -1) FROM rows")
read -r before after marker <<<"${pitr_rows:-0 0 0}"
diag "PITR: $before rows from before the kill, $after from after it, marker $marker"
t_ok "PITR has rows committed before the failover (db1, timeline 1)" test "$before" -gt 0
t_ok "PITR has rows committed after the failover (db2, timeline 2)" test "$after" -gt 0
is "$marker" 0 "PITR stopped at the target: the row inserted after it is absent"
t_ok "PITR holds every row the writer saw committed" test "$(bha_pitr_sql "SELECT count(*) FROM rows WHERE i > 0")" -ge "$(bha_writer_count w1)"
bha_pitr_stop

# ------------------------------------------------------------ 4. rejoin
t_ok "db1 rejoins as a standby (repmgr node rejoin --force-rewind), a fresh repmgrd follows db2" bha_rejoin db1 db2
t_ok "db1 is a standby" bha_is_standby db1
t_ok "db1's leftover slot handled (standby_slot=$BHA_STANDBY_SLOT) within one reconcile interval" bha_wait 25 "slot on db1 as standby_slot=$BHA_STANDBY_SLOT wants" bha_standby_slot_ok db1
t_ok "barman endpoint still on db2" bha_endpoint_is $BHA_BARMAN_PORT db2
t_ok "app endpoint still on db2" bha_endpoint_is $BHA_APP_PORT db2
t_ok "db1 streams from db2" bha_wait 30 "db1 streaming" bha_streams_from db2 db1

# ------------------------------------------------------------ 5. switchover back to db1
t0=$(bha_now_ms)
t_ok "repmgr standby switchover on db1" bha_switchover db1
t_ok "endpoints follow to db1" bha_wait 60 "both endpoints on db1" bha_endpoints_on db1
diag "switchover: endpoints on db1 after $(( $(bha_now_ms) - t0 )) ms"
t_ok "slot $BHA_SLOT on db1" bha_wait 30 "slot on db1" bha_slot_exists db1
t_ok "db2's slot as standby_slot=$BHA_STANDBY_SLOT wants" bha_wait 25 "slot on db2 as standby_slot=$BHA_STANDBY_SLOT wants" bha_standby_slot_ok db2
t_ok "Barman streams from db1" bha_wait 60 "Barman streaming from db1" bha_barman_streams_from db1
t_ok "barman check OK after the switchover" bha_wait 90 "barman check OK" bha_barman_check_ok

t_ok "db2 streams from db1 (synchronous standby again)" bha_wait 30 "db2 streaming from db1" bha_streams_from db1 db2

# ------------------------------------------------------------ 6. failover with db1's host gone
bha_writer_start w2 1000000
t_ok "writer 2 commits through $BHA_APP_PORT" bha_wait 30 "20 commits" bha_writer_has w2 20
t_cut=$(bha_now_ms)
bha_link db1 down
t_ok "host-gone failover to db2: promoted, slot, both endpoints, Barman streaming, writer resumes" \
	bha_failover_watch "$t_cut" db2 w2
diag "host-gone failover: $(bha_failover_report)"
bha_events db2 | awk -v t="$(date -u -d @$((t_cut / 1000)) +%T)" '$1 >= t' | sed 's/^/# db2 event: /'
bha_writer_stop w2
lost=$(bha_writer_lost w2 db2)
is "$lost" "" "every row writer 2 saw committed ($(bha_writer_count w2)) is on db2"
t_ok "barman check OK on db2" bha_wait 90 "barman check OK" bha_barman_check_ok || bha_barman_check | grep -v ': OK'

# ------------------------------------------------------------ 7. the cut-off db1 comes back: fenced
bha_link db1 up
t_ok "the stale primary db1 (old timeline) is fenced" bha_wait 40 "barman_ha_status() on db1 to say fenced" bha_route_state_is db1 fenced
bha_status_row db1 | sed 's/^/# db1 status: /'
t_ok "both endpoints stay on db2" bha_endpoints_on db2
t_ok "Barman still streams from db2" bha_barman_streams_from db2
t_ok "commits through $BHA_APP_PORT still reach db2" bha_app_sql "INSERT INTO rows (i) VALUES (-102)"
is "$(bha_sql db2 appdb "SELECT count(*) FROM rows WHERE i = -102")" 1 "...and land on db2"

done_testing
