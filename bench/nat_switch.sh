#!/bin/bash
# nat_switch.sh: route switches by barman_ha_helper vs the seed's shell
# sequence (iptables-legacy -F repmgr_dnat; -F repmgr_snat; -A ...; -A ...,
# as repmgr_iptables.sh does), side by side in one run, each in a fresh
# private network namespace, each with a concurrent reader listing the DNAT
# chain in a loop.  Prints a Markdown table: median and p95 per switch, the
# ratio, and the longest window in which the reader saw no DNAT rule.
#
#   sudo bench/nat_switch.sh [SWITCHES]      (default 1000)
#
# Both sides are timed the same way: wall clock around one command (the
# helper: one exec of the setuid binary as postgres; the seed: four execs of
# iptables-legacy as root), from a bash loop inside the namespace.
set -u
N=${1:-1000}
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 2; }
T=/var/lib/bhh-bench-$$
NS=bhh$$-bench
B=10.213.0.10
cleanup() {
	[ -n "${RPID:-}" ] && kill "$RPID" 2>/dev/null && wait "$RPID" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "/etc/netns/$NS" "$T"
}
trap cleanup EXIT
mkdir -p "$T/state" /etc/repmgr_barman_ha "/etc/netns/$NS/repmgr_barman_ha" && chmod 755 "$T" "$T/state"
make -s -C "$top/src/helper" >/dev/null && make -s -C "$top/src/helper" install BINDIR="$T/bin" HELPER_GROUP=postgres >/dev/null || exit 1
cat >"/etc/netns/$NS/repmgr_barman_ha/helper.conf" <<CONF
backup_address = $B
node.db1 = 10.213.0.1:5432
node.db2 = 10.213.0.2:5432
state_file = $T/state/state
CONF
chmod 644 "/etc/netns/$NS/repmgr_barman_ha/helper.conf"

fresh_ns() {
	ip netns del "$NS" 2>/dev/null
	ip netns add "$NS" && ip -n "$NS" link set lo up
}

# reader OUT: list the chain until $T/stop exists; one line per sample:
# "TIME_US NRULES"
start_reader() {
	rm -f "$T/stop"
	ip netns exec "$NS" bash -c '
		while [ ! -e "$1/stop" ]; do
			n=$(iptables-legacy -w -t nat -S repmgr_dnat 2>/dev/null | grep -c -- "-j DNAT")
			echo "${EPOCHREALTIME/./} $n"
		done >"$2"' reader "$T" "$1" &
	RPID=$!
	sleep 0.3
}
stop_reader() { touch "$T/stop"; wait "$RPID"; RPID=; }

# window FILE: samples, empty samples, longest ms from the first empty
# sample of a run to the next sample with a rule
window() {
	awk '{ if ($2 == 0) { if (!s) s = $1; empty++ } else if (s) { w = $1 - s; if (w > max) max = w; s = 0 } n++ }
		END { printf "%d %d %.1f\n", n, empty, max / 1000 }' "$1"
}
# stats FILE (one duration in us per line): median and p95 in ms
stats() {
	sort -n "$1" | awk '{ a[NR] = $1 } END { printf "%.2f %.2f\n", a[int((NR + 1) / 2)] / 1000, a[int(NR * 0.95)] / 1000 }'
}

# --- the helper ---------------------------------------------------------
fresh_ns
ip netns exec "$NS" "$T/bin/barman_ha_helper" nat init >/dev/null
ip netns exec "$NS" "$T/bin/barman_ha_helper" nat route db1 >/dev/null
start_reader "$T/reader.helper"
ip netns exec "$NS" runuser -u postgres -- bash -c '
	for ((i = 0; i < $2; i++)); do
		node=db$((i % 2 + 1)); node=${node/db1/dbX}; node=${node/db2/db1}; node=${node/dbX/db2}
		t0=${EPOCHREALTIME/./}; "$1" nat route $node >/dev/null || exit 1; t1=${EPOCHREALTIME/./}
		echo $((t1 - t0))
	done' bench "$T/bin/barman_ha_helper" "$N" >"$T/times.helper" || { echo "helper switch failed" >&2; exit 1; }
stop_reader
final=$(ip netns exec "$NS" "$T/bin/barman_ha_helper" nat show | head -1)

# In-process time of one route (lock, read, one iptc_commit), as promote
# reports it in its step lines: alternate nodes on rising timelines.
ip netns exec "$NS" runuser -u postgres -- bash -c '
	for ((i = 0; i < $2; i++)); do "$1" promote db$((i % 2 + 1)) $((i + 2)) || exit 1; done' \
	bench "$T/bin/barman_ha_helper" "$((N / 5))" >"$T/promote.out" || { echo "promote failed" >&2; exit 1; }
awk '$1 == "step" && $2 ~ /^route_/ { print $4 * 1000 }' "$T/promote.out" >"$T/times.step"

# --- the seed's shell sequence -------------------------------------------
fresh_ns
ip netns exec "$NS" bash -c '
	ipt() { iptables-legacy -w -t nat "$@"; }
	ipt -N repmgr_dnat; ipt -N repmgr_snat
	ipt -A PREROUTING -j repmgr_dnat; ipt -A OUTPUT -j repmgr_dnat; ipt -A POSTROUTING -j repmgr_snat
	ipt -A repmgr_dnat -p tcp -d '$B' --dport 54321 -j DNAT --to-destination 10.213.0.1:5432'
start_reader "$T/reader.shell"
ip netns exec "$NS" bash -c '
	ipt() { iptables-legacy -w -t nat "$@"; }
	for ((i = 0; i < $1; i++)); do
		a=10.213.0.$((2 - i % 2))
		t0=${EPOCHREALTIME/./}
		ipt -F repmgr_dnat && ipt -F repmgr_snat &&
		ipt -A repmgr_dnat -p tcp -d '$B' --dport 54321 -j DNAT --to-destination $a:5432 &&
		ipt -A repmgr_snat -p tcp -d $a --dport 5432 -j SNAT --to-source '$B' || exit 1
		t1=${EPOCHREALTIME/./}
		echo $((t1 - t0))
	done' bench "$N" >"$T/times.shell" || { echo "shell switch failed" >&2; exit 1; }
stop_reader

read -r hmed hp95 < <(stats "$T/times.helper")
read -r smed sp95 < <(stats "$T/times.shell")
pmean=$(awk '{ s += $1 } END { printf "%.3f", s / NR / 1000 }' "$T/times.step")
pmax=$(sort -n "$T/times.step" | tail -n 1 | awk '{ printf "%.1f", $1 / 1000 }')
read -r hn he hw < <(window "$T/reader.helper")
read -r sn se sw < <(window "$T/reader.shell")
ratio=$(awk -v a="$smed" -v b="$hmed" 'BEGIN { printf "%.1f", a / b }')

echo "### NAT route switch: barman_ha_helper vs the seed's shell sequence ($N switches each, $(uname -r), $(nproc) cores)"
echo
echo "| method | switches | median ms/switch | p95 ms | reader samples | samples with no DNAT rule | longest window with no rule (ms) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
echo "| barman_ha_helper nat route (setuid exec, both endpoints, 1 commit) | $N | $hmed | $hp95 | $hn | $he | $hw |"
echo "| seed: iptables-legacy -F, -F, -A, -A (one endpoint) | $N | $smed | $sp95 | $sn | $se | $sw |"
echo
echo "Helper is ${ratio}x faster per switch (median), process start included (a bare fork+exec from bash costs"
echo "about 0.7 ms here, so both rows are mostly process starts: 1 for the helper, 4 for the seed)."
echo "Inside the helper one route (xtables lock, table read, one iptc_commit) takes $pmean ms on average, at most"
echo "$pmax ms (from promote's route_* step lines, which round to 0.1 ms; $(wc -l <"$T/times.step") routes). Last helper route: $final."
