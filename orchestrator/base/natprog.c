/*-------------------------------------------------------------------------
 *
 * natprog.c
 *	  barman_ha_nat, the backup host's privileged program, seen from the
 *	  orchestrator: run it (a fixed argv, no shell, bounded) and read what
 *	  it says.  Its `show` is the orchestrator's only source of the node
 *	  addresses, the endpoints and the fencing state, so an address the
 *	  orchestrator connects to always comes from root's configuration.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct run_result res;	/* big: keep it off the stack */

/* barman_ha_nat waits at most twice its lock timeout, plus a margin. */
static int
nat_timeout_ms(const struct config *cfg)
{
	return (2 * cfg->lock_timeout + 10) * 1000;
}

/*
 * Run barman_ha_nat VERB [A1 [A2]].  Returns its exit code (BHA_EXIT_*),
 * BHA_EXIT_FAIL if it could not run; reply gets what it said, on one line.
 */
int
nat_call(const struct config *cfg, char *reply, size_t len,
		 const char *verb, const char *a1, const char *a2)
{
	char	   *av[] = {(char *) cfg->nat_program, (char *) verb, (char *) a1,
	(char *) a2, NULL};

	if (run_exec(nat_timeout_ms(cfg), av, &res) != 0)
	{
		snprintf(reply, len, "cannot run %s: %s", cfg->nat_program, strerror(errno));
		return BHA_EXIT_FAIL;
	}
	/* its lines (a result, the flows removed; or an error) as one */
	snprintf(reply, len, "%s", res.out);
	for (char *p = reply + strlen(reply); p > reply && p[-1] == '\n'; p--)
		p[-1] = '\0';
	for (char *p = reply; *p; p++)
		if (*p == '\n')
			*p = ';';
	if (res.timed_out)
	{
		snprintf(reply, len, "%s %s did not finish in time", cfg->nat_program, verb);
		return BHA_EXIT_FAIL;
	}
	if (res.status < 0 || res.status > BHA_EXIT_FENCED)
		return BHA_EXIT_FAIL;
	return res.status;
}

/* "NAME ADDR:PORT", "closed", "missing" or "unknown ADDR:PORT": the name or "" */
static void
parse_target(char **w, int n, char *out)
{
	out[0] = '\0';
	if (n >= 5 && bha_valid_name(w[4]) && strcmp(w[4], "unknown") != 0 &&
		strcmp(w[4], "missing") != 0)
		strcpy(out, w[4]);
}

/* Reads `barman_ha_nat show`.  Returns 0, or -1 after one line on stderr. */
int
nat_show(const struct config *cfg, struct nat_view *v)
{
	char		reply[300];
	char	   *line, *save = NULL;
	int			rc = nat_call(cfg, reply, sizeof(reply), "show", NULL, NULL);

	memset(v, 0, sizeof(*v));
	if (rc != BHA_EXIT_OK)
	{
		errorf("barman_ha_nat show failed: %s", reply);
		return -1;
	}
	for (line = strtok_r(res.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		char	   *w[8], *tok, *wsave = NULL;
		int			n = 0;
		long		l;

		/* barman_ha_nat's own output: words separated by one space */
		for (tok = strtok_r(line, " ", &wsave); tok && n < 8; tok = strtok_r(NULL, " ", &wsave))
			w[n++] = tok;

		if (n == 2 && strcmp(w[0], "backend") == 0)
			snprintf(v->backend, sizeof(v->backend), "%s", w[1]);
		else if (n == 4 && strcmp(w[0], "node") == 0 && v->nnodes < MAX_NODES &&
				 bha_valid_name(w[1]) &&
				 parse_ipv4(w[2], &v->nodes[v->nnodes].addr) == 0 &&
				 parse_port(w[3], &v->nodes[v->nnodes].port) == 0)
			strcpy(v->nodes[v->nnodes++].name, w[1]);
		else if (n >= 5 && strcmp(w[0], "endpoint") == 0)
		{
			int			ep = strcmp(w[1], BHA_ENDPOINT_BARMAN) == 0 ? 0 :
				strcmp(w[1], BHA_ENDPOINT_APP) == 0 ? 1 : -1;

			if (ep < 0 || parse_ipv4(w[2], &v->backup_address) != 0 ||
				parse_port(w[3], &v->ports[ep]) != 0)
				continue;
			parse_target(w, n, v->target[ep]);
		}
		else if (n == 4 && strcmp(w[0], "state") == 0 && bha_valid_name(w[1]) &&
				 parse_long(w[2], 1, BHA_TIMELINE_MAX, &v->routed_timeline) == 0 &&
				 parse_long(w[3], 0, INT64_MAX, &l) == 0)
		{
			strcpy(v->routed_node, w[1]);
			v->routed_at = l;
			v->routed = true;
		}
	}
	if (v->backup_address.s_addr == 0 || v->ports[0] == 0 || v->ports[1] == 0)
	{
		errorf("barman_ha_nat show did not name the endpoints");
		return -1;
	}
	return 0;
}

const struct node *
view_node(const struct nat_view *v, const char *name)
{
	for (int i = 0; i < v->nnodes; i++)
		if (strcmp(v->nodes[i].name, name) == 0)
			return &v->nodes[i];
	return NULL;
}

/*
 * `nat init|route|show` asked of the orchestrator: barman_ha_nat answers
 * the caller directly (its own output, its own exit code).
 */
int
nat_passthrough(const struct config *cfg, int argc, char **argv)
{
	char	   *av[MAX_ARGS + 2];
	int			n = 0;

	av[n++] = (char *) cfg->nat_program;
	for (int i = 1; i < argc && n < MAX_ARGS + 1; i++)
		av[n++] = argv[i];
	av[n] = NULL;
	fflush(NULL);
	execve(av[0], av, child_env());
	errorf("cannot run %s: %s", av[0], strerror(errno));
	return BHA_EXIT_FAIL;
}
