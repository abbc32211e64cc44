# pair.sh: the backup host pair of the namespace cluster (BHA_PAIR=1; sourced by lib.sh).
#
# PREFIX-backup2 (10.213.0.13) runs barman_ha_nat, barman_ha_orchestrator (no Barman: its
# Barman rows are skipped), its watch and sshd with the same forced commands and the same
# host key as PREFIX-backup.  keepalived on both (VRRP v3, every 0.5 s; backup 150 with
# preemption, backup2 100) moves the virtual address $BHA_BACKUP_ADDR between them: the
# applications, Barman's conninfo and the nodes' claims (ssh to barman@VIRTUAL) use it.
# The host that takes it runs `barman_ha_orchestrator takeover` (notify_master): the nodes
# say who the primary is before it routes anything.  keepalived runs in the host's
# namespace in the foreground (-n), its pid in $BHA_DATA/HOST/keepalived/keepalived.pid.
# Both hosts read the TLS files of $BHA_TLS and the programs of $BHA_BACKUP_BIN (one
# machine); on real hosts each has its copies.

BHA_VRID=${BHA_VRID:-51}

# pg_hba: everything of a backup host's comes from its own address: the claim check, the
# watch and the takeover (the virtual address is a secondary one), and what its endpoints
# forward, whose SNAT source is the host's own address (bha_pair_conf): a node's replies go
# back to the host that forwarded, whichever host its ARP cache names for the virtual address
# (both do in a VRRP split).
bha_pair_hba() {
	local h a
	for h in backup backup2; do
		a=${BHA_ADDR[$h]}/32
		echo "hostssl replication  streaming_barman  $a    cert"
		echo "hostssl postgres     barman            $a    cert"
		echo "hostssl postgres     barman_ha_check   $a    cert"
		echo "hostssl postgres     barman_ha_catchup $a    cert"
		echo "host    appdb        app               $a    scram-sha-256"
	done
}

# sshd on a backup host also listens on the virtual address, held or not (non-local bind).
bha_pair_listen() {
	case "$1" in backup | backup2) ;; *) return 0 ;; esac
	bha_in "$1" sysctl -qw net.ipv4.ip_nonlocal_bind=1
	echo "ListenAddress $BHA_BACKUP_ADDR:22"
}

bha_orchestrator2() { bha_in backup2 "$BHA_BACKUP_BIN/barman_ha_orchestrator" "$@"; }
bha_nat2() { bha_in backup2 "$BHA_BACKUP_BIN/barman_ha_nat" "$@"; }

# bha_pair_conf: each host's own address as the SNAT source of both endpoints; backup2's
# configs: backup's nat.conf with its own state file and address, an orchestrator.conf
# without barman_server
bha_pair_conf() {
	local src dir
	src=/etc/netns/$(bha_ns backup)/repmgr_barman_ha
	dir=/etc/netns/$(bha_ns backup2)/repmgr_barman_ha
	bha_mkdir root:root 0755 "/etc/netns/$(bha_ns backup2)" "$dir" "$BHA_DATA/backup2/state"
	bha_mkdir barman:barman 0750 "$BHA_DATA/backup2/ostate" "$BHA_DATA/backup2/log"
	printf 'barman_snat_address = %s\napp_snat_address = %s\n' "${BHA_ADDR[backup]}" "${BHA_ADDR[backup]}" >>"$src/nat.conf"
	sed -e "s|$BHA_DATA/backup/state/|$BHA_DATA/backup2/state/|" -e "s|= ${BHA_ADDR[backup]}\$|= ${BHA_ADDR[backup2]}|" \
		"$src/nat.conf" | bha_write "$dir/nat.conf" root:root 0644
	grep -vE '^(barman_server|barman_conninfo|archive_timeout) ' "$src/orchestrator.conf" |
		sed "s|$BHA_DATA/backup/ostate|$BHA_DATA/backup2/ostate|" | bha_write "$dir/orchestrator.conf" root:root 0644
}

# bha_keepalived_conf HOST PRIORITY
bha_keepalived_conf() {
	local h=$1 d=$BHA_DATA/$1/keepalived
	bha_mkdir root:root 0755 "$d"
	bha_write "$d/keepalived.conf" root:root 0644 <<EOF
global_defs {
	router_id $BHA_PREFIX-$h
	vrrp_version 3
	script_user root
	enable_script_security
	vrrp_garp_lower_prio_repeat 3
}
vrrp_instance backup_pair {
	state BACKUP
	interface eth0
	virtual_router_id $BHA_VRID
	priority $2
	advert_int 0.5
	virtual_ipaddress {
		$BHA_BACKUP_ADDR/24 dev eth0
	}
	notify_master "$d/notify-master"
}
EOF
	# the takeover's step lines, timed, for the test (keepalived drops a script's output)
	bha_write "$d/notify-master" root:root 0755 <<EOF
#!/bin/sh
exec >>"$d/takeover.log" 2>&1
echo "takeover begins \$(date +%s%3N)"
"$BHA_BACKUP_BIN/barman_ha_orchestrator" takeover
echo "takeover exit \$? \$(date +%s%3N)"
EOF
}

# bha_keepalived_start HOST: in the foreground inside HOST's namespace, detached from us
bha_keepalived_start() {
	local d=$BHA_DATA/$1/keepalived
	rm -f "$d/keepalived.pid" "$d/vrrp.pid"
	bha_in "$1" setsid keepalived -n -l -D --vrrp -f "$d/keepalived.conf" -p "$d/keepalived.pid" \
		-r "$d/vrrp.pid" </dev/null >>"$d/keepalived.log" 2>&1 &
	bha_wait 10 "keepalived on $1" test -s "$d/vrrp.pid"
}
bha_keepalived_stop() { bha_kill_pidfile "$BHA_DATA/$1/keepalived/keepalived.pid"; }

# bha_vip_on HOST: HOST holds the virtual address
bha_vip_on() { bha_in "$1" ip -4 -o addr show dev eth0 | grep -q " $BHA_BACKUP_ADDR/"; }

# bha_takeover HOST FROM: HOST's last takeover begun after epoch ms FROM, once it has ended:
# "END MS ms ask ok|failed exit N": when it ended (epoch ms), how long it took, whether the
# nodes named a primary (ask ok), its exit status; nothing before that
bha_takeover() {
	awk -v t="$2" '$1 == "takeover" && $2 == "begins" && $3 > t {b = $3; a = ""}
		b && $2 == "takeover_ask" {a = $3}
		$1 == "takeover" && $2 == "exit" && b {r = $4 " " $4 - b " ms ask " a " exit " $3} END {print r}' \
		"$BHA_DATA/$1/keepalived/takeover.log" 2>/dev/null
}
bha_takeover_ms() { local r; r=$(bha_takeover "$@"); echo "${r#* }"; }	# without END
bha_took_over() { [ -n "$(bha_takeover "$@")" ]; }
# bha_routed_by TAKEOVER: the takeover found a primary and routed; on Barman's host an exit 1
# says that Barman does not stream yet (the old stream's walsender still holds the slot: the
# level check repairs it)
bha_routed_by() { [[ $1 == *" ask ok exit 0" || $1 == *" ask ok exit 1" ]]; }

bha_watch2_start() {
	local f=$BHA_DATA/backup2/watch
	# shellcheck disable=SC2016
	bha_in backup2 setsid bash -c 'echo $$ >"$1.pid"; exec "$2" watch' watch "$f" \
		"$BHA_BACKUP_BIN/barman_ha_orchestrator" </dev/null >>"$BHA_DATA/backup2/log/watch.log" 2>&1 &
	bha_wait 5 "the watch on backup2" test -s "$f.pid"
}

# bha_pair_up: after bha_backup_up: backup2's sshd (backup's host key and forced commands),
# barman_ha_nat init, its watch; keepalived on both, backup holding the address
bha_pair_up() {
	local d=$BHA_DATA/backup2/sshd
	bha_pair_conf || return 1
	bha_in backup2 sysctl -qw net.ipv4.ip_forward=1
	bha_sshd_conf backup2 barman || return 1
	cp "$BHA_DATA/backup/sshd/ssh_host_ed25519_key" "$BHA_DATA/backup/sshd/ssh_host_ed25519_key.pub" "$d/"
	bha_write "$d/authorized_keys/barman" root:root 0644 <"$BHA_DATA/backup/sshd/authorized_keys/barman"
	bha_sshd_start backup2 || return 1
	bha_nat2 init >/dev/null || return 1
	bha_watch2_start || return 1
	bha_keepalived_conf backup 150 && bha_keepalived_conf backup2 100 || return 1
	bha_keepalived_start backup && bha_keepalived_start backup2 || return 1
	bha_wait 20 "backup to hold $BHA_BACKUP_ADDR" bha_vip_on backup
}
