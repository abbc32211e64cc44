#!/bin/bash
# 23_metrics.t: the monitoring chain on the namespace cluster, across a real
# failover.  The Debian prometheus-postgres-exporter runs inside db1's and
# db2's namespaces with monitoring/postgres_exporter.yaml, logged in as a role
# that is only in pg_monitor; it is scraped over the namespace network from the
# backup host.  The backup host's state goes to a node_exporter textfile
# (barman_ha_orchestrator status --textfile).  Before: db1 primary, routed,
# timeline 1; db2 standby with its slot copy.  kill -9 of db1: db2 primary on
# timeline 2, route ok, the textfile names db2 and its promote's duration.
# The scraped values then go through promtool test rules: no alert fires.
set -u
BHA_PREFIX=${BHA_PREFIX:-bhq}m1
BHA_STANDBY_SLOT=${BHA_STANDBY_SLOT:-sync}	# the product default: the standby keeps a copy of the slot
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"
EXPORTER=/usr/bin/prometheus-postgres-exporter
if [ ! -x "$EXPORTER" ] || ! command -v promtool >/dev/null; then
	echo "1..0 # SKIP prometheus-postgres-exporter or promtool not installed"; exit 0
fi
declare -A EXP_PID
stop_exporters() { local n; for n in "${!EXP_PID[@]}"; do kill "${EXP_PID[$n]}" 2>/dev/null; wait "${EXP_PID[$n]}" 2>/dev/null; done; EXP_PID=(); }
bha_test_setup
trap 'stop_exporters; bha_on_exit' EXIT

# exporter_start NODE: the exporter in NODE's namespace on ADDR:9187, as postgres
exporter_start() {
	local n=$1
	bha_in "$n" env DATA_SOURCE_NAME="host=$BHA_DATA/$n/run port=5432 user=barman_ha_mon dbname=postgres sslmode=disable" \
		runuser -u postgres -- "$EXPORTER" --web.listen-address="${BHA_ADDR[$n]}:9187" \
		--extend.query-path="$BHA_TOP/monitoring/postgres_exporter.yaml" >>"$BHA_DATA/$n/exporter.log" 2>&1 &
	EXP_PID[$n]=$!
	bha_wait 20 "the exporter on $n" scrape "$n" >/dev/null
}
# scrape NODE: /metrics of NODE's exporter, fetched from the backup host's namespace
scrape() {
	bha_in backup python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())' "http://${BHA_ADDR[$1]}:9187/metrics" 2>/dev/null
}
# value NODE METRIC: the value of METRIC (barman_ha_*: one series per node)
value() { scrape "$1" | awk -v m="$2" '$1 ~ "^"m"[{ ]" || $1 == m { print $NF; exit }'; }
labels() { scrape "$1" | grep -o "^$2{[^}]*}" | head -n 1; }
textfile() { bha_orchestrator status --textfile "$BHA_DATA/backup/metrics/barman_ha.prom" && cat "$BHA_DATA/backup/metrics/barman_ha.prom"; }

t_ok "both endpoints on db1 after the bring-up" bha_endpoints_on db1
t_ok "route ok on db1" bha_wait 20 "route ok on db1" bha_route_ok db1
bha_sql db1 "CREATE ROLE barman_ha_mon LOGIN IN ROLE pg_monitor" >/dev/null
bha_sql db1 "ALTER EXTENSION repmgr_barman_ha UPDATE" >/dev/null
for n in db1 db2; do
	sed -i "1i local postgres barman_ha_mon trust" "$BHA_DATA/$n/pgdata/pg_hba.conf"
	bha_sql "$n" "SELECT pg_reload_conf()" >/dev/null
done
is "$(bha_sql db1 "SELECT extversion FROM pg_extension WHERE extname = 'repmgr_barman_ha'")" 1.2 "the SQL is at 1.2 (ALTER EXTENSION ... UPDATE)"
is "$(bha_sql db1 "SELECT rolsuper FROM pg_roles WHERE rolname = 'barman_ha_mon'")" f "the exporter's role is no superuser, only in pg_monitor"
role_on_db2() { [ "$(bha_sql db2 "SELECT count(*) FROM pg_roles WHERE rolname = 'barman_ha_mon'")" = 1 ]; }
t_ok "db2 replayed the role and the update" bha_wait 20 "barman_ha_mon on db2" role_on_db2
exporter_start db1
exporter_start db2
bha_mkdir barman:barman 0755 "$BHA_DATA/backup/metrics"

# ---- before: db1 primary, db2 standby
is "$(labels db1 barman_ha_up)" 'barman_ha_up{node="db1",role="primary",server="'"$BHA_DATA"'/db1/run:5432",slot="barman"}' \
	"db1's series: role primary, node db1"
is "$(value db1 barman_ha_timeline)" 1 "db1: timeline 1"
is "$(value db1 barman_ha_route_ok)" 1 "db1: route_ok 1"
is "$(value db1 barman_ha_fenced)" 0 "db1: fenced 0"
t_ok "db1: last_success_age below two reconcile intervals ($(value db1 barman_ha_last_success_age_seconds) s)" \
	awk -v a="$(value db1 barman_ha_last_success_age_seconds)" 'BEGIN { exit !(a < 20) }'
is "$(labels db2 barman_ha_up | grep -o 'role="[a-z]*"')" 'role="standby"' "db2's series: role standby"
lag_known() { value db2 barman_ha_slot_sync_lag_bytes | grep -qE "^[0-9.e+]+$"; }
t_ok "db2: the standby copy's sync lag is known" bha_wait 30 "a sync lag on db2" lag_known
diag "db2: sync lag $(value db2 barman_ha_slot_sync_lag_bytes) bytes"
tf=$(textfile)
t_ok "backup textfile: routed node db1" grep -q "^barman_ha_backup_routed_node_info{server=\"$BHA_SERVER\",node=\"db1\"" <<<"$tf"
t_ok "backup textfile: Barman streaming" grep -q "^barman_ha_backup_barman_streaming{server=\"$BHA_SERVER\"} 1" <<<"$tf"
is "$(stat -c '%U %a' "$BHA_DATA/backup/metrics/barman_ha.prom")" "barman 644" "the textfile is barman's, readable by node_exporter"

# ---- the failover
bha_writer_start w 0
t_ok "writer commits through $BHA_APP_PORT" bha_wait 30 "10 commits" bha_writer_has w 10
t0=$(bha_now_ms)
kill -9 "$(bha_pg_pid db1)"
t_ok "kill -9 failover to db2" bha_failover_watch "$t0" db2 w
diag "failover: $(bha_failover_report)"
t_ok "route ok on db2" bha_wait 30 "route ok on db2" bha_route_ok db2
db2_primary_in_metrics() { scrape db2 | grep -q '^barman_ha_up{node="db2",role="primary"'; }
t_ok "db2's exporter: role primary" bha_wait 20 "db2 primary in its metrics" db2_primary_in_metrics
is "$(value db2 barman_ha_timeline)" 2 "db2: timeline 2"
is "$(value db2 barman_ha_route_ok)" 1 "db2: route_ok 1"
is "$(value db2 barman_ha_helper_failures_total)" 0 "db2: no failed call"
is "$(value db1 pg_up)" 0 "db1's exporter says pg_up 0"
tf=$(textfile)
t_ok "backup textfile: routed node db2" grep -q "^barman_ha_backup_routed_node_info{server=\"$BHA_SERVER\",node=\"db2\"" <<<"$tf"
t_ok "backup textfile: timeline 2" grep -q "^barman_ha_backup_routed_timeline{server=\"$BHA_SERVER\"} 2" <<<"$tf"
dur=$(sed -n 's/^barman_ha_backup_last_promote_duration_seconds{[^}]*} //p' <<<"$tf")
t_ok "backup textfile: the promote's duration ($dur s)" awk -v d="$dur" 'BEGIN { exit !(d > 0 && d < 30) }'
bha_writer_stop w
is "$(bha_writer_lost w db2)" "" "every row the writer saw committed is on db2"

# ---- the scraped values through the alert rules: a healthy cluster after a failover fires nothing
{
	echo "rule_files: [ $BHA_TOP/monitoring/alerts.yml ]"
	echo "evaluation_interval: 1m"
	echo "tests:"
	echo "  - interval: 1m"
	echo "    input_series:"
	for m in barman_ha_up barman_ha_timeline barman_ha_route_ok barman_ha_fenced barman_ha_slot_exists \
		barman_ha_slot_wal_unreserved barman_ha_slot_wal_lost barman_ha_helper_failures_total \
		barman_ha_last_success_age_seconds barman_ha_reconcile_interval_seconds; do
		scrape db2 | grep "^$m{" | while read -r series v; do
			echo "      - series: '${series/\{/\{job=\"postgres\",instance=\"db2:9187\",}'"
			echo "        values: '$v+0x20'"
		done
	done
	sed -n 's/^\(barman_ha_backup_[a-z_]*{[^}]*}\) \(.*\)/      - series: '"'"'\1'"'"'\n        values: '"'"'\2+0x20'"'"'/p' <<<"$tf"
	echo "    alert_rule_test:"
	for a in BarmanHaNoPrimaryRouted BarmanHaFenced BarmanHaRouteCheckFailing BarmanHaHelperFailures \
		BarmanHaBarmanNotStreaming BarmanHaBackupMetricsMissing BarmanHaRoutedToNonPrimary; do
		echo "      - eval_time: 15m"
		echo "        alertname: $a"
		echo "        exp_alerts: []"
	done
} >"$BHA_DATA/alerts_test.yml"
out=$(promtool test rules "$BHA_DATA/alerts_test.yml" 2>&1)
t_ok "promtool on the scraped values: no alert fires on the healthy cluster after the failover" grep -q SUCCESS <<<"$out" ||
	sed 's/^/# /' <<<"$out"
done_testing
