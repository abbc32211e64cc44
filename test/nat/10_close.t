#!/bin/bash
# 10_close.t: close NODE, the backup host's own answer to a silent primary
# host: the app endpoint closed while NODE is the recorded node, the barman
# endpoint untouched, the app endpoint's flows swept; idempotent; refused
# (3) for a node that is not recorded, root included, so a watcher deciding
# on stale information cannot close a new primary's endpoint; a SYN to the
# closed endpoint gets a reset at once; route NODE app opens it again.
. "$(dirname "$0")/lib.sh"
setup
net
tcp_server "$S1" db1
tcp_server "$S2" db2
sleep 0.3
nr "$B" init >/dev/null && nb "$B" claim db1 2 >/dev/null && nb "$B" route db1 app >/dev/null || bail "set-up"

is "$(tcp_ask "$C" 54322)" "db1 $BACKUP" "app endpoint reaches db1"
# a session held open through the app endpoint: the close sweeps its flow
ip netns exec "$C" $PY -c '
import socket, sys, time
s = socket.create_connection((sys.argv[1], 54322)); s.recv(100)
try:
    for _ in range(150):
        s.send(b"x"); time.sleep(0.1)
    print("kept")
except OSError as e:
    print(e.strerror)' "$BACKUP" >"$T/session" &
PIDS+=($!)
sleep 0.5
out=$(nb "$B" close db1); ok $? "barman: close db1 while db1 is recorded"
like "$out" $'^close changed db1\nflows [1-9]$' "...changed, its flows swept"
for _ in $(seq 20); do [ -s "$T/session" ] && break; sleep 0.1; done
is "$(cat "$T/session")" "Connection reset by peer" "...the session held open gets a reset at its next send"
is "$(readback "$B")" $'barman 10.213.0.1:5432\napp closed' "app endpoint closed, barman endpoint untouched"
out=$(nb "$B" close db1); is "$out" $'close unchanged db1\nflows 0' "close again: unchanged"
t0=$(date +%s%N); out=$(tcp_ask "$C" 54322); ms=$((($(date +%s%N) - t0) / 1000000))
is "$out" "Connection refused" "a connect to the closed app endpoint: refused"
ok $((ms > 1000)) "...at once (${ms} ms with ip netns exec), no SYN retransmitted"
is "$(tcp_ask "$C" 54321)" "db1 $BACKUP" "the barman endpoint still reaches db1"

snap=$(readback "$B")
nb "$B" close db2 2>"$T/err" >/dev/null; is $? 3 "barman: close db2 while db1 is recorded: refused (3)"
is "$(tail -n 1 "$T/err")" "barman_ha_nat: db2 is not the recorded node (db1)" "...one line says why"
nr "$B" close db2 2>/dev/null >/dev/null; is $? 3 "root: close db2: refused (3) as well"
is "$(readback "$B")" "$snap" "...no rule changed"
nb "$B" close 2>/dev/null; is $? 2 "close without a node: usage (2)"
nb "$B" close db1 app 2>/dev/null; is $? 2 "close with an endpoint: usage (2)"
like "$(nb "$B" help)" "close NODE" "help names close"

out=$(nb "$B" route db1 app); is "$out" $'route changed db1\nflows 0' "route db1 app reopens it"
is "$(tcp_ask "$C" 54322)" "db1 $BACKUP" "app endpoint reaches db1 again"
# a claim by db2 records it: db1 can no longer be closed, db2 can
nb "$B" claim db2 3 >/dev/null && nb "$B" route db2 app >/dev/null; ok $? "db2 claims, its app endpoint opens"
nb "$B" close db1 2>/dev/null >/dev/null; is $? 3 "close db1 after db2's claim: refused (3)"
is "$(tcp_ask "$C" 54322)" "db2 $BACKUP" "...the app endpoint still reaches db2"
plan $TAP_N
exit $((TAP_FAIL > 0))
