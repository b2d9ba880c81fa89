#!/bin/sh
# toolchain/deps.sh TARGET: build the libraries postie links, for TARGET, from
# Debian's source packages, into build/TARGET/deps/{include,lib}:
#   libbearssl.a + bearssl*.h, libudns.a + udns.h.
# For targets whose CC lives in build/TARGET (the soft-float MIPS ones) it
# first builds the toolchain runtime into build/TARGET/sysroot: musl built
# with the target flags, libsoftfp.a (gcc-12's libgcc/soft-fp), a copy of
# the cross libgcc.a without its hard-float members, and a musl-gcc wrapper
# whose specs link them in that order.
# Sources are fetched once with `apt-get source --download-only` into
# build/src/ and shared by all targets. A stamp makes a second run a no-op;
# it is keyed on this script and the target's .mk, so editing either rebuilds.
# Needs what toolchain/install-deps.sh TARGET installs (incl. a deb-src list).
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
T=${1:?usage: toolchain/deps.sh TARGET}
[ -f "toolchain/$T.mk" ] || { echo "deps: no toolchain/$T.mk" >&2; exit 1; }
# A build system that brings its own toolchain and libraries (toolchain/openwrt.mk)
# passes DEPS_DIR itself.
grep -qE '^EXTERNAL_TOOLCHAIN[ \t]*=[ \t]*yes' "toolchain/$T.mk" && exit 0
# A calling make passes its flags and command-line variables in the
# environment; they must not leak into the makes run here.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES GNUMAKEFLAGS CFLAGS LDFLAGS

O=$ROOT/build/$T
SRC=$ROOT/build/src
DEPS=$O/deps
LOG=$O/log
JOBS=$(nproc 2>/dev/null || echo 2)

die() { echo "deps: $T: $*" >&2; exit 1; }

# mkvar NAME: NAME as toolchain/$T.mk defines it, with $(O) absolute.
mkvar() {
	printf 'include toolchain/%s.mk\n$(info $(%s))\nall: ;@:\n' "$T" "$1" |
		make -s --no-print-directory -f - O="$O" all
}

key=$( { cat toolchain/deps.sh "toolchain/$T.mk"
	sed -n 's|^include[ \t]*\(toolchain/.*\.mk\)[ \t]*$|\1|p' "toolchain/$T.mk" | xargs -r cat
	echo "$O"; } | md5sum | cut -d' ' -f1)
[ "$(cat "$DEPS/.stamp" 2>/dev/null)" = "$key" ] &&
	[ -f "$DEPS/lib/libbearssl.a" ] && [ -f "$DEPS/lib/libudns.a" ] && exit 0

command -v make >/dev/null && command -v dpkg-source >/dev/null ||
	die "make or dpkg-source missing: run toolchain/install-deps.sh $T"
TRIPLE=$(mkvar TARGET_TRIPLE)
CC=$(mkvar CC)
AR=$(mkvar AR)
ARCH_CFLAGS=$(mkvar ARCH_CFLAGS)
# The libraries' own flags (the MIPS targets: -minterlink-compressed).
DEPS_CFLAGS=$(mkvar DEPS_CFLAGS)
CROSS=${AR%ar}		# binutils prefix, e.g. mips-linux-gnu-
# What the Makefile uses for postie itself (ARCH_CFLAGS has -fno-pie),
# and DEPS_CFLAGS.
CFLAGS_DEP="-Os -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables $ARCH_CFLAGS $DEPS_CFLAGS"
case $CC in "$O"/*) OWN_LIBC=1 ;; *) OWN_LIBC= ;; esac

if [ -n "$OWN_LIBC" ]; then
	command -v "${CROSS}gcc" >/dev/null || die "no ${CROSS}gcc: run toolchain/install-deps.sh $T"
else
	command -v "$CC" >/dev/null || die "no $CC: run toolchain/install-deps.sh $T"
fi
command -v "$AR" >/dev/null || die "no $AR: run toolchain/install-deps.sh $T"

rm -rf "$DEPS" "$LOG" "$O/src"
mkdir -p "$DEPS/include" "$DEPS/lib" "$LOG" "$O/src" "$SRC"

# step NAME CMD...: run CMD with output to build/T/log/NAME.log; on failure
# show the end of the log and stop.
step() {
	_n=$1; shift
	if ! "$@" >"$LOG/$_n.log" 2>&1; then
		tail -n 25 "$LOG/$_n.log" >&2
		die "$_n failed (log: build/$T/log/$_n.log)"
	fi
}

# newest NAME: path of the newest downloaded .dsc of source package NAME.
newest() { ls "$SRC/$1"_*.dsc 2>/dev/null | sort -V | tail -n 1; }

# fetch PKG...: download source packages not yet in build/src. The lock
# serialises targets built in parallel.
fetch() {
	want=
	for p in "$@"; do [ -n "$(newest "$p")" ] || want="$want $p"; done
	[ -z "$want" ] && return 0
	echo "deps: $T: fetch source:$want"
	# shellcheck disable=SC2086
	(cd "$SRC" && flock .lock apt-get source -q --download-only $want) >"$LOG/fetch.log" 2>&1 || {
		tail -n 15 "$LOG/fetch.log" >&2
		die "apt-get source failed: is there a deb-src list? run toolchain/install-deps.sh $T"
	}
}

# unpack PKG: a fresh, patched copy of PKG's source in build/T/src/PKG.
unpack() {
	rm -rf "$O/src/$1"
	step "unpack-$1" dpkg-source -x "$(newest "$1")" "$O/src/$1"
}

# soft_fp: gcc-12's libgcc/soft-fp and the MIPS sfp-machine.h, extracted
# once into build/src/softfp; the ~90 MB gcc tarballs are deleted after.
soft_fp() {
	[ -f "$SRC/softfp/.done" ] && return 0
	fetch gcc-12
	echo "deps: extract soft-fp from gcc-12 source"
	orig=$(ls "$SRC"/gcc-12_*.orig.tar.* | sort -V | tail -n 1)
	inner=$(tar -tf "$orig" | grep -E '^[^/]+/gcc-[0-9.]+(-dfsg)?\.tar\.xz$' | head -n 1)
	[ -n "$inner" ] || die "no gcc tarball inside $orig"
	rm -rf "$SRC/softfp"
	mkdir -p "$SRC/softfp"
	tar -xOf "$orig" "$inner" | tar -xJf - -C "$SRC/softfp" --strip-components=2 \
		--wildcards '*/libgcc/soft-fp/*' '*/libgcc/config/mips/sfp-machine.h' \
		'*/include/longlong.h' ||
		die "extracting soft-fp from $orig failed"
	[ -f "$SRC/softfp/soft-fp/soft-fp.h" ] && [ -f "$SRC/softfp/config/mips/sfp-machine.h" ] &&
		[ -f "$SRC/softfp/longlong.h" ] ||
		die "soft-fp sources missing after extraction"
	rm -f "$SRC"/gcc-12_*
	touch "$SRC/softfp/.done"
}

fetch bearssl udns
[ -z "$OWN_LIBC" ] || fetch musl

if [ -n "$OWN_LIBC" ]; then
	SYS=$O/sysroot
	rm -rf "$SYS"
	echo "deps: $T: musl ($ARCH_CFLAGS $DEPS_CFLAGS; C sources tried with: $(mkvar MUSL_TRY_CFLAGS))"
	unpack musl
	# ARCH_CFLAGS has -mno-abicalls (non-PIC code: direct calls, no GOT,
	# about a tenth less code), which gcc refuses next to -fPIC: musl's
	# PIC start files (rcrt1.o, Scrt1.o, never linked by postie) keep
	# abicalls.
	sed -i 's/^\(obj\/crt\/Scrt1\.o obj\/crt\/rcrt1\.o: CFLAGS_ALL += -fPIC\)$/\1 -mabicalls/' \
		"$O/src/musl/Makefile"
	grep -q 'rcrt1.o: CFLAGS_ALL += -fPIC -mabicalls' "$O/src/musl/Makefile" ||
		die "could not edit musl's Makefile for its PIC start files"
	# MUSL_TRY_CFLAGS (the MIPS targets: -mips16): each of musl's C
	# sources is compiled with them first, and without them where that
	# fails (a system call's inline assembly has no MIPS16 form). Not the
	# start-up code (crt/: top-level assembly), nor the thread, signal,
	# setjmp and process code, which musl's assembly jumps into. The
	# musl-gcc wrapper, which compiles everything else, calls gcc itself.
	musl_cc=${CROSS}gcc
	try=$(mkvar MUSL_TRY_CFLAGS)
	if [ -n "$try" ]; then
		musl_cc=$O/src/musl-cc
		cat >"$musl_cc" <<EOF
#!/bin/sh
# Generated by toolchain/deps.sh for $T: musl's compiler, MUSL_TRY_CFLAGS first.
src=
for a; do case \$a in *.c) src=\$a ;; esac; done
case \$src in
''|*crt/*|*ldso/*|*src/thread/*|*src/signal/*|*src/setjmp/*|*src/process/*)
	exec ${CROSS}gcc "\$@" ;;
esac
${CROSS}gcc $try "\$@" 2>/dev/null || exec ${CROSS}gcc "\$@"
EOF
		chmod +x "$musl_cc"
	fi
	(cd "$O/src/musl" &&
		step musl-configure ./configure --prefix="$SYS" --syslibdir="$SYS/lib" \
			--target="$TRIPLE" --disable-shared --enable-wrapper=gcc \
			CROSS_COMPILE="$CROSS" CC="${CROSS}gcc" \
			CFLAGS="-Os -ffunction-sections -fdata-sections $ARCH_CFLAGS $DEPS_CFLAGS" &&
		step musl-make make -j"$JOBS" CC="$musl_cc" WRAPCC_GCC="${CROSS}gcc" install)

	soft_fp
	echo "deps: $T: libsoftfp.a"
	sf=$SRC/softfp
	mkdir -p "$O/src/softfp"
	for f in addsf3 subsf3 mulsf3 divsf3 negsf2 eqsf2 gesf2 lesf2 unordsf2 \
		adddf3 subdf3 muldf3 divdf3 negdf2 eqdf2 gedf2 ledf2 unorddf2 \
		fixsfsi fixdfsi fixsfdi fixdfdi fixunssfsi fixunsdfsi fixunssfdi fixunsdfdi \
		floatsisf floatsidf floatdisf floatdidf floatunsisf floatunsidf \
		floatundisf floatundidf extendsfdf2 truncdfsf2; do
		step "softfp-$f" "$CC" $CFLAGS_DEP -I"$sf/config/mips" \
			-I"$sf/soft-fp" -I"$sf" -c "$sf/soft-fp/$f.c" -o "$O/src/softfp/$f.o"
	done
	step softfp-ar "$AR" rcs "$SYS/lib/libsoftfp.a" "$O/src/softfp"/*.o

	# Debian's MIPS libgcc.a is a hard-float build: keep libgcc's integer
	# helpers, drop every member that has FPU code (a float helper
	# libsoftfp.a lacks is then a link error, not silent bad math), and
	# drop the FP-ABI notes so ld does not warn about the mix. The helpers
	# postie links (64-bit shifts and divisions) are leaf functions that
	# never touch $gp, so their abicalls code runs when called from
	# non-abicalls code (the target's ld flags silence the mix warning).
	echo "deps: $T: soft-float libgcc.a"
	gcc_lib=$("${CROSS}gcc" $ARCH_CFLAGS -print-libgcc-file-name)
	fpu='[[:space:]](l[wd]x?c1|s[wd]x?c1|[ls]uxc1|m[ft]h?c1|[ct]fc1|ctc1|bc1[ft]l?|(add|sub|mul|div|abs|neg|mov|sqrt|recip|rsqrt|n?madd|n?msub|mov[nztf])\.(s|d|ps)|c\.[a-z]+\.[sd]|cvt\.[a-z]+\.[a-z]+|(trunc|round|ceil|floor)\.[wl]\.[sd])[[:space:]]'
	"${CROSS}objdump" -d "$gcc_lib" | awk -v re="$fpu" '
		/file format/ { m = $1; sub(/:$/, "", m); next }
		$0 ~ re { bad[m] = 1 }
		END { for (k in bad) print k }' >"$O/src/libgcc-fpu-members.txt"
	strip_fp="-R .gnu.attributes -R .MIPS.abiflags"
	step libgcc-copy "${CROSS}objcopy" $strip_fp "$gcc_lib" "$SYS/lib/libgcc.a"
	[ ! -s "$O/src/libgcc-fpu-members.txt" ] ||
		step libgcc-prune xargs "$AR" d "$SYS/lib/libgcc.a" <"$O/src/libgcc-fpu-members.txt"

	# Point musl's specs at these copies and at the non-PIC start file
	# (postie is static, not PIE), without gcc's crtbeginS.o/crtendS.o:
	# C on musl needs neither (init_array runs constructors), and their
	# PIC abicalls code crashes without the $gp that crt1.o does not set
	# up. Each edit is checked.
	specs=$SYS/lib/musl-gcc.specs
	sed -i -e "s|^libgcc\\.a%s |$SYS/lib/libsoftfp.a $SYS/lib/libgcc.a |" \
		-e "s|$SYS/lib/Scrt1\\.o|$SYS/lib/crt1.o|" \
		-e "s| crtbeginS\\.o%s||" -e "s|^crtendS\\.o%s ||" "$specs"
	for w in libsoftfp.a libgcc.a crt1.o; do
		grep -q "$SYS/lib/$w" "$specs" || die "could not edit $specs for $w"
	done
	! grep -q crtbegin "$specs" || die "could not edit $specs: crtbeginS.o left"
	[ -x "$CC" ] || die "musl build did not produce $CC"
fi

echo "deps: $T: BearSSL"
unpack bearssl
cat >"$O/src/bearssl/conf/postie.mk" <<EOF
# Generated by toolchain/deps.sh for $T.
include conf/Unix.mk
CC = $CC
CFLAGS = -W -Wall $CFLAGS_DEP
AR = $AR
LD = $CC
LDDLL = $CC
EOF
(cd "$O/src/bearssl" && step bearssl-make make -j"$JOBS" CONF=postie lib)
# The members toolchain/bearssl_mips16.mk names (MIPS targets): compiled
# again as MIPS16, in the archive in place of their 32-bit twins.
M16=$(mkvar BEARSSL_MIPS16)
if [ -n "$M16" ]; then
	echo "deps: $T: BearSSL: $(echo "$M16" | wc -w) members as MIPS16"
	(cd "$O/src/bearssl" && for m in $M16; do
		src=$(ls src/*/"$m".c src/"$m".c 2>/dev/null | head -n 1)
		[ -n "$src" ] || die "BearSSL has no $m.c (toolchain/bearssl_mips16.mk)"
		step "bearssl-m16-$m" "$CC" -W -Wall $CFLAGS_DEP -mips16 -Isrc -Iinc \
			-c "$src" -o "build/obj/$m.o"
	done &&
		step bearssl-m16-ar "$AR" r build/libbearssl.a $(printf 'build/obj/%s.o ' $M16))
fi
cp "$O/src/bearssl/build/libbearssl.a" "$DEPS/lib/"
cp "$O/src/bearssl/inc"/*.h "$DEPS/include/"

echo "deps: $T: udns"
unpack udns
# configure probes with the host compiler (only for HAVE_* defines); the
# library is then compiled with the target's musl compiler (64-bit time_t).
(cd "$O/src/udns" && step udns-configure env CC=gcc ./configure &&
	step udns-make make staticlib CC="$CC" AR="$AR" CFLAGS="$CFLAGS_DEP")
cp "$O/src/udns/libudns.a" "$DEPS/lib/"
cp "$O/src/udns/udns.h" "$DEPS/include/"

echo "$key" >"$DEPS/.stamp"
echo "deps: $T: done: build/$T/deps"
