#!/bin/bash
# failover.sh: the failover benchmark (docs/benchmark.md), one command, one run.
#
#   bench/failover.sh [ROUNDS]     as root (default 5 failovers per side)
#
# Four namespace clusters (test/cluster/lib.sh, prefixes ${BHB_PREFIX:-bhbf}{e,a,w,b}):
# the extension, the article's event-handler script, the handler in the working order, the handler
# in the extension's order (bench/lib_bench.sh and bench/baseline/repmgr_handler.sh say
# how the baselines are set up).  Each round fails every side over twice, alternating the
# sides (A B C D, then A B C D again): first kill -9 of the primary's postmaster, then the
# primary's host gone (cable cut), each under a writer committing through BACKUP:54322;
# repmgrd promotes the standby, times are taken from the promotion, then the old primary
# (stopped if it still runs cut off) is rejoined (repmgr node rejoin --force-rewind) and
# the next failover goes back the other way.  Then, in the same run: the WAL missing from
# each side's archive, pgbench TPS (2 clients, synchronous commit, PGBENCH_SECONDS,
# default 60) on the extension's cluster with the library loaded and not loaded,
# alternating, and with the clusters down bench/nat_backends.sh (both backends and both CLIs) and
# bench/promotion_slot.sh (idle cost).
# BHB_FAULTS="kill gone" (default) chooses the faults; BHB_SKIP="pgbench nat idle" leaves parts out.
#
# Output: a Markdown table on stdout and in bench/results/failover.md, the chart
# bench/results/failover.png (gnuplot), raw files under /var/lib/bha-cluster/${BHB_PREFIX}-out.
set -u
ROUNDS=${1:-5}
LIMIT=${BHB_LIMIT:-240}			# seconds a failover may take before it counts as not converged
PGB=${PGBENCH_SECONDS:-60}
P=${BHB_PREFIX:-bhbf}
skip=" ${BHB_SKIP:-} "
FAULTS=${BHB_FAULTS:-kill gone}
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "failover.sh: run as root" >&2; exit 2; }
. "$top/bench/lib_bench.sh"
BHB_OUT=/var/lib/bha-cluster/$P-out
RESULTS=${BHB_RESULTS:-$top/bench/results}
SIDES="ext article working best"
declare -A PFX=([ext]=${P}e [article]=${P}a [working]=${P}w [best]=${P}b)
declare -A CUR=([ext]=db1 [article]=db1 [working]=db1 [best]=db1) OK=([ext]=1 [article]=1 [working]=1 [best]=1)
side() { bhb_use "$1" "${PFX[$1]}"; }
log() { echo "# [$(date +%T)] $*" >&2; }

teardown() {
	local s
	for s in $SIDES; do side "$s"; bha_down >/dev/null 2>&1; done
}
trap teardown EXIT
trap 'exit 130' INT TERM HUP

t_start=$(date +%s)
rm -rf "$BHB_OUT"; mkdir -p "$BHB_OUT" "$RESULTS"
uptime >"$BHB_OUT/load.before"
ip netns list | awk '{print $1}' | sed 's/-[^-]*$//' | sort -u | grep -v "^$P" >"$BHB_OUT/other-clusters" || true
teardown

log "bring-up of four clusters (${PFX[*]}), staggered"
bhb_up_all
for s in $SIDES; do
	eval "pid=\$up_$s"
	wait "$pid" || { log "bring-up of $s failed:"; tail -n 20 "$BHB_OUT/up.$s.log" >&2; exit 1; }
done
log "clusters up after $(( $(date +%s) - t_start )) s"

for r in $(seq 1 "$ROUNDS"); do
	for f in $FAULTS; do
		for s in $SIDES; do
			[ "${OK[$s]}" = 1 ] || continue
			side "$s"
			old=${CUR[$s]}; [ "$old" = db1 ] && new=db2 || new=db1
			log "round $r, $s: $f of $old"
			bhb_failover "$s" "$old" "$new" "$r" "$LIMIT" "$f" >/dev/null || log "$s round $r ($f) did not converge within ${LIMIT}s"
			tail -n 1 "$(bhb_tsv "$s" "$f")" >&2
			CUR[$s]=$new
			{ bhb_heal "$old" "$new" && bhb_rejoin "$old" "$new"; } || { log "$s: rejoin failed, no more rounds on this side"; OK[$s]=0; }
		done
	done
done

for s in $SIDES; do
	side "$s"
	bhb_wal_gap >"$BHB_OUT/$s.walgap" 2>"$BHB_OUT/$s.walgap.err" || echo NA >"$BHB_OUT/$s.walgap"
done

if [[ $skip != *" pgbench "* ]] && [ "${OK[ext]}" = 1 ]; then
	side ext
	p=${CUR[ext]}; [ "$p" = db1 ] && st=db2 || st=db1
	bhb_pgbench_init
	for r in 1 2; do
		for lib in on off; do
			log "pgbench on the extension's cluster, library $lib, ${PGB}s"
			bhb_library "$p" "$st" "$lib" || { log "restart with the library $lib failed"; break 2; }
			echo "$(bhb_pgbench "$PGB")" >>"$BHB_OUT/tps.$lib"
		done
	done
	bhb_library "$p" "$st" on
fi
uptime >"$BHB_OUT/load.after"
teardown
t_fail=$(( $(date +%s) - t_start ))

[[ $skip == *" nat "* ]] || { log "bench/nat_backends.sh"; "$top/bench/nat_backends.sh" >"$BHB_OUT/nat.md" 2>&1; }
[[ $skip == *" idle "* ]] || { log "bench/promotion_slot.sh 5 60"; "$top/bench/promotion_slot.sh" 5 60 >"$BHB_OUT/idle.md" 2>&1; }

"$top/bench/report.sh" "$BHB_OUT" "$RESULTS" "$ROUNDS" "$t_fail" "$(( $(date +%s) - t_start ))"
