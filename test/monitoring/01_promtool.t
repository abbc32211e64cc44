#!/bin/bash
# 01_promtool.t: monitoring/alerts.yml is valid and its unit tests pass,
# and the exporter's queries file is the YAML the exporter reads.
# Prints TAP; needs promtool (Debian package prometheus).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
promtool=${PROMTOOL:-/usr/bin/promtool}
n=0 failed=0

ok() {	# ok DESCRIPTION COMMAND...: one test, the command's output shown on failure
	local desc=$1 out; shift
	n=$((n + 1))
	if out=$("$@" 2>&1); then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		failed=$((failed + 1))
		sed 's/^/# /' <<<"$out"
	fi
}

if [ ! -x "$promtool" ]; then
	echo "1..0 # SKIP promtool is not installed (apt-get install prometheus)"
	exit 0
fi
echo "1..5"
ok "promtool check rules monitoring/alerts.yml" \
	"$promtool" check rules "$top/monitoring/alerts.yml"
ok "promtool test rules monitoring/alerts_test.yml" \
	"$promtool" test rules "$top/monitoring/alerts_test.yml"
# every alert has a runbook into docs/monitoring.md, and that section exists
check_runbooks() {
	local anchor missing=0
	for anchor in $(sed -n 's/^ *runbook: "docs\/monitoring.md#\(.*\)"$/\1/p' "$top/monitoring/alerts.yml"); do
		grep -qi "^### $anchor\$" "$top/docs/monitoring.md" || { echo "no section for $anchor"; missing=1; }
	done
	[ "$(grep -c '^ *- alert:' "$top/monitoring/alerts.yml")" -eq "$(grep -c '^ *runbook: "docs/monitoring.md#' "$top/monitoring/alerts.yml")" ] ||
		{ echo "an alert without a runbook"; missing=1; }
	return $missing
}
ok "every alert has a runbook section in docs/monitoring.md" check_runbooks
# every alert has a test that fires it
check_tested() {
	local alert missing=0
	for alert in $(sed -n 's/^ *- alert: *//p' "$top/monitoring/alerts.yml"); do
		grep -A2 "alertname: $alert\$" "$top/monitoring/alerts_test.yml" | grep -q 'exp_alerts:$' ||
			{ echo "no test fires $alert"; missing=1; }
	done
	return $missing
}
ok "every alert has a unit test in which it fires" check_tested
# every metric the alerts use is a query's column (the exporter names it
# QUERY_COLUMN) in the queries file
check_queries() {
	local m missing=0 names
	names=$(awk '/^[a-z_]+:$/ { q = substr($1, 1, length($1) - 1) }
		/^    - [a-z_]+:$/ { print q "_" substr($2, 1, length($2) - 1) }' "$top/monitoring/postgres_exporter.yaml")
	for m in $(awk '/^ *expr:/ { e = 1 } /^ *(labels|for):/ { e = 0 } e' "$top/monitoring/alerts.yml" |
			grep -o 'barman_ha_[a-z_]*' | grep -v '^barman_ha_backup_' | sort -u); do
		grep -qx "$m" <<<"$names" || { echo "$m is not a query's column in postgres_exporter.yaml"; missing=1; }
	done
	return $missing
}
ok "every barman_ha_* metric the alerts use is a query's column in postgres_exporter.yaml" check_queries
[ "$failed" -eq 0 ]
