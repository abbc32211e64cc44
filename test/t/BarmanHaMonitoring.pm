# BarmanHaMonitoring.pm: what the monitoring TAP tests share: a role that is
# only in pg_monitor, the real prometheus-postgres-exporter started on
# loopback with monitoring/postgres_exporter.yaml, its /metrics scraped and
# parsed, and promtool run on rules.  Ports come from 55400-55499.

package BarmanHaMonitoring;

use strict;
use warnings;
use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec;
use HTTP::Tiny;
use IO::Socket::INET;
use IPC::Run;
use Time::HiRes qw(usleep);

our @EXPORT_OK = qw(exporter_path promtool_path free_port create_monitor_role
  start_exporter stop_exporter scrape metric metric_labels wait_for_metric
  top_dir);

our $EXPORTER = '/usr/bin/prometheus-postgres-exporter';
our $PROMTOOL = '/usr/bin/promtool';

sub exporter_path { return -x $EXPORTER ? $EXPORTER : undef; }
sub promtool_path { return -x $PROMTOOL ? $PROMTOOL : undef; }

# the checkout: test/t/..
sub top_dir
{
	return File::Spec->rel2abs(dirname(__FILE__) . '/../..');
}

# A TCP port in 55400-55499 that nothing listens on right now.
my %handed_out;
sub free_port
{
	my $start = 55450 + int(rand(50));
	for my $i (0 .. 99)
	{
		my $port = 55400 + ($start - 55400 + $i) % 100;
		next if $handed_out{$port};
		my $sock = IO::Socket::INET->new(
			LocalAddr => '127.0.0.1',
			LocalPort => $port,
			Proto     => 'tcp',
			Listen    => 1);
		next unless $sock;
		close $sock;
		$handed_out{$port} = 1;
		return $port;
	}
	die "no free port in 55400-55499";
}

# A login role that is in pg_monitor and nothing else.
sub create_monitor_role
{
	my ($node, $role) = @_;
	$node->safe_psql('postgres',
		"CREATE ROLE $role LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION IN ROLE pg_monitor");
	return $role;
}

# Start the exporter for $node as $role on 127.0.0.1:$port, on database
# $dbname (default postgres); returns the IPC::Run harness once /metrics
# answers.
sub start_exporter
{
	my ($node, $role, $port, $log, $dbname) = @_;
	my $dsn = sprintf('host=%s port=%d user=%s dbname=%s sslmode=disable',
		$node->host, $node->port, $role, $dbname // 'postgres');
	local $ENV{DATA_SOURCE_NAME} = $dsn;
	my $h = IPC::Run::start(
		[
			$EXPORTER, "--web.listen-address=127.0.0.1:$port",
			'--extend.query-path=' . top_dir() . '/monitoring/postgres_exporter.yaml',
			'--log.level=info'
		],
		'<', \undef, '>>', $log, '2>>', $log);
	for (1 .. 100)
	{
		my $res = HTTP::Tiny->new(timeout => 2)->get("http://127.0.0.1:$port/metrics");
		return $h if $res->{success};
		usleep(100_000);
	}
	$h->kill_kill;
	die "the exporter did not answer on 127.0.0.1:$port (log: $log)";
}

# End the exporter by its harness (SIGTERM to its pid, then SIGKILL).
sub stop_exporter
{
	my ($h) = @_;
	$h->kill_kill(grace => 5) if $h;
	return;
}

# All samples of /metrics: { name => [ { labels => {..}, value => v }, ... ] }
sub scrape
{
	my ($port) = @_;
	my $res = HTTP::Tiny->new(timeout => 10)->get("http://127.0.0.1:$port/metrics");
	die "scrape of 127.0.0.1:$port failed: $res->{status} $res->{reason}"
	  unless $res->{success};
	my %m;
	for my $line (split /\n/, $res->{content})
	{
		next if $line =~ /^#/ || $line !~ /\S/;
		my ($name, $labels, $value) = $line =~ /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/
		  or next;
		my %l;
		while (defined $labels && $labels =~ /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)
		{
			$l{$1} = $2;
		}
		push @{ $m{$name} }, { labels => \%l, value => $value };
	}
	$m{_raw} = $res->{content};
	return \%m;
}

# The one value of $name (whose labels include %want), or undef.
sub metric
{
	my ($m, $name, %want) = @_;
	my $s = _find($m, $name, %want);
	return $s ? $s->{value} : undef;
}

sub metric_labels
{
	my ($m, $name, %want) = @_;
	my $s = _find($m, $name, %want);
	return $s ? $s->{labels} : undef;
}

sub _find
{
	my ($m, $name, %want) = @_;
  SAMPLE:
	for my $s (@{ $m->{$name} || [] })
	{
		for my $k (keys %want)
		{
			next SAMPLE unless defined $s->{labels}{$k} && $s->{labels}{$k} eq $want{$k};
		}
		return $s;
	}
	return undef;
}

# Scrape until $check->($metrics) is true; returns the last scrape and
# whether it got there within $seconds.
sub wait_for_metric
{
	my ($port, $check, $seconds) = @_;
	$seconds //= 60;
	my $m;
	for (1 .. $seconds * 4)
	{
		$m = scrape($port);
		return ($m, 1) if $check->($m);
		usleep(250_000);
	}
	return ($m, 0);
}

1;
