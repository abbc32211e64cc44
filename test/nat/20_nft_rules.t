#!/bin/bash
# 20_nft_rules.t: the nftables backend makes exactly the ruleset of
# nat/repmgr_barman_ha.nft.  In one namespace barman_ha_nat (nat_backend =
# nftables) routes; in a second, fresh one `nft -f` loads the file,
# instantiated for the same routing; `nft -j list table ip repmgr_barman_ha`
# must be equal (handles dropped, map elements sorted).  For: both endpoints
# on db1, on db2, split, one closed, per-endpoint SNAT sources.  Then the
# backend's own check: init accepts the table nft made (unchanged), replaces a
# table with a rule it did not make, and a route that finds the table gone
# makes it again.
export BHA_NAT_BACKEND=nftables
. "$(dirname "$0")/lib.sh"
plan 17
FILE=$TOP/nat/repmgr_barman_ha.nft
setup

# listing NS: our table as normalised JSON
listing() {
	ip netns exec "$1" nft -j list table ip repmgr_barman_ha |
		jq -S '.nftables | map(select(.metainfo | not) | (.[] |= del(.handle)) |
			if .map.elem then .map.elem |= sort_by(.[0]) else . end)'
}
# reference BARMAN APP [SOURCE_B SOURCE_A]: the file, loaded by nft into a
# fresh namespace, for endpoints on BARMAN, APP (db1, db2 or "-" closed)
# (in a $(...) subshell: its namespace is its own to delete)
reference() {
	local b=$1 a=$2 sb=${3:-$BACKUP} sa=${4:-$BACKUP} elems=() list rns=$ID-ref$BASHPID
	[ "$b" != - ] && elems+=("54321 : 10.213.0.${b#db} . 5432")
	[ "$a" != - ] && elems+=("54322 : 10.213.0.${a#db} . 5432")
	list=$(IFS=,; echo "${elems[*]}")
	ip netns add "$rns" || return
	sed -e "/^\t\telements = /{s/.*/\t\telements = { $list }/;/{  }/d}" \
		-e "/proto-dst 54321/s/snat ip to .*/snat ip to $sb/" \
		-e "/proto-dst 54322/s/snat ip to .*/snat ip to $sa/" "$FILE" |
		ip netns exec "$rns" nft -f - && listing "$rns" || echo "nft -f failed"
	ip netns del "$rns"
}

ip netns add "$ID-check" && NSLIST+=("$ID-check")
ip netns exec "$ID-check" nft -c -f "$FILE"; ok $? "nft accepts $FILE as it is"

mkns NS b
conf "$NS"
nb "$NS" init >/dev/null && nr "$NS" route db1 both >/dev/null; ok $? "init, route db1 both"
is "$(listing "$NS")" "$(reference db1 db1)" "db1 db1: the table equals the file's"
nr "$NS" route db2 both >/dev/null
is "$(listing "$NS")" "$(reference db2 db2)" "db2 db2: equal"
nr "$NS" route db1 barman >/dev/null
is "$(listing "$NS")" "$(reference db1 db2)" "barman on db1, app on db2: equal"

mkns NS2 c
conf "$NS2"
nb "$NS2" init >/dev/null
is "$(listing "$NS2")" "$(reference - -)" "after init: both closed, equal"
nr "$NS2" route db2 app >/dev/null
is "$(listing "$NS2")" "$(reference - db2)" "barman closed, app on db2: equal"

# per-endpoint sources: a config change that init (and only init) applies
conf "$NS" "barman_snat_address = 10.213.0.11" "app_snat_address = 10.213.0.12"
is "$(nb "$NS" init)" "init changed" "new SNAT sources: init rebuilds the table"
is "$(readback "$NS")" $'barman 10.213.0.1:5432\napp 10.213.0.2:5432' "...keeping the routing"
is "$(listing "$NS")" "$(reference db1 db2 10.213.0.11 10.213.0.12)" "per-endpoint SNAT: equal"
is "$(nb "$NS" init)" "init unchanged" "init again: unchanged"

# a table made by nft from the file is what the backend would make
mkns NS3 d
conf "$NS3"
sed 's/^\t\telements = .*/\t\telements = { 54321 : 10.213.0.2 . 5432 }/' "$FILE" | ip netns exec "$NS3" nft -f -
is "$(nb "$NS3" init)" "init unchanged" "the file's table, loaded by nft: init leaves it"
is "$(readback "$NS3")" $'barman 10.213.0.2:5432\napp closed' "...and reads its elements"
# a rule of someone else in our table: init makes the table anew
ip netns exec "$NS3" nft add rule ip repmgr_barman_ha output tcp dport 22 accept
is "$(nb "$NS3" init)" "init changed" "a foreign rule in our chain: init rebuilds"
is "$(listing "$NS3")" "$(reference db2 -)" "...to the file's table, the routing kept"
# the table deleted behind our back: the next route makes it again
ip netns exec "$NS3" nft delete table ip repmgr_barman_ha
nr "$NS3" route db1 both >/dev/null; ok $? "route after the table was deleted exits 0"
is "$(listing "$NS3")" "$(reference db1 db1)" "...and the table is the file's again"
exit $((TAP_FAIL > 0))
