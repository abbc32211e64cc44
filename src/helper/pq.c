/*-------------------------------------------------------------------------
 *
 * pq.c
 *	  libpq, loaded with dlopen only in children that have already dropped
 *	  root (claim check, Barman catch-up wait).  Linking it would map libpq
 *	  and its 25 dependencies (OpenSSL, Kerberos, LDAP, GnuTLS...) into the
 *	  setuid process at every start: more code running as root, and about
 *	  3 ms of start-up on every call, which dominated a route switch.
 *
 *-------------------------------------------------------------------------
 */
#include "helper.h"

#include <stdio.h>

#include "pq.h"

struct pq_api pq;

/* the first entry's pointer also says whether libpq is loaded */
#define PQ_SYM(f) {"PQ" #f, (void **) &pq.f}
static const struct dl_sym pq_syms[] = {
	PQ_SYM(connectdb), PQ_SYM(status), PQ_SYM(errorMessage), PQ_SYM(finish), PQ_SYM(exec),
	PQ_SYM(execParams), PQ_SYM(resultStatus), PQ_SYM(ntuples), PQ_SYM(getvalue), PQ_SYM(clear),
	{NULL, NULL}
};

/* Connect or say why on stdout. */
PGconn *
pq_open(const char *conninfo)
{
	PGconn	   *c;
	char		err[512];

	/* we run in a child whose output is read */
	if (dl_load("libpq.so.5", pq_syms, err, sizeof(err)) != 0)
	{
		printf("%s\n", err);
		return NULL;
	}
	c = pq.connectdb(conninfo);
	if (pq.status(c) == CONNECTION_OK)
		return c;
	printf("cannot connect: %s\n", pq.errorMessage(c));
	pq.finish(c);
	return NULL;
}

/* Run sql, expecting one row; else say why on stdout and return NULL. */
PGresult *
pq_row(PGconn *c, const char *sql)
{
	PGresult   *r = pq.exec(c, sql);

	if (pq.resultStatus(r) == PGRES_TUPLES_OK && pq.ntuples(r) == 1)
		return r;
	printf("%s failed: %s\n", sql, pq.errorMessage(c));
	pq.clear(r);
	return NULL;
}
