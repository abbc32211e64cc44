#!/bin/sh
# tmp-install.sh DESTDIR BINDIR PKGLIBDIR SHAREDIR: completes DESTDIR, where
# "make install DESTDIR=..." put the extension, into a private copy of this
# PostgreSQL installation, for make check.  The server finds its share and
# library folders relative to its own executable, so the programs pg_regress
# runs (postgres, initdb, pg_ctl, psql) are copied; everything else is a
# symbolic link to the installation's file, except the extension's own files,
# which only the build provides.  Needs no root and leaves the installation
# alone.
set -eu
dest=$1
shift
for dir in "$@"; do
	mkdir -p "$dest$dir"
	(cd "$dir" && find . ! -type d ! -name 'repmgr_barman_ha*') | while read -r f; do
		[ -e "$dest$dir/$f" ] && continue
		mkdir -p "$(dirname "$dest$dir/$f")"
		case $dir/$f in
		"$1"/./postgres|"$1"/./initdb|"$1"/./pg_ctl|"$1"/./psql)
			cp -p "$dir/$f" "$dest$dir/$f" ;;
		*)
			ln -s "$dir/$f" "$dest$dir/$f" ;;
		esac
	done
done
