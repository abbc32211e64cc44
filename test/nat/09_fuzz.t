#!/bin/bash
# 09_fuzz.t: the parsers (nat.conf, the state file, argv) under libFuzzer
# with ASan and UBSan for 10 s from the seed corpus: no crash, no leak, no
# undefined behaviour.  Skipped without clang.
. "$(dirname "$0")/lib.sh"
command -v clang >/dev/null || { echo "1..0 # SKIP clang not installed"; exit 0; }
plan 2
mkdir -p "$T/corpus" && chmod 755 "$T"
make -s -C "$TOP/nat" ${NAT_MAKE_ARGS:-} fuzz >/dev/null 2>&1; ok $? "make fuzz builds"
cp "$TOP"/nat/fuzz/corpus/* "$T/corpus/"
(cd "$T" && "$TOP/nat/fuzz_nat" -close_fd_mask=2 -max_total_time=10 -print_final_stats=1 "$T/corpus" \
	>"$T/fuzz.log" 2>&1)
ok $? "10 s of fuzzing: no crash ($(grep -o 'Done [0-9]* runs' "$T/fuzz.log"))"
exit $((TAP_FAIL > 0))
