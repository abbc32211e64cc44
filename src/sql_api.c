/*-------------------------------------------------------------------------
 *
 * sql_api.c
 *		The SQL functions: barman_ha_status(), barman_ha_events() and
 *		barman_ha_reconcile().
 *
 * Role, timeline and slot are read live from the server; route and
 * history come from what the workers left in shared memory.
 *
 * barman_ha_status() has one C symbol per version of its SQL declaration
 * (as pg_stat_statements does): a server whose extension is still at 1.0
 * after the library was upgraded gets the 16 columns 1.0 declares, 1.1
 * gets them and the columns it added.  Columns are only ever appended.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

#include "barman_ha.h"

PG_FUNCTION_INFO_V1(barman_ha_status);
PG_FUNCTION_INFO_V1(barman_ha_status_1_1);
PG_FUNCTION_INFO_V1(barman_ha_events);
PG_FUNCTION_INFO_V1(barman_ha_reconcile);

/* barman_ha_status()'s columns in each version of the SQL API */
typedef enum StatusVersion
{
	STATUS_V1_0,
	STATUS_V1_1
} StatusVersion;

#define STATUS_COLS_V1_0 16
#define STATUS_COLS_V1_1 22
#define STATUS_COLS STATUS_COLS_V1_1
#define EVENTS_COLS 5

static Datum
status_internal(FunctionCallInfo fcinfo, StatusVersion version)
{
	TupleDesc	tupdesc;
	Datum		values[STATUS_COLS];
	bool		nulls[STATUS_COLS];
	bool		in_recovery = RecoveryInProgress();
	TimeLineID	timeline;
	XLogRecPtr	current;
	SlotInfo	slot = barman_ha_slot_info(barman_ha_slot_name);
	SlotWal		wal = barman_ha_slot_wal(&slot, in_recovery);
	const char *node = barman_ha_effective_node_name();
	const char *wal_status = barman_ha_slot_wal_status_name(wal.status);
	NameData	slot_name;
	XLogRecPtr	primary_slot_lsn;
	TimestampTz last_success_at;
	uint64		helper_failures;
	uint64		slot_invalidations;
	RouteState	route_state;
	int			expected_cols;
	int			i = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	expected_cols = version == STATUS_V1_0 ? STATUS_COLS_V1_0 : STATUS_COLS_V1_1;
	if (tupdesc->natts != expected_cols)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("barman_ha_status() is declared with %d columns, expected %d",
						tupdesc->natts, expected_cols),
				 errhint("Run ALTER EXTENSION repmgr_barman_ha UPDATE.")));
	memset(nulls, 0, sizeof(nulls));

	if (in_recovery)
		current = GetXLogReplayRecPtr(&timeline);
	else
	{
		current = GetXLogWriteRecPtr();
		timeline = GetWALInsertionTimeLine();
	}

	values[i++] = CStringGetTextDatum(in_recovery ? "standby" : "primary");
	values[i++] = Int32GetDatum((int32) timeline);
	if (node)
		values[i++] = CStringGetTextDatum(node);
	else
		nulls[i++] = true;
	namestrcpy(&slot_name, barman_ha_slot_name);
	values[i++] = NameGetDatum(&slot_name);
	values[i++] = BoolGetDatum(slot.exists);
	values[i++] = BoolGetDatum(slot.active);
	if (XLogRecPtrIsInvalid(slot.restart_lsn))
	{
		nulls[i++] = true;
		nulls[i++] = true;
	}
	else
	{
		values[i++] = LSNGetDatum(slot.restart_lsn);
		values[i++] = Int64GetDatum(current > slot.restart_lsn ?
									(int64) (current - slot.restart_lsn) : 0);
	}

	LWLockAcquire(barman_ha_state->lock, LW_SHARED);
	route_state = barman_ha_state->route_state;
	values[i++] = CStringGetTextDatum(barman_ha_route_state_name(route_state));
	if (barman_ha_state->routed_node[0])
		values[i++] = CStringGetTextDatum(barman_ha_state->routed_node);
	else
		nulls[i++] = true;
	if (barman_ha_state->last_action[0])
	{
		values[i++] = CStringGetTextDatum(barman_ha_state->last_action);
		values[i++] = TimestampTzGetDatum(barman_ha_state->last_action_at);
	}
	else
	{
		nulls[i++] = true;
		nulls[i++] = true;
	}
	if (barman_ha_state->last_error[0])
		values[i++] = CStringGetTextDatum(barman_ha_state->last_error);
	else
		nulls[i++] = true;
	if (barman_ha_state->worker_pid)
		values[i++] = Int32GetDatum(barman_ha_state->worker_pid);
	else
		nulls[i++] = true;
	primary_slot_lsn = barman_ha_state->primary_slot_lsn;
	last_success_at = barman_ha_state->last_success_at;
	helper_failures = barman_ha_state->helper_failures;
	slot_invalidations = barman_ha_state->slot_invalidations;
	LWLockRelease(barman_ha_state->lock);

	/* on a standby following the primary's slot: where that is, how far behind */
	if (in_recovery && !XLogRecPtrIsInvalid(primary_slot_lsn))
	{
		values[i++] = LSNGetDatum(primary_slot_lsn);
		if (XLogRecPtrIsInvalid(slot.restart_lsn))
			nulls[i++] = true;
		else
			values[i++] = Int64GetDatum((int64) primary_slot_lsn - (int64) slot.restart_lsn);
	}
	else
	{
		nulls[i++] = true;
		nulls[i++] = true;
	}

	Assert(i == STATUS_COLS_V1_0);

	/* 1.1: what tells the dangerous states */
	if (wal_status)
		values[i++] = CStringGetTextDatum(wal_status);
	else
		nulls[i++] = true;
	if (wal.has_safe_size)
		values[i++] = Int64GetDatum(wal.safe_wal_size);
	else
		nulls[i++] = true;
	values[i++] = Int64GetDatum((int64) slot_invalidations);
	/* on a primary only: a standby calls no helper */
	if (!in_recovery && last_success_at != 0)
		values[i++] = Float8GetDatum((GetCurrentTimestamp() - last_success_at) / 1000000.0);
	else
		nulls[i++] = true;
	values[i++] = Int64GetDatum((int64) helper_failures);
	values[i++] = BoolGetDatum(route_state == ROUTE_FENCED);
	Assert(i == STATUS_COLS_V1_1);

	/* a 1.0 declaration takes the first 16 values only */
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* barman_ha_status() as repmgr_barman_ha 1.0 declares it */
Datum
barman_ha_status(PG_FUNCTION_ARGS)
{
	return status_internal(fcinfo, STATUS_V1_0);
}

Datum
barman_ha_status_1_1(PG_FUNCTION_ARGS)
{
	return status_internal(fcinfo, STATUS_V1_1);
}

Datum
barman_ha_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	BarmanHaEvent *events = palloc(sizeof(BarmanHaEvent) * BARMAN_HA_EVENTS);
	int			nevents = 0;
	uint64		end;

	InitMaterializedSRF(fcinfo, 0);

	/* copy out under the lock, build tuples without it */
	LWLockAcquire(barman_ha_state->lock, LW_SHARED);
	end = barman_ha_state->events_written;
	for (uint64 n = end > BARMAN_HA_EVENTS ? end - BARMAN_HA_EVENTS : 0; n < end; n++)
		events[nevents++] = barman_ha_state->events[n % BARMAN_HA_EVENTS];
	LWLockRelease(barman_ha_state->lock);

	for (int n = 0; n < nevents; n++)
	{
		BarmanHaEvent *ev = &events[n];
		Datum		values[EVENTS_COLS];
		bool		nulls[EVENTS_COLS] = {false};

		values[0] = TimestampTzGetDatum(ev->at);
		values[1] = CStringGetTextDatum(ev->event);
		values[2] = CStringGetTextDatum(ev->detail);
		values[3] = Float8GetDatum(ev->duration_ms);
		values[4] = BoolGetDatum(ev->ok);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

Datum
barman_ha_reconcile(PG_FUNCTION_ARGS)
{
	Latch	   *latch;

	LWLockAcquire(barman_ha_state->lock, LW_SHARED);
	latch = barman_ha_state->worker_latch;
	if (latch)
		SetLatch(latch);
	LWLockRelease(barman_ha_state->lock);

	if (latch == NULL)
		ereport(WARNING,
				(errmsg("no barman_ha worker is running"),
				 errhint("Check that barman_ha.enabled is on and the server log for worker errors.")));
	PG_RETURN_BOOL(latch != NULL);
}
