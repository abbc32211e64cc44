#!/bin/bash
# 04_fence.t: claim, the fencing decision, as the barman user.  A lower
# timeline, or another node on the recorded timeline, is refused (3) and
# changes nothing; the same node and timeline is "held" and repairs only
# the barman endpoint; a new owner gets the barman endpoint and the app
# endpoint closes if it led elsewhere; --force is root's; one winner per
# race.  route by a non-root caller only for the recorded node, checked
# under the state lock.
. "$(dirname "$0")/lib.sh"
setup
mkns NS b
conf "$NS"
STATE=$(state_of "$NS")
rb() { readback "$NS"; }
nb "$NS" init >/dev/null

out=$(nb "$NS" claim db1 2); ok $? "claim db1 2 on a fresh host"
is "$out" $'claim recorded db1 2\nflows 0' "...recorded"
is "$(cat "$STATE")" $'node=db1\ntimeline=2' "state records db1, 2"
is "$(stat -c '%U %a' "$STATE")" "root 644" "state file root's, 0644"
is "$(rb)" $'barman 10.213.0.1:5432\napp closed' "barman on db1, app closed (the orchestrator opens it)"
out=$(nb "$NS" claim db1 2); is "$out" $'claim held db1 2\nflows 0' "same claim again: held"
is "$(rb)" $'barman 10.213.0.1:5432\napp closed' "held leaves a closed app endpoint closed"
nb "$NS" route db1 app >/dev/null; is "$(rb)" $'barman 10.213.0.1:5432\napp 10.213.0.1:5432' "route db1 app opens it"
nb "$NS" claim db1 2 >/dev/null; is "$(rb)" $'barman 10.213.0.1:5432\napp 10.213.0.1:5432' "held leaves an open app endpoint open"

snap=$(rb); st=$(cat "$STATE")
nb "$NS" claim db2 1 2>"$T/err" >/dev/null; is $? 3 "db2 on a lower timeline: fenced (3)"
is "$(tail -n 1 "$T/err")" "barman_ha_nat: fenced: db2 on timeline 1 is refused (the endpoints are db1's since timeline 2)" \
	"one clear stderr line"
nb "$NS" claim db2 2 2>/dev/null; is $? 3 "db2 on the same timeline: fenced (3)"
nb "$NS" claim db1 1 2>/dev/null; is $? 3 "db1 itself on a lower timeline: fenced (3)"
is "$(rb)" "$snap" "fenced claims changed no rule"
is "$(cat "$STATE")" "$st" "...and not the state"

# A held claim repairs the barman endpoint only.
nr "$NS" route db2 barman >/dev/null
out=$(nb "$NS" claim db1 2); is "$out" $'claim held db1 2\nflows 0' "held after root moved barman away"
is "$(rb)" $'barman 10.213.0.1:5432\napp 10.213.0.1:5432' "...barman repaired, app untouched"

# A new owner: barman to it, app closed because it led to db1.
out=$(nb "$NS" claim db2 3); is "$out" $'claim recorded db2 3\nflows 0' "db2 on a higher timeline: recorded"
is "$(rb)" $'barman 10.213.0.2:5432\napp closed' "barman on db2, app closed (it led to db1)"
is "$(cat "$STATE")" $'node=db2\ntimeline=3' "state records db2, 3"
nb "$NS" route db2 app >/dev/null
out=$(nb "$NS" claim db2 4); is "$out" $'claim recorded db2 4\nflows 0' "db2 again on timeline 4: recorded"
is "$(rb)" $'barman 10.213.0.2:5432\napp 10.213.0.2:5432' "app stays open: it already led to db2"

# A reboot without init: the held claim repairs barman; app stays closed.
if iptables_only; then ip netns exec "$NS" iptables-legacy -t nat -F; ip netns exec "$NS" iptables-legacy -t nat -X
else ip netns exec "$NS" nft delete table ip repmgr_barman_ha; fi
out=$(nb "$NS" claim db2 4); ok $? "held claim after a flush exits 0"
is "$(rb)" $'barman 10.213.0.2:5432\napp closed' "...barman back, app closed"

nb "$NS" claim db1 4 --force 2>/dev/null; is $? 2 "--force from barman: usage error (2)"
out=$(nr "$NS" claim db1 3 --force); is "$out" $'claim recorded db1 3\nflows 0' "root's --force: db1 on a lower timeline"
is "$(cat "$STATE")" $'node=db1\ntimeline=3' "...recorded"

# barman may route only the recorded node.
nb "$NS" route db1 >/dev/null; snap=$(rb); st=$(cat "$STATE")
nb "$NS" route db2 2>"$T/err" >/dev/null; is $? 3 "barman: route db2 while db1 holds: refused (3)"
like "$(tail -n 1 "$T/err")" "db2 is not the recorded node \(db1\)" "...says why"
is "$(rb)" "$snap" "...no rule changed"
# Checked under the lock: the test holds the lock, a route for db1 waits;
# meanwhile the state moves to db2 (as a concurrent claim would); when the
# lock is free the route must see db2 and refuse.
exec 9>"$STATE.lock"; flock 9
nr "$NS" route db2 >/dev/null 2>"$T/err" 9>&-; is "$? $(tail -n 1 "$T/err")" \
	"1 barman_ha_nat: $STATE.lock still held after 2 s (another claim or route is running)" \
	"root's route waits for the lock too, at most lock_timeout (1)"
( nb "$NS" route db1 app >/dev/null 2>"$T/err7"; echo $? >"$T/rc7" ) 9>&- &
PIDS+=($!)
sleep 0.5
printf 'node=db2\ntimeline=5\n' >"$STATE.new" && mv "$STATE.new" "$STATE"
exec 9>&-
wait "${PIDS[0]}"
is "$(cat "$T/rc7")" 3 "the waiting route saw the state written under the lock: refused (3)"
is "$(rb)" "$snap" "...nothing changed"
nb "$NS" claim db2 5 >/dev/null && nb "$NS" route db2 >/dev/null; ok $? "db2 holds and routes"

# Two nodes racing for the same new timeline: exactly one wins, every time.
bad=0
for tl in $(seq 6 25); do
	nb "$NS" claim db1 $tl >/dev/null 2>&1 & p1=$!
	nb "$NS" claim db2 $tl >/dev/null 2>&1 & p2=$!
	wait $p1; r1=$?; wait $p2; r2=$?
	[ "$r1$r2" = 03 ] || [ "$r1$r2" = 30 ] || { bad=$((bad + 1)); diag "timeline $tl: exits $r1 $r2"; }
done
is $bad 0 "20 races for one timeline: one winner, one fenced, each time"
like "$(cat "$STATE")" $'^node=db[12]\ntimeline=25$' "the state holds the last winner"

# A state file someone else could write is not trusted.
chmod 666 "$STATE"; nb "$NS" claim db2 40 >/dev/null 2>"$T/err"; is $? 1 "group/other-writable state: refused (1)"
like "$(tail -n 1 "$T/err")" "untrusted: .*state is writable by group or others" "...says why"
chmod 644 "$STATE"; chown barman "$STATE"
nb "$NS" claim db2 40 >/dev/null 2>/dev/null; is $? 1 "state owned by barman: refused (1)"
chown root "$STATE"; printf 'node=db1\n' >"$STATE"
nb "$NS" claim db2 40 >/dev/null 2>"$T/err"; is "$? $(tail -n 1 "$T/err")" \
	"1 barman_ha_nat: $STATE is corrupt (no node= or timeline= line)" "a corrupt state: refused (1), says why"
# the state file or its lock replaced by a FIFO: a clear error at once, no hang.
for f in "$STATE" "$STATE.lock"; do
	rm -f "$f"; mkfifo -m 644 "$f"
	t0=$(date +%s%N); nb "$NS" claim db2 40 >/dev/null 2>"$T/err"; rc=$?; ms=$((($(date +%s%N) - t0) / 1000000))
	is "$rc $(tail -n 1 "$T/err")" "1 barman_ha_nat: untrusted: $f is not a regular file" \
		"$(basename "$f") is a FIFO: refused (1), says why"
	ok $((ms > 1500)) "...at once (${ms} ms), no hang"
	rm -f "$f"
done
printf 'node=db1\ntimeline=50\n' >"$STATE"
plan $TAP_N
exit $((TAP_FAIL > 0))
