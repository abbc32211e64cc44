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
 *	  replication=database connection: the claim check's to the node
 *	  itself, else one through the Barman endpoint) gives the end of every
 *	  older timeline.  In the streaming folder, a segment
 *	  of an older timeline is moved aside (to the server's errors/ folder,
 *	  named NAME.ahead-of-tlN) when it is a complete segment at or past
 *	  that end's segment, a .partial past it, or its timeline is not in the
 *	  history at all.  pg_receivewal then restarts at or before the fork
 *	  point and follows the switch to the new timeline: everything that was
 *	  committed on the new timeline reaches the archive, no --reset, no gap.
 *	  Nothing is deleted.
 *
 *	  The history comes from the new primary, so before anything moves it is
 *	  held against what the backup host already has: every history file
 *	  that Barman holds for one of its ancestors (in the streaming folder
 *	  or the server's wals/) must list the same older switchpoints.  A
 *	  history that disagrees moves nothing.  The switchpoint of the routed
 *	  timeline itself is the new primary's word alone (a standby behind
 *	  Barman forks earlier than what Barman received, legitimately): what
 *	  lies past it is moved aside, never deleted.
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
	const struct timeline_facts *known;	/* or NULL */
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

/* Where pg_receivewal will restart: its newest segment (FindStreamingStart). */
struct restart_point
{
	bool		found;
	unsigned	tli;
	uint64_t	segno;
	bool		partial;
};

/*
 * The new primary's timeline facts over the Barman endpoint, when the claim
 * check did not read them.  0 ok, -1 failed (said).
 */
static int
fetch_timeline(const char *conninfo_in, struct timeline_facts *f)
{
	char		conninfo[600];
	PGconn	   *c;
	PGresult   *r;
	unsigned	tli;

	snprintf(conninfo, sizeof(conninfo), "%s replication=database", conninfo_in);
	if ((c = pq_open(conninfo)) == NULL || (r = pq_row(c, "IDENTIFY_SYSTEM", 2)) == NULL)
		return -1;
	if (parse_timeline(PQgetvalue(r, 0, 1), &tli) != 0)
	{
		printf("IDENTIFY_SYSTEM returned no valid timeline\n");
		return -1;
	}
	PQclear(r);
	if (timeline_facts_read(c, tli, f) != 0)
		return -1;
	PQfinish(c);
	return 0;
}

/*
 * Move into errdir every WAL file of dir that is not in the new timeline's
 * history (an old timeline's segment past its end); note in *rp where
 * pg_receivewal will restart among those that stay.  Their names go to
 * moved.  Returns the count, or -1 (said).
 */
static int
move_ahead(const char *dir, const char *errdir, uint64_t segsz, unsigned tli_now,
		   const struct tl_history *h, struct restart_point *rp, char *moved, size_t len)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	int			nmoved = 0;

	if (d == NULL)
	{
		printf("cannot read %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL)
	{
		unsigned	tli;
		uint64_t	segno, endseg = 0;
		bool		partial, known = false, boundary = false;
		char		from[600], to[700];

		if (!wal_name(de->d_name, segsz, &tli, &segno, &partial))
			continue;
		for (int i = 0; i < h->n; i++)
			if (h->tli[i] == tli)
			{
				known = true;
				endseg = h->end[i] / segsz;
				/* ends exactly where a segment starts: that one has none of it */
				boundary = h->end[i] % segsz == 0;
				if (boundary)
					endseg--;
			}
		if (tli == tli_now ||
			(known && (segno < endseg || (segno == endseg && (partial || boundary)))))
		{
			if (!rp->found || segno > rp->segno || (segno == rp->segno && tli > rp->tli))
				*rp = (struct restart_point) {true, tli, segno, partial};
			continue;
		}
		snprintf(from, sizeof(from), "%s/%s", dir, de->d_name);
		snprintf(to, sizeof(to), "%s/%s.ahead-of-tl%u.%ld", errdir, de->d_name, tli_now,
				 (long) time(NULL));
		if ((mkdir(errdir, 0750) != 0 && errno != EEXIST) || rename(from, to) != 0)
		{
			printf("cannot move %s aside to %s: %s\n", from, errdir, strerror(errno));
			closedir(d);
			return -1;
		}
		nmoved++;
		if (strlen(moved) + strlen(de->d_name) + 3 < len)
			strcat(strcat(moved, " "), de->d_name);
	}
	closedir(d);
	return nmoved;
}

/*
 * pg_receivewal restarts at the start of its newest .partial segment, or of
 * the segment after its newest complete one, on that file's timeline.  When
 * that is exactly where the timeline ended (the old primary died right
 * after a segment switch), the new primary answers START_REPLICATION with
 * the end of the timeline at once, which pg_receivewal takes for an error.
 * A zero-filled .partial of the next timeline at that segment makes it
 * start there instead; it overwrites the file from its first byte.  0 ok
 * (what was made is said), -1 failed (said).
 */
static int
bridge_timeline_end(const char *dir, uint64_t segsz, unsigned tli_now,
					const struct tl_history *h, const struct restart_point *rp)
{
	uint64_t	start = rp->partial ? rp->segno : rp->segno + 1;
	uint64_t	perlog = UINT64_C(0x100000000) / segsz;

	if (!rp->found || rp->tli == tli_now)
		return 0;
	for (int i = 0; i < h->n; i++)
		if (h->tli[i] == rp->tli && h->end[i] % segsz == 0 && h->end[i] / segsz == start)
		{
			unsigned	next = i + 1 < h->n ? h->tli[i + 1] : tli_now;
			char		path[600];
			int			fd;

			snprintf(path, sizeof(path), "%s/%08X%08X%08X.partial", dir, next,
					 (unsigned) (start / perlog), (unsigned) (start % perlog));
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (fd < 0 || ftruncate(fd, (off_t) segsz) != 0 || fsync(fd) != 0)
			{
				printf("cannot create %s: %s\n", path, strerror(errno));
				return -1;
			}
			close(fd);
			printf("timeline %u ended at a segment start: %s created, ", rp->tli,
				   strrchr(path, '/') + 1);
		}
	return 0;
}

/*
 * The history file of timeline k as Barman holds it in dir (the streaming
 * folder or wals/): 1 read into h, 0 none there, -1 not valid (said).
 */
static int
held_history(const char *dir, unsigned k, struct tl_history *h)
{
	static char text[HISTORY_MAX_BYTES + 2];
	char		path[600];
	ssize_t		n;
	int			fd;

	snprintf(path, sizeof(path), "%s/%08X.history", dir, k);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0 || n > HISTORY_MAX_BYTES)
	{
		printf("cannot read %s\n", path);
		return -1;
	}
	text[n] = '\0';
	if (history_parse(text, h) != 0)
	{
		printf("%s is not a valid history\n", path);
		return -1;
	}
	return 1;
}

/*
 * 0 when every history Barman holds for an ancestor of f's timeline agrees
 * with f's history; -1 otherwise (said).
 */
static int
check_ancestry(const char *streaming, const char *walsdir, const struct timeline_facts *f)
{
	const char *dirs[] = {streaming, walsdir};

	for (int i = 0; i < f->h.n; i++)
		for (int d = 0; d < 2; d++)
		{
			struct tl_history known;
			int			rc = f->h.tli[i] > 1 ? held_history(dirs[d], f->h.tli[i], &known) : 0;

			if (rc < 0)
				return -1;
			if (rc > 0 && !history_agrees(&f->h, f->h.tli[i], &known))
				return printf("the history of timeline %u disagrees with Barman's %08X.history "
							  "in %s: nothing moved\n", f->tli, f->h.tli[i], dirs[d]), -1;
		}
	return 0;
}

/* Runs in a child (run.c): exit 0 done, 2 failed; the last line says what. */
static int
fork_child(void *p)
{
	struct fork_args *a = p;
	char		errdir[300],
				walsdir[300],
				moved[2000] = "";
	const char *slash = strrchr(a->dir, '/');
	struct restart_point rp = {0};
	struct timeline_facts fetched;
	const struct timeline_facts *f = a->known;
	int			nmoved;

	if (f == NULL || !f->known)
	{
		if (fetch_timeline(a->conninfo, &fetched) != 0)
			return 2;
		f = &fetched;
	}
	if (f->tli == 1)
	{
		printf("timeline 1: no fork\n");
		return 0;
	}
	snprintf(errdir, sizeof(errdir), "%.*s/errors", slash ? (int) (slash - a->dir) : 0, a->dir);
	snprintf(walsdir, sizeof(walsdir), "%.*s/wals", slash ? (int) (slash - a->dir) : 0, a->dir);
	if (check_ancestry(a->dir, walsdir, f) != 0)
		return 2;
	if ((nmoved = move_ahead(a->dir, errdir, f->segsz, f->tli, &f->h, &rp, moved, sizeof(moved))) < 0 ||
		bridge_timeline_end(a->dir, f->segsz, f->tli, &f->h, &rp) != 0)
		return 2;
	if (f->h.n == 0)
		printf("timeline %u: empty history,", f->tli);
	else	/* the last line of the history is the parent */
		printf("timeline %u forked from %u at %X/%X:", f->tli, f->h.tli[f->h.n - 1],
			   (unsigned) (f->h.end[f->h.n - 1] >> 32), (unsigned) f->h.end[f->h.n - 1]);
	if (nmoved == 0)
		printf(" nothing ahead%s\n", f == a->known ? " (history from the claim check)" : "");
	else
		printf(" %d file%s ahead moved to %s:%s\n", nmoved, nmoved == 1 ? "" : "s",
			   errdir, moved);
	return 0;
}

/*
 * known: the new primary's timeline as the claim check read it from the
 * node itself, or NULL: then it is read over the Barman endpoint.
 */
void
barman_fork(const struct config *cfg, const char *dir, const struct timeline_facts *known)
{
	struct fork_args fa = {.conninfo = cfg->barman_conninfo,.dir = dir,.known = known};
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
