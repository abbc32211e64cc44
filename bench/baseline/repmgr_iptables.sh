#!/bin/bash
# repmgr_iptables.sh DB BACKUP PG_PORT IN_PORT [app]: the article's NAT script, as
# the article gives it (baseline for bench/failover.sh, not a feature).  Run as root on
# the backup host.  Without a 5th argument it flushes both chains (so the app
# endpoint has no rule until the "app" call) and adds the SNAT and the Barman DNAT;
# with "app" it appends the application DNAT.  iptables-legacy: the same tables
# barman_ha_nat's libiptc backend writes (Debian's iptables is the nft variant).
readonly DB="$1"
readonly BACKUP="$2"
readonly PG_PORT="$3"
readonly IN_PORT="$4"
ipt=${IPTABLES:-iptables-legacy}

if [ -z "$5" ]; then
	$ipt -w -t nat --flush repmgr_dnat
	$ipt -w -t nat --flush repmgr_snat
	$ipt -w -t nat -A repmgr_snat -p tcp -d "$DB" --dport "$PG_PORT" -j SNAT --to-source "$BACKUP"
fi
$ipt -w -t nat -A repmgr_dnat -p tcp -d "$BACKUP" --dport "$IN_PORT" -j DNAT --to-destination "$DB:$PG_PORT"
