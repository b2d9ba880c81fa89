#!/bin/bash
# tests/check.sh — everything `make check` runs, on a fresh Debian machine:
# installs what is missing, then builds and tests the host binary, the
# option matrix, the sanitizer build, the fuzzers (briefly), the cross
# targets under qemu and the size budgets. Prints one line per stage and a
# final "check: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1
PY=/usr/bin/python3
J=-j2
passed=0 failed=0 failures=()
log=build/check
mkdir -p "$log"

stage() { # stage NAME CMD...: runs CMD, logs to build/check/NAME.log
	local name=$1 t0=$SECONDS
	shift
	if "$@" >"$log/$name.log" 2>&1; then
		passed=$((passed + 1))
		echo "ok     $name ($((SECONDS - t0)) s) $(grep -E '[0-9]+ passed' "$log/$name.log" | tail -1)"
	else
		failed=$((failed + 1))
		failures+=("$name")
		echo "FAILED $name ($((SECONDS - t0)) s): see $log/$name.log"
		tail -25 "$log/$name.log" | sed 's/^/    /'
	fi
}

# Stages that mostly wait (protocol tests: timers, peers, retries) run
# beside the builds that follow them: stage_bg starts one, stage_end
# prints its line where the script says, so the output keeps its order
# whichever ends first. Each stage writes only its own log and its own
# temporary directories, and every test server takes a free port.
declare -A bg_pid=()
stage_bg() { # stage_bg NAME CMD...
	local name=$1
	stage "$@" >"$log/$name.line" &
	bg_pid[$name]=$!
}
stage_end() { # stage_end NAME: waits for it, prints and counts its line
	local name=$1
	wait "${bg_pid[$name]}"
	cat "$log/$name.line"
	if grep -q '^ok ' "$log/$name.line"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("$name")
	fi
}

# The tests of the matrix builds below mostly wait as well: each starts
# in the background when its build is done, beside the builds that
# follow, at most two at a time; each line is printed (and counted) in
# the order they started, and all have ended before the sanitizer stages.
matrix_q=()
matrix_test() { # matrix_test NAME CMD...: like stage, in the background
	while [ "${#matrix_q[@]}" -ge 2 ]; do
		stage_end "${matrix_q[0]}"
		matrix_q=("${matrix_q[@]:1}")
	done
	stage_bg "$@"
	matrix_q+=("$1")
}
matrix_end() { # waits for every matrix test still running
	local name
	for name in "${matrix_q[@]}"; do
		stage_end "$name"
	done
	matrix_q=()
}

# Bytes into fixed arrays only through core/buf, everywhere but in buf.c
# itself and libc_small.c (the C library's own snprintf/strftime, which
# buf is built on and which must not depend on postie code).
lint_rawwrites() {
	! grep -nE 'memcpy\([^,]*\+|v?snprintf\([^,]*\+|\[(o|w|n|j|k|ll|len|pos|used)\+\+\] *=|sizeof\([^)]*\) *- *[a-z_]+(->|\.)?[a-z_]* *-' \
		$(ls src/*.c src/*/*.c | grep -vE '^src/core/(buf|libc_small)\.c$')
}

lint_editorconfig() { # the files .editorconfig covers keep to it
	local files bad=0
	files=$(find src tests board toolchain Makefile Kconfig README.md LICENSE \
		.editorconfig -type f -not -path '*/corpus/*' \( -name '*.[ch]' -o \
		-name '*.py' -o -name '*.sh' -o -name '*.md' -o -name '*.mk' -o \
		-name Makefile -o -name Kconfig -o -name LICENSE -o -name defconfig \
		-o -name .editorconfig \))
	# LF line ends, no trailing blanks, a final newline; C indented with
	# tabs (spaces only to align after them), Python with spaces
	# shellcheck disable=SC2086
	grep -nP '\r|[ \t]+$' $files && bad=1
	# shellcheck disable=SC2086
	grep -nP '^( {8}| +\t)' $(printf '%s\n' $files | grep '\.[ch]$') && bad=1
	# shellcheck disable=SC2086
	grep -nP '^\t' $(printf '%s\n' $files | grep '\.py$') && bad=1
	# shellcheck disable=SC2086
	$PY -c 'import sys
bad = [f for f in sys.argv[1:] if open(f, "rb").read()[-1:] not in (b"", b"\n")]
print("".join(f + ": no final newline\n" for f in bad), end="")
sys.exit(1 if bad else 0)' $files || bad=1
	echo "editorconfig: $(echo "$files" | wc -l) files"
	[ "$bad" = 0 ]
}

lint_ifdef() { # no #ifdef CONFIG_ in .c files (README.md, Development)
	! grep -rnE '^\s*#\s*(ifdef|ifndef|if defined).*CONFIG_' src tests --include='*.c'
}

# build_cfg NAME KCONFIG-SCRIPT [SYMBOL]: a config from allno/allyes/defconfig,
# optionally with one bool turned off, built into build/matrix/NAME.
build_cfg() {
	local name=$1 gen=$2 off=${3:-} cfg=build/matrix/$1.config
	mkdir -p build/matrix
	KCONFIG_CONFIG=$cfg $PY -m "$gen" Kconfig >/dev/null || return 1
	if [ -n "$off" ]; then
		sed -i "s/^CONFIG_$off=y/# CONFIG_$off is not set/" "$cfg"
	fi
	make -s $J O=build/matrix/$name CONFIG_SRC=$cfg all test-tools
}

test_cfg() { # unit + protocol tests of a matrix build
	local name=$1
	shift
	build/matrix/$name/tests/unit &&
		POSTIE_BIN=build/matrix/$name/postie $PY tests/proto/run.py "$@"
}

stage deps tests/install-deps.sh check
stage lint-ifdef lint_ifdef
stage lint-rawwrites lint_rawwrites
stage lint-editorconfig lint_editorconfig
stage commits tests/commits.sh
stage docs $PY tests/doccheck.py
stage lint-layers $PY tests/layers.py
stage build-host make -s $J all test-tools
stage unit-host build/host/tests/unit
stage static tests/static.sh
stage hardening tests/hardening.sh
stage_bg proto-host $PY tests/proto/run.py

for cfg in allnoconfig allyesconfig; do
	stage "build-$cfg" build_cfg "$cfg" "$cfg"
done
matrix_test test-allnoconfig test_cfg allnoconfig
# allyesconfig is the defaults proto-host tests plus DEBUG_PROTOCOL:
# its tests are the files that drive each protocol's command lines,
# where that logs. If it ever differs in more, it runs every file.
allyes_tests() {
	local d=build/matrix/defaults.config
	KCONFIG_CONFIG=$d $PY -m alldefconfig Kconfig >/dev/null || return 0
	[ "$(diff <(grep '^CONFIG_' build/matrix/allyesconfig.config | sort) \
		<(grep '^CONFIG_' "$d" | sort) | grep '^[<>]')" = "< CONFIG_DEBUG_PROTOCOL=y" ] &&
		echo --quick test_smtp_basic test_smtp_hostile test_pop3 test_imap.py \
			test_imap_hostile test_auth
}
# shellcheck disable=SC2046
matrix_test test-allyesconfig test_cfg allyesconfig $(allyes_tests)
# The protocol files that exercise a feature (its tests must skip cleanly
# when it is off); every feature-off build also runs the basic files.
feature_tests() {
	case $1 in
	TLS) echo test_tls test_auth test_pop3 ;;
	AUTH) echo test_auth test_pop3 ;;
	POP3) echo test_pop3 test_crash ;;
	IMAP) echo test_imap test_imap_folders test_imap_clients ;;
	RELAY | DNS) echo test_relay test_dns test_sendmail test_faults test_crash ;;
	SENDMAIL) echo test_sendmail ;;
	SMTP_SERVER) echo test_smarthost test_sendmail test_sendmail_users ;;
	SMARTHOST_AUTH) echo test_smarthost ;;
	ALIASES) echo test_smtp_rcpt ;;
	*) echo test_smtp_hostile ;;
	esac
}

for sym in $(grep -E '^config ' Kconfig | awk '{print $2}'); do
	# each bool that defconfig turns on, turned off in turn
	grep -A2 "^config $sym\$" Kconfig | grep -q 'bool "' || continue
	grep -q "^CONFIG_$sym=y" build/host/.config || continue
	case $sym in IMAP_* | TLS_FULL | TLS_SMALL | MAILBOXES) continue ;; esac  # below
	stage "build-no-$sym" build_cfg "no-$sym" alldefconfig "$sym"
	# shellcheck disable=SC2046
	matrix_test "test-no-$sym" test_cfg "no-$sym" --quick test_smtp_basic test_config \
		$(feature_tests "$sym")
done

# The null client (CONFIG_MAILBOXES off, as on the alerts board) on the
# host: only a build with no server and no AUTH may leave the mailboxes
# out, so those go too; the rest as defconfig has it.
build_null_client() {
	build_cfg null-client alldefconfig &&
		sed -i -e '/CONFIG_\(SMTP_SERVER\|POP3\|IMAP\|AUTH\|MAILBOXES\)[= ]/d' \
			build/matrix/null-client.config &&
		printf '# CONFIG_%s is not set\n' SMTP_SERVER POP3 IMAP AUTH MAILBOXES \
			>>build/matrix/null-client.config &&
		make -s $J O=build/matrix/null-client CONFIG_SRC=build/matrix/null-client.config \
			all test-tools
}
stage build-null-client build_null_client
matrix_test test-null-client test_cfg null-client --quick test_sendmail test_smarthost \
	test_cli test_config test_crash test_queue

# The small TLS profile (the alerts board's): one generic NIST-curve
# and one i15 big-integer implementation for ECDHE and every signature;
# the server and client tests against OpenSSL and Postfix.
build_tls_small() {
	build_cfg tls-small alldefconfig &&
		sed -i -e '/CONFIG_TLS_FULL\|CONFIG_TLS_SMALL/d' build/matrix/tls-small.config &&
		echo CONFIG_TLS_SMALL=y >>build/matrix/tls-small.config &&
		make -s $J O=build/matrix/tls-small CONFIG_SRC=build/matrix/tls-small.config \
			all test-tools
}
stage build-tls-small build_tls_small
matrix_test test-tls-small test_cfg tls-small --quick test_tls test_smarthost test_relay

# IMAP with none of its optional extensions: they must be cleanly absent.
build_imap_bare() {
	build_cfg imap-bare alldefconfig &&
		sed -i 's/^CONFIG_\(IMAP_[A-Z_]*\)=y/# CONFIG_\1 is not set/' \
			build/matrix/imap-bare.config &&
		make -s $J O=build/matrix/imap-bare CONFIG_SRC=build/matrix/imap-bare.config \
			all test-tools
}
stage build-imap-bare build_imap_bare
matrix_test test-imap-bare test_cfg imap-bare --quick test_imap test_imap_folders \
	test_imap_clients

# IMAP with tiny limits (tests/tiny-config.sh): the framing and FETCH
# rendering tests with every boundary a few bytes away.
build_tiny() {
	tests/tiny-config.sh build/matrix/tiny.config &&
		make -s $J O=build/matrix/tiny CONFIG_SRC=build/matrix/tiny.config \
			all test-tools
}
stage build-tiny build_tiny
matrix_test test-tiny test_cfg tiny test_imap_hostile test_imap_sessions

# Every value Kconfig accepts must work: one build with every int option
# at the bottom of its range and one with every int at the top (printed
# in the build log), each running the quick protocol tests. The bottom
# build keeps the counts the test servers themselves need (listeners,
# slots, connections per address); a third build has those at their
# minimum and runs the SMTP tests, which need one listener.
build_ends() { # build_ends NAME min|max [SYMBOL=VALUE...]: overrides last
	local name=$1 end=$2 cfg=build/matrix/$1.config
	shift 2
	mkdir -p build/matrix
	KCONFIG_CONFIG=$cfg $PY -m alldefconfig Kconfig >/dev/null &&
		$PY - "$cfg" "$end" "$@" <<'KCONFIG' &&
import sys
import kconfiglib
cfg, end = sys.argv[1:3]
keep = dict(a.split("=", 1) for a in sys.argv[3:])
k = kconfiglib.Kconfig("Kconfig", warn=False)
k.load_config(cfg)
for sym in k.unique_defined_syms:
    if sym.type == kconfiglib.INT and sym.ranges:
        lo, hi = sym.ranges[0][:2]
        sym.set_value(keep.get(sym.name, (lo if end == "min" else hi).str_value))
        print("%s=%s" % (sym.name, sym.str_value))
k.write_config(cfg, header="")
KCONFIG
		make -s $J TARGET=x86_64 O=build/matrix/$name CONFIG_SRC=$cfg all test-tools
}
# TARGET=x86_64 (not the host's static PIE): at their maximum the pools
# make over 2 GB of static tables, past what PIE code can address.
ENDS_TESTS="test_smtp_basic test_pop3 test_imap.py test_tls test_pools"
# What the tests count on: several listeners, connections and TLS
# sessions at once, resumption, stalled handshakes that stay open while
# they look, the failed-login, error and command counts and delays they
# check, IMAP commands and answers of real size (build-tiny covers the
# bottom of those two).
ENDS_KEEP="MAX_LISTENERS=8 MAX_CONNECTIONS=64 MAX_CONNECTIONS_PER_IP=16
	MAX_TLS_SESSIONS=16 TLS_SESSION_CACHE=32 TLS_HANDSHAKE_TIMEOUT=20
	AUTH_FAIL_MAX=10 AUTH_FAIL_DELAY_MS=1000 AUTH_FAIL_BAN=900 SMTP_MAX_ERRORS=10
	SMTP_MAX_COMMANDS=1000 IMAP_CMD_MAX=8192 IMAP_ITEM_MAX=16384"
# shellcheck disable=SC2086
stage build-ints-min build_ends ints-min min $ENDS_KEEP
# shellcheck disable=SC2086
matrix_test test-ints-min test_cfg ints-min --quick $ENDS_TESTS
stage build-ints-max build_ends ints-max max
# shellcheck disable=SC2086
matrix_test test-ints-max test_cfg ints-max --quick $ENDS_TESTS
stage build-ints-allmin build_ends ints-allmin min
matrix_test test-ints-allmin test_cfg ints-allmin --quick test_smtp_basic

matrix_end
stage_end proto-host
stage build-asan make -s $J TARGET=asan all test-tools
stage unit-asan build/asan/tests/unit
stage_bg proto-asan env POSTIE_BIN=build/asan/postie $PY tests/proto/run.py
stage fuzz tests/fuzz/fuzz.sh "${FUZZ_SECONDS:-8}"

if [ -x tests/cross.sh ]; then
	stage cross tests/cross.sh
fi
stage_end proto-asan
if [ -x tests/bench/size.sh ]; then
	stage size-budgets tests/bench/size.sh --check
fi

echo "check: $passed passed, $failed failed"
[ "$failed" = 0 ] || { echo "failed stages: ${failures[*]}"; exit 1; }
