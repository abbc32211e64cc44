#!/bin/bash
# notify.sh NODE NODE_ID EVENT: repmgr's event_notification_command on a DB node (runs
# as postgres through system()): forwards the events the article's event-handler script acts on to the
# backup host over ssh, where repmgr_handler.sh runs as root (handler_ssh.sh).
case "$3" in
primary_register|standby_promote|repmgrd_failover_promote|standby_register|standby_follow|repmgrd_failover_follow|repmgrd_standby_reconnect) ;;
*) exit 0 ;;
esac
d=$(cd "$(dirname "$0")/.." && pwd)
exec ssh -q -o BatchMode=yes -o ConnectTimeout=5 -i "$d/$1/ssh/id_ed25519" \
	-o UserKnownHostsFile="$d/$1/ssh/known_hosts_bench" -o StrictHostKeyChecking=yes \
	-p 2222 root@10.213.0.10 "$2 $3"
