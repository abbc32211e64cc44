#!/bin/sh
# install-deps.sh: install the Debian packages that building, the demo and the tests need.
# Runs as root on a fresh Debian 12 machine that has only postgresql-15 and a compiler.
set -eu
[ "$(id -u)" -eq 0 ] || { echo "install-deps.sh: run as root" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
pkgs="postgresql-server-dev-15 libip4tc-dev libnetfilter-conntrack-dev libnftnl-dev libmnl-dev libpq-dev
  pkg-config iptables nftables iproute2 conntrack postgresql-15-repmgr barman barman-cli
  openssh-server openssh-client openssl python3 libcap2-bin bsdutils libipc-run-perl gnuplot-nox
  clang libclang-rt-14-dev procps psmisc prometheus prometheus-postgres-exporter
  debhelper dpkg-dev lintian postgresql-server-dev-all keepalived"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
apt-get update -q
apt-get install -y -q --no-install-recommends $missing
