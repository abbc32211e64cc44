/*-------------------------------------------------------------------------
 *
 * claim_verdict.c
 *	  The claim check's two decisions, apart from the network so that they
 *	  can be read in one place and tested by table (test/unit):
 *
 *	  - claimant_verdict: does what NODE says of itself support its claim
 *		"primary on timeline T"?  It must not be in recovery, must be on T,
 *		T may lie at most max_timeline past the routed timeline, and its
 *		history must contain the routed timeline.
 *	  - routed_verdict: may the endpoints leave the node that holds them?
 *		The check fails closed: only evidence that the routed primary can
 *		no longer commit lets them go.  That evidence is a host that gives
 *		no TCP answer within probe_connect_ms (gone or cut off), a refused
 *		connection (nothing listens: kill -9, stopped), or the answer that
 *		it is in recovery.  A routed primary that answers as primary keeps
 *		them (refused, 3).  Anything else -- authentication failed, too many
 *		connections, an error reply, a stall after the handshake, a reply of
 *		the wrong shape -- says nothing about whether it still commits, so
 *		the claim is not confirmed (1) and the worker asks again with
 *		back-off; root's barman_ha_nat claim --force stays the way out.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <stdio.h>

/* node_ask.c's names, but a silent routed primary is gone */
const char *
routed_answer_name(enum node_kind k)
{
	return k == NODE_SILENT ? "gone" : node_kind_name(k);
}

/* Returns BHA_EXIT_OK, BHA_EXIT_FENCED or BHA_EXIT_FAIL; msg says why. */
int
claimant_verdict(const struct claim_request *rq, const struct claimant_answer *a,
				 char *msg, size_t len)
{
	bool		descends = false;

	if (a->in_recovery)
	{
		snprintf(msg, len, "%s is in recovery (timeline %u), not a primary", rq->node, a->tli);
		return BHA_EXIT_FENCED;
	}
	if (a->tli != rq->timeline)
	{
		snprintf(msg, len, "%s is on timeline %u, not %ld", rq->node, a->tli, rq->timeline);
		return BHA_EXIT_FENCED;
	}
	if (rq->routed_timeline == 0 || rq->routed_timeline == rq->timeline)
	{
		snprintf(msg, len, "%s is primary on timeline %u", rq->node, a->tli);
		return BHA_EXIT_OK;
	}
	if (rq->timeline > rq->max_timeline)
	{
		snprintf(msg, len, "timeline %ld is too far beyond the routed timeline %ld (at most %ld)",
				 rq->timeline, rq->routed_timeline, rq->max_timeline);
		return BHA_EXIT_FENCED;
	}
	if (a->history == -1)
	{
		snprintf(msg, len, "the history of timeline %u could not be read", a->tli);
		return BHA_EXIT_FAIL;
	}
	if (a->history != 0)
	{
		snprintf(msg, len, "the history of timeline %u is not valid", a->tli);
		return BHA_EXIT_FENCED;
	}
	for (int i = 0; i < a->h->n; i++)
		descends |= a->h->tli[i] == rq->routed_timeline;
	if (!descends)
	{
		snprintf(msg, len, "timeline %u does not descend from the routed timeline %ld",
				 a->tli, rq->routed_timeline);
		return BHA_EXIT_FENCED;
	}
	snprintf(msg, len, "%s is primary on timeline %u, forked from timeline %u", rq->node,
			 a->tli, a->h->tli[a->h->n - 1]);
	return BHA_EXIT_OK;
}

/*
 * Returns BHA_EXIT_OK when the endpoints may leave routed_node, else
 * BHA_EXIT_FENCED or BHA_EXIT_FAIL; msg says what the probe found.
 */
int
routed_verdict(const char *routed_node, const struct node_answer *p, char *msg, size_t len)
{
	switch (p->kind)
	{
		case NODE_UNASKED:
			msg[0] = '\0';
			return BHA_EXIT_OK;
		case NODE_SILENT:
		case NODE_REFUSED:
		case NODE_STANDBY:
			snprintf(msg, len, "%s: %s: %s", routed_node, routed_answer_name(p->kind), p->why);
			return BHA_EXIT_OK;
		case NODE_PRIMARY:
			snprintf(msg, len, "%s still answers as primary on timeline %u and the backup "
					 "host reaches it", routed_node, p->tli);
			return BHA_EXIT_FENCED;
		case NODE_UNCLEAR:
			break;
	}
	snprintf(msg, len, "%s may still be primary (%s); the endpoints stay until it is gone, "
			 "refuses connections or answers as a standby", routed_node, p->why);
	return BHA_EXIT_FAIL;
}
