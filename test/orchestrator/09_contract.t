#!/bin/bash
# 09_contract.t: the one contract between the extension and the three
# programs, include/barman_ha_contract.h.  Every side is built against it
# (the extension's header and each program include it), none defines its
# exit codes or step words again, and the programs exit with its codes and
# apply its name rule (a leading '-' refused everywhere).
. "$(dirname "$0")/lib.sh"
plan 13
H=$TOP/include/barman_ha_contract.h
setup

# The codes as the compiler sees them.
cat >"$T/codes.c" <<'EOF'
#include <stdio.h>
#include "barman_ha_contract.h"
int
main(void)
{
	printf("%d %d %d %d %d %d\n", BHA_EXIT_OK, BHA_EXIT_FAIL, BHA_EXIT_USAGE,
		   BHA_EXIT_FENCED, bha_valid_name("db1"), bha_valid_name("-db1"));
	return 0;
}
EOF
cc -std=gnu11 -Wall -Werror -I"$TOP/include" -o "$T/codes" "$T/codes.c"
ok $? "a program builds against the contract alone"
read -r OK FAIL USAGE FENCED good bad < <("$T/codes")
is "$OK $FAIL $USAGE $FENCED" "0 1 2 3" "exit codes: 0 done, 1 failure, 2 usage, 3 fenced"
is "$good $bad" "1 0" "the name rule: db1 valid, -db1 not"

for f in src/barman_ha.h client/main.c orchestrator/orchestrator.h nat/nat.h; do
	grep -q '^#include "barman_ha_contract.h"' "$TOP/$f"
	ok $? "$f includes the contract"
done
dups=$(cd "$TOP" && grep -rnE '^#define[[:space:]]+[A-Z_]*EXIT_(OK|FAIL|USAGE|FENCED)\b|"step %s|"[^"]*check ok routed' \
	src client orchestrator nat include --include='*.[ch]' | grep -v '^include/barman_ha_contract.h:')
is "$dups" "" "no exit code, step format or check word is written a second time"

# The programs answer with the header's codes and rule.
"$CLIENT" promote -db1 2 >/dev/null 2>&1; is $? "$USAGE" "barman_ha_client: a node name starting with '-' is a usage error"
"$CLIENT" frob >/dev/null 2>&1; is $? "$USAGE" "barman_ha_client: an unknown verb is a usage error"
"$ORCH" promote -db1 2 >/dev/null 2>&1; is $? "$USAGE" "barman_ha_orchestrator: the same name refused the same way"
"$NAT" route -db1 >/dev/null 2>&1; is $? "$USAGE" "barman_ha_nat: the same name refused the same way"
"$NAT" frob >/dev/null 2>&1; is $? "$USAGE" "barman_ha_nat: an unknown verb is a usage error"
exit $((TAP_FAIL > 0))
