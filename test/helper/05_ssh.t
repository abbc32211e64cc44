#!/bin/bash
# 05_ssh.t: remote mode.  A DB node (namespace) whose config says
# remote = barman@BACKUP runs the helper as postgres; the helper drops root
# and runs ssh to a real sshd in the backup host's namespace, where
# authorized_keys pins each key to its node with a forced command
# (--from-ssh --node NAME).  Output and exit codes pass through.
. "$(dirname "$0")/lib.sh"
plan 16
setup
mkbridge
mkns B backup
mkns D db1
join "$B" $BACKUP_ADDR
join "$D" 10.213.0.1
backup_conf "$B"

# The backup host's copy: group barman, as on a real backup host.
make -s -C "$TOP/src/helper" install BINDIR="$T/bbin" HELPER_GROUP=barman >/dev/null || bail "install"

# Keys of db1 and db2, owned by postgres (ssh insists), in a root-owned dir.
mkdir -p "$T/keys" "$T/auth" && chmod 755 "$T/keys" "$T/auth"
for n in db1 db2; do
	ssh-keygen -q -t ed25519 -N '' -C "$n" -f "$T/keys/id_$n" || bail "ssh-keygen"
	chown postgres: "$T/keys/id_$n"
done
install -o postgres -g postgres -m 0644 /dev/null "$T/keys/known_hosts"
for n in db1 db2; do
	echo "command=\"$T/bbin/barman_ha_helper --from-ssh --node $n\",restrict $(cat "$T/keys/id_$n.pub")"
done >"$T/auth/barman"
chmod 644 "$T/auth/barman"

ssh-keygen -q -t ed25519 -N '' -f "$T/ssh_host_ed25519_key" || bail "host key"
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
LogLevel ERROR
EOF
# sshd needs its privilege-separation dir; the barman account must not be
# locked ("!") for sshd with UsePAM no (test/cluster unlocks it the same way).
mkdir -p /run/sshd && chmod 755 /run/sshd
if getent shadow barman | cut -d: -f2 | grep -q '^!'; then usermod -p '*' barman; fi
ip netns exec "$B" /usr/sbin/sshd -D -e -f "$T/sshd_config" 2>"$T/sshd.log" &
PIDS+=($!)
for _ in $(seq 50); do ip netns exec "$B" ss -ltn | grep -q "$BACKUP_ADDR:22 " && break; sleep 0.1; done

dbconf() {			# the DB node's config, with ssh port $1
	conf "$D" <<EOF
remote = barman@$BACKUP_ADDR
ssh_key = $T/keys/id_db1
ssh_known_hosts = $T/keys/known_hosts
ssh_port = $1
ssh_connect_timeout = 3
EOF
}
dbconf 22
rh() { hh "$D" "$@"; }			# the helper on the DB node, as postgres

out=$(rh promote db1 2 2>"$T/err"); ok $? "promote db1 2 over ssh exits 0 ($(tail -n 1 "$T/err"))"
like "$out" $'step fence ok [0-9.]+ db1 on timeline 2\n.*step state ok' "step lines pass through"
is "$(hh "$B" nat show)" $'barman db1 10.213.0.1:5432\napp db1 10.213.0.1:5432' "the backup host routes to db1"
out=$(rh promote db1 2); like "$out" '^step check ok [0-9.]+ routed$' "again: the cheap check"
like "$(rh status)" $'routed_node=db1\ntimeline=2' "status over ssh"
is "$(rh nat show)" $'barman db1 10.213.0.1:5432\napp db1 10.213.0.1:5432' "nat show over ssh"

rh promote db1 1 >/dev/null 2>"$T/err"; is $? 3 "a lower timeline is fenced through ssh (3)"
like "$(tail -n 1 "$T/err")" "^barman_ha_helper: fenced" "...with the backup host's line last"
rh promote db2 5 >/dev/null 2>"$T/err"; is $? 2 "db1's key cannot promote db2 (2)"
rh nat route db2 >/dev/null 2>&1; is $? 2 "db1's key cannot route db2 (2)"
rh frob >/dev/null 2>&1; is $? 2 "unknown verb refused locally (2)"

# db2's key, used by hand: may only speak for db2.
sshc() {
	ip netns exec "$D" runuser -u postgres -- ssh -F /dev/null -o BatchMode=yes \
		-o UserKnownHostsFile="$T/keys/known_hosts" -o IdentitiesOnly=yes -i "$T/keys/id_$1" \
		barman@$BACKUP_ADDR "${@:2}"
}
sshc db2 promote db1 7 >/dev/null 2>&1; is $? 2 "db2's key cannot promote db1 (2)"
sshc db2 "nat route db1; id" >/dev/null 2>&1; is $? 2 "metacharacters over ssh refused (2)"
is "$(hh "$B" nat show)" $'barman db1 10.213.0.1:5432\napp db1 10.213.0.1:5432' "nothing moved"

# The backup host unreachable: exit 1, one line naming it.
dbconf 2222
rh status >/dev/null 2>"$T/err"; is $? 1 "unreachable backup host: exit 1"
like "$(tail -n 1 "$T/err")" "^barman_ha_helper: ssh to barman@$BACKUP_ADDR failed" "...and the last line says so"
exit $((TAP_FAIL > 0))
