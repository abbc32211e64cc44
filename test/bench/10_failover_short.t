#!/bin/bash
# The failover benchmark's short version (docs/benchmark.md): per side (extension, the
# article's event-handler script, the script in the working order, the script in the
# extension's order) one kill -9 failover db1 -> db2, then, once every old primary is back
# as a standby, one failover db2 -> db1 with db2's host gone (cable cut), measured as
# bench/failover.sh does.  Asserts
# behaviour, not speed: every side converges, the extension loses no committed row and
# needs no receive-wal --reset, its slot reserves WAL, and its write RTO is smaller than
# every script side's (the article's script's, the working order's, and the best script's, in
# the extension's own order), for both faults.
set -u
. "$(dirname "$0")/../../bench/lib_bench.sh"
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP the cluster tests run as root"; exit 0; }
P=${BHB_PREFIX:-${BHA_PREFIX:-bhb}t}	# bhbt, or BHA_PREFIX's value followed by "t"
SIDES="ext article working best"
declare -A PFX=([ext]=${P}e [article]=${P}a [working]=${P}w [best]=${P}b)
side() { bhb_use "$1" "${PFX[$1]}"; }
failover_q() { bhb_failover "$@" >/dev/null; }		# its line goes to the .tsv
BHB_OUT=/var/lib/bha-cluster/$P-out
teardown() {
	local s
	[ "${BHA_KEEP:-0}" = 1 ] && return
	for s in $SIDES; do side "$s"; bha_down >/dev/null 2>&1; done
	# the raw files stay only after a failure, for a post-mortem
	[ "$TAP_FAIL" -eq 0 ] && [ -n "${bhb_started:-}" ] && rm -rf "$BHB_OUT"
}
trap teardown EXIT
trap 'exit 130' INT TERM HUP
teardown
rm -rf "$BHB_OUT"; mkdir -p "$BHB_OUT"; bhb_started=1

bhb_up_all
for s in $SIDES; do
	eval "pid=\$up_$s"
	wait "$pid"; rc=$?
	ok $rc "cluster up: ${PFX[$s]} ($s)" || { sed 's/^/# /' "$BHB_OUT/up.$s.log" | tail -n 30; bail "bring-up of $s failed"; }
done

col() { awk -F'\t' -v c="$3" '{ print $c }' "$(bhb_tsv "$1" "$2")" 2>/dev/null | tail -n 1; }	# SIDE FAULT COLUMN
# failovers FAULT OLD NEW: one failover per side, then the extension's assertions
failovers() {
	local f=$1 old=$2 new=$3 s rto_ext rto_article rto_work rto_best
	for s in $SIDES; do
		side "$s"
		t_ok "$s: $f failover $old -> $new converges (promoted, both endpoints, Barman streaming, commits)" \
			failover_q "$s" "$old" "$new" 1 200 "$f"
		diag "$(tail -n 1 "$(bhb_tsv "$s" "$f")")"
	done
	is "$(col ext "$f" 12)" 0 "extension, $f: no committed row lost"
	is "$(col ext "$f" 11)" no "extension, $f: Barman needed no receive-wal --reset"
	is "$(col ext "$f" 5)" yes "extension, $f: the slot reserved WAL when first seen"
	rto_ext=$(col ext "$f" 9) rto_article=$(col article "$f" 9) rto_work=$(col working "$f" 9) rto_best=$(col best "$f" 9)
	diag "$f, write RTO (ms since the promotion): extension $rto_ext, article's handler $rto_article, working order $rto_work, extension's order $rto_best"
	t_ok "extension's write RTO after $f ($rto_ext ms) is smaller than the article's handler's ($rto_article ms)" \
		test "${rto_ext:-x}" -lt "${rto_article:-0}"
	t_ok "extension's write RTO after $f ($rto_ext ms) is smaller than the working-order handler's ($rto_work ms)" \
		test "${rto_ext:-x}" -lt "${rto_work:-0}"
	t_ok "extension's write RTO after $f ($rto_ext ms) is smaller than the best script's, in the extension's order ($rto_best ms)" \
		test "${rto_ext:-x}" -lt "${rto_best:-0}"
}
# rejoin_all OLD NEW: every side's OLD back as a standby of NEW, the sides in parallel
rejoin_all() {
	local s pids=()
	for s in $SIDES; do
		( side "$s"; bhb_heal "$1" "$2" && bhb_rejoin "$1" "$2" ) >"$BHB_OUT/rejoin.$s.log" 2>&1 &
		pids+=($!)
	done
	for s in $SIDES; do
		wait "${pids[0]}"; ok $? "$s: $1 rejoins as a standby of $2 and the cluster is whole again" ||
			sed 's/^/# /' "$BHB_OUT/rejoin.$s.log" | tail -n 20
		pids=("${pids[@]:1}")
	done
}
diag "columns: side round fault->promotion slot reserved barman_nat barman_streaming app_nat first_commit stall reset lost converged (ms since the promotion)"
failovers kill db1 db2
rejoin_all db1 db2
failovers gone db2 db1

for s in $SIDES; do
	side "$s"
	gap=$(bhb_wal_gap 2>"$BHB_OUT/$s.walgap.err")
	diag "$s: WAL missing from Barman's archive: ${gap:-?} bytes $(head -c 300 "$BHB_OUT/$s.walgap.err")"
	[ "$s" = ext ] && is "$gap" 0 "extension: no WAL missing from Barman's archive across both failovers"
done
side ext
rejoin_ext() { bhb_heal db2 db1 && bhb_rejoin db2 db1; }
t_ok "extension: the cut-off db2, stopped, rejoins as a standby and the cluster is whole again" rejoin_ext
done_testing
