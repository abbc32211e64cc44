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

/* Room for a timeline as the helper's argument: up to 10 digits. */
#define TIMELINE_ARG_LEN 16

/* When the next call is due, and what the last calls said. */
static TimestampTz next_route_at = 0;
static int	failures_in_a_row = 0;
static TimeLineID fenced_timeline = 0;

static long
reconcile_interval_ms(void)
{
	return barman_ha_reconcile_interval * BARMAN_HA_MS_PER_SEC;
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

/* The endpoints lead here now: say so on the first success after a failure. */
static long
route_succeeded(const char *node, TimeLineID timeline, RouteState before, double ms)
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

/*
 * The backup host refused the claim: a newer primary holds the endpoints.
 * Not retried on this timeline until barman_ha_reconcile() asks.
 */
static long
route_fenced(const char *node, TimeLineID timeline, const HelperResult *result,
			 double ms)
{
	fenced_timeline = timeline;
	/* the endpoints belong to another node now, whichever it is */
	barman_ha_set_route(ROUTE_FENCED, "");
	barman_ha_report_failure(&(BarmanHaFailure) {
		.event = "fenced",
		.duration_ms = ms,
		.detail = psprintf("timeline %u refused: %s", timeline, result->last_error),
		.last_error = result->last_error,
		.elevel = WARNING,
		.sqlerrcode = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
		.message = psprintf("barman_ha: the backup host refused to route to node \"%s\" on timeline %u",
							node, timeline),
		.log_detail = psprintf("The backup host says: %s.", result->last_error),
		.hint = "A newer primary has taken the endpoints. Rejoin this node as a standby.",
	});
	return reconcile_interval_ms();
}

/* A call that failed (an error or a timeout): retried with back-off. */
static long
route_failed(const char *node, const HelperResult *result, double ms)
{
	long		retry_ms;

	failures_in_a_row++;
	retry_ms = retry_delay_ms();
	barman_ha_set_route(ROUTE_FAILED, NULL);
	barman_ha_report_failure(&(BarmanHaFailure) {
		.event = "route_failed",
		.duration_ms = ms,
		.detail = psprintf("helper exit %d: %s", result->exit_code, result->last_error),
		.last_error = result->last_error,
		.elevel = LOG,
		.sqlerrcode = ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
		.message = psprintf("barman_ha: could not route the endpoints to node \"%s\": %s",
							node, result->last_error),
		.log_detail = psprintf("The helper %s exited with code %d; retrying in %ld ms.",
							   barman_ha_helper_path, result->exit_code, retry_ms),
	});
	next_route_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), retry_ms);
	return retry_ms;
}

/* Ask the helper to route the endpoints here; returns ms to the next pass. */
static long
route_here(const char *node, TimeLineID timeline)
{
	char		timeline_arg[TIMELINE_ARG_LEN];
	const char *args[] = {barman_ha_helper_path, BHA_VERB_PROMOTE, node, timeline_arg, NULL};
	HelperResult result;
	TimestampTz start = GetCurrentTimestamp();
	RouteState	before = current_route_state();
	double		ms;

	snprintf(timeline_arg, sizeof(timeline_arg), "%u", timeline);
	if (before != ROUTE_OK)
		barman_ha_set_route(ROUTE_PENDING, NULL);
	barman_ha_run_helper(args, &result);
	ms = barman_ha_ms_since(start);
	if (result.last_error[0] == '\0' && result.exit_code > 0)
		snprintf(result.last_error, sizeof(result.last_error),
				 "helper exited with code %d", result.exit_code);

	if (result.exit_code == BHA_EXIT_OK)
		return route_succeeded(node, timeline, before, ms);
	/* a refusal, an error or a timeout: a failed call all the same */
	barman_ha_count_helper_call(false);
	if (result.exit_code == BHA_EXIT_FENCED)
		return route_fenced(node, timeline, &result, ms);
	return route_failed(node, &result, ms);
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
			barman_ha_report_failure(&(BarmanHaFailure) {
				.event = "route_failed",
				.detail = "no node name: set barman_ha.node_name or cluster_name",
				.elevel = WARNING,
				.sqlerrcode = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				.message = "barman_ha: no node name to route the endpoints to",
				.log_detail = "barman_ha.node_name is empty and cluster_name is not a valid node name.",
				.hint = "Set barman_ha.node_name or cluster_name to this node's name in nat.conf.",
			});
		barman_ha_set_route(ROUTE_FAILED, NULL);
		return reconcile_interval_ms();
	}

	timeline = GetWALInsertionTimeLine();
	if (!forced && fenced_timeline == timeline)
		return reconcile_interval_ms();

	now = GetCurrentTimestamp();
	if (!forced && now < next_route_at)
		return Max((next_route_at - now) / BARMAN_HA_USECS_PER_MS, 1);

	return route_here(node, timeline);
}
