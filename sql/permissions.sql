-- Status and events for monitoring roles, reconcile for superusers.
CREATE ROLE regress_barman_ha_nobody;
CREATE ROLE regress_barman_ha_monitor IN ROLE pg_monitor;

SET ROLE regress_barman_ha_nobody;
SELECT role FROM barman_ha_status();
SELECT count(*) FROM barman_ha_events();
SELECT role FROM barman_ha;
SELECT barman_ha_reconcile();
RESET ROLE;

SET ROLE regress_barman_ha_monitor;
SELECT role, slot_name FROM barman_ha_status();
SELECT wal_status, helper_failures, fenced FROM barman_ha_status();
SELECT count(*) > 0 AS has_events FROM barman_ha_events();
SELECT role FROM barman_ha;
SELECT barman_ha_reconcile();
RESET ROLE;

SELECT barman_ha_reconcile();

-- the helper path is for superusers to see
SET ROLE regress_barman_ha_nobody;
SHOW barman_ha.helper_path;
RESET ROLE;

DROP ROLE regress_barman_ha_nobody;
DROP ROLE regress_barman_ha_monitor;
