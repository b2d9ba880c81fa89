#!/bin/bash
# tests/tiny-config.sh FILE: writes a configuration with every feature of
# the defaults and tiny IMAP limits (64-byte commands, 256-byte answer
# items), so that tests and fuzzers reach each boundary of the command
# reader and the FETCH renderer within a few bytes. Used by check.sh (a
# test build) and fuzz/fuzz.sh (the IMAP fuzz targets built again).
set -eu
cd "$(dirname "$0")/.."
out=$1
mkdir -p "$(dirname "$out")"
KCONFIG_CONFIG=$out /usr/bin/python3 -m alldefconfig Kconfig >/dev/null
sed -i -e 's/^CONFIG_IMAP_CMD_MAX=.*/CONFIG_IMAP_CMD_MAX=64/' \
	-e 's/^CONFIG_IMAP_ITEM_MAX=.*/CONFIG_IMAP_ITEM_MAX=256/' "$out"
grep -q '^CONFIG_IMAP_CMD_MAX=64$' "$out"
