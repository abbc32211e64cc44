/*-------------------------------------------------------------------------
 *
 * pq.c
 *	  The orchestrator's libpq connections: the claim check, the probe of
 *	  the routed primary, Barman's catch-up wait and the fork point.  They
 *	  all run in children (run.c) whose output is read, so failures are
 *	  said on stdout.  A probe of a host that may have vanished must not
 *	  wait for libpq's connect_timeout (2 s at the least): pq_connect
 *	  drives the connection itself with a deadline in milliseconds, and
 *	  a shorter one for the TCP handshake, which a live host's kernel
 *	  answers at once whatever its PostgreSQL is doing, and tells the
 *	  caller whether the host gave no answer at all (the one notion of a
 *	  silent host: the claim check's probe and the watch both use it; a
 *	  refusal means the host is alive).
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
 * bound of its own), or put why in why and return NULL.  *silent: the
 * host gave no answer at all, neither within reach_ms nor later (a
 * handshake that failed other than by a refusal: unreachable, timed out).
 */
PGconn *
pq_connect(const char *conninfo, int timeout_ms, int reach_ms, bool *silent,
		   char *why, size_t len)
{
	PGconn	   *c = PQconnectStart(conninfo);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	double		t0 = now_ms(),
				deadline = t0 + timeout_ms;
	bool		handshake = true;

	*silent = false;
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

		handshake = PQstatus(c) == CONNECTION_STARTED;
		if (left <= 0)
		{
			*silent = handshake;
			snprintf(why, len, "no answer within %d ms", reaching ? reach_ms : timeout_ms);
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
	*silent = handshake && strstr(PQerrorMessage(c), "refused") == NULL;
fail:
	snprintf(why, len, "cannot connect: %s", c ? PQerrorMessage(c) : "out of memory");
	why[strcspn(why, "\n")] = '\0';
	PQfinish(c);
	return NULL;
}

/* pq_connect within timeout_ms, saying why on stdout. */
PGconn *
pq_open_bounded(const char *conninfo, int timeout_ms)
{
	char		why[600];
	bool		silent;
	PGconn	   *c = pq_connect(conninfo, timeout_ms, 0, &silent, why, sizeof(why));

	if (c == NULL)
		printf("%s\n", why);
	return c;
}

/*
 * Run sql, expecting one row of at least ncols columns, none of them NULL:
 * the caller may read each of them.  Else say why on stdout and return
 * NULL.  A server may answer anything, so the shape is checked here once.
 */
PGresult *
pq_row(PGconn *c, const char *sql, int ncols)
{
	PGresult   *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		printf("%s failed: %s\n", sql, PQerrorMessage(c));
	else if (PQntuples(r) != 1 || PQnfields(r) < ncols)
		printf("%s returned %d rows of %d columns, not one of %d\n", sql,
			   PQntuples(r), PQnfields(r), ncols);
	else
	{
		int			col = 0;

		while (col < ncols && !PQgetisnull(r, 0, col))
			col++;
		if (col == ncols)
			return r;
		printf("%s returned NULL in column %d\n", sql, col + 1);
	}
	PQclear(r);
	return NULL;
}

/*
 * A bare TCP handshake with addr:port within reach_ms.  No PostgreSQL
 * session: the host may be a fenced primary, and a connection closed
 * before its startup packet is not even logged by PostgreSQL.  The one
 * notion of a host's silence besides pq_connect's: neither an accept nor
 * a refusal within the bound, or the network says it cannot be reached.
 */
enum reach
tcp_reach(struct in_addr addr, uint16_t port, int reach_ms)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,.sin_port = htons(port),.sin_addr = addr};
	struct pollfd pfd = {.events = POLLOUT};
	int			err = 0;
	socklen_t	len = sizeof(err);

	if ((pfd.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return REACH_SILENT;
	if (connect(pfd.fd, (struct sockaddr *) &sa, sizeof(sa)) != 0)
	{
		err = errno;
		if (err == EINPROGRESS)
		{
			err = ETIMEDOUT;
			if (poll(&pfd, 1, reach_ms) > 0)
				getsockopt(pfd.fd, SOL_SOCKET, SO_ERROR, &err, &len);
		}
	}
	close(pfd.fd);
	if (err == 0)
		return REACH_ANSWERED;
	if (err == ECONNREFUSED)
		return REACH_REFUSED;
	return REACH_SILENT;
}
