# lib.sh: what the package tests share (test/packages/*.t, run as root with prove).
#
# The .debs are built by "make deb" in a scratch copy of the tree (never in the
# checkout) and kept in a cache, $BHD_DEB_CACHE (default /var/lib/bhd-pkg/debs),
# with the hash of the sources they were built from: 01_build.t always builds and
# refreshes it, 02 and 03 reuse it when the sources have not changed since.
# Every test that installs a package on this machine purges it again and puts back
# what the install replaced (files of a "make install", directories that existed).
. "$(dirname "${BASH_SOURCE[0]}")/../lib/tap.sh"
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BHD_DEB_CACHE=${BHD_DEB_CACHE:-/var/lib/bhd-pkg/debs}
DB_PKG=postgresql-15-repmgr-barman-ha
BK_PKG=repmgr-barman-ha-backup
PKGDIR=/usr/lib/repmgr-barman-ha
NAT=$PKGDIR/barman_ha_nat
ORCH=$PKGDIR/barman_ha_orchestrator

# source_id: a hash of the files "make deb" copies (tracked and untracked, not ignored)
source_id() {
	(cd "$TOP" && git ls-files -z -co --exclude-standard -- . ':!test' ':!bench' | sort -z |
		xargs -0 sha256sum 2>/dev/null | sha256sum | cut -c1-16)
}

# debs_build DIR: make deb into DIR (log in DIR/build.log); refreshes the cache
debs_build() {
	local dir=$1 id
	id=$(source_id)
	rm -rf "$dir" && mkdir -p "$dir" || return 1
	make -s -C "$TOP" deb DEB_DIR="$dir" >"$dir/build.log" 2>&1 || return 1
	rm -rf "$BHD_DEB_CACHE.new" && mkdir -p "$BHD_DEB_CACHE.new" &&
		cp "$dir"/*.deb "$BHD_DEB_CACHE.new/" && echo "$id" >"$BHD_DEB_CACHE.new/source-id" &&
		rm -rf "$BHD_DEB_CACHE" && mv "$BHD_DEB_CACHE.new" "$BHD_DEB_CACHE"
}

# debs_get: DEB_DB and DEB_BK from the cache, built first if the sources changed
debs_get() {
	if [ "$(cat "$BHD_DEB_CACHE/source-id" 2>/dev/null)" != "$(source_id)" ]; then
		diag "building the packages (make deb)"
		debs_build "/var/lib/bhd-pkg-$$" || { tail -n 30 "/var/lib/bhd-pkg-$$/build.log" >&2; rm -rf "/var/lib/bhd-pkg-$$"; return 1; }
		rm -rf "/var/lib/bhd-pkg-$$"
	fi
	DEB_DB=$(ls "$BHD_DEB_CACHE"/${DB_PKG}_*.deb 2>/dev/null | head -n 1)
	DEB_BK=$(ls "$BHD_DEB_CACHE"/${BK_PKG}_*.deb 2>/dev/null | head -n 1)
	[ -f "$DEB_DB" ] && [ -f "$DEB_BK" ]
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'; }
pkg_known() { dpkg-query -W -f='${Status}' "$1" >/dev/null 2>&1 && ! dpkg-query -W -f='${Status}' "$1" | grep -q 'not-installed$'; }

# refuse to touch a machine where our packages are there already (not ours to purge)
require_not_installed() {
	local p
	for p in "$@"; do
		pkg_known "$p" && { echo "1..0 # SKIP $p is installed on this machine: not purging someone's install"; exit 0; }
	done
	return 0
}

# files_save DEB SAVE: the files DEB would replace that exist and belong to no
# package (a "make install"), copied under SAVE with their paths
files_save() {
	local f
	mkdir -p "$2"
	dpkg-deb -c "$1" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|' | while read -r f; do
		[ -f "$f" ] && ! dpkg -S "$f" >/dev/null 2>&1 && cp -a --parents "$f" "$2/"
	done
	return 0
}
# files_resave DEB SAVE: just before the purge, files someone changed since the
# install (a "make install" meanwhile): saved again, so the restore puts theirs back
files_resave() {
	local f x
	x=$(mktemp -d /var/lib/bhd-x.XXXXXX)
	dpkg-deb -x "$1" "$x"
	dpkg-deb -c "$1" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|' | while read -r f; do
		[ -f "$f" ] && [ -f "$x$f" ] && ! cmp -s "$f" "$x$f" && cp -a --parents "$f" "$2/"
	done
	rm -rf "$x"
	return 0
}
files_restore() { [ -d "$1" ] && cp -a "$1/." /; rm -rf "$1"; }
