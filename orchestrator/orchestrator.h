/*-------------------------------------------------------------------------
 *
 * orchestrator.h
 *	  Declarations shared by the files of barman_ha_orchestrator, the
 *	  backup host's unprivileged program: it runs as the barman user (the
 *	  ssh forced command, the operator), checks a node's claim with the node
 *	  itself, resets Barman onto a new primary, and asks barman_ha_nat, the
 *	  only privileged program, to move the endpoints.
 *
 *	  Its files by concern, each folder on those below it only: commands/
 *	  (the verbs main.c dispatches), barman/ (Barman's steps), claim/ (the
 *	  claim check and the question put to a node), base/ (configuration,
 *	  parsers, bounded children, state files, libpq, barman_ha_nat).
 *
 *-------------------------------------------------------------------------
 */
#ifndef BARMAN_HA_ORCHESTRATOR_H
#define BARMAN_HA_ORCHESTRATOR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <netinet/in.h>

#include "barman_ha_contract.h"
#include "common.h"

#define DEFAULT_STATE_DIR	"/var/lib/barman/repmgr_barman_ha"

/*
 * The backup host's connections to the nodes, by default: a client
 * certificate for a role of their own (pg_hba "hostssl ... cert": the node
 * gets nothing it can replay) and the node authenticated against the CA.
 */
#define DEFAULT_TLS_DIR		"/etc/repmgr_barman_ha/tls"
#define TLS_CONNINFO(role) \
	"user=" role " dbname=postgres sslmode=verify-full" \
	" sslrootcert=" DEFAULT_TLS_DIR "/ca.crt" \
	" sslcert=" DEFAULT_TLS_DIR "/" role ".crt" \
	" sslkey=" DEFAULT_TLS_DIR "/" role ".key"
#define DEFAULT_CLAIM_CONNINFO	TLS_CONNINFO("barman_ha_check")
#define DEFAULT_BARMAN_CONNINFO	TLS_CONNINFO("barman_ha_catchup")
#define SAFE_PATH			"/usr/local/bin:/usr/bin:/bin"

struct pg_conn;					/* libpq's PGconn */
struct pg_result;

#define MAX_NODES		32
#define MAX_ARGS		8
#define MAX_TLI			64		/* timelines kept from a history */
#define HISTORY_MAX_BYTES	65536	/* its text (~60 bytes a timeline) */

/* orchestrator.conf */
struct config
{
	char		path[256];
	char		nat_program[256];
	char		barman_server[BHA_NAME_MAX + 1];
	char		barman_user[BHA_NAME_MAX + 1];
	char		barman_path[256];
	char		barman_config[256];
	char		streaming_dir[256];
	char		barman_conninfo[512];
	char		barman_appname[BHA_NAME_MAX + 1];
	int			archive_timeout;	/* seconds */
	int			stop_grace_ms;	/* SIGINT -> SIGKILL */
	int			catchup_timeout;	/* seconds */
	int			lock_timeout;	/* seconds */
	char		state_dir[256];
	bool		claim_check;
	char		claim_conninfo[512];
	int			claim_timeout_ms;	/* the claimant's answer */
	int			probe_timeout_ms;	/* the routed primary's answer */
	int			probe_connect_ms;	/* ... its TCP handshake */
	int			watch_interval_ms;	/* watch: one look at the routed primary */
};

/* What barman_ha_nat show says: the network and the fencing state. */
struct nat_view
{
	char		backend[16];
	struct in_addr backup_address;
	uint16_t	ports[2];		/* barman, app */
	char		target[2][BHA_NAME_MAX + 1];	/* node name, "closed", "" */
	int			nnodes;
	struct node nodes[MAX_NODES];
	bool		routed;			/* a node holds the endpoints */
	char		routed_node[BHA_NAME_MAX + 1];
	long		routed_timeline;
	long		routed_at;		/* unix time of the claim */
};

/* Our own record, beside Barman's files: what is done for which claim. */
struct ostate
{
	char		node[BHA_NAME_MAX + 1];
	long		timeline;
	bool		switch_wal_done;
	char		streaming_dir[256];	/* Barman's, cached: show-server costs 0.5 s */
	double		promote_ms;		/* the last promote's duration */
	long		promoted_at;	/* and when it ended (unix time) */
	char		watch_closed[BHA_NAME_MAX + 1];	/* watch closed NODE's app endpoint */
	long		watch_closed_at;	/* since (unix time) */
};

/* A timeline history as TIMELINE_HISTORY returns it: the ancestors. */
struct tl_history
{
	int			n;
	unsigned	tli[MAX_TLI];	/* parent timelines, oldest first */
	uint64_t	end[MAX_TLI];	/* where each ended (switchpoint) */
};

/* A primary's timeline, as IDENTIFY_SYSTEM and TIMELINE_HISTORY give it. */
struct timeline_facts
{
	bool		known;
	unsigned	tli;
	uint64_t	segsz;			/* wal_segment_size, 0 on timeline 1 */
	struct tl_history h;		/* empty on timeline 1 */
};

/* What a node is, as it answered the backup host (node_ask.c). */
enum node_kind
{
	NODE_UNASKED,				/* nobody to ask: no question put */
	NODE_SILENT,				/* no TCP answer: its host is gone or cut off */
	NODE_REFUSED,				/* its host refused: nothing listens */
	NODE_UNCLEAR,				/* anything else: no evidence either way */
	NODE_STANDBY,				/* it answered that it is in recovery */
	NODE_PRIMARY				/* it answered as a primary */
};

struct node_answer
{
	enum node_kind kind;
	unsigned	tli;			/* NODE_STANDBY, NODE_PRIMARY: its timeline */
	char		why[300];
};

/* A claim, as the claim check's decisions see it. */
struct claim_request
{
	const char *node;
	long		timeline;
	long		routed_timeline;	/* 0: nobody holds the endpoints */
	long		max_timeline;
};

/* What the claimant said of itself. */
struct claimant_answer
{
	bool		in_recovery;
	unsigned	tli;
	int			history;		/* timeline_facts_read's result */
	const struct tl_history *h;
};

/* What the claim check learnt besides its verdict. */
struct claim_outcome
{
	bool		routed_silent;	/* the routed primary gave no answer at all */
	struct timeline_facts claimant;	/* for barman_fork: no second query */
	struct node_answer probe;	/* the routed primary, written by node_ask.c */
};

/* base/parse.c: strict parsers (common/parse.c has the bounded numbers) */
extern int	split_words(char *line, char **words, int maxwords);
extern bool parse_lsn(const char *s, uint64_t *lsn);
extern int	json_string_at(const char *text, const char *k1, const char *k2,
						   char *out, size_t len);

/* base/config.c */
extern int	config_load(struct config *cfg, const char *path);
extern int	config_parse(struct config *cfg, char *buf, const char *path);

/* base/history.c: replies of a server, validated before use */
extern int	history_parse(const char *text, struct tl_history *h);
extern int	parse_timeline(const char *s, unsigned *tli);
extern uint64_t parse_segment_size(const char *s);
extern bool history_agrees(const struct tl_history *claimed, unsigned k,
						   const struct tl_history *known);

/* base/run.c: bounded children, each in a session of its own */
struct run_result
{
	int			status;			/* exit code, or 128+signal, or -1 */
	bool		timed_out;
	char		out[65536];		/* stdout+stderr, NUL-terminated, truncated */
};
typedef int (*child_fn) (void *arg);
extern int	run_child(int timeout_ms, child_fn fn, void *arg, struct run_result *res);
extern int	run_exec(int timeout_ms, char *const argv[], struct run_result *res);
extern const char *last_line(const char *text, char *buf, size_t len);
extern double now_ms(void);
extern char **child_env(void);

/* base/output.c (errorf, vreport, one_line: common/report.c) */
extern void step(const char *name, const char *result, double ms,
				 const char *fmt,...) __attribute__((format(printf, 4, 5)));

/* base/natprog.c: barman_ha_nat, run and read */
extern int	nat_show(const struct config *cfg, struct nat_view *v);
extern int	nat_call(const struct config *cfg, char *reply, size_t len,
					 const char *verb, const char *a1, const char *a2);
extern int	nat_passthrough(const struct config *cfg, int argc, char **argv);
extern const struct node *view_node(const struct nat_view *v, const char *name);

/* base/state.c; a node's requests over ssh: at most RATE_BURST at once, RATE_PER_S a second */
#define RATE_BURST		30
#define RATE_PER_S		5
extern int	ostate_lock(const struct config *cfg);
extern int	node_lock(const struct config *cfg, const char *node);
extern int	node_rate_take(const struct config *cfg, const char *node);
extern void ostate_parse(char *buf, struct ostate *st);
extern int	ostate_read(const struct config *cfg, struct ostate *st);
extern int	ostate_write(const struct config *cfg, const struct ostate *st);
extern long long ostate_mtime(const struct config *cfg);

/* barman/barman_cmd.c: how Barman is run, what show-server says (below the two next) */
extern bool barman_configured(const struct config *cfg);
extern const char *barman_interpreter(const struct config *cfg);
extern void barman_argv(const struct config *cfg, char **av, const char *w1,
						const char *w2, const char *w3, const char *w4);
extern const char *barman_streaming_dir(const struct config *cfg, char *why, size_t len);
extern const char *barman_known_dir(void);
extern void barman_remember_dir(const char *dir);

/* barman/warm_receive.c: a standing receive-wal, told "go" by barman_restart */
extern void warm_keep(const struct config *cfg);
extern pid_t warm_go(const struct config *cfg);
#define WARM_FIFO_LEN (sizeof(((struct config *) 0)->state_dir) + BHA_NAME_MAX + 32)
extern void warm_fifo(const struct config *cfg, char *fifo);
extern bool warm_cmdline(char *const *args, int nargs);
extern bool warm_standing(long pid, const char *fifo_name);

/* barman/barman.c: the promote's Barman steps (on the two above) */
extern int	barman_stop_start(const struct config *cfg);
extern int	barman_restart(const struct config *cfg, const struct timeline_facts *known);
extern int	barman_streaming(const struct config *cfg);
extern int	barman_switch_wal(const struct config *cfg);
extern int	barman_reset(const struct config *cfg);
extern int	barman_receiving(const struct config *cfg, bool *running);
extern const char *barman_failed_step(void);

/* base/proc.c: a process of uid, its argv; a process's state */
extern int	proc_args(const char *name, uid_t uid, long *pid, char *buf, size_t len,
					  char **args, int max);
extern char proc_state(long pid);

/* barman/timeline_fork.c: Barman's WAL beyond the new timeline's fork point, aside */
extern void barman_fork(const struct config *cfg, const char *dir,
						const struct timeline_facts *known);

/* base/pq.c */
extern struct pg_conn *pq_open(const char *conninfo);
extern struct pg_conn *pq_open_bounded(const char *conninfo, int timeout_ms);
extern struct pg_conn *pq_connect(const char *conninfo, int timeout_ms, int reach_ms,
								  bool *silent, char *why, size_t len);
extern struct pg_result *pq_row(struct pg_conn *c, const char *sql, int ncols);
enum reach
{
	REACH_ANSWERED,				/* the handshake completed: something listens */
	REACH_REFUSED,				/* the host's kernel refused: nothing listens */
	REACH_SILENT				/* no answer within the bound, or unreachable */
};
extern enum reach tcp_reach(struct in_addr addr, uint16_t port, int reach_ms);

/* claim/node_ask.c: the question of the claim check and the takeover */
extern const char *node_kind_name(enum node_kind k);
extern void node_conninfo(const struct config *cfg, const struct node *n, const char *appname,
						  char *out, size_t len);
extern void node_judge(const char *in_recovery, const char *timeline, struct node_answer *a);
extern void node_read(struct pg_conn *c, struct node_answer *a);
extern pid_t node_ask_start(const char *conninfo, const struct node *n, int connect_ms,
							int timeout_ms, struct node_answer *out);
extern int	timeline_facts_read(struct pg_conn *c, unsigned tli, struct timeline_facts *f);

/* claim/claim_verdict.c */
extern int	claimant_verdict(const struct claim_request *rq, const struct claimant_answer *a,
							 char *msg, size_t len);
extern int	routed_verdict(const char *routed_node, const struct node_answer *p,
						   char *msg, size_t len);
extern const char *routed_answer_name(enum node_kind k);

/* claim/claim.c */
extern int	claim_check(const struct config *cfg, const struct nat_view *v,
						const struct node *node, long timeline,
						char *detail, size_t len, struct claim_outcome *out);

/* commands/promote.c */
extern int	cmd_promote(const struct config *cfg, const char *ssh_node,
						const char *nodename, const char *tlstr);
extern void print_promote_steps(void);

/* commands/status.c */
extern int	cmd_status(const struct config *cfg, const char *textfile);

/* commands/watch.c */
extern int	cmd_watch(const struct config *cfg);

/* commands/takeover.c */
extern int	cmd_takeover(const struct config *cfg);

#endif							/* BARMAN_HA_ORCHESTRATOR_H */
