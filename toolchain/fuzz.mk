# toolchain/fuzz.mk: clang with libFuzzer instrumentation (+ASan/UBSan) for
# tests/fuzz targets; the daemon itself is not built with it.
TARGET_TRIPLE = x86_64-linux-gnu
CC            = clang
AR            = ar
STRIP         = strip
SIZE          = size
OBJDUMP       = objdump
READELF       = readelf
OPT           = -O1 -g
STATIC        =
ARCH_CFLAGS   = -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -fno-pie
ARCH_LDFLAGS  = -fsanitize=address,undefined -no-pie
QEMU          =
APT_PKGS      = clang libclang-rt-14-dev
APT_ARCH      =
DEPS_TARGET   = x86_64
