-- Every barman_ha setting refuses bad values when it is set, with a clear
-- message, and keeps its old value.
SHOW barman_ha.enabled;
SHOW barman_ha.slot_name;
SHOW barman_ha.helper_timeout;
SHOW barman_ha.retry_interval;
SHOW barman_ha.reconcile_interval;
SHOW barman_ha.standby_slot;

-- reloadable settings cannot be set in a session
SET barman_ha.slot_name = 'other';

-- ALTER SYSTEM checks values the way a reload would
ALTER SYSTEM SET barman_ha.slot_name = 'Barman';
ALTER SYSTEM SET barman_ha.slot_name = '';
ALTER SYSTEM SET barman_ha.slot_name = 'a-b';
ALTER SYSTEM SET barman_ha.slot_name = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
ALTER SYSTEM SET barman_ha.node_name = 'db 1';
ALTER SYSTEM SET barman_ha.node_name = 'db1;reboot';
ALTER SYSTEM SET barman_ha.node_name = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
ALTER SYSTEM SET barman_ha.helper_path = 'barman_ha_client';
ALTER SYSTEM SET barman_ha.helper_timeout = 0;
ALTER SYSTEM SET barman_ha.helper_timeout = '2h';
ALTER SYSTEM SET barman_ha.helper_timeout = 'soon';
ALTER SYSTEM SET barman_ha.retry_interval = 10;
ALTER SYSTEM SET barman_ha.retry_interval = -1;
ALTER SYSTEM SET barman_ha.reconcile_interval = 0;
ALTER SYSTEM SET barman_ha.reconcile_interval = '2d';
ALTER SYSTEM SET barman_ha.standby_slot = 'delete';
ALTER SYSTEM SET barman_ha.enabled = 'maybe';
ALTER SYSTEM SET barman_ha.no_such_setting = 1;

-- good values are taken, with units
ALTER SYSTEM SET barman_ha.slot_name = 'barman_2';
ALTER SYSTEM SET barman_ha.node_name = 'db1.example-2';
ALTER SYSTEM SET barman_ha.node_name = '';
ALTER SYSTEM SET barman_ha.helper_path = '/usr/local/bin/barman_ha_client';
ALTER SYSTEM SET barman_ha.helper_path = '';
ALTER SYSTEM SET barman_ha.helper_timeout = '1min';
ALTER SYSTEM SET barman_ha.retry_interval = '5s';
ALTER SYSTEM SET barman_ha.reconcile_interval = '1min';
ALTER SYSTEM SET barman_ha.standby_slot = 'keep';
ALTER SYSTEM SET barman_ha.standby_slot = 'drop';
ALTER SYSTEM SET barman_ha.enabled = off;
ALTER SYSTEM RESET ALL;

-- nothing of the above reached the running values
SHOW barman_ha.slot_name;
SHOW barman_ha.enabled;
