#!/bin/bash
# 07_tcp.t: real TCP through the endpoints.  Listeners on db1 and db2; a
# client in an app namespace reaches db1 through BACKUP:54321 and :54322,
# and so does the backup host itself (OUTPUT).  A claim by db2 moves the
# barman endpoint and closes the app endpoint: a connect there is refused
# at once (a reset from the backup host, no SYN retransmitted to a dead
# host) until route db2 app opens it on db2.  With barman_snat_address the
# barman endpoint's flows reach the node from their own source address.
. "$(dirname "$0")/lib.sh"
setup
net
BARMAN_SRC=10.213.0.9
ip -n "$B" addr add $BARMAN_SRC/24 dev eth0
tcp_server "$S1" db1
tcp_server "$S2" db2
sleep 0.3
nr "$B" init >/dev/null && nb "$B" claim db1 2 >/dev/null && nb "$B" route db1 app >/dev/null || bail "set-up"

is "$(tcp_ask "$C" 54321)" "db1 $BACKUP" "app host -> barman endpoint: db1, source the backup address (SNAT)"
is "$(tcp_ask "$C" 54322)" "db1 $BACKUP" "app host -> app endpoint: db1"
is "$(tcp_ask "$B" 54321)" "db1 $BACKUP" "the backup host's own connection (OUTPUT) -> db1"

nb "$B" claim db2 3 >/dev/null; ok $? "claim db2 3"
is "$(tcp_ask "$C" 54321)" "db2 $BACKUP" "barman endpoint now reaches db2"
t0=$(date +%s%N); out=$(tcp_ask "$C" 54322); ms=$((($(date +%s%N) - t0) / 1000000))
is "$out" "Connection refused" "app endpoint closed: connection refused"
ok $((ms > 1000)) "...at once (${ms} ms with ip netns exec)"
# a dead db1: the closed endpoint still answers at once (nothing goes to db1)
ip -n "$S1" link set eth0 down
t0=$(date +%s%N); out=$(tcp_ask "$C" 54322); ms=$((($(date +%s%N) - t0) / 1000000))
is "$out" "Connection refused" "db1's host gone: still refused at once (${ms} ms)"
nb "$B" route db2 app >/dev/null; ok $? "route db2 app (the orchestrator, once Barman streams)"
is "$(tcp_ask "$C" 54322)" "db2 $BACKUP" "app endpoint reaches db2"
ip -n "$S1" link set eth0 up

# A SNAT source per endpoint: pg_hba can tell Barman from applications.
conf "$B" "barman_snat_address = $BARMAN_SRC"
out=$(nb "$B" route db2); is "$out" $'route changed db2\nflows 0' "barman_snat_address: route rewrites the SNAT rules"
is "$(tcp_ask "$C" 54321)" "db2 $BARMAN_SRC" "barman endpoint: the node sees Barman's own address"
is "$(tcp_ask "$C" 54322)" "db2 $BACKUP" "app endpoint: the node sees the backup address"
if iptables_only; then
	cli_chains
	ipt -A repmgr_dnat -p tcp -d $BACKUP --dport 54321 -j DNAT --to-destination 10.213.0.2:5432
	ipt -A repmgr_dnat -p tcp -d $BACKUP --dport 54322 -j DNAT --to-destination 10.213.0.2:5432
	ipt -A repmgr_snat -p tcp -d 10.213.0.2 --dport 5432 -m conntrack --ctstate DNAT --ctorigdstport 54321 -j SNAT --to-source $BARMAN_SRC
	ipt -A repmgr_snat -p tcp -d 10.213.0.2 --dport 5432 -m conntrack --ctstate DNAT --ctorigdstport 54322 -j SNAT --to-source $BACKUP
	is "$(ip netns exec "$B" iptables-legacy -t nat -S)" "$(ip netns exec "$CLI" iptables-legacy -t nat -S)" \
		"per-endpoint SNAT rules equal the CLI's"
	ip netns exec "$CLI" iptables-legacy-save -t nat | ip netns exec "$B" iptables-legacy-restore
	out=$(nb "$B" route db2); is "$out" $'route unchanged db2\nflows 0' \
		"the CLI's rules restored in their place read back as ours, byte for byte (unchanged)"
else
	ok 0 "# SKIP iptables rule bytes (backend $BACKEND)"; ok 0 "# SKIP"
fi
plan $TAP_N
exit $((TAP_FAIL > 0))
