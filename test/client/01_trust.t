#!/bin/bash
# 01_trust.t: what barman_ha_client refuses before it starts anything, run as
# postgres (the account the worker runs it as) in a namespace with no network,
# so the one ssh that may start reaches nothing.  A refusal is exit 2 with one
# line on stderr; a request that got as far as ssh is exit 1 ("ssh to HOST
# failed").
#   - client.conf is trusted only when it and every folder above it are root's
#     and writable by nobody else: a folder postgres owns, a group-writable
#     folder, a world-writable parent, a folder reached through a symlink are
#     each refused, whoever owns the file;
#   - promote's TIMELINE is 1..2^31-1 and NODE a name, as the contract says;
#   - a value is one word: a second one is an error, never dropped.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
ID=bhcl$$
T=/var/lib/bhcl-test-$$
. "$TOP/test/lib/tap.sh"
trap tap_cleanup EXIT
plan 29

install -d -m 0755 "$T" || bail "cannot create $T"
make -s -C "$TOP/client" install BINDIR="$T/bin" >/dev/null || bail "the client does not build"
mkns NS none
conf_text() {
	printf '%s\n' "backup = barman@backup.invalid" "ssh_key = $T/key" "ssh_known_hosts = $T/known_hosts" "$@"
}
# conf DIR [LINE...]: a root-owned 0644 client.conf in DIR
conf() { local d=$1; shift; conf_text "$@" >"$d/client.conf" && chown root: "$d/client.conf" && chmod 0644 "$d/client.conf"; }
# run CONF ARGS...: the client as postgres; sets rc and err
run() {
	local c=$1; shift
	ip netns exec "$NS" runuser -u postgres -- "$T/bin/barman_ha_client" -c "$c" "$@" >/dev/null 2>"$T/err"
	rc=$?; err=$(cat "$T/err")
}
refused() {			# refused NAME REGEX: exit 2, one line saying REGEX, no ssh
	is "$rc" 2 "$1: refused (2)"
	like "$err" "^barman_ha_client: .*$2" "...saying why"
	is "$(wc -l <<<"$err")" 1 "...in one line, nothing started"
}

install -d -m 0755 "$T/good"
conf "$T/good"
run "$T/good/client.conf" status
is "$rc" 1 "a trusted configuration: ssh starts (and reaches nothing here)"
like "$err" "ssh to barman@backup.invalid failed" "...the one line names the host"

install -d -o postgres -m 0755 "$T/pgowned"
conf "$T/pgowned"
run "$T/pgowned/client.conf" status
refused "root's client.conf in a folder postgres owns" "untrusted: $T/pgowned is not owned by root"

install -d -g postgres -m 0775 "$T/groupw"
conf "$T/groupw"
run "$T/groupw/client.conf" status
refused "a group-writable folder" "is writable by group or others"

install -d -m 1777 "$T/world" && install -d -m 0755 "$T/world/sub"
conf "$T/world/sub"
run "$T/world/sub/client.conf" status
refused "a folder under a world-writable parent" "untrusted: $T/world is writable by group or others"

install -d -o postgres -m 0755 "$T/pgdir" && conf "$T/pgdir"
ln -s "$T/pgdir" "$T/link" && chown -h postgres: "$T/link"
run "$T/link/client.conf" status
refused "a folder reached through postgres's symlink" "cannot open directory $T/link"

for tl in abc 0 2147483648 1.5 -1 ""; do
	run "$T/good/client.conf" promote db1 "$tl"
	is "$rc" 2 "promote db1 '$tl': refused (2) before ssh"
done
like "$err" "promote needs a node name and a timeline from 1 to 2147483647" "...saying what is expected"
run "$T/good/client.conf" promote -db1 2
is "$rc" 2 "promote with a node name that reads as an option: refused (2)"
run "$T/good/client.conf" promote db1 2147483647
is "$rc" 1 "promote db1 2147483647 (the largest timeline): goes to ssh"

conf "$T/good" "ssh_port = 2299 22"
run "$T/good/client.conf" status
refused "ssh_port = 2299 22" "line 4: expected .* one valid word"
install -d -m 0755 "$T/proxy"
printf '%s\n' "backup = barman@backup.invalid -oProxyCommand=touch$T/owned" "ssh_key = $T/key" \
	"ssh_known_hosts = $T/known_hosts" >"$T/proxy/client.conf"
run "$T/proxy/client.conf" status
refused "backup = barman@host -oProxyCommand=...: a second word" "line 1: expected"
exit $((TAP_FAIL > 0))
