# faults_lib.sh: helpers of the fault matrix (20_faults.t, 21_faults_failover.t), on top of lib.sh.
# Only reads lib.sh's variables; changes nothing of it.

# bhf_fig FAULT KEY=VALUE...: one line of figures, collected by docs/faults.md
bhf_fig() { local f=$1; shift; echo "# FIGURE $f $*"; }

# bhf_since T0: ms since epoch ms T0
bhf_since() { echo $(( $(bha_now_ms) - $1 )); }

bhf_worker_pid() { bha_sql "$1" "SELECT coalesce(worker_pid::text, '') FROM barman_ha_status()" 2>/dev/null; }
bhf_last_error() { bha_sql "$1" "SELECT coalesce(last_error, '') FROM barman_ha_status()" 2>/dev/null; }
# bhf_error_has NODE REGEX: route_state failed and last_error matches REGEX
bhf_failed_with() {
	local row
	row=$(bha_sql "$1" "SELECT route_state || ' ' || coalesce(last_error, '') FROM barman_ha_status()" 2>/dev/null) || return 1
	[[ $row == failed* ]] && grep -qE "$2" <<<"$row"
}
# bhf_event_has NODE EVENT REGEX [SINCE_EPOCH_MS]: an event EVENT whose detail matches REGEX
bhf_event_has() {
	[ "$(bha_sql "$1" "SELECT count(*) FROM barman_ha_events() WHERE event = '$2' AND detail ~ '$3' AND at >= to_timestamp(${4:-0} / 1000.0)" 2>/dev/null)" -gt 0 ]
}
bhf_event_count() {		# bhf_event_count NODE EVENT [SINCE_EPOCH_MS]
	bha_sql "$1" "SELECT count(*) FROM barman_ha_events() WHERE event = '$2' AND at >= to_timestamp(${3:-0} / 1000.0)" 2>/dev/null
}
bhf_event_count_is() {	# bhf_event_count_is NODE EVENT SINCE_EPOCH_MS N: at least N such events
	[ "$(bhf_event_count "$1" "$2" "$3")" -ge "$4" ] 2>/dev/null
}

# repmgrd must not fail over while a scenario restarts the primary on purpose
bhf_repmgrd_pause() { bha_repmgr db1 service pause >>"$BHA_DATA/db1/repmgr.log" 2>&1; }
bhf_repmgrd_unpause() { bha_repmgr db1 service unpause >>"$BHA_DATA/db1/repmgr.log" 2>&1; }

# bhf_log_size NODE / bhf_log_since NODE OFFSET: the server log from a byte offset on
bhf_log_size() { stat -c %s "$BHA_DATA/$1/postgresql.log"; }
bhf_log_since() { tail -c +"$(( $2 + 1 ))" "$BHA_DATA/$1/postgresql.log"; }

# bhf_orchestrator_status KEY: a key of the backup host's `barman_ha_orchestrator status`
bhf_orchestrator_status() { bha_orchestrator status 2>/dev/null | sed -n "s/^$1=//p"; }

# Barman's log: how many switch-wal ran (each closes one WAL file)
bhf_switch_wal_count() { grep -c "has been closed on server" "$BHA_DATA/backup/log/barman.log"; }

# bhf_ns_pids HOST REGEX [EXCLUDE]: pids in HOST's namespace whose command line matches REGEX (and not EXCLUDE)
bhf_ns_pids() {
	local p c
	for p in $(ip netns pids "$(bha_ns "$1")" 2>/dev/null); do
		c=$(tr "\0" " " 2>/dev/null <"/proc/$p/cmdline")
		grep -qE "$2" <<<"$c" && { [ -z "${3:-}" ] || ! grep -qE "$3" <<<"$c"; } && echo "$p"
	done
}
# A call's processes: the client and its ssh.  The shared connection that the workers keep
# (ssh -N -o ControlMaster=yes, docs/operator-guide.md) outlives calls and is not one of them.
bhf_call_pids() { bhf_ns_pids "$1" '(^|/)barman_ha_client|^/usr/bin/ssh ' 'ControlMaster=yes'; }
bhf_helper_running() { [ -n "$(bhf_ns_pids "$1" '(^|/)barman_ha_client promote')" ]; }

# bhf_wal_missing: after a switch-wal, WAL segment numbers absent from Barman's archive between the
# oldest and the newest archived one, whatever their timeline (a timeline switch repeats a number)
bhf_wal_missing() {
	local f min=-1 max=-1 k miss=0
	declare -A have=()
	for f in $(find "$BHA_DATA/backup/barman/$BHA_SERVER/wals" -type f -regextype egrep \
		-regex '.*/[0-9A-F]{24}(\.[a-z0-9]+)?$' -printf '%f\n' 2>/dev/null); do
		k=$(( 16#${f:8:8} * 256 + 16#${f:16:8} ))
		have[$k]=1
		{ [ "$min" -lt 0 ] || [ "$k" -lt "$min" ]; } && min=$k
		[ "$k" -gt "$max" ] && max=$k
	done
	for ((k = min; k >= 0 && k <= max; k++)); do [ -n "${have[$k]:-}" ] || miss=$((miss + 1)); done
	echo "$miss"
}
bhf_wal_report() {		# bhf_wal_report FAULT: switch-wal, then the number of missing segments
	bha_switch_wal >/dev/null 2>&1
	bhf_wal_missing
}

# predicates for bha_wait
bhf_new_worker() { local p; p=$(bhf_worker_pid "$1"); [ -n "$p" ] && [ "$p" != "$2" ]; }
bhf_no_helper() { [ -z "$(bhf_call_pids "$1")" ]; }
bhf_pg_restart() { bha_pg_stop "$1" fast && bha_pg_start "$1"; }
bhf_chains_missing() { bha_nat show 2>/dev/null | grep -q '^endpoint barman .* missing$'; }
# a TCP connect from app to BACKUP:PORT fails (nothing routed)
bhf_app_port_dead() { ! bha_in app timeout 5 bash -c "echo >/dev/tcp/$BHA_BACKUP_ADDR/$1" 2>/dev/null; }
# bhf_backup_conns NODE OFFSET: "connection authorized" lines (log_connections) of the connections
# that came from the backup host's address (the endpoints' SNAT source, and the claim checks)
bhf_backup_conns() {
	bhf_log_since "$1" "$2" | awk -v a="host=$BHA_BACKUP_ADDR " '
		/connection received: / { if (index($0, a)) { match($0, /\[[0-9]+\]/); p[substr($0, RSTART, RLENGTH)] = 1 } }
		/connection authorized: / { match($0, /\[[0-9]+\]/); if (substr($0, RSTART, RLENGTH) in p) print }'
}

bhf_log_has() { bhf_log_since "$1" "$2" | grep -qE "$3"; }
