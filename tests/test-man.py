#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every public function has a man page, with its real signature.

For each symbol of src/libashm/libashm.sym: the build made a page of its
own (a .so link into ashm(3)) that `man -M` finds and renders as ashm(3);
the SYNOPSIS of ashm(3) declares it exactly as its header does (names of
parameters included). A function added to the version script without
its page in the synopsis fails here. Prints TAP."""
import os
import re
import shlex
import subprocess
import sys
import tempfile

src = os.environ["ASHM_SOURCE_ROOT"]
build = os.environ["ASHM_BUILD_ROOT"]


def symbols():
    text = re.sub(r"/\*.*?\*/", "", open(f"{src}/src/libashm/libashm.sym").read(), flags=re.S)
    return [m for m in re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*;", text, re.M)]


def normalize(decl):
    decl = re.sub(r"\s+", " ", decl).strip()
    decl = re.sub(r"\s*([(),;])\s*", r"\1", decl)
    return decl.replace(",", ", ")


def header_decls():
    decls = {}
    for h in ["ashm.h", "cutils/ashmem.h", "android/sharedmem.h"]:
        text = open(f"{src}/include/{h}").read()
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        text = re.sub(r"^\s*#.*$", "", text, flags=re.M)
        for m in re.finditer(r"([A-Za-z_][\w \*]*?\b([A-Za-z_]\w*)\s*\([^;{}]*\))\s*;", text):
            decls[m.group(2)] = normalize(m.group(1) + ";")
    return decls


def synopsis_decls():
    text = open(f"{src}/man/ashm.3").read()
    syn = text[text.index(".SH SYNOPSIS"):text.index(".SH", text.index(".SH SYNOPSIS") + 4)]
    lines, joined = [], ""
    for line in syn.splitlines():
        m = re.match(r"^\.(BI|B|BR|RI|IR) (.*)$", line)
        if not m or "#include" in line:
            joined = ""
            continue
        # .B sets its words in one font, spaces kept; the others
        # alternate fonts between words, with no space between them.
        sep = " " if m.group(1) == "B" else ""
        words = sep.join(shlex.split(m.group(2)))
        joined = (joined + " " + words) if joined else words
        if joined.rstrip().endswith(";"):
            lines.append(joined)
            joined = ""
    decls = {}
    for d in lines:
        m = re.search(r"\b([A-Za-z_]\w*)\s*\(", d)
        if m and not d.startswith("typedef"):
            decls[m.group(1)] = normalize(d)
    return decls


def main():
    syms = symbols()
    hdr, man = header_decls(), synopsis_decls()
    print(f"1..{2 * len(syms) + 1}")
    n = 0
    failed = 0
    with tempfile.TemporaryDirectory(prefix="ashm-test-man.") as tmp:
        os.makedirs(f"{tmp}/man3")
        for f in os.listdir(f"{build}/man"):
            if f.endswith(".3"):
                os.symlink(f"{build}/man/{f}", f"{tmp}/man3/{f}")
        os.symlink(f"{src}/man/ashm.3", f"{tmp}/man3/ashm.3")
        for s in syms:
            n += 1
            where = subprocess.run(["man", "-M", tmp, "-w", s], capture_output=True, text=True)
            if where.returncode == 0 and os.path.exists(f"{build}/man/{s}.3"):
                print(f"ok {n} - man {s} finds a page")
            else:
                failed += 1
                print(f"not ok {n} - man {s} finds a page\n# {where.stderr.strip()}")
            n += 1
            if s not in man:
                failed += 1
                print(f"not ok {n} - ashm(3) SYNOPSIS declares {s}")
            elif s in hdr and hdr[s] != man[s]:
                failed += 1
                print(f"not ok {n} - ashm(3) SYNOPSIS declares {s} as its header does\n"
                      f"# header: {hdr[s]}\n# man:    {man[s]}")
            else:
                print(f"ok {n} - ashm(3) SYNOPSIS declares {s} as its header does")
        # A .so page renders as ashm(3) itself.
        n += 1
        env = dict(os.environ, MANWIDTH="80", PAGER="cat")
        env.pop("MAN_KEEP_FORMATTING", None)
        page = subprocess.run(["man", "-M", tmp, "ashm_kv_get_string"], capture_output=True, text=True, env=env)
        if page.returncode == 0 and "ashm_kv_get_string_dup" in page.stdout and "ASHM(3)" in page.stdout:
            print(f"ok {n} - man ashm_kv_get_string renders ashm(3)")
        else:
            failed += 1
            print(f"not ok {n} - man ashm_kv_get_string renders ashm(3)\n# {page.stderr.strip()}")
    return 1 if failed else 0


sys.exit(main())
