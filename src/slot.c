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

/*
 * Leave a slot operation that raised an error: free what it held and turn
 * the error into a message for the event ring.  The worker goes on; an
 * ERROR escaping would end it.
 */
static void
recover_from_slot_error(MemoryContext cxt, char *message, size_t size)
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

static double
ms_since(TimestampTz start)
{
	return (GetCurrentTimestamp() - start) / 1000.0;
}

/*
 * Make sure the slot exists with WAL reserved.  Returns whether it does.
 *
 * A new slot is created ephemeral and made persistent only once its WAL is
 * reserved, so a failure in between leaves nothing behind.
 */
bool
barman_ha_ensure_slot(const char *name)
{
	SlotInfo	info = barman_ha_slot_info(name);
	TimestampTz start = GetCurrentTimestamp();
	MemoryContext cxt = CurrentMemoryContext;
	char		message[BARMAN_HA_MSG_LEN];
	bool		ok = false;
	bool		created = !info.exists;

	if (info.exists && !XLogRecPtrIsInvalid(info.restart_lsn))
		return true;

	PG_TRY();
	{
		CheckSlotRequirements();
		if (created)
		{
			ReplicationSlotCreate(name, false, RS_EPHEMERAL, false);
			ReplicationSlotReserveWal();
			ReplicationSlotPersist();
		}
		else
		{
			ReplicationSlotAcquire(name, true);
			ReplicationSlotReserveWal();
			ReplicationSlotMarkDirty();
			ReplicationSlotSave();
		}
		ReplicationSlotRelease();
		ok = true;
	}
	PG_CATCH();
	{
		recover_from_slot_error(cxt, message, sizeof(message));
	}
	PG_END_TRY();

	if (ok)
	{
		info = barman_ha_slot_info(name);
		barman_ha_record_event(created ? "slot_created" : "slot_repaired", true,
							   ms_since(start), "slot \"%s\" reserves WAL from %X/%X",
							   name, LSN_FORMAT_ARGS(info.restart_lsn));
	}
	else
	{
		ereport(WARNING,
				(errmsg("barman_ha could not create replication slot \"%s\": %s",
						name, message)));
		barman_ha_record_event("slot_create_failed", false, ms_since(start),
							   "slot \"%s\": %s", name, message);
	}
	return ok;
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
	MemoryContext cxt = CurrentMemoryContext;
	char		message[BARMAN_HA_MSG_LEN];
	bool		ok = false;

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

	PG_TRY();
	{
		ReplicationSlotDrop(name, true);
		ok = true;
	}
	PG_CATCH();
	{
		recover_from_slot_error(cxt, message, sizeof(message));
	}
	PG_END_TRY();

	if (ok)
	{
		ereport(LOG,
				(errmsg("barman_ha dropped replication slot \"%s\" because this node is a standby",
						name)));
		barman_ha_record_event("slot_dropped", true, ms_since(start),
							   "slot \"%s\" dropped on standby", name);
	}
	else
	{
		ereport(WARNING,
				(errmsg("barman_ha could not drop replication slot \"%s\": %s",
						name, message)));
		barman_ha_record_event("slot_drop_failed", false, ms_since(start),
							   "slot \"%s\": %s", name, message);
	}
}

/*
 * Move the slot's restart_lsn forward to target, never back: WAL before
 * the current position may already be gone.  The new position reaches disk
 * with the next restartpoint; after a crash the slot is older, which only
 * keeps more WAL.  Returns whether the slot is at or past target.
 */
bool
barman_ha_advance_slot(const char *name, XLogRecPtr target)
{
	MemoryContext cxt = CurrentMemoryContext;
	char		message[BARMAN_HA_MSG_LEN];
	bool		reached = false;

	PG_TRY();
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
		reached = true;
	}
	PG_CATCH();
	{
		recover_from_slot_error(cxt, message, sizeof(message));
		ereport(WARNING,
				(errmsg("barman_ha could not advance replication slot \"%s\": %s",
						name, message)));
	}
	PG_END_TRY();
	return reached;
}
