#!/bin/bash
# repmgr_handler.sh NODE_ID EVENT: the repmgrd event handler of the "Fault tolerant
# PostgreSQL cluster" article (the article's event-handler script), the baseline that
# bench/failover.sh compares the extension with (not a feature).
#
# MODE (from handler.conf next to this script):
#   article  the article's order: NAT for Barman, slot by psql WITHOUT reserving WAL,
#            `barman receive-wal --stop`, `barman switch-wal --force --archive
#            --archive-timeout=90`, NAT for the application; `barman cron` (every
#            minute) is what restarts receive-wal.  Runs for every matching event, as
#            the article's script does (standby_promote and repmgrd_failover_promote both fire).
#   working  the same steps in the order that works, the best a script can do: NAT for
#            Barman, slot reserving WAL, a bounded receive-wal --stop, end any
#            pg_receivewal still writing into the streaming folder, start receive-wal at
#            once, wait until Barman's flush_lsn reaches the primary's flush position,
#            then switch-wal, then NAT for the application.  Skips an event whose work
#            is already done (the second of the two promote events).
#   best     the working order, but the app endpoint is routed as soon as Barman has
#            caught up and switch-wal runs after it (the order the extension uses): the
#            fastest a script gets without giving up the catch-up wait.
#
# Where it runs: on the backup host, as root, by an sshd forced command (port 2222) that
# the DB node's event_notification_command (notify.sh) calls: the article's sudo for
# iptables and `sudo -u barman barman` become root and `runuser -u barman`.
# The article's script connects psql as repmgr; the cluster's pg_hba lets only barman in from the
# backup host (with its client certificate), so psql connects as barman (superuser, as in the
# article).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/handler.conf"		# DB1 DB2 BACKUP MODE PGSSL* STREAMING_DIR PGBIN LOG
export PGSSLMODE PGSSLROOTCERT PGSSLCERT PGSSLKEY
readonly SLOT_NAME="barman"
readonly BARMAN_NAME="main_backup"
readonly PG_PORT="5432"
readonly BARMAN_PORT="54321"
readonly MASTER_PORT="54322"
readonly NODE_ID="$1"
readonly EVENT="$2"

if [[ "$NODE_ID" == "1" ]]; then IP=$DB1; else IP=$DB2; fi
mark() { local t=${EPOCHREALTIME/./}; echo "${t:0:13} $NODE_ID $EVENT $*" >>"$LOG"; }
psql_ip() { "$PGBIN/psql" -X -qAt -h "$IP" -p "$PG_PORT" -U barman -d postgres -c "$1"; }
barman_as() { runuser -u barman -- barman "$@"; }
routed_to_ip() {	# both DNAT rules lead to $IP
	[ "$(iptables-legacy -w -t nat -S repmgr_dnat | grep -c -- "--to-destination $IP:$PG_PORT")" -eq 2 ]
}

if [[ "$EVENT" =~ ^(primary_register|standby_promote|repmgrd_failover_promote)$ ]]; then
	mark start "$MODE"
	if [ "$MODE" = article ]; then
		"$here/repmgr_iptables.sh" "$IP" "$BACKUP" "$PG_PORT" "$BARMAN_PORT"; mark barman_nat
		psql_ip "select pg_create_physical_replication_slot('$SLOT_NAME') where not exists(select 1 from pg_replication_slots where slot_name = '$SLOT_NAME');" >/dev/null
		mark slot
		barman_as receive-wal --stop "$BARMAN_NAME" 2>/dev/null; mark "receive_wal_stop rc=$?"
		barman_as switch-wal --force --archive --archive-timeout=90 "$BARMAN_NAME" >/dev/null 2>&1; mark "switch_wal rc=$?"
		"$here/repmgr_iptables.sh" "$IP" "$BACKUP" "$PG_PORT" "$MASTER_PORT" "app"; mark app_nat
	else
		if routed_to_ip && [ "$(psql_ip "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'barman_receive_wal' AND state = 'streaming'")" = 1 ]; then
			mark end already_done; exit 0
		fi
		"$here/repmgr_iptables.sh" "$IP" "$BACKUP" "$PG_PORT" "$BARMAN_PORT"; mark barman_nat
		psql_ip "select pg_create_physical_replication_slot('$SLOT_NAME', true) where not exists(select 1 from pg_replication_slots where slot_name = '$SLOT_NAME');" >/dev/null
		mark slot
		timeout 10 runuser -u barman -- barman receive-wal --stop "$BARMAN_NAME" >/dev/null 2>&1; mark "receive_wal_stop rc=$?"
		# a pg_receivewal hung on a dead connection still writes into the streaming folder
		for p in /proc/[0-9]*; do
			if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "pg_receivewal.*$STREAMING_DIR"; then
				kill -TERM "${p#/proc/}" 2>/dev/null
			fi
		done
		runuser -u barman -- setsid barman -q receive-wal "$BARMAN_NAME" </dev/null >/dev/null 2>&1 &
		mark receive_wal_started
		for _ in $(seq 1 300); do
			[ "$(psql_ip "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'barman_receive_wal' AND flush_lsn >= pg_current_wal_flush_lsn()")" = 1 ] && break
			sleep 0.1
		done
		mark caught_up
		if [ "$MODE" = best ]; then
			"$here/repmgr_iptables.sh" "$IP" "$BACKUP" "$PG_PORT" "$MASTER_PORT" "app"; mark app_nat
			barman_as switch-wal --force --archive --archive-timeout=90 "$BARMAN_NAME" >/dev/null 2>&1; mark "switch_wal rc=$?"
		else
			barman_as switch-wal --force --archive --archive-timeout=90 "$BARMAN_NAME" >/dev/null 2>&1; mark "switch_wal rc=$?"
			"$here/repmgr_iptables.sh" "$IP" "$BACKUP" "$PG_PORT" "$MASTER_PORT" "app"; mark app_nat
		fi
	fi
	mark end
	# (the article's script also writes the master's id to /usr/local/bin/repmgr_master for its @reboot script)
	echo "$NODE_ID" >"$here/repmgr_master"
fi

if [[ "$EVENT" =~ ^(standby_register|standby_follow|repmgrd_failover_follow|repmgrd_standby_reconnect)$ ]]; then
	psql_ip "select pg_drop_replication_slot('$SLOT_NAME') from pg_replication_slots where slot_name = '$SLOT_NAME';" >/dev/null 2>&1
	mark slot_dropped
fi
exit 0
