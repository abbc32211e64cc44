#!/bin/bash
# 06_barman_fork.t: Barman AHEAD of the promoted standby, for real.
# db1 streams to Barman (synchronous) and to db2 (asynchronous).  db2 stops;
# db1 commits, switches to a new segment and commits again: Barman has a
# segment db2 never received.  db1 dies, db2 is promoted (timeline 2, forked
# before Barman's position).  pg_receivewal would restart at its newest
# segment on timeline 1, which is not in db2's history ("requested starting
# point ... is not in this server's history").  `barman reset` moves that
# WAL aside (step barman_fork) and Barman follows onto timeline 2 with no
# --reset; a commit on timeline 2 completes with Barman as its synchronous
# standby, and the history and timeline-2 segments reach Barman.
. "$(dirname "$0")/lib.sh"
plan 21
hosts 2
barman_setup "$B" 5 "orchestrator test, Barman ahead of the new primary"

# db1, db2 (streaming from db1), Barman streaming from db1; db2 falls behind
# Barman: "mid" stops db2 before db1 writes a row, a switch and a row (the fork
# lies inside a segment Barman has complete, plus a .partial past it); "boundary"
# lets db2 replay up to a segment switch, then db1 writes a row (timeline 2 starts
# exactly at a segment start, Barman has that segment's .partial of timeline 1
# and the complete one before it: pg_receivewal would ask for timeline 1 at its
# very end, which the server answers with the end of the timeline at once).
run_case() {
	diag "---- case $1"
	pg_up 1 "$S1"
	psql1 -c "SELECT pg_create_physical_replication_slot('barman', true)" >/dev/null || bail "slot"
	psql1 -c "ALTER SYSTEM SET synchronous_standby_names = 'barman_receive_wal'" -c "SELECT pg_reload_conf()" >/dev/null
	natroot "$B" route db1 >/dev/null || bail "route"


	ip netns exec "$B" "$ORCH" barman reset >"$T/out" 2>&1 || { cat "$T/out" >&2; bail "first barman reset"; }

	# db2: a streaming standby of db1 (pg_basebackup -R), then stopped
	install -d -o postgres -g postgres -m 0700 "$T/pg2"
	ip netns exec "$S2" runuser -u postgres -- "$PGBIN/pg_basebackup" -h 10.213.0.1 -U postgres -D "$T/pg2" -R -X stream -c fast 2>"$T/basebackup.err" ||
		{ cat "$T/basebackup.err" >&2; bail "pg_basebackup"; }
	rm -f "$T/pg2/.s.PGSQL.5432.lock" "$T/pg2/log"		# db1's socket folder is its data folder
	PGDATAS+=("$T/pg2")
	pg2_start || { tail -n 5 "$T/pg2/log" >&2; bail "db2 does not start"; }
	psql1 -c "CREATE TABLE t (x text); INSERT INTO t VALUES ('a')" >/dev/null
	# boundary: db2 replays up to the end of the switch record (what pg_switch_wal returns)
	sw=0/0
	[ "$1" = boundary ] && sw=$(psql1 -c "INSERT INTO t VALUES ('b')" -c "SELECT pg_switch_wal()" | tail -n 1)
	for _ in $(seq 100); do [ "$(psql2 -c "SELECT count(*) >= 1 AND pg_last_wal_replay_lsn() >= '$sw' FROM t" 2>/dev/null)" = t ] && break; sleep 0.1; done
	ip netns exec "$S2" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg2" -s -m fast -w stop

	# db1 goes on alone: Barman (synchronous) receives WAL db2 never sees
	if [ "$1" = mid ]; then
		psql1 -c "INSERT INTO t VALUES ('b')" -c "SELECT pg_switch_wal()" -c "INSERT INTO t VALUES ('c')" >/dev/null
	else
		psql1 -c "INSERT INTO t VALUES ('c')" >/dev/null
	fi
	barman_lsn=$(psql1 -c "SELECT flush_lsn FROM pg_stat_replication WHERE application_name = 'barman_receive_wal'")
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg1" -s -m immediate stop

	# db2 promoted: timeline 2 forks before Barman's position
	pg2_start || bail "db2 does not start again"
	ip netns exec "$S2" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg2" -s -w promote || bail "promote"
	psql2 -c "SELECT pg_create_physical_replication_slot('barman', true)" >/dev/null || bail "slot on db2"
	fork=$(cut -f2 "$T/pg2/pg_wal/00000002.history")
	# db2 may have received what db1 logged between the switch and db2's stop (bgwriter's
	# running-xacts snapshot, every 15 s): then timeline 2 does not start at a segment
	if [ "$1" = boundary ] && [ "$(psql2 -c "SELECT ('$fork'::pg_lsn - '0/0') % setting::numeric = 0 FROM pg_settings WHERE name = 'wal_segment_size'")" != t ]; then
		diag "db2 replayed WAL past the switch (timeline 2 forks at $fork): the case is built again"
		return 2
	fi
	before=$(ls "$T/barman/pg/streaming" | tr '\n' ' ')
	diag "Barman flushed up to $barman_lsn on timeline 1; db2 forked timeline 2 at $fork; streaming/: $before"
	ok $([ "$(psql2 -c "SELECT '$barman_lsn'::pg_lsn > '$fork'::pg_lsn")" = t ]; echo $?) \
		"$1: Barman holds timeline-1 WAL past db2's fork point ($barman_lsn > $fork)"

	natroot "$B" route db2 >/dev/null || bail "route db2"
	out=$(ip netns exec "$B" "$ORCH" barman reset 2>"$T/err"); rc=$?
	diag "$(echo "$out" | sed 's/^/  /')"
	[ $rc -eq 0 ] || diag "$(grep -i error "$T/barman/barman.log" | tail -n 5)"
	is $rc 0 "$1: barman reset onto the new primary exits 0 ($(tail -n 1 "$T/err"))"
	like "$out" "step barman_fork ok [0-9.]+ .*timeline 2 forked from 1 at $fork: [1-9] files? ahead moved to" \
		"$1: barman_fork moved the WAL past the fork aside"
	[ "$1" = boundary ] && like "$out" "timeline 1 ended at a segment start: 00000002[0-9A-F]{16}.partial created" \
		"$1: a zero-filled timeline-2 .partial makes pg_receivewal start on timeline 2, not at the end of timeline 1"
	ahead=$(ls "$T/barman/pg/errors" 2>/dev/null | grep -c 'ahead-of-tl2')
	ok $([ "$ahead" -ge 1 ]; echo $?) "$1: kept, not deleted: $ahead file(s) in errors/ ($(ls "$T/barman/pg/errors" 2>/dev/null | tr '\n' ' '))"
	like "$out" "step barman_caught_up ok [0-9.]+ sync: flush_lsn" "$1: Barman caught up with the new primary"
	like "$out" "step switch_wal ok" "$1: switch-wal archived on timeline 2"
	timeout 10 ip netns exec "$S2" runuser -u postgres -- "$PGBIN/psql" -X -At -h "$T/pg2" -d postgres \
		-c "INSERT INTO t VALUES ('d')" >/dev/null
	ok $? "$1: a commit on timeline 2 completes (Barman its synchronous standby)"
	is "$(psql2 -c "SELECT state || ' ' || (flush_lsn >= pg_current_wal_flush_lsn()) FROM pg_stat_replication WHERE application_name = 'barman_receive_wal'")" \
		"streaming true" "$1: Barman streams from db2 and has all of it"
	ok $([ -n "$(find "$T/barman/pg" -name '00000002.history*' | head -n 1)" ]; echo $?) "$1: timeline 2's history reached Barman"
	ok $(grep -qiE 'resetting|--reset|not in this server.s history' "$T/barman/barman.log"; [ $? -ne 0 ]; echo $?) \
		"$1: no --reset, no 'not in this server's history' in barman.log"
}

psql1() { ip netns exec "$S1" runuser -u postgres -- "$PGBIN/psql" -X -At -h "$T/pg1" -d postgres "$@"; }
psql2() { ip netns exec "$S2" runuser -u postgres -- "$PGBIN/psql" -X -At -h "$T/pg2" -d postgres "$@"; }
pg2_start() {
	ip netns exec "$S2" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg2" -l "$T/pg2/log" -w -s \
		-o "-c listen_addresses=10.213.0.2 -c unix_socket_directories=$T/pg2 -c port=5432 -c fsync=off" start
}
ours() { local p; for p; do [ "$(ip netns identify "$p" 2>/dev/null)" = "$B" ] && echo "$p"; done; }
barman_pids() { ours $(pgrep -u barman -f "pg_receivewal|receive-wal"); }
trap 'for p in $(barman_pids); do kill -9 $p; done; cleanup' EXIT
natroot "$B" init >/dev/null || bail "nat init"

# a clean slate for the next case: both servers, Barman's files, its processes
clean_slate() {
	pg_down; PGDATAS=()
	for p in $(barman_pids); do kill -9 $p; done
	sleep 0.5
	rm -rf "$T/pg1" "$T/pg2" "$T/barman/pg"
}

run_case mid
for try in 1 2 3; do		# run_case returns 2 when the case was not built
	clean_slate
	run_case boundary; rc=$?
	[ "$rc" -eq 2 ] || break
	[ "$try" -lt 3 ] || bail "the boundary case was not built in 3 tries"
done
exit $((TAP_FAIL > 0))
