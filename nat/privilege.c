/*-------------------------------------------------------------------------
 *
 * privilege.c
 *	  Before barman_ha_nat trusts anything.  A setuid program inherits its
 *	  caller's descriptors, signal mask and handlers, environment, resource
 *	  limits, and a real uid that lets the caller signal (SIGSTOP) or trace
 *	  it: we take all of that away and keep only CAP_NET_ADMIN and
 *	  CAP_NET_RAW.  Also the trust rule for files, and the bounded lock wait.
 *
 *-------------------------------------------------------------------------
 */
#include "nat.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

/*
 * First thing in main.  Root or the binary's group may run us (mode 4750
 * says so too; this keeps the promise under looser modes).  All ids become
 * 0, so the caller can no longer signal or trace us, and the capabilities
 * shrink to the two that netfilter needs, bounding set included, never
 * regained: we exec nothing and no_new_privs voids setuid.  The files we
 * touch are root's, so euid 0 needs no CAP_DAC_OVERRIDE.
 */
int
harden(uid_t *ruid)
{
	const uint32_t keep = 1u << CAP_NET_ADMIN | 1u << CAP_NET_RAW;
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct caps[2] = {{keep, keep, 0}, {0, 0, 0}};
	const int	limits[] = {RLIMIT_NOFILE, RLIMIT_FSIZE, RLIMIT_CPU, RLIMIT_AS, RLIMIT_DATA};
	struct rlimit rl, files = {1024, 1024}, inf = {RLIM_INFINITY, RLIM_INFINITY};
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	gid_t		groups[1024];
	int			n = getgroups(1024, groups);
	struct stat st;
	bool		member = stat("/proc/self/exe", &st) == 0 && getgid() == st.st_gid;

	/* with 0-2 closed, a file we open would become the caller's stderr */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) == -1 && open("/dev/null", O_RDWR) != fd)
			_exit(BHA_EXIT_FAIL);
	closefrom(3);
	/* a blocked or ignored signal would defeat our timeouts */
	sigemptyset(&dfl.sa_mask);
	sigprocmask(SIG_SETMASK, &dfl.sa_mask, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		(void) sigaction(sig, &dfl, NULL);	/* EINVAL for KILL and STOP */
	/* our own session (a group leader cannot: EPERM), job control ignored: no terminal stops us */
	(void) setsid();
	signal(SIGTSTP, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	clearenv();
	setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
	umask(022);
	for (int i = 0; i < n; i++)
		member |= groups[i] == st.st_gid;
	*ruid = getuid();
	if (geteuid() != 0)
		return errorf("not installed setuid root"), BHA_EXIT_USAGE;
	if (*ruid != 0 && !member)
		return errorf("uid %u is neither root nor in the program's group", *ruid), BHA_EXIT_USAGE;
	if (setresgid(0, 0, 0) != 0 || setgroups(0, NULL) != 0 || setresuid(0, 0, 0) != 0)
		return errorf("cannot set all ids to 0: %m"), BHA_EXIT_FAIL;
	/* the caller's limits must not cut a state write or a flow sweep short */
	for (int i = 0; i < 5; i++)
		if (setrlimit(limits[i], i ? &inf : &files) != 0 && getrlimit(limits[i], &rl) == 0)
			rl.rlim_cur = rl.rlim_max, (void) setrlimit(limits[i], &rl);	/* no CAP_SYS_RESOURCE */
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap) >= 0; cap++)
		if ((cap >= 32 || !(keep & 1u << cap)) && prctl(PR_CAPBSET_DROP, cap) != 0)
			return errorf("cannot drop capability %d: %m", cap), BHA_EXIT_FAIL;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 || syscall(SYS_capset, &hdr, caps) != 0 ||
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return errorf("cannot drop capabilities: %m"), BHA_EXIT_FAIL;
	return BHA_EXIT_OK;
}

/* Root's and nobody else's to change: the rule for all we trust (len < 0: all of path). */
static int
trusted(int fd, bool dir, const char *path, int len)
{
	struct stat st;
	const char *why = fstat(fd, &st) != 0 ? "cannot be examined" :
		dir && !S_ISDIR(st.st_mode) ? "is not a directory" :
		!dir && !S_ISREG(st.st_mode) ? "is not a regular file" :
		st.st_uid != 0 ? "is not owned by root" :
		st.st_mode & (S_IWGRP | S_IWOTH) ? "is writable by group or others" : NULL;

	if (why)
		errorf("untrusted: %.*s %s", len, path, why);
	return why ? -1 : 0;
}

/*
 * Opens the absolute path's directories from "/" down, one at a time with
 * O_NOFOLLOW, and checks each on its descriptor: no symlink, nothing that
 * anyone but root may write (a sticky /tmp neither), no swap between check
 * and use; mkdir makes a missing last one (0755).  Then the file, opened
 * O_NOFOLLOW | O_NONBLOCK (a symlink or a FIFO cannot hang us) and checked
 * alike.  Returns its descriptor (*dfd: the directory's, if asked); -2,
 * unsaid, if it does not exist and flags have no O_CREAT; else -1 after
 * errorf.
 */
int
open_trusted(const char *path, int flags, mode_t mode, bool mkdir, int *dfd)
{
	const int	dflags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	char		buf[256], *save = NULL;
	const char *base = strrchr(path, '/');
	int			d = -1, fd = -1;

	if (path[0] != '/' || strlen(path) >= sizeof(buf) || strstr(path, "/..") || base[1] == '\0')
		return errorf("invalid path \"%s\"", path), -1;
	strcpy(buf, path);
	buf[base - path] = '\0';
	if ((d = open("/", dflags)) >= 0 && trusted(d, true, "/", 1) != 0)
		close(d), d = -1;
	for (char *c = strtok_r(buf, "/", &save); d >= 0 && c; c = strtok_r(NULL, "/", &save))
	{
		int			len = (int) (c - buf + strlen(c)), next = openat(d, c, dflags);

		if (next < 0 && errno == ENOENT && mkdir && path + len == base && mkdirat(d, c, 0755) == 0)
			next = openat(d, c, dflags);
		close(d);
		if ((d = next) < 0)
			errorf("cannot open directory %.*s: %m", len, path);
		else if (trusted(d, true, path, len) != 0)
			close(d), d = -1;
	}
	if (d >= 0 && (fd = openat(d, base + 1, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode)) < 0)
		fd = errno == ENOENT && !(flags & O_CREAT) ? -2 : (errorf("cannot open %s: %m", path), -1);
	if (fd >= 0 && trusted(fd, false, path, -1) != 0)
		close(fd), fd = -1;
	if (fd >= 0 && dfd)
		*dfd = d;
	else if (d >= 0)
		close(d);
	return fd;
}

static void
on_timer(int sig)
{
	(void) sig;					/* only interrupts flock() */
}

/*
 * flock(LOCK_EX) waited for in the kernel, so we have the lock the moment
 * its holder lets go, for at most timeout_s seconds: a one-shot timer (not
 * SIGALRM, the overall deadline's) interrupts the wait.  Should it fire
 * before flock() starts, the overall deadline ends us.  Returns 0, or -1
 * after errorf (busy: added when the lock is still held).
 */
int
lock_wait(int fd, const char *path, int timeout_s, const char *busy)
{
	struct sigaction sa = {.sa_handler = on_timer};	/* no SA_RESTART */
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
	struct itimerspec its = {.it_value = {timeout_s, 0}};
	timer_t		t;
	int			rc = flock(fd, LOCK_EX | LOCK_NB), err = errno;

	if (rc != 0 && err == EWOULDBLOCK && sigaction(SIGUSR1, &sa, NULL) == 0 &&
		timer_create(CLOCK_MONOTONIC, &sev, &t) == 0)
	{
		timer_settime(t, 0, &its, NULL);
		rc = flock(fd, LOCK_EX);
		err = rc != 0 && errno == EINTR ? EWOULDBLOCK : errno;
		timer_delete(t);
		signal(SIGUSR1, SIG_IGN);	/* discards a tick that came too late */
	}
	errno = err;
	if (rc != 0 && err == EWOULDBLOCK)
		errorf("%s still held after %d s%s", path, timeout_s, busy);
	else if (rc != 0)
		errorf("cannot lock %s: %m", path);
	return rc;
}
