#!/bin/bash
# bench_route.sh [CALLS]: what one barman_ha_nat call costs, side by side with
# /bin/true (the bare fork+exec) in the same namespace, for the backend in
# BHA_NAT_BACKEND: a switch (route db2 / route db1), a route that changes
# nothing, a held claim.  Wall and CPU (user+sys) per call; run as root.
. "$(dirname "$0")/lib.sh"
N=${1:-200}
setup
mkns NS b
conf "$NS"
nr "$NS" init >/dev/null && nr "$NS" claim db1 2 >/dev/null || bail "set-up"
echo "backend $BACKEND, $N calls each, load: $(cut -d' ' -f1-3 /proc/loadavg)"
ip netns exec "$NS" bash -c '
	nat=$1 n=$2 TIMEFORMAT="%R %U %S"
	per() {
		local t
		t=$( { time for ((i = 0; i < n; i += 2)); do "$@"; done; } 2>&1 >/dev/null)
		awk -v n="$n" -v w="$label" "{printf \"%-22s wall %6.2f ms  cpu %5.2f ms per call\n\", w, \$1*1000/n, (\$2+\$3)*1000/n}" <<<"$t"
	}
	label=/bin/true per eval "/bin/true; /bin/true"
	label="route (switch)" per eval "\"$nat\" route db2 >/dev/null; \"$nat\" route db1 >/dev/null"
	label="route (unchanged)" per eval "\"$nat\" route db1 >/dev/null; \"$nat\" route db1 >/dev/null"
	label="claim (held)" per eval "\"$nat\" claim db1 2 >/dev/null; \"$nat\" claim db1 2 >/dev/null"' bench "$NAT" "$N"
