#!/bin/bash
# Fault matrix, part 1 (docs/faults.md): faults on the primary db1 and the backup host, no failover
# (repmgrd paused while db1 is restarted on purpose).  One bring-up; a writer commits
# through BACKUP:54322 all along; every scenario prints "# FIGURE ..." lines (docs/faults.md).
#   6. barman_ha_client missing, not executable, its config writable by others, the
#      backup host's key unknown (StrictHostKeyChecking=yes)
#   7. PostgreSQL restarted on the primary; the worker SIGKILLed (crash restart)
#   8. slow helper: the backup's sshd stopped (SIGSTOP): helper_timeout, SIGHUP, SIGTERM, pg_ctl stop
#   2. backup host "reboot": NAT flushed, forwarding off, receive-wal killed; then chains deleted + nat init
set -u
BHA_PREFIX=${BHA_PREFIX:-bhf}f1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"
bha_test_setup
# The backup host's sshd hung: its listener and the processes serving the open
# connections (the DB nodes' shared ssh connections among them), stopped and
# continued by pid.
sshd_stopped=""
sshd_stop() {
	local p
	sshd_stopped=$(for p in $(ip netns pids "$(bha_ns backup)"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = sshd ] && echo "$p"; done)
	kill -STOP $sshd_stopped
}
sshd_cont() { [ -z "$sshd_stopped" ] || kill -CONT $sshd_stopped 2>/dev/null; sshd_stopped=""; }
trap 'sshd_cont; bha_on_exit' EXIT

t_ok "both endpoints on db1 after the bring-up" bha_endpoints_on db1
t_ok "route ok on db1" bha_wait 20 "route ok on db1" bha_route_ok db1
t_ok "repmgrd paused (db1 is restarted on purpose below)" bhf_repmgrd_pause
bha_writer_start w 0
t_ok "writer commits through $BHA_APP_PORT" bha_wait 30 "10 commits" bha_writer_has w 10
sw0=$(bhf_switch_wal_count)
tl=$(bhf_orchestrator_status timeline)
is "$(bhf_orchestrator_status switch_wal)" done "the backup host's state: switch_wal=done for timeline $tl"

# ------------------------------------------------------------ 7a. PostgreSQL restarted on the primary
# db1 gets its own copy of the client (helper_path is a postmaster setting: one restart), which
# scenario 6 breaks in every way; the restart itself is fault 7's "PostgreSQL restarted".
hdir=$BHA_DATA/db1/bin
bha_mkdir root:root 0755 "$hdir"
install -o root -g root -m 0755 "$BHA_CLIENT" "$hdir/barman_ha_client"
bha_sql db1 "ALTER SYSTEM SET barman_ha.helper_path = '$hdir/barman_ha_client'" >/dev/null
t0=$(bha_now_ms)
t_ok "db1 restarted (pg_ctl stop -m fast, start)" bhf_pg_restart db1
t_ok "route ok on db1 after the restart" bha_wait 30 "route ok on db1" bha_route_ok db1
conv=$(bhf_since "$t0")
is "$(bha_sql db1 "SHOW barman_ha.helper_path")" "$hdir/barman_ha_client" "db1 uses its own copy of the client"
t_ok "both endpoints still on db1" bha_endpoints_on db1
t_ok "Barman streams from db1" bha_wait 30 "Barman streaming from db1" bha_barman_streams_from db1
t_ok "the writer commits again" bha_wait 30 "5 commits after the restart" bha_writer_has w 5 "$(bha_now_ms)"
is "$(bhf_switch_wal_count)" "$sw0" "no second switch-wal for timeline $tl after the restart"
is "$(bhf_event_count db1 switch_wal)" 0 "db1's events after the restart: no switch_wal step"
bhf_fig 7-restart "converge_ms=$conv (pg_ctl restart to route ok)" "switch_wal_runs=$(( $(bhf_switch_wal_count) - sw0 ))"

# ------------------------------------------------------------ 6. the client broken in four ways
h=$hdir/barman_ha_client
conf=/etc/netns/$(bha_ns db1)/repmgr_barman_ha/client.conf
kh=$BHA_DATA/db1/ssh/known_hosts
nat_before=$(bha_nat show)
# bhf_broken NAME REGEX: after the break, a forced reconcile fails with REGEX; all else stays
bhf_broken() {
	local name=$1 re=$2 log0 t0 ms
	log0=$(bhf_log_size db1); t0=$(bha_now_ms)
	bha_sql db1 "SELECT barman_ha_reconcile()" >/dev/null
	t_ok "$name: status failed, last_error says why" bha_wait 15 "status failed /$re/" bhf_failed_with db1 "$re" ||
		bha_status_row db1 | sed 's/^/# db1: /'
	ms=$(bhf_since "$t0")
	diag "$name: last_error = $(bhf_last_error db1)"
	t_ok "$name: the server log says it too" \
		bhf_log_has db1 "$log0" "$re"
	t_ok "$name: the route_failed event has it" bhf_event_has db1 route_failed "$re" "$t0"
	t_ok "$name: PostgreSQL runs, db1 primary" bha_is_primary db1
	t_ok "$name: commits through $BHA_APP_PORT go on" bha_wait 15 "a commit" bha_writer_has w 1 "$(bha_now_ms)"
	is "$(bha_nat show)" "$nat_before" "$name: the nat table is unchanged"
	bhf_fig "6-$name" "error_ms=$ms"
}
bhf_repaired() {
	local t0=$(bha_now_ms)
	bha_sql db1 "SELECT barman_ha_reconcile()" >/dev/null
	t_ok "$1 repaired: route ok again" bha_wait 15 "route ok on db1" bha_route_ok db1
	bhf_fig "6-$1" "repair_ms=$(bhf_since "$t0") (repair, then barman_ha_reconcile())"
}
mv "$h" "$h.away"
bhf_broken missing 'could not execute helper .*No such file'
mv "$h.away" "$h"
bhf_repaired missing
chmod 0644 "$h"
bhf_broken not-executable 'could not execute helper .*Permission denied'
chmod 0755 "$h"
bhf_repaired not-executable
chmod 0666 "$conf"
bhf_broken config-writable 'is writable by group or others'
chmod 0644 "$conf"
bhf_repaired config-writable
cp "$kh" "$kh.good" && : >"$kh"
bhf_broken host-key-unknown 'ssh to barman@.* failed'
cp "$kh.good" "$kh" && rm -f "$kh.good"
bhf_repaired host-key-unknown
t_ok "after scenario 6: both endpoints on db1" bha_endpoints_on db1

# ------------------------------------------------------------ 7b. the primary worker SIGKILLed
wpid=$(bhf_worker_pid db1)
t0=$(bha_now_ms)
kill -KILL "$wpid"
t_ok "db1 back after the crash restart the SIGKILL causes" bha_wait 60 "db1 primary" bha_is_primary db1
t_ok "a new primary worker runs" bha_wait 30 "a new worker" bhf_new_worker db1 "$wpid"
t_ok "route ok on db1" bha_wait 30 "route ok on db1" bha_route_ok db1
conv=$(bhf_since "$t0")
t_ok "the writer commits again" bha_wait 30 "5 commits" bha_writer_has w 5 "$(bha_now_ms)"
first=$(bha_writer_first_after w "$t0")
t_ok "both endpoints on db1" bha_endpoints_on db1
t_ok "slot $BHA_SLOT on db1" bha_slot_exists db1
t_ok "Barman streams from db1" bha_wait 30 "Barman streaming from db1" bha_barman_streams_from db1
is "$(bhf_switch_wal_count)" "$sw0" "no second switch-wal for timeline $tl after the SIGKILL"
is "$(bhf_orchestrator_status switch_wal) $(bhf_orchestrator_status timeline)" "done $tl" "orchestrator state still switch_wal=done, timeline $tl"
is "$(bhf_event_count db1 switch_wal)" 0 "db1's events: no switch_wal step"
bhf_fig 7-sigkill "converge_ms=$conv (kill to route ok)" "first_commit_ms=$(( ${first:-0} - t0 ))" "switch_wal_runs=$(( $(bhf_switch_wal_count) - sw0 ))"

# ------------------------------------------------------------ 8. slow helper: sshd stopped
# The calls must hang until helper_timeout: ssh may wait for the stopped sshd's banner longer
# than that (the cluster's 3 s would end them first).  The shared connection, made from the
# older configuration, is not used by the next call (the client sees the change).
sed -i 's/^ssh_connect_timeout = .*/ssh_connect_timeout = 60/' "$conf"
# a reload while a call is held up, then the call succeeds: the node it names must survive the reload
sshd_stop
bha_sql db1 "SELECT barman_ha_reconcile()" >/dev/null
t_ok "a helper call is held up by the stopped sshd" bha_wait 5 "the helper running" bhf_helper_running db1
bha_sql db1 "ALTER SYSTEM SET barman_ha.helper_timeout = 6" >/dev/null
bha_sql db1 "SELECT pg_reload_conf()" >/dev/null
sleep 1
sshd_cont
t_ok "sshd continued: the call ends" bha_wait 20 "no helper" bhf_no_helper db1
t_ok "route ok" bha_wait 10 "route ok" bha_route_ok db1
rn=$(bha_sql db1 "SELECT routed_node FROM barman_ha_status()")
t_ok "routed_node is db1 after a reload during the call (got '$rn')" \
	test "$rn" = db1
sleep 0.5
sshd_stop
t0=$(bha_now_ms)
bha_sql db1 "SELECT barman_ha_reconcile()" >/dev/null
t_ok "a helper call hangs on the stopped sshd" bha_wait 5 "the helper running" bhf_helper_running db1
sleep 1.5
# a reload while the worker waits: the new value shows in the timeout's message
bha_sql db1 "ALTER SYSTEM SET barman_ha.helper_timeout = 7" >/dev/null
bha_sql db1 "SELECT pg_reload_conf()" >/dev/null
t_ok "the call is ended by helper_timeout: status failed" bha_wait 20 "status failed, timed out" bhf_failed_with db1 'timed out'
ms=$(bhf_since "$t0")
ev=$(bha_sql db1 "SELECT round(duration_ms) || ' ' || detail FROM barman_ha_events() WHERE event = 'route_failed' AND at >= to_timestamp($t0 / 1000.0) ORDER BY at LIMIT 1")
diag "route_failed: $ev"
d=${ev%% *}
t_ok "bounded by the timeout in force when the call started (6 s): ${d:-?} ms" test "${d:-0}" -ge 5500 -a "${d:-99999}" -le 8500
t_ok "the message names the timeout that bounded the call" grep -q 'after 6 s' <<<"$ev"
# the reload made while the helper hung is in force for the retry: bounded by 7 s
t_ok "the retry after the reload fails too" bha_wait 25 "a second route_failed" \
	bhf_event_count_is db1 route_failed "$t0" 2
retry=$(bha_sql db1 "SELECT round(duration_ms) FROM barman_ha_events() WHERE event = 'route_failed' AND at >= to_timestamp($t0 / 1000.0) ORDER BY at OFFSET 1 LIMIT 1")
t_ok "SIGHUP served while the helper hung: the retry is bounded by the reloaded 7 s (${retry:-?} ms)" \
	test "${retry:-0}" -ge 6500 -a "${retry:-99999}" -le 9500
t_ok "no helper left behind" bha_wait 5 "no helper" bhf_no_helper db1
bhf_fig 8-timeout "call_ms=$d failed_seen_ms=$ms helper_timeout=6 retry_ms=$retry helper_timeout_after_reload=7"

# SIGTERM to the worker while a call hangs
t_ok "the retry hangs again" bha_wait 20 "the helper running" bhf_helper_running db1
wpid=$(bhf_worker_pid db1)
hp=$(bhf_call_pids db1)
t0=$(bha_now_ms)
kill -TERM "$wpid"
t_ok "SIGTERM: the worker exits, bounded (one reconcile interval + grace)" bha_wait 13 "worker $wpid to exit" bha_gone "$wpid"
ms=$(bhf_since "$t0")
t_ok "SIGTERM: the worker exits within 1 s ($ms ms)" \
	test "$ms" -lt 1000
# shellcheck disable=SC2086
t_ok "SIGTERM: the helper and its ssh ($hp) ended with it" bha_wait 3 "helper gone" bha_gone $hp
t_ok "a new worker is started" bha_wait 15 "new worker" bhf_new_worker db1 "$wpid"
t_ok "PostgreSQL runs, db1 primary" bha_is_primary db1
bhf_fig 8-sigterm "worker_exit_ms=$ms"

# pg_ctl stop -m fast while a call hangs
# with barman_ha.retry_interval = 8 s, the wait after the helper shows in the shutdown
bha_sql db1 "ALTER SYSTEM SET barman_ha.retry_interval = 8000" >/dev/null
bha_sql db1 "SELECT pg_reload_conf()" >/dev/null
t_ok "a call hangs again" bha_wait 20 "the helper running" bhf_helper_running db1
t0=$(bha_now_ms)
bha_pg_stop db1 fast
rc=$?
ms=$(bhf_since "$t0")
t_ok "pg_ctl stop -m fast with a hanging helper: rc $rc in $ms ms (bounded: < retry_interval + 3 s)" test "$rc" -eq 0 -a "$ms" -lt 11000
t_ok "pg_ctl stop -m fast with a hanging helper within 3 s ($ms ms)" \
	test "$ms" -lt 3000
bha_sql db1 "ALTER SYSTEM RESET barman_ha.retry_interval" >/dev/null
t_ok "no helper or ssh left in db1" bha_wait 3 "no helper" bhf_no_helper db1
bhf_fig 8-stop "pg_ctl_stop_fast_ms=$ms"
sshd_cont
t0=$(bha_now_ms)
t_ok "db1 starts again" bha_pg_start db1
bha_sql db1 "ALTER SYSTEM RESET barman_ha.helper_timeout" >/dev/null
bha_sql db1 "SELECT pg_reload_conf()" >/dev/null
t_ok "sshd back: route ok on db1" bha_wait 30 "route ok" bha_route_ok db1
t_ok "the writer commits again" bha_wait 30 "5 commits" bha_writer_has w 5 "$(bha_now_ms)"
bhf_fig 8-recover "converge_ms=$(bhf_since "$t0") (start to route ok)"
t_ok "both endpoints on db1" bha_endpoints_on db1
sed -i 's/^ssh_connect_timeout = .*/ssh_connect_timeout = 3/' "$conf"

# ------------------------------------------------------------ 2. backup host "reboot"
# bhf_reboot_backup DELETE_CHAINS: what a reboot leaves of the NAT: an empty nat table, no receive-wal
bhf_reboot_backup() {
	if [ "$BHA_NAT_BACKEND" = nftables ]; then
		bha_in backup nft flush table ip repmgr_barman_ha
		[ "$1" = 1 ] && bha_in backup nft delete table ip repmgr_barman_ha
	else
		bha_in backup iptables-legacy -w -t nat -F
		[ "$1" = 1 ] && bha_in backup iptables-legacy -w -t nat -X
	fi
	# shellcheck disable=SC2046
	kill -KILL $(bhf_ns_pids backup 'pg_receivewal|receive-wal') 2>/dev/null
}
t_ok "Barman streams from db1 before the reboot" bha_wait 30 "Barman streaming" bha_barman_streams_from db1
n0=$(bha_writer_count w)
t0=$(bha_now_ms)
bhf_reboot_backup 0
bha_in backup sysctl -qw net.ipv4.ip_forward=0		# the kernel's default at boot
t_ok "flushed: the app endpoint leads nowhere" bhf_app_port_dead $BHA_APP_PORT
t_ok "the boot unit's nat init (root's: it alone turns forwarding on)" bha_diag_run bha_nat init
t_ok "routes back by the next reconcile (10 s)" bha_wait 20 "both endpoints on db1" bha_endpoints_on db1
ep=$(bhf_since "$t0")
t_ok "Barman streams again" bha_wait 30 "Barman streaming" bha_barman_streams_from db1
st=$(bhf_since "$t0")
t_ok "the writer commits through $BHA_APP_PORT again" bha_wait 20 "a commit" bha_writer_has w 1 "$(bha_now_ms)"
is "$(bha_in backup sysctl -n net.ipv4.ip_forward)" 1 "forwarding back on (root's init)"
t_ok "db1 saw it as a repair" bhf_event_has db1 check 'repairing' "$t0"
bha_events db1 | awk -v t="$(date -d @$((t0 / 1000)) +%T)" '$1 >= t' | sed 's/^/# db1 event: /'
bhf_fig 2-flush "endpoints_ms=$ep barman_streaming_ms=$st"

t0=$(bha_now_ms)
bhf_reboot_backup 1
t_ok "chains deleted: barman_ha_nat show says missing" bhf_chains_missing
sleep 12		# one reconcile interval without nat init: what does the level check do?
if bha_endpoints_on db1; then
	ep=$(bhf_since "$t0"); diag "the level check re-created the chains by itself after $ep ms"
	ok 0 "chains deleted: routes back without nat init"
else
	diag "without nat init: $(bhf_last_error db1)"
	t_ok "chains deleted: the failure is visible in status" bha_route_state_is db1 failed
	t1=$(bha_now_ms)
	t_ok "nat init (as at boot)" bha_diag_run bha_nat init
	t_ok "after nat init: routes back by the next reconcile" bha_wait 20 "both endpoints on db1" bha_endpoints_on db1
	ep="$(bhf_since "$t1") after nat init"
fi
t_ok "Barman streams again" bha_wait 30 "Barman streaming" bha_barman_streams_from db1
t_ok "route ok" bha_wait 20 "route ok" bha_route_ok db1
bhf_fig 2-chains "endpoints_ms=$ep barman_streaming_ms=$(bhf_since "$t0")"

# ------------------------------------------------------------ what the faults cost
t_ok "the writer commits" bha_wait 20 "a commit" bha_writer_has w 1 "$(bha_now_ms)"
bha_writer_stop w
lost=$(bha_writer_lost w db1)
is "$lost" "" "every row the writer saw committed ($(bha_writer_count w)) is on db1"
t_ok "repmgrd unpaused" bhf_repmgrd_unpause
is "$(bhf_switch_wal_count)" "$sw0" "in all of this no second switch-wal for timeline $tl"
miss=$(bhf_wal_report)
is "$miss" 0 "no WAL segment missing from Barman's archive"
t_ok "barman check OK" bha_wait 90 "barman check OK" bha_barman_check_ok || bha_barman_check | grep -v ': OK'
bhf_fig all-20 "rows_committed=$(bha_writer_count w) rows_lost=$(grep -c . <<<"$lost") wal_missing=$miss"

done_testing
