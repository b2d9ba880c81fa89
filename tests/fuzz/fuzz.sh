#!/bin/bash
# tests/fuzz/fuzz.sh SECONDS [NAME...]: builds the libFuzzer targets
# (TARGET=fuzz: ASan+UBSan) and runs each (or the NAMEs given: fuzz_NAME)
# for SECONDS over its seed corpus in tests/fuzz/corpus/NAME; new inputs
# go to build/fuzz/corpus/NAME, crashes to build/fuzz/crashes/. FUZZ_JOBS
# targets run at once (default 2, the machine's cores). Prints one line
# per target with its run count and "fuzz: N passed, N failed". The IMAP
# session target is also built with tiny limits (tests/tiny-config.sh)
# and run as imap_session-tiny.
#
# The whole-session targets (imap_session, imap_two, pop3, smtp_session
# and imap_session-tiny) run FUZZ_SESSION_FACTOR times as long (default
# 1). With FUZZ_FAST=1 they run from a second build without ASan
# (TARGET=fuzz-fast: UBSan and libFuzzer only, 1 to 2 times the inputs
# a CPU second), and then the ASan build runs every input of the corpus
# they made once, so what they found is checked for memory errors too.
# `make fuzz` sets FUZZ_SECONDS=300, FUZZ_SESSION_FACTOR=4 and
# FUZZ_FAST=1: 5 minutes a target, 20 for a session target, 2 at a
# time: about 105 minutes of two cores (it says so when it starts).
# `make check` runs this with 8 s (ASan only).
set -u
cd "$(dirname "$0")/../.."
secs=${1:-10}
shift
jobs=${FUZZ_JOBS:-2}
fast=${FUZZ_FAST:-0}
factor=${FUZZ_SESSION_FACTOR:-1}
session=(imap_session imap_two pop3 smtp_session)
tests/install-deps.sh check
build_failed() {
	echo "fuzz: $1 build failed"
	echo "fuzz: 0 passed, 1 failed"
	exit 1
}
make -s TARGET=fuzz fuzzers -j2 >/dev/null || build_failed ASan
# The IMAP targets again with tiny limits (tests/tiny-config.sh), run as
# NAME-tiny over the same seeds.
tiny=(imap_session)
tests/tiny-config.sh build/fuzz-tiny.config || build_failed tiny
make -s TARGET=fuzz O=build/fuzz-tiny CONFIG_SRC=build/fuzz-tiny.config -j2 \
	"${tiny[@]/#/build/fuzz-tiny/fuzz/fuzz_}" >/dev/null || build_failed tiny
if [ "$fast" = 1 ]; then
	make -s TARGET=fuzz-fast -j2 "${session[@]/#/build/fuzz-fast/fuzz/fuzz_}" \
		>/dev/null || build_failed fast
	make -s TARGET=fuzz-fast O=build/fuzz-fast-tiny CONFIG_SRC=build/fuzz-tiny.config \
		-j2 "${tiny[@]/#/build/fuzz-fast-tiny/fuzz/fuzz_}" >/dev/null || build_failed "fast tiny"
fi
mkdir -p build/fuzz/crashes build/fuzz/status
targets=()
if [ $# -gt 0 ]; then
	for n in "$@"; do
		case $n in
		*-tiny) targets+=("build/fuzz-tiny/fuzz/fuzz_${n%-tiny}") ;;
		*) targets+=("build/fuzz/fuzz/fuzz_$n") ;;
		esac
	done
else
	targets=(build/fuzz/fuzz/fuzz_* "${tiny[@]/#/build/fuzz-tiny/fuzz/fuzz_}")
fi

name_of() { # BINARY: NAME, or NAME-tiny for the tiny-limit build
	local n=${1##*/fuzz_}
	case $1 in build/fuzz-tiny/*) n=$n-tiny ;; esac
	echo "$n"
}

is_session() { # NAME: 0 for a whole-session target
	local n
	for n in "${session[@]}"; do
		[ "${1%-tiny}" = "$n" ] && return 0
	done
	return 1
}

run_one() { # BINARY: one target, its verdict in build/fuzz/status/NAME
	local f=$1 name seed work log t=$secs run=$1 how="" replayed
	name=$(name_of "$f")
	if is_session "$name"; then
		t=$((secs * factor))
		if [ "$fast" = 1 ]; then
			run=${f/build\/fuzz/build/fuzz-fast}
			how=" (no ASan; the corpus then under ASan)"
		fi
	fi
	seed=tests/fuzz/corpus/${name%-tiny}
	work=build/fuzz/corpus/$name
	log=build/fuzz/$name.log
	mkdir -p "$work" "$seed"
	if [ ! -x "$f" ] || [ ! -x "$run" ]; then
		echo "fuzz $name: FAILED, no such target" >"build/fuzz/status/$name"
		return
	fi
	if timeout $((t + 60)) "$run" -max_total_time="$t" -timeout=10 \
		-rss_limit_mb=1024 -artifact_prefix=build/fuzz/crashes/"$name"- \
		-print_final_stats=1 "$work" "$seed" >"$log" 2>&1 &&
		{ [ "$run" = "$f" ] ||
			timeout $((t + 60)) "$f" -runs=0 -timeout=10 -rss_limit_mb=1024 \
				-artifact_prefix=build/fuzz/crashes/"$name"- \
				-print_final_stats=1 "$work" "$seed" >"$log.asan" 2>&1; }; then
		replayed=""
		[ "$run" = "$f" ] || replayed=", $(sed -n 's/^stat::number_of_executed_units: *//p' "$log.asan") replayed under ASan"
		echo "fuzz $name: ok ($(sed -n 's/^stat::number_of_executed_units: *//p' "$log") runs in ${t} s$how$replayed, $(ls "$work" | wc -l) corpus)" >"build/fuzz/status/$name"
	else
		[ -f "$log.asan" ] && [ "$run" != "$f" ] && log=$log.asan
		{
			echo "fuzz $name: FAILED, see $log:"
			grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -5
		} >"build/fuzz/status/$name"
	fi
}

# What this run will take, said before it starts.
total=0 nsess=0
for f in "${targets[@]}"; do
	if is_session "$(name_of "$f")"; then
		total=$((total + secs * factor))
		nsess=$((nsess + 1))
	else
		total=$((total + secs))
	fi
done
echo "fuzz: ${#targets[@]} targets, ${secs} s each ($nsess session targets $((secs * factor)) s$([ "$fast" = 1 ] && echo ", without ASan, then their corpus under ASan")), $jobs at a time: about $(((total / jobs + 59) / 60)) min"
rm -f build/fuzz/status/* build/fuzz/*.log.asan
running=0
for f in "${targets[@]}"; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
	run_one "$f" &
	running=$((running + 1))
done
wait
pass=0 fail=0
for f in "${targets[@]}"; do
	s=build/fuzz/status/$(name_of "$f")
	cat "$s"
	if head -1 "$s" | grep -q ': ok '; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ]
