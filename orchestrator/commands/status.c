/*-------------------------------------------------------------------------
 *
 * status.c
 *	  `status`: what the backup host knows, as key=value lines for the
 *	  operator and the worker; `status --textfile FILE`: the same in
 *	  Prometheus's text format for node_exporter's textfile collector
 *	  (names in docs/monitoring.md; systemd/barman-ha-textfile.timer).
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int	print_status(const struct config *cfg, bool textfile);

/*
 * `status`, or `status --textfile FILE`: FILE.tmp written, then renamed,
 * so node_exporter never reads half a file.  The folder is one that not
 * everybody may write, and the temporary file is made anew, never
 * followed: a link planted under its name points us nowhere.
 */
int
cmd_status(const struct config *cfg, const char *textfile)
{
	char		dir[300],
				tmp[320];
	const char *base;
	struct stat sb;
	int			dirfd,
				fd,
				rc;

	if (textfile == NULL)
		return print_status(cfg, false);
	base = strrchr(textfile, '/');
	if (textfile[0] != '/' || base[1] == '\0' ||
		snprintf(dir, sizeof(dir), "%.*s/", (int) (base - textfile), textfile) >= (int) sizeof(dir))
	{
		errorf("--textfile needs an absolute path to a file");
		return BHA_EXIT_USAGE;
	}
	base++;
	snprintf(tmp, sizeof(tmp), "%s.tmp", base);
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fstat(dirfd, &sb) != 0)
	{
		errorf("cannot open %s: %s", dir, strerror(errno));
		return BHA_EXIT_FAIL;
	}
	if (sb.st_mode & S_IWOTH)
	{
		errorf("%s is writable by everybody: no place for the textfile", dir);
		return BHA_EXIT_FAIL;
	}
	if ((unlinkat(dirfd, tmp, 0) != 0 && errno != ENOENT) ||
		(fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
					 0644)) < 0 ||
		fchmod(fd, 0644) != 0 || dup2(fd, STDOUT_FILENO) < 0)
	{
		errorf("cannot write %s%s: %s", dir, tmp, strerror(errno));
		return BHA_EXIT_FAIL;
	}
	close(fd);
	rc = print_status(cfg, true);
	if (fflush(stdout) != 0 || fsync(STDOUT_FILENO) != 0 || rc != BHA_EXIT_OK ||
		renameat(dirfd, tmp, dirfd, base) != 0)
	{
		errorf("cannot write %s: %s", textfile, rc == BHA_EXIT_OK ? strerror(errno) : "no status");
		unlinkat(dirfd, tmp, 0);
		return BHA_EXIT_FAIL;
	}
	return BHA_EXIT_OK;
}

static int
print_status(const struct config *cfg, bool textfile)
{
	struct nat_view v;
	struct ostate st;
	bool		streaming = false;
	bool		known = true;
	const char *srv;

	if (nat_show(cfg, &v) != 0 || ostate_read(cfg, &st) != 0)
		return BHA_EXIT_FAIL;
	if (st.streaming_dir[0] && !cfg->streaming_dir[0])
		barman_remember_dir(st.streaming_dir);
	if (barman_configured(cfg) && barman_receiving(cfg, &streaming) != 0)
		known = false;
	if (!textfile)
	{
		printf("backend=%s\n", v.backend);
		printf("routed_node=%s\n", v.routed ? v.routed_node : "");
		printf("timeline=%ld\n", v.routed ? v.routed_timeline : 0L);
		printf("routed_at=%ld\n", v.routed ? v.routed_at : 0L);
		printf("barman_target=%s\n", v.target[0][0] ? v.target[0] : "none");
		printf("app_target=%s\n", v.target[1][0] ? v.target[1] : "none");
		printf("switch_wal=%s\n", !v.routed ? "" :
			   strcmp(st.node, v.routed_node) == 0 && st.timeline == v.routed_timeline &&
			   st.switch_wal_done ? "done" : "pending");
		printf("barman_streaming=%s\n", !barman_configured(cfg) ? "" :
			   !known ? "unknown" : streaming ? "yes" : "no");
		printf("last_promote_ms=%.0f\n", st.promote_ms);
		printf("last_promote_at=%ld\n", st.promoted_at);
		printf("app_closed_by_watch=%s\n", st.watch_closed);
		printf("app_closed_since=%ld\n", st.watch_closed_at);
		return BHA_EXIT_OK;
	}
	srv = cfg->barman_server[0] ? cfg->barman_server : "none";
	printf("# HELP barman_ha_backup_routed_node_info The node the endpoints lead to.\n"
		   "# TYPE barman_ha_backup_routed_node_info gauge\n");
	if (v.routed)
		printf("barman_ha_backup_routed_node_info{server=\"%s\",node=\"%s\",backend=\"%s\"} 1\n",
			   srv, v.routed_node, v.backend);
	printf("# HELP barman_ha_backup_routed_timeline The timeline of the routed node's claim.\n"
		   "# TYPE barman_ha_backup_routed_timeline gauge\n"
		   "barman_ha_backup_routed_timeline{server=\"%s\"} %ld\n",
		   srv, v.routed ? v.routed_timeline : 0L);
	printf("# HELP barman_ha_backup_app_endpoint_open Whether the application endpoint leads to the routed node.\n"
		   "# TYPE barman_ha_backup_app_endpoint_open gauge\n"
		   "barman_ha_backup_app_endpoint_open{server=\"%s\"} %d\n",
		   srv, v.routed && strcmp(v.target[1], v.routed_node) == 0);
	printf("# HELP barman_ha_backup_last_promote_timestamp_seconds When the last promote ended.\n"
		   "# TYPE barman_ha_backup_last_promote_timestamp_seconds gauge\n"
		   "barman_ha_backup_last_promote_timestamp_seconds{server=\"%s\"} %ld\n",
		   srv, st.promoted_at);
	printf("# HELP barman_ha_backup_last_promote_duration_seconds How long the last promote took.\n"
		   "# TYPE barman_ha_backup_last_promote_duration_seconds gauge\n"
		   "barman_ha_backup_last_promote_duration_seconds{server=\"%s\"} %.3f\n",
		   srv, st.promote_ms / 1000.0);
	printf("# HELP barman_ha_backup_app_endpoint_closed_by_watch Whether the watch closed the app endpoint (its node's host is silent).\n"
		   "# TYPE barman_ha_backup_app_endpoint_closed_by_watch gauge\n"
		   "barman_ha_backup_app_endpoint_closed_by_watch{server=\"%s\"} %d\n",
		   srv, st.watch_closed[0] != '\0');
	if (barman_configured(cfg) && known)
		printf("# HELP barman_ha_backup_barman_streaming Whether Barman's receive-wal runs for the server.\n"
			   "# TYPE barman_ha_backup_barman_streaming gauge\n"
			   "barman_ha_backup_barman_streaming{server=\"%s\"} %d\n", srv, streaming);
	return BHA_EXIT_OK;
}
