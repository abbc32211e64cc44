# 002_worker_faults.pl: the worker comes back and the server stays up.
#
# SIGKILL of the worker (the postmaster restarts everything after a crash),
# SIGTERM of the worker (restarted after 2 s), a helper that is not there
# (route state 'failed' naming the path), the node name falling back to
# cluster_name, and enabled = off.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $missing_helper = '/nonexistent/barman_ha_helper';

my $node = PostgreSQL::Test::Cluster->new('faults');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = 'repmgr_barman_ha'
barman_ha.helper_path = '$missing_helper'
barman_ha.node_name = 'db1'
barman_ha.reconcile_interval = 1
barman_ha.retry_interval = 200
restart_after_crash = on
));
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION repmgr_barman_ha');

ok( $node->poll_query_until(
		'postgres', "SELECT route_state = 'failed' FROM barman_ha_status()"),
	'missing helper: route state failed');
like(
	$node->safe_psql('postgres', 'SELECT last_error FROM barman_ha_status()'),
	qr/could not execute helper "\Q$missing_helper\E": No such file or directory/,
	'missing helper: last_error names the path');
is($node->safe_psql('postgres', 'SELECT slot_exists FROM barman_ha_status()'),
	't', 'missing helper: the slot is kept anyway');
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) >= 3 FROM barman_ha_events() WHERE event = 'route_failed'"),
	'missing helper: retried');

# SIGTERM: the worker exits and the postmaster starts it again.
my $pid = $node->safe_psql('postgres', 'SELECT worker_pid FROM barman_ha_status()');
ok($pid > 0, 'worker pid is reported');
kill 'TERM', $pid;
ok( $node->poll_query_until(
		'postgres',
		"SELECT worker_pid IS NOT NULL AND worker_pid <> $pid FROM barman_ha_status()"),
	'SIGTERM: the worker is started again');

# SIGKILL: a crash; the postmaster reinitialises and the worker converges.
$pid = $node->safe_psql('postgres', 'SELECT worker_pid FROM barman_ha_status()');
kill 'KILL', $pid;
ok( $node->poll_query_until(
		'postgres',
		"SELECT worker_pid IS NOT NULL AND worker_pid <> $pid AND slot_exists AND route_state = 'failed' FROM barman_ha_status()"
	),
	'SIGKILL: after the crash restart the worker is back and the state converged');
ok($node->log_contains('terminated by signal 9'), 'SIGKILL: the postmaster saw the crash');

# An empty node name falls back to cluster_name (the test framework's node name).
$node->append_conf('postgresql.conf', "barman_ha.node_name = ''\n");
$node->reload;
ok( $node->poll_query_until(
		'postgres', "SELECT node_name = 'faults' FROM barman_ha_status()"),
	'empty node_name: cluster_name is used');

# enabled = off: nothing is routed, the state says disabled.
$node->append_conf('postgresql.conf', "barman_ha.enabled = off\n");
$node->reload;
ok( $node->poll_query_until(
		'postgres', "SELECT route_state = 'disabled' FROM barman_ha_status()"),
	'enabled = off: route state disabled');

$node->stop;
ok(1, 'the server stopped cleanly');
done_testing();
