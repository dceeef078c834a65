# SPDX-License-Identifier: MIT
"""Regions through multiprocessing: pickled by passing the fd."""
from __future__ import annotations

import multiprocessing
import os
import pickle

import pytest

import ashm


def _worker_sum(region: ashm.Region) -> tuple:
    """In a Pool worker: what the region holds, and proof it is no file."""
    with region:
        link = os.readlink(f"/proc/self/fd/{region.fd}")
        data = region.read(0, region.size)
        return region.name, sum(data), link


def _worker_fill(args: tuple) -> int:
    region, value = args
    with region:
        view = region.map()
        view[:] = bytes([value]) * len(view)
        view.release()
        return os.getpid()


def _queue_child(inbox, outbox) -> None:  # type: ignore[no-untyped-def]
    region = inbox.get()
    with region:
        region.write(0, b"child")
    outbox.put("done")


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_pool_gets_regions_by_fd(method: str) -> None:
    ctx = multiprocessing.get_context(method)
    regions = []
    for i in range(4):
        r = ashm.Region.create(f"py-pool-{i}", 4096)
        r.write(0, bytes([i + 1]) * 4096)
        regions.append(r)
    shm_before = set(os.listdir("/dev/shm"))
    with ctx.Pool(2) as pool:
        results = pool.map_async(_worker_sum, regions).get(120)
        pids = pool.map_async(_worker_fill, [(r, 9) for r in regions]).get(120)
        pool.close()
        pool.join()
    assert [(n, s) for n, s, _ in results] == [(f"py-pool-{i}", (i + 1) * 4096) for i in range(4)]
    assert all(link.startswith("/memfd:py-pool-") for _, _, link in results)
    assert all(p != os.getpid() for p in pids)
    for r in regions:
        assert r.read(0, 4096) == b"\x09" * 4096  # the workers wrote into our regions
        r.close()
    assert not any("py-pool" in n for n in set(os.listdir("/dev/shm")) - shm_before)


def test_queue_and_process_args() -> None:
    ctx = multiprocessing.get_context("spawn")
    inbox, outbox = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=_queue_child, args=(inbox, outbox))
    p.start()
    with ashm.Region.create("py-queue", 16) as r:
        inbox.put(r)
        assert outbox.get(timeout=60) == "done"
        assert r.read(0, 5) == b"child"
    p.join(60)
    assert p.exitcode == 0
    for q in (inbox, outbox):
        q.close()
        q.join_thread()


def test_plain_pickle_round_trip() -> None:
    with ashm.Region.create("py-pickle", 8) as r:
        r.write(0, b"pickled!")
        with pickle.loads(pickle.dumps(r)) as copy:
            assert copy.read(0, 8) == b"pickled!"
            assert copy.fd != r.fd
            assert os.fstat(copy.fd).st_ino == os.fstat(r.fd).st_ino


def _worker_numpy(region: ashm.Region) -> float:
    import numpy as np
    with region:
        a = np.frombuffer(region.map(), dtype=np.float64)
        total = float(a.sum())
        a *= 2  # in place: the parent's array changes too
        del a
        return total


def test_pool_numpy_zero_copy() -> None:
    np = pytest.importorskip("numpy")
    ctx = multiprocessing.get_context("spawn")
    with ashm.Region.create("py-pool-numpy", 8 << 20) as r:
        a = np.frombuffer(r.map(), dtype=np.float64)
        a[:] = np.arange(a.size)
        with ctx.Pool(1) as pool:
            total = pool.apply_async(_worker_numpy, (r,)).get(120)
            pool.close()
            pool.join()
        assert total == float(np.arange(a.size).sum())
        assert a[10] == 20.0 and a[-1] == 2.0 * (a.size - 1)  # the worker wrote into our pages
        del a
