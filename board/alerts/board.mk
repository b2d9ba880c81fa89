# board/alerts: an alerts-only relay on an 8 MB flash router (OpenWrt
# ath79/ramips class, mips_24kc big-endian, soft-float, 32-64 MB RAM).
# Scripts and cron hand mail to `sendmail`; the daemon queues it and relays
# it to one smarthost over TLS. Nothing listens on the network. Smallest
# useful build: few slots, small buffers, small log ring.
BOARD_TARGET = mips_24kc
# BearSSL (and udns) as MIPS16 too: a third less code, a slower handshake
# (tests/bench/handshake.sh); alerts can wait a second.
DEPS_TARGET = mips_24kc_m16
