/*-------------------------------------------------------------------------
 *
 * test_claim_verdict.c
 *	  The claim check's decisions (orchestrator/claim/claim_verdict.c): what the
 *	  claimant says of itself, and what the probe of the routed primary
 *	  found.  A table of named cases, then a sweep over timelines, routed
 *	  timelines, node counts and histories that holds the rules every
 *	  verdict must keep: no confirmation for a node in recovery, on another
 *	  timeline, too far ahead or not descended from the routed timeline,
 *	  and the endpoints never leave a routed primary without evidence.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"
#include "tap.h"

#define OK		BHA_EXIT_OK
#define FAIL	BHA_EXIT_FAIL
#define FENCED	BHA_EXIT_FENCED

static const struct tl_history from1 = {1, {1}, {0x3000000}};
static const struct tl_history from1to3 = {3, {1, 2, 3}, {0x3000000, 0x4000000, 0x5000000}};
static const struct tl_history from2 = {1, {2}, {0x3000000}};
static const struct tl_history none = {0, {0}, {0}};

static const struct
{
	const char *name;
	long		timeline,
				routed,
				max;
	bool		in_recovery;
	unsigned	tli;
	int			history;
	const struct tl_history *h;
	int			rc;
	const char *says;
}			claimants[] = {
	{"first claim, nobody routed", 1, 0, 0, false, 1, 0, &none, OK, "db2 is primary on timeline 1"},
	{"first claim on a later timeline", 7, 0, 0, false, 7, 0, &none, OK, "primary on timeline 7"},
	{"level check: same timeline as routed", 2, 2, 4, false, 2, 0, &none, OK, "primary on timeline 2"},
	{"in recovery", 2, 1, 3, true, 2, 0, &from1, FENCED, "in recovery (timeline 2)"},
	{"in recovery, nobody routed", 1, 0, 0, true, 1, 0, &none, FENCED, "not a primary"},
	{"reports another timeline", 5, 1, 3, false, 2, 0, &from1, FENCED, "on timeline 2, not 5"},
	{"reports a lower timeline", 2, 1, 3, false, 1, 0, &none, FENCED, "on timeline 1, not 2"},
	{"forked from the routed timeline", 2, 1, 3, false, 2, 0, &from1, OK, "forked from timeline 1"},
	{"descends through several", 4, 2, 4, false, 4, 0, &from1to3, OK, "forked from timeline 3"},
	{"at the bound", 3, 1, 3, false, 3, 0, &from1to3, OK, "forked from timeline 3"},
	{"one past the bound", 4, 1, 3, false, 4, 0, &from1to3, FENCED, "too far beyond the routed timeline 1 (at most 3)"},
	{"2^31-1", 2147483647, 1, 3, false, 2147483647, 0, &from1, FENCED, "too far beyond"},
	{"not descended", 3, 1, 3, false, 3, 0, &from2, FENCED, "does not descend from the routed timeline 1"},
	{"empty history", 2, 1, 3, false, 2, 0, &none, FENCED, "does not descend"},
	{"history not readable", 2, 1, 3, false, 2, -1, &none, FAIL, "could not be read"},
	{"history not valid", 2, 1, 3, false, 2, -2, &none, FENCED, "is not valid"},
};

static const struct
{
	enum node_kind answer;
	const char *why;
	int			rc;
	const char *says;
}			probes[] = {
	{NODE_UNASKED, "", OK, ""},
	{NODE_SILENT, "no TCP answer within 100 ms", OK, "db1: gone: no TCP answer within 100 ms"},
	{NODE_REFUSED, "nothing listens", OK, "db1: refused: nothing listens"},
	{NODE_STANDBY, "in recovery", OK, "db1: standby: in recovery"},
	{NODE_PRIMARY, "not in recovery", FENCED, "db1 still answers as primary on timeline 1"},
	{NODE_UNCLEAR, "cannot connect: FATAL:  sorry, too many clients already", FAIL,
	"db1 may still be primary (cannot connect: FATAL:  sorry, too many clients already)"},
	{NODE_UNCLEAR, "no answer within 300 ms after the TCP handshake", FAIL, "may still be primary"},
	{NODE_UNCLEAR, "no valid answer to pg_is_in_recovery()", FAIL, "may still be primary"},
};

/* The rules of the sweep, stated apart from the code they check. */
static int	sweep_cases;

static void
sweep(void)
{
	static const struct tl_history *hs[] = {&none, &from1, &from2, &from1to3};
	int			broken = 0;

	for (long t = 1; t <= 9; t++)
		for (long tr = 0; tr <= 9; tr++)
			for (int nodes = 1; nodes <= 3; nodes++)
				for (int rec = 0; rec <= 1; rec++)
					for (unsigned tli = (unsigned) t; tli <= (unsigned) t + 1; tli++)
						for (size_t hi = 0; hi < lengthof(hs); hi++)
							for (int hrc = -2; hrc <= 0; hrc++)
							{
								struct claim_request rq = {"db2", t, tr, tr + nodes};
								struct claimant_answer a = {rec, tli, hrc, hs[hi]};
								char		msg[400];
								int			rc = claimant_verdict(&rq, &a, msg, sizeof(msg));
								bool		descends = false;

								for (int i = 0; i < hs[hi]->n; i++)
									descends |= hs[hi]->tli[i] == tr;
								sweep_cases++;
								if (rc != OK && rc != FAIL && rc != FENCED)
									broken++;
								else if (rc == OK &&
										 (rec || tli != t ||
										  (tr != 0 && tr != t &&
										   (t > tr + nodes || hrc != 0 || !descends))))
								{
									diag("confirmed: t=%ld tr=%ld nodes=%d rec=%d tli=%u h=%zu hrc=%d",
										 t, tr, nodes, rec, tli, hi, hrc);
									broken++;
								}
								else if (rc != OK && !rec && tli == t && (tr == 0 || tr == t))
								{
									diag("refused: t=%ld tr=%ld", t, tr);
									broken++;
								}
							}
	is_int(broken, 0, "sweep: %d claims, none confirmed against the rules", sweep_cases);

	broken = 0;
	for (int a = NODE_UNASKED; a <= NODE_PRIMARY; a++)
	{
		struct node_answer p = {a, 1, "x"};
		char		msg[400];
		int			rc = routed_verdict("db1", &p, msg, sizeof(msg));
		bool		evidence = a == NODE_UNASKED || a == NODE_SILENT ||
			a == NODE_REFUSED || a == NODE_STANDBY;

		if ((rc == OK) != evidence || (a == NODE_PRIMARY && rc != FENCED))
			broken++;
	}
	is_int(broken, 0, "sweep: the endpoints leave the routed primary only on evidence");
}

int
main(void)
{
	char		msg[400];

	plan(2 * lengthof(claimants) + 2 * lengthof(probes) + 3);
	for (size_t i = 0; i < lengthof(claimants); i++)
	{
		struct claim_request rq = {"db2", claimants[i].timeline, claimants[i].routed,
		claimants[i].max};
		struct claimant_answer a = {claimants[i].in_recovery, claimants[i].tli,
		claimants[i].history, claimants[i].h};
		int			rc = claimant_verdict(&rq, &a, msg, sizeof(msg));

		is_int(rc, claimants[i].rc, "claimant: %s", claimants[i].name);
		ok(strstr(msg, claimants[i].says) != NULL, "claimant: %s says \"%s\" (%s)",
		   claimants[i].name, claimants[i].says, msg);
	}
	for (size_t i = 0; i < lengthof(probes); i++)
	{
		struct node_answer p = {probes[i].answer, 1, ""};
		int			rc;

		snprintf(p.why, sizeof(p.why), "%s", probes[i].why);
		rc = routed_verdict("db1", &p, msg, sizeof(msg));
		is_int(rc, probes[i].rc, "routed %s (%s)", routed_answer_name(probes[i].answer),
			   probes[i].why);
		ok(strstr(msg, probes[i].says) != NULL, "routed %s says \"%s\"",
		   routed_answer_name(probes[i].answer), probes[i].says);
	}
	is_str(routed_answer_name(99), "?", "an answer out of range has no name");
	sweep();
	return done();
}
