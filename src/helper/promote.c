/*-------------------------------------------------------------------------
 *
 * promote.c
 *	  `promote NODE TIMELINE`: the ordered sequence run on the backup host
 *	  when a node becomes primary, one `step` line per action on stdout:
 *		claim_check -> fence -> route_barman -> conntrack_barman ->
 *		barman_stop -> barman_start -> barman_caught_up -> route_app ->
 *		conntrack_app -> switch_wal -> state
 *	  switch_wal comes after the app route on purpose: once Barman streams
 *	  and has caught up, synchronous commits flow; `switch-wal --archive`
 *	  then only confirms archiving and takes 8-20 s on an idle server, which
 *	  the applications need not wait for.
 *
 *	  The worker calls promote again every reconcile interval as its level
 *	  check, so the same NODE and TIMELINE must be cheap: one lock and read
 *	  of the nat table and a /proc scan, then `step check ok`.  What is
 *	  missing (a route after a reboot, receive-wal, a switch-wal that failed)
 *	  is repaired alone, never a second switch-wal for the same timeline.
 *
 *-------------------------------------------------------------------------
 */
#include "helper.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int
route_step(const struct config *cfg, const struct node *n, enum endpoint ep,
		   bool *changed)
{
	double		t0 = now_ms();
	char		sname[32], cname[32];
	int			removed = 0;

	snprintf(sname, sizeof(sname), "route_%s", endpoint_names[ep]);
	snprintf(cname, sizeof(cname), "conntrack_%s", endpoint_names[ep]);
	if (nat_route(cfg, n, 1 << ep, changed) != 0)
	{
		step(sname, "failed", now_ms() - t0, "cannot route %s to %s", endpoint_names[ep], n->name);
		return -1;
	}
	step(sname, "ok", now_ms() - t0, "%s %s", n->name, *changed ? "routed" : "already routed");
	t0 = now_ms();
	if (conntrack_flush(cfg, 1 << ep, n, &removed) != 0)
	{
		step(cname, "failed", now_ms() - t0, "cannot remove old flows");
		return -1;
	}
	step(cname, "ok", now_ms() - t0, "%d flow%s removed", removed, removed == 1 ? "" : "s");
	return 0;
}

/*
 * Record switch_wal=done for NODE and TIMELINE, under the lock again: the
 * claim may have passed to another node while Barman was being repaired.
 */
static int
record_switch_wal(const struct config *cfg, const struct state *mine)
{
	struct state now;
	double		t1 = now_ms();

	if (state_lock(cfg) < 0 || state_read(cfg, &now) != 0)
		return EXIT_FAIL;
	if (!now.exists || strcmp(now.node, mine->node) != 0 || now.timeline != mine->timeline)
	{
		step("state", "skipped", now_ms() - t1, "the endpoints went to %s meanwhile", now.node);
		return EXIT_OK;
	}
	now.switch_wal_done = true;
	snprintf(now.streaming_dir, sizeof(now.streaming_dir), "%s", barman_known_dir());
	if (state_write(cfg, &now) != 0)
	{
		step("state", "failed", now_ms() - t1, "cannot write %s", cfg->state_file);
		return EXIT_FAIL;
	}
	step("state", "ok", now_ms() - t1, "%s timeline %ld switch_wal done", now.node, now.timeline);
	return EXIT_OK;
}

/*
 * Same NODE and TIMELINE as recorded: check, repair only what is missing.
 * Routes are checked and put back under the lock; Barman's repair runs
 * after the lock is given back (lock_fd closed), because it can take
 * seconds, for instance when this node has just died and a promote of the
 * next primary is waiting for the lock.
 */
static int
recheck(const struct config *cfg, const struct node *n, struct state *st, double t0,
		int lock_fd)
{
	bool		changed = false,
				running = true;
	bool		failed = false;

	if (nat_route(cfg, n, EP_MASK_BOTH, &changed) != 0)
	{
		step("check", "failed", now_ms() - t0, "cannot read or repair the nat table");
		return EXIT_FAIL;
	}
	if (barman_configured(cfg) && barman_receiving(cfg, &running) != 0)
		running = false;
	if (!changed && running && (st->switch_wal_done || !barman_configured(cfg)))
	{
		step("check", "ok", now_ms() - t0, "routed");
		return EXIT_OK;
	}
	step("check", "ok", now_ms() - t0, "repairing:%s%s%s", changed ? " routes" : "",
		 running ? "" : " receive-wal", st->switch_wal_done ? "" : " switch-wal");
	if (changed)
	{
		/* nat_route above already put both rules back in one commit */
		int			removed = 0;
		double		t1 = now_ms();

		if (conntrack_flush(cfg, EP_MASK_BOTH, n, &removed) != 0)
		{
			step("conntrack", "failed", now_ms() - t1, "cannot remove old flows");
			failed = true;
		}
		else
			step("conntrack", "ok", now_ms() - t1, "%d flows removed", removed);
	}
	close(lock_fd);
	if (barman_configured(cfg))
	{
		if (!running && barman_stop_start(cfg) != 0)
			failed = true;
		if (!failed && !st->switch_wal_done)
		{
			if (barman_switch_wal(cfg) != 0 || record_switch_wal(cfg, st) != EXIT_OK)
				failed = true;
		}
	}
	return failed ? EXIT_FAIL : EXIT_OK;
}

int
cmd_promote(const struct config *cfg, const struct caller *who,
			const char *nodename, const char *tlstr)
{
	const struct node *n;
	struct state st;
	long		tl;
	double		t0 = now_ms();
	bool		changed, failed = false;
	char		detail[300];
	int			lock_fd;

	if (!valid_name(nodename))
	{
		errorf("invalid node name (see barman_ha_helper --help)");
		return EXIT_USAGE;
	}
	if ((n = config_node(cfg, nodename)) == NULL)
	{
		errorf("unknown node \"%s\" (not in %s)", nodename, cfg->path);
		return EXIT_USAGE;
	}
	if (parse_long(tlstr, 1, 0x7fffffffL, &tl) != 0)
	{
		errorf("invalid timeline \"%.20s\": a number from 1 to 2147483647", tlstr);
		return EXIT_USAGE;
	}
	if (who->from_ssh && strcmp(who->ssh_node, n->name) != 0)
	{
		errorf("this ssh key belongs to node %s, not %s",
			   who->ssh_node[0] ? who->ssh_node : "(none)", n->name);
		return EXIT_USAGE;
	}
	/* held until we exit (but see recheck): the whole promote is one decision */
	if ((lock_fd = state_lock(cfg)) < 0 || state_read(cfg, &st) != 0)
		return EXIT_FAIL;

	if (st.streaming_dir[0] && !cfg->streaming_dir[0])
		barman_remember_dir(st.streaming_dir);
	if (st.exists && strcmp(st.node, n->name) == 0 && st.timeline == tl)
		return recheck(cfg, n, &st, t0, lock_fd);

	/* Fencing: the first claim of a timeline wins, lower ones never do. */
	if (st.exists && (tl < st.timeline || tl == st.timeline))
	{
		if (!who->force)
		{
			step("fence", "failed", now_ms() - t0, "endpoints belong to %s on timeline %ld",
				 st.node, st.timeline);
			errorf("fenced: %s on timeline %ld is refused, the endpoints belong to %s on timeline %ld",
				   n->name, tl, st.node, st.timeline);
			return EXIT_FENCED;
		}
		logmsg(3, "forced promote of %s timeline %ld over %s timeline %ld",
			   n->name, tl, st.node, st.timeline);
	}

	if (cfg->claim_check)
	{
		double		t1 = now_ms();
		int			rc = claim_check(cfg, n, tl, detail, sizeof(detail));

		step("claim_check", rc == EXIT_OK ? "ok" : "failed", now_ms() - t1, "%s", detail);
		if (rc != EXIT_OK)
		{
			errorf("%s: claim of %s on timeline %ld not confirmed by the node: %s",
				   rc == EXIT_FENCED ? "fenced" : "failed", n->name, tl, detail);
			return rc;
		}
	}
	else
		step("claim_check", "skipped", 0, "claim_check = off");

	/* Record the claim first: from here on, nobody else wins this timeline. */
	snprintf(detail, sizeof(detail), "%s on timeline %ld%s", n->name, tl,
			 who->force ? " (forced)" : "");
	memset(&st, 0, sizeof(st));
	snprintf(st.node, sizeof(st.node), "%s", n->name);
	st.timeline = tl;
	st.switch_wal_done = !barman_configured(cfg);
	if (state_write(cfg, &st) != 0)
	{
		step("fence", "failed", now_ms() - t0, "cannot record %s", detail);
		return EXIT_FAIL;
	}
	step("fence", "ok", now_ms() - t0, "%s", detail);

	if (route_step(cfg, n, EP_BARMAN, &changed) != 0)
		return EXIT_FAIL;

	if (barman_configured(cfg))
	{
		if (barman_stop_start(cfg) != 0)
			failed = true;
	}
	else
		step("barman_reset", "skipped", 0, "barman_server not set");

	if (route_step(cfg, n, EP_APP, &changed) != 0)
		return EXIT_FAIL;

	if (barman_configured(cfg))
	{
		if (!failed && barman_switch_wal(cfg) == 0)
			st.switch_wal_done = true;
		else
		{
			if (failed)
				step("switch_wal", "skipped", 0, "%s failed", barman_failed_step());
			failed = true;
		}
	}

	t0 = now_ms();
	snprintf(st.streaming_dir, sizeof(st.streaming_dir), "%s", barman_known_dir());
	if (state_write(cfg, &st) != 0)
	{
		step("state", "failed", now_ms() - t0, "cannot write %s", cfg->state_file);
		return EXIT_FAIL;
	}
	step("state", "ok", now_ms() - t0, "%s timeline %ld switch_wal %s", st.node, st.timeline,
		 st.switch_wal_done ? "done" : "pending");
	if (failed)
	{
		errorf("promote %s: routes moved, but Barman is not streaming from it yet (retry)",
			   n->name);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
