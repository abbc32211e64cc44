#!/bin/bash
# 03_claim.t: the claim check (claim.c), with real servers and with a fake
# one standing for a compromised node (fake_pg.py on the node's address).
#   - a true claim routes; a timeline the node does not report, or a node in
#     recovery, is fenced (3); nothing changes;
#   - a forged timeline (2^31-1) is refused while the real
#     primary lives and also when it is down (at most routed + node count);
#     a plausible forged timeline is refused because the routed primary still
#     answers as primary to the backup host; a history that does not descend
#     from the routed timeline is refused;
#   - the partition rule with real servers: db2 promoted from db1 is refused
#     while the backup host still reaches db1 as primary, accepted once db1
#     is gone (a refused connection answers at once); a routed primary whose
#     host answers no TCP handshake is judged gone after probe_connect_ms
#     (100 ms), not probe_timeout_ms;
#   - the check fails closed: a routed primary that answers the handshake
#     but gives no verdict (its postmaster stopped, its walsender slots
#     full, an error reply, a stall, a reply of no columns) keeps the
#     endpoints, and the claim is not confirmed (1, retried);
#   - no node blocks another: a claimant whose port accepts and never
#     answers holds only its own lock; a node's requests over ssh are
#     bounded in rate, another node's are served;
#   - a fake server that asks for a cleartext password gets
#     barman's password with a conninfo without TLS, and nothing with the
#     keywords sslmode=require channel_binding=require (the defaults use a client
#     certificate and no password at all: 11_no_credential.t).
. "$(dirname "$0")/lib.sh"
plan 55
hosts 2
addconf "$B" orchestrator.conf "claim_check = on" "probe_timeout_ms = 300" \
	"claim_conninfo = user=postgres dbname=postgres sslmode=disable connect_timeout=3"
STATE=$T/state-$B/state
snap() { echo "$(endpoints "$B")|$(cat "$STATE" 2>/dev/null)"; }
fromssh() {			# fromssh NODE COMMAND: the forced command of NODE's key
	ip netns exec "$B" runuser -u barman -- env "SSH_ORIGINAL_COMMAND=$2" "$ORCH" --from-ssh --node "$1"
}
fake() {			# fake NS ADDR ARGS...: fake_pg.py on ADDR:5432 in NS, until stop_fake
	ip netns exec "$1" python3 "$TOP/test/orchestrator/fake_pg.py" "$2" 5432 "${@:3}" &
	FAKE=$!; PIDS+=("$FAKE")
	for _ in $(seq 50); do ip netns exec "$1" ss -ltn | grep -q "$2:5432 " && return 0; sleep 0.1; done
	bail "fake server did not start"
}
stop_fake() { kill "$FAKE"; wait "$FAKE" 2>/dev/null; }

# ---- real servers
pg_up 1 "$S1"
pg_up 2 "$S2" standby
out=$(hh "$B" promote db1 1 2>"$T/err"); ok $? "a true claim routes ($(tail -n 1 "$T/err"))"
like "$out" "step claim_check ok [0-9.]+ db1 is primary on timeline 1" "claim_check confirms it"
s0=$(snap)
out=$(hh "$B" promote db1 5 2>"$T/err"); is $? 3 "a timeline the node does not report: fenced (3)"
like "$out" "step claim_check failed [0-9.]+ db1 is on timeline 1, not 5" "...the node said so"
like "$(tail -n 1 "$T/err")" "^barman_ha_orchestrator: fenced: claim of db1 on timeline 5 not confirmed" "one clear stderr line"
out=$(hh "$B" promote db2 2 2>"$T/err"); is $? 3 "a node in recovery: fenced (3)"
like "$out" "in recovery" "...because it is in recovery"
is "$(snap)" "$s0" "refused claims changed no rule and no state"

# ---- a compromised db2 answers what it likes
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg2" -s -m immediate stop
fake "$S2" 10.213.0.2 --timeline 2147483647 --history '1\t0/3000000\tforged\n'
out=$(fromssh db2 "promote db2 2147483647" 2>"$T/err"); is $? 3 "forged timeline 2147483647 over ssh: fenced (3)"
like "$out" "too far beyond the routed timeline 1" "...too far beyond the routed timeline"
stop_fake
fake "$S2" 10.213.0.2 --timeline 2 --history '1\t0/3000000\tforged\n'
out=$(fromssh db2 "promote db2 2" 2>"$T/err"); is $? 3 "plausible forged timeline 2 while db1 lives: fenced (3)"
like "$out" "db1 still answers as primary on timeline 1 and the backup host reaches it" "...db1 answers as primary"
stop_fake
fake "$S2" 10.213.0.2 --timeline 2 --history ''
out=$(fromssh db2 "promote db2 2" 2>"$T/err"); is $? 3 "a history without the routed timeline: fenced (3)"
like "$out" "does not descend from the routed timeline 1" "...not descended from timeline 1"
stop_fake
is "$(snap)" "$s0" "no forged claim changed a rule or the state"
out=$(hh "$B" promote db1 1); like "$out" '^step check ok [0-9.]+ routed$' "the real primary's level check: routed"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg1" -s -m immediate stop
fake "$S2" 10.213.0.2 --timeline 2147483647 --history '1\t0/3000000\tforged\n'
out=$(fromssh db2 "promote db2 2147483647" 2>"$T/err"); is $? 3 "forged timeline with db1 down: still fenced (3)"
stop_fake
is "$(snap)" "$s0" "...and nothing changed"

# ---- the partition rule, real servers: db2 forks from db1 while db1 lives
ip netns exec "$S1" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg1" -l "$T/pg1/log" -w -s start -o \
	"-c listen_addresses=10.213.0.1 -c unix_socket_directories=$T/pg1 -c port=5432 -c fsync=off -c max_wal_senders=3" ||
	bail "db1 again"
rm -rf "$T/pg2" && install -d -o postgres -g postgres -m 0700 "$T/pg2"
ip netns exec "$S2" runuser -u postgres -- "$PGBIN/pg_basebackup" -h 10.213.0.1 -U postgres -D "$T/pg2" -R -X stream -c fast 2>/dev/null ||
	bail "pg_basebackup"
rm -f "$T/pg2/.s.PGSQL.5432.lock"	# db1's socket lock (its socket folder is its data folder)
ip netns exec "$S2" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg2" -l "$T/pg2/log" -w -s start -o \
	"-c listen_addresses=10.213.0.2 -c unix_socket_directories=$T/pg2 -c port=5432 -c fsync=off" || bail "db2 standby"
ip netns exec "$S2" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg2" -w -s promote || bail "promote db2"
is "$(ip netns exec "$S2" runuser -u postgres -- "$PGBIN/psql" -X -At -h "$T/pg2" -d postgres -c "SELECT timeline_id FROM pg_control_checkpoint()")" 2 \
	"db2 promoted on timeline 2 (db1 still primary: a split brain)"
out=$(hh "$B" promote db2 2 2>"$T/err"); is $? 3 "db2's claim while the backup host reaches db1 as primary: fenced (3)"
like "$out" "db1 still answers as primary" "...the backup host is the tie-breaker"
is "$(endpoints "$B")" $'barman db1\napp db1' "the endpoints stay on db1"

# ---- fail closed: db1 answers the handshake but gives no verdict
pm1=$(head -n 1 "$T/pg1/postmaster.pid")
kill -STOP "$pm1"
out=$(hh "$B" promote db2 2 2>"$T/err"); rc=$?
kill -CONT "$pm1"
is $rc 1 "db1's postmaster stopped: db2's claim is not confirmed (1, retried)"
like "$out" "db1 may still be primary \(no answer within 300 ms after the TCP handshake\)" "...saying why"
is "$(endpoints "$B")" $'barman db1\napp db1' "...the endpoints stay on db1"
held=()
for i in 1 2 3; do	# every walsender slot of db1 (max_wal_senders = 3), held by sessions that sleep
	ip netns exec "$B" "$PGBIN/psql" -X -q "host=10.213.0.1 user=postgres dbname=postgres replication=database" \
		-c "SELECT pg_sleep(30)" >/dev/null 2>&1 &
	held+=($!); PIDS+=($!)
done
for _ in $(seq 50); do
	[ "$(runuser -u postgres -- "$PGBIN/psql" -X -At -h "$T/pg1" -d postgres \
		-c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'")" = 3 ] && break
	sleep 0.1
done
out=$(hh "$B" promote db2 2 2>"$T/err"); is $? 1 "db1's walsender slots full: not confirmed (1)"
like "$out" "db1 may still be primary \(.*max_wal_senders" "...db1's refusal is no evidence that it stopped"
is "$(endpoints "$B")" $'barman db1\napp db1' "...the endpoints stay on db1"
kill "${held[@]}"; wait "${held[@]}" 2>/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg1" -s -m immediate stop
for how in "--fatal 53300:sorry, too many clients already" --stall --no-columns; do
	read -ra opts <<<"$how"
	[ "${opts[0]}" = --fatal ] && opts=(--fatal "${how#--fatal }")
	fake "$S1" 10.213.0.1 --timeline 1 "${opts[@]}"
	out=$(hh "$B" promote db2 2 2>"$T/err"); is $? 1 "db1's address answers ${how%% *}: not confirmed (1)"
	like "$(tail -n 1 "$T/err")" "db1 may still be primary \\((cannot connect: .*too many clients|no answer within 300 ms after the TCP handshake|no valid answer to pg_is_in_recovery)" "...saying why"
	is "$(endpoints "$B")" $'barman db1\napp db1' "...the endpoints stay on db1"
	stop_fake
done
t0=${EPOCHREALTIME/./}
out=$(hh "$B" promote db2 2 2>"$T/err"); ok $? "db1 gone (connection refused): db2's claim routes ($(tail -n 1 "$T/err"))"
ms=$(sed -n 's/^step claim_check ok \([0-9.]*\) .*/\1/p' <<<"$out")
like "$out" "step claim_check ok [0-9.]+ db2 is primary on timeline 2, forked from timeline 1; db1: refused: nothing listens" "...the probe saw db1 refuse at once"
diag "claim check with the routed primary refusing connections: $ms ms"
is "$(endpoints "$B")" $'barman db2\napp db2' "both endpoints on db2"

# ---- db2 routed and alive, but silent to the backup host: the TCP handshake's bound decides
fake "$S1" 10.213.0.1 --timeline 3 --history '1\t0/3000000\tx\n2\t0/4000000\ty\n'
out=$(hh "$B" promote db1 3 2>"$T/err"); is $? 3 "db1 on timeline 3 while db2 answers as primary: fenced (3)"
ip netns exec "$S2" nft -f - <<'EOF' || bail "nft"
table ip silent {
	chain input { type filter hook input priority 0; tcp dport 5432 drop; }
}
EOF
out=$(hh "$B" promote db1 3 2>"$T/err"); ok $? "db2 silent (its packets dropped): db1's claim routes ($(tail -n 1 "$T/err"))"
like "$out" "step claim_check ok [0-9.]+ .*; db2: gone: no TCP answer within 100 ms" \
	"...silent, judged by the TCP handshake's bound (probe_connect_ms 100), not probe_timeout_ms (300)"
diag "claim check with the routed primary's host silent: $(sed -n 's/^step claim_check ok \([0-9.]*\) .*/\1/p' <<<"$out") ms"
is "$(endpoints "$B")" $'barman db1\napp db1' "both endpoints on db1"
ip netns exec "$S2" nft delete table ip silent
stop_fake

# ---- the password goes only to a server that binds the TLS channel
install -o barman -g barman -m 0600 /dev/null "$T/pgpass"
echo "*:*:*:barman:s3cret-claim" >"$T/pgpass"
hh "$B" promote db1 3 >/dev/null 2>&1	# db1 is down: nothing to steal the endpoints with
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg2" -s -m immediate stop
install -m 0666 /dev/null "$T/passwords"
fake "$S2" 10.213.0.2 --timeline 4 --history '3\t0/3000000\tx\n' --cleartext --password-log "$T/passwords"
conf_claim() { sed -i '/^claim_conninfo/d' "/etc/netns/$B/repmgr_barman_ha/orchestrator.conf"; addconf "$B" orchestrator.conf "claim_conninfo = $1"; }
conf_claim "user=barman dbname=postgres passfile=$T/pgpass connect_timeout=3"
hh "$B" promote db2 4 >/dev/null 2>&1
is "$(cat "$T/passwords")" "s3cret-claim" "without TLS, the fake server gets barman's password (the attack is real)"
: >"$T/passwords"
conf_claim "user=barman dbname=postgres sslmode=require channel_binding=require passfile=$T/pgpass connect_timeout=3"
out=$(hh "$B" promote db2 5 2>"$T/err"); is $? 1 "with sslmode=require channel_binding=require the claim fails (1)"
like "$(tail -n 1 "$T/err")" "SSL|channel binding" "...saying why"
is "$(cat "$T/passwords")" "" "...and the fake server got no password"
stop_fake

# ---- no node blocks another: a claimant that accepts and never answers holds only its own lock
conf_claim "user=postgres dbname=postgres sslmode=disable connect_timeout=3"
fake "$S1" 10.213.0.1 --timeline 5 --stall
fromssh db1 "promote db1 5" >"$T/slow.out" 2>&1 &
slow=$!; PIDS+=("$slow")
for _ in $(seq 50); do ip netns exec "$S1" ss -tn state established | grep -q "10.213.0.1:5432 " && break; sleep 0.1; done
out=$(fromssh db2 "promote db2 4" 2>"$T/err"); is $? 0 "db2's level check while db1's claim check waits on a stalled port: done"
like "$out" '^step check ok [0-9.]+ routed' "...routed"
ok "$(kill -0 "$slow" 2>/dev/null; echo $?)" "...while db1's request still runs: db2 did not wait for it"
wait "$slow"; is $? 1 "db1's stalled claim ends not confirmed (1)"
stop_fake

# ---- a node's requests are bounded in rate; another node's are not touched
# 120 requests, ten at a time: more than the burst and 5 a second can serve
# unless they took over 18 s, however slow one request is on a loaded machine
refused=0
for b in $(seq 12); do
	batch=()
	for i in $(seq 10); do
		fromssh db1 "promote db1 x" 2>"$T/err.$b.$i" >/dev/null &
		batch+=($!)
	done
	wait "${batch[@]}"
done
for f in "$T"/err.*; do
	grep -q "too many requests" "$f" && refused=$((refused + 1)) && said=$(cat "$f")
done
ok $((refused > 0 ? 0 : 1)) "120 requests of db1, ten at a time: $refused refused for rate"
like "${said:-}" "^barman_ha_orchestrator: too many requests from db1 \\(at most 30 at once, 5 a second\\)$" "...with one line on stderr"
out=$(fromssh db2 "promote db2 4" 2>"$T/err"); is $? 0 "db2's request meanwhile: served"
exit $((TAP_FAIL > 0))
