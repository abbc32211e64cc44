/*-------------------------------------------------------------------------
 *
 * warm_receive.c
 *	  A standing receive-wal: Barman's own `receive-wal SERVER`, run by the
 *	  console script's Python with barman.cli imported long before a
 *	  failover needs it.  Importing Barman takes 100-180 ms, the largest
 *	  share of receive-wal's start, and a claim has its Barman step within
 *	  about 100 ms of the promotion: started by the claim, the import was
 *	  still running when Barman's turn came.
 *
 *	  One per server, kept by every promote (a new claim and the primary's
 *	  level check): when none stands, one is started, detached, in a
 *	  session of its own.  It waits on a FIFO in the state directory
 *	  (0600, the barman user's); "go" from barman_restart makes it run
 *	  `receive-wal SERVER` with the arguments it was started with, in the
 *	  same process: Barman's lock file, its log, `receive-wal --stop` and
 *	  `barman check` see what they see of any receive-wal.  Barman's
 *	  configuration is read only then, so a changed barman.conf holds; a
 *	  Barman upgraded meanwhile (its version.py changed) is run anew
 *	  instead; a standing one started with other arguments than the
 *	  configuration gives now is ended and replaced; after an hour unused
 *	  it ends itself and the next level check starts another.
 *
 *	  Until "go" its standard input is the FIFO; then /dev/null.  That is
 *	  how a /proc scan tells a standing one (no stream, left alone) from a
 *	  started one (a receiver, ended by barman_stop), and how barman.c sees
 *	  one that has not taken "go" (`barman receive-wal` beside it).
 *	  Barman's command line comes from barman_cmd.c; nothing here calls
 *	  into barman.c.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IDLE_SECONDS	"3600"

/*
 * barman.cli.main is Barman's console entry point, not a documented
 * interface: it is checked when the standing one starts (it has main and
 * receive_wal in 3.4, 3.13 and 3.20).  A Barman without them still gets a
 * standing process, so that no level check starts one anew every second,
 * and "go" then runs Barman's own `barman receive-wal` in its place, as
 * after an upgrade.
 */
static const char warm_code[] =
"import sys\n"
"sys.path[0] = sys.argv[1].rpartition('/')[0]\n"
"import os, select\n"
"def version():\n"
"    try:\n"
"        import barman.version\n"
"        with open(barman.version.__file__) as f:\n"
"            return f.read()\n"
"    except Exception:\n"
"        return None\n"
"imported = version()\n"
"try:\n"
"    import barman.cli\n"
"    main = barman.cli.main if callable(getattr(barman.cli, 'receive_wal', None)) else None\n"
"except Exception:\n"
"    main = None\n"
"if not select.select([0], [], [], " IDLE_SECONDS ")[0] or os.read(0, 3) != b'go\\n':\n"
"    sys.exit(0)\n"
"os.dup2(os.open(os.devnull, os.O_RDONLY), 0)\n"
"argv = sys.argv[1:-1] + ['receive-wal', sys.argv[-1]]\n"
"if not callable(main) or imported is None or version() != imported:\n"
"    os.execv(argv[0], argv)\n"
"sys.argv = argv\n"
"sys.exit(main())\n";

/* The FIFO of this server's standing receive-wal, into fifo (WARM_FIFO_LEN). */
void
warm_fifo(const struct config *cfg, char *fifo)
{
	snprintf(fifo, WARM_FIFO_LEN, "%s/receive-wal.%s.fifo", cfg->state_dir, cfg->barman_server);
}

/* The argv a standing receive-wal gets: INTERPRETER -c CODE BARMAN [-c CONF] SERVER */
static bool
warm_argv(const struct config *cfg, char **av)
{
	const char *interp = barman_interpreter(cfg);

	if (interp == NULL)
		return false;
	av[0] = (char *) interp;
	av[1] = "-c";
	av[2] = (char *) warm_code;
	barman_argv(cfg, av + 3, NULL, NULL, NULL, NULL);
	return true;
}

bool
warm_cmdline(char *const *args, int nargs)
{
	return nargs > 3 && strcmp(args[1], "-c") == 0 && strcmp(args[2], warm_code) == 0;
}

/*
 * pid's standard input is the FIFO: it stands, nobody told it "go".  Compared
 * by device and inode, not by the link's text: /proc names a file opened in
 * another mount namespace (each `ip netns exec` makes one) from that
 * namespace's root, which inside a chroot is not ours.
 */
bool
warm_standing(long pid, const char *fifo_name)
{
	char		path[64];
	struct stat in, fifo;

	snprintf(path, sizeof(path), "/proc/%ld/fd/0", pid);
	return stat(path, &in) == 0 && S_ISFIFO(in.st_mode) &&
		stat(fifo_name, &fifo) == 0 && in.st_dev == fifo.st_dev && in.st_ino == fifo.st_ino;
}

/*
 * The standing receive-wal of our uid with exactly argv av, or -1; those
 * with other arguments (an older configuration) are ended.
 */
static pid_t
find_standing(char **av, const char *fifo)
{
	DIR		   *d = opendir("/proc");
	struct dirent *de;
	pid_t		found = -1;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
	{
		char		buf[8192];
		char	   *args[64];
		int			nargs, i;
		long		pid;

		if ((nargs = proc_args(de->d_name, geteuid(), &pid, buf, sizeof(buf), args, 64)) == 0)
			continue;
		if (!warm_cmdline(args, nargs) || !warm_standing(pid, fifo))
			continue;
		for (i = 0; av[i] != NULL && i < nargs && strcmp(av[i], args[i]) == 0; i++)
			;
		if (av[i] == NULL && i == nargs && found < 0)
			found = (pid_t) pid;
		else
			kill((pid_t) pid, SIGTERM); /* a second one, or an older configuration */
	}
	closedir(d);
	return found;
}

/* Our FIFO, made if missing; anything else at that path is refused. */
static bool
fifo_ready(const char *fifo)
{
	struct stat st;

	if (mkfifo(fifo, 0600) != 0 && errno != EEXIST)
		return false;
	return lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode) && st.st_uid == geteuid() &&
		(st.st_mode & 077) == 0;
}

void
warm_keep(const struct config *cfg)
{
	char	   *av[16];
	char		fifo[WARM_FIFO_LEN];
	pid_t		pid;
	int			fd;

	if (!barman_configured(cfg) || !warm_argv(cfg, av))
		return;
	warm_fifo(cfg, fifo);
	if (find_standing(av, fifo) > 0 || !fifo_ready(fifo))
		return;
	fflush(NULL);
	if ((pid = fork()) != 0)
		return;
	/* the child: a session of its own, the FIFO as stdin, nothing else of ours */
	setsid();
	if ((fd = open(fifo, O_RDWR | O_CLOEXEC)) < 0 || dup2(fd, 0) < 0)
		_exit(1);
	fd = open("/dev/null", O_WRONLY);
	dup2(fd, 1);
	dup2(fd, 2);
	closefrom(3);
	signal(SIGPIPE, SIG_DFL);
	execve(av[0], av, child_env());
	_exit(127);
}

pid_t
warm_go(const struct config *cfg)
{
	char	   *av[16];
	char		fifo[WARM_FIFO_LEN];
	pid_t		pid;
	int			fd;
	bool		told;

	if (!barman_configured(cfg) || !warm_argv(cfg, av))
		return -1;
	warm_fifo(cfg, fifo);
	if ((pid = find_standing(av, fifo)) < 0)
		return -1;
	/* no reader (it ended meanwhile): ENXIO, and a cold start */
	if ((fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
		return -1;
	told = write(fd, "go\n", 3) == 3;
	close(fd);
	return told ? pid : -1;
}
