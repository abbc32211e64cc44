#!/bin/bash
# 13_snat.t: SNAT only for the flows our DNAT made.  A connection that the
# backup host opens to a node's own address and port (not through an
# endpoint) keeps its source address: no rule of ours gives it Barman's
# SNAT source, which pg_hba may trust.  Connections through the endpoints,
# from the app host and from the backup host itself, are still SNATed.
. "$(dirname "$0")/lib.sh"
# ask_from NS SRC ADDR PORT: connect from SRC to ADDR:PORT, print the server's line
ask_from() {
	ip netns exec "$1" timeout 3 $PY -c '
import socket, sys
s = socket.create_connection((sys.argv[2], int(sys.argv[3])), 2, (sys.argv[1], 0))
print(s.makefile().readline().strip())' "$2" "$3" "$4" 2>&1 | tail -n 1
}

setup
net
OTHER=10.213.0.11
ip -n "$B" addr add $OTHER/24 dev eth0
tcp_server "$S1" db1
sleep 0.3
nr "$B" init >/dev/null && nb "$B" claim db1 2 >/dev/null && nb "$B" route db1 app >/dev/null || bail "set-up"

is "$(ask_from "$B" $OTHER 10.213.0.1 5432)" "db1 $OTHER" \
	"the backup host, from $OTHER, straight to db1:5432: not SNATed"
is "$(ask_from "$B" $OTHER $BACKUP 54321)" "db1 $BACKUP" \
	"the backup host, from $OTHER, through the barman endpoint: SNATed to $BACKUP"
is "$(tcp_ask "$C" 54322)" "db1 $BACKUP" "the app host through the app endpoint: SNATed to $BACKUP"
if iptables_only; then
	like "$(ip netns exec "$B" iptables-legacy -t nat -S repmgr_snat)" \
		"-A repmgr_snat -d 10.213.0.1/32 -p tcp -m tcp --dport 5432 -m conntrack --ctstate DNAT -j SNAT" \
		"iptables: the SNAT rule matches conntrack state DNAT"
else
	like "$(ip netns exec "$B" nft list table ip repmgr_barman_ha)" "ct status dnat" \
		"nftables: the SNAT rule matches ct status dnat"
fi
plan $TAP_N
exit $((TAP_FAIL > 0))
