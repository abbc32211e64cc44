/*-------------------------------------------------------------------------
 *
 * test_nat_request.c
 *	  barman_ha_nat's command line (parse_nat_argv, static in nat/main.c,
 *	  hence included): each verb's words, node names, timelines, --force,
 *	  endpoints, -c, and the usage errors with their one line.
 *
 *-------------------------------------------------------------------------
 */
#include "nat_main.h"

/* Command lines after the program's name, split at spaces. */
static const struct
{
	const char *args;
	int			rc;
	enum verb	verb;
	const char *node;
	long		timeline;
	bool		force;
	unsigned	epmask;
	const char *error;			/* after "barman_ha_nat: " */
}			requests[] = {
	{"help", 0, V_HELP, NULL, 0, false, 0, NULL},
	{"--help", 0, V_HELP, NULL, 0, false, 0, NULL},
	{"init", 0, V_INIT, NULL, 0, false, 0, NULL},
	{"show", 0, V_SHOW, NULL, 0, false, 0, NULL},
	{"-c /etc/x.conf show", 0, V_SHOW, NULL, 0, false, 0, NULL},
	{"claim db1 2", 0, V_CLAIM, "db1", 2, false, 1u << EP_BARMAN, NULL},
	{"claim db1 1", 0, V_CLAIM, "db1", 1, false, 1u << EP_BARMAN, NULL},
	{"claim db1 2147483647", 0, V_CLAIM, "db1", 2147483647L, false, 1u << EP_BARMAN, NULL},
	{"claim db1 2 --force", 0, V_CLAIM, "db1", 2, true, 1u << EP_BARMAN, NULL},
	{"route db2", 0, V_ROUTE, "db2", 0, false, 3, NULL},
	{"route db2 both", 0, V_ROUTE, "db2", 0, false, 3, NULL},
	{"route db2 barman", 0, V_ROUTE, "db2", 0, false, 1u << EP_BARMAN, NULL},
	{"route db2 app", 0, V_ROUTE, "db2", 0, false, 1u << EP_APP, NULL},
	{"close db1", 0, V_CLOSE, "db1", 0, false, 1u << EP_APP, NULL},
	{"route db_1.x-y", 0, V_ROUTE, "db_1.x-y", 0, false, 3, NULL},
	{"", -1, 0, NULL, 0, false, 0, "no verb (see barman_ha_nat help)"},
	{"-c /etc/x.conf", -1, 0, NULL, 0, false, 0, "no verb (see barman_ha_nat help)"},
	{"frob", -1, 0, NULL, 0, false, 0, "unknown verb (see barman_ha_nat help)"},
	{"SHOW", -1, 0, NULL, 0, false, 0, "unknown verb (see barman_ha_nat help)"},
	{"-c", -1, 0, NULL, 0, false, 0, "unknown verb (see barman_ha_nat help)"},
	{"show db1", -1, 0, NULL, 0, false, 0, "wrong number of arguments (see barman_ha_nat help)"},
	{"help me", -1, 0, NULL, 0, false, 0, "wrong number of arguments (see barman_ha_nat help)"},
	{"claim db1", -1, 0, NULL, 0, false, 0, "wrong number of arguments (see barman_ha_nat help)"},
	{"claim db1 2 --force x", -1, 0, NULL, 0, false, 0, "wrong number of arguments (see barman_ha_nat help)"},
	{"route", -1, 0, NULL, 0, false, 0, "wrong number of arguments (see barman_ha_nat help)"},
	{"route db1 app x", -1, 0, NULL, 0, false, 0, "wrong number of arguments (see barman_ha_nat help)"},
	{"close", -1, 0, NULL, 0, false, 0, "wrong number of arguments (see barman_ha_nat help)"},
	{"close db1 app", -1, 0, NULL, 0, false, 0, "wrong number of arguments (see barman_ha_nat help)"},
	{"show -c /etc/x.conf", -1, 0, NULL, 0, false, 0, "wrong number of arguments (see barman_ha_nat help)"},
	{"claim -db1 2", -1, 0, NULL, 0, false, 0, "invalid node name"},
	{"claim .db1 2", -1, 0, NULL, 0, false, 0, "invalid node name"},
	{"claim db/1 2", -1, 0, NULL, 0, false, 0, "invalid node name"},
	{"route db;1", -1, 0, NULL, 0, false, 0, "invalid node name"},
	{"close $(id)", -1, 0, NULL, 0, false, 0, "invalid node name"},
	{"claim db1 0", -1, 0, NULL, 0, false, 0, "invalid timeline (1 to 2147483647)"},
	{"claim db1 2147483648", -1, 0, NULL, 0, false, 0, "invalid timeline (1 to 2147483647)"},
	{"claim db1 -2", -1, 0, NULL, 0, false, 0, "invalid timeline (1 to 2147483647)"},
	{"claim db1 0x2", -1, 0, NULL, 0, false, 0, "invalid timeline (1 to 2147483647)"},
	{"claim db1 2 --forced", -1, 0, NULL, 0, false, 0, "unknown option (only --force)"},
	{"claim db1 2 -f", -1, 0, NULL, 0, false, 0, "unknown option (only --force)"},
	{"route db1 APP", -1, 0, NULL, 0, false, 0, "unknown endpoint (barman, app or both)"},
	{"route db1 all", -1, 0, NULL, 0, false, 0, "unknown endpoint (barman, app or both)"},
};

static char out[1024];

static int
request(const char *args, struct request *rq, char *store, size_t len)
{
	char	   *argv[16] = {"barman_ha_nat"};
	int			argc = 1;

	snprintf(store, len, "%s", args);
	for (char *w = strtok(store, " "); w && argc < 15; w = strtok(NULL, " "))
		argv[argc++] = w;
	return with_error(out, parse_nat_argv(argc, argv, rq));
}

int
main(void)
{
	struct request rq;
	char		store[600], want[600], *argv[3] = {"barman_ha_nat", "show", store};
	int			rc;

	plan(2 * lengthof(requests) + 3);

	for (size_t i = 0; i < lengthof(requests); i++)
	{
		rc = request(requests[i].args, &rq, store, sizeof(store));
		is_int(rc, requests[i].rc, "\"%s\" %s", requests[i].args, rc == 0 ? "accepted" : "refused");
		if (requests[i].rc == 0)
			ok(rc == 0 && rq.verb == requests[i].verb && rq.timeline == requests[i].timeline &&
			   rq.force == requests[i].force && rq.epmask == requests[i].epmask &&
			   (requests[i].node ? rq.node && strcmp(rq.node, requests[i].node) == 0 : rq.node == NULL) &&
			   out[0] == '\0',
			   "\"%s\": verb, node, timeline, --force, endpoints", requests[i].args);
		else
		{
			snprintf(want, sizeof(want), PROG ": %s\n", requests[i].error);
			is_str(out, want, "\"%s\": the error line", requests[i].args);
		}
	}

	rc = request("-c /etc/x.conf show", &rq, store, sizeof(store));
	is_str(rq.conf, "/etc/x.conf", "-c FILE names the configuration");
	rc = request("show", &rq, store, sizeof(store));
	is_str(rq.conf, BHA_NAT_CONF, "the default configuration");

	/* a word longer than 255 bytes, whichever */
	memset(store, 'a', 256);
	store[256] = '\0';
	rc = with_error(out, parse_nat_argv(3, argv, &rq));
	ok(rc == -1 && strcmp(out, PROG ": argument 2 is longer than 255 bytes\n") == 0,
	   "an argument of 256 bytes is refused");

	return done();
}
