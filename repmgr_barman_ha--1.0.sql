/* repmgr_barman_ha--1.0.sql: the SQL API of repmgr_barman_ha */

\echo Use "CREATE EXTENSION repmgr_barman_ha" to load this file. \quit

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
    OUT slot_sync_lag_bytes bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'barman_ha_status'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION barman_ha_status() IS
'role, timeline, barman slot and route state of this node, as repmgr_barman_ha sees them';

CREATE VIEW barman_ha AS SELECT * FROM barman_ha_status();

COMMENT ON VIEW barman_ha IS 'the one row of barman_ha_status()';

CREATE FUNCTION barman_ha_events(
    OUT at timestamptz,
    OUT event text,
    OUT detail text,
    OUT duration_ms double precision,
    OUT ok boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'barman_ha_events'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION barman_ha_events() IS
'the last 100 actions of repmgr_barman_ha''s workers on this node, oldest first';

CREATE FUNCTION barman_ha_reconcile()
RETURNS boolean
AS 'MODULE_PATHNAME', 'barman_ha_reconcile'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION barman_ha_reconcile() IS
'wakes repmgr_barman_ha''s worker for a reconcile now; false when no worker runs';

-- Status reveals addresses of the setup: monitoring roles only.
REVOKE ALL ON FUNCTION barman_ha_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION barman_ha_events() FROM PUBLIC;
REVOKE ALL ON barman_ha FROM PUBLIC;
GRANT EXECUTE ON FUNCTION barman_ha_status() TO pg_monitor;
GRANT EXECUTE ON FUNCTION barman_ha_events() TO pg_monitor;
GRANT SELECT ON barman_ha TO pg_monitor;

-- Reconcile runs the privileged helper: superusers only, unless granted.
REVOKE ALL ON FUNCTION barman_ha_reconcile() FROM PUBLIC;
