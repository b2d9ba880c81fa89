# toolchain/host.mk: the host build is the x86_64 static musl build.
include toolchain/x86_64.mk
