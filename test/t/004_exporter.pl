# 004_exporter.pl: the real prometheus-postgres-exporter with
# monitoring/postgres_exporter.yaml, as a role that is only in pg_monitor,
# against a primary and a streaming standby, through a failover.
#
# A stand-in helper (a shell script exiting with the code in a file) lets
# the primary worker route, fail and be fenced without a backup host, so
# route_ok, last_success_age, helper_failures and fenced move as they would.
# Every exporter listens on 127.0.0.1 in 55400-55499 and is ended by its pid.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BarmanHaMonitoring qw(exporter_path free_port create_monitor_role
  start_exporter stop_exporter scrape metric metric_labels wait_for_metric);

plan skip_all => 'prometheus-postgres-exporter is not installed'
  unless exporter_path();

my $work = PostgreSQL::Test::Utils::tempdir;

# helper stand-in: exits with the code its node's file holds
sub fake_helper
{
	my ($name) = @_;
	my $script = "$work/helper_$name";
	append_to_file("$work/exit_$name", "0\n");
	append_to_file($script, "#!/bin/sh\nread code < $work/exit_$name\nexit \"\$code\"\n");
	chmod 0755, $script;
	return $script;
}

sub helper_exits
{
	my ($name, $code) = @_;
	open my $fh, '>', "$work/exit_$name" or die $!;
	print $fh "$code\n";
	close $fh;
	return;
}

sub node_conf
{
	my ($name, $helper) = @_;
	return qq(
shared_preload_libraries = 'repmgr_barman_ha'
barman_ha.node_name = '$name'
barman_ha.helper_path = '$helper'
barman_ha.reconcile_interval = 1
barman_ha.retry_interval = '100ms'
);
}

my $primary = PostgreSQL::Test::Cluster->new('db1', port => 55410);
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', node_conf('db1', fake_helper('db1')));
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION repmgr_barman_ha');
create_monitor_role($primary, 'barman_ha_mon');
$primary->poll_query_until('postgres', "SELECT route_state = 'ok' FROM barman_ha_status()")
  or die 'the primary never routed through the stand-in helper';

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('db2', port => 55411);
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', node_conf('db2', fake_helper('db2')));
$standby->start;
$primary->wait_for_catchup($standby);

is( $primary->safe_psql('postgres',
		"SELECT r.rolsuper::text || ' ' || string_agg(b.rolname, ',') FROM pg_roles r JOIN pg_auth_members m ON m.member = r.oid JOIN pg_roles b ON b.oid = m.roleid WHERE r.rolname = 'barman_ha_mon' GROUP BY r.rolsuper"
	),
	'false pg_monitor',
	'the exporter logs in as a role that is only in pg_monitor');

my $log = "$work/exporter.log";
my ($p_port, $s_port) = (free_port(), free_port());
my $p_exp = start_exporter($primary, 'barman_ha_mon', $p_port, $log);
my $s_exp = start_exporter($standby, 'barman_ha_mon', $s_port, $log);

# --- primary and standby, all well
my ($p, $ok) = wait_for_metric($p_port,
	sub { (metric($_[0], 'barman_ha_route_ok', role => 'primary') // '') eq '1' });
ok($ok, 'primary: barman_ha_route_ok{role="primary"} 1');
my $labels = metric_labels($p, 'barman_ha_up');
is_deeply(
	[ map { $_ . '=' . ($labels->{$_} // '') } qw(role node slot) ],
	[ 'role=primary', 'node=db1', 'slot=barman' ],
	'primary: role, node and slot are labels');
ok(defined $labels->{server}, "primary: the exporter adds its server label ($labels->{server})");
is(metric($p, 'barman_ha_timeline', role => 'primary'), '1', 'primary: barman_ha_timeline 1');
is(metric($p, 'barman_ha_fenced', role => 'primary'), '0', 'primary: barman_ha_fenced 0');
is(metric($p, 'barman_ha_slot_exists', role => 'primary'), '1', 'primary: slot exists');
ok(metric($p, 'barman_ha_slot_retained_bytes', role => 'primary') >= 0,
	'primary: barman_ha_slot_retained_bytes is a number');
is(metric($p, 'barman_ha_helper_failures_total', role => 'primary'), '0',
	'primary: barman_ha_helper_failures_total 0');
my $age = metric($p, 'barman_ha_last_success_age_seconds', role => 'primary');
ok(defined $age && $age ne 'NaN' && $age >= 0 && $age < 10,
	"primary: barman_ha_last_success_age_seconds is recent ($age)");
is(metric($p, 'barman_ha_reconcile_interval_seconds'), '1', 'primary: the reconcile interval');
is(metric($p, 'barman_ha_slot_wal_unreserved') . metric($p, 'barman_ha_slot_wal_lost'),
	'00', 'primary: slot neither unreserved nor lost');
is(metric($p, 'barman_ha_slot_safe_wal_size_bytes'), 'NaN',
	'primary: no safe_wal_size without max_slot_wal_keep_size');
is(metric($p, 'pg_exporter_last_scrape_error'), '0', 'primary: the exporter scraped without error');
is(metric($p, 'pg_exporter_user_queries_load_error'), '0', 'the custom queries file loads');

my $s;
($s, $ok) = wait_for_metric($s_port,
	sub { (metric($_[0], 'barman_ha_slot_sync_lag_bytes', role => 'standby') // 'NaN') ne 'NaN' });
ok($ok, 'standby: barman_ha_slot_sync_lag_bytes once its copy follows the primary\'s slot');
is(metric($s, 'barman_ha_up', role => 'standby', node => 'db2'), '1', 'standby: barman_ha_up{role="standby",node="db2"} 1');
is(metric($s, 'barman_ha_timeline', role => 'standby'), '1', 'standby: replays timeline 1');
is(metric($s, 'barman_ha_route_ok', role => 'standby'), '0', 'standby: routes nothing');
is(metric($s, 'barman_ha_last_success_age_seconds', role => 'standby'), 'NaN',
	'standby: no route check age');
is(metric($s, 'barman_ha_slot_exists', role => 'standby'), '1', 'standby: has its copy of the slot');
ok(!grep({ $_->{labels}{role} eq 'primary' } @{ $s->{barman_ha_up} || [] }),
	'standby: no series says primary');

# --- a database whose extension is still 1.1 (no slot_invalidation_reason):
# the same queries file scrapes it without error, minus the reason's series
$primary->safe_psql('postgres', 'CREATE DATABASE ext11');
$primary->safe_psql('ext11', "CREATE EXTENSION repmgr_barman_ha VERSION '1.1'");
my $o_port = free_port();
my $o_exp = start_exporter($primary, 'barman_ha_mon', $o_port, $log, 'ext11');
my $o;
($o, $ok) = wait_for_metric($o_port, sub { defined metric($_[0], 'barman_ha_up') });
ok($ok, 'extension 1.1: barman_ha_up{role="primary"} '
	  . (metric($o, 'barman_ha_up', role => 'primary') // 'none'));
is(metric($o, 'pg_exporter_last_scrape_error'), '0', 'extension 1.1: scraped without error');
ok(!exists $o->{barman_ha_slot_last_invalidation_info},
	'extension 1.1: no barman_ha_slot_last_invalidation_info (1.2 says why)');
stop_exporter($o_exp);

# --- the helper fails: failures counted, no more route
helper_exits('db1', 1);
($p, $ok) = wait_for_metric($p_port,
	sub { (metric($_[0], 'barman_ha_helper_failures_total') // 0) >= 2 });
ok($ok, 'primary: barman_ha_helper_failures_total counts failed calls ('
	  . metric($p, 'barman_ha_helper_failures_total') . ')');
is(metric($p, 'barman_ha_route_ok'), '0', 'primary: route_ok 0 while the helper fails');
is($primary->safe_psql('postgres', 'SELECT route_state FROM barman_ha_status()'),
	'failed', 'primary: status says failed');

# --- the backup host refuses this node: fenced
helper_exits('db1', 3);
($p, $ok) = wait_for_metric($p_port, sub { (metric($_[0], 'barman_ha_fenced') // '') eq '1' });
ok($ok, 'primary: barman_ha_fenced 1 once the helper refuses (exit 3)');
is($primary->safe_psql('postgres', 'SELECT fenced FROM barman_ha_status()'),
	't', 'primary: status fenced');
my $before = $p;

# --- failover: the primary dies, db2 is promoted and routes
helper_exits('db1', 0);
$primary->stop('immediate');
$standby->promote;
($s, $ok) = wait_for_metric($s_port,
	sub { (metric($_[0], 'barman_ha_route_ok', role => 'primary') // '') eq '1' });
ok($ok, 'promoted: barman_ha_route_ok{role="primary",node="db2"} 1');
is(metric($s, 'barman_ha_timeline', role => 'primary'), '2', 'promoted: timeline 2');
is(metric($s, 'barman_ha_fenced', role => 'primary'), '0', 'promoted: not fenced');
$age = metric($s, 'barman_ha_last_success_age_seconds', role => 'primary');
ok($age ne 'NaN' && $age < 10, "promoted: a recent route check ($age s)");
ok(!grep({ $_->{labels}{role} eq 'standby' } @{ $s->{barman_ha_up} || [] }),
	'promoted: no series says standby any more');
$p = scrape($p_port);
is(metric($p, 'pg_up'), '0', 'old primary: its exporter says pg_up 0, no barman_ha series');
ok(!exists $p->{barman_ha_up}, 'old primary: no barman_ha_up');

# the example in docs/monitoring.md: the series before and after
for my $pair ([ 'db1 fenced, before the failover', $before ], [ 'db2 after promotion', $s ])
{
	my ($what, $m) = @$pair;
	note "$what:";
	note $_ for grep { /^barman_ha_/ } split /\n/, $m->{_raw};
}

stop_exporter($p_exp);
stop_exporter($s_exp);
# The exporter's own default queries fail on a standby (its pg_replication_slots
# query calls pg_current_wal_lsn()) and on the dead primary: only ours count.
my @errors = grep { /barman_ha/ && /error/i && !/connection|no such file/ }
  split /\n/, slurp_file($log);
is(scalar(@errors), 0, 'the exporter logged no error for the barman_ha query')
  or diag join("\n", @errors);

$standby->stop;
done_testing();
