#!/bin/bash
# 14_forward.t: net.ipv4.ip_forward is turned on by root's init and by
# nothing else.  Once root turned it off, no verb of the barman user's
# (init, claim, route, close, show), nor root's own claim and route, turns
# it back on; root's init does.
. "$(dirname "$0")/lib.sh"
setup
mkns NS b
conf "$NS"
fwd() { ip netns exec "$NS" cat /proc/sys/net/ipv4/ip_forward; }

ip netns exec "$NS" sysctl -q -w net.ipv4.ip_forward=0
out=$(nb "$NS" init); is "$out" "init changed" "barman's init makes our rules"
is "$(fwd)" 0 "...and leaves ip_forward off"
out=$(nr "$NS" init); is "$out" "init unchanged" "root's init: the rules are there"
is "$(fwd)" 1 "...and turns ip_forward on"

ip netns exec "$NS" sysctl -q -w net.ipv4.ip_forward=0
for verb in "init" "claim db1 2" "claim db2 3" "route db2" "route db2 app" "close db2" "show"; do
	# shellcheck disable=SC2086
	nb "$NS" $verb >/dev/null 2>"$T/err"; rc=$?
	is "$rc $(fwd)" "0 0" "root turned ip_forward off: barman's $verb (exit 0) leaves it off"
done
nr "$NS" claim db1 4 --force >/dev/null && nr "$NS" route db1 both >/dev/null; ok $? "root's claim --force and route"
is "$(fwd)" 0 "...leave it off too"
nr "$NS" init >/dev/null; ok $? "root's init"
is "$(fwd)" 1 "...turns it on again"
plan $TAP_N
exit $((TAP_FAIL > 0))
