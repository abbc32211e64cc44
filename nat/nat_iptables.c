/*-------------------------------------------------------------------------
 *
 * nat_iptables.c
 *	  The libiptc backend: the endpoints in the legacy nat table.
 *	  repmgr_dnat (jumped from OUTPUT and PREROUTING) holds one rule per open
 *	  endpoint, barman first; a closed endpoint has none:
 *		-p tcp -d BACKUP --dport PORT -j DNAT --to-destination ADDR:PGPORT
 *	  repmgr_snat (jumped from POSTROUTING) holds one rule per target, or
 *	  with barman_snat_address / app_snat_address one per endpoint, for
 *	  the flows our DNAT made only (as the nftables backend):
 *		-p tcp -d ADDR --dport PGPORT -m conntrack --ctstate DNAT
 *		   [--ctorigdstport PORT] -j SNAT --to-source SOURCE
 *	  Entries are built byte for byte as iptables 1.8.9 does (DNAT rev 2, SNAT
 *	  rev 0), so iptables-legacy -S and save/restore show the same; a rule is
 *	  ours only if rebuilding it gives the same bytes.  One iptc_commit per
 *	  change.  libiptc takes no lock: we take /run/xtables.lock as iptables
 *	  does, or a concurrent iptables could silently revert our commit.
 *
 *-------------------------------------------------------------------------
 */
#include "nat.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <libiptc/libiptc.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_tcpudp.h>

#define XT_LOCK		"/run/xtables.lock"
#define SZ(t)		XT_ALIGN(sizeof(t))
#define TCP_SIZE	(SZ(struct xt_entry_match) + SZ(struct xt_tcp))
#define CT_SIZE		(SZ(struct xt_entry_match) + SZ(struct xt_conntrack_mtinfo3))
#define DNAT_SIZE	(SZ(struct xt_entry_target) + SZ(struct nf_nat_range2))
#define SNAT_SIZE	(SZ(struct xt_entry_target) + SZ(struct nf_nat_ipv4_multi_range_compat))
#define JUMP_SIZE	SZ(struct xt_standard_target)

/* One entry, aligned as libiptc wants it. */
typedef union
{
	struct ipt_entry e;
	char		b[sizeof(struct ipt_entry) + TCP_SIZE + CT_SIZE + DNAT_SIZE];
} rule;

/* The jumps init makes, builtin -> ours (libiptc's names are char[32]). */
static const xt_chainlabel jumps[3][2] = {
	{"OUTPUT", "repmgr_dnat"}, {"PREROUTING", "repmgr_dnat"}, {"POSTROUTING", "repmgr_snat"}
};
#define DNAT jumps[0][1]
#define SNAT jumps[2][1]

/*
 * -p tcp -d DST --dport DPORT, then -j DNAT --to-destination TO:TOPORT if
 * toport, else -m conntrack --ctstate DNAT [--ctorigdstport CTPORT] -j SNAT
 * --to-source TO.  Ports: host order in the matches, network order in NAT.
 */
static struct ipt_entry *
build(rule *r, struct in_addr dst, uint16_t dport, struct in_addr to, uint16_t toport,
	  uint16_t ctport)
{
	struct xt_entry_match *m = (void *) r->e.elems;
	struct xt_entry_match *c = (void *) (r->b + sizeof(struct ipt_entry) + TCP_SIZE);
	struct xt_tcp *tcp = (void *) m->data;
	struct xt_conntrack_mtinfo3 *ct = (void *) c->data;
	struct xt_entry_target *t;
	struct nf_nat_range2 *dn;
	struct nf_nat_ipv4_multi_range_compat *sn;

	memset(r, 0, sizeof(*r));
	r->e.ip.dst = dst;
	r->e.ip.dmsk.s_addr = 0xffffffff;
	r->e.ip.proto = IPPROTO_TCP;
	r->e.target_offset = sizeof(struct ipt_entry) + TCP_SIZE;
	r->e.next_offset = r->e.target_offset + DNAT_SIZE;
	if (!toport)
	{
		r->e.target_offset += CT_SIZE;
		r->e.next_offset = r->e.target_offset + SNAT_SIZE;
	}
	m->u.match_size = TCP_SIZE;
	strcpy(m->u.user.name, "tcp");
	tcp->spts[1] = 0xffff;
	tcp->dpts[0] = tcp->dpts[1] = dport;
	if (!toport)
	{
		c->u.match_size = CT_SIZE;
		strcpy(c->u.user.name, "conntrack");
		c->u.user.revision = 3;
		ct->match_flags = XT_CONNTRACK_STATE | (ctport ? XT_CONNTRACK_ORIGDST_PORT : 0);
		ct->state_mask = XT_CONNTRACK_STATE_DNAT;
		ct->origdst_port = ct->origdst_port_high = ctport;
	}
	t = (void *) (r->b + r->e.target_offset);
	t->u.target_size = r->e.next_offset - r->e.target_offset;
	dn = (void *) t->data;
	sn = (void *) t->data;
	strcpy(t->u.user.name, toport ? "DNAT" : "SNAT");
	if (toport)
	{
		t->u.user.revision = 2;
		dn->flags = NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED;
		dn->min_addr.ip = dn->max_addr.ip = to.s_addr;
		dn->min_proto.tcp.port = dn->max_proto.tcp.port = htons(toport);
	}
	else
	{
		sn->rangesize = 1;
		sn->range[0].flags = NF_NAT_RANGE_MAP_IPS;
		sn->range[0].min_ip = sn->range[0].max_ip = to.s_addr;
	}
	return &r->e;
}

/* Equal but for counters (the kernel keeps those). */
static bool
same(const struct ipt_entry *a, const struct ipt_entry *b)
{
	return memcmp(&a->ip, &b->ip, sizeof(a->ip)) == 0 && a->target_offset == b->target_offset &&
		a->next_offset == b->next_offset &&
		memcmp(a->elems, b->elems, a->next_offset - sizeof(*a)) == 0;
}

/* Index of a plain "-j TO" rule (no match at all) in chain FROM, or -1. */
static int
jump_index(struct xtc_handle *h, const char *from, const char *to)
{
	static const struct ipt_ip any;
	int			i = 0;

	for (const struct ipt_entry *e = iptc_first_rule(from, h); e; e = iptc_next_rule(e, h), i++)
		if (strcmp(iptc_get_target(e, h), to) == 0 && e->target_offset == sizeof(*e) &&
			memcmp(&e->ip, &any, sizeof(any)) == 0)
			return i;
	return -1;
}

/* Whether chain holds exactly the n rules r. */
static bool
chain_is(struct xtc_handle *h, const char *chain, const rule *r, int n)
{
	const struct ipt_entry *e = iptc_first_rule(chain, h);

	for (int i = 0; i < n; i++, e = iptc_next_rule(e, h))
		if (e == NULL || !same(e, &r[i].e))
			return false;
	return e == NULL;
}

/* Our chains and jumps, then the rules want[] asks for (if want), in the handle only. */
static int
change(const struct nat_config *cfg, struct xtc_handle *h, const struct target *want, bool *changed)
{
	rule		d[EP_COUNT], s[EP_COUNT], j;
	struct xt_entry_target *t = (void *) j.e.elems;
	int			nd = 0, ns = 0;

	memset(&j, 0, sizeof(j));
	j.e.target_offset = sizeof(struct ipt_entry);
	j.e.next_offset = sizeof(struct ipt_entry) + JUMP_SIZE;
	t->u.target_size = JUMP_SIZE;
	for (int i = 0; i < 3; i++)
	{
		if (!iptc_is_chain(jumps[i][1], h) && !iptc_create_chain(jumps[i][1], h))
			return -1;
		if (jump_index(h, jumps[i][0], jumps[i][1]) >= 0)
			continue;
		strcpy(t->u.user.name, jumps[i][1]);
		if (!iptc_append_entry(jumps[i][0], &j.e, h))
			return -1;
		*changed = true;
	}
	for (int ep = 0; want && ep < EP_COUNT; ep++)
	{
		if (!want[ep].set)
			continue;
		build(&d[nd++], cfg->backup_address, cfg->ports[ep], want[ep].addr, want[ep].port, 0);
		/* one SNAT rule per target, unless each endpoint has its source */
		if (ep == 0 || cfg->snat_per_endpoint || !same_target(&want[0], &want[1]))
			build(&s[ns++], want[ep].addr, want[ep].port, cfg->snat_address[ep], 0,
				  cfg->snat_per_endpoint ? cfg->ports[ep] : 0);
	}
	if (!want || (chain_is(h, DNAT, d, nd) && chain_is(h, SNAT, s, ns)))
		return 0;
	if (!iptc_flush_entries(DNAT, h) || !iptc_flush_entries(SNAT, h))
		return -1;
	for (int i = 0; i < nd; i++)
		if (!iptc_append_entry(DNAT, &d[i].e, h))
			return -1;
	for (int i = 0; i < ns; i++)
		if (!iptc_append_entry(SNAT, &s[i].e, h))
			return -1;
	*changed = true;
	return 0;
}

/*
 * change() on a fresh copy of the table under the xtables lock, committed
 * if it changed anything; again if the kernel says the table moved (EAGAIN).
 */
static int
ipt_route(const struct nat_config *cfg, const struct target *want, bool *changed)
{
	int			lock = open(XT_LOCK, O_CREAT | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
	int			rc = -1;

	*changed = false;
	if (lock < 0)
	{
		errorf("cannot open %s: %m", XT_LOCK);
		return -1;
	}
	if (lock_or_say(lock, XT_LOCK, cfg->lock_timeout, "") != 0)
	{
		close(lock);
		return -1;
	}
	for (int attempt = 0; attempt < 10; attempt++)
	{
		struct xtc_handle *h = iptc_init("nat");
		bool		ch = false;
		bool		again = false;

		if (h && change(cfg, h, want, &ch) == 0 && (!ch || iptc_commit(h)))
		{
			rc = 0;
			*changed = ch;
		}
		else if (errno == EAGAIN && h && ch && attempt < 9)
			again = true;		/* the table moved under us */
		else
			errorf("nat table: %s", iptc_strerror(errno));
		if (h)
			iptc_free(h);
		if (!again)
			break;
	}
	close(lock);				/* releases the lock */
	return rc;
}

/* Reading needs no lock: iptc_init takes one consistent snapshot. */
static int
ipt_read(const struct nat_config *cfg, struct target got[EP_COUNT], int *have)
{
	struct xtc_handle *h = iptc_init("nat");
	const struct xt_tcp *tcp;
	const struct nf_nat_range2 *nr;
	rule		r;
	bool		dn, sn, ready;

	memset(got, 0, sizeof(struct target) * EP_COUNT);
	*have = 0;
	if (h == NULL && (errno == ENOENT || errno == ENOPROTOOPT))
		return 0;				/* a kernel without legacy xtables holds none of ours */
	if (h == NULL)
	{
		errorf("cannot read the nat table: %s", iptc_strerror(errno));
		return -1;
	}
	dn = iptc_is_chain(DNAT, h);
	sn = iptc_is_chain(SNAT, h);
	ready = dn && sn;
	for (int i = 0; i < 3; i++)
		ready = ready && jump_index(h, jumps[i][0], jumps[i][1]) >= 0;
	*have = dn || sn;
	if (ready)
		*have = 2;
	/* a DNAT entry is an endpoint's if rebuilding it from what it says gives the same bytes */
	for (const struct ipt_entry *e = ready ? iptc_first_rule(DNAT, h) : NULL; e;
		 e = iptc_next_rule(e, h))
	{
		const char *at = (const char *) e + e->target_offset;
		struct target t = {.set = true};

		if (e->target_offset != sizeof(*e) + TCP_SIZE ||
			e->next_offset != e->target_offset + DNAT_SIZE)
			continue;
		tcp = (const void *) ((const struct xt_entry_match *) e->elems)->data;
		nr = (const void *) ((const struct xt_entry_target *) at)->data;
		t.addr.s_addr = nr->min_addr.ip;
		t.port = ntohs(nr->min_proto.tcp.port);
		for (int ep = 0; ep < EP_COUNT; ep++)
			if (!got[ep].set && tcp->dpts[0] == cfg->ports[ep] &&
				same(e, build(&r, cfg->backup_address, cfg->ports[ep], t.addr, t.port, 0)))
				got[ep] = t;
	}
	iptc_free(h);
	return 0;
}

const struct nat_backend nat_iptables = {"iptables", ipt_read, ipt_route};
