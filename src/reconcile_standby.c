/*-------------------------------------------------------------------------
 *
 * reconcile_standby.c
 *		One pass of the standby worker, after barman_ha.standby_slot:
 *
 *		sync  keep a local slot of the same name whose restart_lsn follows
 *			  the primary's barman slot, never past what this standby has
 *			  replayed and never backwards.  The standby then keeps every
 *			  segment Barman has not received yet, and at promotion the slot
 *			  is already there: Barman goes on without a gap in its archive.
 *		drop  drop a leftover inactive slot, as repmgr event scripts do.
 *		keep  leave the slot as it is.
 *
 * A standby slot holds no more WAL than the primary's slot does, plus what
 * replay lags; max_slot_wal_keep_size bounds both the same way.  Each pass
 * first notes whether the copy is still safe (barman_ha_check_slot_wal):
 * a copy the standby invalidated is lost WAL Barman may still need.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xlogrecovery.h"

#include "barman_ha.h"

/* Where following the primary's slot stands; an event marks each change. */
typedef enum SyncState
{
	SYNC_UNKNOWN,
	SYNC_FOLLOWING,
	SYNC_PRIMARY_UNREADABLE,
	SYNC_PRIMARY_SLOT_MISSING,
	SYNC_BEHIND
} SyncState;

static SyncState sync_state = SYNC_UNKNOWN;

/*
 * Move to state, saying so once with an event; a state that is not
 * following the primary is a failure (sqlerrcode says which), which is
 * also logged and becomes last_error.
 */
static void
enter_sync_state(SyncState state, const char *event, int sqlerrcode,
				 const char *detail)
{
	if (state == sync_state)
		return;
	sync_state = state;
	if (state == SYNC_FOLLOWING)
		barman_ha_record_event(event, true, 0, "%s", detail);
	else
		barman_ha_report_failure(&(BarmanHaFailure) {
			.event = event,
			.detail = detail,
			.elevel = LOG,
			.sqlerrcode = sqlerrcode,
			.message = psprintf("barman_ha: %s", detail),
		});
}

static void
sync_slot(const char *name)
{
	char		detail[BARMAN_HA_MSG_LEN];
	bool		primary_has_slot;
	XLogRecPtr	primary_lsn;
	XLogRecPtr	replay = GetXLogReplayRecPtr(NULL);
	XLogRecPtr	target;
	SlotInfo	local;

	if (!barman_ha_read_primary_slot(name, &primary_has_slot, &primary_lsn,
									 detail, sizeof(detail)))
	{
		/* the local slot stays where it is: it keeps more WAL, never less */
		barman_ha_set_primary_slot_lsn(InvalidXLogRecPtr);
		enter_sync_state(SYNC_PRIMARY_UNREADABLE, "slot_sync_failed",
						 ERRCODE_CONNECTION_FAILURE, detail);
		return;
	}
	barman_ha_set_primary_slot_lsn(primary_lsn);

	if (!barman_ha_ensure_slot(name))
		return;
	local = barman_ha_slot_info(name);
	if (local.active)
		return;					/* a client streams from it: it moves the slot */

	if (!primary_has_slot)
	{
		snprintf(detail, sizeof(detail),
				 "the primary has no slot \"%s\": the standby's slot follows replay and keeps no extra WAL",
				 name);
		enter_sync_state(SYNC_PRIMARY_SLOT_MISSING, "primary_slot_missing",
						 ERRCODE_UNDEFINED_OBJECT, detail);
		target = replay;
	}
	else if (primary_lsn < local.restart_lsn)
	{
		snprintf(detail, sizeof(detail),
				 "Barman's slot on the primary is at %X/%X but this standby keeps WAL only from %X/%X",
				 LSN_FORMAT_ARGS(primary_lsn), LSN_FORMAT_ARGS(local.restart_lsn));
		enter_sync_state(SYNC_BEHIND, "slot_sync_behind",
						 ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, detail);
		target = InvalidXLogRecPtr;
	}
	else
	{
		snprintf(detail, sizeof(detail), "slot \"%s\" follows the primary's, now at %X/%X",
				 name, LSN_FORMAT_ARGS(primary_lsn));
		enter_sync_state(SYNC_FOLLOWING, "slot_sync_following", ERRCODE_SUCCESSFUL_COMPLETION,
						 detail);
		target = Min(primary_lsn, replay);
	}
	if (!XLogRecPtrIsInvalid(target))
		(void) barman_ha_advance_slot(name, target);
}

/*
 * Returns the ms to wait before the next pass, or -1 once recovery ended.
 * Every pass does the same, forced or not.
 */
long
barman_ha_reconcile_standby(bool forced)
{
	const char *slot_name = barman_ha_slot_name;

	if (!RecoveryInProgress())
		return -1;
	barman_ha_set_route(ROUTE_DISABLED, NULL);
	if (barman_ha_enabled)
	{
		switch ((StandbySlotMode) barman_ha_standby_slot)
		{
			case STANDBY_SLOT_SYNC:
				/* before sync_slot() repairs a copy that was invalidated */
				barman_ha_check_slot_wal(slot_name);
				sync_slot(slot_name);
				break;
			case STANDBY_SLOT_DROP:
				barman_ha_drop_inactive_slot(slot_name);
				break;
			case STANDBY_SLOT_KEEP:
				barman_ha_check_slot_wal(slot_name);
				break;
		}
	}
	return barman_ha_reconcile_interval * BARMAN_HA_MS_PER_SEC;
}
