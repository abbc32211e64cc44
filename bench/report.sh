#!/bin/bash
# report.sh OUT RESULTS ROUNDS FAILOVER_SECONDS TOTAL_SECONDS: the Markdown table and the
# gnuplot chart of a bench/failover.sh run, from its raw files in OUT.
set -u
out=$1 res=$2 rounds=$3 t_fail=$4 t_total=$5
SIDES="ext article working best"
declare -A NAME=([ext]="extension" [article]="article's handler" [working]="handler, working order" [best]="handler, extension's order")
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
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; $rounds round(s), each failing every side over by kill -9 and then by a cable cut, alternating the sides;"
echo "failover part ${t_fail} s, whole run ${t_total} s. Load before/after: $(sed 's/.*load average: //' "$out/load.before") / $(sed 's/.*load average: //' "$out/load.after" 2>/dev/null)."
if [ -s "$out/other-clusters" ]; then
	echo "Other clusters running on the machine at the start: $(paste -sd' ' "$out/other-clusters")."
else
	echo "No other cluster was running at the start."
fi
echo
# table SUFFIX TITLE: one fault's table, from $out/SIDE$SUFFIX.tsv
table() {
	local x=$1
	echo "#### $2"
	echo
	echo "ms since the promotion (\"selected new timeline ID\" in the new primary's log), median (min–max):"
	echo
	echo "| | $(for s in $SIDES; do printf '%s | ' "${NAME[$s]}"; done)article / ext | working / ext | best / ext |"
	echo "|---|---|---|---|---|---|---|---|"
	row() {		# LABEL COLUMN
		local s a=()
		for s in $SIDES; do a+=("$(med "$2" "$out/$s$x.tsv")"); done
		echo "| $1 | $(for s in $SIDES; do printf '%s | ' "$(cell "$2" "$out/$s$x.tsv")"; done)$(ratio "${a[1]}" "${a[0]}") | $(ratio "${a[2]}" "${a[0]}") | $(ratio "${a[3]}" "${a[0]}") |"
	}
	count() {	# LABEL AWK-CONDITION: failovers for which it holds, per side
		echo "| $1 | $(for s in $SIDES; do printf '%s | ' "$(awk -F'\t' "$2" "$out/$s$x.tsv" 2>/dev/null | wc -l)/$(cat "$out/$s$x.tsv" 2>/dev/null | wc -l)"; done) | | |"
	}
	row "$3 → promotion (repmgrd, not ours)" 3
	row "→ slot \`barman\` present" 4
	count "slot reserved WAL when first seen" '$5 == "yes"'
	row "→ Barman endpoint 54321 routed" 6
	row "→ Barman's receive-wal streaming from the new primary" 7
	row "→ app endpoint 54322 routed" 8
	row "→ **first synchronous commit through 54322 (write RTO)**" 9
	row "longest stall between commits after the first one" 10
	count "Barman needed \`receive-wal --reset\`" '$11 != "no"'
	echo "| committed rows lost | $(for s in $SIDES; do printf '%s | ' "$(awk -F'\t' '{ s += $12 } END { print s + 0 }' "$out/$s$x.tsv" 2>/dev/null)"; done) | | |"
	count "converged (within the limit)" '$13 == "yes"'
	echo
}
table "" "kill -9 of the primary's postmaster" "kill -9"
[ -n "$(cat "$out"/*-gone.tsv 2>/dev/null)" ] && table -gone "the primary's host gone (its cable cut: no RST, streams to it hang)" "cable cut"
echo "WAL missing from Barman's archive after all failovers (bytes): $(for s in $SIDES; do printf '%s %s; ' "${NAME[$s]}" "$(cat "$out/$s.walgap" 2>/dev/null || echo NA)"; done)"
if [ -s "$out/tps.on" ]; then
	echo
	echo "pgbench through 54322 (2 clients, synchronous commit, the extension's cluster restarted between runs, alternating): library loaded TPS $(paste -sd' ' "$out/tps.on"), not loaded TPS $(paste -sd' ' "$out/tps.off"); loaded / not loaded, ratio of means $(awk 'NR == FNR { a += $1; n++; next } { b += $1; m++ } END { if (n && m && b) printf "%.3f", (a / n) / (b / m) }' "$out/tps.on" "$out/tps.off")."
fi
echo
echo "Per failover (side, round, fault→promotion, slot, reserved, Barman NAT, Barman streaming, app NAT, first commit, stall, reset, lost, converged; kill -9 first, then cable cut):"
echo
echo '```'
for x in "" -gone; do
	[ -n "$(cat "$out"/*"$x".tsv 2>/dev/null)" ] || continue
	echo "# ${x:-kill}"
	for s in $SIDES; do cat "$out/$s$x.tsv" 2>/dev/null; done
done
echo '```'
[ -s "$out/nat.md" ] && { echo; echo "### NAT switch alone (bench/nat_backends.sh)"; echo; grep -v '^#' "$out/nat.md" | sed '/./,$!d'; }
[ -s "$out/idle.md" ] && { echo; echo "### Promotion → slot and idle cost (bench/promotion_slot.sh 5 60)"; sed 's/^## /#### /' "$out/idle.md"; }
} >"$res/failover.md"

# chart: one timeline per side (median failover), events as marks, log x axis (0 drawn
# at 1 ms); one panel per fault, on the same x axis.
events=("4:slot present" "6:Barman endpoint routed" "7:Barman streaming" "8:app endpoint routed" "9:first commit (write RTO)")
chart_data() {		# SUFFIX: gnuplot data blocks, one per event, into $out/chart$SUFFIX.dat
	local x=$1 dat=$out/chart$1.dat e c y s m
	: >"$dat"
	for e in "${events[@]}"; do
		c=${e%%:*}
		echo "# ${e#*:}" >>"$dat"
		y=4
		for s in $SIDES; do
			m=$(med "$c" "$out/$s$x.tsv")
			[ "$m" != NA ] && awk -v m="$m" -v y="$y" 'BEGIN { print (m < 1 ? 1 : m), y, m }' >>"$dat"
			y=$((y - 1))
		done
		printf '\n\n' >>"$dat"
	done
}
chart_panel() {		# SUFFIX TITLE: the gnuplot commands of one panel
	local x=$1 dat=$out/chart$1.dat e i=0 y=4 s m plot=""
	echo "unset arrow; unset label"
	echo "set title \"$2\""
	for s in $SIDES; do
		m=$(med 9 "$out/$s$x.tsv"); [ "$m" = NA ] && m=1; [ "$m" -lt 1 ] 2>/dev/null && m=1
		echo "set arrow from 1,$y to $m,$y nohead lw 3 lc rgb '#999999' back"
		echo "set label '$m ms' at $m,$y offset 1,0.9 font ',10'"
		y=$((y - 1))
	done
	for e in "${events[@]}"; do
		plot="$plot${plot:+, }'$dat' index $i using 1:2 with points pt $((i + 5)) ps 2.2 lc $((i + 1)) title '${e#*:}'"
		i=$((i + 1))
	done
	echo "plot $plot"
}
panels=("|after kill -9 of the primary's postmaster")
[ -n "$(cat "$out"/*-gone.tsv 2>/dev/null)" ] && panels+=("-gone|after the primary's host vanished (cable cut)")
for pn in "${panels[@]}"; do chart_data "${pn%%|*}"; done
xmax=$(cat "$out"/chart*.dat | awk '$1 ~ /^[0-9.]+$/ && $1 > m { m = $1 } END { print (m > 0 ? m * 3 : 100000) }')
{
	cat <<GP
set terminal pngcairo size 1100,$(( ${#panels[@]} * 400 + 80 )) font ',11'
set output '$res/failover.png'
set logscale x
set xrange [1:$xmax]
set yrange [0.4:4.6]
set ytics ('extension' 4, "article's handler" 3, 'handler, working order' 2, "handler, extension's order" 1)
set xlabel 'ms since the promotion (log scale; 0 drawn at 1 ms)'
set grid xtics
set key outside below horizontal
set multiplot layout ${#panels[@]},1 title 'Median failover ($rounds per side and fault): ms since the promotion'
GP
	for pn in "${panels[@]}"; do chart_panel "${pn%%|*}" "${pn#*|}"; done
	echo "unset multiplot"
} | gnuplot
cat "$res/failover.md"
