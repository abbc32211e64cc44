/*-------------------------------------------------------------------------
 *
 * barman_ha.h
 *		Declarations shared by the files of the repmgr_barman_ha extension:
 *		its settings, the state it keeps in shared memory, the slot and
 *		helper operations, and the background workers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BARMAN_HA_H
#define BARMAN_HA_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

#include "barman_ha_contract.h"

/* Room for a node name (barman_ha_contract.h). */
#define BARMAN_HA_NAME_LEN (BHA_NAME_MAX + 1)
/* Longest message kept for the DBA (last_error, event detail). */
#define BARMAN_HA_MSG_LEN 256
/* Number of events kept in shared memory. */
#define BARMAN_HA_EVENTS 100

/* What barman_ha.standby_slot asks of a standby. */
typedef enum StandbySlotMode
{
	STANDBY_SLOT_SYNC,
	STANDBY_SLOT_DROP,
	STANDBY_SLOT_KEEP
} StandbySlotMode;

/* Whether the endpoints lead to this node, as far as the worker knows. */
typedef enum RouteState
{
	ROUTE_PENDING,
	ROUTE_OK,
	ROUTE_FAILED,
	ROUTE_FENCED,
	ROUTE_DISABLED
} RouteState;

/*
 * The barman slot's wal_status, as pg_replication_slots names it; NONE for
 * no slot or a slot that never reserved WAL (wal_status NULL).
 */
typedef enum SlotWalStatus
{
	SLOT_WAL_NONE,
	SLOT_WAL_RESERVED,
	SLOT_WAL_EXTENDED,
	SLOT_WAL_UNRESERVED,
	SLOT_WAL_LOST
} SlotWalStatus;

/* Waits and durations are kept in milliseconds. */
#define BARMAN_HA_MS_PER_SEC 1000L
#define BARMAN_HA_USECS_PER_MS 1000

/* Milliseconds from start to now: an event's duration. */
static inline double
barman_ha_ms_since(TimestampTz start)
{
	return (double) (GetCurrentTimestamp() - start) / BARMAN_HA_USECS_PER_MS;
}

/* Milliseconds left until deadline, 0 once it has passed. */
static inline long
barman_ha_ms_until(TimestampTz deadline)
{
	long		ms = (deadline - GetCurrentTimestamp()) / BARMAN_HA_USECS_PER_MS;

	return ms > 0 ? ms : 0;
}

/* Share of max_slot_wal_keep_size the slot may retain before a WARNING. */
#define BARMAN_HA_SLOT_WARN_PERCENT 80

/* settings (guc.c) */
extern bool barman_ha_enabled;
extern char *barman_ha_node_name;
extern char *barman_ha_slot_name;
extern char *barman_ha_helper_path;
extern int	barman_ha_helper_timeout;
extern int	barman_ha_retry_interval;
extern int	barman_ha_reconcile_interval;
extern int	barman_ha_standby_slot;

extern void barman_ha_define_gucs(void);
extern const char *barman_ha_effective_node_name(void);

/* one entry of the event ring */
typedef struct BarmanHaEvent
{
	TimestampTz at;
	char		event[NAMEDATALEN];
	char		detail[BARMAN_HA_MSG_LEN];
	double		duration_ms;
	bool		ok;
} BarmanHaEvent;

/* everything the workers report, in shared memory under "lock" */
typedef struct BarmanHaState
{
	LWLock	   *lock;
	pid_t		worker_pid;		/* the worker now running, or 0 */
	Latch	   *worker_latch;	/* its latch, to ask for a reconcile */
	RouteState	route_state;
	char		routed_node[BARMAN_HA_NAME_LEN];
	char		last_action[NAMEDATALEN];
	TimestampTz last_action_at;
	char		last_error[BARMAN_HA_MSG_LEN];
	XLogRecPtr	primary_slot_lsn;	/* on a standby with 'sync': the slot it
									 * follows, invalid if unknown */
	TimestampTz last_success_at;	/* last helper call that succeeded, or 0 */
	uint64		helper_failures;	/* failed helper calls since server start */
	uint64		slot_invalidations; /* times the slot was found lost */
	char		slot_invalidation_reason[NAMEDATALEN];	/* why, the last time */
	SlotWalStatus slot_wal_seen;	/* wal_status at the workers' last look */
	bool		slot_near_limit;	/* slot over BARMAN_HA_SLOT_WARN_PERCENT of
									 * max_slot_wal_keep_size at that look */
	uint64		events_written; /* total ever written; ring index is % */
	BarmanHaEvent events[BARMAN_HA_EVENTS];
} BarmanHaState;

/*
 * A failure, as the DBA sees it in each of the three places it is said:
 * an event in the ring, the status's last_error, and the server log.
 */
typedef struct BarmanHaFailure
{
	const char *event;			/* the event's name */
	double		duration_ms;	/* how long the failed action took, or 0 */
	const char *detail;			/* the event's detail */
	const char *last_error;		/* for last_error; NULL: the event's detail */
	int			elevel;			/* LOG or WARNING */
	int			sqlerrcode;		/* ERRCODE_... */
	const char *message;		/* errmsg: lower case, no period */
	const char *log_detail;		/* errdetail, a sentence, or NULL */
	const char *hint;			/* errhint, a sentence, or NULL */
} BarmanHaFailure;

/* shared_state.c */
extern BarmanHaState *barman_ha_state;
extern void barman_ha_shmem_request(void);
extern void barman_ha_shmem_startup(void);
extern bool barman_ha_attach_worker(bool standby);
extern void barman_ha_record_event(const char *event, bool ok,
								   double duration_ms, const char *fmt,...)
			pg_attribute_printf(4, 5);
extern void barman_ha_report_failure(const BarmanHaFailure *failure);
extern void barman_ha_set_route(RouteState state, const char *routed_node);
extern void barman_ha_set_primary_slot_lsn(XLogRecPtr lsn);
extern void barman_ha_count_helper_call(bool ok);
extern const char *barman_ha_route_state_name(RouteState state);

/* slot.c */
typedef struct SlotInfo
{
	bool		exists;
	bool		active;
	XLogRecPtr	restart_lsn;
	/* why PostgreSQL invalidated it, as pg_replication_slots names it; NULL if valid */
	const char *invalidation_reason;
	XLogRecPtr	invalidated_at; /* where it lost WAL, known before 16 only */
} SlotInfo;

/* wal_status and safe_wal_size of a slot, and the position they count from */
typedef struct SlotWal
{
	SlotWalStatus status;
	bool		has_safe_size;	/* false: safe_wal_size is NULL */
	int64		safe_wal_size;
	XLogRecPtr	current;
} SlotWal;

extern SlotInfo barman_ha_slot_info(const char *name);
extern bool barman_ha_ensure_slot(const char *name);
extern void barman_ha_drop_inactive_slot(const char *name);
extern bool barman_ha_advance_slot(const char *name, XLogRecPtr target);
extern SlotWal barman_ha_slot_wal(const SlotInfo *info, bool in_recovery);
extern const char *barman_ha_slot_wal_status_name(SlotWalStatus status);
extern void barman_ha_check_slot_wal(const char *name);

/* standby_upstream.c: on a standby, the barman slot of its primary */
extern bool barman_ha_read_primary_slot(const char *name, bool *exists,
										XLogRecPtr *restart_lsn,
										char *error, size_t error_size);

/* helper_exec.c */
typedef struct HelperResult
{
	int			exit_code;		/* the helper's exit code, or -1 */
	char		last_error[BARMAN_HA_MSG_LEN];	/* last line of its stderr */
} HelperResult;

extern void barman_ha_run_helper(const char *const *args, HelperResult *result);

/* ssh_connection.c */
extern void barman_ha_keep_ssh_connection(void);

/* worker.c */
extern void barman_ha_register_workers(void);
extern PGDLLEXPORT void barman_ha_primary_main(Datum main_arg);
extern PGDLLEXPORT void barman_ha_standby_main(Datum main_arg);

/* reconcile_primary.c, reconcile_standby.c: one pass, returns ms to wait */
extern long barman_ha_reconcile_primary(bool forced);
extern long barman_ha_reconcile_standby(bool forced);

#endif							/* BARMAN_HA_H */
