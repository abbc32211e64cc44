#!/bin/bash
# 12_held.t: the barman user cannot hold barman_ha_nat, and with it the
# state lock, through its descriptors or its terminal.  A claim run with
# stdout and stderr on a full pipe nobody reads, and a claim run in a
# background process group of a terminal with `stty tostop` (a write there
# stops the writer with SIGTTOU): in both, root's `claim --force` right
# after gets the lock at once, and the barman_ha_nat started by barman is
# gone within its overall deadline (2 * lock_timeout + 5 s).
. "$(dirname "$0")/lib.sh"
setup
mkns NS b
conf "$NS"
nb "$NS" init >/dev/null && nb "$NS" claim db1 2 >/dev/null || bail "set-up claim failed"

# held MODE: barman's "claim db1 2" with its output on a full pipe (pipe) or
# on a tostop terminal from a background group (tty); one second later
# root's "claim db2 3 --force".  Prints "force RC MS", "state STATE" (of
# barman's process during root's claim) and "ended yes|no MS".
held() {
	ip netns exec "$NS" $PY - "$NAT" "$1" <<'EOF'
import fcntl, os, pty, pwd, subprocess, sys, termios, time
nat, mode = sys.argv[1], sys.argv[2]
pw = pwd.getpwnam("barman")
def barman():
    os.setgid(pw.pw_gid); os.initgroups("barman", pw.pw_gid); os.setuid(pw.pw_uid)
def state(pid):
    try:
        return open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
argv = [nat, "claim", "db1", "2"]
t0 = time.monotonic()
if mode == "pipe":
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETFL, os.O_NONBLOCK)
    for size in (4096, 1):
        try:
            while True:
                os.write(w, b"x" * size)
        except BlockingIOError:
            pass
    fcntl.fcntl(w, fcntl.F_SETFL, 0)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=w, stderr=w, preexec_fn=barman)
    pid = p.pid
else:
    rp, wp = os.pipe()
    child, master = pty.fork()
    if child == 0:
        attrs = termios.tcgetattr(1)
        attrs[3] |= termios.TOSTOP
        termios.tcsetattr(1, termios.TCSANOW, attrs)
        c = os.fork()
        if c == 0:
            os.setpgid(0, 0)	# a background group of this terminal
            barman()
            os.execv(nat, argv)
        os.write(wp, b"%d\n" % c)
        os.waitpid(c, 0)
        os._exit(0)
    pid = int(os.read(rp, 64))
time.sleep(1)
st = state(pid)
t1 = time.monotonic()
f = subprocess.run([nat, "claim", "db2", "3", "--force"], capture_output=True, text=True)
print("force %d %d %s" % (f.returncode, (time.monotonic() - t1) * 1000, (f.stdout + f.stderr).replace("\n", ";")))
print("state %s" % st)
while state(pid) not in ("gone", "Z") and time.monotonic() - t0 < 11:
    time.sleep(0.1)
ended = state(pid) in ("gone", "Z")
print("ended %s %d" % ("yes" if ended else "no", (time.monotonic() - t0) * 1000))
if not ended:
    os.kill(pid, 9)
    os.kill(pid, 18)
if mode == "tty":
    os.waitpid(child, 0)
else:
    p.wait()
EOF
}

for mode in pipe tty; do
	out=$(held $mode)
	diag "$mode: $(tr '\n' ' ' <<<"$out")"
	like "$(grep '^force' <<<"$out")" "^force 0 [0-9]+ claim recorded db2 3;flows 0;$" \
		"$mode: root's claim --force gets the lock while barman's claim cannot write"
	ms=$(awk '$1 == "force" { print $3 }' <<<"$out")
	ok $((ms >= 1000)) "...at once (${ms} ms, lock_timeout 2 s)"
	like "$(grep '^ended' <<<"$out")" "^ended yes" "$mode: barman's barman_ha_nat is gone within its deadline (9 s)"
	is "$(cat "$(state_of "$NS")")" $'node=db2\ntimeline=3' "...and the state is root's"
	nr "$NS" claim db1 2 --force >/dev/null || bail "reset by --force"
done
plan $TAP_N
exit $((TAP_FAIL > 0))
