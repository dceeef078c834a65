# SPDX-License-Identifier: MIT
"""Errors: OSError subclasses by errno, with the library's detail."""
from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
from conftest import peer_cmd

import ashm


def test_no_daemon_is_connection_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = dict(os.environ, ASHM_SOCKET=str(tmp_path / "nobody-listens.sock"), ASHM_NO_AUTOSTART="1")
    p = subprocess.run(peer_cmd("no-daemon"), env=env, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"peer exited {p.returncode}:\n{p.stderr}{p.stdout}"
    assert p.stdout == "still works\n"


def test_subclasses_by_errno(need_daemon) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError) as e:
        ashm.lookup("py-test-no-such-name")
    assert e.value.errno == errno.ENOENT and e.value.filename == "py-test-no-such-name"
    with pytest.raises(FileNotFoundError):
        ashm.unpublish("py-test-no-such-name")
    with ashm.Region.create("py-err", 4096) as r:
        r.freeze()
        with pytest.raises(PermissionError) as pe:
            r.write(0, b"x")
        assert pe.value.errno == errno.EPERM
        assert isinstance(pe.value, OSError)


def test_kv_open_empty_region_without_create() -> None:
    with ashm.Region.create("py-kv-empty", 0) as r:
        with pytest.raises(OSError) as e:
            ashm.KV.on_region(r, create=False)
    assert e.value.errno == errno.ENODATA
    assert "no store yet" in e.value.detail  # type: ignore[attr-defined]
    assert e.value.detail in str(e.value)  # type: ignore[attr-defined]


def test_import_error_names_the_variable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = dict(os.environ, ASHM_LIBRARY=str(tmp_path / "libashm.so.0"))
    p = subprocess.run([sys.executable, "-c", "import ashm"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "ImportError" in p.stderr and "ASHM_LIBRARY" in p.stderr
