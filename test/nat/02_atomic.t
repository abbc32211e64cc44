#!/bin/bash
# 02_atomic.t: 1,000 route switches between db1 and db2 while two readers
# sample the endpoints: the backend's own listing tool, and real TCP
# connections from the backup host to both endpoints (lock-free: what a
# client sees).  No sample may find an endpoint without its rule (a refused
# connection, or a listing without both targets); the last switch wins.
. "$(dirname "$0")/lib.sh"
plan 7
setup
net
tcp_server "$S1" db1
tcp_server "$S2" db2
sleep 0.3
nr "$B" init >/dev/null && nr "$B" route db1 >/dev/null; ok $? "init and route db1"
is "$(tcp_ask "$B" 54321)" "db1 $BACKUP" "the barman endpoint reaches db1"

# Reader 1: connections to both endpoints, ~500 a second; "refused" means no rule.
ip netns exec "$B" $PY -c '
import socket, sys, os, time
n = refused = other = 0
while not os.path.exists(sys.argv[2] + "/stop"):
    time.sleep(0.002)	# each connection leaves a flow every route sweeps
    for port in (54321, 54322):
        n += 1
        try:
            c = socket.create_connection((sys.argv[1], port), timeout=1); c.close()
        except ConnectionRefusedError: refused += 1
        except OSError: other += 1
open(sys.argv[2] + "/tcp", "w").write("%d %d %d\n" % (n, refused, other))' $BACKUP "$T" &
PIDS+=($!)
# Reader 2: the backend's listing; a sample without both targets is bad.
( n=0 bad=0
  while [ ! -e "$T/stop" ]; do
	r=$(readback "$B"); n=$((n + 1))
	[[ $r =~ ^barman\ 10\.213\.0\.[12]:5432$'\n'app\ 10\.213\.0\.[12]:5432$ ]] || bad=$((bad + 1))
  done
  echo "$n $bad" >"$T/tool" ) &
PIDS+=($!)
sleep 0.3
t0=$(date +%s%N)
ip netns exec "$B" bash -c 'fail=0
	for i in $(seq 500); do
		"$1" route db2 >/dev/null 2>>"$2/switch.err" || fail=$((fail + 1))
		"$1" route db1 >/dev/null 2>>"$2/switch.err" || fail=$((fail + 1))
	done
	exit $fail' switcher "$NAT" "$T"
is "$?" 0 "1,000 switches, every one exit 0"
[ -s "$T/switch.err" ] && diag "$(sort "$T/switch.err" | uniq -c | head -5)"
ms=$((($(date +%s%N) - t0) / 1000000))
diag "1,000 switches in $ms ms ($((ms * 1000 / 1000)) us each, with flow sweeps, $BACKEND)"
touch "$T/stop"
wait "${PIDS[2]}" "${PIDS[3]}"
read -r n refused other <"$T/tcp"
read -r tn tbad <"$T/tool"
diag "tcp reader: $n connections, $other reset or timed out (flow sweeps); tool reader: $tn listings"
ok $((n < 1000)) "the TCP reader sampled throughout ($n connections)"
is "$refused" 0 "no connection refused (no moment without a DNAT rule)"
is "$tbad" 0 "no listing without both targets ($tn listings)"
is "$(readback "$B")" $'barman 10.213.0.1:5432\napp 10.213.0.1:5432' "the last switch wins"
exit $((TAP_FAIL > 0))
