#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run the pytest suite and report it in TAP on stdout, for `meson test`
and scripts/count-tests.py: one "ok"/"not ok" line per test, the plan at
the end. pytest's own report goes to stderr.

    run-tap.py [PYTEST ARGS...]
"""
import os
import sys
from typing import TextIO


class TapPlugin:
    """Turns each test's setup/call/teardown reports into one TAP record."""

    def __init__(self, tap: TextIO) -> None:
        self.tap = tap
        self.count = 0
        self.state: dict = {}

    def _emit(self, ok: bool, name: str, directive: str = "", diag: str = "") -> None:
        self.count += 1
        line = f"{'ok' if ok else 'not ok'} {self.count} - {name}"
        if directive:
            line += f" # {directive}"
        self.tap.write(line + "\n")
        for d in diag.splitlines()[-40:]:
            self.tap.write(f"# {d}\n")

    def pytest_collectreport(self, report):  # type: ignore[no-untyped-def]
        if report.failed:
            self._emit(False, f"collect {report.nodeid}", diag=str(report.longrepr))

    def pytest_runtest_logreport(self, report):  # type: ignore[no-untyped-def]
        st = self.state.setdefault(report.nodeid, {"failed": None, "skipped": None})
        if report.failed and st["failed"] is None:
            st["failed"] = f"{report.when}: {report.longreprtext}"
        if report.skipped and st["skipped"] is None:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            st["skipped"] = reason
        if report.when != "teardown":
            return
        del self.state[report.nodeid]
        if st["failed"] is not None:
            self._emit(False, report.nodeid, diag=st["failed"])
        elif st["skipped"] is not None:
            self._emit(True, report.nodeid, f"SKIP {st['skipped']}")
        else:
            self._emit(True, report.nodeid)

    def pytest_sessionfinish(self, session, exitstatus):  # type: ignore[no-untyped-def]
        self.tap.write(f"1..{self.count}\n")


def main() -> int:
    # TAP on the real stdout; everything else (pytest's report, prints of
    # the tests) on stderr, so that no stray line can look like a record.
    tap = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import pytest

    here = os.path.dirname(os.path.abspath(__file__))
    # No cache and no bytecode in the source tree.
    args = ["-p", "no:cacheprovider", "-rs", "-v", here] + sys.argv[1:]
    sys.dont_write_bytecode = True
    status = pytest.main(args, plugins=[TapPlugin(tap)])
    # The TAP records carry the failures; a run where pytest itself failed
    # (usage error, nothing collected) must still fail.
    return 0 if status in (0, 1) else int(status)


# The guard matters: multiprocessing's spawn start method imports the
# main module in every child.
if __name__ == "__main__":
    sys.exit(main())
