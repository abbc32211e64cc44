#!/bin/bash
# 01_basic.t: init, show, claim and route as the barman user in a private
# namespace.  init is idempotent (ip_forward: 14_forward.t); show prints exactly the
# documented lines; the rules read back with the backend's own tool; under
# iptables they are byte for byte what the iptables CLI makes and round-trip
# through iptables-legacy-save/restore.
. "$(dirname "$0")/lib.sh"
plan 28
setup
mkns NS b
conf "$NS"

out=$(nb "$NS" show); ok $? "show before init exits 0"
is "$out" "backend $BACKEND
node db1 10.213.0.1 5432
node db2 10.213.0.2 5432
endpoint barman $BACKUP 54321 missing
endpoint app $BACKUP 54322 missing
state none" "show: documented lines, endpoints missing before init"
out=$(nb "$NS" init); ok $? "init exits 0"
is "$out" "init changed" "first init creates our rules"
out=$(nb "$NS" init); is "$out" "init unchanged" "second init changes nothing"
nr "$NS" init >/dev/null
is "$(ip netns exec "$NS" cat /proc/sys/net/ipv4/ip_forward)" 1 "root's init: ip_forward is on"
is "$(readback "$NS")" $'barman closed\napp closed' "read back: both endpoints closed"
like "$(nb "$NS" show)" "endpoint barman $BACKUP 54321 closed
endpoint app $BACKUP 54322 closed
state none" "show: closed after init"

out=$(nb "$NS" claim db1 2); ok $? "claim db1 2 exits 0"
is "$out" $'claim recorded db1 2\nflows 0' "claim prints what it did"
is "$(readback "$NS")" $'barman 10.213.0.1:5432\napp closed' "barman endpoint on db1, app closed"
like "$(nb "$NS" show)" "endpoint barman $BACKUP 54321 db1 10.213.0.1:5432
endpoint app $BACKUP 54322 closed
state db1 2 [0-9]{10}$" "show names the node and the state"
out=$(nb "$NS" route db1 app); is "$out" $'route changed db1\nflows 0' "route db1 app opens the app endpoint"
out=$(nb "$NS" route db1); is "$out" $'route unchanged db1\nflows 0' "route db1 again: unchanged"
is "$(readback "$NS")" $'barman 10.213.0.1:5432\napp 10.213.0.1:5432' "both endpoints on db1"

out=$(nr "$NS" route db2 app); is "$out" $'route changed db2\nflows 0' "root routes app elsewhere (repair)"
is "$(readback "$NS")" $'barman 10.213.0.1:5432\napp 10.213.0.2:5432' "barman kept on db1, app on db2"

# The same rules made by the iptables CLI, the way an admin would type them.
if iptables_only; then
	cli_chains
	ipt -A repmgr_dnat -p tcp -d $BACKUP --dport 54321 -j DNAT --to-destination 10.213.0.1:5432
	ipt -A repmgr_dnat -p tcp -d $BACKUP --dport 54322 -j DNAT --to-destination 10.213.0.2:5432
	ipt -A repmgr_snat -p tcp -d 10.213.0.1 --dport 5432 -m conntrack --ctstate DNAT -j SNAT --to-source $BACKUP
	ipt -A repmgr_snat -p tcp -d 10.213.0.2 --dport 5432 -m conntrack --ctstate DNAT -j SNAT --to-source $BACKUP
	save() { ip netns exec "$1" iptables-legacy-save -t nat | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'; }
	is "$(ip netns exec "$NS" iptables-legacy -t nat -S)" "$(ip netns exec "$CLI" iptables-legacy -t nat -S)" \
		"iptables-legacy -S: our rules equal the CLI's"
	save "$NS" | ip netns exec "$CLI" iptables-legacy-restore; ok $? "our table round-trips through iptables-legacy-restore"
	save "$CLI" | ip netns exec "$NS" iptables-legacy-restore
	out=$(nr "$NS" route db2 app); is "$out" $'route unchanged db2\nflows 0' \
		"the CLI's rules restored in their place read back as ours, byte for byte (unchanged)"
	nr "$NS" route db2 >/dev/null
	is "$(ip netns exec "$NS" iptables-legacy -t nat -S repmgr_snat)" "-N repmgr_snat
-A repmgr_snat -d 10.213.0.2/32 -p tcp -m tcp --dport 5432 -m conntrack --ctstate DNAT -j SNAT --to-source $BACKUP" \
		"both on db2: one SNAT rule, for DNATed flows only"
	# rules we did not make in our chain are replaced on the next route
	ip netns exec "$NS" iptables-legacy -t nat -A repmgr_dnat -p udp -j ACCEPT
	out=$(nr "$NS" route db2); is "$out" $'route changed db2\nflows 0' "a foreign rule in our chain: rewritten"
	is "$(ip netns exec "$NS" iptables-legacy -t nat -S repmgr_dnat | grep -c udp)" 0 "...and gone"
else
	for i in 1 2 3 4 5 6; do ok 0 "# SKIP iptables rule bytes (backend $BACKEND)"; done
fi

# A flushed table (a reboot without init): show says missing, route repairs.
if iptables_only; then ip netns exec "$NS" iptables-legacy -t nat -F; ip netns exec "$NS" iptables-legacy -t nat -X
else ip netns exec "$NS" nft delete table ip repmgr_barman_ha; fi
ip netns exec "$NS" sysctl -q -w net.ipv4.ip_forward=0
like "$(nb "$NS" show)" "54321 missing" "after a flush show says missing"
out=$(nr "$NS" route db2); ok $? "route after a flush exits 0"
is "$(readback "$NS")" $'barman 10.213.0.2:5432\napp 10.213.0.2:5432' "...and the routes are back"
is "$(ip netns exec "$NS" cat /proc/sys/net/ipv4/ip_forward)" 0 "...ip_forward left off: only root's init sets it"
like "$(nb "$NS" help)" "^usage: barman_ha_nat" "help prints the usage"
exit $((TAP_FAIL > 0))
