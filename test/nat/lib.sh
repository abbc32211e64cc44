# lib.sh: what barman_ha_nat's tests share (sourced by test/nat/*.t, run as
# root with prove).
#
# Each test: namespaces PREFIX$$-NAME (test/lib/tap.sh), a root-owned scratch
# dir /var/lib/PREFIX-test-$$ (not under /tmp: the trust checks refuse a
# world-writable ancestor), barman_ha_nat installed there setuid root, group
# barman, and a trap that removes everything, on failure too.  The backend
# comes from BHA_NAT_BACKEND (iptables by default) and goes into nat.conf,
# so the same tests run for both; readback is the one place that knows how
# each backend's rules look from the outside.  PREFIX is BHA_NAT_PREFIX
# (default bhn): runs side by side on one machine keep apart.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/tap.sh"
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PREFIX=${BHA_NAT_PREFIX:-bhn}
ID=$PREFIX$$
T=/var/lib/$PREFIX-test-$$
NAT=$T/bin/barman_ha_nat
BACKUP=10.213.0.10
BACKEND=${BHA_NAT_BACKEND:-iptables}
PY=/usr/bin/python3
PIDS=()

trap tap_cleanup EXIT

# setup: build, install setuid root:barman 4750 under $T
setup() {
	id barman >/dev/null 2>&1 || useradd --system --user-group --no-create-home barman ||
		bail "cannot create the barman user"
	mkdir -p "$T" && chmod 755 "$T" || bail "cannot create $T"
	make -s -C "$TOP/nat" ${NAT_MAKE_ARGS:-} >/dev/null || bail "barman_ha_nat does not build"
	make -s -C "$TOP/nat" ${NAT_MAKE_ARGS:-} install BINDIR="$T/bin" NAT_GROUP=barman >/dev/null ||
		bail "barman_ha_nat does not install"
	# ip netns exec bind-mounts /etc/netns/NS/repmgr_barman_ha here
	mkdir -p /etc/repmgr_barman_ha
}

# conf NS [EXTRA-LINES...]: nat.conf as seen in namespace NS, two nodes,
# state under $T; prints nothing.  CONF_NS/STATE_NS name the files.
conf() {
	local ns=$1 d=/etc/netns/$1/repmgr_barman_ha
	shift
	mkdir -p "$d" "$T/state-$ns" && chmod 755 "/etc/netns/$ns" "$d" "$T/state-$ns"
	printf '%s\n' "# test config of $ns" "backup_address = $BACKUP" "nat_backend = $BACKEND" \
		"node.db1 = 10.213.0.1:5432" "node.db2 = 10.213.0.2:5432" \
		"state_file = $T/state-$ns/state" "lock_timeout = 2" "$@" >"$d/nat.conf"
	chmod 644 "$d/nat.conf"
}
conf_of() { echo "/etc/netns/$1/repmgr_barman_ha/nat.conf"; }
state_of() { echo "$T/state-$1/state"; }

# nb NS ARGS: barman_ha_nat as the barman user in NS; nr: as root
nb() { local ns=$1; shift; ip netns exec "$ns" runuser -u barman -- "$NAT" "$@"; }
nr() { local ns=$1; shift; ip netns exec "$ns" "$NAT" "$@"; }

# readback NS: where the endpoints lead, read with the backend's own tool:
# "barman ADDR:PORT|closed" and "app ..." lines, or "missing"
readback() {
	if [ "$BACKEND" = iptables ]; then
		ip netns exec "$1" iptables-legacy -w -t nat -S repmgr_dnat 2>/dev/null | awk -v b="$BACKUP" '
			BEGIN { t[54321] = t[54322] = "closed"; ok = 0 }
			$1 == "-N" { ok = 1 }
			$1 == "-A" && $4 == b "/32" && $13 == "--to-destination" { t[$10] = $14 }
			END { if (!ok) print "missing"; else printf "barman %s\napp %s\n", t[54321], t[54322] }'
	else
		ip netns exec "$1" nft -j list table ip repmgr_barman_ha 2>/dev/null | $PY -c '
import json, sys
t = {54321: "closed", 54322: "closed"}
try:
    doc = json.load(sys.stdin)["nftables"]
except Exception:
    print("missing"); sys.exit()
for o in doc:
    m = o.get("map")
    if not m or m.get("name") != "endpoints":
        continue
    for k, v in m.get("elem", []):
        a, p = v["concat"]
        t[int(k)] = "%s:%s" % (a, p)
print("barman %s\napp %s" % (t[54321], t[54322]))'
	fi
}

# iptables-only read-backs (rule bytes against the CLI's) skip under nftables
iptables_only() { [ "$BACKEND" = iptables ]; }
# cli_chains: a namespace CLI with our two chains and their jumps made by the
# iptables CLI, as an admin would type them; ipt adds the rules to compare
cli_chains() {
	mkns CLI cli
	ipt -N repmgr_dnat; ipt -N repmgr_snat
	ipt -A PREROUTING -j repmgr_dnat; ipt -A OUTPUT -j repmgr_dnat; ipt -A POSTROUTING -j repmgr_snat
}
ipt() { ip netns exec "$CLI" iptables-legacy -w -t nat "$@"; }

# tcp_server NS NAME: a python3 listener on NS's address:5432 that answers
# every connection with "NAME PEER-ADDRESS" and keeps it open until the
# client closes
tcp_server() {
	ip netns exec "$1" $PY -c '
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5432)); s.listen(512)
def serve(c, a):
    try:
        c.sendall(("%s %s\n" % (sys.argv[1], a[0])).encode())
        while c.recv(4096): pass
    except OSError: pass
    c.close()
while True:
    c, a = s.accept()
    threading.Thread(target=serve, args=(c, a), daemon=True).start()' "$2" &
	PIDS+=($!)
}

# tcp_ask NS PORT: connect to BACKUP:PORT from NS, print the server's line
# or the error (bash /dev/tcp), within 3 s
tcp_ask() {
	ip netns exec "$1" timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && read -r l <&3 && echo "$l"' \
		"$BACKUP" "$2" 2>&1 | tail -n 1 | sed 's/.*: //'
}

# net: bridge, backup host B at $BACKUP, db1/db2 (S1, S2) at .1/.2, an app
# host C at .20, each config written for B
net() {
	mkbridge
	mkns B backup; join "$B" $BACKUP
	mkns S1 db1; join "$S1" 10.213.0.1
	mkns S2 db2; join "$S2" 10.213.0.2
	mkns C app; join "$C" 10.213.0.20
	conf "$B" "$@"
}
