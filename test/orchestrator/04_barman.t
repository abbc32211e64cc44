#!/bin/bash
# 04_barman.t: `barman reset` and promote's Barman steps against a real
# Barman 3.4 streaming from a real PostgreSQL through the barman endpoint,
# with Barman as the synchronous standby.  Checks: receive-wal is (re)started
# by the orchestrator itself (no barman cron), Barman catches up, switch-wal runs,
# a synchronous commit completes afterwards; a stray pg_receivewal is ended;
# promote's level check restarts a dead receive-wal without a second
# switch-wal; every promote keeps a standing receive-wal that a restart tells
# "go", and Barman's own `barman receive-wal` takes its place when it does
# not take "go" or cannot stand (barman_path a wrapper), with no gap in
# Barman's WAL.  Barman runs as barman, never as root.
. "$(dirname "$0")/lib.sh"
plan 38
hosts 1
barman_setup "$B" 5 "orchestrator test" "keepalives_idle=5 keepalives_interval=2 keepalives_count=3"

pg_up 1 "$S1"
psql1() { ip netns exec "$S1" runuser -u postgres -- "$PGBIN/psql" -X -At -h "$T/pg1" -d postgres "$@"; }
psql1 -c "SELECT pg_create_physical_replication_slot('barman', true)" >/dev/null || bail "slot"
psql1 -c "ALTER SYSTEM SET synchronous_standby_names = 'barman_receive_wal'" -c "SELECT pg_reload_conf()" >/dev/null
natroot "$B" init >/dev/null && natroot "$B" route db1 >/dev/null || bail "route"

# Barman's processes in OUR backup namespace only (other clusters may run
# Barman on this machine too), ended at exit by pid.
ours() { local p; for p; do [ "$(ip netns identify "$p" 2>/dev/null)" = "$B" ] && echo "$p"; done; }
barman_pids() { ours $(pgrep -u barman -f "pg_receivewal|receive-wal"); }
receivewal_pid() { ours $(pgrep -u barman -x pg_receivewal); }
trap 'for p in $(barman_pids); do kill $p; kill -CONT $p; done; cleanup' EXIT

out=$(ip netns exec "$B" "$ORCH" barman reset 2>"$T/err"); rc=$?
diag "$(echo "$out" | sed 's/^/  /')"
[ $rc -eq 0 ] || diag "$(tail -n 20 "$T/barman/barman.log" 2>&1)"
is $rc 0 "barman reset exits 0 ($(tail -n 1 "$T/err"))"
like "$out" "step barman_stop ok" "barman_stop step"
like "$out" "step barman_start ok [0-9.]+ receive-wal started pid" "receive-wal started by the orchestrator"
like "$out" "step barman_caught_up ok [0-9.]+ sync: flush_lsn" "Barman caught up (synchronous: on flush_lsn)"
like "$out" "step switch_wal ok" "switch-wal done"
owner=$(ps -o user= -p "$(receivewal_pid)")
is "$owner" barman "pg_receivewal runs as barman"
is "$(psql1 -c "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'barman_receive_wal'")" sync \
	"Barman is the synchronous standby"
timeout 10 ip netns exec "$S1" runuser -u postgres -- "$PGBIN/psql" -X -At -h "$T/pg1" -d postgres \
	-c "CREATE TABLE t AS SELECT 1 AS x" >/dev/null
ok $? "a synchronous commit completes"

# A stray pg_receivewal (its barman parent gone) is ended and replaced.
[ $rc -eq 0 ] || bail "barman reset does not work here"
old=$(receivewal_pid)
parent=$(ps -o ppid= -p "$old" | tr -d ' ')
kill -9 "$parent"
out=$(ip netns exec "$B" "$ORCH" barman reset 2>"$T/err"); rc=$?
is $rc 0 "second reset exits 0 ($(tail -n 1 "$T/err"))"
like "$out" "ended [1-9] process" "the orphaned pg_receivewal was ended"
new=$(receivewal_pid)
ok $(( ${new:-0} == old || ${new:-0} == 0 )) "a new pg_receivewal streams ($old -> $new)"

# promote's step lines come in the order of its table (status --steps)
order=$(hh "$B" status --steps | sed -n 's/^[0-9]*\. [a-z_]* (step lines: \([a-z_ ]*\)).*/\1/p' | tr '\n' ' ')
in_order() {			# in_order PROMOTE-OUTPUT: its step lines are a subsequence of $order
	local want=" $order " name
	for name in $(sed -n 's/^step \([a-z_]*\) .*/\1/p' <<<"$1" | grep -vx check); do
		[[ $want == *" $name "* ]] || return 1
		want=${want#*" $name "}; want=" $want"
	done
}
like "$order" "^claim_check fence route_barman barman_stop barman_fork route_app barman_start barman_caught_up checkpoint switch_wal state $" \
	"status --steps: the table's step lines"
out=$(hh "$B" promote db1 1 2>&1) || bail "promote"
ok "$(in_order "$out"; echo $?)" "a first claim's step lines follow the table ($(sed -n 's/^step \([a-z_]*\) .*/\1/p' <<<"$out" | tr '\n' ' '))"

# promote's level check: receive-wal dead, same claim: restarted, no switch-wal.
kill $(barman_pids) ; sleep 0.5
out=$(hh "$B" promote db1 1 2>"$T/err"); rc=$?
is $rc 0 "same claim with receive-wal dead: exit 0 ($(tail -n 1 "$T/err"))" ||
	diag "$out" "$(tail -n 8 "$T/barman/barman.log")"
like "$out" "repairing: receive-wal" "the check restarts receive-wal"
ok "$(in_order "$out"; echo $?)" "...its repair follows the table too"
ok $([[ $out != *switch_wal* ]]; echo $?) "no second switch-wal for the same timeline"
is "$(grep -c "^streaming_dir=$T/barman/pg/streaming\$" "$T/ostate-$B/orchestrator.state")" 1 \
	"the orchestrator state keeps Barman's streaming folder (no show-server per check)"
out=$(hh "$B" promote db1 1); like "$out" '^step check ok [0-9.]+ routed$' "then the check is quiet again"
# The standing receive-wal: every promote keeps one (Barman imported, no stream),
# barman_stop leaves it alone, a restart tells it "go" and the next promote
# stands up another.
fifo=$T/ostate-$B/receive-wal.pg.fifo
# (its stdin compared by device and inode: in a chroot, /proc names a file opened in another
# `ip netns exec`'s mount namespace from outside the chroot)
standing() { local p; for p in $(ours $(pgrep -u barman -x python3)); do [ "$(stat -L -c %d:%i "/proc/$p/fd/0" 2>/dev/null)" = "$(stat -c %d:%i "$fifo")" ] && echo "$p"; done; }
s1=$(standing)
is "$(echo $s1 | wc -w) $(stat -c '%F %U %a' "$fifo")" "1 fifo barman 600" \
	"one standing receive-wal, its stdin barman's FIFO (0600)"
streams=$(for p in $(barman_pids); do [ "$p" = "$s1" ] || echo "$p"; done)
kill $streams; sleep 0.5
out=$(hh "$B" promote db1 1 2>"$T/err")
like "$out" "step barman_start ok [0-9.]+ receive-wal started warm pid ${s1:-none}" \
	"the repair's restart tells the standing one \"go\""
like "$out" "step barman_caught_up ok" "...and it streams: Barman's own receive-wal"
ok $(tr '\0' ' ' <"/proc/${s1:-0}/cmdline" 2>/dev/null | grep -q 'import barman.cli'; echo $?) \
	"...in the standing process itself: barman.cli's main and receive_wal hold in Barman $(barman --version 2>&1 | head -n 1 | cut -d' ' -f1)"
hh "$B" promote db1 1 >/dev/null 2>&1
s2=$(standing)
ok $([ -n "$s2" ] && [ "$s2" != "$s1" ]; echo $?) "the next promote stands up another ($s1 -> $s2)"
# A failed switch-wal is what the last line names (the worker's last_error),
# not Barman's stream, which runs: a level check with switch-wal pending, and
# a barman_path whose switch-wal fails.
sed -i 's/^switch_wal=done$/switch_wal=pending/' "$T/ostate-$B/orchestrator.state"
printf '#!/bin/sh\nfor a; do [ "$a" = switch-wal ] && { echo "switch-wal refused"; exit 1; }; done\nexec /usr/bin/barman "$@"\n' \
	>"$T/barman-switch-fails"
chmod 755 "$T/barman-switch-fails"
addconf "$B" orchestrator.conf "barman_path = $T/barman-switch-fails"
out=$(hh "$B" promote db1 1 2>"$T/err"); rc=$?
sed -i '/^barman_path = /d' "/etc/netns/$B/repmgr_barman_ha/orchestrator.conf"
is $rc 1 "a level check whose switch-wal fails: exit 1"
like "$(tail -n 1 "$T/err")" "promote db1: endpoints moved and Barman streams from it, but switch_wal failed" \
	"...its last line names switch_wal ($(tail -n 1 "$T/err"))"

# Barman's own start in the shortcut's place.  WAL is written while nothing
# streams (synchronous_commit = local: Barman is the synchronous standby), so
# the restarted stream has to fetch it.
ddl() { psql1 -c "SET synchronous_commit = local" -c "INSERT INTO t SELECT 2" -c "SELECT pg_switch_wal()" >/dev/null; }
gone() { [ ! -d "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status"; }
# 1. the standing one does not take "go" (stopped): after 1.5 s Barman's own
# start joins it, and a stopped one is ended
kill -STOP "$s2"
kill $(for p in $(barman_pids); do [ "$p" = "$s2" ] || echo "$p"; done); sleep 0.5
ddl
out=$(hh "$B" promote db1 1 2>"$T/err")
like "$out" "step barman_start ok [0-9.]+ receive-wal started pid [0-9]+; the standing pid $s2 was stopped: ended" \
	"a standing one that does not take \"go\": Barman's own receive-wal in its place"
like "$out" "step barman_caught_up ok [0-9.]+ sync: flush_lsn" "...which streams and catches up"
ok $(gone "$s2"; echo $?) "...and the stopped one is ended"
# 2. barman_path a wrapper: its interpreter is not Python, nothing can stand
printf '#!/bin/sh\nexec %s "$@"\n' "$(command -v barman)" >"$T/bin/barman-wrapper"
chmod 755 "$T/bin/barman-wrapper"
addconf "$B" orchestrator.conf "barman_path = $T/bin/barman-wrapper"
kill $(barman_pids); sleep 0.5
ddl
out=$(hh "$B" promote db1 1 2>"$T/err")
like "$out" "step barman_start ok [0-9.]+ receive-wal started pid [0-9]+[^;0-9]" \
	"barman_path a wrapper: Barman's own receive-wal, started at once"
like "$out" "step barman_caught_up ok [0-9.]+ sync: flush_lsn" "...which streams and catches up"
is "$(standing)" "" "...and no standing receive-wal"
# Barman's segments of timeline 1, streaming/ and wals/: each follows the one before
segs=$(find "$T/barman/pg/streaming" "$T/barman/pg/wals" -type f -printf '%f\n' |
	grep -E '^00000001[0-9A-F]{16}(\.partial)?$' | sort)
gaps=$(prev=; for n in $segs; do s=$((16#${n:8:8} * 256 + 16#${n:16:8}))
	[ -z "$prev" ] || [ "$s" -eq $((prev + 1)) ] || echo "$n"; prev=$s; done)
ok $([ -z "$gaps" ] && [ "$(wc -w <<<"$segs")" -ge 5 ]; echo $?) \
	"no gap in Barman's WAL: $(wc -w <<<"$segs") segments, one after the other${gaps:+ (gap before $gaps)}"
like "$(ip netns exec "$B" runuser -u barman -- barman check pg 2>&1)" "receive-wal running: OK" \
	"barman check: receive-wal running"
# The worker's timeout: SIGTERM while switch-wal runs ends the orchestrator and
# switch-wal with it, with one last line; receive-wal (own session) stays.
# (a forced switch-wal is quick: SIGTERM as soon as its process runs.)
ip netns exec "$B" "$ORCH" barman reset >"$T/out" 2>"$T/err" &
hp=$!
for _ in $(seq 300); do [ -n "$(ours $(pgrep -u barman -f switch-wal))" ] && break; sleep 0.05; done
kill -TERM $hp; wait $hp; rc=$?
is $rc 1 "SIGTERM during switch-wal: exit 1"
is "$(tail -n 1 "$T/err")" "barman_ha_orchestrator: terminated by signal" "...with one clear last line"
sleep 0.5
is "$(ours $(pgrep -u barman -f switch-wal))" "" "no switch-wal left behind"
ok $([ -n "$(receivewal_pid)" ]; echo $?) "receive-wal keeps streaming"
exit $((TAP_FAIL > 0))
