/*-------------------------------------------------------------------------
 *
 * lock.c
 *	  flock(LOCK_EX) with a bound.  The wait is the kernel's, so the lock is
 *	  ours the moment its holder lets go (a poll would sleep past that); a
 *	  timer of our own interrupts it.  The timer signals SIGUSR1, not
 *	  SIGALRM: a program's overall deadline may use alarm().
 *
 *-------------------------------------------------------------------------
 */
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <sys/file.h>
#include <time.h>

static volatile sig_atomic_t fired;

static void
on_timer(int sig)
{
	(void) sig;
	fired = 1;					/* and flock() returns EINTR */
}

/*
 * Waits at most timeout_s seconds; another signal's EINTR waits on.  The
 * timer repeats every 100 ms after it first fires, so a wait that starts
 * late (the process was not scheduled) ends too.  Returns 0, or -1 with
 * errno (EWOULDBLOCK: still held).
 */
int
flock_wait(int fd, int timeout_s)
{
	struct sigaction sa = {.sa_handler = on_timer};	/* no SA_RESTART */
	struct sigaction old;
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
	struct itimerspec its = {.it_value = {timeout_s, 0}, .it_interval = {0, 100000000}};
	timer_t		t;
	int			rc,
				err;

	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK)
		return -1;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, &old) != 0)
		return -1;
	if (timer_create(CLOCK_MONOTONIC, &sev, &t) != 0)
	{
		err = errno;
		sigaction(SIGUSR1, &old, NULL);
		errno = err;
		return -1;
	}
	fired = 0;
	timer_settime(t, 0, &its, NULL);
	while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR && !fired)
		;
	err = errno;
	if (rc != 0 && err == EINTR)
		err = EWOULDBLOCK;
	timer_delete(t);			/* a tick still pending reaches on_timer now */
	sigaction(SIGUSR1, &old, NULL);
	errno = err;
	return rc;
}
