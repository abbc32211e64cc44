/*-------------------------------------------------------------------------
 *
 * helper.h
 *	  Declarations shared by the files of barman_ha_helper, the setuid-root
 *	  program that moves the backup host's NAT endpoints, resets Barman onto
 *	  a new primary and keeps the fencing state.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BARMAN_HA_HELPER_H
#define BARMAN_HA_HELPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <netinet/in.h>

/* Exit codes: the extension's worker and the DBA read these. */
#define EXIT_OK			0
#define EXIT_FAIL		1
#define EXIT_USAGE		2
#define EXIT_FENCED		3

#define DEFAULT_CONFIG	"/etc/repmgr_barman_ha/helper.conf"
#define DEFAULT_STATE	"/var/lib/repmgr_barman_ha/state"
#define XTABLES_LOCK	"/run/xtables.lock"
#define SAFE_PATH		"/usr/local/bin:/usr/bin:/bin"

#define CHAIN_DNAT		"repmgr_dnat"
#define CHAIN_SNAT		"repmgr_snat"

#define MAX_NODES		32
#define NAME_MAX_LEN	63
#define MAX_ARGS		8

/* The two endpoints of the backup host. */
enum endpoint
{
	EP_BARMAN = 0,
	EP_APP = 1,
	EP_COUNT = 2
};
#define EP_MASK_BARMAN	(1 << EP_BARMAN)
#define EP_MASK_APP		(1 << EP_APP)
#define EP_MASK_BOTH	(EP_MASK_BARMAN | EP_MASK_APP)

struct node
{
	char		name[NAME_MAX_LEN + 1];
	struct in_addr addr;
	uint16_t	port;
};

struct config
{
	char		path[256];
	bool		have_backup;
	struct in_addr backup_address;
	uint16_t	ports[EP_COUNT];	/* barman_port, app_port */
	bool		snat_per_endpoint;	/* barman_/app_snat_address given */
	struct in_addr snat_address[EP_COUNT];
	char		barman_server[NAME_MAX_LEN + 1];
	char		barman_user[NAME_MAX_LEN + 1];
	char		barman_path[256];
	char		barman_config[256];
	char		streaming_dir[256];
	char		barman_conninfo[512];
	char		barman_appname[NAME_MAX_LEN + 1];
	int			archive_timeout;	/* seconds */
	int			stop_grace_ms;	/* SIGINT -> SIGKILL */
	int			catchup_timeout;	/* seconds */
	int			lock_timeout;	/* seconds */
	char		state_file[256];
	/* remote mode (a DB node) */
	char		remote_user[NAME_MAX_LEN + 1];
	char		remote_host[NAME_MAX_LEN + 1];
	char		ssh_key[256];
	char		ssh_known_hosts[256];
	uint16_t	ssh_port;
	int			ssh_timeout;	/* seconds, ConnectTimeout */
	/* claim check (the backup host asks the node itself) */
	bool		claim_check;
	char		claim_conninfo[512];
	int			nnodes;
	struct node nodes[MAX_NODES];
};

/* One endpoint's current target as read back from the nat table. */
struct route
{
	bool		set;
	struct in_addr addr;
	uint16_t	port;
};

/* Contents of the fencing state file. */
struct state
{
	bool		exists;
	char		node[NAME_MAX_LEN + 1];
	long		timeline;
	bool		switch_wal_done;
	char		streaming_dir[256];	/* Barman's, cached: show-server costs 0.5 s */
	long		mtime;
};

/* Who called us, decided once in main(). */
struct caller
{
	uid_t		ruid;
	gid_t		rgid;
	bool		is_root;
	bool		from_ssh;
	char		ssh_node[NAME_MAX_LEN + 1];	/* --node pinned by authorized_keys */
	bool		force;
};

/* parse.c: strict parsers; each returns 0 on success, -1 otherwise */
extern bool plain_chars(const char *s, const char *extra);
extern bool valid_name(const char *s);
extern int	parse_long(const char *s, long min, long max, long *out);
extern int	parse_port(const char *s, uint16_t *out);
extern int	parse_ipv4(const char *s, struct in_addr *out);
extern int	split_words(char *line, char **words, int maxwords);

/* config.c */
extern int	config_load(struct config *cfg, const char *path);
extern int	config_parse(struct config *cfg, char *buf, const char *path);
extern const struct node *config_node(const struct config *cfg, const char *name);
extern const struct node *config_node_by_addr(const struct config *cfg,
											  struct in_addr addr, uint16_t port);
extern int	check_trusted_file(int fd, const char *path, char *err, size_t errlen);
extern int	check_trusted_dir(const char *path, char *err, size_t errlen);

/* privilege.c */
extern void sanitize_fds(void);
extern int	check_caller_group(const struct caller *who);
extern int	drop_privileges(uid_t uid, gid_t gid, const char *username);
extern char **make_env(const char *home, const char *user);

/* run.c: bounded children running as an unprivileged user */
struct run_result
{
	int			status;			/* exit code, or 128+signal, or -1 */
	bool		timed_out;
	char		out[65536];		/* stdout+stderr, NUL-terminated, truncated */
};
typedef int (*child_fn) (void *arg);
extern int	run_as(const char *user, int timeout_ms, child_fn fn, void *arg,
				   struct run_result *res);
extern int	run_exec_as(const char *user, int timeout_ms, char *const argv[],
						struct run_result *res);
extern const char *last_line(const char *text, char *buf, size_t len);
extern double now_ms(void);
extern int	flock_wait(int fd, int timeout_s);

/* output: step lines and errors (main.c) */
extern void step(const char *name, const char *result, double ms,
				 const char *fmt,...) __attribute__((format(printf, 4, 5)));
extern void errorf(const char *fmt,...) __attribute__((format(printf, 1, 2)));
extern void logmsg(int prio, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/* nat.c */
extern int	nat_init(const struct config *cfg, bool *changed);
extern int	nat_route(const struct config *cfg, const struct node *node,
					  int epmask, bool *changed);
extern int	nat_read(const struct config *cfg, struct route routes[EP_COUNT],
					 bool *chains_ok);

/* conntrack.c */
extern int	conntrack_flush(const struct config *cfg, int epmask,
							const struct node *node, int *removed);

/* barman.c */
extern bool barman_configured(const struct config *cfg);
extern int	barman_stop_start(const struct config *cfg);
extern int	barman_switch_wal(const struct config *cfg);
extern int	barman_reset(const struct config *cfg);
extern int	barman_receiving(const struct config *cfg, bool *running);
extern const char *barman_known_dir(void);
extern void barman_remember_dir(const char *dir);
extern const char *barman_failed_step(void);

/* fork.c: Barman's WAL beyond the new timeline's fork point, moved aside */
extern void barman_fork(const struct config *cfg, const char *dir);

/* fence.c */
extern int	state_lock(const struct config *cfg);
extern int	state_read(const struct config *cfg, struct state *st);
extern int	state_write(const struct config *cfg, const struct state *st);

/* remote.c */
extern int	remote_exec(const struct config *cfg, const struct caller *who,
						int argc, char **argv);

/* dl.c: a library loaded with dlopen, its symbols into pointers */
struct dl_sym
{
	const char *name;
	void	  **ptr;
};
extern int	dl_load(const char *soname, const struct dl_sym *syms, char *err,
					size_t errlen);

/* pq.c (libpq runs only in unprivileged children) */
struct pg_conn;
extern struct pg_conn *pq_open(const char *conninfo);

/* claim.c */
extern int	claim_check(const struct config *cfg, const struct node *node,
						long timeline, char *detail, size_t len);

/* promote.c */
extern int	cmd_promote(const struct config *cfg, const struct caller *who,
						const char *nodename, const char *tlstr);

extern const char *const endpoint_names[EP_COUNT];

#endif							/* BARMAN_HA_HELPER_H */
