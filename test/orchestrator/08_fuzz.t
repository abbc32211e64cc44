#!/bin/bash
# 08_fuzz.t: a short libFuzzer run (ASan + UBSan) over every parser of bytes
# the orchestrator does not choose (fuzz/fuzz_orchestrator.c), starting from the
# corpus in orchestrator/fuzz/corpus.  The long run (>= 10^7 executions) is
# in the README; this one keeps the corpus and the target honest in CI.
. "$(dirname "$0")/lib.sh"
plan 2
mkdir -p "$T" && chmod 755 "$T"
make -s -C "$TOP/orchestrator" fuzz >/dev/null 2>&1
ok $? "the fuzz target builds (clang, -fsanitize=fuzzer,address,undefined)"
cp -r "$TOP/orchestrator/fuzz/corpus" "$T/corpus"
"$TOP/orchestrator/fuzz_orchestrator" -runs=300000 "$T/corpus" >"$T/fuzz.log" 2>&1
rc=$?
ok $rc "300,000 runs without a crash, a leak or undefined behaviour ($(grep -o 'Done [0-9]* runs' "$T/fuzz.log"))"
[ $rc -eq 0 ] || tail -n 30 "$T/fuzz.log" >&2
rm -f "$TOP/orchestrator/fuzz_orchestrator"
exit $((TAP_FAIL > 0))
