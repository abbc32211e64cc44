# 006_slot_idle_timeout.pl: PostgreSQL 18's idle_replication_slot_timeout
# invalidates the barman slot while Barman is away.  Unlike lost WAL, such a
# slot keeps its restart_lsn, and the walsender refuses to stream from it.
# The worker must see it as lost, say why (idle_timeout), and reserve it
# anew so that Barman can stream again.
#
# The worker waits an hour between passes: the pass that repairs the slot is
# asked for with barman_ha_reconcile(), so the invalidated slot can be looked
# at first.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
plan skip_all => 'idle_replication_slot_timeout is new in PostgreSQL 18'
  if $primary->pg_version < 18;

$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = 'repmgr_barman_ha'
barman_ha.helper_path = ''
barman_ha.reconcile_interval = 3600
idle_replication_slot_timeout = '1s'
checkpoint_timeout = '1h'
));
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION repmgr_barman_ha');
$primary->poll_query_until('postgres',
	'SELECT slot_exists AND slot_restart_lsn IS NOT NULL FROM barman_ha_status()')
  or die 'no slot on the primary';

sub slot
{
	my ($cols) = @_;
	return $primary->safe_psql('postgres',
		"SELECT $cols FROM pg_replication_slots WHERE slot_name = 'barman'");
}

# Stream from the barman slot up to the current position, as Barman would.
sub receivewal
{
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $endpos = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run(
		[
			'pg_receivewal', '--no-loop', '-D', $dir, '-S', 'barman',
			'-E', $endpos, '-d', $primary->connstr('postgres')
		],
		'>', \$stdout, '2>', \$stderr, IPC::Run::timeout(60));
	return ($ok, $stderr);
}

# --- idle longer than the timeout, then a checkpoint invalidates the slot
$primary->safe_psql('postgres', 'SELECT pg_sleep(1.5)');
$primary->safe_psql('postgres', 'CHECKPOINT');
is(slot("invalidation_reason || ' ' || wal_status || ' ' || (restart_lsn IS NOT NULL)"),
	'idle_timeout lost true',
	'pg_replication_slots: invalidated by idle_timeout, restart_lsn kept');
is( $primary->safe_psql('postgres', 'SELECT wal_status FROM barman_ha_status()'),
	'lost', 'status: lost before the worker looks');
my ($ok, $stderr) = receivewal();
ok(!$ok, 'the walsender refuses the invalidated slot');
like($stderr, qr/invalidated/, 'pg_receivewal says it is invalidated');

# --- the worker's pass: said once, with the cause, then reserved anew
my $log_offset = -s $primary->logfile;
$primary->safe_psql('postgres', 'SELECT barman_ha_reconcile()');
ok( $primary->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM barman_ha_events() WHERE event = 'slot_repaired'"),
	'event slot_repaired');
is( $primary->safe_psql('postgres',
		"SELECT detail FROM barman_ha_events() WHERE event = 'slot_invalidated'"),
	'slot "barman" was invalidated (idle_timeout)',
	'event slot_invalidated names the cause');
like(
	slurp_file($primary->logfile, $log_offset),
	qr/WARNING:  barman_ha: replication slot "barman" has been invalidated \(idle_timeout\)/,
	'log: WARNING with the cause');
is(slot("coalesce(invalidation_reason, 'valid') || ' ' || wal_status"),
	'valid reserved', 'pg_replication_slots: valid and reserved again');
is( $primary->safe_psql('postgres',
		"SELECT wal_status || ' ' || slot_invalidations || ' ' || slot_invalidation_reason FROM barman_ha_status()"
	),
	'reserved 1 idle_timeout', 'status: reserved, one invalidation counted, and why');
($ok, $stderr) = receivewal();
ok($ok, 'Barman streams from the slot again') or diag $stderr;

$primary->stop;
done_testing();
