# toolchain/aarch64.mk: OpenWrt-style aarch64 (Cortex-A53 and up), static musl
# via Debian's musl-dev:arm64 wrapper.
# -fno-pie: Debian's gcc makes PIE code by default; postie is static non-PIE.
# APT_PKGS and APT_ARCH are read by toolchain/install-deps.sh: plain words only.
TARGET_TRIPLE = aarch64-linux-musl
CC            = aarch64-linux-musl-gcc
AR            = aarch64-linux-gnu-ar
STRIP         = aarch64-linux-gnu-strip
SIZE          = aarch64-linux-gnu-size
OBJDUMP       = aarch64-linux-gnu-objdump
READELF       = aarch64-linux-gnu-readelf
ARCH_CFLAGS   = -march=armv8-a -mtune=cortex-a53 -fno-pie
ARCH_LDFLAGS  = -static
QEMU          = qemu-aarch64-static
APT_PKGS      = gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu musl-dev:arm64 qemu-user-static
APT_ARCH      = arm64
# Static musl: link src/core/libc_small.c's small printf/strftime/gmtime/
# getopt/getpw/setgroups/qsort/sscanf instead of musl's (the footprint goals:
# README.md, Measured figures).
LIBC_SMALL    = y
