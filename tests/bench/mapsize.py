#!/usr/bin/python3
"""Where the bytes of a static binary come from, from a GNU ld map file.

  mapsize.py MAP [TOP]

Prints Markdown: bytes per input object (postie objects, libc/libgcc archive
members) split into text (code, .init/.fini), rodata, data and bss, the TOP
largest (default 25) with, for archive members, the chain of references that
pulled them in ("vfprintf.lo <- vsnprintf.lo <- log.o (vsnprintf)"), and
totals per origin (postie, libc, libgcc, crt). Sizes are of input sections
kept in the output (after --gc-sections); alignment padding is not counted.
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


def main():
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
