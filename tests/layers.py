#!/usr/bin/python3
"""tests/layers.py — the layer rule of src/ (a `make check` stage): a file
includes only headers of its own layer or below.

  0 ground   core/util, log, libc_small, conf, net, buf, fdio
  1 io       core/loop, core/conn, tls/, dns/
  2 store    store/
  3 proto    proto/
  4 relay    relay/
  5 top      main.c, cli.c, sendmail.c

Upward news travels by hooks a higher layer registers. KNOWN lists the
includes allowed to break the rule (none today; an entry is debt to pay,
not a pattern to copy); a new one fails, and so does a KNOWN entry that
is gone (remove it).
"""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KNOWN = set()


def layer(rel):
    d, base = os.path.split(rel)
    name = base.rsplit(".", 1)[0]
    if d == "core":
        return 1 if name in ("loop", "conn") else 0
    return {"tls": 1, "dns": 1, "store": 2, "proto": 3, "relay": 4}.get(d, 5)


def main():
    seen, bad = set(), []
    for path in sorted(glob.glob(os.path.join(ROOT, "src", "**", "*.[ch]"),
                                 recursive=True)):
        rel = os.path.relpath(path, os.path.join(ROOT, "src"))
        with open(path, errors="replace") as f:
            text = f.read()
        for inc in re.findall(r'^#include "([^"]+)"', text, re.M):
            if layer(inc) <= layer(rel):
                continue
            if (rel, inc) in KNOWN:
                seen.add((rel, inc))
                continue
            bad.append("src/%s includes %s: layer %d reaches up to layer %d"
                       % (rel, inc, layer(rel), layer(inc)))
    for rel, inc in sorted(KNOWN - seen):
        bad.append("tests/layers.py: KNOWN (%s, %s) no longer happens: remove it"
                   % (rel, inc))
    for b in bad:
        print(b)
    print("layers: %d problem(s), %d known exception(s)" % (len(bad), len(seen)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
