/*-------------------------------------------------------------------------
 *
 * pq.h
 *	  The few libpq calls the helper makes, through pointers filled by
 *	  dlopen in an unprivileged child (see pq.c).  Types from libpq-fe.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BARMAN_HA_PQ_H
#define BARMAN_HA_PQ_H

#include <libpq-fe.h>

struct pq_api
{
	PGconn	   *(*connectdb) (const char *conninfo);
	ConnStatusType (*status) (const PGconn *conn);
	char	   *(*errorMessage) (const PGconn *conn);
	void		(*finish) (PGconn *conn);
	PGresult   *(*exec) (PGconn *conn, const char *query);
	PGresult   *(*execParams) (PGconn *conn, const char *command, int nParams,
							   const Oid *paramTypes, const char *const *paramValues,
							   const int *paramLengths, const int *paramFormats,
							   int resultFormat);
	ExecStatusType (*resultStatus) (const PGresult *res);
	int			(*ntuples) (const PGresult *res);
	char	   *(*getvalue) (const PGresult *res, int tup_num, int field_num);
	void		(*clear) (PGresult *res);
};

extern struct pq_api pq;

extern PGresult *pq_row(PGconn *c, const char *sql);

#endif							/* BARMAN_HA_PQ_H */
