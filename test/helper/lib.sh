# lib.sh: shared pieces of the helper's TAP tests (sourced by test/helper/*.t).
#
# Each test gets its own namespaces named bhh$$-NAME, a root-owned scratch dir
# /var/lib/bhh-test-$$ (not under /tmp: sshd's StrictModes and the helper's
# trust checks refuse world-writable parents), its own setuid install of the
# helper there, and a trap that removes everything on exit, failure included.
# Addresses 10.213.0.x exist only inside these namespaces.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ID=bhh$$
T=/var/lib/bhh-test-$$
HELPER=$T/bin/barman_ha_helper
BACKUP_ADDR=10.213.0.10
NSLIST=()
PIDS=()
TAP_N=0
TAP_FAIL=0

# ---------------------------------------------------------------- TAP
plan() { echo "1..$1"; }
ok() {				# ok COND-EXIT-CODE NAME
	TAP_N=$((TAP_N + 1))
	if [ "$1" -eq 0 ]; then echo "ok $TAP_N - $2"; else echo "not ok $TAP_N - $2"; TAP_FAIL=$((TAP_FAIL + 1)); fi
}
is() {				# is GOT WANT NAME
	TAP_N=$((TAP_N + 1))
	if [ "$1" == "$2" ]; then echo "ok $TAP_N - $3"; else
		echo "not ok $TAP_N - $3"; TAP_FAIL=$((TAP_FAIL + 1))
		printf '#   got:  %s\n#   want: %s\n' "$1" "$2" | sed '2,$s/^/#         /' >&2
	fi
}
like() {			# like TEXT REGEX NAME
	TAP_N=$((TAP_N + 1))
	if [[ $1 =~ $2 ]]; then echo "ok $TAP_N - $3"; else
		echo "not ok $TAP_N - $3"; TAP_FAIL=$((TAP_FAIL + 1))
		echo "#   '$1' does not match /$2/" >&2
	fi
}
diag() { echo "# $*" >&2; }
bail() { echo "Bail out! $*"; exit 1; }

# ---------------------------------------------------------------- set-up
cleanup() {
	local p ns
	pg_down
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for ns in "${NSLIST[@]}"; do
		ip netns del "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns"
	done
	rm -rf "$T"
}
trap cleanup EXIT

# The helper installed setuid root, group postgres, in a root-owned dir.
setup() {
	mkdir -p "$T" && chmod 755 "$T" || bail "cannot create $T"
	make -s -C "$TOP/src/helper" >/dev/null || bail "helper does not build"
	make -s -C "$TOP/src/helper" install BINDIR="$T/bin" HELPER_GROUP=postgres >/dev/null ||
		bail "helper does not install"
	# ip netns exec bind-mounts /etc/netns/NS/repmgr_barman_ha here
	mkdir -p /etc/repmgr_barman_ha
}

# mkns VAR NAME: an empty namespace bhh$$-NAME with lo up, its name in VAR
# (not echoed: a $(...) subshell would lose it from the cleanup list).
mkns() {
	local ns=$ID-$2
	ip netns add "$ns" || bail "cannot create namespace $ns"
	NSLIST+=("$ns")
	ip -n "$ns" link set lo up
	printf -v "$1" %s "$ns"
}

# A bridge in a namespace of its own; host namespaces join it with
# join NS ADDR (veth, address ADDR/24).
mkbridge() {
	mkns BR br
	ip -n "$BR" link add br0 type bridge && ip -n "$BR" link set br0 up
}
join() {
	local ns=$1 addr=$2 n
	VETHS=$((${VETHS:-0} + 1)); n=$VETHS
	ip link add "bhv$$x$n" netns "$BR" type veth peer name eth0 netns "$ns" || bail "veth"
	ip -n "$BR" link set "bhv$$x$n" master br0 up
	ip -n "$ns" addr add "$addr/24" dev eth0
	ip -n "$ns" link set eth0 up
}

# hosts N: the usual test network. The helper set up, the bridge, the backup
# host B (joined first: its veth is bhv$$x1) with its usual config, and N
# database hosts S1..SN at 10.213.0.1..N (veths bhv$$x2 and on).
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

# conf NS < lines: the helper's config as seen in namespace NS
conf() {
	mkdir -p "/etc/netns/$1/repmgr_barman_ha"
	chmod 755 "/etc/netns/$1" "/etc/netns/$1/repmgr_barman_ha"
	cat >"/etc/netns/$1/repmgr_barman_ha/helper.conf"
	chmod 644 "/etc/netns/$1/repmgr_barman_ha/helper.conf"
}

# The usual backup-host config, two nodes, state under $T.
backup_conf() {
	mkdir -p "$T/state-$1" && chmod 755 "$T/state-$1"
	conf "$1" <<EOF
# test config of $1
backup_address = $BACKUP_ADDR
node.db1 = 10.213.0.1:5432
node.db2 = 10.213.0.2:5432
state_file = $T/state-$1/state
lock_timeout = 10
EOF
}

# barman_setup NS TIMEOUT DESCRIPTION [STREAMING_OPTIONS]: Barman server "pg"
# on the backup namespace NS (its /etc/barman.conf), streaming through the
# barman endpoint with slot "barman", and the helper's Barman keys for it.
barman_setup() {
	local ns=$1 timeout=$2 description=$3 streaming=${4:+ $4}
	printf '%s\n' "barman_server = pg" "archive_timeout = 40" "catchup_timeout = 20" \
		"barman_conninfo = host=$BACKUP_ADDR port=54321 user=postgres dbname=postgres connect_timeout=$timeout" \
		>>"/etc/netns/$ns/repmgr_barman_ha/helper.conf"
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

# hh NS ARGS...: the helper as postgres in namespace NS
hh() { local ns=$1; shift; ip netns exec "$ns" runuser -u postgres -- "$HELPER" "$@"; }

# natsave NS: the nat table without counters and comments
natsave() { ip netns exec "$1" iptables-legacy-save -t nat | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'; }

# ---------------------------------------------------------------- PostgreSQL
PGBIN=$(pg_config --bindir)
PGDATAS=()
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
