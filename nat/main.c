/*-------------------------------------------------------------------------
 *
 * main.c
 *	  barman_ha_nat, the backup host's only privileged program.  Hardens
 *	  the process before anything else (privilege.c), parses argv with
 *	  bounds, loads the trusted nat.conf, runs one verb.  Exit codes 0 ok,
 *	  1 failure, 2 usage or configuration, 3 fenced; the last stderr line
 *	  says why.  Every request and its outcome go to syslog (LOG_AUTHPRIV).
 *	  No shell, no exec, nothing read from the environment.
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

static const char usage_text[] =
"usage: " PROG " [-c FILE] VERB\n"
"  init                      create our NAT rules' chains, set ip_forward (idempotent)\n"
"  migrate                   move our rules from the other backend to nat_backend (root)\n"
"  show                      backend, nodes, endpoints, recorded state\n"
"  claim NODE TIMELINE [--force]\n"
"                            fencing decision; barman endpoint to NODE (--force: root)\n"
"  route NODE [barman|app|both]\n"
"                            endpoints to NODE (the recorded node, unless root)\n"
"exit: 0 ok, 1 failure, 2 usage or configuration, 3 fenced.  -c FILE: root only,\n"
"default " BHA_NAT_CONF ".  iptables rules: iptables-legacy -t nat -S\n";

static char last_error[512];

void
errorf(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	for (char *p = last_error; *p; p++)
		*p = (*p < ' ' || *p == 0x7f) ? '?' : *p;	/* one line, printable */
	fflush(stdout);
	fprintf(stderr, PROG ": %s\n", last_error);
}

/* Words a caller chose, for syslog: non-printables and '\' as \xNN. */
static void
escape(char *out, size_t size, int argc, char **argv)
{
	size_t		n = 0;

	out[0] = '\0';
	for (int i = 0; i < argc && n + 8 < size; i++)
	{
		for (const unsigned char *p = (const void *) argv[i]; *p && n + 8 < size; p++)
			n += snprintf(out + n, size - n, (*p <= ' ' || *p >= 0x7f || *p == '\\') ?
						  "\\x%02x" : "%c", *p);
		if (i + 1 < argc && n + 8 < size)
			n += snprintf(out + n, size - n, " ");
	}
}

int
parse_request(int argc, char **argv, struct request *req)
{
	static const char *const verbs[] = {"help", "init", "migrate", "show", "claim", "route"};
	static const int min[] = {0, 0, 0, 0, 2, 1}, max[] = {0, 0, 0, 0, 3, 2};
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
	while (n > 0 && v < 6 && strcmp(a[0], verbs[v]) != 0)
		v++;
	if (n == 0 || v == 6 || n - 1 < min[v] || n - 1 > max[v])
		return errorf("%s (see " PROG " help)", n == 0 ? "no verb" : v == 6 ? "unknown verb" :
					  "wrong number of arguments"), -1;
	req->verb = (enum verb) v;
	req->node = n > 1 ? a[1] : NULL;
	if (req->node && !bha_valid_name(req->node))
		return errorf("invalid node name"), -1;
	if (v == V_CLAIM && !parse_number(a[2], 1, BHA_TIMELINE_MAX, &req->timeline))
		return errorf("invalid timeline (1 to %ld)", BHA_TIMELINE_MAX), -1;
	if (v == V_CLAIM && n == 4 && !(req->force = strcmp(a[3], "--force") == 0))
		return errorf("unknown option (only --force)"), -1;
	req->epmask = v != V_ROUTE ? 0 : n == 2 || strcmp(a[2], "both") == 0 ? 3 :
		strcmp(a[2], BHA_ENDPOINT_BARMAN) == 0 ? 1u << EP_BARMAN :
		strcmp(a[2], BHA_ENDPOINT_APP) == 0 ? 1u << EP_APP : 0;
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
	if (!ok)
		errorf("cannot set net.ipv4.ip_forward=1: %m");
	return ok ? 0 : -1;
}

static bool
leads_to(const struct target *t, const struct node *n)
{
	return t->set && t->addr.s_addr == n->addr.s_addr && t->port == n->port;
}

/*
 * Routes want[] in one backend change, then removes the stale flows of the
 * endpoints in mask and of every endpoint that changed.
 */
static int
apply(const struct nat_config *cfg, const struct nat_backend *be, const struct target cur[EP_COUNT],
	  bool ready, const struct target want[EP_COUNT], unsigned mask, bool *changed, long *flows)
{
	bool		ch = false;

	*flows = 0;
	if ((!ready && be->init(cfg, &ch) != 0) || be->route(cfg, want, changed) != 0 || ip_forward() != 0)
		return -1;
	*changed |= ch;
	for (int ep = 0; ep < EP_COUNT; ep++)
		if (cur[ep].set != want[ep].set || (cur[ep].set && (cur[ep].addr.s_addr != want[ep].addr.s_addr ||
															cur[ep].port != want[ep].port)))
			mask |= 1u << ep;
	return flows_remove(cfg, want, mask, flows);
}

static int
claim(const struct nat_config *cfg, const struct nat_backend *be, const struct node *node,
	  long tl, bool force)
{
	struct state st;
	struct target cur[EP_COUNT],
				want[EP_COUNT];
	bool		held,
				ready,
				changed;
	long		flows;

	if (state_lock(cfg) < 0 || state_read(cfg, &st) != 0)
		return BHA_EXIT_FAIL;
	if (!force && fenced(&st, node->name, tl))
	{
		errorf("fenced: %s on timeline %ld is refused (the endpoints are %s's since timeline %ld)",
			   node->name, tl, st.node, st.timeline);
		return BHA_EXIT_FENCED;
	}
	held = st.exists && st.timeline == tl && strcmp(st.node, node->name) == 0;
	snprintf(st.node, sizeof(st.node), "%s", node->name);
	st.timeline = tl;
	/* recorded before anything moves: a crash after this only repeats */
	if ((!held && state_write(cfg, &st) != 0) || be->read(cfg, cur, &ready) != 0)
		return BHA_EXIT_FAIL;
	want[EP_BARMAN] = (struct target) {true, node->addr, node->port};
	/*
	 * The app endpoint stays as it is on a held claim (closed stays closed:
	 * the orchestrator opens it once Barman streams), and closes if it led
	 * elsewhere: clients get a reset from us instead of retransmitting SYNs
	 * to a dead host.  A new owner's claim sweeps both endpoints' flows.
	 */
	want[EP_APP] = held || leads_to(&cur[EP_APP], node) ? cur[EP_APP] : (struct target) {0};
	if (apply(cfg, be, cur, ready, want, held ? 0 : 3, &changed, &flows) != 0)
		return BHA_EXIT_FAIL;
	printf("claim %s %s %ld\nflows %ld\n", held ? "held" : "recorded", node->name, tl, flows);
	return BHA_EXIT_OK;
}

/* Callers other than root may only route the recorded node (checked under the lock). */
static int
route(const struct nat_config *cfg, const struct nat_backend *be, const struct node *node,
	  unsigned mask, uid_t ruid)
{
	struct state st;
	struct target cur[EP_COUNT],
				want[EP_COUNT];
	bool		ready,
				changed;
	long		flows;

	if (state_lock(cfg) < 0 || state_read(cfg, &st) != 0)
		return BHA_EXIT_FAIL;
	if (ruid != 0 && !(st.exists && strcmp(st.node, node->name) == 0))
	{
		errorf("%s is not the recorded node (%s): only root may route elsewhere", node->name,
			   st.exists ? st.node : "none");
		return BHA_EXIT_FENCED;
	}
	if (be->read(cfg, cur, &ready) != 0)
		return BHA_EXIT_FAIL;
	for (int ep = 0; ep < EP_COUNT; ep++)
		want[ep] = mask & (1u << ep) ? (struct target) {true, node->addr, node->port} : cur[ep];
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
		printf("node %s %s %u\n", cfg->nodes[i].name,
			   inet_ntop(AF_INET, &cfg->nodes[i].addr, a, sizeof(a)), cfg->nodes[i].port);
	for (int ep = 0; ep < EP_COUNT; ep++)
	{
		const char *name = "unknown";

		for (int i = 0; i < cfg->nnodes; i++)
			name = leads_to(&got[ep], &cfg->nodes[i]) ? cfg->nodes[i].name : name;
		printf("endpoint %s %s %u ", endpoint_names[ep],
			   inet_ntop(AF_INET, &cfg->backup_address, a, sizeof(a)), cfg->ports[ep]);
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

static int
init(const struct nat_config *cfg, const struct nat_backend *be, const struct nat_backend *other)
{
	bool		present = false,
				changed;

	if (other && other->present(cfg, &present) != 0)
		return BHA_EXIT_FAIL;
	if (present)
	{
		errorf("rules of ours exist in the %s backend: move them with `" PROG " migrate` "
			   "(no double NAT)", other->name);
		return BHA_EXIT_FAIL;
	}
	if (be->init(cfg, &changed) != 0 || ip_forward() != 0)
		return BHA_EXIT_FAIL;
	printf("init %s\n", changed ? "changed" : "unchanged");
	return BHA_EXIT_OK;
}

/*
 * The routes go to this backend first and leave the other one after: for a
 * moment both NAT the same way (a flow is NATed once, by the first), rather
 * than neither.  Where they lead comes from the other backend, else from
 * the state.
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
		(other && (other->present(cfg, &present) != 0 ||
				   (present && other->read(cfg, got, &ready) != 0))))
		return BHA_EXIT_FAIL;
	for (int ep = 0; ep < EP_COUNT && !ready && st.exists && (n = config_node(cfg, st.node)); ep++)
		got[ep] = (struct target) {true, n->addr, n->port};
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
		return fputs(usage_text, stdout), BHA_EXIT_OK;
	if (ruid != 0 && (strcmp(req.conf, BHA_NAT_CONF) != 0 || req.force || req.verb == V_MIGRATE))
		return errorf("-c, --force and migrate are for root only"), BHA_EXIT_USAGE;
	if ((rc = config_load(&cfg, req.conf)) != 0)
		return rc;
	alarm(2 * cfg.lock_timeout + 5);	/* every wait is bounded anyway */
#ifdef HAVE_NFTABLES
	other = cfg.backend == BACKEND_NFTABLES ? &nat_iptables : &nat_nftables;
	be = cfg.backend == BACKEND_NFTABLES ? &nat_nftables : &nat_iptables;
#else
	if (cfg.backend == BACKEND_NFTABLES)
		return errorf("nat_backend = nftables is not available in this build"), BHA_EXIT_USAGE;
#endif
	if (req.node && (node = config_node(&cfg, req.node)) == NULL)
		return errorf("unknown node \"%s\" (not in %s)", req.node, req.conf), BHA_EXIT_USAGE;
	switch (req.verb)
	{
		case V_INIT:
			return init(&cfg, be, other);
		case V_MIGRATE:
			return migrate(&cfg, be, other);
		case V_SHOW:
			return show(&cfg, be);
		case V_CLAIM:
			return claim(&cfg, be, node, req.timeline, req.force);
		case V_ROUTE:
			return route(&cfg, be, node, req.epmask, ruid);
		default:
			return BHA_EXIT_USAGE;
	}
}

static void
on_deadline(int sig)
{
	static const char msg[] = PROG ": overall deadline passed, giving up\n";

	(void) sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(BHA_EXIT_FAIL);
	_exit(BHA_EXIT_FAIL);
}

int
main(int argc, char **argv)
{
	char		words[1024];
	uid_t		ruid;
	int			rc;

	privilege_start();
	signal(SIGALRM, on_deadline);
	alarm(15);					/* until nat.conf gives lock_timeout */
	openlog(PROG, LOG_PID, LOG_AUTHPRIV);
	rc = privilege_drop(&ruid);
	escape(words, sizeof(words), argc - 1, argv + 1);
	syslog(LOG_INFO, "uid %u: %s", (unsigned) ruid, words);
	if (rc == BHA_EXIT_OK)
		rc = run(ruid, argc, argv);
	fflush(stdout);
	syslog(rc ? LOG_WARNING : LOG_INFO, "uid %u: exit %d%s%s", (unsigned) ruid, rc,
		   rc ? ": " : "", rc ? last_error : "");
	return rc;
}
