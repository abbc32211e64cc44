/*-------------------------------------------------------------------------
 *
 * privilege.c
 *	  What barman_ha_nat does before it trusts anything, and the trust rule
 *	  for every file it reads.  A setuid program inherits its caller's
 *	  descriptors, signal mask and handlers, environment and ids, and a
 *	  caller whose real uid it still carries may signal (SIGSTOP) or trace
 *	  it.  So: sane descriptors, default signals, a fixed environment, then
 *	  all ids 0 and nothing left but CAP_NET_ADMIN and CAP_NET_RAW.
 *
 *-------------------------------------------------------------------------
 */
#include "nat.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

/* First thing in main: nothing is opened or waited for before this. */
void
privilege_start(void)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t	none;

	/* a closed 0-2 would make our next open() the caller's "stderr" */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) == -1 && open("/dev/null", O_RDWR) != fd)
			_exit(BHA_EXIT_FAIL);
	closefrom(3);
	/* a blocked or ignored signal would defeat every timeout of ours */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		(void) sigaction(sig, &dfl, NULL);	/* EINVAL for KILL, STOP: fine */
	clearenv();
	setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
	umask(022);
}

/* The real gid or a supplementary group owns the installed binary. */
static bool
in_binary_group(void)
{
	struct stat st;
	gid_t		groups[1024];
	int			n = getgroups(1024, groups);

	if (stat("/proc/self/exe", &st) != 0)
		return false;
	if (getgid() == st.st_gid)
		return true;
	for (int i = 0; i < n; i++)
		if (groups[i] == st.st_gid)
			return true;
	return false;
}

/*
 * Root or the binary's group may run us (mode 4750 says so too; this keeps
 * the promise under looser modes).  All ids become 0, so the caller can no
 * longer signal or ptrace us; only the two capabilities netfilter needs
 * stay, in a bounding set of those two, never to be regained (no exec
 * happens, and no_new_privs would void a setuid one).  The files we touch
 * belong to root, so euid 0 needs no CAP_DAC_OVERRIDE.
 */
int
privilege_drop(uid_t *ruid)
{
	const uint32_t keep = (1u << CAP_NET_ADMIN) | (1u << CAP_NET_RAW);
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2] = {{keep, keep, 0}, {0, 0, 0}};

	*ruid = getuid();
	if (geteuid() != 0)
	{
		errorf("not installed setuid root");
		return BHA_EXIT_USAGE;
	}
	if (*ruid != 0 && !in_binary_group())
	{
		errorf("uid %u is neither root nor in the program's group", (unsigned) *ruid);
		return BHA_EXIT_USAGE;
	}
	if (setresgid(0, 0, 0) != 0 || setgroups(0, NULL) != 0 || setresuid(0, 0, 0) != 0)
	{
		errorf("cannot set all ids to 0: %m");
		return BHA_EXIT_FAIL;
	}
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap) >= 0; cap++)
		if (!(cap < 32 && (keep & (1u << cap))) && prctl(PR_CAPBSET_DROP, cap) != 0)
		{
			errorf("cannot drop capability %d from the bounding set: %m", cap);
			return BHA_EXIT_FAIL;
		}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 ||
		syscall(SYS_capset, &hdr, data) != 0 ||
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
	{
		errorf("cannot drop capabilities: %m");
		return BHA_EXIT_FAIL;
	}
	return BHA_EXIT_OK;
}

/* Root's and nobody else's to change: the rule for all we trust. */
static int
check(const struct stat *st, bool dir, const char *path, int len)
{
	const char *why = NULL;

	if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
		why = dir ? "is not a directory" : "is not a regular file";
	else if (st->st_uid != 0)
		why = "is not owned by root";
	else if (st->st_mode & (S_IWGRP | S_IWOTH))
		why = "is writable by group or others";
	if (why)
		errorf("untrusted: %.*s %s", len, path, why);
	return why ? -1 : 0;
}

/* fd is open O_NOFOLLOW|O_NONBLOCK: a FIFO or a symlink cannot hang us. */
int
trusted_file(int fd, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
	{
		errorf("cannot stat %s: %m", path);
		return -1;
	}
	return check(&st, false, path, (int) strlen(path));
}

/*
 * Opens the absolute directory path from "/" down, one component at a time
 * with O_NOFOLLOW, checking each on its descriptor: no symlink, no
 * directory anyone but root may write (sticky /tmp included), no swap
 * between check and use.  create makes a missing last component (0755).
 * Returns the directory's descriptor, or -1.
 */
int
trusted_dir(const char *path, bool create)
{
	char		buf[256];
	char	   *save = NULL,
			   *c;
	struct stat st;
	int			fd = -1;

	if (path[0] != '/' || strlen(path) >= sizeof(buf) || strstr(path, "/.."))
		errorf("invalid directory \"%s\"", path);
	else if ((fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0 &&
			 (fstat(fd, &st) != 0 || check(&st, true, "/", 1) != 0))
		close(fd), fd = -1;
	strcpy(buf, fd >= 0 ? path : "");
	for (c = strtok_r(buf, "/", &save); fd >= 0 && c; c = strtok_r(NULL, "/", &save))
	{
		int			len = (int) (c - buf + strlen(c));
		bool		last = path[len + strspn(path + len, "/")] == '\0';
		int			next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (next < 0 && errno == ENOENT && create && last && mkdirat(fd, c, 0755) == 0)
			next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if ((fd = next) < 0)
			errorf("cannot open directory %.*s: %m", len, path);
		else if (fstat(fd, &st) != 0 || check(&st, true, path, len) != 0)
			close(fd), fd = -1;
	}
	return fd;
}

static void
on_timer(int sig)
{
	(void) sig;					/* only to interrupt flock() */
}

/*
 * flock(LOCK_EX) waited for in the kernel, so we get the lock the moment
 * its holder lets go, at most timeout_s seconds: a one-shot timer (not
 * SIGALRM, which is the overall deadline's) interrupts the wait.  Should
 * the timer fire before flock() starts, the overall deadline still ends
 * us.  Returns 0, or -1 with errno (EWOULDBLOCK: still held).
 */
int
flock_wait(int fd, int timeout_s)
{
	struct sigaction sa = {.sa_handler = on_timer};	/* no SA_RESTART */
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
	struct itimerspec its = {.it_value = {timeout_s, 0}};
	timer_t		t;
	int			rc,
				err;

	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK)
		return -1;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) != 0 || timer_create(CLOCK_MONOTONIC, &sev, &t) != 0)
		return -1;
	timer_settime(t, 0, &its, NULL);
	rc = flock(fd, LOCK_EX);
	err = (rc != 0 && errno == EINTR) ? EWOULDBLOCK : errno;
	timer_delete(t);
	signal(SIGUSR1, SIG_IGN);	/* discards a tick that came too late */
	errno = err;
	return rc;
}
