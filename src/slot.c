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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "storage/condition_variable.h"
#include "storage/spin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "barman_ha.h"

SlotInfo
barman_ha_slot_info(const char *name)
{
	SlotInfo	info = {false, false, InvalidXLogRecPtr};

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
