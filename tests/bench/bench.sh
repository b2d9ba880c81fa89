#!/bin/bash
# Variables named NAME_key are set by snap() and run_load() via printf -v:
# shellcheck disable=SC2154
# tests/bench/bench.sh [--quick] — `make bench`: postie next to Postfix, same
# machine, same run, SMTP -> mbox with fsync on, as ratios postie/Postfix.
#
#   POSTIE_BIN=FILE  measure that binary instead of building one.
#   --quick   300 messages, one size, one run, TLS handshakes 1 s each,
#             a 10 s idle window instead of 60 s,
#             sequential only, 100 TLS submissions, 300 relayed messages
#             (about 1.5 minutes);
#             default: 5000 x 2 KiB and 500 x 64 KiB, 1000 TLS submissions,
#             5000 x 2 KiB and 500 x 64 KiB relayed, three runs each,
#             handshakes 5 s each (about 5-6 minutes).
#
# What it does (everything on 127.0.0.1, every wait bounded):
#  1. Installs what is missing: postfix (for smtp-source and the comparison),
#     strace (optional). The Debian postinst must not start a system Postfix:
#     debconf "No configuration" (no /etc/postfix/main.cf) and a temporary
#     policy-rc.d (exit 101) during the install; afterwards any system master
#     is stopped. The system Postfix is never configured or used.
#  2. Builds postie as `make` would (the repo .config or the defaults) with
#     CONFIG_MAX_CONNECTIONS=256 so that 200 idle connections fit, into
#     build/bench/obj/postie.
#  3. Starts postie (foreground child) and a private Postfix instance: its own
#     config_directory, queue_directory and data_directory under
#     build/bench/postfix/, master.cf with chroot off, one smtpd on
#     127.0.0.1:PORT, inet_interfaces = loopback-only, no DNS (default and
#     relay transports are smtp to relayhost = [127.0.0.3]:PORT, the
#     smtp-sink of the relay rows; smtp_dns_support_level = disabled,
#     smtpd_peername_lookup = no, explicit myhostname), delivery by virtual(8)
#     to an mbox file (virtual_mailbox_maps entry without a trailing slash),
#     which is what postie does for its virtual users. Postfix's mbox and
#     queue-file fsyncs are on (its defaults; there is no knob to drop them).
#     master runs as root and its daemons as the postfix user (mail_owner),
#     as Debian's packaging does; the mbox belongs to nobody.
#  4. Measures, per server (a "server" is postie's one process, or Postfix's
#     master and all its descendants, found through /proc/*/stat ppid):
#     - idle RSS and PSS (Postfix: sum over master, qmgr, pickup, postlogd;
#       RSS counts shared libc/text once per process, PSS splits it);
#     - wake-ups: context switches (voluntary + involuntary) over a 60 s idle
#       window (10 s with --quick, scaled to a minute), both servers
#       measured at the same time; then strace -c on postie as long;
#     - memory per idle connection: 200 connections that read the greeting
#       and stay idle, (RSS/PSS with them - idle) / 200;
#     - throughput: smtp-source (Postfix's load generator) sends N messages
#       over 4 parallel sessions, one message per session (its default);
#       the time runs until all N are in the mbox (postie answers 250 after
#       the mbox fsync; for Postfix, until its queue has drained), checked by
#       counting "From " lines;
#     - CPU per message: delta of utime+stime+cutime+cstime summed over the
#       server's live processes before/after (cutime/cstime of a parent hold
#       the CPU of children it reaped, so processes that exit are counted);
#     - bytes written per message: delta of write_bytes - cancelled_write_bytes
#       of /proc/PID/io summed the same way (pages dirtied, whether or not
#       writeback has happened; a file deleted before writeback cancels its
#       bytes). A process that exits takes its counters with it, so the
#       Postfix instance runs with max_use = 100000 and max_idle = 600s
#       (no daemon exits during a run; this spares Postfix the fork of a new
#       smtpd/cleanup every 100 sessions, i.e. favours it slightly) and the
#       output says how many processes exited anyway.
#     - TLS (when the binary has it; `postie -t` tells): self-signed RSA 2048
#       and EC P-256 certificates in build/bench/tls; two more postie
#       processes (postie-rsa: smtp+STARTTLS, smtps, submission; postie-ec:
#       smtps) so that the plain rows above are unchanged; Postfix services
#       with smtpd_tls_wrappermode=yes (RSA, EC), a STARTTLS port (level
#       may), a submission port (Cyrus SASL from a sasldb made with
#       saslpasswd2, package sasl2-bin, installed when missing; without it
#       both servers are measured without AUTH), tlsmgr and the btree
#       session cache. Measured: RSS/PSS per idle TLS connection (200 smtps
#       connections to postie-ec and Postfix's EC service), full and resumed
#       TLS 1.2 handshakes per second and server CPU per handshake
#       (benchlib.py tlsrate), messages/s over STARTTLS + AUTH, one message
#       per session (benchlib.py submit), postie-rsa's longest loop stall.
#     - relay: smtp-source -> server -> smtp-sink (Postfix's test server,
#       run as nobody on 127.0.0.3, -c counters on its stdout; it throws the
#       mail away). postie: one more process, postie-relay (relay_networks
#       127.0.0.0/8, smarthost 127.0.0.3:PORT plain, queue_retry 1s 2s,
#       dns_server 127.0.0.53:9 when the build has DNS: nothing is ever
#       looked up). Postfix: the same instance, relayhost = [127.0.0.3]:PORT
#       (relay and default transport: smtp). Messages to a non-local domain;
#       time until the sink has counted all N (bounded), CPU and bytes
#       written per message as for the mbox rows (postie: its queue file,
#       fsynced, and its log; Postfix: its queue file and its log).
#     - binary size, stripped: Kconfig defaults and the same without
#       CONFIG_TLS (build/bench/size-tls, size-notls, rebuilt incrementally);
#       the alerts-only board, `make BOARD=alerts` (build/board-alerts/postie,
#       mips_24kc, static, stripped), size only.
#  5. Prints a Markdown table and writes it to build/bench/results.md with the
#     date, the machine and the exact commands.
# Timings live here only, never in pass/fail tests.
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
B=build/bench
BA=$ROOT/$B
LIB="/usr/bin/python3 tests/bench/benchlib.py"

QUICK=0
for a in "$@"; do
	case $a in
	--quick) QUICK=1 ;;
	-h | --help) sed -n '4,12p' "$0"; exit 0 ;;
	*) echo "bench: unknown argument $a" >&2; exit 2 ;;
	esac
done
if [ "$QUICK" = 1 ]; then
	RUNS="300:2048"
	REPS=1
	HS_SECS=1          # per handshake measurement
	HS_WORKERS="1"     # sequential only
	TLS_RUNS="100:2048"
	RELAY_RUNS="300:2048"
else
	RUNS="5000:2048 500:65536"
	REPS=3
	HS_SECS=5
	HS_WORKERS="1 4"   # sequential, and 4 client processes at once
	TLS_RUNS="1000:2048"
	RELAY_RUNS="5000:2048 500:65536"
fi
IDLE_WINDOW=60     # seconds of the idle wake-up window (--quick: 10, scaled)
[ "$QUICK" = 1 ] && IDLE_WINDOW=10
SESSIONS=4
IDLE_CONNS=200
SENDER=a@test.lan
RCPT=demo@test.lan
RELAY_RCPT=demo@dest.lan   # not a local domain: relayed
SINK_ADDR=127.0.0.3

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
say() { echo "bench: $*" >&2; }
die() { say "error: $*"; exit 1; }

# ---- 1. packages ---------------------------------------------------------
have_pkg() { dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^ii'; }

APT_UPDATED=0
apt_install() { # PKG...: non-zero when apt-get fails
	local policy_added=0 rc=0
	say "installing $*"
	# No system Postfix: no main.cf, and no service start from a postinst
	# (postfix, or sasl2-bin's saslauthd).
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		policy_added=1
	fi
	if [ "$APT_UPDATED" = 0 ]; then
		timeout 600 apt-get update -qq || say "warning: apt-get update reported errors"
		APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq \
		--no-install-recommends "$@" >/dev/null || rc=$?
	[ "$policy_added" = 0 ] || rm -f /usr/sbin/policy-rc.d
	return "$rc"
}

install_pkgs() {
	local missing="" p
	for p in postfix strace python3 iproute2 openssl; do
		have_pkg "$p" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	[ "$(id -u)" = 0 ] || die "missing packages:$missing (run as root or apt-get install them)"
	# shellcheck disable=SC2086
	apt_install $missing || die "apt-get install$missing failed"
}

# Optional: sasl2-bin (saslpasswd2) gives the Postfix instance Cyrus SASL
# logins from a sasldb, for the STARTTLS + AUTH submission runs. Without it
# both servers are measured over STARTTLS without AUTH.
install_optional() {
	have_pkg sasl2-bin && return 0
	apt_install sasl2-bin || say "warning: sasl2-bin not installed: Postfix without SASL AUTH"
}

stop_system_postfix() {
	# A master of the default instance (if a postinst or someone started
	# one) is stopped; ours has its own pid file under build/bench.
	local pidf=/var/spool/postfix/pid/master.pid pid
	[ -r "$pidf" ] || return 0
	pid=$(tr -dc 0-9 <"$pidf")
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 0
	grep -q master "/proc/$pid/comm" 2>/dev/null || return 0
	say "stopping the system Postfix (pid $pid)"
	timeout 30 postfix stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
}

[ "$(id -u)" = 0 ] || die "run as root: Postfix's master runs as root (its daemons as postfix)"
install_pkgs
install_optional
stop_system_postfix
command -v smtp-source >/dev/null || die "smtp-source not found (package postfix)"
id postfix >/dev/null 2>&1 || die "no postfix user"
HAVE_STRACE=0
command -v strace >/dev/null && HAVE_STRACE=1

# ---- 2. postie build -------------------------------------------------------
mkdir -p "$B"
CFG_IN=.config
[ -f "$CFG_IN" ] || CFG_IN=
if [ -n "${POSTIE_BIN:-}" ]; then
	# POSTIE_BIN=FILE bench.sh: measure that binary instead of building.
	[ -x "$POSTIE_BIN" ] || die "POSTIE_BIN=$POSTIE_BIN is not an executable"
	POSTIE_BIN=$(cd "$(dirname "$POSTIE_BIN")" && pwd)/$(basename "$POSTIE_BIN")
	BUILD_NOTE="given binary (POSTIE_BIN)"
	BUILD_CMD="POSTIE_BIN=<binary> tests/bench/bench.sh"
else
	{
		if [ -n "$CFG_IN" ]; then grep -v '^CONFIG_MAX_CONNECTIONS=\|^CONFIG_MAX_TLS_SESSIONS=' "$CFG_IN"; fi
		echo "CONFIG_MAX_CONNECTIONS=256"
		echo "CONFIG_MAX_TLS_SESSIONS=256"
	} >"$B/bench.config"
	say "building postie (${CFG_IN:-Kconfig defaults} + CONFIG_MAX_CONNECTIONS=256, CONFIG_MAX_TLS_SESSIONS=256)"
	timeout 600 make -s O="$B/obj" CONFIG_SRC="$B/bench.config" >"$B/build.log" 2>&1 ||
		{ tail -20 "$B/build.log" >&2; die "postie build failed (see $B/build.log)"; }
	POSTIE_BIN=$ROOT/$B/obj/postie
	BUILD_NOTE="${CFG_IN:-defaults} + CONFIG_MAX_CONNECTIONS=256, CONFIG_MAX_TLS_SESSIONS=256"
	BUILD_CMD="make O=$B/obj CONFIG_SRC=$B/bench.config"
fi

# 2b. binary size with and without TLS: the Kconfig defaults (the host
# build of `make`) and the same with CONFIG_TLS off (AUTH depends on it and
# goes too), each in its own directory that later runs reuse.
size_build() { # NAME CONFIG-LINE: prints the stripped size or "n/a"
	local d=$B/size-$1
	mkdir -p "$d"
	# Rewritten only when it changes, so that make rebuilds nothing.
	if [ "$(cat "$d.config" 2>/dev/null)" != "$2" ]; then echo "$2" >"$d.config"; fi
	if timeout 600 make -s -j2 O="$d" CONFIG_SRC="$d.config" >"$d.log" 2>&1; then
		stat -c %s "$d/postie"
	else
		say "warning: size build $1 failed (see $d.log)"
		echo n/a
	fi
}
say "size builds (Kconfig defaults, and without CONFIG_TLS)"
SIZE_TLS=$(size_build tls "# Kconfig defaults (tests/bench/bench.sh)")
SIZE_NOTLS=$(size_build notls "# CONFIG_TLS is not set")
# The alerts-only board (board/alerts: mips_24kc, soft-float, static
# musl), built as `make BOARD=alerts` does, into build/board-alerts. The
# cross toolchain comes from the Makefile (toolchain/install-deps.sh,
# deps.sh); when that fails the row says n/a.
say "alerts-only board build (make BOARD=alerts)"
SIZE_ALERTS=n/a
if timeout 900 make -s -j2 BOARD=alerts >"$B/board-alerts.log" 2>&1 && [ -f build/board-alerts/postie ]; then
	SIZE_ALERTS=$(stat -c %s build/board-alerts/postie)
else
	say "warning: make BOARD=alerts failed (see $B/board-alerts.log)"
fi
# Postfix has no build without TLS; what its TLS SMTP service loads: smtpd
# and the libraries of Postfix and OpenSSL it links (not libc, libdb,
# libsasl2, libicu & co.), stripped as Debian ships them.
PF_SMTPD=$(postconf -h daemon_directory 2>/dev/null || echo /usr/lib/postfix/sbin)/smtpd
PF_TLS_FILES=$(ldd "$PF_SMTPD" 2>/dev/null | awk '$3 ~ /libpostfix|libssl|libcrypto/ { print $3 }' | sort -u)
SIZE_PF=$(
	# shellcheck disable=SC2086
	stat -L -c %s "$PF_SMTPD" $PF_TLS_FILES 2>/dev/null | awk '{ t += $1 } END { print t + 0 }'
)
PF_SIZE_NOTE="smtpd + $(echo "$PF_TLS_FILES" | xargs -n1 basename 2>/dev/null | sed 's/\.so.*//' | sort -u | tr '\n' ' ' | sed 's/ $//;s/ /, /g')"

# ---- 3. servers ----------------------------------------------------------
POSTIE_PID=
POSTIE_RSA_PID=
POSTIE_EC_PID=
POSTIE_RELAY_PID=
SINK_PID=
PF_MASTER=
HOLD_PID=
PFC=$BA/postfix/etc

pf_master_pid() {
	local f=$BA/postfix/queue/pid/master.pid
	[ -r "$f" ] && tr -dc 0-9 <"$f"
}

cleanup() {
	set +e
	[ -n "$HOLD_PID" ] && kill "$HOLD_PID" 2>/dev/null
	local p
	for p in "$POSTIE_PID" "$POSTIE_RSA_PID" "$POSTIE_EC_PID" "$POSTIE_RELAY_PID" "$SINK_PID"; do
		stop_pid "$p"
	done
	if [ -f "$PFC/main.cf" ]; then
		local m
		m=$(pf_master_pid)
		if [ -n "$m" ] && [ -d "/proc/$m" ]; then
			timeout 30 postfix -c "$PFC" stop >/dev/null 2>&1
			for _ in $(seq 50); do [ -d "/proc/$m" ] || break; sleep 0.1; done
			[ -d "/proc/$m" ] && kill -KILL "$m" 2>/dev/null
		fi
	fi
}
stop_pid() { # PID: TERM, up to 5 s, then KILL
	[ -n "$1" ] && [ -d "/proc/$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 50); do [ -d "/proc/$1" ] || break; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q LISTEN; }

wait_listen() { # PORT SECONDS
	for _ in $(seq $(($2 * 10))); do
		listening "$1" && return 0
		sleep 0.1
	done
	return 1
}

PORTS_USED=" "
newport() { # NAME [ADDR]: a free port on 127.0.0.1 (or ADDR) not handed out before
	local p
	for _ in $(seq 20); do
		p=$($LIB freeport "${2:-127.0.0.1}")
		case $PORTS_USED in *" $p "*) continue ;; esac
		PORTS_USED="$PORTS_USED$p "
		printf -v "$1" '%s' "$p"
		return 0
	done
	die "no free port"
}
newport PORT_POSTIE
newport PORT_PF
newport PORT_PR             # postie-relay
newport PORT_SINK $SINK_ADDR # smtp-sink, the smarthost / relayhost of both

# postie: a fresh directory, relative paths, foreground child.
rm -rf "$B/postie"
mkdir -p "$B/postie/mail" "$B/postie/spool"
echo "demo:" >"$B/postie/users"
cat >"$B/postie/postie.conf" <<EOF
hostname mail.test.lan
listen smtp 127.0.0.1:$PORT_POSTIE
users ./users
mail_dir ./mail
spool_dir ./spool
local_domains test.lan
max_message_size 10M
max_connections 256
EOF
(cd "$B/postie" && exec "$POSTIE_BIN" -c postie.conf >postie.log 2>&1) &
POSTIE_PID=$!
wait_listen "$PORT_POSTIE" 10 || { cat "$B/postie/postie.log" >&2; die "postie did not listen on $PORT_POSTIE"; }

# TLS: two more postie processes with the TLS listeners, so that the plain
# postie above (and its rows) stay as they were: postie-rsa (RSA 2048 cert:
# smtp with STARTTLS, smtps, submission) and postie-ec (EC P-256: smtps).
# Self-signed test certificates in build/bench/tls, made once.
TLSD=$BA/tls
HAVE_TLS=0
HAVE_AUTH=0
TLS_NOTE=""
SUB_PASS=bench-password
mkdir -p "$TLSD"
if [ ! -s "$TLSD/rsa.crt" ] || [ ! -s "$TLSD/ec.crt" ]; then
	say "making test certificates (RSA 2048, EC P-256)"
	if ! timeout 120 openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mail.test.lan" \
		-keyout "$TLSD/rsa.key" -out "$TLSD/rsa.crt" >"$TLSD/openssl.log" 2>&1 ||
		! timeout 120 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
			-subj "/CN=mail.test.lan" -keyout "$TLSD/ec.key" -out "$TLSD/ec.crt" >>"$TLSD/openssl.log" 2>&1; then
		rm -f "$TLSD"/*.crt
		TLS_NOTE="openssl req failed ($B/tls/openssl.log): no TLS rows. "
	fi
	chmod 600 "$TLSD"/*.key 2>/dev/null || true
fi
start_postie_tls() { # NAME CERT LISTEN-LINES...: sets POSTIE_<NAME>_PID
	local name=$1 cert=$2 d=$B/postie-$1 pid l
	shift 2
	rm -rf "$d"
	mkdir -p "$d/mail" "$d/spool"
	echo "$TLS_USERS" >"$d/users"
	{
		echo "hostname mail.test.lan"
		for l in "$@"; do echo "listen $l"; done
		echo "tls_cert $TLSD/$cert.crt"
		echo "tls_key $TLSD/$cert.key"
		echo "users ./users"
		echo "mail_dir ./mail"
		echo "spool_dir ./spool"
		echo "local_domains test.lan"
		echo "max_message_size 10M"
		echo "max_connections 256"
		echo "max_tls_sessions 256"
	} >"$d/postie.conf"
	(cd "$d" && exec "$POSTIE_BIN" -c postie.conf >postie.log 2>&1) &
	pid=$!
	printf -v "POSTIE_${name^^}_PID" '%s' "$pid"
}
if [ -s "$TLSD/rsa.crt" ]; then
	newport PORT_PT_SMTP; newport PORT_PT_SMTPS; newport PORT_PT_SUB; newport PORT_PT_EC
	# What this binary can do: `postie -t` on a configuration with TLS, then
	# with submission (needs CONFIG_AUTH).
	mkdir -p "$B/postie-probe"
	printf 'hostname mail.test.lan\nlisten smtps 127.0.0.1:%s\ntls_cert %s\ntls_key %s\nusers %s\nmail_dir %s\nspool_dir %s\nlocal_domains test.lan\nmax_tls_sessions 256\n' \
		"$PORT_PT_SMTPS" "$TLSD/rsa.crt" "$TLSD/rsa.key" "$BA/postie/users" "$BA/postie/mail" "$BA/postie/spool" >"$B/postie-probe/tls.conf"
	if timeout 10 "$POSTIE_BIN" -c "$B/postie-probe/tls.conf" -t >"$B/postie-probe/tls.log" 2>&1; then
		HAVE_TLS=1
		printf 'listen submission 127.0.0.1:%s\n' "$PORT_PT_SUB" >>"$B/postie-probe/tls.conf"
		timeout 10 "$POSTIE_BIN" -c "$B/postie-probe/tls.conf" -t >"$B/postie-probe/auth.log" 2>&1 && HAVE_AUTH=1
	else
		TLS_NOTE="this postie has no TLS with 256 sessions ($(head -c 200 "$B/postie-probe/tls.log" | tr '\n' ' ')): no TLS rows. "
	fi
fi
if [ "$HAVE_TLS" = 1 ]; then
	if [ "$HAVE_AUTH" = 1 ]; then
		SUB_HASH=$(printf '%s' "$SUB_PASS" | timeout 10 "$POSTIE_BIN" passwd) || SUB_HASH=
		# shellcheck disable=SC2016
		case $SUB_HASH in
		'$6$'*) ;;
		*) HAVE_AUTH=0; TLS_NOTE+="postie passwd failed: submission without AUTH. " ;;
		esac
	fi
	TLS_USERS="demo:"
	[ "$HAVE_AUTH" = 1 ] && TLS_USERS="demo:$SUB_HASH"
	if [ "$HAVE_AUTH" = 1 ]; then
		start_postie_tls rsa rsa "smtp 127.0.0.1:$PORT_PT_SMTP" "smtps 127.0.0.1:$PORT_PT_SMTPS" "submission 127.0.0.1:$PORT_PT_SUB"
	else
		start_postie_tls rsa rsa "smtp 127.0.0.1:$PORT_PT_SMTP" "smtps 127.0.0.1:$PORT_PT_SMTPS"
	fi
	start_postie_tls ec ec "smtps 127.0.0.1:$PORT_PT_EC"
	wait_listen "$PORT_PT_SMTPS" 10 || { cat "$B/postie-rsa/postie.log" >&2; die "postie-rsa did not listen on $PORT_PT_SMTPS"; }
	wait_listen "$PORT_PT_EC" 10 || { cat "$B/postie-ec/postie.log" >&2; die "postie-ec did not listen on $PORT_PT_EC"; }
fi

# Postfix: a private instance under build/bench/postfix.
rm -rf "$B/postfix"
mkdir -p "$PFC" "$BA/postfix/queue" "$BA/postfix/data" "$BA/postfix/mail"
chown postfix "$BA/postfix/data"
chown nobody "$BA/postfix/mail"
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)
cat >"$PFC/main.cf" <<EOF
# Generated by tests/bench/bench.sh: a private benchmark instance.
compatibility_level = 3.6
queue_directory = $BA/postfix/queue
data_directory = $BA/postfix/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $BA/postfix/maillog
maillog_file_prefixes = $BA/postfix
myhostname = mx.test.lan
mydomain = test.lan
myorigin = \$myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# No DNS anywhere: no PTR lookup of clients, no MX/A lookups. Nothing
# leaves this host: all non-local mail goes to the relayhost, the
# smtp-sink of the relay rows on $SINK_ADDR (an address, no lookup).
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
relayhost = [$SINK_ADDR]:$PORT_SINK
default_transport = smtp
relay_transport = relay
append_dot_mydomain = no
alias_maps =
alias_database =
biff = no
notify_classes =
# mbox delivery of virtual users, like postie's mail_dir/U.
virtual_mailbox_domains = test.lan
virtual_mailbox_base = $BA/postfix/mail
virtual_mailbox_maps = texthash:$PFC/vmailbox
virtual_uid_maps = static:$NOBODY_UID
virtual_gid_maps = static:$NOBODY_GID
virtual_mailbox_limit = 0
virtual_mailbox_lock = fcntl, dotlock
message_size_limit = 10485760
# 200 idle connections need 200 smtpd (default 100); daemons must not exit
# during a run or their /proc/PID/io counters are lost.
default_process_limit = 300
max_use = 100000
max_idle = 600s
EOF
echo "demo@test.lan demo" >"$PFC/vmailbox"
cat >"$PFC/master.cf" <<EOF
# Generated by tests/bench/bench.sh: the standard services, chroot off,
# one smtpd on loopback; smtp/relay only to the relayhost on $SINK_ADDR.
127.0.0.1:$PORT_PF inet n - n - - smtpd
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
EOF
cat tests/proto/postfix-services.cf >>"$PFC/master.cf"
# TLS, like postie-rsa/postie-ec: the plain port above stays without TLS
# (smtpd_tls_security_level is empty in main.cf), as the plain postie.
# Wrapper-mode (smtps) services with the RSA and with the EC certificate, a
# STARTTLS port (level may), a submission port (STARTTLS required, Cyrus
# SASL from a sasldb when saslpasswd2 is there), tlsmgr for the session
# cache and the ticket keys.
PF_SASL=0
if [ "$HAVE_TLS" = 1 ]; then
	newport PORT_PF_SMTP; newport PORT_PF_SMTPS; newport PORT_PF_EC; newport PORT_PF_SUB
	if [ "$HAVE_AUTH" = 1 ] && command -v saslpasswd2 >/dev/null; then
		mkdir -p "$PFC/sasl"
		printf '%s' "$SUB_PASS" | timeout 10 saslpasswd2 -p -c -f "$PFC/sasl/sasldb2" -u test.lan demo &&
			PF_SASL=1
		chown -R postfix "$PFC/sasl"
		cat >"$PFC/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $PFC/sasl/sasldb2
mech_list: PLAIN LOGIN
EOF
	fi
	cat >>"$PFC/main.cf" <<EOF
# TLS (used by the TLS services of master.cf only).
smtpd_tls_cert_file = $TLSD/rsa.crt
smtpd_tls_key_file = $TLSD/rsa.key
smtpd_tls_session_cache_database = btree:\${data_directory}/smtpd_scache
smtpd_tls_loglevel = 0
cyrus_sasl_config_path = $PFC/sasl
smtpd_sasl_local_domain = test.lan
EOF
	TLSO="-o smtpd_tls_security_level=encrypt -o smtpd_tls_wrappermode=yes"
	SUBO="-o smtpd_tls_security_level=encrypt"
	[ "$PF_SASL" = 1 ] && SUBO="$SUBO -o smtpd_sasl_auth_enable=yes -o smtpd_client_restrictions=permit_sasl_authenticated,reject"
	cat >>"$PFC/master.cf" <<EOF
127.0.0.1:$PORT_PF_SMTP inet n - n - - smtpd -o smtpd_tls_security_level=may
127.0.0.1:$PORT_PF_SMTPS inet n - n - - smtpd $TLSO
127.0.0.1:$PORT_PF_EC inet n - n - - smtpd $TLSO -o smtpd_tls_cert_file=$TLSD/ec.crt -o smtpd_tls_key_file=$TLSD/ec.key
127.0.0.1:$PORT_PF_SUB inet n - n - - smtpd $SUBO
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
EOF
fi
# Postfix commands log to stderr only when it is a terminal (else to
# syslog, which may not exist): script(1) gives them one.
pfcmd() { timeout 60 script -qec "postfix -c '$PFC' $1" /dev/null; }
pfcmd check >"$B/postfix/check.log" 2>&1 ||
	{ cat "$B/postfix/check.log" >&2; die "postfix check failed"; }
pfcmd start >"$B/postfix/start.log" 2>&1 ||
	{ cat "$B/postfix/start.log" >&2; die "postfix start failed"; }
wait_listen "$PORT_PF" 20 || die "postfix did not listen on $PORT_PF"
if [ "$HAVE_TLS" = 1 ]; then
	for p in "$PORT_PF_SMTP" "$PORT_PF_SMTPS" "$PORT_PF_EC" "$PORT_PF_SUB"; do
		wait_listen "$p" 10 || die "postfix did not listen on $p"
	done
fi
for _ in $(seq 50); do PF_MASTER=$(pf_master_pid) && [ -n "$PF_MASTER" ] && break; sleep 0.1; done
[ -n "$PF_MASTER" ] || die "no postfix master pid"
say "postie pid $POSTIE_PID port $PORT_POSTIE; postfix master pid $PF_MASTER port $PORT_PF"
sleep 2 # let qmgr, pickup and postlogd settle

# ---- 4. measurements -----------------------------------------------------
# snap NAME PID: key=value lines into variables NAME_key.
snap() {
	local k v
	while IFS='=' read -r k v; do
		printf -v "$1_$k" '%s' "$v"
	done < <($LIB snap "$2")
}
fdiv() { awk -v a="$1" -v b="$2" -v f="${3:-%.3g}" 'BEGIN { if (b == 0) print "n/a"; else printf f "\n", a / b }'; }
now() { date +%s.%N; }
exited() { # PIDSET_BEFORE PIDSET_AFTER: how many of before are gone
	awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, ","); split(b, y, ",");
		for (i in y) s[y[i]] = 1; c = 0; for (i = 1; i <= n; i++) if (!(x[i] in s)) c++; print c }'
}

# 4a. idle memory
snap p_idle "$POSTIE_PID"
snap f_idle "$PF_MASTER"
say "idle: postie RSS ${p_idle_rss_kb} kB; postfix ${f_idle_pids} processes RSS ${f_idle_rss_kb} kB PSS ${f_idle_pss_kb} kB"

# 4b. idle wake-ups, both at once
say "idle window ${IDLE_WINDOW}s"
snap pw0 "$POSTIE_PID"; snap fw0 "$PF_MASTER"
sleep "$IDLE_WINDOW"
snap pw1 "$POSTIE_PID"; snap fw1 "$PF_MASTER"
P_WAKE=$((pw1_ctxt - pw0_ctxt))
F_WAKE=$((fw1_ctxt - fw0_ctxt))
STRACE_LINE="strace not installed"
if [ "$HAVE_STRACE" = 1 ]; then
	timeout -s INT "$IDLE_WINDOW" strace -c -p "$POSTIE_PID" -o "$B/strace-idle.txt" >/dev/null 2>&1 || true
	# the summary's "total" row: % time, seconds, usecs/call, calls, ...
	n=$(awk '$NF == "total" { print $4 }' "$B/strace-idle.txt" 2>/dev/null | tail -1)
	STRACE_LINE="strace -c -p <postie> for ${IDLE_WINDOW}s: ${n:-0} system calls"
fi

# 4c. memory per idle connection
hold_measure() { # NAME PID PORT [tls]
	local fifo=$BA/hold.fifo line n=0
	rm -f "$fifo"; mkfifo "$fifo"
	# stdin of the holder is a pipe we close to release it; bounded by 60 s.
	# shellcheck disable=SC2086
	exec 7> >(exec $LIB hold "$3" "$IDLE_CONNS" 60 ${4:-} >"$fifo")
	HOLD_PID=$!
	read -r -t 60 line <"$fifo" || true
	n=${line#ready }
	[ -n "$n" ] || n=0
	sleep 1
	snap "$1" "$2"
	printf -v "$1_conns" '%s' "$n"
	exec 7>&-
	for _ in $(seq 100); do [ -d "/proc/$HOLD_PID" ] || break; sleep 0.1; done
	HOLD_PID=
	rm -f "$fifo"
}
say "$IDLE_CONNS idle connections to postie"
hold_measure pc "$POSTIE_PID" "$PORT_POSTIE"
say "$IDLE_CONNS idle connections to postfix"
hold_measure fc "$PF_MASTER" "$PORT_PF"
sleep 1

# 4e. TLS (when this postie has it): memory per idle TLS connection, full
# and resumed handshakes per second, server CPU per handshake.
HS_TABLE=""
TLS_MEM_TABLE=""
if [ "$HAVE_TLS" = 1 ]; then
	# postie-ec and Postfix's EC wrapper-mode service have had no connection
	# yet: the delta holds a whole connection (slot + TLS pool entry; for
	# Postfix, an smtpd process with its TLS state).
	say "$IDLE_CONNS idle TLS connections to postie-ec"
	snap pt_idle "$POSTIE_EC_PID"
	hold_measure pt "$POSTIE_EC_PID" "$PORT_PT_EC" tls
	say "$IDLE_CONNS idle TLS connections to postfix (EC smtps service)"
	snap ft_idle "$PF_MASTER"
	hold_measure ft "$PF_MASTER" "$PORT_PF_EC" tls
	sleep 1
	p_tconn=$(fdiv "$((pt_rss_kb - pt_idle_rss_kb))" "${pt_conns:-0}" %.1f)
	f_tconn=$(fdiv "$((ft_rss_kb - ft_idle_rss_kb))" "${ft_conns:-0}" %.1f)
	p_tconnp=$(fdiv "$((pt_pss_kb - pt_idle_pss_kb))" "${pt_conns:-0}" %.1f)
	f_tconnp=$(fdiv "$((ft_pss_kb - ft_idle_pss_kb))" "${ft_conns:-0}" %.1f)
	TLS_MEM_TABLE="| RSS per idle TLS connection, kB (smtps, EC cert, ${pt_conns:-0} / ${ft_conns:-0} greeted) | ${p_tconn} | ${f_tconn} | $(fdiv "$p_tconn" "$f_tconn") |
| PSS per idle TLS connection, kB | ${p_tconnp} | ${f_tconnp} | $(fdiv "$p_tconnp" "$f_tconnp") |
"
	# handshakes: every (workers, mode, cert) for both servers, alternating.
	hs_measure() { # NAME PID PORT WORKERS MODE -> NAME_{rate,cpu,res,n,fail}
		local k v out
		snap hs0 "$2"
		# shellcheck disable=SC2086
		out=$(timeout $((HS_SECS * 3 + 60)) $LIB tlsrate "$3" "$HS_SECS" "$4" "$5") || true
		snap hs1 "$2"
		while IFS='=' read -r k v; do printf -v "hs_$k" '%s' "$v"; done <<<"$out"
		printf -v "$1_n" '%s' "${hs_n:-0}"
		printf -v "$1_rate" '%s' "$(fdiv "${hs_n:-0}" "${hs_secs:-0}" %.0f)"
		printf -v "$1_cpu" '%s' "$(fdiv "$(((hs1_cpu_ns - hs0_cpu_ns) / 1000))" "${hs_n:-0}" %.0f)"
		printf -v "$1_res" '%s' "${hs_resumed:-0}"
		printf -v "$1_fail" '%s' "${hs_fail:-0}"
		HS_CMDS+=("/usr/bin/python3 tests/bench/benchlib.py tlsrate PORT $HS_SECS $4 $5")
	}
	HS_CMDS=()
	for w in $HS_WORKERS; do
		for mode in new reuse; do
			for cert in rsa ec; do
				if [ "$cert" = rsa ]; then
					pp=$POSTIE_RSA_PID pport=$PORT_PT_SMTPS fport=$PORT_PF_SMTPS cname="RSA 2048"
				else
					pp=$POSTIE_EC_PID pport=$PORT_PT_EC fport=$PORT_PF_EC cname="EC P-256"
				fi
				say "TLS handshakes ($mode, $cname, $w client(s), ${HS_SECS}s) -> postie, postfix"
				hs_measure hp "$pp" "$pport" "$w" "$mode"
				hs_measure hf "$PF_MASTER" "$fport" "$w" "$mode"
				if [ "$mode" = new ]; then kind=full; else kind=resumed; fi
				what="$kind handshakes/s"
				if [ "$w" = 1 ]; then clients="1 client, sequential"; else clients="$w clients in parallel"; fi
				extra_p="" extra_f=""
				if [ "$mode" = reuse ]; then
					extra_p=" (${hp_res}/${hp_n} resumed)"; extra_f=" (${hf_res}/${hf_n} resumed)"
				fi
				[ "$hp_fail" = 0 ] || extra_p+=" ($hp_fail failed)"
				[ "$hf_fail" = 0 ] || extra_f+=" ($hf_fail failed)"
				HS_TABLE+="| TLS ${what}, ${cname}, ${clients} | ${hp_rate}${extra_p} | ${hf_rate}${extra_f} | $(fdiv "$hp_rate" "$hf_rate") |
"
				if [ "$w" = 1 ]; then
					HS_TABLE+="| server CPU µs per ${kind} handshake, ${cname} | ${hp_cpu} | ${hf_cpu} | $(fdiv "$hp_cpu" "$hf_cpu") |
"
				fi
			done
		done
	done
fi

# 4d. throughput, CPU and bytes written
count_from() { [ -f "$1" ] && grep -c '^From ' "$1" || echo 0; }
# smtp-sink -c rewrites "sess=N quit=N mesg=N" + CR on its stdout for every
# session end, QUIT and "."; the last mesg= is the count of messages taken.
SINK_OUT=$BA/sink.out
sink_count() {
	local n
	n=$(tail -c 300 "$SINK_OUT" 2>/dev/null | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1)
	echo "${n:-0}"
}
# delivered MBOX: messages in the mbox, or with MBOX "sink" taken by smtp-sink
delivered() { if [ "$1" = sink ]; then sink_count; else count_from "$1"; fi; }
fsize() { [ -f "$1" ] && stat -c %s "$1" || echo 0; }
pf_queue_len() {
	find "$BA/postfix/queue/maildrop" "$BA/postfix/queue/incoming" \
		"$BA/postfix/queue/active" "$BA/postfix/queue/deferred" \
		"$BA/postfix/queue/hold" -type f 2>/dev/null | wc -l
}

CMDS=()
run_load() { # NAME PID PORT MBOX N LEN -> sets NAME_{secs,cpu,wb,bytes,ok,exited}
	local name=$1 pid=$2 port=$3 mbox=$4 n=$5 len=$6 c0 s0 t0 t1 c1 got rc=0
	local cmd="smtp-source -s $SESSIONS -m $n -l $len -M client.test.lan -f $SENDER -t ${LOAD_RCPT:-$RCPT} 127.0.0.1:$port"
	# LOAD_USER set: STARTTLS (+ AUTH unless "-") sessions from benchlib.py.
	[ -z "${LOAD_USER:-}" ] ||
		cmd="$LIB submit $port $n $len $SESSIONS $LOAD_USER $SUB_PASS $LOAD_SENDER $RCPT"
	CMDS+=("$cmd")
	c0=$(delivered "$mbox"); s0=$(fsize "$mbox")
	snap "${name}0" "$pid"
	t0=$(now)
	timeout 600 $cmd || rc=$?
	[ "$rc" = 0 ] || say "warning: ${cmd%% *} exited with $rc for $name"
	# Delivered = every message in the mbox; Postfix also has to drain its
	# queue (its 250 comes before delivery). Relayed ("sink"): every message
	# counted by smtp-sink. Bounded: 300 s (10 s when the client reported
	# refused messages: those never arrive).
	local deadline=$(($(date +%s) + 300))
	[ "$rc" = 0 ] || deadline=$(($(date +%s) + 10))
	while :; do
		# Postfix: look at its queue first (cheap), count the mbox once empty.
		if [ "$name" != f ] || [ "$mbox" = sink ] || [ "$(pf_queue_len)" = 0 ]; then
			got=$(($(delivered "$mbox") - c0))
			[ "$got" -lt "$n" ] || break
		fi
		[ "$(date +%s)" -lt "$deadline" ] || {
			got=$(($(delivered "$mbox") - c0))
			say "warning: $name: only $got of $n delivered in time"
			break
		}
		sleep 0.05
	done
	t1=$(now)
	snap "${name}1" "$pid"
	local b0="${name}0_" b1="${name}1_" v
	v="${b0}cpu_ns"; c0=${!v}; v="${b1}cpu_ns"; c1=${!v}
	printf -v "${name}_secs" '%s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
	printf -v "${name}_got" '%s' "$got"
	printf -v "${name}_cpu" '%s' "$((c1 - c0))"
	v="${b0}wbytes"; c0=${!v}; v="${b1}wbytes"; c1=${!v}
	printf -v "${name}_wb" '%s' "$((c1 - c0))"
	printf -v "${name}_bytes" '%s' "$(($(fsize "$mbox") - s0))"
	local p0 p1
	v="${b0}pidset"; p0=${!v}; v="${b1}pidset"; p1=${!v}
	printf -v "${name}_exited" '%s' "$(exited "$p0" "$p1")"
}

# Each size is run REPS times, alternating the servers, and the median run
# (by msgs/s) is reported with the range: the machine may be shared.
median_of() { # FILE SERVER LEN: the run line with the median msgs/s
	awk -v s="$2" -v l="$3" '$1 == s && $2 == l' "$1" | sort -k9,9g |
		awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'
}
range_of() { # FILE SERVER LEN: min-max msgs/s
	awk -v s="$2" -v l="$3" '$1 == s && $2 == l { v = $9 + 0;
		if (n++ == 0 || v < lo) lo = v; if (v > hi) hi = v }
		END { if (n > 1) printf " (%.0f–%.0f over %d runs)", lo, hi, n }' "$1"
}
# load_series TSV N LEN POSTIE_PID POSTIE_PORT POSTIE_MBOX POSTFIX_PORT WHAT
# [POSTFIX_MBOX]: REPS runs of each server, alternating, then the median
# run's figures in p_* and f_* (got secs mps cpu msz wpm wr range exited).
# An MBOX of "sink": relayed, counted by smtp-sink.
load_series() {
	local tsv=$1 n=$2 len=$3 rep x got secs cpu wb bytes mps
	for rep in $(seq "$REPS"); do
		say "load $rep/$REPS: $n messages of $len bytes, $SESSIONS sessions$8 -> postie"
		run_load p "$4" "$5" "$6" "$n" "$len"
		say "load $rep/$REPS: $n messages of $len bytes, $SESSIONS sessions$8 -> postfix"
		run_load f "$PF_MASTER" "$7" "${9:-$BA/postfix/mail/demo}" "$n" "$len"
		# server len n got secs cpu_ns wbytes mbox_bytes msgs/s exited
		for x in p f; do
			v_got=${x}_got v_secs=${x}_secs v_cpu=${x}_cpu v_wb=${x}_wb v_b=${x}_bytes v_e=${x}_exited
			echo "$x $len $n ${!v_got} ${!v_secs} ${!v_cpu} ${!v_wb} ${!v_b} $(fdiv "${!v_got}" "${!v_secs}" %.1f) ${!v_e}" >>"$tsv"
		done
	done
	for x in p f; do
		read -r _ _ _ got secs cpu wb bytes mps _ <<<"$(median_of "$tsv" "$x" "$len")"
		printf -v "${x}_got" '%s' "$got"; printf -v "${x}_secs" '%s' "$secs"
		printf -v "${x}_mps" '%s' "$(awk -v v="$mps" 'BEGIN { printf "%.0f", v }')"
		printf -v "${x}_cpu" '%s' "$(awk -v c="$cpu" -v n="$got" 'BEGIN { printf "%.0f", n ? c / n / 1000 : 0 }')"
		printf -v "${x}_msz" '%s' "$(fdiv "$bytes" "$got" %.0f)"
		printf -v "${x}_wpm" '%s' "$(fdiv "$wb" "$got" %.0f)"
		printf -v "${x}_wr" '%s' "$(fdiv "$wb" "$bytes" %.2f)"
		printf -v "${x}_range" '%s' "$(range_of "$tsv" "$x" "$len")"
		printf -v "${x}_exited" '%s' "$(awk -v s="$x" -v l="$len" '$1 == s && $2 == l { t += $10 } END { print t + 0 }' "$tsv")"
	done
}
RUNS_TSV=$B/runs.txt
: >"$RUNS_TSV"
TP_TABLE=""
EXITED_NOTE=""
for r in $RUNS; do
	N=${r%%:*}; LEN=${r##*:}
	load_series "$RUNS_TSV" "$N" "$LEN" "$POSTIE_PID" "$PORT_POSTIE" "$B/postie/mail/demo" "$PORT_PF" ""
	TP_TABLE+="| SMTP→mbox msgs/s, ${LEN} B × ${N}, fsync on (median run) | ${p_mps} (${p_got} in ${p_secs} s)${p_range} | ${f_mps} (${f_got} in ${f_secs} s)${f_range} | $(fdiv "$p_mps" "$f_mps") |
| CPU µs per message, ${LEN} B | ${p_cpu} | ${f_cpu} | $(fdiv "$p_cpu" "$f_cpu") |
| mbox bytes per message, ${LEN} B | ${p_msz} | ${f_msz} | $(fdiv "$p_msz" "$f_msz") |
| bytes written per message, ${LEN} B | ${p_wpm} | ${f_wpm} | $(fdiv "$p_wpm" "$f_wpm") |
| bytes written / mbox bytes, ${LEN} B | ${p_wr} | ${f_wr} | $(fdiv "$p_wr" "$f_wr") |
"
	EXITED_NOTE+="${LEN} B: postie ${p_exited}, postfix ${f_exited} processes exited during the runs. "
done

# 4g. submission over TLS: STARTTLS (full handshake) + AUTH PLAIN, one
# message per session, to postie-rsa's submission port and Postfix's
# submission service (Cyrus SASL, sasldb). Without SASL on the Postfix side
# (or AUTH in postie): STARTTLS on the smtp ports, no AUTH, for both.
TLS_TP_TABLE=""
if [ "$HAVE_TLS" = 1 ]; then
	TLS_TSV=$B/runs-tls.txt
	: >"$TLS_TSV"
	if [ "$PF_SASL" = 1 ]; then
		# postie's submission checks that the sender is the login's.
		LOAD_SENDER=demo@test.lan
		LOAD_USER=demo tp_pp=$PORT_PT_SUB tp_fp=$PORT_PF_SUB tp_what="STARTTLS + AUTH PLAIN (submission)"
	else
		LOAD_SENDER=$SENDER
		LOAD_USER=- tp_pp=$PORT_PT_SMTP tp_fp=$PORT_PF_SMTP tp_what="STARTTLS, no AUTH (no SASL for Postfix)"
		TLS_NOTE+="TLS submission runs without AUTH: $([ "$HAVE_AUTH" = 1 ] && echo "saslpasswd2 (sasl2-bin) missing" || echo "no AUTH in this postie"). "
	fi
	for r in $TLS_RUNS; do
		N=${r%%:*}; LEN=${r##*:}
		load_series "$TLS_TSV" "$N" "$LEN" "$POSTIE_RSA_PID" "$tp_pp" "$B/postie-rsa/mail/demo" "$tp_fp" " over TLS"
		TLS_TP_TABLE+="| ${tp_what} msgs/s, RSA 2048, ${LEN} B × ${N}, one message per session (median run) | ${p_mps} (${p_got} in ${p_secs} s)${p_range} | ${f_mps} (${f_got} in ${f_secs} s)${f_range} | $(fdiv "$p_mps" "$f_mps") |
| CPU µs per message over TLS, ${LEN} B | ${p_cpu} | ${f_cpu} | $(fdiv "$p_cpu" "$f_cpu") |
"
		EXITED_NOTE+="TLS ${LEN} B: postie ${p_exited}, postfix ${f_exited} processes exited during the runs. "
	done
	LOAD_USER=
fi

# 4h. relay: smtp-source -> server -> smtp-sink on $SINK_ADDR. postie-relay
# is its own process (the plain postie above keeps no relay settings);
# Postfix is the same instance, whose relayhost is the sink. Last, so that
# the smtp processes Postfix starts here are in none of the rows above.
RELAY_TABLE=""
RELAY_NOTE=""
# postie reports its longest loop stall when it stops ("stopping (signal);
# longest loop stall 12.345 ms; most fsyncs in one pass 2").
stall_of() { # LOG: "12.345 ms", or nothing
	sed -n 's/.*longest loop stall \([0-9][0-9.]* *[mu]*s\).*/\1/p' "$1" | tail -1
}
RELAY_STALL="n/a"
rm -rf "$B/postie-relay"
mkdir -p "$B/postie-relay/mail" "$B/postie-relay/spool"
echo "demo:" >"$B/postie-relay/users"
cat >"$B/postie-relay/postie.conf" <<EOF
hostname mail.test.lan
listen smtp 127.0.0.1:$PORT_PR
users ./users
mail_dir ./mail
spool_dir ./spool
local_domains test.lan
max_message_size 10M
max_connections 256
relay_networks 127.0.0.0/8
smarthost $SINK_ADDR:$PORT_SINK plain
queue_retry 1s 2s
EOF
# dns_server only where the build has DNS: a port where nothing answers,
# so that nothing is ever asked of the machine's resolver.
cp "$B/postie-relay/postie.conf" "$B/postie-relay/dns.conf"
echo "dns_server 127.0.0.53:9" >>"$B/postie-relay/dns.conf"
if (cd "$B/postie-relay" && timeout 10 "$POSTIE_BIN" -c dns.conf -t) >"$B/postie-relay/check.log" 2>&1; then
	mv "$B/postie-relay/dns.conf" "$B/postie-relay/postie.conf"
	RELAY_OK=1
elif (cd "$B/postie-relay" && timeout 10 "$POSTIE_BIN" -c postie.conf -t) >"$B/postie-relay/check.log" 2>&1; then
	rm -f "$B/postie-relay/dns.conf"
	RELAY_OK=1
else
	RELAY_OK=0
	RELAY_NOTE="no relay rows: this postie refuses the relay configuration ($(head -c 200 "$B/postie-relay/check.log" | tr '\n' ' ')). "
fi
if [ "$RELAY_OK" = 1 ]; then
	: >"$SINK_OUT"
	# smtp-sink drops root for nobody (-u); bounded by timeout(1) as well.
	timeout 3600 smtp-sink -4 -c -u nobody "$SINK_ADDR:$PORT_SINK" 256 >"$SINK_OUT" 2>"$BA/sink.err" &
	SINK_PID=$!
	(cd "$B/postie-relay" && exec "$POSTIE_BIN" -c postie.conf >postie.log 2>&1) &
	POSTIE_RELAY_PID=$!
	if ! wait_listen "$PORT_SINK" 10; then
		RELAY_OK=0; RELAY_NOTE="no relay rows: smtp-sink did not listen ($(head -c 200 "$BA/sink.err" | tr '\n' ' ')). "
	elif ! wait_listen "$PORT_PR" 10; then
		RELAY_OK=0; RELAY_NOTE="no relay rows: postie-relay did not listen ($(head -c 200 "$B/postie-relay/postie.log" | tr '\n' ' ')). "
	fi
fi
[ -z "$RELAY_NOTE" ] || say "warning: $RELAY_NOTE"
if [ "$RELAY_OK" = 1 ]; then
	RELAY_TSV=$B/runs-relay.txt
	: >"$RELAY_TSV"
	LOAD_RCPT=$RELAY_RCPT
	for r in $RELAY_RUNS; do
		N=${r%%:*}; LEN=${r##*:}
		load_series "$RELAY_TSV" "$N" "$LEN" "$POSTIE_RELAY_PID" "$PORT_PR" sink "$PORT_PF" " relayed to smtp-sink" sink
		RELAY_TABLE+="| relay msgs/s, SMTP→queue→smtp-sink, ${LEN} B × ${N}, fsync on (median run) | ${p_mps} (${p_got} in ${p_secs} s)${p_range} | ${f_mps} (${f_got} in ${f_secs} s)${f_range} | $(fdiv "$p_mps" "$f_mps") |
| CPU µs per relayed message, ${LEN} B | ${p_cpu} | ${f_cpu} | $(fdiv "$p_cpu" "$f_cpu") |
| bytes written per relayed message, ${LEN} B | ${p_wpm} | ${f_wpm} | $(fdiv "$p_wpm" "$f_wpm") |
"
		EXITED_NOTE+="relay ${LEN} B: postie ${p_exited}, postfix ${f_exited} processes exited during the runs. "
	done
	LOAD_RCPT=
	stop_pid "$POSTIE_RELAY_PID"
	RELAY_STALL=$(stall_of "$B/postie-relay/postie.log")
	[ -n "$RELAY_STALL" ] || RELAY_STALL="not reported"
	stop_pid "$SINK_PID"
	SINK_PID=
fi

# (its longest loop stall, see stall_of)
STALL="n/a"
if [ -d "/proc/$POSTIE_PID" ]; then
	kill -TERM "$POSTIE_PID" 2>/dev/null || true
	for _ in $(seq 50); do [ -d "/proc/$POSTIE_PID" ] || break; sleep 0.1; done
	STALL=$(stall_of "$B/postie/postie.log")
	[ -n "$STALL" ] || STALL="not reported"
fi
STALL_TLS="n/a"
if [ "$HAVE_TLS" = 1 ] && [ -d "/proc/$POSTIE_RSA_PID" ]; then
	stop_pid "$POSTIE_RSA_PID"
	STALL_TLS=$(stall_of "$B/postie-rsa/postie.log")
	[ -n "$STALL_TLS" ] || STALL_TLS="not reported"
fi

# ---- 5. report -----------------------------------------------------------
postie_relay_limits() { # outgoing session limits of the measured build
	local f=${POSTIE_BIN%/*}/.config d p
	d=$(sed -n 's/^CONFIG_RELAY_MAX_DELIVERIES=//p' "$f" 2>/dev/null)
	p=$(sed -n 's/^CONFIG_RELAY_MAX_PER_DEST=//p' "$f" 2>/dev/null)
	if [ -n "$p" ]; then
		echo "CONFIG_RELAY_MAX_DELIVERIES=$d, CONFIG_RELAY_MAX_PER_DEST=$p: at most $p sessions to the sink"
	else
		echo "outgoing session limits of this build unknown"
	fi
}
p_conn=$(fdiv "$((pc_rss_kb - p_idle_rss_kb))" "${pc_conns:-0}" %.1f)
f_conn=$(fdiv "$((fc_rss_kb - f_idle_rss_kb))" "${fc_conns:-0}" %.1f)
p_connp=$(fdiv "$((pc_pss_kb - p_idle_pss_kb))" "${pc_conns:-0}" %.1f)
f_connp=$(fdiv "$((fc_pss_kb - f_idle_pss_kb))" "${fc_conns:-0}" %.1f)
p_wmin=$(fdiv "$((P_WAKE * 60))" "$IDLE_WINDOW" %.0f)
f_wmin=$(fdiv "$((F_WAKE * 60))" "$IDLE_WINDOW" %.0f)
CPU_MODEL=$(sed -n 's/^model name[ \t]*: //p' /proc/cpuinfo | head -1)
PF_VER=$(postconf -h -c "$PFC" mail_version 2>/dev/null || echo "?")
POSTIE_VER=$(git log -1 --format='%h %cs' 2>/dev/null || echo "?")
DIRTY=$(git status --porcelain -- src Makefile Kconfig 2>/dev/null | wc -l)

OUT=$B/results.md
{
	echo "# postie vs Postfix — $(date -u '+%Y-%m-%d %H:%M UTC')$([ "$QUICK" = 1 ] && echo ' (--quick)')"
	echo
	echo "- machine: $(nproc) CPU, ${CPU_MODEL:-unknown CPU}, Linux $(uname -r), $(df -T "$B" | awk 'NR == 2 { print $2 }') on the bench directory; load average ${LOAD0} at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (other work on the machine makes timings and CPU noisy)"
	echo "- postie: commit ${POSTIE_VER}$([ "$DIRTY" -gt 0 ] && echo " + ${DIRTY} uncommitted files"), $(stat -c %s "$POSTIE_BIN")-byte binary (${BUILD_NOTE}), one process"
	echo "- Postfix ${PF_VER}: private instance (build/bench/postfix/etc), virtual(8) mbox delivery, default fsyncs, ${f_idle_pids} processes when idle"
	echo
	echo "| metric | postie | Postfix | postie / Postfix |"
	echo "|---|---:|---:|---:|"
	echo "| idle RSS, kB (Postfix: sum of ${f_idle_pids} processes) | ${p_idle_rss_kb} | ${f_idle_rss_kb} | $(fdiv "$p_idle_rss_kb" "$f_idle_rss_kb") |"
	echo "| idle PSS, kB | ${p_idle_pss_kb} | ${f_idle_pss_kb} | $(fdiv "$p_idle_pss_kb" "$f_idle_pss_kb") |"
	echo "| RSS per idle connection, kB (${pc_conns:-0} / ${fc_conns:-0} greeted) | ${p_conn} | ${f_conn} | $(fdiv "$p_conn" "$f_conn") |"
	echo "| PSS per idle connection, kB | ${p_connp} | ${f_connp} | $(fdiv "$p_connp" "$f_connp") |"
	printf '%s' "$TLS_MEM_TABLE"
	echo "| wake-ups (context switches) in ${IDLE_WINDOW} s idle (goal 0) | ${P_WAKE} | ${F_WAKE} | $(fdiv "$P_WAKE" "$F_WAKE") |"
	echo "| wake-ups per minute idle$([ "$IDLE_WINDOW" = 60 ] || echo " (scaled from ${IDLE_WINDOW} s)") | ${p_wmin} | ${f_wmin} | $(fdiv "$p_wmin" "$f_wmin") |"
	printf '%s' "$TP_TABLE"
	printf '%s' "$HS_TABLE"
	printf '%s' "$TLS_TP_TABLE"
	printf '%s' "$RELAY_TABLE"
	echo "| longest loop stall under load (postie's own report) | ${STALL} | n/a (one process per session) | |"
	[ -z "$RELAY_TABLE" ] || echo "| longest loop stall, relay runs (postie-relay) | ${RELAY_STALL} | n/a | |"
	[ "$HAVE_TLS" = 0 ] || echo "| longest loop stall, TLS runs (postie-rsa: handshakes, STARTTLS$([ "$HAVE_AUTH" = 1 ] && echo ' + AUTH') load) | ${STALL_TLS} | n/a | |"
	echo "| binary size, stripped, static x86_64, Kconfig defaults (TLS, AUTH) (Postfix: ${PF_SIZE_NOTE}, dynamic) | ${SIZE_TLS} | ${SIZE_PF} | $(fdiv "$SIZE_TLS" "$SIZE_PF") |"
	echo "| binary size, same without CONFIG_TLS (and AUTH) | ${SIZE_NOTLS} | n/a | |"
	echo "| binary size, alerts-only board (make BOARD=alerts: mips_24kc, static, stripped) | ${SIZE_ALERTS} | n/a | |"
	echo
	echo "Notes: ${STRACE_LINE}. ${EXITED_NOTE}${TLS_NOTE}${RELAY_NOTE}"
	echo
	echo "- Bytes written = write_bytes - cancelled_write_bytes of /proc/PID/io: pages dirtied"
	echo "  (4 KiB each, so appending 2 KiB to an mbox counts one or two pages), minus pages of"
	echo "  files removed before writeback. File system journal writes are not included."
	echo "  postie: its one process; Postfix: master and all descendants, which run with"
	echo "  max_use = 100000 so that none exits and loses its counters. Both log every"
	echo "  message to a file (postie: stderr; Postfix: postlogd to maillog_file), counted."
	echo "- CPU = run time from /proc/PID/schedstat plus cutime+cstime (reaped children) of the"
	echo "  same processes; smtp-source's own CPU is not counted."
	echo "- RSS sums count shared pages (libc, program text) once per process; PSS splits them."
	echo "- Postfix's 250 comes before delivery: its time runs until the mbox holds every message"
	echo "  and the queue is empty. postie answers 250 after the mbox fsync. Both fsync the mbox"
	echo "  per message; Postfix also fsyncs its queue file."
	if [ -n "$RELAY_TABLE" ]; then
		echo "- Relay: smtp-source ($SESSIONS sessions, one message per session) to ${RELAY_RCPT#*@} (not local) -> server ->"
		echo "  smtp-sink on $SINK_ADDR (plain SMTP, throws the mail away; its CPU is not counted). postie:"
		echo "  postie-relay, its own process (relay_networks 127.0.0.0/8, smarthost $SINK_ADDR:PORT plain,"
		echo "  queue_retry 1s 2s), $(postie_relay_limits);"
		echo "  it answers 250 after the queue file's fsync. Postfix: the same instance, relayhost ="
		echo "  [$SINK_ADDR]:PORT, relay transport smtp(8)"
		echo "  (its defaults: destination concurrency up to 20, connection cache on demand); its 250 comes after"
		echo "  the queue file's fsync too. Time until smtp-sink has counted all N (-c counters); bytes written:"
		echo "  queue files (written, fsynced, removed after delivery) and logs, as above."
	fi
	if [ "$HAVE_TLS" = 1 ]; then
		echo "- TLS: self-signed RSA 2048 and EC P-256 certificates (build/bench/tls). postie: two more"
		echo "  processes with the same binary, postie-rsa (smtp + STARTTLS, smtps$([ "$HAVE_AUTH" = 1 ] && echo ', submission')) and postie-ec"
		echo "  (smtps), max_tls_sessions 256; the plain postie and Postfix's plain port, above, have no TLS."
		echo "  Postfix: smtpd services with smtpd_tls_wrappermode=yes (RSA; EC through -o"
		echo "  smtpd_tls_cert_file/key_file), smtpd_tls_security_level=may on a STARTTLS port, tlsmgr and"
		echo "  smtpd_tls_session_cache_database = btree:\${data_directory}/smtpd_scache."
		echo "- Handshakes: benchlib.py tlsrate, TLS 1.2 for both (all postie speaks; the client caps it),"
		echo "  no certificate check, connect + handshake + read the 220 greeting + close, for ${HS_SECS} s"
		echo "  per row. Full: a new SSLContext and no session each time. Resumed: the session of each"
		echo "  client's first connection (postie: session ID cache; Postfix: session tickets). The client"
		echo "  (Python, OpenSSL) runs on the same $(nproc) CPUs: the server CPU rows are the cleaner figure."
		echo "  Server CPU = as above, over the postie process or all Postfix processes (incl. tlsmgr)."
		echo "- Idle TLS connections: 200 smtps connections to postie-ec / Postfix's EC service, each"
		echo "  greeted, neither having had a connection before: (RSS with them - before) / 200; postie's"
		echo "  includes the connection slot and its TLS pool entry, Postfix's an smtpd process each."
		echo "- TLS submission: benchlib.py submit, $SESSIONS client processes, one message per session,"
		echo "  a full handshake each; $([ "$PF_SASL" = 1 ] && echo "AUTH PLAIN as demo: postie checks a \$6\$ (SHA-512 crypt) hash from \`postie passwd\`
  (cached after the first login), Postfix Cyrus SASL against a sasldb (auxprop, plaintext secret)." || echo "no AUTH (see the note above).")"
	fi
	echo
	echo "Commands (from the repository root; ports chosen at run time):"
	echo
	echo '```'
	echo "$BUILD_CMD"
	echo "(cd $B/postie && postie -c postie.conf)"
	echo "postfix -c $B/postfix/etc start"
	[ -z "$RELAY_TABLE" ] || echo "(cd $B/postie-relay && postie -c postie.conf)"
	[ -z "$RELAY_TABLE" ] || echo "smtp-sink -4 -c -u nobody $SINK_ADDR:PORT 256 >$B/sink.out"
	for c in "${CMDS[@]}"; do echo "$c"; done
	[ "$HAVE_TLS" = 0 ] || printf '%s\n' "${HS_CMDS[@]}" | sort -u
	[ "$HAVE_TLS" = 0 ] || echo "/usr/bin/python3 tests/bench/benchlib.py hold PORT $IDLE_CONNS 60 tls   # idle TLS connections"
	echo "make O=$B/size-tls CONFIG_SRC=$B/size-tls.config; make O=$B/size-notls CONFIG_SRC=$B/size-notls.config"
	echo "make BOARD=alerts   # build/board-alerts/postie"
	echo "/usr/bin/python3 tests/bench/benchlib.py hold PORT $IDLE_CONNS 60   # idle connections"
	echo "/usr/bin/python3 tests/bench/benchlib.py snap PID                  # /proc totals"
	echo '```'
} >"$OUT"
cat "$OUT"
# The mboxes (up to a few hundred MB in a full run) are not kept.
rm -f "$B/postie/mail/demo" "$BA/postfix/mail/demo" "$B/postie-rsa/mail/demo"
