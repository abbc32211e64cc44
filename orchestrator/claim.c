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
 *		 over a replication=database connection: IDENTIFY_SYSTEM says T and
 *		 pg_is_in_recovery() is false;
 *	  2. if another node R holds the endpoints on timeline Tr: NODE's
 *		 history (TIMELINE_HISTORY T) contains Tr, i.e. NODE descends from
 *		 the routed timeline, and T <= Tr + number of nodes (each node can
 *		 have been promoted once without the backup host hearing of it), so
 *		 a forged timeline such as 2^31-1 cannot lock every later claim out;
 *	  3. and R, probed at the same time, does not answer as a primary within
 *		 probe_timeout_ms, its TCP handshake within probe_connect_ms (a live
 *		 host's kernel answers at once; a lost SYN, retransmitted after 1 s,
 *		 missed the longer bound as well).  A primary the backup host still
 *		 reaches keeps the endpoints: in a partition between the nodes the
 *		 backup host is the tie-breaker, and commits that R acknowledged
 *		 with Barman as its synchronous standby after NODE forked are not
 *		 lost by routing to NODE.  A refused connection (kill -9) answers
 *		 at once; a vanished host costs probe_connect_ms, not libpq's
 *		 connect_timeout.
 *	  Replies are validated (history.c) before use.  Exit 3 (refused) is
 *	  not retried on the same timeline by the worker; exit 1 (NODE did not
 *	  answer) is.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#include <libpq-fe.h>

/* how the probe's line starts when the routed primary's host gave no answer */
#define PROBE_SILENT "silent: "

struct claim_args
{
	char		conninfo[700];	/* the claimant */
	char		probe_conninfo[700];	/* the routed primary, or "" */
	char		node[BHA_NAME_MAX + 1];
	char		routed_node[BHA_NAME_MAX + 1];
	long		timeline;
	long		routed_timeline;	/* 0: nobody holds the endpoints */
	long		max_timeline;
	int			claim_timeout_ms;
	int			probe_timeout_ms;
	int			probe_connect_ms;
	struct claim_outcome *out;	/* shared with the parent */
};

static struct claim_args args;
static struct run_result res;

/*
 * The probe, in a process of its own: one line on fd, "primary on timeline
 * TLI", "standby", "silent: WHY" (pq_connect's judgement: no answer at all,
 * not even a refusal) or why it failed otherwise.  SIGALRM (default action)
 * ends it when a query hangs after the connection was made.
 */
static void
probe(const struct claim_args *a, int fd)
{
	static const struct itimerval bound;
	struct itimerval it = bound;
	PGconn	   *c;
	PGresult   *r;
	unsigned	tli;
	bool		silent;
	char		why[600];

	signal(SIGALRM, SIG_DFL);
	it.it_value.tv_sec = a->probe_timeout_ms / 1000;
	it.it_value.tv_usec = (a->probe_timeout_ms % 1000) * 1000;
	setitimer(ITIMER_REAL, &it, NULL);
	if (dup2(fd, STDOUT_FILENO) < 0)
		_exit(1);
	c = pq_connect(a->probe_conninfo, a->probe_timeout_ms, a->probe_connect_ms,
				   &silent, why, sizeof(why));
	if (c == NULL)
		printf("%s%s\n", silent ? PROBE_SILENT : "", why);
	/* pq.c says why a query failed */
	else if ((r = pq_row(c, "SELECT pg_is_in_recovery()")) != NULL)
	{
		if (strcmp(PQgetvalue(r, 0, 0), "f") != 0)
			printf("standby\n");
		else
		{
			PQclear(r);
			if ((r = pq_row(c, "IDENTIFY_SYSTEM")) == NULL || PQnfields(r) < 2 ||
				parse_timeline(PQgetvalue(r, 0, 1), &tli) != 0)
				tli = 0;
			printf("primary on timeline %u\n", tli);
		}
	}
	fflush(stdout);
	_exit(0);
}

/*
 * What the probe said, waiting for it at most until its bound has passed:
 * true when the routed primary's host gave no answer at all.  A probe that
 * said nothing by then is silence too.
 */
static bool
probe_silent(int fd, int timeout_ms, char *out, size_t len)
{
	struct pollfd pfd = {.fd = fd,.events = POLLIN};
	ssize_t		n = 0;

	snprintf(out, len, PROBE_SILENT "no answer within %d ms", timeout_ms);
	if (poll(&pfd, 1, timeout_ms + 200) > 0 && (n = read(fd, out, len - 1)) > 0)
	{
		out[n] = '\0';
		out[strcspn(out, "\n")] = '\0';
	}
	return strncmp(out, PROBE_SILENT, strlen(PROBE_SILENT)) == 0;
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
	PGresult   *r;
	unsigned	tli;
	bool		in_recovery;
	bool		descends = false;
	int			rc;

	if (c == NULL || (r = pq_row(c, "IDENTIFY_SYSTEM")) == NULL)
		return BHA_EXIT_FAIL;
	if (PQnfields(r) < 2 || parse_timeline(PQgetvalue(r, 0, 1), &tli) != 0)
	{
		snprintf(msg, len, "IDENTIFY_SYSTEM returned no valid timeline");
		return BHA_EXIT_FAIL;
	}
	PQclear(r);
	if ((r = pq_row(c, "SELECT pg_is_in_recovery()")) == NULL)
		return BHA_EXIT_FAIL;
	in_recovery = strcmp(PQgetvalue(r, 0, 0), "f") != 0;
	PQclear(r);
	if (in_recovery)
	{
		snprintf(msg, len, "%s is in recovery (timeline %u), not a primary", a->node, tli);
		return BHA_EXIT_FENCED;
	}
	if (tli != a->timeline)
	{
		snprintf(msg, len, "%s is on timeline %u, not %ld", a->node, tli, a->timeline);
		return BHA_EXIT_FENCED;
	}
	/* read for the descent below, and kept for barman_fork */
	rc = timeline_facts_read(c, tli, f);
	PQfinish(c);
	if (a->routed_timeline == 0 || a->routed_timeline == a->timeline)
	{
		snprintf(msg, len, "%s is primary on timeline %u", a->node, tli);
		return BHA_EXIT_OK;
	}
	if (a->timeline > a->max_timeline)
	{
		snprintf(msg, len, "timeline %ld is too far beyond the routed timeline %ld (at most %ld)",
				 a->timeline, a->routed_timeline, a->max_timeline);
		return BHA_EXIT_FENCED;
	}
	if (rc != 0)
		return rc == -1 ? BHA_EXIT_FAIL : BHA_EXIT_FENCED;	/* said */
	for (int i = 0; i < f->h.n; i++)
		descends |= f->h.tli[i] == a->routed_timeline;
	if (!descends)
	{
		snprintf(msg, len, "timeline %u does not descend from the routed timeline %ld",
				 tli, a->routed_timeline);
		return BHA_EXIT_FENCED;
	}
	snprintf(msg, len, "%s is primary on timeline %u, forked from timeline %u", a->node, tli,
			 f->h.tli[f->h.n - 1]);
	return BHA_EXIT_OK;
}

/* Runs in a child (run.c).  Exit 0 confirmed, 3 refused, 1 no answer. */
static int
claim_child(void *p)
{
	struct claim_args *a = p;
	int			pfd[2] = {-1, -1};
	char		msg[400] = "", said[200];
	int			rc;

	if (a->probe_conninfo[0])
	{
		pid_t		pid;

		if (pipe(pfd) != 0 || (pid = fork()) < 0)
		{
			printf("cannot start the probe: %s\n", strerror(errno));
			return BHA_EXIT_FAIL;
		}
		if (pid == 0)
		{
			close(pfd[0]);
			probe(a, pfd[1]);
		}
		close(pfd[1]);
	}
	rc = check_claimant(a, &a->out->claimant, msg, sizeof(msg));
	if (rc == BHA_EXIT_OK && pfd[0] >= 0)
	{
		a->out->routed_silent = probe_silent(pfd[0], a->probe_timeout_ms, said, sizeof(said));
		if (strncmp(said, "primary", 7) == 0)
		{
			snprintf(msg, sizeof(msg), "%s still answers as %.200s and the backup host reaches it",
					 a->routed_node, said);
			rc = BHA_EXIT_FENCED;
		}
		else
			snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "; %s: %s",
					 a->routed_node, said);
	}
	if (msg[0])
		printf("%s\n", msg);
	return rc;
}

/* The conninfo for node n: the configured keywords, then its address. */
static void
node_conninfo(const struct config *cfg, const struct node *n, char *out, size_t len)
{
	char		addr[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &n->addr, addr, sizeof(addr));
	snprintf(out, len, "%s host=%s port=%u replication=database "
			 "application_name=barman_ha_claim_check",
			 cfg->claim_conninfo, addr, n->port);
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
	node_conninfo(cfg, node, args.conninfo, sizeof(args.conninfo));
	snprintf(args.node, sizeof(args.node), "%s", node->name);
	args.timeline = timeline;
	args.claim_timeout_ms = cfg->claim_timeout_ms;
	args.probe_timeout_ms = cfg->probe_timeout_ms;
	args.probe_connect_ms = cfg->probe_connect_ms;
	if (v->routed)
	{
		args.routed_timeline = v->routed_timeline;
		args.max_timeline = v->routed_timeline + (v->nnodes > 0 ? v->nnodes : 1);
		snprintf(args.routed_node, sizeof(args.routed_node), "%s", v->routed_node);
		if (routed != NULL && routed != node)
			node_conninfo(cfg, routed, args.probe_conninfo, sizeof(args.probe_conninfo));
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
