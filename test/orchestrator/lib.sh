# lib.sh: shared pieces of barman_ha_orchestrator's tests (sourced by
# test/orchestrator/*.t), on top of test/lib/tap.sh.
#
# Each test gets its own namespaces bho$$-NAME, a root-owned scratch dir
# /var/lib/bho-test-$$ (not under /tmp: sshd's StrictModes and the programs'
# trust checks refuse world-writable parents) with its own install of the
# backup host's two programs (barman_ha_nat setuid root, group barman), and a
# trap that removes everything on exit, failure included.  Addresses
# 10.213.0.x exist only inside these namespaces.  BHO_PREFIX (default bho)
# names both, for runs side by side.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BHO_PREFIX=${BHO_PREFIX:-bho}
ID=$BHO_PREFIX$$
T=/var/lib/$BHO_PREFIX-test-$$
ORCH=$T/bin/barman_ha_orchestrator
NAT=$T/bin/barman_ha_nat
CLIENT=$T/bin/barman_ha_client
BACKUP_ADDR=10.213.0.10
PGBIN=$(pg_config --bindir)
PIDS=()
PGDATAS=()
# shellcheck source=test/lib/tap.sh
. "$TOP/test/lib/tap.sh"

cleanup() {
	pg_down
	tap_cleanup
}
trap cleanup EXIT

# The programs as make install-backup and make install put them.
setup() {
	mkdir -p "$T" && chmod 755 "$T" || bail "cannot create $T"
	make -s -C "$TOP/orchestrator" install BINDIR="$T/bin" NAT_PROGRAM="$NAT" >/dev/null ||
		bail "the orchestrator does not build"
	make -s -C "$TOP/nat" install BINDIR="$T/bin" NAT_GROUP=barman >/dev/null ||
		bail "barman_ha_nat does not build"
	make -s -C "$TOP/client" install BINDIR="$T/bin" >/dev/null || bail "the client does not build"
	mkdir -p /etc/repmgr_barman_ha	# ip netns exec bind-mounts /etc/netns/NS/repmgr_barman_ha here
}

# hosts N: the backup host B (10.213.0.10) and N database hosts S1..SN
# (10.213.0.1..N) on a bridge, the programs installed, the usual configs.
hosts() {
	local i var
	setup
	mkbridge
	mkns B backup
	join "$B" $BACKUP_ADDR
	for ((i = 1; i <= $1; i++)); do
		var=S$i
		mkns "$var" "db$i"
		join "${!var}" "10.213.0.$i"
	done
	backup_conf "$B"
}

# conf NS FILE < lines: /etc/repmgr_barman_ha/FILE as namespace NS sees it
conf() {
	mkdir -p "/etc/netns/$1/repmgr_barman_ha"
	chmod 755 "/etc/netns/$1" "/etc/netns/$1/repmgr_barman_ha"
	cat >"/etc/netns/$1/repmgr_barman_ha/$2"
	chmod 644 "/etc/netns/$1/repmgr_barman_ha/$2"
}
# addconf NS FILE LINE...: more lines for FILE
addconf() { local ns=$1 f=$2; shift 2; printf '%s\n' "$@" >>"/etc/netns/$ns/repmgr_barman_ha/$f"; }

# The usual backup-host configs: two nodes, claim check off (the tests that
# want it switch it on), states under $T.
backup_conf() {
	install -d -m 0755 "$T/state-$1"
	install -d -o barman -g barman -m 0750 "$T/ostate-$1"
	conf "$1" nat.conf <<EOF
backup_address = $BACKUP_ADDR
node.db1 = 10.213.0.1:5432
node.db2 = 10.213.0.2:5432
nat_backend = ${BHA_NAT_BACKEND:-iptables}
state_file = $T/state-$1/state
lock_timeout = 10
EOF
	conf "$1" orchestrator.conf <<EOF
nat_program = $NAT
state_directory = $T/ostate-$1
claim_check = off
lock_timeout = 10
EOF
}

# hh NS ARGS...: the orchestrator as barman in namespace NS (as ssh runs it)
hh() { local ns=$1; shift; ip netns exec "$ns" runuser -u barman -- "$ORCH" "$@"; }
# natroot NS ARGS...: barman_ha_nat as root (the operator, the boot unit)
natroot() { local ns=$1; shift; ip netns exec "$ns" "$NAT" "$@"; }
# endpoints NS: one line per endpoint, "barman TARGET", "app TARGET"
endpoints() { natroot "$1" show | sed -n 's/^endpoint \([a-z]*\) [0-9.]* [0-9]* \([^ ]*\).*/\1 \2/p'; }
# ostate NS: the orchestrator's own record
ostate() { cat "$T/ostate-$1/orchestrator.state"; }

# barman_setup NS TIMEOUT DESCRIPTION [STREAMING_OPTIONS]: Barman server "pg"
# on the backup namespace NS (its /etc/barman.conf), streaming through the
# barman endpoint with slot "barman", and the orchestrator's Barman keys.
barman_setup() {
	local ns=$1 timeout=$2 description=$3 streaming=${4:+ $4}
	addconf "$ns" orchestrator.conf "barman_server = pg" "archive_timeout = 40" "catchup_timeout = 20" \
		"barman_conninfo = host=$BACKUP_ADDR port=54321 user=postgres dbname=postgres connect_timeout=$timeout"
	install -d -o barman -g barman -m 0750 "$T/barman"
	mkdir -p "/etc/netns/$ns/barman.d"
	cat >"/etc/netns/$ns/barman.conf" <<EOF
[barman]
barman_user = barman
configuration_files_directory = /etc/barman.d
barman_home = $T/barman
log_file = $T/barman/barman.log
log_level = INFO
path_prefix = $PGBIN
EOF
	cat >"/etc/netns/$ns/barman.d/pg.conf" <<EOF
[pg]
description = "$description"
conninfo = host=$BACKUP_ADDR port=54321 user=postgres dbname=postgres connect_timeout=$timeout
streaming_conninfo = host=$BACKUP_ADDR port=54321 user=postgres connect_timeout=$timeout$streaming
backup_method = postgres
streaming_archiver = on
streaming_archiver_name = barman_receive_wal
slot_name = barman
EOF
	chmod -R a+rX "/etc/netns/$ns"
}

# pg_up N NS [standby]: PostgreSQL in namespace NS on 10.213.0.N:5432, its
# own socket dir, trust for 10.213.0.0/24; "standby" starts it in recovery.
pg_up() {
	local n=$1 ns=$2 d=$T/pg$1
	install -d -o postgres -g postgres -m 0700 "$d"
	runuser -u postgres -- "$PGBIN/initdb" -D "$d" -A trust -U postgres --no-sync >/dev/null || bail "initdb"
	printf "host all all 10.213.0.0/24 trust\nhost replication all 10.213.0.0/24 trust\n" >>"$d/pg_hba.conf"
	[ "${3:-}" = standby ] && runuser -u postgres -- touch "$d/standby.signal"
	PGDATAS+=("$d")
	ip netns exec "$ns" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d" -l "$d/log" -w -s \
		-o "-c listen_addresses=10.213.0.$n -c unix_socket_directories=$d -c port=5432 -c fsync=off" start ||
		bail "postgres $n does not start"
}
pg_down() {
	local d
	for d in "${PGDATAS[@]}"; do
		[ -f "$d/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d" -s -m immediate stop
	done
}
