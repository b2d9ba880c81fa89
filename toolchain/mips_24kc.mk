# toolchain/mips_24kc.mk: OpenWrt mips_24kc (MIPS32r2 24Kc, big-endian), SOFT-FLOAT
# like OpenWrt's userland. Debian has no soft-float musl for MIPS, so
# toolchain/deps.sh builds one from Debian's musl source into build/mips_24kc/sysroot,
# with a musl-gcc wrapper whose specs link its lib/libsoftfp.a
# (soft-fp from Debian's gcc-12 source) before libgcc: Debian's MIPS libgcc
# float helpers are hard-float code and give wrong results with -msoft-float.
# The sysroot is per target, not per output dir: board builds (O=build/board-B)
# share it, like build/mips_24kc/deps. abspath: deps.sh matches CC against its O.
# -fno-pie: Debian's gcc makes PIE code by default; postie is static non-PIE.
# -mno-abicalls: non-PIC code everywhere (musl, BearSSL, udns, postie):
# direct calls, no GOT, no $gp set-up; a static binary needs none of it.
# About 12% less code (mips_24kc allnoconfig 105,864 -> 93,576 bytes for
# postie's objects alone). --no-warn-mismatch: libgcc's integer helpers
# stay abicalls (Debian's build), which ld would warn about at every link.
# APT_PKGS and APT_ARCH are read by toolchain/install-deps.sh: plain words only.
TARGET_TRIPLE = mips-linux-musl
CC            = $(abspath build/mips_24kc/sysroot/bin/musl-gcc)
AR            = mips-linux-gnu-ar
STRIP         = mips-linux-gnu-strip
SIZE          = mips-linux-gnu-size
OBJDUMP       = mips-linux-gnu-objdump
READELF       = mips-linux-gnu-readelf
ARCH_CFLAGS   = -march=24kc -msoft-float -fno-pie -mno-abicalls
# DEPS_CFLAGS: for the libraries only (toolchain/deps.sh: musl, udns,
# BearSSL, soft-fp). Non-abicalls MIPS code makes a tail call a `j`, which
# cannot switch to MIPS16 code (ld: "jump between ISA modes"); with
# -minterlink-compressed gcc makes such calls a `jal` (ld turns it into
# `jalx` where the callee is MIPS16), so MIPS16 code may define what the
# libraries call: postie's libc_small (printf family, strtol, malloc...).
DEPS_CFLAGS   = -minterlink-compressed
# MUSL_TRY_CFLAGS: musl's C sources as MIPS16 where they compile so
# (toolchain/deps.sh; a system call's inline assembly does not): musl's
# part of allnoconfig 10,866 -> 8,598 bytes on mips_24kc.
MUSL_TRY_CFLAGS = -mips16
# common-page-size=16: ld's MIPS script otherwise starts the data segment
# (92 bytes on the alerts board) on a page of its own in the file, after up
# to 4 KiB of padding; now it follows the code, on the same file page
# (mapped twice, as on x86). -3,200 bytes on the alerts board.
ARCH_LDFLAGS  = -static -msoft-float -Wl,--no-warn-mismatch -Wl,-z,common-page-size=16
QEMU          = qemu-mips-static
APT_PKGS      = gcc-mips-linux-gnu binutils-mips-linux-gnu qemu-user-static
APT_ARCH      =
# Static musl: link src/core/libc_small.c's small printf/strftime/gmtime/
# getopt/getpw/setgroups/qsort/sscanf instead of musl's (the footprint goals:
# README.md, Measured figures).
LIBC_SMALL    = y
# postie's own objects (not musl, udns): MIPS16 halves the code of the
# control-heavy parts; so do BearSSL's handshake, X.509 and record-layer
# members (toolchain/bearssl_mips16.mk, built by toolchain/deps.sh);
# BearSSL's crypto stays in 32-bit MIPS.
OBJ_CFLAGS    = -mips16
include toolchain/bearssl_mips16.mk
