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

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/types.h>

#include "barman_ha_contract.h"

#define NAT_MAX_NODES	32

enum
{
	EP_BARMAN, EP_APP, EP_COUNT			/* the endpoints: per-endpoint arrays' indexes */
};

struct node
{
	char		name[BHA_NAME_MAX + 1];
	struct in_addr addr;
	uint16_t	port;
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
	return a->set == b->set && (!a->set || (a->addr.s_addr == b->addr.s_addr && a->port == b->port));
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
	int			(*route) (const struct nat_config *cfg, const struct target *want, bool *changed);
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

/* main.c: kept for the one "barman_ha_nat: MSG" stderr line and syslog, written at the end */
void		errorf(const char *fmt,...) __attribute__((format(printf, 1, 2)));
/* privilege.c */
int			harden(uid_t *ruid);
int			open_trusted(const char *path, int flags, mode_t mode, bool mkdir, int *dfd);
int			lock_wait(int fd, const char *path, int timeout_s, const char *busy);
/* config.c: nat.conf and the state file; 0, or -1 after errorf */
bool		parse_number(const char *s, long min, long max, long *out);
int			config_parse(struct nat_config *cfg, char *text, const char *path);
int			config_load(struct nat_config *cfg, const char *path);
const struct node *config_node(const struct nat_config *cfg, const char *name);
int			state_parse(char *text, struct state *st);
int			state_lock(const struct nat_config *cfg);
int			state_read(const struct nat_config *cfg, struct state *st);
int			state_write(const struct nat_config *cfg, const struct state *st);
enum fence	fence_decide(const struct state *st, const char *node, long tl, long step, bool force);

#endif							/* BARMAN_HA_NAT_H */
