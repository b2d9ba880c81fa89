#!/bin/bash
# tests/bench/handshake.sh [COUNT] — how long one TLS client handshake of
# the alerts board takes under qemu, with BearSSL all MIPS16 (what the
# board ships: board/alerts/board.mk, DEPS_TARGET), with its handshake,
# X.509 and record-layer members MIPS16 and its crypto 32-bit (what
# mips_24kc and mipsel_24kc builds link: toolchain/bearssl_mips16.mk),
# and all 32-bit MIPS, and how many bytes MIPS16 saves. A benchmark, not
# a test: nothing here passes or fails on time.
#
# Builds tests/drivers/tls_bench (postie's TLS layer as the relay uses
# it: chain and name checked) for the three variants:
#   make BOARD=alerts                                    (MIPS16 BearSSL)
#   make BOARD=alerts DEPS_TARGET=mips_24kc O=build/board-alerts-mixed
#   make BOARD=alerts DEPS_TARGET=mips_24kc_m32 O=build/board-alerts-mips32
# then runs COUNT (default 5) handshakes of each against `openssl
# s_server` on 127.0.0.1 with a test CA and a leaf certificate, once with
# an EC P-256 key (ECDHE-ECDSA) and once with RSA-2048 (ECDHE-RSA).
# Output: a Markdown table on stdout and in build/bench/handshake.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-5}
B=build/bench/handshake
mkdir -p "$B"
OUT=build/bench/handshake.md

say() { echo "handshake: $*" >&2; }

# --- the three builds -----------------------------------------------------
VARIANTS="board-alerts board-alerts-mixed board-alerts-mips32"
say "building the alerts board (MIPS16 BearSSL), its mixed and its 32-bit twins"
make -s -j2 BOARD=alerts all build/board-alerts/tests/tls_bench >"$B/build-m16.log" 2>&1 ||
	{ tail -20 "$B/build-m16.log"; exit 1; }
for d in mixed:mips_24kc mips32:mips_24kc_m32; do
	make -s -j2 BOARD=alerts DEPS_TARGET="${d#*:}" O="build/board-alerts-${d%%:*}" all \
		"build/board-alerts-${d%%:*}/tests/tls_bench" >"$B/build-${d%%:*}.log" 2>&1 ||
		{ tail -20 "$B/build-${d%%:*}.log"; exit 1; }
done
QEMU=qemu-mips-static

# --- certificates: a CA, and a P-256 and an RSA leaf for bench.test ---------
if [ ! -f "$B/ec.pem" ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
		-subj /CN=bench-ca -keyout "$B/ca.key" -out "$B/ca.pem" 2>/dev/null
	for k in ec rsa; do
		case $k in
		ec) opt="-newkey ec -pkeyopt ec_paramgen_curve:P-256" ;;
		rsa) opt="-newkey rsa:2048" ;;
		esac
		# shellcheck disable=SC2086
		openssl req -new $opt -nodes -subj /CN=bench.test -keyout "$B/$k.key" \
			-out "$B/$k.csr" 2>/dev/null
		printf 'subjectAltName=DNS:bench.test\n' >"$B/san.ext"
		openssl x509 -req -in "$B/$k.csr" -CA "$B/ca.pem" -CAkey "$B/ca.key" \
			-CAcreateserial -days 3650 -extfile "$B/san.ext" -out "$B/$k.pem" 2>/dev/null
	done
fi

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# run VARIANT KEY: "CPU_MS_EACH TLS_BENCH_LINE" of N handshakes
run() {
	local v=$1 k=$2 port pid line
	port=$(free_port)
	# one client after the other, until killed
	openssl s_server -quiet -accept "127.0.0.1:$port" -cert "$B/$k.pem" -key "$B/$k.key" \
		>"$B/server-$v-$k.log" 2>&1 </dev/null &
	pid=$!
	# wait (bounded) until it listens; the probe is a failed handshake to it
	for _ in $(seq 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		sleep 0.1
	done
	# the client's CPU time too (user+sys of qemu): on a busy machine it
	# varies far less than the wall-clock time tls_bench measures
	local TIMEFORMAT='%U %S' cpu
	{ time $QEMU "build/$v/tests/tls_bench" "127.0.0.1:$port" "$B/ca.pem" bench.test "$N" \
		>"$B/out-$v-$k" 2>&1; } 2>"$B/time-$v-$k" || echo "failed: " >>"$B/out-$v-$k"
	line=$(cat "$B/out-$v-$k")
	cpu=$(awk -v n="$N" '{ printf "%d", ($1 + $2) * 1000 / n }' "$B/time-$v-$k")
	kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
	echo "$cpu $line"
}

{
	echo "# TLS client handshake under qemu-user (alerts board, mips_24kc)"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git log -1 --format=%h), load $(cut -d' ' -f1 /proc/loadavg), $N handshakes each."
	echo
	echo "| BearSSL code | postie bytes (stripped) | server key | ms per handshake | CPU ms per handshake | suite |"
	echo "|---|---:|---|---:|---:|---|"
	for v in $VARIANTS; do
		case $v in
		board-alerts) what="MIPS16" ;;
		board-alerts-mixed) what="handshake, X.509 MIPS16; crypto 32-bit" ;;
		*) what="32-bit MIPS" ;;
		esac
		for k in ec rsa; do
			say "$v $k"
			r=$(run "$v" "$k")
			each=$(echo "$r" | sed -n 's/.* ms_each \([0-9]*\) .*/\1/p')
			suite=$(echo "$r" | sed -n 's/.* suite //p')
			printf '| %s | %d | %s | %s | %s | %s |\n' "$what" "$(stat -c %s "build/$v/postie")" \
				"$k" "${each:-?}" "${r%% *}" "${suite:-${r#* }}"
		done
	done
	echo
	echo "qemu-user times are not a router's: compare the rows, not the figures with hardware."
} | tee "$OUT"
