/*-------------------------------------------------------------------------
 *
 * state.c
 *	  The fencing state: the node and timeline the endpoints were last given
 *	  to, and the rule that refuses a stale primary.  Read, decided and
 *	  written under one lock (flock on STATE.lock), so two nodes claiming a
 *	  timeline at once cannot both win, and a route checks the holder under
 *	  the same lock.  Written atomically (temporary file, fsync, rename,
 *	  fsync of the directory): a crash leaves the old record or the new.
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

/* The trusted directory of the state (created if missing), and name in it + suffix. */
static int
state_dir(const struct nat_config *cfg, char *name, size_t size, const char *suffix)
{
	char		dir[256];
	const char *slash = strrchr(cfg->state_file, '/');

	snprintf(dir, sizeof(dir), "%.*s", (int) (slash - cfg->state_file), cfg->state_file);
	snprintf(name, size, "%s%s", slash + 1, suffix);
	return trusted_dir(dir[0] ? dir : "/", true);
}

/* Returns the lock's descriptor (held until we exit), or -1. */
int
state_lock(const struct nat_config *cfg)
{
	char		name[300],
				path[300];
	int			fd = -1,
				dfd = state_dir(cfg, name, sizeof(name), ".lock");

	snprintf(path, sizeof(path), "%s.lock", cfg->state_file);
	if (dfd >= 0 && (fd = openat(dfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600)) < 0)
		errorf("cannot open %s: %m", path);
	if (dfd >= 0)
		close(dfd);
	if (fd < 0 || trusted_file(fd, path) != 0)
		return fd < 0 ? -1 : (close(fd), -1);
	if (flock_wait(fd, cfg->lock_timeout) == 0)
		return fd;
	if (errno == EWOULDBLOCK)
		errorf("%s still held after %d s (another claim or route is running)", path, cfg->lock_timeout);
	else
		errorf("cannot lock %s: %m", path);
	return close(fd), -1;
}

/* "node=NAME" and "timeline=N" lines; others (an older helper's) ignored.  0, or -1: corrupt. */
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

/* 0 (st->exists false if nothing was ever recorded) or -1. */
int
state_read(const struct nat_config *cfg, struct state *st)
{
	char		text[4096],
				name[300];
	struct stat sb;
	ssize_t		n = -1;
	int			fd = -1,
				dfd = state_dir(cfg, name, sizeof(name), "");

	memset(st, 0, sizeof(*st));
	if (dfd >= 0 && (fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0 && errno != ENOENT)
		errorf("cannot open %s: %m", cfg->state_file);
	if (dfd >= 0)
		close(dfd);
	if (dfd >= 0 && fd < 0 && errno == ENOENT)
		return 0;
	if (fd >= 0 && trusted_file(fd, cfg->state_file) == 0 && fstat(fd, &sb) == 0 &&
		(n = read(fd, text, sizeof(text) - 1)) >= 0)
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

int
state_write(const struct nat_config *cfg, const struct state *st)
{
	char		text[128],
				tmp[300],
				*base;
	int			len = snprintf(text, sizeof(text), "node=%s\ntimeline=%ld\n", st->node, st->timeline),
				fd = -1,
				dfd = state_dir(cfg, tmp, sizeof(tmp), ".tmp");
	bool		ok;

	if (dfd < 0)
		return -1;
	base = strrchr(cfg->state_file, '/') + 1;
	(void) unlinkat(dfd, tmp, 0);	/* ours: we hold the lock */
	ok = (fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) >= 0 &&
		write(fd, text, len) == len && fsync(fd) == 0 && close(fd) == 0 &&
		renameat(dfd, tmp, dfd, base) == 0 && fsync(dfd) == 0;
	if (!ok)
		errorf("cannot write %s: %m", cfg->state_file), unlinkat(dfd, tmp, 0);
	close(dfd);
	return ok ? 0 : -1;
}

/* A lower timeline, or another node on the recorded one, would revive a stale primary. */
bool
fenced(const struct state *st, const char *node, long timeline)
{
	return st->exists && (timeline < st->timeline || (timeline == st->timeline && strcmp(node, st->node) != 0));
}
