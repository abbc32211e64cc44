/*-------------------------------------------------------------------------
 *
 * main.c
 *	  barman_ha_client: the DB node's side.  The extension's worker runs it
 *	  as postgres; it holds no privilege and decides nothing.  It reads
 *	  /etc/repmgr_barman_ha/client.conf (which backup host, which key) and
 *	  runs ssh with a fixed argv: the backup host's forced command, pinned
 *	  to this node's key, answers.  Its stdout, stderr and exit code pass
 *	  straight through, so the worker reads the orchestrator's step lines;
 *	  only ssh's own failure (255) becomes exit 1 with a line naming the
 *	  host.  The host key is checked (StrictHostKeyChecking=yes): put it in
 *	  ssh_known_hosts out of band.
 *
 *	  With ssh_control_path set, `connect` makes sure one ssh connection is
 *	  held open (an ssh ControlMaster in a session of its own, which lives
 *	  until the connection fails or `disconnect`) and returns at once; the
 *	  worker runs it every few seconds.  The other verbs run as sessions on
 *	  that connection: a promotion pays no key exchange (about 200 ms).
 *	  Same key, same forced command, same host key check: sharing adds no
 *	  trust.  The socket is used only in a directory of our own uid that
 *	  nobody else can enter (else a stranger's socket could answer for the
 *	  backup host), and only if it is newer than the configuration, the key
 *	  and the known hosts (a host key taken back holds for the next call);
 *	  otherwise, or without a live connection, ssh connects directly.

 *	  Exit codes (barman_ha_contract.h): 0 done, 1 failure, 2 usage or
 *	  configuration error, 3 fenced.
 *
 *-------------------------------------------------------------------------
 */
#include "barman_ha_contract.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define SSH_PATH		"/usr/bin/ssh"
#define CONFIG_MAX		8192
#define ARGV_MAX		48
#define lengthof(a)		((int) (sizeof(a) / sizeof((a)[0])))
#define CONTROL_PATH_MAX 90		/* ssh adds 17 bytes while it binds; sun_path
								 * holds 108 */

struct client_config
{
	char		user[BHA_NAME_MAX + 1];
	char		host[BHA_NAME_MAX + 1];
	char		ssh_key[256];
	char		known_hosts[256];
	char		control_path[CONTROL_PATH_MAX];
	const char *path;			/* this configuration's file */
	long		port;
	long		connect_timeout;
};

static const char usage_text[] =
"usage: barman_ha_client [-c FILE] promote NODE TIMELINE\n"
"       barman_ha_client [-c FILE] status\n"
"       barman_ha_client [-c FILE] connect | disconnect   (ssh_control_path)\n"
"\n"
"Asks the backup host (backup = USER@HOST in " BHA_CLIENT_CONF ")\n"
"over ssh; its forced command answers.  exit codes: 0 done, 1 failure,\n"
"2 usage or configuration error, 3 fenced\n";

/* common/report.c: each error said at once */
const char	report_program[] = "barman_ha_client";
const bool	report_keep = false;
const bool	report_syslog = false;

static volatile pid_t ssh_pid = 0;

/* One key; 0, or -1 when the key is unknown or its value not valid. */
static int
client_key(struct client_config *cfg, const char *k, const char *v)
{
	const char *at = strchr(v, '@');

	if (!kv_one_word(v))
		return -1;
	if (strcmp(k, "backup") == 0 && at != NULL)
	{
		if (at - v > BHA_NAME_MAX)
			return -1;
		snprintf(cfg->user, sizeof(cfg->user), "%.*s", (int) (at - v), v);
		snprintf(cfg->host, sizeof(cfg->host), "%.*s", BHA_NAME_MAX, at + 1);
		return bha_valid_name(cfg->user) && bha_valid_name(at + 1) ? 0 : -1;
	}
	if (strcmp(k, "ssh_key") == 0 && valid_path(v))
		return snprintf(cfg->ssh_key, sizeof(cfg->ssh_key), "%s", v) < 0;
	if (strcmp(k, "ssh_known_hosts") == 0 && valid_path(v))
		return snprintf(cfg->known_hosts, sizeof(cfg->known_hosts), "%s", v) < 0;
	if (strcmp(k, "ssh_control_path") == 0 && valid_path(v) &&
		strlen(v) < CONTROL_PATH_MAX)
		return snprintf(cfg->control_path, sizeof(cfg->control_path), "%s", v) < 0;
	if (strcmp(k, "ssh_port") == 0)
		return parse_long(v, 1, 65535, &cfg->port);
	if (strcmp(k, "ssh_connect_timeout") == 0)
		return parse_long(v, 1, 600, &cfg->connect_timeout);
	return -1;
}

/*
 * key = value lines of a file only root can have written (every folder
 * above it too: whoever may write one could swap the file); returns
 * BHA_EXIT_OK or BHA_EXIT_USAGE after a line on stderr.
 */
static int
load_config(struct client_config *cfg, const char *path)
{
	static char buf[CONFIG_MAX + 1];
	char	   *cursor = buf;
	char		err[400];
	struct kv_line kv = {0};
	int			rc;

	cfg->port = 22;
	cfg->connect_timeout = 10;
	if (read_trusted(path, buf, sizeof(buf), err, sizeof(err)) < 0)
	{
		errorf("%s", err);
		return BHA_EXIT_USAGE;
	}
	while ((rc = kv_next(&cursor, &kv, err, sizeof(err))) > 0)
		if (client_key(cfg, kv.key, kv.value) != 0)
		{
			errorf("%s: line %d: expected backup, ssh_key, ssh_known_hosts, ssh_port, "
				   "ssh_connect_timeout or ssh_control_path = one valid word", path, kv.lineno);
			return BHA_EXIT_USAGE;
		}
	if (rc < 0)
	{
		errorf("%s: %s", path, err);
		return BHA_EXIT_USAGE;
	}
	if (cfg->host[0] == '\0' || cfg->ssh_key[0] == '\0' || cfg->known_hosts[0] == '\0')
	{
		errorf("%s: backup, ssh_key and ssh_known_hosts are required", path);
		return BHA_EXIT_USAGE;
	}
	return BHA_EXIT_OK;
}

static void
forward_signal(int sig)
{
	if (ssh_pid > 0)
		kill(ssh_pid, sig);
}

/* The request is one string of names and numbers: nothing to quote. */
static int
join_request(int argc, char **argv, char *cmd, size_t len)
{
	cmd[0] = '\0';
	for (int i = 0; i < argc; i++)
	{
		if (!bha_valid_name(argv[i]) || strlen(cmd) + strlen(argv[i]) + 2 > len)
			return -1;
		if (i > 0)
			strcat(cmd, " ");
		strcat(cmd, argv[i]);
	}
	return 0;
}

/* Append the NULL-terminated words to av (a fixed argv: at most ARGV_MAX - 1 words). */
static void
add(char **av, int *n, ...)
{
	va_list		ap;
	const char *w;

	va_start(ap, n);
	while ((w = va_arg(ap, const char *)) != NULL && *n < ARGV_MAX - 1)
		av[(*n)++] = (char *) w;
	va_end(ap);
	av[*n] = NULL;
}

/*
 * Whether the control socket's directory is ours alone: a directory owned
 * by our uid that nobody else can enter.  Why not, in why.
 */
static bool
control_dir_private(const char *control_path, const char **why)
{
	char		dir[CONTROL_PATH_MAX];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", control_path);
	*strrchr(dir, '/') = '\0';
	*why = lstat(dir[0] ? dir : "/", &st) != 0 ? "cannot be examined" :
		!S_ISDIR(st.st_mode) ? "is not a directory" :
		st.st_uid != geteuid() ? "is not owned by the user running barman_ha_client" :
		(st.st_mode & (S_IRWXG | S_IRWXO)) ? "can be entered by group or others (chmod 700)" :
		NULL;
	return *why == NULL;
}

/* Whether an ssh master listens on the control socket. */
static bool
master_listens(const char *control_path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int			fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool		listens;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", control_path);
	listens = fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return listens;
}

/*
 * Whether the master predates a change to what it was made from: the
 * configuration, the key or the known hosts.  A changed file (a host key
 * taken back, say) must hold for the next call, so an older master is not
 * used and connect replaces it.
 */
static bool
master_outdated(const struct client_config *cfg)
{
	const char *inputs[] = {cfg->path, cfg->ssh_key, cfg->known_hosts};
	struct stat sock, st;

	if (stat(cfg->control_path, &sock) != 0)
		return false;
	for (int i = 0; i < lengthof(inputs); i++)
		if (stat(inputs[i], &st) == 0 &&
			(st.st_mtim.tv_sec > sock.st_mtim.tv_sec ||
			 (st.st_mtim.tv_sec == sock.st_mtim.tv_sec &&
			  st.st_mtim.tv_nsec >= sock.st_mtim.tv_nsec)))
			return true;
	return false;
}

/* Run av and wait for it; ssh's own failure (255) becomes exit 1 and a line. */
static int
run_wait(char **av, const char *dest)
{
	struct sigaction sa = {.sa_handler = forward_signal};
	int			status;
	pid_t		child;

	fflush(NULL);
	if ((child = fork()) < 0)
	{
		errorf("cannot fork: %s", strerror(errno));
		return BHA_EXIT_FAIL;
	}
	if (child == 0)
	{
		execv(SSH_PATH, av);
		errorf("cannot run %s: %s", SSH_PATH, strerror(errno));
		_exit(BHA_EXIT_FAIL);
	}
	ssh_pid = child;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return BHA_EXIT_FAIL;
	if (WIFEXITED(status) && WEXITSTATUS(status) <= BHA_EXIT_FENCED)
		return WEXITSTATUS(status);
	errorf("ssh to %s failed (%s %d)", dest, WIFEXITED(status) ? "exit" : "signal",
		   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return BHA_EXIT_FAIL;
}

/*
 * Start the master in a session of its own, detached from our caller's
 * pipes (the worker reads them to their end), and return at once: it
 * authenticates in the background and the next `connect` sees whether it
 * listens.  A socket left by a master that died is removed first.
 */
static int
start_master(char **av, const char *control_path)
{
	struct stat st;
	pid_t		child;
	int			null;

	if (lstat(control_path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(control_path);
	fflush(NULL);
	if ((child = fork()) < 0)
	{
		errorf("cannot fork: %s", strerror(errno));
		return BHA_EXIT_FAIL;
	}
	if (child == 0)
	{
		if (setsid() < 0 || (null = open("/dev/null", O_RDWR)) < 0 ||
			dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
			_exit(BHA_EXIT_FAIL);
		execv(SSH_PATH, av);
		_exit(BHA_EXIT_FAIL);
	}
	printf("connecting\n");
	return BHA_EXIT_OK;
}

/*
 * ssh with a fixed argv for the verb: promote and status run as a session
 * on the shared connection if there is one; connect makes sure the master
 * runs (no session: the forced command does not run); disconnect ends it.
 */
static int
run_ssh(const struct client_config *cfg, const char *verb, const char *cmd)
{
	char		dest[2 * BHA_NAME_MAX + 2], port[8], kh[300], ct[40],
				cp[CONTROL_PATH_MAX + 20];
	char	   *av[ARGV_MAX];
	int			n = 0;
	bool		shared = strcmp(verb, BHA_VERB_CONNECT) == 0 ||
		strcmp(verb, BHA_VERB_DISCONNECT) == 0;
	const char *why = "";

	snprintf(dest, sizeof(dest), "%s@%s", cfg->user, cfg->host);
	snprintf(port, sizeof(port), "%ld", cfg->port);
	snprintf(ct, sizeof(ct), "ConnectTimeout=%ld", cfg->connect_timeout);
	snprintf(kh, sizeof(kh), "UserKnownHostsFile=%s", cfg->known_hosts);
	snprintf(cp, sizeof(cp), "ControlPath=%s", cfg->control_path);
	if (shared && (cfg->control_path[0] == '\0' ||
				   !control_dir_private(cfg->control_path, &why)))
	{
		if (why[0])
			errorf("the directory of ssh_control_path %s %s", cfg->control_path, why);
		else
			errorf("ssh_control_path is not set in the configuration: no connection to share");
		return BHA_EXIT_USAGE;
	}
	add(av, &n, SSH_PATH, "-F", "/dev/null", "-T", "-o", "BatchMode=yes", "-o", ct,
		"-o", "StrictHostKeyChecking=yes", "-o", kh,
		"-o", "IdentitiesOnly=yes", "-i", cfg->ssh_key,
		"-o", "LogLevel=ERROR", NULL);	/* no warnings that would hide our last line */
	if (strcmp(verb, BHA_VERB_CONNECT) == 0)
	{
		if (master_listens(cfg->control_path))
		{
			if (!master_outdated(cfg))
			{
				printf("connected\n");
				return BHA_EXIT_OK;
			}
			(void) run_ssh(cfg, BHA_VERB_DISCONNECT, NULL);
		}
		/*
		 * A session on a master whose peer went silent waits for the
		 * master to notice: within 3 s, then calls connect by themselves
		 * and fail at once if the backup host is unreachable.
		 */
		add(av, &n, "-N", "-o", "ControlMaster=yes", "-o", "ControlPersist=no", "-o", cp,
			"-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=3",
			"-p", port, "--", dest, NULL);
		return start_master(av, cfg->control_path);
	}
	if (strcmp(verb, BHA_VERB_DISCONNECT) == 0)
	{
		if (!master_listens(cfg->control_path))
			return BHA_EXIT_OK;
		add(av, &n, "-O", "exit", "-o", cp, "-p", port, "--", dest, NULL);
		return run_wait(av, dest);
	}
	if (cfg->control_path[0] && control_dir_private(cfg->control_path, &why) &&
		!master_outdated(cfg))
		add(av, &n, "-o", "ControlMaster=no", "-o", cp, NULL);
	add(av, &n, "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2", NULL);
	add(av, &n, "-p", port, "--", dest, cmd, NULL);
	return run_wait(av, dest);
}

int
main(int argc, char **argv)
{
	struct client_config cfg = {0};
	const char *path = BHA_CLIENT_CONF;
	char		cmd[200];
	long		timeline;
	int			rc,
				i = 1;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
	{
		fputs(usage_text, stdout);
		return BHA_EXIT_OK;
	}
	if (argc > 2 && strcmp(argv[1], "-c") == 0)
	{
		path = argv[2];
		i = 3;
	}
	argc -= i;
	argv += i;
	if (!((argc == 3 && strcmp(argv[0], BHA_VERB_PROMOTE) == 0) ||
		  (argc == 1 && strcmp(argv[0], BHA_VERB_STATUS) == 0) ||
		  (argc == 1 && strcmp(argv[0], BHA_VERB_CONNECT) == 0) ||
		  (argc == 1 && strcmp(argv[0], BHA_VERB_DISCONNECT) == 0)))
	{
		errorf("expected promote NODE TIMELINE, status, connect or disconnect "
			   "(see barman_ha_client --help)");
		return BHA_EXIT_USAGE;
	}
	if (argc == 3 && (!bha_valid_name(argv[1]) ||
					  parse_long(argv[2], 1, BHA_TIMELINE_MAX, &timeline) != 0))
	{
		errorf("promote needs a node name and a timeline from 1 to %ld", BHA_TIMELINE_MAX);
		return BHA_EXIT_USAGE;
	}
	if (join_request(argc, argv, cmd, sizeof(cmd)) != 0)
	{
		errorf("invalid argument: names and numbers only");
		return BHA_EXIT_USAGE;
	}
	cfg.path = path;
	if ((rc = load_config(&cfg, path)) != BHA_EXIT_OK)
		return rc;
	return run_ssh(&cfg, argv[0], cmd);
}
