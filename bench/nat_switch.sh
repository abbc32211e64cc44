#!/bin/bash
# nat_switch.sh: route switches by barman_ha_helper vs the seed's way, side by
# side in one run, each in a fresh private network namespace, each with a
# concurrent reader listing the nat table in a loop.  Every row moves BOTH
# endpoints (Barman's 54321 and the applications' 54322) to the other node:
#
#   helper   one exec of the setuid binary as postgres: `nat route NODE`
#            (both endpoints, one iptc_commit)
#   seed, 5 commands
#            the five iptables-legacy commands of the seed's two calls of
#            repmgr_iptables.sh, from one bash loop: -F repmgr_dnat,
#            -F repmgr_snat, -A SNAT, -A DNAT 54321, -A DNAT 54322
#   seed, script twice
#            bench/baseline/repmgr_iptables.sh run twice per switch, as root,
#            as the handler runs it (DB BACKUP 5432 54321, then
#            DB BACKUP 5432 54322 app); the article runs it with sudo, which
#            would add a sudo start to each call
#
# Prints a Markdown table: median and p95 per switch, the ratio to the helper,
# and the longest window in which the reader saw the table without a rule an
# endpoint needs (either endpoint's DNAT, or the SNAT).
#
#   sudo bench/nat_switch.sh [SWITCHES]      (default 1000)
#
# All rows are timed the same way: wall clock around one switch, from a bash
# loop inside the namespace.
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

# reader OUT: list the nat table until $T/stop exists; one line per sample:
# "TIME_US N_DNAT_54321 N_DNAT_54322 N_SNAT"
start_reader() {
	rm -f "$T/stop"
	ip netns exec "$NS" bash -c '
		while [ ! -e "$1/stop" ]; do
			n=$(iptables-legacy -w -t nat -S 2>/dev/null | awk "
				/--dport 54321 -j DNAT/ { b++ } /--dport 54322 -j DNAT/ { a++ } /-j SNAT/ { s++ }
				END { print b + 0, a + 0, s + 0 }")
			echo "${EPOCHREALTIME/./} $n"
		done >"$2"' reader "$T" "$1" &
	RPID=$!
	sleep 0.3
}
stop_reader() { touch "$T/stop"; wait "$RPID"; RPID=; }

# window FILE: samples, samples missing a rule (either endpoint's DNAT, or
# the SNAT), longest ms from the first such sample of a run to the next
# complete one
window() {
	awk '{ if ($2 == 0 || $3 == 0 || $4 == 0) { if (!s) s = $1; empty++ } else if (s) { w = $1 - s; if (w > max) max = w; s = 0 } n++ }
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

# --- the seed: its five iptables commands, then its script twice ----------
# the state the seed's setup leaves: chains, jumps, both endpoints on db1
seed_ns() {
	fresh_ns
	ip netns exec "$NS" bash -c '
		ipt() { iptables-legacy -w -t nat "$@"; }
		ipt -N repmgr_dnat; ipt -N repmgr_snat
		ipt -A PREROUTING -j repmgr_dnat; ipt -A OUTPUT -j repmgr_dnat; ipt -A POSTROUTING -j repmgr_snat
		ipt -A repmgr_snat -p tcp -d 10.213.0.1 --dport 5432 -j SNAT --to-source '$B'
		ipt -A repmgr_dnat -p tcp -d '$B' --dport 54321 -j DNAT --to-destination 10.213.0.1:5432
		ipt -A repmgr_dnat -p tcp -d '$B' --dport 54322 -j DNAT --to-destination 10.213.0.1:5432'
}

seed_ns
start_reader "$T/reader.shell"
ip netns exec "$NS" bash -c '
	ipt() { iptables-legacy -w -t nat "$@"; }
	for ((i = 0; i < $1; i++)); do
		a=10.213.0.$((2 - i % 2))
		t0=${EPOCHREALTIME/./}
		ipt --flush repmgr_dnat && ipt --flush repmgr_snat &&
		ipt -A repmgr_snat -p tcp -d $a --dport 5432 -j SNAT --to-source '$B' &&
		ipt -A repmgr_dnat -p tcp -d '$B' --dport 54321 -j DNAT --to-destination $a:5432 &&
		ipt -A repmgr_dnat -p tcp -d '$B' --dport 54322 -j DNAT --to-destination $a:5432 || exit 1
		t1=${EPOCHREALTIME/./}
		echo $((t1 - t0))
	done' bench "$N" >"$T/times.shell" || { echo "shell switch failed" >&2; exit 1; }
stop_reader

seed_ns
start_reader "$T/reader.script"
ip netns exec "$NS" bash -c '
	for ((i = 0; i < $2; i++)); do
		a=10.213.0.$((2 - i % 2))
		t0=${EPOCHREALTIME/./}
		"$1" $a '$B' 5432 54321 && "$1" $a '$B' 5432 54322 app || exit 1
		t1=${EPOCHREALTIME/./}
		echo $((t1 - t0))
	done' bench "$top/bench/baseline/repmgr_iptables.sh" "$N" >"$T/times.script" ||
	{ echo "script switch failed" >&2; exit 1; }
stop_reader
last=$(ip netns exec "$NS" iptables-legacy -w -t nat -S repmgr_dnat | grep -c -- "--to-destination 10.213.0.$((2 - (N - 1) % 2)):5432")
[ "$last" -eq 2 ] || { echo "script row: the last switch did not leave both endpoints on one node" >&2; exit 1; }

read -r hmed hp95 < <(stats "$T/times.helper")
read -r smed sp95 < <(stats "$T/times.shell")
read -r cmed cp95 < <(stats "$T/times.script")
pmean=$(awk '{ s += $1 } END { printf "%.3f", s / NR / 1000 }' "$T/times.step")
pmax=$(sort -n "$T/times.step" | tail -n 1 | awk '{ printf "%.1f", $1 / 1000 }')
read -r hn he hw < <(window "$T/reader.helper")
read -r sn se sw < <(window "$T/reader.shell")
read -r cn ce cw < <(window "$T/reader.script")
ratio() { awk -v a="$1" -v b="$hmed" 'BEGIN { printf "%.1f", a / b }'; }
sratio=$(ratio "$smed")
cratio=$(ratio "$cmed")

echo "### NAT route switch, both endpoints: barman_ha_helper vs the seed ($N switches each, $(uname -r), $(nproc) cores)"
echo
echo "| method | switches | median ms/switch | p95 ms | helper faster by (median) | reader samples | samples missing a rule | longest window missing a rule (ms) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
echo "| barman_ha_helper nat route (1 setuid exec, 1 commit) | $N | $hmed | $hp95 | 1.0x | $hn | $he | $hw |"
echo "| seed: iptables-legacy -F, -F, -A SNAT, -A DNAT, -A DNAT (5 execs) | $N | $smed | $sp95 | ${sratio}x | $sn | $se | $sw |"
echo "| seed: repmgr_iptables.sh twice (2 bash starts, 5 iptables execs, as root) | $N | $cmed | $cp95 | ${cratio}x | $cn | $ce | $cw |"
echo
echo "The helper is ${sratio}x faster per switch (median) than the seed's five commands and ${cratio}x faster than"
echo "the seed's script run twice, process starts included (a bare fork+exec from bash costs about 0.6-0.8 ms"
echo "here, so every row is mostly process starts: 1 for the helper, 5 and 7 for the seed).  A missing rule is"
echo "either endpoint's DNAT or the SNAT; in the seed's handler the two script calls are further apart than"
echo "here (barman receive-wal --stop and switch-wal run between them), so its app endpoint stays without a rule"
echo "for seconds, not milliseconds."
echo "Inside the helper one route (xtables lock, table read, one iptc_commit) takes $pmean ms on average, at most"
echo "$pmax ms (from promote's route_* step lines, which round to 0.1 ms; $(wc -l <"$T/times.step") routes). Last helper route: $final."
