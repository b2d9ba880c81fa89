#!/usr/bin/python3
"""Where the bytes of a static binary come from, from a GNU ld map file.

  mapsize.py MAP [TOP]
  mapsize.py --tsv MAP
  mapsize.py --modules DIR ROW [ROW...]

Prints Markdown: bytes per input object (postie objects, libc/libgcc archive
members) split into text (code, .init/.fini), rodata, data and bss, the TOP
largest (default 25) with, for archive members, the chain of references that
pulled them in ("vfprintf.lo <- vsnprintf.lo <- log.o (vsnprintf)"), and
totals per origin (postie, libc, libgcc, crt). Sizes are of input sections
kept in the output (after --gc-sections); alignment padding is not counted.

--tsv prints one line per part, "PART<TAB>text<TAB>rodata<TAB>data<TAB>bss":
postie's modules as their source name without .c ("core/conn", "main"),
library members as LIB:MEMBER ("bearssl:ssl_engine", "udns:udns_resolver",
"musl:vfprintf", "libgcc:_udivdi3", "softfp:adddf3"), start files as
crt:NAME. size.sh keeps these, one file per build row, as
build/size/figures/<commit>/<row>.tsv (plus "=file" and "=xz" lines).

--modules DIR ROW...: for each ROW (a "TARGET CONFIG" words pair, e.g.
"mips_24kc board:alerts"), the per-part table of DIR/<key>/<row>.tsv with
the change against the figures of the base key (--base KEY; see size.sh),
library members grouped under their library with a subtotal. Parts that
changed are marked. With --changes only the parts whose bytes changed.
Python 3 standard library only.
"""
import re
import sys


def kind(sec):
    s = sec
    if s.startswith((".text", ".init", ".fini")) and not s.startswith((".init_array", ".fini_array")):
        return "text"
    if s.startswith((".rodata", ".eh_frame", ".gcc_except_table", ".note", ".srodata")):
        return "rodata"
    if s.startswith((".bss", ".sbss", ".tbss", "COMMON", ".scommon", "dynbss")):
        return "bss"
    if s.startswith((".data", ".sdata", ".tdata", ".init_array", ".fini_array",
                     ".got", ".ctors", ".dtors", ".data.rel")):
        return "data"
    return None  # debug, comments, relocations: not loaded


def short(path):
    m = re.match(r"(.*/)?([^/(]+)\.a\((.*)\)$", path)
    if m:
        return "%s:%s" % (m.group(2), m.group(3))
    m = re.match(r".*?/obj/(.*)$", path)
    if m:
        return m.group(1)
    return path.rsplit("/", 1)[-1]


def origin(path):
    m = re.match(r"(.*/)?([^/(]+)\.a\(", path)
    if m:
        return m.group(2)
    if "/obj/" in path:
        return "postie"
    return "crt"


def parse(lines):
    pulled = {}
    sizes = {}
    i = 0
    n = len(lines)
    # 1. "Archive member included to satisfy reference by file (symbol)"
    while i < n and not lines[i].startswith("Archive member included"):
        i += 1
    i += 1
    while i < n and not lines[i].startswith(("Discarded input sections",
                                              "Allocating common", "Memory Configuration")):
        line = lines[i].rstrip("\n")
        m = re.match(r"^(\S+\.a\([^)]*\))\s*(\S.*)?$", line)
        if m:
            member = m.group(1)
            rest = m.group(2)
            if not rest and i + 1 < n:
                i += 1
                rest = lines[i].strip()
            r = re.match(r"^(\S+)\s+\((.*)\)$", rest or "")
            if r and member not in pulled:
                pulled[member] = (r.group(1), r.group(2))
        i += 1
    # 2. the memory map
    while i < n and not lines[i].startswith("Linker script and memory map"):
        i += 1
    pending = None
    for line in lines[i:]:
        line = line.rstrip("\n")
        if pending is not None:
            m = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
            if m:
                add(sizes, pending, int(m.group(2), 16), m.group(3))
            pending = None
            continue
        m = re.match(r"^ (\.\S+|COMMON)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
        if m:
            add(sizes, m.group(1), int(m.group(3), 16), m.group(4))
            continue
        m = re.match(r"^ (\.\S+|COMMON)$", line)
        if m:
            pending = m.group(1)
    return pulled, sizes


def add(sizes, sec, size, path):
    k = kind(sec)
    if k is None or size == 0 or path.startswith(("*", "load address")):
        return
    d = sizes.setdefault(path.strip(), dict(text=0, rodata=0, data=0, bss=0))
    d[k] += size


def chain(pulled, path, depth=6):
    out = []
    p = path
    while p in pulled and depth > 0:
        ref, sym = pulled[p]
        out.append("%s (%s)" % (short(ref), sym))
        p = ref
        depth -= 1
    return " <- ".join(out)


LIBNAMES = {"libc": "musl", "libbearssl": "bearssl", "libudns": "udns",
            "libgcc": "libgcc", "libsoftfp": "softfp"}


def part(path):
    o = origin(path)
    if o == "postie":
        return re.sub(r"\.o$", "", short(path))
    m = re.match(r"(.*/)?([^/(]+)\.a\((.*)\)$", path)
    if m:
        return "%s:%s" % (LIBNAMES.get(o, o), re.sub(r"\.l?o$", "", m.group(3)))
    return "crt:" + re.sub(r"\.o$", "", short(path))


def tsv(mapfile):
    with open(mapfile, encoding="utf-8", errors="replace") as f:
        _, sizes = parse(f.readlines())
    parts = {}
    for path, d in sizes.items():
        p = parts.setdefault(part(path), [0, 0, 0, 0])
        for i, k in enumerate(("text", "rodata", "data", "bss")):
            p[i] += d[k]
    for name in sorted(parts):
        print("\t".join([name] + [str(v) for v in parts[name]]))


def read_tsv(path):
    """{part: [text, rodata, data, bss]}, or None when the file is missing."""
    try:
        f = open(path)
    except OSError:
        return None
    d = {}
    with f:
        for line in f:
            w = line.rstrip("\n").split("\t")
            if len(w) >= 2 and not w[0].startswith("#"):
                d[w[0]] = [int(x) for x in w[1:]] + [0] * (5 - len(w))
    return d


def rowfile(row):
    return row.replace(" ", "_").replace(":", "-").replace("/", "-") + ".tsv"


def group(name):
    if name.startswith("="):
        return "total"
    return name.split(":", 1)[0] if ":" in name else "postie"


def delta(cur, base):
    if base is None:
        return ""
    d = cur - base
    return "%+d" % d if d else ""


def modules(argv):
    changes = "--changes" in argv
    argv = [a for a in argv if a != "--changes"]
    base_key = None
    if "--base" in argv:
        i = argv.index("--base")
        base_key = argv[i + 1]
        del argv[i:i + 2]
    key = None
    if "--key" in argv:
        i = argv.index("--key")
        key = argv[i + 1]
        del argv[i:i + 2]
    top, rows = argv[0], argv[1:]
    flash = lambda v: v[0] + v[1] + v[2]
    for row in rows:
        cur = read_tsv("%s/%s/%s" % (top, key, rowfile(row)))
        if cur is None:
            continue
        base = read_tsv("%s/%s/%s" % (top, base_key, rowfile(row))) if base_key else None
        fb = cur.get("=file", [0])[0]
        xz = cur.get("=xz", [0])[0]
        head = "%s: %d bytes stripped, %d xz" % (row, fb, xz)
        if base is not None and "=file" in base:
            head += " (%s / %s against %s)" % (
                delta(fb, base["=file"][0]) or "+0",
                delta(xz, base.get("=xz", [0])[0]) or "+0", base_key)
        print("#### " + head)
        print()
        groups = {}
        names = set(cur) | (set(base) if base else set())
        for n in names:
            if group(n) != "total":
                groups.setdefault(group(n), []).append(n)
        zero = [0, 0, 0, 0]
        lines = []
        for g in sorted(groups, key=lambda g: -sum(flash(cur.get(n, zero)) for n in groups[g])):
            members = sorted(groups[g], key=lambda n: (-flash(cur.get(n, zero)), n))
            gcur = sum(flash(cur.get(n, zero)) for n in members)
            gbss = sum(cur.get(n, zero)[3] for n in members)
            gbase = sum(flash(base.get(n, zero)) for n in members) if base is not None else None
            gd = delta(gcur, gbase)
            if changes and not gd:
                continue
            lines.append("| **%s** (%d parts) | **%d** | %d | %s |" % (
                g, sum(1 for n in members if n in cur), gcur, gbss, gd))
            for n in members:
                c = cur.get(n, zero)
                b = base.get(n) if base is not None else None
                if base is not None and b is None:
                    b = zero
                d = delta(flash(c), flash(b) if b is not None else None)
                if changes and not d:
                    continue
                tag = "" if n in cur else " (gone)"
                if base is not None and n not in base:
                    tag = " (new)"
                lines.append("| %s%s | %d | %d | %s |" % (
                    n.split(":", 1)[-1] if g != "postie" else n, tag, flash(c), c[3], d))
        if changes and not lines:
            print("No part changed against %s.\n" % base_key if base is not None
                  else "No earlier figures to compare with.\n")
            continue
        print("| part | text+rodata+data | bss | change |")
        print("|---|---:|---:|---:|")
        for l in lines:
            print(l)
        print()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--tsv":
        tsv(sys.argv[2])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--modules":
        modules(sys.argv[2:])
        return
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    pulled, sizes = parse(lines)
    flash = lambda d: d["text"] + d["rodata"] + d["data"]
    tot = {}
    for path, d in sizes.items():
        o = tot.setdefault(origin(path), dict(text=0, rodata=0, data=0, bss=0, n=0))
        for k in ("text", "rodata", "data", "bss"):
            o[k] += d[k]
        o["n"] += 1
    allflash = sum(flash(d) for d in tot.values()) or 1
    print("| origin | objects | text | rodata | data | bss | text+rodata+data | share |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, d in sorted(tot.items(), key=lambda kv: -flash(kv[1])):
        print("| %s | %d | %d | %d | %d | %d | %d | %.0f%% |" % (
            name, d["n"], d["text"], d["rodata"], d["data"], d["bss"], flash(d),
            100.0 * flash(d) / allflash))
    print()
    print("Largest %d objects by text+rodata+data:" % top)
    print()
    print("| object | text | rodata | data | bss | pulled in by |")
    print("|---|---:|---:|---:|---:|---|")
    for path, d in sorted(sizes.items(), key=lambda kv: -flash(kv[1]))[:top]:
        print("| %s | %d | %d | %d | %d | %s |" % (
            short(path), d["text"], d["rodata"], d["data"], d["bss"],
            chain(pulled, path).replace("|", "/")))
    print()
    print("Library bytes (text+rodata+data) by the postie call that first pulled them in")
    print("(ld records the first reference only; a member needed by several calls")
    print("is charged to the first):")
    print()
    print("| postie object (symbol) | library bytes | members |")
    print("|---|---:|---:|")
    roots = {}
    for path, d in sizes.items():
        if origin(path) in ("postie", "crt"):
            continue
        p, depth = path, 0
        while p in pulled and depth < 20:
            ref, sym = pulled[p]
            if ref not in pulled or origin(ref) in ("postie", "crt"):
                key = "%s (%s)" % (short(ref), sym)
                break
            p, depth = ref, depth + 1
        else:
            key = "(unknown)"
        r = roots.setdefault(key, [0, 0])
        r[0] += flash(d)
        r[1] += 1
    for key, (b, m) in sorted(roots.items(), key=lambda kv: -kv[1][0])[:top]:
        print("| %s | %d | %d |" % (key, b, m))
    print()
    print("Largest bss (RAM) objects:")
    print()
    print("| object | bss |")
    print("|---|---:|")
    for path, d in sorted(sizes.items(), key=lambda kv: -kv[1]["bss"])[:10]:
        if d["bss"]:
            print("| %s | %d |" % (short(path), d["bss"]))


if __name__ == "__main__":
    main()
