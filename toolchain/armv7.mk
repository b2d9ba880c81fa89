# toolchain/armv7.mk: OpenWrt-style armv7 (Cortex-A7/A9), hard float (VFPv3-D16,
# the common subset of arm_cortex-a7_neon-vfpv4 and arm_cortex-a9_vfpv3-d16),
# Thumb-2, static musl via Debian's musl-dev:armhf wrapper.
# -fno-pie: Debian's gcc makes PIE code by default; postie is static non-PIE.
# APT_PKGS and APT_ARCH are read by toolchain/install-deps.sh: plain words only.
TARGET_TRIPLE = arm-linux-musleabihf
CC            = arm-linux-musleabihf-gcc
AR            = arm-linux-gnueabihf-ar
STRIP         = arm-linux-gnueabihf-strip
SIZE          = arm-linux-gnueabihf-size
OBJDUMP       = arm-linux-gnueabihf-objdump
READELF       = arm-linux-gnueabihf-readelf
ARCH_CFLAGS   = -march=armv7-a -mthumb -mfpu=vfpv3-d16 -mfloat-abi=hard -fno-pie
ARCH_LDFLAGS  = -static
QEMU          = qemu-arm-static
APT_PKGS      = gcc-arm-linux-gnueabihf binutils-arm-linux-gnueabihf musl-dev:armhf qemu-user-static
APT_ARCH      = armhf
# Static musl: link src/core/libc_small.c's small printf/strftime/gmtime/
# getopt/getpw/setgroups/qsort/sscanf instead of musl's (the footprint goals:
# README.md, Measured figures).
LIBC_SMALL    = y
