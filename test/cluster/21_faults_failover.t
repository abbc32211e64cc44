#!/bin/bash
# Fault matrix, part 2 (docs/faults.md): faults during failovers.  One bring-up; a writer commits
# through BACKUP:54322; every scenario prints "# FIGURE ..." lines (docs/faults.md).
#   1. backup host unreachable during the promotion (its cable down 20 s): db1 -> db2
#   5. Barman down at the promotion (barman_path fails, no cron): db2 -> db1
#   4. the double failover db1 -> db2 -> db1 (1 and 5): endpoints, slots, Barman follow both
#   3. stale primary: db1 cut off while db2's repmgrd waits on a query to it, db2 promoted, db1
#      back on the old timeline: fenced, and no client or Barman connection reaches db1 through
#      the endpoints
set -u
BHA_PREFIX=${BHA_PREFIX:-bhf}f2
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"
bha_test_setup

# writer_kept WRITER NODE: the writer stopped; lost: the rows it saw committed that NODE lacks (a test: none)
writer_kept() {
	bha_writer_stop "$1"
	lost=$(bha_writer_lost "$1" "$2")
	is "$lost" "" "every row writer ${1#w} saw committed ($(bha_writer_count "$1")) is on $2"
}

t_ok "both endpoints on db1 after the bring-up" bha_endpoints_on db1
t_ok "route ok on db1" bha_wait 20 "route ok on db1" bha_route_ok db1
t_ok "db2 streams from db1 (synchronous)" bha_wait 30 "db2 streaming" bha_streams_from db1 db2
retry=$(bha_sql db1 "SELECT setting FROM pg_settings WHERE name = 'barman_ha.reconcile_interval'")

# ------------------------------------------------------------ 1. backup unreachable during the promotion
bha_writer_start w1 0
t_ok "writer commits through $BHA_APP_PORT" bha_wait 30 "10 commits" bha_writer_has w1 10
t_cut=$(bha_now_ms)
bha_link backup down
kill -9 "$(bha_pg_pid db1)"
t_ok "db2 promoted while the backup host is unreachable" bha_wait 30 "db2 promoted" bha_is_primary db2
t_prom=$(bha_now_ms)
t_ok "slot $BHA_SLOT on db2 at once" bha_wait 10 "slot on db2" bha_slot_exists db2
t_ok "status on db2: failed, with the reason" bha_wait 20 "db2 failed with a reason" bhf_failed_with db2 'ssh|unreachable|route|timed out'
diag "db2 while the backup host is away: $(bha_status_row db2)"
left=$(( 20 - ($(bha_now_ms) - t_cut) / 1000 ))
[ "$left" -le 0 ] || sleep "$left"
nf=$(bhf_event_count db2 route_failed "$t_cut")
t_ok "the worker retried while the link was down ($nf failed calls)" test "$nf" -ge 3
bha_events db2 | grep route_failed | sed 's/^/# db2 event: /'
t_up=$(bha_now_ms)
bha_link backup up
t_ok "the Barman endpoint reaches db2 within one retry interval (${retry} s) and a call" \
	bha_wait $((retry + 10)) "Barman endpoint on db2" bha_endpoint_is $BHA_BARMAN_PORT db2
ep_b=$(bhf_since "$t_up")
t_ok "the app endpoint reaches db2" bha_wait $((retry + 30)) "app endpoint on db2" bha_endpoint_is $BHA_APP_PORT db2
ep_a=$(bhf_since "$t_up")
t_ok "route ok on db2" bha_wait 30 "route ok on db2" bha_route_ok db2
t_ok "Barman streams from db2" bha_wait 30 "Barman streaming from db2" bha_barman_streams_from db2
t_ok "the writer commits again" bha_wait 30 "5 commits" bha_writer_has w1 5 "$t_up"
first=$(bha_writer_first_after w1 "$t_up")
bha_events db2 | awk -v t="$(date -d @$((t_up / 1000)) +%T)" '$1 >= t' | sed 's/^/# db2 event: /'
diag "link up -> barman endpoint $ep_b ms, app endpoint $ep_a ms, first commit $(( ${first:-0} - t_up )) ms"
t_ok "... the app endpoint within one retry interval + one call of the client: $ep_a ms <= $(( retry * 1000 + 15000 ))" test "$ep_a" -le $(( retry * 1000 + 15000 ))
writer_kept w1 db2
bhf_fig 1-backup-unreachable "promoted_ms=$(( t_prom - t_cut )) failed_calls=$nf barman_endpoint_after_link_ms=$ep_b app_endpoint_after_link_ms=$ep_a first_commit_after_link_ms=$(( ${first:-0} - t_up )) rows_lost=$(grep -c . <<<"$lost")"

# db1 back as a standby (4: its slot goes)
t_ok "db1 rejoins db2 (repmgr node rejoin --force-rewind), a fresh repmgrd follows db2" bha_rejoin db1 db2
t_ok "db1's slot handled as standby_slot=$BHA_STANDBY_SLOT wants" bha_wait 25 "slot on db1 as standby_slot wants" bha_standby_slot_ok db1
t_ok "db1 streams from db2" bha_wait 30 "db1 streaming" bha_streams_from db2 db1
t_ok "barman check OK on db2" bha_wait 90 "barman check OK" bha_barman_check_ok || bha_barman_check | grep -v ': OK'

# ------------------------------------------------------------ 5. Barman down at the promotion (db2 -> db1)
down=$BHA_DATA/backup/bin/barman-down
bha_write "$down" root:root 0755 <<'EOF'
#!/bin/sh
echo "barman: simulated outage" >&2
exit 1
EOF
bconf=/etc/netns/$(bha_ns backup)/repmgr_barman_ha/orchestrator.conf
cp "$bconf" "$BHA_DATA/backup/orchestrator.conf.orig"
echo "barman_path = $down" >>"$bconf"
bha_kill_pidfile "$BHA_DATA/backup/cron.pid"		# no barman cron either: Barman is down
sw0=$(bhf_switch_wal_count)
bha_writer_start w2 1000000
t_ok "writer 2 commits through $BHA_APP_PORT" bha_wait 30 "10 commits" bha_writer_has w2 10
t_kill=$(bha_now_ms)
kill -9 "$(bha_pg_pid db2)"
t_ok "db1 promoted" bha_wait 30 "db1 promoted" bha_is_primary db1
t_ok "status on db1: failed, the Barman step named" bha_wait 40 "db1 failed" bhf_failed_with db1 '.'
diag "db1 with Barman down: $(bha_status_row db1)"
t_ok "the app endpoint moved to db1 anyway" bha_wait 30 "app endpoint on db1" bha_endpoint_is $BHA_APP_PORT db1
t_ok "the Barman endpoint is on db1" bha_endpoint_is $BHA_BARMAN_PORT db1
t_ok "events show a failed Barman step" test "$(bha_sql db1 "SELECT count(*) FROM barman_ha_events() WHERE NOT ok AND event LIKE 'barman%'")" -gt 0
slot_at=$(bha_sql db1 "SELECT extract(epoch FROM min(at)) * 1000 FROM barman_ha_events() WHERE event IN ('slot_created', 'promoted')")
app_at=$(bha_sql db1 "SELECT extract(epoch FROM min(at)) * 1000 FROM barman_ha_events() WHERE event = 'route_app' AND ok")
t_ok "the slot existed before the app endpoint moved (slot ${slot_at%.*}, route_app ${app_at%.*})" test -n "$app_at" -a "${slot_at%.*}" -le "${app_at%.*}"
is "$(bhf_orchestrator_status switch_wal)" pending "backup host state: switch_wal=pending"
bha_events db1 | sed 's/^/# db1 event: /'
sleep 5
n_down=$(bha_writer_after w2 $((t_kill + 3000)))
diag "commits acknowledged through $BHA_APP_PORT while Barman is down (db2 gone, Barman the only synchronous standby): $n_down"
# Barman back
t_back=$(bha_now_ms)
cp "$BHA_DATA/backup/orchestrator.conf.orig" "$bconf"
t_ok "barman cron loop back" bha_cron_start
t_ok "Barman back: route ok on db1 (retry back-off, at most $retry s)" bha_wait $((retry + 40)) "route ok on db1" bha_route_ok db1
conv=$(bhf_since "$t_back")
t_ok "Barman streams from db1" bha_wait 30 "Barman streaming from db1" bha_barman_streams_from db1
t_ok "the writer commits again" bha_wait 30 "5 commits" bha_writer_has w2 5 "$t_back"
first=$(bha_writer_first_after w2 "$t_back")
is "$(bhf_orchestrator_status switch_wal)" done "backup host state: switch_wal=done"
is "$(( $(bhf_switch_wal_count) - sw0 ))" 1 "one switch-wal for the new timeline"
writer_kept w2 db1
bhf_fig 5-barman-down "commits_while_down=$n_down route_ok_after_barman_back_ms=$conv first_commit_after_back_ms=$(( ${first:-0} - t_back )) rows_lost=$(grep -c . <<<"$lost")"

# ------------------------------------------------------------ 4. the double failover, end state
t_ok "db2 rejoins db1, a fresh repmgrd follows db1 (section 3's host-gone failover needs it)" bha_rejoin db2 db1
t_ok "db2's slot handled as standby_slot=$BHA_STANDBY_SLOT wants" bha_wait 25 "slot on db2 as standby_slot wants" bha_standby_slot_ok db2
t_ok "db1's slot: exists (primary again)" bha_slot_exists db1
t_ok "both endpoints on db1 (db1 -> db2 -> db1)" bha_endpoints_on db1
t_ok "Barman streams from db1" bha_barman_streams_from db1
t_ok "db2 streams from db1" bha_wait 30 "db2 streaming" bha_streams_from db1 db2
t_ok "barman check OK after the double failover" bha_wait 90 "barman check OK" bha_barman_check_ok || bha_barman_check | grep -v ': OK'
miss=$(bhf_wal_report)
is "$miss" 0 "no WAL segment missing from Barman's archive across both timeline switches"
bhf_fig 4-double-failover "wal_missing=$miss timelines=$(bhf_orchestrator_status timeline)"

# ------------------------------------------------------------ 3. stale primary fenced, nothing reaches it
for n in db1 db2; do bha_sql $n "ALTER SYSTEM SET log_connections = on" >/dev/null; bha_sql $n "SELECT pg_reload_conf()" >/dev/null; done
bha_writer_start w3 2000000
t_ok "writer 3 commits through $BHA_APP_PORT" bha_wait 30 "10 commits" bha_writer_has w3 10
# The host vanishes at the worst moment: while db2's repmgrd waits for db1's answer (every
# monitor interval it asks db1 pg_is_in_recovery() on a connection it keeps, and waits without
# a timeout).  db1's backends for it are stopped until such a query waits unread in their
# socket; only the keepalives in repmgr's conninfo end that wait once the host is gone.
held=$(bha_sql db1 "SELECT pid || ' ' || client_port FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename = 'repmgr' AND client_addr = '${BHA_ADDR[db2]}'")
held_pids=$(awk '{print $1}' <<<"$held")
held_ports=$(awk '{print $2}' <<<"$held")
# shellcheck disable=SC2086
kill -STOP $held_pids
query_waits() {
	local port
	for port in $held_ports; do
		bha_in db1 ss -Htn state established "( sport = :5432 and dport = :$port )" | awk '$1 > 0 {w = 1} END {exit !w}' && return 0
	done
	return 1
}
t_ok "db2's repmgrd waits on a query to db1 (db1's backend for it stopped)" bha_wait 10 "a query of db2's repmgrd unread at db1" query_waits
t_cut=$(bha_now_ms)
bha_link db1 down
t_ok "host-gone failover to db2" bha_failover_watch "$t_cut" db2 w3
diag "host-gone failover: $(bha_failover_report)"
log0=$(bhf_log_size db1)
t_up=$(bha_now_ms)
bha_link db1 up
# shellcheck disable=SC2086
kill -CONT $held_pids
t_ok "the stale primary db1 is fenced" bha_wait 40 "db1 fenced" bha_route_state_is db1 fenced
fence_ms=$(bhf_since "$t_up")
# for 15 s: Barman's cron and checks, and the writer, all through the endpoints
for i in 1 2 3; do
	bha_in backup barman -q cron >/dev/null 2>&1
	bha_barman_check_ok
	sleep 4
done
t_ok "db1 still fenced" bha_route_state_is db1 fenced
t_ok "both endpoints stay on db2" bha_endpoints_on db2
t_ok "Barman streams from db2" bha_barman_streams_from db2
bha_writer_stop w3
# what reached db1 since its cable came back: only the orchestrator's claim checks (replication
# connections of user barman_ha_check, straight to db1's address) may appear
reached=$(bhf_backup_conns db1 "$log0" | grep -vE 'replication connection authorized: user=barman_ha_check ')
is "$reached" "" "no client and no Barman connection reached db1 through the endpoints while it was fenced"
checks=$(bhf_backup_conns db1 "$log0" | grep -c 'replication connection authorized: user=barman_ha_check ')
diag "claim checks that reached db1 directly while fenced: $checks"
is "$(bha_sql db1 appdb "SELECT count(*) FROM rows WHERE i > 2000000 AND at > to_timestamp($t_up / 1000.0)")" 0 "no row written on db1 after it came back"
writer_kept w3 db2
bhf_fig 3-stale-primary "fenced_after_link_ms=$fence_ms connections_through_endpoints=$(grep -c . <<<"$reached") rows_lost=$(grep -c . <<<"$lost")"

done_testing
