/*-------------------------------------------------------------------------
 *
 * test_fence.c
 *	  Unit test of barman_ha_nat's fencing decision, fence_decide() in
 *	  nat/config.c.  The expected outcomes are a table of rules written
 *	  from the documented policy, not from the code: each rule says where
 *	  the claimed timeline lies against the recorded one and what must
 *	  come of it, and is expanded over recorded timelines, steps and node
 *	  names into a few thousand cases.  Plain TAP on stdout, linked with the
 *	  program's own objects (test/unit/Makefile).
 *
 *-------------------------------------------------------------------------
 */
#include "nat.h"

#include <stdio.h>
#include <string.h>

/* Where the claimed timeline lies; BASE is the recorded one, or 1 with no state. */
enum where
{
	W_ONE,						/* timeline 1 */
	W_BELOW,					/* BASE - 1 */
	W_SAME,						/* BASE */
	W_NEXT,						/* BASE + 1 */
	W_STEP,						/* BASE + step */
	W_OVER,						/* BASE + step + 1 */
	W_MAX						/* BHA_TIMELINE_MAX */
};

static const char *const where_name[] = {"1", "base-1", "base", "base+1", "base+step",
"base+step+1", "max"};

static const struct rule
{
	bool		exists;			/* a state is recorded */
	bool		same_node;		/* the claim names the recorded node */
	enum where	where;
	bool		force;
	enum fence	want;
}			rules[] = {
	/* the recorded node again */
	{true, true, W_ONE, false, FENCE_STALE}, {true, true, W_ONE, true, FENCE_NEW},
	{true, true, W_BELOW, false, FENCE_STALE}, {true, true, W_BELOW, true, FENCE_NEW},
	{true, true, W_SAME, false, FENCE_HELD}, {true, true, W_SAME, true, FENCE_HELD},
	{true, true, W_NEXT, false, FENCE_NEW}, {true, true, W_NEXT, true, FENCE_NEW},
	{true, true, W_STEP, false, FENCE_NEW}, {true, true, W_STEP, true, FENCE_NEW},
	{true, true, W_OVER, false, FENCE_TOO_FAR}, {true, true, W_OVER, true, FENCE_NEW},
	{true, true, W_MAX, false, FENCE_TOO_FAR}, {true, true, W_MAX, true, FENCE_NEW},
	/* another node */
	{true, false, W_ONE, false, FENCE_STALE}, {true, false, W_ONE, true, FENCE_NEW},
	{true, false, W_BELOW, false, FENCE_STALE}, {true, false, W_BELOW, true, FENCE_NEW},
	{true, false, W_SAME, false, FENCE_STALE}, {true, false, W_SAME, true, FENCE_NEW},
	{true, false, W_NEXT, false, FENCE_NEW}, {true, false, W_NEXT, true, FENCE_NEW},
	{true, false, W_STEP, false, FENCE_NEW}, {true, false, W_STEP, true, FENCE_NEW},
	{true, false, W_OVER, false, FENCE_TOO_FAR}, {true, false, W_OVER, true, FENCE_NEW},
	{true, false, W_MAX, false, FENCE_TOO_FAR}, {true, false, W_MAX, true, FENCE_NEW},
	/* nothing recorded: bounded from timeline 1, whatever the node */
	{false, false, W_ONE, false, FENCE_NEW}, {false, false, W_ONE, true, FENCE_NEW},
	{false, false, W_NEXT, false, FENCE_NEW}, {false, false, W_NEXT, true, FENCE_NEW},
	{false, false, W_STEP, false, FENCE_NEW}, {false, false, W_STEP, true, FENCE_NEW},
	{false, false, W_OVER, false, FENCE_TOO_FAR}, {false, false, W_OVER, true, FENCE_NEW},
	{false, false, W_MAX, false, FENCE_TOO_FAR}, {false, false, W_MAX, true, FENCE_NEW},
};

static const long recorded[] = {1, 2, 3, 7, 1000, BHA_TIMELINE_MAX - 3, BHA_TIMELINE_MAX};
static const long steps[] = {1, 2, 4, 32, 1000};

/* recorded node, claimed node: the same name, or another (also one it is a prefix of) */
static const char *const same_pairs[][2] = {{"db1", "db1"}, {"a", "a"}};
static const char *const other_pairs[][2] = {{"db2", "db1"}, {"db1", "db10"}};

static const char *
fence_name(enum fence f)
{
	switch (f)
	{
		case FENCE_TOO_FAR:
			return "too far";
		case FENCE_STALE:
			return "stale";
		case FENCE_NEW:
			return "new";
		case FENCE_HELD:
			return "held";
	}
	return "?";
}

/* The claimed timeline, or 0 when WHERE names no valid, unambiguous one for BASE and STEP. */
static long
claimed(const struct rule *ru, long base, long step)
{
	long		tl = 0;

	switch (ru->where)
	{
		case W_ONE:
			tl = 1;
			break;
		case W_BELOW:
			tl = base - 1;
			break;
		case W_SAME:
			tl = base;
			break;
		case W_NEXT:
			tl = base + 1;
			break;
		case W_STEP:
			tl = base + step;
			break;
		case W_OVER:
			tl = base + step + 1;
			break;
		case W_MAX:
			tl = BHA_TIMELINE_MAX;
			break;
	}
	if (tl < 1 || tl > BHA_TIMELINE_MAX)
		return 0;
	/* timeline 1 over a recorded 1 is W_SAME's case; MAX within the step is W_STEP's */
	if (ru->exists && ru->where == W_ONE && base == 1)
		return 0;
	if (ru->where == W_MAX && BHA_TIMELINE_MAX - base <= step)
		return 0;
	return tl;
}

/* Every case of every rule; printed (and counted as failed) only if run. */
static int
cases(bool run, int *failed)
{
	int			n = 0;

	for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++)
	{
		const struct rule *ru = &rules[r];
		size_t		nrec = ru->exists ? sizeof(recorded) / sizeof(recorded[0]) : 1;

		for (size_t b = 0; b < nrec; b++)
			for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++)
				for (int p = 0; p < 2; p++)
				{
					const char *const *pair = ru->same_node ? same_pairs[p] : other_pairs[p];
					long		base = ru->exists ? recorded[b] : 1;
					long		tl = claimed(ru, base, steps[s]);
					struct state st = {.exists = ru->exists};
					char		rec[128] = "nothing recorded";
					enum fence	got;

					if (tl == 0)
						continue;
					n++;
					if (!run)
						continue;
					if (ru->exists)
					{
						st.timeline = base;
						snprintf(st.node, sizeof(st.node), "%s", pair[0]);
						snprintf(rec, sizeof(rec), "recorded %s %ld", pair[0], base);
					}
					got = fence_decide(&st, pair[1], tl, steps[s], ru->force);
					printf("%sok %d - %s, claim %s %ld (%s), step %ld%s: %s",
						   got == ru->want ? "" : "not ", n, rec, pair[1], tl,
						   where_name[ru->where], steps[s], ru->force ? " --force" : "",
						   fence_name(ru->want));
					if (got != ru->want)
					{
						printf(", got %s", fence_name(got));
						(*failed)++;
					}
					printf("\n");
				}
	}
	return n;
}

int
main(void)
{
	int			failed = 0;

	printf("1..%d\n", cases(false, &failed));
	cases(true, &failed);
	if (failed)
		printf("# %d cases failed\n", failed);
	return failed ? 1 : 0;
}
