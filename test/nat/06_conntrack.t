#!/bin/bash
# 06_conntrack.t: stale flows after a route.  10,000 flows
# through the app endpoint to db1, then route app to db2: none to db1
# remains, in one call, exit 0; flows already on db2, flows of the other
# endpoint and flows to other ports are kept.  A new owner's claim sweeps
# the barman endpoint; closing the app endpoint sweeps its flows.  A real
# TCP session on the old route gets a reset at its next send.
. "$(dirname "$0")/lib.sh"
setup
net
STATE=$(state_of "$B")
ct() { ip netns exec "$B" conntrack "$@"; }
# flows N PORT REPLY-SRC REPLY-PORT FIRST-SPORT: N established flows app -> BACKUP:PORT
flows() {
	local i
	for ((i = $5; i < $5 + $1; i++)); do
		echo "-I -p tcp -s 10.213.0.20 -d $BACKUP --sport $i --dport $2 -r $3 -q $BACKUP" \
			"--reply-port-src $4 --reply-port-dst $i --state ESTABLISHED -t 600 -u SEEN_REPLY"
	done | ct -R - 2>/dev/null
}
count() { ct -L -p tcp --orig-dst $BACKUP "$@" 2>/dev/null | grep -c '^tcp'; }

# No flows at all: a route skips the dump.
nr "$B" init >/dev/null && nb "$B" claim db1 2 >/dev/null && nb "$B" route db1 >/dev/null || bail "set-up"
ct -F 2>/dev/null
t0=$(date +%s%N); out=$(nr "$B" route db2 app); ms=$((($(date +%s%N) - t0) / 1000000))
is "$out" $'route changed db2\nflows 0' "no flows tracked: route, nothing to sweep (${ms} ms with ip netns exec)"
nr "$B" route db1 app >/dev/null

flows 10000 54322 10.213.0.1 5432 10000	# app -> db1: stale after the switch
flows 100 54322 10.213.0.2 5432 30000	# app -> db2 already
flows 100 54321 10.213.0.1 5432 40000	# barman -> db1: another endpoint
flows 100 22 $BACKUP 22 50000			# ssh to the backup host itself
is "$(count)" 10300 "10,300 flows tracked"
t0=$(date +%s%N); out=$(nr "$B" route db2 app); rc=$?; ms=$((($(date +%s%N) - t0) / 1000000))
is "$rc" 0 "route db2 app with 10,000 stale flows: exit 0"
is "$out" $'route changed db2\nflows 10000' "...10,000 flows removed in one call"
diag "route with 10,000 stale flows: $ms ms ($BACKEND)"
is "$(count --orig-port-dst 54322 --reply-src 10.213.0.1)" 0 "no app flow to db1 remains"
is "$(count --orig-port-dst 54322 --reply-src 10.213.0.2)" 100 "app flows already on db2 kept"
is "$(count --orig-port-dst 54321)" 100 "barman endpoint's flows kept (it did not change)"
is "$(count --orig-port-dst 22)" 100 "flows to other ports kept"

out=$(nb "$B" claim db2 3); is "$out" $'claim recorded db2 3\nflows 100' "a new owner's claim sweeps barman's flows to db1"
is "$(count --orig-port-dst 54321)" 0 "...none left"
is "$(count --orig-port-dst 54322 --reply-src 10.213.0.2)" 100 "app stays on db2 with its flows"
out=$(nb "$B" claim db1 4); is "$out" $'claim recorded db1 4\nflows 100' "claim by db1: the app endpoint closes, its flows go"
is "$(count --orig-port-dst 54322)" 0 "...no app flow left"
is "$(count --orig-port-dst 22)" 100 "...and still nothing else touched"

# A real session on the old route gets a reset at its next send.
tcp_server "$S1" db1
tcp_server "$S2" db2
sleep 0.3
nb "$B" route db1 app >/dev/null
mkfifo "$T/go"
ip netns exec "$C" $PY -c '
import socket, sys, time
c = socket.create_connection((sys.argv[1], 54322), timeout=3)
print(c.recv(100).decode().split()[0], flush=True)
sys.stdin.readline()
t0 = time.time()
try:
    c.sendall(b"ping"); c.settimeout(3); r = c.recv(100)
    print("got %r" % r)
except OSError as e:
    print("%s after %d ms" % (type(e).__name__, (time.time() - t0) * 1000))' $BACKUP >"$T/sess" <"$T/go" &
PIDS+=($!)
exec 8>"$T/go"
for i in $(seq 100); do [ -s "$T/sess" ] && break; sleep 0.05; done	# its first line, 5 s at most
is "$(head -1 "$T/sess")" db1 "a session through the app endpoint on db1"
out=$(nb "$B" claim db2 5); is "$out" $'claim recorded db2 5\nflows 1' "claim by db2: the session's flow is removed"
echo >&8; exec 8>&-
wait "${PIDS[2]}"
like "$(tail -1 "$T/sess")" "^ConnectionResetError after [0-9]+ ms" "its next send gets a reset at once, not a hang"
plan $TAP_N
exit $((TAP_FAIL > 0))
