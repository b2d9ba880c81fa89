#!/bin/sh
# tests/install-deps.sh JOB: installs the Debian packages a job needs.
#   build  the Kconfig front end and make
#   run    + CLIENTS: the mail clients `make run` suggests
#   check  + CLIENTS + the test tooling (sanitizer and fuzzer runtimes,
#          dnsmasq, qemu-user, strace for its fault injection, ...)
#   bench  + CLIENTS + procps
# CLIENTS is one list shared by run, check and bench, each client with what
# its TLS needs (swaks speaks TLS only with Net::SSLeay: a swaks installed
# by `make run` must pass the TLS tests of `make check`). Silent when all
# are present; as non-root, prints the apt-get command and fails.
#
# Postfix (the smarthost of tests/proto/test_smarthost.py, a private
# instance the tests start) is installed without a system instance:
# debconf "No configuration" (no /etc/postfix/main.cf) and, for the length
# of the install, a policy-rc.d that forbids starting services (postfix,
# sasl2-bin's saslauthd).
set -eu

job=${1:-check}
BUILD="python3 python3-kconfiglib make"
CLIENTS="curl swaks libnet-ssleay-perl openssl ca-certificates mutt msmtp fetchmail isync"
case "$job" in
build) pkgs=$BUILD ;;
run) pkgs="$BUILD $CLIENTS" ;;
check) pkgs="$BUILD $CLIENTS clang libclang-rt-14-dev procps dnsmasq-base whois qemu-user-static file cppcheck busybox postfix sasl2-bin libsasl2-modules strace" ;;
bench) pkgs="$BUILD $CLIENTS procps" ;;
*) echo "install-deps: unknown job $job" >&2; exit 2 ;;
esac

missing=
for p in $pkgs; do
	dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "postie: missing packages:$missing" >&2
	echo "  as root: apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
echo "postie: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
policy_added=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	policy_added=1
fi
rc=0
# Another apt run may hold the lists lock for a while: wait, bounded.
for _ in $(seq 60); do
	apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null 2>&1 && break
	sleep 5
done
# shellcheck disable=SC2086
apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends $missing >/dev/null || rc=$?
[ "$policy_added" = 0 ] || rm -f /usr/sbin/policy-rc.d
exit "$rc"
