# toolchain/mips_24kc_m16.mk: the libraries postie links (BearSSL, udns)
# for mips_24kc, compiled as MIPS16: about a third less code for a slower
# handshake (tests/bench/handshake.sh measures both). Not a target of its
# own: a board where a handshake's speed does not matter names it as
# DEPS_TARGET (board/alerts/board.mk), and the Makefile builds mips_24kc's
# compiler and musl first (a DEPS_TARGET named TARGET_x is a variant of
# TARGET); toolchain/deps.sh then builds into build/mips_24kc_m16/deps
# with this file's ARCH_CFLAGS.
include toolchain/mips_24kc.mk
ARCH_CFLAGS   += -mips16
# All of BearSSL is MIPS16 here: no member to compile again.
BEARSSL_MIPS16 =
