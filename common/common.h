/*-------------------------------------------------------------------------
 *
 * common.h
 *	  What the three programs (barman_ha_client, barman_ha_orchestrator,
 *	  barman_ha_nat) have in common, written once: opening a file only
 *	  root can have put there, and reading key = value lines.  Each
 *	  program links only the files it uses.  Nothing here reports: a
 *	  failure fills the caller's buffer, and the caller says it its way.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BARMAN_HA_COMMON_H
#define BARMAN_HA_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* trusted.c */
#define TRUSTED_ENOENT	(-2)	/* open_trusted: no such file, none created */
extern int	open_trusted(const char *path, int flags, mode_t mode, bool mkdir,
						 int *dirfd, char *err, size_t errlen);

/* kv.c: one line of a configuration file */
struct kv_line
{
	int			lineno;
	const char *key;			/* [a-z0-9_.]+ */
	const char *value;			/* the rest of the line, trimmed; may be "" */
};
extern int	kv_next(char **cursor, struct kv_line *kv, char *err, size_t errlen);
extern bool kv_one_word(const char *value);

#endif							/* BARMAN_HA_COMMON_H */
