#!/bin/bash
# 01_build.t: the Debian packages build with dpkg-buildpackage -us -uc -b (make deb,
# in a scratch copy: nothing lands in the checkout), lintian finds no error, and each
# .deb holds what it should: the extension and barman_ha_client for the DB nodes; the
# two backup programs (barman_ha_nat shipped 0755 root:root: postinst's statoverride
# makes it root:barman 4750), the units, the example configs and the state directory
# for the backup host.  The orchestrator runs barman_ha_nat from the packaged path and
# the extension runs barman_ha_client from PostgreSQL's bindir.  Installing is
# 02_cluster_deb.t's and 03_purge.t's.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP run as root"; exit 0; }
for c in dpkg-buildpackage lintian pg_buildext git; do
	command -v "$c" >/dev/null || { echo "1..0 # SKIP $c is not installed"; exit 0; }
done
W=/var/lib/bhd-pkg-$$
trap 'rm -rf "$W"' EXIT

checkout_state() { git -C "$TOP" status --porcelain --ignored -- debian '*.deb' '*.changes' '*.buildinfo' build-15; }
before=$(checkout_state)
t0=$SECONDS
debs_build "$W/debs"
ok $? "make deb (dpkg-buildpackage -us -uc -b in a copy of the tree) builds, in $((SECONDS - t0)) s" ||
	{ tail -n 40 "$W/debs/build.log" >&2; bail "the packages do not build"; }
is "$(checkout_state)" "$before" "the build left nothing in the checkout"
DEB_DB=$(ls "$W"/debs/${DB_PKG}_*_*.deb | grep -v dbgsym)
DEB_BK=$(ls "$W"/debs/${BK_PKG}_*_*.deb | grep -v dbgsym)
is "$(cd "$W/debs" && ls *.deb | sed 's/_.*//' | sort | tr '\n' ' ')" \
	"$DB_PKG $DB_PKG-dbgsym $BK_PKG $BK_PKG-dbgsym " "four packages: the two and their debug symbols"

# ---- lintian: no error; warnings listed (each must be explained in debian/ or the report)
t0=$SECONDS
lint=$(lintian --no-tag-display-limit "$W"/debs/*.changes 2>&1 | grep -v 'running with root privileges')
is "$(grep -c '^E:' <<<"$lint")" 0 "lintian: no error ($((SECONDS - t0)) s)"
grep -E '^[EW]:' <<<"$lint" | sed 's/^/# lintian: /' >&2
diag "lintian: $(grep -c '^W:' <<<"$lint") warnings"

# ---- the DB nodes' package
c=$(dpkg-deb -c "$DEB_DB" | awk '{print $1, $2, $6}')
for f in usr/lib/postgresql/15/lib/repmgr_barman_ha.so usr/share/postgresql/15/extension/repmgr_barman_ha.control \
	usr/share/postgresql/15/extension/repmgr_barman_ha--1.0.sql usr/share/postgresql/15/extension/repmgr_barman_ha--1.0--1.1.sql \
	usr/share/postgresql/15/extension/repmgr_barman_ha--1.1--1.2.sql \
	usr/share/doc/$DB_PKG/examples/client.conf.example usr/share/doc/$DB_PKG/copyright; do
	like "$c" "-rw-r--r-- root/root \./$f" "$DB_PKG: $f (0644)"
done
like "$c" "-rwxr-xr-x root/root \./usr/lib/postgresql/15/bin/barman_ha_client" "$DB_PKG: barman_ha_client in PostgreSQL's bindir, 0755, no setuid"
is "$(grep -c -- '-rws\|-r-s\|--s' <<<"$c")" 0 "$DB_PKG: no setuid file"
is "$(grep -c 'client.conf$' <<<"$c")" 0 "$DB_PKG: no client.conf of its own (the admin's)"
is "$(grep -c ' \./etc/' <<<"$c")" 0 "$DB_PKG: nothing in /etc (the packages of two majors install side by side)"
like "$(dpkg-deb -f "$DEB_DB" Depends)" "postgresql-15[ ,(]" "$DB_PKG depends on postgresql-15"
like "$(dpkg-deb -f "$DEB_DB" Depends)" "openssh-client" "$DB_PKG depends on openssh-client (barman_ha_client runs ssh)"

x=$W/x; mkdir -p "$x/db" "$x/bk"
dpkg-deb -x "$DEB_DB" "$x/db"; dpkg-deb -x "$DEB_BK" "$x/bk"
like "$(grep -a -o '/usr/lib/postgresql/15/bin/barman_ha_client' "$x/db/usr/lib/postgresql/15/lib/repmgr_barman_ha.so" | head -n 1)" \
	'^/usr/lib/postgresql/15/bin/barman_ha_client$' "the extension's helper_path default is the packaged barman_ha_client"

# ---- the backup host's package
c=$(dpkg-deb -c "$DEB_BK" | awk '{print $1, $2, $6}')
like "$c" "-rwxr-xr-x root/root \./usr/lib/repmgr-barman-ha/barman_ha_nat" "$BK_PKG: barman_ha_nat shipped 0755 root:root (postinst makes it 4750)"
like "$c" "-rwxr-xr-x root/root \./usr/lib/repmgr-barman-ha/barman_ha_orchestrator" "$BK_PKG: barman_ha_orchestrator 0755"
is "$(grep -c -- '-rws\|-r-s\|--s' <<<"$c")" 0 "$BK_PKG: no setuid file in the .deb"
for f in lib/systemd/system/barman-ha-nat.service lib/systemd/system/barman-ha-textfile.service \
	lib/systemd/system/barman-ha-textfile.timer lib/systemd/system/barman-ha-watch.service \
	lib/systemd/system/barman-ha-nat.service.d/repmgr-barman-ha.conf \
	etc/repmgr_barman_ha/nat.conf.example etc/repmgr_barman_ha/orchestrator.conf.example \
	etc/repmgr_barman_ha/keepalived.conf.example; do
	like "$c" "-rw-r--r-- root/root \./$f" "$BK_PKG: $f"
done
like "$c" "drwxr-xr-x root/root \./var/lib/repmgr_barman_ha/" "$BK_PKG: barman_ha_nat's state directory, root's"
is "$(grep -cE '/(nat|orchestrator)\.conf$' <<<"$c")" 0 "$BK_PKG: no nat.conf or orchestrator.conf (the admin's)"
is "$(cat "$x"/bk/lib/systemd/system/*.service | grep -c '@BACKUP_BINDIR@')" 0 "the units name a path, not a placeholder"
like "$(cat "$x/bk/lib/systemd/system/barman-ha-nat.service")" "ExecStart=$NAT init" "the boot unit runs the packaged barman_ha_nat init"
dpkg-deb -e "$DEB_BK" "$x/ctl"
is "$(sort "$x/ctl/conffiles" | tr '\n' ' ')" \
	"/etc/repmgr_barman_ha/keepalived.conf.example /etc/repmgr_barman_ha/nat.conf.example /etc/repmgr_barman_ha/orchestrator.conf.example " \
	"conffiles: the three examples"
like "$(dpkg-deb -f "$DEB_BK" Depends)" "^barman, iptables, nftables" "$BK_PKG depends on barman (its group), iptables and nftables (prerm's rule removal)"
like "$(cat "$x/ctl/postinst")" "dpkg-statoverride --update --add root barman 4750 \"\\\$NAT\"" "postinst: statoverride root barman 4750"
like "$(cat "$x/ctl/postinst")" "deb-systemd-helper enable 'barman-ha-nat.service'" "postinst: the boot unit enabled"
like "$(cat "$x/ctl/postinst")" "deb-systemd-helper debian-installed 'barman-ha-textfile.timer'" "postinst: the textfile timer enabled only if the admin had enabled it"
like "$(cat "$x/ctl/postinst")" "deb-systemd-helper debian-installed 'barman-ha-watch.service'" "postinst: the watch enabled only if the admin had enabled it"
like "$(cat "$x/bk/lib/systemd/system/barman-ha-watch.service")" "ExecStart=$PKGDIR/barman_ha_orchestrator watch" "the watch unit runs the packaged orchestrator's watch"
for s in postinst prerm postrm; do sh -n "$x/ctl/$s"; ok $? "$s is valid sh"; done
if [ ! -e "$NAT" ]; then
	# the orchestrator's compiled-in NAT_PROGRAM: from an extracted copy it names the packaged path
	mkdir -p "$W/o" && chmod 755 "$W" "$W/o"
	printf 'barman_server = main\nstate_directory = %s/o/state\n' "$W" >"$W/o/o.conf"
	out=$("$x/bk$ORCH" -c "$W/o/o.conf" nat show 2>&1)
	like "$out" "cannot run $NAT:" "barman_ha_orchestrator runs barman_ha_nat from $NAT (compiled in)"
else
	skip "$NAT exists on this machine: the compiled-in path is checked by 02 and 03"
fi
echo "1..$TAP_N"
[ "$TAP_FAIL" -eq 0 ]
