/*-------------------------------------------------------------------------
 *
 * barman_ha_contract.h
 *	  The one contract between the repmgr_barman_ha extension and its three
 *	  programs: barman_ha_client (DB node, unprivileged), which the worker
 *	  runs; barman_ha_orchestrator (backup host, runs as barman), which ssh
 *	  runs as a forced command; barman_ha_nat (backup host, the only
 *	  privileged one).  Exit codes, the name rule, the verbs and the line the
 *	  worker reads are defined here and nowhere else.
 *
 *	  Plain C: included by the extension (after postgres.h) and by the
 *	  programs (which do not see PostgreSQL's headers).
 *
 *-------------------------------------------------------------------------
 */
#ifndef BARMAN_HA_CONTRACT_H
#define BARMAN_HA_CONTRACT_H

#include <stdbool.h>
#include <string.h>

/*
 * Exit codes of every program.  The last line on stderr always says why.
 */
#define BHA_EXIT_OK			0	/* done */
#define BHA_EXIT_FAIL		1	/* failed, worth retrying */
#define BHA_EXIT_USAGE		2	/* usage or configuration error */
#define BHA_EXIT_FENCED		3	/* the claim is refused: not retried on the
								 * same timeline */

/*
 * Node and Barman server names: 1 to BHA_NAME_MAX characters out of
 * [A-Za-z0-9_.-], not starting with '-' (it would read as an option) nor
 * '.' (a hidden or relative path).
 */
#define BHA_NAME_MAX		63

static inline bool
bha_valid_name(const char *s)
{
	size_t		n = strlen(s);

	if (n == 0 || n > BHA_NAME_MAX || s[0] == '-' || s[0] == '.')
		return false;
	for (; *s; s++)
	{
		char		c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* Timelines are PostgreSQL's TimeLineID: 1 .. 2^31-1 here. */
#define BHA_TIMELINE_MAX	0x7fffffffL

/*
 * The verbs the worker asks for (through barman_ha_client and ssh):
 *	 promote NODE TIMELINE		claim the endpoints, or check that NODE holds
 *								them (level check: the same call, cheap)
 *	 status						key=value lines
 * and, on the DB node only (never sent to the backup host):
 *	 connect					make sure the ssh connection the other verbs
 *								share is held open; returns at once
 *	 disconnect					end it
 */
#define BHA_VERB_PROMOTE	"promote"
#define BHA_VERB_STATUS		"status"
#define BHA_VERB_CONNECT	"connect"
#define BHA_VERB_DISCONNECT	"disconnect"

/*
 * While a verb runs, the orchestrator prints one line per action on stdout:
 *	 step NAME RESULT MS DETAIL
 * NAME is a word, RESULT is one of the BHA_STEP_* words, MS the action's
 * duration in milliseconds, DETAIL free text up to the end of the line.
 * The worker turns each into an event as it arrives.
 */
#define BHA_STEP_PREFIX		"step "
#define BHA_STEP_FORMAT		"step %s %s %.1f %s\n"
#define BHA_STEP_OK			"ok"
#define BHA_STEP_FAILED		"failed"
#define BHA_STEP_SKIPPED	"skipped"

/*
 * The level check's answer when nothing had to change: the step named
 * BHA_STEP_CHECK with result ok and this detail, perhaps followed by a
 * remark ("; app endpoint closed by watch: ...").  The worker records no
 * event for it, or one when the remark is new (a pass every reconcile
 * interval would flood the ring).
 */
#define BHA_STEP_CHECK		"check"
#define BHA_CHECK_ROUTED	"routed"

/* The two endpoints of the backup host, in this order everywhere. */
#define BHA_ENDPOINT_BARMAN	"barman"
#define BHA_ENDPOINT_APP	"app"

/* Default locations of the configuration files (root-owned). */
#define BHA_CONF_DIR		"/etc/repmgr_barman_ha"
#define BHA_CLIENT_CONF		BHA_CONF_DIR "/client.conf"
#define BHA_ORCHESTRATOR_CONF BHA_CONF_DIR "/orchestrator.conf"
#define BHA_NAT_CONF		BHA_CONF_DIR "/nat.conf"

#endif							/* BARMAN_HA_CONTRACT_H */
