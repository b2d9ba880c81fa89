# toolchain/mips_24kc_m32.mk: BearSSL (and udns) for mips_24kc all in
# 32-bit MIPS, without toolchain/bearssl_mips16.mk's MIPS16 members. Not
# a target of its own: tests/bench/handshake.sh names it as DEPS_TARGET
# to time a handshake with no MIPS16 in BearSSL, against mips_24kc's
# default (the members bearssl_mips16.mk names in MIPS16) and
# mips_24kc_m16.mk (all of BearSSL in MIPS16, the alerts board's).
include toolchain/mips_24kc.mk
BEARSSL_MIPS16 =
