/* repmgr_barman_ha--1.1--1.2.sql: barman_ha_status() says why the slot was last invalidated */

\echo Use "ALTER EXTENSION repmgr_barman_ha UPDATE TO '1.2'" to load this file. \quit

-- A function's OUT columns cannot change in place: the view over it goes
-- with it and comes back with the new columns.
DROP VIEW barman_ha;
DROP FUNCTION barman_ha_status();

CREATE FUNCTION barman_ha_status(
    OUT role text,
    OUT timeline integer,
    OUT node_name text,
    OUT slot_name name,
    OUT slot_exists boolean,
    OUT slot_active boolean,
    OUT slot_restart_lsn pg_lsn,
    OUT slot_retained_bytes bigint,
    OUT route_state text,
    OUT routed_node text,
    OUT last_action text,
    OUT last_action_at timestamptz,
    OUT last_error text,
    OUT worker_pid integer,
    OUT primary_slot_restart_lsn pg_lsn,
    OUT slot_sync_lag_bytes bigint,
    OUT wal_status text,
    OUT safe_wal_size bigint,
    OUT slot_invalidations bigint,
    OUT last_success_age double precision,
    OUT helper_failures bigint,
    OUT fenced boolean,
    OUT slot_invalidation_reason text)
RETURNS record
AS 'MODULE_PATHNAME', 'barman_ha_status_1_2'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION barman_ha_status() IS
'role, timeline, barman slot (with its wal_status, safe_wal_size and why it was last invalidated) and route state of this node, as repmgr_barman_ha sees them';

CREATE VIEW barman_ha AS SELECT * FROM barman_ha_status();

COMMENT ON VIEW barman_ha IS 'the one row of barman_ha_status()';

-- Status reveals addresses of the setup: monitoring roles only.
REVOKE ALL ON FUNCTION barman_ha_status() FROM PUBLIC;
REVOKE ALL ON barman_ha FROM PUBLIC;
GRANT EXECUTE ON FUNCTION barman_ha_status() TO pg_monitor;
GRANT SELECT ON barman_ha TO pg_monitor;
