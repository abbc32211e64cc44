/*-------------------------------------------------------------------------
 *
 * conntrack.c
 *	  A NAT change does not move established connections: conntrack keeps
 *	  their mapping, so Barman's stream and client sessions would stay on
 *	  the old node (and hang if its host is gone).  After a change we delete
 *	  every flow to BACKUP:PORT of a changed endpoint whose replies do not
 *	  come from its new target (for a closed endpoint: from us); the
 *	  client's next packet gets a reset and it reconnects on the new route.
 *	  Dump and delete repeat until a dump finds none left: no cap on the
 *	  number of flows, a bounded number of passes.
 *
 *-------------------------------------------------------------------------
 */
#include "nat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#define MAX_PASSES	8

struct sweep
{
	struct nfct_handle *del;	/* deletes go on a socket of their own */
	uint32_t	backup, to[EP_COUNT];	/* the reply source a flow may keep */
	uint16_t	port[EP_COUNT], toport[EP_COUNT];	/* network order */
	unsigned	epmask;
	long		found, removed;
	int			err;
};

static int
visit(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *arg)
{
	struct sweep *s = arg;

	(void) type;
	for (int ep = 0; ep < EP_COUNT; ep++)
		if ((s->epmask & 1u << ep) && nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) == IPPROTO_TCP &&
			nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST) == s->backup &&
			nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST) == s->port[ep] &&
			(nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC) != s->to[ep] ||
			 nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC) != s->toport[ep]))
		{
			s->found++;
			if (nfct_query(s->del, NFCT_Q_DESTROY, ct) == 0)
				s->removed++;
			else if (errno != ENOENT)	/* ENOENT: it ended meanwhile, as we wanted */
				s->err = errno;
		}
	return NFCT_CB_CONTINUE;
}

/* A dump walks the whole table, milliseconds even when empty: skipped when it is. */
static bool
no_flows(void)
{
	char		buf[24] = "";
	int			fd = open("/proc/sys/net/netfilter/nf_conntrack_count", O_RDONLY | O_CLOEXEC);
	bool		none = fd < 0 ? errno == ENOENT : read(fd, buf, sizeof(buf) - 1) > 0 && strcmp(buf, "0\n") == 0;

	if (fd >= 0)
		close(fd);
	return none;				/* ENOENT: no conntrack in this namespace */
}

int
flows_remove(const struct nat_config *cfg, const struct target want[EP_COUNT], unsigned epmask, long *removed)
{
	struct sweep s = {.backup = cfg->backup_address.s_addr, .epmask = epmask};
	struct nfct_handle *h;
	uint32_t	family = AF_INET;
	int			pass = 0;

	*removed = 0;
	if (epmask == 0 || no_flows())
		return 0;
	for (int ep = 0; ep < EP_COUNT; ep++)
	{
		s.port[ep] = htons(cfg->ports[ep]);
		s.to[ep] = want[ep].set ? want[ep].addr.s_addr : s.backup;
		s.toport[ep] = want[ep].set ? htons(want[ep].port) : s.port[ep];
	}
	if ((h = nfct_open(CONNTRACK, 0)) == NULL || (s.del = nfct_open(CONNTRACK, 0)) == NULL)
		return errorf("cannot open conntrack: %m"), -1;
	nfct_callback_register(h, NFCT_T_ALL, visit, &s);
	do
	{
		s.found = 0;
		if (nfct_query(h, NFCT_Q_DUMP, &family) != 0)
			errno == EINTR ? s.found++ : (s.err = errno);	/* EINTR: the table changed, look again */
	} while (!s.err && s.found > 0 && ++pass < MAX_PASSES);
	nfct_close(s.del);
	nfct_close(h);
	*removed = s.removed;
	if (s.err)
		errorf("cannot list or delete conntrack flows: %s", strerror(s.err));
	else if (s.found > 0)
		errorf("%ld flows to the old node remain after %d passes", s.found, MAX_PASSES);
	return s.err || s.found > 0 ? -1 : 0;
}
