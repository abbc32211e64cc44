#!/bin/bash
# 01_promote.t: barman_ha_orchestrator's promote and its fencing, through
# barman_ha_nat, as the barman user.  Steps in order; a lower timeline, or
# another node on the same timeline, is refused with exit 3 and changes
# nothing; the same node and timeline is the cheap level check, which also
# repairs a flushed table; two nodes racing for one timeline: one winner.
# Then hostile requests through SSH_ORIGINAL_COMMAND (the forced command).
. "$(dirname "$0")/lib.sh"
plan 33
hosts 0
STATE=$T/state-$B/state
snap() { echo "$(endpoints "$B")|$(cat "$STATE" 2>/dev/null)"; }

out=$(hh "$B" promote db1 2 2>"$T/err"); ok $? "promote db1 2 on a fresh host ($(tail -n 1 "$T/err"))"
like "$out" $'^step claim_check skipped [0-9.]+ claim_check = off\nstep fence ok [0-9.]+ claim recorded db1 2;flows 0\nstep barman_reset skipped .*\nstep route_app ok [0-9.]+ route changed db1;flows 0\nstep state ok [0-9.]+ db1 timeline 2 switch_wal done$' \
	"step lines in order"
is "$(endpoints "$B")" $'barman db1\napp db1' "both endpoints on db1"
is "$(stat -c '%U %a' "$STATE")" "root 644" "barman_ha_nat's state: root-owned, 0644"
like "$(ostate "$B")" $'node=db1\ntimeline=2\nswitch_wal=done' "the orchestrator's own record"
is "$(stat -c '%U' "$T/ostate-$B/orchestrator.state")" barman "...kept by barman"

out=$(hh "$B" promote db1 2); ok $? "same node, same timeline: exit 0"
like "$out" '^step check ok [0-9]+\.[0-9] routed$' "...and only the check line"

s0=$(snap)
hh "$B" promote db2 1 >/dev/null 2>"$T/err"; is $? 3 "db2 on a lower timeline: fenced (3)"
like "$(tail -n 1 "$T/err")" "^barman_ha_orchestrator: fenced: db2 on timeline 1 is refused" "one clear stderr line"
hh "$B" promote db2 2 >/dev/null 2>&1; is $? 3 "db2 on the same timeline: fenced (3)"
hh "$B" promote db1 1 >/dev/null 2>&1; is $? 3 "db1 on a lower timeline: fenced (3)"
is "$(snap)" "$s0" "fenced requests changed no rule and no state"
# barman_ha_nat decides by itself: the barman user asking it directly is fenced too
ip netns exec "$B" runuser -u barman -- "$NAT" claim db2 1 >/dev/null 2>&1; is $? 3 "barman_ha_nat claim db2 1 as barman: fenced (3)"
ip netns exec "$B" runuser -u barman -- "$NAT" route db2 >/dev/null 2>&1; is $? 3 "barman_ha_nat route db2 as barman: refused (3)"
is "$(snap)" "$s0" "...and nothing changed"

out=$(hh "$B" promote db2 3); ok $? "db2 on a higher timeline routes"
is "$(endpoints "$B")" $'barman db2\napp db2' "both endpoints on db2"

# A "reboot" of the backup host: the table flushed.  The check repairs.
if [ "${BHA_NAT_BACKEND:-iptables}" = nftables ]; then
	ip netns exec "$B" nft flush table ip repmgr_barman_ha
else
	ip netns exec "$B" iptables-legacy -t nat -F repmgr_dnat
fi
natroot "$B" init >/dev/null
out=$(hh "$B" promote db2 3); ok $? "same claim after a flush: exit 0"
like "$out" 'step check ok [0-9.]+ repairing: barman endpoint app endpoint' "the check sees both endpoints missing"
is "$(endpoints "$B")" $'barman db2\napp db2' "routes are back"
out=$(hh "$B" promote db2 3); like "$out" '^step check ok [0-9.]+ routed$' "then cheap again"

# Two nodes racing for the same new timeline: exactly one wins, every time.
bad=0
for tl in $(seq 4 18); do
	hh "$B" promote db1 "$tl" >/dev/null 2>&1 & p1=$!
	hh "$B" promote db2 "$tl" >/dev/null 2>&1 & p2=$!
	wait $p1; r1=$?; wait $p2; r2=$?
	[ "$r1$r2" = 03 ] || [ "$r1$r2" = 30 ] || { bad=$((bad + 1)); diag "timeline $tl: exits $r1 $r2"; }
done
is $bad 0 "15 races for one timeline: one winner, one fenced, each time"

# The forced command: SSH_ORIGINAL_COMMAND through the same strict parser.
hh "$B" promote db2 19 >/dev/null 2>&1 || bail "set-up promote failed"
s0=$(snap)
ssh_try() {			# ssh_try CODE DESC CMD [NODE]
	ip netns exec "$B" runuser -u barman -- env "SSH_ORIGINAL_COMMAND=$3" \
		"$ORCH" --from-ssh ${4:+--node "$4"} >/dev/null 2>"$T/err"
	is $? "$1" "from ssh, $2: exit $1"
}
ssh_try 2 "shell separator" "nat route db1; rm -rf /" db1
ssh_try 2 "newline" $'status\nnat route db1' db1
ssh_try 2 "another node's promote" "promote db2 20" db1
ssh_try 2 "another node's route" "nat route db2" db1
ssh_try 3 "a route while another node holds the endpoints" "nat route db1 both" db1
ssh_try 2 "nat init over ssh" "nat init" db1
ssh_try 2 "an option smuggled in" "-c /tmp/x promote db1 20" db1
ssh_try 2 "a key pinned to no node" "status"
ssh_try 2 "an overlong command" "status $(printf 'x%.0s' {1..400})" db1
is "$(snap)" "$s0" "hostile requests changed no rule and no state"
exit $((TAP_FAIL > 0))
