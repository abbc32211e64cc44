#!/bin/bash
# twins.t: no function is written twice.  A function of the programs is
# defined in one program only (client/, orchestrator/, nat/, their fuzz
# targets apart) or once in common/, which each program links; main is
# each program's own.  Definitions are found as PostgreSQL's style writes
# them: the name at the start of a line, then "(".
. "$(dirname "$0")/../lib/tap.sh"
TOP=$(cd "$(dirname "$0")/../.." && pwd)
plan 2
defs() { grep -hoE '^[a-z_][a-z0-9_]*\(' "$@" | tr -d '(' | sort -u; }
# a program's sources: every .c in its folders but its fuzz target's
srcs() { find "$TOP/$1" -name '*.c' -not -path "$TOP/$1/fuzz/*"; }
twice=$(for p in client orchestrator nat; do defs $(srcs $p); done | sort | uniq -d | grep -vx main)
is "$twice" "" "no function defined in two programs"
again=$(for p in client orchestrator nat; do defs $(srcs $p); done | sort -u |
	comm -12 - <(defs "$TOP"/common/*.c))
is "$again" "" "no function of common/ defined again in a program"
exit $((TAP_FAIL > 0))
