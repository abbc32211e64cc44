/*-------------------------------------------------------------------------
 *
 * pq.c
 *	  The orchestrator's libpq connections: the claim check, the probe of
 *	  the routed primary, Barman's catch-up wait and the fork point.  They
 *	  all run in children (run.c) whose output is read, so failures are
 *	  said on stdout.  A probe of a host that may have vanished must not
 *	  wait for libpq's connect_timeout (2 s at the least): pq_open_bounded
 *	  drives the connection itself with a deadline in milliseconds, and
 *	  a shorter one for the TCP handshake, which a live host's kernel
 *	  answers at once whatever its PostgreSQL is doing.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>

#include <libpq-fe.h>

/* Connect or say why on stdout. */
PGconn *
pq_open(const char *conninfo)
{
	PGconn	   *c = PQconnectdb(conninfo);

	if (PQstatus(c) == CONNECTION_OK)
		return c;
	printf("cannot connect: %s\n", PQerrorMessage(c));
	PQfinish(c);
	return NULL;
}

/*
 * Connect within timeout_ms, the TCP handshake within reach_ms (0: no
 * bound of its own), or say why on stdout and return NULL.  Silence is
 * said as "no answer within N ms".
 */
PGconn *
pq_open_bounded(const char *conninfo, int timeout_ms, int reach_ms)
{
	PGconn	   *c = PQconnectStart(conninfo);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	double		t0 = now_ms(),
				deadline = t0 + timeout_ms;

	if (c == NULL || PQstatus(c) == CONNECTION_BAD)
		goto fail;
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED)
	{
		struct pollfd pfd = {.fd = PQsocket(c),
		.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
		bool		reaching = reach_ms > 0 && reach_ms < timeout_ms &&
			PQstatus(c) == CONNECTION_STARTED;
		double		left = (reaching ? t0 + reach_ms : deadline) - now_ms();
		int			rc;

		if (left <= 0)
		{
			printf("no answer within %d ms\n", reaching ? reach_ms : timeout_ms);
			PQfinish(c);
			return NULL;
		}
		rc = poll(&pfd, 1, (int) left + 1);
		if (rc < 0 && errno != EINTR)
			goto fail;
		if (rc > 0)
			st = PQconnectPoll(c);
	}
	if (st == PGRES_POLLING_OK)
		return c;
fail:
	printf("cannot connect: %s\n", c ? PQerrorMessage(c) : "out of memory");
	PQfinish(c);
	return NULL;
}

/* Run sql, expecting one row; else say why on stdout and return NULL. */
PGresult *
pq_row(PGconn *c, const char *sql)
{
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		return r;
	printf("%s failed: %s\n", sql, PQerrorMessage(c));
	PQclear(r);
	return NULL;
}
