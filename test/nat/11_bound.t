#!/bin/bash
# 11_bound.t: how far above the recorded timeline the barman user may claim
# (max_timeline_step; default the number of nodes in nat.conf).  One claim
# beyond the step, or a first claim beyond timeline 1 + step, is fenced (3)
# and changes nothing: a forged number (2147483647) cannot lock every other
# node out.  Within the step a claim is recorded; root's --force goes past.
. "$(dirname "$0")/lib.sh"
setup
mkns NS b
conf "$NS"
STATE=$(state_of "$NS")
nb "$NS" init >/dev/null || bail "init"

# No state yet: the first claim is bounded by timeline 1 + step (default:
# the number of nodes, two here).
nb "$NS" claim db1 2147483647 >/dev/null 2>"$T/err"; is $? 3 "first claim of timeline 2147483647: fenced (3)"
like "$(tail -n 1 "$T/err")" "^barman_ha_nat: fenced: timeline 2147483647 is more than 2 above timeline 1 \(nothing recorded\)" \
	"...one line says why"
nb "$NS" claim db1 4 >/dev/null 2>&1; is $? 3 "first claim of timeline 4 with the default step 2: fenced (3)"
is "$(cat "$STATE" 2>&1)" "cat: $STATE: No such file or directory" "...nothing recorded"
is "$(readback "$NS")" $'barman closed\napp closed' "...no endpoint moved"
out=$(nb "$NS" claim db1 3); is "$out" $'claim recorded db1 3\nflows 0' "first claim of timeline 3 (1 + step): recorded"
nb "$NS" claim db2 6 >/dev/null 2>"$T/err"; is $? 3 "default step 2: db2 6 over db1 3 fenced (3)"
out=$(nb "$NS" claim db2 5); is "$out" $'claim recorded db2 5\nflows 0' "default step 2: db2 5 over db1 3 recorded"
nr "$NS" claim db1 2 --force >/dev/null || bail "reset by --force"

# A step of 1: only the next timeline.
conf "$NS" "max_timeline_step = 1"

out=$(nb "$NS" claim db2 3); is "$out" $'claim recorded db2 3\nflows 0' "db2 3 over db1 2: within the step, recorded"
snap=$(readback "$NS"); st=$(cat "$STATE")
nb "$NS" claim db1 5 >/dev/null 2>"$T/err"; is $? 3 "db1 5 over db2 3 with step 1: fenced (3)"
is "$(tail -n 1 "$T/err")" \
	"barman_ha_nat: fenced: timeline 5 is more than 1 above timeline 3 (db2's); only root's --force goes further" \
	"...one line says why"
nb "$NS" claim db1 2147483647 >/dev/null 2>&1; is $? 3 "db1 2147483647 over db2 3: fenced (3)"
nb "$NS" claim db2 2147483647 >/dev/null 2>&1; is $? 3 "db2 itself on 2147483647: fenced (3)"
is "$(readback "$NS")" "$snap" "fenced claims changed no rule"
is "$(cat "$STATE")" "$st" "...and not the state"
out=$(nb "$NS" claim db1 4); is "$out" $'claim recorded db1 4\nflows 0' "db1 4 over db2 3 (the next failover): recorded"

# root's --force is the way out, at any distance
out=$(nr "$NS" claim db2 2147483647 --force); is "$out" $'claim recorded db2 2147483647\nflows 0' \
	"root's --force: db2 on 2147483647 recorded"
out=$(nr "$NS" claim db1 7 --force); is "$out" $'claim recorded db1 7\nflows 0' "root's --force: back down to db1 7"
is "$(cat "$STATE")" $'node=db1\ntimeline=7' "...recorded"

# The key is parsed with bounds, like every other.
for v in 0 -1 x 1001; do
	conf "$NS" "max_timeline_step = $v"
	nb "$NS" show >/dev/null 2>"$T/err"; is "$? $(tail -n 1 "$T/err")" \
		"2 barman_ha_nat: /etc/repmgr_barman_ha/nat.conf: line 8: invalid value for \"max_timeline_step\"" \
		"max_timeline_step = $v: refused (2)"
done
plan $TAP_N
exit $((TAP_FAIL > 0))
