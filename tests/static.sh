#!/bin/sh
# tests/static.sh — static analysis of src/ with cppcheck (make check's
# "static" stage). Any finding fails the stage. A false positive is
# silenced where it stands with `// cppcheck-suppress ID` and a comment
# saying why it is false, so each one is reviewed in place; there is no
# suppression list elsewhere. Needs a configured host build (for the
# generated autoconf.h), which make check has made before this stage.
set -eu
cd "$(dirname "$0")/.."
cfg=${1:-build/host/include/autoconf.h}
[ -f "$cfg" ] || { echo "static: $cfg missing: run make first" >&2; exit 1; }
out=$(cppcheck -q -j2 --std=c11 --enable=warning,portability \
	--inline-suppr --suppress=missingIncludeSystem \
	-I src -I "$(dirname "$cfg")" --include="$cfg" src 2>&1 |
	grep -E '^src/[^:]+:[0-9]+:[0-9]+: ' || true)
if [ -n "$out" ]; then
	echo "$out"
	echo "static: $(echo "$out" | wc -l) finding(s)"
	echo "static: 0 passed, 1 failed"
	exit 1
fi
echo "static: cppcheck $(cppcheck --version | awk '{print $2}'): no findings"
echo "static: 1 passed, 0 failed"
