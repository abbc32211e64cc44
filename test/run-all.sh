#!/bin/bash
# run-all.sh: the whole test suite, from a fresh machine.  Installs the Debian
# packages it needs, builds the extension and its three programs, installs the
# extension and the client, then runs
#   1. pg_regress and the TAP tests of the extension, as postgres, on a copy of
#      the tree that postgres owns (initdb and pg_regress refuse root);
#   2. the programs' tests (test/nat, test/orchestrator), as root,
#      in private network namespaces, and the monitoring rules' tests;
#   3. the namespace cluster's scenarios and the short benchmark, as root.
# Ends with one line "N passed, N failed" and exits non-zero if anything failed.
# Set BHA_SKIP="cluster nftables" (space separated section or backend names) to skip
# sections, or the second pass over the nftables backend.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "run-all.sh: run as root" >&2; exit 2; }
passed=0 failed=0
skip=" ${BHA_SKIP:-} "

count_prove() {			# add prove's counts from its output file $1
	local tests fails
	tests=$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' "$1" | tail -n 1)
	fails=$(sed -n 's/^Failed \([0-9]*\)\/[0-9]* subtests.*/\1/p' "$1" | awk '{s+=$1} END {print s+0}')
	tests=${tests:-0}
	if ! grep -q '^Result: PASS' "$1"; then
		# a script that died counts as one failure even if it planned nothing
		[ "$fails" -eq 0 ] && fails=1
	fi
	passed=$((passed + tests - fails)); failed=$((failed + fails))
}

count_regress() {		# add pg_regress's counts from its output file $1
	local line
	line=$(grep -E 'All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests failed' "$1" | tail -n 1)
	if [[ $line =~ All\ ([0-9]+)\ tests ]]; then
		passed=$((passed + BASH_REMATCH[1]))
	elif [[ $line =~ ([0-9]+)\ of\ ([0-9]+)\ tests ]]; then
		failed=$((failed + BASH_REMATCH[1]))
		passed=$((passed + BASH_REMATCH[2] - BASH_REMATCH[1]))
	else
		failed=$((failed + 1))
	fi
}

log=$(mktemp -d /tmp/bha-run-all.XXXXXX)
chmod 755 "$log"
"$top/test/install-deps.sh" || { echo "0 passed, 1 failed"; exit 1; }
if ! { make -C "$top" -s && make -C "$top" -s backup && make -C "$top" -s install; }; then
	echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi

if [[ $skip != *" extension "* ]]; then
	# pg_regress and PostgreSQL::Test::Cluster run as postgres in a copy it owns.
	work=$(mktemp -d /tmp/bha-ext.XXXXXX)
	cp -a "$top/." "$work/"
	chown -R postgres: "$work"
	runuser -u postgres -- make -C "$work" -s installcheck-regress 2>&1 | tee "$log/regress.out"
	count_regress "$log/regress.out"
	[ -f "$work/regression.diffs" ] && cat "$work/regression.diffs"
	runuser -u postgres -- make -C "$work" -s installcheck-tap 2>&1 | tee "$log/tap.out"
	count_prove "$log/tap.out"
	rm -rf "$work"
fi

# The NAT program's and the cluster's tests run once per NAT backend: the same
# files, with BHA_NAT_BACKEND naming the backend their configurations use.
for section in nat orchestrator client monitoring packages cluster bench; do
	[[ $skip == *" $section "* ]] && continue
	ls "$top/test/$section"/*.t >/dev/null 2>&1 || continue
	case $section in nat|cluster) backends="iptables nftables" ;; *) backends=iptables ;; esac
	for backend in $backends; do
		[[ $skip == *" $backend "* ]] && continue
		# from /: servers and tools run as postgres or barman, who may not enter the checkout
		(cd / && BHA_NAT_BACKEND=$backend prove -v "$top/test/$section"/*.t) 2>&1 | tee "$log/$section-$backend.out"
		count_prove "$log/$section-$backend.out"
	done
done

echo "logs: $log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
