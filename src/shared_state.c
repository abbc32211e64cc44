/*-------------------------------------------------------------------------
 *
 * shared_state.c
 *		The state the workers report and the ring of recent events, kept in
 *		shared memory, and the one way a failure is reported (an event,
 *		last_error and the server log together).
 *
 * Shared memory rather than a table: a standby cannot write tables, and the
 * status must survive a worker restart.  A server restart starts afresh.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "barman_ha.h"

BarmanHaState *barman_ha_state = NULL;

void
barman_ha_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(BarmanHaState)));
	RequestNamedLWLockTranche("barman_ha", 1);
}

void
barman_ha_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	barman_ha_state = ShmemInitStruct("barman_ha", sizeof(BarmanHaState), &found);
	if (!found)
	{
		memset(barman_ha_state, 0, sizeof(BarmanHaState));
		barman_ha_state->lock = &(GetNamedLWLockTranche("barman_ha"))->lock;
		barman_ha_state->route_state = ROUTE_PENDING;
		barman_ha_state->slot_wal_seen = SLOT_WAL_NONE;
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
detach_worker(int code, Datum arg)
{
	LWLockAcquire(barman_ha_state->lock, LW_EXCLUSIVE);
	if (barman_ha_state->worker_pid == MyProcPid)
	{
		barman_ha_state->worker_pid = 0;
		barman_ha_state->worker_latch = NULL;
	}
	LWLockRelease(barman_ha_state->lock);
}

/*
 * Make this worker the one that status names and that barman_ha_reconcile()
 * wakes.  The two workers overlap only briefly: the primary worker starts
 * when recovery ends and the standby worker leaves at its next wake-up.
 *
 * The standby worker also starts on a primary, and a promotion can end
 * recovery while it starts: it attaches only if recovery is still in
 * progress, checked under the lock, so it can never take the place of a
 * primary worker that attached before it.  Returns whether it attached.
 */
bool
barman_ha_attach_worker(bool standby)
{
	LWLockAcquire(barman_ha_state->lock, LW_EXCLUSIVE);
	if (standby && !RecoveryInProgress())
	{
		LWLockRelease(barman_ha_state->lock);
		return false;
	}
	/* a standby worker still waiting after a promotion: let it leave now */
	if (barman_ha_state->worker_latch)
		SetLatch(barman_ha_state->worker_latch);
	barman_ha_state->worker_pid = MyProcPid;
	barman_ha_state->worker_latch = MyLatch;
	LWLockRelease(barman_ha_state->lock);
	before_shmem_exit(detach_worker, (Datum) 0);
	return true;
}

/*
 * Append an event to the ring and make it the last action; last_error
 * becomes error (NULL clears it).
 */
static void
append_event(const char *event, bool ok, double duration_ms, const char *detail,
			 const char *error)
{
	BarmanHaEvent *ev;

	LWLockAcquire(barman_ha_state->lock, LW_EXCLUSIVE);
	ev = &barman_ha_state->events[barman_ha_state->events_written % BARMAN_HA_EVENTS];
	barman_ha_state->events_written++;
	ev->at = GetCurrentTimestamp();
	strlcpy(ev->event, event, sizeof(ev->event));
	strlcpy(ev->detail, detail, sizeof(ev->detail));
	ev->duration_ms = duration_ms;
	ev->ok = ok;

	strlcpy(barman_ha_state->last_action, event, sizeof(barman_ha_state->last_action));
	barman_ha_state->last_action_at = ev->at;
	strlcpy(barman_ha_state->last_error, error ? error : "",
			sizeof(barman_ha_state->last_error));
	LWLockRelease(barman_ha_state->lock);
}

/*
 * Record an event.  A failed one also becomes last_error; a successful one
 * clears it.
 */
void
barman_ha_record_event(const char *event, bool ok, double duration_ms,
					   const char *fmt,...)
{
	char		detail[BARMAN_HA_MSG_LEN];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	append_event(event, ok, duration_ms, detail, ok ? NULL : detail);
}

/*
 * Say a failure everywhere the DBA looks, the same way for every failure:
 * a failed event, last_error, and the server log.
 */
void
barman_ha_report_failure(const BarmanHaFailure *failure)
{
	append_event(failure->event, false, failure->duration_ms, failure->detail,
				 failure->last_error ? failure->last_error : failure->detail);
	ereport(failure->elevel,
			(errcode(failure->sqlerrcode),
			 errmsg_internal("%s", failure->message),
			 failure->log_detail ? errdetail_internal("%s", failure->log_detail) : 0,
			 failure->hint ? errhint("%s", failure->hint) : 0));
}

/* routed_node: the node the helper confirmed, "" for none, NULL to keep it */
void
barman_ha_set_route(RouteState state, const char *routed_node)
{
	LWLockAcquire(barman_ha_state->lock, LW_EXCLUSIVE);
	barman_ha_state->route_state = state;
	if (routed_node)
		strlcpy(barman_ha_state->routed_node, routed_node,
				sizeof(barman_ha_state->routed_node));
	LWLockRelease(barman_ha_state->lock);
}

void
barman_ha_set_primary_slot_lsn(XLogRecPtr lsn)
{
	LWLockAcquire(barman_ha_state->lock, LW_EXCLUSIVE);
	barman_ha_state->primary_slot_lsn = lsn;
	LWLockRelease(barman_ha_state->lock);
}

/*
 * Count one helper call: a success is the time last_success_age counts
 * from, a failure (any exit but 0, a timeout included) adds to
 * helper_failures.
 */
void
barman_ha_count_helper_call(bool ok)
{
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(barman_ha_state->lock, LW_EXCLUSIVE);
	if (ok)
		barman_ha_state->last_success_at = now;
	else
		barman_ha_state->helper_failures++;
	LWLockRelease(barman_ha_state->lock);
}

const char *
barman_ha_route_state_name(RouteState state)
{
	switch (state)
	{
		case ROUTE_PENDING:
			return "pending";
		case ROUTE_OK:
			return "ok";
		case ROUTE_FAILED:
			return "failed";
		case ROUTE_FENCED:
			return "fenced";
		case ROUTE_DISABLED:
			return "disabled";
	}
	return "unknown";
}
