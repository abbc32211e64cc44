#!/bin/bash
# 06_conntrack.t: established sessions do not follow a NAT change by
# themselves (conntrack keeps their mapping).  A psql session open through
# the app endpoint before a switch must get an error right after it, not a
# hang and not a session still on the old server; new sessions reach the
# new primary.  Two real PostgreSQL servers, each in its own namespace.
. "$(dirname "$0")/lib.sh"
plan 9
hosts 2
mkns C client
join "$C" 10.213.0.20

pg_up 1 "$S1"
pg_up 2 "$S2"

hh "$B" nat init >/dev/null && hh "$B" nat route db1 >/dev/null; ok $? "endpoints on db1"

# A session through the app endpoint, kept open.
coproc PSQL { ip netns exec "$C" runuser -u postgres -- "$PGBIN/psql" -X -At -h $BACKUP_ADDR -p 54322 \
	-U postgres -d postgres 2>"$T/psql.err"; }
PIDS+=($PSQL_PID)
psql_pid=$PSQL_PID
ask() { echo "select inet_server_addr();" >&"${PSQL[1]}" && read -r -t 5 -u "${PSQL[0]}" line && echo "$line"; }
is "$(ask)" 10.213.0.1 "the open session is on db1"

out=$(hh "$B" nat route db2); ok $? "switch to db2"
is "$out" "route db2 changed, 1 flow removed" "the session's flow was removed"

# The next query on the old session: an error within 3 s, not a hang.
t0=$(date +%s%N)
echo "select inet_server_addr();" >&"${PSQL[1]}"
read -r -t 3 -u "${PSQL[0]}" line; got=$?
for _ in $(seq 30); do kill -0 "$psql_pid" 2>/dev/null || break; sleep 0.1; done
ms=$((($(date +%s%N) - t0) / 1000000))
kill -0 "$psql_pid" 2>/dev/null; ok $((! $?)) "psql ended after ${ms} ms instead of hanging"
ok $((got == 0)) "no answer came from any server on the old session"
like "$(cat "$T/psql.err")" "connection|closed|reset" "psql reports the lost connection"

new=$(ip netns exec "$C" runuser -u postgres -- "$PGBIN/psql" -X -At -h $BACKUP_ADDR -p 54322 \
	-U postgres -d postgres -c "select inet_server_addr()")
is "$new" 10.213.0.2 "a new session reaches db2"
# The backup host's own clients (Barman) go through OUTPUT: same rule.
own=$(ip netns exec "$B" runuser -u postgres -- "$PGBIN/psql" -X -At -h $BACKUP_ADDR -p 54321 \
	-U postgres -d postgres -c "select inet_server_addr()")
is "$own" 10.213.0.2 "the backup host's own connection to 54321 reaches db2"
exit $((TAP_FAIL > 0))
