/*-------------------------------------------------------------------------
 *
 * main.c
 *	  barman_ha_orchestrator: entry point.  Runs as the barman user: the
 *	  ssh forced command of each DB node's key (--from-ssh --node NAME),
 *	  the operator, the status timer.  Started as root, it becomes
 *	  barman_user for good before anything else.  One strict parser for the
 *	  command line and SSH_ORIGINAL_COMMAND; what needs privilege is asked
 *	  of barman_ha_nat, which decides by itself.
 *
 *	  Exit codes (barman_ha_contract.h): 0 done, 1 failure, 2 usage or
 *	  configuration error, 3 fenced.  The last line on stderr says why.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

static const char usage_text[] =
"usage: barman_ha_orchestrator [-c FILE] VERB [ARGS]\n"
"       barman_ha_orchestrator --from-ssh --node NAME   (authorized_keys forced command)\n"
"\n"
"verbs:\n"
"  promote NODE TIMELINE          claim check, fence and Barman endpoint (barman_ha_nat),\n"
"                                 reset Barman, open the app endpoint, switch-wal;\n"
"                                 the same NODE and TIMELINE again: check, repair\n"
"  barman reset                   put Barman's WAL stream on the routed primary\n"
"  status [--textfile FILE]       key=value lines, or FILE in node_exporter's text format\n"
"  status --steps                 the promote sequence, in order: each step, when it\n"
"                                 counts as done (a level check passes over it), what it does\n"
"  nat init|show                  barman_ha_nat's verbs, answered by it\n"
"  nat route NODE [barman|app|both]\n"
"  watch                          run until stopped: close the app endpoint while the\n"
"                                 routed primary's host is silent, open it when it\n"
"                                 answers (barman-ha-watch.service; not over ssh)\n"
"  takeover                       ask every node, route to the primary with the\n"
"                                 highest timeline (keepalived's notify on the host\n"
"                                 taking the virtual address; not over ssh)\n"
"  help                           this text\n"
"\n"
"options:\n"
"  -c FILE      configuration file (default " BHA_ORCHESTRATOR_CONF ")\n"
"  --from-ssh   read the request from SSH_ORIGINAL_COMMAND (forced command)\n"
"  --node NAME  with --from-ssh: the node this ssh key belongs to\n"
"\n"
"exit codes: 0 done, 1 failure, 2 usage or configuration error, 3 fenced\n";

/* A refusal said to the caller only: one a flood would flood syslog with. */
static void refuse_quietly(const char *fmt,...) __attribute__((format(printf, 1, 2)));
static void
refuse_quietly(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vreport(false, "", fmt, ap);
	va_end(ap);
}

static int
usage_error(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vreport(true, " (see barman_ha_orchestrator --help)", fmt, ap);
	va_end(ap);
	return BHA_EXIT_USAGE;
}

/* The request: argv after the options, or SSH_ORIGINAL_COMMAND's words. */
struct request
{
	const char *config_path;
	bool		from_ssh;
	const char *ssh_node;		/* --node, pinned by authorized_keys */
	int			argc;
	char	  **argv;
};

/*
 * Over ssh a key may ask only for its own node: promote (fenced by
 * barman_ha_nat), status, nat show, and repairs while its node holds the
 * endpoints (barman reset, nat route NODE), which barman_ha_nat checks
 * again under its lock.
 */
static int
ssh_allowed(const struct config *cfg, const struct request *rq)
{
	char	  **w = rq->argv;
	struct nat_view v;

	if (!rq->from_ssh || strcmp(w[0], BHA_VERB_PROMOTE) == 0 ||
		strcmp(w[0], BHA_VERB_STATUS) == 0 ||
		(strcmp(w[0], "nat") == 0 && strcmp(w[1], "show") == 0))
		return BHA_EXIT_OK;
	if (strcmp(w[0], "nat") == 0 && strcmp(w[1], "route") == 0)
	{
		if (rq->argc < 3 || strcmp(w[2], rq->ssh_node) != 0)
			return usage_error("this ssh key belongs to node %s, it may route only to it",
							   rq->ssh_node);
	}
	else if (strcmp(w[0], "barman") != 0)
		return usage_error("%s %s is not served over ssh", w[0], w[1]);
	if (nat_show(cfg, &v) != 0)
		return BHA_EXIT_FAIL;
	if (!v.routed || strcmp(v.routed_node, rq->ssh_node) != 0)
	{
		errorf("fenced: the endpoints belong to %s, not %s; use promote",
			   v.routed ? v.routed_node : "nobody", rq->ssh_node);
		return BHA_EXIT_FENCED;
	}
	return BHA_EXIT_OK;
}

static int
dispatch(const struct config *cfg, const struct request *rq)
{
	int			argc = rq->argc;
	char	  **argv = rq->argv;
	const char *verb = argv[0];
	int			rc;

	if (strcmp(verb, BHA_VERB_PROMOTE) == 0 && argc == 3)
		return cmd_promote(cfg, rq->ssh_node, argv[1], argv[2]);
	if (strcmp(verb, BHA_VERB_STATUS) == 0 && argc == 1)
		return cmd_status(cfg, NULL);
	if (strcmp(verb, BHA_VERB_STATUS) == 0 && argc == 2 && strcmp(argv[1], "--steps") == 0)
	{
		print_promote_steps();
		return BHA_EXIT_OK;
	}
	if (strcmp(verb, BHA_VERB_STATUS) == 0 && argc == 3 &&
		strcmp(argv[1], "--textfile") == 0 && !rq->from_ssh)
		return cmd_status(cfg, argv[2]);
	if (strcmp(verb, "watch") == 0 && argc == 1)
	{
		if (rq->from_ssh)
			return usage_error("watch is not served over ssh");
		return cmd_watch(cfg);
	}
	if (strcmp(verb, "takeover") == 0 && argc == 1)
	{
		if (rq->from_ssh)
			return usage_error("takeover is not served over ssh");
		return cmd_takeover(cfg);
	}
	if (strcmp(verb, "barman") == 0 && argc == 2 && strcmp(argv[1], "reset") == 0)
	{
		if ((rc = ssh_allowed(cfg, rq)) != BHA_EXIT_OK)
			return rc;
		return barman_reset(cfg) == 0 ? BHA_EXIT_OK : BHA_EXIT_FAIL;
	}
	if (strcmp(verb, "nat") == 0 && argc >= 2 && argc <= 4)
	{
		if ((rc = ssh_allowed(cfg, rq)) != BHA_EXIT_OK)
			return rc;
		return nat_passthrough(cfg, argc, argv);
	}
	if (strcmp(verb, BHA_VERB_PROMOTE) == 0 || strcmp(verb, BHA_VERB_STATUS) == 0 ||
		strcmp(verb, "nat") == 0 || strcmp(verb, "barman") == 0 || strcmp(verb, "watch") == 0 ||
		strcmp(verb, "takeover") == 0)
		return usage_error("wrong arguments for %s", verb);
	return usage_error("unknown verb \"%.40s\"", verb);
}

/*
 * A known state whatever the caller left us: descriptors 0-2 open and no
 * others, default signal handlers and an empty mask (a blocked SIGALRM
 * would turn every bounded wait into an endless one), a fixed environment.
 */
static void
sanitize_process(void)
{
	sigset_t	none;

	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) == -1 && errno == EBADF &&
			open("/dev/null", O_RDWR) != fd)
			_exit(BHA_EXIT_FAIL);
	closefrom(3);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	umask(027);
}

/* Started as root: become barman_user for good, in OpenDoas's order. */
static int
become_barman(const struct config *cfg)
{
	struct passwd *pw;
	char		env_home[300], env_user[100];

	if (geteuid() != 0)
		return 0;
	if ((pw = getpwnam(cfg->barman_user)) == NULL)
	{
		errorf("unknown barman_user %s", cfg->barman_user);
		return -1;
	}
	if (setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
		initgroups(pw->pw_name, pw->pw_gid) != 0 ||
		setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0 ||
		(pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)))
	{
		errorf("cannot become %s: %s", pw->pw_name, strerror(errno));
		return -1;
	}
	snprintf(env_home, sizeof(env_home), "%s", pw->pw_dir);
	snprintf(env_user, sizeof(env_user), "%s", pw->pw_name);
	setenv("HOME", env_home, 1);
	setenv("USER", env_user, 1);
	setenv("LOGNAME", env_user, 1);
	return chdir(env_home) == 0 || chdir("/") == 0 ? 0 : -1;
}

/* Options, then the verb: from argv, or from SSH_ORIGINAL_COMMAND. */
static int
parse_request(int argc, char **argv, char *sshcmd, bool sshcmd_ok,
			  struct request *rq)
{
	static char *words[MAX_ARGS];
	int			i;

	rq->config_path = BHA_ORCHESTRATOR_CONF;
	for (i = 1; i < argc && argv[i][0] == '-'; i++)
	{
		if (strcmp(argv[i], "--") == 0)
		{
			i++;
			break;
		}
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			rq->config_path = argv[++i];
		else if (strcmp(argv[i], "--from-ssh") == 0)
			rq->from_ssh = true;
		else if (strcmp(argv[i], "--node") == 0 && i + 1 < argc)
		{
			if (!bha_valid_name(argv[++i]))
				return usage_error("invalid --node name");
			rq->ssh_node = argv[i];
		}
		else
			return usage_error("unknown option \"%.40s\"", argv[i]);
	}
	if (rq->from_ssh)
	{
		if (rq->ssh_node == NULL)
			return usage_error("--from-ssh needs --node NAME (the key's node)");
		if (i != argc)
			return usage_error("--from-ssh takes no verb on the command line");
		if (!sshcmd_ok)
			return usage_error("SSH_ORIGINAL_COMMAND missing or too long");
		rq->argc = split_words(sshcmd, words, MAX_ARGS);
		if (rq->argc <= 0)
			return usage_error("SSH_ORIGINAL_COMMAND refused (only names, numbers, spaces)");
		rq->argv = words;
	}
	else
	{
		if (rq->ssh_node != NULL)
			return usage_error("--node only goes with --from-ssh");
		rq->argv = argv + i;
		rq->argc = argc - i;
	}
	if (rq->argc == 0)
		return usage_error("no verb given");
	for (i = 0; i < rq->argc; i++)
		if (strlen(rq->argv[i]) > 64)
			return usage_error("argument %d is too long", i + 1);
	return BHA_EXIT_OK;
}

int
main(int argc, char **argv)
{
	struct request rq = {0};
	struct config cfg;
	static char sshcmd[300];
	const char *soc;
	bool		sshcmd_ok = false;
	int			rc;

	sanitize_process();
	openlog("barman_ha_orchestrator", LOG_PID, LOG_DAEMON);
	/* Keep only the request, then forget the caller's environment. */
	soc = getenv("SSH_ORIGINAL_COMMAND");
	if (soc != NULL && strlen(soc) < sizeof(sshcmd))
	{
		strcpy(sshcmd, soc);
		sshcmd_ok = true;
	}
	clearenv();
	setenv("PATH", SAFE_PATH, 1);
	setenv("LANG", "C.UTF-8", 1);

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
		{
			fputs(usage_text, stdout);
			return BHA_EXIT_OK;
		}
	if ((rc = parse_request(argc, argv, sshcmd, sshcmd_ok, &rq)) != BHA_EXIT_OK)
		return rc;
	if (rq.argc == 1 && strcmp(rq.argv[0], "help") == 0 && !rq.from_ssh)
	{
		fputs(usage_text, stdout);
		return BHA_EXIT_OK;
	}
	if ((rc = config_load(&cfg, rq.config_path)) != BHA_EXIT_OK)
		return rc;
	if (become_barman(&cfg) != 0)
		return BHA_EXIT_FAIL;
	if (rq.from_ssh && (rc = node_rate_take(&cfg, rq.ssh_node)) != 1)
	{
		if (rc == 0)
			refuse_quietly("too many requests from %s (at most %d at once, %d a second)",
						   rq.ssh_node, RATE_BURST, RATE_PER_S);
		return BHA_EXIT_FAIL;
	}
	syslog(LOG_INFO, "%s%s: %s%s%s%s%s", rq.from_ssh ? "via ssh node " : "",
		   rq.from_ssh ? rq.ssh_node : "local", rq.argv[0],
		   rq.argc > 1 ? " " : "", rq.argc > 1 ? rq.argv[1] : "",
		   rq.argc > 2 ? " " : "", rq.argc > 2 ? rq.argv[2] : "");
	rc = dispatch(&cfg, &rq);
	syslog(LOG_INFO, "%s: exit %d", rq.argv[0], rc);
	return rc;
}
