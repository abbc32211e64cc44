/*-------------------------------------------------------------------------
 *
 * barman.c
 *	  Puts Barman's WAL stream on the new primary, in this order:
 *		1. end the server's receive-wal and pg_receivewal by pid (SIGINT as
 *		   `receive-wal --stop` sends it, SIGKILL after a bound): after a host
 *		   vanished they hang on the dead connection.  A /proc scan first:
 *		   when nothing runs, nothing is started (no Python, < 1 ms);
 *		2. Barman's WAL past the new timeline's fork point aside
 *		   (timeline_fork.c);
 *		3. start `barman receive-wal SERVER` at once, detached (it runs
 *		   pg_receivewal --no-loop in the foreground; waiting for `barman
 *		   cron` kept synchronous commits blocked up to a minute); a
 *		   standing one that imported Barman long before only gets "go"
 *		   (warm_receive.c), and Barman's own start joins it when it has
 *		   not taken it after 1.5 s;
 *		4. wait until Barman has the primary's flush position: its flush_lsn
 *		   when it is a synchronous standby (commits flow again from here),
 *		   its sent_lsn when it is asynchronous (nothing waits for it);
 *		5. `barman switch-wal --archive`, bounded, the switch forced by
 *		   us rather than waited for (barman_switch_wal): no --force,
 *		   whose CHECKPOINT Barman 3.4 runs only as SUPERUSER.
 *	  Everything runs as the barman user, in bounded children (run.c).
 *	  How Barman is run and what show-server says: barman_cmd.c.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#define MAX_PIDS 64

static struct run_result res;	/* big: keep it off the stack */

/*
 * The standing receive-wal told "go" by barman_restart (warm_receive.c),
 * and how long it has to take it before Barman's own start joins it: it
 * reads "go" within milliseconds once it has imported Barman (0.1-0.5 s
 * after it started on an idle host).
 */
static pid_t warm_pid = -1;
#define WARM_TAKE_MS 1500

static bool
same_dir(const char *a, const char *b)
{
	size_t		la = strlen(a), lb = strlen(b);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	return la == lb && strncmp(a, b, la) == 0;
}

/*
 * Processes of uid that stream for this server: pg_receivewal with
 * --directory DIR, or `barman ... receive-wal SERVER` (not --stop etc.).
 * Returns the count; pids[] gets them.
 */
static int
scan_receivers(uid_t uid, const char *dir, const char *server, const char *fifo,
			   bool with_barman, pid_t *pids, int max)
{
	DIR		   *d = opendir("/proc");
	struct dirent *de;
	int			n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < max)
	{
		char		buf[8192];
		char	   *args[64];
		int			nargs;
		long		pid;
		bool		receivewal, barman = false, match = false;
		const char *base;

		if ((nargs = proc_args(de->d_name, uid, &pid, buf, sizeof(buf), args, 64)) == 0)
			continue;
		base = strrchr(args[0], '/') ? strrchr(args[0], '/') + 1 : args[0];
		receivewal = strcmp(base, "pg_receivewal") == 0;
		for (int i = 1; i < nargs; i++)
		{
			const char *a = args[i];

			if (receivewal && strncmp(a, "--directory=", 12) == 0)
				match |= same_dir(a + 12, dir);
			else if (receivewal && (strcmp(a, "-D") == 0 ||
									strcmp(a, "--directory") == 0) && i + 1 < nargs)
				match |= same_dir(args[i + 1], dir);
			else if (!receivewal && strcmp(a, "receive-wal") == 0)
				barman = true;
			else if (i == 2 && warm_cmdline(args, nargs))
				barman = !warm_standing(pid, fifo);	/* told "go": a receiver */
			else if (barman && a[0] == '-' && strcmp(a, "-c") != 0)
				barman = false; /* --stop, --reset, --create-slot: leave them */
		}
		if (with_barman && barman && strcmp(args[nargs - 1], server) == 0 &&
			strstr(buf, "barman") != NULL)
			match = true;
		if (match)
			pids[n++] = (pid_t) pid;
	}
	closedir(d);
	return n;
}

struct kill_args
{
	const char *dir;
	const char *server;
	const char *fifo;
	int			grace_ms;
};

/*
 * Runs as the barman user: it can end only barman's own processes.  What
 * `receive-wal --stop` does (SIGINT: pg_receivewal finishes its segment
 * cleanly, barman passes it on), without the 0.5 s of Python start-up and
 * without its 10 s of waiting: SIGCONT too (a stopped process would never
 * see the SIGINT), then SIGKILL whatever still runs after grace_ms (a
 * pg_receivewal hanging on a vanished host waits for the network, not for
 * us; what it wrote is in the page cache and survives SIGKILL).
 */
static int
kill_child(void *p)
{
	struct kill_args *a = p;
	pid_t		pids[MAX_PIDS];
	int			n = scan_receivers(getuid(), a->dir, a->server, a->fifo, true, pids, MAX_PIDS);
	int			total = n, killed = 0;
	double		t0 = now_ms();

	for (int i = 0; i < n; i++)
	{
		kill(pids[i], SIGINT);
		kill(pids[i], SIGCONT);
	}
	while (n > 0 && now_ms() - t0 < a->grace_ms)
	{
		usleep(5000);
		n = scan_receivers(getuid(), a->dir, a->server, a->fifo, true, pids, MAX_PIDS);
	}
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	killed = n;
	/* gone for good before anyone starts a new one (barman's lock file) */
	for (int tries = 0; n > 0 && tries < 500; tries++)
	{
		usleep(2000);
		n = scan_receivers(getuid(), a->dir, a->server, a->fifo, true, pids, MAX_PIDS);
	}
	printf("ended %d process%s in %.0f ms%s\n", total, total == 1 ? "" : "es",
		   now_ms() - t0, killed > 0 ? " (some with SIGKILL)" : "");
	return n > 0;
}

/* Runs as the barman user: `barman receive-wal SERVER`, detached. */
static int
start_child(void *p)
{
	char	  **av = p;
	pid_t		pid;
	int			fd;

	pid = fork();
	if (pid < 0)
	{
		printf("cannot fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid > 0)
	{
		printf("started pid %d\n", (int) pid);
		return 0;
	}

	/*
	 * The grandchild: a session of its own (we, its parent, lead a process
	 * group, so setsid has to happen here), so that our timeouts and the
	 * worker's SIGTERM do not reach it; no descriptors of ours, so our
	 * pipe gets its EOF.
	 */
	setsid();
	fd = open("/dev/null", O_RDWR);
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	closefrom(3);
	execve(av[0], av, child_env());
	_exit(127);
}

struct catchup_args
{
	const char *conninfo;
	const char *appname;
	int			timeout_ms;
};

/* Runs as the barman user: wait for Barman's flush_lsn to reach ours. */
static int
catchup_child(void *p)
{
	struct catchup_args *a = p;
	PGconn	   *c = pq_open(a->conninfo);
	PGresult   *r;
	char		target[64];
	char		last[300] = "not connected";
	const char *params[2];
	double		deadline = now_ms() + a->timeout_ms;

	if (c == NULL || (r = pq_row(c, "SELECT pg_current_wal_flush_lsn()", 1)) == NULL)
		return 1;
	snprintf(target, sizeof(target), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	params[0] = target;
	params[1] = a->appname;
	while (now_ms() < deadline)
	{
		/*
		 * A synchronous Barman (pg_receivewal --synchronous) reports its
		 * flush position at once: wait for it, commits depend on it.  An
		 * asynchronous one (not in synchronous_standby_names) or a potential
		 * one that streams (another standby is the synchronous one) flushes
		 * only at a segment's end and reports its write position every 10 s;
		 * no commit waits for it, so the WAL sent to it is enough.
		 */
		r = PQexecParams(c,
						 "SELECT s.sync_state, s.flush_lsn::text, s.write_lsn::text, s.sent_lsn::text,"
						 " CASE WHEN s.sync_state IN ('async', 'potential') AND s.state = 'streaming'"
						 " THEN s.sent_lsn >= $1::pg_lsn ELSE coalesce(s.flush_lsn >= $1::pg_lsn, false) END"
						 " FROM pg_stat_replication s WHERE s.application_name = $2"
						 " ORDER BY s.sent_lsn DESC NULLS LAST LIMIT 1",
						 2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
		{
			printf("query failed: %s\n", PQerrorMessage(c));
			return 1;
		}
		if (PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 4), "t") == 0)
		{
			if (strcmp(PQgetvalue(r, 0, 0), "async") == 0 ||
				strcmp(PQgetvalue(r, 0, 0), "potential") == 0)
				printf("%s: sent_lsn %s (write_lsn %s) reached %s\n", PQgetvalue(r, 0, 0),
					   PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 2), target);
			else
				printf("%s: flush_lsn %s reached %s\n", PQgetvalue(r, 0, 0),
					   PQgetvalue(r, 0, 1), target);
			return 0;
		}
		if (PQntuples(r) == 1)
			snprintf(last, sizeof(last), "%s, flush_lsn %s, write_lsn %s, sent_lsn %s",
					 PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
					 PQgetvalue(r, 0, 3));
		PQclear(r);
		usleep(50000);
	}
	printf("%s did not reach %s within %d ms (%s)\n", a->appname, target,
		   a->timeout_ms, last);
	return 1;
}

static const char *
out_line(char *buf, size_t len)
{
	return last_line(res.out, buf, len);
}

int
barman_receiving(const struct config *cfg, bool *running)
{
	char		why[300];
	const char *dir = barman_streaming_dir(cfg, why, sizeof(why));
	pid_t		pids[MAX_PIDS];

	if (dir == NULL)
		return -1;
	*running = scan_receivers(geteuid(), dir, cfg->barman_server, "", false, pids, MAX_PIDS) > 0;
	return 0;
}

/* Which step of barman_stop_start failed last ("" when none). */
static const char *failed_step = "";

/* barman_restart's start of receive-wal, for barman_streaming's step */
static double start_t0;
static char started[300];

const char *
barman_failed_step(void)
{
	return failed_step;
}

/*
 * Step barman_stop: end the server's receive-wal and pg_receivewal by pid.
 * The /proc scan first: when nothing runs (kill -9 of the primary ended
 * the stream), there is nothing to stop and no reason to start Python.
 */
static int
barman_stop(const struct config *cfg, const char *dir)
{
	pid_t		pids[MAX_PIDS];
	double		t0 = now_ms();
	struct kill_args ka;
	char		line[300];
	char		fifo[WARM_FIFO_LEN];
	int			n;

	warm_fifo(cfg, fifo);
	n = scan_receivers(geteuid(), dir, cfg->barman_server, fifo, true, pids, MAX_PIDS);
	if (n == 0)
	{
		step("barman_stop", "ok", now_ms() - t0, "nothing running");
		return 0;
	}
	ka.dir = dir;
	ka.server = cfg->barman_server;
	ka.fifo = fifo;
	ka.grace_ms = cfg->stop_grace_ms;
	if (run_child(ka.grace_ms + 5000, kill_child, &ka, &res) != 0 ||
		res.status != 0)
	{
		step("barman_stop", "failed", now_ms() - t0, "cannot end receive-wal: %s",
			 out_line(line, sizeof(line)));
		errorf("cannot end receive-wal / pg_receivewal of %s", cfg->barman_server);
		return -1;
	}
	step("barman_stop", "ok", now_ms() - t0, "%s", out_line(line, sizeof(line)));
	return 0;
}

/* `barman receive-wal SERVER` started detached, Python and all. */
static int
cold_start(const struct config *cfg)
{
	char	   *av[12];
	char		line[300];

	barman_argv(cfg, av, "receive-wal", NULL, NULL, NULL);
	if (run_child(5000, start_child, av, &res) != 0 || res.status != 0)
	{
		step("barman_start", "failed", now_ms() - start_t0, "%s", out_line(line, sizeof(line)));
		errorf("cannot start barman receive-wal %s", cfg->barman_server);
		return -1;
	}
	out_line(started, sizeof(started));
	return 0;
}

/*
 * Steps barman_stop and barman_fork (known: the new primary's timeline,
 * when the claim check read it), then `barman receive-wal` started
 * (detached) without waiting for it: the caller may route the applications
 * while Python starts.  0 when all ok; barman_streaming() then reports
 * barman_start.
 */
int
barman_restart(const struct config *cfg, const struct timeline_facts *known)
{
	char		line[300];
	const char *dir;
	double		t0 = now_ms();

	failed_step = "barman_stop";
	dir = barman_streaming_dir(cfg, line, sizeof(line));
	if (dir == NULL)
	{
		step("barman_stop", "failed", now_ms() - t0, "%s", line);
		errorf("%s", line);
		return -1;
	}
	if (barman_stop(cfg, dir) != 0)
		return -1;

	/* Barman ahead of the new timeline's fork point: its extra WAL aside */
	barman_fork(cfg, dir, known);

	failed_step = "barman_start";
	start_t0 = now_ms();
	if ((warm_pid = warm_go(cfg)) > 0)
	{
		snprintf(started, sizeof(started), "started warm pid %d", (int) warm_pid);
		return 0;
	}
	return cold_start(cfg);
}

/*
 * Steps barman_start (pg_receivewal running) and barman_caught_up, after
 * barman_restart succeeded.  0 when all ok.
 */
int
barman_streaming(const struct config *cfg)
{
	char		line[300];
	char		fifo[WARM_FIFO_LEN];
	char		note[64];
	double		t0;
	struct catchup_args ca;
	bool		running = false;

	/* barman (python) needs 0.2-0.5 s before pg_receivewal appears */
	warm_fifo(cfg, fifo);
	for (int i = 0; i < 500 && !running; i++)
	{
		const char *why = NULL;

		usleep(10000);
		barman_receiving(cfg, &running);
		if (running || warm_pid <= 0)
			continue;

		/*
		 * The standing one ended without a pg_receivewal, or it has not
		 * taken "go" WARM_TAKE_MS after it (still importing Barman on a busy
		 * host, or stopped): Barman's own `barman receive-wal` beside it.
		 * Barman's lock lets only the first of the two stream; the other
		 * ends.  A stopped one would take every "go" to come: it is ended.
		 */
		if (waitpid(warm_pid, NULL, WNOHANG) != 0 && kill(warm_pid, 0) != 0)
			why = "ended";
		else if (now_ms() - start_t0 > WARM_TAKE_MS && warm_standing(warm_pid, fifo))
		{
			why = "had not taken \"go\"";
			if (proc_state(warm_pid) == 'T' || proc_state(warm_pid) == 't')
			{
				kill(warm_pid, SIGKILL);
				why = "was stopped: ended";
			}
		}
		if (why == NULL)
			continue;
		snprintf(note, sizeof(note), "; the standing pid %d %s", (int) warm_pid, why);
		warm_pid = -1;
		if (cold_start(cfg) != 0)
			return -1;
		snprintf(started + strlen(started), sizeof(started) - strlen(started), "%s", note);
	}
	if (!running)
	{
		step("barman_start", "failed", now_ms() - start_t0,
			 "%s, but no pg_receivewal into %s after 5 s (see barman's log)", started,
			 barman_streaming_dir(cfg, line, sizeof(line)));
		errorf("barman receive-wal %s did not start pg_receivewal", cfg->barman_server);
		return -1;
	}
	step("barman_start", "ok", now_ms() - start_t0, "receive-wal %s", started);

	failed_step = "barman_caught_up";
	t0 = now_ms();
	ca.conninfo = cfg->barman_conninfo;
	ca.appname = cfg->barman_appname;
	ca.timeout_ms = cfg->catchup_timeout * 1000;
	if (run_child(ca.timeout_ms + 10000, catchup_child, &ca, &res) != 0 ||
		res.status != 0)
	{
		step("barman_caught_up", "failed", now_ms() - t0, "%s", out_line(line, sizeof(line)));
		errorf("barman did not catch up: %s", line);
		return -1;
	}
	step("barman_caught_up", "ok", now_ms() - t0, "%s", out_line(line, sizeof(line)));
	failed_step = "";
	return 0;
}

/* All Barman steps up to barman_caught_up.  0 when all ok. */
int
barman_stop_start(const struct config *cfg)
{
	if (barman_restart(cfg, NULL) != 0)
		return -1;
	return barman_streaming(cfg);
}

/* Runs as the barman user: CHECKPOINT on the primary behind the Barman endpoint. */
static int
checkpoint_child(void *p)
{
	const struct catchup_args *a = p;
	PGconn	   *c = pq_open(a->conninfo);
	PGresult   *r;

	if (c == NULL)
		return 1;
	r = PQexec(c, "CHECKPOINT");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
	{
		printf("CHECKPOINT failed: %s\n", PQerrorMessage(c));
		return 1;
	}
	printf("done\n");
	return 0;
}

/*
 * Step checkpoint: the new primary's first checkpoint, at once.  Promotion
 * only requests a spread one, and until it completes the control file
 * still names the old timeline, so pg_rewind (repmgr node rejoin) takes
 * the old primary for one on the same timeline and rewinds nothing.  Its
 * record also leaves the current segment something for pg_switch_wal to
 * close on an idle primary.  The catch-up role does it with pg_checkpoint
 * (Barman's --force would need SUPERUSER).  Its failure is said, not
 * fatal: it delays no commit, and the switch only waits longer.
 */
static void
barman_checkpoint(const struct config *cfg)
{
	struct catchup_args ca = {.conninfo = cfg->barman_conninfo};
	double		t0 = now_ms();
	char		line[300];
	bool		ok;

	if (cfg->barman_conninfo[0] == '\0')
		return;
	ok = run_child(cfg->catchup_timeout * 1000, checkpoint_child, &ca, &res) == 0 &&
		res.status == 0;
	step("checkpoint", ok ? "ok" : "failed", now_ms() - t0, "%s", out_line(line, sizeof(line)));
}

struct switch_args
{
	const char *conninfo;
	char	  **argv;
};

/* The WAL segment the primary inserts into, or "" when it cannot be read. */
static void
insert_segment(PGconn *c, char *seg, size_t len)
{
	PGresult   *r = c ? pq_row(c, "SELECT pg_walfile_name(pg_current_wal_insert_lsn())", 1) : NULL;

	snprintf(seg, len, "%s", r ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
}

/*
 * Runs as the barman user: `barman switch-wal --archive`, and the new
 * primary nudged while it waits.  Barman archives a streamed segment only
 * once the next one's .partial exists, and pg_receivewal begins that file
 * only with a record in it: an idle primary writes one every 15 s or so,
 * longer than a promote can wait.  So once Barman's pg_switch_wal has
 * moved the insert position into the next segment, one commit of our own
 * (no grant needed; synchronous_commit local, as nothing waits for it)
 * gives that segment its first record.  Barman's output is ours.  It is
 * forked here rather than through run_exec: this process already is
 * run_child's session and deadline, which reach Barman too, and it has to
 * nudge while Barman runs, where run_child only returns at the end.
 */
static int
switch_child(void *p)
{
	const struct switch_args *a = p;
	PGconn	   *c = a->conninfo[0] ? pq_open(a->conninfo) : NULL;
	char		before[64], now[64];
	bool		nudged = false;
	int			status = 0;
	pid_t		pid,
				done;

	insert_segment(c, before, sizeof(before));
	fflush(stdout);
	if ((pid = fork()) < 0)
	{
		printf("cannot fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0)
	{
		execve(a->argv[0], a->argv, child_env());
		_exit(127);
	}
	while ((done = waitpid(pid, &status, WNOHANG)) == 0 || (done < 0 && errno == EINTR))
	{
		if (!nudged && before[0])
		{
			insert_segment(c, now, sizeof(now));
			if (now[0] && strcmp(now, before) != 0)
			{
				PQclear(PQexec(c, "SET synchronous_commit = local; SELECT txid_current()"));
				nudged = true;
			}
		}
		usleep(50000);
	}
	if (done < 0)
	{
		printf("cannot wait for barman: %s\n", strerror(errno));
		return 1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* Steps checkpoint and switch_wal.  0 when switch_wal is ok. */
int
barman_switch_wal(const struct config *cfg)
{
	char	   *av[12];
	char		to[40], line[300];
	struct switch_args sa = {.conninfo = cfg->barman_conninfo,.argv = av};
	double		t0;

	barman_checkpoint(cfg);
	t0 = now_ms();
	snprintf(to, sizeof(to), "--archive-timeout=%d", cfg->archive_timeout);
	barman_argv(cfg, av, "switch-wal", "--archive", to, NULL);
	if (run_child((cfg->archive_timeout + 10) * 1000, switch_child, &sa, &res) != 0)
		res.status = -1;
	if (res.timed_out || res.status != 0)
	{
		step("switch_wal", "failed", now_ms() - t0, "%s%s",
			 res.timed_out ? "timed out: " : "", out_line(line, sizeof(line)));
		errorf("barman switch-wal %s failed: %s", cfg->barman_server, line);
		return -1;
	}
	step("switch_wal", "ok", now_ms() - t0, "%s", out_line(line, sizeof(line)));
	return 0;
}

int
barman_reset(const struct config *cfg)
{
	if (!barman_configured(cfg))
	{
		errorf("barman_server is not set in %s", cfg->path);
		return -1;
	}
	if (barman_stop_start(cfg) != 0)
		return -1;
	return barman_switch_wal(cfg);
}
