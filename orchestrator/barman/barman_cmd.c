/*-------------------------------------------------------------------------
 *
 * barman_cmd.c
 *	  How Barman is run (its argv, the environment its Python gets, that
 *	  Python's path) and what its documented interface tells: the server's
 *	  streaming folder from `barman -f json show-server`.  Below both
 *	  warm_receive.c and barman.c, which use it.
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct run_result res;	/* big: keep it off the stack */
static char streaming_dir[256];

/* barman_path's Python, when its shebang names it and nothing else */
static char interpreter[256];

bool
barman_configured(const struct config *cfg)
{
	return cfg->barman_server[0] != '\0';
}

/*
 * Barman 3.4 imports distutils.version (LooseVersion) from five modules.  On
 * Python 3.11 with setuptools installed, setuptools' distutils-precedence.pth
 * sends that import to setuptools' own copy, which loads setuptools.dist,
 * pkg_resources and pyparsing first: 100-200 ms of every barman command
 * (receive-wal's start is on the failover's critical path).  The stdlib's
 * distutils has the same LooseVersion; SETUPTOOLS_USE_DISTUTILS=stdlib, the
 * switch setuptools documents, makes Barman use it.  Only when barman_path
 * is a script whose interpreter's stdlib has distutils (3.11 and older: on
 * 3.12 the switch would leave the import nothing to find).  The shebang's
 * interpreter is also the one a standing receive-wal runs.
 */
static void
barman_env(const struct config *cfg)
{
	static bool done;
	char		line[300], real[PATH_MAX], lib[PATH_MAX + 64];
	char	   *interp, *end, *base, *bin;
	bool		alone;
	FILE	   *f;

	if (done)
		return;
	done = true;
	if ((f = fopen(cfg->barman_path, "re")) == NULL)
		return;
	interp = fgets(line, sizeof(line), f);
	fclose(f);
	if (interp == NULL || strncmp(line, "#!", 2) != 0)
		return;
	interp = line + 2 + strspn(line + 2, " \t");
	end = interp + strcspn(interp, " \t\r\n");
	alone = end[strspn(end, " \t\r\n")] == '\0';
	*end = '\0';
	if (realpath(interp, real) == NULL || (base = strrchr(real, '/')) == NULL ||
		strncmp(base + 1, "python3.", 8) != 0)
		return;
	if (alone)
		snprintf(interpreter, sizeof(interpreter), "%s", interp);
	*base = '\0';				/* PREFIX/bin */
	if ((bin = strrchr(real, '/')) == NULL)
		return;
	*bin = '\0';				/* PREFIX */
	snprintf(lib, sizeof(lib), "%s/lib/%s/distutils/version.py", real, base + 1);
	if (access(lib, R_OK) == 0)
		setenv("SETUPTOOLS_USE_DISTUTILS", "stdlib", 1);
}

/* barman_path's Python when its shebang names it and nothing else, or NULL */
const char *
barman_interpreter(const struct config *cfg)
{
	barman_env(cfg);
	return interpreter[0] ? interpreter : NULL;
}

/* argv for `barman [-c CONF] [WORDS...] SERVER` */
void
barman_argv(const struct config *cfg, char **av, const char *w1,
			const char *w2, const char *w3, const char *w4)
{
	int			n = 0;

	barman_env(cfg);
	av[n++] = (char *) cfg->barman_path;
	if (cfg->barman_config[0])
	{
		av[n++] = "-c";
		av[n++] = (char *) cfg->barman_config;
	}
	if (w1)
		av[n++] = (char *) w1;
	if (w2)
		av[n++] = (char *) w2;
	if (w3)
		av[n++] = (char *) w3;
	if (w4)
		av[n++] = (char *) w4;
	av[n++] = (char *) cfg->barman_server;
	av[n] = NULL;
}

/* What show-server told us (or the state file's copy of it), else "". */
const char *
barman_known_dir(void)
{
	return streaming_dir;
}

void
barman_remember_dir(const char *dir)
{
	snprintf(streaming_dir, sizeof(streaming_dir), "%s", dir);
}

/*
 * The server's streaming folder: from the configuration, else from what we
 * learnt before (the state file keeps it), else from `barman -f json
 * show-server`, the form Barman documents for programs (3.4 to 3.20 write
 * {"SERVER": {"streaming_wals_directory": "...", ...}}).  NULL with why
 * (len bytes) when Barman does not say.
 */
const char *
barman_streaming_dir(const struct config *cfg, char *why, size_t len)
{
	char	   *av[12];
	char		dir[sizeof(streaming_dir)];

	if (cfg->streaming_dir[0])
		return cfg->streaming_dir;
	if (streaming_dir[0])
		return streaming_dir;
	barman_argv(cfg, av, "-f", "json", "show-server", NULL);
	if (run_exec(20000, av, &res) != 0 || res.status != 0)
	{
		snprintf(why, len, "barman show-server %s failed: %s", cfg->barman_server,
				 res.timed_out ? "timed out" : last_line(res.out, dir, sizeof(dir)));
		return NULL;
	}
	if (json_string_at(res.out, cfg->barman_server, "streaming_wals_directory",
					   dir, sizeof(dir)) != 0 || dir[0] != '/')
	{
		snprintf(why, len, "barman show-server %s names no streaming_wals_directory",
				 cfg->barman_server);
		return NULL;
	}
	barman_remember_dir(dir);
	return streaming_dir;
}
