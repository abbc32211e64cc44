#!/bin/bash
# 30_zero_gap.t: the zero-gap proof (docs/zero-gap.md) with real Barman, repmgrd and the
# backup host's programs, on two bring-ups in one run: barman_ha.standby_slot = 'sync',
# then 'drop' (the behaviour of the article's setup).
#
# Each: Barman made to lag (its pg_receivewal stopped with SIGSTOP; Barman is the
# potential synchronous standby, db2 the synchronous one, so commits go on) while
# db1 writes several WAL segments; small max_wal_size, wal_keep_size 0, CHECKPOINT
# on db1 and on db2 (restartpoints); then kill -9 of db1's postmaster, repmgrd
# promotes db2, the extension and the orchestrator move Barman.
#   sync: Barman resumes from db2 with no `receive-wal --reset`; the archive has no
#         missing segment across the timeline switch; a PITR of the backup taken
#         before the failover reaches a row committed after it.
#   drop: db2 recycled the WAL Barman needs: receive-wal fails ("already been
#         removed"), commits through the app endpoint block (Barman is the only
#         synchronous standby left) until an operator runs `receive-wal --reset`;
#         the archive then has a gap and the same PITR stops short of the row.
# A summary line per mode at the end (docs/zero-gap.md has a run side by side).
set -u
BHZ_BASE=${BHA_PREFIX:-bhz}
BHA_PREFIX=${BHZ_BASE}s
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP the cluster tests run as root"; exit 0; }
trap 'bha_on_exit' EXIT
trap 'exit 130' INT TERM HUP

declare -A SUMMARY

# pids inside our backup host of a given command name
bhz_backup_pids() {
	local p
	for p in $(ip netns pids "$(bha_ns backup)" 2>/dev/null); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ] && echo "$p"
	done
}
bhz_wals() { echo "$BHA_DATA/backup/barman/$BHA_SERVER/wals"; }
# bhz_missing FIRST_SEGMENT: segment numbers from FIRST on that the archive lacks on every timeline
bhz_missing() {
	local f n lo max=0 s
	local -A have=()
	for f in $(find "$(bhz_wals)" -type f -printf '%f\n' | grep -E '^[0-9A-F]{24}(\.gz)?$'); do
		s=$(( 16#${f:8:8} * 256 + 16#${f:16:8} ))
		have[$s]=1
		[ "$s" -gt "$max" ] && max=$s
	done
	lo=$(( 16#${1:8:8} * 256 + 16#${1:16:8} ))
	for ((n = lo; n <= max; n++)); do
		[ -n "${have[$n]:-}" ] || printf '%X/%02X ' $((n / 256)) $((n % 256))
	done
}
bhz_archived_range() {
	find "$(bhz_wals)" -type f -printf '%f\n' | grep -E '^[0-9A-F]{24}' | sort -k1.9 | sed -n '1p;$p' | sed 's/\.gz$//' | paste -sd' '
}
# a PITR copy as bha_pitr makes it, but done as soon as recovery has paused at the target
# OR the server has stopped (a missing WAL segment: "recovery ended before the target")
bhz_pitr() {
	bha_pitr_recover "$1" "$2" || return 1
	bha_pitr_launch 2>/dev/null
	bha_wait 120 "the PITR copy to pause at its target or to stop" bhz_pitr_settled
	bha_pitr_paused
}
bhz_reset_once() {
	local n
	for n in 1 2 3 4 5 6 7 8 9 10; do
		bha_in backup barman -q receive-wal --reset "$BHA_SERVER" >>"$BHA_DATA/backup/log/reset.log" 2>&1 && return 0
		sleep 1
	done
	return 1
}
bhz_operator_reset() {
	local r
	for r in 1 2 3; do
		BHZ_RESET_ROUNDS=$r
		bhz_reset_once
		bha_wait 15 "Barman streaming from db2 after --reset" bha_barman_streams_from db2 2>/dev/null && return 0
		diag "drop: still not streaming after --reset ($(grep 'pg_receivewal: error' "$BHA_DATA/backup/log/barman.log" | tail -n 1 | sed 's/.*error: //')); db2's slot at $(bha_sql db2 "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '$BHA_SLOT'"): made again"
		bha_sql db2 "SELECT pg_drop_replication_slot('$BHA_SLOT') FROM pg_replication_slots WHERE slot_name = '$BHA_SLOT' AND NOT active" >/dev/null 2>&1
		bha_sql db2 "SELECT pg_create_physical_replication_slot('$BHA_SLOT', true) WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '$BHA_SLOT')" >/dev/null 2>&1
	done
	return 1
}
# a commit through the app endpoint still waits after 5 s (timeout's 124; the row commits later)
bhz_app_blocks() {
	bha_in app env PGPASSFILE="$BHA_DATA/app/pgpass" timeout 5 "$BHA_PGBIN/psql" -X -qAt \
		"host=$BHA_BACKUP_ADDR port=$BHA_APP_PORT dbname=appdb user=app connect_timeout=2" -c "INSERT INTO rows (i) VALUES (-3)" >/dev/null 2>&1
	[ $? -eq 124 ]
}
bhz_pitr_settled() { bha_pitr_paused || [ ! -f "$BHA_DATA/pitr/pgdata/postmaster.pid" ]; }

# bhz_run MODE: one bring-up, the lagging Barman, the failover, the checks.
bhz_run() {
	local mode=$1 m rwpid lsn0 seg0 n t_kill t_streams first begin missing range target rows why
	bha_use_prefix "$BHZ_BASE${mode:0:1}"
	BHA_STANDBY_SLOT=$mode
	diag "==== standby_slot = '$mode' (cluster $BHA_PREFIX)"
	bha_down >/dev/null 2>&1
	bha_up || { bha_dump_logs; bail "cluster bring-up failed ($mode)"; }

	for m in db1 db2; do
		bha_sql "$m" "ALTER SYSTEM SET max_wal_size = '32MB'" >/dev/null &&
			bha_sql "$m" "ALTER SYSTEM SET min_wal_size = '32MB'" >/dev/null &&
			bha_sql "$m" "ALTER SYSTEM SET wal_keep_size = 0" >/dev/null &&
			bha_sql "$m" "SELECT pg_reload_conf()" >/dev/null
	done
	t_ok "$mode: db2's slot as standby_slot=$mode wants" bha_wait 30 "db2's slot ($mode)" bha_standby_slot_ok db2
	t_ok "$mode: Barman streams from db1" bha_barman_streams_from db1
	first=$(bha_in backup barman list-backups --minimal "$BHA_SERVER" | tail -n 1)
	begin=$(bha_in backup barman show-backup "$BHA_SERVER" "$first" | sed -n 's/^ *Begin WAL *: *\([0-9A-F]\{24\}\).*/\1/p')
	t_ok "$mode: a row committed before the failover" bha_app_sql "INSERT INTO rows (i) VALUES (-1)"

	# Barman lags: its pg_receivewal stopped
	rwpid=$(bhz_backup_pids pg_receivewal)
	t_ok "$mode: pg_receivewal ($rwpid) stopped (SIGSTOP)" kill -STOP $rwpid
	sleep 0.5
	lsn0=$(bha_sql db1 "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '$BHA_SLOT'")
	seg0=$(bha_sql db1 "SELECT pg_walfile_name('$lsn0')")
	for n in 1 2 3 4 5 6; do
		bha_sql db1 appdb "INSERT INTO rows (i) VALUES ($n)" >/dev/null
		bha_sql db1 "SELECT pg_switch_wal()" >/dev/null
	done
	bha_sql db1 "CHECKPOINT" >/dev/null
	lsn=$(bha_sql db1 "SELECT pg_current_wal_flush_lsn()")
	bha_wait 30 "db2 to replay $lsn" bash -c "[ \"\$(ip netns exec $(bha_ns db2) runuser -u postgres -- $BHA_PGBIN/psql -X -qAt -h $BHA_DATA/db2/run -d postgres -c \"SELECT pg_last_wal_replay_lsn() >= '$lsn'\")\" = t ]"
	bha_sql db2 "CHECKPOINT" >/dev/null
	bha_sql db2 "CHECKPOINT" >/dev/null
	diag "$mode: Barman stopped at $lsn0 ($seg0); db1 wrote up to $lsn; db2 keeps $(bha_sql db2 "SELECT min(name) || ' .. ' || max(name) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}\$'")"
	if [ "$mode" = sync ]; then
		t_ok "sync: db2 still has $seg0, the segment Barman needs" test -n "$(bha_sql db2 "SELECT 1 FROM pg_ls_waldir() WHERE name = '$seg0'")"
	else
		t_ok "drop: db2 has recycled $seg0, the segment Barman needs" test -z "$(bha_sql db2 "SELECT 1 FROM pg_ls_waldir() WHERE name = '$seg0'")"
	fi

	# the failover
	t_kill=$(bha_now_ms)
	kill -9 "$(bha_pg_pid db1)"
	t_ok "$mode: db2 promoted" bha_wait 40 "db2 promoted" bha_is_primary db2
	t_ok "$mode: both endpoints on db2" bha_wait 60 "both endpoints on db2" bha_endpoints_on db2
	if [ "$mode" = sync ]; then
		t_ok "sync: Barman streams from db2" bha_wait 60 "Barman streaming from db2" bha_barman_streams_from db2
		t_streams=$(( $(bha_now_ms) - t_kill ))
		t_ok "sync: a commit through $BHA_APP_PORT after the failover" bha_app_sql "INSERT INTO rows (i) VALUES (-2)"
		t_ok "sync: Barman needed no receive-wal --reset" bha_barman_no_reset
		SUMMARY[$mode.streams]="yes, $((t_streams / 1000)) s after the kill, no --reset"
	else
		t_ok "drop: receive-wal fails on db2: the WAL it needs is gone" \
			bha_wait 60 "pg_receivewal's 'already been removed' in barman.log" \
			grep -q 'has already been removed' "$BHA_DATA/backup/log/barman.log"
		grep -m1 'has already been removed' "$BHA_DATA/backup/log/barman.log" | sed 's/^/# drop: barman.log: /'
		t_ok "drop: commits through $BHA_APP_PORT block (Barman, the only synchronous standby left, is gone)" bhz_app_blocks
		# the operator's way out: --reset, which is what leaves the gap.  Barman 3.4 names
		# the restart segment after the slot's restart_lsn on the CURRENT timeline; Barman's
		# failed attempts had moved db2's slot back (a physical slot takes the receiver's
		# flush position as its restart_lsn), so that segment may not exist on timeline 2:
		# then the slot is made again, inactive, and --reset repeated (bhz_operator_reset).
		bhz_operator_reset
		t_ok "drop: Barman streams from db2 after receive-wal --reset" bha_wait 60 "Barman streaming from db2" bha_barman_streams_from db2
		t_streams=$(( $(bha_now_ms) - t_kill ))
		t_ok "drop: a commit through $BHA_APP_PORT after the reset" bha_app_sql "INSERT INTO rows (i) VALUES (-2)"
		SUMMARY[$mode.streams]="only after receive-wal --reset by hand ($BHZ_RESET_ROUNDS round(s)) ($((t_streams / 1000)) s after the kill in this run); commits blocked until then"
	fi
	# Barman's recover copies WAL up to the first segment archived after the target
	# time: the segment holding row -2 must be closed before the target
	sleep 2
	target=$(bha_sql db2 "SELECT now()")
	sleep 1
	timeout 30 ip netns exec "$(bha_ns db2)" runuser -u postgres -- "$BHA_PGBIN/psql" -X -qAt -h "$BHA_DATA/db2/run" \
		-d appdb -c "INSERT INTO rows (i) VALUES (-9)" >/dev/null
	t_ok "$mode: WAL after the target archived (switch-wal --archive)" bha_switch_wal
	bha_wait 30 "barman check" bha_barman_check_ok
	diag "$mode: barman check: $(bha_barman check --nagios "$BHA_SERVER" 2>&1 | head -c 300)"

	missing=$(bhz_missing "$begin")
	range=$(bhz_archived_range)
	diag "$mode: archive $range, from the first backup's begin WAL $begin, missing: ${missing:-none}"
	if [ "$mode" = sync ]; then
		is "$missing" "" "sync: no segment missing in the archive across the timeline switch"
	else
		t_ok "drop: the archive has a gap (missing ${missing:-nothing})" test -n "$missing"
	fi
	SUMMARY[$mode.missing]=${missing:-none}

	# PITR of the backup from before the failover to a time after the row -2
	bhz_pitr "$first" "$target"; rc=$?
	rows=$(bha_pitr_sql "SELECT count(*) FILTER (WHERE i = -1) || ' ' || count(*) FILTER (WHERE i = -2) || ' ' || count(*) FILTER (WHERE i = -9) FROM rows" 2>/dev/null)
	why="last WAL restored: $(grep 'restored log file "[0-9A-F]\{24\}"' "$BHA_DATA/pitr/postgresql.log" 2>/dev/null | tail -n 1 | sed 's/.*file "\([0-9A-F]*\)".*/\1/'), then: $(grep -m1 -E 'FATAL|paused' "$BHA_DATA/pitr/postgresql.log" 2>/dev/null | sed 's/^[^]]*] //')"
	diag "$mode: PITR of $first to $target: paused at target: $([ $rc -eq 0 ] && echo yes || echo no); rows before/after/past-target: ${rows:-none}; ${why}"
	if [ "$mode" = sync ]; then
		is "$rows" "1 1 0" "sync: the PITR of a backup from before the failover reaches the row committed after it"
		SUMMARY[$mode.pitr]="reaches the target: rows -1 and -2 present, -9 absent"
	else
		t_ok "drop: the same PITR cannot reach the row committed after the failover" test "$rc" -ne 0 -o "${rows:-x}" != "1 1 0"
		SUMMARY[$mode.pitr]="stops short ($why)"
	fi
	bha_pitr_stop
	bha_events db2 | sed "s/^/# $mode db2 event: /"
	[ "${BHA_KEEP:-0}" = 1 ] || bha_down >/dev/null 2>&1
}


# bhz_run_ahead: Barman AHEAD of the promoted standby (the last point of docs/zero-gap.md), for real.
# standby_slot 'sync'.  db2's cable cut (bha_link): db2 stays db1's synchronous standby
# (its walsender has not timed out), so db1's commits now wait, but their WAL goes on to
# Barman (potential synchronous standby, pg_receivewal --synchronous).  db1: a commit,
# a segment switch, a commit, a switch, a commit: Barman has WAL db2 never gets, the
# commits are never acknowledged.  kill -9 db1; repmgrd on db2 promotes it (it cannot
# see db1); db2's cable plugged back.  Timeline 2 forks where db2's WAL ends, behind
# Barman: pg_receivewal would restart on timeline 1 past the fork (or at its very end),
# which db2 refuses; the orchestrator's barman_fork sets that WAL aside and Barman follows.
bhz_sync_states() { bha_sql db1 "SELECT string_agg(application_name || '=' || sync_state, ',' ORDER BY application_name) FROM pg_stat_replication WHERE application_name IN ('db2', 'barman_receive_wal')"; }
bhz_sync_ok() { [ "$(bhz_sync_states)" = barman_receive_wal=potential,db2=sync ]; }
bhz_db1_barman_has_all() {
	[ "$(bha_sql db1 "SELECT flush_lsn >= pg_current_wal_flush_lsn() FROM pg_stat_replication WHERE application_name = 'barman_receive_wal'")" = t ]
}
bhz_run_ahead() {
	local first begin blsn n t_kill fork missing target rows rc
	bha_use_prefix "${BHZ_BASE}a"
	BHA_STANDBY_SLOT=sync
	diag "==== Barman ahead of the promoted standby, standby_slot = 'sync' (cluster $BHA_PREFIX)"
	bha_down >/dev/null 2>&1
	bha_up || { bha_dump_logs; bail "cluster bring-up failed (ahead)"; }
	first=$(bha_in backup barman list-backups --minimal "$BHA_SERVER" | tail -n 1)
	begin=$(bha_in backup barman show-backup "$BHA_SERVER" "$first" | sed -n 's/^ *Begin WAL *: *\([0-9A-F]\{24\}\).*/\1/p')
	t_ok "ahead: a row committed before the failover" bha_app_sql "INSERT INTO rows (i) VALUES (-1)"
	t_ok "ahead: Barman is db1's potential synchronous standby, db2 the synchronous one" \
		bha_wait 20 "barman_receive_wal=potential,db2=sync" bhz_sync_ok ||
		diag "ahead: sync states: $(bhz_sync_states)"
	bha_sql db1 "SELECT pg_switch_wal()" >/dev/null
	bha_sql db1 appdb "INSERT INTO rows (i) VALUES (-4)" >/dev/null
	bha_wait 20 "db2 to replay db1's WAL" bha_streams_from db1 db2
	t_ok "ahead: db2's cable cut" bha_link db2 down
	for n in 101 102 103; do
		# never acknowledged: they wait for db2 until db1 dies
		(timeout 60 ip netns exec "$(bha_ns db1)" runuser -u postgres -- "$BHA_PGBIN/psql" -X -qAt \
			-h "$BHA_DATA/db1/run" -d appdb -c "INSERT INTO rows (i) VALUES ($n)" >/dev/null 2>&1 &)
		bha_wait 10 "row $n written on db1" bash -c "[ \"\$(ip netns exec $(bha_ns db1) runuser -u postgres -- $BHA_PGBIN/psql -X -qAt -h $BHA_DATA/db1/run -d postgres -c \"SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'\")\" -ge $((n - 100)) ]"
		[ "$n" = 103 ] || bha_sql db1 "SELECT pg_switch_wal()" >/dev/null
	done
	t_ok "ahead: Barman has all of db1's WAL, the commits wait for db2" bha_wait 20 "Barman to flush all of db1's WAL" bhz_db1_barman_has_all
	blsn=$(bha_sql db1 "SELECT flush_lsn FROM pg_stat_replication WHERE application_name = 'barman_receive_wal'")
	t_kill=$(bha_now_ms)
	kill -9 "$(bha_pg_pid db1)"
	t_ok "ahead: repmgrd promotes db2 (cut off from db1)" bha_wait 60 "db2 promoted" bha_is_primary db2
	bha_link db2 up
	fork=$(cut -f2 "$BHA_DATA/db2/pgdata/pg_wal/00000002.history" 2>/dev/null)
	diag "ahead: Barman flushed up to $blsn on timeline 1; db2's timeline 2 forked at $fork"
	t_ok "ahead: Barman had received WAL past db2's fork point ($blsn > $fork)" \
		test "$(bha_sql db2 "SELECT '$blsn'::pg_lsn > '$fork'::pg_lsn")" = t
	t_ok "ahead: both endpoints on db2" bha_wait 60 "both endpoints on db2" bha_endpoints_on db2
	t_ok "ahead: Barman streams from db2" bha_wait 60 "Barman streaming from db2" bha_barman_streams_from db2
	bha_events db2 | grep -E 'barman_(fork|stop|start|caught_up)' | sed 's/^/# ahead db2 event: /'
	t_ok "ahead: the orchestrator moved Barman's WAL past the fork aside (barman_fork)" \
		bash -c "ls '$BHA_DATA/backup/barman/$BHA_SERVER/errors/' | grep -q ahead-of-tl2"
	diag "ahead: errors/: $(ls "$BHA_DATA/backup/barman/$BHA_SERVER/errors/" | tr '\n' ' ')"
	t_ok "ahead: Barman needed no receive-wal --reset" bha_barman_no_reset
	t_ok "ahead: no 'not in this server's history' in barman.log" bash -c "! grep -q 'not in this server' '$BHA_DATA/backup/log/barman.log'"
	t_ok "ahead: a commit through $BHA_APP_PORT after the failover" bha_app_sql "INSERT INTO rows (i) VALUES (-2)"
	is "$(bha_sql db2 appdb "SELECT count(*) FROM rows WHERE i IN (101, 102, 103)")" 0 \
		"ahead: the never-acknowledged rows are not on db2 (they are only in the WAL set aside)"
	sleep 2
	target=$(bha_sql db2 "SELECT now()")
	sleep 1
	bha_sql db2 appdb "INSERT INTO rows (i) VALUES (-9)" >/dev/null
	t_ok "ahead: WAL after the target archived (switch-wal --archive)" bha_switch_wal
	missing=$(bhz_missing "$begin")
	diag "ahead: archive $(bhz_archived_range), from $begin, missing: ${missing:-none}"
	is "$missing" "" "ahead: no segment missing in the archive across the timeline switch"
	bhz_pitr "$first" "$target"; rc=$?
	rows=$(bha_pitr_sql "SELECT count(*) FILTER (WHERE i = -1) || ' ' || count(*) FILTER (WHERE i = -4) || ' ' || count(*) FILTER (WHERE i = -2) || ' ' || count(*) FILTER (WHERE i IN (-9, 101, 102, 103)) FROM rows" 2>/dev/null)
	diag "ahead: PITR of $first to $target: paused at target: $([ $rc -eq 0 ] && echo yes || echo no); rows -1, -4, -2, others: ${rows:-none}"
	is "$rows" "1 1 1 0" "ahead: the PITR of a backup from before the failover reaches the row committed after it, without the unacknowledged rows"
	SUMMARY[ahead.streams]="yes, no --reset (barman_fork set the WAL past the fork aside)"
	SUMMARY[ahead.missing]=${missing:-none}
	SUMMARY[ahead.pitr]=$([ "$rows" = "1 1 1 0" ] && echo "reaches the target" || echo "FAILED: $rows")
	bha_pitr_stop
	[ "${BHA_KEEP:-0}" = 1 ] || bha_down >/dev/null 2>&1
}

for m in ${BHZ_MODES:-sync drop ahead}; do
	if [ "$m" = ahead ]; then bhz_run_ahead; else bhz_run "$m"; fi
done

for m in ${BHZ_MODES:-sync drop ahead}; do
	diag "SUMMARY standby_slot=$m: Barman after the failover: ${SUMMARY[$m.streams]:-?}; missing segments: ${SUMMARY[$m.missing]:-?}; PITR: ${SUMMARY[$m.pitr]:-?}"
done
done_testing
