#!/bin/sh
# tests/hardening.sh [BIN] — make check's "hardening" stage: the host build
# is a static PIE (ASLR), with full RELRO and the stack protector, and it
# runs. Each claim is read from the binary itself.
set -u
cd "$(dirname "$0")/.."
bin=${1:-build/host/postie}
ok=0 bad=0
claim() { # WHAT CMD...: one line per claim
	what=$1
	shift
	if "$@" >/dev/null 2>&1; then ok=$((ok + 1)); echo "ok   $what"
	else bad=$((bad + 1)); echo "FAIL $what"; fi
}
is_dyn() { readelf -hW "$bin" | grep -q 'Type:.*DYN'; }
no_interp() { readelf -lW "$bin" | grep -q LOAD && ! readelf -lW "$bin" | grep -q INTERP; }
relro() { readelf -lW "$bin" | grep -q GNU_RELRO; }
bind_now() { readelf -dW "$bin" | grep -Eq 'BIND_NOW|FLAGS.*NOW'; }
ssp() { nm "$bin.unstripped" | grep -q __stack_chk_fail; }
runs() { "$bin" -V | grep -q '^postie '; }
claim "position independent (ELF type DYN)" is_dyn
claim "no interpreter (static)" no_interp
claim "RELRO segment" relro
claim "BIND_NOW (full RELRO)" bind_now
claim "stack protector linked" ssp
claim "runs (-V)" runs
echo "hardening: $ok passed, $bad failed"
[ "$bad" = 0 ]
