# board/lanbox: the LAN mail box with everything (armv7 Cortex-A7/A9 class
# router or SBC, 128 MB+ RAM, 16 MB+ flash or a USB disk for /var/mail):
# receives from cameras/scanners/scripts, stores in mbox, serves phones and
# desktops, relays out through a smarthost.
BOARD_TARGET = armv7
