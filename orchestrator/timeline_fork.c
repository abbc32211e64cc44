/*-------------------------------------------------------------------------
 *
 * timeline_fork.c
 *	  Step barman_fork, between barman_stop and barman_start: Barman's WAL
 *	  that is not in the new primary's history is moved aside.
 *
 *	  Barman can be AHEAD of the promoted standby: it received WAL that the
 *	  standby had not received when the primary died (the standby's link was
 *	  slower; the commits in that WAL were never acknowledged, a synchronous
 *	  standby had not confirmed them).  pg_receivewal restarts at the start
 *	  of the newest segment in the streaming folder, on that segment's
 *	  timeline.  If that segment lies beyond the point where the new
 *	  timeline forked from it, the new primary answers "requested starting
 *	  point ... is not in this server's history" and Barman stops streaming
 *	  for good (until someone runs `receive-wal --reset`, which leaves a gap).
 *
 *	  The new primary's history (IDENTIFY_SYSTEM, TIMELINE_HISTORY over a
 *	  replication=database connection through the Barman endpoint) gives
 *	  the end of every older timeline.  In the streaming folder, a segment
 *	  of an older timeline is moved aside (to the server's errors/ folder,
 *	  named NAME.ahead-of-tlN) when it is a complete segment at or past
 *	  that end's segment, a .partial past it, or its timeline is not in the
 *	  history at all.  pg_receivewal then restarts at or before the fork
 *	  point and follows the switch to the new timeline: everything that was
 *	  committed on the new timeline reaches the archive, no --reset, no gap.
 *	  Nothing is deleted.
 *
 *	  A failure here is reported (skipped) and not fatal: barman_start and
 *	  barman_caught_up tell whether Barman streams.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

static struct run_result res;	/* big: keep it off the stack */

struct fork_args
{
	const char *conninfo;
	const char *dir;
};

/* A WAL segment's name, optionally .partial: its timeline and segment number. */
static bool
wal_name(const char *name, uint64_t segsz, unsigned *tli, uint64_t *segno,
		 bool *partial)
{
	unsigned	log, seg;
	size_t		len = strlen(name);

	if (len != 24 && !(len == 32 && strcmp(name + 24, ".partial") == 0))
		return false;
	for (int i = 0; i < 24; i++)
		if (!strchr("0123456789ABCDEF", name[i]))
			return false;
	if (sscanf(name, "%8X%8X%8X", tli, &log, &seg) != 3)
		return false;
	*segno = (uint64_t) log * (UINT64_C(0x100000000) / segsz) + seg;
	*partial = len == 32;
	return true;
}

/* Runs in a child (run.c). */
static int
fork_child(void *p)
{
	struct fork_args *a = p;
	char		conninfo[600], errdir[300], line[200], moved[2000] = "";
	unsigned	tli_now;
	uint64_t	segsz;
	struct tl_history h;
	int			nmoved = 0;
	unsigned	high_tli = 0;
	uint64_t	high_segno = 0;
	bool		high_partial = false, have_high = false;
	PGconn	   *c;
	PGresult   *r;
	DIR		   *d;
	struct dirent *de;
	const char *slash;

	snprintf(conninfo, sizeof(conninfo), "%s replication=database", a->conninfo);
	if ((c = pq_open(conninfo)) == NULL)
		return 2;
	if ((r = pq_row(c, "IDENTIFY_SYSTEM")) == NULL)
		return 2;
	if (PQnfields(r) < 2 || parse_timeline(PQgetvalue(r, 0, 1), &tli_now) != 0)
	{
		printf("IDENTIFY_SYSTEM returned no valid timeline\n");
		return 2;
	}
	PQclear(r);
	if (tli_now == 1)
	{
		printf("timeline 1: no fork\n");
		return 0;
	}
	if ((r = pq_row(c, "SHOW wal_segment_size")) == NULL)
		return 2;
	segsz = parse_segment_size(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (segsz == 0)
	{
		printf("wal_segment_size is not a power of two from 1MB to 1GB\n");
		return 2;
	}
	snprintf(line, sizeof(line), "TIMELINE_HISTORY %u", tli_now);
	if ((r = pq_row(c, line)) == NULL)
		return 2;
	if (PQnfields(r) < 2 || history_parse(PQgetvalue(r, 0, 1), &h) != 0 ||
		(h.n > 0 && h.tli[h.n - 1] >= tli_now))
	{
		printf("the history of timeline %u is not valid\n", tli_now);
		return 2;
	}
	PQclear(r);
	PQfinish(c);

	slash = strrchr(a->dir, '/');
	snprintf(errdir, sizeof(errdir), "%.*s/errors", slash ? (int) (slash - a->dir) : 0, a->dir);
	if ((d = opendir(a->dir)) == NULL)
	{
		printf("cannot read %s: %s\n", a->dir, strerror(errno));
		return 2;
	}
	while ((de = readdir(d)) != NULL)
	{
		unsigned	tli;
		uint64_t	segno, endseg = 0;
		bool		partial, known = false, boundary = false, aside;
		char		from[600], to[700];

		if (!wal_name(de->d_name, segsz, &tli, &segno, &partial))
			continue;
		for (int i = 0; i < h.n; i++)
			if (h.tli[i] == tli)
			{
				known = true;
				endseg = h.end[i] / segsz;
				/* ends exactly where a segment starts: that one has none of it */
				boundary = h.end[i] % segsz == 0;
				if (boundary)
					endseg--;
			}
		aside = tli != tli_now &&
			(!known || segno > endseg || (segno == endseg && !partial && !boundary));
		if (!aside)
		{
			/* where pg_receivewal will restart (its FindStreamingStart) */
			if (!have_high || segno > high_segno || (segno == high_segno && tli > high_tli))
			{
				high_segno = segno;
				high_tli = tli;
				high_partial = partial;
				have_high = true;
			}
			continue;
		}
		if (mkdir(errdir, 0750) != 0 && errno != EEXIST)
		{
			printf("cannot create %s: %s\n", errdir, strerror(errno));
			closedir(d);
			return 2;
		}
		snprintf(from, sizeof(from), "%s/%s", a->dir, de->d_name);
		snprintf(to, sizeof(to), "%s/%s.ahead-of-tl%u.%ld", errdir, de->d_name, tli_now,
				 (long) time(NULL));
		if (rename(from, to) != 0)
		{
			printf("cannot move %s aside: %s\n", from, strerror(errno));
			closedir(d);
			return 2;
		}
		nmoved++;
		if (strlen(moved) + strlen(de->d_name) + 3 < sizeof(moved))
			strcat(strcat(moved, " "), de->d_name);
	}
	closedir(d);

	/*
	 * pg_receivewal restarts at the start of its newest .partial segment, or
	 * of the segment after its newest complete one, on that file's timeline.
	 * When that is exactly where the timeline ended (the old primary died
	 * right after a segment switch), the new primary answers
	 * START_REPLICATION with the end of the timeline at once, which
	 * pg_receivewal takes for an error.  A zero-filled .partial of the next
	 * timeline at that segment makes it start there instead; it overwrites
	 * the file from its first byte.
	 */
	if (have_high && high_tli != tli_now)
	{
		uint64_t	start = high_partial ? high_segno : high_segno + 1;
		uint64_t	perlog = UINT64_C(0x100000000) / segsz;

		for (int i = 0; i < h.n; i++)
			if (h.tli[i] == high_tli && h.end[i] % segsz == 0 && h.end[i] / segsz == start)
			{
				unsigned	next = i + 1 < h.n ? h.tli[i + 1] : tli_now;
				char		path[600];
				int			fd;

				snprintf(path, sizeof(path), "%s/%08X%08X%08X.partial", a->dir, next,
						 (unsigned) (start / perlog), (unsigned) (start % perlog));
				fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
				if (fd < 0 || ftruncate(fd, (off_t) segsz) != 0 || fsync(fd) != 0)
				{
					printf("cannot create %s: %s\n", path, strerror(errno));
					return 2;
				}
				close(fd);
				printf("timeline %u ended at a segment start: %s created, ", high_tli,
					   strrchr(path, '/') + 1);
			}
	}
	if (h.n == 0)
		printf("timeline %u: empty history,", tli_now);
	else	/* the last line of the history is the parent */
		printf("timeline %u forked from %u at %X/%X:", tli_now, h.tli[h.n - 1],
			   (unsigned) (h.end[h.n - 1] >> 32), (unsigned) h.end[h.n - 1]);
	if (nmoved == 0)
		printf(" nothing ahead\n");
	else
		printf(" %d file%s ahead moved to %s:%s\n", nmoved, nmoved == 1 ? "" : "s",
			   errdir, moved);
	return 0;
}

void
barman_fork(const struct config *cfg, const char *dir)
{
	struct fork_args fa = {.conninfo = cfg->barman_conninfo,.dir = dir};
	double		t0 = now_ms();
	char		line[300];

	if (run_child(10000, fork_child, &fa, &res) != 0 || res.status != 0)
	{
		step("barman_fork", "skipped", now_ms() - t0, "cannot check the new timeline's fork point: %s",
			 last_line(res.out, line, sizeof(line)));
		return;
	}
	step("barman_fork", "ok", now_ms() - t0, "%s", last_line(res.out, line, sizeof(line)));
}
