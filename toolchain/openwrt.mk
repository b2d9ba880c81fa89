# toolchain/openwrt.mk: building inside the OpenWrt build system (buildroot or
# SDK), from board/openwrt/Makefile. OpenWrt owns the compiler, the C library
# and the flags, so this file only holds defaults: the package passes the real
# values on make's command line, which overrides every line below:
#   make TARGET=openwrt $(TARGET_CONFIGURE_OPTS)    (CC AR STRIP OBJDUMP ... CROSS)
#        ARCH_CFLAGS="$(TARGET_CFLAGS) $(TARGET_CPPFLAGS)"
#        ARCH_LDFLAGS="$(TARGET_LDFLAGS)" STATIC= DEPS_DIR=<bearssl prefix>
#        CONFIG_SRC=<generated defconfig> O=<build dir>
# EXTERNAL_TOOLCHAIN = yes makes toolchain/install-deps.sh and deps.sh do
# nothing: no apt, no Debian sources; BearSSL comes from the package's own
# download (OpenWrt has no BearSSL package) and udns from OpenWrt's libudns.
# Linked dynamically against OpenWrt's musl (STATIC= above): libc.so is on
# every OpenWrt image already, so a static copy would only cost flash.
EXTERNAL_TOOLCHAIN = yes
CROSS        ?=
TARGET_TRIPLE = $(patsubst %-,%,$(notdir $(CROSS)))
CC            = $(CROSS)gcc
AR            = $(CROSS)ar
STRIP         = $(CROSS)strip
SIZE          = $(CROSS)size
OBJDUMP       = $(CROSS)objdump
READELF       = $(CROSS)readelf
ARCH_CFLAGS   =
ARCH_LDFLAGS  =
QEMU          =
APT_PKGS      =
APT_ARCH      =
