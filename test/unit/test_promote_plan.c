/*-------------------------------------------------------------------------
 *
 * test_promote_plan.c
 *	  The promote table (orchestrator/commands/promote.c, included for its static
 *	  rows): its order, and what a promote redoes for every combination of
 *	  what it found when it began -- a first claim or a level check, Barman
 *	  configured or not, the Barman endpoint, the app endpoint (or the
 *	  watch keeping it closed), receive-wal running, switch-wal done.  The
 *	  expectations are stated here from the documented behaviour
 *	  (docs/backup-host.md), not derived from the rows.
 *
 *-------------------------------------------------------------------------
 */
#include "../../orchestrator/commands/promote.c"
#include "tap.h"

static const char *const documented_order[] = {
	"claim_check", "fence", "route_barman", "barman_restart", "route_app",
	"barman_streaming", "switch_wal", "state",
};

static const struct node db2 = {"db2", {0}, 5432};

/* the rows a promote with these facts runs, as "name name ..." */
static void
planned(const struct promote *p, bool barman, char *out, size_t len)
{
	out[0] = '\0';
	for (int i = 0; i < NSTEPS; i++)
		if (step_pending(p, i, barman))
			snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? " " : "",
					 promote_steps[i].name);
}

int
main(void)
{
	char		got[300],
				want[300];
	int			cases = 0,
				wrong = 0;

	plan(lengthof(documented_order) + 3);
	for (size_t i = 0; i < lengthof(documented_order); i++)
		is_str(i < (size_t) NSTEPS ? promote_steps[i].name : "(none)", documented_order[i],
			   "row %zu is %s", i + 1, documented_order[i]);

	for (int bits = 0; bits < 128; bits++)
	{
		bool		level = bits & 1,
					barman = bits & 2,
					barman_ok = bits & 4,
					app_ok = bits & 8,
					receiving = bits & 16,
					switched = bits & 32,
					watch = bits & 64;
		struct promote p = {.n = &db2,.tl = 2,.level = level,.receiving = receiving,
		.watch_closed = level && watch};

		snprintf(p.v.target[0], sizeof(p.v.target[0]), "%s", barman_ok ? "db2" : "db1");
		snprintf(p.v.target[1], sizeof(p.v.target[1]), "%s", app_ok ? "db2" : watch ? "closed" : "db1");
		if (switched)
		{
			snprintf(p.st.node, sizeof(p.st.node), "db2");
			p.st.timeline = 2;
			p.st.switch_wal_done = true;
		}
		planned(&p, barman, got, sizeof(got));

		/* a first claim: everything but the Barman endpoint, which the fence moves */
		if (!level)
			snprintf(want, sizeof(want), "claim_check fence%s route_app%s%s state",
					 barman ? " barman_restart" : "", barman ? " barman_streaming" : "",
					 barman && !switched ? " switch_wal" : "");
		/* a level check: what is missing, in the table's order; the record after a switch */
		else
			snprintf(want, sizeof(want), "%s%s%s%s%s", barman_ok ? "" : " route_barman",
					 barman && !receiving ? " barman_restart" : "",
					 app_ok || watch ? "" : " route_app",
					 barman && !receiving ? " barman_streaming" : "",
					 barman && !switched ? " switch_wal" : "");
		cases++;
		if (strcmp(got, want[0] == ' ' ? want + 1 : want) != 0)
		{
			diag("facts %#x: got \"%s\", want \"%s\"", bits, got, want[0] == ' ' ? want + 1 : want);
			wrong++;
		}
	}
	is_int(wrong, 0, "%d combinations of facts: each runs what is missing, no more", cases);

	/* the record: a level check writes it only after its own switch-wal */
	{
		struct promote p = {.n = &db2,.tl = 2,.level = true};

		ok(state_recorded(&p), "a quiet level check writes no record");
		p.switched_now = true;
		ok(!state_recorded(&p), "a level check that switched records it");
	}
	return done();
}
