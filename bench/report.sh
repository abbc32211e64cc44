#!/bin/bash
# report.sh OUT RESULTS ROUNDS FAILOVER_SECONDS TOTAL_SECONDS: the Markdown table and the
# gnuplot chart of a bench/failover.sh run, from its raw files in OUT.
set -u
out=$1 res=$2 rounds=$3 t_fail=$4 t_total=$5
SIDES="ext seed working best"
declare -A NAME=([ext]="extension" [seed]="seed's handler" [working]="handler, working order" [best]="handler, extension's order")
stats() {	# COLUMN FILE: median min max
	awk -F'\t' -v c="$1" '$c ~ /^[0-9.]+$/ { print $c }' "$2" 2>/dev/null | sort -n |
		awk '{ a[NR] = $1 } END { if (!NR) { print "NA NA NA"; exit } m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m, a[1], a[NR] }'
}
cell() { read -r m lo hi < <(stats "$1" "$2"); [ "$m" = NA ] && echo "–" || echo "$m ($lo–$hi)"; }
med() { stats "$1" "$2" | cut -d' ' -f1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.1f×", a / b; else print "–" }'; }
{
echo "## Failover: the extension vs three event-handler scripts"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; $rounds kill -9 failovers per side, alternating;"
echo "failover part ${t_fail} s, whole run ${t_total} s. Load before/after: $(sed 's/.*load average: //' "$out/load.before") / $(sed 's/.*load average: //' "$out/load.after" 2>/dev/null)."
if [ -s "$out/other-clusters" ]; then
	echo "Other clusters running on the machine at the start: $(paste -sd' ' "$out/other-clusters")."
else
	echo "No other cluster was running at the start."
fi
echo
echo "ms since the promotion (\"selected new timeline ID\" in the new primary's log), median (min–max):"
echo
echo "| | $(for s in $SIDES; do printf '%s | ' "${NAME[$s]}"; done)seed / ext | working / ext | best / ext |"
echo "|---|---|---|---|---|---|---|---|"
row() {		# LABEL COLUMN
	local s a=() 
	for s in $SIDES; do a+=("$(med "$2" "$out/$s.tsv")"); done
	echo "| $1 | $(for s in $SIDES; do printf '%s | ' "$(cell "$2" "$out/$s.tsv")"; done)$(ratio "${a[1]}" "${a[0]}") | $(ratio "${a[2]}" "${a[0]}") | $(ratio "${a[3]}" "${a[0]}") |"
}
row "kill -9 → promotion (repmgrd, not ours)" 3
row "→ slot \`barman\` present" 4
echo "| slot reserved WAL when first seen | $(for s in $SIDES; do printf '%s | ' "$(awk -F'\t' '$5 == "yes"' "$out/$s.tsv" | wc -l)/$(wc -l <"$out/$s.tsv")"; done) | | |"
row "→ Barman endpoint 54321 routed" 6
row "→ Barman's receive-wal streaming from the new primary" 7
row "→ app endpoint 54322 routed" 8
row "→ **first synchronous commit through 54322 (write RTO)**" 9
row "longest stall between commits after the first one" 10
echo "| Barman needed \`receive-wal --reset\` | $(for s in $SIDES; do printf '%s | ' "$(awk -F'\t' '$11 != "no"' "$out/$s.tsv" | wc -l)/$(wc -l <"$out/$s.tsv")"; done) | | |"
echo "| WAL missing from the archive after all failovers (bytes) | $(for s in $SIDES; do printf '%s | ' "$(cat "$out/$s.walgap" 2>/dev/null || echo NA)"; done) | | |"
echo "| committed rows lost | $(for s in $SIDES; do printf '%s | ' "$(awk -F'\t' '{ s += $12 } END { print s + 0 }' "$out/$s.tsv")"; done) | | |"
echo "| converged (within the limit) | $(for s in $SIDES; do printf '%s | ' "$(awk -F'\t' '$13 == "yes"' "$out/$s.tsv" | wc -l)/$(wc -l <"$out/$s.tsv")"; done) | | |"
if [ -s "$out/ext.tps" ]; then
	echo
	echo "pgbench through 54322 (2 clients, synchronous commit, alternating): extension cluster TPS $(paste -sd' ' "$out/ext.tps"), seed cluster (extension not loaded) TPS $(paste -sd' ' "$out/seed.tps"); ratio of means $(awk 'NR == FNR { a += $1; n++; next } { b += $1; m++ } END { if (n && m && b) printf "%.3f", (a / n) / (b / m) }' "$out/ext.tps" "$out/seed.tps")."
fi
echo
echo "Per failover (side, round, kill→promotion, slot, reserved, Barman NAT, Barman streaming, app NAT, first commit, stall, reset, lost, converged):"
echo
echo '```'
cat "$out"/ext.tsv "$out"/seed.tsv "$out"/working.tsv "$out"/best.tsv 2>/dev/null
echo '```'
[ -s "$out/nat.md" ] && { echo; echo "### NAT switch alone (bench/nat_switch.sh 1000)"; echo; grep -v '^#' "$out/nat.md" | sed '/./,$!d'; }
[ -s "$out/idle.md" ] && { echo; echo "### Promotion → slot and idle cost (bench/promotion_slot.sh 5 60)"; sed 's/^## /#### /' "$out/idle.md"; }
} >"$res/failover.md"

# chart: one timeline per side (median failover), events as marks, log x axis (0 drawn at 1 ms)
dat=$out/chart.dat
: >"$dat"
events=("4:slot present" "6:Barman endpoint routed" "7:Barman streaming" "8:app endpoint routed" "9:first commit (write RTO)")
for e in "${events[@]}"; do
	c=${e%%:*}
	echo "# ${e#*:}" >>"$dat"
	y=4
	for s in $SIDES; do
		m=$(med "$c" "$out/$s.tsv")
		[ "$m" != NA ] && awk -v m="$m" -v y="$y" 'BEGIN { print (m < 1 ? 1 : m), y, m }' >>"$dat"
		y=$((y - 1))
	done
	printf '\n\n' >>"$dat"
done
xmax=$(awk '$1 ~ /^[0-9.]+$/ && $1 > m { m = $1 } END { print (m > 0 ? m * 3 : 100000) }' "$dat")
plot=""
i=0
for e in "${events[@]}"; do
	plot="$plot${plot:+, }'$dat' index $i using 1:2 with points pt $((i + 5)) ps 2.2 title '${e#*:}'"
	i=$((i + 1))
done
lines=""
y=4
for s in $SIDES; do
	m=$(med 9 "$out/$s.tsv"); [ "$m" = NA ] && m=1; [ "$m" -lt 1 ] 2>/dev/null && m=1
	lines="${lines}set arrow from 1,$y to $m,$y nohead lw 3 lc rgb '#999999' back
set label '$m ms' at $m,$y offset 1,0.9 font ',10'
"
	y=$((y - 1))
done
gnuplot <<GP
set terminal pngcairo size 1100,500 font ',11'
set output '$res/failover.png'
set title 'Median failover after kill -9 of the primary ($rounds per side): ms since the promotion'
set logscale x
set xrange [1:$xmax]
set yrange [0.4:4.6]
set ytics ('extension' 4, "seed's handler" 3, 'handler, working order' 2, "handler, extension's order" 1)
set xlabel 'ms since the promotion (log scale; 0 drawn at 1 ms)'
set grid xtics
set key outside below horizontal
$lines
plot $plot
GP
cat "$res/failover.md"
