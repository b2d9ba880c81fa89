# toolchain/fuzz-fast.mk: clang with libFuzzer instrumentation and UBSan but
# no ASan: the session fuzz targets at several times the speed (see
# tests/fuzz/fuzz.sh: the ASan build then replays what they found).
TARGET_TRIPLE = x86_64-linux-gnu
CC            = clang
AR            = ar
STRIP         = strip
SIZE          = size
OBJDUMP       = objdump
READELF       = readelf
OPT           = -O1 -g
STATIC        =
ARCH_CFLAGS   = -fsanitize=fuzzer-no-link,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -fno-pie
ARCH_LDFLAGS  = -fsanitize=undefined -no-pie
QEMU          =
APT_PKGS      = clang libclang-rt-14-dev
APT_ARCH      =
DEPS_TARGET   = x86_64
