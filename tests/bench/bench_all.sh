#!/bin/bash
# tests/bench/bench_all.sh [--quick] — `make bench` (BENCH_ARGS=--quick for
# the short run): tests/bench/bench.sh (postie vs Postfix: SMTP->mbox, relay,
# TLS, memory, wake-ups, sizes), tests/bench/relay_bench.py (postie vs
# Postfix relaying to smtp-sink with connection reuse) and
# tests/bench/mailbox_bench.sh (postie vs
# Dovecot: POP3 and IMAP on one mbox, IDLE sessions, wake-ups), then one
# Markdown table of every row, with the date, the machine and the load,
# then tests/bench/stall_bench.py's table (the longest loop stall of the
# worst single commands on a 10 MB message),
# printed and written to build/bench/table.md (for the README's "Measured
# figures"). The full reports stay in build/bench/results.md and
# build/mbench/results.md. Exits non-zero when either part failed (the
# table then holds what the other produced).
set -uo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
ARGS=()
QUICK=0
for a in "$@"; do
	case $a in
	--quick) QUICK=1; ARGS+=(--quick) ;;
	*) echo "usage: tests/bench/bench_all.sh [--quick]" >&2; exit 2 ;;
	esac
done
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(date +%s)
mkdir -p build/bench build/mbench
rm -f build/bench/results.md build/bench/relay.md build/mbench/rows.md build/mbench/results.md
rc=0
tests/bench/bench.sh "${ARGS[@]}" || { rc=1; echo "bench_all: bench.sh failed" >&2; }
POSTIE_BIN=${POSTIE_BIN:-build/host/postie} /usr/bin/python3 tests/bench/relay_bench.py "${ARGS[@]}" ||
	{ rc=1; echo "bench_all: relay_bench.py failed" >&2; }
tests/bench/mailbox_bench.sh "${ARGS[@]}" || { rc=1; echo "bench_all: mailbox_bench.sh failed" >&2; }
rm -f build/stall/results.md
tests/bench/stall_bench.py "${ARGS[@]}" || { rc=1; echo "bench_all: stall_bench.py failed" >&2; }

OUT=build/bench/table.md
CPU=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)
rows_of() { # FILE OTHER: the 4-column rows of FILE's tables with OTHER's name
	[ -f "$1" ] || return 0
	awk -F'|' -v o="$2" 'NF == 6 && $2 !~ /^ *(metric|) *$/ && $2 !~ /^-+$/ {
		printf "|%s|%s| %s |%s|%s|\n", $2, $3, o, $4, $5 }' "$1"
}
{
	echo "### postie next to Postfix and Dovecot — $(date -u '+%Y-%m-%d %H:%M UTC')$([ "$QUICK" = 1 ] && echo ' (--quick)')"
	echo
	echo "- machine: ${CPU:-$(uname -m)}, $(nproc) cores, Linux $(uname -r), $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"')"
	echo "- load average at the start $LOAD0, at the end $(cut -d' ' -f1-3 /proc/loadavg); $(($(date +%s) - T0)) s in all. A load above 0 means other work shared the $(nproc) cores: timings and CPU figures are then noisy."
	echo "- postie: $(git log -1 --format='%h %cs' 2>/dev/null || echo '?')$([ -n "$(git status --porcelain -- src Makefile Kconfig 2>/dev/null)" ] && echo ' + uncommitted changes'); Postfix $(postconf -d -h mail_version 2>/dev/null || echo '?'), Dovecot $(dovecot --version 2>/dev/null | cut -d' ' -f1) from Debian, private instances on 127.0.0.1"
	[ "$QUICK" = 0 ] || echo "- --quick: fewer and smaller runs (300 SMTP messages, 1,000-message mbox), idle windows of 10 s scaled to a minute; use the full \`make bench\` for published figures"
	echo
	echo "| metric | postie | compared with | theirs | postie / theirs |"
	echo "|---|---:|---|---:|---:|"
	rows_of build/bench/results.md Postfix
	rows_of build/bench/relay.md Postfix
	rows_of build/mbench/rows.md Dovecot
	echo
	if [ -f build/stall/results.md ]; then
		echo
		cat build/stall/results.md
		echo
	fi
	echo "Details, notes and the exact commands: build/bench/results.md (Postfix) and"
	echo "build/mbench/results.md (Dovecot). Reproduce: \`make bench\` (or"
	echo "\`make bench BENCH_ARGS=--quick\`), as root: it installs Postfix and Dovecot from"
	echo "Debian when missing and runs private instances of both."
} >"$OUT"
cat "$OUT"
exit "$rc"
