/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The two background workers and their common loop.
 *
 * The primary worker is registered with BgWorkerStart_RecoveryFinished: the
 * postmaster starts it the moment recovery ends, so a promotion is noticed
 * without polling.  The standby worker starts once the standby is
 * consistent and leaves (exit code 0, not restarted) when recovery ends.
 * Both repeat one reconcile pass after each wait: at the interval the pass
 * asks for, at once when their latch is set by barman_ha_reconcile() or a
 * reload.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "barman_ha.h"

/* Seconds before a worker that exited with an error is started again. */
#define WORKER_RESTART_SECONDS 2

static void
register_worker(const char *name, const char *function, BgWorkerStartTime start)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = start;
	worker.bgw_restart_time = WORKER_RESTART_SECONDS;
	strlcpy(worker.bgw_library_name, "repmgr_barman_ha", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker.bgw_name, name, BGW_MAXLEN);
	strlcpy(worker.bgw_type, name, BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

void
barman_ha_register_workers(void)
{
	register_worker("barman_ha primary worker", "barman_ha_primary_main",
					BgWorkerStart_RecoveryFinished);
	register_worker("barman_ha standby worker", "barman_ha_standby_main",
					BgWorkerStart_ConsistentState);
}

/*
 * Common start: signals, a connection to no database (which gives the slot
 * API and the statistics it reports to a proper backend environment), and
 * the entry in shared state.  Returns false when a standby worker finds
 * itself on a primary.
 */
static bool
worker_start(bool standby)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	return barman_ha_attach_worker(standby);
}

/*
 * Run reconcile passes until a shutdown is asked for, or until a pass
 * returns a negative wait (its duties are over).  A latch set by a request
 * or a reload makes the next pass a forced one.
 *
 * The configuration is read again here, between passes, and nowhere else:
 * the waits inside a pass (a helper call, a query to the primary) serve
 * interrupts and shutdown only, so every setting a pass uses stays the same
 * from its start to its end.  A reload that comes during a pass is taken
 * as soon as the pass ends, and the pass runs again (not forced) so that
 * its wait follows the new settings.
 *
 * Each pass allocates in a memory context of its own, emptied before the
 * next pass, so what a pass formats for its reports never accumulates.
 */
static void
worker_loop(long (*reconcile) (bool forced))
{
	MemoryContext pass_context;
	bool		forced = true;

	pass_context = AllocSetContextCreate(TopMemoryContext, "barman_ha pass",
										 ALLOCSET_DEFAULT_SIZES);
	while (!ShutdownRequestPending)
	{
		MemoryContext previous;
		long		wait_ms;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextReset(pass_context);
		previous = MemoryContextSwitchTo(pass_context);
		wait_ms = reconcile(forced);
		/* after the pass: a promotion's call does not wait for this one */
		if (wait_ms >= 0 && !ShutdownRequestPending && barman_ha_enabled)
			barman_ha_keep_ssh_connection();
		MemoryContextSwitchTo(previous);

		/* a SIGTERM's latch may have been used up by a wait inside the pass */
		if (wait_ms < 0 || ShutdownRequestPending)
			return;
		if (ConfigReloadPending)
		{
			forced = false;
			continue;
		}
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		forced = (rc & WL_LATCH_SET) != 0;
	}
}

void
barman_ha_primary_main(Datum main_arg)
{
	worker_start(false);
	if (PromoteIsTriggered())
		barman_ha_record_event("promoted", true, 0, "this node is primary on timeline %u",
							   GetWALInsertionTimeLine());
	else
		barman_ha_record_event("worker_started", true, 0, "primary on timeline %u",
							   GetWALInsertionTimeLine());
	worker_loop(barman_ha_reconcile_primary);

	/*
	 * Exit code 1: a worker ended by pg_terminate_backend() is started again;
	 * at server shutdown the postmaster restarts nothing anyway.
	 */
	proc_exit(1);
}

void
barman_ha_standby_main(Datum main_arg)
{
	if (!worker_start(true))
		proc_exit(0);			/* a primary: the primary worker's job */
	barman_ha_record_event("worker_started", true, 0, "standby");
	worker_loop(barman_ha_reconcile_standby);
	if (ShutdownRequestPending)
		proc_exit(1);
	barman_ha_record_event("recovery_ended", true, 0, "standby worker hands over to the primary worker");
	proc_exit(0);
}
