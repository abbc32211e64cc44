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

SlotInfo
barman_ha_slot_info(const char *name)
{
	SlotInfo	info = {false, false, InvalidXLogRecPtr, InvalidXLogRecPtr};

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
		info.invalidated_at = s->data.invalidated_at;
		SpinLockRelease(&s->mutex);
		break;
	}
	LWLockRelease(ReplicationSlotControlLock);
	return info;
}

/* A slot operation: what the worker asks of the replication slot API. */
typedef void (*SlotOperation) (const char *name, XLogRecPtr lsn);

/*
 * Run a slot operation; an ERROR it raises is caught, what it held is freed
 * and its message is left in message.  The worker goes on: an ERROR
 * escaping would end it.  Returns whether the operation completed.
 */
static bool
try_slot_operation(SlotOperation operation, const char *name, XLogRecPtr lsn,
				   char *message, size_t size)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool completed = false;

	PG_TRY();
	{
		operation(name, lsn);
		completed = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		LWLockReleaseAll();
		ConditionVariableCancelSleep();
		/* an ephemeral slot we were creating is dropped by this */
		if (MyReplicationSlot != NULL)
			ReplicationSlotRelease();
		strlcpy(message, edata->message, size);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return completed;
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
	ReplicationSlotCreate(name, false, RS_EPHEMERAL, false);
	ReplicationSlotReserveWal();
	ReplicationSlotPersist();
	ReplicationSlotRelease();
}

/* Reserve WAL for a slot that has none (or lost it to invalidation). */
static void
repair_slot(const char *name, XLogRecPtr unused)
{
	ReplicationSlotAcquire(name, true);
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

	ReplicationSlotAcquire(name, true);
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

static double
ms_since(TimestampTz start)
{
	return (GetCurrentTimestamp() - start) / 1000.0;
}

/* Make sure the slot exists with WAL reserved.  Returns whether it does. */
bool
barman_ha_ensure_slot(const char *name)
{
	SlotInfo	info = barman_ha_slot_info(name);
	TimestampTz start = GetCurrentTimestamp();
	char		message[BARMAN_HA_MSG_LEN];
	bool		created = !info.exists;

	if (info.exists && !XLogRecPtrIsInvalid(info.restart_lsn))
		return true;

	if (!try_slot_operation(created ? create_slot : repair_slot, name,
							InvalidXLogRecPtr, message, sizeof(message)))
	{
		ereport(WARNING,
				(errmsg("barman_ha could not create replication slot \"%s\": %s",
						name, message)));
		barman_ha_record_event("slot_create_failed", false, ms_since(start),
							   "slot \"%s\": %s", name, message);
		return false;
	}
	info = barman_ha_slot_info(name);
	barman_ha_record_event(created ? "slot_created" : "slot_repaired", true,
						   ms_since(start), "slot \"%s\" reserves WAL from %X/%X",
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
	char		message[BARMAN_HA_MSG_LEN];

	if (!info.exists)
		return;
	if (info.active)
	{
		/* say it once, not at every reconcile */
		if (!active_reported)
		{
			ereport(LOG,
					(errmsg("barman_ha keeps replication slot \"%s\" on this standby because it is active",
							name),
					 errdetail("A client is streaming from it; it will be dropped once it is inactive.")));
			barman_ha_record_event("slot_kept_active", true, 0,
								   "slot \"%s\" is active, not dropped", name);
			active_reported = true;
		}
		return;
	}
	active_reported = false;

	if (!try_slot_operation(drop_slot, name, InvalidXLogRecPtr, message, sizeof(message)))
	{
		ereport(WARNING,
				(errmsg("barman_ha could not drop replication slot \"%s\": %s",
						name, message)));
		barman_ha_record_event("slot_drop_failed", false, ms_since(start),
							   "slot \"%s\": %s", name, message);
		return;
	}
	ereport(LOG,
			(errmsg("barman_ha dropped replication slot \"%s\" because this node is a standby",
					name)));
	barman_ha_record_event("slot_dropped", true, ms_since(start),
						   "slot \"%s\" dropped on standby", name);
}

/*
 * Move the slot's restart_lsn forward to target (never back).  Returns
 * whether the slot is now at or past target.
 */
bool
barman_ha_advance_slot(const char *name, XLogRecPtr target)
{
	char		message[BARMAN_HA_MSG_LEN];

	if (try_slot_operation(advance_slot, name, target, message, sizeof(message)))
		return true;
	ereport(WARNING,
			(errmsg("barman_ha could not advance replication slot \"%s\": %s",
					name, message)));
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

	if (XLogRecPtrIsInvalid(info->restart_lsn))
	{
		/* invalidated: PostgreSQL moved restart_lsn to invalidated_at */
		if (!XLogRecPtrIsInvalid(info->invalidated_at))
			wal.status = SLOT_WAL_LOST;
		return wal;
	}

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
	SlotInfo	info = barman_ha_slot_info(name);
	bool		in_recovery = RecoveryInProgress();
	SlotWal		wal = barman_ha_slot_wal(&info, in_recovery);
	const char *copy = in_recovery ? "this standby's copy of " : "";
	SlotWalStatus seen;
	bool		was_near;
	bool		near = false;
	int64		retained = 0;
	int64		limit = (int64) max_slot_wal_keep_size_mb * 1024 * 1024;

	if (!XLogRecPtrIsInvalid(info.restart_lsn) && wal.current > info.restart_lsn)
		retained = (int64) (wal.current - info.restart_lsn);
	if (max_slot_wal_keep_size_mb >= 0 && wal.status != SLOT_WAL_LOST &&
		wal.status != SLOT_WAL_NONE)
		near = retained > limit / 100 * BARMAN_HA_SLOT_WARN_PERCENT;

	LWLockAcquire(barman_ha_state->lock, LW_EXCLUSIVE);
	seen = barman_ha_state->slot_wal_seen;
	was_near = barman_ha_state->slot_near_limit;
	barman_ha_state->slot_wal_seen = wal.status;
	barman_ha_state->slot_near_limit = near;
	if (wal.status == SLOT_WAL_LOST && seen != SLOT_WAL_LOST)
		barman_ha_state->slot_invalidations++;
	LWLockRelease(barman_ha_state->lock);

	if (wal.status == SLOT_WAL_LOST && seen != SLOT_WAL_LOST)
	{
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("barman_ha: %sreplication slot \"%s\" has been invalidated",
						copy, name),
				 errdetail("The slot retained more WAL than max_slot_wal_keep_size (%d MB) allows; WAL from %X/%X on was removed before Barman received it.",
						   max_slot_wal_keep_size_mb, LSN_FORMAT_ARGS(info.invalidated_at)),
				 errhint("The slot is reserved anew, but Barman's archive now has a gap: check \"barman check\", reset receive-wal and take a new base backup.")));
		barman_ha_record_event("slot_invalidated", false, 0,
							   "%sslot \"%s\" lost WAL from %X/%X (max_slot_wal_keep_size %d MB)",
							   copy, name, LSN_FORMAT_ARGS(info.invalidated_at),
							   max_slot_wal_keep_size_mb);
	}
	else if (wal.status == SLOT_WAL_UNRESERVED && seen != SLOT_WAL_UNRESERVED)
	{
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("barman_ha: %sreplication slot \"%s\" no longer reserves its WAL",
						copy, name),
				 errdetail("It retains %lld MB from %X/%X, more than max_slot_wal_keep_size (%d MB): the next %s removes that WAL and invalidates the slot.",
						   (long long) (retained / (1024 * 1024)),
						   LSN_FORMAT_ARGS(info.restart_lsn), max_slot_wal_keep_size_mb,
						   in_recovery ? "restartpoint" : "checkpoint"),
				 errhint("Make Barman catch up (\"barman check\", \"barman receive-wal\") or raise max_slot_wal_keep_size.")));
		barman_ha_record_event("slot_unreserved", false, 0,
							   "%sslot \"%s\" retains %lld MB, over max_slot_wal_keep_size (%d MB)",
							   copy, name, (long long) (retained / (1024 * 1024)),
							   max_slot_wal_keep_size_mb);
	}
	else if (near && !was_near)
	{
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("barman_ha: %sreplication slot \"%s\" retains %lld MB of WAL, over %d%% of max_slot_wal_keep_size",
						copy, name, (long long) (retained / (1024 * 1024)),
						BARMAN_HA_SLOT_WARN_PERCENT),
				 errdetail("Once it retains more than max_slot_wal_keep_size (%d MB), PostgreSQL invalidates it and removes WAL Barman has not received yet.",
						   max_slot_wal_keep_size_mb),
				 errhint("Make Barman catch up (\"barman check\", \"barman receive-wal\") or raise max_slot_wal_keep_size.")));
		barman_ha_record_event("slot_near_limit", false, 0,
							   "%sslot \"%s\" retains %lld MB of max_slot_wal_keep_size %d MB",
							   copy, name, (long long) (retained / (1024 * 1024)),
							   max_slot_wal_keep_size_mb);
	}

	/* back to safe: said once too */
	if ((seen == SLOT_WAL_UNRESERVED || was_near) && !near &&
		(wal.status == SLOT_WAL_RESERVED || wal.status == SLOT_WAL_EXTENDED))
		barman_ha_record_event("slot_wal_safe", true, 0,
							   "%sslot \"%s\" is %s again, retaining %lld MB",
							   copy, name, barman_ha_slot_wal_status_name(wal.status),
							   (long long) (retained / (1024 * 1024)));
}
