/*-------------------------------------------------------------------------
 *
 * watch.c
 *	  `watch`: a long-running loop on the backup host that notices by
 *	  itself when the routed primary's host falls silent, and closes the
 *	  application endpoint until the host answers again or a new primary
 *	  claims the endpoints.
 *
 *	  Why: the app endpoint DNATs clients to the routed primary.  When that
 *	  host vanishes (a cut cable: no reset), every client SYN is forwarded
 *	  to it and waits for TCP's 1 s retransmission; after the failover
 *	  moves the endpoint, a client still waits up to a second for its
 *	  retransmitted SYN.  A closed endpoint answers a SYN with a reset from
 *	  the backup host: libpq fails at once, the client retries, and the
 *	  retry after the new primary's route_app commits.  NATed clients could
 *	  not reach a silent host through the backup host anyway, so closing
 *	  costs no availability.
 *
 *	  How: one persistent libpq connection to the routed node's own address
 *	  (from barman_ha_nat's configuration), `SELECT 1` sent each
 *	  watch_interval_ms.  A slow answer is not silence: only a broken
 *	  connection is, and tcp_user_timeout breaks it when sent data stays
 *	  unacknowledged.  Then one bounded reconnect: a handshake without any
 *	  answer within probe_connect_ms (not a refusal, which a live host's
 *	  kernel sends) is silence.  The record goes into our state first (the
 *	  level check then leaves the endpoint closed instead of repairing
 *	  it), then `barman_ha_nat close NODE`, which refuses unless NODE is
 *	  still the recorded node: a decision on stale information cannot close
 *	  a new primary's endpoint.  While closed, a bare TCP handshake each
 *	  interval (no session: the node may be fenced by then); when the host
 *	  answers and the node still holds the endpoints, `route NODE app`
 *	  opens it again.
 *
 *	  Who is routed comes from `barman_ha_nat show`, read at the start,
 *	  whenever our state file changes (a promote records there), after a
 *	  refused or failed call, and at least every minute (each show is one
 *	  syslog line of barman_ha_nat's: not every interval).
 *
 *-------------------------------------------------------------------------
 */
#include "orchestrator.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define VIEW_MAX_AGE_MS	60000
#define VIEW_RETRY_MS	1000

static volatile sig_atomic_t stop_requested = 0;
static volatile sig_atomic_t reload_requested = 0;

static void
on_stop(int sig)
{
	(void) sig;
	stop_requested = 1;
}

static void
on_hup(int sig)
{
	(void) sig;
	reload_requested = 1;
}

/*
 * Without SA_RESTART: a signal ends the wait at once.  Installed after the
 * first barman_ha_nat call: run.c puts its own handlers (end the child,
 * exit) in place on its first child, and ours must replace them.
 */
static void
watch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
}

/* One line per state change, on stderr and to syslog (libpq's messages span lines). */
static void
note(int level, const char *fmt,...) __attribute__((format(printf, 2, 3)));
static void
note(int level, const char *fmt,...)
{
	char		msg[700];
	char	   *p;
	va_list		ap;

	va_start(ap, fmt);
	one_line(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p = msg + strlen(msg);
	while (p > msg && p[-1] == ' ')
		*--p = '\0';
	fprintf(stderr, "barman_ha_orchestrator: watch: %s\n", msg);
	fflush(stderr);
	syslog(level, "watch: %s", msg);
}

struct watch
{
	struct config cfg;
	struct nat_view view;
	bool		view_ok;
	double		view_at;		/* now_ms() of the last show */
	long long	ostate_seen;	/* the state file's mtime then */
	char		node[BHA_NAME_MAX + 1];	/* the routed node watched, or "" */
	char		conninfo[800];
	PGconn	   *conn;			/* the persistent connection, or NULL */
	bool		in_flight;		/* a SELECT 1 awaits its answer */
	bool		closed;			/* we closed node's app endpoint */
	char		last[300];		/* the last reported condition */
};

/* Report a condition once, not every interval it lasts. */
static void
condition(struct watch *w, int level, const char *fmt,...) __attribute__((format(printf, 3, 4)));
static void
condition(struct watch *w, int level, const char *fmt,...)
{
	char		msg[300];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(msg, w->last) == 0)
		return;
	snprintf(w->last, sizeof(w->last), "%s", msg);
	note(level, "%s", msg);
}

static void
drop_conn(struct watch *w)
{
	PQfinish(w->conn);
	w->conn = NULL;
	w->in_flight = false;
}

/*
 * The record in our state: NODE's app endpoint closed by us since now
 * (node non-NULL), or no longer.  Under the state lock, as promote's.
 */
static int
record_closed(const struct watch *w, const char *node)
{
	struct ostate st;
	int			fd = ostate_lock(&w->cfg);
	int			rc = -1;

	if (fd < 0)
		return -1;
	if (ostate_read(&w->cfg, &st) == 0)
	{
		snprintf(st.watch_closed, sizeof(st.watch_closed), "%s", node ? node : "");
		st.watch_closed_at = node ? (long) time(NULL) : 0;
		rc = ostate_write(&w->cfg, &st);
	}
	close(fd);
	return rc;
}

/*
 * barman_ha_nat show, and what follows from it: the node to watch, its
 * conninfo, and whether our record still applies (a claim by another node
 * ends it).
 */
static void
refresh_view(struct watch *w)
{
	struct ostate st;
	const struct node *n;
	char		addr[INET_ADDRSTRLEN];

	w->view_at = now_ms();
	w->ostate_seen = ostate_mtime(&w->cfg);
	if (nat_show(&w->cfg, &w->view) != 0)
	{
		w->view_ok = false;
		return;
	}
	w->view_ok = true;
	n = w->view.routed ? view_node(&w->view, w->view.routed_node) : NULL;
	if (n == NULL || strcmp(n->name, w->node) != 0)
	{
		drop_conn(w);
		w->closed = false;
		w->last[0] = '\0';
		snprintf(w->node, sizeof(w->node), "%s", n ? n->name : "");
		note(LOG_INFO, "watching %s", n ? n->name : "nothing: no node holds the endpoints");
		if (n == NULL)
			return;
		inet_ntop(AF_INET, &n->addr, addr, sizeof(addr));
		snprintf(w->conninfo, sizeof(w->conninfo),
				 "%s host=%s port=%u application_name=barman_ha_watch tcp_user_timeout=%d",
				 w->cfg.claim_conninfo, addr, n->port, 2 * w->cfg.watch_interval_ms + 100);
	}
	if (ostate_read(&w->cfg, &st) != 0 || st.watch_closed[0] == '\0')
		return;
	if (strcmp(st.watch_closed, w->node) == 0 && strcmp(w->view.target[1], "closed") == 0)
	{
		if (!w->closed)
			note(LOG_WARNING, "%s's app endpoint stays closed (recorded since %ld)",
				 w->node, st.watch_closed_at);
		w->closed = true;
		return;
	}
	/* another node claimed, or the endpoint was opened meanwhile */
	if (record_closed(w, NULL) == 0)
		note(LOG_INFO, "record of %s's closed app endpoint cleared: %s", st.watch_closed,
			 strcmp(st.watch_closed, w->node) != 0 ? "another node holds the endpoints" :
			 "the endpoint is open");
	w->closed = false;
}

/* barman_ha_nat VERB NODE [app]: 0, or -1 (said, and the view read again) */
static int
nat_change(struct watch *w, const char *verb, const char *a2)
{
	char		reply[300];
	int			rc = nat_call(&w->cfg, reply, sizeof(reply), verb, w->node, a2);

	if (rc == BHA_EXIT_OK)
		return 0;
	note(LOG_WARNING, "barman_ha_nat %s %s %s: %s", verb, w->node,
		 rc == BHA_EXIT_FENCED ? "refused" : "failed", reply);
	w->view_ok = false;
	return -1;
}

/* The host is silent: record, then close (barman_ha_nat checks NODE again). */
static void
close_app(struct watch *w, const char *why)
{
	if (record_closed(w, w->node) != 0)
	{
		condition(w, LOG_ERR, "%s is silent (%s), but the record cannot be written", w->node, why);
		return;
	}
	if (nat_change(w, "close", NULL) != 0)
	{
		record_closed(w, NULL);
		return;
	}
	w->closed = true;
	w->last[0] = '\0';
	note(LOG_WARNING, "%s is silent (%s): app endpoint closed", w->node, why);
}

/*
 * While closed: a bounded handshake each interval.  When the host answers,
 * the view is read again first (a claim by another node may have come
 * meanwhile: then the new node is watched and the record cleared), and
 * only a node that still holds the endpoints gets its app endpoint back.
 */
static void
probe_closed(struct watch *w)
{
	const struct node *n = view_node(&w->view, w->node);

	if (n == NULL || tcp_reach(n->addr, n->port, w->cfg.probe_connect_ms) == REACH_SILENT)
		return;
	refresh_view(w);
	if (!w->view_ok || !w->closed)
		return;
	if (nat_change(w, "route", BHA_ENDPOINT_APP) != 0)
		return;
	record_closed(w, NULL);
	w->closed = false;
	w->last[0] = '\0';
	note(LOG_INFO, "%s answers again: app endpoint open", w->node);
}

/* Connect when there is no connection; silence closes the app endpoint. */
static void
connect_node(struct watch *w)
{
	char		why[600];
	bool		silent;

	w->conn = pq_connect(w->conninfo, w->cfg.probe_timeout_ms, w->cfg.probe_connect_ms,
						 &silent, why, sizeof(why));
	if (w->conn != NULL)
		condition(w, LOG_INFO, "connected to %s", w->node);
	else if (silent)
		close_app(w, why);
	else
		condition(w, LOG_WARNING, "%s answers but no session: %s", w->node, why);
}

/* Read what arrived; false when the connection broke. */
static bool
consume(struct watch *w)
{
	PGresult   *r;

	if (!PQconsumeInput(w->conn))
		return false;
	while (w->in_flight && !PQisBusy(w->conn))
	{
		if ((r = PQgetResult(w->conn)) == NULL)
			w->in_flight = false;
		PQclear(r);
	}
	return true;
}

/* One interval with a connection: send a query, wait for answers until tick. */
static void
interval_connected(struct watch *w, double tick)
{
	bool		broken = false;

	if (!w->in_flight)
	{
		broken = !PQsendQuery(w->conn, "SELECT 1");
		w->in_flight = !broken;
	}
	while (!broken && !stop_requested && now_ms() < tick)
	{
		struct pollfd pfd = {.fd = PQsocket(w->conn),.events = POLLIN};
		int			rc = poll(&pfd, 1, (int) (tick - now_ms()) + 1);

		if (rc > 0)
			broken = !consume(w);
		else if (rc < 0 && errno != EINTR)
			break;
	}
	if (!broken)
		return;
	note(LOG_WARNING, "connection to %s broken: %s", w->node, PQerrorMessage(w->conn));
	drop_conn(w);
	w->last[0] = '\0';
	connect_node(w);
}

static void
sleep_until(double tick)
{
	double		left;

	while (!stop_requested && (left = tick - now_ms()) > 0)
		poll(NULL, 0, (int) left + 1);
}

int
cmd_watch(const struct config *cfg_in)
{
	static struct watch w;

	w.cfg = *cfg_in;
	note(LOG_INFO, "started, every %d ms", w.cfg.watch_interval_ms);
	refresh_view(&w);
	watch_signals();
	while (!stop_requested)
	{
		double		tick;

		if (reload_requested)
		{
			struct config fresh;

			reload_requested = 0;
			if (config_load(&fresh, w.cfg.path) == BHA_EXIT_OK)
			{
				w.cfg = fresh;
				w.node[0] = '\0';	/* a new conninfo on the next view */
				w.view_ok = false;
				note(LOG_INFO, "configuration read again, every %d ms", w.cfg.watch_interval_ms);
			}
		}
		tick = now_ms() + w.cfg.watch_interval_ms;
		/* a show that failed is tried again after a second, not every interval */
		if ((!w.view_ok && now_ms() - w.view_at >= VIEW_RETRY_MS) ||
			ostate_mtime(&w.cfg) != w.ostate_seen || now_ms() - w.view_at >= VIEW_MAX_AGE_MS)
			refresh_view(&w);
		if (w.view_ok && w.node[0] && w.closed)
			probe_closed(&w);
		else if (w.view_ok && w.node[0] && w.conn == NULL)
			connect_node(&w);
		if (w.conn != NULL && !w.closed)
			interval_connected(&w, tick);
		sleep_until(tick);
	}
	drop_conn(&w);
	note(LOG_INFO, "stopped%s", w.closed ? ": the app endpoint stays closed (recorded)" : "");
	return BHA_EXIT_OK;
}
