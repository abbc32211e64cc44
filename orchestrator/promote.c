/*-------------------------------------------------------------------------
 *
 * promote.c
 *	  `promote NODE TIMELINE`: the ordered sequence run on the backup host
 *	  when a node becomes primary, one `step` line per action on stdout:
 *		claim_check -> fence -> barman_stop -> barman_fork -> route_app
 *		-> barman_start -> barman_caught_up -> switch_wal -> state
 *	  `fence` is barman_ha_nat's claim: the fencing decision, the record,
 *	  the Barman endpoint moved to NODE and the application endpoint closed
 *	  (a client's SYN gets a reset from the backup host and libpq retries at
 *	  once, instead of retransmitting to a host that may be gone) in one
 *	  privileged call under its lock.  Barman's old stream is ended and the
 *	  standing receive-wal (warm_receive.c: Barman imported long before,
 *	  kept by every promote) told to run, and while it starts `route_app` opens
 *	  the application endpoint on NODE: closed for 20-50 ms only, and
 *	  whatever Barman does next never keeps the applications out.  When the
 *	  claim check found the routed primary's host silent, the old stream
 *	  hangs on a dead peer that no SIGINT can finish with: it is killed at
 *	  once instead of after receive_wal_stop_grace_ms.
 *
 *	  Why the applications need not wait for Barman's catch-up (nothing
 *	  below depends on that order):
 *	  - no acknowledged commit is lost: a commit is acknowledged per
 *		synchronous_standby_names, whenever it arrives.  With Barman the
 *		only synchronous standby left, a commit made before Barman streams
 *		waits in the walsender's queue and is acknowledged only once
 *		Barman's pg_receivewal has flushed it, exactly as a commit made
 *		after the catch-up; with another standby synchronous, Barman was
 *		never on the commit's path;
 *	  - no WAL gap: what Barman has not received is held by the `barman`
 *		slot on NODE (the extension reserves it at the promotion, before
 *		calling us), not by the applications waiting; barman_fork looks only
 *		at the old timeline's segments past the fork point, which commits on
 *		NODE's new timeline cannot change;
 *	  - fencing and the claim check are untouched: the application endpoint
 *		still opens only after barman_ha_nat has recorded NODE's claim, and
 *		barman_ha_nat refuses `route` for any other node.
 *	  switch_wal comes last: it only confirms archiving and takes 8-20 s on
 *	  an idle server.
 *
 *	  The worker calls promote again every reconcile interval as its level
 *	  check, so the same NODE and TIMELINE must be cheap: one `show` and a
 *	  /proc scan, then `step check ok routed`.  What is missing (a route
 *	  after a reboot, receive-wal, an app endpoint still closed, a
 *	  switch-wal that failed) is repaired alone.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One privileged call as one step. */
static int
nat_step(const struct config *cfg, const char *name, const char *verb,
		 const char *a1, const char *a2)
{
	char		reply[300];
	double		t0 = now_ms();
	int			rc = nat_call(cfg, reply, sizeof(reply), verb, a1, a2);

	step(name, rc == BHA_EXIT_OK ? BHA_STEP_OK : BHA_STEP_FAILED, now_ms() - t0,
		 "%s", reply);
	if (rc != BHA_EXIT_OK)
		errorf("%s%s", rc == BHA_EXIT_FENCED ? "fenced: " : "", reply);
	return rc;
}

/* Record what is done for NODE/TIMELINE, unless the claim moved on meanwhile. */
static int
record(const struct config *cfg, const char *node, long tl, bool switch_wal_done,
	   double t_start)
{
	struct ostate st;
	double		t0 = now_ms();
	int			fd = ostate_lock(cfg);

	if (fd < 0 || ostate_read(cfg, &st) != 0)
		return BHA_EXIT_FAIL;
	if (strcmp(st.node, node) != 0 || st.timeline != tl)
	{
		/* a new claim: its promote time, our switch-wal */
		snprintf(st.node, sizeof(st.node), "%s", node);
		st.timeline = tl;
		st.promote_ms = now_ms() - t_start;
		st.promoted_at = (long) time(NULL);
	}
	st.switch_wal_done = switch_wal_done;
	snprintf(st.streaming_dir, sizeof(st.streaming_dir), "%s", barman_known_dir());
	if (ostate_write(cfg, &st) != 0)
	{
		step("state", BHA_STEP_FAILED, now_ms() - t0, "cannot record %s", node);
		close(fd);
		return BHA_EXIT_FAIL;
	}
	step("state", BHA_STEP_OK, now_ms() - t0, "%s timeline %ld switch_wal %s", node, tl,
		 switch_wal_done ? "done" : "pending");
	close(fd);
	return BHA_EXIT_OK;
}

/*
 * Same NODE and TIMELINE as barman_ha_nat records: check, repair only what
 * is missing.  Barman's repair can take seconds (a dying primary's check
 * while the next primary's promote waits), so our lock is given back
 * before it.  An app endpoint that the watch closed because NODE's host is
 * silent stays closed: the watch opens it when the host answers.
 */
static int
recheck(const struct config *cfg, const struct nat_view *v, const char *node,
		long tl, int lock_fd, double t0)
{
	struct ostate st;
	bool		barman_ok = strcmp(v->target[0], node) == 0;
	bool		app_ok = strcmp(v->target[1], node) == 0;
	bool		running = true,
				switched,
				failed = false,
				watch_closed;
	char		watch_note[BHA_NAME_MAX + 64] = "";

	if (ostate_read(cfg, &st) != 0)
		return BHA_EXIT_FAIL;
	watch_closed = strcmp(v->target[1], "closed") == 0 && strcmp(st.watch_closed, node) == 0;
	if (watch_closed)
	{
		time_t		at = st.watch_closed_at;
		struct tm	tm;
		char		since[16] = "";

		app_ok = true;
		strftime(since, sizeof(since), "%H:%M:%S", localtime_r(&at, &tm));
		snprintf(watch_note, sizeof(watch_note), "; app endpoint closed by watch: %s silent since %s",
				 node, since);
	}
	switched = !barman_configured(cfg) ||
		(strcmp(st.node, node) == 0 && st.timeline == tl && st.switch_wal_done);
	if (barman_configured(cfg) && barman_receiving(cfg, &running) != 0)
		running = false;
	if (barman_ok && app_ok && running && switched)
	{
		step(BHA_STEP_CHECK, BHA_STEP_OK, now_ms() - t0, "%s%s", BHA_CHECK_ROUTED, watch_note);
		return BHA_EXIT_OK;
	}
	step(BHA_STEP_CHECK, BHA_STEP_OK, now_ms() - t0, "repairing:%s%s%s%s%s",
		 barman_ok ? "" : " barman endpoint", app_ok ? "" : " app endpoint",
		 running ? "" : " receive-wal", switched ? "" : " switch-wal", watch_note);
	close(lock_fd);
	if (!barman_ok && nat_step(cfg, "route_barman", "route", node, BHA_ENDPOINT_BARMAN) != 0)
		return BHA_EXIT_FAIL;
	if (!running && barman_stop_start(cfg) != 0)
		failed = true;
	if (!app_ok && nat_step(cfg, "route_app", "route", node, BHA_ENDPOINT_APP) != 0)
		return BHA_EXIT_FAIL;
	if (!failed && !switched)
	{
		if (barman_switch_wal(cfg) != 0 || record(cfg, node, tl, true, t0) != 0)
			failed = true;
	}
	return failed ? BHA_EXIT_FAIL : BHA_EXIT_OK;
}

int
cmd_promote(const struct config *cfg_in, const char *ssh_node,
			const char *nodename, const char *tlstr)
{
	struct config cfg = *cfg_in;
	struct nat_view v;
	const struct node *n;
	struct ostate st;
	long		tl;
	double		t0 = now_ms();
	bool		failed = false;
	struct claim_outcome claim = {0};
	char		detail[300];
	int			lock_fd, rc;

	if (!bha_valid_name(nodename))
	{
		errorf("invalid node name (see barman_ha_orchestrator --help)");
		return BHA_EXIT_USAGE;
	}
	if (parse_long(tlstr, 1, BHA_TIMELINE_MAX, &tl) != 0)
	{
		errorf("invalid timeline \"%.20s\": a number from 1 to %ld", tlstr, BHA_TIMELINE_MAX);
		return BHA_EXIT_USAGE;
	}
	if (ssh_node != NULL && strcmp(ssh_node, nodename) != 0)
	{
		errorf("this ssh key belongs to node %s, not %s", ssh_node, nodename);
		return BHA_EXIT_USAGE;
	}
	if ((lock_fd = ostate_lock(&cfg)) < 0 || nat_show(&cfg, &v) != 0 ||
		ostate_read(&cfg, &st) != 0)
		return BHA_EXIT_FAIL;
	if ((n = view_node(&v, nodename)) == NULL)
	{
		errorf("unknown node \"%s\" (not in barman_ha_nat's configuration)", nodename);
		return BHA_EXIT_USAGE;
	}
	if (cfg.barman_conninfo[0] == '\0')
	{
		char		a[INET_ADDRSTRLEN],
					na[INET_ADDRSTRLEN];

		/* the Barman endpoint, which must answer with the claimant's certificate */
		inet_ntop(AF_INET, &v.backup_address, a, sizeof(a));
		inet_ntop(AF_INET, &n->addr, na, sizeof(na));
		snprintf(cfg.barman_conninfo, sizeof(cfg.barman_conninfo),
				 "host=%s hostaddr=%s port=%u %s connect_timeout=5",
				 na, a, v.ports[0], DEFAULT_BARMAN_CONNINFO);
	}
	if (st.streaming_dir[0] && !cfg.streaming_dir[0])
		barman_remember_dir(st.streaming_dir);
	/*
	 * A standing receive-wal for the next claim, kept by the level check;
	 * when none stands (the first claim), Barman's import overlaps the check.
	 */
	warm_keep(&cfg);
	if (v.routed && strcmp(v.routed_node, n->name) == 0 && v.routed_timeline == tl)
		return recheck(&cfg, &v, n->name, tl, lock_fd, t0);

	/* barman_ha_nat decides; refusing here only spares the node a probe */
	if (v.routed && tl <= v.routed_timeline)
	{
		step("fence", BHA_STEP_FAILED, now_ms() - t0, "endpoints belong to %s on timeline %ld",
			 v.routed_node, v.routed_timeline);
		errorf("fenced: %s on timeline %ld is refused, the endpoints belong to %s on timeline %ld",
			   n->name, tl, v.routed_node, v.routed_timeline);
		return BHA_EXIT_FENCED;
	}
	if (cfg.claim_check)
	{
		double		t1 = now_ms();

		rc = claim_check(&cfg, &v, n, tl, detail, sizeof(detail), &claim);
		step("claim_check", rc == BHA_EXIT_OK ? BHA_STEP_OK : BHA_STEP_FAILED,
			 now_ms() - t1, "%s", detail);
		if (rc != BHA_EXIT_OK)
		{
			errorf("%s: claim of %s on timeline %ld not confirmed: %s",
				   rc == BHA_EXIT_FENCED ? "fenced" : "failed", n->name, tl, detail);
			return rc;
		}
	}
	else
		step("claim_check", BHA_STEP_SKIPPED, 0, "claim_check = off");

	snprintf(detail, sizeof(detail), "%ld", tl);
	if ((rc = nat_step(&cfg, "fence", "claim", n->name, detail)) != BHA_EXIT_OK)
		return rc;

	/* after the fence its flows are gone too: a grace would only be waited out */
	if (claim.routed_silent)
		cfg.stop_grace_ms = 0;
	if (barman_configured(&cfg))
		failed = barman_restart(&cfg, &claim.claimant) != 0;
	else
		step("barman_reset", BHA_STEP_SKIPPED, 0, "barman_server not set");

	/* while receive-wal's Python starts */
	if (nat_step(&cfg, "route_app", "route", n->name, BHA_ENDPOINT_APP) != BHA_EXIT_OK)
		return BHA_EXIT_FAIL;

	if (barman_configured(&cfg) && !failed)
		failed = barman_streaming(&cfg) != 0;
	if (barman_configured(&cfg) && !failed)
		failed = barman_switch_wal(&cfg) != 0;
	else if (failed)
		step("switch_wal", BHA_STEP_SKIPPED, 0, "%s failed", barman_failed_step());
	close(lock_fd);
	if (record(&cfg, n->name, tl, !failed, t0) != BHA_EXIT_OK)
		return BHA_EXIT_FAIL;
	if (failed)
	{
		errorf("promote %s: endpoints moved, but Barman is not streaming from it yet (retry)",
			   n->name);
		return BHA_EXIT_FAIL;
	}
	return BHA_EXIT_OK;
}
