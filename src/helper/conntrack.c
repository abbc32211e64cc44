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
	if (nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO) != AF_INET ||
		nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != IPPROTO_TCP ||
		nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST) != f->backup.s_addr)
		return NFCT_CB_CONTINUE;
	for (int i = 0; i < f->nports; i++)
		ours |= nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST) == f->ports[i];
	if (!ours)
		return NFCT_CB_CONTINUE;
	/* the reply source is where DNAT sent the flow */
	if (nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC) == f->to.s_addr &&
		nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC) == f->toport)
		return NFCT_CB_CONTINUE;
	if (f->nvictims < MAX_FLOWS)
		f->victims[f->nvictims++] = nfct_clone(ct);
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

	*removed = 0;
	if (flow_count() == 0)
		return 0;
	memset(&f, 0, sizeof(f));
	f.backup = cfg->backup_address;
	for (int ep = 0; ep < EP_COUNT; ep++)
		if (epmask & (1 << ep))
			f.ports[f.nports++] = htons(cfg->ports[ep]);
	f.to = node->addr;
	f.toport = htons(node->port);

	h = nfct_open(CONNTRACK, 0);
	if (h == NULL)
	{
		errorf("cannot open conntrack: %s", strerror(errno));
		return -1;
	}
	nfct_callback_register(h, NFCT_T_ALL, collect, &f);
	if (nfct_query(h, NFCT_Q_DUMP, &family) != 0)
	{
		errorf("cannot list conntrack flows: %s", strerror(errno));
		rc = -1;
	}
	for (int i = 0; i < f.nvictims; i++)
	{
		/* ENOENT: the flow ended meanwhile, which is what we wanted */
		if (rc == 0 && nfct_query(h, NFCT_Q_DESTROY, f.victims[i]) == 0)
			(*removed)++;
		else if (rc == 0 && errno != ENOENT)
		{
			errorf("cannot delete a conntrack flow: %s", strerror(errno));
			rc = -1;
		}
		nfct_destroy(f.victims[i]);
	}
	nfct_close(h);
	return rc;
}
