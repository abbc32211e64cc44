# shellcheck shell=bash
# checkout_copy.sh: a scratch copy of the checkout, for scripts that build and
# test it inside a Debian root (test/roots.sh run with BHA_ROOT_BIND set to it).
#
#   checkout_copy TOP WHAT    sets CHECKOUT_COPY to a new folder /var/tmp/WHAT.XXXXXX
#                             with the checkout's files (tracked and untracked, not
#                             ignored: no build products), world-readable; it goes at
#                             the caller's exit unless BHA_MATRIX_KEEP is set.  Call
#                             it directly, not in $(...): the EXIT trap is the caller's.
checkout_copy() {
	local top=$1 what=$2 work
	work=$(mktemp -d "/var/tmp/$what.XXXXXX") || return 1
	# shellcheck disable=SC2034	# the caller's
	CHECKOUT_COPY=$work
	if [ -n "${BHA_MATRIX_KEEP:-}" ]; then
		# shellcheck disable=SC2064	# expanded now, on purpose
		trap "echo '$what: the copy is kept in $work' >&2" EXIT
	else
		# shellcheck disable=SC2064
		trap "rm -rf --one-file-system '$work'" EXIT
	fi
	if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
		# shellcheck disable=SC2016	# expanded by the inner shell
		git -C "$top" ls-files -z -co --exclude-standard |
			(cd "$top" && xargs -0 sh -c 'for f; do [ ! -e "$f" ] || cp -a --parents "$f" "$0"; done' "$work")
	else
		cp -a "$top/." "$work/"
	fi
	chmod 755 "$work"
}
