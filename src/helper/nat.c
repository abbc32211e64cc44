/*-------------------------------------------------------------------------
 *
 * nat.c
 *	  The backup host's endpoints, in the legacy nat table through libiptc.
 *
 *	  repmgr_dnat (jumped from OUTPUT and PREROUTING) holds one rule per
 *	  routed endpoint, barman first, then app:
 *		-p tcp -d BACKUP --dport PORT -j DNAT --to-destination ADDR:PGPORT
 *	  repmgr_snat (jumped from POSTROUTING) holds one rule per distinct
 *	  target, in the same order:
 *		-p tcp -d ADDR --dport PGPORT -j SNAT --to-source BACKUP
 *	  or, when barman_snat_address or app_snat_address is set, one rule per
 *	  endpoint, told apart by the flow's original destination port, so that
 *	  pg_hba on the nodes can admit replication from Barman's source only:
 *		-p tcp -d ADDR --dport PGPORT -m conntrack --ctorigdstport PORT
 *		   -j SNAT --to-source SOURCE
 *
 *	  A switch rewrites both chains in memory and replaces the table with
 *	  one iptc_commit (one IPT_SO_SET_REPLACE), so a reader never sees a
 *	  chain without its rule.  Entries are built exactly as iptables 1.8.9
 *	  builds them (DNAT revision 2, SNAT revision 0), so iptables-legacy -S
 *	  prints the same lines and save/restore round-trips them.
 *
 *	  libiptc takes no lock: we take /run/xtables.lock like iptables does,
 *	  or a concurrent iptables could silently revert our commit.
 *
 *-------------------------------------------------------------------------
 */
#include "helper.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libiptc/libiptc.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_tcpudp.h>

#define MATCH_SIZE	(XT_ALIGN(sizeof(struct xt_entry_match)) + XT_ALIGN(sizeof(struct xt_tcp)))
#define DNAT_SIZE	(XT_ALIGN(sizeof(struct xt_entry_target)) + XT_ALIGN(sizeof(struct nf_nat_range2)))
#define SNAT_SIZE	(XT_ALIGN(sizeof(struct xt_entry_target)) + \
					 XT_ALIGN(sizeof(struct nf_nat_ipv4_multi_range_compat)))
#define JUMP_SIZE	XT_ALIGN(sizeof(struct xt_standard_target))
#define CT_SIZE		(XT_ALIGN(sizeof(struct xt_entry_match)) + \
					 XT_ALIGN(sizeof(struct xt_conntrack_mtinfo3)))
#define ENTRY_MAX	(sizeof(struct ipt_entry) + MATCH_SIZE + CT_SIZE + DNAT_SIZE + SNAT_SIZE)

/* One of our rules, as meaning rather than bytes (counters differ). */
struct prule
{
	bool		dnat;
	struct in_addr dst;			/* -d */
	uint16_t	dport;			/* --dport */
	struct in_addr to;			/* --to-destination / --to-source */
	uint16_t	toport;			/* 0 for SNAT */
	uint16_t	ctport;			/* SNAT per endpoint: -m conntrack
								 * --ctorigdstport, else 0 */
};

struct chains
{
	int			ndnat,
				nsnat;
	struct prule dnat[8],
				snat[8];
	bool		foreign;		/* a rule we did not make, or too many */
};

/* The three jumps `nat init` makes: builtin chain -> our chain. */
static const char *const jumps[][2] = {
	{"OUTPUT", CHAIN_DNAT},
	{"PREROUTING", CHAIN_DNAT},
	{"POSTROUTING", CHAIN_SNAT},
};

static int	lock_fd = -1;

static void
xt_unlock(void)
{
	if (lock_fd >= 0)
		close(lock_fd);			/* closing releases the flock */
	lock_fd = -1;
}

/* flock(LOCK_EX) on the lock iptables-legacy uses, waiting at most timeout. */
static int
xt_lock(const struct config *cfg)
{
	lock_fd = open(XTABLES_LOCK, O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock_fd < 0)
	{
		errorf("cannot open %s: %s", XTABLES_LOCK, strerror(errno));
		return -1;
	}
	if (flock_wait(lock_fd, cfg->lock_timeout) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		errorf("xtables lock %s still held after %d s", XTABLES_LOCK, cfg->lock_timeout);
	else
		errorf("cannot lock %s: %s", XTABLES_LOCK, strerror(errno));
	xt_unlock();
	return -1;
}

static void
label(xt_chainlabel out, const char *name)
{
	memset(out, 0, sizeof(xt_chainlabel));
	snprintf(out, sizeof(xt_chainlabel), "%s", name);
}

/*
 * -m conntrack --ctorigdstport PORT, as iptables 1.8.9 builds it: revision
 * 3, only XT_CONNTRACK_ORIGDST_PORT, the port in host order in both ends of
 * the range.  It tells the two endpoints' flows apart after DNAT, so each
 * endpoint can have a SNAT source of its own.
 */
static void
build_ct_match(void *at, uint16_t port)
{
	struct xt_entry_match *m = at;
	struct xt_conntrack_mtinfo3 *ct = (struct xt_conntrack_mtinfo3 *) m->data;

	memset(at, 0, CT_SIZE);
	m->u.match_size = CT_SIZE;
	strcpy(m->u.user.name, "conntrack");
	m->u.user.revision = 3;
	ct->match_flags = XT_CONNTRACK_ORIGDST_PORT;
	ct->origdst_port = ct->origdst_port_high = port;
}

/* -p tcp -d DST --dport DPORT -j DNAT/SNAT ... built as iptables builds it */
static struct ipt_entry *
build_rule(void *buf, const struct prule *r)
{
	struct ipt_entry *e = buf;
	struct xt_entry_match *m;
	struct xt_tcp *tcp;
	struct xt_entry_target *t;
	size_t		tsize = r->dnat ? DNAT_SIZE : SNAT_SIZE;

	memset(buf, 0, ENTRY_MAX);
	e->ip.dst = r->dst;
	e->ip.dmsk.s_addr = 0xffffffff;
	e->ip.proto = IPPROTO_TCP;
	e->target_offset = sizeof(struct ipt_entry) + MATCH_SIZE + (r->ctport ? CT_SIZE : 0);
	e->next_offset = e->target_offset + tsize;

	m = (struct xt_entry_match *) e->elems;
	m->u.match_size = MATCH_SIZE;
	strcpy(m->u.user.name, "tcp");
	tcp = (struct xt_tcp *) m->data;
	tcp->spts[1] = 0xffff;
	tcp->dpts[0] = tcp->dpts[1] = r->dport; /* host order in xt_tcp */
	if (r->ctport)
		build_ct_match((char *) m + MATCH_SIZE, r->ctport);

	t = (struct xt_entry_target *) ((char *) e + e->target_offset);
	t->u.target_size = tsize;
	if (r->dnat)
	{
		struct nf_nat_range2 *nr = (struct nf_nat_range2 *) t->data;

		strcpy(t->u.user.name, "DNAT");
		t->u.user.revision = 2;
		nr->flags = NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED;
		nr->min_addr.ip = nr->max_addr.ip = r->to.s_addr;
		/* network order in the NAT range */
		nr->min_proto.tcp.port = nr->max_proto.tcp.port = htons(r->toport);
	}
	else
	{
		struct nf_nat_ipv4_multi_range_compat *mr = (void *) t->data;

		strcpy(t->u.user.name, "SNAT");
		t->u.user.revision = 0;
		mr->rangesize = 1;
		mr->range[0].flags = NF_NAT_RANGE_MAP_IPS;
		mr->range[0].min_ip = mr->range[0].max_ip = r->to.s_addr;
	}
	return e;
}

static bool
is_plain_ip(const struct ipt_entry *e, uint8_t proto)
{
	static const struct ipt_ip zero;
	struct ipt_ip ip = e->ip;

	ip.dst.s_addr = 0;
	ip.proto = 0;
	if (proto != 0)
		ip.dmsk.s_addr = (ip.dmsk.s_addr == 0xffffffff) ? 0 : 1;
	return memcmp(&ip, &zero, sizeof(ip)) == 0 && e->ip.proto == proto &&
		(proto != 0 || e->ip.dst.s_addr == 0);
}

/* Read one of our rules back; false for anything else. */
static bool
parse_rule(const struct ipt_entry *e, bool dnat, struct prule *r)
{
	const struct xt_entry_match *m = (const void *) e->elems;
	const struct xt_tcp *tcp = (const void *) m->data;
	const struct xt_entry_target *t;
	uint16_t	ctport = 0;

	/* an optional second match: ours, byte for byte, or not our rule */
	if (!dnat && e->target_offset == sizeof(struct ipt_entry) + MATCH_SIZE + CT_SIZE)
	{
		const struct xt_entry_match *cm = (const void *) ((const char *) m + MATCH_SIZE);
		const struct xt_conntrack_mtinfo3 *ct = (const void *) cm->data;
		char		want[CT_SIZE] __attribute__((aligned(8)));

		ctport = ct->origdst_port;
		build_ct_match(want, ctport);
		if (ctport == 0 || cm->u.match_size != CT_SIZE ||
			strcmp(cm->u.user.name, "conntrack") != 0 || cm->u.user.revision != 3 ||
			memcmp(cm->data, ((struct xt_entry_match *) want)->data,
				   CT_SIZE - XT_ALIGN(sizeof(struct xt_entry_match))) != 0)
			return false;
	}
	else if (e->target_offset != sizeof(struct ipt_entry) + MATCH_SIZE)
		return false;
	if (!is_plain_ip(e, IPPROTO_TCP) ||
		m->u.match_size != MATCH_SIZE || strcmp(m->u.user.name, "tcp") != 0 ||
		tcp->spts[0] != 0 || tcp->spts[1] != 0xffff ||
		tcp->dpts[0] != tcp->dpts[1] || tcp->option || tcp->flg_mask ||
		tcp->invflags)
		return false;
	t = (const void *) ((const char *) e + e->target_offset);
	memset(r, 0, sizeof(*r));
	r->dnat = dnat;
	r->dst = e->ip.dst;
	r->dport = tcp->dpts[0];
	r->ctport = ctport;
	if (dnat)
	{
		const struct nf_nat_range2 *nr = (const void *) t->data;

		if (strcmp(t->u.user.name, "DNAT") != 0 || t->u.user.revision != 2 ||
			t->u.target_size != DNAT_SIZE ||
			nr->flags != (NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED) ||
			nr->min_addr.ip != nr->max_addr.ip ||
			nr->min_proto.tcp.port != nr->max_proto.tcp.port)
			return false;
		r->to.s_addr = nr->min_addr.ip;
		r->toport = ntohs(nr->min_proto.tcp.port);
	}
	else
	{
		const struct nf_nat_ipv4_multi_range_compat *mr = (const void *) t->data;

		if (strcmp(t->u.user.name, "SNAT") != 0 || t->u.user.revision != 0 ||
			t->u.target_size != SNAT_SIZE || mr->rangesize != 1 ||
			mr->range[0].flags != NF_NAT_RANGE_MAP_IPS ||
			mr->range[0].min_ip != mr->range[0].max_ip)
			return false;
		r->to.s_addr = mr->range[0].min_ip;
	}
	return true;
}

static void
read_chain(struct xtc_handle *h, const char *name, bool dnat, struct chains *c)
{
	int		   *n = dnat ? &c->ndnat : &c->nsnat;
	struct prule *arr = dnat ? c->dnat : c->snat;

	if (!iptc_is_chain(name, h))
		return;
	for (const struct ipt_entry *e = iptc_first_rule(name, h); e;
		 e = iptc_next_rule(e, h))
	{
		if (*n >= 8 || !parse_rule(e, dnat, &arr[*n]))
		{
			c->foreign = true;
			continue;
		}
		(*n)++;
	}
}

static bool
has_jump(struct xtc_handle *h, const char *from, const char *to)
{
	for (const struct ipt_entry *e = iptc_first_rule(from, h); e;
		 e = iptc_next_rule(e, h))
	{
		const char *t = iptc_get_target(e, h);

		if (t && strcmp(t, to) == 0 && is_plain_ip(e, 0) &&
			e->target_offset == sizeof(struct ipt_entry))
			return true;
	}
	return false;
}

/* Chains and jumps, in the handle only.  Returns -1 on error. */
static int
ensure_chains(struct xtc_handle *h, bool *changed)
{
	xt_chainlabel l;

	for (int i = 0; i < 2; i++)
	{
		const char *c = i == 0 ? CHAIN_DNAT : CHAIN_SNAT;

		if (!iptc_is_chain(c, h))
		{
			label(l, c);
			if (!iptc_create_chain(l, h))
				return -1;
			*changed = true;
		}
	}
	for (size_t i = 0; i < sizeof(jumps) / sizeof(jumps[0]); i++)
	{
		union
		{
			struct ipt_entry e;
			char		buf[sizeof(struct ipt_entry) + JUMP_SIZE];
		}			j;
		struct xt_entry_target *t;

		if (has_jump(h, jumps[i][0], jumps[i][1]))
			continue;
		memset(&j, 0, sizeof(j));
		j.e.target_offset = sizeof(struct ipt_entry);
		j.e.next_offset = sizeof(struct ipt_entry) + JUMP_SIZE;
		t = (struct xt_entry_target *) j.e.elems;
		t->u.target_size = JUMP_SIZE;
		snprintf(t->u.user.name, sizeof(t->u.user.name), "%s", jumps[i][1]);
		label(l, jumps[i][0]);
		if (!iptc_append_entry(l, &j.e, h))
			return -1;
		*changed = true;
	}
	return 0;
}

static bool
same_rules(const struct prule *a, int na, const struct prule *b, int nb)
{
	if (na != nb)
		return false;
	for (int i = 0; i < na; i++)
		if (a[i].dst.s_addr != b[i].dst.s_addr || a[i].dport != b[i].dport ||
			a[i].to.s_addr != b[i].to.s_addr || a[i].toport != b[i].toport ||
			a[i].ctport != b[i].ctport)
			return false;
	return true;
}

static void
routes_from(const struct config *cfg, const struct chains *c,
			struct route routes[EP_COUNT])
{
	memset(routes, 0, sizeof(struct route) * EP_COUNT);
	for (int i = 0; i < c->ndnat; i++)
		for (int ep = 0; ep < EP_COUNT; ep++)
			if (c->dnat[i].dst.s_addr == cfg->backup_address.s_addr &&
				c->dnat[i].dport == cfg->ports[ep] && !routes[ep].set)
			{
				routes[ep].set = true;
				routes[ep].addr = c->dnat[i].to;
				routes[ep].port = c->dnat[i].toport;
			}
}

/*
 * Do fn on a fresh handle under the lock, committing if it changed
 * anything; retry when the kernel says the table moved under us (EAGAIN).
 */
typedef int (*nat_fn) (const struct config *cfg, struct xtc_handle *h,
					   const void *arg, bool *changed);

static int
nat_transaction(const struct config *cfg, nat_fn fn, const void *arg, bool *changed)
{
	int			rc = -1;

	if (xt_lock(cfg) != 0)
		return -1;
	for (int attempt = 0; attempt < 10; attempt++)
	{
		struct xtc_handle *h = iptc_init("nat");
		bool		ch = false;

		if (h == NULL)
		{
			errorf("cannot read the nat table: %s", iptc_strerror(errno));
			break;
		}
		if (fn(cfg, h, arg, &ch) != 0)
		{
			errorf("cannot change the nat table: %s", iptc_strerror(errno));
			iptc_free(h);
			break;
		}
		if (!ch)
		{
			iptc_free(h);
			*changed = false;
			rc = 0;
			break;
		}
		if (iptc_commit(h))
		{
			iptc_free(h);
			*changed = true;
			rc = 0;
			break;
		}
		iptc_free(h);
		if (errno != EAGAIN)
		{
			errorf("cannot commit the nat table: %s", iptc_strerror(errno));
			break;
		}
	}
	xt_unlock();
	return rc;
}

static int
set_ip_forward(void)
{
	char		c = 0;
	int			fd = open("/proc/sys/net/ipv4/ip_forward", O_RDWR | O_CLOEXEC);
	int			rc = 0;

	if (fd < 0)
		return -1;
	if (read(fd, &c, 1) != 1 || c != '1')
		rc = (pwrite(fd, "1\n", 2, 0) == 2) ? 0 : -1;
	close(fd);
	return rc;
}

static int
init_fn(const struct config *cfg, struct xtc_handle *h, const void *arg,
		bool *changed)
{
	(void) cfg;
	(void) arg;
	return ensure_chains(h, changed);
}

int
nat_init(const struct config *cfg, bool *changed)
{
	if (nat_transaction(cfg, init_fn, NULL, changed) != 0)
		return -1;
	if (set_ip_forward() != 0)
	{
		errorf("cannot set net.ipv4.ip_forward=1: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct route_req
{
	const struct node *node;
	int			epmask;
};

static int
route_fn(const struct config *cfg, struct xtc_handle *h, const void *arg,
		 bool *changed)
{
	const struct route_req *req = arg;
	struct chains cur = {0};
	struct route routes[EP_COUNT];
	struct prule dn[EP_COUNT],
				sn[EP_COUNT];
	int			nd = 0,
				ns = 0;
	xt_chainlabel ld, ls;
	char		buf[ENTRY_MAX] __attribute__((aligned(8)));

	if (ensure_chains(h, changed) != 0)
		return -1;
	read_chain(h, CHAIN_DNAT, true, &cur);
	read_chain(h, CHAIN_SNAT, false, &cur);
	routes_from(cfg, &cur, routes);

	/* What the chains must hold: the other endpoint stays as it is. */
	for (int ep = 0; ep < EP_COUNT; ep++)
	{
		struct prule r = {.dnat = true,.dst = cfg->backup_address,
		.dport = cfg->ports[ep]};
		bool		dup = false;

		if (req->epmask & (1 << ep))
		{
			r.to = req->node->addr;
			r.toport = req->node->port;
		}
		else if (routes[ep].set)
		{
			r.to = routes[ep].addr;
			r.toport = routes[ep].port;
		}
		else
			continue;
		dn[nd++] = r;
		if (cfg->snat_per_endpoint)
		{
			/* each endpoint's flows leave with a source of their own */
			sn[ns++] = (struct prule)
			{
				.dnat = false,.dst = r.to,.dport = r.toport,
					.to = cfg->snat_address[ep],.ctport = cfg->ports[ep]
			};
			continue;
		}
		for (int i = 0; i < ns; i++)
			dup |= (sn[i].dst.s_addr == r.to.s_addr && sn[i].dport == r.toport);
		if (!dup)
			sn[ns++] = (struct prule)
		{
			.dnat = false,.dst = r.to,.dport = r.toport,
				.to = cfg->backup_address
		};
	}
	if (!cur.foreign && same_rules(cur.dnat, cur.ndnat, dn, nd) &&
		same_rules(cur.snat, cur.nsnat, sn, ns))
		return 0;

	label(ld, CHAIN_DNAT);
	label(ls, CHAIN_SNAT);
	if (!iptc_flush_entries(ld, h) || !iptc_flush_entries(ls, h))
		return -1;
	for (int i = 0; i < nd; i++)
		if (!iptc_append_entry(ld, build_rule(buf, &dn[i]), h))
			return -1;
	for (int i = 0; i < ns; i++)
		if (!iptc_append_entry(ls, build_rule(buf, &sn[i]), h))
			return -1;
	*changed = true;
	return 0;
}

int
nat_route(const struct config *cfg, const struct node *node, int epmask,
		  bool *changed)
{
	struct route_req req = {node, epmask};

	if (nat_transaction(cfg, route_fn, &req, changed) != 0)
		return -1;
	/* a rebooted host without nat init at boot: forwarding is off too */
	if (set_ip_forward() != 0)
	{
		errorf("cannot set net.ipv4.ip_forward=1: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Reading needs no lock: iptc_init takes one consistent snapshot. */
int
nat_read(const struct config *cfg, struct route routes[EP_COUNT], bool *chains_ok)
{
	struct xtc_handle *h = iptc_init("nat");
	struct chains cur = {0};

	if (h == NULL)
	{
		errorf("cannot read the nat table: %s", iptc_strerror(errno));
		return -1;
	}
	*chains_ok = iptc_is_chain(CHAIN_DNAT, h) && iptc_is_chain(CHAIN_SNAT, h);
	for (size_t i = 0; *chains_ok && i < sizeof(jumps) / sizeof(jumps[0]); i++)
		*chains_ok = has_jump(h, jumps[i][0], jumps[i][1]);
	read_chain(h, CHAIN_DNAT, true, &cur);
	routes_from(cfg, &cur, routes);
	iptc_free(h);
	return 0;
}
