/*-------------------------------------------------------------------------
 *
 * ssh_connection.c
 *		Keeps the ssh connection to the backup host open, so that the call
 *		made at a promotion pays no key exchange (about 200 ms).
 *
 * "barman_ha_client connect" returns at once: it starts an ssh master in a
 * session of its own unless one answers on its control socket (client.conf's
 * ssh_control_path).  Both workers run it after a reconcile pass, at most
 * every few seconds: the standby worker so that the connection is there
 * at the promotion (the master outlives that worker, which exits as recovery
 * ends), the primary worker for its level checks.  A client without
 * ssh_control_path answers with a usage error: said once in the log, asked
 * again only every minute.  Nothing depends on the connection: without it
 * the client connects by itself.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "barman_ha.h"

/* How often the connection is looked after, and after a usage error. */
#define SSH_CONNECTION_CHECK_MS		5000
#define SSH_CONNECTION_RETRY_MS		60000

void
barman_ha_keep_ssh_connection(void)
{
	static TimestampTz next_check = 0;
	static char said[BARMAN_HA_MSG_LEN];
	const char *args[] = {barman_ha_helper_path, BHA_VERB_CONNECT, NULL};
	HelperResult result;
	TimestampTz now = GetCurrentTimestamp();

	if (now < next_check)
		return;
	barman_ha_run_helper(args, &result);
	next_check = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											 result.exit_code == BHA_EXIT_USAGE ?
											 SSH_CONNECTION_RETRY_MS :
											 SSH_CONNECTION_CHECK_MS);
	if (result.exit_code == BHA_EXIT_OK)
	{
		said[0] = '\0';
		return;
	}
	if (strcmp(said, result.last_error) == 0)
		return;
	strlcpy(said, result.last_error, sizeof(said));
	ereport(LOG,
			(errmsg("barman_ha: no shared ssh connection to the backup host"),
			 errdetail("barman_ha_client connect said: %s.",
					   result.last_error[0] ? result.last_error : "nothing"),
			 errhint("Calls to the backup host connect one by one. Set ssh_control_path in "
					 "the client's configuration to share one connection.")));
}
