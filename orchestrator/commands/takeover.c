/*-------------------------------------------------------------------------
 *
 * takeover.c
 *	  `takeover`: run by keepalived's notify script on the backup host that
 *	  has just taken the virtual address of a backup host pair.  Its own
 *	  record of the endpoints may be stale (the peer moved them while this
 *	  host was away), so before it routes anything it asks every node
 *	  itself the claim check's question (node_ask.c), each in a process of
 *	  its own within claim_timeout_ms: the nodes are the source of truth,
 *	  both hosts ask the same nodes and so come to the same answer, and a
 *	  primary left behind on an older timeline never gets the endpoints
 *	  back through the host that missed its demotion.
 *
 *	  The decision: the primary with the highest timeline among the nodes
 *	  that answer.  Refused (exit 3) when two primaries answer on that
 *	  timeline, or when a node that answers is on a higher timeline than
 *	  every primary (that timeline's primary is silent: a primary found is
 *	  an old one); failed (exit 1) when no primary answers.  Then the claim
 *	  is recorded through barman_ha_nat (its fence refuses a timeline below
 *	  the one it holds) and the promote table's level check routes what is
 *	  missing: on the host without Barman its rows are skipped.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct takeover_found
{
	struct node_answer node[MAX_NODES];
};

struct takeover_args
{
	const struct config *cfg;
	const struct nat_view *v;
	struct takeover_found *found;	/* shared with the parent */
};

static struct run_result res;

/*
 * Runs in a child (run.c): every node at once, one process each, each
 * bounded by itself; a node whose process does not end in time stays
 * unclear.
 */
static int
ask_child(void *p)
{
	struct takeover_args *a = p;
	char		conninfo[700];

	for (int i = 0; i < a->v->nnodes; i++)
	{
		node_conninfo(a->cfg, &a->v->nodes[i], "barman_ha_takeover", conninfo, sizeof(conninfo));
		node_ask_start(conninfo, &a->v->nodes[i], a->cfg->probe_connect_ms,
					   a->cfg->claim_timeout_ms, &a->found->node[i]);
	}
	while (wait(NULL) > 0 || errno == EINTR)
		;
	return BHA_EXIT_OK;
}

/*
 * The decision over what the nodes said: the index of the node to route
 * to, or -1 with msg saying why and *rc the exit code.
 */
static int
decide(const struct nat_view *v, const struct takeover_found *f, int *rc,
	   char *msg, size_t len)
{
	int			best = -1,
				twins = 0;
	unsigned	top = 0;

	for (int i = 0; i < v->nnodes; i++)
	{
		const struct node_answer *n = &f->node[i];

		if (n->kind != NODE_PRIMARY && n->kind != NODE_STANDBY)
			continue;
		if (n->tli > top)
			top = n->tli;
		if (n->kind != NODE_PRIMARY)
			continue;
		if (best < 0 || n->tli > f->node[best].tli)
		{
			best = i;
			twins = 0;
		}
		else if (n->tli == f->node[best].tli)
			twins++;
	}
	*rc = BHA_EXIT_FENCED;
	if (best < 0)
	{
		*rc = BHA_EXIT_FAIL;
		snprintf(msg, len, "no node answers as a primary");
	}
	else if (twins > 0)
		snprintf(msg, len, "%d primaries answer on timeline %u", twins + 1, f->node[best].tli);
	else if (top > f->node[best].tli)
		snprintf(msg, len, "a node is on timeline %u, above primary %s's %u: that "
				 "timeline's primary does not answer", top, v->nodes[best].name,
				 f->node[best].tli);
	else if (v->routed && v->routed_timeline > (long) f->node[best].tli)
		snprintf(msg, len, "barman_ha_nat holds %s on timeline %ld, above primary %s's %u",
				 v->routed_node, v->routed_timeline, v->nodes[best].name, f->node[best].tli);
	else
		return *rc = BHA_EXIT_OK, best;
	return -1;
}

int
cmd_takeover(const struct config *cfg)
{
	static struct takeover_found *found;
	struct takeover_args a = {.cfg = cfg};
	struct nat_view v;
	double		t0 = now_ms();
	char		msg[300],
				tl[24],
				said[sizeof(msg) + 16 * (BHA_NAME_MAX + 20)] = "";
	int			rc,
				best;

	if (nat_show(cfg, &v) != 0)
		return BHA_EXIT_FAIL;
	if (found == NULL &&
		(found = mmap(NULL, sizeof(*found), PROT_READ | PROT_WRITE,
					  MAP_SHARED | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
	{
		found = NULL;
		errorf("takeover: cannot ask the nodes: out of memory");
		return BHA_EXIT_FAIL;
	}
	memset(found, 0, sizeof(*found));
	a.v = &v;
	a.found = found;
	if (run_child(cfg->claim_timeout_ms + cfg->probe_connect_ms + 2000,
				  ask_child, &a, &res) != 0 || res.status != BHA_EXIT_OK)
	{
		step("takeover_ask", BHA_STEP_FAILED, now_ms() - t0, "the nodes' answers did not come");
		errorf("takeover: the nodes' answers did not come");
		return BHA_EXIT_FAIL;
	}
	for (int i = 0; i < v.nnodes; i++)
	{
		const struct node_answer *n = &found->node[i];
		size_t		o = strlen(said);

		if (n->kind == NODE_PRIMARY || n->kind == NODE_STANDBY)
			snprintf(said + o, sizeof(said) - o, "%s%s %s timeline %u", o ? "; " : "",
					 v.nodes[i].name, node_kind_name(n->kind), n->tli);
		else
			snprintf(said + o, sizeof(said) - o, "%s%s %s (%.60s)", o ? "; " : "",
					 v.nodes[i].name, node_kind_name(n->kind), n->why);
	}
	best = decide(&v, found, &rc, msg, sizeof(msg));
	step("takeover_ask", best >= 0 ? BHA_STEP_OK : BHA_STEP_FAILED, now_ms() - t0, "%s", said);
	if (best < 0)
	{
		errorf("%stakeover refused: %s", rc == BHA_EXIT_FENCED ? "fenced: " : "", msg);
		return rc;
	}
	snprintf(tl, sizeof(tl), "%u", found->node[best].tli);
	if (!v.routed || strcmp(v.routed_node, v.nodes[best].name) != 0 ||
		v.routed_timeline != (long) found->node[best].tli)
	{
		char		reply[300];
		double		t1 = now_ms();

		rc = nat_call(cfg, reply, sizeof(reply), "claim", v.nodes[best].name, tl);
		step("takeover_fence", rc == BHA_EXIT_OK ? BHA_STEP_OK : BHA_STEP_FAILED,
			 now_ms() - t1, "%s", reply);
		if (rc != BHA_EXIT_OK)
		{
			errorf("%stakeover of %s on timeline %s: %s", rc == BHA_EXIT_FENCED ? "fenced: " : "",
				   v.nodes[best].name, tl, reply);
			return rc;
		}
	}
	return cmd_promote(cfg, NULL, v.nodes[best].name, tl);
}
