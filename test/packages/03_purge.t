#!/bin/bash
# 03_purge.t: the backup host's package installed for real on this machine, its NAT
# endpoints made by the packaged barman_ha_nat, then purged: no rule, no unit, no
# statoverride, no state left, and the admin's own configuration kept and named.
#
# The endpoints live in a private network namespace (bhd$$-iptables, bhd$$-nftables),
# never in the root one: barman_ha_nat -c (root) with a nat.conf under a scratch
# directory.  One round per backend (barman_ha_nat refuses rules of ours in both
# backends of one namespace): install, endpoints, reinstall, purge.  prerm removes our rules in the network namespace dpkg runs in, so the
# purge runs there: "ip netns exec NS dpkg --purge" (only the network is private: the
# files and dpkg's database are the machine's; no /etc/netns/NS exists, so /etc is
# this machine's /etc too).  A reinstall of the same version (an upgrade: prerm
# upgrade) keeps the rules.  barman_ha_nat's 4750 root:barman is checked as barman
# (runs) and as nobody (refused).  No systemd runs here: the units are only enabled
# (symlinks) and disabled again, nothing is started in the root namespace.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP run as root"; exit 0; }
require_not_installed "$BK_PKG"
ID=bhd$$
T=/var/lib/bhd-purge-$$
WANTS=/etc/systemd/system/multi-user.target.wants/barman-ha-nat.service
KEPT=/etc/repmgr_barman_ha/bhd-admin-$$.conf
etc_existed=0; [ -d /etc/repmgr_barman_ha ] && etc_existed=1
cleanup() {
	pkg_known "$BK_PKG" && dpkg --purge "$BK_PKG" >/dev/null 2>&1
	rm -f "$KEPT"
	[ "$etc_existed" = 1 ] && mkdir -p /etc/repmgr_barman_ha
	tap_cleanup
	rm -rf "$T"
}
trap cleanup EXIT
debs_get || bail "the packages do not build"

# the root namespace's rules, read only (legacy only if its nat table exists)
root_rules() {
	nft list ruleset 2>/dev/null
	grep -qx nat /proc/net/ip_tables_names 2>/dev/null && iptables-legacy -w -t nat -S 2>/dev/null
}
ns_ipt() { ip netns exec "$P" iptables-legacy -w -t nat -S 2>/dev/null | grep -c 'repmgr_'; }
ns_nft() { ip netns exec "$P" nft list table ip repmgr_barman_ha >/dev/null 2>&1; }
# ns_ours: our rules are in $P for backend $B
ns_ours() { if [ "$B" = iptables ]; then test "$(ns_ipt)" -ge 5; else ns_nft; fi; }
root_before=$(root_rules | sha256sum)


# ---- the mode as users see it, through /etc/netns (a namespace with /etc/repmgr_barman_ha bind-mounted)
mode_check() {
	local out r
	mkns Q q
	mkdir -p "/etc/netns/$Q/repmgr_barman_ha" && chmod 755 "/etc/netns/$Q" "/etc/netns/$Q/repmgr_barman_ha"
	printf 'backup_address = 10.213.0.10\nstate_file = %s/q.state\nnode.db1 = 10.213.0.11:5432\n' "$T" \
		>"/etc/netns/$Q/repmgr_barman_ha/nat.conf"
	out=$(ip netns exec "$Q" runuser -u barman -- "$NAT" show 2>&1)
	ok $? "as barman: barman_ha_nat show runs (setuid root, group barman)" || sed 's/^/#   /' <<<"$out" >&2
	out=$(ip netns exec "$Q" runuser -u nobody -- "$NAT" show 2>&1); r=$?
	ok "$(test $r -ne 0; echo $?)" "as nobody: refused (not in group barman)"
}

# round BACKEND: install, endpoints in namespace bhd$$-BACKEND, reinstall, purge there
round() {
	local out r v t0
	B=$1
	out=$(dpkg -i "$DEB_BK" 2>&1); r=$?
	ok $r "$B: dpkg -i $BK_PKG" || { sed 's/^/#   /' <<<"$out" >&2; bail "install failed"; }
	is "$(dpkg-statoverride --list "$NAT")" "root barman 4750 $NAT" "$B: postinst: statoverride root barman 4750"
	is "$(stat -c '%U:%G %a' "$NAT")" "root:barman 4750" "$B: barman_ha_nat is root:barman 4750 on disk"
	if [ "$B" = iptables ]; then
		is "$(stat -c '%U:%G %a' /var/lib/barman/repmgr_barman_ha)" "barman:barman 750" "the orchestrator's state directory, barman's"
		is "$(stat -c '%U:%G %a' /var/lib/repmgr_barman_ha)" "root:root 755" "barman_ha_nat's state directory, root's"
		ok "$(test -L "$WANTS"; echo $?)" "barman-ha-nat.service enabled (multi-user.target.wants)"
		ok "$(test ! -e /etc/systemd/system/timers.target.wants/barman-ha-textfile.timer; echo $?)" "the textfile timer not enabled"
		mode_check
	fi

	mkns P "$B"
	mkdir -p "$T/$B" && chmod 755 "$T" "$T/$B"
	printf 'backup_address = 10.213.0.10\nnat_backend = %s\nstate_file = %s\nnode.db1 = 10.213.0.11:5432\nnode.db2 = 10.213.0.12:5432\n' \
		"$B" "$T/$B/state" >"$T/$B/nat.conf"
	for v in init "claim db1 1 --force" "route db1 both"; do
		# shellcheck disable=SC2086
		out=$(ip netns exec "$P" "$NAT" -c "$T/$B/nat.conf" $v 2>&1)
		ok $? "$B: barman_ha_nat $v (namespace $P)" || sed 's/^/#   /' <<<"$out" >&2
	done
	ok "$(ns_ours; echo $?)" "$B: our rules in $P"

	out=$(ip netns exec "$P" dpkg -i "$DEB_BK" 2>&1)
	ok $? "$B: reinstall of the same version (prerm upgrade) in $P" || sed 's/^/#   /' <<<"$out" >&2
	ok "$(ns_ours; echo $?)" "$B: the upgrade keeps the rules"
	is "$(dpkg-statoverride --list "$NAT")" "root barman 4750 $NAT" "$B: the upgrade keeps the statoverride"

	echo "# an admin's file" >"$KEPT"
	t0=$SECONDS
	out=$(ip netns exec "$P" dpkg --purge "$BK_PKG" 2>&1); r=$?
	ok $r "$B: dpkg --purge in $P ($((SECONDS - t0)) s)" || sed 's/^/#   /' <<<"$out" >&2
	sed 's/^/#   purge: /' <<<"$out" >&2
	is "$(ns_ipt)" 0 "$B: no iptables-legacy chain or rule of ours left in $P"
	ok "$(ns_nft; test $? -ne 0; echo $?)" "$B: no nftables table repmgr_barman_ha left in $P"
	[ "$B" = iptables ] && is "$(ip netns exec "$P" iptables-legacy -w -t nat -S 2>/dev/null | tr '\n' ' ')" \
		"-P PREROUTING ACCEPT -P INPUT ACCEPT -P OUTPUT ACCEPT -P POSTROUTING ACCEPT " "$B: the nat table of $P is empty again"
	ok "$(pkg_known "$BK_PKG"; test $? -ne 0; echo $?)" "$B: $BK_PKG is gone from dpkg's database"
	is "$(dpkg-statoverride --list "$NAT")" "" "$B: statoverride removed"
	for f in "$PKGDIR" /var/lib/repmgr_barman_ha /var/lib/barman/repmgr_barman_ha /etc/repmgr_barman_ha/nat.conf.example \
		/etc/repmgr_barman_ha/orchestrator.conf.example /etc/repmgr_barman_ha/keepalived.conf.example \
		/lib/systemd/system/barman-ha-nat.service "$WANTS"; do
		ok "$(test ! -e "$f" && test ! -L "$f"; echo $?)" "$B: purge removed $f"
	done
	ok "$(test -f "$KEPT"; echo $?)" "$B: the admin's $KEPT kept"
	like "$out" "kept the configuration you wrote: .*$KEPT" "$B: purge says which configuration it kept"
	like "$out" "removed the fencing record" "$B: purge says which state it removed"
}

round iptables
round nftables
is "$(root_rules | sha256sum)" "$root_before" "the root namespace's rules untouched"
echo "1..$TAP_N"
[ "$TAP_FAIL" -eq 0 ]
