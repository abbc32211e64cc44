#!/bin/bash
# in_root.sh: the packages built, installed and upgraded in place inside a
# Debian root (04_roots.t runs it through test/roots.sh run, in the run's
# private overlay: what it installs goes with the run).
#
#   in_root.sh COPY      COPY: a copy of the checkout, bind-mounted into the root
#
# make deb builds the packages of the root's PostgreSQL major (pg_buildext's
# supported versions), then again from a second copy with a newer changelog
# version.  A cluster of the root's server (unix socket only: the network
# namespace is the caller's) preloads the extension of the first build;
# CREATE EXTENSION at 1.0, the oldest release, and ALTER EXTENSION UPDATE to
# the default version, with the primary worker running.  The second build is
# installed over it with dpkg -i: the server keeps running on the library it
# loaded, and after a restart the worker is back on the new one.  The backup
# host's package: postinst's statoverride, users and folders, barman_ha_nat's
# capabilities while it runs as barman (in a network namespace of its own),
# the upgrade, and the purge.  Prints "ok - NAME" or "not ok - NAME" lines,
# "# " diagnostics and one "build: N s" line per build; 04_roots.t numbers them.
# lintian, of the root's release, checks the first build.
set -u
copy=$1
pgc=$(ls /usr/lib/postgresql/*/bin/pg_config)
major=$("$pgc" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
bindir=/usr/lib/postgresql/$major/bin
DB_PKG=postgresql-$major-repmgr-barman-ha
BK_PKG=repmgr-barman-ha-backup
NAT=/usr/lib/repmgr-barman-ha/barman_ha_nat
W=/var/tmp/bha-pkg-root
CLUSTER=bhapkg
PORT=5491
rm -rf "$W" && mkdir -p "$W"

t() { if [ "$1" -eq 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; return "$1"; }
t_is() {
	if [ "$1" == "$2" ]; then echo "ok - $3"; return 0; fi
	echo "not ok - $3"; echo "#   got:  $1"; echo "#   want: $2"; return 1
}
sq() { runuser -u postgres -- "$bindir/psql" -h /run/postgresql -p "$PORT" -X -A -t -v ON_ERROR_STOP=1 -d postgres -c "$1" 2>&1; }
postmaster_pid() { head -n 1 "/var/lib/postgresql/$major/$CLUSTER/postmaster.pid" 2>/dev/null; }
worker_pid() { sq "SELECT pid FROM pg_stat_activity WHERE backend_type = 'barman_ha primary worker'"; }
# wait_for SQL: until SQL returns t (30 s)
wait_for() {
	for _ in $(seq 150); do [ "$(sq "$1")" = t ] && return 0; sleep 0.2; done
	return 1
}
deb_of() { ls "$1"/"$2"_*.deb 2>/dev/null | head -n 1; }

# ---- the two builds
build() {
	local src=$1 out=$2 t0=$SECONDS
	make -s -C "$src" deb DEB_DIR="$out" >"$out.log" 2>&1 || { sed 's/^/#   /' "$out.log" | tail -n 30; return 1; }
	echo "build: $((SECONDS - t0)) s"
}
version=$(cd "$copy" && dpkg-parsechangelog -S Version)
build "$copy" "$W/old"
t $? "make deb on PostgreSQL $major" || exit 1
t_is "$(cd "$W/old" && ls *.deb | sed 's/_.*//' | sort | tr '\n' ' ')" \
	"$DB_PKG $DB_PKG-dbgsym $BK_PKG $BK_PKG-dbgsym " "pg_buildext's supported versions: $DB_PKG and the backup package"

# lintian of the root's release on the first build: installed into this run's
# overlay (it goes with the run), not into the root
# (a second try: an archive being updated can answer a download with an error;
# a mirror of unstable may serve a Release file past its Valid-Until date)
lintian_install() {
	apt-get -o Acquire::Check-Valid-Until=false update -q &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends lintian
}
if { lintian_install || { sleep 10 && lintian_install; }; } >"$W/lintian-install.log" 2>&1; then
	lint=$(lintian --no-tag-display-limit "$W"/old/*.changes 2>&1 | grep -v 'running with root privileges')
	t_is "$(grep -c '^E:' <<<"$lint")" 0 "lintian $(lintian --version | sed 's/^lintian v*//'): no error"
	grep -E '^[EW]:' <<<"$lint" | sed 's/^/# lintian: /'
	echo "# lintian: $(grep -c "^W:" <<<"$lint") warnings"
else
	t 1 "lintian installed"
	sed 's/^/#   /' "$W/lintian-install.log" | tail -n 10
fi

# the newer build: one changelog entry more, the same sources
new=$version+1
mkdir "$W/src" && cp -a "$copy/." "$W/src/"
trailer=$(grep -m 1 '^ -- ' "$copy/debian/changelog" | sed 's/  .*//')
{ printf 'repmgr-barman-ha (%s) UNRELEASED; urgency=medium\n\n  * A newer build.\n\n%s  %s\n\n' \
	"$new" "$trailer" "$(date -R)"; cat "$copy/debian/changelog"; } >"$W/src/debian/changelog.new"
mv "$W/src/debian/changelog.new" "$W/src/debian/changelog"
build "$W/src" "$W/new"
t $? "make deb of $new" || exit 1
OLD_DB=$(deb_of "$W/old" "$DB_PKG") NEW_DB=$(deb_of "$W/new" "$DB_PKG")
OLD_BK=$(deb_of "$W/old" "$BK_PKG") NEW_BK=$(deb_of "$W/new" "$BK_PKG")

# ---- the extension: 1.0, updated, with the worker running
out=$(dpkg -i "$OLD_DB" 2>&1)
t $? "dpkg -i $DB_PKG $version" || sed 's/^/#   /' <<<"$out"
out=$(pg_createcluster "$major" "$CLUSTER" -p "$PORT" -- --auth=peer 2>&1) || sed 's/^/#   /' <<<"$out"
cat >"/etc/postgresql/$major/$CLUSTER/conf.d/bha.conf" <<-EOF
	listen_addresses = ''
	shared_preload_libraries = 'repmgr_barman_ha'
	barman_ha.helper_path = ''
	barman_ha.reconcile_interval = 1
EOF
out=$(pg_ctlcluster "$major" "$CLUSTER" start 2>&1)
t $? "PostgreSQL $major starts with the packaged library preloaded" || sed 's/^/#   /' <<<"$out"
default=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "/usr/share/postgresql/$major/extension/repmgr_barman_ha.control")
t_is "$(sq "CREATE EXTENSION repmgr_barman_ha VERSION '1.0'; SELECT extversion FROM pg_extension WHERE extname = 'repmgr_barman_ha'" | tail -n 1)" \
	1.0 "CREATE EXTENSION at 1.0"
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'barman_ha primary worker'"
t $? "the primary worker runs"
t_is "$(sq "ALTER EXTENSION repmgr_barman_ha UPDATE; SELECT extversion FROM pg_extension WHERE extname = 'repmgr_barman_ha'" | tail -n 1)" \
	"$default" "ALTER EXTENSION UPDATE to the default version, $default"
wait_for "SELECT slot_exists AND worker_pid > 0 FROM barman_ha_status()"
t $? "barman_ha_status(): the worker made the barman slot"
pm=$(postmaster_pid) wk=$(worker_pid)

# ---- the upgrade in place
out=$(dpkg -i "$NEW_DB" 2>&1)
t $? "dpkg -i $DB_PKG $new over $version" || sed 's/^/#   /' <<<"$out"
t_is "$(dpkg-query -W -f '${Version}' "$DB_PKG")" "$new" "$DB_PKG $new is installed"
t_is "$(postmaster_pid) $(worker_pid)" "$pm $wk" "the server and its worker kept running (postmaster $pm, worker $wk)"
t_is "$(sq "SELECT extversion FROM pg_extension WHERE extname = 'repmgr_barman_ha'")" "$default" "the extension is still $default"
out=$(pg_ctlcluster "$major" "$CLUSTER" restart 2>&1)
t $? "restart: the new library loads" || sed 's/^/#   /' <<<"$out"
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'barman_ha primary worker'"
t $? "the worker is back after the restart"
t_is "$(sq "SELECT role || ' ' || slot_exists || ' ' || (worker_pid = (SELECT pid FROM pg_stat_activity WHERE backend_type = 'barman_ha primary worker')) FROM barman_ha_status()")" \
	"primary true true" "barman_ha_status() from the new library: primary, slot kept, the new worker"
t_is "$(sq "SELECT extversion FROM pg_extension WHERE extname = 'repmgr_barman_ha'")" "$default" "the extension's version after the upgrade: $default"
pg_ctlcluster "$major" "$CLUSTER" stop >/dev/null 2>&1

# ---- the backup host's package, its dpkg runs in a network namespace of
# their own (unshare -n): prerm removes our NAT rules from the namespace it
# runs in, which must not be this machine's
. /etc/os-release
out=$(unshare -n dpkg -i "$OLD_BK" 2>&1)
t $? "dpkg -i $BK_PKG $version on Debian ${VERSION_ID:-$VERSION_CODENAME}" || sed 's/^/#   /' <<<"$out"
t_is "$(dpkg-statoverride --list "$NAT")" "root barman 4750 $NAT" "postinst: statoverride root barman 4750"
t_is "$(stat -c '%U:%G %a' "$NAT")" "root:barman 4750" "barman_ha_nat is root:barman 4750"
t_is "$(stat -c '%U:%G %a' /var/lib/barman/repmgr_barman_ha /var/lib/repmgr_barman_ha | tr '\n' ' ')" \
	"barman:barman 750 root:root 755 " "the orchestrator's state folder is barman's, barman_ha_nat's root's"
wants=/etc/systemd/system/multi-user.target.wants/barman-ha-nat.service
t "$(test -L "$wants" && test -f "$wants"; echo $?)" "barman-ha-nat.service enabled (a link to $(readlink "$wants"))"

# barman_ha_nat as barman, in a network namespace of its own (unshare -n):
# while it waits for the state lock this script holds, its capabilities
# (its state in a folder only root may write to, up to /: barman_ha_nat trusts
# no other)
S=/var/lib/bha-pkg-root
mkdir -p /etc/repmgr_barman_ha "$S"
printf 'backup_address = 10.213.0.10\nstate_file = %s/nat.state\nnode.db1 = 10.213.0.11:5432\n' "$S" >/etc/repmgr_barman_ha/nat.conf
out=$(unshare -n sh -c "ip link set lo up && $NAT init && runuser -u barman -- $NAT claim db1 1 &&
	runuser -u barman -- $NAT show" 2>&1)
t $? "as barman: barman_ha_nat claim and show run" || sed 's/^/#   /' <<<"$out"
like=$(grep -c 'db1' <<<"$out")
t "$(test "$like" -gt 0; echo $?)" "show names db1, the claim's node" || sed 's/^/#   /' <<<"$out"
out=$(unshare -n runuser -u nobody -- "$NAT" show 2>&1)
t "$(test $? -ne 0; echo $?)" "as nobody: refused"
exec 9>"$S/nat.state.lock"
flock 9
unshare -n runuser -u barman -- "$NAT" claim db1 1 >/dev/null 2>&1 9>&- &
waiter=$!
pid=""
for _ in $(seq 100); do pid=$(pgrep -x -f "$NAT claim db1 1" | head -n 1) && [ -n "$pid" ] && break; sleep 0.05; done
t_is "$(awk '$1 ~ /^(CapEff|CapPrm|CapBnd|NoNewPrivs):$/ { printf "%s %s ", $1, $2 }' "/proc/$pid/status" 2>/dev/null)" \
	"CapPrm: 0000000000003000 CapEff: 0000000000003000 CapBnd: 0000000000003000 NoNewPrivs: 1 " \
	"barman_ha_nat run by barman keeps CAP_NET_ADMIN and CAP_NET_RAW only, no_new_privs"
exec 9>&-
wait "$waiter"
echo "# the waiting claim ended with $?"

out=$(unshare -n dpkg -i "$NEW_BK" 2>&1)
t $? "dpkg -i $BK_PKG $new over $version" || sed 's/^/#   /' <<<"$out"
t_is "$(dpkg-statoverride --list "$NAT") $(stat -c '%a' /var/lib/barman/repmgr_barman_ha)" \
	"root barman 4750 $NAT 750" "the upgrade keeps the statoverride and the state folder"
out=$(unshare -n dpkg --purge "$BK_PKG" 2>&1)
t $? "dpkg --purge $BK_PKG" || sed 's/^/#   /' <<<"$out"
like_kept=$(grep -c "kept the configuration you wrote: /etc/repmgr_barman_ha/nat.conf" <<<"$out")
t_is "$like_kept" 1 "purge keeps the admin's nat.conf and says so"
left=""
for f in "$NAT" /var/lib/repmgr_barman_ha /var/lib/barman/repmgr_barman_ha \
	"$wants"; do
	[ -e "$f" ] || [ -L "$f" ] && left="$left $f"
done
t_is "$left$(dpkg-statoverride --list "$NAT")" "" "purge leaves no program, state, unit link or statoverride"
out=$(dpkg --purge "$DB_PKG" 2>&1)
t $? "dpkg --purge $DB_PKG" || sed 's/^/#   /' <<<"$out"
t "$(test ! -e "/usr/lib/postgresql/$major/lib/repmgr_barman_ha.so"; echo $?)" "the extension's library is gone"
