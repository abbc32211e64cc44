#!/bin/bash
# 02_atomic.t: while a reader lists the DNAT chain in a loop, 1,000 route
# switches by the helper never show a moment without both rules (each switch
# is one iptc_commit), and the rules end where the last switch put them.
. "$(dirname "$0")/lib.sh"
plan 5
setup
mkns NS b
backup_conf "$NS"
hh "$NS" nat init >/dev/null && hh "$NS" nat route db1 >/dev/null
ok $? "init and first route"

# The reader: counts samples, and samples with fewer than two DNAT rules.
ip netns exec "$NS" bash -c '
	samples=0 bad=0
	while [ ! -e "$1/stop" ]; do
		n=$(iptables-legacy -w -t nat -S repmgr_dnat | grep -c -- "-j DNAT")
		samples=$((samples + 1)); [ "$n" -eq 2 ] || bad=$((bad + 1))
	done
	echo "$samples $bad" >"$1/reader"' reader "$T" &
PIDS+=($!)
sleep 0.2
ip netns exec "$NS" runuser -u postgres -- bash -c '
	fail=0
	for i in $(seq 1 500); do
		"$1" nat route db2 >/dev/null || fail=$((fail + 1))
		"$1" nat route db1 >/dev/null || fail=$((fail + 1))
	done
	exit $fail' switcher "$HELPER"
ok $? "1,000 switches, all exit 0"
touch "$T/stop"
wait "${PIDS[0]}"
read -r samples bad <"$T/reader"
diag "reader: $samples samples during the switches"
ok $((samples < 50)) "the reader sampled throughout ($samples samples)"
is "$bad" 0 "no sample without both DNAT rules"
is "$(hh "$NS" nat show)" $'barman db1 10.213.0.1:5432\napp db1 10.213.0.1:5432' "last switch wins"
exit $((TAP_FAIL > 0))
