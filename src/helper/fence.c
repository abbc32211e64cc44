/*-------------------------------------------------------------------------
 *
 * fence.c
 *	  The fencing state file: the node and timeline the endpoints were last
 *	  given to.  A lower timeline, or another node on the same timeline, is
 *	  refused by promote (exit 3), so a stale primary that comes back can
 *	  never take the endpoints.  Written atomically (temporary file, fsync,
 *	  rename, fsync of the directory) so a crash leaves the old or the new
 *	  record, never half of one.
 *
 *-------------------------------------------------------------------------
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int ensure_state_dir(const struct config *cfg);

/*
 * Serialize promotes: read, decide and write the claim under one lock, or
 * two nodes claiming the same timeline at the same moment could both win.
 * The lock file sits next to the state file; the lock goes with the process.
 */
int
state_lock(const struct config *cfg)
{
	char		path[300];
	int			fd;

	snprintf(path, sizeof(path), "%s.lock", cfg->state_file);
	if (ensure_state_dir(cfg) != 0)
		return -1;
	fd = open(path, O_CREAT | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		errorf("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock_wait(fd, cfg->lock_timeout) != 0)
	{
		errorf("another promote is running (%s still locked after %d s)", path,
			   cfg->lock_timeout);
		close(fd);
		return -1;
	}
	return fd;
}

/* Returns 0 (st->exists false if there is no file yet) or -1. */
int
state_read(const struct config *cfg, struct state *st)
{
	char		buf[1024];
	char		err[512];
	char	   *line, *save = NULL;
	ssize_t		n;
	struct stat sb;
	int			fd;

	memset(st, 0, sizeof(*st));
	fd = open(cfg->state_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return 0;
		errorf("cannot open state file %s: %s", cfg->state_file, strerror(errno));
		return -1;
	}
	if (check_trusted_file(fd, cfg->state_file, err, sizeof(err)) != 0 ||
		fstat(fd, &sb) != 0)
	{
		close(fd);
		errorf("untrusted state file: %s", err);
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
	{
		errorf("cannot read state file %s: %s", cfg->state_file, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		if (strncmp(line, "node=", 5) == 0 && valid_name(line + 5))
			strcpy(st->node, line + 5);
		else if (strncmp(line, "timeline=", 9) == 0)
			parse_long(line + 9, 1, 0x7fffffffL, &st->timeline);
		else if (strcmp(line, "switch_wal=done") == 0)
			st->switch_wal_done = true;
		else if (strncmp(line, "streaming_dir=/", 15) == 0 &&
				 strlen(line + 14) < sizeof(st->streaming_dir) &&
				 plain_chars(line + 14, "_./-") && strstr(line, "..") == NULL)
			strcpy(st->streaming_dir, line + 14);
	}
	if (st->node[0] == '\0' || st->timeline == 0)
	{
		errorf("state file %s is corrupt (no node or timeline)", cfg->state_file);
		return -1;
	}
	st->exists = true;
	st->mtime = (long) sb.st_mtime;
	return 0;
}

/* The state's directory: created 0755 if missing, and trusted. */
static int
ensure_state_dir(const struct config *cfg)
{
	char		dir[256], err[512];

	snprintf(dir, sizeof(dir), "%s", cfg->state_file);
	dirname(dir);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
	{
		errorf("cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (check_trusted_dir(dir, err, sizeof(err)) != 0)
	{
		errorf("untrusted state directory: %s", err);
		return -1;
	}
	return 0;
}

int
state_write(const struct config *cfg, const struct state *st)
{
	char		dir[256], tmp[300], buf[600];
	int			fd, dfd, len;

	if (ensure_state_dir(cfg) != 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s", cfg->state_file);
	dirname(dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", cfg->state_file, (int) getpid());
	len = snprintf(buf, sizeof(buf), "node=%s\ntimeline=%ld\nswitch_wal=%s\n%s%s%s",
				   st->node, st->timeline, st->switch_wal_done ? "done" : "pending",
				   st->streaming_dir[0] ? "streaming_dir=" : "", st->streaming_dir,
				   st->streaming_dir[0] ? "\n" : "");
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
	{
		errorf("cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write(fd, buf, len) != len || fsync(fd) != 0 || close(fd) != 0)
	{
		errorf("cannot write %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, cfg->state_file) != 0)
	{
		errorf("cannot rename %s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
	{
		fsync(dfd);
		close(dfd);
	}
	return 0;
}
