#!/bin/sh
# board/openwrt/test-uci2conf.sh: tests of the OpenWrt packaging that run on a
# build host (tests/cross.sh runs it).
#   - sh -n (and shellcheck, if present) on the init script and hotplug hook;
#   - the init script's postie_write_conf, sourced with a fake UCI
#     (config_load reading a UCI file, config_get, config_foreach, ...),
#     turns UCI files into postie.conf files that `postie -t` accepts, and
#     refuses values that would inject directives.
# Environment: POSTIE_BIN (default build/host/postie), POSTIE_QEMU (to check
# a cross binary under qemu-user). The cases adapt to the features that
# `postie -V` lists. Last line: "uci2conf: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BIN=${POSTIE_BIN:-build/host/postie}
QEMU=${POSTIE_QEMU:-}
INIT=board/openwrt/files/postie.init
HOTPLUG=board/openwrt/files/postie.hotplug
passed=0 failed=0

ok() { passed=$((passed + 1)); echo "ok     $*"; }
bad() { failed=$((failed + 1)); echo "FAILED $*"; }
check() { # check NAME CMD...: CMD must succeed
	_n=$1
	shift
	if "$@"; then ok "$_n"; else bad "$_n"; fi
}

T=$(mktemp -d "${TMPDIR:-/tmp}/postie-uci.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM

# --- syntax ----------------------------------------------------------------
for f in "$INIT" "$HOTPLUG" "$0"; do
	check "sh -n $f" sh -n "$f"
done
if command -v shellcheck >/dev/null; then
	# dash: the closest shell here to OpenWrt's busybox ash (has `local`).
	check "shellcheck init+hotplug" shellcheck -s dash -e SC1091 "$INIT" "$HOTPLUG"
fi

if [ ! -x "$BIN" ]; then
	bad "no postie binary at $BIN (build it first)"
	echo "uci2conf: $passed passed, $failed failed"
	exit 1
fi
# shellcheck disable=SC2086 # QEMU is empty or one word
FEATURES=" $($QEMU "$BIN" -V | sed -n 's/^features://p') "
has() { case $FEATURES in *" $1 "*) return 0 ;; esac; return 1; }
echo "uci2conf: $BIN${QEMU:+ under $QEMU}, features:$FEATURES"

# --- fake UCI (what /lib/functions.sh offers, enough for the init script) --
# config_load FILE: reads a UCI file; anonymous sections get cfgNNN names.
config_load() {
	# shellcheck disable=SC2046 # names only
	unset $(set | sed -n 's/^\(CONFIG_[A-Za-z0-9_]*\)=.*/\1/p')
	_SECTIONS=
	eval "$(awk '
	function q(s) { gsub(/\047/, "\047\\\047\047", s); return "\047" s "\047" }
	function val(s) {
		sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s)
		if (s ~ /^\047.*\047$/ || s ~ /^".*"$/) s = substr(s, 2, length(s) - 2)
		return s
	}
	/^[ \t]*(#|$)/ { next }
	$1 == "config" {
		n++
		name = NF >= 3 ? val($3) : sprintf("cfg%03d", n)
		print "_fake_sec " q(name) " " q(val($2)); next
	}
	$1 == "option" || $1 == "list" {
		rest = $0; sub(/^[ \t]*[a-z]+[ \t]+[^ \t]+/, "", rest)
		print "_fake_" $1 " " q(name) " " q($2) " " q(val(rest)); next
	}' "$1")"
}
_fake_sec() { _SECTIONS="$_SECTIONS $1"; eval "CONFIG_$1_TYPE=\$2"; }
_fake_option() { eval "CONFIG_$1_$2=\$3"; }
_fake_list() {
	eval "_n=\$((\${CONFIG_$1_$2_LENGTH:-0} + 1))"
	eval "CONFIG_$1_$2_LENGTH=\$_n; CONFIG_$1_$2_ITEM$_n=\$3"
	eval "CONFIG_$1_$2=\"\${CONFIG_$1_$2:+\$CONFIG_$1_$2 }\$3\""
}
config_get() { eval "$1=\"\${CONFIG_$2_$3:-\${4-}}\""; }
config_get_bool() {
	config_get _b "$2" "$3" "${4-}"
	case $_b in
	1 | on | true | yes | enabled) _b=1 ;;
	0 | off | false | no | disabled) _b=0 ;;
	*) _b=${4-0} ;;
	esac
	eval "$1=\$_b"
}
config_list_foreach() {
	_s=$1 _o=$2 _f=$3
	shift 3
	eval "_len=\${CONFIG_${_s}_${_o}_LENGTH:-0}"
	_i=1
	while [ "$_i" -le "$_len" ]; do
		eval "_item=\$CONFIG_${_s}_${_o}_ITEM$_i"
		"$_f" "$_item" "$@"
		_i=$((_i + 1))
	done
}
config_foreach() {
	_fn=$1 _ty=$2
	for _sec in $_SECTIONS; do
		eval "[ \"\$CONFIG_${_sec}_TYPE\" = \"\$_ty\" ]" && "$_fn" "$_sec"
	done
	return 0
}
# lan is up on 127.0.0.1; every other interface is down.
network_get_ipaddr() {
	case $2 in lan) eval "$1=127.0.0.1" ;; *) eval "$1="; return 1 ;; esac
}
logger() { :; }

# shellcheck source=files/postie.init
. "$INIT"
CONF_DIR=$T/etc
mkdir -p "$CONF_DIR"

# gen NAME UCI-FILE: writes $T/NAME.conf; returns what postie_write_conf did.
gen() {
	config_load "$2"
	postie_write_conf "$T/$1.conf" 2>"$T/$1.log"
}
# postie_t NAME: postie -t on $T/NAME.conf, output in $T/NAME.t
postie_t() {
	# shellcheck disable=SC2086
	$QEMU "$BIN" -t -c "$T/$1.conf" >"$T/$1.t" 2>&1
}
has_line() { grep -qE "^$2\$" "$T/$1.conf"; }
show() { sed 's/^/    | /' "$T/$1.conf"; [ ! -s "$T/$1.t" ] || sed 's/^/    > /' "$T/$1.t"; }

# --- 1. the shipped /etc/config/postie ---------------------------------------
if gen default board/openwrt/files/postie.config; then
	ok "default: generated"
else
	bad "default: generate refused: $(cat "$T/default.log")"
fi
check "default: listen smtp on loopback" has_line default 'listen smtp +127\.0\.0\.1:25'
check "default: local_domains, run_as, mail_dir" sh -c \
	"grep -qE '^local_domains +lan$' '$T/default.conf' && grep -qE '^run_as +postie$' '$T/default.conf' && grep -qE '^mail_dir +/srv/mail$' '$T/default.conf'"
check "default: disabled smarthost and listeners left out" sh -c \
	"! grep -q '^smarthost' '$T/default.conf' && [ \$(grep -c '^listen' '$T/default.conf') = 1 ]"
# A build without syslog (log syslog) is expected to refuse it by name.
if has syslog; then
	if postie_t default; then ok "default: postie -t accepts it"; else bad "default: postie -t"; show default; fi
else
	if ! postie_t default && grep -q CONFIG_SYSLOG "$T/default.t"; then
		ok "default: postie -t names CONFIG_SYSLOG"
	else
		bad "default: postie -t without syslog"; show default
	fi
fi

# --- 2. a LAN box: listeners, TLS, users and aliases -------------------------
printf 'bob:%s\n' '$6$postiedemo$aTkRwSdT0noqDF8KyJcMkKran4tk.iz9uaHyqARkdG7KsyDaSADWvi9anN/uaaAwsYwWc2t5dn6NDCM4sndYx0' >"$T/users"
printf 'postmaster: bob\n' >"$T/aliases"
tls=
if has tls && command -v openssl >/dev/null &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj /CN=mail.home.lan -days 2 -keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1; then
	tls=1
fi
{
	cat <<EOF
config postie 'main'
	option hostname 'mail.home.lan'
	list local_domain 'home.lan'
	list local_domain 'example.org'
	option mail_dir '$T/mail'
	option spool_dir '$T/spool'
	option max_message_size '25M'
	option max_connections '8'
	option log 'stderr'
	option users '$T/users'
EOF
	has aliases && echo "	option aliases '$T/aliases'"
	[ -z "$tls" ] || printf "\toption tls_cert '%s'\n\toption tls_key '%s'\n" "$T/cert.pem" "$T/key.pem"
	has auth && echo "	list plaintext_auth_network '192.168.1.0/24'"
	cat <<'EOF'

config listen
	option service 'smtp'
	option interface 'lan'

config listen
	option service 'smtp'
	option interface 'wan'

config listen
	option enabled '0'
	option service 'smtp'
	option address '0.0.0.0'

config user
	option name 'alice'
	option password '$6$postiedemo$aTkRwSdT0noqDF8KyJcMkKran4tk.iz9uaHyqARkdG7KsyDaSADWvi9anN/uaaAwsYwWc2t5dn6NDCM4sndYx0'

config user
	option name 'bad name'
	option password '$6$x$y'

config user
	option name 'carol'
	option password 'plaintext'

config alias
	option name 'root'
	list to 'alice'
	list to 'admin@example.net'
EOF
	has ipv6 && printf "\nconfig listen\n\toption service 'smtp'\n\toption address '::1'\n\toption port '2525'\n"
	[ -z "$tls" ] || printf "\nconfig listen\n\toption service 'smtps'\n\toption address '127.0.0.1'\n\toption port '4465'\n"
	has auth && printf "\nconfig listen\n\toption service 'submission'\n\toption interface 'lan'\n"
} >"$T/lanbox.uci"
if gen lanbox "$T/lanbox.uci"; then ok "lanbox: generated"; else bad "lanbox: generate refused"; fi
check "lanbox: listen on lan's address, default port" has_line lanbox 'listen smtp +127\.0\.0\.1:25'
check "lanbox: interface that is down and disabled section left out" sh -c \
	"[ \$(grep -c '^listen' '$T/lanbox.conf') = $((1 + $(has ipv6 && echo 1 || echo 0) + ${tls:-0} + $(has auth && echo 1 || echo 0))) ] && ! grep -q 0.0.0.0 '$T/lanbox.conf'"
if has ipv6; then check "lanbox: IPv6 address bracketed" has_line lanbox 'listen smtp +\[::1\]:2525'; fi
if has auth; then check "lanbox: submission on 587" has_line lanbox 'listen submission +127\.0\.0\.1:587'; fi
check "lanbox: local_domains on one line" has_line lanbox 'local_domains +home\.lan example\.org'
check "lanbox: users = file + UCI users, bad ones skipped" sh -c \
	"grep -qE '^users +$CONF_DIR/postie.users$' '$T/lanbox.conf' && grep -q '^bob:' '$CONF_DIR/postie.users' && grep -q '^alice:\\\$6\\\$' '$CONF_DIR/postie.users' && ! grep -qE '^(bad|carol)' '$CONF_DIR/postie.users'"
check "lanbox: users file is private" sh -c "[ \$(stat -c %a '$CONF_DIR/postie.users') = 600 ]"
if has aliases; then
	check "lanbox: aliases = file + UCI aliases" sh -c \
		"grep -q '^postmaster: bob' '$CONF_DIR/postie.aliases' && grep -qE '^root: +alice, admin@example.net$' '$CONF_DIR/postie.aliases'"
fi
if postie_t lanbox && grep -q 'configuration OK' "$T/lanbox.t"; then
	ok "lanbox: postie -t accepts it ($(sed -n 's/.*OK //p' "$T/lanbox.t"))"
elif grep -q 'CONFIG_MAX_LISTENERS' "$T/lanbox.t"; then
	# a small board (alerts: 2 listeners) refuses it by option name
	ok "lanbox: postie -t: $(sed 's/.*: //' "$T/lanbox.t")"
else
	bad "lanbox: postie -t"; show lanbox
fi

# --- 3. alerts: smarthost with credentials ------------------------------------
# A build without TLS can only talk to the smarthost in the clear.
sec=starttls
has tls || sec=plain
cat >"$T/alerts.uci" <<EOF
config postie 'main'
	option mail_dir '$T/mail'
	option spool_dir '$T/spool'
	option log 'stderr'

config listen
	option service 'smtp'

config smarthost 'smarthost'
	option host 'smtp.example.net'
	option address '192.0.2.10'
	option port '587'
	option security '$sec'
	option username 'alerts@example.net'
	option password 'pa ss\$word'
EOF
if gen alerts "$T/alerts.uci"; then ok "alerts: generated"; else bad "alerts: generate refused"; fi
check "alerts: smarthost line" has_line alerts "smarthost +192\\.0\\.2\\.10:587 $sec"
check "alerts: smarthost_name line" has_line alerts 'smarthost_name +smtp\.example\.net'
check "alerts: smarthost_auth with the secret file" has_line alerts \
	"smarthost_auth +alerts@example\\.net $CONF_DIR/postie\\.smarthost\\.secret"
check "alerts: secret file holds the password, mode 600" sh -c \
	"[ \"\$(cat '$CONF_DIR/postie.smarthost.secret')\" = 'pa ss\$word' ] && [ \$(stat -c %a '$CONF_DIR/postie.smarthost.secret') = 600 ]"
check "alerts: no password in postie.conf" sh -c "! grep -q 'pa ss' '$T/alerts.conf'"
if has relay && ! has auth; then
	# smarthost_auth needs AUTH (which needs TLS): named, not ignored
	if ! postie_t alerts && grep -q 'CONFIG_AUTH' "$T/alerts.t"; then
		ok "alerts: build without AUTH: postie -t refuses smarthost_auth naming CONFIG_AUTH"
	else
		bad "alerts: postie -t should name CONFIG_AUTH"; show alerts
	fi
elif has relay; then
	if postie_t alerts; then ok "alerts: postie -t accepts it"; else bad "alerts: postie -t"; show alerts; fi
elif ! postie_t alerts && grep -q 'CONFIG_RELAY' "$T/alerts.t"; then
	ok "alerts: build without relay: postie -t refuses smarthost naming CONFIG_RELAY"
else
	bad "alerts: postie -t should name CONFIG_RELAY"; show alerts
fi

# --- 4. values that would change the file's meaning are refused ---------------
printf "config postie 'main'\n\toption mail_dir '%s'\n" "$T/mail" >"$T/evil.uci"
for v in "mail.lan
listen smtp 0.0.0.0:25" "mail.lan # x" "two words"; do
	config_load "$T/evil.uci"
	CONFIG_main_hostname=$v
	if postie_write_conf "$T/evil.conf" 2>/dev/null; then
		bad "refuses hostname '$(printf %s "$v" | tr '\n' '|')'"
	elif grep -q 0.0.0.0 "$T/evil.conf"; then
		bad "injected listener written for '$(printf %s "$v" | tr '\n' '|')'"
	else
		ok "refuses hostname '$(printf %s "$v" | tr '\n' '|')'"
	fi
done

echo "uci2conf: $passed passed, $failed failed"
[ "$failed" = 0 ]
