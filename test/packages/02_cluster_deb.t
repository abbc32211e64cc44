#!/bin/bash
# 02_cluster_deb.t: the failover cycle on the packages.  Installs both .debs on this
# machine (dpkg -i), runs test/cluster/10_failover_cycle.t with BHA_INSTALL=deb (the
# cluster harness then uses the packaged paths: the extension and barman_ha_client from
# postgresql-15-repmgr-barman-ha, barman_ha_orchestrator and barman_ha_nat, root:barman
# 4750 by postinst, from /usr/lib/repmgr-barman-ha) under the prefix bhd (BHA_PREFIX's
# value followed by "d" if set), on the NAT backend BHA_NAT_BACKEND names, then purges
# both and puts back the files of a "make install" the packages replaced.  The cycle's
# own TAP lines are shown as comments; its counts make one result here.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP run as root"; exit 0; }
require_not_installed "$DB_PKG" "$BK_PKG"
P=${BHA_PREFIX:-bh}d
S=/var/lib/bhd-save-$$
KEEP=""
cleanup() {
	local p
	for p in "$BK_PKG" "$DB_PKG"; do pkg_known "$p" && dpkg --purge "$p" >/dev/null 2>&1; done
	files_restore "$S"
	[ -n "$KEEP" ] && rm -f "$KEEP"
	return 0
}
trap cleanup EXIT
debs_get || bail "the packages do not build"

# a "make install" of the extension is put back after the purge; /etc/repmgr_barman_ha
# (a mount point of the cluster tests' /etc/netns folders) is kept by a file of ours
files_save "$DEB_DB" "$S"
diag "saved for the restore: $(cd "$S" && find . -type f | tr '\n' ' ')"
[ -d /etc/repmgr_barman_ha ] && { KEEP=/etc/repmgr_barman_ha/bhd-keep-$$; : >"$KEEP"; }

out=$(dpkg -i "$DEB_DB" "$DEB_BK" 2>&1)
ok $? "dpkg -i $DB_PKG $BK_PKG" || { sed 's/^/#   /' <<<"$out" >&2; bail "install failed"; }
ok "$(dpkg -S /usr/lib/postgresql/15/lib/repmgr_barman_ha.so >/dev/null 2>&1; echo $?)" "the extension is the package's"

t0=$SECONDS
cycle=$(cd / && BHA_INSTALL=deb BHA_PREFIX=$P bash "$TOP/test/cluster/10_failover_cycle.t" 2>&1)
r=$?
sed 's/^/# cycle: /' <<<"$cycle"
n=$(grep -cE '^(not )?ok ' <<<"$cycle")
bad=$(grep -c '^not ok ' <<<"$cycle")
plan=$(grep -E '^1\.\.[0-9]+' <<<"$cycle" | tail -n 1)
ok "$(test $r -eq 0 && test "$bad" -eq 0 && test "$plan" = "1..$n" && test "$n" -gt 0; echo $?)" \
	"10_failover_cycle.t with BHA_INSTALL=deb, nat_backend ${BHA_NAT_BACKEND:-iptables}: $((n - bad))/$n passed ($((SECONDS - t0)) s)"
# on failure, the cycle's failed lines and their diagnostics on stderr (prove shows them without -v)
[ "$bad" -eq 0 ] && [ $r -eq 0 ] || grep -A 12 -E '^not ok |^Bail out' <<<"$cycle" | sed 's/^/# cycle: /' >&2
ok "$(test ! -e "/run/netns/${P}t1-br"; echo $?)" "the cycle's cluster (${P}t1) is down again"

files_resave "$DEB_DB" "$S"
out=$(dpkg --purge "$BK_PKG" "$DB_PKG" 2>&1)
ok $? "dpkg --purge both" || sed 's/^/#   /' <<<"$out" >&2
ok "$(pkg_known "$DB_PKG" || pkg_known "$BK_PKG"; test $? -ne 0; echo $?)" "both packages gone"
files_restore "$S"
ok "$(test -d /etc/repmgr_barman_ha; echo $?)" "/etc/repmgr_barman_ha still there"
echo "1..$TAP_N"
[ "$TAP_FAIL" -eq 0 ]
