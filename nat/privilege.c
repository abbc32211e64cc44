/*-------------------------------------------------------------------------
 *
 * privilege.c
 *	  Before barman_ha_nat trusts anything.  A setuid program inherits its
 *	  caller's descriptors, signal mask and handlers, environment, resource
 *	  limits, and a real uid that lets the caller signal (SIGSTOP) or trace
 *	  it: we take all of that away and keep only CAP_NET_ADMIN and
 *	  CAP_NET_RAW.
 *
 *-------------------------------------------------------------------------
 */
#include "nat.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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
		errorf("not installed setuid root");
	else if (*ruid != 0 && !member)
		errorf("uid %u is neither root nor in the program's group", *ruid);
	if (geteuid() != 0 || (*ruid != 0 && !member))
		return BHA_EXIT_USAGE;
	if (setresgid(0, 0, 0) != 0 || setgroups(0, NULL) != 0 || setresuid(0, 0, 0) != 0)
	{
		errorf("cannot set all ids to 0: %m");
		return BHA_EXIT_FAIL;
	}
	/* the caller's limits must not cut a state write or a flow sweep short */
	for (int i = 0; i < 5; i++)
	{
		if (setrlimit(limits[i], i ? &inf : &files) == 0 || getrlimit(limits[i], &rl) != 0)
			continue;
		rl.rlim_cur = rl.rlim_max;	/* no CAP_SYS_RESOURCE: as high as allowed */
		(void) setrlimit(limits[i], &rl);
	}
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap) >= 0; cap++)
	{
		if ((cap >= 32 || !(keep & 1u << cap)) && prctl(PR_CAPBSET_DROP, cap) != 0)
		{
			errorf("cannot drop capability %d: %m", cap);
			return BHA_EXIT_FAIL;
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 ||
		syscall(SYS_capset, &hdr, caps) != 0 ||
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
	{
		errorf("cannot drop capabilities: %m");
		return BHA_EXIT_FAIL;
	}
	return BHA_EXIT_OK;
}
