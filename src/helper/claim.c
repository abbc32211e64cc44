/*-------------------------------------------------------------------------
 *
 * claim.c
 *	  The backup host checks a node's claim with the node itself before it
 *	  hands it the endpoints: a replication connection (replication=database,
 *	  so SQL works too) to the node's configured address must report, via
 *	  IDENTIFY_SYSTEM, the claimed timeline, and the node must not be in
 *	  recovery.  A compromised postgres account can then not win the fencing
 *	  with a forged timeline.  libpq runs only in a child that has dropped
 *	  root for good (the barman user, whose ~/.pgpass holds the password).
 *
 *-------------------------------------------------------------------------
 */
#include "helper.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "pq.h"

struct claim_args
{
	char		conninfo[700];
	long		timeline;
};

/* Runs as the barman user.  Exit 0 confirmed, 3 refused, 1 unreachable. */
static int
claim_child(void *p)
{
	struct claim_args *a = p;
	PGconn	   *c = pq_open(a->conninfo);
	PGresult   *id,
			   *rec;
	long		tli = 0;
	bool		in_recovery;

	if (c == NULL || (id = pq_row(c, "IDENTIFY_SYSTEM")) == NULL)
		return EXIT_FAIL;
	if (parse_long(pq.getvalue(id, 0, 1), 1, 0x7fffffffL, &tli) != 0)
	{
		printf("IDENTIFY_SYSTEM returned no timeline\n");
		return EXIT_FAIL;
	}
	if ((rec = pq_row(c, "SELECT pg_is_in_recovery()")) == NULL)
		return EXIT_FAIL;
	in_recovery = strcmp(pq.getvalue(rec, 0, 0), "f") != 0;
	pq.finish(c);
	if (in_recovery)
	{
		printf("the node is in recovery (timeline %ld), not a primary\n", tli);
		return EXIT_FENCED;
	}
	if (tli != a->timeline)
	{
		printf("the node is on timeline %ld, not %ld\n", tli, a->timeline);
		return EXIT_FENCED;
	}
	printf("primary on timeline %ld\n", tli);
	return EXIT_OK;
}

/* Returns EXIT_OK, EXIT_FENCED (claim false) or EXIT_FAIL. */
int
claim_check(const struct config *cfg, const struct node *node, long timeline,
			char *detail, size_t len)
{
	static struct claim_args a;
	static struct run_result res;
	char		addr[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &node->addr, addr, sizeof(addr));
	snprintf(a.conninfo, sizeof(a.conninfo),
			 "%s host=%s port=%u replication=database application_name=barman_ha_claim_check",
			 cfg->claim_conninfo, addr, node->port);
	a.timeline = timeline;
	if (run_as(cfg->barman_user, 15000, claim_child, &a, &res) != 0)
	{
		snprintf(detail, len, "cannot start the check");
		return EXIT_FAIL;
	}
	last_line(res.out, detail, len);
	if (res.timed_out)
		snprintf(detail, len, "no answer from %s:%u within 15 s", addr, node->port);
	if (res.status == EXIT_OK || res.status == EXIT_FENCED)
		return res.status;
	return EXIT_FAIL;
}
