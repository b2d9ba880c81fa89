#!/usr/bin/python3
"""tests/doccheck.py — the documents match the code (a `make check` stage):

- every Kconfig symbol is used somewhere (src/, Makefile, tests/, board/,
  toolchain/): an option nothing reads is a lie in menuconfig;
- README.md's "Compile-time options" table names every Kconfig symbol, and
  only those, each in one row; each row's defaults are the Kconfig
  defaults, in order; every code or RAM size it quotes ("≈ 5 KB") is in
  the help text of its options;
- every directive src/core/conf.c parses has a row in README.md's
  configuration reference;
- the man pages made from the README (toolchain/mkman.py) hold every
  directive and command, and groff formats them without a warning;
- no file cites a Markdown document the repository does not hold, or an
  absolute path of a developer machine
  or an absolute machine path.

Prints one line per problem and "doccheck: N problem(s)"; exit 1 if any.
"""
import os
import re
import subprocess
import sys

import kconfiglib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def kconfig_symbols():
    os.environ.setdefault("srctree", ROOT)
    kc = kconfiglib.Kconfig(os.path.join(ROOT, "Kconfig"), warn=False)
    syms = {}
    for s in kc.unique_defined_syms:
        helptext = " ".join(n.help or "" for n in s.nodes)
        default = None
        for expr, _ in s.defaults:
            default = kconfiglib.expr_str(expr).strip('"')
            break
        if default is None and s.type == kconfiglib.BOOL:
            default = "n"
        syms[s.name] = {"help": helptext, "default": default, "type": s.type}
    return syms


def tracked_files():
    """The repository's files: git's list, or a walk without build/."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, check=True).stdout.decode()
        files = out.splitlines()
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d, subdirs, names in os.walk(ROOT):
            subdirs[:] = [x for x in subdirs if x not in ("build", ".git")]
            files += [os.path.relpath(os.path.join(d, n), ROOT) for n in names]
    return [f for f in files if os.path.isfile(os.path.join(ROOT, f))]


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read().decode("utf-8", "replace")


def unused_symbols(syms, files):
    where = [f for f in files if f.startswith(("src/", "tests/", "board/", "toolchain/"))
             or f == "Makefile"]
    text = "\n".join(read(f) for f in where if f != "tests/doccheck.py")
    return [n for n in sorted(syms) if not re.search(r"\bCONFIG_%s\b" % n, text)]


def options_table(readme):
    """Rows of the Compile-time options table: (symbols, default cell, cost cell)."""
    m = re.search(r"^### Compile-time options\n(.*?)(?=^#)", readme, re.M | re.S)
    if not m:
        return None
    rows = []
    for line in m.group(1).splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if len(cells) < 3:
            continue
        rows.append((re.findall(r"`([A-Z0-9_]+)`", cells[0]), cells[1], cells[2]))
    return rows


def norm_default(cell_part):
    v = cell_part.strip().split(" ")[0].strip("`")
    return v


SIZE = re.compile(r"(\d+(?:\.\d+)?)(?:[–-]\d+(?:\.\d+)?)?\s*KB")


def man_pages(conf_c):
    """postie(8) and postie.conf(5), made from the README by mkman.py, hold
    every directive and command and format without groff warnings."""
    import shutil
    import tempfile
    problems = []
    out = tempfile.mkdtemp(prefix="postie-man-")
    try:
        r = subprocess.run([sys.executable, os.path.join(ROOT, "toolchain", "mkman.py"),
                            os.path.join(ROOT, "README.md"), out],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            return ["toolchain/mkman.py failed: %s" % r.stdout.decode()[-300:]]
        with open(os.path.join(out, "postie.conf.5")) as f:
            conf5 = f.read()
        with open(os.path.join(out, "postie.8")) as f:
            page8 = f.read()
        for d in re.findall(r'^\t\{ "([a-z_0-9]+)",', conf_c, re.M):
            if not re.search(r"\\fB%s[ \\]" % re.escape(d), conf5):
                problems.append("postie.conf(5): directive '%s' missing" % d)
        for c in ("passwd", "user", "status", "sendmail", "-t"):
            if "postie %s" % c not in page8:
                problems.append("postie(8): 'postie %s' missing" % c)
        for pname, text in (("postie(8)", page8), ("postie.conf(5)", conf5)):
            heads = re.findall(r"^\.SH (.*)", text, re.M)
            if heads[:3] != ["NAME", "SYNOPSIS", "DESCRIPTION"]:
                problems.append("%s: starts with %s, not NAME, SYNOPSIS, "
                                "DESCRIPTION" % (pname, ", ".join(heads[:3])))
        if shutil.which("groff"):
            r = subprocess.run(["groff", "-man", "-ww", "-z",
                                os.path.join(out, "postie.8"),
                                os.path.join(out, "postie.conf.5")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for ln in r.stdout.decode("utf-8", "replace").splitlines()[:10]:
                problems.append("man pages: groff: %s" % ln)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return problems


def main():
    problems = []
    syms = kconfig_symbols()
    files = tracked_files()
    for n in unused_symbols(syms, files):
        problems.append("Kconfig: %s is used nowhere (src/, Makefile, tests/, "
                        "board/, toolchain/)" % n)
    readme = read("README.md")
    rows = options_table(readme)
    if rows is None:
        problems.append("README.md: no '### Compile-time options' table")
        rows = []
    listed = set()
    for names, default, cost in rows:
        for n in names:
            if n not in syms:
                problems.append("README.md options table: %s is not in Kconfig" % n)
            if n in listed:
                problems.append("README.md options table: %s has two rows" % n)
            listed.add(n)
        known = [n for n in names if n in syms]
        defaults = [d for d in default.split(",")]
        if len(defaults) == len(known):
            for n, d in zip(known, defaults):
                want = syms[n]["default"]
                got = norm_default(d)
                if want is not None and got != want:
                    problems.append("README.md options table: %s default '%s', "
                                    "Kconfig says '%s'" % (n, got, want))
        helptext = " ".join(syms[n]["help"] for n in known)
        for size in SIZE.findall(cost):
            if not re.search(r"(?<![\d.])%s(?:[–-]\d+(?:\.\d+)?)?\s*KB" % re.escape(size),
                             helptext):
                problems.append("README.md options table: %s costs '%s KB' there, "
                                "not in its Kconfig help" % ("/".join(known), size))
    for n in sorted(set(syms) - listed):
        problems.append("README.md options table: Kconfig %s is missing" % n)
    # every directive of the parser's table is in the configuration reference
    conf_c = read("src/core/conf.c")
    for d in re.findall(r'^\t\{ "([a-z_0-9]+)",', conf_c, re.M):
        if not re.search(r"^\| `(?:[^|]*`)?%s[ `]" % re.escape(d), readme, re.M):
            problems.append("README.md configuration reference: directive '%s' "
                            "(src/core/conf.c) is missing" % d)
    problems += man_pages(conf_c)
    # A document is cited by its file name; every one cited must be here.
    held = {os.path.basename(f) for f in files}
    outside = re.compile(r"(?<![\w.$])/(?:home|root|work)/[\w.-]+/")
    docs = re.compile(r"(?<![\w/.-])([\w-]+\.md)(?![\w.(])")
    for f in files:
        if not re.search(r"\.(c|h|py|sh|md|mk|txt)$|Makefile|Kconfig$", f):
            continue
        for i, line in enumerate(read(f).splitlines(), 1):
            # Prose only: Markdown files and comments (code names files it writes).
            prose = f.endswith(".md") or line.lstrip().startswith(("#", "*", "/*", "//"))
            missing = [d for d in docs.findall(line) if d not in held] if prose else []
            if outside.search(line) or missing:
                problems.append("%s:%d: cites something outside the repository: %s"
                                % (f, i, line.strip()[:80]))
    for p in problems:
        print(p)
    print("doccheck: %d problem(s)" % len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
