# lib_bench.sh: the failover benchmark's functions (docs/benchmark.md), on top of the namespace
# cluster of test/cluster/lib.sh, which it reuses unchanged.  Sourced by bench/failover.sh
# and test/bench/10_failover_short.t.
#
# Four sides, one cluster each (own prefix), brought up by the same bha_up:
#   ext      the extension (barman_ha.enabled = on, standby_slot = sync), repmgrd
#            without event_notification_command
#   article  the article's event-handler script (bench/baseline/repmgr_handler.sh,
#            MODE=article) run by repmgrd's event_notification_command; the extension
#            not loaded
#   working  the same handler in the order that works (MODE=working)
#   best     the working order with the app endpoint routed before switch-wal (MODE=best)
# "Baseline mode" is this file's overrides of three bring-up steps, read from BHB_MODE
# (set by bhb_use; any MODE but ext is a baseline): bha_first_route (routes and slot as the article does them
# by hand, then a restart without the extension in shared_preload_libraries),
# bha_repmgrd_start (adds event_notification_command before repmgrd starts) and
# bha_watch_start (the orchestrator's watch is ours: only the ext side runs it).
# The handler runs on the backup host as root, by an sshd forced command on port 2222
# (the article's sudo); repmgrd calls it over ssh with the DB node's key (notify.sh).

BHB_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BHA_QUIET=${BHA_QUIET:-1}
. "$BHB_TOP/test/cluster/lib.sh"

# bhb_use MODE PREFIX: point the cluster functions at one side's cluster.
bhb_use() {
	BHB_MODE=$1
	bha_use_prefix "$2"
	BHA_STANDBY_SLOT=sync
}

eval "bhb_orig_$(declare -f bha_first_route)"
eval "bhb_orig_$(declare -f bha_repmgrd_start)"
eval "bhb_orig_$(declare -f bha_watch_start)"

bha_watch_start() {
	[ "$BHB_MODE" = ext ] || return 0
	bhb_orig_bha_watch_start
}

bha_first_route() {
	[ "$BHB_MODE" = ext ] && { bhb_orig_bha_first_route; return; }
	local n
	bha_node_conf_all 1 0 || return 1
	# the baseline runs without the extension: not even loaded
	for n in db1 db2; do
		echo "shared_preload_libraries = 'repmgr'" >>"$BHA_DATA/$n/node.conf"
		bha_as "$n" postgres "$BHA_PGBIN/pg_ctl" -D "$BHA_DATA/$n/pgdata" -l "$BHA_DATA/$n/postgresql.log" \
			-m fast -w -t 60 restart >/dev/null || return 1
	done
	bha_wait 30 "db2 streaming from db1 again" bha_streams_from db1 db2 || return 1
	# the article's barman is a superuser (its switch-wal --force, the handler's slot)
	bha_sql db1 "ALTER ROLE barman SUPERUSER" >/dev/null || return 1
	bhb_handler_install || return 1
	# the article: open the ports by hand, let Barman create its slot
	bha_in backup "$BHA_DATA/bench/repmgr_iptables.sh" "${BHA_ADDR[db1]}" "$BHA_BACKUP_ADDR" 5432 $BHA_BARMAN_PORT || return 1
	bha_in backup "$BHA_DATA/bench/repmgr_iptables.sh" "${BHA_ADDR[db1]}" "$BHA_BACKUP_ADDR" 5432 $BHA_APP_PORT app || return 1
	bha_in backup barman -q receive-wal --create-slot "$BHA_SERVER" >/dev/null 2>&1
	bha_wait 30 "slot $BHA_SLOT on db1" bha_slot_exists db1 &&
	bha_wait 30 "both endpoints on db1" bha_endpoints_on db1
}

bha_repmgrd_start() {
	if [ "$BHB_MODE" != ext ] && ! grep -q '^event_notification_command' "$BHA_DATA/$1/repmgr.conf"; then
		echo "event_notification_command='$BHA_DATA/bench/notify.sh $1 %n %e'" >>"$BHA_DATA/$1/repmgr.conf"
	fi
	bhb_orig_bha_repmgrd_start "$1"
}

# The handler's files under $BHA_DATA/bench and a root sshd on the backup host (port
# 2222) whose forced command runs it.
bhb_handler_install() {
	local b=$BHA_DATA/bench s=$BHA_DATA/backup/sshd-bench n
	bha_mkdir root:root 0755 "$b" "$s" "$s/authorized_keys" || return 1
	cp "$BHB_TOP"/bench/baseline/*.sh "$b/" && chmod 755 "$b"/*.sh || return 1
	bha_write "$b/handler.conf" root:root 0644 <<EOC
DB1=${BHA_ADDR[db1]}
DB2=${BHA_ADDR[db2]}
BACKUP=$BHA_BACKUP_ADDR
MODE=$BHB_MODE
PGSSLMODE=verify-full
PGSSLROOTCERT=$BHA_TLS/ca.crt
PGSSLCERT=$BHA_TLS/barman.crt
PGSSLKEY=$BHA_TLS/barman.key
STREAMING_DIR=$BHA_DATA/backup/barman/$BHA_SERVER/streaming
PGBIN=$BHA_PGBIN
LOG=$b/handler.log
EOC
	for n in db1 db2; do
		echo "command=\"$b/handler_ssh.sh\",restrict $(cat "$BHA_DATA/$n/ssh/id_ed25519.pub")"
	done | bha_write "$s/authorized_keys/root" root:root 0644
	bha_write "$s/sshd_config" root:root 0644 <<EOC
ListenAddress $BHA_BACKUP_ADDR:2222
HostKey $BHA_DATA/backup/sshd/ssh_host_ed25519_key
PidFile $s/sshd.pid
AuthorizedKeysFile $s/authorized_keys/%u
AllowUsers root
PermitRootLogin forced-commands-only
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes yes
EOC
	bha_in backup /usr/sbin/sshd -f "$s/sshd_config" -E "$s/sshd.log" || return 1
	bha_wait 10 "the handler's sshd" test -s "$s/sshd.pid" || return 1
	for n in db1 db2; do
		echo "[$BHA_BACKUP_ADDR]:2222 $(cut -d' ' -f1,2 "$BHA_DATA/backup/sshd/ssh_host_ed25519_key.pub")" |
			bha_write "$BHA_DATA/$n/ssh/known_hosts_bench" postgres:postgres 0644
	done
}

# ---------------------------------------------------------------- one failover, measured

bhb_ms_of_log_line() {		# "2025-01-01 10:00:00.123 UTC [pid] ..." -> epoch ms
	date -d "$(cut -d' ' -f1-3 <<<"$1")" +%s%3N
}
bhb_bg() {			# bhb_bg PIDFILE CMD...: CMD in a session of its own
	setsid bash -c 'echo $$ >"$0"; exec "$@"' "$@" </dev/null &
}
bhb_bg_stop() {			# the session started by bhb_bg
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 0
	kill -TERM -- "-$pid" 2>/dev/null
	rm -f "$1"
}

# bhb_pollers_start NEW DIR: the new primary's view (role, slot, WAL reserved, Barman
# streaming) every 50 ms in one psql session; the backup host's DNAT rules every 20 ms.
bhb_pollers_start() {
	local new=$1 dir=$2
	# shellcheck disable=SC2016
	bhb_bg "$dir/poll_db.pid" bash -c '
		printf "%s\n" "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint, pg_is_in_recovery(),
			(SELECT count(*) FROM pg_replication_slots WHERE slot_name = '\''barman'\''),
			(SELECT count(*) FROM pg_replication_slots WHERE slot_name = '\''barman'\'' AND restart_lsn IS NOT NULL),
			(SELECT count(*) FROM pg_stat_replication WHERE application_name = '\''barman_receive_wal'\'' AND state = '\''streaming'\'')
			\watch 0.05" | ip netns exec "$0" runuser -u postgres -- "$1" -X -qAt -h "$2" -d postgres >"$3" 2>&1' \
		"$(bha_ns "$new")" "$BHA_PGBIN/psql" "$BHA_DATA/$new/run" "$dir/poll_db"
	# shellcheck disable=SC2016
	bhb_bg "$dir/poll_nat.pid" ip netns exec "$(bha_ns backup)" bash -c '
		while :; do
			t=${EPOCHREALTIME/./}
			r=$(iptables-legacy -w -t nat -S repmgr_dnat 2>/dev/null | sed -n "s/.*--dport \([0-9]*\) -j DNAT --to-destination \([0-9.]*\):.*/\1=\2/p" | tr "\n" " ")
			echo "${t:0:13} $r"
			sleep 0.02
		done >"$0"' "$dir/poll_nat"
}
bhb_pollers_stop() { bhb_bg_stop "$1/poll_db.pid"; bhb_bg_stop "$1/poll_nat.pid"; }

# bhb_first_db FILE COND: first poll time (ms) at which COND holds ($2 role f = primary,
# $3 slot, $4 reserved, $5 Barman streaming), after $T_P
bhb_first_db() { awk -F'|' -v tp="$T_P" "\$1 ~ /^[0-9]+\$/ && \$1 >= tp - 60 && ($2) { print \$1; exit }" "$1"; }
bhb_first_nat() { awk -v tp="$T_P" -v want="$2" '$1 >= tp - 60 && index($0, want) { print $1; exit }' "$1"; }

# bhb_failover SIDE OLD NEW ROUND LIMIT [FAULT]: OLD fails under a writer through 54322,
# NEW is promoted by repmgrd.  FAULT kill (default): kill -9 of OLD's postmaster; gone:
# OLD's cable cut (its host vanishes: no RST, no FIN, streams to it hang; OLD itself keeps
# running as a primary until bhb_heal).  Appends one line to $(bhb_tsv SIDE FAULT): side round
# fault_to_promotion slot reserved barman_nat barman_streaming app_nat first_commit
# stall_after reset lost converged (ms since the promotion)
bhb_failover() {
	local side=$1 old=$2 new=$3 round=$4 limit=${5:-240} fault=${6:-kill}
	local dir=$BHB_OUT/$side.$fault.$round w=w$fault$round t_kill n0 line end conv=no
	local t_slot t_res t_bs t_bn t_an t_fc stall reset lost blog0 ends first=$((round * 1000000))
	mkdir -p "$dir"
	# row numbers of their own per failover: kill rounds from 1e6, gone rounds from 5e8
	[ "$fault" = gone ] && first=$((first + 500000000))
	bha_writer_start "$w" "$first" || return 1
	bha_wait 30 "writer commits" bha_writer_has "$w" 20 || return 1
	n0=$(grep -c 'selected new timeline ID' "$BHA_DATA/$new/postgresql.log")
	blog0=$(wc -l <"$BHA_DATA/backup/log/barman.log")
	bhb_pollers_start "$new" "$dir"
	sleep 0.5
	t_kill=$(bha_now_ms)
	case $fault in
	kill) kill -9 "$(bha_pg_pid "$old")" ;;
	gone) bha_link "$old" down ;;
	*) echo "bhb_failover: unknown fault $fault" >&2; return 2 ;;
	esac
	T_P=""
	end=$(( t_kill + limit * 1000 ))
	while [ "$(bha_now_ms)" -lt "$end" ]; do
		sleep 0.5
		if [ -z "$T_P" ]; then
			line=$(grep 'selected new timeline ID' "$BHA_DATA/$new/postgresql.log" | sed -n "$((n0 + 1))p")
			[ -n "$line" ] && T_P=$(bhb_ms_of_log_line "$line")
			continue
		fi
		t_fc=$(bha_writer_first_after "$w" "$T_P")
		[ -n "$t_fc" ] || continue
		bha_endpoints_on "$new" || continue
		bha_barman_streams_from "$new" || continue
		if [ "$BHB_MODE" = ext ]; then
			bha_route_ok "$new" || continue
		else
			# both promote events handled (the article's script runs its sequence twice)
			ends=$(awk -v t="$t_kill" '$1 > t && $4 == "end"' "$BHA_DATA/bench/handler.log" 2>/dev/null | wc -l)
			[ "$ends" -ge 2 ] || continue
		fi
		conv=yes; break
	done
	sleep 1
	bhb_pollers_stop "$dir"
	bha_writer_stop "$w"
	[ -n "$T_P" ] || { echo "$side $round: no promotion of $new within ${limit}s" >&2; return 1; }
	t_slot=$(bhb_first_db "$dir/poll_db" '$3 == 1')
	t_res=$(bhb_first_db "$dir/poll_db" '$3 == 1 && $4 == 1')
	t_bs=$(bhb_first_db "$dir/poll_db" '$2 == "f" && $5 == 1')
	t_bn=$(bhb_first_nat "$dir/poll_nat" "$BHA_BARMAN_PORT=${BHA_ADDR[$new]}")
	t_an=$(bhb_first_nat "$dir/poll_nat" "$BHA_APP_PORT=${BHA_ADDR[$new]}")
	t_fc=$(bha_writer_first_after "$w" "$T_P")
	# the longest gap between two commits after the first one (the article's script's second run)
	stall=$(awk -v t="${t_fc:-0}" '$2 >= t { if (p) { g = $2 - p; if (g > m) m = g } p = $2 } END { print m + 0 }' "$BHA_DATA/app/$w.log")
	reset=no
	tail -n +"$((blog0 + 1))" "$BHA_DATA/backup/log/barman.log" | grep -qiE 'receive-wal --reset|resetting' && reset=yes
	if ! bha_barman_streams_from "$new"; then
		reset="not streaming"
	fi
	lost=$(bha_writer_lost "$w" "$new" | wc -l)
	rel() { [ -n "$1" ] && echo $(( $1 - T_P < 0 ? 0 : $1 - T_P )) || echo NA; }
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$side" "$round" $((T_P - t_kill)) \
		"$(rel "$t_slot")" "$([ -n "$t_res" ] && [ "$t_res" = "$t_slot" ] && echo yes || echo no)" \
		"$(rel "$t_bn")" "$(rel "$t_bs")" "$(rel "$t_an")" "$(rel "$t_fc")" "$stall" "$reset" "$lost" "$conv" \
		| tee -a "$(bhb_tsv "$side" "$fault")"
	[ "$BHB_MODE" = ext ] || awk -v t="$t_kill" '$1 > t' "$BHA_DATA/bench/handler.log" >"$dir/handler.log" 2>/dev/null
	[ "$BHB_MODE" = ext ] && bha_events "$new" >"$dir/events" 2>/dev/null
	[ "$conv" = yes ]
}

# bhb_tsv SIDE FAULT: the file of SIDE's failovers by FAULT: SIDE.tsv for kill, SIDE-FAULT.tsv
# for the others (report.sh reads them by these names).
bhb_tsv() { if [ "$2" = kill ]; then echo "$BHB_OUT/$1.tsv"; else echo "$BHB_OUT/$1-$2.tsv"; fi; }

# bhb_heal OLD NEW: after either fault, OLD's postmaster stopped (the cut-off stale primary
# of a host-gone failover, immediate: its walsenders wait for peers it cannot reach) and its
# cable plugged back, so that bhb_rejoin finds a stopped server on a reachable host.  While
# the cable was cut, ARP for OLD's peers failed: such neighbour entries answer "No route to
# host" for a while, so they are flushed, and OLD must reach NEW's PostgreSQL again.
bhb_heal() {
	local h
	if bha_pg_ours "$1"; then
		bha_as "$1" postgres "$BHA_PGBIN/pg_ctl" -D "$BHA_DATA/$1/pgdata" -m immediate -w -t 60 stop >/dev/null || return 1
	fi
	bha_link "$1" up
	for h in $BHA_HOSTS; do ip -n "$(bha_ns "$h")" neigh flush all; done
	bha_wait 30 "$1 to reach $2's PostgreSQL" bhb_reaches "$1" "$2"
}
bhb_reaches() { bha_in "$1" timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/5432"' "${BHA_ADDR[$2]}" 2>/dev/null; }

# bhb_rejoin OLD NEW: the killed OLD back as a standby of NEW with a fresh repmgrd that follows
# NEW, synchronous again, Barman streaming from NEW (up to a cron tick for the baselines).
bhb_rejoin() {
	bha_rejoin "$1" "$2" || {
		echo "rejoin of $1, or its fresh repmgrd, failed" >&2
		tail -n 20 "$BHA_DATA/$1/rejoin.log" >&2
		echo "$1's server log:" >&2; tail -n 10 "$BHA_DATA/$1/postgresql.log" >&2
		return 1
	}
	bha_wait 60 "$1 streaming from $2" bha_streams_from "$2" "$1" || return 1
	bha_wait 60 "$1 the synchronous standby" bhb_sync_is "$2" "$1" || return 1
	bha_wait 130 "Barman streaming from $2" bha_barman_streams_from "$2" || return 1
	if [ "$BHB_MODE" = ext ]; then
		bha_wait 60 "route ok on $2" bha_route_ok "$2" && bha_wait 60 "standby slot on $1" bha_slot_exists "$1"
	fi
}
bhb_sync_is() { [ "$(bha_sql "$1" "SELECT count(*) FROM pg_stat_replication WHERE application_name = '$2' AND sync_state = 'sync'" 2>/dev/null)" = 1 ]; }

# bhb_wal_gap: bytes of WAL missing from Barman's archive, over every timeline (the
# segments a recovery through all timeline switches needs), after a switch-wal.
bhb_wal_gap() {
	bha_switch_wal >/dev/null 2>&1
	bha_in backup timeout 60 barman -q cron >/dev/null 2>&1
	/usr/bin/python3 - "$BHA_DATA/backup/barman/$BHA_SERVER/wals" <<'PY'
import gzip, os, re, sys
def text(path):		# Barman compresses history files too (compression = gzip)
    raw = open(path, 'rb').read()
    return (gzip.decompress(raw) if raw[:2] == b'\x1f\x8b' else raw).decode()
segs, hist = {}, {}
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        m = re.match(r'^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$', f)
        if m:
            segs.setdefault(int(m[1], 16), set()).add(int(m[2], 16) * 256 + int(m[3], 16))
        m = re.match(r'^([0-9A-F]{8})\.history$', f)
        if m:
            last = [l.split() for l in text(os.path.join(root, f)).splitlines() if l.strip() and not l.startswith('#')][-1]
            hi, lo = last[1].split('/')
            hist[int(m[1], 16)] = ((int(hi, 16) << 32) + int(lo, 16)) // (16 << 20)
tls = sorted(segs)
missing = 0
for i, tl in enumerate(tls):
    lo = hist.get(tl, min(segs[tl]))
    nxt = [hist[t] for t in tls[i + 1:] if t in hist]
    hi = nxt[0] - 1 if nxt else max(segs[tl])
    gone = sum(1 for s in range(lo, hi + 1) if s not in segs[tl])
    missing += gone
    print('timeline %d: segments %X..%X needed, %d archived, %d missing' % (tl, lo, hi, len(segs[tl]), gone), file=sys.stderr)
print(missing * (16 << 20))
PY
}

# bhb_pgbench SECONDS: TPS through the app endpoint, 2 clients, synchronous commit.
bhb_pgbench_init() {
	bha_in app env PGPASSFILE="$BHA_DATA/app/pgpass" "$BHA_PGBIN/pgbench" -i -s 1 -q \
		"host=$BHA_BACKUP_ADDR port=$BHA_APP_PORT dbname=appdb user=app" >/dev/null 2>&1
}
bhb_pgbench() {
	bha_in app env PGPASSFILE="$BHA_DATA/app/pgpass" "$BHA_PGBIN/pgbench" -n -c 2 -j 2 -T "$1" \
		"host=$BHA_BACKUP_ADDR port=$BHA_APP_PORT dbname=appdb user=app" 2>/dev/null |
		sed -n 's/^tps = \([0-9.]*\) (without.*/\1/p'
}

# bhb_library PRIMARY STANDBY on|off: the extension loaded or not on both nodes of one
# cluster (shared_preload_libraries in node.conf, both servers restarted, repmgrd paused
# meanwhile so that the restart is no failover), back to the same steady state: standby
# synchronous, Barman streaming.  For pgbench with and without the library, one cluster.
bhb_library() {
	local p=$1 s=$2 n
	for n in "$s" "$p"; do
		sed -i '/^shared_preload_libraries/d' "$BHA_DATA/$n/node.conf"
		[ "$3" = off ] && echo "shared_preload_libraries = 'repmgr'" >>"$BHA_DATA/$n/node.conf"
	done
	bha_repmgr "$p" service pause >/dev/null 2>&1 || return 1
	for n in "$s" "$p"; do
		bha_as "$n" postgres "$BHA_PGBIN/pg_ctl" -D "$BHA_DATA/$n/pgdata" -l "$BHA_DATA/$n/postgresql.log" \
			-m fast -w -t 60 restart >/dev/null || return 1
	done
	bha_wait 60 "$s the synchronous standby" bhb_sync_is "$p" "$s" &&
		bha_wait 130 "Barman streaming from $p" bha_barman_streams_from "$p" &&
		bha_wait 30 "the primary worker $([ "$3" = on ] && echo present || echo absent) on $p" \
			bhb_workers_are "$p" "$([ "$3" = on ] && echo 1 || echo 0)" &&
		{ [ "$3" = off ] || bha_wait 60 "route ok on $p" bha_route_ok "$p"; } &&
		bha_repmgr "$p" service unpause >/dev/null 2>&1
}

bhb_workers_are() { [ "$(bha_sql "$1" "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'barman_ha%'")" = "$2" ]; }

# bhb_stats COLUMN FILE...: "median min max" of a numeric column (NA skipped)
bhb_stats() {
	local c=$1; shift
	awk -F'\t' -v c="$c" '$c ~ /^[0-9.]+$/ { print $c }' "$@" | sort -n |
		awk '{ a[NR] = $1 } END { if (!NR) { print "NA NA NA"; exit } m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m, a[1], a[NR] }'
}

# bhb_up: bha_up, once more after a teardown if it fails (four clusters brought up at once on
# two cores next to other engineers' clusters: `barman check` OK has missed its 60 s once).
bhb_up() {
	BHA_QUIET=0 bha_up && return 0
	echo "# bring-up of $BHA_PREFIX failed; barman check said:" >&2
	bha_barman_check 2>&1 | grep -v ': OK' | sed 's/^/#   /' >&2
	bha_down >/dev/null 2>&1
	echo "# second attempt" >&2
	BHA_QUIET=0 bha_up
}

# bhb_up_all: bhb_up of every side in $SIDES (the caller's side() selects one) in the
# background, 8 s apart so that their base backups do not all compete at once on two cores.
# up_SIDE holds each pid, $BHB_OUT/up.SIDE.log each output.
bhb_up_all() {
	local s
	for s in $SIDES; do
		( side "$s"; bhb_up ) >"$BHB_OUT/up.$s.log" 2>&1 &
		eval "up_$s=$!"
		sleep 8
	done
}
