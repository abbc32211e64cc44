#!/bin/bash
# 12_takeover.t: `takeover` (takeover.c) asks every node itself (node_ask.c)
# and routes to the one primary on the highest timeline, with real servers
# (db1 primary, db2 standby) and db3's address standing for whatever a node
# can be: nothing listening, a host that answers no packet, a fake server
# that lets the client in and answers no query, one whose
# pg_is_in_recovery() says neither t nor f, a standby above db1's timeline.
#   - a node without a whole answer counts for nothing, and the step line
#     says which kind and why: refused, silent after probe_connect_ms,
#     unclear after claim_timeout_ms (each node bounded by itself: a node
#     that stalls does not fail the takeover);
#   - a node that answers on a higher timeline than every primary refuses
#     the takeover (3): that timeline's primary does not answer.
. "$(dirname "$0")/lib.sh"
plan 15
hosts 3
addconf "$B" nat.conf "node.db3 = 10.213.0.3:5432"
addconf "$B" orchestrator.conf "claim_timeout_ms = 1000" \
	"claim_conninfo = user=postgres dbname=postgres sslmode=disable connect_timeout=3"
fake() {			# fake ARGS...: fake_pg.py on db3's address, until stop_fake
	ip netns exec "$S3" python3 "$TOP/test/orchestrator/fake_pg.py" 10.213.0.3 5432 "$@" &
	FAKE=$!; PIDS+=("$FAKE")
	for _ in $(seq 50); do ip netns exec "$S3" ss -ltn | grep -q "10.213.0.3:5432 " && return 0; sleep 0.1; done
	bail "fake server did not start"
}
stop_fake() { kill "$FAKE"; wait "$FAKE" 2>/dev/null; }
# asked: the takeover_ask step's line without its time
asked() { sed -n 's/^step takeover_ask \([a-z]*\) [0-9.]* /\1 /p' <<<"$1"; }
ASKED="db1 primary timeline 1; db2 standby timeline 1"

pg_up 1 "$S1"
pg_up 2 "$S2" standby

out=$(hh "$B" takeover 2>"$T/err"); ok $? "db3 refuses: the takeover routes ($(tail -n 1 "$T/err"))"
is "$(asked "$out")" "ok $ASKED; db3 refused (nothing listens)" "...db3 refused, nothing listens"
is "$(endpoints "$B")" $'barman db1\napp db1' "both endpoints on db1"

ip netns exec "$S3" nft -f - <<'EOF' || bail "nft"
table ip silent {
	chain input { type filter hook input priority 0; tcp dport 5432 drop; }
}
EOF
out=$(hh "$B" takeover 2>"$T/err"); ok $? "db3 silent: the takeover routes ($(tail -n 1 "$T/err"))"
is "$(asked "$out")" "ok $ASKED; db3 silent (no TCP answer within 100 ms)" \
	"...db3 silent after probe_connect_ms"
ip netns exec "$S3" nft delete table ip silent

fake --timeline 2 --stall-queries
t0=${EPOCHREALTIME/./}
out=$(hh "$B" takeover 2>"$T/err"); ok $? "db3 lets the client in and answers no query: the takeover routes ($(tail -n 1 "$T/err"))"
ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
is "$(asked "$out")" "ok $ASKED; db3 unclear (no answer within 1000 ms after the TCP handshake)" \
	"...db3 unclear after claim_timeout_ms"
diag "takeover with db3 answering no query: $ms ms"
stop_fake

fake --timeline 2 --recovery true
out=$(hh "$B" takeover 2>"$T/err"); ok $? "db3's pg_is_in_recovery() says true: the takeover routes ($(tail -n 1 "$T/err"))"
is "$(asked "$out")" "ok $ASKED; db3 unclear (pg_is_in_recovery() answered neither t nor f)" \
	"...db3 unclear, its timeline 2 counts for nothing"
stop_fake

fake --timeline 0 --in-recovery
out=$(hh "$B" takeover 2>"$T/err"); ok $? "db3 a standby on timeline 0: the takeover routes ($(tail -n 1 "$T/err"))"
is "$(asked "$out")" "ok $ASKED; db3 unclear (no valid timeline from IDENTIFY_SYSTEM)" \
	"...db3 unclear"
stop_fake

fake --timeline 2 --in-recovery
out=$(hh "$B" takeover 2>"$T/err"); is $? 3 "db3 a standby on timeline 2: refused (3)"
is "$(asked "$out")" "failed $ASKED; db3 standby timeline 2" "...db3 answers on timeline 2"
like "$(tail -n 1 "$T/err")" "^barman_ha_orchestrator: fenced: takeover refused: a node is on timeline 2, above primary db1's 1" \
	"...that timeline's primary does not answer"
is "$(endpoints "$B")" $'barman db1\napp db1' "the endpoints stay on db1"
stop_fake
exit $((TAP_FAIL > 0))
