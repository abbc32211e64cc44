/*-------------------------------------------------------------------------
 *
 * main.c
 *	  barman_ha_nat, the backup host's only privileged program: hardens the
 *	  process first (privilege.c), parses argv with bounds, loads the
 *	  trusted nat.conf, runs one verb.  Exit 0 ok, 1 failure, 2 usage or
 *	  configuration, 3 fenced; the last stderr line says why.  Every request
 *	  and outcome goes to syslog (LOG_AUTHPRIV).  No shell, no exec, nothing
 *	  from the environment.
 *
 *-------------------------------------------------------------------------
 */
#include "nat.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define PROG "barman_ha_nat"

enum verb
{
	V_HELP, V_INIT, V_MIGRATE, V_SHOW, V_CLAIM, V_ROUTE, V_COUNT
};
static const char *const verbs[V_COUNT] = {"help", "init", "migrate", "show", "claim", "route"};

struct request
{
	enum verb	verb;
	const char *conf;			/* -c FILE: real uid root only */
	const char *node;
	long		timeline;
	bool		force;			/* claim --force: real uid root only */
	unsigned	epmask;			/* route: 1 << EP_* */
};

static const char usage[] =
"usage: " PROG " [-c FILE] VERB        (-c: root only; default " BHA_NAT_CONF ")\n"
"  init                          create our NAT chains/table, set ip_forward (idempotent)\n"
"  migrate                       move our rules from the other backend (root only)\n"
"  show                          backend, nodes, endpoints, recorded state\n"
"  claim NODE TIMELINE [--force] fencing decision; barman endpoint to NODE (--force: root)\n"
"  route NODE [barman|app|both]  endpoints to NODE (only the recorded node, unless root)\n"
"exit: 0 ok, 1 failure, 2 usage or configuration, 3 fenced.  iptables: iptables-legacy -t nat -S\n";

static char last_error[512];

void
errorf(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	for (char *p = last_error; *p; p++)
		*p = *p < ' ' || *p == 0x7f ? '?' : *p;	/* one printable line */
	fflush(stdout);
	fprintf(stderr, PROG ": %s\n", last_error);
}

static int
parse_request(int argc, char **argv, struct request *req)
{
	static const int min[V_COUNT] = {0, 0, 0, 0, 2, 1}, max[V_COUNT] = {0, 0, 0, 0, 3, 2};
	char	  **a = argv + 1;
	int			n = argc - 1,
				v = 0;

	memset(req, 0, sizeof(*req));
	req->conf = BHA_NAT_CONF;
	for (int i = 0; i < argc; i++)
		if (strlen(argv[i]) > 255)
			return errorf("argument %d is longer than 255 bytes", i), -1;
	if (n >= 2 && strcmp(a[0], "-c") == 0)
		req->conf = a[1], a += 2, n -= 2;
	if (n == 1 && strcmp(a[0], "--help") == 0)
		return 0;
	while (n > 0 && v < V_COUNT && strcmp(a[0], verbs[v]) != 0)
		v++;
	if (n == 0 || v == V_COUNT || n - 1 < min[v] || n - 1 > max[v])
		return errorf("%s (see " PROG " help)", n == 0 ? "no verb" : v == V_COUNT ? "unknown verb" :
					  "wrong number of arguments"), -1;
	req->verb = (enum verb) v;
	if ((req->node = n > 1 ? a[1] : NULL) && !bha_valid_name(req->node))
		return errorf("invalid node name"), -1;
	if (v == V_CLAIM && !parse_number(a[2], 1, BHA_TIMELINE_MAX, &req->timeline))
		return errorf("invalid timeline (1 to %ld)", BHA_TIMELINE_MAX), -1;
	if (v == V_CLAIM && n == 4 && !(req->force = strcmp(a[3], "--force") == 0))
		return errorf("unknown option (only --force)"), -1;
	req->epmask = v != V_ROUTE ? 0 : n == 2 || strcmp(a[2], "both") == 0 ? 3 :
		strcmp(a[2], BHA_ENDPOINT_BARMAN) == 0 ? 1u << EP_BARMAN : strcmp(a[2], BHA_ENDPOINT_APP) == 0 ? 1u << EP_APP : 0;
	if (v == V_ROUTE && req->epmask == 0)
		return errorf("unknown endpoint (barman, app or both)"), -1;
	return 0;
}

static int
ip_forward(void)
{
	char		c = 0;
	int			fd = open("/proc/sys/net/ipv4/ip_forward", O_RDWR | O_CLOEXEC);
	bool		ok = fd >= 0 && read(fd, &c, 1) == 1 && (c == '1' || pwrite(fd, "1\n", 2, 0) == 2);

	if (fd >= 0)
		close(fd);
	return ok ? 0 : (errorf("cannot set net.ipv4.ip_forward=1: %m"), -1);
}

static bool
same_target(const struct target *a, const struct target *b)
{
	return a->set == b->set && (!a->set || (a->addr.s_addr == b->addr.s_addr && a->port == b->port));
}

static struct target
to_node(const struct node *n)
{
	return (struct target) {true, n->addr, n->port};
}

/* want[] in one backend change, then the stale flows of mask's endpoints and of all that changed. */
static int
apply(const struct nat_config *cfg, const struct nat_backend *be, const struct target cur[EP_COUNT],
	  bool ready, const struct target want[EP_COUNT], unsigned mask, bool *changed, long *flows)
{
	bool		init_changed = false;

	if ((!ready && be->init(cfg, &init_changed) != 0) || be->route(cfg, want, changed) != 0 || ip_forward() != 0)
		return -1;
	*changed |= init_changed;
	for (int ep = 0; ep < EP_COUNT; ep++)
		mask |= same_target(&cur[ep], &want[ep]) ? 0 : 1u << ep;
	return flows_remove(cfg, want, mask, flows);
}

static int
claim(const struct nat_config *cfg, const struct nat_backend *be, const struct node *node, long tl, bool force)
{
	struct target cur[EP_COUNT],
				want[EP_COUNT];
	struct state st;
	bool		held,
				ready,
				changed;
	long		flows;

	if (state_lock(cfg) < 0 || state_read(cfg, &st) != 0)
		return BHA_EXIT_FAIL;
	if (!force && fenced(&st, node->name, tl))
		return errorf("fenced: %s on timeline %ld is refused (the endpoints are %s's since timeline %ld)",
					  node->name, tl, st.node, st.timeline), BHA_EXIT_FENCED;
	held = st.exists && st.timeline == tl && strcmp(st.node, node->name) == 0;
	snprintf(st.node, sizeof(st.node), "%s", node->name);
	st.timeline = tl;
	/* recorded before anything moves: a crash after this only repeats */
	if ((!held && state_write(cfg, &st) != 0) || be->read(cfg, cur, &ready) != 0)
		return BHA_EXIT_FAIL;
	/*
	 * The app endpoint stays as it is when held (closed stays closed: the
	 * orchestrator opens it once Barman streams), and closes if it led
	 * elsewhere: clients get a reset from us at once instead of sending
	 * SYNs to a dead host.  A new owner sweeps both endpoints' flows.
	 */
	want[EP_BARMAN] = to_node(node);
	want[EP_APP] = held || same_target(&cur[EP_APP], &want[EP_BARMAN]) ? cur[EP_APP] : (struct target) {0};
	if (apply(cfg, be, cur, ready, want, held ? 0 : 3, &changed, &flows) != 0)
		return BHA_EXIT_FAIL;
	printf("claim %s %s %ld\nflows %ld\n", held ? "held" : "recorded", node->name, tl, flows);
	return BHA_EXIT_OK;
}

/* Only the recorded node, checked under the lock (root may route anywhere: a repair). */
static int
route(const struct nat_config *cfg, const struct nat_backend *be, const struct node *node, unsigned mask, uid_t ruid)
{
	struct target cur[EP_COUNT],
				want[EP_COUNT];
	struct state st;
	bool		ready,
				changed;
	long		flows;

	if (state_lock(cfg) < 0 || state_read(cfg, &st) != 0)
		return BHA_EXIT_FAIL;
	if (ruid != 0 && !(st.exists && strcmp(st.node, node->name) == 0))
		return errorf("%s is not the recorded node (%s): only root may route elsewhere", node->name,
					  st.exists ? st.node : "none"), BHA_EXIT_FENCED;
	if (be->read(cfg, cur, &ready) != 0)
		return BHA_EXIT_FAIL;
	for (int ep = 0; ep < EP_COUNT; ep++)
		want[ep] = mask & 1u << ep ? to_node(node) : cur[ep];
	if (apply(cfg, be, cur, ready, want, 0, &changed, &flows) != 0)
		return BHA_EXIT_FAIL;
	printf("route %s %s\nflows %ld\n", changed ? "changed" : "unchanged", node->name, flows);
	return BHA_EXIT_OK;
}

static int
show(const struct nat_config *cfg, const struct nat_backend *be)
{
	struct target got[EP_COUNT];
	struct state st;
	bool		ready;
	char		a[INET_ADDRSTRLEN],
				b[INET_ADDRSTRLEN];

	if (be->read(cfg, got, &ready) != 0 || state_read(cfg, &st) != 0)
		return BHA_EXIT_FAIL;
	printf("backend %s\n", be->name);
	for (int i = 0; i < cfg->nnodes; i++)
		printf("node %s %s %u\n", cfg->nodes[i].name, inet_ntop(AF_INET, &cfg->nodes[i].addr, a, sizeof(a)),
			   cfg->nodes[i].port);
	for (int ep = 0; ep < EP_COUNT; ep++)
	{
		const char *name = "unknown";

		for (int i = 0; i < cfg->nnodes; i++)
			name = same_target(&got[ep], &(struct target) {true, cfg->nodes[i].addr, cfg->nodes[i].port}) ?
				cfg->nodes[i].name : name;
		printf("endpoint %s %s %u ", endpoint_names[ep], inet_ntop(AF_INET, &cfg->backup_address, a, sizeof(a)),
			   cfg->ports[ep]);
		if (!ready || !got[ep].set)
			printf("%s\n", ready ? "closed" : "missing");
		else
			printf("%s %s:%u\n", name, inet_ntop(AF_INET, &got[ep].addr, b, sizeof(b)), got[ep].port);
	}
	if (st.exists)
		printf("state %s %ld %lld\n", st.node, st.timeline, st.mtime);
	else
		printf("state none\n");
	return BHA_EXIT_OK;
}

/* init refuses while the other backend holds rules of ours: no double NAT. */
static int
init(const struct nat_config *cfg, const struct nat_backend *be, const struct nat_backend *other)
{
	bool		present = false,
				changed;

	if (other && other->present(cfg, &present) != 0)
		return BHA_EXIT_FAIL;
	if (present)
		return errorf("rules of ours exist in the %s backend: move them with `" PROG " migrate`", other->name),
			BHA_EXIT_FAIL;
	if (be->init(cfg, &changed) != 0 || ip_forward() != 0)
		return BHA_EXIT_FAIL;
	printf("init %s\n", changed ? "changed" : "unchanged");
	return BHA_EXIT_OK;
}

/*
 * Routes go into this backend first and leave the other one after: for a
 * moment both NAT alike (a flow is NATed once, by the first) rather than
 * neither.  Where they lead: the other backend's rules, else the state.
 */
static int
migrate(const struct nat_config *cfg, const struct nat_backend *be, const struct nat_backend *other)
{
	struct target got[EP_COUNT] = {{0}};
	struct state st;
	const struct node *n;
	bool		present = false,
				ready = false,
				changed;

	if (state_lock(cfg) < 0 || state_read(cfg, &st) != 0 ||
		(other && (other->present(cfg, &present) != 0 || (present && other->read(cfg, got, &ready) != 0))))
		return BHA_EXIT_FAIL;
	for (int ep = 0; ep < EP_COUNT && !ready && st.exists && (n = config_node(cfg, st.node)); ep++)
		got[ep] = to_node(n);
	if (be->init(cfg, &changed) != 0 || ip_forward() != 0)
		return BHA_EXIT_FAIL;
	printf("init %s\n", changed ? "changed" : "unchanged");
	if (be->route(cfg, got, &changed) != 0)
		return BHA_EXIT_FAIL;
	printf("route %s\n", changed ? "changed" : "unchanged");
	if (present && other->remove(cfg) != 0)
		return BHA_EXIT_FAIL;
	printf("removed %s\n", present ? other->name : "nothing");
	return BHA_EXIT_OK;
}

static int
run(uid_t ruid, int argc, char **argv)
{
	static struct nat_config cfg;
	struct request req;
	const struct nat_backend *be = &nat_iptables,
			   *other = NULL;
	const struct node *node = NULL;
	int			rc;

	if (parse_request(argc, argv, &req) != 0)
		return BHA_EXIT_USAGE;
	if (req.verb == V_HELP)
		return fputs(usage, stdout), BHA_EXIT_OK;
	if (ruid != 0 && (strcmp(req.conf, BHA_NAT_CONF) != 0 || req.force || req.verb == V_MIGRATE))
		return errorf("-c, --force and migrate are for root only"), BHA_EXIT_USAGE;
	if ((rc = config_load(&cfg, req.conf)) != 0)
		return rc;
	alarm(2 * cfg.lock_timeout + 5);	/* two lock waits, then the work */
#ifdef HAVE_NFTABLES
	be = cfg.backend == BACKEND_NFTABLES ? &nat_nftables : &nat_iptables;
	other = cfg.backend == BACKEND_NFTABLES ? &nat_iptables : &nat_nftables;
#else
	if (cfg.backend == BACKEND_NFTABLES)
		return errorf("nat_backend = nftables is not available in this build"), BHA_EXIT_USAGE;
#endif
	if (req.node && (node = config_node(&cfg, req.node)) == NULL)
		return errorf("unknown node \"%s\" (not in %s)", req.node, req.conf), BHA_EXIT_USAGE;
	if (req.verb == V_INIT)
		return init(&cfg, be, other);
	if (req.verb == V_MIGRATE)
		return migrate(&cfg, be, other);
	if (req.verb == V_SHOW)
		return show(&cfg, be);
	if (req.verb == V_CLAIM)
		return claim(&cfg, be, node, req.timeline, req.force);
	return route(&cfg, be, node, req.epmask, ruid);
}

static void
on_deadline(int sig)
{
	static const char msg[] = PROG ": overall deadline passed, giving up\n";

	(void) sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) >= 0)
		_exit(BHA_EXIT_FAIL);
	_exit(BHA_EXIT_FAIL);
}

int
main(int argc, char **argv)
{
	char		words[1024] = "";
	size_t		n = 0;
	uid_t		ruid;
	int			rc;

	privilege_start();
	signal(SIGALRM, on_deadline);
	alarm(15);					/* until nat.conf gives lock_timeout */
	openlog(PROG, LOG_PID, LOG_AUTHPRIV);
	rc = privilege_drop(&ruid);
	/* the caller's words, non-printables and '\' as \xNN */
	for (int i = 1; i < argc && n + 8 < sizeof(words); i++)
	{
		for (const unsigned char *p = (const void *) argv[i]; *p && n + 8 < sizeof(words); p++)
			n += snprintf(words + n, sizeof(words) - n, *p <= ' ' || *p >= 0x7f || *p == '\\' ? "\\x%02x" : "%c", *p);
		n += snprintf(words + n, sizeof(words) - n, "%s", i + 1 < argc ? " " : "");
	}
	syslog(LOG_INFO, "uid %u: %s", ruid, words);
	if (rc == BHA_EXIT_OK)
		rc = run(ruid, argc, argv);
	fflush(stdout);
	syslog(rc ? LOG_WARNING : LOG_INFO, "uid %u: exit %d%s%s", ruid, rc, rc ? ": " : "", rc ? last_error : "");
	return rc;
}
