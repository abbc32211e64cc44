/*-------------------------------------------------------------------------
 *
 * config.c
 *	  Loads /etc/repmgr_barman_ha/orchestrator.conf: Barman's server and
 *	  commands, the claim check, where barman_ha_nat is.  It names no
 *	  address: nodes and endpoints are barman_ha_nat's, read from its
 *	  `show`.  The file decides which credentials go to which server, so it
 *	  is trusted only when it and every folder up to "/" belong to root and
 *	  nobody else can write them (common/trusted.c: each checked on the
 *	  descriptor opened).  The grammar is common/kv.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_BYTES 65536

/* libpq conninfo: key=value words of plain characters (no quotes). */
static bool
valid_conninfo(const char *s)
{
	return strlen(s) < 512 && plain_chars(s, "_./-=: ,");
}

/* The configuration keys, their kinds and where they go. */
enum kind
{
	K_NAME, K_PATH, K_CONNINFO, K_INT, K_BOOL
};

#define F(field) offsetof(struct config, field), sizeof(((struct config *) 0)->field)
static const struct key
{
	const char *name;
	enum kind	kind;
	size_t		off,
				size;
	long		min,
				max;
}			keys[] = {
	{"nat_program", K_PATH, F(nat_program), 0, 0},
	{"barman_server", K_NAME, F(barman_server), 0, 0},
	{"barman_user", K_NAME, F(barman_user), 0, 0},
	{"barman_path", K_PATH, F(barman_path), 0, 0},
	{"barman_config", K_PATH, F(barman_config), 0, 0},
	{"streaming_wals_directory", K_PATH, F(streaming_dir), 0, 0},
	{"barman_conninfo", K_CONNINFO, F(barman_conninfo), 0, 0},
	{"barman_application_name", K_NAME, F(barman_appname), 0, 0},
	{"archive_timeout", K_INT, F(archive_timeout), 1, 3600},
	{"receive_wal_stop_grace_ms", K_INT, F(stop_grace_ms), 0, 60000},
	{"catchup_timeout", K_INT, F(catchup_timeout), 1, 600},
	{"lock_timeout", K_INT, F(lock_timeout), 1, 600},
	{"state_directory", K_PATH, F(state_dir), 0, 0},
	{"claim_check", K_BOOL, F(claim_check), 0, 0},
	{"claim_conninfo", K_CONNINFO, F(claim_conninfo), 0, 0},
	{"claim_timeout_ms", K_INT, F(claim_timeout_ms), 100, 60000},
	{"probe_timeout_ms", K_INT, F(probe_timeout_ms), 10, 60000},
	{"probe_connect_ms", K_INT, F(probe_connect_ms), 10, 60000},
	{"watch_interval_ms", K_INT, F(watch_interval_ms), 10, 60000},
};

static int
set_value(struct config *cfg, const struct key *k, const char *v)
{
	void	   *dst = (char *) cfg + k->off;
	long		l;

	switch (k->kind)
	{
		case K_NAME:
		case K_PATH:
		case K_CONNINFO:
			if (strlen(v) >= k->size ||
				!(k->kind == K_NAME ? bha_valid_name(v) :
				  k->kind == K_PATH ? valid_path(v) : valid_conninfo(v)))
				return -1;
			strcpy(dst, v);
			return 0;
		case K_INT:
			if (parse_long(v, k->min, k->max, &l) != 0)
				return -1;
			*(int *) dst = (int) l;
			return 0;
		case K_BOOL:
			if (strcmp(v, "on") == 0 || strcmp(v, "true") == 0)
				*(bool *) dst = true;
			else if (strcmp(v, "off") == 0 || strcmp(v, "false") == 0)
				*(bool *) dst = false;
			else
				return -1;
			return 0;
	}
	return -1;
}

static int
orchestrator_key(struct config *cfg, const char *k, const char *v)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(k, keys[i].name) == 0)
			return set_value(cfg, &keys[i], v);
	errno = ENOENT;
	return -1;
}

static void
set_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->nat_program, NAT_PROGRAM);
	strcpy(cfg->barman_user, "barman");
	strcpy(cfg->barman_path, "/usr/bin/barman");
	strcpy(cfg->barman_appname, "barman_receive_wal");
	/* switch-wal is bounded at this + 10 s: under the worker's helper_timeout (30 s) */
	cfg->archive_timeout = 15;
	cfg->stop_grace_ms = 200;
	cfg->catchup_timeout = 20;
	cfg->lock_timeout = 5;
	strcpy(cfg->state_dir, DEFAULT_STATE_DIR);
	cfg->claim_check = true;
	/* a certificate, no password, to a node that proves who it is */
	strcpy(cfg->claim_conninfo, DEFAULT_CLAIM_CONNINFO);
	cfg->claim_timeout_ms = 3000;
	cfg->probe_timeout_ms = 300;
	cfg->probe_connect_ms = 100;
	cfg->watch_interval_ms = 200;
}

/*
 * Parses the text of a configuration (NUL-terminated, changed in place).
 * Separate from config_load so the fuzzer can reach it.
 */
int
config_parse(struct config *cfg, char *buf, const char *path)
{
	struct kv_line kv = {0};
	char		err[300];
	int			rc;

	set_defaults(cfg);
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	while ((rc = kv_next(&buf, &kv, err, sizeof(err))) > 0)
	{
		errno = 0;
		if (orchestrator_key(cfg, kv.key, kv.value) != 0)
		{
			errorf("%s: line %d: %s \"%s\"", path, kv.lineno,
				   errno == ENOENT ? "unknown key" : "invalid value for", kv.key);
			return BHA_EXIT_USAGE;
		}
	}
	if (rc < 0)
	{
		errorf("%s: %s", path, err);
		return BHA_EXIT_USAGE;
	}
	return BHA_EXIT_OK;
}


/*
 * Reads and parses the trusted file.  Returns BHA_EXIT_OK or BHA_EXIT_USAGE (after
 * printing one line saying why).
 */
int
config_load(struct config *cfg, const char *path)
{
	static char buf[CONFIG_MAX_BYTES + 1];
	char		err[512];

	if (path[0] != '/')
	{
		errorf("configuration %s: an absolute path is required", path);
		return BHA_EXIT_USAGE;
	}
	if (read_trusted(path, buf, sizeof(buf), err, sizeof(err)) < 0)
	{
		errorf("configuration: %s", err);
		return BHA_EXIT_USAGE;
	}
	return config_parse(cfg, buf, path);
}
