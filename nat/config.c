/*-------------------------------------------------------------------------
 *
 * config.c
 *	  The two files barman_ha_nat reads, trusted only as privilege.c says.
 *	  nat.conf, the only source of the addresses it routes to: "key = value"
 *	  lines and '#' comments, every value parsed with bounds, an unknown key
 *	  refused with its line number.  The fencing state, the node and
 *	  timeline the endpoints were last given to: read, decided (main.c) and
 *	  written under one lock (flock on STATE.lock), so two nodes claiming a
 *	  timeline at once cannot both win; written atomically (temporary file,
 *	  fsync, rename, fsync of the directory): a crash leaves the old record
 *	  or the new.
 *
 *-------------------------------------------------------------------------
 */
#include "nat.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX	65536

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

/* Returns 1 set, 0 bad value, -1 unknown key. */
static int
set_key(struct nat_config *cfg, const char *k, char *v)
{
	int			ep = strncmp(k, "app_", 4) == 0 ? EP_APP : EP_BARMAN;
	struct node *n = &cfg->nodes[cfg->nnodes];
	char	   *colon = strchr(v, ':'), word[80];
	long		l;

	if (strcmp(k, "backup_address") == 0)
		return parse_addr(v, &cfg->backup_address);
	if (strcmp(k, "barman_port") == 0 || strcmp(k, "app_port") == 0)
		return parse_number(v, 1, 65535, &l) ? (cfg->ports[ep] = (uint16_t) l, 1) : 0;
	if (strcmp(k, "barman_snat_address") == 0 || strcmp(k, "app_snat_address") == 0)
		return cfg->snat_per_endpoint = true, parse_addr(v, &cfg->snat_address[ep]);
	if (strcmp(k, "nat_backend") == 0)
		return (cfg->nftables = strcmp(v, "nftables") == 0) || strcmp(v, "iptables") == 0;
	if (strcmp(k, "lock_timeout") == 0)
		return parse_number(v, 1, 600, &l) ? (cfg->lock_timeout = (int) l, 1) : 0;
	if (strcmp(k, "max_timeline_step") == 0)
		return parse_number(v, 1, 1000, &cfg->max_step);
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
	if (!parse_addr(v, &n->addr) || !parse_number(colon + 1, 1, 65535, &l))
		return 0;
	n->port = (uint16_t) l;
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

/* The text of a configuration (NUL-terminated, changed in place). */
int
config_parse(struct nat_config *cfg, char *text, const char *path)
{
	int			lineno = 0, r;

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
			return errorf("%s: line %d: expected key = value", path, lineno), -1;
		*eq = '\0';
		if ((r = set_key(cfg, trim(line), trim(eq + 1))) != 1)
			return errorf("%s: line %d: %s \"%s\"", path, lineno, r < 0 ? "unknown key" : "invalid value for",
						  trim(line)), -1;
	}
	if (cfg->backup_address.s_addr == 0)
		return errorf("%s: backup_address is required", path), -1;
	if (cfg->ports[EP_BARMAN] == cfg->ports[EP_APP])
		return errorf("%s: barman_port and app_port must differ", path), -1;
	for (int ep = 0; ep < EP_COUNT; ep++)
		if (cfg->snat_address[ep].s_addr == 0)
			cfg->snat_address[ep] = cfg->backup_address;
	if (cfg->max_step == 0)		/* one unheard-of promotion of every node */
		cfg->max_step = cfg->nnodes > 0 ? cfg->nnodes : 1;
	return 0;
}

int
config_load(struct nat_config *cfg, const char *path)
{
	static char text[CONFIG_MAX + 1];
	ssize_t		len = 0, r = 0;
	int			fd = open_trusted(path, O_RDONLY, 0, false, NULL);

	if (fd == -2)
		errorf("cannot open %s: %m", path);
	while (fd >= 0 && len < CONFIG_MAX && (r = read(fd, text + len, CONFIG_MAX - len)) > 0)
		len += r;
	if (fd >= 0 && (r < 0 || len >= CONFIG_MAX || memchr(text, '\0', len)))
		errorf("%s: unreadable, larger than %d bytes, or binary", path, CONFIG_MAX), close(fd), fd = -1;
	if (fd < 0)
		return -1;
	close(fd);
	text[len] = '\0';
	return config_parse(cfg, text, path);
}

const struct node *
config_node(const struct nat_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->nnodes; i++)
		if (strcmp(cfg->nodes[i].name, name) == 0)
			return &cfg->nodes[i];
	return NULL;
}

/*
 * The fencing decision for "claim NODE TIMELINE" on the recorded state:
 * held (the same node and timeline); stale (lower, or another node on the
 * recorded timeline: a stale primary); too far (more than step above the
 * recorded timeline, or above 1 with nothing recorded: one forged number
 * must not fence out every other node); else new.  force (root) overrules
 * all but held.
 */
enum fence
fence_decide(const struct state *st, const char *node, long timeline, long step, bool force)
{
	long		base = st->exists ? st->timeline : 1;

	if (st->exists && strcmp(st->node, node) == 0 && timeline == base)
		return FENCE_HELD;
	if (force)
		return FENCE_NEW;
	if (st->exists && timeline <= base)
		return FENCE_STALE;
	if (timeline - base > step)
		return FENCE_TOO_FAR;
	return FENCE_NEW;
}

/* Takes STATE.lock (0600: nobody else may hold it), kept until we exit. */
int
state_lock(const struct nat_config *cfg)
{
	char		path[300];
	int			fd;

	snprintf(path, sizeof(path), "%s.lock", cfg->state_file);
	if ((fd = open_trusted(path, O_RDWR | O_CREAT, 0600, true, NULL)) < 0)
		return -1;
	if (lock_wait(fd, path, cfg->lock_timeout, " (another claim or route is running)") != 0)
		return close(fd), -1;
	return 0;
}

/* "node=NAME" and "timeline=N" lines; any other line ignored.  -1: corrupt. */
int
state_parse(char *text, struct state *st)
{
	char	   *save = NULL;

	memset(st, 0, sizeof(*st));
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (strncmp(l, "node=", 5) == 0 && bha_valid_name(l + 5))
			strcpy(st->node, l + 5);
		else if (strncmp(l, "timeline=", 9) == 0 && !parse_number(l + 9, 1, BHA_TIMELINE_MAX, &st->timeline))
			st->timeline = 0;
	st->exists = st->node[0] != '\0' && st->timeline != 0;
	return st->exists ? 0 : -1;
}

/* st->exists is false if nothing was ever recorded. */
int
state_read(const struct nat_config *cfg, struct state *st)
{
	char		text[4096];
	struct stat sb;
	ssize_t		n = -1;
	int			fd = open_trusted(cfg->state_file, O_RDONLY, 0, true, NULL);

	memset(st, 0, sizeof(*st));
	if (fd == -2)
		return 0;
	if (fd >= 0 && fstat(fd, &sb) == 0 && (n = read(fd, text, sizeof(text) - 1)) >= 0)
	{
		text[n] = '\0';
		if (state_parse(text, st) != 0)
			errorf("%s is corrupt (no node= or timeline= line)", cfg->state_file), n = -1;
		st->mtime = (long long) sb.st_mtime;
	}
	if (fd >= 0)
		close(fd);
	return n < 0 ? -1 : 0;
}

/* STATE.tmp, then renamed over STATE: the lock we hold makes it ours. */
int
state_write(const struct nat_config *cfg, const struct state *st)
{
	char		text[128], tmp[300];
	int			len = snprintf(text, sizeof(text), "node=%s\ntimeline=%ld\n", st->node, st->timeline);
	int			dfd = -1, fd;
	bool		ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", cfg->state_file);
	if ((fd = open_trusted(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644, true, &dfd)) < 0)
		return -1;
	ok = write(fd, text, len) == len && fsync(fd) == 0 && close(fd) == 0 &&
		renameat(dfd, strrchr(tmp, '/') + 1, dfd, strrchr(cfg->state_file, '/') + 1) == 0 && fsync(dfd) == 0;
	if (!ok)
		errorf("cannot write %s: %m", cfg->state_file), unlinkat(dfd, strrchr(tmp, '/') + 1, 0);
	close(dfd);
	return ok ? 0 : -1;
}
