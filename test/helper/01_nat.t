#!/bin/bash
# 01_nat.t: nat init / route / show and status, as postgres through the setuid
# helper in a private namespace; init is idempotent; the rules are exactly
# those the iptables CLI makes for the same request.
. "$(dirname "$0")/lib.sh"
plan 17
setup
mkns NS b
mkns CLI cli
backup_conf "$NS"

out=$(hh "$NS" nat init); ok $? "nat init exits 0"
is "$out" "init changed" "first init creates the chains"
before=$(natsave "$NS")
out=$(hh "$NS" nat init); ok $? "second nat init exits 0"
is "$out" "init unchanged" "second init reports no change"
is "$(natsave "$NS")" "$before" "second init leaves the table byte for byte"
is "$(ip netns exec "$NS" cat /proc/sys/net/ipv4/ip_forward)" 1 "ip_forward is on"

out=$(hh "$NS" nat show)
is "$out" $'barman none\napp none' "show before any route"
hh "$NS" nat route db1 >/dev/null; ok $? "route db1 (both)"
hh "$NS" nat route db2 app >/dev/null; ok $? "route db2 app"
is "$(hh "$NS" nat show)" $'barman db1 10.213.0.1:5432\napp db2 10.213.0.2:5432' \
	"show: barman kept on db1, app on db2"

# The same state made by the iptables CLI, the way an admin would type it.
ipt() { ip netns exec "$CLI" iptables-legacy -w -t nat "$@"; }
ipt -N repmgr_dnat; ipt -N repmgr_snat
ipt -A PREROUTING -j repmgr_dnat; ipt -A OUTPUT -j repmgr_dnat; ipt -A POSTROUTING -j repmgr_snat
ipt -A repmgr_dnat -p tcp -d $BACKUP_ADDR --dport 54321 -j DNAT --to-destination 10.213.0.1:5432
ipt -A repmgr_dnat -p tcp -d $BACKUP_ADDR --dport 54322 -j DNAT --to-destination 10.213.0.2:5432
ipt -A repmgr_snat -p tcp -d 10.213.0.1 --dport 5432 -j SNAT --to-source $BACKUP_ADDR
ipt -A repmgr_snat -p tcp -d 10.213.0.2 --dport 5432 -j SNAT --to-source $BACKUP_ADDR
is "$(ip netns exec "$NS" iptables-legacy -t nat -S)" "$(ip netns exec "$CLI" iptables-legacy -t nat -S)" \
	"iptables-legacy -S: helper's rules equal the CLI's"
is "$(natsave "$NS")" "$(natsave "$CLI")" "iptables-legacy-save: equal too"
# a table saved from the helper's rules restores cleanly (revisions the CLI knows)
natsave "$NS" | ip netns exec "$CLI" iptables-legacy-restore; ok $? "the helper's table round-trips through iptables-legacy-restore"

hh "$NS" nat route db2 >/dev/null
is "$(ip netns exec "$NS" iptables-legacy -t nat -S repmgr_snat)" \
	"-N repmgr_snat
-A repmgr_snat -d 10.213.0.2/32 -p tcp -m tcp --dport 5432 -j SNAT --to-source $BACKUP_ADDR" \
	"both on db2: one SNAT rule"
out=$(hh "$NS" nat route db2); is "$out" "route db2 unchanged" "same route again changes nothing"

out=$(hh "$NS" status)
like "$out" $'routed_node=\ntimeline=0\n.*barman_target=db2 10.213.0.2:5432\napp_target=db2 10.213.0.2:5432\nchains=present' "status lines"
ip netns exec "$NS" iptables-legacy -t nat -D OUTPUT -j repmgr_dnat
like "$(hh "$NS" status)" "chains=missing" "status notices a missing jump"
exit $((TAP_FAIL > 0))
