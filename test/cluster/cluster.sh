#!/bin/bash
# cluster.sh: the namespace cluster of repmgr_barman_ha (see lib.sh for its layout).
#   cluster.sh up            bring it up (namespaces, PostgreSQL + repmgr, Barman, sshd)
#   cluster.sh down          stop and remove everything of BHA_PREFIX, also half-made clusters
#   cluster.sh status        every node's barman_ha_status(), endpoints, nat show, barman check
#   cluster.sh enter HOST    a root shell in HOST (backup, db1, db2, ..., app)
#   cluster.sh psql NODE [ARGS]  psql as postgres on NODE's own socket
# Environment: BHA_PREFIX (default bha), BHA_DATA (default /var/lib/bha-cluster/$BHA_PREFIX),
# BHA_NODE_COUNT (2), BHA_MANAGER (repmgr|pg_auto_failover|patroni), BHA_NAT_BACKEND
# (iptables|nftables), BHA_INSTALL (make|deb), BHA_PAIR=1 (a second backup host, backup2, and
# keepalived's virtual address: pair.sh): see lib.sh.
set -u
# shellcheck source=test/cluster/lib.sh
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "cluster.sh: run as root" >&2; exit 2; }
case "${1:-}" in
up)	bha_up || { bha_dump_logs >&2; echo "cluster.sh: bring-up failed; '$0 down' cleans up" >&2; exit 1; }
	echo "enter a host: BHA_PREFIX=$BHA_PREFIX $0 enter backup|db1|db2|app; tear down: BHA_PREFIX=$BHA_PREFIX $0 down" ;;
down)	bha_down ;;
status)	bha_status ;;
enter)	[ -n "${2:-}" ] || { echo "usage: $0 enter HOST" >&2; exit 2; }
	PS1="[$BHA_PREFIX-$2] \w# " exec ip netns exec "$(bha_ns "$2")" bash --norc -i ;;
psql)	[ -n "${2:-}" ] || { echo "usage: $0 psql NODE [ARGS]" >&2; exit 2; }
	n=$2; shift 2
	exec ip netns exec "$(bha_ns "$n")" runuser -u postgres -- "$BHA_PGBIN/psql" -X -h "$BHA_DATA/$n/run" -d postgres "$@" ;;
*)	sed -n '2,10s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
