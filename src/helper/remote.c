/*-------------------------------------------------------------------------
 *
 * remote.c
 *	  Remote mode, on a DB node whose configuration says `remote =
 *	  USER@HOST`: drop every privilege to the real user for good, then exec
 *	  ssh with a fixed argv, the key and known_hosts file from the
 *	  configuration, BatchMode so it never prompts.  stdout, stderr and the
 *	  exit code of the backup host's helper pass straight through to our
 *	  caller, so the worker sees the same protocol either way; only ssh's
 *	  own failure (255) becomes exit 1 with a line naming the host.
 *
 *-------------------------------------------------------------------------
 */
#include "helper.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SSH_PATH "/usr/bin/ssh"

static volatile pid_t ssh_pid = 0;

static void
forward_term(int sig)
{
	if (ssh_pid > 0)
		kill(ssh_pid, sig);
}

int
remote_exec(const struct config *cfg, const struct caller *who, int argc, char **argv)
{
	struct passwd *pw = getpwuid(who->ruid);
	char		dest[2 * NAME_MAX_LEN + 2];
	char		port[8], kh[300], ct[40], cmd[400] = "";
	char	   *av[40];
	int			n = 0;
	int			status;
	pid_t		child;

	if (pw == NULL)
	{
		errorf("unknown real uid %d", (int) who->ruid);
		return EXIT_FAIL;
	}
	/*
	 * The remote command is one string: join the words, which the parser
	 * has already limited to names and numbers, so nothing is quoted.
	 */
	for (int i = 0; i < argc; i++)
	{
		if ((i > 0 && strlen(cmd) + 1 >= sizeof(cmd)) ||
			!(valid_name(argv[i])))
		{
			errorf("refusing to forward argument \"%.40s\"", argv[i]);
			return EXIT_USAGE;
		}
		if (i > 0)
			strcat(cmd, " ");
		strncat(cmd, argv[i], sizeof(cmd) - strlen(cmd) - 1);
	}
	snprintf(dest, sizeof(dest), "%s@%s", cfg->remote_user, cfg->remote_host);
	snprintf(port, sizeof(port), "%u", cfg->ssh_port);
	snprintf(ct, sizeof(ct), "ConnectTimeout=%d", cfg->ssh_timeout);

	av[n++] = SSH_PATH;
	av[n++] = "-F";
	av[n++] = "/dev/null";		/* no user or system ssh_config */
	av[n++] = "-o";
	av[n++] = "BatchMode=yes";
	av[n++] = "-o";
	av[n++] = ct;
	av[n++] = "-o";
	av[n++] = "ServerAliveInterval=5";
	av[n++] = "-o";
	av[n++] = "ServerAliveCountMax=2";
	av[n++] = "-o";
	av[n++] = "StrictHostKeyChecking=accept-new";
	av[n++] = "-o";
	av[n++] = "LogLevel=ERROR";	/* no warnings that would hide our last line */
	if (cfg->ssh_key[0])
	{
		av[n++] = "-o";
		av[n++] = "IdentitiesOnly=yes";
		av[n++] = "-i";
		av[n++] = (char *) cfg->ssh_key;
	}
	if (cfg->ssh_known_hosts[0])
	{
		snprintf(kh, sizeof(kh), "UserKnownHostsFile=%s", cfg->ssh_known_hosts);
		av[n++] = "-o";
		av[n++] = kh;
	}
	av[n++] = "-p";
	av[n++] = port;
	av[n++] = "-T";
	av[n++] = "--";
	av[n++] = dest;
	av[n++] = cmd;
	av[n] = NULL;

	if (drop_privileges(pw->pw_uid, pw->pw_gid, pw->pw_name) != 0)
	{
		errorf("cannot drop privileges to %s: %s", pw->pw_name, strerror(errno));
		return EXIT_FAIL;
	}
	fflush(NULL);

	/*
	 * ssh says 255 when it could not reach the helper at all: map that to
	 * our "failure" code with a line that names the host, so the caller
	 * sees only the documented codes.  We stay as the parent (already
	 * unprivileged) to do so, and pass SIGTERM on to ssh.
	 */
	child = fork();
	if (child < 0)
	{
		errorf("cannot fork: %s", strerror(errno));
		return EXIT_FAIL;
	}
	if (child == 0)
	{
		execve(SSH_PATH, av, make_env(pw->pw_dir, pw->pw_name));
		errorf("cannot run %s: %s", SSH_PATH, strerror(errno));
		_exit(EXIT_FAIL);
	}
	ssh_pid = child;
	signal(SIGTERM, forward_term);
	signal(SIGINT, forward_term);
	signal(SIGHUP, forward_term);
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return EXIT_FAIL;
	if (WIFEXITED(status) && WEXITSTATUS(status) <= EXIT_FENCED)
		return WEXITSTATUS(status);
	errorf("ssh to %s failed (%s %d)", dest,
		   WIFEXITED(status) ? "exit" : "signal",
		   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return EXIT_FAIL;
}
