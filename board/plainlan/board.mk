# board/plainlan: a plain-SMTP mail drop for a trusted LAN (mipsel_24kc
# router, soft-float): printers, scanners and cameras that cannot do TLS
# deliver to local mboxes. No TLS, so no BearSSL is linked.
BOARD_TARGET = mipsel_24kc
