#!/bin/bash
# 03_hostile.t: hostile input.  Each request below is refused with its
# documented exit code (2 usage/configuration, 3 fenced), one line on
# stderr, and leaves the nat table and the state file exactly as they were.
. "$(dirname "$0")/lib.sh"
setup
mkns NS b
backup_conf "$NS"
CONF=/etc/netns/$NS/repmgr_barman_ha/helper.conf
STATE=$T/state-$NS/state
hh "$NS" promote db1 2 >/dev/null || bail "set-up promote failed"
SNAP=$(natsave "$NS")
STSNAP=$(cat "$STATE")
long=$(printf 'a%.0s' {1..70})

# expected-code <TAB> description <TAB> argv (words split on spaces; @ = empty word)
IFS= read -r -d '' cases <<CASES
2	unknown node	nat route db9
2	shell metacharacters in a node	nat route db1;id
2	command substitution	nat route \$(id)
2	overlong node name	nat route $long
2	node name with a slash	nat route ../db1
2	node name starting with a dash	nat route -db1
2	bad endpoint	nat route db1 sideways
2	extra argument	nat route db1 both extra
2	address instead of a node	nat route 10.213.0.99
2	timeline zero	promote db1 0
2	negative timeline	promote db1 -1
2	timeline too large	promote db1 99999999999
2	timeline with letters	promote db1 3x
2	hex timeline	promote db1 0x10
2	unknown node in promote	promote db9 5
2	promote without timeline	promote db1
2	unknown verb	frobnicate
2	unknown nat verb	nat flush
2	unknown option	--frob status
2	-c from a non-root caller	-c $T/other.conf status
2	--force from a non-root caller	--force promote db2 9
2	--node without --from-ssh	--node db1 status
2	no verb	@
3	other node on the same timeline	promote db2 2
3	lower timeline	promote db2 1
CASES
cases=${cases%$'\n'}
n=$(grep -c . <<<"$cases")
# per case: code, one stderr line, rules unchanged, state unchanged
plan $((n * 3 + 9 * 3 + 6 + 2))

check_unchanged() {
	is "$(natsave "$NS")" "$SNAP" "$1: no rule changed"
	is "$(cat "$STATE")" "$STSNAP" "$1: state unchanged"
}

while IFS=$'\t' read -r code desc args; do
	read -r -a argv <<<"$args"
	[ "${argv[0]}" = @ ] && argv=()
	hh "$NS" "${argv[@]}" >/dev/null 2>"$T/err"
	rc=$?
	TAP_N=$((TAP_N + 1))
	if [ $rc -eq "$code" ] && [ "$(wc -l <"$T/err")" -ge 1 ] && grep -q '^barman_ha_helper: ' "$T/err"; then
		echo "ok $TAP_N - $desc: exit $code with a message"
	else
		echo "not ok $TAP_N - $desc: exit $rc (want $code), stderr: $(tail -n 1 "$T/err")"
		TAP_FAIL=$((TAP_FAIL + 1))
	fi
	check_unchanged "$desc"
done <<<"$cases"

# --from-ssh: SSH_ORIGINAL_COMMAND through the same parser, key pinned to db1.
ssh_try() {			# ssh_try CODE DESC CMD [NODE]
	ip netns exec "$NS" runuser -u postgres -- env "SSH_ORIGINAL_COMMAND=$3" \
		"$HELPER" --from-ssh ${4:+--node "$4"} >/dev/null 2>"$T/err"
	is $? "$1" "from ssh, $2: exit $1"
	check_unchanged "from ssh, $2"
}
ssh_try 2 "shell separator" "nat route db1; rm -rf /" db1
ssh_try 2 "quotes" "nat route 'db1'" db1
ssh_try 2 "newline" $'status\nnat route db2' db1
ssh_try 2 "another node's promote" "promote db2 5" db1
ssh_try 2 "another node's route" "nat route db2" db1
ssh_try 3 "route while another node holds the endpoints" "nat route db2 both" db2
ssh_try 2 "option smuggled in" "--force promote db1 9" db1
ssh_try 2 "unpinned key asks to route" "nat route db1"
ssh_try 2 "overlong command" "status $(printf 'x%.0s' {1..400})" db1

# Configuration trust: each one refused with 2, table unchanged.
bad_conf() {			# bad_conf DESC: run status, expect 2
	hh "$NS" status >/dev/null 2>"$T/err"
	is $? 2 "$1: exit 2 ($(tail -n 1 "$T/err"))"
}
cp "$CONF" "$T/good.conf"
chmod 666 "$CONF"; bad_conf "config writable by others"; chmod 644 "$CONF"
chmod 664 "$CONF"; bad_conf "config writable by its group"; chmod 644 "$CONF"
chown postgres "$CONF"; bad_conf "config owned by postgres"; chown root "$CONF"
chmod 777 "$(dirname "$CONF")"; bad_conf "config directory writable by others"; chmod 755 "$(dirname "$CONF")"
echo "node.db3 = 10.213.0.300:5432" >>"$CONF"; bad_conf "bad address in the config"; cp "$T/good.conf" "$CONF"
is "$(natsave "$NS")" "$SNAP" "config cases: no rule changed"

# A caller outside the group: the kernel refuses (mode 4750); a copy with
# looser modes still refuses, by the helper's own check.
ip netns exec "$NS" runuser -u nobody -- "$HELPER" status >/dev/null 2>&1
ok $(($? == 0)) "nobody cannot run the 4750 helper"
install -m 4755 -o root -g postgres "$HELPER" "$T/bin/loose_helper"
ip netns exec "$NS" runuser -u nobody -- "$T/bin/loose_helper" status >/dev/null 2>"$T/err"
is $? 2 "a 4755 copy refuses nobody with exit 2 ($(tail -n 1 "$T/err"))"
exit $((TAP_FAIL > 0))
