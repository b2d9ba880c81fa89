#!/usr/bin/python3
"""toolchain/mkman.py README.md OUTDIR — the man pages from the README, so
the two never disagree: postie(8) from "## Running" and "### Log lines",
postie.conf(5) from "## Configuration reference" and its subsections;
both with NAME, SYNOPSIS (postie(8): the command forms Running lists) and
DESCRIPTION (the README's opening paragraph) first, as man(7) wants.

Converts the Markdown the README uses (headings, paragraphs, lists, code
blocks, tables, `code`, **bold**) to man(7) roff. Writes OUTDIR/postie.8
and OUTDIR/postie.conf.5.
"""
import os
import re
import sys

PAGES = {
    "postie.8": ("POSTIE", "8", "postie \\- a small mail server for embedded Linux",
                 ["Running"]),
    "postie.conf.5": ("POSTIE.CONF", "5", "postie.conf \\- postie configuration file",
                      ["Configuration reference"]),
}


def sections(readme, names):
    """The level-2 sections named, each with its level-3 subsections."""
    out = []
    for name in names:
        m = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(name), readme,
                      re.M | re.S)
        if not m:
            raise SystemExit("mkman: README.md has no '## %s'" % name)
        out.append((name, m.group(1)))
    return out


SPECIAL = {"—": "\\(em", "–": "\\(en", "≈": "\\(~~", "×": "\\(mu", "…": "...",
           "≤": "\\(<=", "≥": "\\(>=", "→": "\\(->", "←": "\\(<-", "§": "\\(sc",
           "’": "'", "“": "\\(lq", "”": "\\(rq"}


def esc(text):
    """Backslashes and non-ASCII characters as roff escapes."""
    text = text.replace("\\", "\\e")
    return "".join(SPECIAL.get(ch, ch if ord(ch) < 128 else "\\[u%04X]" % ord(ch))
                   for ch in text)


def inline(text):
    text = esc(text.replace("\\|", "|"))
    text = re.sub(r"`([^`]+)`", lambda m: "\\fB" + m.group(1) + "\\fR", text)
    text = re.sub(r"\*\*([^*]+)\*\*", lambda m: "\\fB" + m.group(1) + "\\fR", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    return text


def line_out(text):
    """A text line, safe from roff's control characters at its start."""
    if text.startswith((".", "'")):
        return "\\&" + text
    return text


def convert(body):
    out = []
    lines = body.split("\n")
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("```"):
            i += 1
            out += [".PP", ".nf", ".RS 4"]
            while i < len(lines) and not lines[i].startswith("```"):
                out.append(line_out(esc(lines[i])))
                i += 1
            out += [".RE", ".fi"]
        elif ln.startswith("### "):
            out.append(".SS " + esc(ln[4:]).upper())
        elif ln.startswith("| "):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split(" | ")]
                rows.append(cells)
                i += 1
            i -= 1
            head = [h.lower() for h in rows[0]]
            for r in rows[2:]:
                rest = [c for c in r[1:] if c and c not in ("—", "-")]
                if len(head) > 2 and head[1] == "default":
                    rest = r[2:]
                    if r[1] and r[1] not in ("—", "-"):
                        rest = ["(default: %s)" % r[1]] + rest
                out += [".TP", line_out(inline(r[0])),
                        line_out(inline("; ".join(x for x in rest if x)))]
        elif re.match(r"^[-*] ", ln):
            item = ln[2:]
            while i + 1 < len(lines) and lines[i + 1].startswith("  ") and lines[i + 1].strip():
                i += 1
                item += " " + lines[i].strip()
            out += [".IP \\(bu 2", line_out(inline(item))]
        elif not ln.strip():
            if out and out[-1] != ".PP":
                out.append(".PP")
        else:
            # a paragraph as one line, so `code` may span the README's lines
            para = ln
            while i + 1 < len(lines) and lines[i + 1].strip() and \
                    not re.match(r"^(```|#|\| |[-*] )", lines[i + 1]):
                i += 1
                para += " " + lines[i].strip()
            out.append(line_out(inline(para)))
        i += 1
    return out


def synopsis(readme, name):
    """postie(8): the command forms of the first code block of "Running"
    (without their comments); postie.conf(5): where the file is."""
    if name == "postie.conf.5":
        return [".B /etc/postie.conf",
                ".br",
                "(the compiled-in default; \\fBpostie -c\\fR \\fIFILE\\fR names another)"]
    body = sections(readme, ["Running"])[0][1]
    block = re.search(r"^```\n(.*?)^```", body, re.M | re.S)
    if not block:
        raise SystemExit("mkman: '## Running' has no code block for SYNOPSIS")
    out = []
    for ln in block.group(1).splitlines():
        ln = ln.split(" #", 1)[0].rstrip()
        if ln:
            out += [line_out(esc(ln)), ".br"]
    return out[:-1]


def description(readme):
    """The README's opening paragraph, under its title."""
    m = re.search(r"^# [^\n]*\n\n(.*?)\n\n", readme, re.S)
    if not m:
        raise SystemExit("mkman: README.md has no opening paragraph")
    return [line_out(inline(" ".join(m.group(1).split())))]


def page(readme, name):
    title, sec, what, names = PAGES[name]
    out = ['.TH %s %s "" "postie" "postie"' % (title, sec), ".SH NAME", what,
           ".SH SYNOPSIS"] + synopsis(readme, name) + \
        [".SH DESCRIPTION"] + description(readme)
    for head, body in sections(readme, names):
        out.append(".SH " + esc(head).upper())
        out += convert(body)
    out += [".SH SEE ALSO",
            "\\fBpostie\\fR(8), \\fBpostie.conf\\fR(5); README.md in the source "
            "has the whole manual."]
    # no empty paragraphs
    clean = []
    for ln in out:
        if ln == ".PP" and clean and clean[-1] in (".PP", ".SH NAME") or \
                (ln == ".PP" and clean and clean[-1].startswith((".SH", ".SS"))):
            continue
        clean.append(ln)
    return "\n".join(clean) + "\n"


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: mkman.py README.md OUTDIR")
    with open(sys.argv[1], encoding="utf-8") as f:
        readme = f.read()
    os.makedirs(sys.argv[2], exist_ok=True)
    for name in PAGES:
        with open(os.path.join(sys.argv[2], name), "w", encoding="utf-8") as f:
            f.write(page(readme, name))


if __name__ == "__main__":
    main()
