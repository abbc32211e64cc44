# tap.sh: the TAP functions and private network namespaces shared by the bash
# tests: the programs' (test/nat, test/orchestrator, test/packages) and, through
# test/cluster/lib.sh, the namespace cluster's and the benchmark's.
#
# ok, is, like and t_ok return the test's status, so "ok $? NAME || diagnose"
# works.  Diagnostics go to stderr, "Bail out!" ends the script with exit 255,
# as prove expects.  A test either prints its plan first (plan N) or ends with
# done_testing, which prints it and returns non-zero when a test failed.
#
# The namespaces (mkns, mkbridge, join): a test sets ID (a namespace prefix of
# its own) and calls tap_cleanup from its EXIT trap.  Namespaces are named
# ID-NAME; nothing is put on the root namespace and no namespace gets a
# default route.
set -u
TAP_N=0
TAP_FAIL=0
NSLIST=()
PIDS=()

plan() { echo "1..$1"; }
ok() {				# ok EXIT-CODE NAME
	TAP_N=$((TAP_N + 1))
	if [ "$1" -eq 0 ]; then echo "ok $TAP_N - $2"; else echo "not ok $TAP_N - $2"; TAP_FAIL=$((TAP_FAIL + 1)); fi
	return "$1"
}
t_ok() { local name=$1; shift; "$@"; ok $? "$name"; }	# t_ok NAME CMD...: CMD's status
is() {				# is GOT WANT NAME
	TAP_N=$((TAP_N + 1))
	if [ "$1" == "$2" ]; then echo "ok $TAP_N - $3"; else
		echo "not ok $TAP_N - $3"; TAP_FAIL=$((TAP_FAIL + 1))
		printf '#   got:  %s\n' "$1" | sed '2,$s/^/#         /' >&2
		printf '#   want: %s\n' "$2" | sed '2,$s/^/#         /' >&2
		return 1
	fi
}
like() {			# like TEXT REGEX NAME
	TAP_N=$((TAP_N + 1))
	if [[ $1 =~ $2 ]]; then echo "ok $TAP_N - $3"; else
		echo "not ok $TAP_N - $3"; TAP_FAIL=$((TAP_FAIL + 1))
		echo "#   '$1' does not match /$2/" >&2
		return 1
	fi
}
skip() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N # skip $*"; }
diag() { echo "# $*" >&2; }
bail() { echo "Bail out! $*"; exit 255; }
done_testing() { echo "1..$TAP_N"; [ "$TAP_FAIL" -eq 0 ]; }

# mkns VAR NAME: an empty namespace ID-NAME with lo up, its name in VAR
# (not echoed: a $(...) subshell would lose it from the cleanup list).
mkns() {
	local ns=$ID-$2
	ip netns add "$ns" || bail "cannot create namespace $ns"
	NSLIST+=("$ns")
	ip -n "$ns" link set lo up
	printf -v "$1" %s "$ns"
}

# mkbridge: a bridge in a namespace of its own (BR); host namespaces join it
# with join NS ADDR (veth, address ADDR/24).
mkbridge() {
	mkns BR br
	ip -n "$BR" link add br0 type bridge && ip -n "$BR" link set br0 up
}
join() {
	local ns=$1 addr=$2 n
	VETHS=$((${VETHS:-0} + 1)); n=$VETHS
	ip link add "v$ID$n" netns "$BR" type veth peer name eth0 netns "$ns" || bail "veth"
	ip -n "$BR" link set "v$ID$n" master br0 up
	ip -n "$ns" addr add "$addr/24" dev eth0
	ip -n "$ns" link set eth0 up
}

# tap_cleanup: end the processes the test started (PIDS), delete the
# namespaces and their /etc/netns folders, and the scratch folder T.
tap_cleanup() {
	local ns p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for ns in "${NSLIST[@]}"; do
		ip netns del "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns"
	done
	NSLIST=()
	[ -n "${T:-}" ] && rm -rf "$T"
}
