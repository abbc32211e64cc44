/*-------------------------------------------------------------------------
 *
 * run.c
 *	  Bounded children.  Everything that can hang (barman, libpq queries,
 *	  the end of a stray pg_receivewal) runs in a child with a deadline, in
 *	  a session of its own: no controlling terminal, so nothing it runs can
 *	  push input into the terminal of whoever started us (TIOCSTI), and a
 *	  timeout ends its whole process group.  A fresh environment, no shell;
 *	  output captured, bounded.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The process group of the child running now, for the SIGTERM handler. */
static volatile pid_t running_pgid = 0;

double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* The child's session, or the child alone before its setsid(). */
static void
kill_group(pid_t pid, int sig)
{
	if (kill(-pid, sig) != 0)
		kill(pid, sig);
}

/*
 * The worker ends us with SIGTERM after its timeout (ssh passes the hang-up
 * on): take the child's process group with us, so no barman command
 * outlives the request.
 */
static void
on_term(int sig)
{
	static const char msg[] = "barman_ha_orchestrator: terminated by signal\n";

	if (running_pgid > 0)
		kill_group(running_pgid, SIGKILL);
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		(void) sig;
	_exit(BHA_EXIT_FAIL);
}

static void
install_term_handler(void)
{
	static bool done = false;
	struct sigaction sa;

	if (done)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	done = true;
}

static void
append_out(struct run_result *res, size_t *len, const char *buf, size_t n)
{
	size_t		cap = sizeof(res->out) - 1;

	if (n > cap)
	{
		buf += n - cap;
		n = cap;
	}
	if (*len + n > cap)
	{
		/* keep the tail: the last lines say why something failed */
		size_t		drop = *len + n - cap;

		memmove(res->out, res->out + drop, *len - drop);
		*len -= drop;
	}
	memcpy(res->out + *len, buf, n);
	*len += n;
	res->out[*len] = '\0';
}

/* A fixed environment for the programs we run: ours, already clean. */
char	  **
child_env(void)
{
	return environ;
}

static void
child_setup(int outfd)
{
	int			devnull = open("/dev/null", O_RDONLY);

	if (setsid() < 0 || devnull < 0)
	{
		dprintf(outfd, "cannot start a session: %s\n", strerror(errno));
		_exit(126);
	}
	dup2(devnull, 0);
	dup2(outfd, 1);
	dup2(outfd, 2);
	closefrom(3);
	signal(SIGPIPE, SIG_DFL);
}

int
run_child(int timeout_ms, child_fn fn, void *arg, struct run_result *res)
{
	int			p[2];
	pid_t		pid;
	size_t		len = 0;
	double		deadline = now_ms() + timeout_ms;
	bool		termed = false;
	int			wstatus;

	memset(res, 0, sizeof(*res));
	res->status = -1;
	install_term_handler();
	fflush(NULL);
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid = fork();
	if (pid < 0)
	{
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0)
	{
		int			rc;

		child_setup(p[1]);
		rc = fn(arg);
		fflush(NULL);			/* _exit does not flush stdio */
		_exit(rc);
	}
	running_pgid = pid;
	close(p[1]);
	for (;;)
	{
		struct pollfd pfd = {.fd = p[0],.events = POLLIN};
		double		left = deadline - now_ms();
		char		buf[4096];
		ssize_t		n;
		int			pr;

		if (left <= 0)
		{
			if (!termed)
			{
				/* SIGTERM first, a short grace, then SIGKILL */
				kill_group(pid, SIGTERM);
				res->timed_out = termed = true;
				deadline = now_ms() + 2000;
				continue;
			}
			kill_group(pid, SIGKILL);
			break;
		}
		pr = poll(&pfd, 1, (int) left + 1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		n = read(p[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		append_out(res, &len, buf, (size_t) n);
	}
	close(p[0]);
	/*
	 * EOF: the child closed its output.  Give it the rest of the deadline
	 * to exit, then end its group.
	 */
	for (;;)
	{
		pid_t		w = waitpid(pid, &wstatus, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
		{
			running_pgid = 0;
			return -1;
		}
		if (now_ms() > deadline)
		{
			kill_group(pid, termed ? SIGKILL : SIGTERM);
			res->timed_out = termed = true;
			deadline = now_ms() + 2000;
		}
		usleep(5000);
	}
	running_pgid = 0;
	if (WIFEXITED(wstatus))
		res->status = WEXITSTATUS(wstatus);
	else if (WIFSIGNALED(wstatus))
		res->status = 128 + WTERMSIG(wstatus);
	return 0;
}

static int
exec_fn(void *arg)
{
	char	   *const *argv = arg;

	execve(argv[0], argv, environ);
	fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
	return 127;
}

int
run_exec(int timeout_ms, char *const argv[], struct run_result *res)
{
	return run_child(timeout_ms, exec_fn, (void *) argv, res);
}

/* The last non-empty line of text, for one-line error messages. */
const char *
last_line(const char *text, char *buf, size_t len)
{
	const char *end = text + strlen(text);
	const char *start;

	while (end > text && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\r'))
		end--;
	start = end;
	while (start > text && start[-1] != '\n')
		start--;
	while (start < end && (*start == ' ' || *start == '\t'))
		start++;
	snprintf(buf, len, "%.*s", (int) (end - start), start);
	return buf;
}
