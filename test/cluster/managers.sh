# managers.sh: bring-up of the cluster under a manager other than repmgr (BHA_MANAGER),
# sourced by lib.sh.  Hooks lib.sh calls when they exist: bha_mgr_up (after the network,
# the files, the backup host and the nodes' sshd are up), bha_mgr_hba (extra pg_hba lines),
# bha_mgr_down (before lib.sh's own teardown).
#   pg_auto_failover  monitor on PREFIX-monitor (10.213.0.40), pg_autoctl on every node
#   patroni           etcd on PREFIX-etcd (10.213.0.41), patroni on every node
#
# Both run their daemons in the node's namespace as postgres, each with a pid file under
# $BHA_DATA/HOST (manager.pid) and a log (manager.log); the teardown ends them by pid.

BHA_PGAF=/usr/bin/pg_autoctl

bha_mgr_hba() {			# the manager's own connections: trusted from its hosts only
	local h
	[ "$BHA_MANAGER" = repmgr ] && return 0
	for h in $BHA_NODES $BHA_EXTRA_HOSTS; do
		echo "host    all          all               ${BHA_ADDR[$h]}/32     trust"
		echo "host    replication  all               ${BHA_ADDR[$h]}/32     trust"
	done
}

bha_mgr_down() {
	local h
	for h in $BHA_NODES $BHA_EXTRA_HOSTS; do bha_kill_pidfile "$BHA_DATA/$h/manager.pid"; done
	sleep 1
}

bha_mgr_up() {
	case "$BHA_MANAGER" in
	pg_auto_failover) bha_pgaf_up ;;
	patroni) bha_patroni_up ;;
	*) bha_die "unknown BHA_MANAGER '$BHA_MANAGER'" ;;
	esac
}

# bha_daemon HOST NAME CMD...: CMD as postgres in HOST's namespace, in the background, its pid in
# $BHA_DATA/HOST/NAME.pid, its output in $BHA_DATA/HOST/NAME.log
bha_daemon() {
	local h=$1 name=$2 f=$BHA_DATA/$1/$2; shift 2
	rm -f "$f.pid"
	# shellcheck disable=SC2016
	bha_in "$h" runuser -u postgres -- setsid bash -c 'echo $$ >"$1.pid"; shift; exec "$@" >>"$0.log" 2>&1' \
		"$f" "$f" "$@" </dev/null >/dev/null 2>&1 &
	bha_wait 5 "$name on $h" test -s "$f.pid"
}

# ---------------------------------------------------------------- pg_auto_failover

# pg_autoctl keeps its own files under XDG folders (keyed by PGDATA): one set per host
bha_pgaf_env() {
	local d=$BHA_DATA/$1
	echo "XDG_CONFIG_HOME=$d/xdg/config" "XDG_DATA_HOME=$d/xdg/data" "XDG_RUNTIME_DIR=$d/xdg/run" \
		"PGHOST=$d/run" "PGPORT=5432" "PG_CONFIG=$BHA_PGBIN/pg_config" "PATH=$BHA_PGBIN:/usr/bin:/bin"
}
bha_pgaf() {			# bha_pgaf HOST ARGS...: pg_autoctl as postgres on HOST
	local h=$1; shift
	# shellcheck disable=SC2046
	bha_as "$h" postgres env $(bha_pgaf_env "$h") "$BHA_PGAF" "$@"
}
bha_pgaf_run() {		# pg_autoctl run (the keeper or the monitor) on HOST, in the background
	# shellcheck disable=SC2046
	bha_daemon "$1" manager env $(bha_pgaf_env "$1") "$BHA_PGAF" run --pgdata "$BHA_DATA/$1/pgdata"
}
bha_pgaf_monitor_uri() { echo "postgres://autoctl_node@${BHA_ADDR[monitor]}:5432/pg_auto_failover?sslmode=disable"; }
# bha_pgaf_state NODE: the node's current state as the monitor reports it
bha_pgaf_state() {
	bha_as monitor postgres "$BHA_PGBIN/psql" -X -qAt -h "$BHA_DATA/monitor/run" -d pg_auto_failover \
		-c "SELECT reportedstate FROM pgautofailover.node WHERE nodename = '$1'" 2>/dev/null
}
bha_pgaf_state_is() { [ "$(bha_pgaf_state "$1")" = "$2" ]; }
# the monitor's health checks and timeouts, shortened (defaults: 5 s period, 20 s unhealthy)
bha_pgaf_monitor_conf() {
	cat <<EOC
unix_socket_directories = '$BHA_DATA/monitor/run'
pgautofailover.health_check_period = 1000
pgautofailover.health_check_timeout = 1000
pgautofailover.health_check_max_retries = 1
pgautofailover.health_check_retry_delay = 500
pgautofailover.node_considered_unhealthy_timeout = 3000
EOC
	# after a crash the new primary takes writes only once this passed (default 30 s): BHA_PGAF_DEMOTE_MS
	[ -n "${BHA_PGAF_DEMOTE_MS:-}" ] && echo "pgautofailover.primary_demote_timeout = $BHA_PGAF_DEMOTE_MS"
	return 0
}

bha_pgaf_up() {
	local m=$BHA_DATA/monitor n
	bha_log "monitor: pg_autoctl create monitor, run"
	bha_mkdir postgres:postgres 0755 "$m" "$m/run" "$m/xdg"
	# our own initdb first: its socket folder must be in place before pg_autoctl starts it
	bha_mkdir postgres:postgres 0700 "$m/pgdata"
	bha_as monitor postgres "$BHA_PGBIN/initdb" -D "$m/pgdata" -U postgres -A trust --no-instructions >/dev/null || return 1
	bha_pgaf_monitor_conf >>"$m/pgdata/postgresql.conf"
	{ echo "local all all trust"; for n in $BHA_NODES; do echo "host all all ${BHA_ADDR[$n]}/32 trust"; done; } |
		bha_write "$m/pgdata/pg_hba.conf" postgres:postgres 0600
	bha_pgaf monitor create monitor --pgdata "$m/pgdata" --pgport 5432 --hostname "${BHA_ADDR[monitor]}" \
		--auth trust --no-ssl >"$m/create.log" 2>&1 || { cat "$m/create.log" >&2; return 1; }
	bha_pgaf_run monitor || return 1
	bha_wait 30 "the monitor" bha_as monitor postgres "$BHA_PGBIN/psql" -X -qAt -h "$m/run" -d pg_auto_failover -c "SELECT 1 FROM pgautofailover.node LIMIT 0" || return 1

	bha_log "db1: initdb, users, extension; pg_autoctl create postgres (an existing primary), run"
	bha_mkdir postgres:postgres 0755 "$BHA_DATA/db1/xdg"
	bha_db1_init || return 1
	bha_pg_stop db1 || return 1		# pg_autoctl takes over a stopped cluster only
	bha_pgaf_create db1 || return 1
	bha_wait 60 "db1 single" bha_pgaf_state_is db1 single || return 1
	for n in $BHA_STANDBYS; do
		bha_log "$n: pg_autoctl create postgres (pg_basebackup from db1), run"
		bha_mkdir postgres:postgres 0755 "$BHA_DATA/$n/xdg"
		bha_node_conf "$n"
		bha_pgaf_create "$n" || return 1
		bha_wait 120 "$n secondary" bha_pgaf_state_is "$n" secondary || return 1
	done
	bha_wait 30 "db1 primary" bha_pgaf_state_is db1 primary || return 1
	bha_log "slot and endpoints on db1 (Barman asynchronous: pg_auto_failover owns synchronous_standby_names)"
	BHA_SYNC='' bha_node_conf_all 0 1 || return 1
	bha_wait 60 "the extension to create slot $BHA_SLOT on db1" bha_slot_exists db1 || return 1
	bha_wait 60 "the extension to route both endpoints to db1" bha_endpoints_on db1 || return 1
	bha_log "barman: cron loop, streaming, two base backups"
	bha_barman_up
}

# bha_pgaf_create NODE: register NODE with the monitor and start its keeper.  The first node
# brings its own running cluster (our settings and pg_hba); the others are cloned from it.
bha_pgaf_create() {
	local n=$1 d=$BHA_DATA/$1
	bha_pgaf "$n" create postgres --pgdata "$d/pgdata" --pgctl "$BHA_PGBIN/pg_ctl" --pghost "$d/run" --pgport 5432 \
		--hostname "${BHA_ADDR[$n]}" --name "$n" --monitor "$(bha_pgaf_monitor_uri)" --auth trust \
		--ssl-mode require --server-cert "$d/server.crt" --server-key "$d/server.key" \
		>"$d/create.log" 2>&1 || { cat "$d/create.log" >&2; return 1; }
	bha_pgaf_run "$n"
}

# ---------------------------------------------------------------- Patroni (etcd on its own host)
#
# BHA_PATRONI_SLOT: how the barman slot lives with Patroni, which drops physical slots it does
#   not manage (docs/managers.md):
#   ignore (default)  bootstrap.dcs.ignore_slots [{name: barman, type: physical}], and our
#                     barman_ha.standby_slot = sync keeps the standbys' copies in step
#   permanent         bootstrap.dcs.slots {barman: {type: physical}} (Patroni creates it on the
#                     leader), barman_ha.standby_slot = keep
# BHA_PATRONI_SYNC: 0 (default) synchronous_mode off, our synchronous_standby_names with Barman
#   stays in force; 1 synchronous_mode on (Patroni writes synchronous_standby_names: members only)

BHA_PATRONI_SLOT=${BHA_PATRONI_SLOT:-ignore}
BHA_PATRONI_SYNC=${BHA_PATRONI_SYNC:-0}

bha_etcd_up() {
	local d=$BHA_DATA/etcd a=${BHA_ADDR[etcd]}
	bha_mkdir postgres:postgres 0755 "$d" && bha_mkdir postgres:postgres 0700 "$d/data"
	bha_daemon etcd manager /usr/bin/etcd --name etcd1 --data-dir "$d/data" \
		--listen-client-urls "http://$a:2379" --advertise-client-urls "http://$a:2379" \
		--listen-peer-urls "http://$a:2380" --initial-advertise-peer-urls "http://$a:2380" \
		--initial-cluster "etcd1=http://$a:2380" --initial-cluster-state new || return 1
	bha_wait 30 "etcd" bha_in etcd bash -c "exec 3<>/dev/tcp/$a/2379"
}

bha_patroni_conf() {		# bha_patroni_conf NODE
	local n=$1 d=$BHA_DATA/$1 a=${BHA_ADDR[$1]} slots
	if [ "$BHA_PATRONI_SLOT" = permanent ]; then
		slots="    slots:
      $BHA_SLOT:
        type: physical"
	else
		slots="    ignore_slots:
      - name: $BHA_SLOT
        type: physical"
	fi
	bha_write "$d/patroni.yml" postgres:postgres 0600 <<EOC
scope: $BHA_PREFIX
name: $n
log:
  level: INFO
restapi:
  listen: $a:8008
  connect_address: $a:8008
etcd3:
  host: ${BHA_ADDR[etcd]}:2379
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    synchronous_mode: $([ "$BHA_PATRONI_SYNC" = 1 ] && echo true || echo false)
$slots
    postgresql:
      use_pg_rewind: true
      use_slots: true
  method: bha
  bha:
    command: $d/bootstrap.sh
    no_params: true
postgresql:
  listen: '*:5432'
  connect_address: $a:5432
  data_dir: $d/pgdata
  bin_dir: $BHA_PGBIN
  use_unix_socket: true
  use_unix_socket_repl: false
  basebackup:
    - checkpoint: fast
  authentication:
    superuser:
      username: postgres
    replication:
      username: patroni_repl
    rewind:
      username: postgres
  parameters:
    unix_socket_directories: '$d/run'
    shared_preload_libraries: 'repmgr_barman_ha'
    wal_keep_size: 128MB
    max_wal_senders: 10
    max_replication_slots: 10
    wal_log_hints: 'on'
  pg_hba:
$(bha_hba | grep -v '^#' | sed 's/^/    - /')
EOC
	# the first primary: initdb with our settings (Patroni keeps them as postgresql.base.conf)
	bha_write "$d/bootstrap.sh" postgres:postgres 0755 <<EOC
#!/bin/sh
set -e
$BHA_PGBIN/initdb -D "$d/pgdata" -U postgres -A peer --no-instructions
cat "$d/pg_conf.add" >>"$d/pgdata/postgresql.conf"
EOC
	bha_pg_conf | bha_write "$d/pg_conf.add" postgres:postgres 0644
}
bha_patroni_start() { bha_daemon "$1" manager /usr/bin/patroni "$BHA_DATA/$1/patroni.yml"; }
bha_patronictl() { bha_in "$1" runuser -u postgres -- /usr/bin/patronictl -c "$BHA_DATA/$1/patroni.yml" "${@:2}"; }
# bha_patroni_is NODE primary|replica: the node's REST API answers 200 for that role
bha_patroni_is() { bha_in "$1" curl -sf -o /dev/null -m 2 "http://${BHA_ADDR[$1]}:8008/$2"; }

bha_patroni_up() {
	local n
	bha_log "etcd on $(bha_ns etcd)"
	bha_etcd_up || return 1
	for n in $BHA_NODES; do bha_patroni_conf "$n"; bha_mkdir postgres:postgres 0700 "$BHA_DATA/$n/pgdata"; done
	# a barman_ha.standby_slot of its own per integration (managers.md)
	bha_log "db1: patroni bootstrap (initdb with our settings), users, extension"
	bha_node_conf db1
	bha_patroni_start db1 || return 1
	bha_wait 90 "db1 leader" bha_patroni_is db1 primary || return 1
	bha_db1_objects || return 1
	for n in $BHA_STANDBYS; do
		bha_log "$n: patroni replica (pg_basebackup from db1)"
		bha_node_conf "$n"
		bha_patroni_start "$n" || return 1
		bha_wait 120 "$n streaming from db1" bha_streams_from db1 "$n" || return 1
	done
	bha_log "slot and endpoints on db1"
	bha_first_route || return 1
	bha_log "barman: cron loop, streaming, two base backups"
	bha_barman_up
}

# ---------------------------------------------------------------- scenarios of 41 and 42
# The parts of 41_pg_auto_failover.t and 42_patroni.t that are the same under either manager.

# bha_mgr_host_crash WHAT SHOW: after a first failover db1 -> db2 (writer w1), db2's host
# crashes (bha_crash) under writer w2 and the manager promotes db1; no row of either writer
# lost, no receive-wal --reset.  SHOW: the manager's view, on failure.  Sets BHA_RTO.
bha_mgr_host_crash() {
	bha_fault_failover w2 1000000 db1 "$1" "$2" bha_crash db2
	bha_writer_kept w2 db1
	is "$(bha_writer_lost w1 db1)" "" "every row writer 1 saw committed is on db1"
	t_ok "Barman needed no receive-wal --reset" bha_barman_no_reset
}

# bha_mgr_stale_back: once db2, the crashed primary, is back as a standby of db1: the
# endpoints stayed on db1, db2 keeps a copy of the slot, Barman is whole (check, no WAL gap).
bha_mgr_stale_back() {
	t_ok "both endpoints stay on db1" bha_endpoints_on db1
	t_ok "db2 keeps a copy of the barman slot again" bha_wait 30 "slot on db2" bha_slot_exists db2
	t_ok "barman check OK on db1" bha_wait 90 "barman check OK" bha_barman_check_ok || bha_barman_check | grep -v ': OK'
	is "$(bhf_wal_report)" 0 "no WAL segment missing from Barman's archive across timelines 1, 2, 3"
}
