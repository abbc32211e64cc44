#!/bin/bash
# usage.t: the three programs as built in the tree, run as an unprivileged user (nobody
# when run as root), no namespace: their usage errors and configuration refusals exit 2
# with one line on stderr saying why; --help exits 0.  make check runs it after the
# C unit tests; what needs root, a trusted configuration or a namespace is in test/nat
# and test/orchestrator.
. "$(dirname "$0")/../lib/tap.sh"
TOP=$(cd "$(dirname "$0")/../.." && pwd)
ORCH=$TOP/orchestrator/barman_ha_orchestrator
NAT=$TOP/nat/barman_ha_nat
CLIENT=$TOP/client/barman_ha_client
W=$(mktemp -d /tmp/bha-usage.XXXXXX)
trap 'rm -rf "$W"' EXIT
chmod 755 "$W"
as=()
[ "$(id -u)" -eq 0 ] && as=(runuser -u nobody --)

# refused CODE WANT-LINE NAME PROGRAM ARGS...: exit CODE, stderr exactly WANT-LINE
refused() {
	local code=$1 want=$2 name=$3 err rc
	shift 3
	err=$("${as[@]}" env -u SSH_ORIGINAL_COMMAND "$@" 2>&1 >/dev/null)
	rc=$?
	is "$rc $err" "$code $want" "$name"
}
# refused_ssh COMMAND WANT-LINE NAME: the orchestrator as the ssh forced command
refused_ssh() {
	local err rc
	err=$("${as[@]}" env SSH_ORIGINAL_COMMAND="$1" "$ORCH" --from-ssh --node db1 2>&1 >/dev/null)
	rc=$?
	is "$rc $err" "2 $2" "$3"
}

for p in "$ORCH" "$NAT" "$CLIENT"; do
	[ -x "$p" ] || bail "$p is not built (make check builds it)"
done

o=barman_ha_orchestrator:
"${as[@]}" "$ORCH" --help >/dev/null 2>&1
ok $? "orchestrator --help exits 0"
refused 2 "$o no verb given (see barman_ha_orchestrator --help)" "orchestrator: no verb" "$ORCH"
refused 2 "$o unknown option \"-x\" (see barman_ha_orchestrator --help)" "orchestrator: an unknown option" "$ORCH" -x status
refused 2 "$o unknown option \"-c\" (see barman_ha_orchestrator --help)" "orchestrator: -c without a file" "$ORCH" -c
refused 2 "$o --node only goes with --from-ssh (see barman_ha_orchestrator --help)" \
	"orchestrator: --node without --from-ssh" "$ORCH" --node db1 status
refused 2 "$o invalid --node name (see barman_ha_orchestrator --help)" \
	"orchestrator: an invalid --node name" "$ORCH" --from-ssh --node -db1
refused 2 "$o --from-ssh takes no verb on the command line (see barman_ha_orchestrator --help)" \
	"orchestrator: --from-ssh with a verb" "$ORCH" --from-ssh --node db1 status
refused 2 "$o SSH_ORIGINAL_COMMAND missing or too long (see barman_ha_orchestrator --help)" \
	"orchestrator: --from-ssh without SSH_ORIGINAL_COMMAND" "$ORCH" --from-ssh --node db1
refused_ssh "promote db1;id 2" "$o SSH_ORIGINAL_COMMAND refused (only names, numbers, spaces) (see barman_ha_orchestrator --help)" \
	"orchestrator: a shell metacharacter in SSH_ORIGINAL_COMMAND"
refused_ssh 'promote $(id) 2' "$o SSH_ORIGINAL_COMMAND refused (only names, numbers, spaces) (see barman_ha_orchestrator --help)" \
	"orchestrator: a command substitution in SSH_ORIGINAL_COMMAND"
refused 2 "$o argument 2 is too long (see barman_ha_orchestrator --help)" \
	"orchestrator: an argument of 65 bytes" "$ORCH" promote "$(printf '%065d' 0)" 2

# configurations: relative, in a world-writable folder, not a file, missing, a bad line
refused 2 "$o configuration o.conf: an absolute path is required" "orchestrator: a relative configuration path" \
	"$ORCH" -c o.conf status
printf 'barman_server = pg\n' >"$W/o.conf"
# the folders are checked from / down: /tmp (world-writable) before $W
err=$("${as[@]}" "$ORCH" -c "$W/o.conf" status 2>&1 >/dev/null)
like "$? $err" "^2 $o configuration: untrusted: ($W is not owned by root|/tmp is writable by group or others)\$" \
	"orchestrator: a configuration below /tmp is not trusted"
refused 2 "$o configuration: untrusted: /dev/null is not a regular file" \
	"orchestrator: a configuration that is not a file" "$ORCH" -c /dev/null status
refused 2 "$o configuration: cannot open /etc/bha-none.conf: No such file or directory" \
	"orchestrator: a missing configuration" "$ORCH" -c /etc/bha-none.conf status

# barman_ha_nat refuses to run unless installed setuid root (make install does that)
n=barman_ha_nat:
for args in "show" "help" "claim db1 2" "-c $W/n.conf show"; do
	# shellcheck disable=SC2086
	refused 2 "$n not installed setuid root" "nat $args: refused, not setuid root" "$NAT" $args
done

c=barman_ha_client:
"${as[@]}" "$CLIENT" --help >/dev/null 2>&1
ok $? "client --help exits 0"
refused 2 "$c expected promote NODE TIMELINE, status, connect or disconnect (see barman_ha_client --help)" \
	"client: no verb" "$CLIENT"
refused 2 "$c expected promote NODE TIMELINE, status, connect or disconnect (see barman_ha_client --help)" \
	"client: an unknown verb" "$CLIENT" frob
refused 2 "$c promote needs a node name and a timeline from 1 to 2147483647" "client: a node name starting with '-'" \
	"$CLIENT" promote -db1 2
refused 2 "$c promote needs a node name and a timeline from 1 to 2147483647" "client: a shell metacharacter" \
	"$CLIENT" promote 'db1;id' 2
done_testing
