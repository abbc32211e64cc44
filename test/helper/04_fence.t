#!/bin/bash
# 04_fence.t: promote and its fencing state.  A lower timeline, or another
# node on the same timeline, is refused with exit 3 and changes nothing; the
# same node and timeline is an idempotent check; a higher timeline routes;
# root may override with --force; a flushed table is repaired by the check.
. "$(dirname "$0")/lib.sh"
plan 26
setup
mkns NS b
backup_conf "$NS"
STATE=$T/state-$NS/state

out=$(hh "$NS" promote db1 2); ok $? "promote db1 2 on a fresh host"
like "$out" $'step claim_check skipped [0-9.]+ claim_check = off\nstep fence ok [0-9.]+ db1 on timeline 2\nstep route_barman ok [0-9.]+ db1 routed\nstep conntrack_barman ok [0-9.]+ 0 flows removed\nstep barman_reset skipped .*\nstep route_app ok [0-9.]+ db1 (already )?routed\nstep conntrack_app ok .*\nstep state ok [0-9.]+ db1 timeline 2' \
	"step lines in order"
is "$(hh "$NS" nat show)" $'barman db1 10.213.0.1:5432\napp db1 10.213.0.1:5432' "both endpoints on db1"
is "$(stat -c '%U %a' "$STATE")" "root 644" "state file root-owned, 0644"
is "$(head -2 "$STATE")" $'node=db1\ntimeline=2' "state records db1, 2"

out=$(hh "$NS" promote db1 2); ok $? "same node, same timeline: exit 0"
like "$out" '^step check ok [0-9]+\.[0-9] routed$' "...and only the check line"

snap=$(natsave "$NS"); st=$(cat "$STATE")
out=$(hh "$NS" promote db2 1 2>"$T/err"); is $? 3 "db2 on a lower timeline: fenced (3)"
like "$(tail -n 1 "$T/err")" "^barman_ha_helper: fenced: db2 on timeline 1 is refused" "one clear stderr line"
out=$(hh "$NS" promote db2 2 2>/dev/null); is $? 3 "db2 on the same timeline: fenced (3)"
out=$(hh "$NS" promote db1 1 2>/dev/null); is $? 3 "db1 on a lower timeline: fenced (3)"
is "$(natsave "$NS")" "$snap" "fenced requests changed no rule"
is "$(cat "$STATE")" "$st" "...and not the state"

out=$(hh "$NS" promote db2 3); ok $? "db2 on a higher timeline routes"
is "$(hh "$NS" nat show)" $'barman db2 10.213.0.2:5432\napp db2 10.213.0.2:5432' "both endpoints on db2"

out=$(hh "$NS" --force promote db1 3 2>/dev/null); is $? 2 "--force from postgres: usage error (2)"
out=$(ip netns exec "$NS" "$HELPER" --force promote db1 3); ok $? "root --force promote db1 3"
is "$(hh "$NS" nat show | head -1)" "barman db1 10.213.0.1:5432" "forced: endpoints on db1"
hh "$NS" promote db2 4 >/dev/null; ok $? "db2 4 takes them back"

# A "reboot" of the backup host: the nat table flushed.  The check repairs.
ip netns exec "$NS" iptables-legacy -t nat -F repmgr_dnat
ip netns exec "$NS" sysctl -q -w net.ipv4.ip_forward=0
out=$(hh "$NS" promote db2 4); ok $? "same claim after a flush: exit 0"
like "$out" 'step check ok [0-9.]+ repairing: routes' "the check repairs the routes"
is "$(hh "$NS" nat show)" $'barman db2 10.213.0.2:5432\napp db2 10.213.0.2:5432' "routes are back"
is "$(ip netns exec "$NS" cat /proc/sys/net/ipv4/ip_forward)" 1 "...and forwarding is on again"
out=$(hh "$NS" promote db2 4); like "$out" '^step check ok [0-9.]+ routed$' "then cheap again"

# Two nodes racing for the same new timeline: exactly one wins, every time.
bad=0
for tl in $(seq 10 29); do
	hh "$NS" promote db1 $tl >/dev/null 2>&1 & p1=$!
	hh "$NS" promote db2 $tl >/dev/null 2>&1 & p2=$!
	wait $p1; r1=$?; wait $p2; r2=$?
	[ "$r1$r2" = 03 ] || [ "$r1$r2" = 30 ] || { bad=$((bad + 1)); diag "timeline $tl: exits $r1 $r2"; }
done
is $bad 0 "20 races for one timeline: one winner, one fenced, each time"

# A state file someone else could write is not trusted.
chmod 666 "$STATE"; hh "$NS" promote db2 4 >/dev/null 2>&1; is $? 1 "group/other-writable state file: refused (1)"
exit $((TAP_FAIL > 0))
