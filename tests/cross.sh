#!/bin/bash
# tests/cross.sh [--full] — the cross stage of `make check`:
#   - builds every toolchain target (make TARGET=<t>) and every board
#     (make BOARD=<b>), installing and building what they need;
#   - checks every binary is static (no PT_INTERP), the MIPS ones soft-float
#     (readelf -A) with no FPU instruction (objdump), and that each board's
#     `postie -V` shows the features its defconfig chose;
#   - runs the unit tests and a fixed set of protocol test files (--quick;
#     CROSS_PROTO) for armv7 (ARM, little-endian) and mips_24kc (big-endian
#     MIPS) under qemu-user;
#   - runs board/openwrt/test-uci2conf.sh with the x86_64 binary and, under
#     qemu, the alerts and plainlan board binaries (builds without AUTH/TLS);
#   - runs the alerts board's own path under qemu: sendmail, and
#     test_smarthost with no listener (sendmail -> maildrop -> queue ->
#     Postfix smarthost over TLS with certificate checks and a login).
# --full (`make check-cross`): every protocol test file under qemu instead
# of the fixed set. No stage has a time budget: each runs to its end, so a
# busy machine makes the stage slower, never failed.
# One line per stage, logs in build/cross/, a size table, and last:
# "cross: N passed, N failed" (exit 1 on any failure).
set -u
cd "$(dirname "$0")/.." || exit 1
export PYTHONDONTWRITEBYTECODE=1
PY=/usr/bin/python3
J=-j2
# CROSS_TARGETS, CROSS_BOARDS, CROSS_QEMU_TARGETS narrow a run by hand
# (e.g. CROSS_TARGETS=armv7 CROSS_BOARDS= CROSS_QEMU_TARGETS=armv7).
TARGETS=${CROSS_TARGETS-x86_64 armv7 aarch64 mips_24kc mipsel_24kc}
BOARDS=${CROSS_BOARDS-$(for b in board/*/board.mk; do basename "$(dirname "$b")"; done)}
BOARD_DIRS=$(for b in $BOARDS; do printf 'board-%s ' "$b"; done)
QEMU_TARGETS=${CROSS_QEMU_TARGETS-armv7 mips_24kc}
# The protocol files run under qemu by `make check`: SMTP, TLS (BearSSL on
# that CPU) and POP3 over the mailbox index (byte order of the index).
CROSS_PROTO=${CROSS_PROTO:-test_smtp_basic test_tls test_pop3}
[ "${1:-}" = --full ] && CROSS_PROTO=
log=build/cross
mkdir -p "$log"
passed=0 failed=0 failures=()
t_start=$SECONDS

# stage NAME CMD...: runs CMD to its end, output to build/cross/NAME.log.
stage() {
	local name=$1 t0=$SECONDS
	shift
	if "$@" >"$log/$name.log" 2>&1; then
		passed=$((passed + 1))
		echo "ok     $name ($((SECONDS - t0)) s) $(grep -E '[0-9]+ passed' "$log/$name.log" | tail -1)"
		return 0
	fi
	failed=$((failed + 1))
	failures+=("$name")
	echo "FAILED $name ($((SECONDS - t0)) s): see $log/$name.log"
	tail -15 "$log/$name.log" | sed 's/^/    /'
	return 1
}

# tcvar TARGET NAME: NAME as toolchain/TARGET.mk defines it.
tcvar() {
	# shellcheck disable=SC2016 # make syntax, not shell
	printf 'include toolchain/%s.mk\n$(info $(%s))\nall: ;@:\n' "$1" "$2" |
		make -s --no-print-directory -f - O="build/$1" all
}

# bin_dir T|board-B -> the toolchain target of a build directory.
target_of() {
	case $1 in
	board-*) sed -n 's/^BOARD_TARGET[ \t]*[:?]*=[ \t]*//p' "board/${1#board-}/board.mk" ;;
	*) echo "$1" ;;
	esac
}

# MIPS FPU instructions (the list toolchain/deps.sh uses on libgcc).
FPU_RE='[[:space:]](l[wd]x?c1|s[wd]x?c1|[ls]uxc1|m[ft]h?c1|[ct]fc1|ctc1|bc1[ft]l?|(add|sub|mul|div|abs|neg|mov|sqrt|recip|rsqrt|n?madd|n?msub|mov[nztf])\.(s|d|ps)|c\.[a-z]+\.[sd]|cvt\.[a-z]+\.[a-z]+|(trunc|round|ceil|floor)\.[wl]\.[sd])[[:space:]]'

# check_binary DIR: static; MIPS: soft-float ABI and no FPU instruction.
check_binary() {
	local dir=$1 t bin readelf objdump n
	t=$(target_of "$dir")
	bin=build/$dir/postie
	readelf=$(tcvar "$t" READELF)
	objdump=$(tcvar "$t" OBJDUMP)
	[ -x "$bin" ] || { echo "$bin: missing"; return 1; }
	file "$bin"
	if "$readelf" -lW "$bin" | grep -q 'INTERP'; then
		echo "$bin: has a program interpreter: not static"
		return 1
	fi
	case $t in mips*) ;; *) return 0 ;; esac
	"$readelf" -A "$bin" | grep -E 'FP ABI' | tee "$log/$dir.fpabi"
	grep -q 'Soft float' "$log/$dir.fpabi" || { echo "$bin: not soft-float"; return 1; }
	# The unstripped twin keeps the symbols that mark MIPS16 functions;
	# without them objdump decodes MIPS16 as MIPS32 and sees FPU opcodes.
	local dis=$bin
	[ -f "$bin.unstripped" ] && dis=$bin.unstripped
	# Only the mnemonic column: MIPS16 literal pools print as raw hex.
	n=$("$objdump" -d "$dis" | awk -F'\t' 'NF >= 3 { print "\t" $3 "\t" }' |
		grep -cE "$FPU_RE")
	if [ "$n" != 0 ]; then
		"$objdump" -d "$dis" | awk -F'\t' 'NF >= 3' | grep -E "$FPU_RE" | head
		echo "$bin: $n FPU instructions"
		return 1
	fi
	# Non-abicalls code (toolchain/mips_24kc.mk) keeps $gp fixed for small
	# data; abicalls code that computes $gp from $t9 (musl's assembly
	# pipe(), PIC objects) would break it when called with jal.
	n=$("$objdump" -d "$dis" | grep -cE '[[:space:]]addu[[:space:]]+gp,gp,t9')
	if [ "$n" != 0 ]; then
		"$objdump" -d "$dis" | grep -E '^[0-9a-f]+ <|addu[[:space:]]+gp,gp,t9' |
			grep -B1 'gp,gp,t9' | head
		echo "$bin: $n abicalls \$gp set-ups in non-abicalls code"
		return 1
	fi
	echo "$bin: static, soft-float, no FPU instructions, no abicalls \$gp set-up"
}

# features DIR: the feature words of build/DIR/postie -V, under qemu.
features() {
	local t qemu
	t=$(target_of "$1")
	qemu=$(tcvar "$t" QEMU)
	$qemu "build/$1/postie" -V | sed -n 's/^features: *//p'
}

# check_features BOARD: each bool the board's .config turns off is absent
# from -V, and TLS on or off as configured.
check_features() {
	local b=$1 f cfg=build/board-$1/.config
	f=" $(features "board-$b") "
	echo "board $b: features:$f"
	[ -n "${f// /}" ] || { echo "no -V output"; return 1; }
	want() { # want SYMBOL WORD
		if grep -q "^CONFIG_$1=y" "$cfg"; then
			case $f in *" $2 "*) ;; *) echo "CONFIG_$1=y but no '$2'"; return 1 ;; esac
		else
			case $f in *" $2 "*) echo "CONFIG_$1 off but '$2' shown"; return 1 ;; esac
		fi
	}
	want TLS tls && want AUTH auth && want IPV6 ipv6 && want ALIASES aliases &&
		want SYSLOG syslog && want SMTP_SERVER smtp
}

uci2conf() { # uci2conf DIR: board/openwrt/test-uci2conf.sh with that binary
	local t
	t=$(target_of "$1")
	POSTIE_BIN=build/$1/postie POSTIE_QEMU=$(tcvar "$t" QEMU) board/openwrt/test-uci2conf.sh
}

proto() { # proto T: CROSS_PROTO (or all) against build/T/postie under qemu
	# shellcheck disable=SC2086 # CROSS_PROTO is a list of file names
	POSTIE_BIN=build/$1/postie POSTIE_QEMU=$(tcvar "$1" QEMU) \
		$PY tests/proto/run.py --quick $CROSS_PROTO
}

# alerts_path: the alerts board's tests under qemu; test_smarthost must
# have run (Postfix here), not only skipped.
alerts_path() {
	local out rc
	# shellcheck disable=SC2046 # QEMU is one word
	out=$(POSTIE_BIN=build/board-alerts/postie \
		POSTIE_QEMU=$(tcvar "$(target_of board-alerts)" QEMU) \
		$PY tests/proto/run.py --quick test_sendmail test_smarthost 2>&1)
	rc=$?
	echo "$out"
	[ "$rc" = 0 ] || return 1
	echo "$out" | grep -qE '^test_smarthost\.py +ok +[1-9][0-9]* passed' ||
		{ echo "test_smarthost did not run"; return 1; }
}

unit() { # unit T: build and run the unit tests under qemu
	make -s $J TARGET="$1" "build/$1/tests/unit" && $(tcvar "$1" QEMU) "build/$1/tests/unit"
}

# --- builds -------------------------------------------------------------
# Later stages use only what built now, never a binary left from before.
BUILT=" "
built() { case $BUILT in *" $1 "*) return 0 ;; esac; return 1; }
for t in $TARGETS; do
	stage "build-$t" make -s $J TARGET="$t" && BUILT="$BUILT$t "
done
for b in $BOARDS; do
	stage "build-board-$b" make -s $J BOARD="$b" && BUILT="${BUILT}board-$b "
done

# --- binaries -----------------------------------------------------------
for d in $TARGETS $BOARD_DIRS; do
	built "$d" && stage "static-$d" check_binary "$d"
done
for b in $BOARDS; do
	built "board-$b" && stage "features-$b" check_features "$b"
done

# --- tests under qemu ---------------------------------------------------
built x86_64 && stage uci2conf-x86_64 uci2conf x86_64
for b in alerts plainlan; do
	built "board-$b" && stage "uci2conf-board-$b" uci2conf "board-$b"
done
built board-alerts && stage proto-board-alerts alerts_path
for t in $QEMU_TARGETS; do
	built "$t" || continue
	stage "unit-$t" unit "$t"
	stage "proto-$t" proto "$t"
done

# --- sizes --------------------------------------------------------------
echo "sizes (stripped, static; text+data+bss from size(1)):"
for d in $TARGETS $BOARD_DIRS; do
	bin=build/$d/postie
	built "$d" || continue
	sz=$($(tcvar "$(target_of "$d")" SIZE) "$bin" 2>/dev/null | awk 'NR == 2 { print $1 "+" $2 "+" $3 }')
	printf '  %-22s %8d bytes  %s\n' "$d" "$(stat -c %s "$bin")" "$sz"
done | tee "$log/sizes.txt"

echo "cross: run time $((SECONDS - t_start)) s"
[ "$failed" = 0 ] || echo "cross: failed stages: ${failures[*]}"
echo "cross: $passed passed, $failed failed"
[ "$failed" = 0 ]
