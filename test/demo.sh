#!/bin/bash
# demo.sh: the README's first command.  On a fresh Debian 12 machine, as root:
# installs what it needs, builds and installs the extension and its programs, brings up
# the namespace cluster (test/cluster), shows its state, kills the primary with kill -9
# under a writer that commits through the application endpoint, and prints the failover
# as it happens, in milliseconds since the kill.  Then db1 rejoins as db2's standby and
# the backup host goes away under a writer: its cable cut for 10 s, the writer's outage and,
# once it is back, the first commit, Barman streaming again and `barman check` OK.
# BHA_PAIR=1 brings up the backup host pair (test/cluster/pair.sh: backup2 and keepalived's
# virtual address) and cuts backup's cable for 15 s: the address moving to backup2, its
# takeover and the first commit through it, then backup taking it back, Barman streaming again
# with no --reset; no acknowledged row lost either way.  The cluster is left running; the last
# lines say how to enter it and how to tear it down.  Every wait is bounded.
# Environment: BHA_PREFIX (default bha), BHA_DATA (see test/cluster/lib.sh), BHA_PAIR=1;
# BHA_DEBIAN=13
# (PostgreSQL 17, Barman 3.13) or unstable (PostgreSQL 18, Barman 3.20) runs the same demo on
# that release's packages, in a Debian root (test/roots.sh; made the first time, about 75 s);
# there the cluster ends with the demo, as everything inside the root does.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root" >&2; exit 2; }
export BHA_PREFIX=${BHA_PREFIX:-bha}
case ${BHA_DEBIAN:-12} in
12) root="" ;;
13|trixie) root=trixie ;;
unstable|sid) root=sid ;;
*) echo "demo.sh: BHA_DEBIAN is 12, 13 or unstable" >&2; exit 2 ;;
esac
if [ -n "$root" ]; then
	if ! command -v debootstrap >/dev/null; then
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; } >/dev/null ||
			{ echo "demo.sh: cannot install debootstrap" >&2; exit 1; }
	fi
	echo "== the Debian root '$root' (test/roots.sh)"
	"$top/test/roots.sh" make "$root" >/dev/null || exit 1
	# shellcheck source=test/lib/checkout_copy.sh
	. "$top/test/lib/checkout_copy.sh"
	checkout_copy "$top" bha-demo || exit 1
	BHA_DEBIAN=12 BHA_DEMO_IN_ROOT=1 BHA_ROOT_BIND=$CHECKOUT_COPY \
		"$top/test/roots.sh" run "$root" "$CHECKOUT_COPY/test/demo.sh"
	exit
fi
# shellcheck source=test/cluster/lib.sh
. "$top/test/cluster/lib.sh"
cl="$top/test/cluster/cluster.sh"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { echo "demo.sh: $*" >&2; echo "demo.sh: the cluster's logs: $BHA_DATA; tear it down with: $cl down" >&2; exit 1; }

if [ -z "${BHA_DEMO_IN_ROOT:-}" ]; then	# a root has its packages (test/roots.sh)
	say "installing packages (test/install-deps.sh)"
	"$top/test/install-deps.sh" || fail "installing packages failed"
fi
say "building and installing (make && make install), PostgreSQL $BHA_PG_MAJOR"
{ make -C "$top" -s && make -C "$top" -s install; } >/dev/null || fail "the build failed"

if [ -e "/run/netns/$(bha_ns br)" ]; then
	say "removing the cluster '$BHA_PREFIX' of an earlier run"
	bha_down
fi
say "bringing up the cluster '$BHA_PREFIX' (namespaces $BHA_PREFIX-*, data in $BHA_DATA)"
bha_up || { bha_dump_logs; fail "the cluster did not come up"; }

say "state before the failover"
bha_status

say "a writer on app commits numbered rows through $BHA_BACKUP_ADDR:$BHA_APP_PORT"
bha_writer_start demo 0 || fail "the writer did not start"
bha_wait 30 "20 commits through $BHA_APP_PORT" bha_writer_has demo 20 || fail "no commits through $BHA_APP_PORT"
echo "$(bha_writer_count demo) rows committed so far"

# ---------------------------------------------------------------- the failover, live
say "kill -9 of db1's postmaster; the failover as it happens (ms since the kill)"
pid=$(bha_pg_pid db1)
t0=$(bha_now_ms)
kill -9 "$pid" || fail "cannot kill db1's postmaster ($pid)"
printf '%8s  %s\n' 0 "kill -9 db1's postmaster (pid $pid)"
seen_promo="" seen_commit="" seen_routed="" last=0 t_promoted=""
deadline=$((t0 + 90000))
while :; do
	now=$(bha_now_ms)
	if [ -z "$seen_promo" ] && bha_is_primary db2; then
		seen_promo=$((now - t0))
		printf '%8s  %s\n' "$seen_promo" "db2 accepts writes (seen by the demo polling pg_is_in_recovery(); the events below carry their own times)"
	fi
	# the extension's and the backup host's steps on db2, with their own time stamps
	while IFS='|' read -r at ev ok ms detail; do
		[ -n "$at" ] || continue
		printf '%8s  %-18s %-5s %s\n' "$((at - t0))" "$ev" "$([ "$ok" = t ] && echo ok || echo FAIL)" "$detail (${ms} ms)"
		last=$at
		[ "$ev" = routed ] && seen_routed=1
		[ "$ev" = promoted ] && t_promoted=$((at - t0))
	done < <(bha_sql db2 "SELECT (extract(epoch FROM at) * 1000)::bigint, event, ok, round(duration_ms::numeric, 1), left(coalesce(detail, ''), 90)
		FROM barman_ha_events() WHERE at > to_timestamp($(( last > t0 ? last : t0 )) / 1000.0) ORDER BY at" 2>/dev/null | tr -d '\r' | awk -F'|' -v l="$last" '$1 > l')
	# commits already in flight may still be acknowledged by db1's backends just after the
	# kill: count from the promotion on
	if [ -z "$seen_commit" ] && [ -n "$t_promoted" ] && bha_writer_has demo 1 $((t0 + t_promoted)); then
		c=$(bha_writer_first_after demo $((t0 + t_promoted)))
		seen_commit=$((c - t0))
		printf '%8s  %s\n' "$seen_commit" "first commit through $BHA_APP_PORT after the promotion (writer on app)"
	fi
	[ -n "$seen_promo" ] && [ -n "$seen_commit" ] && [ -n "$seen_routed" ] && break
	if [ "$now" -ge "$deadline" ]; then
		echo "demo.sh: gave up after 90 s: promotion ${seen_promo:-not seen}, routed ${seen_routed:-not seen}, first commit ${seen_commit:-not seen}" >&2
		bha_dump_logs
		break
	fi
	sleep 0.1
done
if [ -n "$seen_commit" ] && [ -n "$t_promoted" ]; then
	echo "write RTO: first commit through $BHA_APP_PORT ${seen_commit} ms after the kill, $((seen_commit - t_promoted)) ms after the promotion"
fi
sleep 2
bha_writer_stop demo
lost=$(bha_writer_lost demo db2 | wc -l)
echo "writer: $(bha_writer_count demo) rows committed, $lost of them missing on db2"

say "state after the failover"
bha_wait 60 "barman check OK on db2" bha_barman_check_ok
bha_status

# ---------------------------------------------------------------- the backup host goes, live
# live T0 SECONDS STEP...: each STEP is "WHAT|CMD ARG..." (no spaces inside an ARG), polled
# every 0.1 s by a poller of its own (a slow one, barman check, delays no other) until CMD
# succeeds; printed then, in ms since epoch ms T0, in their order (a step waits 1.5 s for one
# seen later with an earlier time).  A CMD that prints "EPOCH_MS [DETAIL]" gives the step's
# own time (a commit's, a takeover's) and a detail.  fail() when SECONDS pass with a step not
# seen.
live() {
	local t0=$1 limit=$2 dir i at detail pending="" keep out upto l missing
	shift 2
	local -a step=("$@") pid=() shown=()
	dir=$(mktemp -d)
	for i in "${!step[@]}"; do
		# shellcheck disable=SC2086  # the step's words
		poll "$dir/$i" $((t0 + limit * 1000)) ${step[i]#*|} &
		pid[i]=$!
	done
	while :; do
		for i in "${!step[@]}"; do
			{ [ -n "${shown[i]:-}" ] || [ ! -s "$dir/$i" ]; } && continue
			read -r at detail <"$dir/$i"
			shown[i]=1
			pending+="$((at - t0))"$'\t'"${step[i]%%|*}${detail:+ ($detail)}"$'\n'
		done
		upto=$(( $(bha_now_ms) - t0 - 1500 ))
		[ "${#shown[@]}" -eq "${#step[@]}" ] && upto=$((limit * 1000))
		out="" keep=""
		while IFS= read -r l; do
			if [ "${l%%$'\t'*}" -le "$upto" ]; then out+=$(printf '%8s  %s' "${l%%$'\t'*}" "${l#*$'\t'}")$'\n'; else keep+="$l"$'\n'; fi
		done < <(printf '%s' "$pending" | sort -n -s -k1,1)
		printf '%s' "$out"
		pending=$keep
		[ "${#shown[@]}" -eq "${#step[@]}" ] && break
		missing=""
		for i in "${!step[@]}"; do [ -s "$dir/$i" ] || missing+="; ${step[i]%%|*}"; done
		if [ -n "$missing" ] && bha_gone "${pid[@]}"; then
			printf '%s' "$pending" | sort -n -s -k1,1 | awk -F'\t' '{printf "%8s  %s\n", $1, $2}'
			echo "demo.sh: not seen within $limit s: ${missing#; }" >&2
			rm -rf "$dir"
			bha_dump_logs
			fail "the backup host's act did not complete"
		fi
		sleep 0.1
	done
	wait "${pid[@]}"
	rm -rf "$dir"
}
# poll FILE END CMD...: CMD every 0.1 s until it succeeds, then its time in FILE (what CMD
# printed, else the time it succeeded); nothing once epoch ms END has passed
poll() {
	local f=$1 end=$2 out at
	shift 2
	until out=$("$@" 2>/dev/null); do
		[ "$(bha_now_ms)" -lt "$end" ] || return 1
		sleep 0.1
	done
	read -r at _ <<<"$out"
	[[ $at =~ ^[0-9]{13}$ ]] || out=$(bha_now_ms)
	echo "$out" >"$f.tmp" && mv "$f.tmp" "$f"
}
commit_after() { local c; c=$(bha_writer_first_after cut "$1"); [ -n "$c" ] && echo "$c"; }
# begun HOST FROM: when HOST's first takeover after epoch ms FROM began: keepalived runs it
# (notify_master) as it sets the address on HOST, so it is also the address's move
begun() {
	local b
	b=$(awk -v t="$2" '$1 == "takeover" && $2 == "begins" && $3 > t {print $3; exit}' \
		"$BHA_DATA/$1/keepalived/takeover.log" 2>/dev/null)
	[ -n "$b" ] && echo "$b"
}
# vip_at HOST FROM: HOST holds the address, and when it took it; commit_via HOST FROM: the
# writer's first commit once HOST took it
vip_at() { bha_vip_on "$1" && begun "$1" "$2"; }
commit_via() { local b; b=$(begun "$1" "$2") && commit_after "$b"; }
# barman_has LSN: Barman's receive-wal streams from db2 and has flushed WAL up to LSN (a
# walsender of the stream cut off still shows as streaming, stuck at its last position)
barman_has() {
	[ "$(bha_sql db2 "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'barman_receive_wal' AND state = 'streaming' AND flush_lsn >= '$1'" 2>/dev/null)" = 1 ]
}
barman_ok() { barman_has "$1" && bha_barman_check_ok; }
db1_sync() { [[ $(bha_sync_states db2) == *db1=sync* ]]; }
takeover_of() {		# takeover_of HOST FROM: its end and "MS ms, the nodes: WHAT THEY SAID, exit N"
	local r said end ms rc
	r=$(bha_takeover "$1" "$2")
	[ -n "$r" ] || return 1
	said=$(awk -v t="$2" '$1 == "takeover" && $2 == "begins" {b = $3 > t}
		b && $1 == "step" && $2 == "takeover_ask" {$1 = $2 = $3 = $4 = ""; s = $0} END {print s}' \
		"$BHA_DATA/$1/keepalived/takeover.log" | sed 's/^ *//')
	read -r end ms _ _ _ _ rc <<<"$r"
	# exit 1 after routing, on Barman's host: Barman's stream could not start yet (the cut-off
	# stream's walsender holds the slot); the primary's next level check starts it
	bha_routed_by "$r" && [ "$rc" = 1 ] && rc="1: routed, Barman not streaming yet"
	echo "$end $ms ms, the nodes: ${said:-no answer}, exit $rc"
}

say "db1 rejoins as db2's standby (repmgr node rejoin --force-rewind)"
bha_rejoin db1 db2 || fail "db1 did not rejoin (log: $BHA_DATA/db1/rejoin.log)"
bha_wait 60 "db1 streaming from db2" bha_streams_from db2 db1 || fail "db1 does not stream from db2"
bha_wait 60 "db1 the synchronous standby of db2" db1_sync ||
	fail "db1 is not db2's synchronous standby ($(bha_sync_states db2))"
bha_wait 120 "Barman streaming from db2, barman check OK" barman_ok "$(bha_sql db2 "SELECT pg_current_wal_lsn()")" ||
	fail "Barman is not OK on db2"
echo "db2's synchronous candidates: $(bha_sync_states db2); barman check OK"

if [ "$BHA_PAIR" = 1 ]; then
	cut_s=15
	say "the backup host goes away under the writer: backup's cable cut for $cut_s s (ms since the cut)"
else
	cut_s=10
	say "the backup host goes away under the writer: its cable cut for $cut_s s (ms since the cut)"
fi
bha_writer_start cut 1000000 || fail "the writer did not start"
bha_wait 30 "10 commits through $BHA_APP_PORT" bha_writer_has cut 10 || fail "no commits through $BHA_APP_PORT"
if [ "$BHA_PAIR" = 1 ] && { ! bha_vip_on backup || bha_vip_on backup2; }; then
	fail "backup does not hold $BHA_BACKUP_ADDR alone"
fi
t0=$(bha_now_ms)
bha_link backup down || fail "cannot cut backup's cable"
printf '%8s  %s\n' 0 "backup's cable cut (the veth on the bridge down; every process on it keeps running)"
if [ "$BHA_PAIR" = 1 ]; then
	live "$t0" "$cut_s" "backup2 holds $BHA_BACKUP_ADDR (keepalived: three missed advertisements)|vip_at backup2 $t0" \
		"backup2's takeover ended|takeover_of backup2 $t0" \
		"first commit through $BHA_BACKUP_ADDR:$BHA_APP_PORT, by backup2|commit_after $((t0 + 1000))"
	tk=$(bha_takeover backup2 "$t0")
	[[ $tk == *" ask ok exit 0" ]] || fail "backup2's takeover did not route: $tk"
fi
bha_sleep_until $((t0 + cut_s * 1000 - 1000))
# the primary's own commits go on (its synchronous standby is db1): a row on its socket
t1=$(bha_now_ms)
timeout 5 ip netns exec "$(bha_ns db2)" runuser -u postgres -- "$BHA_PGBIN/psql" -X -qAt -v ON_ERROR_STOP=1 \
	-h "$BHA_DATA/db2/run" -d appdb -c "INSERT INTO rows (i) VALUES (2000000)" >/dev/null ||
	fail "db2 did not commit on its own during the cut"
printf '%8s  %s\n' $((t1 - t0)) "db2 commits on its own (a row on its own socket: $(( $(bha_now_ms) - t1 )) ms)"
bha_sleep_until $((t0 + cut_s * 1000))
t_up=$(bha_now_ms)
n_cut=$(( $(bha_writer_after cut $((t0 + 1000))) - $(bha_writer_after cut "$t_up") ))
gap_cut=$(bha_writer_gap cut "$t0" "$t_up")
lsn=$(bha_sql db2 "SELECT pg_current_wal_lsn()") || fail "db2 does not answer"
bha_link backup up || fail "cannot plug backup's cable back"
printf '%8s  %s\n' $((t_up - t0)) "backup's cable back; $n_cut commits through $BHA_APP_PORT during the cut after its first second"
echo "    (ms since the cable's return from here on)"
if [ "$BHA_PAIR" = 1 ]; then
	live "$t_up" 120 "backup holds $BHA_BACKUP_ADDR again (priority 150, preemption)|vip_at backup $t_up" \
		"Barman streams again: it has the WAL written during the cut (up to $lsn)|barman_has $lsn" \
		"barman check OK|barman_ok $lsn" \
		"backup's takeover ended|takeover_of backup $t_up" \
		"first commit through $BHA_BACKUP_ADDR:$BHA_APP_PORT once backup holds it|commit_via backup $t_up"
	bha_routed_by "$(bha_takeover backup "$t_up")" || fail "backup's takeover did not route: $(bha_takeover backup "$t_up")"
	bha_wait 10 "backup2 to let the address go" eval '! bha_vip_on backup2' || fail "backup2 keeps $BHA_BACKUP_ADDR too"
else
	live "$t_up" 120 "Barman streams again: it has the WAL written during the cut (up to $lsn)|barman_has $lsn" \
		"barman check OK|barman_ok $lsn" \
		"first commit through $BHA_APP_PORT|commit_after $t_up"
fi
bha_barman_no_reset || fail "Barman needed receive-wal --reset"
bha_wait 15 "5 more commits" bha_writer_has cut 5 "$(bha_now_ms)" || fail "the writer stopped committing"
bha_writer_stop cut
lost=$(bha_writer_lost cut db2 | wc -l)
if [ "$BHA_PAIR" = 1 ]; then
	echo "applications' outage (longest gap between two commits): $gap_cut ms during the ${cut_s} s cut, $(bha_writer_gap cut "$t_up" "$(bha_now_ms)") ms at backup's return"
else
	echo "applications' outage (longest gap between two commits): $(bha_writer_gap cut "$t0" "$(bha_now_ms)") ms for a ${cut_s} s cut"
fi
echo "Barman needed no receive-wal --reset; writer: $(bha_writer_count cut) rows committed, $lost of them missing on db2"
[ "$lost" -eq 0 ] || fail "$lost acknowledged rows missing on db2"
[ "$BHA_PAIR" = 1 ] ||
	echo "One backup host: the applications wait as long as it is gone.  Two, with keepalived: BHA_PAIR=1 test/demo.sh on Debian 12 (docs/backup-host-pair.md)"

if [ -n "${BHA_DEMO_IN_ROOT:-}" ]; then
	say "the cluster '$BHA_PREFIX' ends with the root's namespaces"
	bha_down >/dev/null 2>&1
	exit 0
fi
say "the cluster '$BHA_PREFIX' is left running"
env="BHA_PREFIX=$BHA_PREFIX$([ "$BHA_PAIR" = 1 ] && echo " BHA_PAIR=1")"
echo "enter a host:   $env $cl enter backup    (or $([ "$BHA_PAIR" = 1 ] && echo "backup2, ")db1, db2, app)"
echo "its state:      $env $cl status"
echo "tear it down:   $env $cl down"
