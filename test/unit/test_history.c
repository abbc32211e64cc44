/*-------------------------------------------------------------------------
 *
 * test_history.c
 *	  Timelines and fork points: a server's replies (orchestrator/base/history.c:
 *	  TIMELINE_HISTORY, timeline, wal_segment_size) and which of Barman's
 *	  streamed WAL files lie beyond the new timeline's fork point
 *	  (timeline_fork.c: wal_name, move_ahead, bridge_timeline_end), on
 *	  files in a temporary folder.
 *
 *-------------------------------------------------------------------------
 */
#include "../../orchestrator/barman/timeline_fork.c"
#include "tap.h"

#include <ftw.h>

#define MB	(UINT64_C(1) << 20)

static const struct
{
	const char *name;
	const char *text;
	int			rc;
	int			n;
	unsigned	last_tli;
	uint64_t	last_end;
}			histories[] = {
	{"empty", "", 0, 0, 0, 0},
	{"as PostgreSQL writes it", "1\t0/3000028\tno recovery target specified\n", 0, 1, 1, 0x3000028},
	{"no reason", "1\t0/3000028\n", 0, 1, 1, 0x3000028},
	{"no final newline", "1\t0/3000028\tx", 0, 1, 1, 0x3000028},
	{"comments and blank lines", "# x\n\n1\t0/3000028\tx\n\n# y\n", 0, 1, 1, 0x3000028},
	{"three timelines", "1\t0/3000028\ta\n2\t0/5000000\tb\n3\t1/A0\tc\n", 0, 3, 3, UINT64_C(0x1000000A0)},
	{"skipped timelines", "1\t0/3000028\ta\n5\t0/5000000\tb\n", 0, 2, 5, 0x5000000},
	{"equal switchpoints", "1\t0/3000028\ta\n2\t0/3000028\tb\n", 0, 2, 2, 0x3000028},
	{"top timeline", "2147483647\t0/1\tx\n", 0, 1, 0x7fffffff, 1},
	{"top LSN", "1\tFFFFFFFF/FFFFFFFF\tx\n", 0, 1, 1, UINT64_MAX},
	{"CRLF", "1\t0/3000028\r\n", 0, 1, 1, 0x3000028},
	{"timelines going down", "2\t0/3000028\ta\n1\t0/5000000\tb\n", -1, 0, 0, 0},
	{"a timeline twice", "1\t0/3000028\ta\n1\t0/5000000\tb\n", -1, 0, 0, 0},
	{"switchpoints going back", "1\t0/5000000\ta\n2\t0/3000028\tb\n", -1, 0, 0, 0},
	{"timeline 0", "0\t0/3000028\tx\n", -1, 0, 0, 0},
	{"timeline 2^31", "2147483648\t0/1\tx\n", -1, 0, 0, 0},
	{"negative timeline", "-1\t0/1\tx\n", -1, 0, 0, 0},
	{"no LSN", "1\n", -1, 0, 0, 0},
	{"bad LSN", "1\t0/XYZ\tx\n", -1, 0, 0, 0},
	{"LSN without slash", "1\t3000028\tx\n", -1, 0, 0, 0},
	{"LSN digits too long", "1\t0/123456789\tx\n", -1, 0, 0, 0},
	{"text", "hello\n", -1, 0, 0, 0},
	{"a good line then garbage", "1\t0/3000028\tx\nzzz\n", -1, 0, 0, 0},
};

static const struct
{
	const char *s;
	int			rc;
	unsigned	want;
}			timelines[] = {
	{"1", 0, 1}, {"2", 0, 2}, {"2147483647", 0, 0x7fffffff}, {"0", -1, 0},
	{"2147483648", -1, 0}, {"-1", -1, 0}, {"", -1, 0}, {"1a", -1, 0}, {" 1", -1, 0},
	{"0x2", -1, 0}, {"99999999999999999999", -1, 0},
};

static const struct
{
	const char *s;
	uint64_t	want;
}			segsizes[] = {
	{"16MB", 16 * MB}, {"1MB", MB}, {"1GB", 1024 * MB}, {"1024MB", 1024 * MB},
	{"1024kB", MB}, {"64MB", 64 * MB}, {"512MB", 512 * MB},
	{"512kB", 0}, {"2GB", 0}, {"2048MB", 0}, {"3MB", 0}, {"24MB", 0}, {"0MB", 0},
	{"16", 0}, {"16 MB", 0}, {"16mb", 0}, {"16Mb", 0}, {"16TB", 0}, {"", 0},
	{"-16MB", 0}, {"MB", 0}, {"99999999999999999999MB", 0}, {"16MBx", 0},
};

static const struct
{
	const char *name;
	uint64_t	segsz;
	bool		ok;
	unsigned	tli;
	uint64_t	segno;
	bool		partial;
}			walnames[] = {
	{"000000010000000000000003", 16 * MB, true, 1, 3, false},
	{"000000010000000000000003.partial", 16 * MB, true, 1, 3, true},
	{"0000000A00000001000000FF", 16 * MB, true, 10, 256 + 255, false},
	{"000000020000000100000002", 1024 * MB, true, 2, 4 + 2, false},
	{"000000020000000100000002", MB, true, 2, 4096 + 2, false},
	{"7FFFFFFF0000000000000001", 16 * MB, true, 0x7fffffff, 1, false},
	{"0000000a0000000000000003", 16 * MB, false, 0, 0, false},
	{"00000001000000000000003", 16 * MB, false, 0, 0, false},
	{"0000000100000000000000030", 16 * MB, false, 0, 0, false},
	{"00000002.history", 16 * MB, false, 0, 0, false},
	{"000000010000000000000003.partial.tmp", 16 * MB, false, 0, 0, false},
	{"000000010000000000000003.partia", 16 * MB, false, 0, 0, false},
	{"000000010000000000000003.backup", 16 * MB, false, 0, 0, false},
	{"00000001000000000000000G", 16 * MB, false, 0, 0, false},
	{"", 16 * MB, false, 0, 0, false},
};

/*
 * A streaming folder, the new timeline and its history: which files stay,
 * where pg_receivewal restarts, and the .partial made to bridge a timeline
 * that ended exactly at a segment start.
 */
static const struct
{
	const char *name;
	uint64_t	segsz;
	unsigned	tli_now;
	const char *history;
	const char *stay[6];
	const char *moved[6];
	unsigned	rp_tli;			/* 0: no restart point */
	uint64_t	rp_segno;
	const char *bridge;			/* the .partial made, or NULL */
}			forks[] = {
	{"Barman behind the fork point", 16 * MB, 2, "1\t0/3000028\tx\n",
		{"000000010000000000000001", "000000010000000000000002", "000000010000000000000003.partial"},
		{NULL}, 1, 3, NULL},
	{"a complete segment at the fork's segment", 16 * MB, 2, "1\t0/3000028\tx\n",
		{"000000010000000000000002"},
		{"000000010000000000000003"}, 1, 2, NULL},
	{"a .partial past the fork's segment", 16 * MB, 2, "1\t0/3000028\tx\n",
		{"000000010000000000000002"},
		{"000000010000000000000004.partial"}, 1, 2, NULL},
	{"already on the new timeline", 16 * MB, 2, "1\t0/3000028\tx\n",
		{"000000010000000000000002", "000000020000000000000003.partial"},
		{"000000010000000000000004"}, 2, 3, NULL},
	{"a timeline not in the history", 16 * MB, 3, "1\t0/3000028\tx\n2\t0/5000028\tx\n",
		{"000000020000000000000004"},
		{"000000040000000000000001", "000000070000000000000009.partial"}, 2, 4, NULL},
	{"two forks", 16 * MB, 3, "1\t0/3000028\tx\n2\t0/5000028\tx\n",
		{"000000010000000000000002", "000000010000000000000003.partial", "000000020000000000000005.partial"},
		{"000000010000000000000003", "000000020000000000000006"}, 2, 5, NULL},
	{"the timeline ended at a segment start", 16 * MB, 2, "1\t0/4000000\tx\n",
		{"000000010000000000000003"},
		{"000000010000000000000004", "000000010000000000000004.partial"}, 1, 3,
	"000000020000000000000004.partial"},
	{"ended at a segment start, a .partial there", 16 * MB, 2, "1\t0/4000000\tx\n",
		{"000000010000000000000003.partial"},
		{NULL}, 1, 3, NULL},
	{"ended at a segment start, bridged to the next timeline", 16 * MB, 3,
		"1\t0/4000000\tx\n2\t0/7000000\tx\n",
		{"000000010000000000000003"},
		{NULL}, 1, 3, "000000020000000000000004.partial"},
	{"across a log file", 16 * MB, 2, "1\t1/2000028\tx\n",
		{"0000000100000000000000FF", "000000010000000100000001"},
		{"000000010000000100000002", "000000010000000100000003.partial"}, 1, 256 + 1, NULL},
	{"1 GB segments", 1024 * MB, 2, "1\t0/C0000028\tx\n",
		{"000000010000000000000002"},
		{"000000010000000000000003"}, 1, 2, NULL},
	{"other files are left alone", 16 * MB, 2, "1\t0/3000028\tx\n",
		{"00000002.history", "000000010000000000000002", "README"},
		{"000000010000000000000005"}, 1, 2, NULL},
	{"an empty folder", 16 * MB, 2, "1\t0/3000028\tx\n", {NULL}, {NULL}, 0, 0, NULL},
};

static char top[] = "/tmp/test_history.XXXXXX";

static bool
exists(const char *dir, const char *name)
{
	char		path[600];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static int
count_entries(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	int			n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st, (void) flag, (void) ftw;
	return remove(path);
}

static void
test_fork(int c)
{
	char		dir[300], errdir[300], path[600], moved[2000] = "", out[4096];
	struct tl_history h;
	struct restart_point rp = {0};
	int			nstay = 0, nmoved = 0, n, rc;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/%d/streaming", top, c);
	snprintf(errdir, sizeof(errdir), "%s/%d/errors", top, c);
	snprintf(path, sizeof(path), "%s/%d", top, c);
	if (mkdir(path, 0700) != 0 || mkdir(dir, 0700) != 0)
	{
		perror(dir);
		exit(2);
	}
	for (int i = 0; i < 6 && forks[c].stay[i]; i++, nstay++)
		snprintf(path, sizeof(path), "%s/%s", dir, forks[c].stay[i]), close(creat(path, 0600));
	for (int i = 0; i < 6 && forks[c].moved[i]; i++, nmoved++)
		snprintf(path, sizeof(path), "%s/%s", dir, forks[c].moved[i]), close(creat(path, 0600));

	if (history_parse(forks[c].history, &h) != 0)
	{
		ok(false, "%s: the history parses", forks[c].name);
		return;
	}
	capture_start(STDOUT_FILENO);
	n = move_ahead(dir, errdir, forks[c].segsz, forks[c].tli_now, &h, &rp, moved, sizeof(moved));
	rc = bridge_timeline_end(dir, forks[c].segsz, forks[c].tli_now, &h, &rp);
	capture_end(out, sizeof(out));

	is_int(n, nmoved, "%s: %d moved aside", forks[c].name, nmoved);
	for (int i = 0; i < nstay; i++)
		ok(exists(dir, forks[c].stay[i]), "%s: %s stays", forks[c].name, forks[c].stay[i]);
	for (int i = 0; i < nmoved; i++)
		ok(!exists(dir, forks[c].moved[i]) && strstr(moved, forks[c].moved[i]) != NULL,
		   "%s: %s moved", forks[c].name, forks[c].moved[i]);
	is_int(count_entries(errdir), nmoved, "%s: errors/ holds what was moved", forks[c].name);
	is_int(rp.found ? rp.tli : 0, forks[c].rp_tli, "%s: restart timeline", forks[c].name);
	is_int(rp.segno, forks[c].rp_segno, "%s: restart segment", forks[c].name);
	is_int(rc, 0, "%s: bridge_timeline_end", forks[c].name);
	if (forks[c].bridge)
	{
		snprintf(path, sizeof(path), "%s/%s", dir, forks[c].bridge);
		ok(stat(path, &st) == 0 && (uint64_t) st.st_size == forks[c].segsz,
		   "%s: %s made, one segment long", forks[c].name, forks[c].bridge);
	}
	else
		is_int(count_entries(dir), nstay, "%s: nothing made", forks[c].name);
}

int
main(void)
{
	int			ntests = 3 * lengthof(histories) + 2 * lengthof(timelines) +
		lengthof(segsizes) + 3 * lengthof(walnames) + 4;
	char		big[70000];
	struct tl_history h;

	for (size_t c = 0; c < lengthof(forks); c++)
	{
		int			k = 0;

		while (k < 6 && forks[c].stay[k])
			k++;
		ntests += k;
		for (k = 0; k < 6 && forks[c].moved[k]; k++)
			ntests++;
		ntests += 6;
	}
	plan(ntests);

	for (size_t i = 0; i < lengthof(histories); i++)
	{
		int			rc = history_parse(histories[i].text, &h);

		is_int(rc, histories[i].rc, "history_parse: %s %s", histories[i].name,
			   histories[i].rc == 0 ? "accepted" : "refused");
		is_int(rc == 0 ? h.n : 0, histories[i].n, "history_parse: %s, entries", histories[i].name);
		ok(rc != 0 || histories[i].n == 0 ||
		   (h.tli[h.n - 1] == histories[i].last_tli && h.end[h.n - 1] == histories[i].last_end),
		   "history_parse: %s, the fork point", histories[i].name);
	}

	/* bounds: MAX_TLI entries, a 256-byte line, a 64 kB text */
	big[0] = '\0';
	for (int t = 1; t <= MAX_TLI; t++)
		sprintf(big + strlen(big), "%d\t0/%X\tx\n", t, t * 0x1000);
	is_int(history_parse(big, &h), 0, "history_parse: %d timelines accepted", MAX_TLI);
	sprintf(big + strlen(big), "%d\t0/%X\tx\n", MAX_TLI + 1, (MAX_TLI + 1) * 0x1000);
	is_int(history_parse(big, &h), -1, "history_parse: %d timelines refused", MAX_TLI + 1);
	snprintf(big, sizeof(big), "1\t0/3000028\t%0250d\n", 0);
	is_int(history_parse(big, &h), -1, "history_parse: a line of 256 bytes or more refused");
	memset(big, '#', 65537);
	big[65537] = '\0';
	is_int(history_parse(big, &h), -1, "history_parse: more than 64 kB refused");

	for (size_t i = 0; i < lengthof(timelines); i++)
	{
		unsigned	tli = 99;
		int			rc = parse_timeline(timelines[i].s, &tli);

		is_int(rc, timelines[i].rc, "parse_timeline(\"%s\") %s", timelines[i].s,
			   timelines[i].rc == 0 ? "accepted" : "refused");
		is_int(tli, timelines[i].rc == 0 ? timelines[i].want : 99, "parse_timeline(\"%s\") value",
			   timelines[i].s);
	}
	for (size_t i = 0; i < lengthof(segsizes); i++)
		is_int(parse_segment_size(segsizes[i].s), segsizes[i].want, "parse_segment_size(\"%s\")",
			   segsizes[i].s);
	for (size_t i = 0; i < lengthof(walnames); i++)
	{
		unsigned	tli = 0;
		uint64_t	segno = 0;
		bool		partial = false;
		bool		r = wal_name(walnames[i].name, walnames[i].segsz, &tli, &segno, &partial);

		is_int(r, walnames[i].ok, "wal_name(\"%s\") %s", walnames[i].name,
			   walnames[i].ok ? "accepted" : "refused");
		ok(!r || (tli == walnames[i].tli && partial == walnames[i].partial),
		   "wal_name(\"%s\") timeline, .partial", walnames[i].name);
		ok(!r || segno == walnames[i].segno, "wal_name(\"%s\", %" PRIu64 " MB) segment",
		   walnames[i].name, walnames[i].segsz / MB);
	}

	if (mkdtemp(top) == NULL)
	{
		perror(top);
		return 2;
	}
	for (size_t c = 0; c < lengthof(forks); c++)
		test_fork(c);
	nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return done();
}
