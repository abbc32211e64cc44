#!/bin/bash
# demo.sh: the README's first command.  On a fresh Debian 12 machine, as root:
# installs what it needs, builds and installs the extension and its programs, brings up
# the namespace cluster (test/cluster), shows its state, kills the primary with kill -9
# under a writer that commits through the application endpoint, and prints the failover
# as it happens, in milliseconds since the kill.  The cluster is left running; the last
# lines say how to enter it and how to tear it down.  Every wait is bounded.
# Environment: BHA_PREFIX (default bha), BHA_DATA (see test/cluster/lib.sh); BHA_DEBIAN=13
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

if [ -n "${BHA_DEMO_IN_ROOT:-}" ]; then
	say "the cluster '$BHA_PREFIX' ends with the root's namespaces"
	bha_down >/dev/null 2>&1
	exit 0
fi
say "the cluster '$BHA_PREFIX' is left running"
echo "enter a host:   BHA_PREFIX=$BHA_PREFIX $cl enter backup    (or db1, db2, app)"
echo "its state:      BHA_PREFIX=$BHA_PREFIX $cl status"
echo "tear it down:   BHA_PREFIX=$BHA_PREFIX $cl down"
