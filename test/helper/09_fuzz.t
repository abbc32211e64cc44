#!/bin/bash
# 09_fuzz.t: a short libFuzzer run (20 s, ASan + UBSan) over the helper's
# parsers: configuration, SSH_ORIGINAL_COMMAND, names, numbers, addresses.
# Seeded with a real configuration and real requests.  Any crash fails.
. "$(dirname "$0")/lib.sh"
plan 2
mkdir -p "$T/corpus" && chmod 755 "$T"
make -s -C "$TOP/src/helper" fuzz >/dev/null 2>&1; ok $? "make fuzz builds the target"
printf 'backup_address = 10.213.0.10\nnode.db1 = 10.213.0.1:5432\nbarman_server = pg\nremote = barman@10.213.0.10\nclaim_check = on\n' >"$T/corpus/conf"
printf 'promote db1 2' >"$T/corpus/promote"
printf 'nat route db1 both' >"$T/corpus/route"
(cd "$T" && "$TOP/src/helper/fuzz_parsers" -max_total_time=20 -rss_limit_mb=1024 "$T/corpus" >"$T/fuzz.log" 2>&1)
rc=$?
diag "$(grep -E '^Done|ERROR|SUMMARY' "$T/fuzz.log" | head -3)"
is $rc 0 "20 s of fuzzing without a crash"
exit $((TAP_FAIL > 0))
