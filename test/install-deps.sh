#!/bin/sh
# install-deps.sh: install the Debian packages that building, the demo and the tests need.
# Runs as root on a fresh Debian 12 machine that has only postgresql-15 and a compiler.
#   install-deps.sh          what the demo and the CI tier need
#   install-deps.sh --long   and the other failover managers, for the long tier
set -eu
[ "$(id -u)" -eq 0 ] || { echo "install-deps.sh: run as root" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
pkgs="postgresql-server-dev-15 libip4tc-dev libnetfilter-conntrack-dev libnftnl-dev libmnl-dev libpq-dev
  pkg-config iptables nftables iproute2 conntrack postgresql-15-repmgr barman barman-cli
  openssh-server openssh-client openssl python3 libcap2-bin bsdutils libipc-run-perl gnuplot-nox
  clang libclang-rt-14-dev procps psmisc prometheus prometheus-postgres-exporter
  debhelper dpkg-dev lintian postgresql-server-dev-all keepalived debootstrap"
case ${1:-} in
"") ;;
--long) pkgs="$pkgs postgresql-15-auto-failover pg-auto-failover-cli patroni etcd-server etcd-client curl" ;;
*) echo "usage: install-deps.sh [--long]" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
apt-get update -q
apt-get install -y -q --no-install-recommends $missing
