# toolchain/host.mk: the host build is the x86_64 static musl build,
# hardened: a static PIE (ASLR) with full RELRO and the strong stack
# protector. On x86_64 these cost about 9% of the binary (make size has
# the table); router targets stay non-PIE, where the size matters more.
include toolchain/x86_64-pie.mk
ARCH_CFLAGS  += -fstack-protector-strong
