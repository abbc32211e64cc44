#!/bin/bash
# 11_no_credential.t: the backup host hands a node nothing it can replay.  A
# compromised db2 (fake_pg.py on db2's address, with db2's own CA-signed
# certificate, or without TLS, or with a certificate of its own making) asks
# each connection the backup host makes to a node for SCRAM or a cleartext
# password: the claim check (claim_conninfo), the timeline fetch through the
# Barman endpoint (barman_conninfo, the catch-up wait's conninfo) and the
# watch (claim_conninfo).  The backup host still keeps barman's password in
# ~barman/.pgpass, as the earlier deployment did.  With the shipped defaults
# (a client certificate under /etc/repmgr_barman_ha/tls for a role of its
# own, sslmode=verify-full) the fake receives no message after its
# authentication request: no password, no SCRAM client-first or
# client-final.  With the earlier defaults (user=barman, sslmode=require
# channel_binding=require for the claim check and the watch, no TLS for
# barman_conninfo) the same fake captures barman's SCRAM proof or password.
. "$(dirname "$0")/lib.sh"
plan 35
hosts 2
natroot "$B" init >/dev/null || bail "barman_ha_nat init"
closed=$(endpoints "$B")

# The CA; db2's genuine certificate (a compromised db2 holds it), one of an
# impostor's making, and the backup host's client certificates at the
# default paths (/etc/repmgr_barman_ha/tls as the backup namespace sees it).
CA=$T/ca TLS=/etc/netns/$B/repmgr_barman_ha/tls
install -d -m 0700 "$CA" && install -d -o barman -g barman -m 0700 "$TLS" || bail "tls folders"
sign() {			# sign NAME SUBJECT EXT: $CA/NAME.{key,crt}
	printf '%s\n' "$3" >"$CA/$1.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$2" \
		-keyout "$CA/$1.key" -out "$CA/$1.csr" 2>/dev/null &&
		openssl x509 -req -in "$CA/$1.csr" -CA "$CA/ca.crt" -CAkey "$CA/ca.key" -CAcreateserial \
			-days 2 -extfile "$CA/$1.ext" -out "$CA/$1.crt" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=test CA" \
	-keyout "$CA/ca.key" -out "$CA/ca.crt" 2>/dev/null || bail "CA"
sign db2 /CN=10.213.0.2 "subjectAltName = IP:10.213.0.2, IP:$BACKUP_ADDR" || bail "db2's certificate"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=10.213.0.2 \
	-addext "subjectAltName = IP:10.213.0.2, IP:$BACKUP_ADDR" -keyout "$CA/impostor.key" -out "$CA/impostor.crt" 2>/dev/null ||
	bail "impostor's certificate"
for r in barman_ha_check barman_ha_catchup; do
	sign "$r" "/CN=$r" "extendedKeyUsage = clientAuth" || bail "$r's certificate"
	install -o barman -g barman -m 0600 "$CA/$r.crt" "$CA/$r.key" "$TLS/"
done
install -o barman -g barman -m 0600 "$CA/ca.crt" "$TLS/ca.crt"

EV=$T/events CAP=$T/capture PW=$T/passwords
fake() {			# fake ARGS...: fake_pg.py on db2's address, until stop_fake
	: >"$EV"; : >"$CAP"; install -m 0666 /dev/null "$PW"
	ip netns exec "$S2" python3 "$TOP/test/orchestrator/fake_pg.py" 10.213.0.2 5432 --timeline 9 \
		--events "$EV" --capture "$CAP" --password-log "$PW" "$@" &
	FAKE=$!; PIDS+=("$FAKE")
	for _ in $(seq 50); do ip netns exec "$S2" ss -ltn | grep -q "10.213.0.2:5432 " && return 0; sleep 0.1; done
	bail "fake server did not start"
}
stop_fake() { kill "$FAKE"; wait "$FAKE" 2>/dev/null; }
genuine=(--tls "$CA/db2.crt" "$CA/db2.key")
impostor=(--tls "$CA/impostor.crt" "$CA/impostor.key")
setconf() {			# setconf KEY [VALUE]: KEY = VALUE in orchestrator.conf, or KEY's default
	sed -i "/^$1 =/d" "/etc/netns/$B/repmgr_barman_ha/orchestrator.conf"
	[ $# -lt 2 ] || addconf "$B" orchestrator.conf "$1 = $2"
}
events() { tr '\n' ';' <"$EV"; }
nothing_sent() { is "$(cat "$CAP" "$PW")" "" "$1: nothing sent after the authentication request"; }
# ip netns exec "$B" sh -c "$HOME_SH" sh CMD...: CMD as root in the backup
# namespace, over a barman home of its own (a tmpfs: the namespace's mounts
# stay its own) holding barman's password
HOME_SH='mount -t tmpfs -o mode=0750,uid=barman,gid=barman home ~barman &&
	echo "*:*:*:barman:s3cret-node" >~barman/.pgpass && chown barman:barman ~barman/.pgpass &&
	chmod 0600 ~barman/.pgpass && exec "$@"'
hhp() { ip netns exec "$B" sh -c "$HOME_SH" sh runuser -u barman -- "$ORCH" "$@"; }
proof() { grep -q "^b'pc=.*,p=" "$CAP"; }	# a SCRAM client-final: the client's proof
OLD_CLAIM="user=barman dbname=postgres sslmode=require channel_binding=require connect_timeout=3"
OLD_BARMAN="host=$BACKUP_ADDR port=54321 user=barman dbname=postgres connect_timeout=5"

# ---- the claim check
setconf claim_check on
fake --scram "${genuine[@]}"
setconf claim_conninfo "$OLD_CLAIM"
hhp promote db2 9 >/dev/null 2>&1
t_ok "claim check, earlier defaults: db2's own certificate gets barman's SCRAM-PLUS proof" proof
stop_fake
setconf claim_conninfo
fake --scram
out=$(hhp promote db2 9 2>&1); ok $([ $? -ne 0 ]; echo $?) "claim check, fake without TLS: refused"
like "$out" "SSL" "...libpq refused a server without TLS"
like "$(events)" "^(TLS refused;)+$" "...which only ever saw the TLS request"
nothing_sent "claim check, fake without TLS"
stop_fake
fake --scram "${impostor[@]}"
out=$(hhp promote db2 9 2>&1); ok $([ $? -ne 0 ]; echo $?) "claim check, impostor's certificate: refused"
like "$out" "certificate verify failed" "...verify-full refused its certificate"
nothing_sent "claim check, impostor's certificate"
stop_fake
fake --scram "${genuine[@]}"
out=$(hhp promote db2 9 2>&1); ok $([ $? -ne 0 ]; echo $?) "claim check, db2's own certificate asking for SCRAM: refused"
like "$(events)" "TLS;startup user=barman_ha_check;asked for SCRAM" "...the client came as barman_ha_check, past TLS, to the SCRAM request"
nothing_sent "claim check, SCRAM from db2's own certificate"
stop_fake
fake --cleartext "${genuine[@]}"
out=$(hhp promote db2 9 2>&1); ok $([ $? -ne 0 ]; echo $?) "claim check, db2's own certificate asking for a password: refused"
like "$(events)" "TLS;startup user=barman_ha_check;asked for a cleartext password" "...the client came to the password request"
nothing_sent "claim check, cleartext from db2's own certificate"
stop_fake
is "$(endpoints "$B")" "$closed" "no endpoint routed by any of these claims"

# ---- the timeline fetch through the Barman endpoint (barman_conninfo's
# default names the claimant's address as the server to verify); the claim
# check off, Barman a program that fails at once: only the fetch talks to db2
install -d -o barman -g barman -m 0750 "$T/streaming"
setconf claim_check off
setconf barman_server pg
setconf barman_path /bin/false
setconf streaming_wals_directory "$T/streaming"
fake --cleartext
setconf barman_conninfo "$OLD_BARMAN"
out=$(hhp promote db2 2 2>&1)
like "$out" "step fence ok" "the claim moves the Barman endpoint to db2"
is "$(cat "$PW")" "s3cret-node" "timeline fetch, earlier default: the fake gets barman's password through the endpoint"
stop_fake
setconf barman_conninfo
tl=3
for mode in none impostor scram cleartext; do
	case $mode in
	none) fake --scram; want="^(TLS refused;)+$" ;;
	impostor) fake --scram "${impostor[@]}"; want="TLS handshake failed" ;;
	scram) fake --scram "${genuine[@]}"; want="TLS;startup user=barman_ha_catchup;asked for SCRAM" ;;
	cleartext) fake --cleartext "${genuine[@]}"; want="TLS;startup user=barman_ha_catchup;asked for a cleartext password" ;;
	esac
	out=$(hhp promote db2 $tl 2>&1)
	like "$out" "step barman_fork skipped [0-9.]+ cannot check the new timeline's fork point: cannot connect" \
		"timeline fetch, fake ($mode): no connection"
	like "$(events)" "$want" "...the fake saw: $want"
	nothing_sent "timeline fetch, fake ($mode)"
	stop_fake
	tl=$((tl + 1))
done

# ---- the watch of the routed node (db2 now)
setconf barman_server
wait_for() {			# wait_for SECONDS CMD...
	local n=$(($1 * 10)); shift
	until "$@" >/dev/null 2>&1; do n=$((n - 1)); [ $n -gt 0 ] || return 1; sleep 0.1; done
}
watch_case() {			# watch_case NAME EVENT: the watch until the fake saw EVENT
	ip netns exec "$B" sh -c "$HOME_SH" sh "$ORCH" watch 2>>"$T/watch.log" &
	WATCH=$!; PIDS+=("$WATCH")
	t_ok "$1: the watch reached the fake" wait_for 10 grep -q "$2" "$EV"
	kill "$WATCH"; wait "$WATCH" 2>/dev/null
}
fake --scram "${genuine[@]}"
setconf claim_conninfo "$OLD_CLAIM"
watch_case "watch, earlier default" "asked for SCRAM"
t_ok "...db2's own certificate gets barman's SCRAM-PLUS proof" wait_for 5 proof
stop_fake
setconf claim_conninfo
fake --scram "${genuine[@]}"
watch_case "watch, db2's own certificate asking for SCRAM" "startup user=barman_ha_check"
sleep 0.5
nothing_sent "watch, SCRAM from db2's own certificate"
stop_fake
fake --scram "${impostor[@]}"
watch_case "watch, impostor's certificate" "TLS handshake failed"
nothing_sent "watch, impostor's certificate"
stop_fake
exit $((TAP_FAIL > 0))
