#!/bin/bash
# 05_privilege.t: what the caller can still do to a running barman_ha_nat.
# While it waits for a state lock the test holds: its ids are all 0, only
# CAP_NET_ADMIN and CAP_NET_RAW are left (effective, permitted and bounding
# set), no_new_privs is set, a descriptor the caller passed is gone, and the
# barman user can neither stop it (SIGSTOP) nor read its memory maps.  A
# caller that blocks and ignores SIGALRM still sees the wait
# end within lock_timeout + 1 s.  Every request and outcome reaches syslog
# with the argv escaped.
. "$(dirname "$0")/lib.sh"
setup
mkns NS b
conf "$NS"
STATE=$(state_of "$NS")
nb "$NS" init >/dev/null && nb "$NS" claim db1 2 >/dev/null || bail "set-up claim failed"

# pid_of: the barman_ha_nat process waiting in namespace NS (our install only)
pid_of() {
	local p i
	for i in $(seq 50); do
		p=$(pgrep -x -f "$NAT $*") && { echo "$p"; return; }
		sleep 0.05
	done
}
echo secret >"$T/passed-fd"
conf "$NS" "lock_timeout = 30"	# the looks below take seconds on a loaded machine
exec 9>"$STATE.lock"; flock 9
( nb "$NS" claim db1 2 7<"$T/passed-fd" >/dev/null 2>"$T/err"; echo $? >"$T/rc" ) 9>&- &
PIDS+=($!)
pid=$(pid_of claim db1 2)
ok $([ -n "$pid" ]; echo $?) "barman_ha_nat is waiting for the lock (pid $pid)"
st=$(cat "/proc/$pid/status")
field() { awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' <<<"$st"; }
is "$(field CapEff)" 0000000000003000 "CapEff: CAP_NET_ADMIN and CAP_NET_RAW only"
is "$(field CapPrm)" 0000000000003000 "CapPrm: the same"
is "$(field CapBnd)" 0000000000003000 "CapBnd: the same"
is "$(field CapInh) $(field CapAmb)" "0000000000000000 0000000000000000" "no inheritable or ambient capability"
is "$(field NoNewPrivs)" 1 "NoNewPrivs 1"
is "$(field Uid | tr -s '\t ' ' ')" "0 0 0 0" "real, effective, saved uid 0: the caller's uid is gone"
is "$(field Gid | tr -s '\t ' ' ')" "0 0 0 0" "all gids 0"
is "$(field Groups)" "" "no supplementary groups"
fds=$(ls -l "/proc/$pid/fd" | grep -c passed-fd)
is "$fds" 0 "the descriptor the caller passed (7) is closed"
is "$(field SigBlk)" 0000000000000000 "no signal blocked"
out=$(ip netns exec "$NS" runuser -u barman -- kill -STOP "$pid" 2>&1); rc=$?
ok $((rc == 0)) "barman cannot SIGSTOP it ($out)"
like "$(field State)" "^S" "...it is still sleeping, not stopped"
out=$(runuser -u barman -- cat "/proc/$pid/maps" 2>&1); ok $(($? == 0)) "barman cannot read its memory maps"
t0=$(date +%s%N)
exec 9>&-
wait "${PIDS[0]}"
ms=$((($(date +%s%N) - t0) / 1000000))
is "$(cat "$T/rc")" 0 "the claim ends with 0 once the lock is free"
ok $((ms > 500)) "...at once: waited in the kernel, not polled (${ms} ms)"

# a caller blocking and ignoring SIGALRM and SIGUSR1 still gets a bounded wait.
conf "$NS"
exec 9>"$STATE.lock"; flock 9
t0=$(date +%s%N)
ip netns exec "$NS" runuser -u barman -- perl -MPOSIX -e '
	sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGALRM, SIGUSR1, SIGTERM));
	$SIG{ALRM} = $SIG{USR1} = "IGNORE"; exec @ARGV or die' "$NAT" claim db1 2 >/dev/null 2>"$T/err" 9>&-
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
exec 9>&-
is "$rc" 1 "SIGALRM blocked and ignored by the caller: the wait still ends (1)"
ok $((ms < 2000 || ms > 3000)) "...within lock_timeout + 1 s (${ms} ms, lock_timeout 2 s)"
like "$(tail -n 1 "$T/err")" "state.lock still held after 2 s" "...and says why"

# syslog: a private /dev/log in a mount namespace of our own, read by a listener.
ip netns exec "$NS" unshare -m --propagation private bash -c '
	mount -t tmpfs -o mode=755 none /dev && mknod -m 666 /dev/null c 1 3 || exit 1
	'"$PY"' -c "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(\"/dev/log\"); s.settimeout(3)
out = open(sys.argv[1], \"w\")
try:
    while True: out.write(s.recv(4096).decode(errors=\"replace\") + chr(10)); out.flush()
except socket.timeout: pass" "$1/syslog" &
	sleep 0.3; chmod 666 /dev/log
	runuser -u barman -- "$2" route "db1" "$(printf "x\ty\001")" >/dev/null 2>&1
	runuser -u barman -- "$2" route db1 >/dev/null 2>&1
	wait' syslog "$T" "$NAT"
log=$(cat "$T/syslog" 2>/dev/null)
like "$log" "<86>.*barman_ha_nat\[[0-9]+\]: uid $(id -u barman): route db1 x\\\\x09y\\\\x01" \
	"syslog (authpriv): the request, argv escaped"
like "$log" "<84>.*uid $(id -u barman): exit 2: unknown endpoint" "syslog: the outcome with the reason"
like "$log" "uid $(id -u barman): exit 0" "syslog: a success too"
plan $TAP_N
exit $((TAP_FAIL > 0))
