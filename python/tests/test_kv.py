# SPDX-License-Identifier: MIT
"""The KV store as a MutableMapping, alone and shared by two interpreters."""
from __future__ import annotations

import errno
import math
import socket
from collections.abc import MutableMapping

import pytest
from conftest import run_peer, spawn_peer, wait_peer

import ashm


@pytest.fixture
def kv(tmp_path):  # type: ignore[no-untyped-def]
    with ashm.KV(tmp_path / "store", create=True) as kv:
        yield kv


def test_mapping(kv) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(kv, MutableMapping)
    kv["b"] = True
    kv["i"] = -5
    kv["big"] = 2**64 - 1
    kv["f"] = 0.5
    kv["s"] = "héllo"
    kv["y"] = b"\0\1"
    assert dict(kv) == {"b": True, "i": -5, "big": 2**64 - 1, "f": 0.5, "s": "héllo", "y": b"\0\1"}
    assert kv.get_typed("i") == ("int64", -5)
    assert kv.get_typed("big") == ("uint64", 2**64 - 1)
    assert kv.get_typed("b") == ("bool", True)
    assert len(kv) == 6 and "s" in kv and "nope" not in kv and 3 not in kv
    del kv["s"]
    with pytest.raises(KeyError):
        del kv["s"]
    with pytest.raises(KeyError):
        kv["s"]
    assert kv.get("s", 7) == 7
    kv.update(x=1, y=b"2")
    assert kv.pop("x") == 1
    kv.clear()
    assert len(kv) == 0 and list(kv) == []


def test_typed(kv) -> None:  # type: ignore[no-untyped-def]
    kv.set_typed("i32", -7, "int32")
    kv.set_typed("f32", 1.5, "float")
    kv.set_typed("u64", 5, "uint64")
    assert kv.get_typed("i32") == ("int32", -7)
    assert kv.get_typed("f32") == ("float", 1.5)
    assert kv.get_typed("u64") == ("uint64", 5)
    assert kv["i32"] == -7
    with pytest.raises(OverflowError):
        kv.set_typed("i32", 2**31, "int32")
    with pytest.raises(OverflowError):
        kv["huge"] = 2**64
    with pytest.raises(ValueError):
        kv.set_typed("x", 1, "complex")
    with pytest.raises(TypeError):
        kv["x"] = [1]
    with pytest.raises(TypeError):
        kv[1] = 1  # type: ignore[index]
    kv["nan"] = float("nan")
    assert math.isnan(kv["nan"])
    big = bytes(range(256)) * 4096  # 1 MiB: longer than the first read buffer
    kv["big"] = big
    assert kv["big"] == big


def test_errors_carry_detail(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError):
        ashm.KV(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.write_bytes(b"not a store" * 100)
    with pytest.raises(OSError) as e:
        ashm.KV(bad)
    assert e.value.errno == errno.EBADMSG
    assert e.value.detail and e.value.detail in str(e.value)  # type: ignore[attr-defined]
    with ashm.KV(tmp_path / "ro", create=True) as w:
        w["k"] = 1
    with ashm.KV(tmp_path / "ro", readonly=True) as ro:
        assert ro["k"] == 1
        with pytest.raises(OSError) as e:
            ro["k"] = 2
        assert e.value.errno == errno.EROFS
    with pytest.raises(ValueError):
        ro["k"]  # closed


def test_handle_does_not_pickle(kv) -> None:  # type: ignore[no-untyped-def]
    import pickle
    with pytest.raises(TypeError):
        pickle.dumps(kv)


def test_check_sync_stats(kv) -> None:  # type: ignore[no-untyped-def]
    for i in range(100):
        kv[f"k{i}"] = i
    kv.sync()
    kv.compact()
    rep = kv.check()
    assert rep.ok and rep.keys == 100 and rep.header_ok and rep.damage == []
    assert kv.stats()["keys"] == 100


def test_file_store_shared_by_two_interpreters(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "shared")
    run_peer("kv-write", path, "1000")
    with ashm.KV(path) as kv:
        assert len(kv) == 1001 and kv["k999"] == 999 and kv["writer"] == "peer"
        kv["from-test"] = "seen"
        # The other process reads what we wrote, without any reopen on our side.
        assert run_peer("kv-read", path, "1000").split() == [str(sum(range(1000))), "seen"]


def test_region_store_passed_by_fd() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, ashm.Region.create("py-kv", 0) as r, ashm.KV.on_region(r) as kv:
        kv["from-test"] = "hello"
        p = spawn_peer("kv-region", str(theirs.fileno()), pass_fds=[theirs.fileno()])
        theirs.close()
        ashm.send_region(ours, r)
        assert ours.recv(10) == b"ok"
        wait_peer(p)
        assert kv["peer"] == p.pid
