/*-------------------------------------------------------------------------
 *
 * main.c
 *	  barman_ha_nat, the backup host's only privileged program: hardens the
 *	  process first (privilege.c), parses argv with bounds, loads the
 *	  trusted nat.conf, runs one verb.  Exit 0 ok, 1 failure, 2 usage or
 *	  configuration, 3 fenced; the last stderr line says why.  Every request
 *	  and outcome goes to syslog (LOG_AUTHPRIV).  No shell, no exec, nothing
 *	  from the environment.  After every NAT change, the conntrack sweep.
 *
 *-------------------------------------------------------------------------
 */
#include "nat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#define PROG "barman_ha_nat"

/* common/report.c: the line is kept, said at our exit (main) */
const char	report_program[] = PROG;
const bool	report_keep = true;
const bool	report_syslog = false;

enum verb
{
	V_HELP, V_INIT, V_SHOW, V_CLAIM, V_ROUTE, V_CLOSE, V_COUNT
};

/* Each verb and how many words may follow it. */
static const struct
{
	const char *name;
	int			min, max;
}			verbs[V_COUNT] = {
	{"help", 0, 0}, {"init", 0, 0}, {"show", 0, 0},
	{"claim", 2, 3}, {"route", 1, 2}, {"close", 1, 1}
};

struct request
{
	enum verb	verb;
	const char *conf;			/* -c FILE: real uid root only */
	const char *node;
	long		timeline;
	bool		force;			/* claim --force: real uid root only */
	unsigned	epmask;			/* the endpoints to NODE: 1 << EP_* */
};

static const char usage[] =
"usage: " PROG " [-c FILE] VERB        (-c: root only; default " BHA_NAT_CONF ")\n"
"  init                          create our NAT chains/table, root: ip_forward=1 (idempotent)\n"
"  show                          backend, nodes, endpoints, recorded state\n"
"  claim NODE TIMELINE [--force] fencing decision; barman endpoint to NODE (--force: root)\n"
"  route NODE [barman|app|both]  endpoints to NODE (only the recorded node, unless root)\n"
"  close NODE                    app endpoint closed while NODE is the recorded node\n"
"                                (its host is silent)\n"
"exit: 0 ok, 1 failure, 2 usage or configuration, 3 fenced.  iptables: iptables-legacy -t nat -S\n";

/* The endpoints a route names: 1 << EP_*, 0 if none. */
static unsigned
endpoints(int n, char **a)
{
	if (n == 2 || strcmp(a[2], "both") == 0)
		return 1u << EP_BARMAN | 1u << EP_APP;
	if (strcmp(a[2], BHA_ENDPOINT_BARMAN) == 0)
		return 1u << EP_BARMAN;
	if (strcmp(a[2], BHA_ENDPOINT_APP) == 0)
		return 1u << EP_APP;
	return 0;
}

static int
parse_nat_argv(int argc, char **argv, struct request *req)
{
	char	  **a = argv + 1;
	int			n = argc - 1,
				v = 0;

	memset(req, 0, sizeof(*req));
	req->conf = BHA_NAT_CONF;
	for (int i = 0; i < argc; i++)
	{
		if (strlen(argv[i]) > 255)
		{
			errorf("argument %d is longer than 255 bytes", i);
			return -1;
		}
	}
	if (n >= 2 && strcmp(a[0], "-c") == 0)
	{
		req->conf = a[1];
		a += 2;
		n -= 2;
	}
	if (n == 1 && strcmp(a[0], "--help") == 0)
		return 0;
	while (n > 0 && v < V_COUNT && strcmp(a[0], verbs[v].name) != 0)
		v++;
	if (n == 0)
		errorf("no verb (see " PROG " help)");
	else if (v == V_COUNT)
		errorf("unknown verb (see " PROG " help)");
	else if (n - 1 < verbs[v].min || n - 1 > verbs[v].max)
		errorf("wrong number of arguments (see " PROG " help)");
	else if (n > 1 && !bha_valid_name(a[1]))
		errorf("invalid node name");
	else if (v == V_CLAIM && parse_long(a[2], 1, BHA_TIMELINE_MAX, &req->timeline) != 0)
		errorf("invalid timeline (1 to %ld)", BHA_TIMELINE_MAX);
	else if (v == V_CLAIM && n == 4 && strcmp(a[3], "--force") != 0)
		errorf("unknown option (only --force)");
	else if (v == V_ROUTE && endpoints(n, a) == 0)
		errorf("unknown endpoint (barman, app or both)");
	else
	{
		req->verb = (enum verb) v;
		req->node = n > 1 ? a[1] : NULL;
		req->force = v == V_CLAIM && n == 4;
		if (v == V_CLAIM)
			req->epmask = 1u << EP_BARMAN;
		else if (v == V_CLOSE)
			req->epmask = 1u << EP_APP;
		else if (v == V_ROUTE)
			req->epmask = endpoints(n, a);
		return 0;
	}
	return -1;
}

static int
ip_forward(void)
{
	char		c = 0;
	int			fd = open("/proc/sys/net/ipv4/ip_forward", O_RDWR | O_CLOEXEC);
	bool		ok = false;

	if (fd >= 0)
	{
		ok = read(fd, &c, 1) == 1 && (c == '1' || pwrite(fd, "1\n", 2, 0) == 2);
		close(fd);
	}
	if (!ok)
		errorf("cannot set net.ipv4.ip_forward=1: %m");
	return ok ? 0 : -1;
}

/*
 * A NAT change does not move established connections: conntrack keeps
 * their mapping, so Barman's stream and client sessions would stay on the
 * old node (and hang if its host is gone).  After a change we delete every
 * flow to BACKUP:PORT of a changed endpoint whose replies do not come from
 * its new target (for a closed endpoint: from us); the client's next packet
 * gets a reset and it reconnects on the new route.  Dump and delete repeat
 * until a dump finds none left: no cap on the number of flows, a bounded
 * number of passes.
 */
#define MAX_PASSES	8

struct sweep
{
	struct nfct_handle *del;	/* deletes go on a socket of their own */
	uint32_t	backup, to[EP_COUNT];	/* the reply source a flow may keep */
	uint16_t	port[EP_COUNT], toport[EP_COUNT];	/* network order */
	unsigned	epmask;
	long		found, removed;
	int			err;
};

static int
visit(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *arg)
{
	struct sweep *s = arg;

	(void) type;
	if (nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != IPPROTO_TCP ||
		nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST) != s->backup)
		return NFCT_CB_CONTINUE;
	for (int ep = 0; ep < EP_COUNT; ep++)
	{
		if (!(s->epmask & 1u << ep) || nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST) != s->port[ep])
			continue;
		if (nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC) == s->to[ep] &&
			nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC) == s->toport[ep])
			continue;
		s->found++;
		if (nfct_query(s->del, NFCT_Q_DESTROY, ct) == 0)
			s->removed++;
		else if (errno != ENOENT)	/* ENOENT: it ended meanwhile, as we wanted */
			s->err = errno;
	}
	return NFCT_CB_CONTINUE;
}

/* A dump walks the whole table, milliseconds even when empty: skipped when it is. */
static bool
no_flows(void)
{
	char		buf[24] = "";
	int			fd = open("/proc/sys/net/netfilter/nf_conntrack_count", O_RDONLY | O_CLOEXEC);
	bool		none;

	if (fd < 0)
		return errno == ENOENT;	/* no conntrack in this namespace */
	none = read(fd, buf, sizeof(buf) - 1) > 0 && strcmp(buf, "0\n") == 0;
	close(fd);
	return none;
}

static int
flows_remove(const struct nat_config *cfg, const struct target want[EP_COUNT], unsigned epmask,
			 long *removed)
{
	struct sweep s = {.backup = cfg->backup_address.s_addr, .epmask = epmask};
	struct nfct_handle *h;
	uint32_t	family = AF_INET;
	int			pass = 0;

	*removed = 0;
	if (epmask == 0 || no_flows())
		return 0;
	for (int ep = 0; ep < EP_COUNT; ep++)
	{
		s.port[ep] = htons(cfg->ports[ep]);
		s.to[ep] = s.backup;	/* closed: we answer */
		s.toport[ep] = s.port[ep];
		if (want[ep].set)
		{
			s.to[ep] = want[ep].addr.s_addr;
			s.toport[ep] = htons(want[ep].port);
		}
	}
	h = nfct_open(CONNTRACK, 0);
	if (h != NULL)
		s.del = nfct_open(CONNTRACK, 0);
	if (h == NULL || s.del == NULL)
	{
		errorf("cannot open conntrack: %m");
		if (h != NULL)
			nfct_close(h);
		return -1;
	}
	nfct_callback_register(h, NFCT_T_ALL, visit, &s);
	do
	{
		s.found = 0;
		if (nfct_query(h, NFCT_Q_DUMP, &family) == 0)
			continue;
		if (errno == EINTR)		/* the table changed: look again */
			s.found++;
		else
			s.err = errno;
	} while (!s.err && s.found > 0 && ++pass < MAX_PASSES);
	nfct_close(s.del);
	nfct_close(h);
	*removed = s.removed;
	if (s.err)
		errorf("cannot list or delete conntrack flows: %s", strerror(s.err));
	else if (s.found > 0)
		errorf("%ld flows to the old node remain after %d passes", s.found, MAX_PASSES);
	return s.err || s.found > 0 ? -1 : 0;
}

/*
 * claim and route, decided and done under the state lock.  claim: fenced
 * as fence_decide (config.c) says; a new owner is recorded before anything
 * moves (a crash after that only repeats).  The app endpoint stays as it
 * is when held (closed stays closed: the orchestrator opens it after
 * Barman's stop) and closes if it led elsewhere: clients get a reset from
 * us at once instead of sending SYNs to a dead host.  route: only the recorded
 * node, unless root (a repair).  close: the app endpoint, only while NODE
 * is recorded, for anyone (a watcher that saw NODE's host fall silent
 * cannot close a new primary's endpoint on stale information).  Then one
 * backend change, and a sweep of the stale flows of every endpoint that
 * changed (a new owner: both).
 */
/* Says why a claim is fenced (f < 0), or why a route or close is refused. */
static void
say_refused(const struct request *rq, const struct state *st, const struct node *node, enum fence f,
			long step)
{
	const char *owner = st->exists ? st->node : "nothing recorded";

	if (f == FENCE_STALE)
		errorf("fenced: %s on timeline %ld is refused (the endpoints are %s's since timeline %ld)",
			   node->name, rq->timeline, st->node, st->timeline);
	else if (f == FENCE_TOO_FAR)
		errorf("fenced: timeline %ld is more than %ld above timeline %ld (%s%s); "
			   "only root's --force goes further", rq->timeline, step,
			   st->exists ? st->timeline : 1L, owner, st->exists ? "'s" : "");
	else if (rq->verb == V_CLOSE)
		errorf("%s is not the recorded node (%s)", node->name, st->exists ? st->node : "none");
	else
		errorf("%s is not the recorded node (%s): only root may route elsewhere", node->name,
			   st->exists ? st->node : "none");
}

static int
change(const struct nat_config *cfg, const struct nat_backend *be, const struct request *rq,
	   const struct node *node, uid_t ruid)
{
	struct target cur[EP_COUNT],
				want[EP_COUNT],
				to = {rq->verb != V_CLOSE, node->addr, node->port};
	struct state st;
	bool		claim = rq->verb == V_CLAIM,
				held,
				changed;
	enum fence	f = FENCE_NEW;
	unsigned	sweep = 0;
	int			have;
	long		flows;

	if (state_lock(cfg) != 0 || state_read(cfg, &st) != 0)
		return BHA_EXIT_FAIL;
	held = st.exists && strcmp(st.node, node->name) == 0 && (!claim || st.timeline == rq->timeline);
	if (claim)
		f = fence_decide(&st, node->name, rq->timeline, cfg->max_step, rq->force);
	if (f < 0 || (!claim && !held && (ruid != 0 || rq->verb == V_CLOSE)))
	{
		say_refused(rq, &st, node, f, cfg->max_step);
		return BHA_EXIT_FENCED;
	}
	snprintf(st.node, sizeof(st.node), "%s", node->name);
	st.timeline = rq->timeline;
	if ((claim && !held && state_write(cfg, &st) != 0) || be->read(cfg, cur, &have) != 0)
		return BHA_EXIT_FAIL;
	for (int ep = 0; ep < EP_COUNT; ep++)
	{
		want[ep] = cur[ep];
		if (rq->epmask & 1u << ep)
			want[ep] = to;
	}
	if (claim && !held)
	{
		sweep = 1u << EP_BARMAN | 1u << EP_APP;
		if (!same_target(&cur[EP_APP], &to))
			want[EP_APP] = (struct target) {0};
	}
	for (int ep = 0; ep < EP_COUNT; ep++)
		if (!same_target(&cur[ep], &want[ep]))
			sweep |= 1u << ep;
	if (be->route(cfg, want, &changed) != 0 || flows_remove(cfg, want, sweep, &flows) != 0)
		return BHA_EXIT_FAIL;
	if (claim)
		printf("claim %s %s %ld\n", held ? "held" : "recorded", node->name, rq->timeline);
	else
		printf("%s %s %s\n", verbs[rq->verb].name, changed ? "changed" : "unchanged", node->name);
	printf("flows %ld\n", flows);
	return BHA_EXIT_OK;
}

static int
show(const struct nat_config *cfg, const struct nat_backend *be)
{
	static const char *const epname[EP_COUNT] = {BHA_ENDPOINT_BARMAN, BHA_ENDPOINT_APP};
	struct target got[EP_COUNT];
	struct state st;
	int			have;
	char		a[INET_ADDRSTRLEN],
				b[INET_ADDRSTRLEN];

	if (be->read(cfg, got, &have) != 0 || state_read(cfg, &st) != 0)
		return BHA_EXIT_FAIL;
	printf("backend %s\n", be->name);
	for (int i = 0; i < cfg->nnodes; i++)
		printf("node %s %s %u\n", cfg->nodes[i].name,
			   inet_ntop(AF_INET, &cfg->nodes[i].addr, a, sizeof(a)), cfg->nodes[i].port);
	for (int ep = 0; ep < EP_COUNT; ep++)
	{
		const char *name = "unknown";

		for (int i = 0; i < cfg->nnodes; i++)
			if (got[ep].addr.s_addr == cfg->nodes[i].addr.s_addr &&
				got[ep].port == cfg->nodes[i].port)
				name = cfg->nodes[i].name;
		printf("endpoint %s %s %u ", epname[ep],
			   inet_ntop(AF_INET, &cfg->backup_address, a, sizeof(a)), cfg->ports[ep]);
		if (have < 2)
			printf("missing\n");
		else if (!got[ep].set)
			printf("closed\n");
		else
			printf("%s %s:%u\n", name, inet_ntop(AF_INET, &got[ep].addr, b, sizeof(b)),
				   got[ep].port);
	}
	if (st.exists)
		printf("state %s %ld %lld\n", st.node, st.timeline, st.mtime);
	else
		printf("state none\n");
	return BHA_EXIT_OK;
}

/*
 * init refuses while the other backend holds rules of ours: no double NAT.
 * Only root's init turns ip_forward on: what root turned off stays off.
 */
static int
init(const struct nat_config *cfg, const struct nat_backend *be, const struct nat_backend *other,
	 uid_t ruid)
{
	struct target got[EP_COUNT];
	int			have = 0;
	bool		changed;

	if (other && other->read(cfg, got, &have) != 0)
		return BHA_EXIT_FAIL;
	if (have > 0)
	{
		errorf("rules of ours exist in the %s backend: remove them first (docs/backup-host.md)",
			   other->name);
		return BHA_EXIT_FAIL;
	}
	if (be->route(cfg, NULL, &changed) != 0 || (ruid == 0 && ip_forward() != 0))
		return BHA_EXIT_FAIL;
	printf("init %s\n", changed ? "changed" : "unchanged");
	return BHA_EXIT_OK;
}

static int
run(uid_t ruid, int argc, char **argv)
{
	static struct nat_config cfg;
	struct request rq;
	const struct nat_backend *be = &nat_iptables,
			   *other = NULL;
	const struct node *node = NULL;

	if (parse_nat_argv(argc, argv, &rq) != 0)
		return BHA_EXIT_USAGE;
	if (rq.verb == V_HELP)
	{
		fputs(usage, stdout);
		return BHA_EXIT_OK;
	}
	if (ruid != 0 && (strcmp(rq.conf, BHA_NAT_CONF) != 0 || rq.force))
	{
		errorf("-c and --force are for root only");
		return BHA_EXIT_USAGE;
	}
	if (nat_conf_load(&cfg, rq.conf) != 0)
		return BHA_EXIT_USAGE;
	alarm(2 * cfg.lock_timeout + 5);	/* two lock waits, then the work */
#ifdef HAVE_NFTABLES
	other = &nat_nftables;
	if (cfg.nftables)
	{
		be = &nat_nftables;
		other = &nat_iptables;
	}
#else
	if (cfg.nftables)
	{
		errorf("nat_backend = nftables is not available in this build");
		return BHA_EXIT_USAGE;
	}
#endif
	if (rq.node)
		node = config_node(&cfg, rq.node);
	if (rq.node && node == NULL)
	{
		errorf("unknown node \"%s\" (not in %s)", rq.node, rq.conf);
		return BHA_EXIT_USAGE;
	}
	if (rq.verb == V_INIT)
		return init(&cfg, be, other, ruid);
	if (rq.verb == V_SHOW)
		return show(&cfg, be);
	return change(&cfg, be, &rq, node, ruid);
}

/* No write here: stderr may be a pipe nobody reads. */
static void
on_deadline(int sig)
{
	(void) sig;
	_exit(BHA_EXIT_FAIL);
}

/* The caller's words for syslog, non-printables and '\' as \xNN. */
static void
caller_words(int argc, char **argv, char *words, size_t size)
{
	size_t		n = 0;

	words[0] = '\0';
	for (int i = 1; i < argc && n + 8 < size; i++)
	{
		for (const unsigned char *p = (const void *) argv[i]; *p && n + 8 < size; p++)
		{
			if (*p <= ' ' || *p >= 0x7f || *p == '\\')
				n += snprintf(words + n, size - n, "\\x%02x", *p);
			else
				n += snprintf(words + n, size - n, "%c", *p);
		}
		if (i + 1 < argc)
			n += snprintf(words + n, size - n, " ");
	}
}

/*
 * stdout fills a buffer larger than anything we print and errorf keeps its
 * line (report_keep); syslog and the caller's descriptors get them only
 * once closing all but 0-2 has released the locks: a caller's full pipe
 * can hold us until the deadline, never the state lock.
 */
int
main(int argc, char **argv)
{
	static char out[16384];
	char		words[1024];
	uid_t		ruid;
	int			rc = harden(&ruid);

	setvbuf(stdout, out, _IOFBF, sizeof(out));
	signal(SIGALRM, on_deadline);
	alarm(15);					/* until nat.conf gives lock_timeout */
	openlog(PROG, LOG_PID, LOG_AUTHPRIV);
	caller_words(argc, argv, words, sizeof(words));
	syslog(LOG_INFO, "uid %u: %s", ruid, words);
	if (rc == BHA_EXIT_OK)
		rc = run(ruid, argc, argv);
	closelog();
	closefrom(3);
	openlog(PROG, LOG_PID, LOG_AUTHPRIV);
	fflush(stdout);
	if (rc == BHA_EXIT_OK)
		syslog(LOG_INFO, "uid %u: exit 0", ruid);
	else
		syslog(LOG_WARNING, "uid %u: exit %d: %s", ruid, rc, report_last);
	if (rc != BHA_EXIT_OK && report_last[0])
		fprintf(stderr, PROG ": %s\n", report_last);
	return rc;
}
