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

#include <dlfcn.h>
#include <stdio.h>

#include "pq.h"

struct pq_api pq;

#define LOAD(field, sym) \
	if ((*(void **) &pq.field = dlsym(h, #sym)) == NULL) \
		goto fail

/* Returns 0, or -1 after printing why (we run in a child whose output is read). */
static int
pq_load(void)
{
	static void *h = NULL;

	if (h != NULL)
		return 0;
	if ((h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL)) == NULL)
	{
		printf("cannot load libpq: %s\n", dlerror());
		return -1;
	}
	LOAD(connectdb, PQconnectdb);
	LOAD(status, PQstatus);
	LOAD(errorMessage, PQerrorMessage);
	LOAD(finish, PQfinish);
	LOAD(exec, PQexec);
	LOAD(execParams, PQexecParams);
	LOAD(resultStatus, PQresultStatus);
	LOAD(ntuples, PQntuples);
	LOAD(getvalue, PQgetvalue);
	LOAD(clear, PQclear);
	return 0;
fail:
	printf("libpq lacks a symbol: %s\n", dlerror());
	return -1;
}

/* Connect or say why on stdout. */
PGconn *
pq_open(const char *conninfo)
{
	PGconn	   *c;

	if (pq_load() != 0)
		return NULL;
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
