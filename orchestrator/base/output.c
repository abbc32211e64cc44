/*-------------------------------------------------------------------------
 *
 * output.c
 *	  What barman_ha_orchestrator says: `step` lines on stdout for the
 *	  worker, which records each as an event; a failure is one line on
 *	  stderr and syslog (common/report.c), whose last line is the caller's
 *	  last_error.  Every verb and the watch use these, so they live apart
 *	  from main.c.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <stdarg.h>
#include <stdio.h>

/* common/report.c: the worker reads lines, the DBA the last one; errors go to syslog too */
const char	report_program[] = "barman_ha_orchestrator";
const bool	report_keep = false;
const bool	report_syslog = true;

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
