#!/bin/bash
# The failover benchmark's short version (issue 5): one kill -9 failover per side
# (extension, seed's handler, handler in the working order, handler in the extension's
# order), measured as bench/failover.sh does.  Asserts behaviour, not speed: every side converges, the
# extension loses no committed row and needs no receive-wal --reset, its slot
# reserves WAL, and its write RTO is smaller than the seed handler's.
set -u
. "$(dirname "$0")/../../bench/lib_bench.sh"
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP the cluster tests run as root"; exit 0; }
P=${BHB_PREFIX:-bhbt}
SIDES="ext seed working best"
declare -A PFX=([ext]=${P}e [seed]=${P}s [working]=${P}w [best]=${P}b)
side() { bhb_use "$1" "${PFX[$1]}"; }
failover_q() { bhb_failover "$@" >/dev/null; }		# its line goes to the .tsv
BHB_OUT=/var/lib/bha-cluster/$P-out
teardown() {
	local s
	[ "${BHA_KEEP:-0}" = 1 ] && return
	for s in $SIDES; do side "$s"; bha_down >/dev/null 2>&1; done
	# the raw files stay only after a failure, for a post-mortem
	[ "$bha_tap_failed" -eq 0 ] && [ -n "${bhb_started:-}" ] && rm -rf "$BHB_OUT"
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

for s in $SIDES; do
	side "$s"
	t_ok "$s: failover db1 -> db2 converges (promoted, both endpoints, Barman streaming, commits)" \
		failover_q "$s" db1 db2 1 200
	diag "$(tail -n 1 "$BHB_OUT/$s.tsv")"
done
diag "columns: side round kill->promotion slot reserved barman_nat barman_streaming app_nat first_commit stall reset lost converged (ms since the promotion)"

col() { awk -F'\t' -v c="$2" '{ print $c }' "$BHB_OUT/$1.tsv" 2>/dev/null | tail -n 1; }
t_is "$(col ext 12)" 0 "extension: no committed row lost"
t_is "$(col ext 11)" no "extension: Barman needed no receive-wal --reset"
t_is "$(col ext 5)" yes "extension: the slot reserved WAL when first seen"
rto_ext=$(col ext 9) rto_seed=$(col seed 9) rto_work=$(col working 9) rto_best=$(col best 9)
diag "write RTO (ms since the promotion): extension $rto_ext, seed's handler $rto_seed, working order $rto_work, extension's order $rto_best"
t_ok "extension's write RTO ($rto_ext ms) is smaller than the seed handler's ($rto_seed ms)" \
	test "${rto_ext:-x}" -lt "${rto_seed:-0}"
t_ok "extension's write RTO ($rto_ext ms) is smaller than the working-order handler's ($rto_work ms)" \
	test "${rto_ext:-x}" -lt "${rto_work:-0}"
for s in $SIDES; do
	side "$s"
	gap=$(bhb_wal_gap 2>"$BHB_OUT/$s.walgap.err")
	diag "$s: WAL missing from Barman's archive: ${gap:-?} bytes $(head -c 300 "$BHB_OUT/$s.walgap.err")"
	[ "$s" = ext ] && t_is "$gap" 0 "extension: no WAL missing from Barman's archive across the failover"
done
side ext
t_ok "extension: db1 rejoins as a standby and the cluster is whole again" bhb_rejoin db1 db2
done_testing
