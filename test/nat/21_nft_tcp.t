#!/bin/bash
# 21_nft_tcp.t: real TCP through the nftables backend.  Listeners stand for
# PostgreSQL on db1 and db2 and answer "NAME PEER"; clients connect to
# BACKUP:54321 and BACKUP:54322 from an application host (prerouting,
# forwarded) and from the backup host itself (output).  Both endpoints reach
# db1, then db2 after `route db2`, with BACKUP as the source the nodes see; a
# closed endpoint is refused by the backup host; with barman_snat_address and
# app_snat_address each endpoint's flows leave with their own source, and a
# connection to a node that we did not DNAT keeps its source.
export BHA_NAT_BACKEND=nftables
. "$(dirname "$0")/lib.sh"
plan 17
setup
net
tcp_server "$S1" db1
tcp_server "$S2" db2
sleep 0.3

nr "$B" init >/dev/null; ok $? "init"
like "$(tcp_ask "$C" 54321)" "^Connection refused" "closed barman endpoint: the backup host refuses"
nr "$B" route db1 both >/dev/null; ok $? "route db1 both"
is "$(tcp_ask "$C" 54321)" "db1 $BACKUP" "app host -> BACKUP:54321 reaches db1, from BACKUP"
is "$(tcp_ask "$C" 54322)" "db1 $BACKUP" "app host -> BACKUP:54322 reaches db1"
is "$(tcp_ask "$B" 54321)" "db1 $BACKUP" "backup host -> BACKUP:54321 reaches db1"
is "$(tcp_ask "$B" 54322)" "db1 $BACKUP" "backup host -> BACKUP:54322 reaches db1"

nr "$B" route db2 both >/dev/null; ok $? "route db2 both"
is "$(tcp_ask "$C" 54321)" "db2 $BACKUP" "app host -> BACKUP:54321 reaches db2"
is "$(tcp_ask "$C" 54322)" "db2 $BACKUP" "app host -> BACKUP:54322 reaches db2"
is "$(tcp_ask "$B" 54321)" "db2 $BACKUP" "backup host -> BACKUP:54321 reaches db2"

# per-endpoint sources: two more addresses of the backup host
ip -n "$B" addr add 10.213.0.11/24 dev eth0 && ip -n "$B" addr add 10.213.0.12/24 dev eth0
conf "$B" "barman_snat_address = 10.213.0.11" "app_snat_address = 10.213.0.12"
is "$(nr "$B" init)" "init changed" "init applies the per-endpoint sources"
is "$(tcp_ask "$C" 54321)" "db2 10.213.0.11" "barman's flows leave from 10.213.0.11"
is "$(tcp_ask "$C" 54322)" "db2 10.213.0.12" "the applications' from 10.213.0.12"
nr "$B" route db1 app >/dev/null
is "$(tcp_ask "$B" 54322)" "db1 10.213.0.12" "app on db1, from the backup host: 10.213.0.12"
# not DNATed by us: connections from BACKUP to the nodes keep their source
for n in 1 2; do
	direct=$(ip netns exec "$B" timeout 3 $PY -c '
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); s.connect(("10.213.0." + sys.argv[2], 5432))
print(s.makefile().readline().strip())' $BACKUP $n 2>&1)
	is "$direct" "db$n $BACKUP" "a flow to db$n that we did not DNAT: no SNAT, the source kept"
done
exit $((TAP_FAIL > 0))
