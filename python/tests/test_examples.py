# SPDX-License-Identifier: MIT
"""The Python demo (examples/python/): a service and a separate client
play the ProcessMemoryService scenario, as the C demo does."""
from __future__ import annotations

import os
import subprocess
import sys

EXAMPLES = os.environ.get("ASHM_PY_EXAMPLES") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples", "python")


def test_service_and_client(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = dict(os.environ, TMPDIR=str(tmp_path))
    p = subprocess.run([sys.executable, os.path.join(EXAMPLES, "service.py")], capture_output=True, text=True,
                       env=env, timeout=120, stdin=subprocess.DEVNULL)
    out = p.stdout
    assert p.returncode == 0 and out.endswith("demo: OK\n"), f"status {p.returncode}\n{out}{p.stderr}"
    for line in ('[service] created region \'ProcessMemoryService\' (1048576 bytes)',
                 '[client ] read() on the fd: "Hello world!"',
                 '[client ] through a mapping: "Hello world!"',
                 '[service] sees: "Hello from the client!"',
                 '[client ] region.frozen is True: nobody can change it any more',
                 '[client ] os.write() on the fd: refused: ',
                 '[client ] Region.map(writable=True): refused: ',
                 '[client ] mmap(PROT_WRITE, MAP_SHARED): refused: ',
                 '[service] config unchanged'):
        assert line in out, f"missing {line!r} in:\n{out}"
    assert os.listdir(tmp_path) == [], "the demo left files in its TMPDIR"
