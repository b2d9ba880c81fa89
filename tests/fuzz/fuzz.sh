#!/bin/bash
# tests/fuzz/fuzz.sh SECONDS: builds the libFuzzer targets (TARGET=fuzz) and
# runs each for SECONDS over its seed corpus in tests/fuzz/corpus/NAME; new
# inputs go to build/fuzz/corpus/NAME, crashes to build/fuzz/crashes/.
# Prints "fuzz: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
secs=${1:-10}
tests/install-deps.sh check
make -s TARGET=fuzz fuzzers -j2 >/dev/null || { echo "fuzz: build failed"; echo "fuzz: 0 passed, 1 failed"; exit 1; }
pass=0 fail=0
mkdir -p build/fuzz/crashes
for f in build/fuzz/fuzz/fuzz_*; do
	name=${f##*/fuzz_}
	seed=tests/fuzz/corpus/$name
	work=build/fuzz/corpus/$name
	mkdir -p "$work" "$seed"
	if timeout $((secs + 60)) "$f" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=1024 -artifact_prefix=build/fuzz/crashes/"$name"- \
		-print_final_stats=0 "$work" "$seed" >build/fuzz/"$name".log 2>&1; then
		pass=$((pass + 1))
		echo "fuzz $name: ok ($(grep -c . build/fuzz/"$name".log) log lines, $(ls "$work" | wc -l) corpus)"
	else
		fail=$((fail + 1))
		echo "fuzz $name: FAILED, see build/fuzz/$name.log:"
		grep -E "ERROR|SUMMARY|Test unit written" build/fuzz/"$name".log | head -5
	fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ]
