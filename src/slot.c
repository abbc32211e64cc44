/*-------------------------------------------------------------------------
 *
 * slot.c
 *		The barman slot, handled in-process with the replication slot API as
 *		slotfuncs.c does: looked up, created with WAL reserved at once,
 *		repaired, and dropped.
 *
 * A slot created through SQL without reserving WAL (as repmgr event
 * scripts commonly do) has no restart_lsn, so the WAL Barman still needs can
 * be recycled before it reconnects; such a slot is repaired here.
 *
 * The slot's wal_status and safe_wal_size are computed here as
 * pg_replication_slots computes them, and each pass notes when the slot
 * stops being safe: unreserved, lost (invalidated), or close to
 * max_slot_wal_keep_size.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogrecovery.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "replication/walreceiver.h"
#include "storage/condition_variable.h"
#include "storage/spin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "barman_ha.h"

/* max_slot_wal_keep_size and retained WAL are counted in MB. */
#define BYTES_PER_MB (1024 * 1024)
/* What the DBA can do about a slot that retains too much WAL. */
#define SLOT_CATCH_UP_HINT \
	"Make Barman catch up (\"barman check\", \"barman receive-wal\") or raise max_slot_wal_keep_size."

/*
 * The name pg_replication_slots gives an invalidation's cause (17's
 * invalidation_reason); 16 has the causes without the column.  Only
 * wal_removed and (18) idle_timeout happen to a physical slot.
 */
#if PG_VERSION_NUM >= 160000
static const char *
invalidation_cause_name(ReplicationSlotInvalidationCause cause)
{
	switch (cause)
	{
		case RS_INVAL_NONE:
			return NULL;
		case RS_INVAL_WAL_REMOVED:
			return "wal_removed";
		case RS_INVAL_HORIZON:
			return "rows_removed";
		case RS_INVAL_WAL_LEVEL:
			return "wal_level_insufficient";
#if PG_VERSION_NUM >= 180000
		case RS_INVAL_IDLE_TIMEOUT:
			return "idle_timeout";
#endif
	}
	return "unknown";
}
#endif

SlotInfo
barman_ha_slot_info(const char *name)
{
	SlotInfo	info = {false, false, InvalidXLogRecPtr, NULL, InvalidXLogRecPtr};

	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	for (int i = 0; i < max_replication_slots; i++)
	{
		ReplicationSlot *s = &ReplicationSlotCtl->replication_slots[i];

		if (!s->in_use || strcmp(NameStr(s->data.name), name) != 0)
			continue;
		SpinLockAcquire(&s->mutex);
		info.exists = true;
		info.active = s->active_pid != 0;
		info.restart_lsn = s->data.restart_lsn;
#if PG_VERSION_NUM >= 160000
		info.invalidation_reason = invalidation_cause_name(s->data.invalidated);
#else
		/* before 16 only lost WAL invalidates, and reserving WAL anew undoes it */
		info.invalidated_at = s->data.invalidated_at;
		if (XLogRecPtrIsInvalid(info.restart_lsn) &&
			!XLogRecPtrIsInvalid(info.invalidated_at))
			info.invalidation_reason = "wal_removed";
#endif
		SpinLockRelease(&s->mutex);
		break;
	}
	LWLockRelease(ReplicationSlotControlLock);
	return info;
}

/* A slot operation: what the worker asks of the replication slot API. */
typedef void (*SlotOperation) (const char *name, XLogRecPtr lsn);

/*
 * Run a slot operation.  An ERROR it raises is caught, what it held is
 * freed, and the error is returned (copied into the caller's memory
 * context); NULL when the operation completed.  The worker goes on: an
 * ERROR escaping would end it.
 */
static ErrorData *
try_slot_operation(SlotOperation operation, const char *name, XLogRecPtr lsn)
{
	MemoryContext cxt = CurrentMemoryContext;
	ErrorData  *volatile edata = NULL;

	PG_TRY();
	{
		operation(name, lsn);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		LWLockReleaseAll();
		ConditionVariableCancelSleep();
		/* an ephemeral slot we were creating is dropped by this */
		if (MyReplicationSlot != NULL)
			ReplicationSlotRelease();
	}
	PG_END_TRY();
	return edata;
}

/*
 * Acquire the named slot without waiting.  18 asks whether an invalidated
 * slot is an error.
 */
static void
acquire_slot(const char *name, bool error_if_invalid)
{
#if PG_VERSION_NUM >= 180000
	ReplicationSlotAcquire(name, true, error_if_invalid);
#else
	ReplicationSlotAcquire(name, true);
#endif
}

/*
 * Create a slot with WAL reserved.  It is created ephemeral and made
 * persistent only once its WAL is reserved, so a failure in between leaves
 * nothing behind.
 */
static void
create_slot(const char *name, XLogRecPtr unused)
{
	CheckSlotRequirements();
#if PG_VERSION_NUM >= 170000
	/* a plain physical slot: not a failover slot, not synced from a primary */
	ReplicationSlotCreate(name, false, RS_EPHEMERAL, false, false, false);
#else
	ReplicationSlotCreate(name, false, RS_EPHEMERAL, false);
#endif
	ReplicationSlotReserveWal();
	ReplicationSlotPersist();
	ReplicationSlotRelease();
}

/*
 * Reserve WAL for a slot that has none, or lost it to invalidation.  From
 * 16 on a slot stays invalidated until its cause is cleared, whatever WAL it
 * reserves (pg_replication_slots says "lost"; 18's walsender refuses it), and
 * an idle_timeout one (18) still has its restart_lsn: both are reset first.
 */
static void
repair_slot(const char *name, XLogRecPtr unused)
{
	acquire_slot(name, false);
#if PG_VERSION_NUM >= 160000
	SpinLockAcquire(&MyReplicationSlot->mutex);
	MyReplicationSlot->data.invalidated = RS_INVAL_NONE;
	MyReplicationSlot->data.restart_lsn = InvalidXLogRecPtr;
	SpinLockRelease(&MyReplicationSlot->mutex);
#endif
	ReplicationSlotReserveWal();
	ReplicationSlotMarkDirty();
	ReplicationSlotSave();
	ReplicationSlotRelease();
}

static void
drop_slot(const char *name, XLogRecPtr unused)
{
	ReplicationSlotDrop(name, true);
}

/*
 * Move restart_lsn forward to target, never back: WAL before the current
 * position may already be gone.  The new position reaches disk with the
 * next restartpoint; after a crash the slot is older, which only keeps more
 * WAL.
 */
static void
advance_slot(const char *name, XLogRecPtr target)
{
	bool		moved = false;

	/* an invalidated slot is repaired first (barman_ha_ensure_slot) */
	acquire_slot(name, true);
	SpinLockAcquire(&MyReplicationSlot->mutex);
	if (MyReplicationSlot->data.restart_lsn < target)
	{
		MyReplicationSlot->data.restart_lsn = target;
		moved = true;
	}
	SpinLockRelease(&MyReplicationSlot->mutex);
	if (moved)
	{
		ReplicationSlotMarkDirty();
		ReplicationSlotsComputeRequiredLSN();
	}
	ReplicationSlotRelease();
}

/*
 * A slot operation failed: its ERROR becomes a failure of the worker, "could
 * not <action> replication slot", with the event that names the operation.
 */
static void
report_slot_failure(const char *event, const char *action, const char *name,
					TimestampTz start, const ErrorData *error, const char *log_detail)
{
	barman_ha_report_failure(&(BarmanHaFailure) {
		.event = event,
		.duration_ms = barman_ha_ms_since(start),
		.detail = psprintf("slot \"%s\": %s", name, error->message),
		.elevel = WARNING,
		.sqlerrcode = error->sqlerrcode,
		.message = psprintf("barman_ha: could not %s replication slot \"%s\": %s",
							action, name, error->message),
		.log_detail = log_detail,
	});
}

/* Make sure the slot exists with WAL reserved.  Returns whether it does. */
bool
barman_ha_ensure_slot(const char *name)
{
	SlotInfo	info = barman_ha_slot_info(name);
	TimestampTz start = GetCurrentTimestamp();
	bool		create = !info.exists;
	ErrorData  *error;

	if (info.exists && !XLogRecPtrIsInvalid(info.restart_lsn) &&
		info.invalidation_reason == NULL)
		return true;

	error = try_slot_operation(create ? create_slot : repair_slot, name,
							   InvalidXLogRecPtr);
	if (error)
	{
		/* one event name for both, as barman_ha_events() has always said */
		if (create)
			report_slot_failure("slot_create_failed", "create", name, start, error, NULL);
		else
			report_slot_failure("slot_create_failed", "reserve WAL for", name, start, error,
								"The slot exists but reserves no WAL, so WAL Barman has not received yet may be removed.");
		return false;
	}
	info = barman_ha_slot_info(name);
	barman_ha_record_event(create ? "slot_created" : "slot_repaired", true,
						   barman_ha_ms_since(start), "slot \"%s\" reserves WAL from %X/%X",
						   name, LSN_FORMAT_ARGS(info.restart_lsn));
	return true;
}

/*
 * Drop the slot unless a client streams from it.  An active slot is kept:
 * dropping it would cut off whoever uses it (a Barman still pointed here).
 */
void
barman_ha_drop_inactive_slot(const char *name)
{
	static bool active_reported = false;
	SlotInfo	info = barman_ha_slot_info(name);
	TimestampTz start = GetCurrentTimestamp();
	ErrorData  *error;

	if (!info.exists)
		return;
	if (info.active)
	{
		/* say it once, not at every reconcile */
		if (!active_reported)
		{
			ereport(LOG,
					(errmsg("barman_ha: keeping replication slot \"%s\" on this standby because it is active",
							name),
					 errdetail("A client is streaming from it; it will be dropped once it is inactive.")));
			barman_ha_record_event("slot_kept_active", true, 0,
								   "slot \"%s\" is active, not dropped", name);
			active_reported = true;
		}
		return;
	}
	active_reported = false;

	error = try_slot_operation(drop_slot, name, InvalidXLogRecPtr);
	if (error)
	{
		report_slot_failure("slot_drop_failed", "drop", name, start, error, NULL);
		return;
	}
	ereport(LOG,
			(errmsg("barman_ha: dropped replication slot \"%s\" because this node is a standby",
					name)));
	barman_ha_record_event("slot_dropped", true, barman_ha_ms_since(start),
						   "slot \"%s\" dropped on standby", name);
}

/*
 * Move the slot's restart_lsn forward to target (never back).  Returns
 * whether the slot is now at or past target.  A failure is only logged: it
 * is retried at the next pass, and the slot keeps more WAL meanwhile, not
 * less.
 */
bool
barman_ha_advance_slot(const char *name, XLogRecPtr target)
{
	ErrorData  *error = try_slot_operation(advance_slot, name, target);

	if (error == NULL)
		return true;
	ereport(WARNING,
			(errcode(error->sqlerrcode),
			 errmsg("barman_ha: could not advance replication slot \"%s\": %s",
					name, error->message)));
	return false;
}

const char *
barman_ha_slot_wal_status_name(SlotWalStatus status)
{
	switch (status)
	{
		case SLOT_WAL_NONE:
			return NULL;
		case SLOT_WAL_RESERVED:
			return "reserved";
		case SLOT_WAL_EXTENDED:
			return "extended";
		case SLOT_WAL_UNRESERVED:
			return "unreserved";
		case SLOT_WAL_LOST:
			return "lost";
	}
	return NULL;
}

/*
 * GetWALAvailability() for a standby.  A standby has no write position, so
 * GetWALAvailability() (and pg_replication_slots) see every slot there as
 * "reserved" until a restartpoint invalidates it.  A restartpoint keeps WAL
 * counting back from the later of the received and replayed positions
 * (CreateRestartPoint, KeepLogSeg); the same rules are applied here from
 * that position.
 */
static SlotWalStatus
standby_wal_availability(XLogRecPtr restart_lsn, XLogRecPtr current)
{
	XLogSegNo	current_seg;
	XLogSegNo	target_seg;
	uint64		keep_segs;

	XLByteToSeg(current, current_seg, wal_segment_size);
	XLByteToSeg(restart_lsn, target_seg, wal_segment_size);

	/* kept by the slot: within max_slot_wal_keep_size (or wal_keep_size) */
	keep_segs = Max(XLogMBVarToSegs(max_slot_wal_keep_size_mb, wal_segment_size),
					XLogMBVarToSegs(wal_keep_size_mb, wal_segment_size));
	if (max_slot_wal_keep_size_mb < 0 || target_seg >= current_seg ||
		current_seg - target_seg <= keep_segs)
	{
		/* "reserved" when within max_wal_size */
		uint64		max_wal_segs = XLogMBVarToSegs(max_wal_size_mb, wal_segment_size) + 1;

		if (current_seg <= max_wal_segs || target_seg >= current_seg - max_wal_segs)
			return SLOT_WAL_RESERVED;
		return SLOT_WAL_EXTENDED;
	}
	/* no longer kept, but not removed yet */
	if (target_seg > XLogGetLastRemovedSegno())
		return SLOT_WAL_UNRESERVED;
	return SLOT_WAL_LOST;
}

/*
 * wal_status and safe_wal_size of a slot, as pg_get_replication_slots()
 * computes them on a primary; on a standby from the received or replayed
 * position (see standby_wal_availability).  A slot that never reserved
 * WAL has neither.
 */
SlotWal
barman_ha_slot_wal(const SlotInfo *info, bool in_recovery)
{
	SlotWal		wal = {SLOT_WAL_NONE, false, 0, InvalidXLogRecPtr};

	if (!info->exists)
		return wal;
	if (in_recovery)
	{
		XLogRecPtr	received = GetWalRcvFlushRecPtr(NULL, NULL);
		XLogRecPtr	replayed = GetXLogReplayRecPtr(NULL);

		wal.current = Max(received, replayed);
	}
	else
		wal.current = GetXLogWriteRecPtr();

	/* as pg_replication_slots: an invalidated slot is "lost", whatever its restart_lsn */
	if (info->invalidation_reason != NULL)
	{
		wal.status = SLOT_WAL_LOST;
		return wal;
	}
	if (XLogRecPtrIsInvalid(info->restart_lsn))
		return wal;

	if (in_recovery)
		wal.status = standby_wal_availability(info->restart_lsn, wal.current);
	else
	{
		switch (GetWALAvailability(info->restart_lsn))
		{
			case WALAVAIL_INVALID_LSN:
				wal.status = SLOT_WAL_NONE;
				break;
			case WALAVAIL_RESERVED:
				wal.status = SLOT_WAL_RESERVED;
				break;
			case WALAVAIL_EXTENDED:
				wal.status = SLOT_WAL_EXTENDED;
				break;
			case WALAVAIL_UNRESERVED:
				wal.status = SLOT_WAL_UNRESERVED;
				break;
			case WALAVAIL_REMOVED:
				/* a client still streaming may have moved past it */
				wal.status = info->active ? SLOT_WAL_UNRESERVED : SLOT_WAL_LOST;
				break;
		}
	}

	/* safe_wal_size: only for a slot not lost, and with a limit set */
	if (wal.status != SLOT_WAL_LOST && wal.status != SLOT_WAL_NONE &&
		max_slot_wal_keep_size_mb >= 0)
	{
		XLogSegNo	target_seg;
		XLogSegNo	fail_seg;
		XLogRecPtr	fail_lsn;

		XLByteToSeg(info->restart_lsn, target_seg, wal_segment_size);
		/* once the current position reaches fail_lsn, the segment is lost */
		fail_seg = target_seg +
			Max(XLogMBVarToSegs(max_slot_wal_keep_size_mb, wal_segment_size),
				XLogMBVarToSegs(wal_keep_size_mb, wal_segment_size)) + 1;
		XLogSegNoOffsetToRecPtr(fail_seg, 0, wal_segment_size, fail_lsn);
		wal.has_safe_size = true;
		wal.safe_wal_size = (int64) (fail_lsn - wal.current);
	}
	return wal;
}

/* What barman_ha_check_slot_wal() saw, for its reports. */
typedef struct SlotWalLook
{
	const char *name;
	const char *copy;			/* "this standby's copy of " on a standby */
	bool		in_recovery;
	SlotInfo	info;
	SlotWal		wal;
	const char *lost_reason;	/* why wal_status is lost, or NULL */
	long long	retained_mb;	/* WAL the slot retains */
} SlotWalLook;

/*
 * Say a change for the worse of the slot's WAL.  Every text names the slot
 * first ("[this standby's copy of ]slot NAME"), then what became of it:
 * event_text in the event, log_text in the log's message.
 */
static void
report_slot_wal(const SlotWalLook *look, const char *event, int sqlerrcode,
				const char *event_text, const char *log_text,
				const char *log_detail, const char *hint)
{
	barman_ha_report_failure(&(BarmanHaFailure) {
		.event = event,
		.detail = psprintf("%sslot \"%s\" %s", look->copy, look->name, event_text),
		.elevel = WARNING,
		.sqlerrcode = sqlerrcode,
		.message = psprintf("barman_ha: %sreplication slot \"%s\" %s",
							look->copy, look->name, log_text),
		.log_detail = log_detail,
		.hint = hint,
	});
}

/*
 * Say that the slot lost its WAL, and why.  Before 16 PostgreSQL keeps the
 * position from which WAL was lost; from 16 on, the cause.
 */
static void
report_invalidation(const SlotWalLook *look)
{
	const char *reason = look->lost_reason;
	const char *event_text;
	const char *log_detail;

	if (look->info.invalidation_reason != NULL &&
		!XLogRecPtrIsInvalid(look->info.invalidated_at))
	{
		event_text = psprintf("lost WAL from %X/%X (max_slot_wal_keep_size %d MB)",
							  LSN_FORMAT_ARGS(look->info.invalidated_at),
							  max_slot_wal_keep_size_mb);
		log_detail = psprintf("The slot retained more WAL than max_slot_wal_keep_size (%d MB) allows; WAL from %X/%X on was removed before Barman received it.",
							  max_slot_wal_keep_size_mb,
							  LSN_FORMAT_ARGS(look->info.invalidated_at));
	}
	else if (strcmp(reason, "wal_removed") == 0)
	{
		event_text = psprintf("lost WAL (wal_removed, max_slot_wal_keep_size %d MB)",
							  max_slot_wal_keep_size_mb);
		log_detail = psprintf("The slot retained more WAL than max_slot_wal_keep_size (%d MB) allows; WAL it kept was removed before Barman received it.",
							  max_slot_wal_keep_size_mb);
	}
	else if (strcmp(reason, "idle_timeout") == 0)
	{
		event_text = "was invalidated (idle_timeout)";
		log_detail = "The slot was inactive longer than idle_replication_slot_timeout; WAL it kept may be removed before Barman receives it.";
	}
	else
	{
		event_text = psprintf("was invalidated (%s)", reason);
		log_detail = NULL;
	}
	report_slot_wal(look, "slot_invalidated", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					event_text, psprintf("has been invalidated (%s)", reason), log_detail,
					"The slot is reserved anew, but Barman's archive now has a gap: check \"barman check\", reset receive-wal and take a new base backup.");
}

/*
 * Look at the slot's WAL at the start of a pass, before the slot is
 * repaired: an invalidated slot is repaired within the same pass, so this
 * is where its loss is seen.  Each change is said once (an event, and a
 * WARNING when the slot stops being safe), however many passes it lasts;
 * what was last seen is kept in shared memory, so a restarted worker does
 * not say it again.
 */
void
barman_ha_check_slot_wal(const char *name)
{
	SlotWalLook look;
	SlotWalStatus seen;
	bool		was_near;
	bool		near = false;
	int64		retained = 0;
	int64		limit = (int64) max_slot_wal_keep_size_mb * BYTES_PER_MB;

	look.name = name;
	look.in_recovery = RecoveryInProgress();
	look.copy = look.in_recovery ? "this standby's copy of " : "";
	look.info = barman_ha_slot_info(name);
	look.wal = barman_ha_slot_wal(&look.info, look.in_recovery);
	/* WAL already removed is lost even before PostgreSQL marks the slot */
	look.lost_reason = NULL;
	if (look.wal.status == SLOT_WAL_LOST)
		look.lost_reason = look.info.invalidation_reason ?
			look.info.invalidation_reason : "wal_removed";
	if (!XLogRecPtrIsInvalid(look.info.restart_lsn) &&
		look.wal.current > look.info.restart_lsn)
		retained = (int64) (look.wal.current - look.info.restart_lsn);
	look.retained_mb = (long long) (retained / BYTES_PER_MB);
	if (max_slot_wal_keep_size_mb >= 0 && look.wal.status != SLOT_WAL_LOST &&
		look.wal.status != SLOT_WAL_NONE)
		near = retained > limit / 100 * BARMAN_HA_SLOT_WARN_PERCENT;

	LWLockAcquire(barman_ha_state->lock, LW_EXCLUSIVE);
	seen = barman_ha_state->slot_wal_seen;
	was_near = barman_ha_state->slot_near_limit;
	barman_ha_state->slot_wal_seen = look.wal.status;
	barman_ha_state->slot_near_limit = near;
	if (look.wal.status == SLOT_WAL_LOST && seen != SLOT_WAL_LOST)
	{
		barman_ha_state->slot_invalidations++;
		strlcpy(barman_ha_state->slot_invalidation_reason, look.lost_reason,
				sizeof(barman_ha_state->slot_invalidation_reason));
	}
	LWLockRelease(barman_ha_state->lock);

	if (look.wal.status == SLOT_WAL_LOST && seen != SLOT_WAL_LOST)
		report_invalidation(&look);
	else if (look.wal.status == SLOT_WAL_UNRESERVED && seen != SLOT_WAL_UNRESERVED)
		report_slot_wal(&look, "slot_unreserved", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
						psprintf("retains %lld MB, over max_slot_wal_keep_size (%d MB)",
								 look.retained_mb, max_slot_wal_keep_size_mb),
						"no longer reserves its WAL",
						psprintf("It retains %lld MB from %X/%X, more than max_slot_wal_keep_size (%d MB): the next %s removes that WAL and invalidates the slot.",
								 look.retained_mb, LSN_FORMAT_ARGS(look.info.restart_lsn),
								 max_slot_wal_keep_size_mb,
								 look.in_recovery ? "restartpoint" : "checkpoint"),
						SLOT_CATCH_UP_HINT);
	else if (near && !was_near)
		report_slot_wal(&look, "slot_near_limit", ERRCODE_WARNING,
						psprintf("retains %lld MB of max_slot_wal_keep_size %d MB",
								 look.retained_mb, max_slot_wal_keep_size_mb),
						psprintf("retains %lld MB of WAL, over %d%% of max_slot_wal_keep_size",
								 look.retained_mb, BARMAN_HA_SLOT_WARN_PERCENT),
						psprintf("Once it retains more than max_slot_wal_keep_size (%d MB), PostgreSQL invalidates it and removes WAL Barman has not received yet.",
								 max_slot_wal_keep_size_mb),
						SLOT_CATCH_UP_HINT);

	/* back to safe: said once too */
	if ((seen == SLOT_WAL_UNRESERVED || was_near) && !near &&
		(look.wal.status == SLOT_WAL_RESERVED || look.wal.status == SLOT_WAL_EXTENDED))
		barman_ha_record_event("slot_wal_safe", true, 0,
							   "%sslot \"%s\" is %s again, retaining %lld MB",
							   look.copy, name,
							   barman_ha_slot_wal_status_name(look.wal.status),
							   look.retained_mb);
}
