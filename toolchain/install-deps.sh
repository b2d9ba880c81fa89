#!/bin/sh
# toolchain/install-deps.sh TARGET: install the Debian packages a target needs
# (APT_PKGS/APT_ARCH from toolchain/TARGET.mk, plus the host tools deps.sh uses)
# and a deb-src list for `apt-get source`, derived from the machine's own apt
# sources. Idempotent; silent and fast when everything is already there.
set -eu

cd "$(dirname "$0")/.."
T=${1:?usage: toolchain/install-deps.sh TARGET}
[ -f "toolchain/$T.mk" ] || { echo "install-deps: no toolchain/$T.mk" >&2; exit 1; }
# A build system that brings its own toolchain (toolchain/openwrt.mk) needs nothing.
grep -qE '^EXTERNAL_TOOLCHAIN[ \t]*=[ \t]*yes' "toolchain/$T.mk" && exit 0

HOST_PKGS="make gcc libc6-dev dpkg-dev xz-utils"
SRC_LIST=/etc/apt/sources.list.d/postie-src

# mkvar NAME: a plain "NAME = words" from toolchain/$T.mk and the one level of
# toolchain/*.mk it may include.
mkvar() {
	inc=$(sed -n 's|^include[ \t]*\(toolchain/[A-Za-z0-9_]*\.mk\)[ \t]*$|\1|p' "toolchain/$T.mk")
	# shellcheck disable=SC2086
	cat $inc "toolchain/$T.mk" | sed -n "s/^$1[ \t]*[:+]*=[ \t]*//p" | tr '\n' ' '
}

APT_PKGS="$HOST_PKGS $(mkvar APT_PKGS)"
APT_ARCH=$(mkvar APT_ARCH)

missing=
for p in $APT_PKGS; do
	dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' ||
		missing="$missing $p"
done
need_arch=
for a in $APT_ARCH; do
	dpkg --print-foreign-architectures | grep -qx "$a" || need_arch="$need_arch $a"
done
have_src=
if grep -qsE '^[ \t]*(Types:.*deb-src|deb-src[ \t])' /etc/apt/sources.list \
	/etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; then
	have_src=1
fi
[ -z "$missing$need_arch" ] && [ -n "$have_src" ] &&
	ls /var/lib/apt/lists/*_Sources* >/dev/null 2>&1 && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing for $T; as root run:" >&2
	for a in $need_arch; do echo "  dpkg --add-architecture $a" >&2; done
	[ -n "$have_src" ] || echo "  (and add deb-src entries for your deb sources)" >&2
	echo "  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
	exit 1
fi

# deb-src: copy each enabled deb entry of this release as deb-src (deb822 or
# one-line format), so the archive hosts are the ones already configured.
if [ -z "$have_src" ]; then
	. /etc/os-release
	rel=${VERSION_CODENAME:?install-deps: no VERSION_CODENAME in /etc/os-release}
	tmp=$(mktemp)
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v rel="$rel" '
		function flush() {
			if (deb && !off && relok) printf "%s\n", st
			st = ""; deb = off = relok = 0
		}
		/^[ \t]*$/ { flush(); next }
		/^#/ { next }
		/^Types:/ { deb = ($0 ~ /[ \t]deb([ \t]|$)/); $0 = "Types: deb-src" }
		/^Enabled:[ \t]*no/ { off = 1 }
		/^Architectures:/ { next }
		/^Suites:/ { for (i = 2; i <= NF; i++)
			if ($i == rel || index($i, rel "-") == 1) relok = 1 }
		{ st = st $0 "\n" }
		END { flush() }' "$f" >>"$tmp"
	done
	tmpl=$(mktemp)
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk -v rel="$rel" '$1 == "deb" {
			i = 2
			if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
			s = $(i + 1)
			if (s == rel || index(s, rel "-") == 1) { sub(/^deb/, "deb-src"); print }
		}' "$f" >>"$tmpl"
	done
	[ -s "$tmp" ] || [ -s "$tmpl" ] || {
		rm -f "$tmp" "$tmpl"
		echo "install-deps: no deb entry for $rel to derive deb-src from" >&2
		exit 1
	}
	[ ! -s "$tmp" ] || install -m 644 "$tmp" "$SRC_LIST.sources"
	[ ! -s "$tmpl" ] || install -m 644 "$tmpl" "$SRC_LIST.list"
	rm -f "$tmp" "$tmpl"
	echo "install-deps: added deb-src entries in $SRC_LIST.*"
fi

for a in $need_arch; do
	echo "install-deps: dpkg --add-architecture $a"
	dpkg --add-architecture "$a"
done
echo "install-deps: apt-get update"
# A stale mirror index (often a foreign arch of -security) fails update but
# not the install; let apt-get install be the judge.
apt-get update -qq || echo "install-deps: warning: apt-get update reported errors" >&2
if [ -n "$missing" ]; then
	echo "install-deps: apt-get install$missing"
	DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
