-- The SQL surface on a primary without a helper: the worker keeps the slot,
-- routing is disabled.
CREATE EXTENSION repmgr_barman_ha;

-- The primary worker creates the slot with WAL reserved shortly after start.
DO $$
BEGIN
  FOR i IN 1..300 LOOP
    EXIT WHEN EXISTS (SELECT FROM barman_ha_events() WHERE event = 'slot_created');
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;

SELECT role, timeline, node_name, slot_name, slot_exists, slot_active,
       slot_restart_lsn IS NOT NULL AS reserved, slot_retained_bytes >= 0 AS retained,
       route_state, routed_node, last_error, worker_pid > 0 AS worker_running
  FROM barman_ha_status();

SELECT slot_type, restart_lsn IS NOT NULL AS reserved, temporary
  FROM pg_replication_slots WHERE slot_name = 'barman';

-- the slot's WAL as pg_replication_slots sees it; no limit, no helper:
-- no safe_wal_size, no route check yet, nothing failed or fenced
SELECT wal_status, safe_wal_size, slot_invalidations, last_success_age,
       helper_failures, fenced
  FROM barman_ha_status();
SELECT s.wal_status = r.wal_status AS same_wal_status,
       s.safe_wal_size IS NOT DISTINCT FROM r.safe_wal_size AS same_safe_wal_size
  FROM barman_ha_status() s JOIN pg_replication_slots r ON r.slot_name = s.slot_name;

-- the view shows the same row
SELECT role, slot_name, route_state, wal_status, fenced FROM barman_ha;

SELECT event, ok FROM barman_ha_events() WHERE event IN ('worker_started', 'slot_created');
SELECT count(*) <= 100 AS bounded FROM barman_ha_events();

-- a slot dropped behind the worker's back is back after a reconcile
SELECT pg_drop_replication_slot('barman');
SELECT barman_ha_reconcile();
DO $$
BEGIN
  FOR i IN 1..300 LOOP
    EXIT WHEN (SELECT slot_exists FROM barman_ha_status());
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
SELECT slot_exists, slot_restart_lsn IS NOT NULL AS reserved FROM barman_ha_status();

-- a slot made the way event scripts make it (no WAL reserved) is repaired
SELECT pg_drop_replication_slot('barman');
SELECT 'created' FROM pg_create_physical_replication_slot('barman', false);
SELECT barman_ha_reconcile();
DO $$
BEGIN
  FOR i IN 1..300 LOOP
    EXIT WHEN EXISTS (SELECT FROM barman_ha_events() WHERE event = 'slot_repaired');
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
SELECT restart_lsn IS NOT NULL AS reserved FROM pg_replication_slots WHERE slot_name = 'barman';
SELECT event, ok FROM barman_ha_events() WHERE event = 'slot_repaired';
