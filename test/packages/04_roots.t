#!/bin/bash
# 04_roots.t: the packages of each Debian root's PostgreSQL major, built,
# installed and upgraded in place in that root (in_root.sh, run through
# test/roots.sh in the run's private overlay: nothing is installed on this
# machine).  BHA_PKG_ROOTS names the roots, space separated (default trixie:
# Debian 13, PostgreSQL 17; also sid, 18, and bookworm, 15); a root missing
# from the cache is made first (test/roots.sh make).  Each of in_root.sh's
# results is one here, named after its root.  Two package builds per root:
# test/run-all.sh runs it in the long tier, for all three.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP run as root"; exit 0; }
. "$TOP/test/lib/checkout_copy.sh"
checkout_copy "$TOP" bha-pkg-root || bail "no copy of the checkout"

for root in ${BHA_PKG_ROOTS:-trixie}; do
	"$TOP/test/roots.sh" make "$root" >/dev/null || bail "no root $root"
	t0=$SECONDS
	n0=$TAP_N
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok 0 "$root: ${line#ok - }" ;;
		"not ok - "*) ok 1 "$root: ${line#not ok - }" ;;
		"build: "*) diag "$root: ${line}" ;;
		*) echo "$line" >&2 ;;
		esac
	done < <(BHA_ROOT_BIND=$CHECKOUT_COPY "$TOP/test/roots.sh" run "$root" \
		/bin/bash "$CHECKOUT_COPY/test/packages/in_root.sh" "$CHECKOUT_COPY" 2>&1)
	# in_root.sh stops after a failed build: fewer results than a full run
	ok "$(test $((TAP_N - n0)) -ge 33; echo $?)" "$root: every step ran ($((TAP_N - n0)) results, $((SECONDS - t0)) s)"
done
echo "1..$TAP_N"
[ "$TAP_FAIL" -eq 0 ]
