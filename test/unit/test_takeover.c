/*-------------------------------------------------------------------------
 *
 * test_takeover.c
 *	  The takeover's decision (orchestrator/commands/takeover.c): which node a
 *	  backup host that has just taken the pair's virtual address routes to,
 *	  from what the nodes answered.  A table of named cases, then a sweep
 *	  over every answer of three nodes on three timelines that holds the
 *	  rule: a node is chosen only when it is the one primary on the highest
 *	  timeline any node answered with, and not below barman_ha_nat's record.
 *
 *-------------------------------------------------------------------------
 */
#include "../../orchestrator/commands/takeover.c"
#include "tap.h"

#define S NODE_SILENT
#define R NODE_REFUSED
#define U NODE_UNCLEAR
#define B NODE_STANDBY
#define P NODE_PRIMARY

static const struct
{
	const char *name;
	enum node_kind answer[3];
	unsigned	tli[3];
	long		recorded;		/* barman_ha_nat's timeline, 0: nothing recorded */
	int			want;			/* the node chosen, -1 none */
	int			rc;
	const char *says;
}			cases[] = {
	{"nobody answers", {S, S, S}, {0, 0, 0}, 0, -1, BHA_EXIT_FAIL, "no node answers as a primary"},
	{"only standbys answer", {B, B, S}, {2, 2, 0}, 0, -1, BHA_EXIT_FAIL, "no node answers as a primary"},
	{"one primary, one standby", {P, B, S}, {1, 1, 0}, 1, 0, BHA_EXIT_OK, ""},
	{"the primary of the recorded timeline", {P, B, B}, {3, 3, 3}, 3, 0, BHA_EXIT_OK, ""},
	{"an old primary and the new one", {P, P, S}, {1, 2, 0}, 1, 1, BHA_EXIT_OK, ""},
	{"the new primary, the old one silent", {S, P, S}, {0, 2, 0}, 1, 1, BHA_EXIT_OK, ""},
	{"the new primary, the old one refused", {R, P, B}, {0, 2, 2}, 1, 1, BHA_EXIT_OK, ""},
	{"an unclear node's timeline counts for nothing", {P, U, R}, {1, 2, 3}, 1, 0, BHA_EXIT_OK, ""},
	{"nobody answers whole", {U, R, U}, {1, 0, 2}, 0, -1, BHA_EXIT_FAIL, "no node answers as a primary"},
	{"two primaries on one timeline", {P, P, B}, {2, 2, 2}, 1, -1, BHA_EXIT_FENCED, "2 primaries answer on timeline 2"},
	{"a standby above every primary", {P, B, S}, {1, 2, 0}, 1, -1, BHA_EXIT_FENCED, "a node is on timeline 2, above primary db1's 1"},
	{"a primary below the record", {P, B, S}, {2, 2, 0}, 3, -1, BHA_EXIT_FENCED, "barman_ha_nat holds db2 on timeline 3"},
	{"three primaries, one on top", {P, P, P}, {1, 3, 2}, 2, 1, BHA_EXIT_OK, ""},
};

static void
view(struct nat_view *v, long recorded)
{
	memset(v, 0, sizeof(*v));
	v->nnodes = 3;
	for (int i = 0; i < 3; i++)
		snprintf(v->nodes[i].name, sizeof(v->nodes[i].name), "db%d", i + 1);
	if (recorded > 0)
	{
		v->routed = true;
		snprintf(v->routed_node, sizeof(v->routed_node), "db2");
		v->routed_timeline = recorded;
	}
}

/*
 * Every answer of three nodes on timelines 1-3 (a node that gave no whole
 * answer with a stale timeline of 9), nothing or timeline 1-3 recorded.
 */
static void
sweep(void)
{
	static const enum node_kind kinds[] = {S, R, U, P, P, P, B, B};
	static const unsigned tlis[] = {9, 9, 9, 1, 2, 3, 2, 3};
	int			broken = 0,
				chosen = 0;

	for (int code = 0; code < 8 * 8 * 8; code++)
		for (long recorded = 0; recorded <= 3; recorded++)
		{
			struct takeover_found f = {0};
			struct nat_view v;
			unsigned	top = 0;
			int			rc,
						best,
						primaries_on_top = 0;
			char		msg[300];

			view(&v, recorded);
			for (int i = 0, c = code; i < 3; i++, c /= 8)
			{
				f.node[i].kind = kinds[c % 8];
				f.node[i].tli = tlis[c % 8];
				if ((f.node[i].kind == P || f.node[i].kind == B) && f.node[i].tli > top)
					top = f.node[i].tli;
			}
			for (int i = 0; i < 3; i++)
				primaries_on_top += f.node[i].kind == P && f.node[i].tli == top;
			best = decide(&v, &f, &rc, msg, sizeof(msg));
			if (best >= 0)
			{
				chosen++;
				if (rc != BHA_EXIT_OK || f.node[best].kind != P || f.node[best].tli != top ||
					primaries_on_top != 1 || (long) f.node[best].tli < recorded)
					broken++;
			}
			else if (rc == BHA_EXIT_OK || msg[0] == '\0' ||
					 (primaries_on_top == 1 && (long) top >= recorded))
				broken++;
		}
	is_int(broken, 0, "sweep: a node is chosen only as the one primary on the highest timeline");
	ok(chosen > 0, "sweep: some answers choose a node (%d)", chosen);
}

int
main(void)
{
	char		msg[300];

	plan(3 * lengthof(cases) + 2);
	for (size_t i = 0; i < lengthof(cases); i++)
	{
		struct takeover_found f = {0};
		struct nat_view v;
		int			rc = -1,
					best;

		view(&v, cases[i].recorded);
		for (int j = 0; j < 3; j++)
		{
			f.node[j].kind = cases[i].answer[j];
			f.node[j].tli = cases[i].tli[j];
		}
		msg[0] = '\0';
		best = decide(&v, &f, &rc, msg, sizeof(msg));
		is_int(best, cases[i].want, "%s: the node chosen", cases[i].name);
		is_int(rc, cases[i].rc, "%s: the exit code", cases[i].name);
		ok(strstr(msg, cases[i].says) != NULL, "%s: says \"%s\" (%s)", cases[i].name,
		   cases[i].says, msg);
	}
	sweep();
	return done();
}
