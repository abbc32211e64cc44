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
 * and 1.2 get them and the columns each added.  Columns are only ever
 * appended.
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
PG_FUNCTION_INFO_V1(barman_ha_status_1_2);
PG_FUNCTION_INFO_V1(barman_ha_events);
PG_FUNCTION_INFO_V1(barman_ha_reconcile);

/* barman_ha_status()'s columns in each version of the SQL API */
typedef enum StatusVersion
{
	STATUS_V1_0,
	STATUS_V1_1,
	STATUS_V1_2
} StatusVersion;

#define STATUS_COLS_V1_0 16
#define STATUS_COLS_V1_1 22
#define STATUS_COLS_V1_2 23
#define STATUS_COLS STATUS_COLS_V1_2
#define EVENTS_COLS 5

/* One row of barman_ha_status() as it is filled, column after column. */
typedef struct StatusRow
{
	Datum		values[STATUS_COLS];
	bool		nulls[STATUS_COLS];
	int			n;				/* the next column */
} StatusRow;

static void
put_value(StatusRow *row, Datum value)
{
	row->nulls[row->n] = false;
	row->values[row->n++] = value;
}

static void
put_null(StatusRow *row)
{
	row->nulls[row->n] = true;
	row->values[row->n++] = (Datum) 0;
}

static void
put_text(StatusRow *row, const char *text)
{
	if (text && text[0] != '\0')
		put_value(row, CStringGetTextDatum(text));
	else
		put_null(row);
}

/* What the workers left in shared memory, copied out under the lock. */
typedef struct WorkerReport
{
	RouteState	route_state;
	char		routed_node[BARMAN_HA_NAME_LEN];
	char		last_action[NAMEDATALEN];
	TimestampTz last_action_at;
	char		last_error[BARMAN_HA_MSG_LEN];
	pid_t		worker_pid;
	XLogRecPtr	primary_slot_lsn;
	TimestampTz last_success_at;
	uint64		helper_failures;
	uint64		slot_invalidations;
	char		slot_invalidation_reason[NAMEDATALEN];
} WorkerReport;

static WorkerReport
read_worker_report(void)
{
	WorkerReport report;

	LWLockAcquire(barman_ha_state->lock, LW_SHARED);
	report.route_state = barman_ha_state->route_state;
	strlcpy(report.routed_node, barman_ha_state->routed_node, sizeof(report.routed_node));
	strlcpy(report.last_action, barman_ha_state->last_action, sizeof(report.last_action));
	report.last_action_at = barman_ha_state->last_action_at;
	strlcpy(report.last_error, barman_ha_state->last_error, sizeof(report.last_error));
	report.worker_pid = barman_ha_state->worker_pid;
	report.primary_slot_lsn = barman_ha_state->primary_slot_lsn;
	report.last_success_at = barman_ha_state->last_success_at;
	report.helper_failures = barman_ha_state->helper_failures;
	report.slot_invalidations = barman_ha_state->slot_invalidations;
	strlcpy(report.slot_invalidation_reason, barman_ha_state->slot_invalidation_reason,
			sizeof(report.slot_invalidation_reason));
	LWLockRelease(barman_ha_state->lock);
	return report;
}

/* The 16 columns of 1.0: role, node and slot, then the workers' report. */
static void
put_columns_1_0(StatusRow *row, bool in_recovery, const SlotInfo *slot,
				const WorkerReport *report)
{
	TimeLineID	timeline;
	XLogRecPtr	current;
	Name		slot_name = palloc(sizeof(NameData));	/* outlives this call */

	if (in_recovery)
		current = GetXLogReplayRecPtr(&timeline);
	else
	{
		current = GetXLogWriteRecPtr();
		timeline = GetWALInsertionTimeLine();
	}

	put_value(row, CStringGetTextDatum(in_recovery ? "standby" : "primary"));
	put_value(row, Int32GetDatum((int32) timeline));
	put_text(row, barman_ha_effective_node_name());
	namestrcpy(slot_name, barman_ha_slot_name);
	put_value(row, NameGetDatum(slot_name));
	put_value(row, BoolGetDatum(slot->exists));
	put_value(row, BoolGetDatum(slot->active));
	if (XLogRecPtrIsInvalid(slot->restart_lsn))
	{
		put_null(row);
		put_null(row);
	}
	else
	{
		put_value(row, LSNGetDatum(slot->restart_lsn));
		put_value(row, Int64GetDatum(current > slot->restart_lsn ?
									 (int64) (current - slot->restart_lsn) : 0));
	}

	put_value(row, CStringGetTextDatum(barman_ha_route_state_name(report->route_state)));
	put_text(row, report->routed_node);
	if (report->last_action[0])
	{
		put_value(row, CStringGetTextDatum(report->last_action));
		put_value(row, TimestampTzGetDatum(report->last_action_at));
	}
	else
	{
		put_null(row);
		put_null(row);
	}
	put_text(row, report->last_error);
	if (report->worker_pid)
		put_value(row, Int32GetDatum(report->worker_pid));
	else
		put_null(row);

	/* on a standby following the primary's slot: where that is, how far behind */
	if (in_recovery && !XLogRecPtrIsInvalid(report->primary_slot_lsn))
	{
		put_value(row, LSNGetDatum(report->primary_slot_lsn));
		if (XLogRecPtrIsInvalid(slot->restart_lsn))
			put_null(row);
		else
			put_value(row, Int64GetDatum((int64) report->primary_slot_lsn -
										 (int64) slot->restart_lsn));
	}
	else
	{
		put_null(row);
		put_null(row);
	}
}

/* The columns 1.1 added: what tells the dangerous states. */
static void
put_columns_1_1(StatusRow *row, bool in_recovery, const SlotInfo *slot,
				const WorkerReport *report)
{
	SlotWal		wal = barman_ha_slot_wal(slot, in_recovery);
	const char *wal_status = barman_ha_slot_wal_status_name(wal.status);

	put_text(row, wal_status);
	if (wal.has_safe_size)
		put_value(row, Int64GetDatum(wal.safe_wal_size));
	else
		put_null(row);
	put_value(row, Int64GetDatum((int64) report->slot_invalidations));
	/* on a primary only: a standby calls no helper */
	if (!in_recovery && report->last_success_at != 0)
		put_value(row, Float8GetDatum((GetCurrentTimestamp() - report->last_success_at) /
									  (double) USECS_PER_SEC));
	else
		put_null(row);
	put_value(row, Int64GetDatum((int64) report->helper_failures));
	put_value(row, BoolGetDatum(report->route_state == ROUTE_FENCED));
}

/* The column 1.2 added: why the slot was invalidated the last time. */
static void
put_columns_1_2(StatusRow *row, const WorkerReport *report)
{
	put_text(row, report->slot_invalidation_reason);
}

static const int status_cols[] = {
	[STATUS_V1_0] = STATUS_COLS_V1_0,
	[STATUS_V1_1] = STATUS_COLS_V1_1,
	[STATUS_V1_2] = STATUS_COLS_V1_2,
};

static Datum
status_internal(FunctionCallInfo fcinfo, StatusVersion version)
{
	TupleDesc	tupdesc;
	StatusRow	row;
	bool		in_recovery = RecoveryInProgress();
	SlotInfo	slot = barman_ha_slot_info(barman_ha_slot_name);
	WorkerReport report = read_worker_report();
	int			expected_cols;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("return type must be a row type")));
	expected_cols = status_cols[version];
	if (tupdesc->natts != expected_cols)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("barman_ha_status() is declared with %d columns, expected %d",
						tupdesc->natts, expected_cols),
				 errhint("Run ALTER EXTENSION repmgr_barman_ha UPDATE.")));

	row.n = 0;
	put_columns_1_0(&row, in_recovery, &slot, &report);
	Assert(row.n == STATUS_COLS_V1_0);
	put_columns_1_1(&row, in_recovery, &slot, &report);
	Assert(row.n == STATUS_COLS_V1_1);
	put_columns_1_2(&row, &report);
	Assert(row.n == STATUS_COLS_V1_2);

	/* an older declaration takes its first values only */
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, row.values, row.nulls)));
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
barman_ha_status_1_2(PG_FUNCTION_ARGS)
{
	return status_internal(fcinfo, STATUS_V1_2);
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
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no barman_ha worker is running"),
				 errhint("Check that barman_ha.enabled is on and the server log for worker errors.")));
	PG_RETURN_BOOL(latch != NULL);
}
