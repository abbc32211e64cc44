#!/bin/bash
# 22_partition.t: a partition between the DB nodes only (db1 and db2 still reach
# the backup and app hosts), under a writer through BACKUP:54322.  db1's
# wal_sender_timeout (3 s) is shorter than the promotion, so db1 drops db2 as
# synchronous standby and goes on committing with Barman as its synchronous
# receiver; then db2 is promoted (pg_promote by hand: the extension does not
# care who promotes).  The backup host still reaches db1 as a primary, so it
# refuses db2's claim: the endpoints stay on db1 and no commit the writer saw
# acknowledged is lost.  Without that rule the endpoints would move to db2,
# which never received db1's commits after the cut.  Status on both nodes says
# why.
set -u
BHA_PREFIX=${BHA_PREFIX:-bhp}p1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"
cut_nodes() {			# cut_nodes add|delete: drop frames between db1 and db2 on the bridge
	if [ "$1" = add ]; then
		bha_in br nft -f - <<EOF
table bridge bha_partition {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ip saddr ${BHA_ADDR[db1]} ip daddr ${BHA_ADDR[db2]} drop
		ip saddr ${BHA_ADDR[db2]} ip daddr ${BHA_ADDR[db1]} drop
		arp saddr ip ${BHA_ADDR[db1]} arp daddr ip ${BHA_ADDR[db2]} drop
		arp saddr ip ${BHA_ADDR[db2]} arp daddr ip ${BHA_ADDR[db1]} drop
	}
}
EOF
	else
		bha_in br nft delete table bridge bha_partition 2>/dev/null
	fi
}
bha_test_setup

t_ok "both endpoints on db1 after the bring-up" bha_endpoints_on db1
t_ok "route ok on db1" bha_wait 20 "route ok on db1" bha_route_ok db1
t_ok "repmgrd paused: the promotion below is ours" bhf_repmgrd_pause
bha_sql db1 "ALTER SYSTEM SET wal_sender_timeout = '3s'" >/dev/null
bha_sql db1 "SELECT pg_reload_conf()" >/dev/null
bha_writer_start w 0
t_ok "writer commits through $BHA_APP_PORT" bha_wait 30 "10 commits" bha_writer_has w 10

t_cut=$(bha_now_ms)
t_ok "db1 and db2 cut from each other (both still reach backup and app)" cut_nodes add
t_ok "db1 drops db2 and commits again, Barman its synchronous standby" \
	bha_wait 30 "commits on db1 after its walsender to db2 timed out" bha_writer_has w 5 $((t_cut + 4000))
is "$(bha_sql db1 "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'barman_receive_wal'")" sync \
	"Barman is db1's synchronous standby now"
t_prom=$(bha_now_ms)
t_ok "db2 promoted by hand (pg_ctl promote) while db1 lives" \
	bha_as db2 postgres "$BHA_PGBIN/pg_ctl" -D "$BHA_DATA/db2/pgdata" -w -t 30 promote
t_ok "db2's claim is refused: route state fenced" bha_wait 30 "db2 fenced" bha_route_state_is db2 fenced
why=$(bhf_last_error db2)
diag "db2: $why"
t_ok "db2's status says why: db1 still answers as primary" test -n "$(grep -o 'db1 still answers as primary' <<<"$why")"
t_ok "db1's status: route ok" bha_route_ok db1
t_ok "both endpoints stay on db1" bha_endpoints_on db1
t_ok "the writer goes on committing (on db1)" bha_wait 20 "5 commits after db2's promotion" bha_writer_has w 5 "$t_prom"
n_after=$(bha_writer_after w "$t_prom")
t_ok "Barman still streams from db1" bha_barman_streams_from db1
bha_writer_stop w
lost=$(bha_writer_lost w db1)
is "$lost" "" "every commit the writer saw acknowledged ($(bha_writer_count w)) is on db1, which kept the endpoints"
missing_db2=$(bha_writer_lost w db2 | wc -l)
diag "commits after the cut: $(bha_writer_after w "$t_cut"), after db2's promotion: $n_after; of them missing on db2 (lost, had the endpoints moved): $missing_db2"
t_ok "db2 lacks commits acknowledged after the cut: routing to it would have lost them ($missing_db2)" test "$missing_db2" -gt 0
cut_nodes delete
bhf_fig partition "commits_after_cut=$(bha_writer_after w "$t_cut") missing_on_db2=$missing_db2 lost=$(grep -c . <<<"$lost")"
done_testing
