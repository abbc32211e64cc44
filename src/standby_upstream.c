/*-------------------------------------------------------------------------
 *
 * standby_upstream.c
 *		Runs on a standby: its replication connection to the server it
 *		replicates from (primary_conninfo, normally the primary), and the
 *		one question the standby worker asks there, READ_REPLICATION_SLOT,
 *		for the position of the barman slot it keeps in step with.
 *
 * The replication protocol is used because the walreceiver's credentials
 * and pg_hba entry already allow it and no database is needed.  libpq is
 * driven asynchronously and every wait goes through the worker's latch, so
 * an unreachable primary never holds up a shutdown.  The connection is kept
 * between passes and made again when primary_conninfo changes (a reload,
 * taken between passes).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlogrecovery.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "barman_ha.h"

/* Bound of one connection attempt or one query. */
#define PRIMARY_QUERY_TIMEOUT_MS 10000
/* The query, for a slot name of at most NAMEDATALEN - 1 bytes. */
#define READ_SLOT_COMMAND "READ_REPLICATION_SLOT \"%s\""
#define READ_SLOT_COMMAND_LEN (sizeof(READ_SLOT_COMMAND) + NAMEDATALEN)
/* What the connection is called in the primary's pg_stat_activity. */
#define UPSTREAM_APPLICATION_NAME "barman_ha_slot_sync"

/* Kept between passes, so both outlive a pass's memory context. */
static PGconn *primary_conn = NULL;
static char *primary_conn_info = NULL;	/* the conninfo primary_conn was made from */

static void
disconnect(void)
{
	if (primary_conn)
		PQfinish(primary_conn);
	primary_conn = NULL;
	if (primary_conn_info)
		pfree(primary_conn_info);
	primary_conn_info = NULL;
}

/*
 * Wait until the socket is ready for io (WL_SOCKET_READABLE or _WRITEABLE)
 * or the deadline passes; false on timeout or shutdown.  The latch ends no
 * wait but a shutdown's.
 */
static bool
wait_socket(int io, TimestampTz deadline)
{
	long		ms = barman_ha_ms_until(deadline);
	int			rc;

	if (ms == 0 || ShutdownRequestPending)
		return false;
	rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | WL_TIMEOUT | io,
						   PQsocket(primary_conn), ms, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return !ShutdownRequestPending;
}

static bool
connect_to_primary(TimestampTz deadline, char *error, size_t error_size)
{
	const char *keys[] = {"dbname", "replication", "application_name", NULL};
	const char *values[] = {PrimaryConnInfo, "true", UPSTREAM_APPLICATION_NAME, NULL};
	PostgresPollingStatusType status = PGRES_POLLING_WRITING;

	if (primary_conn && strcmp(primary_conn_info, PrimaryConnInfo) == 0 &&
		PQstatus(primary_conn) == CONNECTION_OK)
		return true;
	disconnect();

	primary_conn = PQconnectStartParams(keys, values, true);
	primary_conn_info = MemoryContextStrdup(TopMemoryContext, PrimaryConnInfo);
	while (primary_conn && PQstatus(primary_conn) != CONNECTION_BAD &&
		   status != PGRES_POLLING_OK)
	{
		if (!wait_socket(status == PGRES_POLLING_READING ? WL_SOCKET_READABLE
						 : WL_SOCKET_WRITEABLE, deadline))
		{
			snprintf(error, error_size, "could not connect to the primary within %ld s",
					 PRIMARY_QUERY_TIMEOUT_MS / BARMAN_HA_MS_PER_SEC);
			disconnect();
			return false;
		}
		status = PQconnectPoll(primary_conn);
		if (status == PGRES_POLLING_FAILED)
			break;
	}
	if (primary_conn == NULL || PQstatus(primary_conn) != CONNECTION_OK)
	{
		snprintf(error, error_size, "could not connect to the primary: %s",
				 primary_conn ? PQerrorMessage(primary_conn) : "out of memory");
		/* libpq messages end in a newline */
		error[strcspn(error, "\n")] = '\0';
		disconnect();
		return false;
	}
	return true;
}

/*
 * Read the restart_lsn of slot "name" on the primary.  Returns false with
 * a message in error when it could not be read; *exists tells whether the
 * primary has such a slot (and *restart_lsn is valid).
 */
bool
barman_ha_read_primary_slot(const char *name, bool *exists, XLogRecPtr *restart_lsn,
							char *error, size_t error_size)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   PRIMARY_QUERY_TIMEOUT_MS);
	char		command[READ_SLOT_COMMAND_LEN];
	PGresult   *res;
	bool		ok = false;

	*exists = false;
	*restart_lsn = InvalidXLogRecPtr;
	if (PrimaryConnInfo == NULL || PrimaryConnInfo[0] == '\0')
	{
		snprintf(error, error_size, "primary_conninfo is not set");
		return false;
	}
	if (!connect_to_primary(deadline, error, error_size))
		return false;

	/* slot names are [a-z0-9_] (checked by the GUC): quoting is enough */
	snprintf(command, sizeof(command), READ_SLOT_COMMAND, name);
	if (!PQsendQuery(primary_conn, command))
		goto broken;
	while (PQisBusy(primary_conn))
	{
		if (!wait_socket(WL_SOCKET_READABLE, deadline))
		{
			snprintf(error, error_size, "the primary did not answer within %ld s",
					 PRIMARY_QUERY_TIMEOUT_MS / BARMAN_HA_MS_PER_SEC);
			disconnect();
			return false;
		}
		if (!PQconsumeInput(primary_conn))
			goto broken;
	}

	snprintf(error, error_size, "unexpected answer to READ_REPLICATION_SLOT from the primary");
	while ((res = PQgetResult(primary_conn)) != NULL)
	{
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
			PQnfields(res) >= 2)
		{
			uint32		hi,
						lo;

			ok = true;
			if (!PQgetisnull(res, 0, 1) &&
				sscanf(PQgetvalue(res, 0, 1), "%X/%X", &hi, &lo) == 2)
			{
				*exists = true;
				*restart_lsn = ((uint64) hi) << 32 | lo;
			}
		}
		else if (PQresultStatus(res) != PGRES_TUPLES_OK)
			snprintf(error, error_size, "READ_REPLICATION_SLOT failed on the primary: %s",
					 PQresultErrorMessage(res));
		PQclear(res);
	}
	if (!ok)
	{
		error[strcspn(error, "\n")] = '\0';
		disconnect();
	}
	return ok;

broken:
	snprintf(error, error_size, "lost the connection to the primary: %s",
			 PQerrorMessage(primary_conn));
	error[strcspn(error, "\n")] = '\0';
	disconnect();
	return false;
}
