#!/bin/bash
# 10_snat.t: a SNAT source per endpoint.  With barman_snat_address set, the
# Barman endpoint's flows leave the backup host from their own address, so a
# DB node's pg_hba can admit replication from Barman's address only: a
# replication connection through the application endpoint is refused.  The
# rules equal what the iptables CLI makes for the same thing.
. "$(dirname "$0")/lib.sh"
plan 9
setup
BARMAN_SRC=10.213.0.9
mkbridge
mkns B backup
mkns S1 db1
mkns C client
mkns CLI cli
join "$B" $BACKUP_ADDR
ip -n "$B" addr add $BARMAN_SRC/24 dev eth0
join "$S1" 10.213.0.1
join "$C" 10.213.0.20
backup_conf "$B"
echo "barman_snat_address = $BARMAN_SRC" >>"/etc/netns/$B/repmgr_barman_ha/helper.conf"

pg_up 1 "$S1"
# Replication only from Barman's source; applications from the backup address.
cat >"$T/pg1/pg_hba.conf" <<EOF
local all all trust
host replication all $BARMAN_SRC/32 trust
host all all $BARMAN_SRC/32 trust
host all all $BACKUP_ADDR/32 trust
EOF
ip netns exec "$S1" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg1" -s reload

hh "$B" nat init >/dev/null && hh "$B" nat route db1 >/dev/null; ok $? "init and route db1"

ipt() { ip netns exec "$CLI" iptables-legacy -w -t nat "$@"; }
ipt -N repmgr_dnat; ipt -N repmgr_snat
ipt -A PREROUTING -j repmgr_dnat; ipt -A OUTPUT -j repmgr_dnat; ipt -A POSTROUTING -j repmgr_snat
ipt -A repmgr_dnat -p tcp -d $BACKUP_ADDR --dport 54321 -j DNAT --to-destination 10.213.0.1:5432
ipt -A repmgr_dnat -p tcp -d $BACKUP_ADDR --dport 54322 -j DNAT --to-destination 10.213.0.1:5432
ipt -A repmgr_snat -p tcp -d 10.213.0.1 --dport 5432 -m conntrack --ctorigdstport 54321 -j SNAT --to-source $BARMAN_SRC
ipt -A repmgr_snat -p tcp -d 10.213.0.1 --dport 5432 -m conntrack --ctorigdstport 54322 -j SNAT --to-source $BACKUP_ADDR
is "$(ip netns exec "$B" iptables-legacy -t nat -S)" "$(ip netns exec "$CLI" iptables-legacy -t nat -S)" \
	"per-endpoint SNAT rules equal the CLI's"
is "$(natsave "$B")" "$(natsave "$CLI")" "...in iptables-legacy-save too"
out=$(hh "$B" nat route db1); is "$out" "route db1 unchanged" "the helper reads its conntrack rules back"

cpsql() {			# cpsql NS PORT CONNINFO-EXTRA SQL
	ip netns exec "$1" runuser -u postgres -- "$PGBIN/psql" -X -At \
		"host=$BACKUP_ADDR port=$2 user=postgres dbname=postgres connect_timeout=5 $3" -c "$4" 2>"$T/err"
}
is "$(cpsql "$C" 54322 "" "select inet_client_addr()")" $BACKUP_ADDR "app endpoint: the node sees the backup address"
is "$(cpsql "$B" 54321 "" "select inet_client_addr()")" $BARMAN_SRC "Barman endpoint: the node sees Barman's address"
cpsql "$B" 54321 "replication=true" "IDENTIFY_SYSTEM" >/dev/null
ok $? "replication through the Barman endpoint is admitted"
cpsql "$C" 54322 "replication=true" "IDENTIFY_SYSTEM" >/dev/null
is $? 2 "replication through the application endpoint is refused"
like "$(cat "$T/err")" "no pg_hba.conf entry for replication connection from host \"$BACKUP_ADDR\"" "...by pg_hba"
exit $((TAP_FAIL > 0))
