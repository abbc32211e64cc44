#!/bin/bash
# run-all.sh: the test suite, from a fresh machine.  Installs the Debian
# packages it needs, builds the extension and its three programs, installs the
# extension and the client, then runs one of two tiers.
#
# The CI tier (the default; what .ci/run runs):
#   check        make check's parts: pg_regress on a temporary instance and the
#                unit tests (test/unit), as postgres on a copy of the tree
#   tap          the extension's TAP tests (PostgreSQL::Test::Cluster)
#   nat          barman_ha_nat's tests, once per NAT backend: they cover each
#                backend rule by rule, in seconds (those that choose their
#                backend themselves run once)
#   orchestrator, monitoring, packages
#                the programs' and the rules' tests, the Debian packages; the
#                packages' failover cycle runs on the nftables backend and is
#                that backend's failover cycle (04_roots.t is the long tier's)
#   cluster      every namespace cluster scenario but the backup host's (5x) on
#                the iptables backend, the default nat_backend, the one a
#                configuration gets unless it says otherwise
#   smoke        on the nftables backend: the watch (24_watch.t), and the
#                failover cycle when the packages did not run it
#   matrix       each Debian root of the version matrix (trixie: PostgreSQL 17,
#                sid: 18): test/matrix.sh (build, pg_regress, TAP) and the failover
#                cycle in the root (test/cluster-root.sh); the roots are made in
#                the background from the start (test/roots.sh)
# The long tier (BHA_LONG=1) adds:
#   cluster-nftables  the whole cluster matrix on nftables, in place of the smoke,
#                with the backup host's loss and pair (50_backup_host_loss.t,
#                51_backup_pair.t: long tier only)
#   bench        the short failover benchmark (test/bench)
#   cluster-ROOT-long  the watch, the zero-gap scenarios and the backup host
#                pair (the release's keepalived) in each root
#   managers-ROOT      pg_auto_failover and Patroni in each root, on the
#                release's own packages (41 skips where it ships none)
#   bench-ROOT   the short failover benchmark in each root
#   packages-roots  the packages of PostgreSQL 17, 18 and 15 built twice,
#                upgraded in place and purged in the trixie, sid and bookworm
#                roots (test/packages/04_roots.t)
# Every scenario runs once per tier.  In the cluster sections, the scenarios
# of one configuration start from copies of one template, made by the first of
# them (BHA_TEMPLATE, see test/cluster/lib.sh; removed at the end).
# BHA_PREFIX, if set, names the cluster tests' namespaces and data.
# BHA_SKIP="packages bench" (space separated section or backend names) skips
# sections or a backend's runs.
# Ends with the time of each section and tier, then one line "N passed,
# N failed"; exits non-zero if anything failed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "run-all.sh: run as root" >&2; exit 2; }
passed=0 failed=0
skip=" ${BHA_SKIP:-} "
long=${BHA_LONG:-0}
times=()
tier_ci=0 tier_long=0

skipped() { [[ $skip == *" $1 "* ]]; }

# count FILE: adds the counts of every prove and pg_regress summary in FILE.
# A prove run without "Result: PASS" counts at least one failure (a script that
# died planned nothing), and so does output with no summary at all.
count() {
	local line runs=0 bad=0
	while read -r line; do
		if [[ $line =~ ^Files=[0-9]+,\ Tests=([0-9]+), ]]; then
			passed=$((passed + BASH_REMATCH[1])); runs=$((runs + 1))
		elif [[ $line =~ ^Failed\ ([0-9]+)/[0-9]+\ subtests ]]; then
			passed=$((passed - BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[1]))
			bad=$((bad + BASH_REMATCH[1]))
		elif [[ $line =~ ^Result:\ (.*) ]]; then
			[ "${BASH_REMATCH[1]}" = PASS ] || [ "$bad" -gt 0 ] || failed=$((failed + 1))
			bad=0
		elif [[ $line =~ All\ ([0-9]+)\ tests\ passed ]]; then
			passed=$((passed + BASH_REMATCH[1])); runs=$((runs + 1))
		elif [[ $line =~ ([0-9]+)\ of\ ([0-9]+)\ tests\ failed ]]; then
			failed=$((failed + BASH_REMATCH[1]))
			passed=$((passed + BASH_REMATCH[2] - BASH_REMATCH[1])); runs=$((runs + 1))
		fi
	done <"$1"
	[ "$runs" -gt 0 ] || failed=$((failed + 1))
}

# timed NAME TIER CMD...: runs CMD, its output teed to $log/NAME.out and
# counted; its time kept for the summary.
timed() {
	local name=$1 tier=$2 t0=$SECONDS dt rc before=$failed
	shift 2
	"$@" 2>&1 | tee "$log/$name.out"
	rc=${PIPESTATUS[0]}
	count "$log/$name.out"
	# a non-zero exit is a failure even where the counts saw none
	[ "$rc" -eq 0 ] || [ "$failed" -gt "$before" ] || failed=$((failed + 1))
	dt=$((SECONDS - t0))
	times+=("$(printf '%-22s %5d s  (%s)' "$name" "$dt" "$tier")")
	if [ "$tier" = ci ]; then tier_ci=$((tier_ci + dt)); else tier_long=$((tier_long + dt)); fi
}

# suite BACKEND FILE...: prove from / (servers and tools run as postgres or
# barman, who may not enter the checkout), the NAT backend named for the
# configurations the tests write.
suite() {
	local backend=$1
	shift
	(cd / && BHA_NAT_BACKEND=$backend prove -v "$@")
}

log=$(mktemp -d /tmp/bha-run-all.XXXXXX)
chmod 755 "$log"
# the cluster sections' template (a single scenario would pay for it and gain
# nothing)
template=$(mktemp -d /var/tmp/bha-template.XXXXXX)
roots_pid=""
trap 'rm -rf "$template"; [ -z "$roots_pid" ] || kill -- -"$roots_pid" 2>/dev/null' EXIT
trap 'exit 130' INT TERM HUP
t0=$SECONDS
deps=""
[ "$long" = 1 ] && deps=--long
"$top/test/install-deps.sh" $deps || { echo "0 passed, 1 failed"; exit 1; }
if ! { make -C "$top" -s && make -C "$top" -s backup && make -C "$top" -s install; }; then
	echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi
times+=("$(printf '%-22s %5d s  (%s)' build $((SECONDS - t0)) ci)")
tier_ci=$((SECONDS - t0))

# The version matrix's roots are made (or found cached) while the sections
# before it run: mostly downloads and unpacking, minutes the tier would
# otherwise wait for.  In a session of its own, so that an early exit ends
# debootstrap too.
matrix=0
[ -x "$top/test/matrix.sh" ] && ! skipped matrix && matrix=1
if [ "$matrix" = 1 ]; then
	setsid bash -c 't=$SECONDS
		for r in trixie sid; do "$1/test/roots.sh" make $r || exit 1; done
		echo "roots made or found in $((SECONDS - t)) s"' roots "$top" >"$log/roots.out" 2>&1 &
	roots_pid=$!
fi

if ! skipped extension; then
	# make check and the TAP tests run as postgres in a copy it owns (initdb,
	# pg_ctl and pg_regress refuse root).
	work=$(mktemp -d /tmp/bha-ext.XXXXXX)
	cp -a "$top/." "$work/"
	chown -R postgres: "$work"
	timed check ci runuser -u postgres -- make -C "$work" -s check
	[ -f "$work/regression.diffs" ] && cat "$work/regression.diffs"
	timed tap ci runuser -u postgres -- make -C "$work" -s installcheck-tap
	rm -rf "$work"
fi

files() { ls "$top/test/$1"/*.t 2>/dev/null; }
# the cluster scenarios of the CI tier: all but the backup host's loss and
# pair (4 and 6-9 minutes of measured outages, the long tier's)
ci_cluster() { files cluster | grep -Ev '/5[01]_backup_[a-z_]+\.t$'; }

# The NAT program's tests that do not take their backend from BHA_NAT_BACKEND
# (08 runs both backends, 09 fuzzes the parsers, 2x are nftables's own) run
# once, in the first backend's pass.
nat_once=" 08_migrate.t 09_fuzz.t 20_nft_rules.t 21_nft_tcp.t 22_nft_atomic.t "
once_done=0
for b in iptables nftables; do
	skipped nat || skipped $b && continue
	set --
	for f in $(files nat); do
		[ "$once_done" = 1 ] && [[ $nat_once == *" ${f##*/} "* ]] || set -- "$@" "$f"
	done
	timed nat-$b ci suite $b "$@"
	once_done=1
done
for s in orchestrator monitoring; do
	skipped $s || [ -z "$(files $s)" ] || timed $s ci suite iptables $(files $s)
done
# The packages' failover cycle (02_cluster_deb.t runs test/cluster/10_failover_cycle.t
# on the installed .debs) is the nftables backend's failover cycle.
cycle_nft=0
if ! skipped packages && [ -n "$(files packages)" ]; then
	timed packages ci suite nftables $(files packages | grep -v '/04_roots\.t$')
	skipped nftables || cycle_nft=1
fi
skipped cluster || skipped iptables ||
	BHA_TEMPLATE=$template timed cluster-iptables ci suite iptables $(ci_cluster)

# nftables: the smoke in the CI tier, the whole matrix in the long one;
# 10_failover_cycle.t only if the packages did not run it there.
if ! skipped cluster && ! skipped nftables; then
	if [ "$long" = 1 ]; then
		set -- $(files cluster)
		name=cluster-nftables tier=long
	else
		set -- "$top/test/cluster/10_failover_cycle.t" "$top/test/cluster/24_watch.t"
		name=smoke-nftables tier=ci
	fi
	nft=()
	for f; do [ "$cycle_nft" = 1 ] && [ "${f##*/}" = 10_failover_cycle.t ] || nft+=("$f"); done
	if [ ${#nft[@]} -gt 1 ]; then
		BHA_TEMPLATE=$template timed $name $tier suite nftables "${nft[@]}"
	else
		timed $name $tier suite nftables "${nft[@]}"
	fi
fi

# The version matrix, one Debian root each (test/roots.sh makes them): the
# build, pg_regress, the TAP tests and a failover cycle in CI; the watch, the
# zero-gap scenarios, the backup host pair, the other managers and the short
# benchmark in the long tier.
if [ "$matrix" = 1 ]; then
	# the roots' failure shows in matrix.sh, which makes them again
	wait "$roots_pid"
	roots_pid=""
	cat "$log/roots.out"
	for root in trixie sid; do
		timed matrix-$root ci "$top/test/matrix.sh" $root
		timed cluster-$root ci "$top/test/cluster-root.sh" $root test/cluster/10_failover_cycle.t
		[ "$long" = 1 ] || continue
		timed cluster-$root-long long "$top/test/cluster-root.sh" $root \
			test/cluster/24_watch.t test/cluster/30_zero_gap.t test/cluster/51_backup_pair.t
		timed managers-$root long "$top/test/cluster-root.sh" $root \
			test/cluster/41_pg_auto_failover.t test/cluster/42_patroni.t
		skipped bench || timed bench-$root long "$top/test/cluster-root.sh" $root test/bench/10_failover_short.t
	done
fi

# Two package builds per root: the long tier's.
if [ "$long" = 1 ] && ! skipped packages && [ -f "$top/test/packages/04_roots.t" ]; then
	BHA_PKG_ROOTS="trixie sid bookworm" timed packages-roots long suite nftables "$top/test/packages/04_roots.t"
fi

if [ "$long" = 1 ] && ! skipped bench && [ -n "$(files bench)" ]; then
	timed bench long suite iptables $(files bench)
fi

echo "logs: $log"
echo "time per section:"
printf '  %s\n' "${times[@]}"
echo "tier ci: $((tier_ci / 60)) min $((tier_ci % 60)) s"
[ "$matrix" = 1 ] && sed -n 's/^roots made or found in/roots (in the background, in no section):/p' "$log/roots.out"
[ "$long" = 1 ] && echo "tier long: $(((tier_ci + tier_long) / 60)) min $(((tier_ci + tier_long) % 60)) s (ci + $tier_long s)"
echo "wall time: $((SECONDS / 60)) min $((SECONDS % 60)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
