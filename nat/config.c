/*-------------------------------------------------------------------------
 *
 * config.c
 *	  nat.conf, the only source of the addresses barman_ha_nat routes to:
 *	  "key = value" lines and '#' comments, every value parsed with bounds,
 *	  an unknown key refused with its line number.  Trusted only as
 *	  privilege.c says: root's file among root's directories up to "/".
 *
 *-------------------------------------------------------------------------
 */
#include "nat.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_MAX	65536

const char *const endpoint_names[EP_COUNT] = {BHA_ENDPOINT_BARMAN, BHA_ENDPOINT_APP};

/* Decimal digits only (no sign, space or hex), within [min, max]. */
bool
parse_number(const char *s, long min, long max, long *out)
{
	long		v = 0;

	if (*s == '\0' || strlen(s) > 10 || strspn(s, "0123456789") != strlen(s))
		return false;
	for (; *s; s++)
		v = v * 10 + (*s - '0');
	*out = v;
	return v >= min && v <= max;
}

/* A dotted quad (inet_pton refuses short and octal forms), not 0 or broadcast. */
static bool
parse_addr(const char *s, struct in_addr *a)
{
	return inet_pton(AF_INET, s, a) == 1 && a->s_addr != htonl(INADDR_ANY) &&
		a->s_addr != htonl(INADDR_BROADCAST);
}

static bool
parse_port(const char *s, uint16_t *port)
{
	long		v;

	return parse_number(s, 1, 65535, &v) ? (*port = (uint16_t) v, true) : false;
}

/* Returns 1 set, 0 bad value, -1 unknown key. */
static int
set_key(struct nat_config *cfg, const char *k, char *v)
{
	int			ep = strncmp(k, "app_", 4) == 0 ? EP_APP : EP_BARMAN;
	struct node *n = &cfg->nodes[cfg->nnodes];
	char	   *colon = strchr(v, ':'),
				word[80];
	long		l;

	if (strcmp(k, "backup_address") == 0)
		return parse_addr(v, &cfg->backup_address);
	if (strcmp(k, "barman_port") == 0 || strcmp(k, "app_port") == 0)
		return parse_port(v, &cfg->ports[ep]);
	if (strcmp(k, "barman_snat_address") == 0 || strcmp(k, "app_snat_address") == 0)
		return cfg->snat_per_endpoint = true, parse_addr(v, &cfg->snat_address[ep]);
	if (strcmp(k, "nat_backend") == 0)
		return (cfg->backend = strcmp(v, "nftables") == 0 ? BACKEND_NFTABLES : BACKEND_IPTABLES,
				strcmp(v, "nftables") == 0 || strcmp(v, "iptables") == 0);
	if (strcmp(k, "lock_timeout") == 0)
		return parse_number(v, 1, 600, &l) ? (cfg->lock_timeout = (int) l, 1) : 0;
	if (strcmp(k, "state_file") == 0)	/* absolute, plain, a name after the last '/' */
		return v[0] == '/' && strlen(v) < sizeof(cfg->state_file) - 8 && !strstr(v, "/.") &&
			strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-") == strlen(v) &&
			v[strlen(v) - 1] != '/' ? (strcpy(cfg->state_file, v), 1) : 0;
	if (strncmp(k, "node.", 5) != 0)
		return -1;
	/* node.NAME = A.B.C.D:PORT; not a word `show` uses for a target */
	snprintf(word, sizeof(word), " %s ", k + 5);
	if (!bha_valid_name(k + 5) || colon == NULL || cfg->nnodes >= NAT_MAX_NODES || config_node(cfg, k + 5) ||
		strstr(" closed missing unknown none ", word))
		return 0;
	*colon = '\0';
	if (!parse_addr(v, &n->addr) || !parse_port(colon + 1, &n->port))
		return 0;
	strcpy(n->name, k + 5);
	return cfg->nnodes++, 1;
}

static char *
trim(char *s)
{
	char	   *e = s + strlen(s);

	while (e > s && strchr(" \t\r", e[-1]))
		*--e = '\0';
	return s + strspn(s, " \t");
}

/* The text of a configuration (NUL-terminated, changed in place): 0 or 2. */
int
config_parse(struct nat_config *cfg, char *text, const char *path)
{
	int			lineno = 0,
				r;

	memset(cfg, 0, sizeof(*cfg));
	cfg->ports[EP_BARMAN] = 54321;
	cfg->ports[EP_APP] = 54322;
	cfg->lock_timeout = 5;
	strcpy(cfg->state_file, "/var/lib/repmgr_barman_ha/state");
	for (char *line = text, *next, *eq; line; line = next)
	{
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		line[strcspn(line, "#")] = '\0';
		if (*(line = trim(line)) == '\0')
			continue;
		if ((eq = strchr(line, '=')) == NULL)
			return errorf("%s: line %d: expected key = value", path, lineno), BHA_EXIT_USAGE;
		*eq = '\0';
		if ((r = set_key(cfg, trim(line), trim(eq + 1))) != 1)
			return errorf("%s: line %d: %s \"%s\"", path, lineno, r < 0 ? "unknown key" : "invalid value for",
						  trim(line)), BHA_EXIT_USAGE;
	}
	if (cfg->backup_address.s_addr == 0)
		return errorf("%s: backup_address is required", path), BHA_EXIT_USAGE;
	if (cfg->ports[EP_BARMAN] == cfg->ports[EP_APP])
		return errorf("%s: barman_port and app_port must differ", path), BHA_EXIT_USAGE;
	for (int ep = 0; ep < EP_COUNT; ep++)
		if (cfg->snat_address[ep].s_addr == 0)
			cfg->snat_address[ep] = cfg->backup_address;
	return BHA_EXIT_OK;
}

/* Reads the trusted file and parses it: 0 or 2. */
int
config_load(struct nat_config *cfg, const char *path)
{
	static char text[CONFIG_MAX + 1];
	char		dir[256];
	const char *slash = strrchr(path, '/');
	ssize_t		len = 0,
				r = 0;
	int			dfd = -1,
				fd = -1;
	bool		ok;

	snprintf(dir, sizeof(dir), "%.*s", slash ? (int) (slash - path) : 0, path);
	if (path[0] != '/')
		errorf("%s: not an absolute path", path);
	else if ((dfd = trusted_dir(dir[0] ? dir : "/", false)) >= 0 &&
			 (fd = openat(dfd, slash + 1, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0)
		errorf("cannot open %s: %m", path);
	ok = fd >= 0 && trusted_file(fd, path) == 0;
	while (ok && len < CONFIG_MAX && (r = read(fd, text + len, CONFIG_MAX - len)) > 0)
		len += r;
	if (ok && (r < 0 || len >= CONFIG_MAX || memchr(text, '\0', len)))
		errorf("%s: unreadable, larger than %d bytes, or binary", path, CONFIG_MAX), ok = false;
	if (dfd >= 0)
		close(dfd);
	if (fd >= 0)
		close(fd);
	text[len] = '\0';
	return ok ? config_parse(cfg, text, path) : BHA_EXIT_USAGE;
}

const struct node *
config_node(const struct nat_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nnodes; i++)
		if (strcmp(cfg->nodes[i].name, name) == 0)
			return &cfg->nodes[i];
	return NULL;
}
