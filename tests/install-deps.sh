#!/bin/sh
# tests/install-deps.sh JOB: installs the Debian packages a job needs
# (build: kconfig front end; run: + curl/swaks to try it; check: + test
# clients and sanitizer/fuzzer runtimes). Silent when all are present; as
# non-root, prints the apt-get command and fails.
set -eu

job=${1:-check}
pkgs="python3 python3-kconfiglib make"
case "$job" in
build) ;;
run) pkgs="$pkgs curl swaks" ;;
check) pkgs="$pkgs curl swaks clang libclang-rt-14-dev procps dnsmasq-base openssl msmtp whois fetchmail isync mutt qemu-user-static file cppcheck" ;;
bench) pkgs="$pkgs curl swaks procps" ;;
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
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
