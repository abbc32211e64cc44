/*-------------------------------------------------------------------------
 *
 * reconcile_standby.c
 *		One pass of the standby worker: a standby keeps no barman slot
 *		(unless barman_ha.standby_slot = 'keep'), or WAL piles up on it for
 *		a Barman that no longer streams from it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"

#include "barman_ha.h"

/*
 * Returns the ms to wait before the next pass, or -1 once recovery ended.
 * Every pass does the same, forced or not.
 */
long
barman_ha_reconcile_standby(bool forced)
{
	if (!RecoveryInProgress())
		return -1;
	barman_ha_set_route(ROUTE_DISABLED, NULL);
	if (barman_ha_enabled && barman_ha_standby_slot == STANDBY_SLOT_DROP)
		barman_ha_drop_inactive_slot(barman_ha_slot_name);
	return barman_ha_reconcile_interval * 1000L;
}
