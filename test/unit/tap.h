/*-------------------------------------------------------------------------
 *
 * tap.h
 *	  The Test Anything Protocol for the C unit tests, header only: prove
 *	  runs each test_* program.  plan(n) first, then ok/is_int/is_str, each
 *	  printing "ok N - name" or "not ok N - name" with what was got and
 *	  wanted on stderr; done() returns the exit status (0 when every test
 *	  passed and the count matches the plan).
 *
 *	  capture_start(fd)/capture_end take what the code under test writes on
 *	  stderr (its one error line) or stdout, so a test can assert it and
 *	  the TAP stream stays clean.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BHA_UNIT_TAP_H
#define BHA_UNIT_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int	tap_planned,
			tap_n,
			tap_failed;

/*
 * While set, the tests are TODO (a known defect, said why): a failure does
 * not fail the run, and prove reports when one passes.
 */
static const char *tap_todo;

static inline void
plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline bool
tap_vresult(bool pass, const char *fmt, va_list ap)
{
	char		name[512];

	/* a test's name is one line of the TAP stream */
	vsnprintf(name, sizeof(name), fmt, ap);
	for (char *p = name; *p; p++)
		*p = *p < ' ' || *p == '#' ? '?' : *p;
	tap_n++;
	printf("%sok %d - %s", pass ? "" : "not ", tap_n, name);
	if (tap_todo != NULL)
		printf(" # TODO %s", tap_todo);
	putchar('\n');
	fflush(stdout);
	if (!pass && tap_todo == NULL)
		tap_failed++;
	return pass;
}

/* ok(cond, fmt, ...): passes when cond holds; returns cond. */
static inline bool __attribute__((format(printf, 2, 3)))
ok(bool cond, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	tap_vresult(cond, fmt, ap);
	va_end(ap);
	return cond;
}

static inline bool __attribute__((format(printf, 3, 4)))
is_int(long long got, long long want, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	tap_vresult(got == want, fmt, ap);
	va_end(ap);
	if (got != want && tap_todo == NULL)
		fprintf(stderr, "#   got:  %lld\n#   want: %lld\n", got, want);
	return got == want;
}

static inline bool __attribute__((format(printf, 3, 4)))
is_str(const char *got, const char *want, const char *fmt,...)
{
	va_list		ap;
	bool		pass = got != NULL && want != NULL && strcmp(got, want) == 0;

	va_start(ap, fmt);
	tap_vresult(pass, fmt, ap);
	va_end(ap);
	if (!pass && tap_todo == NULL)
		fprintf(stderr, "#   got:  '%s'\n#   want: '%s'\n", got ? got : "(null)",
				want ? want : "(null)");
	return pass;
}

static inline void __attribute__((format(printf, 1, 2)))
diag(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fputs("# ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* The exit status: 0 when every test passed and as many ran as planned. */
static inline int
done(void)
{
	if (tap_n != tap_planned)
		diag("planned %d tests but ran %d", tap_planned, tap_n);
	return tap_failed == 0 && tap_n == tap_planned ? 0 : 1;
}

/* fd (stdout or stderr) into a temporary file until capture_end */
static int	tap_captured_fd = -1,
			tap_saved_fd = -1;
static FILE *tap_capture;

static inline void
capture_start(int fd)
{
	fflush(stdout);
	fflush(stderr);
	tap_captured_fd = fd;
	if ((tap_capture = tmpfile()) == NULL ||
		(tap_saved_fd = dup(fd)) < 0 ||
		dup2(fileno(tap_capture), fd) < 0)
	{
		perror("capture_start");
		exit(2);
	}
}

/* What was written since capture_start, at most len - 1 bytes. */
static inline const char *
capture_end(char *buf, size_t len)
{
	size_t		n;

	fflush(stdout);
	fflush(stderr);
	dup2(tap_saved_fd, tap_captured_fd);
	close(tap_saved_fd);
	rewind(tap_capture);
	n = fread(buf, 1, len - 1, tap_capture);
	buf[n] = '\0';
	fclose(tap_capture);
	return buf;
}

/* expr's value; what it wrote on stderr goes into the array buf */
#define with_stderr(buf, expr) \
	({ \
		capture_start(STDERR_FILENO); \
		__typeof__(expr) tap_r_ = (expr); \
		capture_end((buf), sizeof(buf)); \
		tap_r_; \
	})

/* The number of '\n' in s: an error is one line. */
static inline int
count_lines(const char *s)
{
	int			n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

#define lengthof(array) (sizeof(array) / sizeof((array)[0]))

#endif							/* BHA_UNIT_TAP_H */
