/*-------------------------------------------------------------------------
 *
 * claim.c
 *	  The claim check: before barman_ha_nat records a new owner of the
 *	  endpoints, the backup host checks the claim with what it can see by
 *	  itself, so that neither a compromised postgres account nor a partition
 *	  between the nodes can move the endpoints away from a live primary.
 *
 *	  A claim "NODE is primary on timeline T" is accepted only when
 *	  1. NODE itself, at the address root's configuration gives, answers
 *		 over a replication=database connection (node_ask.c's questions):
 *		 IDENTIFY_SYSTEM says T and pg_is_in_recovery() is false;
 *	  2. if another node R holds the endpoints on timeline Tr: NODE's
 *		 history (TIMELINE_HISTORY T) contains Tr, i.e. NODE descends from
 *		 the routed timeline, and T <= Tr + number of nodes (each node can
 *		 have been promoted once without the backup host hearing of it), so
 *		 a forged timeline such as 2^31-1 cannot lock every later claim out;
 *	  3. and R, probed at the same time, shows that it can no longer
 *		 commit (claim_verdict.c says what counts as evidence).  The probe
 *		 (node_ask.c) first makes a bare TCP handshake within
 *		 probe_connect_ms: a live host's kernel answers at once, accepting
 *		 or refusing, so silence means the host is gone or cut off, and a
 *		 refusal (kill -9) answers at once; only a host that accepted is
 *		 asked whether it is in recovery and on which timeline, all within
 *		 probe_timeout_ms, in a process of its own.  A primary the backup
 *		 host still reaches keeps the endpoints: in a partition between the
 *		 nodes the backup host is the tie-breaker, and commits that R
 *		 acknowledged with Barman as its synchronous standby after NODE
 *		 forked are not lost by routing to NODE.
 *	  Replies are validated (pq_row, history.c) before use.  Exit 3
 *	  (refused) is not retried on the same timeline by the worker; exit 1
 *	  (no evidence either way, or NODE did not answer) is.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libpq-fe.h>

#define CLAIM_APPNAME	"barman_ha_claim_check"

struct claim_args
{
	char		conninfo[700];	/* the claimant */
	char		probe_conninfo[700];	/* the routed primary, or "" */
	struct node routed;			/* ... and where it is */
	char		node[BHA_NAME_MAX + 1];
	char		routed_node[BHA_NAME_MAX + 1];
	struct claim_request rq;
	int			claim_timeout_ms;
	int			probe_timeout_ms;
	int			probe_connect_ms;
	struct claim_outcome *out;	/* shared with the parent */
};

static struct claim_args args;
static struct run_result res;

/* Wait for the probe's end (its pipe's EOF) at most timeout_ms. */
static void
probe_wait(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd,.events = POLLIN};
	double		deadline = now_ms() + timeout_ms;
	char		buf[256];

	while (now_ms() < deadline)
	{
		int			rc = poll(&pfd, 1, (int) (deadline - now_ms()) + 1);

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0 || read(fd, buf, sizeof(buf)) <= 0)
			return;
	}
}

/*
 * The claimant's side of the check: an exit code, and msg says why (a
 * libpq failure is said on stdout by pq.c).  f gets the claimant's
 * timeline facts.
 */
static int
check_claimant(const struct claim_args *a, struct timeline_facts *f, char *msg, size_t len)
{
	PGconn	   *c = pq_open_bounded(a->conninfo, a->claim_timeout_ms);
	struct claimant_answer ans = {.h = &f->h};
	struct node_answer said;

	if (c == NULL)
		return BHA_EXIT_FAIL;
	node_read(c, &said);
	if (said.kind != NODE_PRIMARY && said.kind != NODE_STANDBY)
	{
		snprintf(msg, len, "%s: %s", a->node, said.why);
		PQfinish(c);
		return BHA_EXIT_FAIL;
	}
	ans.tli = said.tli;
	ans.in_recovery = said.kind == NODE_STANDBY;
	/* read for the descent, and kept for barman_fork */
	if (!ans.in_recovery && ans.tli == a->rq.timeline)
		ans.history = timeline_facts_read(c, ans.tli, f);
	PQfinish(c);
	return claimant_verdict(&a->rq, &ans, msg, len);
}

/* Runs in a child (run.c).  Exit 0 confirmed, 3 refused, 1 not confirmed. */
static int
claim_child(void *p)
{
	struct claim_args *a = p;
	struct node_answer *found = &a->out->probe;
	int			pfd[2] = {-1, -1};
	char		msg[400] = "",
				said[sizeof(msg) / 2];
	int			rc;

	found->kind = NODE_UNASKED;
	if (a->probe_conninfo[0])
	{
		/* the probe holds pfd[1]: its end is the pipe's EOF */
		if (pipe(pfd) != 0 ||
			node_ask_start(a->probe_conninfo, &a->routed, a->probe_connect_ms,
						   a->probe_timeout_ms, found) < 0)
		{
			printf("cannot start the probe: %s\n", strerror(errno));
			return BHA_EXIT_FAIL;
		}
		close(pfd[1]);
	}
	rc = check_claimant(a, &a->out->claimant, msg, sizeof(msg));
	if (rc == BHA_EXIT_OK)
	{
		if (pfd[0] >= 0)
			probe_wait(pfd[0], a->probe_timeout_ms + 200);
		a->out->routed_silent = found->kind == NODE_SILENT;
		rc = routed_verdict(a->routed_node, found, said, sizeof(said));
		if (rc != BHA_EXIT_OK)
			snprintf(msg, sizeof(msg), "%s", said);
		else if (said[0])
			snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "; %.190s", said);
	}
	if (msg[0])
		printf("%s\n", msg);
	return rc;
}

/*
 * Returns BHA_EXIT_OK, BHA_EXIT_FENCED (claim refused) or BHA_EXIT_FAIL.
 * out (when confirmed): whether the routed primary's host gave no answer
 * at all within the probe's bounds (it is gone or cut off), and the
 * claimant's timeline as read from it.  The child writes them into a
 * shared page: no second channel in its text.
 */
int
claim_check(const struct config *cfg, const struct nat_view *v,
			const struct node *node, long timeline, char *detail, size_t len,
			struct claim_outcome *out)
{
	static struct claim_outcome *shared;
	const struct node *routed = v->routed ? view_node(v, v->routed_node) : NULL;

	memset(out, 0, sizeof(*out));
	if (shared == NULL &&
		(shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
					   MAP_SHARED | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
	{
		shared = NULL;
		snprintf(detail, len, "cannot start the check: %s", strerror(errno));
		return BHA_EXIT_FAIL;
	}
	memset(shared, 0, sizeof(*shared));
	memset(&args, 0, sizeof(args));
	args.out = shared;
	node_conninfo(cfg, node, CLAIM_APPNAME, args.conninfo, sizeof(args.conninfo));
	snprintf(args.node, sizeof(args.node), "%s", node->name);
	args.rq.node = args.node;
	args.rq.timeline = timeline;
	args.claim_timeout_ms = cfg->claim_timeout_ms;
	args.probe_timeout_ms = cfg->probe_timeout_ms;
	args.probe_connect_ms = cfg->probe_connect_ms;
	if (v->routed)
	{
		args.rq.routed_timeline = v->routed_timeline;
		args.rq.max_timeline = v->routed_timeline + (v->nnodes > 0 ? v->nnodes : 1);
		snprintf(args.routed_node, sizeof(args.routed_node), "%s", v->routed_node);
		if (routed != NULL && routed != node)
		{
			args.routed = *routed;
			node_conninfo(cfg, routed, CLAIM_APPNAME, args.probe_conninfo,
						  sizeof(args.probe_conninfo));
		}
	}
	if (run_child(cfg->claim_timeout_ms + cfg->probe_timeout_ms + 2000, claim_child,
				  &args, &res) != 0)
	{
		snprintf(detail, len, "cannot start the check");
		return BHA_EXIT_FAIL;
	}
	last_line(res.out, detail, len);
	if (res.timed_out)
		snprintf(detail, len, "no answer from %s within %d ms", node->name,
				 cfg->claim_timeout_ms);
	else if (res.status == BHA_EXIT_OK)
		*out = *shared;
	if (res.status == BHA_EXIT_OK || res.status == BHA_EXIT_FENCED)
		return res.status;
	return BHA_EXIT_FAIL;
}
