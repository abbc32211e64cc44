/*-------------------------------------------------------------------------
 *
 * nat_nftables.c
 *	  The nftables backend: netlink through libnftnl and libmnl (neither the
 *	  nft program nor libnftables).  One table of ours (repmgr_barman_ha.nft
 *	  is the same as nft input; docs/nftables.md explains it):
 *
 *	  table ip repmgr_barman_ha
 *		map endpoints { type inet_service : ipv4_addr . inet_service }
 *			BACKUP's port -> node address . port.  A closed endpoint has no
 *			element: its SYN reaches the local stack, which resets it.
 *		map sources { type inet_service : ipv4_addr }
 *			BACKUP's port -> the source address of that endpoint's flows
 *		chains prerouting and output (nat, priority -100):
 *			ip daddr BACKUP dnat ip to tcp dport map @endpoints
 *		chain postrouting (nat, priority 100): SNAT only for flows our DNAT
 *		rewrote, each endpoint's with its own source:
 *			meta l4proto tcp ct status dnat ct original ip daddr BACKUP
 *			snat ip to ct original proto-dst map @sources
 *
 *	  Every change is one netlink batch, one kernel transaction.  A route
 *	  flushes @endpoints and adds the new elements: packets and readers see
 *	  the old elements or the new ones, never none, and a flush cannot fail
 *	  on an element someone else removed.  init, and a route finding the
 *	  table missing or changed, re-create it in one batch ("add table; delete
 *	  table; add table ...") keeping the routing.  The check compares our
 *	  rules as the kernel dumps them, and @sources, with what we would make;
 *	  a chain or map cannot change type in place and deleting one takes our
 *	  rules with it.
 *
 *-------------------------------------------------------------------------
 */
#include "nat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#define TABLE		"repmgr_barman_ha"
#define TYPE_IPADDR	7			/* nft's type numbers, so nft lists our maps */
#define TYPE_INET_SERVICE 13
#define D			0x100		/* ex(): a data attribute, then pointer, length */

enum { M_EP, M_SRC };			/* our maps */
static const struct { const char *name; uint32_t dtype, dlen; } maps[] = {
	{"endpoints", TYPE_IPADDR << 6 | TYPE_INET_SERVICE, 8},	/* concatenation */
	{"sources", TYPE_IPADDR, 4},
};
static const struct { const char *name; uint32_t hook; int32_t prio; } chains[] = {
	{"prerouting", NF_INET_PRE_ROUTING, -100},	/* DNAT */
	{"output", NF_INET_LOCAL_OUT, -100},	/* DNAT */
	{"postrouting", NF_INET_POST_ROUTING, 100},	/* SNAT */
};

/* What the kernel holds of ours. */
struct seen
{
	const struct nat_config *cfg;
	int			m;				/* the map being dumped */
	bool		missing, foreign[2];	/* a map; an element not of our ports */
	struct target el[2][EP_COUNT];	/* elements (sources: addr only) */
	size_t		len;
	char		rules[4096];	/* our rules, as nftnl_rule_snprintf prints */
};

static char batch[16384];
static size_t blen;
static struct nlmsghdr *last;
static uint32_t seq;
static bool nomem;

/* Send a request or a batch; run cb on the replies until done, ack or error. */
static int
talk(const void *req, size_t len, mnl_cb_t cb, void *data)
{
	static char buf[65536];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	int			rc = -1,
				n,
				err;

	if (nl && mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) == 0 &&
		mnl_socket_sendto(nl, req, len) >= 0)
		do
		{
			n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
			rc = n <= 0 ? -1 : mnl_cb_run(buf, n, 0, mnl_socket_get_portid(nl), cb, data);
		} while (rc > 0);
	err = errno;
	if (nl)
		mnl_socket_close(nl);
	errno = err;
	return rc < 0 ? -1 : 0;
}

/* A request about our table (and map set): GET with an ack, or a DUMP */
static int
get(uint16_t type, uint16_t flags, const char *set, mnl_cb_t cb, void *data)
{
	char		req[256];
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(req, type, NFPROTO_IPV4, flags, ++seq);

	mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, TABLE); /* attribute 1 in every type */
	if (set)
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set);
	return talk(nlh, nlh->nlmsg_len, cb, data);
}

/* Start the batch's next message, or the batch (NFNL_MSG_BATCH_BEGIN). */
static struct nlmsghdr *
msg(uint16_t type, uint16_t flags)
{
	blen = type == NFNL_MSG_BATCH_BEGIN ? 0 : blen + NLMSG_ALIGN(last->nlmsg_len);
	nomem |= blen > sizeof(batch) - 4096;	/* can't happen: 3 KB at most */
	if (type == NFNL_MSG_BATCH_BEGIN)
		return last = nftnl_batch_begin(batch, ++seq);
	return last = nftnl_nlmsg_build_hdr(batch + blen, type, NFPROTO_IPV4, flags, ++seq);
}

/* Send the batch; the ack of its last message says it was committed. */
static int
commit(const char *what)
{
	last->nlmsg_flags |= NLM_F_ACK;
	blen += NLMSG_ALIGN(last->nlmsg_len);
	last = nftnl_batch_end(batch + blen, ++seq);
	blen += NLMSG_ALIGN(last->nlmsg_len);
	errno = nomem ? ENOMEM : 0;
	if (!nomem && talk(batch, blen, NULL, NULL) == 0)
		return 0;
	errorf("nftables: cannot %s: %s", what, strerror(errno));
	return -1;
}

/* add the table's "add table; delete table; add table" or a part of it */
static void
tables(int n)
{
	static const uint16_t t[] = {NFT_MSG_NEWTABLE, NFT_MSG_DELTABLE, NFT_MSG_NEWTABLE};

	for (int i = 0; i < n; i++)
		mnl_attr_put_strz(msg(t[i], NLM_F_CREATE), NFTA_TABLE_NAME, TABLE);
}

/* One expression: (attribute, u32) pairs, (D | attribute, ptr, len), -1 */
static void
ex(struct nftnl_rule *r, const char *name, ...)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);
	va_list		ap;
	int			a;

	if ((nomem |= e == NULL))
		return;
	va_start(ap, name);
	while ((a = va_arg(ap, int)) >= 0)
		if (a & D)
		{
			const void *p = va_arg(ap, const void *);

			nftnl_expr_set(e, a & ~D, p, va_arg(ap, uint32_t));
		}
		else
			nftnl_expr_set_u32(e, a, va_arg(ap, uint32_t));
	va_end(ap);
	nftnl_rule_add_expr(r, e);
}

#define CMP(r, op, p, n) ex(r, "cmp", NFTNL_EXPR_CMP_SREG, 1, NFTNL_EXPR_CMP_OP, op, \
							D | NFTNL_EXPR_CMP_DATA, p, n, -1)
#define LOAD(r, what, key, ...) ex(r, what, NFTNL_EXPR_##key, __VA_ARGS__, -1)

/* The rule of chains[i], expression for expression as nft 1.0.6 makes it. */
static struct nftnl_rule *
rule(const struct nat_config *cfg, int i)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	bool		dnat = chains[i].hook != NF_INET_POST_ROUTING;
	uint8_t		tcp = IPPROTO_TCP;
	uint32_t	status = IPS_DST_NAT,
				zero = 0,
				flags = NF_NAT_RANGE_MAP_IPS | (dnat ? NF_NAT_RANGE_PROTO_SPECIFIED : 0);
	const char *map = maps[dnat ? M_EP : M_SRC].name;

	if ((nomem |= r == NULL))
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_IPV4);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chains[i].name);
	if (dnat)					/* ip daddr BACKUP */
	{
		LOAD(r, "payload", PAYLOAD_DREG, 1, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER,
			 NFTNL_EXPR_PAYLOAD_OFFSET, 16, NFTNL_EXPR_PAYLOAD_LEN, 4);
		CMP(r, NFT_CMP_EQ, &cfg->backup_address, 4);
	}
	LOAD(r, "meta", META_KEY, NFT_META_L4PROTO, NFTNL_EXPR_META_DREG, 1);
	CMP(r, NFT_CMP_EQ, &tcp, 1);
	if (dnat)					/* tcp dport */
		LOAD(r, "payload", PAYLOAD_DREG, 1, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_TRANSPORT_HEADER,
			 NFTNL_EXPR_PAYLOAD_OFFSET, 2, NFTNL_EXPR_PAYLOAD_LEN, 2);
	else						/* ct status dnat ct original ip daddr BACKUP */
	{
		LOAD(r, "ct", CT_KEY, NFT_CT_STATUS, NFTNL_EXPR_CT_DREG, 1);
		LOAD(r, "bitwise", BITWISE_SREG, 1, NFTNL_EXPR_BITWISE_DREG, 1, NFTNL_EXPR_BITWISE_LEN, 4,
			 D | NFTNL_EXPR_BITWISE_MASK, &status, 4, D | NFTNL_EXPR_BITWISE_XOR, &zero, 4);
		CMP(r, NFT_CMP_NEQ, &zero, 4);
		LOAD(r, "ct", CT_KEY, NFT_CT_DST_IP, NFTNL_EXPR_CT_DIR, IP_CT_DIR_ORIGINAL,
			 NFTNL_EXPR_CT_DREG, 1);
		CMP(r, NFT_CMP_EQ, &cfg->backup_address, 4);
		LOAD(r, "ct", CT_KEY, NFT_CT_PROTO_DST, NFTNL_EXPR_CT_DIR, IP_CT_DIR_ORIGINAL,
			 NFTNL_EXPR_CT_DREG, 1);
	}
	LOAD(r, "lookup", LOOKUP_SREG, 1, NFTNL_EXPR_LOOKUP_DREG, 1, NFTNL_EXPR_LOOKUP_FLAGS, 0,
		 D | NFTNL_EXPR_LOOKUP_SET, map, strlen(map) + 1);
	/* as the kernel dumps it: max = min; the port in the 4-byte register after */
	LOAD(r, "nat", NAT_TYPE, dnat ? NFT_NAT_DNAT : NFT_NAT_SNAT, NFTNL_EXPR_NAT_FAMILY,
		 NFPROTO_IPV4, NFTNL_EXPR_NAT_REG_ADDR_MIN, 1, NFTNL_EXPR_NAT_REG_ADDR_MAX, 1,
		 NFTNL_EXPR_NAT_FLAGS, flags, dnat ? NFTNL_EXPR_NAT_REG_PROTO_MIN : -1, NFT_REG32_01,
		 NFTNL_EXPR_NAT_REG_PROTO_MAX, NFT_REG32_01);
	return r;
}

/* Add a rule to the text as the kernel dumps it, without its handle. */
static void
describe(struct seen *s, struct nftnl_rule *r)
{
	nftnl_rule_unset(r, NFTNL_RULE_HANDLE);
	nftnl_rule_unset(r, NFTNL_RULE_POSITION);
	if (s->len < sizeof(s->rules))
		s->len += nftnl_rule_snprintf(s->rules + s->len, sizeof(s->rules) - s->len, r,
									  NFTNL_OUTPUT_DEFAULT, 0);
}

/* Add our chains, maps, and rules to the batch. */
static void
objects(const struct nat_config *cfg)
{
	for (int i = 0; i < 3; i++)
	{
		struct nftnl_chain *c = nftnl_chain_alloc();

		if ((nomem |= c == NULL))
			return;
		nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, TABLE);
		nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, chains[i].name);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, chains[i].hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, chains[i].prio);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "nat");
		nftnl_chain_nlmsg_build_payload(msg(NFT_MSG_NEWCHAIN, NLM_F_CREATE), c);
		nftnl_chain_free(c);
	}
	for (int m = 0; m < 2; m++)
	{
		struct nftnl_set *s = nftnl_set_alloc();

		if ((nomem |= s == NULL))
			return;
		nftnl_set_set_str(s, NFTNL_SET_TABLE, TABLE);
		nftnl_set_set_str(s, NFTNL_SET_NAME, maps[m].name);
		nftnl_set_set_u32(s, NFTNL_SET_ID, m + 1);	/* required */
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, TYPE_INET_SERVICE);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 2);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, maps[m].dtype);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, maps[m].dlen);
		nftnl_set_nlmsg_build_payload(msg(NFT_MSG_NEWSET, NLM_F_CREATE), s);
		nftnl_set_free(s);
	}
	for (int i = 0; i < 3; i++)
	{
		struct nftnl_rule *r = rule(cfg, i);

		if (r)
			nftnl_rule_nlmsg_build_payload(msg(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND), r);
		nftnl_rule_free(r);
	}
}

/* Add the elements of map m: endpoints where el[] says, sources from cfg. */
static void
elements(const struct nat_config *cfg, int m, const struct target el[EP_COUNT])
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elem *e;
	int			n = 0;

	if ((nomem |= s == NULL))
		return;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, maps[m].name);
	for (int ep = 0; ep < EP_COUNT; ep++)
	{
		uint16_t	key = htons(cfg->ports[ep]),
					port = m == M_EP ? htons(el[ep].port) : 0;
		uint8_t		d[8] = {0};	/* address, port, padding to 4 bytes */

		if ((m == M_EP && !el[ep].set) || (nomem |= (e = nftnl_set_elem_alloc()) == NULL))
			continue;
		memcpy(d, m == M_EP ? &el[ep].addr : &cfg->snat_address[ep], 4);
		memcpy(d + 4, &port, 2);
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &key, 2);
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, d, maps[m].dlen);
		nftnl_set_elem_add(s, e);
		n++;
	}
	if (n > 0)					/* the kernel refuses an empty list */
		nftnl_set_elems_nlmsg_build_payload(msg(NFT_MSG_NEWSETELEM, NLM_F_CREATE), s);
	nftnl_set_free(s);
}

static int
rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	int			rc = r && nftnl_rule_nlmsg_parse(nlh, r) == 0 ? MNL_CB_OK : MNL_CB_ERROR;

	if (rc == MNL_CB_OK)
		describe(data, r);
	if (r)
		nftnl_rule_free(r);
	return rc;
}

static int
elem_cb(struct nftnl_set_elem *e, void *data)
{
	struct seen *s = data;
	uint32_t	klen = 0,
				dlen = 0;
	const uint8_t *k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen),
			   *d = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &dlen);
	int			ep = EP_COUNT;
	uint16_t	v;

	while (--ep >= 0 && !(klen == 2 && k[0] << 8 == (s->cfg->ports[ep] & 0xff00) &&
						  k[1] == (s->cfg->ports[ep] & 0xff)));
	if (ep < 0 || d == NULL || dlen != maps[s->m].dlen)
		return s->foreign[s->m] = true, 0;
	s->el[s->m][ep].set = true;
	memcpy(&s->el[s->m][ep].addr, d, 4);
	memcpy(&v, d + 4, 2);
	s->el[s->m][ep].port = s->m == M_EP ? ntohs(v) : 0;
	return 0;
}

static int
elems_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_set *set = nftnl_set_alloc();
	int			rc = set && nftnl_set_elems_nlmsg_parse(nlh, set) == 0 &&
		nftnl_set_elem_foreach(set, elem_cb, data) == 0 ? MNL_CB_OK : MNL_CB_ERROR;

	if (set)
		nftnl_set_free(set);
	return rc;
}

/* Dump our rules and maps (a dump that overlapped a change is repeated). */
static int
fetch(const struct nat_config *cfg, struct seen *s)
{
	for (int tries = 0; tries < 10; tries++)
	{
		int			rc;

		memset(s, 0, sizeof(*s));
		s->cfg = cfg;
		rc = get(NFT_MSG_GETRULE, NLM_F_DUMP, NULL, rule_cb, s);
		for (s->m = 0; rc == 0 && s->m < 2; s->m++)
			if ((rc = get(NFT_MSG_GETSETELEM, NLM_F_DUMP, maps[s->m].name, elems_cb, s)) != 0 &&
				errno == ENOENT)
				rc = 0, s->missing = true;	/* no such map, or no table */
		if (rc == 0 || errno != EINTR)
			return rc == 0 ? 0 : (errorf("nftables: cannot read table ip " TABLE ": %s",
										 strerror(errno)), -1);
	}
	errorf("nftables: table ip " TABLE " changes all the time");
	return -1;
}

/* Whether the table holds exactly what we would make for cfg. */
static bool
shaped(const struct nat_config *cfg, struct seen *got)
{
	struct seen want = {.cfg = cfg};

	for (int i = 0; i < 3; i++)
	{
		struct nftnl_rule *r = rule(cfg, i);

		if (r)
			describe(&want, r), nftnl_rule_free(r);
	}
	for (int ep = 0; ep < EP_COUNT; ep++)
		if (!got->el[M_SRC][ep].set || got->el[M_SRC][ep].addr.s_addr != cfg->snat_address[ep].s_addr)
			return false;
	return !got->missing && !got->foreign[M_SRC] && strcmp(want.rules, got->rules) == 0;
}

static bool
same(const struct target *a, const struct target *b)
{
	for (int ep = 0; ep < EP_COUNT; ep++)
		if (a[ep].set != b[ep].set || (a[ep].set && (a[ep].addr.s_addr != b[ep].addr.s_addr ||
													 a[ep].port != b[ep].port)))
			return false;
	return true;
}

/*
 * One batch: the endpoints' elements as want[] says (NULL: as they are),
 * after the table's objects if it is not as we would make it.
 */
static int
apply(const struct nat_config *cfg, const struct target *want, bool *changed)
{
	struct seen s;
	bool		ok;

	if (fetch(cfg, &s) != 0)
		return -1;
	ok = shaped(cfg, &s);
	want = want ? want : s.el[M_EP];
	*changed = !ok || s.foreign[M_EP] || !same(s.el[M_EP], want);
	if (!*changed)
		return 0;
	msg(NFNL_MSG_BATCH_BEGIN, 0);
	if (ok)						/* flush @endpoints */
	{
		struct nlmsghdr *nlh = msg(NFT_MSG_DELSETELEM, 0);

		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, TABLE);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, maps[M_EP].name);
	}
	else
	{
		tables(3);
		objects(cfg);
		elements(cfg, M_SRC, NULL);
	}
	elements(cfg, M_EP, want);
	return commit(ok ? "route" : "create table ip " TABLE);
}

static int
nft_init(const struct nat_config *cfg, bool *changed)
{
	return apply(cfg, NULL, changed);
}

static int
nft_route(const struct nat_config *cfg, const struct target want[EP_COUNT], bool *changed)
{
	return apply(cfg, want, changed);
}

static int
nft_read(const struct nat_config *cfg, struct target got[EP_COUNT], bool *ready)
{
	struct seen s;

	if (fetch(cfg, &s) != 0)
		return -1;
	*ready = shaped(cfg, &s);
	memcpy(got, s.el[M_EP], sizeof(s.el[M_EP]));
	return 0;
}

static int
nft_present(const struct nat_config *cfg, bool *present)
{
	(void) cfg;
	*present = get(NFT_MSG_GETTABLE, NLM_F_ACK, NULL, NULL, NULL) == 0;
	if (*present || errno == ENOENT)
		return 0;
	errorf("nftables: cannot read table ip " TABLE ": %s", strerror(errno));
	return -1;
}

static int
nft_remove(const struct nat_config *cfg)
{
	(void) cfg;
	msg(NFNL_MSG_BATCH_BEGIN, 0);
	tables(2);					/* add (if missing), delete */
	return commit("delete table ip " TABLE);
}

const struct nat_backend nat_nftables = {
	"nftables", nft_init, nft_present, nft_read, nft_route, nft_remove
};
