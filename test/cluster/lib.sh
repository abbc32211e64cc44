# lib.sh: the namespace cluster of repmgr_barman_ha, as sourceable bash functions.
#
# Hosts are network namespaces on one machine, joined by a bridge that lives in a
# namespace of its own (nothing of 10.213.0.0/24 on the root namespace, no default
# routes):
#   PREFIX-backup 10.213.0.10   Barman, barman_ha_orchestrator (+ its watch) + barman_ha_nat, sshd, NAT endpoints
#   PREFIX-backup2 10.213.0.13  with BHA_PAIR=1 only: the second backup host (pair.sh); the endpoints
#                               and the claims then go to keepalived's virtual address 10.213.0.9
#   PREFIX-db1    10.213.0.11   PostgreSQL + repmgr_barman_ha + repmgrd, sshd
#   PREFIX-db2    10.213.0.12   idem
#   PREFIX-app    10.213.0.20   clients (through BACKUP:54322)
#   PREFIX-br     the bridge
# Per-host /etc files live in /etc/netns/PREFIX-HOST/ ("ip netns exec" bind-mounts them
# over /etc): the programs' configs and Barman's.  Everything else lives under $BHA_DATA
# (root-owned 0755, so sshd's StrictModes accepts the keys there).
#
# Environment: BHA_PREFIX (default bha), BHA_DATA (default /var/lib/bha-cluster/$BHA_PREFIX),
# BHA_PG_MAJOR (default: the major of the newest server headers, as Debian's pg_config picks them),
# BHA_STANDBY_SLOT (barman_ha.standby_slot, default drop: the behaviour of the article's setup),
# BHA_NODE_COUNT (default 2: db1..dbN, dbI at 10.213.0.(10+I)) or BHA_NODES (default "db1 db2"),
# BHA_SYNC ('FIRST' or 'ANY', default FIRST: synchronous_standby_names = 'FIRST 1 (the other
# nodes, barman_receive_wal)'; '' for none; BHA_SYNC_NUM the 1), BHA_MANAGER (repmgr, default; pg_auto_failover
# or patroni: their bring-up lives in managers.sh), BHA_TEMPLATE (a directory: the run's template, see
# bha_template), BHA_QUIET=1 silences progress lines,
# BHA_PG_EXTRA (postgresql.conf lines added on every node, e.g. "wal_sender_timeout = '10s'"),
# BHA_PAIR=1 (a second backup host: pair.sh).
#
# Every wait is bounded (bha_wait) and says what it waited for when it gives up.
# Processes are only ever ended by pid: pid files, and the pids inside our own namespaces.

# The TAP functions (ok, t_ok, is, like, skip, diag, bail, done_testing) are
# test/lib/tap.sh's, shared with the programs' tests.  tap.sh turns on nounset for
# those; a script here keeps the setting it had (the .t scripts set -u themselves).
case $- in *u*) bha_nounset=1 ;; *) bha_nounset=0 ;; esac
# shellcheck source=test/lib/tap.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/tap.sh"
[ "$bha_nounset" = 1 ] || set +u

BHA_PREFIX=${BHA_PREFIX:-bha}
BHA_DATA=${BHA_DATA:-/var/lib/bha-cluster/$BHA_PREFIX}
BHA_TOP=${BHA_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BHA_PG_MAJOR=${BHA_PG_MAJOR:-$(pg_config --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')}
BHA_PGBIN=/usr/lib/postgresql/$BHA_PG_MAJOR/bin
BHA_PGLIB=/usr/lib/postgresql/$BHA_PG_MAJOR/lib
BHA_CLIENT=$BHA_PGBIN/barman_ha_client			# DB nodes: make install, unprivileged
BHA_BACKUP_BIN=$BHA_DATA/backup/bin			# backup host: make install-backup there
if [ "${BHA_INSTALL:-make}" = deb ]; then BHA_BACKUP_BIN=/usr/lib/repmgr-barman-ha; fi	# the packages (bha_check_debs)
BHA_NET=10.213.0
BHA_PAIR=${BHA_PAIR:-0}
BHA_BACKUP_ADDR=$BHA_NET.10
[ "$BHA_PAIR" = 1 ] && BHA_BACKUP_ADDR=$BHA_NET.9	# the pair's virtual address (pair.sh)
BHA_BARMAN_PORT=54321
BHA_APP_PORT=54322
BHA_SERVER=main_backup
BHA_SLOT=barman
BHA_MANAGER=${BHA_MANAGER:-repmgr}		# repmgr | pg_auto_failover | patroni (managers.sh)
if [ -z "${BHA_NODES:-}" ]; then
	BHA_NODES=""
	for ((bha_i = 1; bha_i <= ${BHA_NODE_COUNT:-2}; bha_i++)); do BHA_NODES="$BHA_NODES db$bha_i"; done
	BHA_NODES=${BHA_NODES# }
fi
BHA_NODE_COUNT=$(wc -w <<<"$BHA_NODES")
BHA_SYNC=${BHA_SYNC-FIRST}			# FIRST | ANY | '' (no synchronous replication)
case "$BHA_MANAGER" in				# a manager's own host
pg_auto_failover) BHA_EXTRA_HOSTS=monitor ;;	# PREFIX-monitor 10.213.0.40: the monitor
patroni) BHA_EXTRA_HOSTS=etcd ;;		# PREFIX-etcd 10.213.0.41: etcd
*) BHA_EXTRA_HOSTS="" ;;
esac
BHA_HOSTS="backup $BHA_NODES app${BHA_EXTRA_HOSTS:+ $BHA_EXTRA_HOSTS}"
[ "$BHA_PAIR" = 1 ] && BHA_HOSTS="backup backup2 ${BHA_HOSTS#backup }"
BHA_PASS_APP=app84pw
BHA_PASS_REPMGR=rpm73kx		# in each node's $BHA_DATA/dbN/pgpass (PGPASSFILE: bha_as, the node's sshd)
# The backup host's roles on the nodes, each with a client certificate (CN = role) and no
# password: barman (Barman's conninfo), streaming_barman (streaming_conninfo), barman_ha_check
# (the claim check, the watch), barman_ha_catchup (the orchestrator's barman_conninfo)
BHA_TLS_ROLES="barman streaming_barman barman_ha_check barman_ha_catchup"
BHA_TLS=$BHA_DATA/backup/tls
BHA_NAT_BACKEND=${BHA_NAT_BACKEND:-iptables}	# barman_ha_nat's nat_backend
BHA_STANDBY_SLOT=${BHA_STANDBY_SLOT:-drop}	# the article's setup behaves so; 'sync': docs/zero-gap.md

declare -A BHA_ADDR=([backup]=$BHA_NET.10 [backup2]=$BHA_NET.13 [app]=$BHA_NET.20 [pitr]=$BHA_NET.30 [monitor]=$BHA_NET.40 [etcd]=$BHA_NET.41)
declare -A BHA_NODE_ID=()
for bha_n in $BHA_NODES; do			# dbI: 10.213.0.(10+I), node id I
	BHA_NODE_ID[$bha_n]=${bha_n#db}
	BHA_ADDR[$bha_n]=$BHA_NET.$((10 + ${bha_n#db}))
done
BHA_FIRST=${BHA_NODES%% *}			# the first primary
BHA_STANDBYS=${BHA_NODES#"$BHA_FIRST"}; BHA_STANDBYS=${BHA_STANDBYS# }

bha_ns() { echo "$BHA_PREFIX-$1"; }
# bha_use_prefix PREFIX: point every function at the cluster PREFIX (a test with more than one)
bha_use_prefix() {
	BHA_PREFIX=$1
	BHA_DATA=/var/lib/bha-cluster/$1
	BHA_BACKUP_BIN=$BHA_DATA/backup/bin
	BHA_TLS=$BHA_DATA/backup/tls
}
bha_log() { [ "${BHA_QUIET:-0}" = 1 ] || echo "# [$(date +%T)] $*" >&2; }
bha_die() { echo "cluster: $*" >&2; return 1; }
bha_now_ms() { local t=${EPOCHREALTIME/./}; echo "${t:0:13}"; }
# bha_sleep_until T: sleep until epoch ms T (no sleep once it has passed)
bha_sleep_until() { local left=$(( $1 - $(bha_now_ms) )); [ "$left" -le 0 ] || sleep "$(( left / 1000 )).$(printf %03d $(( left % 1000 )))"; }

# bha_in HOST CMD...: run CMD as root inside HOST's namespace (with its /etc view).
bha_in() { local h=$1; shift; ip netns exec "$(bha_ns "$h")" "$@"; }
# bha_as HOST USER CMD...: same, as USER.
# The host's own password file (a DB node's holds repmgr's): the nodes share one /var/lib/postgresql.
bha_as() { local h=$1 u=$2; shift 2; ip netns exec "$(bha_ns "$h")" runuser -u "$u" -- env PGPASSFILE="$BHA_DATA/$h/pgpass" "$@"; }

# bha_wait SECONDS WHAT CMD...: retry CMD every 0.2 s until it succeeds; fail with a
# clear message after SECONDS.
bha_wait() {
	local limit=$1 what=$2; shift 2
	local end=$(( $(bha_now_ms) + limit * 1000 ))
	until "$@" >/dev/null 2>&1; do
		if [ "$(bha_now_ms)" -ge "$end" ]; then
			echo "cluster: gave up after ${limit}s waiting for $what" >&2
			return 1
		fi
		sleep 0.2
	done
}

# ---------------------------------------------------------------- SQL helpers

# bha_sql NODE [DB] SQL: psql on NODE's own socket as postgres, unaligned tuples only.
bha_sql() {
	local node=$1 db=postgres
	[ $# -ge 3 ] && { db=$2; shift; }
	bha_as "$node" postgres "$BHA_PGBIN/psql" -X -qAt -v ON_ERROR_STOP=1 \
		-h "$BHA_DATA/$node/run" -p 5432 -d "$db" -c "$2"
}

# bha_app_sql SQL: psql from the app host through the application endpoint.
bha_app_sql() {
	bha_in app env PGPASSFILE="$BHA_DATA/app/pgpass" timeout 15 "$BHA_PGBIN/psql" -X -qAt \
		-v ON_ERROR_STOP=1 "host=$BHA_BACKUP_ADDR port=$BHA_APP_PORT dbname=appdb user=app connect_timeout=2" -c "$1"
}

# bha_tls_conninfo ROLE: the keywords of ROLE's connections from the backup host (its
# certificate, the node's checked against the CA)
bha_tls_conninfo() {
	echo "user=$1 sslmode=verify-full sslrootcert=$BHA_TLS/ca.crt sslcert=$BHA_TLS/$1.crt sslkey=$BHA_TLS/$1.key"
}

# bha_endpoint_sql PORT SQL: psql from the backup host through one endpoint, as barman.
bha_endpoint_sql() {
	bha_as backup barman timeout 15 "$BHA_PGBIN/psql" -X -qAt \
		"host=$BHA_BACKUP_ADDR port=$1 dbname=postgres $(bha_tls_conninfo barman) connect_timeout=2" -c "$2"
}

# bha_endpoint_node PORT: which node answers on BACKUP:PORT (db1, db2 or nothing).
bha_endpoint_node() {
	local addr n
	addr=$(bha_endpoint_sql "$1" "SELECT host(inet_server_addr())" 2>/dev/null) || return 1
	for n in $BHA_NODES; do [ "${BHA_ADDR[$n]}" = "$addr" ] && { echo "$n"; return 0; }; done
	return 1
}
bha_endpoint_is() { [ "$(bha_endpoint_node "$1")" = "$2" ]; }

bha_is_primary() { [ "$(bha_sql "$1" "SELECT NOT pg_is_in_recovery()" 2>/dev/null)" = t ]; }
bha_is_standby() { [ "$(bha_sql "$1" "SELECT pg_is_in_recovery()" 2>/dev/null)" = t ]; }
bha_slot_exists() { [ "$(bha_sql "$1" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$BHA_SLOT'" 2>/dev/null)" = 1 ]; }
# a standby's slot as barman_ha.standby_slot wants it: gone with 'drop', present otherwise
bha_standby_slot_ok() { if [ "$BHA_STANDBY_SLOT" = drop ]; then bha_slot_absent "$1"; else bha_slot_exists "$1"; fi; }
bha_slot_absent() { [ "$(bha_sql "$1" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$BHA_SLOT'" 2>/dev/null)" = 0 ]; }
# Barman's receive-wal streams from NODE (seen in NODE's pg_stat_replication).
bha_barman_streams_from() {
	[ "$(bha_sql "$1" "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'barman_receive_wal' AND state = 'streaming'" 2>/dev/null)" = 1 ]
}
bha_has_ext() { [ -f "$BHA_PGLIB/repmgr_barman_ha.so" ]; }
bha_has_client() { [ -x "$BHA_CLIENT" ]; }
bha_status_row() { bha_sql "$1" "SELECT role, route_state, routed_node, last_error FROM barman_ha_status()"; }
bha_route_state_is() { [ "$(bha_sql "$1" "SELECT route_state FROM barman_ha_status()" 2>/dev/null)" = "$2" ]; }
bha_route_ok() { bha_route_state_is "$1" ok; }

# ---------------------------------------------------------------- Barman

bha_barman() { bha_in backup barman -q "$@"; }
bha_barman_check() { bha_in backup barman check "$BHA_SERVER"; }
bha_barman_check_ok() { bha_barman check --nagios "$BHA_SERVER" | grep -q '^BARMAN OK'; }
bha_barman_no_reset() { ! grep -qiE 'resetting|--reset' "$BHA_DATA/backup/log/barman.log"; }
# bha_backup [NODE]: a base backup, DONE with every WAL it needs archived.  Not `backup
# --wait`: a backup that ends exactly on a segment boundary (seen with Barman 3.13 on 17)
# waits for that next segment, which an idle server never fills; the switch after it closes
# it (NODE: the primary, as bha_switch_wal's).
bha_backup() {
	local log=$BHA_DATA/backup/log/backup.log
	bha_in backup timeout 300 barman -q backup "$BHA_SERVER" >>"$log" 2>&1 &&
		bha_switch_wal "$@" >>"$log" 2>&1 &&
		bha_in backup barman -q check-backup "$BHA_SERVER" latest >>"$log" 2>&1 &&
		bha_in backup barman show-backup "$BHA_SERVER" latest 2>>"$log" | grep -qE '^[[:space:]]*Status[[:space:]]*: DONE'
}
# bha_switch_wal [NODE]: switch-wal --archive.  A restore point first gives the current
# segment a record to close, as --force's CHECKPOINT would (Barman 3.4 wants SUPERUSER for
# that; the barman role has the backup grants only).  Barman archives a complete segment
# only once the next one's .partial exists, which takes 8-20 s on an idle server; with NODE
# (the primary), a transaction commits there every half second meanwhile (locally: it
# waits for no standby), so it takes about a second.
bha_switch_wal() {
	local pid
	bha_endpoint_sql "$BHA_BARMAN_PORT" "SELECT pg_create_restore_point('bha_switch_wal')" >/dev/null ||
		return 1
	bha_in backup timeout 120 barman -q switch-wal --archive --archive-timeout 90 "$BHA_SERVER" &
	pid=$!
	while [ $# -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
		bha_sql "$1" "SET synchronous_commit = local; SELECT txid_current()" >/dev/null 2>&1
		sleep 0.5
	done
	wait "$pid"
}

# ---------------------------------------------------------------- network

bha_net_up() {
	local br h
	br=$(bha_ns br)
	ip netns add "$br" || return 1
	ip -n "$br" link set lo up
	ip -n "$br" link add br0 type bridge
	ip -n "$br" link set br0 up
	for h in $BHA_HOSTS; do bha_host_add "$h" || return 1; done
	bha_in backup sysctl -qw net.ipv4.ip_forward=1
}

# bha_host_add HOST: a namespace with one veth into the bridge and its address.
bha_host_add() {
	local h=$1 ns br
	ns=$(bha_ns "$h"); br=$(bha_ns br)
	ip netns add "$ns" || return 1
	ip -n "$ns" link set lo up
	ip -n "$br" link add "v-$h" type veth peer name eth0 netns "$ns" || return 1
	ip -n "$br" link set "v-$h" master br0 up
	ip -n "$ns" addr add "${BHA_ADDR[$h]}/24" dev eth0
	ip -n "$ns" link set eth0 up
}

# bha_link HOST up|down: plug or cut HOST's cable (the bridge side), so nothing answers.
bha_link() { ip -n "$(bha_ns br)" link set "v-$1" "$2"; }

# ---------------------------------------------------------------- files

bha_write() {			# bha_write PATH OWNER MODE < content
	local f=$1
	mkdir -p "$(dirname "$f")"
	cat >"$f" && chown "$2" "$f" && chmod "$3" "$f"
}

bha_mkdir() {			# bha_mkdir OWNER MODE DIR...
	local o=$1 m=$2 d; shift 2
	for d; do mkdir -p "$d" && chown "$o" "$d" && chmod "$m" "$d" || return 1; done
}

# The programs' configs for HOST: the backup host's barman_ha_nat (nat.conf, the
# only place with addresses) and barman_ha_orchestrator; a DB node's barman_ha_client.
bha_program_conf() {
	local h=$1 n dir
	dir=/etc/netns/$(bha_ns "$h")/repmgr_barman_ha
	bha_mkdir root:root 0755 "/etc/netns/$(bha_ns "$h")" "$dir"
	if [ "$h" = backup ]; then
		{
			echo "# written by test/cluster/lib.sh for cluster $BHA_PREFIX"
			echo "backup_address = $BHA_BACKUP_ADDR"
			echo "barman_port = $BHA_BARMAN_PORT"
			echo "app_port = $BHA_APP_PORT"
			echo "nat_backend = $BHA_NAT_BACKEND"
			echo "state_file = $BHA_DATA/backup/state/nat.state"
			for n in $BHA_NODES; do echo "node.$n = ${BHA_ADDR[$n]}:5432"; done
		} | bha_write "$dir/nat.conf" root:root 0644
		{
			echo "# written by test/cluster/lib.sh for cluster $BHA_PREFIX"
			echo "nat_program = $BHA_BACKUP_BIN/barman_ha_nat"
			echo "barman_server = $BHA_SERVER"
			echo "barman_user = barman"
			echo "streaming_wals_directory = $BHA_DATA/backup/barman/$BHA_SERVER/streaming"
			echo "state_directory = $BHA_DATA/backup/ostate"
			echo "barman_conninfo = host=$BHA_BACKUP_ADDR port=$BHA_BARMAN_PORT dbname=postgres $(bha_tls_conninfo barman_ha_catchup) connect_timeout=5"
			echo "claim_check = on"
			echo "claim_conninfo = dbname=postgres $(bha_tls_conninfo barman_ha_check) connect_timeout=5"
		} | bha_write "$dir/orchestrator.conf" root:root 0644
	else
		{
			echo "# written by test/cluster/lib.sh for host $h of cluster $BHA_PREFIX"
			echo "backup = barman@$BHA_BACKUP_ADDR"
			echo "ssh_key = $BHA_DATA/$h/ssh/id_ed25519"
			echo "ssh_known_hosts = $BHA_DATA/$h/ssh/known_hosts"
			echo "ssh_port = 22"
			echo "ssh_connect_timeout = 3"
			echo "ssh_control_path = $BHA_DATA/$h/ssh/shared/backup"
		} | bha_write "$dir/client.conf" root:root 0644
	fi
}

# bha_tls_sign NAME DIR SUBJECT [SAN]: DIR/NAME.key and DIR/NAME.crt, signed by the cluster's
# CA: a server's with SAN, else a client's
bha_tls_sign() {
	local name=$1 dir=$2 subj=$3 c=$BHA_DATA/ca
	if [ -n "${4:-}" ]; then
		printf 'subjectAltName = %s\nextendedKeyUsage = serverAuth\n' "$4"
	else
		echo "extendedKeyUsage = clientAuth"
	fi >"$c/$name.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subj" \
		-keyout "$dir/$name.key" -out "$c/$name.csr" 2>/dev/null &&
		openssl x509 -req -in "$c/$name.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" -CAcreateserial \
			-days 3650 -extfile "$c/$name.ext" -out "$dir/$name.crt" 2>/dev/null
}

# The cluster's CA (its key stays under $BHA_DATA/ca, root only), a server certificate per
# node for its own address and the Barman endpoint's (any node may answer there), and a
# client certificate per backup-host role, barman's own, 0600.
bha_tls() {
	local c=$BHA_DATA/ca n r
	bha_mkdir root:root 0700 "$c"
	bha_mkdir barman:barman 0700 "$BHA_TLS"
	[ -f "$c/ca.crt" ] ||
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
			-subj "/CN=repmgr_barman_ha cluster $BHA_PREFIX CA" -keyout "$c/ca.key" -out "$c/ca.crt" \
			2>/dev/null || return 1
	# what a set-up lacks is made (a scenario may bring its cluster up more than once)
	for n in $BHA_NODES; do
		[ -f "$BHA_DATA/$n/server.crt" ] && continue
		bha_tls_sign server "$BHA_DATA/$n" "/CN=${BHA_ADDR[$n]}" \
			"IP:${BHA_ADDR[$n]}, IP:$BHA_BACKUP_ADDR, DNS:$n" || return 1
		install -m 0644 "$c/ca.crt" "$BHA_DATA/$n/root.crt"
		chown postgres:postgres "$BHA_DATA/$n/server.key" "$BHA_DATA/$n/server.crt"
		chmod 0600 "$BHA_DATA/$n/server.key"
	done
	for r in $BHA_TLS_ROLES; do
		[ -f "$BHA_TLS/$r.crt" ] || bha_tls_sign "$r" "$BHA_TLS" "/CN=$r" || return 1
	done
	install -o barman -g barman -m 0600 "$c/ca.crt" "$BHA_TLS/ca.crt"
	chown barman:barman "$BHA_TLS"/*
	chmod 0600 "$BHA_TLS"/*
}

bha_pg_conf() {			# shared postgresql.conf lines, appended once to db1's
	cat <<EOF

# ---- repmgr_barman_ha cluster (test/cluster/lib.sh) ----
listen_addresses = '*'
port = 5432
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
wal_log_hints = on
shared_buffers = 32MB
max_wal_size = 256MB
wal_keep_size = 128MB
synchronous_commit = on
shared_preload_libraries = '$([ "$BHA_MANAGER" = repmgr ] && echo repmgr,)repmgr_barman_ha'
log_line_prefix = '%m [%p] %q%u@%d '
barman_ha.slot_name = '$BHA_SLOT'
barman_ha.reconcile_interval = 10
barman_ha.retry_interval = 2000
barman_ha.helper_timeout = 30
barman_ha.standby_slot = '$BHA_STANDBY_SLOT'
${BHA_PG_EXTRA:-}
# node-specific settings: ../node.conf (relative, so clone and rewind keep it per node)
include_if_exists = '../node.conf'
EOF
}

# bha_sync_names NODE: NODE's synchronous_standby_names under $BHA_SYNC: the other nodes
# and Barman, e.g. 'FIRST 1 (db2, barman_receive_wal)' on db1 of two nodes.
bha_sync_names() {
	local m peers=""
	for m in $BHA_NODES; do [ "$m" = "$1" ] || peers="$peers$m, "; done
	echo "$BHA_SYNC ${BHA_SYNC_NUM:-1} (${peers}barman_receive_wal)"
}

# bha_node_conf NODE SYNC ENABLED: the per-node settings.  The bring-up writes them three
# times: neither (while the standbys are cloned), SYNC=1 once they stream, ENABLED=1 once
# that is in force, so Barman's receive-wal starts as a synchronous standby from the first routing.
bha_node_conf() {
	local n=$1
	{
		echo "cluster_name = '$n'"
		echo "unix_socket_directories = '$BHA_DATA/$n/run'"
		echo "barman_ha.node_name = '$n'"
		echo "ssl = on"
		echo "ssl_cert_file = '$BHA_DATA/$n/server.crt'"
		echo "ssl_key_file = '$BHA_DATA/$n/server.key'"
		echo "ssl_ca_file = '$BHA_DATA/$n/root.crt'"
		[ "${2:-0}" = 1 ] && [ -n "$BHA_SYNC" ] && echo "synchronous_standby_names = '$(bha_sync_names "$n")'"
		[ "${3:-0}" = 1 ] && echo "barman_ha.enabled = on" || echo "barman_ha.enabled = off"
	} | bha_write "$BHA_DATA/$n/node.conf" postgres:postgres 0644
}
bha_node_conf_all() {		# bha_node_conf_all SYNC ENABLED: every node, and reload
	local n
	for n in $BHA_NODES; do
		bha_node_conf "$n" "$1" "$2"
		bha_sql "$n" "SELECT pg_reload_conf()" >/dev/null || return 1
	done
}

bha_hba() {
	cat <<EOF
# TYPE  DATABASE     USER              ADDRESS            METHOD
local   all          postgres                             peer
hostssl replication  streaming_barman  $BHA_BACKUP_ADDR/32    cert
hostssl postgres     barman            $BHA_BACKUP_ADDR/32    cert
hostssl postgres     barman_ha_check   $BHA_BACKUP_ADDR/32    cert
hostssl postgres     barman_ha_catchup $BHA_BACKUP_ADDR/32    cert
local   repmgr       repmgr                               scram-sha-256
EOF
	local n
	declare -F bha_pair_hba >/dev/null && bha_pair_hba
	for n in $BHA_NODES; do echo "host    repmgr       repmgr            ${BHA_ADDR[$n]}/32     scram-sha-256"; done
	for n in $BHA_NODES; do echo "host    replication  repmgr            ${BHA_ADDR[$n]}/32     scram-sha-256"; done
	echo "host    appdb        app               $BHA_BACKUP_ADDR/32    scram-sha-256"
	declare -F bha_mgr_hba >/dev/null && bha_mgr_hba
	return 0
}

bha_repmgr_conf() {		# bha_repmgr_conf NODE
	local n=$1 d=$BHA_DATA/$1
	bha_write "$d/repmgr.conf" postgres:postgres 0644 <<EOF
node_id=${BHA_NODE_ID[$n]}
node_name='$n'
conninfo='host=${BHA_ADDR[$n]} port=5432 user=repmgr dbname=repmgr connect_timeout=2 keepalives_idle=2 keepalives_interval=1 keepalives_count=3 tcp_user_timeout=5000'
data_directory='$d/pgdata'
pg_bindir='$BHA_PGBIN'
use_replication_slots=yes
failover=automatic
promote_command='$BHA_PGBIN/repmgr standby promote -f $d/repmgr.conf --log-to-file'
follow_command='$BHA_PGBIN/repmgr standby follow -f $d/repmgr.conf --log-to-file --upstream-node-id=%n'
monitor_interval_secs=1
reconnect_attempts=2
reconnect_interval=1
connection_check_type='ping'
promote_check_interval=1
standby_disconnect_on_failover=false
log_file='$d/repmgrd.log'
log_level='INFO'
repmgrd_pid_file='$d/repmgrd.pid'
service_start_command='$BHA_PGBIN/pg_ctl -D $d/pgdata -l $d/postgresql.log -w -t 60 start'
service_stop_command='$BHA_PGBIN/pg_ctl -D $d/pgdata -m fast -w -t 60 stop'
service_restart_command='$BHA_PGBIN/pg_ctl -D $d/pgdata -l $d/postgresql.log -m fast -w -t 60 restart'
service_reload_command='$BHA_PGBIN/pg_ctl -D $d/pgdata reload'
service_promote_command='$BHA_PGBIN/pg_ctl -D $d/pgdata -w promote'
ssh_options='-q -o BatchMode=yes -o ConnectTimeout=5 -i $d/ssh/id_ed25519 -o UserKnownHostsFile=$d/ssh/known_hosts -o StrictHostKeyChecking=yes'
EOF
}

# sshd for HOST: listens on its address, keys under $BHA_DATA/HOST/sshd (root 0755).
bha_sshd_conf() {
	local h=$1 user=$2 d=$BHA_DATA/$1/sshd
	bha_mkdir root:root 0755 "$d" "$d/authorized_keys"
	[ -f "$d/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/ssh_host_ed25519_key" || return 1
	bha_write "$d/sshd_config" root:root 0644 <<EOF
ListenAddress ${BHA_ADDR[$h]}:22
$(declare -F bha_pair_listen >/dev/null && bha_pair_listen "$h")
HostKey $d/ssh_host_ed25519_key
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys/%u
AllowUsers $user
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
StrictModes yes
LogLevel VERBOSE
SetEnv PGPASSFILE=$BHA_DATA/$h/pgpass
EOF
}

bha_sshd_start() {
	local d=$BHA_DATA/$1/sshd
	bha_mkdir root:root 0755 /run/sshd
	bha_in "$1" /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" || return 1
	bha_wait 10 "sshd on $1" test -s "$d/sshd.pid"
}

# known_hosts line of HOST's sshd, for the clients of HOST.
bha_known_host() {
	local a=${BHA_ADDR[$1]}
	[ "$1" = backup ] && [ "$BHA_PAIR" = 1 ] && a=$a,$BHA_BACKUP_ADDR	# both hosts present this key there
	echo "$a $(cut -d' ' -f1,2 "$BHA_DATA/$1/sshd/ssh_host_ed25519_key.pub")"
}

# An account that is locked ('!' in shadow) cannot log in with sshd's UsePAM no.
bha_unlock() { grep -q "^$1:!" /etc/shadow && usermod -p '*' "$1"; return 0; }

# ---------------------------------------------------------------- install of the backup programs

# The backup host's programs, in a root-owned dir: barman_ha_orchestrator (0755) and
# barman_ha_nat (root:barman 4750), as make install-backup installs them.
bha_install_backup_programs() {
	[ "${BHA_INSTALL:-make}" = deb ] && { bha_check_debs; return; }
	bha_mkdir root:root 0755 "$BHA_BACKUP_BIN"
	make -s -C "$BHA_TOP/orchestrator" install BINDIR="$BHA_BACKUP_BIN" >/dev/null &&
		make -s -C "$BHA_TOP/nat" install BINDIR="$BHA_BACKUP_BIN" NAT_GROUP=barman >/dev/null
}

# BHA_INSTALL=deb (test/packages/02_cluster_deb.t installs the .debs): the cluster runs on
# the packages instead of make install: the extension and barman_ha_client from
# postgresql-$BHA_PG_MAJOR-repmgr-barman-ha, both backup programs in /usr/lib/repmgr-barman-ha from
# repmgr-barman-ha-backup, barman_ha_nat made root:barman 4750 by its postinst.
bha_check_debs() {
	local p f
	for p in "postgresql-$BHA_PG_MAJOR-repmgr-barman-ha" repmgr-barman-ha-backup; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q ' installed$' ||
			{ bha_die "BHA_INSTALL=deb: package $p is not installed"; return 1; }
	done
	for f in "$BHA_PGLIB/repmgr_barman_ha.so" "$BHA_CLIENT" \
		"$BHA_BACKUP_BIN/barman_ha_orchestrator" "$BHA_BACKUP_BIN/barman_ha_nat"; do
		dpkg -S "$f" >/dev/null 2>&1 || { bha_die "BHA_INSTALL=deb: $f is not a packaged file"; return 1; }
	done
	[ "$(stat -c '%U:%G %a' "$BHA_BACKUP_BIN/barman_ha_nat")" = "root:barman 4750" ] ||
		{ bha_die "BHA_INSTALL=deb: $BHA_BACKUP_BIN/barman_ha_nat is not root:barman 4750"; return 1; }
}

# The operator on the backup host (as root: the orchestrator becomes barman itself).
bha_orchestrator() { bha_in backup "$BHA_BACKUP_BIN/barman_ha_orchestrator" "$@"; }
bha_nat() { bha_in backup "$BHA_BACKUP_BIN/barman_ha_nat" "$@"; }

# ---------------------------------------------------------------- bring-up steps

bha_setup_files() {
	local h n
	bha_mkdir root:root 0755 "$(dirname "$BHA_DATA")" "$BHA_DATA" /etc/repmgr_barman_ha
	for h in $BHA_HOSTS; do bha_mkdir root:root 0755 "$BHA_DATA/$h"; done
	for h in backup $BHA_NODES; do bha_program_conf "$h"; done
	for n in $BHA_NODES; do
		bha_mkdir postgres:postgres 0755 "$BHA_DATA/$n"
		bha_mkdir postgres:postgres 0700 "$BHA_DATA/$n/ssh" "$BHA_DATA/$n/ssh/shared"
		bha_mkdir postgres:postgres 0755 "$BHA_DATA/$n/run" "$BHA_DATA/$n/config-archive"
		[ -f "$BHA_DATA/$n/ssh/id_ed25519" ] ||
			runuser -u postgres -- ssh-keygen -q -t ed25519 -N '' -C "postgres@$n" -f "$BHA_DATA/$n/ssh/id_ed25519"
		bha_repmgr_conf "$n"
		printf '*:5432:*:repmgr:%s\n' "$BHA_PASS_REPMGR" | bha_write "$BHA_DATA/$n/pgpass" postgres:postgres 0600
	done
	bha_tls || return 1
	bha_mkdir root:root 0755 "$BHA_DATA/backup/state"
	bha_mkdir barman:barman 0750 "$BHA_DATA/backup/ostate"
	bha_mkdir barman:barman 0750 "$BHA_DATA/backup/barman" "$BHA_DATA/backup/log"
	printf '*:*:*:app:%s\n' "$BHA_PASS_APP" | bha_write "$BHA_DATA/app/pgpass" root:root 0600
	bha_barman_conf
}

bha_barman_conf() {
	local e=/etc/netns/$(bha_ns backup)
	bha_mkdir root:root 0755 "$e/barman.d"
	bha_write "$e/barman.conf" root:root 0644 <<EOF
[barman]
barman_user = barman
configuration_files_directory = /etc/barman.d
barman_home = $BHA_DATA/backup/barman
log_file = $BHA_DATA/backup/log/barman.log
log_level = INFO
compression = gzip
backup_options = concurrent_backup
immediate_checkpoint = true
minimum_redundancy = 2
retention_policy = RECOVERY WINDOW OF 2 WEEKS
path_prefix = $BHA_PGBIN
EOF
	bha_write "$e/barman.d/$BHA_SERVER.conf" root:root 0644 <<EOF
[$BHA_SERVER]
description = "Main backup (cluster $BHA_PREFIX)"
conninfo = host=$BHA_BACKUP_ADDR port=$BHA_BARMAN_PORT dbname=postgres $(bha_tls_conninfo barman) connect_timeout=5
streaming_conninfo = host=$BHA_BACKUP_ADDR port=$BHA_BARMAN_PORT $(bha_tls_conninfo streaming_barman) connect_timeout=5 keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=3 tcp_user_timeout=10000
backup_method = postgres
streaming_archiver = on
streaming_archiver_name = barman_receive_wal
slot_name = $BHA_SLOT
EOF
}

# The backup host: NAT endpoints (barman_ha_nat init), sshd with one forced command per DB node.
bha_backup_up() {
	local n d=$BHA_DATA/backup/sshd
	bha_has_ext && bha_has_client ||
		{ bha_die "install the extension and its client first: make && make install (at the top)"; return 1; }
	bha_install_backup_programs || return 1
	bha_sshd_conf backup barman || return 1
	for n in $BHA_NODES; do
		echo "command=\"$BHA_BACKUP_BIN/barman_ha_orchestrator --from-ssh --node $n\",restrict $(cat "$BHA_DATA/$n/ssh/id_ed25519.pub")"
	done | bha_write "$d/authorized_keys/barman" root:root 0644
	bha_unlock barman
	bha_sshd_start backup || return 1
	for n in $BHA_NODES; do
		bha_known_host backup | bha_write "$BHA_DATA/$n/ssh/known_hosts" postgres:postgres 0644
	done
	bha_nat init >/dev/null
}

# The watch of the routed primary (barman-ha-watch.service's command), detached: started as
# root, the orchestrator becomes barman itself, so the pid file names the watch.
bha_watch_start() {
	local f=$BHA_DATA/backup/watch
	# shellcheck disable=SC2016
	bha_in backup setsid bash -c 'echo $$ >"$1.pid"; exec "$2" watch' watch "$f" \
		"$BHA_BACKUP_BIN/barman_ha_orchestrator" </dev/null >>"$BHA_DATA/backup/log/watch.log" 2>&1 &
	bha_wait 5 "the watch on the backup host" test -s "$f.pid"
}
bha_watch_pid() { head -n 1 "$BHA_DATA/backup/watch.pid" 2>/dev/null; }

# DB nodes' own sshd (repmgr switchover runs repmgr on the other node over ssh): each node's
# key only from its own address, no forwarding, no pty (restrict).
bha_db_sshd_up() {
	local n m
	bha_unlock postgres
	for n in $BHA_NODES; do
		bha_sshd_conf "$n" postgres || return 1
		for m in $BHA_NODES; do
			echo "from=\"${BHA_ADDR[$m]}\",restrict $(cat "$BHA_DATA/$m/ssh/id_ed25519.pub")"
		done | bha_write "$BHA_DATA/$n/sshd/authorized_keys/postgres" root:root 0644
		bha_sshd_start "$n" || return 1
	done
	for n in $BHA_NODES; do
		for m in $BHA_NODES backup; do bha_known_host "$m"; done |
			bha_write "$BHA_DATA/$n/ssh/known_hosts" postgres:postgres 0644
	done
}

bha_pg_start() {
	bha_pg_stale_locks "$1"
	bha_as "$1" postgres "$BHA_PGBIN/pg_ctl" -D "$BHA_DATA/$1/pgdata" -l "$BHA_DATA/$1/postgresql.log" -w -t 60 start >/dev/null
}
bha_pg_stop() { bha_as "$1" postgres "$BHA_PGBIN/pg_ctl" -D "$BHA_DATA/$1/pgdata" -m "${2:-fast}" -w -t 60 stop >/dev/null; }
bha_pg_pid() { head -n 1 "$BHA_DATA/$1/pgdata/postmaster.pid" 2>/dev/null; }
# NODE's postmaster runs: its pid file names the postgres of NODE's data folder (a killed
# postmaster leaves the file, and its pid may belong to another process by now)
bha_pg_ours() {
	local pid
	pid=$(bha_pg_pid "$1")
	[ -n "$pid" ] && [[ $({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) == "$BHA_PGBIN/postgres -D $BHA_DATA/$1/pgdata "* ]]
}
# bha_pg_stale_locks NODE: a killed postmaster leaves its data folder's pid file and its
# socket's lock file; once the pid in them is another live process of postgres's, a new
# postmaster (or pg_rewind's single-user run) takes it for a running server and refuses to
# start ("lock file ... already exists").  Both go while NODE's postmaster is not running.
bha_pg_stale_locks() {
	bha_pg_ours "$1" && return 0
	rm -f "$BHA_DATA/$1/pgdata/postmaster.pid" "$BHA_DATA/$1"/run/.s.PGSQL.*.lock
}
bha_repmgr() { local n=$1; shift; bha_as "$n" postgres "$BHA_PGBIN/repmgr" -f "$BHA_DATA/$n/repmgr.conf" "$@"; }
# ... and wait until it monitors (a fault injected before that finds a repmgrd still
# connecting, which promotes a cut-off standby only after its startup timeouts): a new
# "monitoring" line in its log, which a restarted repmgrd appends to
bha_repmgrd_start() {
	local before
	before=$(bha_repmgrd_monitoring "$1")
	bha_as "$1" postgres "$BHA_PGBIN/repmgrd" -f "$BHA_DATA/$1/repmgr.conf" --daemonize >/dev/null 2>&1 || return 1
	bha_wait 15 "repmgrd on $1" test -s "$BHA_DATA/$1/repmgrd.pid" &&
		bha_wait 15 "repmgrd on $1 monitoring" bha_repmgrd_monitoring_above "$1" "$before"
}
# bha_repmgrd_monitoring NODE: how many times NODE's repmgrd log says it began monitoring
bha_repmgrd_monitoring() {
	cat "$BHA_DATA/$1/repmgrd.log" 2>/dev/null | grep -cE 'monitoring (cluster primary|connection to upstream node)'
}
bha_repmgrd_monitoring_above() { [ "$(bha_repmgrd_monitoring "$1")" -gt "$2" ]; }
# bha_repmgrd_stop NODE: NODE's repmgrd ended, and gone
bha_repmgrd_stop() {
	local p
	p=$(head -n 1 "$BHA_DATA/$1/repmgrd.pid" 2>/dev/null)
	bha_kill_pidfile "$BHA_DATA/$1/repmgrd.pid"
	[ -z "$p" ] || bha_wait 10 "repmgrd $p to exit" bha_gone "$p"
}

# bha_repmgrd_restart NODE: a fresh repmgrd after a rejoin (the old one can stay stuck in
# "unable to determine a new primary node" and then never promotes this node), once it
# follows its upstream
bha_repmgrd_restart() {
	bha_repmgrd_stop "$1" && bha_repmgrd_start "$1" &&
		bha_wait 30 "repmgrd on $1 following its upstream" bha_repmgrd_follows "$1"
}

bha_db1_up() { bha_db1_init && bha_repmgr db1 primary register >>"$BHA_DATA/db1/repmgr.log" 2>&1; }
# bha_db1_init: initdb, settings, users, the extension; what every manager's first primary needs
bha_db1_init() {
	local d=$BHA_DATA/db1
	bha_mkdir postgres:postgres 0700 "$d/pgdata"
	bha_as db1 postgres "$BHA_PGBIN/initdb" -D "$d/pgdata" -U postgres -A peer --no-instructions >/dev/null || return 1
	bha_pg_conf >>"$d/pgdata/postgresql.conf"
	bha_hba >"$d/pgdata/pg_hba.conf"
	bha_node_conf db1
	bha_pg_start db1 || return 1
	bha_db1_objects
}
# bha_db1_objects: users, databases, the table, the extension, on the running first primary
bha_db1_objects() {
	local q
	for q in "CREATE USER repmgr SUPERUSER PASSWORD '$BHA_PASS_REPMGR'" "CREATE DATABASE repmgr OWNER repmgr" \
		"CREATE USER barman IN ROLE pg_read_all_settings, pg_read_all_stats" \
		"GRANT EXECUTE ON FUNCTION pg_backup_start(text, boolean), pg_backup_stop(boolean), pg_switch_wal(), pg_create_restore_point(text) TO barman" \
		"CREATE USER streaming_barman REPLICATION" "CREATE USER barman_ha_check REPLICATION" \
		"CREATE USER barman_ha_catchup REPLICATION IN ROLE pg_read_all_stats, pg_checkpoint" \
		"CREATE USER app PASSWORD '$BHA_PASS_APP'" "CREATE DATABASE appdb OWNER app"; do
		bha_sql db1 "$q" || return 1
	done
	bha_sql db1 appdb "CREATE TABLE rows (i bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp()); ALTER TABLE rows OWNER TO app" || return 1
	bha_sql db1 "CREATE EXTENSION repmgr_barman_ha"
}

# bha_standby_up NODE: repmgr standby clone of the first primary, start, register.
bha_standby_up() {
	local n=$1 d=$BHA_DATA/$1
	bha_mkdir postgres:postgres 0700 "$d/pgdata"
	bha_repmgr "$n" -h "${BHA_ADDR[$BHA_FIRST]}" -U repmgr -d repmgr standby clone --fast-checkpoint >"$d/clone.log" 2>&1 ||
		{ cat "$d/clone.log" >&2; return 1; }
	bha_node_conf "$n"
	bha_pg_start "$n" || return 1
	bha_repmgr "$n" standby register >>"$d/repmgr.log" 2>&1 || return 1
	bha_wait 30 "$n streaming from $BHA_FIRST" bha_streams_from "$BHA_FIRST" "$n"
}
bha_db2_up() { bha_standby_up db2; }
bha_streams_from() { [ "$(bha_sql "$1" "SELECT count(*) FROM pg_stat_replication WHERE application_name = '$2' AND state = 'streaming'" 2>/dev/null)" = 1 ]; }

# The endpoints and the slot on the first primary: synchronous replication as in the article
# once the standby streams, then the extension switched on; its worker creates the slot and
# runs barman_ha_client, which asks the orchestrator over ssh.  The harness only waits, for
# route_state ok too (the whole promote, switch-wal included).  The first start's time, in ms
# from the switch to route_state ok (the worker's `routed` event, recorded as it sets ok; the
# same clock), goes to $BHA_DATA/first_start_ms, db1's events then to first_start_events.
bha_first_route() {
	local t0 at
	bha_node_conf_all 1 0 || return 1
	t0=$(bha_now_ms)
	bha_node_conf_all 1 1 || return 1
	bha_wait 60 "the extension to create slot $BHA_SLOT on db1" bha_slot_exists db1 || return 1
	bha_wait 60 "the extension to route both endpoints to db1" bha_endpoints_on db1 || return 1
	bha_wait 60 "route_state ok on db1" bha_route_ok db1 || return 1
	at=$(bha_sql db1 "SELECT (extract(epoch FROM min(at)) * 1000)::bigint FROM barman_ha_events() WHERE event = 'routed' AND ok") ||
		return 1
	echo $(( ${at:-$(bha_now_ms)} - t0 )) >"$BHA_DATA/first_start_ms"
	bha_events db1 >"$BHA_DATA/first_start_events" 2>&1
}

# Barman: cron loop as cron would run it, streaming, two base backups, check OK.
bha_barman_up() {
	bha_cron_start || return 1
	bha_in backup barman -q cron >/dev/null 2>&1
	bha_wait 60 "Barman's receive-wal streaming from db1" bha_barman_streams_from db1 || return 1
	bha_switch_wal "$BHA_FIRST" >/dev/null || return 1
	bha_backup "$BHA_FIRST" >/dev/null || return 1
	bha_backup "$BHA_FIRST" >/dev/null || return 1
	bha_wait 60 "barman check $BHA_SERVER OK" bha_barman_check_ok
}

bha_cron_start() {
	local f=$BHA_DATA/backup/cron
	# shellcheck disable=SC2016
	bha_in backup setsid bash -c 'echo $$ >"$1.pid"; while :; do barman -q cron >>"$1.log" 2>&1; sleep 60; done' \
		cron "$f" </dev/null >/dev/null 2>&1 &
	bha_wait 5 "barman cron loop" test -s "$f.pid"
}

# bha_up: the whole cluster, from nothing (or from the run's template, below).  Prints
# progress to stderr.
bha_up() {
	local t0 n tpl
	t0=$(bha_now_ms)
	[ -e "/run/netns/$(bha_ns br)" ] && { bha_die "cluster $BHA_PREFIX exists already (cluster.sh down first)"; return 1; }
	tpl=$(bha_template)
	bha_log "network namespaces $BHA_PREFIX-{br,${BHA_HOSTS// /,}}"
	bha_net_up || return 1
	if [ -d "$tpl" ]; then
		bha_log "data under $BHA_DATA: a copy of the template $tpl"
		bha_template_copy "$tpl" || return 1
	fi
	bha_log "files under $BHA_DATA and /etc/netns/$BHA_PREFIX-*"
	bha_setup_files || return 1
	bha_log "backup host: barman_ha_nat init, sshd"
	bha_backup_up || return 1
	if [ "$BHA_PAIR" = 1 ]; then
		bha_log "backup2, keepalived on both backup hosts"
		bha_pair_up || return 1
	fi
	bha_watch_start || return 1
	bha_db_sshd_up || return 1
	if [ "$BHA_MANAGER" != repmgr ]; then
		bha_mgr_up || return 1		# managers.sh
		bha_log "cluster $BHA_PREFIX ($BHA_MANAGER) up in $(( ($(bha_now_ms) - t0) / 1000 )) s"
		return 0
	fi
	if [ -d "$tpl" ]; then
		bha_log "nodes and Barman started from the copy"
		bha_template_start "$tpl" || return 1
	else
		bha_log "db1: initdb, users, extension, repmgr primary register"
		bha_db1_up || return 1
		for n in $BHA_STANDBYS; do
			bha_log "$n: repmgr standby clone, register"
			bha_standby_up "$n" || return 1
		done
		bha_log "slot and endpoints on db1"
		bha_first_route || return 1
		bha_log "barman: cron loop, streaming, two base backups"
		bha_barman_up || return 1
		if [ -n "$tpl" ]; then
			bha_log "saved as the template $tpl; this cluster again, from it"
			bha_template_save "$tpl" && bha_down >/dev/null 2>&1 && bha_up
			return
		fi
	fi
	bha_log "repmgrd on $BHA_NODES"
	for n in $BHA_NODES; do bha_repmgrd_start "$n" || return 1; done
	bha_log "cluster $BHA_PREFIX up in $(( ($(bha_now_ms) - t0) / 1000 )) s"
}

# ---------------------------------------------------------------- the run's template
# A bring-up spends most of its time in initdb, the standbys' base backups and Barman's
# first two.  A run of many scenarios (test/run-all.sh, test/cluster-root.sh) names a
# directory in BHA_TEMPLATE: the first bring-up of a configuration saves its cluster there,
# stopped before repmgrd starts, then every bring-up of that configuration (the first one
# too) starts a copy, as after a reboot of every host.  The copy is this prefix's: the paths
# in its text files and in repmgr's record of each node's configuration file rewritten,
# its certificates made afresh (their CA names the prefix).  Other managers build as without.

# bha_template: the template's directory for this configuration, nothing without one
bha_template() {
	[ -n "${BHA_TEMPLATE:-}" ] && [ -d "$BHA_TEMPLATE" ] && [ "$BHA_MANAGER" = repmgr ] || return 0
	echo "$BHA_TEMPLATE/pg$BHA_PG_MAJOR-${BHA_NODES// /_}-sync${BHA_SYNC:-none}${BHA_SYNC_NUM:-1}-slot$BHA_STANDBY_SLOT-$BHA_NAT_BACKEND-${BHA_INSTALL:-make}"
}

# bha_template_save TPL: the cluster stopped (the watch and the cron loop, so that nothing
# reroutes or restarts; the nodes cleanly, the first primary first; then the rest) and
# $BHA_DATA copied to TPL, with the path it had
bha_template_save() {
	local n tmp=$1.tmp
	bha_kill_pidfile "$BHA_DATA/backup/watch.pid"
	bha_kill_pidfile "$BHA_DATA/backup/cron.pid"
	for n in $BHA_NODES; do bha_pg_stop "$n" || return 1; done
	bha_ns_kill
	rm -rf "$tmp"
	mkdir "$tmp" && cp -a "$BHA_DATA" "$tmp/data" && echo "$BHA_DATA" >"$tmp/path" || return 1
	find "$tmp/data" -type s -delete	# sockets of the processes just ended
	mv -T "$tmp" "$1"
}

# bha_template_copy TPL: $BHA_DATA from TPL, its paths this prefix's, without certificates
bha_template_copy() {
	local old n
	old=$(cat "$1/path") || return 1
	bha_mkdir root:root 0755 "$(dirname "$BHA_DATA")" "$BHA_DATA"
	cp -a "$1/data/." "$BHA_DATA/" || return 1
	if [ "$old" != "$BHA_DATA" ]; then
		grep -rlIZF -- "$old" "$BHA_DATA" | xargs -0 -r sed -i "s|${old//./\\.}|$BHA_DATA|g" || return 1
	fi
	rm -rf "$BHA_DATA/ca" "$BHA_TLS"
	for n in $BHA_NODES; do rm -f "$BHA_DATA/$n"/server.* "$BHA_DATA/$n/root.crt"; done
}

# bha_template_start TPL: the copy's nodes started, repmgr's record of each node's
# configuration file made this prefix's, then what the build waits for: the standbys
# streaming, the routes on db1 (the extension's first level check), Barman's cron loop,
# streaming and check OK
bha_template_start() {
	local n old
	old=$(cat "$1/path") || return 1
	for n in $BHA_NODES; do bha_pg_start "$n" || return 1; done
	bha_sql db1 repmgr "SET synchronous_commit = local;
		UPDATE repmgr.nodes SET config_file = replace(config_file, '$old/', '$BHA_DATA/')" >/dev/null || return 1
	for n in $BHA_STANDBYS; do
		bha_wait 30 "$n streaming from $BHA_FIRST" bha_streams_from "$BHA_FIRST" "$n" || return 1
	done
	bha_wait 60 "the routes on db1" bha_endpoints_on db1 || return 1
	bha_cron_start || return 1
	bha_in backup barman -q cron >/dev/null 2>&1
	bha_wait 60 "Barman's receive-wal streaming from db1" bha_barman_streams_from db1 &&
		bha_wait 60 "barman check $BHA_SERVER OK" bha_barman_check_ok
}

# ---------------------------------------------------------------- teardown

bha_gone() {			# bha_gone PID...: none of them runs
	local p
	for p; do kill -0 "$p" 2>/dev/null && return 1; done
	return 0
}
bha_kill_pidfile() {		# bha_kill_pidfile FILE: TERM, then KILL, the pid in FILE
	local pid
	pid=$(head -n 1 "$1" 2>/dev/null) || return 0
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	# the number may belong to another process by now (pids wrap): only ours, in our namespaces
	[[ $(ip netns identify "$pid" 2>/dev/null) == "$BHA_PREFIX"-* ]] && kill -TERM "$pid" 2>/dev/null
	rm -f "$1"
}

# bha_ns_kill: ends whatever still runs inside our namespaces (receive-wal, pg_receivewal,
# writers, scratch servers): TERM, then KILL
bha_ns_kill() {
	local i ns pids
	for i in 1 2 3 4 5 6 7 8 9 10; do
		pids=""
		for ns in $(ip netns list | awk '{print $1}' | grep "^$BHA_PREFIX-"); do
			pids="$pids $(ip netns pids "$ns" 2>/dev/null)"
		done
		[ -z "${pids// /}" ] && break
		# shellcheck disable=SC2086
		if [ "$i" -lt 6 ]; then kill -TERM $pids 2>/dev/null; else kill -KILL $pids 2>/dev/null; fi
		sleep 0.5
	done
}

# bha_down: stops and removes everything of $BHA_PREFIX, also after a run that died half-way.
bha_down() {
	local n ns f
	bha_kill_pidfile "$BHA_DATA/backup/cron.pid"
	bha_kill_pidfile "$BHA_DATA/backup/watch.pid"
	declare -F bha_mgr_down >/dev/null && bha_mgr_down
	for n in $BHA_NODES; do
		bha_kill_pidfile "$BHA_DATA/$n/repmgrd.pid"
		bha_pg_ours "$n" &&
			timeout 20 ip netns exec "$(bha_ns "$n")" runuser -u postgres -- "$BHA_PGBIN/pg_ctl" -D "$BHA_DATA/$n/pgdata" -m immediate -w -t 15 stop >/dev/null 2>&1
	done
	for f in "$BHA_DATA"/*/sshd/sshd.pid "$BHA_DATA"/*/pgdata/postmaster.pid; do
		[ -f "$f" ] && bha_kill_pidfile "$f"
	done
	bha_ns_kill
	for ns in $(ip netns list | awk '{print $1}' | grep "^$BHA_PREFIX-"); do ip netns delete "$ns"; done
	rm -rf /etc/netns/"$BHA_PREFIX"-*
	case "$BHA_DATA" in /var/lib/bha-cluster/*|/var/lib/*/*) rm -rf "$BHA_DATA" ;; esac
}

# ---------------------------------------------------------------- status

bha_status() {
	local n
	for n in $BHA_NODES; do
		echo "== $n: $(bha_sql "$n" "SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE 'primary' END || ', timeline ' || timeline_id FROM pg_control_checkpoint()" 2>/dev/null || echo down)"
		bha_as "$n" postgres "$BHA_PGBIN/psql" -X -h "$BHA_DATA/$n/run" -d postgres -x \
			-c "SELECT * FROM barman_ha_status()" 2>&1 | sed 's/^/   /'
	done
	echo "== endpoints: barman $BHA_BARMAN_PORT -> $(bha_endpoint_node $BHA_BARMAN_PORT || echo none), app $BHA_APP_PORT -> $(bha_endpoint_node $BHA_APP_PORT || echo none)"
	echo "== barman_ha_nat show (backup)"; bha_nat show 2>&1 | sed 's/^/   /'
	echo "== barman check $BHA_SERVER"
	bha_barman_check 2>&1 | sed 's/^/   /'
	for n in $BHA_NODES; do
		bha_is_primary "$n" || continue
		echo "== repmgr cluster show (on $n)"
		bha_repmgr "$n" cluster show 2>&1 | sed 's/^/   /'
	done
}

# ---------------------------------------------------------------- the writer on app

# bha_writer_start NAME: numbered inserts through BACKUP:54322, one connection each;
# every acknowledged commit is logged as "i epoch_ms" in $BHA_DATA/app/NAME.log.
bha_writer_start() {
	local f=$BHA_DATA/app/$1
	rm -f "$f.log" "$f.stop" "$f.pid"
	# shellcheck disable=SC2016
	bha_in app env PGPASSFILE="$BHA_DATA/app/pgpass" setsid bash -c '
		echo $$ >"$1.pid"; i=${3:-0}
		while [ ! -e "$1.stop" ]; do
			i=$((i + 1))
			if timeout 10 "$2/psql" -X -qAt "host='"$BHA_BACKUP_ADDR"' port='"$BHA_APP_PORT"' dbname=appdb user=app connect_timeout=2" \
				-c "INSERT INTO rows (i) VALUES ($i)" >/dev/null 2>>"$1.err"; then
				t=${EPOCHREALTIME/./}; echo "$i ${t:0:13}" >>"$1.log"
			else
				sleep 0.05
			fi
		done' writer "$f" "$BHA_PGBIN" "${2:-$(( $(bha_now_ms) % 1000000000 * 1000 ))}" </dev/null >/dev/null 2>&1 &
	bha_wait 10 "writer $1 started" test -s "$f.pid"
}
bha_writer_stop() {
	local f=$BHA_DATA/app/$1
	touch "$f.stop"
	bha_wait 15 "writer $1 to stop" bha_gone "$(cat "$f.pid")"
}
bha_writer_count() { wc -l <"$BHA_DATA/app/$1.log" 2>/dev/null || echo 0; }
# rows the writer saw committed after epoch ms T
bha_writer_after() { awk -v t="$2" '$2 > t' "$BHA_DATA/app/$1.log" 2>/dev/null | wc -l; }
bha_writer_first_after() { awk -v t="$2" '$2 > t {print $2; exit}' "$BHA_DATA/app/$1.log" 2>/dev/null; }
# bha_writer_gap NAME FROM TO: the writer's outage: the longest time between two of its
# acknowledged commits, the later one after epoch ms FROM and the earlier one before TO
bha_writer_gap() {
	awk -v a="$2" -v b="$3" 'p && $2 > a && p <= b && $2 - p > m {m = $2 - p} {p = $2} END {print m + 0}' \
		"$BHA_DATA/app/$1.log" 2>/dev/null
}
# bha_writer_lost NAME NODE: committed rows of the writer missing on NODE (prints them)
bha_writer_lost() {
	local f=$BHA_DATA/app/$1.log have
	have=$(mktemp)
	bha_sql "$2" appdb "SELECT i FROM rows ORDER BY i" >"$have" || { rm -f "$have"; return 1; }
	awk '{print $1}' "$f" | sort >"$have.w"
	sort "$have" | comm -23 "$have.w" -
	rm -f "$have" "$have.w"
}

# ---------------------------------------------------------------- TAP: test/lib/tap.sh

# bha_diag_run CMD...: CMD's output as TAP comments (stdout), CMD's status
bha_diag_run() { local o r; o=$("$@" 2>&1); r=$?; [ -n "$o" ] && sed 's/^/# /' <<<"$o"; return $r; }

# bha_test_setup: for a .t script: a prefix of its own, the cluster up, teardown on exit.
bha_test_setup() {
	[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP the cluster tests run as root"; exit 0; }
	trap 'bha_on_exit' EXIT
	trap 'exit 130' INT TERM HUP
	bha_down >/dev/null 2>&1
	bha_up || { bha_dump_logs; bail "cluster bring-up failed"; }
}
bha_on_exit() {
	local rc=$?
	[ "$TAP_FAIL" -gt 0 ] || [ $rc -ne 0 ] && bha_dump_logs
	[ "${BHA_KEEP:-0}" = 1 ] && { diag "BHA_KEEP=1: cluster $BHA_PREFIX left running"; return; }
	bha_down >/dev/null 2>&1
}
bha_dump_logs() {
	local f
	for f in "$BHA_DATA"/db?/postgresql.log "$BHA_DATA"/db?/repmgrd.log "$BHA_DATA"/backup/log/barman.log \
		"$BHA_DATA"/backup/sshd/sshd.log "$BHA_DATA"/backup/log/watch.log "$BHA_DATA"/*/manager.log "$BHA_DATA"/app/*.err; do
		[ -f "$f" ] || continue
		echo "# ---- tail of $f"; tail -n 40 "$f" | sed 's/^/#   /'
	done
	for f in "$BHA_DATA"/db?/repmgrd.pid; do
		[ -f "$f" ] && bha_repmgrd_state "$f" | sed 's/^/#   /'
	done
}
# bha_repmgrd_state PIDFILE: whether the repmgrd of PIDFILE runs, where it waits, its sockets
# (a repmgrd that logs nothing while its upstream is gone is either dead or blocked on one)
bha_repmgrd_state() {
	local pid
	pid=$(head -n 1 "$1")
	echo "---- repmgrd $pid ($1): $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || echo 'not running')"
	[ -d "/proc/$pid" ] || return 0
	echo "state $(awk '/^State/ {print $2, $3}' "/proc/$pid/status"), waits in $(cat "/proc/$pid/wchan")"
	cat "/proc/$pid/stack" 2>/dev/null
	ip netns exec "$(ip netns identify "$pid")" ss -tnpoi 2>/dev/null | grep -A1 "pid=$pid,"
}

# A node's extension is healthy: its worker runs and its route state is neither failed nor fenced.
# bha_events NODE: barman_ha_events() of NODE, one line each
bha_events() {
	bha_sql "$1" "SELECT to_char(at, 'HH24:MI:SS.MS') || ' ' || event || ' ' || ok || ' ' || coalesce(duration_ms::text, '-') || ' ms: ' || coalesce(detail, '') FROM barman_ha_events() ORDER BY at"
}
bha_ext_healthy() {
	[ "$(bha_sql "$1" "SELECT worker_pid IS NOT NULL AND route_state NOT IN ('failed', 'fenced') FROM barman_ha_status()" 2>/dev/null)" = t ]
}

# Timings of one failover, in ms since T0 (epoch ms), into the global BHA_T (assoc. array):
# bha_failover_watch T0 NEW OLD WRITER: waits (bounded) for each step of the failover to NEW.
declare -A BHA_T
bha_failover_watch() {
	local t0=$1 new=$2 writer=$3 step name limit what cmd
	BHA_T=()
	for step in "promoted:30:$new promoted:bha_is_primary $new" \
		"slot:30:slot $BHA_SLOT on $new:bha_slot_exists $new" \
		"barman_endpoint:60:the Barman endpoint on $new:bha_endpoint_is $BHA_BARMAN_PORT $new" \
		"app_endpoint:60:the app endpoint on $new:bha_endpoint_is $BHA_APP_PORT $new" \
		"barman_streaming:60:Barman streaming from $new:bha_barman_streams_from $new" \
		"first_commit:60:a commit through $BHA_APP_PORT after the promotion:bha_writer_committed_after $writer $t0 promoted"; do
		IFS=: read -r name limit what cmd <<<"$step"
		# shellcheck disable=SC2086
		bha_wait "$limit" "$what" $cmd || return 1
		BHA_T[$name]=$(( $(bha_now_ms) - t0 ))
	done
	# a commit acknowledged just after the fault was sent before it: count from the promotion
	BHA_T[first_commit]=$(( $(bha_writer_first_after "$writer" $((t0 + BHA_T[promoted]))) - t0 ))
}
bha_writer_committed_after() { [ "$(bha_writer_after "$1" $(( $2 + ${BHA_T[$3]:-0} )))" -gt 0 ]; }
bha_failover_report() {
	local k
	for k in promoted slot barman_endpoint app_endpoint barman_streaming first_commit; do
		printf '%s=%s ' "$k" "${BHA_T[$k]:-?}"
	done
	echo "(ms since the fault, as the harness's polling saw them; first_commit: the writer's first commit after the promotion)"
}
bha_endpoints_on() { bha_endpoint_is $BHA_BARMAN_PORT "$1" && bha_endpoint_is $BHA_APP_PORT "$1"; }
# bha_writer_has NAME N [T]: the writer saw at least N commits (after epoch ms T)
bha_writer_has() { [ "$(bha_writer_after "$1" "${3:-0}")" -ge "$2" ]; }

# bha_fault_failover WRITER FIRST_I NEW WHAT SHOW CMD...: a writer (bha_writer_start WRITER
# FIRST_I) commits through the app endpoint, then CMD, the fault or the manager's command, moves
# the primary to NEW and every step of the failover is awaited (bha_failover_watch): two tests.
# A failover that does not complete runs SHOW (a command, ':' for nothing) and bails out.
# Sets BHA_T0 (epoch ms when CMD ran) and BHA_RTO (bha_failover_report), said as "WHAT: ...".
bha_fault_failover() {
	local w=$1 first=$2 new=$3 what=$4 show=$5; shift 5
	bha_writer_start "$w" "$first"
	t_ok "writer $w commits through $BHA_APP_PORT" bha_wait 30 "20 commits" bha_writer_has "$w" 20
	BHA_T0=$(bha_now_ms)
	"$@"
	t_ok "$what: $new promoted, slot, both endpoints, Barman streaming, writer $w resumes" \
		bha_failover_watch "$BHA_T0" "$new" "$w" || { "$show"; bail "$what: the failover to $new did not complete"; }
	BHA_RTO=$(bha_failover_report)
	diag "$what: $BHA_RTO"
}
# bha_writer_kept WRITER NODE: after bha_fault_failover, 20 more commits, the writer stopped;
# a test: every row it saw committed is on NODE.
bha_writer_kept() {
	bha_wait 30 "20 more commits" bha_writer_has "$1" 20 "$BHA_T0"
	bha_writer_stop "$1"
	is "$(bha_writer_lost "$1" "$2")" "" "every row writer $1 saw committed ($(bha_writer_count "$1")) is on $2"
}
# bha_bg LOG CMD...: CMD in the background (a command that waits for the end of what it
# starts), its output in LOG; bha_bg_ok NAME: a test, its exit status (LOG shown on failure).
bha_bg() { BHA_BG_LOG=$1; shift; "$@" >"$BHA_BG_LOG" 2>&1 & BHA_BG_PID=$!; }
bha_bg_ok() { wait "$BHA_BG_PID"; ok $? "$1" || sed 's/^/# /' "$BHA_BG_LOG"; }
# bha_slots NODE: NODE's replication slots by name, on one line
bha_slots() { bha_sql "$1" "SELECT string_agg(slot_name, ' ' ORDER BY slot_name) FROM pg_replication_slots" 2>/dev/null; }
# bha_crash HOST: kill -9 of every process in HOST's namespace (manager, postgres, sshd), as a host crash
# shellcheck disable=SC2086  # one pid per word
bha_crash() { local p; p=$(ip netns pids "$(bha_ns "$1")"); [ -n "$p" ] && kill -9 $p 2>/dev/null; return 0; }
# bha_sync_states NODE: NODE's synchronous candidates, "name=sync_state" (the standbys'
# slot-sync connections are walsenders too: left out)
bha_sync_states() { bha_sql "$1" "SELECT string_agg(application_name || '=' || sync_state, ' ' ORDER BY application_name) FROM pg_stat_replication WHERE application_name <> 'barman_ha_slot_sync'"; }
# bha_moved_to NEW OLD: after a failover, OLD a standby keeps a copy of the slot, Barman did
# not need --reset, barman check OK and the route ok on NEW: four tests.
bha_moved_to() {
	t_ok "$2 keeps a copy of the barman slot" bha_wait 30 "slot on $2" bha_slot_exists "$2"
	t_ok "Barman needed no receive-wal --reset" bha_barman_no_reset
	t_ok "barman check OK on $1" bha_wait 90 "barman check OK" bha_barman_check_ok || bha_barman_check | grep -v ': OK'
	t_ok "barman_ha_status() on $1 says ok" bha_wait 30 "route ok" bha_route_ok "$1"
}

# bha_rejoin NODE PRIMARY: repmgr node rejoin --force-rewind of NODE onto PRIMARY, then a fresh
# repmgrd on NODE that follows PRIMARY (the one that ran through the rejoin can stay stuck)
bha_rejoin() {
	bha_pg_stale_locks "$1"
	bha_repmgr "$1" node rejoin -d "host=${BHA_ADDR[$2]} port=5432 user=repmgr dbname=repmgr connect_timeout=2" \
		--force-rewind --config-archive-dir="$BHA_DATA/$1/config-archive" >>"$BHA_DATA/$1/rejoin.log" 2>&1 &&
		bha_repmgrd_restart "$1"
}

# bha_switchover NODE: repmgr standby switchover run on NODE (repmgr's own ssh between the nodes)
# ... then a fresh repmgrd on the demoted primary: the switchover turns it into a standby with
# `repmgr node rejoin`, after which its old repmgrd can stay stuck as after any rejoin (it logged
# "switching to standby monitoring", then nothing, and never promoted that node when the new
# primary's host went away)
bha_switchover() {
	local n old=""
	for n in $BHA_NODES; do bha_is_primary "$n" && old=$n; done
	bha_repmgr "$1" standby switchover --config-archive-dir="$BHA_DATA/$1/config-archive" >>"$BHA_DATA/$1/switchover.log" 2>&1 || return 1
	[ -n "$old" ] && [ -s "$BHA_DATA/$old/repmgrd.pid" ] || return 0
	bha_repmgrd_restart "$old"
}
# bha_repmgrd_follows NODE: `repmgr service status`: NODE's repmgrd runs, is not paused and saw
# its upstream at most 3 s ago (CSV: id,name,role,up,repmgrd,pid,paused,priority,last_seen,...)
bha_repmgrd_follows() {
	bha_repmgr "$1" service status --csv 2>/dev/null |
		awk -F, -v n="$1" '$2 == n && $5 == 1 && $7 == 0 && $9 >= 0 && $9 <= 3 {ok = 1} END {exit !ok}'
}

# ---------------------------------------------------------------- PITR in a scratch namespace

# bha_pitr_recover BACKUP_ID TARGET_TIME: barman recover into $BHA_DATA/pitr, paused at the
# target, with this scratch copy's own settings.
bha_pitr_recover() {
	local d=$BHA_DATA/pitr
	bha_pitr_stop
	rm -rf "$d"; bha_mkdir barman:barman 0755 "$d" "$d/run"
	[ -e "/run/netns/$(bha_ns pitr)" ] || { ip netns add "$(bha_ns pitr)" && ip -n "$(bha_ns pitr)" link set lo up; } || return 1
	bha_in backup timeout 300 barman -q recover --target-time "$2" --target-tli latest --target-action pause \
		"$BHA_SERVER" "$1" "$d/pgdata" >"$d/recover.log" 2>&1 || { cat "$d/recover.log" >&2; return 1; }
	# the recovered postgresql.conf includes ../node.conf: this scratch copy's own settings
	bha_write "$d/node.conf" barman:barman 0644 <<EOC
cluster_name = 'pitr'
unix_socket_directories = '$d/run'
listen_addresses = ''
shared_preload_libraries = ''
synchronous_standby_names = ''
EOC
	# a scratch copy with no network: trust on its socket only
	echo 'local all all trust' | bha_write "$d/pgdata/pg_hba.conf" barman:barman 0600
}
# bha_pitr_launch: start the recovered copy in PREFIX-pitr (no network); pg_ctl's status.
bha_pitr_launch() {
	ip netns exec "$(bha_ns pitr)" runuser -u barman -- "$BHA_PGBIN/pg_ctl" -D "$BHA_DATA/pitr/pgdata" \
		-l "$BHA_DATA/pitr/postgresql.log" -w -t 120 start >/dev/null
}
# bha_pitr BACKUP_ID TARGET_TIME: recover, start, wait until recovery has paused at the target.
bha_pitr() {
	bha_pitr_recover "$1" "$2" || return 1
	bha_pitr_launch || { tail -n 20 "$BHA_DATA/pitr/postgresql.log" >&2; return 1; }
	bha_wait 120 "the PITR copy to reach its target" bha_pitr_paused ||
		{ tail -n 20 "$BHA_DATA/pitr/postgresql.log" >&2; return 1; }
}
bha_pitr_sql() {
	ip netns exec "$(bha_ns pitr)" runuser -u barman -- "$BHA_PGBIN/psql" -X -qAt -h "$BHA_DATA/pitr/run" \
		-U postgres -d "${2:-appdb}" -c "$1"
}
bha_pitr_paused() { [ "$(bha_pitr_sql "SELECT pg_get_wal_replay_pause_state()" postgres 2>/dev/null)" = paused ]; }
bha_pitr_stop() {
	[ -f "$BHA_DATA/pitr/pgdata/postmaster.pid" ] || return 0
	ip netns exec "$(bha_ns pitr)" runuser -u barman -- "$BHA_PGBIN/pg_ctl" -D "$BHA_DATA/pitr/pgdata" -m immediate -w stop >/dev/null 2>&1
}

# ---------------------------------------------------------------- managers other than repmgr
# pg_auto_failover and Patroni: their bring-up, hooks (bha_mgr_up, bha_mgr_down, bha_mgr_hba)
# and helpers.  repmgr, the default, stays above.
# shellcheck source=test/cluster/managers.sh
. "$(dirname "${BASH_SOURCE[0]}")/managers.sh"

# shellcheck source=test/cluster/pair.sh
[ "$BHA_PAIR" = 1 ] && . "$(dirname "${BASH_SOURCE[0]}")/pair.sh"
