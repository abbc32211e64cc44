/*-------------------------------------------------------------------------
 *
 * proc.c
 *	  What /proc says of a process: its owner, its argv, its state.  Barman's
 *	  streams and the standing receive-wal are found by their arguments;
 *	  only processes of one uid are looked at, the barman user's own.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
proc_args(const char *name, uid_t uid, long *pid, char *buf, size_t len,
		  char **args, int max)
{
	char		path[64];
	struct stat st;
	ssize_t		n;
	int			fd, nargs = 0;

	if (parse_long(name, 1, INT32_MAX, pid) != 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld", *pid);
	if (stat(path, &st) != 0 || st.st_uid != uid)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", *pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return 0;				/* a kernel thread, or it has just ended */
	buf[n] = '\0';
	for (char *p = buf; p < buf + n && nargs < max; p += strlen(p) + 1)
		args[nargs++] = p;
	return nargs;
}

/* pid's state letter from /proc/PID/stat (R, S, T, Z, ...), or '\0' if gone */
char
proc_state(long pid)
{
	char		path[64], buf[512];
	const char *p;
	ssize_t		n;
	int			fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return '\0';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '\0';
	buf[n] = '\0';
	/* after the name, which may hold anything: its last ')' */
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
		return '\0';
	return p[2];
}
