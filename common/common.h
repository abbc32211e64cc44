/*-------------------------------------------------------------------------
 *
 * common.h
 *	  What the three programs (barman_ha_client, barman_ha_orchestrator,
 *	  barman_ha_nat) have in common, written once: files only root can
 *	  have put there, key = value lines, bounded parsing, the one line a
 *	  failure says, a lock wait with a bound.  Each program links only the
 *	  files it uses.  Only report.c reports: the others fill the caller's
 *	  err buffer or errno, and the caller says it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BARMAN_HA_COMMON_H
#define BARMAN_HA_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/types.h>

#include "barman_ha_contract.h"

/* A DB node as nat.conf names it (node.NAME = ADDRESS:PORT). */
struct node
{
	char		name[BHA_NAME_MAX + 1];
	struct in_addr addr;
	uint16_t	port;
};

/* trusted.c */
#define TRUSTED_ENOENT	(-2)	/* open_trusted: no such file, none created */
extern int	open_trusted(const char *path, int flags, mode_t mode, bool mkdir,
						 int *dirfd, char *err, size_t errlen);
extern ssize_t read_trusted(const char *path, char *buf, size_t size,
							char *err, size_t errlen);

/* kv.c: one line of a configuration file */
struct kv_line
{
	int			lineno;
	const char *key;			/* [A-Za-z0-9_.-]+ */
	const char *value;			/* the rest of the line, trimmed; may be "" */
};
extern int	kv_next(char **cursor, struct kv_line *kv, char *err, size_t errlen);
extern bool kv_one_word(const char *value);

/* parse.c: parse_* return 0, or -1 and leave *out alone */
extern bool plain_chars(const char *s, const char *extra);
extern bool valid_path(const char *s);
extern int	parse_long(const char *s, long min, long max, long *out);
extern int	parse_port(const char *s, uint16_t *out);
extern int	parse_ipv4(const char *s, struct in_addr *out);

/*
 * report.c.  Each program defines how it reports: its name, whether the
 * line is kept for its exit rather than said at once, whether errorf also
 * goes to syslog.  report_last holds the last line.
 */
extern const char report_program[];
extern const bool report_keep;
extern const bool report_syslog;
extern char report_last[512];
extern void one_line(char *buf, size_t len, const char *fmt, va_list ap);
extern void vreport(bool logged, const char *suffix, const char *fmt, va_list ap);
extern void errorf(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* lock.c: 0, or -1 with errno (EWOULDBLOCK: still held after timeout_s) */
extern int	flock_wait(int fd, int timeout_s);

#endif							/* BARMAN_HA_COMMON_H */
