#!/bin/bash
# 08_migrate.t: one backend at a time.  With our rules in one backend, init
# of the other refuses (1) and says to remove them first (no double NAT).
# The documented two-step move (docs/backup-host.md: remove the old
# backend's rules by hand, then init and route) works both ways.  Runs for
# both backends whatever BHA_NAT_BACKEND says; skipped when the build has no
# nftables backend.
. "$(dirname "$0")/lib.sh"
setup
mkns NS b
BACKEND=nftables conf "$NS"
if nr "$NS" show 2>&1 | grep -q "not available in this build"; then
	echo "1..0 # SKIP no nftables backend in this build"; exit 0
fi
rbk() { BACKEND=$1 readback "$NS"; }
ipt() { ip netns exec "$NS" iptables-legacy -w -t nat "$@"; }
BACKEND=iptables conf "$NS"
nb "$NS" init >/dev/null && nb "$NS" claim db1 2 >/dev/null; ok $? "iptables: init, claim db1 2"
is "$(rbk iptables)" $'barman 10.213.0.1:5432\napp closed' "iptables holds barman -> db1, app closed"

BACKEND=nftables conf "$NS"
nb "$NS" init >/dev/null 2>"$T/err"; is $? 1 "nftables init while iptables has our rules: refused (1)"
like "$(tail -n 1 "$T/err")" "rules of ours exist in the iptables backend: remove them first" "...says why"
is "$(rbk nftables)" missing "...and made no nftables table"
ipt -D PREROUTING -j repmgr_dnat && ipt -D OUTPUT -j repmgr_dnat && ipt -D POSTROUTING -j repmgr_snat &&
	ipt -F repmgr_dnat && ipt -F repmgr_snat && ipt -X repmgr_dnat && ipt -X repmgr_snat
ok $? "the documented iptables-legacy commands remove our chains"
is "$(nb "$NS" init)" "init changed" "then nftables init makes our table"
nr "$NS" route db1 barman >/dev/null; is "$(rbk nftables)" $'barman 10.213.0.1:5432\napp closed' "route: the same routes on nftables"

BACKEND=iptables conf "$NS"
nb "$NS" init >/dev/null 2>"$T/err"; is $? 1 "iptables init while nftables has our rules: refused (1)"
ip netns exec "$NS" nft delete table ip repmgr_barman_ha; ok $? "nft delete table removes ours"
is "$(nb "$NS" init)" "init changed" "then iptables init makes our chains"
nb "$NS" route db1 both >/dev/null; is "$(rbk iptables)" $'barman 10.213.0.1:5432\napp 10.213.0.1:5432' "route works on iptables"
plan $TAP_N
exit $((TAP_FAIL > 0))
