#!/bin/bash
# 03_hostile.t: hostile argv, environment, descriptors and configuration.
# Each request below, made as the barman user (the caller we defend
# against), is refused with its documented exit code and one
# "barman_ha_nat: " line on stderr, and leaves the rules and the state
# exactly as they were.
. "$(dirname "$0")/lib.sh"
setup
mkns NS b
conf "$NS"
CONF=$(conf_of "$NS")
STATE=$(state_of "$NS")
nb "$NS" init >/dev/null && nb "$NS" claim db1 2 >/dev/null && nb "$NS" route db1 >/dev/null ||
	bail "set-up claim failed"
SNAP=$(readback "$NS")
STSNAP=$(cat "$STATE")
long=$(printf 'a%.0s' {1..70})
huge=$(printf 'x%.0s' {1..300})

# expected-code <TAB> description <TAB> argv (split on spaces; @ = one empty word)
IFS= read -r -d '' cases <<CASES
2	unknown node	route db9
2	shell metacharacters in a node	route db1;id
2	command substitution	route \$(id)
2	overlong node name	route $long
2	node name with a slash	route ../db1
2	node name starting with a dash	route -db1
2	node name starting with a dot	route .db1
2	bad endpoint	route db1 sideways
2	extra argument	route db1 both extra
2	address instead of a node	route 10.213.0.1
2	empty node name	route @
2	timeline zero	claim db1 0
2	negative timeline	claim db1 -1
2	timeline too large	claim db1 2147483648
2	timeline with letters	claim db1 3x
2	hex timeline	claim db1 0x10
2	timeline with a sign	claim db1 +5
2	unknown option after claim	claim db1 5 --frob
2	claim without a timeline	claim db1
2	unknown node in a claim	claim db9 5
2	unknown verb	frobnicate
2	no verb	@
2	--help with extra words	--help me
2	a 300-byte word	show $huge
2	-c from a non-root caller	-c $T/other.conf show
2	--force from a non-root caller	claim db2 9 --force
3	route another node	route db2
3	route another node, one endpoint	route db2 app
3	claim on a lower timeline	claim db2 1
3	another node on the same timeline	claim db2 2
CASES
cases=${cases%$'\n'}
n=$(grep -c . <<<"$cases")

while IFS=$'\t' read -r code desc args; do
	read -r -a argv <<<"$args"
	for i in "${!argv[@]}"; do [ "${argv[$i]}" = @ ] && argv[$i]=""; done
	nb "$NS" "${argv[@]}" >/dev/null 2>"$T/err"
	rc=$?
	TAP_N=$((TAP_N + 1))
	if [ $rc -eq "$code" ] && [ "$(tail -n 1 "$T/err" | grep -c '^barman_ha_nat: ')" = 1 ]; then
		echo "ok $TAP_N - $desc: exit $code ($(tail -n 1 "$T/err"))"
	else
		echo "not ok $TAP_N - $desc: exit $rc (want $code), stderr: $(tail -n 1 "$T/err")"
		TAP_FAIL=$((TAP_FAIL + 1))
	fi
done <<<"$cases"
is "$(readback "$NS")" "$SNAP" "argv cases: no rule changed"
is "$(cat "$STATE")" "$STSNAP" "argv cases: state unchanged"

# The environment is cleared: nothing in it reaches us.
out=$(ip netns exec "$NS" runuser -u barman -- env -i LD_PRELOAD=/nonexistent.so LD_LIBRARY_PATH=/tmp \
	PATH=/tmp XTABLES_LOCKFILE="$T/evil.lock" LANG=xx_XX.UTF-8 MALLOC_PERTURB_=165 \
	BIG="$(printf 'y%.0s' {1..100000})" "$NAT" show 2>&1)
ok $? "a hostile environment: show still works"
ok $([ ! -e "$T/evil.lock" ]; echo $?) "XTABLES_LOCKFILE is ignored"
# Resource limits the caller set: reset, so they cannot cut a state write short.
out=$(ip netns exec "$NS" runuser -u barman -- bash -c 'ulimit -S -f 0 -n 4 -t 1 -v 20000; exec "$0" route db1' "$NAT" 2>&1)
is "$?" 0 "soft limits -f 0 -n 4 -t 1 -v 20000 by the caller: route still exits 0 ($out)"
# Closed standard descriptors: re-opened on /dev/null, nothing written into our files.
nb "$NS" route db1 <&- >&- 2>&-; is $? 0 "stdin, stdout and stderr closed: route still exits 0"
is "$(cat "$STATE")" "$STSNAP" "...and the state file did not become anyone's stderr"

# Configuration: each refused with exit 2 and its reason; nothing changes.
cp "$CONF" "$T/good.conf"
bad_conf() {			# bad_conf DESC REGEX: show as barman, expect 2 and the reason
	nb "$NS" show >/dev/null 2>"$T/err"
	local rc=$?
	TAP_N=$((TAP_N + 1))
	if [ $rc = 2 ] && [[ $(tail -n 1 "$T/err") =~ $2 ]]; then echo "ok $TAP_N - $1: exit 2 ($(tail -n 1 "$T/err"))"
	else echo "not ok $TAP_N - $1: exit $rc, $(tail -n 1 "$T/err")"; TAP_FAIL=$((TAP_FAIL + 1)); fi
	rm -f "$CONF"; cp "$T/good.conf" "$CONF"; chmod 644 "$CONF"
}
with() { cp "$T/good.conf" "$CONF"; printf '%s\n' "$@" >>"$CONF"; }
with "frob = 1"; bad_conf "unknown key" "nat.conf: line 8: unknown key \"frob\"$"
with "node.db3 = 10.213.0.300:5432"; bad_conf "address out of range" 'line 8: invalid value for "node.db3"'
with "node.db3 = 10.1:5432"; bad_conf "short address form" 'invalid value for "node.db3"'
with "node.db3 = 0.0.0.0:5432"; bad_conf "address 0.0.0.0" 'invalid value for "node.db3"'
with "node.db3 = 10.213.0.3:0"; bad_conf "port 0" 'invalid value for "node.db3"'
with "node.db3 = 10.213.0.3:70000"; bad_conf "port 70000" 'invalid value for "node.db3"'
with "node.db1 = 10.213.0.3:5432"; bad_conf "duplicate node" 'invalid value for "node.db1"'
with "node.-x = 10.213.0.3:5432"; bad_conf "bad node name" 'invalid value for "node.-x"'
with "node.closed = 10.213.0.3:5432"; bad_conf "a node named like a show word" 'invalid value for "node.closed"'
with "lock_timeout = 0"; bad_conf "lock_timeout 0" 'invalid value for "lock_timeout"'
with "lock_timeout = 601"; bad_conf "lock_timeout 601" 'invalid value for "lock_timeout"'
with "nat_backend = pf"; bad_conf "unknown backend" 'invalid value for "nat_backend"'
with "state_file = var/state"; bad_conf "relative state_file" 'invalid value for "state_file"'
with "state_file = $T/../state"; bad_conf "state_file with .." 'invalid value for "state_file"'
with "barman_port = 54322"; bad_conf "both endpoints on one port" "barman_port and app_port must differ"
with "just words"; bad_conf "a line without =" "line 8: expected key = value"
grep -v backup_address "$T/good.conf" >"$CONF"; bad_conf "no backup_address" "backup_address is required"
with $(for i in $(seq 3 33); do echo "node.n$i=10.213.1.$i:5432"; done); bad_conf "33 nodes" 'invalid value for "node.n33"'
printf 'backup_address = %s\0\n' $BACKUP >"$CONF"; bad_conf "a NUL byte" "binary"
head -c 70000 /dev/zero | tr '\0' '#' >"$CONF"; bad_conf "larger than 64 KiB" "larger than"
chmod 666 "$CONF"; bad_conf "config writable by others" "writable by group or others"
chmod 664 "$CONF"; bad_conf "config writable by its group" "writable by group or others"
chown barman "$CONF"; bad_conf "config owned by barman" "not owned by root"
rm "$CONF"; ln -s "$T/good.conf" "$CONF"; bad_conf "config is a symlink" "cannot open .*nat.conf"
rm -f "$CONF"; mkfifo -m 644 "$CONF"
t0=$(date +%s%N); bad_conf "config is a FIFO" "is not a regular file"
ms=$((($(date +%s%N) - t0) / 1000000))
ok $((ms > 2000)) "...refused at once, no hang (${ms} ms)"
is "$(readback "$NS")" "$SNAP" "config cases: no rule changed"
is "$(cat "$STATE")" "$STSNAP" "config cases: state unchanged"

# The directory chain up to "/": every one root's and not group/other writable.
# (Inside the namespace the default path is /etc/repmgr_barman_ha, the bind
# mount; deeper chains are tried with root's -c, which obeys the same rules.)
chmod 777 "$(dirname "$CONF")"
nb "$NS" show >/dev/null 2>"$T/err"; is $? 2 "config directory writable by others: exit 2 ($(tail -n 1 "$T/err"))"
chmod 755 "$(dirname "$CONF")"
mkdir -p "$T/chain/etc" && cp "$T/good.conf" "$T/chain/etc/nat.conf"
chain() {			# chain DESC WANT: show as root with -c under $T/chain
	nr "$NS" -c "$T/chain/etc/nat.conf" show >/dev/null 2>"$T/err"; is $? "$2" "$1: exit $2 ($(tail -n 1 "$T/err"))"
}
chmod 775 "$T/chain"; chain "group-writable ancestor" 2
chmod 1777 "$T/chain"; chain "sticky world-writable ancestor (like /tmp)" 2
chmod 755 "$T/chain"; chown barman "$T/chain"; chain "ancestor owned by barman" 2
chown root "$T/chain"; ln -s etc "$T/chain/link"
nr "$NS" -c "$T/chain/link/nat.conf" show >/dev/null 2>"$T/err"; is $? 2 "a symlink in the chain: exit 2 ($(tail -n 1 "$T/err"))"
chain "the same chain, trusted" 0
cp "$T/good.conf" /tmp/$PREFIX$$.conf
nr "$NS" -c /tmp/$PREFIX$$.conf show >/dev/null 2>"$T/err"; is $? 2 "root's -c under /tmp: refused ($(tail -n 1 "$T/err"))"
rm -f /tmp/$PREFIX$$.conf
nr "$NS" -c good.conf show >/dev/null 2>"$T/err"; is $? 2 "root's -c with a relative path: refused"
nb "$NS" show >/dev/null; is $? 0 "and the good configuration still works"

# Callers outside the group: the kernel refuses (4750); a 4755 copy refuses by our own check.
ip netns exec "$NS" runuser -u nobody -- "$NAT" show >/dev/null 2>&1
ok $(($? == 0)) "nobody cannot run the 4750 binary"
install -m 4755 -o root -g barman "$NAT" "$T/bin/loose_nat"
ip netns exec "$NS" runuser -u nobody -- "$T/bin/loose_nat" show >/dev/null 2>"$T/err"
is $? 2 "a 4755 copy refuses nobody with exit 2 ($(tail -n 1 "$T/err"))"
install -m 0755 -o root -g barman "$NAT" "$T/bin/plain_nat"
ip netns exec "$NS" runuser -u barman -- "$T/bin/plain_nat" show >/dev/null 2>"$T/err"
is "$? $(tail -n 1 "$T/err")" "2 barman_ha_nat: not installed setuid root" "without the setuid bit: exit 2, says why"
is "$(readback "$NS")" "$SNAP" "in the end: no rule changed"
is "$(cat "$STATE")" "$STSNAP" "in the end: state unchanged"
plan $TAP_N
exit $((TAP_FAIL > 0))
