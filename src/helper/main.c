/*-------------------------------------------------------------------------
 *
 * main.c
 *	  barman_ha_helper: entry point.  Makes the process safe first (file
 *	  descriptors, environment, caller's group), parses the command line or
 *	  SSH_ORIGINAL_COMMAND with one strict parser, loads the trusted
 *	  configuration, then either forwards the request over ssh (a DB node
 *	  with `remote` set) or runs the verb here (the backup host).
 *
 *	  Exit codes: 0 done, 1 failure, 2 usage or configuration error,
 *	  3 fenced.  The last line on stderr always says why.
 *
 *-------------------------------------------------------------------------
 */
#include "helper.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>


static const char usage_text[] =
"usage: barman_ha_helper [-c FILE] [--force] VERB [ARGS]\n"
"       barman_ha_helper --from-ssh [--node NAME]   (authorized_keys forced command)\n"
"\n"
"verbs:\n"
"  nat init                       create chains repmgr_dnat/repmgr_snat and their jumps,\n"
"                                 set net.ipv4.ip_forward=1 (idempotent)\n"
"  nat route NODE [barman|app|both]\n"
"                                 point the endpoint(s) at NODE in one commit\n"
"  nat show                       one line per endpoint: ENDPOINT NODE ADDR:PORT, or none\n"
"  barman reset                   put Barman's WAL stream on the routed primary\n"
"  promote NODE TIMELINE          fence check, route barman, reset Barman, route app,\n"
"                                 record NODE and TIMELINE (idempotent)\n"
"  status                         key=value lines: routed node, timeline, targets, chains\n"
"  help                           this text\n"
"\n"
"options:\n"
"  -c FILE      configuration file (real user root only; default " DEFAULT_CONFIG ")\n"
"  --force      promote even when fenced (real user root only)\n"
"  --from-ssh   read the request from SSH_ORIGINAL_COMMAND (forced command)\n"
"  --node NAME  with --from-ssh: the node this ssh key belongs to\n"
"\n"
"exit codes: 0 done, 1 failure, 2 usage or configuration error, 3 fenced\n"
"iptables: rules are in the legacy tables; see them with iptables-legacy -t nat -S\n";

/* Format into buf as one line: the worker reads lines, the DBA the last one. */
static void
one_line(char *buf, size_t len, const char *fmt, va_list ap)
{
	vsnprintf(buf, len, fmt, ap);
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

static void
vreport(const char *suffix, const char *fmt, va_list ap)
{
	char		msg[1024];

	one_line(msg, sizeof(msg), fmt, ap);
	fflush(stdout);
	fprintf(stderr, "barman_ha_helper: %s%s\n", msg, suffix);
	fflush(stderr);
	syslog(LOG_AUTHPRIV | LOG_ERR, "%s", msg);
}

void
errorf(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vreport("", fmt, ap);
	va_end(ap);
}

void
logmsg(int prio, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsyslog(LOG_AUTHPRIV | prio, fmt, ap);
	va_end(ap);
}

void
step(const char *name, const char *result, double ms, const char *fmt,...)
{
	char		detail[512];
	va_list		ap;

	va_start(ap, fmt);
	one_line(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	printf("step %s %s %.1f %s\n", name, result, ms < 0 ? 0 : ms, detail);
	fflush(stdout);
}

static int
usage_error(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vreport(" (see barman_ha_helper --help)", fmt, ap);
	va_end(ap);
	return EXIT_USAGE;
}

static void
format_target(const struct config *cfg, const struct route *r, char *buf, size_t len)
{
	char		a[INET_ADDRSTRLEN];
	const struct node *n;

	if (!r->set)
	{
		snprintf(buf, len, "none");
		return;
	}
	inet_ntop(AF_INET, &r->addr, a, sizeof(a));
	n = config_node_by_addr(cfg, r->addr, r->port);
	snprintf(buf, len, "%s %s:%u", n ? n->name : "unknown", a, r->port);
}

static int
cmd_nat_show(const struct config *cfg)
{
	struct route routes[EP_COUNT];
	bool		chains_ok;
	char		t[128];

	if (nat_read(cfg, routes, &chains_ok) != 0)
		return EXIT_FAIL;
	for (int ep = 0; ep < EP_COUNT; ep++)
	{
		format_target(cfg, &routes[ep], t, sizeof(t));
		printf("%s %s\n", endpoint_names[ep], t);
	}
	return EXIT_OK;
}

static int
cmd_status(const struct config *cfg)
{
	struct route routes[EP_COUNT];
	struct state st;
	bool		chains_ok;
	char		t[128];

	if (nat_read(cfg, routes, &chains_ok) != 0 || state_read(cfg, &st) != 0)
		return EXIT_FAIL;
	printf("routed_node=%s\n", st.exists ? st.node : "");
	printf("timeline=%ld\n", st.exists ? st.timeline : 0L);
	printf("switch_wal=%s\n", !st.exists ? "" : st.switch_wal_done ? "done" : "pending");
	for (int ep = 0; ep < EP_COUNT; ep++)
	{
		format_target(cfg, &routes[ep], t, sizeof(t));
		printf("%s_target=%s\n", endpoint_names[ep], t);
	}
	printf("chains=%s\n", chains_ok ? "present" : "missing");
	if (st.exists)
	{
		struct tm tm;
		time_t		mt = (time_t) st.mtime;

		strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&mt, &tm));
		printf("state_time=%s\n", t);
	}
	else
		printf("state_time=\n");
	return EXIT_OK;
}

static int
parse_endpoints(const char *s, int *mask)
{
	if (s == NULL || strcmp(s, "both") == 0)
		*mask = EP_MASK_BOTH;
	else if (strcmp(s, "barman") == 0)
		*mask = EP_MASK_BARMAN;
	else if (strcmp(s, "app") == 0)
		*mask = EP_MASK_APP;
	else
		return -1;
	return 0;
}

/*
 * Over ssh a key may move the endpoints only to its own node, and only
 * while that node holds them by the fencing state (a repair); taking them
 * over goes through promote and its fencing.
 */
static int
ssh_may_touch(const struct config *cfg, const struct caller *who, const char *node)
{
	struct state st;

	if (!who->from_ssh)
		return EXIT_OK;
	if (who->ssh_node[0] == '\0')
		return usage_error("this ssh key is not pinned to a node (--node), it may only read");
	if (node != NULL && strcmp(node, who->ssh_node) != 0)
		return usage_error("this ssh key belongs to node %s, not %s", who->ssh_node, node);
	if (state_read(cfg, &st) != 0)
		return EXIT_FAIL;
	if (!st.exists || strcmp(st.node, who->ssh_node) != 0)
	{
		errorf("fenced: the endpoints belong to %s, not %s; use promote",
			   st.exists ? st.node : "nobody", who->ssh_node);
		return EXIT_FENCED;
	}
	return EXIT_OK;
}

static int
dispatch(const struct config *cfg, const struct caller *who, int argc, char **argv)
{
	const char *verb = argc > 0 ? argv[0] : "";
	bool		changed = false;
	int			rc;

	if (strcmp(verb, "help") == 0 && argc == 1)
	{
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (strcmp(verb, "status") == 0 && argc == 1)
		return cmd_status(cfg);
	if (strcmp(verb, "promote") == 0 && argc == 3)
		return cmd_promote(cfg, who, argv[1], argv[2]);
	if (strcmp(verb, "barman") == 0 && argc == 2 && strcmp(argv[1], "reset") == 0)
	{
		if ((rc = ssh_may_touch(cfg, who, NULL)) != EXIT_OK)
			return rc;
		return barman_reset(cfg) == 0 ? EXIT_OK : EXIT_FAIL;
	}
	if (strcmp(verb, "nat") == 0 && argc >= 2)
	{
		if (strcmp(argv[1], "show") == 0 && argc == 2)
			return cmd_nat_show(cfg);
		if (strcmp(argv[1], "init") == 0 && argc == 2)
		{
			if (nat_init(cfg, &changed) != 0)
				return EXIT_FAIL;
			printf("init %s\n", changed ? "changed" : "unchanged");
			return EXIT_OK;
		}
		if (strcmp(argv[1], "route") == 0 && (argc == 3 || argc == 4))
		{
			const struct node *n;
			int			mask,
						removed = 0;

			if (!valid_name(argv[2]))
				return usage_error("invalid node name");
			if ((n = config_node(cfg, argv[2])) == NULL)
				return usage_error("unknown node \"%s\" (not in %s)", argv[2], cfg->path);
			if (parse_endpoints(argc == 4 ? argv[3] : NULL, &mask) != 0)
				return usage_error("endpoint must be barman, app or both");
			if ((rc = ssh_may_touch(cfg, who, n->name)) != EXIT_OK)
				return rc;
			if (nat_route(cfg, n, mask, &changed) != 0)
				return EXIT_FAIL;
			if (changed && conntrack_flush(cfg, mask, n, &removed) != 0)
				return EXIT_FAIL;
			printf("route %s %s", n->name, changed ? "changed" : "unchanged");
			if (removed > 0)
				printf(", %d flow%s removed", removed, removed == 1 ? "" : "s");
			printf("\n");
			return EXIT_OK;
		}
	}
	if (strcmp(verb, "promote") == 0 || strcmp(verb, "status") == 0 ||
		strcmp(verb, "nat") == 0 || strcmp(verb, "barman") == 0)
		return usage_error("wrong arguments for %s", verb);
	return usage_error("unknown verb \"%.40s\"", verb);
}

/* Remote mode forwards only the verbs the backup host serves. */
static bool
remote_verb(int argc, char **argv)
{
	return argc > 0 && (strcmp(argv[0], "promote") == 0 ||
						strcmp(argv[0], "status") == 0 ||
						strcmp(argv[0], "nat") == 0 ||
						strcmp(argv[0], "barman") == 0);
}

int
main(int argc, char **argv)
{
	struct caller who = {0};
	struct config cfg;
	const char *config_path = DEFAULT_CONFIG;
	char		sshcmd[300] = "";
	bool		sshcmd_long = false;
	char	   *words[MAX_ARGS];
	int			nwords, i, rc;
	const char *soc;

	sanitize_fds();
	umask(022);
	openlog("barman_ha_helper", LOG_PID, LOG_AUTHPRIV);
	who.ruid = getuid();
	who.rgid = getgid();
	who.is_root = (who.ruid == 0);

	/* Keep only the request, then forget the caller's environment. */
	soc = getenv("SSH_ORIGINAL_COMMAND");
	if (soc != NULL)
	{
		if (strlen(soc) >= sizeof(sshcmd))
			sshcmd_long = true;
		else
			strcpy(sshcmd, soc);
	}
	clearenv();
	setenv("PATH", SAFE_PATH, 1);

	for (i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
		{
			fputs(usage_text, stdout);
			return EXIT_OK;
		}
	}
	if (geteuid() != 0)
	{
		errorf("not running as root: install it setuid root (make -C src/helper install)");
		return EXIT_USAGE;
	}
	if (check_caller_group(&who) != 0)
	{
		errorf("uid %d may not run this helper: not in its group", (int) who.ruid);
		return EXIT_USAGE;
	}

	for (i = 1; i < argc && argv[i][0] == '-'; i++)
	{
		if (strcmp(argv[i], "--") == 0)
		{
			i++;
			break;
		}
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
		{
			if (!who.is_root)
				return usage_error("-c is only for the root user");
			config_path = argv[++i];
		}
		else if (strcmp(argv[i], "--force") == 0)
		{
			if (!who.is_root)
				return usage_error("--force is only for the root user");
			who.force = true;
		}
		else if (strcmp(argv[i], "--from-ssh") == 0)
			who.from_ssh = true;
		else if (strcmp(argv[i], "--node") == 0 && i + 1 < argc)
		{
			if (!valid_name(argv[++i]))
				return usage_error("invalid --node name");
			strcpy(who.ssh_node, argv[i]);
		}
		else
			return usage_error("unknown option \"%.40s\"", argv[i]);
	}
	if (who.ssh_node[0] != '\0' && !who.from_ssh)
		return usage_error("--node only goes with --from-ssh");

	if (who.from_ssh)
	{
		/* The request comes from the ssh client: the same strict parser. */
		if (i != argc)
			return usage_error("--from-ssh takes no verb on the command line");
		if (sshcmd_long)
			return usage_error("SSH_ORIGINAL_COMMAND too long");
		if (soc == NULL)
			return usage_error("--from-ssh without SSH_ORIGINAL_COMMAND");
		nwords = split_words(sshcmd, words, MAX_ARGS);
		if (nwords <= 0)
			return usage_error("SSH_ORIGINAL_COMMAND refused (only names, numbers, spaces)");
		if (strcmp(words[0], "help") == 0)
			return usage_error("help is not served over ssh");
		argv = words;
		argc = nwords;
	}
	else
	{
		argv += i;
		argc -= i;
	}
	for (i = 0; i < argc; i++)
		if (strlen(argv[i]) > 64)
			return usage_error("argument %d is too long", i + 1);
	if (argc == 0)
		return usage_error("no verb given");
	if (argc == 1 && strcmp(argv[0], "help") == 0)
	{
		fputs(usage_text, stdout);
		return EXIT_OK;
	}

	if ((rc = config_load(&cfg, config_path)) != EXIT_OK)
		return rc;

	logmsg(LOG_INFO, "uid %d%s%s: %s%s%s%s%s", (int) who.ruid,
		   who.from_ssh ? " via ssh node " : "", who.ssh_node, argv[0],
		   argc > 1 ? " " : "", argc > 1 ? argv[1] : "",
		   argc > 2 ? " " : "", argc > 2 ? argv[2] : "");

	if (cfg.remote_host[0] != '\0' && !who.from_ssh)
	{
		if (!remote_verb(argc, argv))
			return usage_error("unknown verb \"%.40s\"", argv[0]);
		return remote_exec(&cfg, &who, argc, argv);
	}
	rc = dispatch(&cfg, &who, argc, argv);
	logmsg(LOG_INFO, "%s: exit %d", argv[0], rc);
	return rc;
}
