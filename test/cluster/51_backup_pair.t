#!/bin/bash
# 51_backup_pair.t: the backup host pair (issue 26, item 2; pair.sh): keepalived moves the
# virtual address between backup (Barman, priority 150) and backup2 (100); the writer
# commits through VIRTUAL:54322, one connection a row.
#   1. backup's cable cut for 30 s, then back: backup2 takes the address and routes (its
#      takeover asks the nodes); backup takes it back on its return;
#   2. backup's cable cut, then db1's: db2 promoted, its claim reaches backup2 through the
#      address; backup back (its takeover learns db2 from the nodes), then db1: fenced;
#   3. the two backup hosts cut from each other (VRRP dropped both ways): both hold the
#      address, both route to the same primary, db1 (an old primary on a lower timeline)
#      answering to both.
# Each case prints "# FIGURE ..." lines (docs/benchmark.md).  Takes 3-4.5 minutes after a 4-5 minute
# bring-up on a loaded 2-core machine: in the long tier.
set -u
BHA_PREFIX=${BHA_PREFIX:-bhp}
BHA_PAIR=1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/faults_lib.sh"
bha_test_setup
t_start=$(bha_now_ms)

# nat_of HOST: "STATE_NODE STATE_TIMELINE APP_TARGET" as HOST's barman_ha_nat shows them
nat_of() {
	bha_in "$1" "$BHA_BACKUP_BIN/barman_ha_nat" show 2>/dev/null |
		awk '$1 == "state" {s = $2 " " $3} $1 == "endpoint" && $2 == "app" {a = $5} END {print s, a}'
}
nat_is() { [ "$(nat_of "$1")" = "$2" ]; }
lost_rows() {
	local lost
	bha_writer_stop "$1"
	lost=$(bha_writer_lost "$1" "$2")
	is "$lost" "" "$3: every row $1 saw acknowledged ($(bha_writer_count "$1")) is on $2"
	lost_n=$(grep -c . <<<"$lost")
}
vrrp_drop() {			# vrrp_drop -A|-D: VRRP between the two backup hosts dropped, or no longer
	bha_in backup iptables-legacy -w "$1" INPUT -p vrrp -s "${BHA_ADDR[backup2]}" -j DROP &&
		bha_in backup2 iptables-legacy -w "$1" INPUT -p vrrp -s "${BHA_ADDR[backup]}" -j DROP
}

t_ok "backup holds $BHA_BACKUP_ADDR" bha_vip_on backup
t_ok "backup2 does not" eval '! bha_vip_on backup2'
t_ok "both endpoints on db1 through $BHA_BACKUP_ADDR" bha_endpoints_on db1
t_ok "route ok on db1" bha_wait 30 "route ok on db1" bha_route_ok db1
t_ok "barman check OK" bha_wait 120 "barman check OK" bha_barman_check_ok

# ------------------------------------------------------------ 1. backup's cable cut for 30 s
bha_writer_start w1 1000000
t_ok "case 1: the writer commits through $BHA_BACKUP_ADDR:$BHA_APP_PORT" bha_wait 30 "10 commits" bha_writer_has w1 10
t0=$(bha_now_ms)
bha_link backup down
t_ok "case 1: backup2 takes $BHA_BACKUP_ADDR" bha_wait 10 "backup2 holding the address" bha_vip_on backup2
vip_ms=$(bhf_since "$t0")
t_ok "case 1: backup2's takeover ran" bha_wait 15 "backup2's takeover" bha_took_over backup2 "$t0"
tk=$(bha_takeover_ms backup2 "$t0")
like "$tk" ' ask ok exit 0$' "case 1: backup2's takeover routed ($tk)"
is "$(nat_of backup2)" "db1 1 db1" "case 1: backup2 routes to db1 on timeline 1"
t_ok "case 1: the writer commits through backup2" bha_wait 15 "commits after the cut" bha_writer_has w1 5 "$((t0 + vip_ms))"
first_ms=$(( $(bha_writer_first_after w1 "$t0") - t0 ))
bha_sleep_until $((t0 + 30000))
out_cut=$(bha_writer_gap w1 "$t0" "$(bha_now_ms)")
ok "$(( out_cut < 5000 ? 0 : 1 ))" "case 1: the applications' outage under 5 s ($out_cut ms)"
t_up=$(bha_now_ms)
bha_link backup up
t_ok "case 1: backup takes $BHA_BACKUP_ADDR back" bha_wait 20 "backup holding the address" bha_vip_on backup
back_ms=$(bhf_since "$t_up")
t_ok "case 1: backup2 lets it go" bha_wait 10 "backup2 without the address" eval '! bha_vip_on backup2'
t_ok "case 1: backup's takeover ran" bha_wait 45 "backup's takeover" bha_took_over backup "$t_up"
tk_back=$(bha_takeover_ms backup "$t_up")
t_ok "case 1: backup's takeover routed ($tk_back)" bha_routed_by "$tk_back"
t_ok "case 1: the writer commits through backup again" bha_wait 30 "commits after the return" bha_writer_has w1 5 "$((t_up + back_ms))"
t_ok "case 1: Barman streams from db1" bha_wait 120 "Barman streaming" bha_barman_streams_from db1
stream_ms=$(bhf_since "$t_up")
t_ok "case 1: barman check OK" bha_wait 120 "barman check OK" bha_barman_check_ok
check_ms=$(bhf_since "$t_up")
t_ok "case 1: Barman needed no receive-wal --reset" bha_barman_no_reset
out_back=$(bha_writer_gap w1 "$t_up" "$(bha_now_ms)")
ok "$(( out_back < 5000 ? 0 : 1 ))" "case 1: the outage at backup's return under 5 s ($out_back ms)"
lost_rows w1 db1 "case 1"
bhf_fig pair-1-cable-cut "loss_ms=$((t_up - t0)) vip_on_backup2_ms=$vip_ms takeover_backup2=\"$tk\" first_commit_after_cut_ms=$first_ms app_outage_ms=$out_cut vip_back_ms=$back_ms takeover_backup=\"$tk_back\" app_outage_at_return_ms=$out_back barman_streaming_after_return_ms=$stream_ms barman_check_ok_after_return_ms=$check_ms rows_lost=$lost_n"

# ------------------------------------------------------------ 2. a DB failover while backup is gone
t_ok "db2 streams from db1" bha_wait 30 "db2 streaming" bha_streams_from db1 db2
t_ok "db2's repmgrd follows db1" bha_wait 30 "repmgrd on db2 following" bha_repmgrd_follows db2
bha_writer_start w2 2000000
t_ok "case 2: the writer commits" bha_wait 30 "10 commits" bha_writer_has w2 10
t0=$(bha_now_ms)
bha_link backup down
t_ok "case 2: backup2's takeover ran" bha_wait 15 "backup2's takeover" bha_took_over backup2 "$t0"
is "$(nat_of backup2)" "db1 1 db1" "case 2: backup2 routes to db1"
t_cut=$(bha_now_ms)
bha_link db1 down
t_ok "case 2: db2 promoted" bha_wait 60 "db2 promoted" bha_is_primary db2
prom_ms=$(bhf_since "$t_cut")
t_ok "case 2: backup2 routes to db2 on timeline 2 (db2's claim through $BHA_BACKUP_ADDR)" \
	bha_wait 60 "backup2 routing db2" nat_is backup2 "db2 2 db2"
claim_ms=$(bhf_since "$t_cut")
bha_sleep_until $((t0 + 30000))
t_up=$(bha_now_ms)
bha_link backup up
t_ok "case 2: backup takes $BHA_BACKUP_ADDR back" bha_wait 20 "backup holding the address" bha_vip_on backup
t_ok "case 2: backup's takeover ran" bha_wait 45 "backup's takeover" bha_took_over backup "$t_up"
tk_back=$(bha_takeover_ms backup "$t_up")
t_ok "case 2: backup's takeover routed ($tk_back)" bha_routed_by "$tk_back"
is "$(nat_of backup)" "db2 2 db2" "case 2: backup learnt db2 on timeline 2 from the nodes"
t_ok "case 2: both endpoints on db2" bha_wait 60 "endpoints on db2" bha_endpoints_on db2
t_ok "case 2: the writer commits on db2" bha_wait 90 "commits after the return" bha_writer_has w2 5 "$t_up"
first_ms=$(( $(bha_writer_first_after w2 "$t_up") - t_up ))
t_ok "case 2: Barman streams from db2" bha_wait 120 "Barman streaming from db2" bha_barman_streams_from db2
t_db1=$(bha_now_ms)
bha_link db1 up
t_ok "case 2: the old primary db1 is fenced" bha_wait 60 "db1 fenced" bha_route_state_is db1 fenced
fence_ms=$(bhf_since "$t_db1")
t_ok "case 2: the writer still commits" bha_wait 30 "5 commits" bha_writer_has w2 5 "$(bha_now_ms)"
t_ok "case 2: both endpoints stay on db2" bha_endpoints_on db2
is "$(nat_of backup2)" "db2 2 db2" "case 2: backup2's record is db2 on timeline 2"
is "$(bha_sql db1 appdb "SELECT count(*) FROM rows WHERE at > to_timestamp($t_db1 / 1000.0)")" 0 "case 2: no row written on db1 after its cable came back"
out=$(bha_writer_gap w2 "$t_cut" "$(bha_now_ms)")
lost_rows w2 db2 "case 2"
t_ok "case 2: barman check OK" bha_wait 120 "barman check OK" bha_barman_check_ok
bhf_fig pair-2-failover-while-gone "promoted_after_db1_cut_ms=$prom_ms backup2_routes_db2_after_db1_cut_ms=$claim_ms takeover_backup=\"$tk_back\" first_commit_after_backup_return_ms=$first_ms app_outage_ms=$out fenced_after_db1_cable_ms=$fence_ms rows_lost=$lost_n"

# ------------------------------------------------------------ 3. VRRP split between the backup hosts
t_ok "case 3: db1 still answers as a primary on timeline 1 (an old primary)" bha_is_primary db1
bha_writer_start w3 3000000
t_ok "case 3: the writer commits" bha_wait 30 "10 commits" bha_writer_has w3 10
t0=$(bha_now_ms)
t_ok "case 3: VRRP dropped between backup and backup2" vrrp_drop -A
t_ok "case 3: backup2 takes $BHA_BACKUP_ADDR too" bha_wait 10 "backup2 holding the address" bha_vip_on backup2
t_ok "case 3: backup keeps it" bha_vip_on backup
t_ok "case 3: backup2's takeover ran" bha_wait 15 "backup2's takeover" bha_took_over backup2 "$t0"
tk=$(bha_takeover_ms backup2 "$t0")
like "$tk" ' ask ok exit 0$' "case 3: backup2's takeover routed ($tk)"
bha_sleep_until $((t0 + 15000))
is "$(nat_of backup)" "db2 2 db2" "case 3: backup routes to db2"
is "$(nat_of backup2)" "db2 2 db2" "case 3: backup2 routes to db2, not to db1"
t_ok "case 3: the writer commits during the split" bha_wait 30 "5 commits" bha_writer_has w3 5 "$(bha_now_ms)"
out=$(bha_writer_gap w3 "$t0" "$(bha_now_ms)")
t_heal=$(bha_now_ms)
t_ok "case 3: VRRP between the hosts again" vrrp_drop -D
t_ok "case 3: backup2 lets the address go" bha_wait 10 "backup2 without the address" eval '! bha_vip_on backup2'
t_ok "case 3: the writer commits" bha_wait 30 "5 commits" bha_writer_has w3 5 "$(bha_now_ms)"
out_heal=$(bha_writer_gap w3 "$t_heal" "$(bha_now_ms)")
lost_rows w3 db2 "case 3"
bhf_fig pair-3-vrrp-split "takeover_backup2=\"$tk\" routed_backup=\"$(nat_of backup)\" routed_backup2=\"$(nat_of backup2)\" app_outage_split_ms=$out app_outage_heal_ms=$out_heal rows_lost=$lost_n"
diag "51_backup_pair.t ran $(( $(bhf_since "$t_start") / 1000 )) s after the bring-up"

done_testing
