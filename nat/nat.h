/*-------------------------------------------------------------------------
 *
 * nat.h
 *	  barman_ha_nat, the backup host's only privileged program: its
 *	  configuration, its fencing state, and the interface every NAT backend
 *	  (libiptc, nftables) implements.
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

/* The two endpoints, indexes into every per-endpoint array. */
enum endpoint
{
	EP_BARMAN = 0,
	EP_APP = 1,
	EP_COUNT = 2
};

extern const char *const endpoint_names[EP_COUNT];

struct node
{
	char		name[BHA_NAME_MAX + 1];
	struct in_addr addr;
	uint16_t	port;
};

enum backend_kind
{
	BACKEND_IPTABLES,
	BACKEND_NFTABLES
};

/* nat.conf, trusted only when root owns it and the path up to "/" */
struct nat_config
{
	struct in_addr backup_address;
	uint16_t	ports[EP_COUNT];	/* barman_port, app_port */
	struct in_addr snat_address[EP_COUNT];	/* default: backup_address */
	bool		snat_per_endpoint;	/* a *_snat_address was given */
	enum backend_kind backend;
	char		state_file[256];
	int			lock_timeout;	/* seconds, every lock wait */
	int			nnodes;
	struct node nodes[NAT_MAX_NODES];
};

/*
 * What one endpoint leads to.  "closed" (set false) means no DNAT rule:
 * a SYN to the endpoint is answered with a reset by the backup host itself.
 */
struct target
{
	bool		set;
	struct in_addr addr;
	uint16_t	port;
};

/*
 * A NAT backend.  Every function returns 0 or -1 after one line on stderr.
 * route() makes both endpoints lead where want[] says in one atomic
 * change (one iptc_commit, one netlink batch): no reader ever sees an
 * endpoint without its rule while it moves between two nodes.
 */
struct nat_backend
{
	const char *name;			/* "iptables", "nftables" */
	/* create our chains/table and jumps; idempotent */
	int			(*init) (const struct nat_config *cfg, bool *changed);
	/* whether any rule or chain of ours exists in this backend */
	int			(*present) (const struct nat_config *cfg, bool *present);
	/* read back where the endpoints lead; *ready false if not initialised */
	int			(*read) (const struct nat_config *cfg, struct target got[EP_COUNT],
						 bool *ready);
	/* set both endpoints in one atomic change */
	int			(*route) (const struct nat_config *cfg,
						  const struct target want[EP_COUNT], bool *changed);
	/* remove everything of ours (migrate, purge) */
	int			(*remove) (const struct nat_config *cfg);
};

extern const struct nat_backend nat_iptables;
extern const struct nat_backend nat_nftables;	/* only if nat_nftables.c is
												 * built (HAVE_NFTABLES) */

/* The recorded claim: the node and timeline the endpoints were given to. */
struct state
{
	bool		exists;
	char		node[BHA_NAME_MAX + 1];
	long		timeline;
	long long	mtime;			/* when it was recorded (the file's mtime) */
};

/* main.c: "barman_ha_nat: MSG" on stderr, kept for the syslog outcome */
void		errorf(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* config.c */
bool		parse_number(const char *s, long min, long max, long *out);
int			config_parse(struct nat_config *cfg, char *text, const char *path);
int			config_load(struct nat_config *cfg, const char *path);
const struct node *config_node(const struct nat_config *cfg, const char *name);

/* privilege.c */
void		privilege_start(void);
int			privilege_drop(uid_t *ruid);
int			trusted_dir(const char *dir, bool create);
int			trusted_file(int fd, const char *path);
int			flock_wait(int fd, int timeout_s);

/* state.c: returns 0 or -1 after errorf, like the backends */
int			state_parse(char *text, struct state *st);
int			state_lock(const struct nat_config *cfg);
int			state_read(const struct nat_config *cfg, struct state *st);
int			state_write(const struct nat_config *cfg, const struct state *st);
bool		fenced(const struct state *st, const char *node, long timeline);

/* conntrack.c */
int			flows_remove(const struct nat_config *cfg,
						 const struct target want[EP_COUNT], unsigned epmask,
						 long *removed);

#endif							/* BARMAN_HA_NAT_H */
