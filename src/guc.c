/*-------------------------------------------------------------------------
 *
 * guc.c
 *		The barman_ha.* settings, their defaults and ranges, and the checks
 *		run when a value is set.
 *
 * Every value is checked when it is set (SET, ALTER SYSTEM, a reload), so
 * a mistake is refused with a message to the DBA instead of surfacing later
 * as a failure inside the worker.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "replication/slot.h"
#include "utils/guc.h"

#include "barman_ha.h"

/* Defaults and ranges, in each setting's own unit. */
#define DEFAULT_SLOT_NAME				"barman"
#define DEFAULT_HELPER_TIMEOUT_S		30
#define MAX_HELPER_TIMEOUT_S			3600	/* an hour */
#define DEFAULT_RETRY_INTERVAL_MS		2000
#define MIN_RETRY_INTERVAL_MS			100
#define MAX_RETRY_INTERVAL_MS			(3600 * 1000)	/* an hour */
#define DEFAULT_RECONCILE_INTERVAL_S	10
#define MAX_RECONCILE_INTERVAL_S		86400	/* a day */

bool		barman_ha_enabled = true;
char	   *barman_ha_node_name = NULL;
char	   *barman_ha_slot_name = NULL;
char	   *barman_ha_helper_path = NULL;
int			barman_ha_helper_timeout = DEFAULT_HELPER_TIMEOUT_S;
int			barman_ha_retry_interval = DEFAULT_RETRY_INTERVAL_MS;
int			barman_ha_reconcile_interval = DEFAULT_RECONCILE_INTERVAL_S;
int			barman_ha_standby_slot = STANDBY_SLOT_SYNC;

static const struct config_enum_entry standby_slot_options[] = {
	{"sync", STANDBY_SLOT_SYNC, false},
	{"drop", STANDBY_SLOT_DROP, false},
	{"keep", STANDBY_SLOT_KEEP, false},
	{NULL, 0, false}
};

/*
 * barman_ha.node_name: empty (cluster_name is used) or a name after the
 * rule of barman_ha_contract.h.  Names travel to the backup host as
 * arguments, where the same rule is enforced; refusing them here gives the
 * DBA the error at once instead of a failed promotion later.
 */
static bool
check_node_name(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0' || bha_valid_name(*newval))
		return true;
	GUC_check_errdetail("Names must be 1 to %d characters from A-Z, a-z, 0-9, \"_\", \".\" and \"-\", not starting with \"-\" or \".\".",
						BHA_NAME_MAX);
	GUC_check_errhint("Leave barman_ha.node_name empty to use cluster_name.");
	return false;
}

static bool
check_slot_name(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL)
		return true;
	if (!ReplicationSlotValidateName(*newval, DEBUG1))
	{
		GUC_check_errdetail("Replication slot names may only contain lower case letters, numbers, and the underscore character, and must be 1 to %d bytes long.",
							NAMEDATALEN - 1);
		return false;
	}
	return true;
}

static bool
check_helper_path(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0' || is_absolute_path(*newval))
		return true;
	GUC_check_errdetail("The helper path must be absolute.");
	GUC_check_errhint("Leave barman_ha.helper_path empty to keep slots without routing.");
	return false;
}

/*
 * The node name the helper is given: barman_ha.node_name, else
 * cluster_name (which repmgr setups usually set to the node name anyway).
 * Returns NULL when neither is usable.
 */
const char *
barman_ha_effective_node_name(void)
{
	if (barman_ha_node_name && *barman_ha_node_name)
		return barman_ha_node_name;
	if (cluster_name && bha_valid_name(cluster_name))
		return cluster_name;
	return NULL;
}

void
barman_ha_define_gucs(void)
{
	DefineCustomBoolVariable("barman_ha.enabled",
							 "Keeps the barman slot and the backup host's routes on this node while it is primary.",
							 NULL,
							 &barman_ha_enabled,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("barman_ha.node_name",
							   "Name of this node in the helper's configuration; empty means cluster_name.",
							   NULL,
							   &barman_ha_node_name,
							   "",
							   PGC_SIGHUP, 0,
							   check_node_name, NULL, NULL);

	DefineCustomStringVariable("barman_ha.slot_name",
							   "Name of the physical replication slot Barman streams from.",
							   NULL,
							   &barman_ha_slot_name,
							   DEFAULT_SLOT_NAME,
							   PGC_SIGHUP, 0,
							   check_slot_name, NULL, NULL);

	DefineCustomStringVariable("barman_ha.helper_path",
							   "Absolute path of barman_ha_client; empty disables routing.",
							   NULL,
							   &barman_ha_helper_path,
							   BARMAN_HA_HELPER_PATH,
							   PGC_POSTMASTER, GUC_SUPERUSER_ONLY,
							   check_helper_path, NULL, NULL);

	DefineCustomIntVariable("barman_ha.helper_timeout",
							"Time after which a helper call is ended and counted as failed.",
							NULL,
							&barman_ha_helper_timeout,
							DEFAULT_HELPER_TIMEOUT_S, 1, MAX_HELPER_TIMEOUT_S,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("barman_ha.retry_interval",
							"First wait before a failed routing is retried; doubled after each failure.",
							NULL,
							&barman_ha_retry_interval,
							DEFAULT_RETRY_INTERVAL_MS,
							MIN_RETRY_INTERVAL_MS, MAX_RETRY_INTERVAL_MS,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("barman_ha.reconcile_interval",
							"Time between two checks of slot and routes when nothing happens.",
							NULL,
							&barman_ha_reconcile_interval,
							DEFAULT_RECONCILE_INTERVAL_S,
							1, MAX_RECONCILE_INTERVAL_S,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("barman_ha.standby_slot",
							 "What a standby does with the barman slot: keep it in step with the primary's (sync), drop it, or keep it as it is.",
							 NULL,
							 &barman_ha_standby_slot,
							 STANDBY_SLOT_SYNC,
							 standby_slot_options,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("barman_ha");
}
