/*-------------------------------------------------------------------------
 *
 * state.c
 *	  The orchestrator's own record, in a folder of the barman user's
 *	  (state_directory): for which claim (node, timeline) Barman's
 *	  switch-wal is done, Barman's streaming folder (show-server costs
 *	  0.5 s of Python), the last promote's time and duration, and whether
 *	  the watch closed the routed node's app endpoint (and since when).  Who
 *	  holds the endpoints is not here: that is barman_ha_nat's fencing
 *	  state, which only root can write.
 *
 *	  Locks, all bounded: one per node serialises that node's promotes (its
 *	  claim check may wait on the network: no other node waits with it);
 *	  the record's lock serialises its read-modify-write and the Barman
 *	  steps of a new claim, taken only after barman_ha_nat has recorded
 *	  it.  The record is written atomically (temporary file, fsync,
 *	  rename).  A node's requests over ssh are bounded in rate by a token
 *	  bucket in a file of its own: a node that floods us gets refusals,
 *	  not work, and syslog gets no line per refusal.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATE_NAME	"orchestrator.state"
#define LOCK_NAME	"orchestrator.lock"

/*
 * The file name in state_dir, opened and locked within lock_timeout.
 * Returns the descriptor (closing it releases the lock), or -1 (said).
 */
static int
lock_file(const struct config *cfg, const char *name, const char *holder)
{
	char		path[300];
	int			fd;

	if (mkdir(cfg->state_dir, 0750) != 0 && errno != EEXIST)
	{
		errorf("cannot create %s: %s", cfg->state_dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, name);
	fd = open(path, O_CREAT | O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		errorf("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock_wait(fd, cfg->lock_timeout) != 0)
	{
		errorf("%s is running (%s still locked after %d s)", holder, path,
			   cfg->lock_timeout);
		close(fd);
		return -1;
	}
	return fd;
}

/* The record's lock. */
int
ostate_lock(const struct config *cfg)
{
	return lock_file(cfg, LOCK_NAME, "another request");
}

/* NODE's own lock: one promote of a node at a time. */
int
node_lock(const struct config *cfg, const char *node)
{
	char		name[BHA_NAME_MAX + 16];

	snprintf(name, sizeof(name), "node.%s.lock", node);
	return lock_file(cfg, name, "another request of this node");
}

/*
 * Take one token from NODE's bucket (RATE_BURST tokens, RATE_PER_S added
 * a second).  Returns 1 taken, 0 empty, -1 failed (said).  The bucket is
 * "tokens time" in the file, read and written under its lock.
 */
int
node_rate_take(const struct config *cfg, const char *node)
{
	char		name[BHA_NAME_MAX + 16],
				buf[64];
	double		tokens = RATE_BURST,
				at = 0,
				now = (double) time(NULL);
	ssize_t		n;
	int			fd,
				len,
				taken;

	snprintf(name, sizeof(name), "node.%s.rate", node);
	if ((fd = lock_file(cfg, name, "another request of this node")) < 0)
		return -1;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n > 0)
	{
		buf[n] = '\0';
		if (sscanf(buf, "%lf %lf", &tokens, &at) != 2 || tokens < 0 || tokens > RATE_BURST ||
			at > now)
			tokens = RATE_BURST;
		else
			tokens = tokens + (now - at) * RATE_PER_S;
		if (tokens > RATE_BURST)
			tokens = RATE_BURST;
	}
	taken = tokens >= 1;
	if (taken)
		tokens -= 1;
	len = snprintf(buf, sizeof(buf), "%.3f %.0f\n", tokens, now);
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, len, 0) != len)
	{
		errorf("cannot write %s in %s: %s", name, cfg->state_dir, strerror(errno));
		taken = -1;
	}
	close(fd);
	return taken;
}

/*
 * The record's text (NUL-terminated, changed in place): what is not
 * understood is left empty, so a damaged record means "not done yet".
 */
void
ostate_parse(char *buf, struct ostate *st)
{
	char	   *line, *save = NULL;
	long		v;

	memset(st, 0, sizeof(*st));
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		char	   *eq = strchr(line, '=');
		const char *val = eq ? eq + 1 : "";

		if (eq == NULL)
			continue;
		*eq = '\0';
		if (strcmp(line, "node") == 0 && bha_valid_name(val))
			strcpy(st->node, val);
		else if (strcmp(line, "timeline") == 0 && parse_long(val, 1, BHA_TIMELINE_MAX, &v) == 0)
			st->timeline = v;
		else if (strcmp(line, "switch_wal") == 0)
			st->switch_wal_done = strcmp(val, "done") == 0;
		else if (strcmp(line, "streaming_dir") == 0 && val[0] == '/' &&
				 strlen(val) < sizeof(st->streaming_dir) &&
				 plain_chars(val, "_./-") && strstr(val, "..") == NULL)
			strcpy(st->streaming_dir, val);
		else if (strcmp(line, "promote_ms") == 0 && parse_long(val, 0, 86400000L, &v) == 0)
			st->promote_ms = v;
		else if (strcmp(line, "promoted_at") == 0 && parse_long(val, 0, INT64_MAX, &v) == 0)
			st->promoted_at = v;
		else if (strcmp(line, "watch_closed") == 0 && bha_valid_name(val))
			strcpy(st->watch_closed, val);
		else if (strcmp(line, "watch_closed_at") == 0 && parse_long(val, 0, INT64_MAX, &v) == 0)
			st->watch_closed_at = v;
	}
}

/* Returns 0 (all fields empty when there is no record yet) or -1. */
int
ostate_read(const struct config *cfg, struct ostate *st)
{
	char		path[300], buf[1024];
	struct stat sb;
	ssize_t		n;
	int			fd;

	memset(st, 0, sizeof(*st));
	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, STATE_NAME);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : (errorf("cannot open %s: %s", path, strerror(errno)), -1);
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid())
	{
		close(fd);
		errorf("%s is not a regular file of ours", path);
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
	{
		errorf("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	ostate_parse(buf, st);
	return 0;
}

int
ostate_write(const struct config *cfg, const struct ostate *st)
{
	char		path[300], tmp[320], buf[800];
	int			fd, len;

	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, STATE_NAME);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	len = snprintf(buf, sizeof(buf),
				   "node=%s\ntimeline=%ld\nswitch_wal=%s\nstreaming_dir=%s\n"
				   "promote_ms=%.0f\npromoted_at=%ld\nwatch_closed=%s\nwatch_closed_at=%ld\n",
				   st->node, st->timeline, st->switch_wal_done ? "done" : "pending",
				   st->streaming_dir, st->promote_ms, st->promoted_at,
				   st->watch_closed, st->watch_closed_at);
	unlink(tmp);				/* left by a run that died; we hold the lock */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0)
	{
		errorf("cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write(fd, buf, len) != len || fsync(fd) != 0)
	{
		errorf("cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0)
	{
		errorf("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* The record's mtime in ns, 0 when there is none: the watch's cue to look again. */
long long
ostate_mtime(const struct config *cfg)
{
	char		path[300];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, STATE_NAME);
	if (stat(path, &sb) != 0)
		return 0;
	return sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
}
