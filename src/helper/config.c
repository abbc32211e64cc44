/*-------------------------------------------------------------------------
 *
 * config.c
 *	  Loads /etc/repmgr_barman_ha/helper.conf, the only source of addresses
 *	  the helper will ever route to.  The file is trusted only when it and
 *	  its directory belong to root and nobody else can write them: checked
 *	  with fstat on the descriptor we read, so a swap after the check does
 *	  not help an attacker.
 *
 *-------------------------------------------------------------------------
 */
#include "helper.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX_BYTES 65536

static int
trusted_stat(const struct stat *st, bool want_dir, const char *path,
			 char *err, size_t errlen)
{
	if (want_dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
	{
		snprintf(err, errlen, "%s is not a %s", path,
				 want_dir ? "directory" : "regular file");
		return -1;
	}
	if (st->st_uid != 0)
	{
		snprintf(err, errlen, "%s is not owned by root", path);
		return -1;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH))
	{
		snprintf(err, errlen, "%s is writable by group or others", path);
		return -1;
	}
	return 0;
}

int
check_trusted_file(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
	{
		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		return -1;
	}
	return trusted_stat(&st, false, path, err, errlen);
}

int
check_trusted_dir(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) != 0)
	{
		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		return -1;
	}
	return trusted_stat(&st, true, path, err, errlen);
}

/* Absolute paths with plain characters only: no "..", no spaces. */
static bool
valid_path(const char *s)
{
	return s[0] == '/' && strlen(s) < 256 && strstr(s, "..") == NULL &&
		plain_chars(s, "_./-");
}

/* libpq conninfo: key=value words of plain characters (no quotes). */
static bool
valid_conninfo(const char *s)
{
	return strlen(s) < 512 && plain_chars(s, "_./-=: ,");
}

/* node.NAME = A.B.C.D:PORT */
static int
set_node(struct config *cfg, const char *name, char *v)
{
	char	   *colon = strrchr(v, ':');
	struct node *n;

	if (!valid_name(name) || colon == NULL || cfg->nnodes >= MAX_NODES ||
		config_node(cfg, name) != NULL)
		return -1;
	n = &cfg->nodes[cfg->nnodes];
	*colon = '\0';
	if (parse_ipv4(v, &n->addr) != 0 || parse_port(colon + 1, &n->port) != 0)
		return -1;
	strcpy(n->name, name);
	cfg->nnodes++;
	return 0;
}

/* The configuration keys, their kinds and where they go. */
enum kind
{
	K_NAME, K_PATH, K_CONNINFO, K_INT, K_PORT, K_BOOL
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
	{"barman_port", K_PORT, F(ports[EP_BARMAN]), 0, 0},
	{"app_port", K_PORT, F(ports[EP_APP]), 0, 0},
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
	{"state_file", K_PATH, F(state_file), 0, 0},
	{"ssh_key", K_PATH, F(ssh_key), 0, 0},
	{"ssh_known_hosts", K_PATH, F(ssh_known_hosts), 0, 0},
	{"ssh_port", K_PORT, F(ssh_port), 0, 0},
	{"ssh_connect_timeout", K_INT, F(ssh_timeout), 1, 600},
	{"claim_check", K_BOOL, F(claim_check), 0, 0},
	{"claim_conninfo", K_CONNINFO, F(claim_conninfo), 0, 0},
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
				!(k->kind == K_NAME ? valid_name(v) :
				  k->kind == K_PATH ? valid_path(v) : valid_conninfo(v)))
				return -1;
			strcpy(dst, v);
			return 0;
		case K_INT:
			if (parse_long(v, k->min, k->max, &l) != 0)
				return -1;
			*(int *) dst = (int) l;
			return 0;
		case K_PORT:
			return parse_port(v, dst);
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
set_key(struct config *cfg, const char *k, char *v)
{
	if (strncmp(k, "node.", 5) == 0)
		return set_node(cfg, k + 5, v);
	if (strcmp(k, "backup_address") == 0)
	{
		cfg->have_backup = true;
		return parse_ipv4(v, &cfg->backup_address);
	}
	for (int ep = 0; ep < EP_COUNT; ep++)
	{
		char		key[40];

		snprintf(key, sizeof(key), "%s_snat_address", endpoint_names[ep]);
		if (strcmp(k, key) == 0)
		{
			cfg->snat_per_endpoint = true;
			return parse_ipv4(v, &cfg->snat_address[ep]);
		}
	}
	if (strcmp(k, "remote") == 0)
	{
		char	   *at = strchr(v, '@');

		if (at == NULL)
			return -1;
		*at = '\0';
		if (!valid_name(v) || !valid_name(at + 1))
			return -1;
		strcpy(cfg->remote_user, v);
		strcpy(cfg->remote_host, at + 1);
		return 0;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(k, keys[i].name) == 0)
			return set_value(cfg, &keys[i], v);
	errno = ENOENT;
	return -1;
}

static char *
trim(char *s)
{
	char	   *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static void
set_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ports[EP_BARMAN] = 54321;
	cfg->ports[EP_APP] = 54322;
	strcpy(cfg->barman_user, "barman");
	strcpy(cfg->barman_path, "/usr/bin/barman");
	strcpy(cfg->barman_appname, "barman_receive_wal");
	cfg->archive_timeout = 90;
	cfg->stop_grace_ms = 200;
	cfg->catchup_timeout = 20;
	cfg->lock_timeout = 5;
	strcpy(cfg->state_file, DEFAULT_STATE);
	cfg->ssh_port = 22;
	cfg->ssh_timeout = 10;
}

/*
 * Parses the text of a configuration (NUL-terminated, changed in place).
 * Separate from config_load so the fuzzer can reach it.
 */
int
config_parse(struct config *cfg, char *buf, const char *path)
{
	int			lineno = 0;
	char	   *line, *save = NULL;

	set_defaults(cfg);
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		char	   *eq, *k, *v, *hash;

		lineno++;
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		line = trim(line);
		if (*line == '\0')
			continue;
		eq = strchr(line, '=');
		if (eq == NULL)
		{
			errorf("%s: line %d: expected key = value", path, lineno);
			return EXIT_USAGE;
		}
		*eq = '\0';
		k = trim(line);
		v = trim(eq + 1);
		errno = 0;
		if (set_key(cfg, k, v) != 0)
		{
			errorf("%s: line %d: %s \"%s\"", path, lineno,
				   errno == ENOENT ? "unknown key" : "invalid value for", k);
			return EXIT_USAGE;
		}
	}

	if (cfg->remote_host[0] == '\0')
	{
		if (!cfg->have_backup)
		{
			errorf("%s: backup_address is required (or remote = USER@HOST)", path);
			return EXIT_USAGE;
		}
		for (int ep = 0; ep < EP_COUNT; ep++)
			if (cfg->snat_address[ep].s_addr == 0)
				cfg->snat_address[ep] = cfg->backup_address;
		if (cfg->ports[EP_BARMAN] == cfg->ports[EP_APP])
		{
			errorf("%s: barman_port and app_port must differ", path);
			return EXIT_USAGE;
		}
		if (cfg->barman_conninfo[0] == '\0')
		{
			char		a[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &cfg->backup_address, a, sizeof(a));
			snprintf(cfg->barman_conninfo, sizeof(cfg->barman_conninfo),
					 "host=%s port=%u user=barman dbname=postgres connect_timeout=5",
					 a, cfg->ports[EP_BARMAN]);
		}
		if (cfg->claim_conninfo[0] == '\0')
			strcpy(cfg->claim_conninfo, "user=barman dbname=postgres connect_timeout=5");
	}
	return EXIT_OK;
}


/*
 * Reads and parses the trusted file.  Returns EXIT_OK or EXIT_USAGE (after
 * printing one line saying why).
 */
int
config_load(struct config *cfg, const char *path)
{
	static char buf[CONFIG_MAX_BYTES + 1];
	char		dir[256];
	char		err[512];
	ssize_t		len = 0, r;
	int			fd;

	snprintf(dir, sizeof(dir), "%s", path);
	if (check_trusted_dir(dirname(dir), err, sizeof(err)) != 0)
	{
		errorf("untrusted configuration: %s", err);
		return EXIT_USAGE;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
	{
		errorf("cannot open configuration %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	if (check_trusted_file(fd, path, err, sizeof(err)) != 0)
	{
		close(fd);
		errorf("untrusted configuration: %s", err);
		return EXIT_USAGE;
	}
	while (len < CONFIG_MAX_BYTES &&
		   (r = read(fd, buf + len, CONFIG_MAX_BYTES - len)) > 0)
		len += r;
	close(fd);
	if (len >= CONFIG_MAX_BYTES)
	{
		errorf("configuration %s is larger than %d bytes", path, CONFIG_MAX_BYTES);
		return EXIT_USAGE;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL)
	{
		errorf("configuration %s contains a NUL byte", path);
		return EXIT_USAGE;
	}
	return config_parse(cfg, buf, path);
}

const struct node *
config_node(const struct config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nnodes; i++)
		if (strcmp(cfg->nodes[i].name, name) == 0)
			return &cfg->nodes[i];
	return NULL;
}

const struct node *
config_node_by_addr(const struct config *cfg, struct in_addr addr, uint16_t port)
{
	for (int i = 0; i < cfg->nnodes; i++)
		if (cfg->nodes[i].addr.s_addr == addr.s_addr && cfg->nodes[i].port == port)
			return &cfg->nodes[i];
	return NULL;
}
