/*-------------------------------------------------------------------------
 *
 * trusted.c
 *	  open_trusted: a file that root alone can have written.  The folders
 *	  of its absolute path are opened from "/" down, one at a time with
 *	  O_NOFOLLOW, and each is checked on its descriptor: not a symlink,
 *	  root's, writable by nobody else (a sticky /tmp neither).  Then the
 *	  file, opened O_NOFOLLOW | O_NONBLOCK (a symlink or a FIFO cannot hang
 *	  us) and checked alike.  Checked on descriptors, so nothing can be
 *	  swapped between the check and the use.  read_trusted: such a file's
 *	  text, bounded.
 *
 *-------------------------------------------------------------------------
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_FLAGS	(O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* Root's and nobody else's to change; else why not, in err. */
static bool
root_only(int fd, bool dir, const char *path, int len, char *err, size_t errlen)
{
	struct stat st;
	const char *why = NULL;

	if (fstat(fd, &st) != 0)
		why = "cannot be examined";
	else if (dir && !S_ISDIR(st.st_mode))
		why = "is not a directory";
	else if (!dir && !S_ISREG(st.st_mode))
		why = "is not a regular file";
	else if (st.st_uid != 0)
		why = "is not owned by root";
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		why = "is writable by group or others";
	if (why != NULL)
		snprintf(err, errlen, "untrusted: %.*s %s", len, path, why);
	return why == NULL;
}

/*
 * Returns the file's descriptor, and in *dirfd its folder's if dirfd is
 * not NULL (the caller closes both).  mkdir makes a missing last folder
 * (0755).  TRUSTED_ENOENT, err untouched, when the file does not exist
 * and flags have no O_CREAT; else -1 with err said.
 */
int
open_trusted(const char *path, int flags, mode_t mode, bool mkdir, int *dirfd,
			 char *err, size_t errlen)
{
	char		buf[256];
	char	   *save = NULL;
	const char *base = strrchr(path, '/');
	int			d,
				fd;

	if (path[0] != '/' || strlen(path) >= sizeof(buf) || strstr(path, "/..") != NULL ||
		base[1] == '\0')
	{
		snprintf(err, errlen, "invalid path \"%.200s\"", path);
		return -1;
	}
	strcpy(buf, path);
	buf[base - path] = '\0';
	if ((d = open("/", DIR_FLAGS)) < 0)
	{
		snprintf(err, errlen, "cannot open /: %s", strerror(errno));
		return -1;
	}
	if (!root_only(d, true, "/", 1, err, errlen))
	{
		close(d);
		return -1;
	}
	for (char *c = strtok_r(buf, "/", &save); c != NULL; c = strtok_r(NULL, "/", &save))
	{
		int			len = (int) (c - buf + strlen(c));
		int			next = openat(d, c, DIR_FLAGS);

		if (next < 0 && errno == ENOENT && mkdir && path + len == base &&
			mkdirat(d, c, 0755) == 0)
			next = openat(d, c, DIR_FLAGS);
		if (next < 0)
			snprintf(err, errlen, "cannot open directory %.*s: %s", len, path, strerror(errno));
		close(d);
		if (next < 0)
			return -1;
		d = next;
		if (!root_only(d, true, path, len, err, errlen))
		{
			close(d);
			return -1;
		}
	}
	fd = openat(d, base + 1, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
	if (fd < 0)
	{
		int			e = errno;

		close(d);
		if (e == ENOENT && !(flags & O_CREAT))
			return TRUSTED_ENOENT;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
		return -1;
	}
	if (!root_only(fd, false, path, (int) strlen(path), err, errlen))
	{
		close(fd);
		close(d);
		return -1;
	}
	if (dirfd != NULL)
		*dirfd = d;
	else
		close(d);
	return fd;
}

/*
 * The text of a trusted file into buf (NUL-terminated): its length, or -1
 * with err said (missing, unreadable, size - 1 bytes or more, or a NUL
 * byte in it).
 */
ssize_t
read_trusted(const char *path, char *buf, size_t size, char *err, size_t errlen)
{
	size_t		len = 0;
	ssize_t		r = 0;
	int			fd = open_trusted(path, O_RDONLY, 0, false, NULL, err, errlen);

	if (fd == TRUSTED_ENOENT)
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(ENOENT));
	if (fd < 0)
		return -1;
	while (len < size - 1 && (r = read(fd, buf + len, size - 1 - len)) > 0)
		len += r;
	close(fd);
	buf[len] = '\0';
	if (r >= 0 && len < size - 1 && memchr(buf, '\0', len) == NULL)
		return (ssize_t) len;
	snprintf(err, errlen, "cannot read %s: unreadable, binary, or larger than %zu bytes",
			 path, size - 2);
	return -1;
}
