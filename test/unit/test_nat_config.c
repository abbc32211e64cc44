/*-------------------------------------------------------------------------
 *
 * test_nat_config.c
 *	  barman_ha_nat's nat.conf and state file parsers (nat/config.c): the
 *	  defaults, the nodes, every bound, and the refusals with one line on
 *	  stderr naming the file and the line.
 *
 *-------------------------------------------------------------------------
 */
#include "nat_main.h"

#include <arpa/inet.h>

#define BASE "backup_address = 10.213.0.10\n"

/* Texts that parse (after BASE unless they give backup_address). */
static const struct
{
	const char *name;
	const char *text;
	int			nnodes;
	unsigned	barman_port,
				app_port;
	bool		nftables;
	const char *snat_app;		/* app_snat_address as printed */
}			goods[] = {
	{"the address alone", BASE, 0, 54321, 54322, false, "10.213.0.10"},
	{"two nodes", BASE "node.db1 = 10.213.0.11:5432\nnode.db2 = 10.213.0.12:5433\n", 2, 54321, 54322, false,
	"10.213.0.10"},
	{"comments, blanks, spaces", "# nat.conf\n\n  backup_address\t=  10.213.0.10  # here\r\n", 0, 54321, 54322,
	false, "10.213.0.10"},
	{"ports", BASE "barman_port = 1\napp_port = 65535\n", 0, 1, 65535, false, "10.213.0.10"},
	{"ports swapped", BASE "barman_port = 54322\napp_port = 54321\n", 0, 54322, 54321, false, "10.213.0.10"},
	{"nftables", BASE "nat_backend = nftables\n", 0, 54321, 54322, true, "10.213.0.10"},
	{"iptables", BASE "nat_backend = nftables\nnat_backend = iptables\n", 0, 54321, 54322, false,
	"10.213.0.10"},
	{"an SNAT address for the app endpoint", BASE "app_snat_address = 10.213.0.20\n", 0, 54321, 54322, false,
	"10.213.0.20"},
	{"the address after the nodes", "node.db1 = 10.213.0.11:5432\n" BASE, 1, 54321, 54322, false,
	"10.213.0.10"},
	{"a node named like a verb", BASE "node.show = 10.213.0.11:5432\n", 1, 54321, 54322, false,
	"10.213.0.10"},
	{"a long node name", BASE "node.abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij012 = 10.0.0.1:1\n",
	1, 54321, 54322, false, "10.213.0.10"},
};

/* Texts refused, and the error after "barman_ha_nat: /etc/n.conf: ". */
static const struct
{
	const char *text;
	const char *error;
}			bads[] = {
	{"", "backup_address is required"},
	{"# nothing\n", "backup_address is required"},
	{"node.db1 = 10.213.0.11:5432\n", "backup_address is required"},
	{BASE "barman_port = 54322\n", "barman_port and app_port must differ"},
	{"backup_address\n", "line 1: expected key = value"},
	{BASE "\nfrob = 1\n", "line 3: unknown key \"frob\""},
	{BASE "Backup_address = 10.0.0.1\n", "line 2: unknown key \"Backup_address\""},
	{BASE "node = 10.0.0.1:1\n", "line 2: unknown key \"node\""},
	{"backup_address = 0.0.0.0\n", "line 1: invalid value for \"backup_address\""},
	{"backup_address = 255.255.255.255\n", "line 1: invalid value for \"backup_address\""},
	{"backup_address = 10.213.0\n", "line 1: invalid value for \"backup_address\""},
	{"backup_address = 010.213.0.10\n", "line 1: invalid value for \"backup_address\""},
	{"backup_address = backup\n", "line 1: invalid value for \"backup_address\""},
	{"backup_address = \n", "line 1: invalid value for \"backup_address\""},
	{BASE "barman_port = 0\n", "line 2: invalid value for \"barman_port\""},
	{BASE "barman_port = 65536\n", "line 2: invalid value for \"barman_port\""},
	{BASE "app_port = -1\n", "line 2: invalid value for \"app_port\""},
	{BASE "app_port = 0x50\n", "line 2: invalid value for \"app_port\""},
	{BASE "app_port = 12345678901\n", "line 2: invalid value for \"app_port\""},
	{BASE "nat_backend = nft\n", "line 2: invalid value for \"nat_backend\""},
	{BASE "nat_backend = \n", "line 2: invalid value for \"nat_backend\""},
	{BASE "lock_timeout = 0\n", "line 2: invalid value for \"lock_timeout\""},
	{BASE "lock_timeout = 601\n", "line 2: invalid value for \"lock_timeout\""},
	{BASE "state_file = state\n", "line 2: invalid value for \"state_file\""},
	{BASE "state_file = /var/lib/x/\n", "line 2: invalid value for \"state_file\""},
	{BASE "state_file = /var/lib/../etc/x\n", "line 2: invalid value for \"state_file\""},
	{BASE "state_file = /var/lib/.x\n", "line 2: invalid value for \"state_file\""},
	{BASE "state_file = /var/lib/x y\n", "line 2: invalid value for \"state_file\""},
	{BASE "app_snat_address = 0.0.0.0\n", "line 2: invalid value for \"app_snat_address\""},
	{BASE "node.db1 = 10.213.0.11\n", "line 2: invalid value for \"node.db1\""},
	{BASE "node.db1 = 10.213.0.11:0\n", "line 2: invalid value for \"node.db1\""},
	{BASE "node.db1 = 10.213.0.11:65536\n", "line 2: invalid value for \"node.db1\""},
	{BASE "node.db1 = 10.213.0.11:\n", "line 2: invalid value for \"node.db1\""},
	{BASE "node.db1 = 0.0.0.0:5432\n", "line 2: invalid value for \"node.db1\""},
	{BASE "node.db1 = db1:5432\n", "line 2: invalid value for \"node.db1\""},
	{BASE "node. = 10.213.0.11:5432\n", "line 2: invalid value for \"node.\""},
	{BASE "node.-db1 = 10.213.0.11:5432\n", "line 2: invalid value for \"node.-db1\""},
	{BASE "node..db1 = 10.213.0.11:5432\n", "line 2: invalid value for \"node..db1\""},
	{BASE "node.d/b = 10.213.0.11:5432\n", "line 2: invalid key \"node.d/b\""},
	{BASE "node.closed = 10.213.0.11:5432\n", "line 2: invalid value for \"node.closed\""},
	{BASE "node.missing = 10.213.0.11:5432\n", "line 2: invalid value for \"node.missing\""},
	{BASE "node.unknown = 10.213.0.11:5432\n", "line 2: invalid value for \"node.unknown\""},
	{BASE "node.none = 10.213.0.11:5432\n", "line 2: invalid value for \"node.none\""},
	{BASE "node.db1 = 10.213.0.11:5432\nnode.db1 = 10.213.0.12:5432\n",
	"line 3: invalid value for \"node.db1\""},
	{BASE "node.abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij0123 = 10.0.0.1:1\n",
	"line 2: invalid value for \"node.abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij0123\""},
};

/* The state file's lines: what is recorded, or corrupt. */
static const struct
{
	const char *text;
	int			rc;
	const char *node;
	long		timeline;
}			states[] = {
	{"node=db1\ntimeline=2\n", 0, "db1", 2},
	{"timeline=7\nnode=db2", 0, "db2", 7},
	{"node=db1\ntimeline=2147483647\n", 0, "db1", 2147483647L},
	{"# x\nnode=db1\nother=1\ntimeline=3\n", 0, "db1", 3},
	{"node=db1\ntimeline=2\nnode=db2\ntimeline=5\n", 0, "db2", 5},
	{"", -1, "", 0},
	{"node=db1\n", -1, "db1", 0},
	{"timeline=2\n", -1, "", 2},
	{"node=db1\ntimeline=0\n", -1, "db1", 0},
	{"node=db1\ntimeline=2147483648\n", -1, "db1", 0},
	{"node=db1\ntimeline=-2\n", -1, "db1", 0},
	{"node=db1\ntimeline=2x\n", -1, "db1", 0},
	{"node=-db1\ntimeline=2\n", -1, "", 2},
	{"node=db 1\ntimeline=2\n", -1, "", 2},
	{"node =db1\ntimeline=2\n", -1, "", 2},
};

static char out[4096];

static int
parse(struct nat_config *cfg, const char *text)
{
	char		buf[1024];

	snprintf(buf, sizeof(buf), "%s", text);
	return with_error(out, nat_conf_parse(cfg, buf, "/etc/n.conf"));
}

int
main(void)
{
	struct nat_config cfg;
	struct state st;
	char		buf[8192], want[512], a[INET_ADDRSTRLEN];
	const struct node *n;
	int			rc;

	plan(9 + 6 * lengthof(goods) + 3 * lengthof(bads) + 3 * lengthof(states) + 5);

	rc = parse(&cfg, BASE);
	is_int(rc, 0, "the defaults: accepted");
	is_int(cfg.ports[EP_BARMAN], 54321, "default barman_port");
	is_int(cfg.ports[EP_APP], 54322, "default app_port");
	is_int(cfg.lock_timeout, 5, "default lock_timeout");
	is_str(cfg.state_file, "/var/lib/repmgr_barman_ha/state", "default state_file");
	ok(!cfg.nftables, "default nat_backend: iptables");
	ok(!cfg.snat_per_endpoint, "no SNAT address given");
	is_str(inet_ntop(AF_INET, &cfg.snat_address[EP_BARMAN], a, sizeof(a)), "10.213.0.10",
		   "the barman endpoint's SNAT address defaults to backup_address");
	is_str(out, "", "nothing on stderr");

	for (size_t i = 0; i < lengthof(goods); i++)
	{
		rc = parse(&cfg, goods[i].text);
		is_int(rc, 0, "%s: accepted", goods[i].name);
		is_int(cfg.nnodes, goods[i].nnodes, "%s: nodes", goods[i].name);
		is_int(cfg.ports[EP_BARMAN], goods[i].barman_port, "%s: barman_port", goods[i].name);
		is_int(cfg.ports[EP_APP], goods[i].app_port, "%s: app_port", goods[i].name);
		is_int(cfg.nftables, goods[i].nftables, "%s: nat_backend", goods[i].name);
		is_str(inet_ntop(AF_INET, &cfg.snat_address[EP_APP], a, sizeof(a)), goods[i].snat_app,
			   "%s: the app endpoint's SNAT address", goods[i].name);
	}

	for (size_t i = 0; i < lengthof(bads); i++)
	{
		const char *shown = bads[i].text;

		rc = parse(&cfg, bads[i].text);
		is_int(rc, -1, "refused: %s", shown);
		snprintf(want, sizeof(want), PROG ": /etc/n.conf: %s\n", bads[i].error);
		is_str(out, want, "the error line of: %s", shown);
		is_int(count_lines(out), 1, "one line for: %s", shown);
	}

	/* the nodes as config_node finds them */
	rc = parse(&cfg, BASE "node.db1 = 10.213.0.11:5432\nnode.db2 = 10.213.0.12:6543\n");
	n = config_node(&cfg, "db2");
	ok(rc == 0 && n != NULL && n->port == 6543 &&
	   strcmp(inet_ntop(AF_INET, &n->addr, a, sizeof(a)), "10.213.0.12") == 0,
	   "config_node finds db2 with its address and port");
	ok(config_node(&cfg, "db3") == NULL, "config_node: an unknown node");

	/* NAT_MAX_NODES nodes, and one more */
	snprintf(buf, sizeof(buf), BASE);
	for (int i = 0; i < NAT_MAX_NODES; i++)
		sprintf(buf + strlen(buf), "node.n%d = 10.213.1.%d:5432\n", i, i + 1);
	{
		char		copy[8192];

		snprintf(copy, sizeof(copy), "%s", buf);
		rc = with_error(out, nat_conf_parse(&cfg, copy, "/etc/n.conf"));
		ok(rc == 0 && cfg.nnodes == NAT_MAX_NODES, "%d nodes accepted", NAT_MAX_NODES);
		sprintf(buf + strlen(buf), "node.extra = 10.213.2.1:5432\n");
		snprintf(copy, sizeof(copy), "%s", buf);
		rc = with_error(out, nat_conf_parse(&cfg, copy, "/etc/n.conf"));
		is_int(rc, -1, "node %d refused", NAT_MAX_NODES + 1);
		snprintf(want, sizeof(want), PROG ": /etc/n.conf: line %d: invalid value for \"node.extra\"\n",
				 NAT_MAX_NODES + 2);
		is_str(out, want, "node %d: its line", NAT_MAX_NODES + 1);
	}

	for (size_t i = 0; i < lengthof(states); i++)
	{
		snprintf(buf, sizeof(buf), "%s", states[i].text);
		rc = state_parse(buf, &st);
		is_int(rc, states[i].rc, "state_parse %s: %s", states[i].rc == 0 ? "recorded" : "corrupt",
			   states[i].node[0] ? states[i].node : "(no node)");
		is_str(st.node, states[i].node, "state_parse: node %s", states[i].node);
		is_int(st.timeline, states[i].timeline, "state_parse: timeline %ld", states[i].timeline);
	}

	return done();
}
