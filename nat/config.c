/*-------------------------------------------------------------------------
 *
 * config.c
 *	  The two files barman_ha_nat reads, trusted only as common/trusted.c
 *	  says.  nat.conf, the only source of the addresses it routes to:
 *	  common/kv.c's key = value lines, every value parsed with bounds, an
 *	  unknown key refused with its line number.  The fencing state, the
 *	  node and timeline the endpoints were last given to: read, decided
 *	  (main.c) and written under one lock (flock on STATE.lock), so two
 *	  nodes claiming a timeline at once cannot both win; written atomically
 *	  (temporary file, fsync, rename, fsync of the directory): a crash
 *	  leaves the old record or the new.
 *
 *-------------------------------------------------------------------------
 */
#include "nat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX	65536

/* node.NAME = A.B.C.D:PORT; NAME not a word `show` uses for a target */
static bool
set_node(struct nat_config *cfg, const char *name, const char *v)
{
	struct node *n = &cfg->nodes[cfg->nnodes];
	const char *colon = strchr(v, ':');
	char		word[80],
				addr[16];

	snprintf(word, sizeof(word), " %s ", name);
	if (!bha_valid_name(name) || colon == NULL || colon - v >= (long) sizeof(addr) ||
		cfg->nnodes >= NAT_MAX_NODES || config_node(cfg, name) != NULL ||
		strstr(" closed missing unknown none ", word) != NULL)
		return false;
	snprintf(addr, sizeof(addr), "%.*s", (int) (colon - v), v);
	if (parse_ipv4(addr, &n->addr) != 0 || parse_port(colon + 1, &n->port) != 0)
		return false;
	strcpy(n->name, name);
	cfg->nnodes++;
	return true;
}

/* One key's value: 1 set, 0 bad value, -1 unknown key. */
static int
nat_key(struct nat_config *cfg, const char *k, const char *v)
{
	int			ep = EP_BARMAN;
	long		l;

	if (strncmp(k, "app_", 4) == 0)
		ep = EP_APP;
	if (strncmp(k, "node.", 5) == 0)
		return set_node(cfg, k + 5, v);
	if (strcmp(k, "backup_address") == 0)
		return parse_ipv4(v, &cfg->backup_address) == 0;
	if (strcmp(k, "barman_port") == 0 || strcmp(k, "app_port") == 0)
		return parse_port(v, &cfg->ports[ep]) == 0;
	if (strcmp(k, "barman_snat_address") == 0 || strcmp(k, "app_snat_address") == 0)
	{
		cfg->snat_per_endpoint = true;
		return parse_ipv4(v, &cfg->snat_address[ep]) == 0;
	}
	if (strcmp(k, "nat_backend") == 0)
	{
		cfg->nftables = strcmp(v, "nftables") == 0;
		return cfg->nftables || strcmp(v, "iptables") == 0;
	}
	if (strcmp(k, "lock_timeout") == 0)
	{
		if (parse_long(v, 1, 600, &l) != 0)
			return 0;
		cfg->lock_timeout = (int) l;
		return 1;
	}
	if (strcmp(k, "max_timeline_step") == 0)
		return parse_long(v, 1, 1000, &cfg->max_step) == 0;
	if (strcmp(k, "state_file") != 0)
		return -1;
	/* room for ".lock" and ".tmp"; no hidden name */
	if (!valid_path(v) || strlen(v) >= sizeof(cfg->state_file) - 8 || strstr(v, "/.") != NULL)
		return 0;
	strcpy(cfg->state_file, v);
	return 1;
}

/* The text of a configuration (NUL-terminated, changed in place). */
int
nat_conf_parse(struct nat_config *cfg, char *text, const char *path)
{
	struct kv_line kv = {0};
	char		err[100];
	int			r;

	memset(cfg, 0, sizeof(*cfg));
	cfg->ports[EP_BARMAN] = 54321;
	cfg->ports[EP_APP] = 54322;
	cfg->lock_timeout = 5;
	strcpy(cfg->state_file, "/var/lib/repmgr_barman_ha/state");
	while ((r = kv_next(&text, &kv, err, sizeof(err))) > 0)
	{
		r = nat_key(cfg, kv.key, kv.value);
		if (r == 1)
			continue;
		errorf("%s: line %d: %s \"%s\"", path, kv.lineno,
			   r < 0 ? "unknown key" : "invalid value for", kv.key);
		return -1;
	}
	if (r < 0)
		errorf("%s: %s", path, err);
	else if (cfg->backup_address.s_addr == 0)
		errorf("%s: backup_address is required", path);
	else if (cfg->ports[EP_BARMAN] == cfg->ports[EP_APP])
		errorf("%s: barman_port and app_port must differ", path);
	if (r < 0 || cfg->backup_address.s_addr == 0 || cfg->ports[EP_BARMAN] == cfg->ports[EP_APP])
		return -1;
	for (int ep = 0; ep < EP_COUNT; ep++)
		if (cfg->snat_address[ep].s_addr == 0)
			cfg->snat_address[ep] = cfg->backup_address;
	/* one unheard-of promotion of every node */
	if (cfg->max_step == 0)
		cfg->max_step = cfg->nnodes > 0 ? cfg->nnodes : 1;
	return 0;
}

int
nat_conf_load(struct nat_config *cfg, const char *path)
{
	static char text[CONFIG_MAX + 1];
	char		err[400];

	if (read_trusted(path, text, sizeof(text), err, sizeof(err)) < 0)
	{
		errorf("%s", err);
		return -1;
	}
	return nat_conf_parse(cfg, text, path);
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

/* flock_wait, said: busy is added when the lock is still held. */
int
lock_or_say(int fd, const char *path, int timeout_s, const char *busy)
{
	if (flock_wait(fd, timeout_s) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		errorf("%s still held after %d s%s", path, timeout_s, busy);
	else
		errorf("cannot lock %s: %m", path);
	return -1;
}

/* Opens a trusted file, said (-2, unsaid: it does not exist and flags have no O_CREAT). */
int
open_said(const char *path, int flags, mode_t mode, int *dfd)
{
	char		err[400];
	int			fd = open_trusted(path, flags, mode, true, dfd, err, sizeof(err));

	if (fd == -1)
		errorf("%s", err);
	return fd;
}

/* Takes STATE.lock (0600: nobody else may hold it), kept until we exit. */
int
state_lock(const struct nat_config *cfg)
{
	char		path[300];
	int			fd;

	snprintf(path, sizeof(path), "%s.lock", cfg->state_file);
	fd = open_said(path, O_RDWR | O_CREAT, 0600, NULL);
	if (fd < 0)
		return -1;
	if (lock_or_say(fd, path, cfg->lock_timeout, " (another claim or route is running)") != 0)
	{
		close(fd);
		return -1;
	}
	return 0;
}

/* "node=NAME" and "timeline=N" lines; any other line ignored.  -1: corrupt. */
int
state_parse(char *text, struct state *st)
{
	char	   *save = NULL;

	memset(st, 0, sizeof(*st));
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
	{
		if (strncmp(l, "node=", 5) == 0 && bha_valid_name(l + 5))
			strcpy(st->node, l + 5);
		else if (strncmp(l, "timeline=", 9) == 0 &&
				 parse_long(l + 9, 1, BHA_TIMELINE_MAX, &st->timeline) != 0)
			st->timeline = 0;
	}
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
	int			fd = open_said(cfg->state_file, O_RDONLY, 0, NULL);

	memset(st, 0, sizeof(*st));
	if (fd == TRUSTED_ENOENT)
		return 0;
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) == 0)
		n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
	{
		errorf("cannot read %s: %m", cfg->state_file);
		return -1;
	}
	text[n] = '\0';
	if (state_parse(text, st) != 0)
	{
		errorf("%s is corrupt (no node= or timeline= line)", cfg->state_file);
		return -1;
	}
	st->mtime = (long long) sb.st_mtime;
	return 0;
}

/* STATE.tmp, then renamed over STATE: the lock we hold makes it ours. */
int
state_write(const struct nat_config *cfg, const struct state *st)
{
	char		text[128],
				tmp[300];
	int			len = snprintf(text, sizeof(text), "node=%s\ntimeline=%ld\n", st->node,
						   st->timeline);
	const char *base = strrchr(cfg->state_file, '/') + 1;
	char		tmpbase[300];
	int			dfd = -1,
				fd;
	bool		ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", cfg->state_file);
	snprintf(tmpbase, sizeof(tmpbase), "%s.tmp", base);
	fd = open_said(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644, &dfd);
	if (fd < 0)
		return -1;
	ok = write(fd, text, len) == len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	ok = ok && renameat(dfd, tmpbase, dfd, base) == 0 && fsync(dfd) == 0;
	if (!ok)
	{
		errorf("cannot write %s: %m", cfg->state_file);
		unlinkat(dfd, tmpbase, 0);
	}
	close(dfd);
	return ok ? 0 : -1;
}
