#!/bin/bash
# 24_watch.t: the backup host's watch (barman_ha_orchestrator watch, started by lib.sh as
# barman-ha-watch.service would).  One bring-up, then:
#   1. no failover manager (repmgrd stopped): db1's cable cut.  The watch closes the app
#      endpoint (in about 1.3 s, printed): a client connecting to BACKUP:54322 is refused at
#      once (a reset, not a timeout); the level check of db1 leaves it closed and says why;
#      the Barman endpoint is untouched.  Cable back: the app endpoint reopens on db1 and a
#      writer commits.
#   1b. only the backup host's own connections to db1 dropped: the watch closes the app
#      endpoint; db1's level check (every second) reports it in one event, not one per pass.
#   2. repmgrd running: db1's host gone, db2 promoted.  Clients are refused while repmgrd
#      detects the failure (the watch closed the endpoint before the promotion moved it), so
#      the writer's first commit after the promotion needs no retransmitted SYN: the figure is
#      printed; bench/failover.sh measures it.
set -u
BHA_PREFIX=${BHA_PREFIX:-bhw}
. "$(dirname "$0")/lib.sh"
bha_test_setup

app_target() { bha_nat show 2>/dev/null | awk '$1 == "endpoint" && $2 == "app" {print $5}'; }
app_is() { [ "$(app_target)" = "$1" ]; }
watch_log() { cat "$BHA_DATA/backup/log/watch.log" 2>/dev/null; }
watch_said() { grep -q "watch: $1" "$BHA_DATA/backup/log/watch.log"; }
watch_session_on() { [ "$(bha_sql "$1" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'barman_ha_watch'")" = 1 ]; }
# app_connect_ms: one psql from the app host to BACKUP:54322, timed inside the namespace:
# "MS OUTPUT"
app_connect_ms() {
	# shellcheck disable=SC2016
	bha_in app env PGPASSFILE="$BHA_DATA/app/pgpass" bash -c 't0=${EPOCHREALTIME/./}
		o=$("$0/psql" -X -qAt "host=$1 port=$2 dbname=appdb user=app connect_timeout=2" -c "SELECT 1" 2>&1 | tr "\n" " ")
		t1=${EPOCHREALTIME/./}; echo "$(( (t1 - t0) / 1000 )) $o"' "$BHA_PGBIN" "$BHA_BACKUP_ADDR" "$BHA_APP_PORT"
}

t_ok "both endpoints on db1 after the bring-up" bha_endpoints_on db1
t_ok "the watch runs on the backup host" kill -0 "$(bha_watch_pid)"
is "$(ps -o user= -p "$(bha_watch_pid)")" barman "...as barman"
t_ok "...and holds a connection to db1" bha_wait 20 "the watch connected to db1" watch_said "connected to db1"
t_ok "its session shows on db1" bha_wait 10 "barman_ha_watch in pg_stat_activity" watch_session_on db1
tl=$(bha_orchestrator status | sed -n 's/^timeline=//p')

# ------------------------------------------------------------ 1. db1 silent, nobody promotes
repmgrd_stop_all() { local n; for n in $BHA_NODES; do bha_repmgrd_stop "$n" || return 1; done; }
t_ok "repmgrd stopped on every node (no failover)" repmgrd_stop_all
bha_writer_start w1 0
t_ok "writer commits through $BHA_APP_PORT" bha_wait 30 "10 commits" bha_writer_has w1 10
t_cut=$(bha_now_ms)
bha_link db1 down
t_ok "db1's cable cut: the watch closes the app endpoint" bha_wait 10 "app endpoint closed" app_is closed
closed_ms=$(( $(bha_now_ms) - t_cut ))
diag "app endpoint closed $closed_ms ms after the cut (as the harness's polling saw it)"
watch_log | grep -E 'db1 is silent|broken' | tail -n 2 | sed 's/^/# watch: /'
is "$(bha_orchestrator status | grep '^app_closed_by_watch=')" "app_closed_by_watch=db1" "status: app_closed_by_watch=db1"
read -r ms out <<<"$(app_connect_ms)"
like "$out" "Connection refused" "a client's connect to BACKUP:$BHA_APP_PORT is refused"
ok $(( ms >= 1000 )) "...at once: $ms ms (psql included), not a retransmitted SYN"
like "$(bha_nat show)" "endpoint barman $BHA_BACKUP_ADDR $BHA_BARMAN_PORT db1 ${BHA_ADDR[db1]}:5432" \
	"the Barman endpoint still leads to db1"
out=$(bha_orchestrator promote db1 "$tl" 2>&1)
like "$out" "step check ok [0-9.]+ (routed|repairing:[a-z -]*); app endpoint closed by watch: db1 silent since [0-9]{2}:[0-9]{2}:[0-9]{2}" \
	"db1's level check (promote db1 $tl) leaves it closed and says why" || sed 's/^/# /' <<<"$out"
is "$(app_target)" closed "...the app endpoint is still closed"
read -r ms out <<<"$(app_connect_ms)"
like "$out" "Connection refused" "still refused after the level check ($ms ms)"

t_up=$(bha_now_ms)
bha_link db1 up
t_ok "cable back: the app endpoint reopens on db1" bha_wait 10 "app endpoint on db1" app_is db1
open_ms=$(( $(bha_now_ms) - t_up ))
is "$(bha_orchestrator status | grep '^app_closed_by_watch=')" "app_closed_by_watch=" "status: the record is cleared"
t_ok "the writer commits again" bha_wait 60 "5 commits" bha_writer_has w1 5 "$t_up"
first=$(bha_writer_first_after w1 "$t_up")
bha_writer_stop w1
is "$(bha_writer_lost w1 db1)" "" "every row writer w1 saw committed ($(bha_writer_count w1)) is on db1"
diag "FIGURE watch-cut closed_ms=$closed_ms reopened_ms=$open_ms first_commit_after_link_ms=$(( ${first:-0} - t_up ))"

# ------------------------------------------------------------ 1b. only the backup host's own connections to db1 lost
# db1 still reaches the backup host, so its worker's level check arrives every second; what
# goes through the endpoints (Barman's stream) is untouched.  The check finds the app endpoint
# closed by the watch: one event says so, not one per reconcile interval.
watch_blind() {			# watch_blind add|delete: the backup host's direct connections to db1 dropped
	if [ "$1" = add ]; then
		bha_in backup nft -f - <<EOF
table ip bha_watch_blind {
	chain output {
		type filter hook output priority 0; policy accept;
		ct original ip daddr ${BHA_ADDR[db1]} tcp dport 5432 drop
	}
}
EOF
	else
		bha_in backup nft delete table ip bha_watch_blind 2>/dev/null
	fi
}
closed_events() { bha_sql db1 "SELECT count(*) FROM barman_ha_events() WHERE detail LIKE '%closed by watch%'"; }
closed_events_above() { [ "$(closed_events)" -gt "$1" ]; }
checks_go_on() { [ "$(bha_sql db1 "SELECT last_success_age < 3 FROM barman_ha_status()")" = t ]; }
reconcile_every() { bha_sql db1 "ALTER SYSTEM SET barman_ha.reconcile_interval = $1" >/dev/null && bha_sql db1 "SELECT pg_reload_conf()" >/dev/null; }
before=$(closed_events)
t_ok "db1's level check every second" reconcile_every 1
t_ok "the backup host's direct connections to db1 dropped" watch_blind add
t_ok "the watch closes the app endpoint" bha_wait 20 "app endpoint closed" app_is closed
t_ok "db1's level check says so in an event" bha_wait 20 "the event" closed_events_above "$before"
sleep 5
is "$(( $(closed_events) - before ))" 1 "...once: five more checks later, no second event"
t_ok "...though the checks went on (last_success_age < 3 s)" checks_go_on
watch_blind delete
t_ok "reachable again: the app endpoint reopens on db1" bha_wait 20 "app endpoint on db1" app_is db1
t_ok "db1's level check back to its interval" reconcile_every 10

# ------------------------------------------------------------ 2. host-gone failover with repmgrd
t_ok "db2 streams from db1 again" bha_wait 60 "db2 streaming from db1" bha_streams_from db1 db2
t_ok "Barman streams from db1 again" bha_wait 90 "Barman streaming from db1" bha_barman_streams_from db1
t_ok "route ok on db1" bha_wait 30 "route ok on db1" bha_route_ok db1
for n in $BHA_NODES; do t_ok "repmgrd on $n monitors again" bha_repmgrd_start "$n"; done
# the watch's log lines that close db1's app endpoint, numbered
closed_lines() { watch_log | grep -n 'db1 is silent.*app endpoint closed'; }
closed_before=$(closed_lines | wc -l)
bha_fault_failover w2 1000000 db2 "db1's host gone" : bha_link db1 down
after=$(( BHA_T[first_commit] - BHA_T[promoted] ))
diag "FIGURE watch-host-gone first_commit_after_promotion_ms=$after (promoted ${BHA_T[promoted]} ms after the cut)"
t_ok "the watch follows the claim: it watches db2" bha_wait 70 "the watch on db2" watch_said "watching db2"
# the mechanism, not the figure (a loaded machine stretches it): the watch had closed db1's app
# endpoint before the promotion moved it, so the writer's connects were refused, not left hanging
closed=$(closed_lines)
closed_line=$(tail -n 1 <<<"$closed" | cut -d: -f1)
moved_line=$(watch_log | grep -n 'watching db2' | head -n 1 | cut -d: -f1)
ok $(( $(grep -c . <<<"$closed") > closed_before && ${closed_line:-0} < ${moved_line:-0} ? 0 : 1 )) \
	"the watch closed db1's app endpoint before db2 took it"
is "$(bha_orchestrator status | grep '^app_closed_by_watch=')" "app_closed_by_watch=" "no record left for db1"
bha_writer_kept w2 db2
watch_log | sed 's/^/# watch.log: /'
done_testing
