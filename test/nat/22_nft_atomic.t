#!/bin/bash
# 22_nft_atomic.t: 1,000 switches of both endpoints between db1 and db2 by
# barman_ha_nat (nftables), while three readers sample: a netlink reader
# dumping @endpoints in a tight loop (hundreds of thousands of samples), `nft -j list map`
# in a loop, and TCP connections from an application host to both endpoints.
# No sample may miss an element of a routed endpoint (each route is one
# batch: flush + add), no connection may be refused, and the last switch wins.
export BHA_NAT_BACKEND=nftables
. "$(dirname "$0")/lib.sh"
plan 8
setup
net
tcp_server "$S1" db1
tcp_server "$S2" db2
sleep 0.3
nr "$B" init >/dev/null && nr "$B" route db1 both >/dev/null; ok $? "init, route db1 both"

# Reader 1: NFT_MSG_GETSETELEM dumps of @endpoints over raw netlink, between
# two NFT_MSG_GETGEN as nft does: a dump is several messages, and a commit
# between them can tear it (seen: 1, 3 or 4 elements, without
# NLM_F_DUMP_INTR), so a sample counts only if the generation did not move.
# Prints "samples torn bad": bad = an untorn dump without both endpoints' keys
# (an untorn dump was seen listing an element twice under load, never
# missing one).
ip netns exec "$B" $PY -c '
import os, socket, struct, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)     # NETLINK_NETFILTER
s.bind((0, 0))
def attr(t, v):
    return struct.pack("HH", 4 + len(v), t) + v + b"\0" * (-len(v) % 4)
body = struct.pack("BBH", 2, 0, 0) + attr(1, b"repmgr_barman_ha\0") + attr(2, b"endpoints\0")
def ask(typ, flags, seq):	# (set of keys, generation); keys None on an error
    s.send(struct.pack("IHHII", 16 + len(body), 10 << 8 | typ, flags, seq, 0) + body)
    keys, gen = set(), 0
    while True:
        data = s.recv(65536); off = 0
        while off < len(data):
            ln, t = struct.unpack_from("IH", data, off)
            if t == 3 or (t == 2 and struct.unpack_from("i", data, off + 16)[0] == 0):
                return keys, gen             # NLMSG_DONE, or the ack
            if t == 2: return None, gen      # NLMSG_ERROR
            a = off + 20                     # after nlmsghdr + nfgenmsg
            while a < off + ln:
                al, at = struct.unpack_from("HH", data, a)
                if t & 0xff == 15 and at == 1:   # NFT_MSG_NEWGEN: NFTA_GEN_ID
                    gen = struct.unpack_from(">I", data, a + 4)[0]
                if t & 0xff == 12 and at & 0x7fff == 3:   # NEWSETELEM: ..._LIST_ELEMENTS
                    e = a + 4
                    while e < a + al:        # NFTA_LIST_ELEM: KEY is its first
                        keys.add(struct.unpack_from(">H", data, e + 12)[0])   # nested value
                        e += (struct.unpack_from("H", data, e)[0] + 3) & ~3
                a += (al + 3) & ~3
            off += (ln + 3) & ~3
n = torn = bad = 0
while not os.path.exists(sys.argv[1] + "/stop"):
    n += 1
    g0 = ask(16, 0x5, 3 * n)[1]          # NFT_MSG_GETGEN, REQUEST|ACK
    e = ask(13, 0x301, 3 * n + 1)[0]     # NFT_MSG_GETSETELEM, REQUEST|DUMP
    if ask(16, 0x5, 3 * n + 2)[1] != g0: torn += 1
    elif e != {54321, 54322}: bad += 1; sys.stderr.write("# untorn dump with keys %s\n" % e)
open(sys.argv[1] + "/netlink", "w").write("%d %d %d\n" % (n, torn, bad))' "$T" &
PIDS+=($!)
# Reader 2: nft itself.
( n=0 bad=0
  while [ ! -e "$T/stop" ]; do
	e=$(ip netns exec "$B" nft -j list map ip repmgr_barman_ha endpoints 2>/dev/null |
		jq '[.nftables[] | select(.map) | .map.elem[]?] | length')
	n=$((n + 1)); [ "$e" = 2 ] || bad=$((bad + 1))
  done
  echo "$n $bad" >"$T/nft" ) &
PIDS+=($!)
# Reader 3: connections from the application host; refused = no element.
ip netns exec "$C" $PY -c '
import os, socket, sys
n = refused = other = 0
while not os.path.exists(sys.argv[2] + "/stop"):
    for port in (54321, 54322):
        n += 1
        try:
            socket.create_connection((sys.argv[1], port), timeout=1).close()
        except ConnectionRefusedError: refused += 1
        except OSError: other += 1
open(sys.argv[2] + "/tcp", "w").write("%d %d %d\n" % (n, refused, other))' $BACKUP "$T" &
PIDS+=($!)
sleep 0.5

t0=$(date +%s%N)
ip netns exec "$B" bash -c 'fail=0
	for i in $(seq 500); do
		"$1" route db2 both >/dev/null || fail=$((fail + 1))
		"$1" route db1 both >/dev/null || fail=$((fail + 1))
	done
	exit $fail' switcher "$NAT"
ok $? "1,000 switches, every one exit 0"
diag "1,000 switches in $((($(date +%s%N) - t0) / 1000000)) ms (process, route, flow sweep)"
touch "$T/stop"
wait "${PIDS[2]}" "${PIDS[3]}" "${PIDS[4]}"
read -r nn ntorn nbad <"$T/netlink"
read -r fn fbad <"$T/nft"
read -r tn trefused tother <"$T/tcp"
diag "netlink reader: $nn dumps, $ntorn during a commit; nft reader: $fn listings; tcp reader: $tn connections ($tother reset or timed out by the flow sweeps)"
ok $((nn < 10000)) "the netlink reader sampled throughout ($nn dumps)"
is "$nbad" 0 "no dump of one generation without both endpoints ($((nn - ntorn)) dumps)"
is "$fbad" 0 "no nft listing without both elements ($fn listings)"
is "$trefused" 0 "no connection refused ($tn connections)"
is "$(readback "$B")" $'barman 10.213.0.1:5432\napp 10.213.0.1:5432' "the last switch wins"
is "$(tcp_ask "$C" 54322)" "db1 $BACKUP" "and carries TCP to db1"
exit $((TAP_FAIL > 0))
