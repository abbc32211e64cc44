#!/bin/bash
# 07_claim.t: with claim_check = on, the backup host asks the node itself
# (IDENTIFY_SYSTEM over a replication=database connection, and
# pg_is_in_recovery()) before it routes: a forged timeline and a node in
# recovery are refused as fenced (3), an unreachable node fails (1), and
# none of them changes a rule or the state.  libpq runs in a child as barman.
. "$(dirname "$0")/lib.sh"
plan 12
hosts 2
printf '%s\n' "claim_check = on" "claim_conninfo = user=postgres dbname=postgres connect_timeout=3" \
	>>"/etc/netns/$B/repmgr_barman_ha/helper.conf"
STATE=$T/state-$B/state
pg_up 1 "$S1"
pg_up 2 "$S2" standby

out=$(hh "$B" promote db1 1 2>"$T/err"); ok $? "a true claim routes ($(tail -n 1 "$T/err"))"
like "$out" "step claim_check ok [0-9.]+ primary on timeline 1" "claim_check step confirms it"
snap=$(natsave "$B"); st=$(cat "$STATE")

out=$(hh "$B" promote db1 5 2>"$T/err"); is $? 3 "a forged timeline is fenced (3)"
like "$out" "step claim_check failed [0-9.]+ the node is on timeline 1, not 5" "...the node said so"
like "$(tail -n 1 "$T/err")" "^barman_ha_helper: fenced: claim of db1 on timeline 5 not confirmed" "one clear stderr line"
out=$(hh "$B" promote db2 2 2>"$T/err"); is $? 3 "a node in recovery is fenced (3)"
like "$out" "in recovery" "...because it is in recovery"
is "$(natsave "$B")" "$snap" "refused claims changed no rule"
is "$(cat "$STATE")" "$st" "...nor the state"

runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg1" -s -m immediate stop
hh "$B" promote db1 6 >/dev/null 2>"$T/err"; is $? 1 "an unreachable node fails (1)"
like "$(tail -n 1 "$T/err")" "^barman_ha_helper: failed: claim of db1" "...saying so"
is "$(natsave "$B")" "$snap" "...and changes nothing"
exit $((TAP_FAIL > 0))
