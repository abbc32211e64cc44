#!/bin/bash
# roots.sh: Debian roots with another release's PostgreSQL, Barman and repmgr,
# so the same tests run on every major without installing a newer release's
# packages into this system.
#
#   roots.sh make NAME        make the root NAME unless a complete one is cached;
#                             prints its path
#   roots.sh path NAME        prints the cached root's path (fails if absent)
#   roots.sh run NAME CMD...  runs CMD as root inside the root NAME
#
# NAME is trixie (Debian 13, PostgreSQL 17), sid (unstable, PostgreSQL 18) or
# bookworm (Debian 12, PostgreSQL 15: this machine's release, untouched).
# Besides repmgr, a root holds the other failover managers (pg_auto_failover,
# Patroni and etcd), for the longer suite's cluster tests.
# Roots are debootstrap --variant=minbase, cached under $BHA_ROOTS_DIR (default
# /var/cache/bha-roots).  A root is complete when its stamp file, written last,
# lists the same suite and packages as this script; anything else is made anew.
# The Debian mirror is the one this machine's apt sources name.
#
# "run" gives the command a private mount and PID namespace over a private
# copy of the root: an overlay whose writes (a make install, a test's data)
# go to $BHA_ROOTS_DIR/.run.XXXXXX and are removed at the end, so runs at the
# same time do not see each other's installs and the cached root stays as
# made.  /proc, /sys, /dev, /dev/shm, /tmp and /run are mounted in it and
# vanish with it, and every process left in the root (a server a test forgot)
# ends with the command.  BHA_ROOT_BIND, absolute paths separated by spaces,
# are bind-mounted at the same paths inside: what the command leaves there
# stays.  The network namespace is the caller's.
set -eu

roots_dir=${BHA_ROOTS_DIR:-/var/cache/bha-roots}

usage() {
	echo "usage: roots.sh make|path NAME | run NAME CMD... (NAME: bookworm, trixie, sid)" >&2
	exit 2
}

# suite and PostgreSQL major of a root's name
root_suite() {
	case $1 in
	bookworm) echo "bookworm 15" ;;
	trixie) echo "trixie 17" ;;
	sid) echo "sid 18" ;;
	*) echo "roots.sh: unknown root '$1' (bookworm, trixie, sid)" >&2; exit 2 ;;
	esac
}

# what building, pg_regress, the TAP tests, the namespace cluster (keepalived:
# the backup host pair) and the Debian packages (debhelper,
# postgresql-server-dev-all: make deb) need
root_packages() {
	local major=$1
	echo "postgresql-$major postgresql-server-dev-$major postgresql-$major-repmgr
	barman barman-cli build-essential libpq-dev pkg-config libipc-run-perl
	debhelper dpkg-dev postgresql-server-dev-all
	libip4tc-dev libnetfilter-conntrack-dev libnftnl-dev libmnl-dev iptables
	nftables iproute2 conntrack openssh-server openssh-client openssl python3
	libcap2-bin procps psmisc prometheus-postgres-exporter keepalived
	$(manager_packages "$major")" |
		tr -s ' \t\n' '\n' | sed '/^$/d' | sort
}

# The managers other than repmgr: pg_auto_failover, Patroni with etcd, and
# curl for Patroni's REST API.  Patroni's etcd3 store imports python3-etcd,
# which unstable's patroni no longer depends on.
manager_packages() {
	echo "postgresql-$1-auto-failover pg-auto-failover-cli patroni python3-etcd etcd-server etcd-client curl"
}

# The first non-security archive in the machine's apt sources (deb822 or one-line).
apt_mirror() {
	local m=""
	if [ -r /etc/apt/sources.list.d/debian.sources ]; then
		m=$(awk '
			/^$/ { if (uri != "" && suites !~ /-security/) { print uri; exit } uri = ""; suites = "" }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { suites = $0 }
			END { if (uri != "" && suites !~ /-security/) print uri }
		' /etc/apt/sources.list.d/debian.sources | head -n 1)
	fi
	if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
		m=$(awk '$1 == "deb" && $0 !~ /security/ {
				for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit }
			}' /etc/apt/sources.list)
	fi
	[ -n "$m" ] || { echo "roots.sh: no Debian mirror in the apt sources" >&2; exit 1; }
	echo "$m"
}

stamp_text() {
	local suite=$1 major=$2
	echo "suite $suite"
	root_packages "$major"
}

make_root() {
	local name=$1 suite major root new stamp
	read -r suite major <<<"$(root_suite "$name")"
	root=$roots_dir/$name
	stamp=$root/.bha-root-stamp
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(stamp_text "$suite" "$major")" ]; then
		echo "$root"
		return
	fi
	command -v debootstrap >/dev/null ||
		{ echo "roots.sh: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
	mkdir -p "$roots_dir"
	new=$roots_dir/.$name.new
	rm -rf --one-file-system "$new"
	if ! debootstrap --variant=minbase \
		--include="$(root_packages "$major" | paste -sd,)" \
		"$suite" "$new" "$(apt_mirror)" >"$roots_dir/$name.log" 2>&1; then
		tail -n 20 "$roots_dir/$name.log" >&2
		echo "roots.sh: debootstrap $suite failed (log: $roots_dir/$name.log)" >&2
		exit 1
	fi
	rm -rf --one-file-system "$root"
	mv "$new" "$root"
	stamp_text "$suite" "$major" >"$stamp"
	echo "$root"
}

root_path() {
	local root=$roots_dir/$1
	root_suite "$1" >/dev/null
	[ -f "$root/.bha-root-stamp" ] || { echo "roots.sh: no root $1 under $roots_dir (roots.sh make $1)" >&2; exit 1; }
	echo "$root"
}

# The environment inside is a clean one, plus the BHA_* and CI variables.
run_in_root() {
	local root=$1 rc v
	shift
	local -a envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}")
	for v in $(compgen -v | grep -E '^(BHA_[A-Z0-9_]+|CI)$' || true); do
		envs+=("$v=${!v}")
	done
	# The command runs under a small init, PID 1 of the namespace: every orphan (a
	# daemonized repmgrd, a detached receive-wal) becomes its child and is reaped
	# (unreaped, it stays a zombie that kill -0 still finds); it exits with the
	# command's status.
	# shellcheck disable=SC2016	# Perl's variables
	local reaper='$c = fork // die "fork: $!"; exec @ARGV or die "exec: $!" if $c == 0;
		while (($p = wait) > 0) { exit($? >> 8 || ($? & 127 ? 128 + ($? & 127) : 0)) if $p == $c }'
	run_layer=$(mktemp -d "$roots_dir/.run.XXXXXX")	# global: the EXIT trap removes it
	trap 'rm -rf --one-file-system "$run_layer"' EXIT
	mkdir "$run_layer/upper" "$run_layer/work" "$run_layer/root"
	# shellcheck disable=SC2016	# expanded by the inner shell
	unshare --mount --propagation private --pid --fork --kill-child -- \
		/bin/sh -c '
		set -e
		lower=$1 layer=$2 binds=$3; shift 3
		r=$layer/root
		# also makes "/" inside a mount point, as ip netns exec needs
		mount -t overlay overlay \
			-o "lowerdir=$lower,upperdir=$layer/upper,workdir=$layer/work" "$r"
		for d in $binds; do
			mkdir -p "$r$d"
			mount --bind "$d" "$r$d"
		done
		mount -t proc proc "$r/proc"
		mount -t sysfs -o ro sysfs "$r/sys"
		mount --rbind /dev "$r/dev"
		mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
		mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
		mount -t tmpfs -o mode=0755 tmpfs "$r/run"
		exec chroot "$r" /usr/bin/env -i "$@"
	' roots.sh "$root" "$run_layer" "${BHA_ROOT_BIND:-}" "${envs[@]}" /usr/bin/perl -e "$reaper" "$@" <&0 &
	# A signal (timeout's TERM) ends the run before the overlay is removed:
	# the command is PID 1 of its namespace, which ignores TERM, so unshare
	# is killed, and kills it and with it everything in the namespace.
	run_pid=$!
	trap 'kill -KILL "$run_pid" 2>/dev/null' INT TERM HUP
	while :; do
		wait "$run_pid" 2>/dev/null && rc=0 || rc=$?
		kill -0 "$run_pid" 2>/dev/null || break
	done
	return "$rc"
}

[ $# -ge 2 ] || usage
cmd=$1 name=$2
shift 2
case $cmd in
make) [ $# -eq 0 ] || usage; make_root "$name" ;;
path) [ $# -eq 0 ] || usage; root_path "$name" ;;
run)
	[ $# -ge 1 ] || usage
	[ "$(id -u)" -eq 0 ] || { echo "roots.sh: run as root" >&2; exit 2; }
	run_in_root "$(root_path "$name")" "$@" || exit
	;;
*) usage ;;
esac
