/*-------------------------------------------------------------------------
 *
 * helper_exec.c
 *		Runs barman_ha_client from a worker: fork and execve with a clean
 *		environment, no shell, a time limit, and the worker's latch still
 *		served, so a shutdown ends the helper at once.
 *
 * The waits here serve interrupts and SIGTERM only.  A reload waits for
 * the end of the reconcile pass (worker.c), so the settings a call started
 * with, its time limit among them, hold until it ends.
 *
 * The helper reports each step it takes on stdout as
 *		step NAME ok|failed|skipped MS DETAIL
 * and these become events as they arrive, so barman_ha_events() shows a
 * failover's steps with their own times.  The last line of its stderr is
 * the reason of a failure.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "barman_ha.h"

/* How long the helper gets to end after SIGTERM before SIGKILL. */
#define HELPER_KILL_GRACE_MS 2000
/* How often to look for the helper's exit once its output has ended. */
#define HELPER_REAP_POLL_MS 10
/* Longest line read from the helper; a longer one is cut. */
#define HELPER_LINE_MAX 1024
/* The child's exit code when it could not run the helper (as a shell's). */
#define HELPER_EXEC_FAILED 127
/* The environment the helper gets: nothing of the server's. */
#define HELPER_PATH_ENV "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
/* Output streams the helper has: stdout and stderr. */
#define HELPER_STREAMS 2
/* What a wait for output watches: the latch, postmaster death, the streams. */
#define HELPER_WAIT_EVENTS (2 + HELPER_STREAMS)

/*
 * A step line's fields as sscanf reads them; the widths in the format stay
 * below the buffers' sizes.
 */
#define STEP_NAME_WIDTH 63
#define STEP_RESULT_WIDTH 15
#define STEP_SCAN_FORMAT BHA_STEP_PREFIX "%" CppAsString2(STEP_NAME_WIDTH) "[a-z_] %" \
	CppAsString2(STEP_RESULT_WIDTH) "[a-z] %lf%n"
StaticAssertDecl(STEP_NAME_WIDTH < NAMEDATALEN, "a step name fits an event name");

/* One of the helper's output streams, split into lines as it arrives. */
typedef struct HelperStream
{
	int			fd;				/* read end of the pipe, -1 once at EOF */
	bool		is_stdout;
	int			len;
	char		buf[HELPER_LINE_MAX];
} HelperStream;

/*
 * In the child: become a session of its own (so the worker can end the
 * helper and whatever it started as one group), restore default signal
 * handling, keep only stdin from /dev/null and the two pipes, exec.
 */
static void
exec_helper(const char *const *args, int out_fd, int err_fd)
{
	static char *const envp[] = {HELPER_PATH_ENV, "LANG=C", NULL};
	sigset_t	none;
	int			null_fd;

	setsid();
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	null_fd = open("/dev/null", O_RDONLY);
	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
		dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0)
		_exit(HELPER_EXEC_FAILED);
	closefrom(STDERR_FILENO + 1);

	execve(args[0], (char *const *) args, envp);
	dprintf(STDERR_FILENO, "could not execute helper \"%s\": %s\n",
			args[0], strerror(errno));
	_exit(HELPER_EXEC_FAILED);
}

/*
 * What the last periodic check that found all in place remarked beside it,
 * "" for nothing: an app endpoint the backup host's watch keeps closed is
 * said once, not every reconcile interval.
 */
static char last_remark[BARMAN_HA_MSG_LEN];

/*
 * A step line becomes an event, unless it only confirms that all is well
 * and remarks nothing new.  A repair is always an event.
 */
static void
record_step(const char *line)
{
	char		name[STEP_NAME_WIDTH + 1];
	char		result[STEP_RESULT_WIDTH + 1];
	double		ms;
	int			detail_at = 0;
	const char *detail;

	if (sscanf(line, STEP_SCAN_FORMAT, name, result, &ms, &detail_at) != 3)
	{
		elog(DEBUG1, "barman_ha_client: %s", line);
		return;
	}
	detail = line + detail_at;
	while (*detail == ' ')
		detail++;
	if (strcmp(name, BHA_STEP_CHECK) == 0 && strcmp(result, BHA_STEP_OK) == 0 &&
		strncmp(detail, BHA_CHECK_ROUTED, strlen(BHA_CHECK_ROUTED)) == 0)
	{
		const char *remark = detail + strlen(BHA_CHECK_ROUTED);
		bool		news = *remark != '\0' && strcmp(remark, last_remark) != 0;

		strlcpy(last_remark, remark, sizeof(last_remark));
		if (!news)
			return;
	}
	barman_ha_record_event(name, strcmp(result, BHA_STEP_FAILED) != 0, ms, "%s%s",
						   strcmp(result, BHA_STEP_SKIPPED) == 0 ? "skipped: " : "",
						   detail);
}

static void
handle_line(HelperStream *stream, const char *line, HelperResult *result)
{
	if (stream->is_stdout)
		record_step(line);
	else if (*line != '\0')
	{
		ereport(LOG, (errmsg("barman_ha_client: %s", line)));
		strlcpy(result->last_error, line, sizeof(result->last_error));
	}
}

/* Read what the pipe has; returns false at end of file. */
static bool
read_stream(HelperStream *stream, HelperResult *result)
{
	for (;;)
	{
		ssize_t		n = read(stream->fd, stream->buf + stream->len,
							 sizeof(stream->buf) - 1 - stream->len);
		char	   *line;
		char	   *nl;

		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		if (n == 0)
		{
			if (stream->len > 0)
			{
				stream->buf[stream->len] = '\0';
				handle_line(stream, stream->buf, result);
				stream->len = 0;
			}
			return false;
		}
		stream->len += n;
		stream->buf[stream->len] = '\0';
		line = stream->buf;
		while ((nl = strchr(line, '\n')) != NULL)
		{
			*nl = '\0';
			handle_line(stream, line, result);
			line = nl + 1;
		}
		stream->len -= line - stream->buf;
		memmove(stream->buf, line, stream->len);
		/* a line longer than the buffer is cut, not allowed to stall us */
		if (stream->len == sizeof(stream->buf) - 1)
		{
			handle_line(stream, stream->buf, result);
			stream->len = 0;
		}
	}
}

/*
 * Wait for output or the latch until the deadline.  Returns false when the
 * deadline passed or a shutdown was asked for.
 */
static bool
wait_for_output(HelperStream *streams, TimestampTz deadline, HelperResult *result)
{
#if PG_VERSION_NUM >= 170000
	WaitEventSet *set = CreateWaitEventSet(CurrentResourceOwner, HELPER_WAIT_EVENTS);
#else
	WaitEventSet *set = CreateWaitEventSet(CurrentMemoryContext, HELPER_WAIT_EVENTS);
#endif
	WaitEvent	events[HELPER_WAIT_EVENTS];
	int			nevents;
	bool		going_on = true;

	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < HELPER_STREAMS; i++)
		if (streams[i].fd >= 0)
			AddWaitEventToSet(set, WL_SOCKET_READABLE, streams[i].fd, NULL, &streams[i]);

	nevents = WaitEventSetWait(set, barman_ha_ms_until(deadline), events, lengthof(events),
							   PG_WAIT_EXTENSION);
	for (int i = 0; i < nevents; i++)
	{
		if (events[i].events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		else if (events[i].events & WL_SOCKET_READABLE)
		{
			HelperStream *stream = events[i].user_data;

			if (!read_stream(stream, result))
			{
				close(stream->fd);
				stream->fd = -1;
			}
		}
	}
	FreeWaitEventSet(set);

	if (ShutdownRequestPending || barman_ha_ms_until(deadline) == 0)
		going_on = false;
	return going_on;
}

/* Poll for the child's exit until the deadline, serving the latch. */
static bool
wait_for_exit(pid_t pid, TimestampTz deadline, int *status)
{
	for (;;)
	{
		pid_t		r = waitpid(pid, status, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			return true;
		if (ShutdownRequestPending || barman_ha_ms_until(deadline) == 0)
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(HELPER_REAP_POLL_MS, barman_ha_ms_until(deadline)), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* End the helper's process group: SIGTERM, a grace period, SIGKILL. */
static void
end_helper(pid_t pid, int *status)
{
	TimestampTz grace;

	(void) kill(-pid, SIGTERM);
	grace = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), HELPER_KILL_GRACE_MS);
	while (waitpid(pid, status, WNOHANG) == 0 && barman_ha_ms_until(grace) > 0)
		(void) WaitLatch(NULL, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 HELPER_REAP_POLL_MS, PG_WAIT_EXTENSION);
	if (waitpid(pid, status, WNOHANG) == 0)
	{
		(void) kill(-pid, SIGKILL);
		(void) waitpid(pid, status, 0);
	}
}

/*
 * Run the helper with args (args[0] is its path) and wait for it, at most
 * barman_ha.helper_timeout.  The outcome is in *result; nothing is thrown.
 */
void
barman_ha_run_helper(const char *const *args, HelperResult *result)
{
	HelperStream streams[HELPER_STREAMS];
	int			out_pipe[2];
	int			err_pipe[2];
	int			status = 0;
	pid_t		pid;
	TimestampTz deadline;

	result->exit_code = -1;
	result->last_error[0] = '\0';

	if (access(args[0], X_OK) != 0)
	{
		snprintf(result->last_error, sizeof(result->last_error),
				 "could not execute helper \"%s\": %m", args[0]);
		return;
	}
	if (pipe2(out_pipe, O_CLOEXEC) != 0)
	{
		snprintf(result->last_error, sizeof(result->last_error),
				 "could not create pipe: %m");
		return;
	}
	if (pipe2(err_pipe, O_CLOEXEC) != 0)
	{
		snprintf(result->last_error, sizeof(result->last_error),
				 "could not create pipe: %m");
		close(out_pipe[0]);
		close(out_pipe[1]);
		return;
	}

	pid = fork();
	if (pid == 0)
		exec_helper(args, out_pipe[1], err_pipe[1]);
	close(out_pipe[1]);
	close(err_pipe[1]);
	if (pid < 0)
	{
		snprintf(result->last_error, sizeof(result->last_error),
				 "could not fork helper: %m");
		close(out_pipe[0]);
		close(err_pipe[0]);
		return;
	}

	streams[0] = (HelperStream) {.fd = out_pipe[0], .is_stdout = true};
	streams[1] = (HelperStream) {.fd = err_pipe[0], .is_stdout = false};
	for (int i = 0; i < lengthof(streams); i++)
		(void) fcntl(streams[i].fd, F_SETFL, O_NONBLOCK);

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   barman_ha_helper_timeout * BARMAN_HA_MS_PER_SEC);
	while ((streams[0].fd >= 0 || streams[1].fd >= 0) &&
		   wait_for_output(streams, deadline, result))
		;

	if (streams[0].fd >= 0 || streams[1].fd >= 0 ||
		!wait_for_exit(pid, deadline, &status))
	{
		end_helper(pid, &status);
		snprintf(result->last_error, sizeof(result->last_error),
				 ShutdownRequestPending ? "helper ended: the server is shutting down"
				 : "helper timed out after %d s (barman_ha.helper_timeout)",
				 barman_ha_helper_timeout);
	}
	else if (WIFEXITED(status))
		result->exit_code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		snprintf(result->last_error, sizeof(result->last_error),
				 "helper was terminated by signal %d", WTERMSIG(status));

	for (int i = 0; i < lengthof(streams); i++)
		if (streams[i].fd >= 0)
			close(streams[i].fd);
}
