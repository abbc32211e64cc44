/*-------------------------------------------------------------------------
 *
 * test_fork_history.c
 *	  A new primary's history held against the histories Barman already
 *	  has (orchestrator/base/history.c: history_agrees): an ancestor's older
 *	  switchpoints may not move, a new timeline only adds entries.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"
#include "tap.h"

#define H(...) {.n = sizeof((unsigned[]) {__VA_ARGS__}) / sizeof(unsigned), .tli = {__VA_ARGS__}}

static const struct
{
	const char *name;
	const char *claimed;
	unsigned	k;
	const char *known;
	bool		agrees;
}			cases[] = {
	{"timeline 2 from 1, Barman holds 2's history", "1\t0/3000000\n", 2, "1\t0/3000000\n", true},
	{"3 from 2 from 1: 2's history the prefix", "1\t0/3000000\n2\t0/5000000\n", 2, "1\t0/3000000\n", true},
	{"3 from 2: 3's own history is no ancestor", "1\t0/3000000\n2\t0/5000000\n", 3, "1\t0/1000000\n", true},
	{"k not in the claimed history", "1\t0/3000000\n", 5, "4\t0/1\n", true},
	{"timeline 1's switchpoint moved earlier", "1\t0/2000000\n2\t0/5000000\n", 2, "1\t0/3000000\n", false},
	{"timeline 1's switchpoint moved later", "1\t0/4000000\n2\t0/5000000\n", 2, "1\t0/3000000\n", false},
	{"an ancestor left out", "2\t0/5000000\n", 2, "1\t0/3000000\n", false},
	{"an ancestor added", "1\t0/3000000\n2\t0/4000000\n3\t0/5000000\n", 3, "1\t0/3000000\n", false},
	{"another parent", "1\t0/3000000\n4\t0/5000000\n", 4, "1\t0/3000000\n3\t0/4000000\n", false},
	{"empty known, k first", "2\t0/5000000\n", 2, "", true},
	{"deep agreeing chain", "1\t0/1\n2\t0/2\n3\t0/3\n4\t0/4\n", 4, "1\t0/1\n2\t0/2\n3\t0/3\n", true},
	{"deep chain, one in the middle moved", "1\t0/1\n2\t0/9\n3\t0/9\n4\t0/9\n", 4, "1\t0/1\n2\t0/2\n3\t0/3\n", false},
};

int
main(void)
{
	plan(lengthof(cases));
	for (size_t i = 0; i < lengthof(cases); i++)
	{
		struct tl_history claimed,
					known;

		if (history_parse(cases[i].claimed, &claimed) != 0 ||
			history_parse(cases[i].known, &known) != 0)
		{
			ok(false, "%s: the case's histories parse", cases[i].name);
			continue;
		}
		is_int(history_agrees(&claimed, cases[i].k, &known), cases[i].agrees, "%s", cases[i].name);
	}
	return done();
}
