#!/bin/bash
# tests/bench/size.sh [--check] — `make size`: stripped static binary sizes
# per target x configuration, RAM per connection slot, and where the bytes
# come from (linker map).
#
#   --check   also compare each row with tests/bench/size-budgets.txt
#             ("TARGET CONFIG MAX_BYTES" lines) and exit 1 naming every row
#             over its budget or with any stdio function linked in (used
#             by `make check`).
#
# Targets: x86_64 (the host build) and the cross targets armv7 aarch64
# mipsel_24kc mips_24kc when toolchain/<t>.mk exists; configurations:
# allnoconfig, defconfig (the Kconfig defaults) and allyesconfig, generated
# with kconfiglib into build/size/configs/, then every board/<b>/defconfig
# (make BOARD=<b>, in build/board-<b>). Each is built with
#   make -j2 TARGET=<t> O=build/size/<t>-<cfg> CONFIG_SRC=build/size/configs/<cfg>.config
# into its own directory, which later runs reuse (only what changed is
# rebuilt; config files are rewritten only when their content changes);
# defconfig, when there is no ./.config, in build/<t> as `make TARGET=<t>`
# (the cross stage of make check has just built those and the boards).
# A build that fails (e.g. a cross toolchain that is not ready yet) is
# skipped with a note and its log path; with --check it is a failure.
# SIZE_TARGETS, SIZE_CONFIGS, SIZE_BOARDS narrow a run by hand (e.g.
# SIZE_TARGETS=mips_24kc SIZE_CONFIGS=defconfig SIZE_BOARDS=alerts);
# SIZE_QUICK=1 leaves out the extra builds (mitigations, RAM per slot).
#
# Per row: the xz-compressed size of the stripped binary (what a squashfs
# image spends: xz -9e, CRC32, 256 KiB blocks, lc=0 lp=2 pb=2 as OpenWrt's
# squashfs options) and the bytes of every part from the link map
# (mapsize.py --tsv: postie's modules, each BearSSL, udns, musl and libgcc
# member), kept in build/size/figures/<commit>/ ("<commit>+" when src,
# Makefile, Kconfig or toolchain have uncommitted changes). Changes are
# shown against the figures of the base: SIZE_BASE=<commit> if given, else
# the clean commit itself for a "+" run, else the parent commit, else the
# newest other figures there; and, on a clean checkout, the file sizes
# against the "measured" figure of the row in size-budgets.txt.
# Output: a Markdown report on stdout and in build/size/size.md.
set -uo pipefail
export LC_ALL=C

cd "$(dirname "$0")/../.." || exit 1
S=build/size
BUDGETS=tests/bench/size-budgets.txt
PY=/usr/bin/python3
CHECK=0
for a in "$@"; do
	case $a in
	--check) CHECK=1 ;;
	-h | --help) sed -n '2,9p' "$0"; exit 0 ;;
	*) echo "size: unknown argument $a" >&2; exit 2 ;;
	esac
done

say() { echo "size: $*" >&2; }
mkdir -p "$S/configs" "$S/logs"
T0=$(date +%s)

TARGETS=x86_64
for t in armv7 aarch64 mipsel_24kc mips_24kc; do
	[ -f "toolchain/$t.mk" ] && TARGETS="$TARGETS $t"
done
CONFIGS="allnoconfig defconfig allyesconfig"
TARGETS=${SIZE_TARGETS-$TARGETS}
CONFIGS=${SIZE_CONFIGS-$CONFIGS}
BOARDS=${SIZE_BOARDS-$(for d in board/*/; do basename "$d"; done)}

# ---- where the figures of this run go, and what they are compared with -------
commit_of() { git rev-parse --short=12 "$1" 2>/dev/null; }
FIG=$S/figures
KEY=$(commit_of HEAD)
KEY=${KEY:-nogit}
DIRTY=$(git status --porcelain -- src Makefile Kconfig toolchain 2>/dev/null | wc -l)
[ "$DIRTY" -gt 0 ] && KEY=$KEY+
BASE=
if [ -n "${SIZE_BASE:-}" ]; then
	BASE=$(commit_of "$SIZE_BASE")
elif [ "$DIRTY" -gt 0 ] && [ -d "$FIG/${KEY%+}" ]; then
	BASE=${KEY%+}
elif p=$(commit_of HEAD~1) && [ -d "$FIG/$p" ]; then
	BASE=$p
else
	BASE=$(ls -t "$FIG" 2>/dev/null | grep -vxF "$KEY" | head -1)
fi
[ -n "$BASE" ] && [ ! -d "$FIG/$BASE" ] && BASE=
mkdir -p "$FIG/$KEY"
XZ_ARGS="-c --format=xz --check=crc32 --block-size=262144 --lzma2=preset=9e,lc=0,lp=2,pb=2"
rowfile() { echo "$1_$2" | tr ':/' '--'; }
# figures TARGET CONFIG O: the row's file and xz bytes and its parts.
figures() {
	local f=$FIG/$KEY/$(rowfile "$1" "$2").tsv xz=?
	command -v xz >/dev/null && xz=$(xz $XZ_ARGS "$3/postie" | wc -c)
	{
		printf '# %s %s %s\n' "$1" "$2" "$KEY"
		printf '=file\t%s\n=xz\t%s\n' "$(stat -c %s "$3/postie")" "$xz"
		[ -f "$3/postie.map" ] && $PY tests/bench/mapsize.py --tsv "$3/postie.map"
	} >"$f.tmp" && mv "$f.tmp" "$f"
	echo "$xz"
}
# stdio_of TARGET O: the stdio functions and streams linked into O/postie
# (none: postie writes through core/fdio and libc_small's dprintf).
STDIO_RE='^(__stdio_[a-z_]+|__std(in|out|err)_(used|FILE)|std(in|out|err)|f(d?open|close|gets|puts|putc|getc|write|read|flush|seeko?|tello?|printf|scanf)|v?f?printf|puts|putchar|getc|getchar|ungetc|setvbuf|perror|(v?s?)scanf_?)$'
stdio_of() {
	local nm
	nm=$(tool "$1" "$2" STRIP strip)
	nm=${nm%strip}nm
	command -v "$nm" >/dev/null || nm=nm
	$nm "$2/postie.unstripped" 2>/dev/null | awk '$2 ~ /^[TtDdBbRr]$/ { print $3 }' |
		grep -E "$STDIO_RE" | sort -u | tr '\n' ' '
}
STDIO=()     # "target config symbols..."

# fig_of KEY TARGET CONFIG PART: one figure of an earlier run, or nothing.
fig_of() {
	[ -n "$1" ] || return 0
	awk -F'\t' -v p="$4" '$1 == p { print $2; exit }' "$FIG/$1/$(rowfile "$2" "$3").tsv" 2>/dev/null
}

# ---- configurations --------------------------------------------------------
$PY -c 'import kconfiglib' 2>/dev/null || tests/install-deps.sh build >&2 ||
	{ say "kconfiglib missing (python3-kconfiglib)"; exit 1; }
for c in $CONFIGS; do
	mod=$c
	[ "$c" = defconfig ] && mod=alldefconfig
	tmp=$S/configs/.$c.tmp
	if ! KCONFIG_CONFIG=$tmp timeout 60 $PY -m "$mod" Kconfig >/dev/null 2>"$S/logs/config-$c.log"; then
		say "kconfiglib $mod failed: $S/logs/config-$c.log"
		exit 1
	fi
	# Keep the old file (and its time stamp) when nothing changed, so that
	# make does not rebuild everything on every run.
	sed -i '/^# Generated by\|^#.*[0-9][0-9]:[0-9][0-9]/d' "$tmp"
	if cmp -s "$tmp" "$S/configs/$c.config"; then rm -f "$tmp"; else mv "$tmp" "$S/configs/$c.config"; fi
done

# ---- helpers -------------------------------------------------------------
# mkvar TARGET O NAME: a variable of toolchain/TARGET.mk.
mkvar() {
	printf 'include toolchain/%s.mk\n$(info $(%s))\nall: ;@:\n' "$1" "$3" |
		make -s --no-print-directory -f - O="$2" all 2>/dev/null
}
tool() { # TARGET O NAME FALLBACK: a binutils tool of the target, or FALLBACK
	local v
	v=$(mkvar "$1" "$2" "$3")
	if [ -n "$v" ] && command -v "$v" >/dev/null; then echo "$v"; else echo "$4"; fi
}
cfgval() { # O NAME: CONFIG_NAME from O/.config or O/include/autoconf.h
	local v
	v=$(sed -n "s/^CONFIG_$2=//p" "$1/.config" 2>/dev/null | tail -1)
	[ -n "$v" ] || v=$(sed -n "s/^#define CONFIG_$2 //p" "$1/include/autoconf.h" 2>/dev/null | tail -1)
	echo "$v"
}

ROWS=()      # "target config file text data bss O"
NOTES=()
build() { # TARGET CONFIGNAME O MAKE-ARGS...
	local t=$1 c=$2 o=$3 log
	shift 3
	log=$S/logs/$t-$c.log
	say "building $t $c"
	if ! timeout 1200 make -j2 -s TARGET="$t" O="$o" "$@" >"$log" 2>&1 </dev/null || [ ! -f "$o/postie" ]; then
		NOTES+=("$t $c: build failed, skipped (last line: $(grep -v '^\s*$' "$log" | tail -1 | cut -c1-160); log: $log)")
		return 1
	fi
	local sz line
	sz=$(tool "$t" "$o" SIZE size)
	line=$($sz "$o/postie" 2>/dev/null | awk 'NR == 2 { print $1, $2, $3 }')
	[ -n "$line" ] || line=$(size "$o/postie" 2>/dev/null | awk 'NR == 2 { print $1, $2, $3 }')
	[ -n "$line" ] || line="? ? ?"
	ROWS+=("$t $c $(stat -c %s "$o/postie") $line $(figures "$t" "$c" "$o") $o")
	local sy
	sy=$(stdio_of "$t" "$o")
	[ -z "$sy" ] || STDIO+=("$t $c: $sy")
}

defdir() { # TARGET: the build directory of its defconfig
	if [ -e .config ]; then echo "$S/$1-defconfig"; else echo "build/$1"; fi
}
for t in $TARGETS; do
	for c in $CONFIGS; do
		if [ "$c" = defconfig ] && [ "$(defdir "$t")" = "build/$t" ]; then
			build "$t" "$c" "build/$t"
		else
			build "$t" "$c" "$S/$t-$c" CONFIG_SRC="$S/configs/$c.config"
		fi
	done
done
for b in $BOARDS; do
	[ -f "board/$b/defconfig" ] || continue
	bt=$(sed -n 's/^BOARD_TARGET[ \t]*[:?]*=[ \t]*//p' "board/$b/board.mk" 2>/dev/null | head -1)
	[ -n "$bt" ] || { NOTES+=("board $b: no BOARD_TARGET in board/$b/board.mk, skipped"); continue; }
	o=build/board-$b
	say "building board $b ($bt)"
	log=$S/logs/board-$b.log
	if timeout 1200 make -j2 -s BOARD="$b" O="$o" >"$log" 2>&1 </dev/null && [ -f "$o/postie" ]; then
		sz=$(tool "$bt" "$o" SIZE size)
		line=$($sz "$o/postie" 2>/dev/null | awk 'NR == 2 { print $1, $2, $3 }')
		ROWS+=("$bt board:$b $(stat -c %s "$o/postie") ${line:-? ? ?} $(figures "$bt" "board:$b" "$o") $o")
		sy=$(stdio_of "$bt" "$o")
		[ -z "$sy" ] || STDIO+=("$bt board:$b: $sy")
	else
		NOTES+=("board $b: build failed, skipped (log: $log)")
	fi
done

# ---- exploit mitigations: what each costs ----------------------------------
# defconfig again per target with the stack protector (strong, and the
# plain one that guards only char arrays), and x86_64 as a static PIE
# with full RELRO (toolchain/x86_64-pie.mk). Not in --check (extra builds).
MITIG=()     # "target what bytes base-bytes"
mitig() { # TARGET WHAT O MAKE-ARGS...
	local t=$1 w=$2 o=$3 base
	base=$(defdir "$1")/postie
	shift 3
	[ -f "$base" ] || return 0
	say "building $t defconfig with $w"
	timeout 1200 make -j2 -s O="$o" CONFIG_SRC="$S/configs/defconfig.config" "$@" \
		>"$S/logs/$(basename "$o").log" 2>&1 </dev/null && [ -f "$o/postie" ] || {
		NOTES+=("$t $w: build failed (log: $S/logs/$(basename "$o").log)"); return 0; }
	MITIG+=("$t $w $(stat -c %s "$o/postie") $(stat -c %s "$base")")
}
if [ "$CHECK" = 0 ] && [ "${SIZE_QUICK:-0}" = 0 ]; then
	for t in $TARGETS; do
		mitig "$t" ssp-strong "$S/$t-defconfig-ssp" TARGET="$t" EXTRA_CFLAGS=-fstack-protector-strong
		mitig "$t" ssp "$S/$t-defconfig-sspw" TARGET="$t" EXTRA_CFLAGS=-fstack-protector
	done
	mitig x86_64 static-pie+relro "$S/x86_64-defconfig-pie" TARGET=x86_64-pie
	mitig x86_64 static-pie+relro+ssp-strong "$S/x86_64-defconfig-pie-ssp" TARGET=x86_64-pie \
		EXTRA_CFLAGS=-fstack-protector-strong
fi

# ---- RAM per connection and per TLS session --------------------------------
# Build defconfig again with CONFIG_<LIMIT> + 1: the symbols whose size grows
# are the arrays sized by that limit, and the growth is their cost per
# element (sizeof the element), exact and without a list of names to keep.
grow_report() { # TARGET LIMIT WHAT
	local t=$1 k=$2 what=$3 o o1 n nm cfg
	o=$(defdir "$1")
	o1=$S/$1-defconfig-$(echo "$k" | tr 'A-Z_' 'a-z-')
	cfg=$S/configs/defconfig-$(echo "$k" | tr 'A-Z_' 'a-z-').config
	[ -f "$o/postie.unstripped" ] && [ "${SIZE_QUICK:-0}" = 0 ] || return 0
	n=$(cfgval "$o" "$k")
	[ -n "$n" ] || return 0
	sed "/^CONFIG_$k=/d" "$S/configs/defconfig.config" >"$cfg.tmp"
	echo "CONFIG_$k=$((n + 1))" >>"$cfg.tmp"
	if cmp -s "$cfg.tmp" "$cfg"; then rm -f "$cfg.tmp"; else mv "$cfg.tmp" "$cfg"; fi
	say "building $t defconfig with CONFIG_$k=$((n + 1))"
	timeout 1200 make -j2 -s TARGET="$t" O="$o1" CONFIG_SRC="$cfg" \
		>"$S/logs/$(basename "$o1").log" 2>&1 </dev/null || return 0
	[ -f "$o1/postie.unstripped" ] || return 0
	nm=$(tool "$t" "$o" STRIP strip)
	nm=${nm%strip}nm
	command -v "$nm" >/dev/null || nm="nm"
	echo "### $t: RAM per $what (defconfig, CONFIG_$k=$n)"
	echo
	echo "Symbols that grow when CONFIG_$k goes from $n to $((n + 1)):"
	echo
	echo "| symbol | section | bytes at $n | bytes per $what |"
	echo "|---|---|---:|---:|"
	$nm -S -n "$o/postie.unstripped" >"$S/logs/$t-nm.txt" 2>/dev/null
	$nm -S -n "$o1/postie.unstripped" >"$S/logs/$(basename "$o1")-nm.txt" 2>/dev/null
	$PY - "$S/logs/$t-nm.txt" "$S/logs/$(basename "$o1")-nm.txt" "$what" <<'EOF'
import sys
def syms(path):
    # Static symbols may share a name (two "pool"s): key on the name, the
    # type and the rank among symbols of that name, in address order.
    d, seen = {}, {}
    for line in open(path):
        f = line.split()
        if len(f) == 4:
            k = (f[3], f[2].lower())
            seen[k] = seen.get(k, 0) + 1
            d[k + (seen[k],)] = int(f[1], 16)
    return d
a, b, what = syms(sys.argv[1]), syms(sys.argv[2]), sys.argv[3]
tot = 0
for (name, t, i), size in sorted(a.items(), key=lambda kv: -kv[1]):
    grow = b.get((name, t, i), size) - size
    if grow > 0:
        sec = {"b": "bss", "d": "data", "r": "rodata"}.get(t, t)
        print("| %s | %s | %d | %d |" % (name, sec, size, grow))
        tot += grow
print("| **total per %s** | | | **%d** |" % (what, tot))
EOF
	echo
}

big_syms() { # TARGET: the largest data/bss symbols of defconfig
	local t=$1 o
	o=$(defdir "$1")
	[ -f "$S/logs/$t-nm.txt" ] || return 0
	echo "### $t: largest static RAM symbols (defconfig; bss pages cost RAM only once touched)"
	echo
	echo "| symbol | section | bytes |"
	echo "|---|---|---:|"
	awk 'NF == 4 && $3 ~ /^[bBdD]$/ { print $2, $3, $4 }' "$S/logs/$t-nm.txt" |
		while read -r h ty name; do echo "$((16#$h)) $ty $name"; done | sort -rn | head -10 |
		awk '{ printf "| %s | %s | %d |\n", $3, ($2 ~ /[bB]/) ? "bss" : "data", $1 }'
	echo
	echo "Total static data+bss: $(size "$o/postie.unstripped" | awk 'NR == 2 { print $2 + $3 }') bytes."
	echo
}

# ---- report --------------------------------------------------------------
budget_of() { # TARGET CONFIG COLUMN: MAX_BYTES (3) or GOAL_BYTES (4)
	[ -f "$BUDGETS" ] || return 0
	awk -v t="$1" -v c="$2" -v k="$3" '!/^#/ && $1 == t && $2 == c {
		if ($k ~ /^[0-9]+$/) print $k; exit }' "$BUDGETS"
}
OVER=()
OUT=$S/size.md
{
	echo "# postie binary sizes — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Stripped, static; file = bytes on flash. text/data/bss from the target's size tool."
	echo "Commit $(git log -1 --format='%h %cs' 2>/dev/null || echo '?')$(n=$(git status --porcelain -- src Makefile Kconfig toolchain 2>/dev/null | wc -l); [ "$n" -gt 0 ] && echo " + $n uncommitted files")."
	echo
	echo "xz: the stripped binary through \`xz $XZ_ARGS\`. change: against the"
	echo "figures of ${BASE:-(none kept in $FIG)}; measured: against the row's \"measured\" in $BUDGETS."
	echo
	echo "| target | config | file bytes | KiB | xz | change | xz change | vs measured | text | data | bss | budget | goal | status |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for r in "${ROWS[@]}"; do
		read -r t c f tx da bs xz o <<<"$r"
		bf=$(fig_of "$BASE" "$t" "$c" =file)
		bx=$(fig_of "$BASE" "$t" "$c" =xz)
		ms=$(awk -v t="$t" -v c="$c" '!/^#/ && $1 == t && $2 == c {
			for (i = 3; i < NF; i++) if ($i == "measured") { print $(i + 1); exit } }' "$BUDGETS" 2>/dev/null)
		dlt() { [[ "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ ]] && printf '%+d' $(($1 - $2)) || printf -- -; }
		bud=$(budget_of "$t" "$c" 3)
		goal=$(budget_of "$t" "$c" 4)
		st=ok
		if [ -z "$bud" ]; then
			st="no budget"
		elif [ "$f" -gt "$bud" ]; then
			st="**OVER BUDGET by $((f - bud))**"
			OVER+=("$t $c: $f bytes > budget $bud")
		fi
		if [ -n "$goal" ] && [ "$f" -gt "$goal" ]; then
			st="$st; $(awk -v f="$f" -v g="$goal" 'BEGIN { printf "%.1f KiB over goal", (f - g) / 1024 }')"
		fi
		printf '| %s | %s | %d | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$c" "$f" \
			"$(awk -v f="$f" 'BEGIN { print f / 1024 }')" "$xz" "$(dlt "$f" "$bf")" "$(dlt "$xz" "$bx")" \
			"$(dlt "$f" "$ms")" "$tx" "$da" "$bs" "${bud:--}" "${goal:--}" "$st"
	done
	echo
	for n in "${NOTES[@]}"; do echo "- $n"; done
	[ ${#NOTES[@]} -eq 0 ] || echo
	if [ ${#STDIO[@]} -gt 0 ]; then
		echo "**stdio linked in** (postie uses none; find the caller in the map):"
		echo
		for n in "${STDIO[@]}"; do echo "- $n"; done
	else
		echo "No stdio function or stream in any binary above."
	fi
	echo
	if [ ${#MITIG[@]} -gt 0 ]; then
		echo "## Exploit mitigations (defconfig): bytes each costs"
		echo
		echo "| target | mitigation | file bytes | without | cost | % |"
		echo "|---|---|---:|---:|---:|---:|"
		for r in "${MITIG[@]}"; do
			read -r t w f b <<<"$r"
			printf '| %s | %s | %d | %d | %+d | %s |\n' "$t" "$w" "$f" "$b" "$((f - b))" \
				"$(awk -v f="$f" -v b="$b" 'BEGIN { printf "%+.1f", (f - b) * 100 / b }')"
		done
		echo
	fi
	if [ "$CHECK" = 0 ]; then
		FULL=() CHANGED=()
		for r in "${ROWS[@]}"; do
			read -r t c _ <<<"$r"
			case $c in defconfig | board:*) FULL+=("$t $c") ;; *) CHANGED+=("$t $c") ;; esac
		done
		echo "## Where the bytes go, part by part"
		echo
		echo "Bytes of each part kept in the link (text+rodata+data; bss is RAM) and"
		echo "the change against ${BASE:-earlier figures (none kept yet)}. defconfig and the boards in full;"
		echo "the other rows list only what changed."
		echo
		base_args=()
		[ -n "$BASE" ] && base_args=(--base "$BASE")
		$PY tests/bench/mapsize.py --modules "$FIG" --key "$KEY" "${base_args[@]}" "${FULL[@]}"
		[ ${#CHANGED[@]} -eq 0 ] || $PY tests/bench/mapsize.py --modules "$FIG" --key "$KEY" \
			--changes "${base_args[@]}" "${CHANGED[@]}"
		echo "## RAM per connection"
		echo
		for t in x86_64 mips_24kc armv7; do
			grow_report "$t" MAX_CONNECTIONS "connection slot"
			grow_report "$t" MAX_TLS_SESSIONS "TLS session"
			big_syms "$t"
		done
		for t in x86_64 mips_24kc; do
			m=$(defdir "$t")/postie.map
			[ -f "$m" ] || continue
			echo "## Where the bytes go: $t defconfig ($m)"
			echo
			$PY tests/bench/mapsize.py "$m" 25
			echo
		done
	fi
	echo "Took $(($(date +%s) - T0)) s."
} >"$OUT"
cat "$OUT"
if [ "$CHECK" = 1 ] && [ $((${#OVER[@]} + ${#NOTES[@]} + ${#STDIO[@]})) -gt 0 ]; then
	for o in "${OVER[@]}"; do echo "size: over budget: $o" >&2; done
	for o in "${NOTES[@]}"; do echo "size: not measured: $o" >&2; done
	for o in "${STDIO[@]}"; do echo "size: stdio linked in: $o" >&2; done
	exit 1
fi
exit 0
