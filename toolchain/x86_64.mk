# toolchain/x86_64.mk: x86_64 Linux, static musl via Debian's musl-gcc wrapper.
# Included by the Makefile with O = build/<target>.
# -fno-pie: Debian's gcc makes PIE code by default; postie is static non-PIE.
# APT_PKGS and APT_ARCH are read by toolchain/install-deps.sh: plain words only.
TARGET_TRIPLE = x86_64-linux-musl
CC            = musl-gcc
AR            = ar
STRIP         = strip
SIZE          = size
OBJDUMP       = objdump
READELF       = readelf
ARCH_CFLAGS   = -fno-pie
ARCH_LDFLAGS  = -static -Wl,-z,noseparate-code
QEMU          =
APT_PKGS      = musl-tools binutils
APT_ARCH      =
# Static musl: link src/core/libc_small.c's small printf/strftime/gmtime/
# getopt/getpw/setgroups/qsort/sscanf instead of musl's (the footprint goals:
# README.md, Measured figures).
LIBC_SMALL    = y
