/*-------------------------------------------------------------------------
 *
 * report.c
 *	  The one line a program says when it fails: "PROGRAM: MESSAGE" on
 *	  stderr, the caller reading the last line.  Every message is made one
 *	  printable line first (one_line): a value from outside cannot add a
 *	  line of its own or a terminal escape.  barman_ha_nat keeps the line
 *	  (report_keep) and says it only when it exits; the orchestrator also
 *	  sends it to syslog (report_syslog).
 *
 *-------------------------------------------------------------------------
 */
#include "common.h"

#include <stdio.h>
#include <syslog.h>

char		report_last[512];

/*
 * Format as one line of printable ASCII: newlines and tabs become blanks,
 * every other byte outside ' '..'~' (C0 and C1 controls, DEL) a '?'.
 */
void
one_line(char *buf, size_t len, const char *fmt, va_list ap)
{
	vsnprintf(buf, len, fmt, ap);
	for (unsigned char *p = (unsigned char *) buf; *p; p++)
	{
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
		else if (*p < ' ' || *p > '~')
			*p = '?';
	}
}

/* logged: to syslog too, if the program says so; suffix: after the message. */
void
vreport(bool logged, const char *suffix, const char *fmt, va_list ap)
{
	one_line(report_last, sizeof(report_last), fmt, ap);
	if (report_keep)
		return;
	fflush(stdout);
	fprintf(stderr, "%s: %s%s\n", report_program, report_last, suffix);
	fflush(stderr);
	if (logged && report_syslog)
		syslog(LOG_ERR, "%s", report_last);
}

void
errorf(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vreport(true, "", fmt, ap);
	va_end(ap);
}
