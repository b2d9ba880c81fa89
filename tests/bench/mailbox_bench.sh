#!/bin/bash
# tests/bench/mailbox_bench.sh [--quick] — POP3 and IMAP on a large mbox:
# postie next to Dovecot, same machine, same run, the SAME mbox file, as
# ratios postie/Dovecot (IMAP SELECT/FETCH and POP3 STAT/RETR times on a
# 10,000-message mbox; README.md, Measured figures).
#
#   POSTIE_BIN=FILE  measure that binary instead of building one (it must
#             have IMAP and TLS and room for 2 x IDLE_SESSIONS connections).
#   --quick   1,000 messages (default: 10,000), ~2 KB each; 3 runs either
#             way; idle windows of 10 s instead of 60 s.
#
# IMAP (when the binary has it): the same rounds with imaplib: LOGIN,
# SELECT INBOX, FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE), FETCH 1:*
# (BODY.PEEK[]) (every message; \Seen untouched), SEARCH TEXT "quoted"
# (the word of every 50th message's ">From " line), LOGOUT; cold and warm
# as for POP3. Then, per server, IDLE_SESSIONS (100) sessions that log in,
# SELECT INBOX and IDLE, plain (imap) and TLS (imaps, TLS 1.2, a self-
# signed EC P-256 certificate in build/mbench/tls for both): server RSS and
# PSS before and with them, their context switches over the idle window.
# And both servers with no client at all: context switches over the idle
# window (wake-ups per idle minute). Dovecot gets ssl = yes with the same
# certificate, default_process_limit = 300 and mail_max_userip_connections
# = 300 (its defaults, 100 and 10, would refuse 100 sessions of one user
# from one address); nothing else of its defaults changes.
#
# What it does (everything on 127.0.0.1, every wait bounded):
#  1. Installs what is missing: dovecot-pop3d and dovecot-imapd (the IMAP
#     listener is there for later IMAP rows), python3, iproute2. No system
#     Dovecot may run: a temporary policy-rc.d (exit 101) during the install
#     (unless one is already there), and afterwards any master of the system
#     instance (/run/dovecot/master.pid, or the systemd units) is stopped.
#     The system configuration in /etc/dovecot is never read or changed.
#  2. Builds postie as `make` would (the repo .config or the Kconfig
#     defaults) into build/mbench/obj/postie; it must have POP3.
#  3. Makes the mbox once per size (build/mbench/cache/demo-N.mbox: mboxrd,
#     "From " lines, 1.5-2.5 KB messages, every 50th with a ">From " body
#     line) and copies it to build/mbench/data/mail/demo, the INBOX of both
#     servers. One users file (demo with a $6$ hash from `postie passwd`)
#     serves both. Dovecot's mail user: the running user, but Dovecot
#     refuses mail access as uid 0 ("userdb returned 0 as uid"), so as root
#     it is nobody:nogroup, which owns Dovecot's index directory. The mbox
#     and mail_dir belong to the running user (postie serves only a mailbox
#     owned by its own euid; its lock opens the mbox O_RDWR for the dotlock
#     and an fcntl write lock). So, as root, Dovecot can only read the mbox,
#     which is what is wanted: given a writable mbox, Dovecot rewrites it at
#     the first QUIT to add X-IMAPbase/X-UID/Content-Length headers (even
#     with mbox_lazy_writes and pop3_no_flag_updates); read-only, it keeps
#     UIDs in its index only and takes an fcntl read lock. As another user
#     (who could not install packages anyway) the same holds only for
#     Dovecot if the mbox is not writable by it: the script stops when the
#     mbox changes.
#  4. Starts postie (foreground child: listen pop3, users, mail_dir,
#     spool_dir, plaintext_auth_networks 127.0.0.0/8, dns_server
#     127.0.0.53:9, max_connections and max_connections_per_ip 256: the
#     100 IDLE sessions come from one address) and a private Dovecot 2.3 (`dovecot -F -c` our own file,
#     its base_dir, state_dir, logs and index under build/mbench/dovecot/;
#     pop3 and imap on 127.0.0.1:<free port>, no pop3s/imaps, ssl = no,
#     disable_plaintext_auth = no, passdb passwd-file (CRYPT) on the same
#     users file, userdb static with the uid/gid of the mail owner (below),
#     mail_location = mbox:<data>/folders:INBOX=<data>/mail/%u:INDEX=<own
#     dir>, mbox_write_locks = fcntl dotlock, pop3_no_flag_updates = yes).
#     Dovecot runs with its own defaults otherwise (a new pop3-login and
#     pop3 process per connection, auth process, no auth cache), as
#     installed; postie's $6$ check is not cached either.
#  5. One untimed login to each (spawns Dovecot's auth, warms the page
#     cache), then 3 rounds; in each, for each server (the order alternates
#     per round): delete its index (postie: mail_dir/.postie/; Dovecot: its
#     INDEX dir), a "cold" session, then a "warm" session. A session
#     (tests/bench/mailbox_bench.py, Python poplib) times: connect +
#     greeting + USER/PASS + STAT; UIDL; RETR of every message; then QUIT.
#     Never DELE: neither server may write the mbox, checked after every
#     session (inode, size, mtime) and by a SHA-256 at the end.
#  6. Memory: one more warm session per server with a sampler (every 50 ms)
#     summing VmRSS and Pss over the server's processes (postie: its one
#     process; Dovecot: master and all descendants: log, config, anvil,
#     stats, auth, pop3-login, pop3, ...); idle before it and peak during.
#  7. Prints a Markdown table (medians of the 3 runs, ratios postie/Dovecot:
#     lower is better) and writes it to build/mbench/results.md with the
#     date and the machine.
# Timings live here only, never in pass/fail tests.
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
B=build/mbench
BA=$ROOT/$B
LIB=(/usr/bin/python3 tests/bench/mailbox_bench.py)

QUICK=0
for a in "$@"; do
	case $a in
	--quick) QUICK=1 ;;
	*) echo "usage: tests/bench/mailbox_bench.sh [--quick]" >&2; exit 2 ;;
	esac
done
N=10000
IDLE_WINDOW=60
if [ "$QUICK" = 1 ]; then N=1000; IDLE_WINDOW=10; fi
IDLE_SESSIONS=100
SEARCH_WORD=quoted
RUNS=3
MUSER=demo
MPASS=mbench-password
T_START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

say() { echo "mailbox_bench: $*" >&2; }
die() { say "error: $*"; exit 1; }

# ---- 1. packages ---------------------------------------------------------
have_pkg() { dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^ii'; }

install_pkgs() {
	local missing="" p policy_added=0 rc=0
	for p in dovecot-pop3d dovecot-imapd python3 iproute2; do
		have_pkg "$p" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	[ "$(id -u)" = 0 ] || die "missing packages:$missing (run as root or apt-get install them)"
	say "installing$missing"
	# No service start from a postinst: the system Dovecot must not run.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		policy_added=1
	fi
	timeout 600 apt-get update -qq || say "warning: apt-get update reported errors"
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq \
		--no-install-recommends $missing >/dev/null || rc=$?
	[ "$policy_added" = 0 ] || rm -f /usr/sbin/policy-rc.d
	[ "$rc" = 0 ] || die "apt-get install$missing failed"
}

stop_system_dovecot() {
	# The system instance (if a postinst, systemd or someone started it) is
	# stopped; ours has its own base_dir under build/mbench.
	local pidf=/run/dovecot/master.pid pid
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
		timeout 60 systemctl stop dovecot.socket dovecot.service >/dev/null 2>&1 || true
	fi
	[ -r "$pidf" ] || return 0
	pid=$(tr -dc 0-9 <"$pidf")
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 0
	grep -q dovecot "/proc/$pid/comm" 2>/dev/null || return 0
	say "stopping the system Dovecot (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
}

[ "$(id -u)" = 0 ] || die "run as root (the package install; Dovecot's master starts as root)"
install_pkgs
stop_system_dovecot
command -v dovecot >/dev/null || die "dovecot not found (package dovecot-core)"
DOVECOT_VERSION=$(dovecot --version | cut -d' ' -f1)
if ! id dovenull >/dev/null 2>&1 || ! id dovecot >/dev/null 2>&1; then die "no dovecot/dovenull users (package dovecot-core)"; fi

# ---- 2. postie build -----------------------------------------------------
mkdir -p "$B"
if [ -n "${POSTIE_BIN:-}" ]; then
	[ -x "$POSTIE_BIN" ] || die "POSTIE_BIN=$POSTIE_BIN is not an executable"
	POSTIE_BIN=$(cd "$(dirname "$POSTIE_BIN")" && pwd)/$(basename "$POSTIE_BIN")
	BUILD_NOTE="given binary (POSTIE_BIN)"
else
	# The repo .config (or the Kconfig defaults) with IMAP on and room for
	# the IDLE sessions (plain and TLS at once, and the timed sessions).
	{
		if [ -f .config ]; then grep -v '^CONFIG_MAX_CONNECTIONS=\|^CONFIG_MAX_TLS_SESSIONS=\|^# CONFIG_IMAP is not set\|^CONFIG_IMAP=' .config; fi
		echo "CONFIG_IMAP=y"
		echo "CONFIG_MAX_CONNECTIONS=256"
		echo "CONFIG_MAX_TLS_SESSIONS=256"
	} >"$B/bench.config"
	say "building postie ($([ -f .config ] && echo .config || echo Kconfig defaults) + CONFIG_IMAP=y, CONFIG_MAX_CONNECTIONS=256, CONFIG_MAX_TLS_SESSIONS=256)"
	timeout 600 make -s O="$B/obj" CONFIG_SRC="$B/bench.config" >"$B/build.log" 2>&1 ||
		{ tail -20 "$B/build.log" >&2; die "postie build failed (see $B/build.log)"; }
	POSTIE_BIN=$BA/obj/postie
	BUILD_NOTE="make O=$B/obj CONFIG_SRC=$B/bench.config: $([ -f .config ] && echo .config || echo Kconfig defaults) + CONFIG_IMAP=y, CONFIG_MAX_CONNECTIONS=256, CONFIG_MAX_TLS_SESSIONS=256"
fi
"$POSTIE_BIN" -V 2>/dev/null | grep -q '^features:.* pop3' || die "this postie has no POP3 (CONFIG_POP3)"
HAVE_IMAP=0
"$POSTIE_BIN" -V 2>/dev/null | grep -q '^features:.* imap' && HAVE_IMAP=1
[ "$HAVE_IMAP" = 1 ] || say "warning: this postie has no IMAP: POP3 rows only"
POSTIE_VERSION=$("$POSTIE_BIN" -V 2>/dev/null | head -1)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src 2>/dev/null || COMMIT="$COMMIT+changes"

# ---- 3. the mbox and the users file --------------------------------------
mkdir -p "$BA/cache"
MBOX_CACHE=$BA/cache/demo-$N.mbox
if [ ! -s "$MBOX_CACHE" ]; then
	say "making a $N-message mbox"
	timeout 300 "${LIB[@]}" genmbox "$MBOX_CACHE" "$N" >/dev/null || die "genmbox failed"
fi
[ "$(grep -c '^From ' "$MBOX_CACHE")" = "$N" ] || die "$MBOX_CACHE: not $N messages"

cleanup() {
	set +e
	stop_pid "${POSTIE_PID:-}"
	stop_pid "${DOVECOT_PID:-}"
}
stop_pid() { # PID: TERM, up to 10 s, then KILL
	[ -n "$1" ] && [ -d "/proc/$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 100); do [ -d "/proc/$1" ] || break; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$BA/data" "$BA/postie" "$BA/dovecot"
mkdir -p "$BA/data/mail" "$BA/data/folders" "$BA/postie/spool" \
	"$BA/dovecot/run" "$BA/dovecot/state" "$BA/dovecot/index" "$BA/dovecot/home"
MBOX=$BA/data/mail/$MUSER
cp "$MBOX_CACHE" "$MBOX"
if [ "$(id -u)" = 0 ]; then
	MAIL_OWNER=nobody
	id nobody >/dev/null 2>&1 || die "no user nobody (Dovecot refuses uid 0)"
	MAIL_UID=$(id -u nobody)
	MAIL_GID=$(id -g nobody)
	chown -R "$MAIL_UID:$MAIL_GID" "$BA/data/folders" "$BA/dovecot/index" "$BA/dovecot/home"
else
	MAIL_OWNER=$(id -un)
	MAIL_UID=$(id -u)
	MAIL_GID=$(id -g)
fi
chmod 0644 "$MBOX"
MBOX_BYTES=$(stat -c %s "$MBOX")
MBOX_SHA=$(sha256sum "$MBOX" | cut -d' ' -f1)
MBOX_STAT=$(stat -c '%i %s %Y' "$MBOX")

HASH=$(printf '%s' "$MPASS" | timeout 10 "$POSTIE_BIN" passwd) || HASH=
# shellcheck disable=SC2016
case $HASH in '$6$'*) ;; *) die "postie passwd gave no \$6\$ hash" ;; esac
echo "$MUSER:$HASH" >"$BA/users"
# Dovecot's auth process runs as the dovecot user and reads it too.
chmod 644 "$BA/users"

# ---- 4. servers ------------------------------------------------------------
listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q LISTEN; }
wait_listen() { # PORT SECONDS
	for _ in $(seq $(($2 * 10))); do
		listening "$1" && return 0
		sleep 0.1
	done
	return 1
}
PORTS_USED=" "
newport() { # NAME: a free port on 127.0.0.1 not handed out before
	local p
	for _ in $(seq 20); do
		p=$("${LIB[@]}" freeport)
		case $PORTS_USED in *" $p "*) continue ;; esac
		PORTS_USED="$PORTS_USED$p "
		printf -v "$1" '%s' "$p"
		return 0
	done
	die "no free port"
}
newport PORT_POSTIE
newport PORT_DC_POP3
newport PORT_DC_IMAP
newport PORT_P_IMAP
newport PORT_P_IMAPS
newport PORT_DC_IMAPS

# A self-signed EC P-256 certificate for both servers' imaps, made once.
TLSD=$BA/tls
mkdir -p "$TLSD"
if [ ! -s "$TLSD/ec.crt" ]; then
	timeout 120 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
		-subj "/CN=mail.test.lan" -keyout "$TLSD/ec.key" -out "$TLSD/ec.crt" >"$TLSD/openssl.log" 2>&1 ||
		{ rm -f "$TLSD/ec.crt"; die "openssl req failed ($TLSD/openssl.log)"; }
fi
# Dovecot's master reads the key as root; postie as the running user.
chmod 600 "$TLSD/ec.key"

cat >"$BA/postie/postie.conf" <<EOF
hostname mail.test.lan
listen pop3 127.0.0.1:$PORT_POSTIE
users $BA/users
mail_dir $BA/data/mail
spool_dir $BA/postie/spool
local_domains test.lan
plaintext_auth_networks 127.0.0.0/8
dns_server 127.0.0.53:9
max_connections 256
max_connections_per_ip 256
EOF
if [ "$HAVE_IMAP" = 1 ]; then
	cat >>"$BA/postie/postie.conf" <<EOF
listen imap 127.0.0.1:$PORT_P_IMAP
listen imaps 127.0.0.1:$PORT_P_IMAPS
tls_cert $TLSD/ec.crt
tls_key $TLSD/ec.key
max_tls_sessions 256
EOF
fi
timeout 10 "$POSTIE_BIN" -t -c "$BA/postie/postie.conf" >"$BA/postie/check.log" 2>&1 ||
	{ cat "$BA/postie/check.log" >&2; die "postie -t rejected the configuration"; }
start_postie() { # a fresh postie process (foreground child), log appended
	(cd "$BA/postie" && exec "$POSTIE_BIN" -c postie.conf >>postie.log 2>&1) &
	POSTIE_PID=$!
}
start_postie

DC=$BA/dovecot
cat >"$DC/dovecot.conf" <<EOF
# A private Dovecot for tests/bench/mailbox_bench.sh; nothing from /etc/dovecot.
instance_name = mbench
base_dir = $DC/run
state_dir = $DC/state
log_path = $DC/dovecot.log
protocols = pop3 imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <$TLSD/ec.crt
ssl_key = <$TLSD/ec.key
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
# 100 IDLE sessions of one user from one address (defaults: 100 processes
# per service, 10 connections per user and address).
default_process_limit = 300
protocol imap {
  mail_max_userip_connections = 300
}
auth_mechanisms = plain
first_valid_uid = $MAIL_UID
first_valid_gid = $MAIL_GID
mail_location = mbox:$BA/data/folders:INBOX=$BA/data/mail/%u:INDEX=$DC/index/%u
mbox_read_locks = fcntl
mbox_write_locks = fcntl dotlock
pop3_no_flag_updates = yes
passdb {
  driver = passwd-file
  args = scheme=CRYPT username_format=%u $BA/users
}
userdb {
  driver = static
  args = uid=$MAIL_UID gid=$MAIL_GID home=$DC/home/%u
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $PORT_DC_POP3
  }
  inet_listener pop3s {
    port = 0
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $PORT_DC_IMAP
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $PORT_DC_IMAPS
  }
}
EOF
timeout 30 doveconf -c "$DC/dovecot.conf" -n >"$DC/doveconf.out" 2>&1 ||
	{ cat "$DC/doveconf.out" >&2; die "doveconf rejected $DC/dovecot.conf"; }
dovecot -F -c "$DC/dovecot.conf" >"$DC/master.log" 2>&1 &
DOVECOT_PID=$!

wait_listen "$PORT_POSTIE" 10 || { cat "$BA/postie/postie.log" >&2; die "postie did not listen on $PORT_POSTIE"; }
wait_listen "$PORT_DC_POP3" 20 || { cat "$DC/master.log" "$DC/dovecot.log" >&2; die "Dovecot did not listen on $PORT_DC_POP3"; }
if [ "$HAVE_IMAP" = 1 ]; then
	wait_listen "$PORT_DC_IMAP" 10 || die "Dovecot did not listen on $PORT_DC_IMAP"
	wait_listen "$PORT_P_IMAP" 10 || die "postie did not listen on $PORT_P_IMAP"
fi

# ---- 5. sessions -----------------------------------------------------------
server_port() { # SERVER [pop3|imap|imaps]
	case $1:${2:-pop3} in
	postie:pop3) echo "$PORT_POSTIE" ;; dovecot:pop3) echo "$PORT_DC_POP3" ;;
	postie:imap) echo "$PORT_P_IMAP" ;; dovecot:imap) echo "$PORT_DC_IMAP" ;;
	postie:imaps) echo "$PORT_P_IMAPS" ;; dovecot:imaps) echo "$PORT_DC_IMAPS" ;;
	esac
}
server_pid() { case $1 in postie) echo "$POSTIE_PID" ;; dovecot) echo "$DOVECOT_PID" ;; esac; }
drop_index() {
	case $1 in
	postie) rm -rf "$BA/data/mail/.postie" ;;
	dovecot) rm -rf "${DC:?}/index/"* ;;
	esac
}
check_mbox() { # WHEN
	[ "$(stat -c '%i %s %Y' "$MBOX")" = "$MBOX_STAT" ] || die "the mbox changed ($1)"
}
session() { # SERVER OUTFILE [--sample]: one POP3 session (PROTO=imap: IMAP)
	local s=$1 out=$2 proto=${PROTO:-pop3} args
	shift 2
	args=("$proto" "$(server_port "$s" "$proto")" "$MUSER" "$MPASS" "$N")
	[ "$proto" = pop3 ] || args+=("$SEARCH_WORD")
	timeout 900 "${LIB[@]}" "${args[@]}" "$@" "$(server_pid "$s")" >"$out" 2>"$out.err" ||
		{ cat "$out.err" >&2; tail -n 5 "$BA/postie/postie.log" "$DC/dovecot.log" >&2; die "$s: $proto session failed"; }
	check_mbox "after a $s session"
	echo "index_bytes=$(index_bytes "$s")" >>"$out"
}
index_bytes() { # SERVER: bytes in its index files now
	local d
	case $1 in
	postie) d=$BA/data/mail/.postie ;;
	dovecot) d=$DC/index ;;
	esac
	find "$d" -type f -printf '%s\n' 2>/dev/null | awk '{ t += $1 } END { print t + 0 }'
}
R=$BA/runs
rm -rf "$R"
mkdir -p "$R"
rounds() { # KIND: a warm-up session each, then RUNS rounds (alternating
	# order) of: index deleted, a cold session, a warm one; results in
	# $R/SERVER.KIND{warmup,cold.N,warm.N}
	local kind=$1 r s order
	say "${PROTO:-pop3} warm-up session to each server"
	for s in postie dovecot; do session "$s" "$R/$s.${kind}warmup"; done
	for r in $(seq "$RUNS"); do
		order="postie dovecot"
		[ $((r % 2)) = 0 ] && order="dovecot postie"
		for s in $order; do
			say "${PROTO:-pop3} run $r/$RUNS: $s cold, then warm ($N messages)"
			drop_index "$s"
			session "$s" "$R/$s.${kind}cold.$r"
			session "$s" "$R/$s.${kind}warm.$r"
		done
	done
}
rounds ""
if [ "$HAVE_IMAP" = 1 ]; then
	PROTO=imap rounds imap.
fi

# ---- 6. memory -------------------------------------------------------------
say "memory while serving (one more warm session each)"
for s in postie dovecot; do session "$s" "$R/$s.mem" --sample; done
if [ "$HAVE_IMAP" = 1 ]; then
	for s in postie dovecot; do PROTO=imap session "$s" "$R/$s.imap.mem" --sample; done
fi

# ---- 6b. idle: wake-ups with no client, then IDLE sessions ---------------
snapv() { # PREFIX PID: benchlib.py snap totals into PREFIX_key variables
	local k v
	while IFS='=' read -r k v; do printf -v "$1_$k" '%s' "$v"; done < <(/usr/bin/python3 tests/bench/benchlib.py snap "$2")
}
# ctxt_delta SET0 SET1: context switches between two benchlib.py ctxtsets,
# over the processes alive at both ends (Dovecot's come and go: an exited
# process takes its counts with it)
ctxt_delta() {
	awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, ",");
		for (i = 1; i <= n; i++) { split(x[i], y, ":"); c[y[1]] = y[2] }
		n = split(b, x, ","); t = 0
		for (i = 1; i <= n; i++) { split(x[i], y, ":"); if (y[1] in c) t += y[2] - c[y[1]] }
		print t }'
}
say "idle window ${IDLE_WINDOW}s, no clients"
snapv pw0 "$POSTIE_PID"; snapv dw0 "$DOVECOT_PID"
sleep "$IDLE_WINDOW"
snapv pw1 "$POSTIE_PID"; snapv dw1 "$DOVECOT_PID"
P_WAKE=$(ctxt_delta "$pw0_ctxtset" "$pw1_ctxtset"); D_WAKE=$(ctxt_delta "$dw0_ctxtset" "$dw1_ctxtset")
D_IDLE_PIDS=$dw1_pids
# idle_measure SERVER plain|tls: IDLE_SESSIONS sessions; sets
# I_<server>_<mode>_{n,rss,pss,ctxt,pids} (deltas against before them)
idle_measure() {
	local s=$1 mode=$2 pid fifo=$BA/idle.fifo line n=0 hp k port
	port=$(server_port "$s" "$([ "$mode" = tls ] && echo imaps || echo imap)")
	if [ "$s" = postie ]; then
		# A fresh process: memory touched by earlier sessions (slots,
		# buffers) would otherwise not show up as added.
		stop_pid "$POSTIE_PID"
		start_postie
		wait_listen "$port" 10 || die "postie did not listen on $port after its restart"
		sleep 1
	fi
	pid=$(server_pid "$s")
	rm -f "$fifo"; mkfifo "$fifo"
	snapv i0 "$pid"
	exec 7> >(exec "${LIB[@]}" idle "$port" "$MUSER" "$MPASS" "$IDLE_SESSIONS" "$mode" 300 >"$fifo" 2>"$BA/idle.err")
	hp=$!
	read -r -t 300 line <"$fifo" || true
	n=${line#ready }
	[ -n "$n" ] || n=0
	sleep 2
	snapv i1 "$pid"
	sleep "$IDLE_WINDOW"
	snapv i2 "$pid"
	i2_ctxt=$(ctxt_delta "$i1_ctxtset" "$i2_ctxtset")
	i1_ctxt=0
	exec 7>&-
	for _ in $(seq 100); do [ -d "/proc/$hp" ] || break; sleep 0.1; done
	rm -f "$fifo"
	k=I_${s}_${mode}
	printf -v "${k}_n" '%s' "$n"
	printf -v "${k}_rss" '%s' "$((i1_rss_kb - i0_rss_kb))"
	printf -v "${k}_pss" '%s' "$((i1_pss_kb - i0_pss_kb))"
	printf -v "${k}_pids" '%s' "$((i1_pids - i0_pids))"
	printf -v "${k}_ctxt" '%s' "$((i2_ctxt - i1_ctxt))"
	[ "$n" = "$IDLE_SESSIONS" ] || say "warning: $s $mode: only $n of $IDLE_SESSIONS IDLE sessions ($(head -c 300 "$BA/idle.err" | tr '\n' ' '))"
	# let the server settle (Dovecot's processes exit) before the next
	sleep 3
}
if [ "$HAVE_IMAP" = 1 ]; then
	for mode in plain tls; do
		for s in postie dovecot; do
			say "$IDLE_SESSIONS IMAP IDLE sessions ($mode) to $s, ${IDLE_WINDOW}s"
			idle_measure "$s" "$mode"
		done
	done
fi

[ "$(sha256sum "$MBOX" | cut -d' ' -f1)" = "$MBOX_SHA" ] || die "the mbox content changed"
[ "$(grep ^bytes= "$R/postie.warmup")" = "$(grep ^bytes= "$R/dovecot.warmup")" ] && SAME_BYTES=1 || SAME_BYTES=0
cleanup

# ---- 7. report ---------------------------------------------------------------
getv() { sed -n "s/^$2=//p" "$1"; }
median() { # FILE-PATTERN KEY: median of the values in the files
	local f
	for f in $1; do getv "$f" "$2"; done | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'
}
# cw_table KIND KEY:LABEL...: rows of cold and warm medians, postie and
# Dovecot, for the sessions $R/SERVER.KIND{cold,warm}.*, then server CPU;
# the warm rows (and cold for SELECT) also go to the combined rows file.
cw_table() {
	local kind=$1 k key pc dc pw dw proto
	shift
	proto=$([ -n "$kind" ] && echo IMAP || echo POP3)
	echo "| $N messages | postie cold | Dovecot cold | ratio | postie warm | Dovecot warm | ratio |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for k in "$@" server_cpu:"server CPU, whole session"; do
		key=${k%%:*}
		pc=$(median "$R/postie.${kind}cold.*" "$key"); dc=$(median "$R/dovecot.${kind}cold.*" "$key")
		pw=$(median "$R/postie.${kind}warm.*" "$key"); dw=$(median "$R/dovecot.${kind}warm.*" "$key")
		if [ "$key" = server_cpu ]; then
			echo "| ${k#*:} | $(fmt_c "$pc") | $(fmt_c "$dc") | $(ratio "$pc" "$dc") | $(fmt_c "$pw") | $(fmt_c "$dw") | $(ratio "$pw" "$dw") |"
		else
			echo "| ${k#*:} | $(fmt_s "$pc") | $(fmt_s "$dc") | $(ratio "$pc" "$dc") | $(fmt_s "$pw") | $(fmt_s "$dw") | $(ratio "$pw" "$dw") |"
		fi
		[ "$key" != select ] || echo "| $proto ${k#*:}, $N messages, cold (index deleted) | $(fmt_s "$pc") | $(fmt_s "$dc") | $(ratio "$pc" "$dc") |" >>"$ROWS"
		echo "| $proto ${k#*:}, $N messages, warm | $(fmt_s "$pw") | $(fmt_s "$dw") | $(ratio "$pw" "$dw") |" >>"$ROWS"
	done
}
fmt_s() { awk -v x="$1" 'BEGIN { if (x < 0.1) printf "%.4f s", x; else if (x < 10) printf "%.3f s", x; else printf "%.2f s", x }'; }
fmt_c() { awk -v x="$1" 'BEGIN { printf "%.2f s", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3g", a / b; else print "n/a" }'; }
kib() { awk -v x="$1" 'BEGIN { if (x >= 10240) printf "%.1f MiB", x / 1024; else printf "%d KiB", x }'; }

MB=$(awk -v b="$MBOX_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')
T_END=$(date +%s)
CPU=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)
[ -n "$CPU" ] || CPU=$(uname -m)
OUT=$BA/results.md
# Rows for tests/bench/table.sh: | metric | postie | Dovecot | ratio |
ROWS=$BA/rows.md
: >"$ROWS"
per() { awk -v a="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.1f", a / n; else print "n/a" }'; }
{
	echo "### POP3 on a ${N}-message mbox: postie and Dovecot$([ "$QUICK" = 1 ] && echo " (--quick)")"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc) CPU(s) ($CPU), $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"'),"
	echo "$POSTIE_VERSION ($COMMIT; $BUILD_NOTE), Dovecot $DOVECOT_VERSION from Debian;"
	echo "127.0.0.1, Python poplib, the same mbox file ($MB MB, $N messages of 1.5-2.5 KB) in the"
	echo "page cache for both; medians of $RUNS runs; cold = the server's index deleted"
	echo "first, warm = the session right after. Ratios postie/Dovecot: lower is better."
	echo
	cw_table "" login:"login + STAT" uidl:UIDL retr:"RETR of every message"
	echo "| client (poplib) CPU, whole session | $(fmt_c "$(median "$R/postie.cold.*" client_cpu)") | $(fmt_c "$(median "$R/dovecot.cold.*" client_cpu)") | | $(fmt_c "$(median "$R/postie.warm.*" client_cpu)") | $(fmt_c "$(median "$R/dovecot.warm.*" client_cpu)") | |"
	echo
	echo "| memory (warm session, sampled every 50 ms) | postie | Dovecot | ratio |"
	echo "|---|---:|---:|---:|"
	for k in rss_idle_kb:"RSS idle" rss_peak_kb:"RSS peak while serving" pss_idle_kb:"PSS idle" pss_peak_kb:"PSS peak while serving"; do
		key=${k%%:*}
		p=$(getv "$R/postie.mem" "$key"); d=$(getv "$R/dovecot.mem" "$key")
		echo "| ${k#*:} | $(kib "$p") | $(kib "$d") | $(ratio "$p" "$d") |"
	done
	echo "| processes while serving | $(getv "$R/postie.mem" pids_peak) | $(getv "$R/dovecot.mem" pids_peak) | |"
	echo
	if [ "$HAVE_IMAP" = 1 ]; then
		echo
		echo "### IMAP on the same mbox: postie and Dovecot"
		echo
		cw_table imap. login:"connect + LOGIN" select:"SELECT INBOX" fetch_meta:"FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)" fetch_body:"FETCH 1:* (BODY.PEEK[])" search:"SEARCH TEXT \"$SEARCH_WORD\""
		echo "| client (imaplib) CPU, whole session | $(fmt_c "$(median "$R/postie.imap.cold.*" client_cpu)") | $(fmt_c "$(median "$R/dovecot.imap.cold.*" client_cpu)") | | $(fmt_c "$(median "$R/postie.imap.warm.*" client_cpu)") | $(fmt_c "$(median "$R/dovecot.imap.warm.*" client_cpu)") | |"
		echo
		echo "SEARCH TEXT \"$SEARCH_WORD\" found $(getv "$R/postie.imap.warmup" hits) messages on postie, $(getv "$R/dovecot.imap.warmup" hits) on Dovecot; FETCH BODY.PEEK[] returned $(getv "$R/postie.imap.warmup" bytes) and $(getv "$R/dovecot.imap.warmup" bytes) bytes."
		echo
		echo "| memory (warm IMAP session, sampled every 50 ms) | postie | Dovecot | ratio |"
		echo "|---|---:|---:|---:|"
		for k in rss_idle_kb:"RSS idle" rss_peak_kb:"RSS peak while serving" pss_peak_kb:"PSS peak while serving"; do
			key=${k%%:*}
			p=$(getv "$R/postie.imap.mem" "$key"); d=$(getv "$R/dovecot.imap.mem" "$key")
			echo "| ${k#*:} | $(kib "$p") | $(kib "$d") | $(ratio "$p" "$d") |"
		done
		echo
		echo "### $IDLE_SESSIONS IMAP sessions in IDLE (LOGIN, SELECT INBOX, IDLE), ${IDLE_WINDOW} s"
		echo
		echo "| | postie | Dovecot | ratio |"
		echo "|---|---:|---:|---:|"
		for mode in plain tls; do
			m=$([ "$mode" = tls ] && echo "TLS (imaps)" || echo "plain (imap)")
			pn=I_postie_${mode}_n; dn=I_dovecot_${mode}_n
			pr=I_postie_${mode}_rss; dr=I_dovecot_${mode}_rss
			pp=I_postie_${mode}_pss; dp=I_dovecot_${mode}_pss
			pc=I_postie_${mode}_ctxt; dcx=I_dovecot_${mode}_ctxt
			pi=I_postie_${mode}_pids; di=I_dovecot_${mode}_pids
			echo "| $m: sessions idling | ${!pn} | ${!dn} | |"
			echo "| $m: RSS added, total | $(kib "${!pr}") | $(kib "${!dr}") | $(ratio "${!pr}" "${!dr}") |"
			echo "| $m: RSS per IDLE session, KiB | $(per "${!pr}" "${!pn}") | $(per "${!dr}" "${!dn}") | $(ratio "$(per "${!pr}" "${!pn}")" "$(per "${!dr}" "${!dn}")") |"
			echo "| $m: PSS per IDLE session, KiB | $(per "${!pp}" "${!pn}") | $(per "${!dp}" "${!dn}") | $(ratio "$(per "${!pp}" "${!pn}")" "$(per "${!dp}" "${!dn}")") |"
			echo "| $m: processes added | ${!pi} | ${!di} | |"
			echo "| $m: context switches in ${IDLE_WINDOW} s with the sessions idling | ${!pc} | ${!dcx} | $(ratio "${!pc}" "${!dcx}") |"
			echo "| IMAP RSS per IDLE session, $m, KiB ($IDLE_SESSIONS sessions) | $(per "${!pr}" "${!pn}") | $(per "${!dr}" "${!dn}") | $(ratio "$(per "${!pr}" "${!pn}")" "$(per "${!dr}" "${!dn}")") |" >>"$ROWS"
			echo "| IMAP PSS per IDLE session, $m, KiB (shared pages split) | $(per "${!pp}" "${!pn}") | $(per "${!dp}" "${!dn}") | $(ratio "$(per "${!pp}" "${!pn}")" "$(per "${!dp}" "${!dn}")") |" >>"$ROWS"
			echo "| IMAP: wake-ups per minute with $IDLE_SESSIONS IDLE sessions, $m | $(per "$((${!pc} * 60))" "$IDLE_WINDOW") | $(per "$((${!dcx} * 60))" "$IDLE_WINDOW") | $(ratio "${!pc}" "${!dcx}") |" >>"$ROWS"
		done
		echo
		echo "postie is restarted before each of its rows (a fresh process, index on disk"
		echo "kept): what the sessions add is then all new, not slots touched by earlier rows."
		echo "RSS/PSS added: the server's processes (postie: one; Dovecot: master and all"
		echo "descendants, with an imap process per session and, under TLS, an imap-login"
		echo "process per session holding the TLS state) with the sessions idling, minus"
		echo "before them. Context switches: voluntary + involuntary over the window, of"
		echo "the processes alive at both its ends."
	fi
	echo
	echo "### Idle, no client, ${IDLE_WINDOW} s$([ "$QUICK" = 1 ] && echo " (--quick: scaled to a minute)")"
	echo
	echo "| | postie | Dovecot ($D_IDLE_PIDS processes) | ratio |"
	echo "|---|---:|---:|---:|"
	echo "| context switches in ${IDLE_WINDOW} s | $P_WAKE | $D_WAKE | $(ratio "$P_WAKE" "$D_WAKE") |"
	echo "| wake-ups per idle minute (goal 0) | $(per "$((P_WAKE * 60))" "$IDLE_WINDOW") | $(per "$((D_WAKE * 60))" "$IDLE_WINDOW") | $(ratio "$P_WAKE" "$D_WAKE") |"
	echo "| wake-ups per idle minute, no client ($IDLE_WINDOW s window$([ "$QUICK" = 1 ] && echo ", scaled")) | $(per "$((P_WAKE * 60))" "$IDLE_WINDOW") | $(per "$((D_WAKE * 60))" "$IDLE_WINDOW") | $(ratio "$P_WAKE" "$D_WAKE") |" >>"$ROWS"
	echo
	echo "Times are wall clock on the client, which includes poplib's own line-by-line"
	echo "parsing (its CPU is the last row; client and server share $(nproc) CPU(s)). Server"
	echo "CPU: utime+stime of the server's processes over the whole session, including"
	echo "reaped children (Dovecot's pop3 and pop3-login), in clock ticks of 1/$(getconf CLK_TCK) s."
	echo
	echo "RSS sums VmRSS over the server's processes (shared libraries counted once per"
	echo "process); PSS splits shared pages. Dovecot: master and every descendant"
	echo "(config, log, anvil, stats, auth, pop3-login, pop3, ...), with its defaults:"
	echo "a new pop3-login and pop3 process per connection. Both servers check the"
	echo "same \$6\$ (SHA-512 crypt) hash at each login, neither caches it. The mbox"
	echo "belongs to $(id -un), mode 0644: postie (as $(id -un)) takes its dotlock + fcntl write"
	echo "lock; Dovecot (as $MAIL_OWNER: it refuses uid 0) can only read it and takes an fcntl"
	echo "read lock (a writable mbox Dovecot rewrites at the first QUIT to add X-UID headers)."
	echo "Index after a session: postie $(median "$R/postie.warm.*" index_bytes) bytes, Dovecot $(median "$R/dovecot.warm.*" index_bytes) bytes"
	echo "(cold sessions: postie $(median "$R/postie.cold.*" index_bytes), Dovecot $(median "$R/dovecot.cold.*" index_bytes))."
	echo "Bytes retrieved by RETR: postie $(getv "$R/postie.warmup" bytes), Dovecot $(getv "$R/dovecot.warmup" bytes)$([ "$SAME_BYTES" = 1 ] || echo " (Dovecot does not unquote mboxrd \">From \" lines and counts differently)")."
	echo "Neither server wrote the mbox (inode, size and mtime checked after each"
	echo "session, SHA-256 at the end)."
	echo "Load average before: $LOAD0, after: $(cut -d' ' -f1-3 /proc/loadavg); run time $((T_END - T_START)) s."
	echo "Command: tests/bench/mailbox_bench.sh$([ "$QUICK" = 1 ] && echo " --quick")"
} >"$OUT"
cat "$OUT"
