/*-------------------------------------------------------------------------
 *
 * privilege.c
 *	  What a setuid program must do before trusting anything: sane file
 *	  descriptors, a caller that belongs to the installed group, and a
 *	  privilege drop that cannot be undone (the order OpenDoas uses:
 *	  setresgid, initgroups, setresuid, then prove root is gone).
 *
 *-------------------------------------------------------------------------
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Make sure 0, 1 and 2 are open (else a file we open could become "stderr"
 * and receive error text), and close everything the caller leaked to us.
 */
void
sanitize_fds(void)
{
	for (int fd = 0; fd <= 2; fd++)
	{
		if (fcntl(fd, F_GETFD) == -1 && errno == EBADF)
		{
			int			n = open("/dev/null", O_RDWR);

			if (n != fd)
				_exit(EXIT_FAIL);
		}
	}
	closefrom(3);
}

/*
 * Only root and members of the group that owns the installed binary may
 * use it.  Mode 4750 already makes the kernel refuse everyone else; this
 * check keeps the promise if someone installs the file with looser modes.
 */
int
check_caller_group(const struct caller *who)
{
	struct stat st;
	gid_t		groups[256];
	int			n;

	if (who->is_root)
		return 0;
	if (stat("/proc/self/exe", &st) != 0)
		return -1;
	if (who->rgid == st.st_gid)
		return 0;
	n = getgroups(256, groups);
	for (int i = 0; i < n; i++)
		if (groups[i] == st.st_gid)
			return 0;
	return -1;
}

/* Drop to uid/gid for good; returns 0, or -1 if anything is left over. */
int
drop_privileges(uid_t uid, gid_t gid, const char *username)
{
	uid_t		r, e, s;
	gid_t		rg, eg, sg;

	if (setresgid(gid, gid, gid) != 0)
		return -1;
	if (username != NULL ? initgroups(username, gid) != 0
		: setgroups(1, &gid) != 0)
		return -1;
	if (setresuid(uid, uid, uid) != 0)
		return -1;
	if (getresuid(&r, &e, &s) != 0 || r != uid || e != uid || s != uid)
		return -1;
	if (getresgid(&rg, &eg, &sg) != 0 || rg != gid || eg != gid || sg != gid)
		return -1;
	/* Root must be gone for good: regaining it has to fail. */
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return -1;
	return 0;
}

/* A fresh, fixed environment for the programs we run. */
char	  **
make_env(const char *home, const char *user)
{
	static char e_home[300], e_user[100], e_logname[100];
	static char *env[] = {e_home, e_user, e_logname, "PATH=" SAFE_PATH,
	"LANG=C.UTF-8", NULL};

	snprintf(e_home, sizeof(e_home), "HOME=%s", home);
	snprintf(e_user, sizeof(e_user), "USER=%s", user);
	snprintf(e_logname, sizeof(e_logname), "LOGNAME=%s", user);
	return env;
}
