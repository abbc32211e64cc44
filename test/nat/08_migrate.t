#!/bin/bash
# 08_migrate.t: one backend at a time.  With our rules in one backend, init
# of the other refuses (1) and names `barman_ha_nat migrate` (no double
# NAT); migrate is root's; it moves the routes exactly as they were (a
# closed app endpoint stays closed) and removes the old backend's rules;
# then back again.  Runs for both backends whatever BHA_NAT_BACKEND says;
# skipped when the build has no nftables backend.
. "$(dirname "$0")/lib.sh"
setup
mkns NS b
BACKEND=nftables conf "$NS"
if nr "$NS" show 2>&1 | grep -q "not available in this build"; then
	echo "1..0 # SKIP no nftables backend in this build"; exit 0
fi
rbk() { BACKEND=$1 readback "$NS"; }
BACKEND=iptables conf "$NS"
nb "$NS" init >/dev/null && nb "$NS" claim db1 2 >/dev/null; ok $? "iptables: init, claim db1 2"
is "$(rbk iptables)" $'barman 10.213.0.1:5432\napp closed' "iptables holds barman -> db1, app closed"

BACKEND=nftables conf "$NS"
nb "$NS" init >/dev/null 2>"$T/err"; is $? 1 "nftables init while iptables has our rules: refused (1)"
like "$(tail -n 1 "$T/err")" "exist in the iptables backend: move them with .barman_ha_nat migrate." "...names migrate"
is "$(rbk nftables)" missing "...and made no nftables table"
nb "$NS" migrate >/dev/null 2>&1; is $? 2 "migrate by barman: refused (2)"
out=$(nr "$NS" migrate); ok $? "root: migrate to nftables"
is "$out" $'init changed\nroute changed\nremoved iptables' "...says what it did"
is "$(rbk nftables)" $'barman 10.213.0.1:5432\napp closed' "nftables: the same routes, app still closed"
is "$(rbk iptables)" missing "iptables: our chains are gone"
is "$(ip netns exec "$NS" iptables-legacy -t nat -S | grep -c repmgr)" 0 "...jumps too"
out=$(nb "$NS" init); is "$out" "init unchanged" "nftables init now: unchanged"
nb "$NS" route db1 app >/dev/null; is "$(rbk nftables)" $'barman 10.213.0.1:5432\napp 10.213.0.1:5432' "route works on nftables"

BACKEND=iptables conf "$NS"
nb "$NS" init >/dev/null 2>"$T/err"; is $? 1 "iptables init while nftables has our rules: refused (1)"
out=$(nr "$NS" migrate); is "$out" $'init changed\nroute changed\nremoved nftables' "root: migrate back to iptables"
is "$(rbk iptables)" $'barman 10.213.0.1:5432\napp 10.213.0.1:5432' "iptables: the same routes"
is "$(rbk nftables)" missing "nftables: our table is gone"
out=$(nr "$NS" migrate); is "$out" $'init unchanged\nroute unchanged\nremoved nothing' "migrate again: nothing to do"
plan $TAP_N
exit $((TAP_FAIL > 0))
