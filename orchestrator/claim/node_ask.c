/*-------------------------------------------------------------------------
 *
 * node_ask.c
 *	  What a node is -- primary, standby, or no answer of which kind -- on
 *	  which timeline, and why: the one question the backup host puts to a
 *	  node by itself.  The claim check asks it of the routed primary (its
 *	  probe) and of the claimant, the takeover of every node.
 *
 *	  First a bare TCP handshake within connect_ms: a live host's kernel
 *	  answers at once, accepting or refusing, so silence means the host is
 *	  gone or cut off and a refusal that nothing listens.  Only a host that
 *	  accepted is asked, over a replication=database connection,
 *	  pg_is_in_recovery() and IDENTIFY_SYSTEM.  The answer counts only
 *	  whole: t or f, and a timeline parse_timeline accepts; anything else
 *	  -- a failed connection, an error, a reply of the wrong shape -- is
 *	  unclear, which no caller takes as evidence of anything.
 *
 *	  Of a primary the claim check also reads its timeline's history
 *	  (timeline_facts_read), which barman_fork then needs.
 *
 *	  node_ask_start asks in a process of its own, bounded by SIGALRM
 *	  after timeout_ms, and writes its answer into the caller's shared page
 *	  once, with SIGALRM blocked: a page holds either the whole answer or
 *	  what was there before the question (unclear, no answer in time).
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <libpq-fe.h>

static const char *const kind_names[] = {
	[NODE_UNASKED] = "none",
	[NODE_SILENT] = "silent",
	[NODE_REFUSED] = "refused",
	[NODE_UNCLEAR] = "unclear",
	[NODE_STANDBY] = "standby",
	[NODE_PRIMARY] = "primary",
};

const char *
node_kind_name(enum node_kind k)
{
	if (k < NODE_UNASKED || k > NODE_PRIMARY)
		return "?";
	return kind_names[k];
}

/* The conninfo for node n: the configured keywords, then its address. */
void
node_conninfo(const struct config *cfg, const struct node *n, const char *appname,
			  char *out, size_t len)
{
	char		addr[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &n->addr, addr, sizeof(addr));
	snprintf(out, len, "%s host=%s port=%u replication=database application_name=%s",
			 cfg->claim_conninfo, addr, n->port, appname);
}

/*
 * The node's replies, NULL where none valid came: pg_is_in_recovery()'s
 * and IDENTIFY_SYSTEM's timeline column.  A node is a primary or a
 * standby only when both are valid.
 */
void
node_judge(const char *in_recovery, const char *timeline, struct node_answer *a)
{
	const char *why;

	a->kind = NODE_UNCLEAR;
	a->tli = 0;
	if (in_recovery == NULL)
		why = "no valid answer to pg_is_in_recovery()";
	else if (strcmp(in_recovery, "t") != 0 && strcmp(in_recovery, "f") != 0)
		why = "pg_is_in_recovery() answered neither t nor f";
	else if (parse_timeline(timeline, &a->tli) != 0)
	{
		a->tli = 0;
		why = "no valid timeline from IDENTIFY_SYSTEM";
	}
	else if (in_recovery[0] == 't')
	{
		a->kind = NODE_STANDBY;
		why = "in recovery";
	}
	else
	{
		a->kind = NODE_PRIMARY;
		why = "not in recovery";
	}
	snprintf(a->why, sizeof(a->why), "%s", why);
}

/* Both questions over c, a replication=database connection. */
void
node_read(struct pg_conn *c, struct node_answer *a)
{
	PGresult   *rec = pq_row(c, "SELECT pg_is_in_recovery()", 1);
	PGresult   *id = rec ? pq_row(c, "IDENTIFY_SYSTEM", 2) : NULL;

	node_judge(rec ? PQgetvalue(rec, 0, 0) : NULL, id ? PQgetvalue(id, 0, 1) : NULL, a);
	PQclear(rec);
	PQclear(id);
}

/* The answer, written once: SIGALRM may not split it. */
static void
node_found(struct node_answer *out, const struct node_answer *a)
{
	sigset_t	alrm;

	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	sigprocmask(SIG_BLOCK, &alrm, NULL);
	out->tli = a->tli;
	snprintf(out->why, sizeof(out->why), "%s", a->why);
	out->why[strcspn(out->why, "\n")] = '\0';
	out->kind = a->kind;
}

/* The question itself, in the process node_ask_start made; never returns. */
static void
node_ask(const char *conninfo, const struct node *n, int connect_ms, int timeout_ms,
		 struct node_answer *out)
{
	struct itimerval it = {.it_value = {.tv_sec = timeout_ms / 1000,
	.tv_usec = (timeout_ms % 1000) * 1000}};
	struct node_answer a = {.kind = NODE_UNCLEAR};
	PGconn	   *c;
	bool		silent;

	signal(SIGALRM, SIG_DFL);
	setitimer(ITIMER_REAL, &it, NULL);
	switch (tcp_reach(n->addr, n->port, connect_ms))
	{
		case REACH_SILENT:
			a.kind = NODE_SILENT;
			snprintf(a.why, sizeof(a.why), "no TCP answer within %d ms", connect_ms);
			break;
		case REACH_REFUSED:
			a.kind = NODE_REFUSED;
			snprintf(a.why, sizeof(a.why), "nothing listens");
			break;
		case REACH_ANSWERED:
			/* a handshake that stalls now is no silence: unclear */
			c = pq_connect(conninfo, timeout_ms, 0, &silent, a.why, sizeof(a.why));
			if (c != NULL)
				node_read(c, &a);
			PQfinish(c);
			break;
	}
	node_found(out, &a);
	_exit(0);
}

/*
 * Ask node n in a process of its own, at most timeout_ms, the TCP
 * handshake at most connect_ms; out is in a page shared with the caller.
 * Returns the process's pid, or -1 (out says why).  Until the process
 * writes its answer, out says that none came in time.
 */
pid_t
node_ask_start(const char *conninfo, const struct node *n, int connect_ms, int timeout_ms,
			   struct node_answer *out)
{
	pid_t		pid;

	out->kind = NODE_UNCLEAR;
	out->tli = 0;
	snprintf(out->why, sizeof(out->why), "no answer within %d ms after the TCP handshake",
			 timeout_ms);
	if ((pid = fork()) == 0)
		node_ask(conninfo, n, connect_ms, timeout_ms, out);
	if (pid < 0)
		snprintf(out->why, sizeof(out->why), "cannot ask: %s", strerror(errno));
	return pid;
}

/*
 * On a replication=database connection to a primary on timeline tli (its
 * IDENTIFY_SYSTEM): its segment size and history.  0 ok; -1 a query failed,
 * -2 a reply is not valid (both said on stdout).
 */
int
timeline_facts_read(PGconn *c, unsigned tli, struct timeline_facts *f)
{
	PGresult   *r;
	char		sql[64];

	memset(f, 0, sizeof(*f));
	f->tli = tli;
	if (tli > 1)
	{
		if ((r = pq_row(c, "SHOW wal_segment_size", 1)) == NULL)
			return -1;
		f->segsz = parse_segment_size(PQgetvalue(r, 0, 0));
		PQclear(r);
		if (f->segsz == 0)
		{
			printf("wal_segment_size is not a power of two from 1MB to 1GB\n");
			return -2;
		}
		snprintf(sql, sizeof(sql), "TIMELINE_HISTORY %u", tli);
		if ((r = pq_row(c, sql, 2)) == NULL)
			return -1;
		if (history_parse(PQgetvalue(r, 0, 1), &f->h) != 0 ||
			(f->h.n > 0 && f->h.tli[f->h.n - 1] >= tli))
		{
			PQclear(r);
			printf("the history of timeline %u is not valid\n", tli);
			return -2;
		}
		PQclear(r);
	}
	f->known = true;
	return 0;
}
