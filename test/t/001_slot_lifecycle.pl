# 001_slot_lifecycle.pl: the barman slot through a node's roles.
#
# A primary and a streaming standby, both with repmgr_barman_ha preloaded
# and no helper (routing disabled), on loopback.  With standby_slot = 'drop'
# (003_standby_slot_sync.pl tests 'sync', the default) the standby drops a
# leftover inactive slot, keeps an active one, and on promotion the primary
# worker creates the slot with WAL reserved on the new timeline.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $extension_conf = qq(
shared_preload_libraries = 'repmgr_barman_ha'
barman_ha.helper_path = ''
barman_ha.reconcile_interval = 1
barman_ha.standby_slot = 'drop'
);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $extension_conf);
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION repmgr_barman_ha');

ok( $primary->poll_query_until(
		'postgres',
		"SELECT slot_exists AND slot_restart_lsn IS NOT NULL FROM barman_ha_status()"),
	'primary: the worker creates the barman slot with WAL reserved');
is( $primary->safe_psql('postgres',
		"SELECT role || ' ' || timeline || ' ' || node_name || ' ' || route_state FROM barman_ha_status()"),
	'primary 1 primary disabled',
	'primary: status names role, timeline, node and a disabled route without a helper');

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

# A slot left over on a standby (a demoted primary keeps its slots).
$standby->safe_psql('postgres', "SELECT pg_create_physical_replication_slot('barman', true)");
ok( $standby->poll_query_until(
		'postgres', "SELECT NOT slot_exists FROM barman_ha_status()"),
	'standby: the leftover barman slot is dropped');
is( $standby->safe_psql('postgres',
		"SELECT role || ' ' || route_state || ' ' || (worker_pid > 0) FROM barman_ha_status()"),
	'standby disabled true',
	'standby: status says standby, with its worker running');
ok( $standby->poll_query_until(
		'postgres', "SELECT count(*) = 1 FROM barman_ha_events() WHERE event = 'slot_dropped'"),
	'standby: the drop is an event');

# An active slot on the standby is kept: pg_receivewal streams from it.  The
# worker's next reconcile is put a minute away while the slot waits for its
# client (with a second's interval it would drop the slot before a slow
# pg_receivewal connects); its reload is taken at its next wake.
$standby->append_conf('postgresql.conf', "barman_ha.reconcile_interval = 60\n");
$standby->reload;
sleep 2;
$standby->safe_psql('postgres', "SELECT pg_create_physical_replication_slot('barman', true)");
my $wal_dir = $standby->basedir . '/receivewal';
mkdir $wal_dir;
my $receiver = IPC::Run::start(
	[
		'pg_receivewal', '--no-loop', '-D', $wal_dir, '-S', 'barman',
		'-d', $standby->connstr('postgres')
	],
	'>', \my $recv_out, '2>', \my $recv_err);
ok( $standby->poll_query_until(
		'postgres', "SELECT slot_active FROM barman_ha_status()"),
	'standby: the slot is active while pg_receivewal streams');
$standby->append_conf('postgresql.conf', "barman_ha.reconcile_interval = 1\n");
$standby->reload;
$standby->safe_psql('postgres', 'SELECT barman_ha_reconcile()');
ok( $standby->poll_query_until(
		'postgres', "SELECT count(*) = 1 FROM barman_ha_events() WHERE event = 'slot_kept_active'"),
	'standby: an active slot is kept, and that is said');
is($standby->safe_psql('postgres', "SELECT slot_exists FROM barman_ha_status()"),
	't', 'standby: the active slot still exists');
$receiver->kill_kill;
ok( $standby->poll_query_until(
		'postgres', "SELECT NOT slot_exists FROM barman_ha_status()"),
	'standby: the slot is dropped once its client is gone');

# 'keep' leaves a slot alone.
$standby->append_conf('postgresql.conf', "barman_ha.standby_slot = 'keep'\n");
$standby->reload;
sleep 2;	# the worker's next wake takes the reload
$standby->safe_psql('postgres', "SELECT pg_create_physical_replication_slot('barman', true)");
$standby->safe_psql('postgres', 'SELECT barman_ha_reconcile()');
sleep 2;
is($standby->safe_psql('postgres', "SELECT slot_exists FROM barman_ha_status()"),
	't', "standby: standby_slot = 'keep' keeps the slot");
$standby->safe_psql('postgres', "SELECT pg_drop_replication_slot('barman')");
$standby->append_conf('postgresql.conf', "barman_ha.standby_slot = 'drop'\n");
$standby->reload;

# Promotion: the primary worker starts when recovery ends and creates the slot.
$primary->stop;
$standby->promote;
ok( $standby->poll_query_until(
		'postgres',
		"SELECT role = 'primary' AND timeline = 2 AND slot_exists AND slot_restart_lsn IS NOT NULL FROM barman_ha_status()"
	),
	'promoted: primary on timeline 2 with the slot and WAL reserved');
ok( $standby->poll_query_until(
		'postgres',
		"SELECT string_agg(event, ',' ORDER BY event) = 'promoted,recovery_ended,slot_created' FROM barman_ha_events() WHERE event IN ('recovery_ended', 'promoted', 'slot_created')"
	),
	'promoted: the standby worker hands over, the primary worker creates the slot');
is( $standby->safe_psql('postgres',
		"SELECT restart_lsn IS NOT NULL AND NOT temporary FROM pg_replication_slots WHERE slot_name = 'barman'"),
	't', 'promoted: the slot is persistent and reserves WAL');

$standby->stop;
done_testing();
