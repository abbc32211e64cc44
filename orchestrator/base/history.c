/*-------------------------------------------------------------------------
 *
 * history.c
 *	  The parts of a PostgreSQL server's replies that the orchestrator acts
 *	  on: a timeline (IDENTIFY_SYSTEM), a timeline history file
 *	  (TIMELINE_HISTORY) and wal_segment_size.  The server may be a
 *	  compromised node or something posing as one, so every reply is
 *	  validated here before use, with bounds, and anything else is refused:
 *	  these functions are what the fuzzer runs.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A timeline: decimal, 1 .. 2^31-1. */
int
parse_timeline(const char *s, unsigned *tli)
{
	long		v;

	if (s == NULL || parse_long(s, 1, BHA_TIMELINE_MAX, &v) != 0)
		return -1;
	*tli = (unsigned) v;
	return 0;
}

/*
 * wal_segment_size as SHOW prints it ("16MB"): a power of two from 1 MB to
 * 1 GB, PostgreSQL's own limits.  0 for anything else, so no caller ever
 * divides by a hostile value.
 */
uint64_t
parse_segment_size(const char *s)
{
	char	   *end;
	unsigned long long v;
	uint64_t	bytes;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return 0;
	v = strtoull(s, &end, 10);
	if (v == 0 || v > 1024 * 1024 * 1024ULL)
		return 0;
	if (strcmp(end, "kB") == 0)
		bytes = v << 10;
	else if (strcmp(end, "MB") == 0)
		bytes = v << 20;
	else if (strcmp(end, "GB") == 0)
		bytes = v << 30;
	else
		return 0;
	if (bytes < (1 << 20) || bytes > (1 << 30) || (bytes & (bytes - 1)) != 0)
		return 0;
	return bytes;
}

/*
 * A timeline history file: "parentTLI<TAB>switchpoint<TAB>reason" lines,
 * "#" comments and blank lines.  Parent timelines must rise strictly and
 * switchpoints must not go back, as PostgreSQL writes them; at most
 * MAX_TLI entries.  Returns 0, or -1 for anything else.
 */
int
history_parse(const char *text, struct tl_history *h)
{
	const char *p = text;

	memset(h, 0, sizeof(*h));
	if (text == NULL || strlen(text) > HISTORY_MAX_BYTES)
		return -1;
	while (*p)
	{
		const char *eol = strchr(p, '\n');
		size_t		len = eol ? (size_t) (eol - p) : strlen(p);
		char		line[256],
					tlis[16],
					lsn[24];
		unsigned	tli;
		uint64_t	end;

		if (len >= sizeof(line))
			return -1;
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (eol ? 1 : 0);
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (sscanf(line, "%15[0-9]\t%23[0-9A-Fa-f/]", tlis, lsn) != 2 ||
			parse_timeline(tlis, &tli) != 0 || !parse_lsn(lsn, &end))
			return -1;
		if (h->n == MAX_TLI ||
			(h->n > 0 && (tli <= h->tli[h->n - 1] || end < h->end[h->n - 1])))
			return -1;
		h->tli[h->n] = tli;
		h->end[h->n] = end;
		h->n++;
	}
	return 0;
}

/*
 * Whether a claimed history agrees with the history of timeline k that the
 * backup host already holds (Barman archived it when k began).  When k is
 * one of the claimed ancestors, the entries before it must be exactly k's
 * own: a new timeline adds entries, it never moves an older switchpoint.
 */
bool
history_agrees(const struct tl_history *claimed, unsigned k, const struct tl_history *known)
{
	int			at = -1;

	for (int i = 0; i < claimed->n; i++)
		if (claimed->tli[i] == k)
			at = i;
	if (at < 0)
		return true;
	if (known->n != at)
		return false;
	for (int i = 0; i < at; i++)
		if (known->tli[i] != claimed->tli[i] || known->end[i] != claimed->end[i])
			return false;
	return true;
}
