# 005_slot_wal_status.pl: a standby's copy of the barman slot driven past a
# small max_slot_wal_keep_size while Barman is away, and how that shows:
# barman_ha_status() (wal_status, safe_wal_size, slot_invalidations and
# slot_invalidation_reason), the events, the WARNINGs in the log (each once
# per transition), the exporter's metrics (the reason by name), and the
# alerts of monitoring/alerts.yml fed with the scraped values (promtool test
# rules).
#
# The standby's worker waits an hour between passes: each pass here is asked
# for with barman_ha_reconcile(), so what status shows live between passes
# can be checked before the worker reacts (it reserves a lost copy anew at
# its next pass).

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BarmanHaMonitoring qw(exporter_path promtool_path free_port create_monitor_role
  start_exporter stop_exporter scrape metric metric_labels wait_for_metric top_dir);

plan skip_all => 'prometheus-postgres-exporter is not installed' unless exporter_path();

my $MB = 1024 * 1024;
my $limit_mb = 64;

my $primary = PostgreSQL::Test::Cluster->new('primary', port => 55420);
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = 'repmgr_barman_ha'
barman_ha.helper_path = ''
barman_ha.reconcile_interval = 1
max_slot_wal_keep_size = '10GB'
wal_keep_size = 0
));
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION repmgr_barman_ha');
create_monitor_role($primary, 'barman_ha_mon');
$primary->poll_query_until('postgres',
	'SELECT slot_exists AND slot_restart_lsn IS NOT NULL FROM barman_ha_status()')
  or die 'no slot on the primary';

# on a primary, the same numbers as pg_replication_slots
is( $primary->safe_psql('postgres',
		"SELECT s.wal_status = r.wal_status AND s.safe_wal_size = r.safe_wal_size FROM barman_ha_status() s JOIN pg_replication_slots r USING (slot_name)"
	),
	't',
	'primary: wal_status and safe_wal_size as pg_replication_slots has them');

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby', port => 55421);
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf(
	'postgresql.conf', qq(
barman_ha.standby_slot = 'sync'
barman_ha.reconcile_interval = 3600
max_slot_wal_keep_size = '${limit_mb}MB'
checkpoint_timeout = '1h'
));
$standby->start;
$primary->safe_psql('postgres', 'CREATE TABLE t (i int, pad text)');
$primary->wait_for_catchup($standby);

sub reconcile
{
	$standby->safe_psql('postgres', 'SELECT barman_ha_reconcile()');
	return;
}

sub event_count
{
	my ($event) = @_;
	return $standby->safe_psql('postgres',
		"SELECT count(*) FROM barman_ha_events() WHERE event = '$event'");
}

sub wait_event
{
	my ($event, $count) = @_;
	return $standby->poll_query_until('postgres',
		"SELECT count(*) >= $count FROM barman_ha_events() WHERE event = '$event'");
}

sub status
{
	my ($cols) = @_;
	return $standby->safe_psql('postgres', "SELECT $cols FROM barman_ha_status()");
}

# the copy is made from the primary's slot, which Barman never moves
ok( $standby->poll_query_until('postgres',
		"SELECT barman_ha_reconcile() AND slot_restart_lsn IS NOT NULL AND primary_slot_restart_lsn IS NOT NULL FROM barman_ha_status()"
	),
	'standby: a copy of the slot, and the primary\'s position');
note 'standby: ' . status("slot_restart_lsn || ' copy, ' || primary_slot_restart_lsn || ' primary, lag ' || slot_sync_lag_bytes");
is(status("wal_status || ' ' || (safe_wal_size > 0) || ' ' || slot_invalidations"),
	'reserved true 0', 'standby: reserved, with a safe_wal_size, never invalidated');

my $log = PostgreSQL::Test::Utils::tempdir . '/exporter.log';
my $port = free_port();
my $exporter = start_exporter($standby, 'barman_ha_mon', $port, $log);
my $m = scrape($port);
ok(metric($m, 'barman_ha_slot_wal_keep_limit_bytes') == $limit_mb * $MB,
	"metric: barman_ha_slot_wal_keep_limit_bytes is ${limit_mb} MB");
ok(metric($m, 'barman_ha_slot_safe_wal_size_bytes') > 0, 'metric: a safe_wal_size');
is(metric($m, 'barman_ha_slot_wal_unreserved') . metric($m, 'barman_ha_slot_wal_lost'),
	'00', 'metric: neither unreserved nor lost');

# --- over 80 % of the limit: one WARNING, one event
my $retained = 0;
for (1 .. 200)
{
	$primary->safe_psql('postgres',
		"INSERT INTO t SELECT g, repeat('x', 900) FROM generate_series(1, 1000) g");
	$primary->wait_for_catchup($standby);
	$retained = status('slot_retained_bytes');
	last if $retained > $limit_mb * $MB * 0.8;
}
ok($retained > $limit_mb * $MB * 0.8 && $retained < $limit_mb * $MB,
	sprintf('standby: the copy retains %.1f MB, over 80 %% of %d MB', $retained / $MB, $limit_mb));
my $log_offset = -s $standby->logfile;
reconcile();
ok(wait_event('slot_near_limit', 1), 'standby: event slot_near_limit');
is(status('wal_status'), 'reserved', 'standby: still reserved');
reconcile();
reconcile();
$standby->safe_psql('postgres', 'SELECT pg_sleep(0.5)');
is(event_count('slot_near_limit'), '1', 'standby: said once, not at every pass');
my $server_log = slurp_file($standby->logfile, $log_offset);
my @warnings = $server_log =~ /WARNING:  barman_ha: this standby's copy of replication slot "barman" retains \d+ MB of WAL, over 80% of max_slot_wal_keep_size/g;
is(scalar(@warnings), 1, 'log: one WARNING over 80 % of max_slot_wal_keep_size');
like($server_log, qr/DETAIL:  Once it retains more than max_slot_wal_keep_size \(64 MB\)/,
	'log: with its DETAIL');

# --- past the limit: unreserved until the next restartpoint
for (1 .. 3)
{
	$primary->safe_psql('postgres', "INSERT INTO t VALUES (0, 'switch'); SELECT pg_switch_wal()");
}
$primary->wait_for_catchup($standby);
is(status('wal_status'), 'unreserved', 'standby: status wal_status unreserved, live');
note 'pg_replication_slots on the standby says: '
  . $standby->safe_psql('postgres',
	"SELECT wal_status || ' ' || coalesce(safe_wal_size::text, 'NULL') FROM pg_replication_slots WHERE slot_name = 'barman'");
is(status('safe_wal_size <= 0'), 't', 'standby: no safe_wal_size left');
my ($unreserved, $got) = wait_for_metric($port,
	sub { (metric($_[0], 'barman_ha_slot_wal_unreserved', role => 'standby') // '') eq '1' }, 10);
ok($got, 'metric: barman_ha_slot_wal_unreserved{role="standby"} 1');
$log_offset = -s $standby->logfile;
reconcile();
ok(wait_event('slot_unreserved', 1), 'standby: event slot_unreserved');
reconcile();
$standby->safe_psql('postgres', 'SELECT pg_sleep(0.5)');
is(event_count('slot_unreserved'), '1', 'standby: slot_unreserved said once');
$server_log = slurp_file($standby->logfile, $log_offset);
@warnings = $server_log =~ /WARNING:  barman_ha: this standby's copy of replication slot "barman" no longer reserves its WAL/g;
is(scalar(@warnings), 1, 'log: one WARNING that the copy no longer reserves its WAL');
like($server_log, qr/HINT:  Make Barman catch up/, 'log: with a HINT');

# --- a restartpoint removes the WAL: lost
$primary->safe_psql('postgres', 'CHECKPOINT');
$primary->wait_for_catchup($standby);
$standby->safe_psql('postgres', 'CHECKPOINT');
is(status('wal_status'), 'lost', 'standby: status wal_status lost after the restartpoint');
is( $standby->safe_psql('postgres',
		"SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'barman'"),
	'lost',
	'standby: pg_replication_slots agrees');
my ($lost);
($lost, $got) = wait_for_metric($port,
	sub { (metric($_[0], 'barman_ha_slot_wal_lost', role => 'standby') // '') eq '1' }, 10);
ok($got, 'metric: barman_ha_slot_wal_lost{role="standby"} 1 before the worker looks');
$log_offset = -s $standby->logfile;
reconcile();
ok(wait_event('slot_invalidated', 1), 'standby: event slot_invalidated');
ok(wait_event('slot_repaired', 1), 'standby: then the copy is reserved anew (slot_repaired)');
is(status("slot_invalidations || ' ' || wal_status || ' ' || slot_invalidation_reason"),
	'1 reserved wal_removed',
	'standby: status counts the invalidation and says why, the copy reserves WAL again');
my $after;
($after, $got) = wait_for_metric($port,
	sub { (metric($_[0], 'barman_ha_slot_invalidations_total', role => 'standby') // '') eq '1' }, 10);
ok($got, 'metric: barman_ha_slot_invalidations_total 1');
is(metric($after, 'barman_ha_slot_last_invalidation_info', role => 'standby', reason => 'wal_removed'),
	'1', 'metric: barman_ha_slot_last_invalidation_info{reason="wal_removed"} 1, why by name');
is(metric($after, 'barman_ha_slot_wal_lost'), '0', 'metric: no longer lost');
$server_log = slurp_file($standby->logfile, $log_offset);
like($server_log,
	qr/WARNING:  barman_ha: this standby's copy of replication slot "barman" has been invalidated \(wal_removed\)/,
	'log: WARNING that the copy was invalidated, and why');
# Before 16 PostgreSQL kept where the slot lost WAL; from 16 on, only why.
like(
	$standby->safe_psql('postgres',
		"SELECT detail FROM barman_ha_events() WHERE event = 'slot_invalidated'"),
	$standby->pg_version >= 16
	? qr/lost WAL \(wal_removed, max_slot_wal_keep_size 64 MB\)/
	: qr/lost WAL from [0-9A-F]+\/[0-9A-F]+ \(max_slot_wal_keep_size 64 MB\)/,
	'event detail says what was lost and the limit');
reconcile();
$standby->safe_psql('postgres', 'SELECT pg_sleep(0.5)');
is(event_count('slot_invalidated'), '1', 'standby: slot_invalidated said once');

stop_exporter($exporter);

# --- the alerts, fed with what was scraped
SKIP:
{
	skip 'promtool is not installed', 2 unless promtool_path();
	my $labels_of = sub {
		my ($scraped, $name) = @_;
		my $l = metric_labels($scraped, $name, role => 'standby');
		$l->{job} = 'postgres';
		$l->{instance} = 'standby:9187';
		return join(',', map { "$_=\"$l->{$_}\"" } sort keys %$l);
	};
	my $u_labels = $labels_of->($unreserved, 'barman_ha_slot_wal_unreserved');
	my $u_value = metric($unreserved, 'barman_ha_slot_wal_unreserved');
	my $i_labels = $labels_of->($after, 'barman_ha_slot_invalidations_total');
	my $i_before = metric($unreserved, 'barman_ha_slot_invalidations_total');
	my $i_after = metric($after, 'barman_ha_slot_invalidations_total');
	my $r_labels = $labels_of->($after, 'barman_ha_slot_last_invalidation_info');
	my $dir = PostgreSQL::Test::Utils::tempdir;
	my $rules = top_dir() . '/monitoring/alerts.yml';
	append_to_file(
		"$dir/scraped_test.yml", qq(rule_files: ['$rules']
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'barman_ha_slot_wal_unreserved{$u_labels}'
        values: '${u_value}x20'
      - series: 'barman_ha_slot_invalidations_total{$i_labels}'
        values: '${i_before}x4 ${i_after}x20'
      - series: 'barman_ha_slot_last_invalidation_info{$r_labels}'
        values: '_x4 1x20'
    promql_expr_test:
      - expr: ALERTS{alertname="BarmanHaSlotUnreserved"}
        eval_time: 1m
        exp_samples:
          - labels: 'ALERTS{alertname="BarmanHaSlotUnreserved",alertstate="firing",$u_labels,severity="critical"}'
            value: 1
      - expr: ALERTS{alertname="BarmanHaSlotInvalidated"}
        eval_time: 3m
        exp_samples:
          - labels: 'ALERTS{alertname="BarmanHaSlotInvalidated",alertstate="firing",$r_labels,severity="critical"}'
            value: 1
));
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ promtool_path(), 'test', 'rules', "$dir/scraped_test.yml" ],
		'>', \$out, '2>', \$err);
	ok($ok, 'promtool: BarmanHaSlotUnreserved fires on the scraped unreserved copy')
	  or diag "$out$err";
	like($out, qr/SUCCESS/,
		'promtool: BarmanHaSlotInvalidated fires on the scraped counter, with the scraped reason');
}

$standby->stop;
$primary->stop;
done_testing();
