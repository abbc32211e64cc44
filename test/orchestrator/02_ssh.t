#!/bin/bash
# 02_ssh.t: the DB node's side.  barman_ha_client runs as postgres with no
# privilege and runs ssh to a real sshd in the backup host's namespace, where
# authorized_keys pins each key to its node with the forced command
# (barman_ha_orchestrator --from-ssh --node NAME).  Output and exit codes pass
# through.  With ssh_control_path, `connect` holds one connection that the
# verbs share (no key exchange on a promotion), and a socket anyone else could
# have made is never used.  A DB node holds nothing privileged, and the
# client serves no --from-ssh at all; the host key is checked
# (StrictHostKeyChecking=yes): an unknown backup host gets nothing.
. "$(dirname "$0")/lib.sh"
plan 44
hosts 1
D=$S1

# Keys of db1 and db2, owned by postgres (ssh insists), in a root-owned dir.
mkdir -p "$T/keys" "$T/auth" && chmod 755 "$T/keys" "$T/auth"
for n in db1 db2; do
	ssh-keygen -q -t ed25519 -N '' -C "$n" -f "$T/keys/id_$n" || bail "ssh-keygen"
	chown postgres: "$T/keys/id_$n"
done
for n in db1 db2; do
	echo "command=\"$ORCH --from-ssh --node $n\",restrict $(cat "$T/keys/id_$n.pub")"
done >"$T/auth/barman"
chmod 644 "$T/auth/barman"
ssh-keygen -q -t ed25519 -N '' -f "$T/ssh_host_ed25519_key" || bail "host key"
echo "$BACKUP_ADDR $(cut -d' ' -f1,2 "$T/ssh_host_ed25519_key.pub")" >"$T/keys/known_hosts"
chmod 644 "$T/keys/known_hosts"
cat >"$T/sshd_config" <<EOF
ListenAddress $BACKUP_ADDR
Port 22
HostKey $T/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile $T/auth/%u
AllowUsers barman
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
StrictModes yes
LogLevel INFO
EOF
# sshd needs its privilege-separation dir; the barman account must not be
# locked ("!") for sshd with UsePAM no (test/cluster unlocks it the same way).
mkdir -p /run/sshd && chmod 755 /run/sshd
if getent shadow barman | cut -d: -f2 | grep -q '^!'; then usermod -p '*' barman; fi
ip netns exec "$B" /usr/sbin/sshd -D -e -f "$T/sshd_config" 2>"$T/sshd.log" &
PIDS+=($!)
for _ in $(seq 50); do ip netns exec "$B" ss -ltn | grep -q "$BACKUP_ADDR:22 " && break; sleep 0.1; done

dbconf() {			# the DB node's client.conf: ssh port $1, known_hosts $2
	conf "$D" client.conf <<EOF
backup = barman@$BACKUP_ADDR
ssh_key = $T/keys/id_db1
ssh_known_hosts = ${2:-$T/keys/known_hosts}
ssh_port = $1
ssh_connect_timeout = 3
${3:+ssh_control_path = $3}
EOF
}
dbconf 22
rc() { ip netns exec "$D" runuser -u postgres -- "$CLIENT" "$@"; }

out=$(rc promote db1 2 2>"$T/err"); ok $? "promote db1 2 over ssh exits 0 ($(tail -n 1 "$T/err"))"
like "$out" $'step fence ok [0-9.]+ claim recorded db1 2.*\nstep state ok' "step lines pass through"
is "$(endpoints "$B")" $'barman db1\napp db1' "the backup host routes to db1"
out=$(rc promote db1 2); like "$out" '^step check ok [0-9.]+ routed$' "again: the cheap check"
like "$(rc status)" $'routed_node=db1\ntimeline=2' "status over ssh"
rc promote db1 1 >/dev/null 2>"$T/err"; is $? 3 "a lower timeline is fenced through ssh (3)"
like "$(tail -n 1 "$T/err")" "^barman_ha_orchestrator: fenced" "...with the backup host's line last"
rc promote db2 5 >/dev/null 2>"$T/err"; is $? 2 "db1's key cannot promote db2 (2)"
rc frob >/dev/null 2>&1; is $? 2 "unknown verb refused by the client (2)"
rc promote 'db1;id' 3 >/dev/null 2>&1; is $? 2 "metacharacters refused by the client (2)"

# db2's key, used by hand: may only speak for db2.
sshc() {
	ip netns exec "$D" runuser -u postgres -- ssh -F /dev/null -o BatchMode=yes \
		-o UserKnownHostsFile="$T/keys/known_hosts" -o IdentitiesOnly=yes -i "$T/keys/id_$1" \
		barman@$BACKUP_ADDR "${@:2}"
}
sshc db2 promote db1 7 >/dev/null 2>&1; is $? 2 "db2's key cannot promote db1 (2)"
sshc db2 "nat route db2; id" >/dev/null 2>&1; is $? 2 "metacharacters over ssh refused (2)"
is "$(endpoints "$B")" $'barman db1\napp db1' "nothing moved"

# The shared connection.  sshd logs one "Accepted publickey" per connection.
logins() { grep -c 'Accepted publickey' "$T/sshd.log"; }
timed() { local t0=$EPOCHREALTIME; rc status >/dev/null; echo $(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 )); }
rc connect >/dev/null 2>"$T/err"; is $? 2 "connect without ssh_control_path: usage error (2)"
like "$(tail -n 1 "$T/err")" "ssh_control_path is not set" "...saying what is missing"
install -d -o postgres -g postgres -m 0755 "$T/ctl"
dbconf 22 "" "$T/ctl/backup"
rc connect >/dev/null 2>"$T/err"; is $? 2 "connect with a control directory others may enter: refused (2)"
like "$(tail -n 1 "$T/err")" "can be entered by group or others" "...saying why"
chmod 0700 "$T/ctl"
direct=$(timed)
master_pid() { ip netns exec "$D" runuser -u postgres -- ssh -F /dev/null -O check -o ControlPath="$T/ctl/backup" x 2>&1 | sed -n 's/.*pid=\([0-9]*\).*/\1/p'; }
wait_master() { for _ in $(seq 50); do [ -n "$(master_pid)" ] && return 0; sleep 0.1; done; return 1; }
is "$(rc connect)" connecting "connect starts the shared connection and returns at once"
wait_master; ok $? "...which is held open (an ssh master answers on the socket)"
PIDS+=($(master_pid))
n0=$(logins)
is "$(rc connect)" connected "connect again: it is there, nothing started"
shared=$(timed); timed >/dev/null; timed >/dev/null
is "$(logins)" "$n0" "three requests on it open no new ssh connection"
diag "one status request: direct $direct ms, on the shared connection $shared ms"
rc promote db2 5 >/dev/null 2>"$T/err"; is $? 2 "on the shared connection db1's key still cannot promote db2 (2)"
like "$(rc promote db1 2)" '^step check ok [0-9.]+ routed$' "...and the forced command still answers db1's level check"
# Known hosts changed after the master started: it is not used, connect replaces it.
touch "$T/keys/known_hosts"
rc status >/dev/null; ok $? "known hosts changed since the master started: the request succeeds..."
is "$(logins)" "$((n0 + 1))" "...on a connection of its own (the change holds for the next call)"
old_master=$(master_pid)
is "$(rc connect)" connecting "connect replaces the outdated master"
for _ in $(seq 50); do [ -n "$(master_pid)" ] && [ "$(master_pid)" != "$old_master" ] && break; sleep 0.1; done
PIDS+=($(master_pid))
n0=$(logins)
rc status >/dev/null
is "$(logins)" "$n0" "...and requests share the new one"
# A socket where others may enter: never used, ssh connects by itself.
chmod 0755 "$T/ctl"
rc status >/dev/null; ok $? "with the directory opened to others the request still succeeds..."
is "$(logins)" "$((n0 + 1))" "...on a connection of its own (the socket is not trusted)"
chmod 0700 "$T/ctl"
rc disconnect; ok $? "disconnect ends the shared connection"
[ -e "$T/ctl/backup" ]; is $? 1 "...and its socket is gone"
rc status >/dev/null; ok $? "without it requests connect directly"
is "$(logins)" "$((n0 + 2))" "...opening their own connection"
# A socket left behind by a master that died is replaced.
ip netns exec "$D" runuser -u postgres -- python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('$T/ctl/backup')"
is "$(rc connect)" connecting "a dead master's socket: connect starts a new one"
wait_master; ok $? "...which answers on the socket"
PIDS+=($(master_pid))
rc disconnect
dbconf 22

# Finding 2: nothing privileged on a DB node, and no --from-ssh there.
install -d -m 0755 "$T/dbnode"
make -s -C "$TOP" install DESTDIR="$T/dbnode" >/dev/null 2>&1 || make -s -C "$TOP/client" install BINDIR="$T/dbnode/bin" >/dev/null
is "$(find "$T/dbnode" -type f -perm /6000 | wc -l)" 0 "make install (a DB node) installs no setuid or setgid file"
is "$(getcap -r "$T/dbnode" 2>/dev/null | wc -l)" 0 "...and no file capability"
ip netns exec "$D" runuser -u postgres -- env SSH_ORIGINAL_COMMAND="nat init" "$CLIENT" --from-ssh >/dev/null 2>"$T/err"
is $? 2 "SSH_ORIGINAL_COMMAND=\"nat init\" barman_ha_client --from-ssh on a DB node: usage error (2)"
if [ "${BHA_NAT_BACKEND:-iptables}" = nftables ]; then
	is "$(ip netns exec "$D" nft list ruleset | wc -l)" 0 "...and the DB node's netfilter is untouched"
else
	is "$(ip netns exec "$D" iptables-legacy -t nat -S | grep -c repmgr)" 0 "...and the DB node's nat table is untouched"
fi
is "$(ip netns exec "$D" cat /proc/sys/net/ipv4/ip_forward)" 0 "...and forwarding stays off there"

# The host key is checked: an unknown backup host gets no request.
install -o postgres -g postgres -m 0644 /dev/null "$T/keys/empty_known_hosts"
dbconf 22 "$T/keys/empty_known_hosts"
rc status >/dev/null 2>"$T/err"; is $? 1 "unknown host key: exit 1 (StrictHostKeyChecking=yes)"
is "$(wc -c <"$T/keys/empty_known_hosts")" 0 "...and the key was not learnt (no accept-new)"

# The backup host unreachable: exit 1, one line naming it.
dbconf 2222
rc status >/dev/null 2>"$T/err"; is $? 1 "unreachable backup host: exit 1"
like "$(tail -n 1 "$T/err")" "^barman_ha_client: ssh to barman@$BACKUP_ADDR failed" "...and the last line says so"
exit $((TAP_FAIL > 0))
