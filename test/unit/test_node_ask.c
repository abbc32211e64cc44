/*-------------------------------------------------------------------------
 *
 * test_node_ask.c
 *	  What a node's replies make of it (orchestrator/claim/node_ask.c's
 *	  node_judge), the one reading the claim check's probe, its claimant
 *	  and the takeover share.  A table of named replies, then a sweep over
 *	  replies of every shape that holds the rule: a node is a primary or a
 *	  standby only when pg_is_in_recovery() said t or f and IDENTIFY_SYSTEM
 *	  gave a valid timeline; the routed primary's endpoints leave it only
 *	  when it said t.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"
#include "tap.h"

static const struct
{
	const char *name;
	const char *in_recovery;	/* NULL: no valid reply */
	const char *timeline;
	enum node_kind kind;
	unsigned	tli;
	const char *why;
}			replies[] = {
	{"a primary", "f", "3", NODE_PRIMARY, 3, "not in recovery"},
	{"a standby", "t", "2", NODE_STANDBY, 2, "in recovery"},
	{"no reply to pg_is_in_recovery()", NULL, "1", NODE_UNCLEAR, 0,
	"no valid answer to pg_is_in_recovery()"},
	{"true for t", "true", "1", NODE_UNCLEAR, 0, "pg_is_in_recovery() answered neither t nor f"},
	{"an empty reply", "", "1", NODE_UNCLEAR, 0, "pg_is_in_recovery() answered neither t nor f"},
	{"a primary without IDENTIFY_SYSTEM", "f", NULL, NODE_UNCLEAR, 0,
	"no valid timeline from IDENTIFY_SYSTEM"},
	{"a standby on timeline 0", "t", "0", NODE_UNCLEAR, 0, "no valid timeline from IDENTIFY_SYSTEM"},
	{"a primary on timeline 2^32+1", "f", "4294967297", NODE_UNCLEAR, 0,
	"no valid timeline from IDENTIFY_SYSTEM"},
	{"a timeline with a tail", "f", "2 ", NODE_UNCLEAR, 0, "no valid timeline from IDENTIFY_SYSTEM"},
};

static void
sweep(void)
{
	static const char *const recs[] = {NULL, "t", "f", "", "T", "tt", "f\n", "1", "false"};
	static const char *const tlis[] = {NULL, "1", "7", "2147483647", "0", "-1", "",
	"x", "3x", "99999999999999999999"};
	int			broken = 0,
				answered = 0;

	for (size_t r = 0; r < lengthof(recs); r++)
		for (size_t t = 0; t < lengthof(tlis); t++)
		{
			struct node_answer a;
			unsigned	tli;
			bool		whole = recs[r] != NULL &&
				(strcmp(recs[r], "t") == 0 || strcmp(recs[r], "f") == 0) &&
				tlis[t] != NULL && strspn(tlis[t], "0123456789") == strlen(tlis[t]) &&
				tlis[t][0] != '\0' && tlis[t][0] != '0' && strlen(tlis[t]) <= 10 &&
				strtoull(tlis[t], NULL, 10) <= BHA_TIMELINE_MAX;
			char		msg[400];
			int			rc;

			memset(&a, 0x55, sizeof(a));
			node_judge(recs[r], tlis[t], &a);
			tli = whole ? (unsigned) strtoul(tlis[t], NULL, 10) : 0;
			answered += whole;
			if (a.why[0] == '\0' || a.tli != tli ||
				(whole && a.kind != (recs[r][0] == 't' ? NODE_STANDBY : NODE_PRIMARY)) ||
				(!whole && a.kind != NODE_UNCLEAR))
			{
				diag("in_recovery %s, timeline %s: %s %u (%s)", recs[r] ? recs[r] : "NULL",
					 tlis[t] ? tlis[t] : "NULL", node_kind_name(a.kind), a.tli, a.why);
				broken++;
			}
			rc = routed_verdict("db1", &a, msg, sizeof(msg));
			if ((rc == BHA_EXIT_OK) != (a.kind == NODE_STANDBY))
				broken++;
		}
	is_int(broken, 0, "sweep: only whole replies make a primary or a standby");
	is_int(answered, 6, "sweep: t and f on each valid timeline answer");
}

int
main(void)
{
	plan(3 * lengthof(replies) + 3);
	for (size_t i = 0; i < lengthof(replies); i++)
	{
		struct node_answer a;

		memset(&a, 0x55, sizeof(a));
		node_judge(replies[i].in_recovery, replies[i].timeline, &a);
		is_str(node_kind_name(a.kind), node_kind_name(replies[i].kind), "%s: the kind",
			   replies[i].name);
		is_int((int) a.tli, (int) replies[i].tli, "%s: the timeline", replies[i].name);
		is_str(a.why, replies[i].why, "%s: why", replies[i].name);
	}
	is_str(node_kind_name(99), "?", "a kind out of range has no name");
	sweep();
	return done();
}
