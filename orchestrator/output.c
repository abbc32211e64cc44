/*-------------------------------------------------------------------------
 *
 * output.c
 *	  What barman_ha_orchestrator says: `step` lines on stdout for the
 *	  worker, which records each as an event, and one line on stderr (and
 *	  syslog) for a failure, whose last line is the caller's last_error.
 *	  Every verb and the watch use these, so they live apart from main.c.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

/* Format into buf as one line: the worker reads lines, the DBA the last one. */
void
one_line(char *buf, size_t len, const char *fmt, va_list ap)
{
	vsnprintf(buf, len, fmt, ap);
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

/* One line on stderr after what stdout holds; to syslog too when logged. */
void
vreport(bool logged, const char *suffix, const char *fmt, va_list ap)
{
	char		msg[1024];

	one_line(msg, sizeof(msg), fmt, ap);
	fflush(stdout);
	fprintf(stderr, "barman_ha_orchestrator: %s%s\n", msg, suffix);
	fflush(stderr);
	if (logged)
		syslog(LOG_ERR, "%s", msg);
}

void
errorf(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vreport(true, "", fmt, ap);
	va_end(ap);
}

void
step(const char *name, const char *result, double ms, const char *fmt,...)
{
	char		detail[512];
	va_list		ap;

	va_start(ap, fmt);
	one_line(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	printf(BHA_STEP_FORMAT, name, result, ms < 0 ? 0 : ms, detail);
	fflush(stdout);
}
