/*-------------------------------------------------------------------------
 *
 * conntrack.c
 *	  A NAT change does not move established connections: conntrack keeps
 *	  their old mapping, so Barman's stream and open client sessions stay on
 *	  the old primary (and hang if its host is gone).  After routing an
 *	  endpoint we delete the flows to BACKUP:PORT whose reply comes from
 *	  anything but the new target; the client's next packet then meets the
 *	  new route, gets a reset, and the client reconnects at once.
 *
 *	  libnetfilter_conntrack (with libnfnetlink and libmnl) is loaded with
 *	  dlopen, and only when the namespace tracks flows at all: linked, its
 *	  three libraries cost every call about 0.13 ms of start-up (mapping,
 *	  relocation, page faults), a sixth of a whole `nat route`, for a dump
 *	  that an empty table never needs (see dl.c).
 *
 *-------------------------------------------------------------------------
 */
#include "helper.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#define MAX_FLOWS 4096

/* The calls we make, through pointers typed from the library's header. */
static struct
{
	__typeof__(nfct_open) *open;
	__typeof__(nfct_close) *close;
	__typeof__(nfct_callback_register) *callback_register;
	__typeof__(nfct_query) *query;
	__typeof__(nfct_get_attr_u8) *get_attr_u8;
	__typeof__(nfct_get_attr_u16) *get_attr_u16;
	__typeof__(nfct_get_attr_u32) *get_attr_u32;
	__typeof__(nfct_clone) *clone;
	__typeof__(nfct_destroy) *destroy;
}			nfct;

#define NFCT_SYM(f) {"nfct_" #f, (void **) &nfct.f}
static const struct dl_sym nfct_syms[] = {
	NFCT_SYM(open), NFCT_SYM(close), NFCT_SYM(callback_register), NFCT_SYM(query),
	NFCT_SYM(get_attr_u8), NFCT_SYM(get_attr_u16), NFCT_SYM(get_attr_u32), NFCT_SYM(clone),
	NFCT_SYM(destroy), {NULL, NULL}
};

struct flow_filter
{
	struct in_addr backup;
	int			nports;
	uint16_t	ports[EP_COUNT];	/* network order */
	struct in_addr to;
	uint16_t	toport;			/* network order */
	struct nf_conntrack *victims[MAX_FLOWS];
	int			nvictims;
};

static int
collect(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
	struct flow_filter *f = data;
	bool		ours = false;

	(void) type;
	if (nfct.get_attr_u8(ct, ATTR_ORIG_L3PROTO) != AF_INET ||
		nfct.get_attr_u8(ct, ATTR_ORIG_L4PROTO) != IPPROTO_TCP ||
		nfct.get_attr_u32(ct, ATTR_ORIG_IPV4_DST) != f->backup.s_addr)
		return NFCT_CB_CONTINUE;
	for (int i = 0; i < f->nports; i++)
		ours |= nfct.get_attr_u16(ct, ATTR_ORIG_PORT_DST) == f->ports[i];
	if (!ours)
		return NFCT_CB_CONTINUE;
	/* the reply source is where DNAT sent the flow */
	if (nfct.get_attr_u32(ct, ATTR_REPL_IPV4_SRC) == f->to.s_addr &&
		nfct.get_attr_u16(ct, ATTR_REPL_PORT_SRC) == f->toport)
		return NFCT_CB_CONTINUE;
	if (f->nvictims < MAX_FLOWS)
		f->victims[f->nvictims++] = nfct.clone(ct);
	return NFCT_CB_CONTINUE;
}

/*
 * The number of flows this namespace tracks; 0 also when conntrack is not
 * loaded.  A dump walks the kernel's whole hash table (about 10 ms here
 * even when empty), so we skip it when there is nothing to find.
 */
static long
flow_count(void)
{
	char		buf[32] = "";
	long		n = -1;
	int			fd = open("/proc/sys/net/netfilter/nf_conntrack_count", O_RDONLY | O_CLOEXEC);
	ssize_t		len;

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len > 0)
	{
		buf[len] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		if (parse_long(buf, 0, 0x7fffffffL, &n) != 0)
			n = -1;
	}
	return n;
}

/* Remove flows to the endpoints in epmask that do not lead to node. */
int
conntrack_flush(const struct config *cfg, int epmask, const struct node *node,
				int *removed)
{
	static struct flow_filter f;
	struct nfct_handle *h;
	uint32_t	family = AF_INET;
	int			rc = 0;
	char		err[512];

	*removed = 0;
	if (flow_count() == 0)
		return 0;
	if (dl_load("libnetfilter_conntrack.so.3", nfct_syms, err, sizeof(err)) != 0)
	{
		errorf("%s", err);
		return -1;
	}
	memset(&f, 0, sizeof(f));
	f.backup = cfg->backup_address;
	for (int ep = 0; ep < EP_COUNT; ep++)
		if (epmask & (1 << ep))
			f.ports[f.nports++] = htons(cfg->ports[ep]);
	f.to = node->addr;
	f.toport = htons(node->port);

	h = nfct.open(CONNTRACK, 0);
	if (h == NULL)
	{
		errorf("cannot open conntrack: %s", strerror(errno));
		return -1;
	}
	nfct.callback_register(h, NFCT_T_ALL, collect, &f);
	if (nfct.query(h, NFCT_Q_DUMP, &family) != 0)
	{
		errorf("cannot list conntrack flows: %s", strerror(errno));
		rc = -1;
	}
	for (int i = 0; i < f.nvictims; i++)
	{
		/* ENOENT: the flow ended meanwhile, which is what we wanted */
		if (rc == 0 && nfct.query(h, NFCT_Q_DESTROY, f.victims[i]) == 0)
			(*removed)++;
		else if (rc == 0 && errno != ENOENT)
		{
			errorf("cannot delete a conntrack flow: %s", strerror(errno));
			rc = -1;
		}
		nfct.destroy(f.victims[i]);
	}
	nfct.close(h);
	return rc;
}
