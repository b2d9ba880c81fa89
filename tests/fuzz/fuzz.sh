#!/bin/bash
# tests/fuzz/fuzz.sh SECONDS [NAME...]: builds the libFuzzer targets
# (TARGET=fuzz) and runs each (or the NAMEs given: fuzz_NAME) for SECONDS
# over its seed corpus in tests/fuzz/corpus/NAME; new inputs go to
# build/fuzz/corpus/NAME, crashes to build/fuzz/crashes/. FUZZ_JOBS targets
# run at once (default 2, the machine's cores). Prints one line per target
# with its run count and "fuzz: N passed, N failed". The IMAP session target
# is also built with tiny limits (tests/tiny-config.sh) and run as
# imap_session-tiny. The whole-session targets (imap_session, imap_two,
# pop3, smtp_session and their -tiny builds) run FUZZ_SESSION_FACTOR
# times as long (default 1; `make fuzz` sets 4): an input costs them a
# whole session through the loop, sockets and files.
set -u
cd "$(dirname "$0")/../.."
secs=${1:-10}
shift
jobs=${FUZZ_JOBS:-2}
tests/install-deps.sh check
make -s TARGET=fuzz fuzzers -j2 >/dev/null || { echo "fuzz: build failed"; echo "fuzz: 0 passed, 1 failed"; exit 1; }
# The IMAP targets again with tiny limits (tests/tiny-config.sh), run as
# NAME-tiny over the same seeds.
tiny=(imap_session)
if ! { tests/tiny-config.sh build/fuzz-tiny.config &&
	make -s TARGET=fuzz O=build/fuzz-tiny CONFIG_SRC=build/fuzz-tiny.config -j2 \
		"${tiny[@]/#/build/fuzz-tiny/fuzz/fuzz_}" >/dev/null; }; then
	echo "fuzz: tiny build failed"
	echo "fuzz: 0 passed, 1 failed"
	exit 1
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

run_one() { # BINARY: one target, its verdict in build/fuzz/status/NAME
	local f=$1 name seed work log t=$secs
	name=$(name_of "$f")
	case ${name%-tiny} in
	imap_session | imap_two | pop3 | smtp_session) t=$((secs * ${FUZZ_SESSION_FACTOR:-1})) ;;
	esac
	seed=tests/fuzz/corpus/${name%-tiny}
	work=build/fuzz/corpus/$name
	log=build/fuzz/$name.log
	mkdir -p "$work" "$seed"
	if [ ! -x "$f" ]; then
		echo "fuzz $name: FAILED, no such target" >"build/fuzz/status/$name"
		return
	fi
	if timeout $((t + 60)) "$f" -max_total_time="$t" -timeout=10 \
		-rss_limit_mb=1024 -artifact_prefix=build/fuzz/crashes/"$name"- \
		-print_final_stats=1 "$work" "$seed" >"$log" 2>&1; then
		echo "fuzz $name: ok ($(sed -n 's/^stat::number_of_executed_units: *//p' "$log") runs in ${t} s, $(ls "$work" | wc -l) corpus)" >"build/fuzz/status/$name"
	else
		{
			echo "fuzz $name: FAILED, see $log:"
			grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -5
		} >"build/fuzz/status/$name"
	fi
}

rm -f build/fuzz/status/*
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
