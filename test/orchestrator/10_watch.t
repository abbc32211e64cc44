#!/bin/bash
# 10_watch.t: barman_ha_orchestrator watch against a real PostgreSQL on db1.
# It connects to the routed node; db1's link cut (its host silent) closes the
# app endpoint and records it, the level check leaves it closed and says why,
# status shows it (and its textfile, written without following a planted link);
# the link back reopens it.  A PostgreSQL that is down on a
# live host (a refusal) closes nothing.  A claim by db2 clears the record and
# the watch follows db2.  SIGHUP reads the configuration again, SIGTERM ends
# it (exit 0); over ssh the verb is refused (2).
. "$(dirname "$0")/lib.sh"
hosts 2
addconf "$B" orchestrator.conf "claim_conninfo = user=postgres dbname=postgres sslmode=disable"
pg_up 1 "$S1"
pg_up 2 "$S2"
natroot "$B" init >/dev/null && natroot "$B" claim db1 1 >/dev/null && natroot "$B" route db1 both >/dev/null ||
	bail "set-up"
LOG=$T/watch.log
said() { grep -q "watch: $1" "$LOG"; }
# said_n N REGEX: the watch said it at least N times
said_n() { [ "$(grep -c "watch: $2" "$LOG")" -ge "$1" ]; }
# wait_for SECONDS CMD...: CMD until it succeeds, every 0.1 s
wait_for() {
	local n=$(($1 * 10)); shift
	until "$@" >/dev/null 2>&1; do n=$((n - 1)); [ $n -gt 0 ] || return 1; sleep 0.1; done
}
app_is() { [ "$(endpoints "$B" | sed -n 's/^app //p')" = "$1" ]; }
status_key() { hh "$B" status | sed -n "s/^$1=//p"; }

out=$(ip netns exec "$B" runuser -u barman -- env SSH_ORIGINAL_COMMAND=watch "$ORCH" --from-ssh --node db1 2>&1)
is "$? $out" "2 barman_ha_orchestrator: watch is not served over ssh (see barman_ha_orchestrator --help)" \
	"over ssh: watch refused (2)"
like "$("$ORCH" help)" "  watch  " "usage names watch"

# started as root, as the unit's User=barman would: it becomes barman itself
ip netns exec "$B" "$ORCH" watch 2>"$LOG" &
WATCH=$!
PIDS+=($WATCH)
t_ok "the watch connects to db1" wait_for 5 said "connected to db1"
is "$(ps -o user= -p $WATCH)" barman "...as barman"

t0=$(date +%s%N)
ip -n "$S1" link set eth0 down
t_ok "db1's link cut: the app endpoint closes within 2 s" wait_for 2 app_is closed
diag "closed $((($(date +%s%N) - t0) / 1000000)) ms after the cut"
is "$(endpoints "$B" | sed -n 's/^barman //p')" db1 "the barman endpoint still leads to db1"
like "$(ostate "$B")" $'watch_closed=db1\nwatch_closed_at=[0-9]+' "the record: closed for db1, since when"
is "$(status_key app_closed_by_watch)" db1 "status: app_closed_by_watch=db1"
like "$(hh "$B" status --textfile "$T/ostate-$B/m.prom" && cat "$T/ostate-$B/m.prom")" \
	'barman_ha_backup_app_endpoint_closed_by_watch\{server="none"\} 1' "textfile: closed_by_watch 1"
# the textfile's temporary name is made anew, never followed; a folder anybody may write is refused
install -d -o barman -g barman -m 0755 "$T/tf"
echo keep >"$T/tf-victim" && chown barman: "$T/tf-victim"
ln -s "$T/tf-victim" "$T/tf/m.prom.tmp" && chown -h barman: "$T/tf/m.prom.tmp"
hh "$B" status --textfile "$T/tf/m.prom" >/dev/null 2>"$T/err"; ok $? "textfile: a link planted as its temporary file is not followed ($(cat "$T/err"))"
is "$(cat "$T/tf-victim")" keep "...the link's target is untouched"
ok "$(grep -q '^barman_ha_backup_app_endpoint_closed_by_watch' "$T/tf/m.prom" && [ ! -L "$T/tf/m.prom" ]; echo $?)" "...and the textfile is written"
chmod 0777 "$T/tf"
hh "$B" status --textfile "$T/tf/m.prom" >/dev/null 2>"$T/err"; is $? 1 "textfile: a folder anybody may write is refused (1)"
like "$(cat "$T/err")" "writable by everybody" "...saying why"
out=$(hh "$B" promote db1 1)
like "$out" "^step check ok [0-9.]+ routed; app endpoint closed by watch: db1 silent since [0-9]{2}:[0-9]{2}:[0-9]{2}$" \
	"the level check of db1 leaves it closed and says why"
t_ok "...still closed" app_is closed
sleep 1
t_ok "...and one close, not one per interval" test "$(grep -c 'app endpoint closed' "$LOG")" = 1

t0=$(date +%s%N)
sessions=$(grep -c "watch: connected to db1" "$LOG")
ip -n "$S1" link set eth0 up
t_ok "db1's link back: the app endpoint reopens on db1 within 2 s" wait_for 2 app_is db1
diag "reopened $((($(date +%s%N) - t0) / 1000000)) ms after the link came back"
is "$(status_key app_closed_by_watch)" "" "the record is cleared"
t_ok "...once a bare handshake got an answer (no session with a node that may be fenced)" said "db1 answers again: app endpoint open"
t_ok "...and then the watch's session comes back" wait_for 5 said_n $((sessions + 1)) "connected to db1"

# a live host whose PostgreSQL is down refuses: nothing is closed
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg1" -s -m fast stop
t_ok "db1's PostgreSQL stopped: the watch sees a refusal" wait_for 3 said "db1 answers but no session"
sleep 1
t_ok "...and leaves the app endpoint open" app_is db1
ip netns exec "$S1" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg1" -l "$T/pg1/log" -w -s \
	-o "-c listen_addresses=10.213.0.1 -c unix_socket_directories=$T/pg1 -c port=5432 -c fsync=off" start
t_ok "db1 back: connected again" wait_for 5 said_n 2 "connected to db1$"

# closed again, then db2 claims (promote records in the orchestrator's state)
ip -n "$S1" link set eth0 down
t_ok "db1 cut again: closed" wait_for 2 app_is closed
hh "$B" promote db2 2 >/dev/null; ok $? "db2 claims (promote db2 2)"
t_ok "the watch follows the claim: watching db2" wait_for 3 said "watching db2"
t_ok "...the record of db1 cleared" wait_for 3 bash -c "! grep -q '^watch_closed=db1' '$T/ostate-$B/orchestrator.state'"
t_ok "...connected to db2" wait_for 3 said "connected to db2"
is "$(endpoints "$B" | tr '\n' ' ')" "barman db2 app db2 " "both endpoints on db2"
ip -n "$S1" link set eth0 up

kill -HUP $WATCH
t_ok "SIGHUP: the configuration read again" wait_for 2 said "configuration read again"
t_ok "...still running" kill -0 $WATCH
kill -TERM $WATCH
wait $WATCH; is $? 0 "SIGTERM: exit 0"
t_ok "...says it stopped" said "stopped"
sed 's/^/# watch: /' "$LOG" >&2
done_testing
