/*-------------------------------------------------------------------------
 *
 * reconcile_primary.c
 *		One pass of the primary worker: the barman slot exists with WAL
 *		reserved, then the backup host's endpoints lead here.
 *
 * The helper's "promote NODE TIMELINE" is idempotent and cheap when all is
 * already right, so calling it again every reconcile interval is how a
 * flushed NAT table or a restarted backup host is noticed and repaired.
 * A failed call is retried with a doubling wait; a fenced one is not
 * retried for the same timeline unless barman_ha_reconcile() asks for it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "utils/timestamp.h"

#include "barman_ha.h"

static TimestampTz next_route_at = 0;
static int	failures_in_a_row = 0;
static TimeLineID fenced_timeline = 0;

static long
reconcile_interval_ms(void)
{
	return barman_ha_reconcile_interval * 1000L;
}

/* barman_ha.retry_interval doubled per failure, at most the reconcile interval */
static long
retry_delay_ms(void)
{
	long		delay = barman_ha_retry_interval;

	for (int i = 1; i < failures_in_a_row && delay < reconcile_interval_ms(); i++)
		delay *= 2;
	return Min(delay, reconcile_interval_ms());
}

static RouteState
current_route_state(void)
{
	RouteState	state;

	LWLockAcquire(barman_ha_state->lock, LW_SHARED);
	state = barman_ha_state->route_state;
	LWLockRelease(barman_ha_state->lock);
	return state;
}

/* Ask the helper to route the endpoints here; returns ms to the next pass. */
static long
route_here(const char *node, TimeLineID timeline)
{
	char		timeline_arg[16];
	const char *args[5];
	HelperResult result;
	TimestampTz start = GetCurrentTimestamp();
	RouteState	before = current_route_state();
	double		ms;

	snprintf(timeline_arg, sizeof(timeline_arg), "%u", timeline);
	args[0] = barman_ha_helper_path;
	args[1] = "promote";
	args[2] = node;
	args[3] = timeline_arg;
	args[4] = NULL;

	if (before != ROUTE_OK)
		barman_ha_set_route(ROUTE_PENDING, NULL);
	barman_ha_run_helper(args, &result);
	ms = (GetCurrentTimestamp() - start) / 1000.0;
	if (result.last_error[0] == '\0' && result.exit_code > 0)
		snprintf(result.last_error, sizeof(result.last_error),
				 "helper exited with code %d", result.exit_code);

	if (result.exit_code == BHA_EXIT_OK)
	{
		barman_ha_count_helper_call(true);
		failures_in_a_row = 0;
		fenced_timeline = 0;
		barman_ha_set_route(ROUTE_OK, node);
		if (before != ROUTE_OK)
			barman_ha_record_event("routed", true, ms,
								   "endpoints lead to %s on timeline %u", node, timeline);
		next_route_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													reconcile_interval_ms());
		return reconcile_interval_ms();
	}
	/* a refusal, an error or a timeout: a failed call all the same */
	barman_ha_count_helper_call(false);

	if (result.exit_code == BHA_EXIT_FENCED)
	{
		fenced_timeline = timeline;
		/* the endpoints belong to another node now, whichever it is */
		barman_ha_set_route(ROUTE_FENCED, "");
		barman_ha_record_event("fenced", false, ms, "timeline %u refused: %s",
							   timeline, result.last_error);
		barman_ha_set_error("%s", result.last_error);
		ereport(WARNING,
				(errmsg("barman_ha: the backup host refused to route to node \"%s\" on timeline %u",
						node, timeline),
				 errdetail("%s", result.last_error),
				 errhint("A newer primary has taken the endpoints. Rejoin this node as a standby.")));
		return reconcile_interval_ms();
	}

	failures_in_a_row++;
	barman_ha_set_route(ROUTE_FAILED, NULL);
	barman_ha_record_event("route_failed", false, ms, "helper exit %d: %s",
						   result.exit_code, result.last_error);
	ereport(LOG,
			(errmsg("barman_ha could not route the endpoints to node \"%s\": %s",
					node, result.last_error),
			 errdetail("The helper %s exited with code %d; retrying in %ld ms.",
					   barman_ha_helper_path, result.exit_code, retry_delay_ms())));
	barman_ha_set_error("%s", result.last_error);
	next_route_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), retry_delay_ms());
	return retry_delay_ms();
}

/*
 * Returns the ms to wait before the next pass.  forced: a request or a
 * reload woke us, so back-off and fencing are not waited out.
 */
long
barman_ha_reconcile_primary(bool forced)
{
	const char *node;
	TimeLineID	timeline;
	TimestampTz now;

	if (!barman_ha_enabled)
	{
		barman_ha_set_route(ROUTE_DISABLED, NULL);
		return reconcile_interval_ms();
	}

	/* a slot lost to max_slot_wal_keep_size is seen before it is repaired */
	barman_ha_check_slot_wal(barman_ha_slot_name);

	/* routes move only to a node whose slot holds the WAL Barman needs */
	if (!barman_ha_ensure_slot(barman_ha_slot_name))
	{
		failures_in_a_row++;
		barman_ha_set_route(ROUTE_FAILED, NULL);
		return retry_delay_ms();
	}

	if (barman_ha_helper_path[0] == '\0')
	{
		barman_ha_set_route(ROUTE_DISABLED, NULL);
		return reconcile_interval_ms();
	}

	node = barman_ha_effective_node_name();
	if (node == NULL)
	{
		/* say it once; it stays so until a reload */
		if (current_route_state() != ROUTE_FAILED)
			barman_ha_record_event("route_failed", false, 0,
								   "no node name: set barman_ha.node_name or cluster_name");
		barman_ha_set_route(ROUTE_FAILED, NULL);
		return reconcile_interval_ms();
	}

	timeline = GetWALInsertionTimeLine();
	if (!forced && fenced_timeline == timeline)
		return reconcile_interval_ms();

	now = GetCurrentTimestamp();
	if (!forced && now < next_route_at)
		return Max((next_route_at - now) / 1000, 1);

	return route_here(node, timeline);
}
