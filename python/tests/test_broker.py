# SPDX-License-Identifier: MIT
"""Names in ashmd, between unrelated interpreters."""
from __future__ import annotations

import os

import pytest
from conftest import poll_until, run_peer, spawn_peer, wait_peer

import ashm


def test_publish_lookup_from_another_interpreter(need_daemon) -> None:  # type: ignore[no-untyped-def]
    with ashm.Region.create("py-pub", 4096) as r:
        r.write(0, b"published")
        ashm.publish(r, "py-test-pub", 0o644)
        try:
            info = {n.name: n for n in ashm.names()}["py-test-pub"]
            assert info.size == 4096 and info.mode == 0o644 and info.pid == os.getpid()
            assert info.uid == os.getuid() and info.writable and not info.keep
            # The peer reads it and finds every way of writing refused.
            assert run_peer("lookup", "py-test-pub").splitlines()[0] == "published"
            # A writable lookup writes into our region.
            run_peer("lookup-rw", "py-test-pub", "rewritten")
            assert r.read(0, 9) == b"rewritten"
            with pytest.raises(FileExistsError):
                ashm.publish(r, "py-test-pub")
        finally:
            ashm.unpublish("py-test-pub")
    run_peer("expect-missing", "py-test-pub")
    with pytest.raises(FileNotFoundError):
        ashm.unpublish("py-test-pub")


def test_name_dies_with_its_publisher(need_daemon) -> None:  # type: ignore[no-untyped-def]
    p = spawn_peer("publish", "py-test-theirs", "from the peer")
    assert p.stdout is not None and p.stdout.readline() == "ready\n"
    with ashm.lookup("py-test-theirs") as r:
        assert r.read(0, 13) == b"from the peer"
    assert any(n.name == "py-test-theirs" for n in ashm.names())
    wait_peer(p)  # closes its stdin: it exits
    poll_until(lambda: all(n.name != "py-test-theirs" for n in ashm.names()), 10, "the name to go")
    with pytest.raises(FileNotFoundError):
        ashm.lookup("py-test-theirs")


def test_bad_names(need_daemon) -> None:  # type: ignore[no-untyped-def]
    with ashm.Region.create("py-bad", 1) as r:
        with pytest.raises(OSError) as e:
            ashm.publish(r, "bad\nname")
        assert e.value.errno == 22
        with pytest.raises(OSError) as e:
            ashm.publish(r, "mode", 0o1000)
        assert e.value.errno == 22
