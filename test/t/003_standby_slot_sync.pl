# 003_standby_slot_sync.pl: no WAL gap for a lagging Barman across a failover.
#
# pg_receivewal --synchronous (what Barman's receive-wal runs when it is a
# synchronous standby, as in the article's setup) streams from the primary's
# barman slot, then pauses while the primary writes several segments and
# both servers checkpoint.  The primary dies, the standby is promoted, and
# pg_receivewal resumes from where it stopped against the new primary.
#
# With barman_ha.standby_slot = 'sync' the standby kept those segments in its
# own slot: the stream resumes across the timeline switch with nothing
# missing.  With 'drop' (what repmgr event scripts do) the new primary has
# recycled them: the stream fails, the archive has a gap.  Both run here.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

sub receivewal
{
	my ($node, $dir, $endpos) = @_;
	my @cmd = (
		'pg_receivewal', '--no-loop', '--synchronous', '-D', $dir, '-S', 'barman',
		'-d', $node->connstr('postgres'));
	push @cmd, '-E', $endpos if $endpos;
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run(\@cmd, '>', \$stdout, '2>', \$stderr,
		IPC::Run::timeout(60));
	return ($ok, $stderr);
}

sub failover_with_lagging_receiver
{
	my ($mode) = @_;
	my $conf = qq(
shared_preload_libraries = 'repmgr_barman_ha'
barman_ha.helper_path = ''
barman_ha.reconcile_interval = 1
barman_ha.standby_slot = '$mode'
max_wal_size = 32MB
min_wal_size = 32MB
wal_keep_size = 0
);
	my $primary = PostgreSQL::Test::Cluster->new("primary_$mode");
	$primary->init(allows_streaming => 1);
	$primary->append_conf('postgresql.conf', $conf);
	$primary->start;
	$primary->safe_psql('postgres', 'CREATE EXTENSION repmgr_barman_ha');
	$primary->poll_query_until('postgres',
		"SELECT slot_exists AND slot_restart_lsn IS NOT NULL FROM barman_ha_status()")
	  or die "no slot on the primary";
	$primary->backup('base');
	my $standby = PostgreSQL::Test::Cluster->new("standby_$mode");
	$standby->init_from_backup($primary, 'base', has_streaming => 1);
	$standby->start;

	# the receiver catches up once, then stops: Barman lagging
	my $wal_dir = $primary->basedir . '/barman_wals';
	mkdir $wal_dir;
	my $lsn = $primary->safe_psql('postgres',
		"CREATE TABLE t (i int, pad text); INSERT INTO t VALUES (0, 'before'); SELECT pg_current_wal_flush_lsn()");
	my $receiver = IPC::Run::start(
		[
			'pg_receivewal', '--synchronous', '-D', $wal_dir, '-S', 'barman',
			'-d', $primary->connstr('postgres')
		],
		'>', \my $recv_out, '2>', \my $recv_err);
	ok( $primary->poll_query_until(
			'postgres',
			"SELECT restart_lsn >= '$lsn' FROM pg_replication_slots WHERE slot_name = 'barman'"),
		"$mode: the receiver streamed from the primary's slot");
	$receiver->kill_kill;
	$primary->poll_query_until('postgres',
		"SELECT active_pid IS NULL FROM pg_replication_slots WHERE slot_name = 'barman'")
	  or die "the receiver never left the slot";
	my $barman_lsn = $primary->safe_psql('postgres',
		"SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'barman'");

	if ($mode eq 'sync')
	{
		ok( $standby->poll_query_until(
				'postgres',
				"SELECT primary_slot_restart_lsn = '$barman_lsn' AND slot_restart_lsn = '$barman_lsn' AND slot_sync_lag_bytes = 0 FROM barman_ha_status()"
			),
			'sync: the standby slot follows the primary slot, status shows both and the lag')
		  or diag "primary's slot at $barman_lsn; standby: "
		  . $standby->safe_psql('postgres',
			"SELECT primary_slot_restart_lsn, slot_restart_lsn, slot_sync_lag_bytes, pg_last_wal_replay_lsn() FROM barman_ha_status()");
	}

	# several segments and checkpoints while the receiver is away
	for my $round (1 .. 5)
	{
		$primary->safe_psql('postgres',
			"INSERT INTO t SELECT $round, repeat('x', 1000) FROM generate_series(1, 20000); SELECT pg_switch_wal(); CHECKPOINT;"
		);
	}
	$primary->safe_psql('postgres', "INSERT INTO t VALUES (99, 'last before failover')");
	$primary->wait_for_catchup($standby);
	$standby->safe_psql('postgres', 'CHECKPOINT');

	$primary->stop('immediate');
	$standby->promote;
	$standby->poll_query_until('postgres',
		"SELECT role = 'primary' AND slot_exists FROM barman_ha_status()")
	  or die "no slot after promotion";
	$standby->safe_psql('postgres', "INSERT INTO t VALUES (100, 'after failover'); SELECT pg_switch_wal()");
	my $end = $standby->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');

	# the receiver comes back, now against the new primary
	my ($ok, $err) = receivewal($standby, $wal_dir, $end);
	$standby->stop;
	return ($ok, $err);
}

my ($ok, $err) = failover_with_lagging_receiver('sync');
ok($ok, 'sync: the lagging receiver resumes on the new primary without a gap')
  or diag $err;

($ok, $err) = failover_with_lagging_receiver('drop');
ok(!$ok, "drop: the lagging receiver cannot resume, the archive has a gap");
like($err, qr/has already been removed/, 'drop: because the new primary recycled the WAL');

done_testing();
