#!/usr/bin/env python3
"""Count individual test cases across meson builds from their testlog.json.

Each meson test speaks TAP: every "ok"/"not ok" line is one test case. A
test program that crashed or timed out before printing its TAP records
counts as one failure, so nothing is lost. Prints the per-build counts and
a closing line "N passed, N failed"; exits 1 if anything failed or if no
test ran at all.
"""
import json
import re
import sys

TAP = re.compile(r"^(not ok|ok)\b(.*)$")


def details(lines, start):
    """The diagnostics after a "not ok": Criterion indents them, shell
    tests write "# ..." lines. The closing lines of a CI log are often all
    that is kept, so they are repeated there."""
    kept = []
    for l in lines[start:start + 20]:
        if TAP.match(l) or not (l.startswith((" ", "\t", "#")) or not l):
            break
        if l.strip():
            kept.append("\n    " + l.strip())
    return "".join(kept)


def count(build):
    passed = failed = skipped = 0
    failures = []
    try:
        log = open(f"{build}/meson-logs/testlog.json")
    except OSError as e:
        print(f"{build}: no test log ({e.strerror})")
        return 0, 1, 0, [f"{build}: no test log"]
    for line in log:
        rec = json.loads(line)
        name, out = rec["name"], rec.get("stdout") or ""
        lines = out.splitlines()
        cases = []
        for i, l in enumerate(lines):
            m = TAP.match(l)
            if not m:
                continue
            cases.append(m)
            if "# SKIP" in m.group(2):
                skipped += 1
            elif m.group(1) == "ok":
                passed += 1
            else:
                failed += 1
                failures.append(f"{build}: {name}: {m.group(2).strip()}" + details(lines, i + 1))
        if rec["result"] not in ("OK", "SKIP", "EXPECTEDFAIL") and not any(
                m.group(1) == "not ok" for m in cases):
            failed += 1
            failures.append(f"{build}: {name}: {rec['result']} (exit {rec.get('returncode')})")
    return passed, failed, skipped, failures


def main():
    total = [0, 0, 0]
    failures = []
    for build in sys.argv[1:]:
        p, f, s, fl = count(build)
        print(f"{build}: {p} passed, {f} failed, {s} skipped")
        total = [total[0] + p, total[1] + f, total[2] + s]
        failures += fl
    for f in failures:
        print(f"FAILED {f}")
    print(f"{total[0]} passed, {total[1]} failed, {total[2]} skipped")
    sys.exit(1 if total[1] or total[0] == 0 else 0)


if __name__ == "__main__":
    main()
