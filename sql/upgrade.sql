-- The SQL API's versions: 1.0 installed and its status called with the new
-- library, updated in place to 1.1 and called again, updated to the default
-- version, and a fresh install of it with the same objects as the updated one.

-- every member of the extension, with what makes it what it is; the view's
-- row type and its array type, members on PostgreSQL 17 and 18 but not on 15,
-- come with the view and are left out
CREATE TEMP VIEW extension_objects AS
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS object,
       coalesce(
         (SELECT format('(%s) returns %s, symbol %s, volatile %s, strict %s, parallel %s, acl %s',
                        pg_get_function_identity_arguments(p.oid),
                        pg_get_function_result(p.oid), p.prosrc, p.provolatile,
                        p.proisstrict, p.proparallel, p.proacl)
            FROM pg_proc p
           WHERE d.classid = 'pg_proc'::regclass AND p.oid = d.objid),
         (SELECT format('%s acl %s', pg_get_viewdef(c.oid), c.relacl)
            FROM pg_class c
           WHERE d.classid = 'pg_class'::regclass AND c.oid = d.objid)) AS definition,
       obj_description(d.objid, d.classid::regclass::text) AS comment
  FROM pg_depend d
  JOIN pg_extension e ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
 WHERE e.extname = 'repmgr_barman_ha' AND d.deptype = 'e'
   AND NOT EXISTS (SELECT FROM pg_type t
                    WHERE d.classid = 'pg_type'::regclass AND t.oid = d.objid
                      AND (t.typrelid <> 0 OR
                           EXISTS (SELECT FROM pg_type e
                                    WHERE e.oid = t.typelem AND e.typrelid <> 0)));

DROP EXTENSION repmgr_barman_ha;
CREATE EXTENSION repmgr_barman_ha VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'repmgr_barman_ha';

-- 1.0's declaration still works with the new library: its 16 columns
SELECT role, slot_name, slot_exists, route_state, slot_sync_lag_bytes
  FROM barman_ha_status();
SELECT count(*) AS columns FROM pg_attribute
 WHERE attrelid = 'barman_ha'::regclass AND attnum > 0;
SELECT role, route_state FROM barman_ha;

ALTER EXTENSION repmgr_barman_ha UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'repmgr_barman_ha';

-- 1.1's columns, in the function and in the view
SELECT role, wal_status, safe_wal_size, slot_invalidations, last_success_age,
       helper_failures, fenced
  FROM barman_ha_status();
SELECT count(*) AS columns FROM pg_attribute
 WHERE attrelid = 'barman_ha'::regclass AND attnum > 0;
SELECT role, wal_status, fenced FROM barman_ha;

ALTER EXTENSION repmgr_barman_ha UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'repmgr_barman_ha';

-- 1.2's column: the slot was never invalidated here
SELECT slot_invalidations, slot_invalidation_reason FROM barman_ha_status();
SELECT count(*) AS columns FROM pg_attribute
 WHERE attrelid = 'barman_ha'::regclass AND attnum > 0;
SELECT slot_invalidation_reason FROM barman_ha;

-- permissions as 1.0 had them, on the new function and view
CREATE ROLE regress_barman_ha_nobody;
CREATE ROLE regress_barman_ha_monitor IN ROLE pg_monitor;
SET ROLE regress_barman_ha_nobody;
SELECT wal_status FROM barman_ha_status();
SELECT wal_status FROM barman_ha;
RESET ROLE;
SET ROLE regress_barman_ha_monitor;
SELECT wal_status, fenced FROM barman_ha_status();
SELECT wal_status, fenced FROM barman_ha;
RESET ROLE;
DROP ROLE regress_barman_ha_nobody;
DROP ROLE regress_barman_ha_monitor;

CREATE TEMP TABLE updated AS SELECT * FROM extension_objects;
SELECT object FROM extension_objects ORDER BY object;

-- a fresh install of the default version
DROP EXTENSION repmgr_barman_ha;
CREATE EXTENSION repmgr_barman_ha;
SELECT extversion FROM pg_extension WHERE extname = 'repmgr_barman_ha';
CREATE TEMP TABLE fresh AS SELECT * FROM extension_objects;
SELECT object FROM extension_objects ORDER BY object;

-- the same objects both ways: no row here
(SELECT 'only updated' AS side, * FROM updated EXCEPT SELECT 'only updated', * FROM fresh)
UNION ALL
(SELECT 'only fresh', * FROM fresh EXCEPT SELECT 'only fresh', * FROM updated);
SELECT count(*) AS objects FROM fresh;
SELECT p.prosrc AS symbol, array_length(p.proallargtypes, 1) AS columns,
       (SELECT string_agg(a.grantee::regrole || ' ' || a.privilege_type, ', ')
          FROM aclexplode(p.proacl) a WHERE a.grantee <> p.proowner) AS granted
  FROM pg_proc p WHERE p.proname = 'barman_ha_status';
