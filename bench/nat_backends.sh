#!/bin/bash
# nat_backends.sh: one switch of both endpoints (54321 and 54322 to the other
# node), four ways side by side in one run, each with an empty ruleset and
# with 1,000, 2,500 and 5,000 unrelated rules present in the same subsystem:
#
#   libiptc backend    barman_ha_nat route NODE both, nat_backend = iptables
#                      (one iptc_commit: the whole nat table is read and
#                      replaced, unrelated rules included)
#   nftables backend   barman_ha_nat route NODE both, nat_backend = nftables
#                      (one netlink batch: flush @endpoints, add two elements)
#   nft CLI            nft -f FILE with the same batch ("flush map ...;
#                      add element ..."), one nft process per switch
#   iptables-legacy CLI  the article's event-handler way: -F repmgr_dnat,
#                      -F repmgr_snat, -A SNAT, -A DNAT 54321, -A DNAT 54322
#                      (five processes per switch)
#
# and, for reference, the two backends asked for the route that is already
# there (barman_ha_nat route, unchanged: start-up and read, no commit).
#
# Unrelated rules: a chain of N rules in the legacy nat table (not jumped to)
# for the iptables rows, a table of N rules for the nftables rows.  Each way
# has a private namespace of its own per size; the ways take turns in rounds
# of 20 switches, so that load from elsewhere falls on all alike.  Every call
# is timed from one bash inside the namespace (fork+exec+wait of the command,
# no `ip netns exec` per call).  barman_ha_nat runs as root and includes its
# conntrack sweep of the moved endpoints' flows.
#
#   sudo bench/nat_backends.sh [SWITCHES [SIZES]]    (default 200 "0 1000 2500 5000")
#
# Prints a Markdown table (median and p95 ms per switch), writes it with the
# notes to bench/results/nat_backends.md and a chart to
# bench/results/nat_backends.png (gnuplot).
set -u
N=${1:-200}
SIZES=${2:-0 1000 2500 5000}
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 2; }
for c in nft iptables-legacy iptables-legacy-restore gnuplot; do
	command -v $c >/dev/null || { echo "needs $c" >&2; exit 2; }
done
T=/var/lib/bhf-bench-$$
B=10.213.0.10
OUT=$top/bench/results
WAYS=(ipt iptcli nft nftcli)	# a namespace each, bhf$$-WAY
drop_ns() { local w; for w in "${WAYS[@]}"; do ip netns del "bhf$$-$w" 2>/dev/null; rm -rf "/etc/netns/bhf$$-$w"; done; }
cleanup() { drop_ns; rm -rf "$T"; }
trap cleanup EXIT
mkdir -p "$OUT" /etc/repmgr_barman_ha && mkdir -m 755 "$T" || exit 1
make -s -C "$top/nat" >/dev/null && make -s -C "$top/nat" install BINDIR="$T/bin" NAT_GROUP=root >/dev/null ||
	{ echo "barman_ha_nat does not build" >&2; exit 1; }
NAT=$T/bin/barman_ha_nat

# fresh_ns WAY SIZE: namespace bhf$$-WAY with SIZE unrelated rules where its
# backend keeps its rules, nat.conf, init, both endpoints on db1
fresh_ns() {
	local ns=bhf$$-$1 be=nftables i
	local d=/etc/netns/$ns/repmgr_barman_ha
	[[ $1 == ipt* ]] && be=iptables
	mkdir -p "$d" "$T/state-$1" && chmod 755 "/etc/netns/$ns" "$d" "$T/state-$1"
	ip netns add "$ns" && ip -n "$ns" link set lo up || exit 1
	printf '%s\n' "backup_address = $B" "nat_backend = $be" "node.db1 = 10.213.0.1:5432" \
		"node.db2 = 10.213.0.2:5432" "state_file = $T/state-$1/state" "lock_timeout = 5" >"$d/nat.conf"
	chmod 644 "$d/nat.conf"
	if [ $be = iptables ]; then
		{ echo '*nat'; echo ':unrelated - [0:0]'
		  for ((i = 0; i < $2; i++)); do
			echo "-A unrelated -s 10.99.$((i / 250)).$((i % 250 + 1))/32 -p tcp -m tcp --dport $((1024 + i)) -j ACCEPT"
		  done; echo COMMIT; } | ip netns exec "$ns" iptables-legacy-restore --noflush || exit 1
	else
		{ echo 'table ip unrelated {'; echo ' chain c {'
		  for ((i = 0; i < $2; i++)); do
			echo "  ip saddr 10.99.$((i / 250)).$((i % 250 + 1)) tcp dport $((1024 + i)) accept"
		  done; echo ' }'; echo '}'; } | ip netns exec "$ns" nft -f - || exit 1
	fi
	ip netns exec "$ns" "$NAT" init >/dev/null && ip netns exec "$ns" "$NAT" route db1 both >/dev/null ||
		{ echo "barman_ha_nat init/route failed ($1)" >&2; exit 1; }
}

# timed WAY OUT K SCRIPT: run SCRIPT (bash; $i = switch number) K times in
# bhf$$-WAY, from one bash there; one duration in us per line appended to OUT
timed() {
	ip netns exec "bhf$$-$1" bash -c '
		for ((i = 0; i < $1; i++)); do
			t0=${EPOCHREALTIME/./}
			'"$4"' || { echo "switch $i failed" >&2; exit 1; }
			t1=${EPOCHREALTIME/./}
			echo $((t1 - t0))
		done' bench "$3" >>"$2" || { echo "row $2 failed" >&2; exit 1; }
}
# node for switch i: db2, db1, db2, ... (a round of an even count ends on db1)
NODE='db$((2 - i % 2))'
ADDR='10.213.0.$((2 - i % 2))'

# routed WAY: where its endpoints lead, "A A"
routed() {
	if [[ $1 == ipt* ]]; then
		ip netns exec "bhf$$-$1" iptables-legacy -w -t nat -S repmgr_dnat |
			awk '/--to-destination/ { split($NF, a, ":"); printf "%s ", a[1] }'
	else
		ip netns exec "bhf$$-$1" nft -j list map ip repmgr_barman_ha endpoints |
			jq -r '[.nftables[] | select(.map) | .map.elem[][1].concat[0]] | join(" ")'
	fi
}
check() {			# check WAY: both endpoints on db1, as every round ends
	local got; got=$(routed "$1" | xargs)
	[ "$got" = "10.213.0.1 10.213.0.1" ] || { echo "$1: endpoints lead to '$got' after a round" >&2; exit 1; }
}

printf 'flush map ip repmgr_barman_ha endpoints\nadd element ip repmgr_barman_ha endpoints { 54321 : 10.213.0.%s . 5432, 54322 : 10.213.0.%s . 5432 }\n' \
	1 1 >"$T/db1.nft"
sed 's/10\.213\.0\.1 /10.213.0.2 /g' "$T/db1.nft" >"$T/db2.nft"

# Rounds of K switches per way, the ways in turn, so that load from
# elsewhere on the machine falls on every row alike.
K=20
ROUNDS=$(((N + K - 1) / K))
N=$((ROUNDS * K))
for s in $SIZES; do
	echo "# $s unrelated rules: $ROUNDS rounds of $K switches per way" >&2
	drop_ns
	for w in "${WAYS[@]}"; do fresh_ns "$w" "$s"; done
	for ((r = 0; r < ROUNDS; r++)); do
		timed ipt "$T/libiptc.$s" $K '"'"$NAT"'" route '"$NODE"' both >/dev/null'
		timed ipt "$T/libiptc_same.$s" $K '"'"$NAT"'" route db1 both >/dev/null'
		timed iptcli "$T/iptcli.$s" $K 'ipt() { iptables-legacy -w -t nat "$@"; }; a='"$ADDR"'
			ipt -F repmgr_dnat && ipt -F repmgr_snat &&
			ipt -A repmgr_snat -p tcp -d $a --dport 5432 -j SNAT --to-source '$B' &&
			ipt -A repmgr_dnat -p tcp -d '$B' --dport 54321 -j DNAT --to-destination $a:5432 &&
			ipt -A repmgr_dnat -p tcp -d '$B' --dport 54322 -j DNAT --to-destination $a:5432'
		timed nft "$T/nftbe.$s" $K '"'"$NAT"'" route '"$NODE"' both >/dev/null'
		timed nft "$T/nftbe_same.$s" $K '"'"$NAT"'" route db1 both >/dev/null'
		timed nftcli "$T/nftcli.$s" $K 'nft -f '"$T"'/'"$NODE"'.nft'
		for w in "${WAYS[@]}"; do check "$w"; done
	done
	n=$(ip netns exec "bhf$$-ipt" iptables-legacy -t nat -S unrelated | grep -c -- '^-A')
	m=$(ip netns exec "bhf$$-nft" nft -a list chain ip unrelated c | grep -c ' accept')
	[ "$n" -eq "$s" ] && [ "$m" -eq "$s" ] || { echo "unrelated rules: $n and $m, not $s" >&2; exit 1; }
done

# stats FILE: "median p95" in ms
stats() { sort -n "$1" | awk '{ a[NR] = $1 } END { printf "%.2f %.2f", a[int((NR + 1) / 2)] / 1000, a[int(NR * 0.95)] / 1000 }'; }
rows=(libiptc nftbe nftcli iptcli libiptc_same nftbe_same)
declare -A label=(
	[libiptc]="libiptc backend: \`barman_ha_nat route\`, nat_backend = iptables (1 process, 1 iptc_commit)"
	[nftbe]="nftables backend: \`barman_ha_nat route\`, nat_backend = nftables (1 process, 1 netlink batch)"
	[nftcli]="nft CLI: \`nft -f\` flush map + add element (1 process, 1 batch)"
	[iptcli]="iptables-legacy CLI: -F, -F, -A SNAT, -A DNAT, -A DNAT (5 processes)"
	[libiptc_same]="reference: libiptc backend, route unchanged (no commit)"
	[nftbe_same]="reference: nftables backend, route unchanged (no commit)")
{
	echo "### One switch of both endpoints, ms per switch: median / p95 ($N switches per cell, $(uname -r), $(nproc) cores)"
	echo
	printf '| way |'; for s in $SIZES; do printf ' %s unrelated rules |' "$s"; done; echo
	printf '|---|'; for s in $SIZES; do printf -- '---:|'; done; echo
	for r in "${rows[@]}"; do
		printf '| %s |' "${label[$r]}"
		for s in $SIZES; do read -r m p < <(stats "$T/$r.$s"); printf ' %s / %s |' "$m" "$p"; done
		echo
	done
} | tee "$T/table.md"

# chart: median with the p95 as the upper bar, log scale
for s in $SIZES; do
	printf '%s' "$s"
	for r in "${rows[@]:0:4}"; do read -r m p < <(stats "$T/$r.$s"); printf ' %s %s' "$m" "$p"; done
	echo
done >"$T/chart.dat"
gnuplot <<GP
set terminal pngcairo size 900,560 font "sans,10"
set output "$OUT/nat_backends.png"
set title "One switch of both endpoints vs unrelated rules in the ruleset ($N switches per point; bar: p95)"
set xlabel "unrelated rules present"
set ylabel "ms per switch (log)"
set logscale y
set key top left
set grid
set offsets 250, 250, 0, 0
plot "$T/chart.dat" using 1:2:2:3 with yerrorlines lw 2 title "libiptc backend (barman\\\\_ha\\\\_nat)", \
     "" using 1:4:4:5 with yerrorlines lw 2 title "nftables backend (barman\\\\_ha\\\\_nat)", \
     "" using 1:6:6:7 with yerrorlines lw 2 title "nft CLI (flush map + add element)", \
     "" using 1:8:8:9 with yerrorlines lw 2 title "iptables-legacy CLI (-F -F -A -A -A)"
GP
{
	echo "# NAT backends: one switch of both endpoints"
	echo
	echo "Made by \`bench/nat_backends.sh $N \"$SIZES\"\` on $(date -u +%Y-%m-%d), kernel $(uname -r), $(nproc) cores;"
	echo "nftables $(nft --version | awk '{print $2}'), $(iptables-legacy --version). Chart: nat_backends.png."
	echo
	cat "$T/table.md"
	cat <<'NOTES'

How to read it:

- Every row is one switch as a caller sees it: process start, the change, exit. barman_ha_nat also
  takes its locks, reads its configuration and state, and sweeps the moved endpoints' conntrack
  flows (none here).
- libiptc reads and replaces the whole legacy nat table, unrelated rules included, so its cost grows
  with them (the "unchanged" reference row grows too: the read alone). The iptables-legacy CLI does
  that five times per switch and leaves the chains empty in between.
- The nftables backend sends one batch of four messages whatever else is in the ruleset; its dumps
  are filtered to our table and map. Its "unchanged" row (no commit) stays at a few ms. Most of a
  committing switch is the kernel making the process wait for an RCU grace period when its netlink
  socket is released after a commit (nf_tables flushes its destroy work; docs/nftables.md), which
  `nft -f` pays as well: flat, but not small, on this machine.
- Numbers come from a small VM shared with other work: compare rows of one run, not runs.
NOTES
} >"$OUT/nat_backends.md"
echo >&2 "wrote $OUT/nat_backends.md and $OUT/nat_backends.png"
