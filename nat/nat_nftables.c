/*-------------------------------------------------------------------------
 *
 * nat_nftables.c
 *	  The nftables backend: netlink through libmnl and libnftnl, no nft, no
 *	  libnftables.  Table ip repmgr_barman_ha (repmgr_barman_ha.nft is the
 *	  same as nft input, docs/nftables.md explains it): map endpoints,
 *	  BACKUP's port : node address . port (a closed endpoint has no
 *	  element); chains prerouting and output, "ip daddr BACKUP dnat ip to
 *	  tcp dport map @endpoints"; chain postrouting, an SNAT rule per
 *	  endpoint for the flows our DNAT made.  Every change is one netlink
 *	  batch, one transaction: a route flushes @endpoints and adds the new
 *	  elements; init, and a route that finds our rules changed, make the
 *	  whole table anew in it.
 *
 *-------------------------------------------------------------------------
 */
#include "nat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#define TABLE		"repmgr_barman_ha"
#define MAP			"endpoints"
#define D			0x100		/* ex(): a data attribute, then pointer, length */

static const struct
{
	const char *name;
	uint32_t	hook;
	int32_t		prio;
}			chains[] = {
	{"prerouting", NF_INET_PRE_ROUTING, -100}, {"output", NF_INET_LOCAL_OUT, -100},
	{"postrouting", NF_INET_POST_ROUTING, 100},
};

/* @endpoints, typed by nft's numbers (inet_service : ipv4_addr . inet_service) */
static const uint32_t map_attrs[][2] = {
	{NFTA_SET_ID, 1}, {NFTA_SET_FLAGS, NFT_SET_MAP}, {NFTA_SET_KEY_TYPE, 13}, {NFTA_SET_KEY_LEN, 2},
	{NFTA_SET_DATA_TYPE, 7 << 6 | 13}, {NFTA_SET_DATA_LEN, 8},	/* port padded to 4 bytes */
};

/* What the kernel holds of ours, or what we would make. */
struct seen
{
	const struct nat_config *cfg;
	bool		missing, foreign;	/* no map; an element not of our ports */
	struct target el[EP_COUNT];
	size_t		len;
	char		rules[4096];	/* our rules as nftnl_rule_snprintf prints them */
};

static char batch[16384];
static size_t blen;
static struct nlmsghdr *last;
static uint32_t seq;
static bool nomem;

/* Start a message at buf, about our table (and map, for the element types). */
static struct nlmsghdr *
hdr(char *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, type, NFPROTO_IPV4, flags, ++seq);

	if (type != NFT_MSG_NEWRULE)	/* libnftnl adds the rule's */
		mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, TABLE);	/* attribute 1 in all types */
	if (type == NFT_MSG_GETSETELEM || type == NFT_MSG_NEWSETELEM || type == NFT_MSG_DELSETELEM)
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, MAP);
	return nlh;
}

/* Start the batch's next message; NFNL_MSG_BATCH_BEGIN/END start or end it. */
static struct nlmsghdr *
msg(uint16_t type, uint16_t flags)
{
	if (type == NFNL_MSG_BATCH_BEGIN)
	{
		blen = 0;
		nomem = false;
		last = nftnl_batch_begin(batch, ++seq);
		return last;
	}
	blen += NLMSG_ALIGN(last->nlmsg_len);
	nomem |= blen > sizeof(batch) - 4096;	/* a message takes 2 KB at most */
	if (type == NFNL_MSG_BATCH_END)
		last = nftnl_batch_end(batch + blen, ++seq);
	else
		last = hdr(batch + blen, type, flags);
	return last;
}

/*
 * Send the batch (type 0; the ack of its last message says it committed) or
 * a dump request; cb gets the replies.  One socket per process: closing one
 * right after a commit waits for an RCU grace period (8-16 ms); after an
 * error replies may be left in it, so a new one.  A dump that a commit
 * interrupted fails with EINTR (exit 1, retried by callers).
 */
static int
talk(uint16_t type, mnl_cb_t cb, void *data, const char *what)
{
	static struct mnl_socket *nl;
	static char buf[65536];
	char		req[256];
	struct nlmsghdr *nlh = (struct nlmsghdr *) batch;
	size_t		len = blen;
	int			rc = -1,
				n,
				err;

	if (type != 0)
	{
		nlh = hdr(req, type, NLM_F_DUMP);
		len = nlh->nlmsg_len;
	}
	else
	{
		last->nlmsg_flags |= NLM_F_ACK;
		msg(NFNL_MSG_BATCH_END, 0);
		blen += NLMSG_ALIGN(last->nlmsg_len);
		len = blen;
	}
	if (nl == NULL)
	{
		nl = mnl_socket_open(NETLINK_NETFILTER);
		if (nl && mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		{
			mnl_socket_close(nl);
			nl = NULL;
		}
	}
	if (!nomem && nl && mnl_socket_sendto(nl, nlh, len) >= 0)
	{
		do
		{
			rc = -1;
			n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
			if (n > 0)
				rc = mnl_cb_run(buf, n, 0, mnl_socket_get_portid(nl), cb, data);
		} while (rc > 0);
	}
	err = nomem ? ENOMEM : errno;
	if (rc < 0 && nl)
	{
		mnl_socket_close(nl);
		nl = NULL;
	}
	if (rc < 0 && !(err == ENOENT && type == NFT_MSG_GETSETELEM))	/* no map: no error */
		errorf("nftables: cannot %s: %s", what, strerror(err));
	errno = err;
	return rc < 0 ? -1 : 0;
}

/* One expression: (attribute, u32) pairs, (D | attribute, ptr, len), -1 */
static void
ex(struct nftnl_rule *r, const char *name,...)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);
	va_list		ap;
	const void *p;
	int			a;

	if ((nomem |= e == NULL))
		return;
	va_start(ap, name);
	while ((a = va_arg(ap, int)) >= 0)
	{
		if (a & D)
		{
			p = va_arg(ap, const void *);
			nftnl_expr_set(e, a & ~D, p, va_arg(ap, uint32_t));
		}
		else
			nftnl_expr_set_u32(e, a, va_arg(ap, uint32_t));
	}
	va_end(ap);
	nftnl_rule_add_expr(r, e);
}

#define CMP(op, p, n) \
	ex(r, "cmp", NFTNL_EXPR_CMP_SREG, 1, NFTNL_EXPR_CMP_OP, op, D | NFTNL_EXPR_CMP_DATA, p, n, -1)
#define PAYLOAD(base, off, n) ex(r, "payload", NFTNL_EXPR_PAYLOAD_DREG, 1, \
	NFTNL_EXPR_PAYLOAD_BASE, base, NFTNL_EXPR_PAYLOAD_OFFSET, off, NFTNL_EXPR_PAYLOAD_LEN, n, -1)
#define CT(key, ...) ex(r, "ct", NFTNL_EXPR_CT_KEY, key, NFTNL_EXPR_CT_DREG, 1, __VA_ARGS__, -1)

/*
 * Our rule i (0 prerouting, 1 output, 2 and 3 postrouting for endpoint 0
 * and 1) as nft 1.0.6 makes it, with the attributes the kernel's dump adds.
 */
static struct nftnl_rule *
rule(const struct nat_config *cfg, int i)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	bool		dnat = i < 2;
	uint8_t		tcp = IPPROTO_TCP;
	uint16_t	port = dnat ? 0 : htons(cfg->ports[i - 2]);
	uint32_t	status = IPS_DST_NAT, zero = 0;

	if ((nomem |= r == NULL))
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_IPV4);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chains[dnat ? i : 2].name);
	if (dnat)					/* ip daddr BACKUP */
	{
		PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, 16, 4);
		CMP(NFT_CMP_EQ, &cfg->backup_address, 4);
	}
	ex(r, "meta", NFTNL_EXPR_META_KEY, NFT_META_L4PROTO, NFTNL_EXPR_META_DREG, 1, -1);
	CMP(NFT_CMP_EQ, &tcp, 1);
	if (dnat)					/* tcp dport map @endpoints */
	{
		PAYLOAD(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
		ex(r, "lookup", NFTNL_EXPR_LOOKUP_SREG, 1, NFTNL_EXPR_LOOKUP_DREG, 1,
		   NFTNL_EXPR_LOOKUP_FLAGS, 0, D | NFTNL_EXPR_LOOKUP_SET, MAP, (uint32_t) sizeof(MAP), -1);
	}
	else						/* ct status dnat ct original ip daddr BACKUP ... */
	{
		CT(NFT_CT_STATUS, -1);
		ex(r, "bitwise", NFTNL_EXPR_BITWISE_SREG, 1, NFTNL_EXPR_BITWISE_DREG, 1,
		   NFTNL_EXPR_BITWISE_LEN, 4, D | NFTNL_EXPR_BITWISE_MASK, &status, 4,
		   D | NFTNL_EXPR_BITWISE_XOR, &zero, 4, -1);
		CMP(NFT_CMP_NEQ, &zero, 4);
		CT(NFT_CT_DST_IP, NFTNL_EXPR_CT_DIR, IP_CT_DIR_ORIGINAL);
		CMP(NFT_CMP_EQ, &cfg->backup_address, 4);
		CT(NFT_CT_PROTO_DST, NFTNL_EXPR_CT_DIR, IP_CT_DIR_ORIGINAL);	/* ... proto-dst PORT */
		CMP(NFT_CMP_EQ, &port, 2);
		ex(r, "immediate", NFTNL_EXPR_IMM_DREG, 1, D | NFTNL_EXPR_IMM_DATA,
		   &cfg->snat_address[i - 2], 4, -1);
	}
	/* address (and the DNAT port: the 4-byte register after it) min = max */
	if (dnat)
		ex(r, "nat", NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4,
		   NFTNL_EXPR_NAT_REG_ADDR_MIN, 1, NFTNL_EXPR_NAT_REG_ADDR_MAX, 1, NFTNL_EXPR_NAT_FLAGS,
		   NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED, NFTNL_EXPR_NAT_REG_PROTO_MIN,
		   NFT_REG32_01, NFTNL_EXPR_NAT_REG_PROTO_MAX, NFT_REG32_01, -1);
	else
		ex(r, "nat", NFTNL_EXPR_NAT_TYPE, NFT_NAT_SNAT, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4,
		   NFTNL_EXPR_NAT_REG_ADDR_MIN, 1, NFTNL_EXPR_NAT_REG_ADDR_MAX, 1, NFTNL_EXPR_NAT_FLAGS,
		   NF_NAT_RANGE_MAP_IPS, -1);
	return r;
}

/*
 * Add to the batch the whole table anew if table (add, delete, add: no
 * error whether it exists or not), else a flush of @endpoints; then the
 * elements want[] asks for.
 */
static void
build(const struct nat_config *cfg, const struct target want[EP_COUNT], bool table)
{
	struct nlmsghdr *nlh;
	struct nlattr *nest, *elem, *v;
	struct nftnl_rule *r;

	for (int i = 0; table && i < 3; i++)
		msg(i == 1 ? NFT_MSG_DELTABLE : NFT_MSG_NEWTABLE, NLM_F_CREATE);
	for (int i = 0; table && i < 3; i++)
	{
		nlh = msg(NFT_MSG_NEWCHAIN, NLM_F_CREATE);
		mnl_attr_put_strz(nlh, NFTA_CHAIN_NAME, chains[i].name);
		mnl_attr_put_strz(nlh, NFTA_CHAIN_TYPE, "nat");
		nest = mnl_attr_nest_start(nlh, NFTA_CHAIN_HOOK);
		mnl_attr_put_u32(nlh, NFTA_HOOK_HOOKNUM, htonl(chains[i].hook));
		mnl_attr_put_u32(nlh, NFTA_HOOK_PRIORITY, htonl(chains[i].prio));
		mnl_attr_nest_end(nlh, nest);
	}
	if (table)
	{
		nlh = msg(NFT_MSG_NEWSET, NLM_F_CREATE);
		mnl_attr_put_strz(nlh, NFTA_SET_NAME, MAP);
		for (size_t i = 0; i < sizeof(map_attrs) / sizeof(map_attrs[0]); i++)
			mnl_attr_put_u32(nlh, map_attrs[i][0], htonl(map_attrs[i][1]));
	}
	for (int i = 0; table && i < 4 && (r = rule(cfg, i)) != NULL; i++)
	{
		nftnl_rule_nlmsg_build_payload(msg(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND), r);
		nftnl_rule_free(r);
	}
	if (!table)
		msg(NFT_MSG_DELSETELEM, 0);	/* no elements: a flush */
	nlh = msg(NFT_MSG_NEWSETELEM, NLM_F_CREATE);
	nest = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
	for (int ep = 0; ep < EP_COUNT; ep++)
	{
		/* the key; the data: address, port, 0 */
		uint16_t	val[5] = {htons(cfg->ports[ep]), 0, 0, htons(want[ep].port)};

		if (!want[ep].set)
			continue;
		memcpy(val + 1, &want[ep].addr, 4);
		elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
		for (int k = 0; k < 2; k++)	/* key, data: nested nft_data values */
		{
			v = mnl_attr_nest_start(nlh, k ? NFTA_SET_ELEM_DATA : NFTA_SET_ELEM_KEY);
			mnl_attr_put(nlh, NFTA_DATA_VALUE, k ? 8 : 2, val + k);
			mnl_attr_nest_end(nlh, v);
		}
		mnl_attr_nest_end(nlh, elem);
	}
	mnl_attr_nest_end(nlh, nest);
}

/* A rule, the kernel's or ours, into the seen text, without its handle. */
static int
rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct seen *s = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	int			rc = r && nftnl_rule_nlmsg_parse(nlh, r) == 0 ? MNL_CB_OK : MNL_CB_ERROR;

	if (rc == MNL_CB_OK && s->len < sizeof(s->rules))
	{
		nftnl_rule_unset(r, NFTNL_RULE_HANDLE);
		nftnl_rule_unset(r, NFTNL_RULE_POSITION);
		s->len += nftnl_rule_snprintf(s->rules + s->len, sizeof(s->rules) - s->len, r, 0, 0);
	}
	if (r)
		nftnl_rule_free(r);
	return rc;
}

/* The elements of @endpoints keyed by our ports, into s->el. */
static int
elems_cb(const struct nlmsghdr *nlh, void *data)
{
	struct seen *s = data;
	struct nftnl_set *set = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it = NULL;
	struct nftnl_set_elem *e;
	uint32_t	klen = 0, dlen = 0;
	uint16_t	val[5];			/* as build() makes it */
	int			ep;

	if (set && nftnl_set_elems_nlmsg_parse(nlh, set) == 0)
		it = nftnl_set_elems_iter_create(set);
	while (it && (e = nftnl_set_elems_iter_next(it)) != NULL)
	{
		const void *k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
		const void *d = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &dlen);

		ep = EP_COUNT;
		if (k && d && klen == 2 && dlen == 8)
		{
			memcpy(val, k, 2);
			memcpy(val + 1, d, 8);
			ep = 0;
			while (ep < EP_COUNT && ntohs(val[0]) != s->cfg->ports[ep])
				ep++;
		}
		if (ep == EP_COUNT)
		{
			s->foreign = true;
			continue;
		}
		s->el[ep] = (struct target) {.set = true, .port = ntohs(val[3])};
		memcpy(&s->el[ep].addr, val + 1, 4);
	}
	if (it)
		nftnl_set_elems_iter_destroy(it);
	if (set)
		nftnl_set_free(set);
	return it ? MNL_CB_OK : MNL_CB_ERROR;
}

/*
 * Dump our rules and @endpoints into got; *shaped: the rules are those we
 * would make, printed the same way.  (A commit can tear the element dump:
 * we change the table under our lock, and a route is right whatever it read.)
 */
static int
fetch(const struct nat_config *cfg, struct seen *got, bool *shaped)
{
	static struct seen want;
	char		buf[2048];
	struct nftnl_rule *r;
	int			rc;

	memset(got, 0, sizeof(*got));
	memset(&want, 0, sizeof(want));
	got->cfg = cfg;
	rc = talk(NFT_MSG_GETRULE, rule_cb, got, "read table ip " TABLE);
	if (rc == 0 && talk(NFT_MSG_GETSETELEM, elems_cb, got, "read map " MAP) != 0)
	{
		got->missing = true;	/* no map, or no table */
		if (errno != ENOENT)
			rc = -1;
	}
	for (int i = 0; i < 4 && (r = rule(cfg, i)) != NULL; i++)	/* through netlink too */
	{
		nftnl_rule_nlmsg_build_payload(hdr(buf, NFT_MSG_NEWRULE, 0), r);
		nftnl_rule_free(r);
		rule_cb((struct nlmsghdr *) buf, &want);
	}
	*shaped = !got->missing && strcmp(want.rules, got->rules) == 0;
	return rc;
}

/*
 * have: 2 our rules as we make them, 1 a rule or the map of ours (we never
 * leave the table empty)
 */
static int
nft_read(const struct nat_config *cfg, struct target got[EP_COUNT], int *have)
{
	static struct seen s;
	bool		shaped;
	int			rc = fetch(cfg, &s, &shaped);

	memcpy(got, s.el, sizeof(s.el));
	*have = s.len > 0 || !s.missing;
	if (shaped)
		*have = 2;
	return rc;
}

/*
 * One batch: @endpoints as want[] says (init: NULL, as they are), after the
 * whole table if our rules are not what they should be.
 */
static int
nft_route(const struct nat_config *cfg, const struct target *want, bool *changed)
{
	static struct seen s;
	bool		shaped;

	if (fetch(cfg, &s, &shaped) != 0)
		return -1;
	want = want ? want : s.el;
	*changed = !shaped || s.foreign;
	for (int ep = 0; ep < EP_COUNT; ep++)
		*changed |= !same_target(&want[ep], &s.el[ep]);
	if (!*changed)
		return 0;
	msg(NFNL_MSG_BATCH_BEGIN, 0);
	build(cfg, want, !shaped);
	return talk(0, NULL, NULL, shaped ? "route" : "make table ip " TABLE);
}

const struct nat_backend nat_nftables = {"nftables", nft_read, nft_route};
