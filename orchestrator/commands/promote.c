/*-------------------------------------------------------------------------
 *
 * promote.c
 *	  `promote NODE TIMELINE`: the sequence run on the backup host when a
 *	  node becomes primary, as one table (promote_steps below, printed by
 *	  `status --steps`): per row its name, how to tell it is done, how to
 *	  do it.  One runner steps through it, for the first claim and for the
 *	  level check alike: a row that is done is passed over, so the level
 *	  check redoes exactly what is missing.  One `step` line per action on
 *	  stdout, in the table's order.
 *
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
 *	  switch_wal comes last: it only confirms archiving.
 *
 *	  The worker calls promote again every reconcile interval as its level
 *	  check, so the same NODE and TIMELINE must be cheap: one `show` and a
 *	  /proc scan, then `step check ok routed`.  What is missing (a route
 *	  after a reboot, receive-wal, an app endpoint still closed, a
 *	  switch-wal that failed) is repaired alone, under NODE's lock only:
 *	  another node's promote does not wait for a repair of Barman.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One promote: what was found when it began, and what it did. */
struct promote
{
	struct config cfg;
	const struct node *n;
	long		tl;
	double		t0;
	struct nat_view v;
	struct ostate st;
	bool		level;			/* NODE held the endpoints on TL already */
	bool		receiving;		/* a receive-wal ran when we began */
	bool		watch_closed;	/* the watch keeps NODE's app endpoint closed */
	struct claim_outcome claim;
	bool		barman_failed;	/* the later Barman rows are skipped */
	const char *failed;			/* the step that failed: last_error names it */
	bool		switched_now;	/* switch_wal ran and succeeded */
	int			lock_fd;		/* the record's lock, around a new claim's Barman rows */
};

typedef bool (*step_done_fn) (const struct promote *p);
typedef int (*step_run_fn) (struct promote *p);

/* A row of the table; run returns a BHA_EXIT_* code. */
struct promote_step
{
	const char *name;
	const char *lines;			/* the step lines it prints */
	const char *missing;		/* said by the level check when not done */
	bool		barman;			/* needs barman_server; skipped after a Barman failure */
	step_done_fn done;
	const char *done_when;
	step_run_fn run;
	const char *action;
};

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

/* ---- how to tell a row is done */

static bool
claim_recorded(const struct promote *p)
{
	return p->level;
}

static bool
barman_routed(const struct promote *p)
{
	return strcmp(p->v.target[0], p->n->name) == 0 || !p->level;
}

/* the first claim's fence closes the app endpoint: route_app opens it */
static bool
app_routed(const struct promote *p)
{
	return p->level && (strcmp(p->v.target[1], p->n->name) == 0 || p->watch_closed);
}

/* a receive-wal of the claim before ours streams from the old primary */
static bool
barman_streams(const struct promote *p)
{
	return p->level && p->receiving;
}

static bool
switch_done(const struct promote *p)
{
	return strcmp(p->st.node, p->n->name) == 0 && p->st.timeline == p->tl &&
		p->st.switch_wal_done;
}

/* a new claim is recorded always, a level check after a switch-wal */
static bool
state_recorded(const struct promote *p)
{
	return p->level && !p->switched_now;
}

/* ---- how to do it */

static int
run_claim_check(struct promote *p)
{
	char		detail[300];
	double		t1 = now_ms();
	int			rc;

	if (!p->cfg.claim_check)
	{
		step("claim_check", BHA_STEP_SKIPPED, 0, "claim_check = off");
		return BHA_EXIT_OK;
	}
	rc = claim_check(&p->cfg, &p->v, p->n, p->tl, detail, sizeof(detail), &p->claim);
	step("claim_check", rc == BHA_EXIT_OK ? BHA_STEP_OK : BHA_STEP_FAILED,
		 now_ms() - t1, "%s", detail);
	if (rc != BHA_EXIT_OK)
		errorf("%s: claim of %s on timeline %ld not confirmed: %s",
			   rc == BHA_EXIT_FENCED ? "fenced" : "failed", p->n->name, p->tl, detail);
	return rc;
}

static int
run_fence(struct promote *p)
{
	char		tl[24];
	int			rc;

	snprintf(tl, sizeof(tl), "%ld", p->tl);
	if ((rc = nat_step(&p->cfg, "fence", "claim", p->n->name, tl)) != BHA_EXIT_OK)
		return rc;
	/* after the fence the old stream's flows are gone too: no grace to wait out */
	if (p->claim.routed_silent)
		p->cfg.stop_grace_ms = 0;
	/* Barman is one: a newer claim's Barman rows wait for ours (bounded) */
	if (barman_configured(&p->cfg) && (p->lock_fd = ostate_lock(&p->cfg)) < 0)
	{
		p->barman_failed = true;
		p->failed = "the record's lock";
	}
	return BHA_EXIT_OK;
}

static int
run_route_barman(struct promote *p)
{
	return nat_step(&p->cfg, "route_barman", "route", p->n->name, BHA_ENDPOINT_BARMAN);
}

static int
run_barman_restart(struct promote *p)
{
	return barman_restart(&p->cfg, p->level ? NULL : &p->claim.claimant) == 0 ?
		BHA_EXIT_OK : BHA_EXIT_FAIL;
}

static int
run_route_app(struct promote *p)
{
	return nat_step(&p->cfg, "route_app", "route", p->n->name, BHA_ENDPOINT_APP);
}

static int
run_barman_streaming(struct promote *p)
{
	return barman_streaming(&p->cfg) == 0 ? BHA_EXIT_OK : BHA_EXIT_FAIL;
}

static int
run_switch_wal(struct promote *p)
{
	if (barman_switch_wal(&p->cfg) != 0)
		return BHA_EXIT_FAIL;
	p->switched_now = true;
	return BHA_EXIT_OK;
}

/* Record what is done for NODE/TIMELINE, unless the claim moved on meanwhile. */
static int
run_state(struct promote *p)
{
	struct ostate st;
	double		t0 = now_ms();
	bool		switched = p->switched_now || !barman_configured(&p->cfg);
	int			fd;

	if (p->lock_fd >= 0)
		close(p->lock_fd);
	p->lock_fd = -1;
	if ((fd = ostate_lock(&p->cfg)) < 0 || ostate_read(&p->cfg, &st) != 0)
		return BHA_EXIT_FAIL;
	if (strcmp(st.node, p->n->name) != 0 || st.timeline != p->tl)
	{
		/* a new claim: its promote time, our switch-wal */
		snprintf(st.node, sizeof(st.node), "%s", p->n->name);
		st.timeline = p->tl;
		st.promote_ms = now_ms() - p->t0;
		st.promoted_at = (long) time(NULL);
	}
	st.switch_wal_done = switched;
	snprintf(st.streaming_dir, sizeof(st.streaming_dir), "%s", barman_known_dir());
	if (ostate_write(&p->cfg, &st) != 0)
	{
		step("state", BHA_STEP_FAILED, now_ms() - t0, "cannot record %s", p->n->name);
		close(fd);
		return BHA_EXIT_FAIL;
	}
	step("state", BHA_STEP_OK, now_ms() - t0, "%s timeline %ld switch_wal %s", p->n->name,
		 p->tl, switched ? "done" : "pending");
	close(fd);
	return BHA_EXIT_OK;
}

/* The order of work, reviewable in one place. */
static const struct promote_step promote_steps[] = {
	{"claim_check", "claim_check", NULL, false, claim_recorded,
		"NODE holds the endpoints on TIMELINE (barman_ha_nat show)",
	run_claim_check, "ask NODE and the routed primary (claim.c); refused: stop"},
	{"fence", "fence", NULL, false, claim_recorded,
		"as claim_check",
	run_fence, "barman_ha_nat claim NODE TIMELINE: record, Barman endpoint to NODE, app endpoint closed"},
	{"route_barman", "route_barman", "barman endpoint", false, barman_routed,
		"the Barman endpoint leads to NODE (the fence moves it)",
	run_route_barman, "barman_ha_nat route NODE barman"},
	{"barman_restart", "barman_stop barman_fork", "receive-wal", true, barman_streams,
		"a level check, and receive-wal runs",
	run_barman_restart, "end the old stream by pid, set WAL past the fork point aside, "
	"let receive-wal start (detached)"},
	{"route_app", "route_app", "app endpoint", false, app_routed,
		"a level check, and the app endpoint leads to NODE or the watch keeps it closed",
	run_route_app, "barman_ha_nat route NODE app, while receive-wal's Python starts"},
	{"barman_streaming", "barman_start barman_caught_up", NULL, true, barman_streams,
		"as barman_restart",
	run_barman_streaming, "wait for pg_receivewal, then for Barman's flush to reach NODE's"},
	{"switch_wal", "checkpoint switch_wal", "switch-wal", true, switch_done,
		"the record says switch-wal done for NODE on TIMELINE",
	run_switch_wal, "CHECKPOINT on NODE (its control file names the new timeline: pg_rewind "
	"needs it), then barman switch-wal --archive: archiving confirmed"},
	{"state", "state", NULL, false, state_recorded,
		"a level check that ran no switch-wal",
	run_state, "write the record: NODE, TIMELINE, promote time, switch-wal done"},
};

#define NSTEPS ((int) (sizeof(promote_steps) / sizeof(promote_steps[0])))

/*
 * Whether row i is still to do for what the promote found: not done, and
 * not a Barman row where no barman_server is set.  The level check's
 * `repairing:` list and the runner both ask it, so they cannot disagree.
 */
static bool
step_pending(const struct promote *p, int i, bool barman)
{
	return (barman || !promote_steps[i].barman) && !promote_steps[i].done(p);
}

/* `status --steps`: the table as the operator reads it. */
void
print_promote_steps(void)
{
	for (int i = 0; i < NSTEPS; i++)
		printf("%d. %s (step lines: %s)%s\n   done when: %s\n   does: %s\n", i + 1,
			   promote_steps[i].name, promote_steps[i].lines,
			   promote_steps[i].barman ? " [Barman]" : "", promote_steps[i].done_when,
			   promote_steps[i].action);
}

/*
 * The runner.  A level check first says what it found: `routed`, or what
 * it will repair.  A row that fails stops the run, except a Barman row:
 * the endpoints still move, the later Barman rows are skipped, and the
 * exit code says to retry.
 */
static int
run_steps(struct promote *p)
{
	char		missing[200] = "",
				watch_note[BHA_NAME_MAX + 64] = "";
	bool		barman = barman_configured(&p->cfg),
				barman_said = p->level;

	if (p->watch_closed)
	{
		time_t		at = p->st.watch_closed_at;
		struct tm	tm;
		char		since[16] = "";

		strftime(since, sizeof(since), "%H:%M:%S", localtime_r(&at, &tm));
		snprintf(watch_note, sizeof(watch_note), "; app endpoint closed by watch: %s silent since %s",
				 p->n->name, since);
	}
	if (p->level)
	{
		for (int i = 0; i < NSTEPS; i++)
			if (promote_steps[i].missing && step_pending(p, i, barman))
				snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), " %s",
						 promote_steps[i].missing);
		if (missing[0] == '\0')
		{
			step(BHA_STEP_CHECK, BHA_STEP_OK, now_ms() - p->t0, "%s%s", BHA_CHECK_ROUTED, watch_note);
			return BHA_EXIT_OK;
		}
		step(BHA_STEP_CHECK, BHA_STEP_OK, now_ms() - p->t0, "repairing:%s%s", missing, watch_note);
	}
	for (int i = 0; i < NSTEPS; i++)
	{
		const struct promote_step *s = &promote_steps[i];
		int			rc;

		if (!step_pending(p, i, barman))
		{
			if (s->barman && !barman && !s->done(p) && !barman_said)
			{
				step("barman_reset", BHA_STEP_SKIPPED, 0, "barman_server not set");
				barman_said = true;
			}
			continue;
		}
		if (s->barman && p->barman_failed)
		{
			if (strcmp(s->name, "switch_wal") == 0)
				step("switch_wal", BHA_STEP_SKIPPED, 0, "%s failed", p->failed);
			continue;
		}
		rc = s->run(p);
		if (rc != BHA_EXIT_OK && s->barman)
		{
			/* a row of several steps says which of them failed */
			p->barman_failed = true;
			p->failed = barman_failed_step()[0] ? barman_failed_step() : s->name;
		}
		else if (rc != BHA_EXIT_OK)
			return rc;
	}
	if (p->barman_failed && strcmp(p->failed, "switch_wal") == 0)
	{
		errorf("promote %s: endpoints moved and Barman streams from it, but switch_wal failed "
			   "(retry): archiving not confirmed", p->n->name);
		return BHA_EXIT_FAIL;
	}
	if (p->barman_failed)
	{
		errorf("promote %s: endpoints moved, but %s failed: Barman is not streaming from it yet "
			   "(retry)", p->n->name, p->failed);
		return BHA_EXIT_FAIL;
	}
	return BHA_EXIT_OK;
}

int
cmd_promote(const struct config *cfg, const char *ssh_node,
			const char *nodename, const char *tlstr)
{
	static struct promote p;
	int			node_fd;

	memset(&p, 0, sizeof(p));
	p.cfg = *cfg;
	p.t0 = now_ms();
	p.lock_fd = -1;
	if (!bha_valid_name(nodename))
	{
		errorf("invalid node name (see barman_ha_orchestrator --help)");
		return BHA_EXIT_USAGE;
	}
	if (parse_long(tlstr, 1, BHA_TIMELINE_MAX, &p.tl) != 0)
	{
		errorf("invalid timeline \"%.20s\": a number from 1 to %ld", tlstr, BHA_TIMELINE_MAX);
		return BHA_EXIT_USAGE;
	}
	if (ssh_node != NULL && strcmp(ssh_node, nodename) != 0)
	{
		errorf("this ssh key belongs to node %s, not %s", ssh_node, nodename);
		return BHA_EXIT_USAGE;
	}
	/* held to our exit: this node's requests one at a time, no one else's */
	if ((node_fd = node_lock(&p.cfg, nodename)) < 0 || nat_show(&p.cfg, &p.v) != 0 ||
		ostate_read(&p.cfg, &p.st) != 0)
		return BHA_EXIT_FAIL;
	if ((p.n = view_node(&p.v, nodename)) == NULL)
	{
		errorf("unknown node \"%s\" (not in barman_ha_nat's configuration)", nodename);
		return BHA_EXIT_USAGE;
	}
	if (p.cfg.barman_conninfo[0] == '\0')
	{
		char		a[INET_ADDRSTRLEN],
					na[INET_ADDRSTRLEN];

		/* the Barman endpoint, which must answer with the claimant's certificate */
		inet_ntop(AF_INET, &p.v.backup_address, a, sizeof(a));
		inet_ntop(AF_INET, &p.n->addr, na, sizeof(na));
		snprintf(p.cfg.barman_conninfo, sizeof(p.cfg.barman_conninfo),
				 "host=%s hostaddr=%s port=%u %s connect_timeout=5",
				 na, a, p.v.ports[0], DEFAULT_BARMAN_CONNINFO);
	}
	if (p.st.streaming_dir[0] && !p.cfg.streaming_dir[0])
		barman_remember_dir(p.st.streaming_dir);

	/*
	 * A standing receive-wal for the next claim, kept by the level check;
	 * when none stands (the first claim), Barman's import overlaps the check.
	 */
	warm_keep(&p.cfg);
	p.level = p.v.routed && strcmp(p.v.routed_node, p.n->name) == 0 && p.v.routed_timeline == p.tl;
	if (p.level)
	{
		p.watch_closed = strcmp(p.v.target[1], "closed") == 0 &&
			strcmp(p.st.watch_closed, p.n->name) == 0;
		if (barman_configured(&p.cfg) && barman_receiving(&p.cfg, &p.receiving) != 0)
			p.receiving = false;
	}
	else if (p.v.routed && p.tl <= p.v.routed_timeline)
	{
		/* barman_ha_nat decides; refusing here only spares the node a probe */
		step("fence", BHA_STEP_FAILED, now_ms() - p.t0, "endpoints belong to %s on timeline %ld",
			 p.v.routed_node, p.v.routed_timeline);
		errorf("fenced: %s on timeline %ld is refused, the endpoints belong to %s on timeline %ld",
			   p.n->name, p.tl, p.v.routed_node, p.v.routed_timeline);
		return BHA_EXIT_FENCED;
	}
	return run_steps(&p);
}
