#!/bin/bash
# 07_session.t: whatever the orchestrator runs (barman,
# and through it pg_receivewal) runs as barman in a session of its own: it
# has no controlling terminal, so it cannot push input into the terminal of
# root running `barman_ha_orchestrator barman reset` by hand (TIOCSTI).
# A stand-in for the barman command tries to open /dev/tty; the same script
# run directly under the same terminal shows that the terminal is there.
# And on this side: a caller's blocked signals and ignored
# SIGALRM do not make the orchestrator's own waits unbounded.
. "$(dirname "$0")/lib.sh"
plan 5
hosts 0
cat >"$T/fake-barman" <<EOF
#!/bin/sh
# stands in for barman: can it reach a terminal?
if (exec 3<>/dev/tty) 2>/dev/null; then echo "tty \$(id -un)" >>$T/tty.log; else echo "no tty \$(id -un)" >>$T/tty.log; fi
exit 1
EOF
chmod 0755 "$T/fake-barman"
install -m 0666 /dev/null "$T/tty.log"
addconf "$B" orchestrator.conf "barman_server = pg" "barman_path = $T/fake-barman"

# root at a terminal (script(1) gives it one) runs the script directly: a tty
script -qec "$T/fake-barman" /dev/null >/dev/null 2>&1
is "$(cat "$T/tty.log")" "tty root" "control: a program run from root's terminal reaches it"
: >"$T/tty.log"
script -qec "ip netns exec $B $ORCH barman reset" /dev/null >"$T/out" 2>&1
is "$(cat "$T/tty.log")" "no tty barman" "run by the orchestrator: as barman, with no terminal to reach"
like "$(cat "$T/out")" "barman_stop failed|show-server" "...and the reset reports the failed barman call"

# A caller that blocked every signal and ignores SIGALRM: the orchestrator's
# lock wait (the node's own lock, held here) still ends within lock_timeout.
sed -i 's/^lock_timeout = .*/lock_timeout = 2/' "/etc/netns/$B/repmgr_barman_ha/orchestrator.conf"
exec 9>"$T/ostate-$B/node.db1.lock"
flock 9
t0=${EPOCHREALTIME/./}
ip netns exec "$B" runuser -u barman -- perl -e '
	use POSIX qw(sigprocmask SIG_BLOCK);
	my $all = POSIX::SigSet->new; $all->fillset; sigprocmask(SIG_BLOCK, $all);
	$SIG{ALRM} = "IGNORE"; exec @ARGV' "$ORCH" promote db1 5 >/dev/null 2>"$T/err"
rc=$?
ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
exec 9>&-
is $rc 1 "blocked signals, SIGALRM ignored: the busy lock is given up with exit 1 ($(tail -n 1 "$T/err"))"
ok $(( ms < 3500 ? 0 : 1 )) "...within lock_timeout (2 s) plus start-up: $ms ms"
exit $((TAP_FAIL > 0))
