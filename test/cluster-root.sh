#!/bin/bash
# cluster-root.sh: the namespace cluster's tests (or the programs' tests) on
# another release's PostgreSQL, repmgr and Barman, inside a root made by
# roots.sh (bookworm: 15, trixie: 17, sid: 18).
#
#   cluster-root.sh NAME TEST...      e.g. cluster-root.sh trixie test/cluster/10_failover_cycle.t
#
# On a copy of the checkout (its files, build products left out), bind-mounted
# into the root: builds the extension and the three programs with -Werror,
# installs the extension and barman_ha_client into the root's PostgreSQL (in
# the run's private overlay, see roots.sh; the backup host's programs the
# tests install themselves, under $BHA_DATA), then runs prove -v on the TESTs
# from /, as the cluster tests want, with the caller's BHA_* variables
# (BHA_PREFIX above all); several TESTs share a template in the root
# (BHA_TEMPLATE, see test/cluster/lib.sh).  The network namespaces the tests
# make live in the run's mount namespace and end with it.  Exits with prove's status.
# BHA_MATRIX_KEEP=1 keeps the copy.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { echo "usage: cluster-root.sh NAME TEST... (NAME: bookworm, trixie, sid)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "cluster-root.sh: run as root" >&2; exit 2; }
name=$1
shift
"$top/test/roots.sh" path "$name" >/dev/null || exit 1

# shellcheck source=test/lib/checkout_copy.sh
. "$top/test/lib/checkout_copy.sh"
checkout_copy "$top" "bha-cluster-${BHA_PREFIX:-bha}" || exit 1
work=$CHECKOUT_COPY
tests=()
for t; do tests+=("$work/${t#"$top"/}"); done

# Everything below runs inside the root; $1 is the copy.
# shellcheck disable=SC2016	# expanded by the inner shell
BHA_ROOT_BIND=$work "$top/test/roots.sh" run "$name" /bin/bash -c '
	set -u
	cd "$1" || exit 1
	shift
	pgc=$(ls /usr/lib/postgresql/*/bin/pg_config)
	make -s PG_CONFIG="$pgc" COPT=-Werror >/dev/null && make -s backup >/dev/null &&
		make -s PG_CONFIG="$pgc" install >/dev/null ||
		{ echo "cluster-root: build failed"; exit 1; }
	echo "# cluster-root: $("$pgc" --version), Barman $(barman --version 2>&1 | head -n 1 | cut -d" " -f1),"\
		"$(/usr/lib/postgresql/*/bin/repmgr --version)"
	unset BHA_TEMPLATE
	[ $# -gt 1 ] && export BHA_TEMPLATE=$(mktemp -d /var/tmp/bha-template.XXXXXX)
	cd / && prove -v "$@"
	rc=$?
	rm -rf "${BHA_TEMPLATE:-}"
	exit $rc
' cluster-root.sh "$work" "${tests[@]}"
