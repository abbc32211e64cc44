#!/bin/bash
# promotion_slot.sh: how soon after a promotion the barman slot exists with
# WAL reserved, and what the workers cost when nothing happens.
#
# Side by side in one run, alternating:
#   extension  the primary worker creates the slot when recovery ends;
#   script     the best a repmgr event script can do: `pg_ctl promote -w`
#              (which polls), then psql creating the slot with WAL reserved.
# Time is measured the same way for both: from the server's "ready to accept
# connections" log line at the end of recovery to the slot's creation time.
# Then the idle cost of the workers over IDLE_SECONDS on a primary and a
# standby: wake-ups (context switches) per second and CPU seconds, next to
# the server's own walwriter and checkpointer in the same run.
#
# Usage (root): bench/promotion_slot.sh [ROUNDS] [IDLE_SECONDS]
set -eu
rounds=${1:-20}
idle_seconds=${2:-60}
[ "$(id -u)" -eq 0 ] || { echo "promotion_slot.sh: run as root" >&2; exit 2; }
bindir=$(pg_config --bindir)
work=$(mktemp -d /var/tmp/bha-bench-promotion.XXXXXX)
chown postgres: "$work"
port_primary=55501
port_standby=55502
pids_to_stop=()

as_pg() { runuser -u postgres -- "$@"; }
psql_at() { as_pg "$bindir/psql" -X -qAt -h "$work" -p "$1" -d postgres -c "$2"; }

cleanup() {
	for d in "$work"/primary "$work"/standby; do
		[ -f "$d/postmaster.pid" ] && as_pg "$bindir/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1
	done
	rm -rf "$work"
}
trap cleanup EXIT

as_pg "$bindir/initdb" -D "$work/primary" -A trust >/dev/null
cat >> "$work/primary/postgresql.conf" <<CONF
port = $port_primary
unix_socket_directories = '$work'
listen_addresses = ''
log_line_prefix = '%m '
shared_preload_libraries = 'repmgr_barman_ha'
barman_ha.helper_path = ''
barman_ha.node_name = 'bench'
wal_level = replica
max_wal_senders = 4
CONF
echo "local replication all trust" >> "$work/primary/pg_hba.conf"
as_pg "$bindir/pg_ctl" -D "$work/primary" -l "$work/primary.log" -w start >/dev/null
psql_at $port_primary "CREATE EXTENSION repmgr_barman_ha" >/dev/null

# A fresh standby of the primary, started and streaming, with the extension
# on or off ($1) and barman_ha.standby_slot $2.
new_standby() {
	rm -rf "$work/standby" "$work/standby.log"
	as_pg "$bindir/pg_basebackup" -h "$work" -p $port_primary -D "$work/standby" -R -X stream -c fast
	cat >> "$work/standby/postgresql.conf" <<CONF
port = $port_standby
barman_ha.enabled = $1
barman_ha.standby_slot = $2
CONF
	as_pg "$bindir/pg_ctl" -D "$work/standby" -l "$work/standby.log" -w start >/dev/null
	psql_at $port_standby "SELECT pg_drop_replication_slot('barman') FROM pg_replication_slots WHERE slot_name = 'barman'" >/dev/null
}

# One promotion; prints the ms from the end of recovery (the server's "ready
# to accept connections" log line) to the slot's creation.
promote_once() {
	local side=$1 created ready
	# 'drop': the standby has no slot when it is promoted, the case where
	# creating it fast matters ('sync' has it there already)
	new_standby "$([ "$side" = extension ] && echo on || echo off)" drop
	if [ "$side" = extension ]; then
		as_pg "$bindir/pg_ctl" -D "$work/standby" promote >/dev/null
		for _ in $(seq 1 500); do
			created=$(psql_at $port_standby "SELECT max(at) FROM barman_ha_events() WHERE event = 'slot_created'")
			[ -n "$created" ] && break
			sleep 0.01
		done
	else
		as_pg "$bindir/pg_ctl" -D "$work/standby" -w promote >/dev/null
		created=$(psql_at $port_standby "SELECT clock_timestamp() FROM pg_create_physical_replication_slot('barman', true)")
	fi
	[ -n "$created" ] || { echo "promotion_slot.sh: no slot after 5 s on the $side side" >&2; exit 1; }
	[ "$(psql_at $port_standby "SELECT restart_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = 'barman'")" = t ] ||
		{ echo "promotion_slot.sh: the $side slot reserves no WAL" >&2; exit 1; }
	ready=$(grep 'database system is ready to accept connections' "$work/standby.log" | tail -n 1 | cut -d' ' -f1-3)
	psql_at $port_standby "SELECT round(extract(epoch FROM '$created'::timestamptz - '$ready'::timestamptz) * 1000, 1)"
	as_pg "$bindir/pg_ctl" -D "$work/standby" -m fast -w stop >/dev/null
}

stats() {		# median min max of the numbers on stdin
	sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%s %s %s\n", m, a[1], a[NR]}'
}

: > "$work/extension.ms"; : > "$work/script.ms"
for i in $(seq 1 "$rounds"); do
	promote_once extension >> "$work/extension.ms"
	promote_once script >> "$work/script.ms"
done
read -r ext_med ext_min ext_max < <(stats < "$work/extension.ms")
read -r scr_med scr_min scr_max < <(stats < "$work/script.ms")

echo
echo "## Promotion to barman slot with WAL reserved ($rounds promotions per side, alternating)"
echo
echo "| side | median ms | min ms | max ms |"
echo "|---|---|---|---|"
echo "| extension (worker at end of recovery) | $ext_med | $ext_min | $ext_max |"
echo "| script (pg_ctl promote -w, then psql) | $scr_med | $scr_min | $scr_max |"
awk -v a="$scr_med" -v b="$ext_med" 'BEGIN { if (b > 0) printf "\nscript / extension, medians: %.1fx\n", a / b }'

# Idle cost: a primary and a standby ('sync', the default, which reads the
# primary's slot at every reconcile), nothing happening.
new_standby on sync
pid_of() {		# pid of the process of $2 whose title contains $1
	local postmaster
	postmaster=$(head -n 1 "$work/$2/postmaster.pid")
	for p in $(pgrep -P "$postmaster"); do
		grep -qa -- "$1" "/proc/$p/cmdline" && { echo "$p"; return; }
	done
}
sample() {		# context switches and CPU ticks of a pid
	local cs
	cs=$(awk '/ctxt_switches/ {s += $2} END {print s}' "/proc/$1/status")
	echo "$cs $(awk '{print $14 + $15}' "/proc/$1/stat")"
}
declare -A before
targets=("primary|barman_ha primary worker" "standby|barman_ha standby worker" "primary|walwriter" "primary|checkpointer" "standby|checkpointer" "standby|startup")
for t in "${targets[@]}"; do
	pid=$(pid_of "${t#*|}" "${t%%|*}")
	[ -n "$pid" ] || { echo "promotion_slot.sh: no process '${t#*|}' on ${t%%|*}" >&2; exit 1; }
	before[$t]="$pid $(sample "$pid")"
done
sleep "$idle_seconds"
hz=$(getconf CLK_TCK)
echo
echo "## Idle cost over $idle_seconds s (barman_ha.reconcile_interval = 10 s, helper_path empty, standby_slot = sync)"
echo
echo "| node | process | wake-ups/s | CPU s |"
echo "|---|---|---|---|"
for t in "${targets[@]}"; do
	read -r pid cs0 cpu0 <<< "${before[$t]}"
	read -r cs1 cpu1 < <(sample "$pid")
	awk -v n="${t%%|*}" -v p="${t#*|}" -v cs=$((cs1 - cs0)) -v cpu=$((cpu1 - cpu0)) -v s="$idle_seconds" -v hz="$hz" \
		'BEGIN { printf "| %s | %s | %.2f | %.2f |\n", n, p, cs / s, cpu / hz }'
done
