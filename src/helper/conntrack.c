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
#include <string.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#define MAX_FLOWS 4096

struct flow_filter
{
	struct in_addr backup;
	uint16_t	port;			/* network order */
	struct in_addr to;
	uint16_t	toport;			/* network order */
	struct nf_conntrack *victims[MAX_FLOWS];
	int			nvictims;
};

static int
collect(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
	struct flow_filter *f = data;

	(void) type;
	if (nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO) != AF_INET ||
		nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != IPPROTO_TCP ||
		nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST) != f->backup.s_addr ||
		nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST) != f->port)
		return NFCT_CB_CONTINUE;
	/* the reply source is where DNAT sent the flow */
	if (nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC) == f->to.s_addr &&
		nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC) == f->toport)
		return NFCT_CB_CONTINUE;
	if (f->nvictims < MAX_FLOWS)
		f->victims[f->nvictims++] = nfct_clone(ct);
	return NFCT_CB_CONTINUE;
}

int
conntrack_flush(const struct config *cfg, enum endpoint ep,
				const struct node *node, int *removed)
{
	static struct flow_filter f;
	struct nfct_handle *h;
	uint32_t	family = AF_INET;
	int			rc = 0;

	memset(&f, 0, sizeof(f));
	f.backup = cfg->backup_address;
	f.port = htons(cfg->ports[ep]);
	f.to = node->addr;
	f.toport = htons(node->port);
	*removed = 0;

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
