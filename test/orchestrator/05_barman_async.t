#!/bin/bash
# 05_barman_async.t: Barman asynchronous (barman_receive_wal not in
# synchronous_standby_names) and the cost of barman_stop.
#   - the catch-up accepts the WAL sent to an asynchronous Barman (its
#     flush_lsn moves only at a segment's end): no 20 s wait, no failure;
#   - barman_stop with nothing running scans /proc and starts no Python;
#   - a running receive-wal is ended by pid (SIGINT, as --stop does);
#   - a pg_receivewal hanging on a vanished host (link cut) is ended within
#     receive_wal_stop_grace_ms (200 ms) + SIGKILL, not --stop's 10 s;
#   - when a Barman step fails, switch_wal says which one.
# Every barman_stop time is printed (diag) for the report.
. "$(dirname "$0")/lib.sh"
plan 16
hosts 1
S1_VETH=v${ID}2
barman_setup "$B" 2 "orchestrator test, asynchronous Barman"

pg_up 1 "$S1"
psql1() { ip netns exec "$S1" runuser -u postgres -- "$PGBIN/psql" -X -At -h "$T/pg1" -d postgres "$@"; }
psql1 -c "SELECT pg_create_physical_replication_slot('barman', true)" >/dev/null || bail "slot"
natroot "$B" init >/dev/null && natroot "$B" route db1 >/dev/null || bail "route"

ours() { local p; for p; do [ "$(ip netns identify "$p" 2>/dev/null)" = "$B" ] && echo "$p"; done; }
barman_pids() { ours $(pgrep -u barman -f "pg_receivewal|receive-wal"); }
receivewal_pid() { ours $(pgrep -u barman -x pg_receivewal); }
trap 'ip -n "$BR" link set "$S1_VETH" up 2>/dev/null; for p in $(barman_pids); do kill -9 $p; done; cleanup' EXIT
stepms() { sed -n "s/^step $1 [a-z]* \([0-9.]*\) .*/\1/p" <<<"$2" | head -n 1; }
reset() { ip netns exec "$B" "$ORCH" barman reset 2>"$T/err"; }

# 1. nothing runs: no Python at all in barman_stop; Barman comes up asynchronous.
out=$(reset); rc=$?
diag "$(echo "$out" | sed 's/^/  /')"
is $rc 0 "barman reset exits 0 with an asynchronous Barman ($(tail -n 1 "$T/err"))"
like "$out" "step barman_stop ok [0-9.]+ nothing running" "barman_stop: nothing running, nothing started"
diag "barman_stop, nothing running: $(stepms barman_stop "$out") ms"
is "$(psql1 -c "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'barman_receive_wal'")" async \
	"Barman is an asynchronous standby"

# 2. WAL inside a segment (flush_lsn stays behind), receive-wal running: stopped by pid,
#    caught up on sent_lsn at once.
psql1 -c "CREATE TABLE t AS SELECT g FROM generate_series(1, 20000) g" >/dev/null
psql1 -c "INSERT INTO t VALUES (1)" >/dev/null
sleep 1
lag=$(psql1 -c "SELECT flush_lsn || ' < ' || sent_lsn FROM pg_stat_replication WHERE application_name = 'barman_receive_wal' AND flush_lsn < sent_lsn")
diag "before the reset, Barman's flush_lsn behind sent_lsn: ${lag:-no}"
out=$(reset); rc=$?
diag "$(echo "$out" | sed 's/^/  /')"
is $rc 0 "second reset exits 0 ($(tail -n 1 "$T/err"))"
like "$out" "step barman_stop ok [0-9.]+ ended [1-9] process" "barman_stop ended the running receive-wal by pid"
like "$out" "step barman_caught_up ok [0-9.]+ async: sent_lsn" "caught up on sent_lsn (asynchronous Barman)"
ms=$(stepms barman_caught_up "$out")
ok $(( ${ms%.*} < 5000 ? 0 : 1 )) "catch-up took $ms ms, not catchup_timeout (20 s)"
diag "barman_stop, receive-wal running: $(stepms barman_stop "$out") ms"

# 3. the host vanishes (cable cut): pg_receivewal hangs on the dead connection.
old=$(receivewal_pid)
ip -n "$BR" link set "$S1_VETH" down
psql1 -c "INSERT INTO t VALUES (2)" >/dev/null		# data in flight to nobody
sleep 1
out=$(reset); rc=$?
diag "$(echo "$out" | sed 's/^/  /')"
like "$out" "step barman_stop ok [0-9.]+ ended [1-9] process" "barman_stop ended the hanging pg_receivewal"
ms=$(stepms barman_stop "$out")
ok $(( ${ms%.*} < 1000 ? 0 : 1 )) "...in $ms ms (receive_wal_stop_grace_ms 200, then SIGKILL; --stop alone waits 10 s)"
diag "barman_stop, pg_receivewal hanging on a vanished host: $ms ms"
ok $(kill -0 "$old" 2>/dev/null; [ $? -ne 0 ]; echo $?) "the hanging pg_receivewal ($old) is gone"
ok $([ $rc -ne 0 ]; echo $?) "the reset fails while the node is unreachable (exit $rc)"
ip -n "$BR" link set "$S1_VETH" up
sleep 0.5

# 4. promote with an asynchronous Barman: all steps ok, switch_wal runs.
out=$(hh "$B" promote db1 1 2>"$T/err"); rc=$?
diag "$(echo "$out" | sed 's/^/  /')"
is $rc 0 "promote with an asynchronous Barman exits 0 ($(tail -n 1 "$T/err"))"
like "$out" "step switch_wal ok" "switch_wal runs"

# 5. a failed Barman step: switch_wal says which one (not "not streaming").
out=$(hh "$B" promote db2 2 2>"$T/err"); rc=$?		# db2 does not exist: nothing answers
diag "$(echo "$out" | sed 's/^/  /')"
is $rc 1 "promote to an unreachable node: exit 1"
like "$out" "step switch_wal skipped [0-9.]+ barman_(start|caught_up) failed" "switch_wal names the failed step"
ok $([[ $out != *"is not streaming"* ]]; echo $?) "no false 'receive-wal is not streaming'"
exit $((TAP_FAIL > 0))
