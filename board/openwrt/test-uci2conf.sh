#!/bin/sh
# board/openwrt/test-uci2conf.sh: tests of the OpenWrt packaging that run on a
# build host (tests/cross.sh runs it, for the host build and the boards).
#   - sh -n (and shellcheck, if present) on the init script and hotplug hook;
#   - the init script, sourced with a fake /lib/functions.sh (config_load
#     reading a UCI file and calling config_cb/option_cb/list_cb,
#     config_get, config_foreach, uci_load_validate, ...), turns UCI files
#     into postie.conf files that `postie -t` accepts, with a UCI option for
#     every directive in src/core/conf.c, warns about unknown options, and
#     refuses values that would inject directives;
#   - postie_prepare writes /etc/postie.conf (the binary's compiled-in
#     default, `postie -V`) only when it changes, and says when a change
#     needs a restart instead of SIGHUP;
#   - as root with unshare(1): the installed layout in a private mount
#     namespace (fake /etc and /usr/sbin): `sendmail`, `mailq` and the
#     hotplug hook, run without -C, reach the daemon configured from UCI.
# Runs under busybox ash (OpenWrt's shell) when busybox is installed.
# Environment: POSTIE_BIN (default build/host/postie), POSTIE_QEMU (to check
# a cross binary under qemu-user). The cases adapt to the features that
# `postie -V` lists. Last line: "uci2conf: N passed, N failed, N skipped".
set -u
# OpenWrt's shell is busybox ash: run there when busybox is installed
# (tests/install-deps.sh check installs it), else with this sh.
if [ -z "${POSTIE_UCI_SHELL-}" ] && command -v busybox >/dev/null; then
	POSTIE_UCI_SHELL="busybox ash" exec busybox sh "$0" "$@"
fi
cd "$(dirname "$0")/../.."
BIN=${POSTIE_BIN:-build/host/postie}
QEMU=${POSTIE_QEMU:-}
INIT=board/openwrt/files/postie.init
HOTPLUG=board/openwrt/files/postie.hotplug
UCIDEF=board/openwrt/files/postie.uci-defaults
passed=0 failed=0 skipped=0

ok() { passed=$((passed + 1)); echo "ok     $*"; }
skip() { skipped=$((skipped + 1)); echo "skip   $*"; }
bad() { failed=$((failed + 1)); echo "FAILED $*"; }
check() { # check NAME CMD...: CMD must succeed
	_n=$1
	shift
	if "$@"; then ok "$_n"; else bad "$_n"; fi
}

T=$(mktemp -d "${TMPDIR:-/tmp}/postie-uci.XXXXXX")
# Where a postie user exists, postie -t checks that it can read the
# generated files, as a reload would: the 0700 of mktemp would fail that.
chmod 755 "$T"
trap 'rm -rf "$T"' EXIT INT TERM

# --- syntax ----------------------------------------------------------------
for f in "$INIT" "$HOTPLUG" "$UCIDEF" "$0"; do
	check "sh -n $f" sh -n "$f"
done
if command -v shellcheck >/dev/null; then
	# dash: the closest shell here to OpenWrt's busybox ash (has `local`).
	check "shellcheck init+hotplug+uci-defaults" shellcheck -s dash -e SC1091 "$INIT" "$HOTPLUG" "$UCIDEF"
fi

if [ ! -x "$BIN" ]; then
	bad "no postie binary at $BIN (build it first)"
	echo "uci2conf: $passed passed, $failed failed, $skipped skipped"
	exit 1
fi
# shellcheck disable=SC2086 # QEMU is empty or one word
FEATURES=" $($QEMU "$BIN" -V | sed -n 's/^features://p') "
has() { case $FEATURES in *" $1 "*) return 0 ;; esac; return 1; }
# An IPv6 listener on ::1 only where this machine has ::1 (postie -t binds
# each listen address; containers often run without IPv6).
v6lo() { has ipv6 && grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; }
echo "uci2conf: $BIN${QEMU:+ under $QEMU}, shell: ${POSTIE_UCI_SHELL:-sh}, features:$FEATURES"

# --- fake UCI (what /lib/functions.sh offers, enough for the init script) --
# config_load postie: reads the UCI file $UCI_FILE like uci export | eval
# would: anonymous sections get cfgNNN names, and config_cb, option_cb and
# list_cb are called as OpenWrt's config/option/list functions call them.
UCI_FILE=
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
	}' "$UCI_FILE")"
	config_cb
}
_fake_sec() {
	_SECTIONS="$_SECTIONS $1"
	eval "CONFIG_$1_TYPE=\$2"
	config_cb "$2" "$1"
}
_fake_option() { eval "CONFIG_$1_$2=\$3"; option_cb "$2" "$3"; }
_fake_list() {
	eval "_n=\$((\${CONFIG_$1_$2_LENGTH:-0} + 1))"
	eval "CONFIG_$1_$2_LENGTH=\$_n; CONFIG_$1_$2_ITEM$_n=\$3"
	eval "CONFIG_$1_$2=\"\${CONFIG_$1_$2:+\$CONFIG_$1_$2 }\$3\""
	list_cb "$2" "$3"
}
reset_cb() {
	config_cb() { :; }
	option_cb() { :; }
	list_cb() { :; }
}
reset_cb
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
# uci_load_validate PACKAGE TYPE SECTION CALLBACK SPEC...: OpenWrt's runs
# validate_data (not on a build host). Here: each spec must be
# option:datatype[:default] with a datatype validate_data knows, and the
# options become variables (value or default) for the callback, as there.
VALIDATE_TYPES=" bool uinteger integer string host hostname ipaddr ip4addr ip6addr cidr cidr4 cidr6 port portrange file directory "
SPEC_ERRORS=
uci_load_validate() {
	_sec=$3 _cb=$4
	shift 4
	for _spec in "$@"; do
		_opt=${_spec%%:*} _rest=${_spec#*:}
		_type=${_rest%%:*} _def=
		[ "$_rest" = "$_type" ] || _def=${_rest#*:}
		_base=${_type#list(}
		_base=${_base%)}
		case $_base in
		or\(*) ;;
		*) case $VALIDATE_TYPES in *" $_base "*) ;; *) SPEC_ERRORS="$SPEC_ERRORS $_spec" ;; esac ;;
		esac
		config_get "$_opt" "$_sec" "$_opt" "$_def"
	done
	"$_cb" "$_sec" 0
}
# lan is up on 127.0.0.1; every other interface is down.
network_get_ipaddr() {
	case $2 in lan) eval "$1=127.0.0.1" ;; *) eval "$1="; return 1 ;; esac
}
logger() { :; }

# shellcheck source=files/postie.init
. "$INIT"
INIT_CONF=$CONF
CONF_DIR=$T/etc
# The init script asks the binary which servers it has (postie -V).
POSTIE_FEATURES=$FEATURES
mkdir -p "$CONF_DIR"

# gen NAME UCI-FILE: writes $T/NAME.conf; returns what postie_write_conf did.
gen() {
	UCI_FILE=$2
	postie_load 2>"$T/$1.log"
	postie_write_conf "$T/$1.conf" 2>>"$T/$1.log"
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
# no SMTP server in the build (board alerts): the default listener is left out
nsmtp=0
has smtp && nsmtp=1
if has smtp; then
	check "default: listen smtp on loopback" has_line default 'listen smtp +127\.0\.0\.1:25'
else
	check "default: no SMTP server, listen smtp left out" sh -c \
		"! grep -q '^listen smtp' '$T/default.conf' && grep -q 'listen smtp: no such server' '$T/default.log'"
fi
check "default: local_domains, run_as" sh -c \
	"grep -qE '^local_domains +lan$' '$T/default.conf' && grep -qE '^run_as +postie$' '$T/default.conf'"
# a null client (no local mailboxes: board alerts) gets no mail_dir, and
# says so
if has mbox; then
	check "default: mail_dir" has_line default 'mail_dir +/srv/mail'
else
	check "default: null client, mail_dir left out" sh -c \
		"! grep -q '^mail_dir' '$T/default.conf' && grep -q 'mail_dir: this build of postie has no local mailboxes, left out' '$T/default.log'"
fi
check "default: disabled smarthost and listeners left out" sh -c \
	"! grep -q '^smarthost' '$T/default.conf' && [ \$(grep -c '^listen' '$T/default.conf') = $nsmtp ]"
# A build without syslog (log syslog) is expected to refuse it by name.
if has syslog; then
	if postie_t default; then
		ok "default: postie -t accepts it"
	elif ! id postie >/dev/null 2>&1 && grep -q 'run_as postie: no such user' "$T/default.t" &&
		[ "$(grep -c ': 1 problem(s)' "$T/default.t")" = 1 ]; then
		# the package creates that user; this machine has none
		ok "default: postie -t accepts it but for the run_as user (no postie user here)"
	else
		bad "default: postie -t"; show default
	fi
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
	v6lo && printf "\nconfig listen\n\toption service 'smtp'\n\toption address '::1'\n\toption port '2525'\n"
	[ -z "$tls" ] || printf "\nconfig listen\n\toption service 'smtps'\n\toption address '127.0.0.1'\n\toption port '4465'\n"
	has auth && printf "\nconfig listen\n\toption service 'submission'\n\toption interface 'lan'\n"
} >"$T/lanbox.uci"
if gen lanbox "$T/lanbox.uci"; then ok "lanbox: generated"; else bad "lanbox: generate refused"; fi
if has smtp; then
	check "lanbox: listen on lan's address, default port" has_line lanbox 'listen smtp +127\.0\.0\.1:25'
	check "lanbox: interface that is down and disabled section left out" sh -c \
		"[ \$(grep -c '^listen' '$T/lanbox.conf') = $((1 + $(v6lo && echo 1 || echo 0) + ${tls:-0} + $(has auth && echo 1 || echo 0))) ] && ! grep -q 0.0.0.0 '$T/lanbox.conf'"
	if v6lo; then check "lanbox: IPv6 address bracketed" has_line lanbox 'listen smtp +\[::1\]:2525'; fi
	if has auth; then check "lanbox: submission on 587" has_line lanbox 'listen submission +127\.0\.0\.1:587'; fi
fi
check "lanbox: local_domains on one line" has_line lanbox 'local_domains +home\.lan example\.org'
if has mbox; then
	check "lanbox: users = file + UCI users, bad ones skipped" sh -c \
		"grep -qE '^users +$CONF_DIR/postie.users$' '$T/lanbox.conf' && grep -q '^bob:' '$CONF_DIR/postie.users' && grep -q '^alice:\\\$6\\\$' '$CONF_DIR/postie.users' && ! grep -qE '^(bad|carol)' '$CONF_DIR/postie.users'"
	check "lanbox: users file is private" sh -c "[ \$(stat -c %a '$CONF_DIR/postie.users') = 600 ]"
	check "lanbox: users file marked generated, naming where users go" sh -c \
		"head -1 '$CONF_DIR/postie.users' | grep -q '^# generated by /etc/init.d/postie.*$T/users.*config user'"
else
	check "lanbox: null client, users left out" sh -c \
		"! grep -q '^users' '$T/lanbox.conf' && grep -q 'users: this build of postie has no local mailboxes, left out' '$T/lanbox.log'"
fi
# Where this build takes the lanbox config at all (a board with fewer
# listeners refuses it, which the -t check below expects).
# shellcheck disable=SC2086
if has auth && $QEMU "$BIN" -t -c "$T/lanbox.conf" >/dev/null 2>&1; then
	# shellcheck disable=SC2086
	$QEMU "$BIN" user -c "$T/lanbox.conf" add dave --no-login >"$T/useradd.out" 2>&1
	check "lanbox: postie user refuses to edit the generated users file" sh -c \
		"! grep -q '^dave' '$CONF_DIR/postie.users' && grep -q 'edit here would be lost' '$T/useradd.out' && grep -q '$T/users' '$T/useradd.out'"
fi
if has aliases && has mbox; then
	check "lanbox: aliases = file + UCI aliases" sh -c \
		"grep -q '^postmaster: bob' '$CONF_DIR/postie.aliases' && grep -qE '^root: +alice, admin@example.net$' '$CONF_DIR/postie.aliases'"
elif has aliases; then
	# a null client has no alice: her part of root's alias is left out
	check "lanbox: null client, the users' names left out of UCI aliases" sh -c \
		"grep -qE '^root: +admin@example.net$' '$CONF_DIR/postie.aliases' && grep -q 'alias root: user alice left out' '$T/lanbox.log'"
fi
if postie_t lanbox && grep -q 'configuration OK' "$T/lanbox.t"; then
	ok "lanbox: postie -t accepts it ($(sed -n 's/.*OK //p' "$T/lanbox.t"))"
elif grep -qE 'CONFIG_MAX_LISTENERS|CONFIG_SMTP_SERVER|CONFIG_MAX_CONNECTIONS' "$T/lanbox.t"; then
	# a small board (alerts: no server, 4 connections) refuses it by option name
	ok "lanbox: postie -t: $(sed 's/.*: //' "$T/lanbox.t")"
else
	bad "lanbox: postie -t"; show lanbox
fi

# --- 3. alerts: smarthost with credentials ------------------------------------
# A build without TLS can only talk to the smarthost in the clear.
sec=starttls clear=0
# (a plain smarthost takes the password only with cleartext_auth)
has tls || { sec=plain; clear=1; }
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
	option cleartext_auth '$clear'
EOF
if gen alerts "$T/alerts.uci"; then ok "alerts: generated"; else bad "alerts: generate refused"; fi
check "alerts: smarthost line" has_line alerts "smarthost +192\\.0\\.2\\.10:587 $sec"
check "alerts: smarthost_name line" has_line alerts 'smarthost_name +smtp\.example\.net'
# security unset: it follows the port (587 speaks STARTTLS; implicit TLS
# there deferred every alert with a misleading handshake error)
for p in 587:starttls 25:starttls 465:tls; do
	printf "config smarthost 's'\n\toption host 'smtp.example.net'\n\toption port '%s'\n" \
		"${p%%:*}" >"$T/sec.uci"
	gen sec "$T/sec.uci" >/dev/null 2>&1
	check "smarthost port ${p%%:*} without security: ${p#*:}" has_line sec \
		"smarthost +smtp\\.example\\.net:${p%%:*} ${p#*:}"
done
check "alerts: smarthost_auth with the secret file" has_line alerts \
	"smarthost_auth +alerts@example\\.net $CONF_DIR/postie\\.smarthost\\.secret( cleartext)?"
check "alerts: secret file holds the password, mode 600" sh -c \
	"[ \"\$(cat '$CONF_DIR/postie.smarthost.secret')\" = 'pa ss\$word' ] && [ \$(stat -c %a '$CONF_DIR/postie.smarthost.secret') = 600 ]"
check "alerts: no password in postie.conf" sh -c "! grep -q 'pa ss' '$T/alerts.conf'"
if has relay && ! has smarthost-auth; then
	# smarthost_auth needs SMARTHOST_AUTH: named, not ignored
	if ! postie_t alerts && grep -q 'CONFIG_SMARTHOST_AUTH' "$T/alerts.t"; then
		ok "alerts: build without SMARTHOST_AUTH: postie -t refuses smarthost_auth naming it"
	else
		bad "alerts: postie -t should name CONFIG_SMARTHOST_AUTH"; show alerts
	fi
elif has relay; then
	if postie_t alerts; then ok "alerts: postie -t accepts it"; else bad "alerts: postie -t"; show alerts; fi
elif ! postie_t alerts && grep -q 'CONFIG_RELAY' "$T/alerts.t"; then
	ok "alerts: build without relay: postie -t refuses smarthost naming CONFIG_RELAY"
else
	bad "alerts: postie -t should name CONFIG_RELAY"; show alerts
fi
# an empty password is reported as the UCI option, not as the secret
# file the script would have generated from it
sed -e "s/option password 'pa ss\\\$word'/option password ''/" "$T/alerts.uci" >"$T/nopw.uci"
if ! gen nopw "$T/nopw.uci" && grep -q "option password is empty" "$T/nopw.log" &&
	! grep -q 'postie\.smarthost\.secret' "$T/nopw.log"; then
	ok "smarthost username with an empty password: refused, naming the option"
else
	bad "smarthost username with an empty password"; cat "$T/nopw.log"
fi

# security plain with a username: -t refuses the cleartext password
# unless cleartext_auth is 1
sed -e "s/option security '$sec'/option security 'plain'/" \
	-e "s/option cleartext_auth '1'/option cleartext_auth '0'/" "$T/alerts.uci" >"$T/clear.uci"
gen clear "$T/clear.uci"
if has relay && has smarthost-auth; then
	if ! postie_t clear && grep -q 'in the clear' "$T/clear.t"; then
		ok "plain smarthost with a password: postie -t refuses it"
	else
		bad "plain smarthost with a password: postie -t"; show clear
	fi
	printf "\toption cleartext_auth '1'\n" >>"$T/clear.uci"
	gen clear "$T/clear.uci"
	check "cleartext_auth 1: smarthost_auth ... cleartext" has_line clear \
		"smarthost_auth +alerts@example\\.net $CONF_DIR/postie\\.smarthost\\.secret cleartext"
	if postie_t clear; then ok "cleartext_auth 1: postie -t accepts it"; else bad "cleartext_auth 1: postie -t"; show clear; fi
fi

# --- 4. values that would change the file's meaning are refused ---------------
printf "config postie 'main'\n\toption mail_dir '%s'\n" "$T/mail" >"$T/evil.uci"
UCI_FILE=$T/evil.uci
for v in "mail.lan
listen smtp 0.0.0.0:25" "mail.lan # x" "two words"; do
	config_load postie
	CONFIG_main_hostname=$v
	if postie_write_conf "$T/evil.conf" 2>/dev/null; then
		bad "refuses hostname '$(printf %s "$v" | tr '\n' '|')'"
	elif grep -q 0.0.0.0 "$T/evil.conf"; then
		bad "injected listener written for '$(printf %s "$v" | tr '\n' '|')'"
	else
		ok "refuses hostname '$(printf %s "$v" | tr '\n' '|')'"
	fi
done

# --- 5. every directive of postie.conf has a UCI option ----------------------
DIRECTIVES=$(sed -n '/^static const struct directive directives\[\]/,/^};/s/^[[:space:]]*{ "\([a-z_]*\)".*/\1/p' src/core/conf.c)
if [ -z "$DIRECTIVES" ]; then
	bad "directive table not found in src/core/conf.c"
fi
# a null client has neither (the init script leaves them out)
has mbox || DIRECTIVES=$(echo "$DIRECTIVES" | grep -vxE 'users|mail_dir')
[ -n "$tls" ] || : >"$T/cert.pem"
# The listener: a server this build has; with none (board alerts), no
# listen line can be written.
fullsvc=smtp
has smtp || fullsvc=imap
has smtp || has imap || fullsvc=pop3
has smtp || has imap || has pop3 || DIRECTIVES=$(echo $DIRECTIVES | tr ' ' '\n' | grep -vx listen)
cat >"$T/full.uci" <<EOF
config postie 'main'
	option hostname 'mail.home.lan'
	option mail_dir '$T/mail'
	option spool_dir '$T/spool'
	option users '$T/users'
	option aliases '$T/aliases'
	option max_message_size '5M'
	option max_connections '8'
	option max_connections_per_ip '4'
	option max_tls_sessions '2'
	option log_stall_ms '200'
	option run_as '$(id -un)'
	option log 'stderr'
	option tls_cert '$T/cert.pem'
	option tls_key '$T/key.pem'
	option sender_login_check 'no'
	option ca_file '$T/cert.pem'
	option dns_server '127.0.0.1:53'
	option relay_port '2525'
	option queue_lifetime '3d'
	option queue_retry '1m 30m'
	option masquerade 'alerts@provider.example'
	option delay_warning '4h'
	list local_domain 'home.lan'
	list relay_network '192.168.1.0/24'
	list relay_network '10.0.0.0/8'
	list plaintext_auth_network '192.168.1.50/32'
	list queue_on_ifup 'wan'

config listen
	option service '$fullsvc'
	option port '2525'

config smarthost 'smarthost'
	option host 'smtp.provider.example'
	option address '192.0.2.10'
	option port '465'
	option security 'tls'
	option verify 'none'
	option username 'alerts@provider.example'
	option password 'secret'

config user
	option name 'alice'
	option password '\$6\$postiedemo\$aTkRwSdT0noqDF8KyJcMkKran4tk.iz9uaHyqARkdG7KsyDaSADWvi9anN/uaaAwsYwWc2t5dn6NDCM4sndYx0'

config alias
	option name 'root'
	list to 'alice'
EOF
if gen full "$T/full.uci"; then ok "full: generated"; else bad "full: generate refused: $(cat "$T/full.log")"; show full; fi
missing=
for d in $DIRECTIVES; do
	grep -q "^$d " "$T/full.conf" || missing="$missing $d"
done
if [ -z "$missing" ] && [ -n "$DIRECTIVES" ]; then
	ok "full: every directive of src/core/conf.c ($(echo $DIRECTIVES | wc -w)) written from UCI"
else
	bad "full: directives without a UCI option:$missing"; show full
fi
check "full: sender_login_check bool -> no" has_line full 'sender_login_check +no'
check "full: queue_retry MIN MAX" has_line full 'queue_retry +1m 30m'
check "full: smarthost verify -> smarthost_verify none" has_line full 'smarthost_verify +none'
check "full: masquerade, delay_warning" sh -c \
	"grep -qE '^masquerade +alerts@provider\\.example$' '$T/full.conf' && grep -qE '^delay_warning +4h$' '$T/full.conf'"
check "full: relay_networks list on one line" has_line full 'relay_networks +192\.168\.1\.0/24 10\.0\.0\.0/8'
check "full: no warnings for known options" sh -c "! grep -q 'unknown' '$T/full.log'"
if postie_t full && grep -q 'configuration OK' "$T/full.t"; then
	ok "full: postie -t accepts it"
elif grep -q 'CONFIG_' "$T/full.t"; then
	ok "full: postie -t names what this build lacks: $(sed 's/.*: //' "$T/full.t")"
else
	bad "full: postie -t"; show full
fi
if [ -z "$SPEC_ERRORS" ]; then
	ok "uci_load_validate specs use validate_data's datatypes"
else
	bad "uci_load_validate specs with unknown datatypes:$SPEC_ERRORS"
fi

# --- 6. unknown options and sections are warned about, not written ----------
cat >"$T/typo.uci" <<EOF
config postie 'main'
	option mail_dir '$T/mail'
	option smarthost_verfiy 'none'
	list relay_netwrok '10.0.0.0/8'

config listen
	option service 'smtp'
	option adress '0.0.0.0'

config smarthosts 'x'
	option host 'smtp.example.net'
EOF
gen typo "$T/typo.uci"
for w in "unknown option 'smarthost_verfiy' in postie section main" \
	"unknown option 'relay_netwrok' in postie section main" \
	"unknown option 'adress' in listen section" \
	"unknown section type 'smarthosts' (x)"; do
	check "warns: $w" grep -qF "$w" "$T/typo.log"
done
check "typos are not written" sh -c "! grep -qE 'verfiy|netwrok|0\\.0\\.0\\.0|smtp\\.example' '$T/typo.conf'"

# --- 7. where the configuration goes: /etc/postie.conf, postie's default -----
# shellcheck disable=SC2086
DEFAULT=$($QEMU "$BIN" -V | sed -n 's/^config: //p')
check "init script writes $INIT_CONF, the binary's default (-V: $DEFAULT)" [ "$INIT_CONF" = "$DEFAULT" ]
check "hotplug hook runs plain 'postie sendmail -q' (default configuration)" \
	grep -qE '^[[:space:]]*/usr/sbin/postie sendmail -q ' "$HOTPLUG"
check "package installs sendmail and mailq as postie (no -C needed)" sh -c \
	"grep -q '/usr/sbin/sendmail:/usr/sbin/postie' board/openwrt/Makefile && grep -q '/usr/bin/mailq:/usr/sbin/postie' board/openwrt/Makefile"

check "first boot: uci-defaults writes $INIT_CONF through the init script's prepare" sh -c \
	"grep -q '^\[ -f $INIT_CONF \] || /bin/sh /etc/rc.common /etc/init.d/postie prepare\$' '$UCIDEF' && grep -q '^EXTRA_COMMANDS=\"prepare\"' '$INIT' && grep -q 'files/postie.uci-defaults .*/etc/uci-defaults/' board/openwrt/Makefile"
check "package: PKG_LICENSE MIT and the LICENSE file it names" sh -c \
	"grep -q '^PKG_LICENSE:=MIT\$' board/openwrt/Makefile && grep -q '^PKG_LICENSE_FILES:=LICENSE\$' board/openwrt/Makefile && grep -q 'the postie authors' LICENSE && grep -q '^MIT License' LICENSE"
check "package: BearSSL download pinned by hash, from its project site" sh -c \
	"grep -qE '^  HASH:=[0-9a-f]{64}\$' board/openwrt/Makefile && grep -q '^BEARSSL_URL ?= https://' board/openwrt/Makefile"

R=$T/root
mkdir -p "$R/etc/init.d" "$R/etc/hotplug.d/iface" "$R/usr/sbin" "$R/var/etc" "$T/bin"
if [ -n "$QEMU" ]; then
	# argv[0] (sendmail, mailq) must reach the binary through qemu
	printf '#!/bin/sh\nexec %s -0 "$0" %s "$@"\n' "$QEMU" "$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")" >"$R/usr/sbin/postie"
	chmod 755 "$R/usr/sbin/postie"
else
	cp "$BIN" "$R/usr/sbin/postie"
fi
PROG=$R/usr/sbin/postie
CONF=$R/etc/postie.conf
CONF_DIR=$R/var/etc
sed -e "s|@T@|$T|g" >"$T/base.uci" <<'EOF'
config postie 'main'
	option mail_dir '@T@/mail'
	option spool_dir '@T@/spool/postie'
	option log 'stderr'

config smarthost 'smarthost'
	option host '127.0.0.1'
	option port '9'
	option security 'plain'

EOF
# root's mail goes to alice's mailbox, or on a null client (no local
# mailboxes) to an address, where it waits for the smarthost
if has mbox; then
	ROOT_TO=alice
	# shellcheck disable=SC2016 # a hash, not an expansion
	printf "\nconfig user\n\toption name 'alice'\n\toption password '%s'\n" \
		'$6$postiedemo$aTkRwSdT0noqDF8KyJcMkKran4tk.iz9uaHyqARkdG7KsyDaSADWvi9anN/uaaAwsYwWc2t5dn6NDCM4sndYx0' \
		>>"$T/base.uci"
else
	ROOT_TO=admin@remote.example
fi
printf "\nconfig alias\n\toption name 'root'\n\tlist to '%s'\n" "$ROOT_TO" >>"$T/base.uci"
# prep UCI-FILE: postie_prepare as start/reload run it; sets PREP_RC
prep() {
	UCI_FILE=$1
	PREP_RC=0
	postie_prepare >"$T/prep.log" 2>&1 || PREP_RC=$?
}
fileid() { stat -c '%i %Y %s' "$CONF" 2>/dev/null; }
if has sendmail; then
	prep "$T/base.uci"
	if [ "$PREP_RC" = 0 ] && head -1 "$CONF" | grep -q '^# generated'; then
		ok "postie_prepare writes $CONF"
	else
		bad "postie_prepare: rc $PREP_RC: $(cat "$T/prep.log")"
	fi
	id1=$(fileid)
	sleep 1 # a rewrite would change the mtime
	prep "$T/base.uci"
	same() { [ "$PREP_RC" = 0 ] && [ "$(fileid)" = "$id1" ] && [ -z "$POSTIE_RESTART" ]; }
	check "unchanged UCI: $CONF not rewritten, no restart" same
	sed "/^config postie/a\\	option masquerade 'alerts@provider.example'" "$T/base.uci" >"$T/b.uci"
	prep "$T/b.uci"
	hup() { [ "$PREP_RC" = 0 ] && grep -q '^masquerade ' "$CONF" && [ -z "$POSTIE_RESTART" ]; }
	check "masquerade changed: rewritten, SIGHUP is enough" hup
	# postie -t's warnings (root with nowhere to go) reach the log too
	sed '/^config alias/,$d' "$T/base.uci" >"$T/noroot.uci"
	prep "$T/noroot.uci"
	check "prepare logs postie -t's warnings (no root alias)" sh -c \
		"[ $PREP_RC = 0 ] && grep -qE '^postie: .*warning: no (user or )?alias root' '$T/prep.log' && ! grep -q 'postie: postie:' '$T/prep.log'"
	prep "$T/b.uci"
	restart() { [ "$PREP_RC" = 0 ] && [ "$POSTIE_RESTART" = 1 ]; }
	if has smtp; then
		{ cat "$T/b.uci"; printf "\nconfig listen\n\toption service 'smtp'\n\toption port '2525'\n"; } >"$T/c.uci"
		prep "$T/c.uci"
		check "listener added: needs a restart" restart
		prep "$T/b.uci"
		check "listener removed: needs a restart" restart
	fi
	if has mbox; then
		check "generated secrets and users stay in RAM ($CONF_DIR)" \
			grep -qE "^users +$CONF_DIR/postie.users\$" "$CONF"
	else
		check "generated aliases stay in RAM ($CONF_DIR)" \
			grep -qE "^aliases +$CONF_DIR/postie.aliases\$" "$CONF"
	fi
else
	skip "postie_prepare and paths: no sendmail in this build"
fi

# --- 8. the installed commands, run without -C, in a fake root ----------------
# A private mount namespace shows $R/etc as /etc and $R/usr/sbin as
# /usr/sbin; the daemon runs outside with the generated file.
if ! has sendmail; then
	skip "installed sendmail/mailq/hotplug: no sendmail in this build"
elif [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null; then
	skip "installed sendmail/mailq/hotplug: needs root and unshare(1)"
else
	for f in passwd group ld.so.cache; do
		[ ! -e "/etc/$f" ] || cp "/etc/$f" "$R/etc/$f"
	done
	printf '#!/bin/sh\n[ "$1" = enabled ]\n' >"$R/etc/init.d/postie"
	printf '#!/bin/sh\nexit 1\n' >"$T/bin/uci"      # queue_on_ifup unset
	chmod 755 "$R/etc/init.d/postie" "$T/bin/uci"
	cp "$HOTPLUG" "$R/etc/hotplug.d/iface/30-postie"
	ln -s postie "$R/usr/sbin/sendmail"
	ln -s postie "$R/usr/sbin/mailq"
	# shellcheck disable=SC2086
	$QEMU "$BIN" -c "$CONF" >"$T/daemon.log" 2>&1 &
	DAEMON=$!
	trap 'kill $DAEMON 2>/dev/null; rm -rf "$T"' EXIT INT TERM
	waitlog() { # waitlog PATTERN COUNT: until the daemon log has COUNT lines
		_i=0
		while [ "$(grep -c "$1" "$T/daemon.log")" -lt "$2" ] && [ $_i -lt 300 ]; do
			sleep 0.1
			_i=$((_i + 1))
		done
		[ "$(grep -c "$1" "$T/daemon.log")" -ge "$2" ]
	}
	waitlog 'started' 1 || bad "daemon did not start: $(cat "$T/daemon.log")"
	TOKEN=tok-$$-$(date +%s)
	HOOKSH=sh # the hook as OpenWrt's hotplug-call runs it: busybox ash
	! command -v busybox >/dev/null || HOOKSH="busybox sh"
	# shellcheck disable=SC2016 # expanded by the inner shell
	PATH="$T/bin:$PATH" unshare -m sh -c '
		mount --bind "$1/etc" /etc && mount --bind "$1/usr/sbin" /usr/sbin || exit 90
		printf "Subject: %s\n\nvia sendmail\n" "$2" | /usr/sbin/sendmail root
		echo $? >"$3/rc.sendmail"
		printf "Subject: %s-far\n\nwaits\n" "$2" | /usr/sbin/sendmail far@remote.example
		echo $? >>"$3/rc.sendmail"
		ACTION=ifup INTERFACE=wan $4 /etc/hotplug.d/iface/30-postie
		echo $? >"$3/rc.hotplug"
	' sh "$R" "$TOKEN" "$T" "$HOOKSH" >"$T/ns.log" 2>&1
	check "fake root: sendmail root and sendmail far@remote.example exit 0" \
		[ "$(cat "$T/rc.sendmail" 2>/dev/null | tr '\n' ' ')" = "0 0 " ]
	check "fake root: hotplug hook ran" [ "$(cat "$T/rc.hotplug" 2>/dev/null)" = 0 ]
	n=0
	if has mbox; then
		while ! grep -q "$TOKEN" "$T/mail/alice" 2>/dev/null && [ $n -lt 300 ]; do
			sleep 0.1
			n=$((n + 1))
		done
		check "fake root: sendmail's message reached the daemon's mailbox" grep -q "$TOKEN" "$T/mail/alice"
	else
		# the daemon queued it for root's address (the smarthost is down)
		check "fake root: sendmail root reached the daemon's queue for $ROOT_TO" \
			waitlog "1 target(s) deferred ($ROOT_TO" 1
	fi
	check "fake root: the hotplug hook's sendmail -q reached the daemon" waitlog 'queue run requested' 1
	unshare -m sh -c 'mount --bind "$1/etc" /etc && mount --bind "$1/usr/sbin" /usr/sbin && /usr/sbin/mailq' \
		sh "$R" >"$T/mailq.out" 2>&1
	check "fake root: mailq lists the waiting message" grep -q 'far@remote.example' "$T/mailq.out"
	kill "$DAEMON" 2>/dev/null
	wait "$DAEMON" 2>/dev/null
	[ "$failed" = 0 ] || sed 's/^/    ns> /' "$T/ns.log" "$T/daemon.log" "$T/mailq.out"
fi

echo "uci2conf: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
