# toolchain/x86_64-pie.mk: the x86_64 build as a static PIE (ASLR for a
# static binary): code compiled -fPIE, linked with musl's self-relocating
# rcrt1.o instead of the non-PIE start files, and full RELRO. Used by
# `make size` to measure what the mitigation costs and by `make check` to
# run the protocol tests on it. Debian's musl-gcc specs know no
# -static-pie, so the start files are named here, in the order the
# .init/.fini sections need: crti and crtbegin before every object, crtend
# and crtn after. -Wl,-static: without it the wrapper's -lc would pick
# musl's shared libc.
include toolchain/x86_64.mk
MUSL_LIB      = /usr/lib/x86_64-linux-musl
ARCH_CFLAGS   = -fPIE
STATIC        = -static-pie
ARCH_LDFLAGS  = -Wl,-static -Wl,--no-dynamic-linker -Wl,-z,text -nostartfiles -Wl,-z,relro,-z,now \
	-Wl,-z,noseparate-code
LD_START      = $(MUSL_LIB)/rcrt1.o $(MUSL_LIB)/crti.o $(shell gcc -print-file-name=crtbeginS.o)
LD_END        = $(shell gcc -print-file-name=crtendS.o) $(MUSL_LIB)/crtn.o
