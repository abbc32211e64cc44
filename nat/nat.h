/*-------------------------------------------------------------------------
 *
 * nat.h
 *	  barman_ha_nat, the backup host's only privileged program: its
 *	  configuration, its fencing state, and the interface of its two NAT
 *	  backends (libiptc, nftables).
 *
 *-------------------------------------------------------------------------
 */
#ifndef BARMAN_HA_NAT_H
#define BARMAN_HA_NAT_H

#include "barman_ha_contract.h"
#include "common.h"

#define NAT_MAX_NODES	32

enum
{
	EP_BARMAN, EP_APP, EP_COUNT			/* the endpoints: per-endpoint arrays' indexes */
};

/* nat.conf */
struct nat_config
{
	struct in_addr backup_address;
	uint16_t	ports[EP_COUNT];	/* barman_port, app_port */
	struct in_addr snat_address[EP_COUNT];	/* default: backup_address */
	bool		snat_per_endpoint;	/* a *_snat_address was given */
	bool		nftables;		/* nat_backend */
	char		state_file[256];
	int			lock_timeout;	/* seconds, every lock wait */
	long		max_step;		/* max_timeline_step; default nnodes */
	int			nnodes;
	struct node nodes[NAT_MAX_NODES];
};

/* Where an endpoint leads; closed (!set): no DNAT, the backup host answers a SYN with a reset. */
struct target
{
	bool		set;
	struct in_addr addr;
	uint16_t	port;
};

static inline bool
same_target(const struct target *a, const struct target *b)
{
	if (a->set != b->set)
		return false;
	return !a->set || (a->addr.s_addr == b->addr.s_addr && a->port == b->port);
}

/*
 * A NAT backend; each function returns 0, or -1 after errorf.  read: where
 * the endpoints lead; *have 0: no rule of ours, 1: some, 2: all.  route:
 * both endpoints as want says (NULL: as they are, for init) in one atomic
 * change (one iptc_commit, one netlink batch), after making our chains or
 * table whole; no reader ever sees an endpoint without its rule.
 */
struct nat_backend
{
	const char *name;
	int			(*read) (const struct nat_config *cfg, struct target got[EP_COUNT], int *have);
	int			(*route) (const struct nat_config *cfg, const struct target *want,
						  bool *changed);
};

extern const struct nat_backend nat_iptables, nat_nftables;	/* nftables: HAVE_NFTABLES */

/* The recorded claim: the node and timeline the endpoints were given to. */
struct state
{
	bool		exists;
	char		node[BHA_NAME_MAX + 1];
	long		timeline;
	long long	mtime;			/* when it was recorded (the file's mtime) */
};

/* fence_decide: a claim is held, new, or (< 0) refused unless forced */
enum fence
{
	FENCE_TOO_FAR = -2, FENCE_STALE = -1, FENCE_NEW = 0, FENCE_HELD = 1
};

/* privilege.c */
int			harden(uid_t *ruid);
/* config.c: nat.conf and the state file; 0, or -1 after errorf (common/report.c) */
int			nat_conf_parse(struct nat_config *cfg, char *text, const char *path);
int			nat_conf_load(struct nat_config *cfg, const char *path);
int			lock_or_say(int fd, const char *path, int timeout_s, const char *busy);
int			open_said(const char *path, int flags, mode_t mode, int *dfd);
const struct node *config_node(const struct nat_config *cfg, const char *name);
int			state_parse(char *text, struct state *st);
int			state_lock(const struct nat_config *cfg);
int			state_read(const struct nat_config *cfg, struct state *st);
int			state_write(const struct nat_config *cfg, const struct state *st);
enum fence	fence_decide(const struct state *st, const char *node, long tl, long step,
						 bool force);

#endif							/* BARMAN_HA_NAT_H */
