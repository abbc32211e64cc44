#!/bin/bash
# matrix.sh: build and test the extension on another release's PostgreSQL,
# inside a root made by roots.sh (bookworm: 15, trixie: 17, sid: 18).
#
#   matrix.sh NAME
#
# In the root, on a copy of the checkout (its files, build products left out):
# builds the extension with -Werror and the three programs, installs the
# extension into the root's PostgreSQL (in the run's private overlay, see
# roots.sh), then runs pg_regress and the TAP tests as postgres on that copy,
# which postgres owns (initdb and pg_regress refuse root).  Prints their output, as test/run-all.sh's counters read it, then one
# line "matrix NAME: PostgreSQL N: ...".  Exits non-zero if anything failed.
# BHA_MATRIX_KEEP=1 keeps the copy (results/, regression.diffs, tmp_check/).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 1 ] || { echo "usage: matrix.sh NAME (bookworm, trixie, sid)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "matrix.sh: run as root" >&2; exit 2; }
name=$1
"$top/test/roots.sh" make "$name" >/dev/null || exit 1

# on this machine, bind-mounted at the same path inside the root
. "$top/test/lib/checkout_copy.sh"
checkout_copy "$top" bha-matrix || exit 1
work=$CHECKOUT_COPY

# Everything below runs inside the root; $1 is the copy's path.
# shellcheck disable=SC2016
BHA_ROOT_BIND=$work "$top/test/roots.sh" run "$name" /bin/bash -c '
	set -u
	cd "$1" || exit 1
	pgc=$(ls /usr/lib/postgresql/*/bin/pg_config)
	major=$("$pgc" --version | sed "s/^PostgreSQL \([0-9]*\).*/\1/")
	summary="PostgreSQL $major"
	status=0
	if make -s PG_CONFIG="$pgc" COPT=-Werror && make -s backup &&
		make -s PG_CONFIG="$pgc" install; then
		summary="$summary: build ok"
	else
		echo "matrix: $summary: build failed"
		exit 1
	fi
	chown -R postgres: .
	runuser -u postgres -- make -s PG_CONFIG="$pgc" installcheck-regress 2>&1 | tee regress.out
	[ -f regression.diffs ] && cat regression.diffs
	line=$(grep -E "All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests failed" regress.out | tail -n 1 |
		sed "s/^[# ]*//; s/[ .]*$//")
	grep -q "tests passed" <<<"$line" || status=1
	summary="$summary; pg_regress: ${line:-no result}"
	runuser -u postgres -- make -s PG_CONFIG="$pgc" installcheck-tap 2>&1 | tee tap.out
	files=$(grep "^Files=" tap.out | tail -n 1 | cut -d, -f1,2)
	result=$(grep "^Result:" tap.out | tail -n 1)
	[ "$result" = "Result: PASS" ] || status=1
	summary="$summary; TAP: ${files:-no result} ${result:-Result: none}"
	echo "matrix: $summary"
	exit $status
' matrix.sh "$work" 2>&1 | sed "s/^matrix: /matrix $name: /"
exit "${PIPESTATUS[0]}"
