#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench-python: the Python package against what Python programs use
today, in the same run:

1. lifecycle: create + attach + close of a 1 MiB segment.
   ashm: Region.create, map, a second handle by fd (Region.adopt(dup)),
   map, release, close both. multiprocessing.shared_memory: create,
   attach by name, close both, unlink.
2. pass: a 64 MiB numpy array (float64) to another process and back.
   ashm: a fresh region, the array copied in, its fd sent
   (send_region), the worker maps it (numpy.frombuffer, no copy),
   changes one element, answers; the parent reads the change.
   shared_memory: the same with a fresh segment and its name.
   multiprocessing.Queue: put the array, the worker gets it, changes one
   element, puts it back (pickling both ways).
3. kill -9: a separate interpreter makes a 64 MiB segment, fills it and
   is killed with SIGKILL; what remains in /dev/shm (files, bytes) is
   counted, for ashm, for shared_memory when only the process dies (its
   resource tracker then unlinks what it knew of), and for shared_memory
   when the process group dies (tracker included: the OOM killer of a
   cgroup, `systemctl kill`, a container stop). What this leaves is
   removed afterwards.
4. chan: a 64-byte message to another process and back, round trips
   per second. ashm: two queue channels (ping, pong), Channel.send and
   Channel.recv. multiprocessing.Pipe: send_bytes and recv_bytes. Both
   peers are forked workers.

    bench_python.py [--rounds N] [--iters K] [--quick] [--strict]

Medians over rounds; ratios of medians; `target ...: ... PASS|FAIL`
lines as in the C benchmarks. Run by scripts/bench.sh (BENCH_ONLY=python)
with ASHM_LIBRARY and PYTHONPATH set to the build and source trees.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from multiprocessing import shared_memory
from typing import Callable, Dict, List, Tuple

import numpy as np

import ashm

MiB = 1 << 20
PASS_BYTES = 64 * MiB
TARGET_LIFECYCLE = 1.0   # ashm <= 1.0x shared_memory
TARGET_PASS = 5.0        # ashm >= 5x faster than multiprocessing.Queue
TARGET_CHAN = 1.0        # Channel round trip <= 1.0x multiprocessing.Pipe's
CHAN_MSG = b"x" * 64


def stats(samples: List[float]) -> Tuple[float, float, float]:
    s = sorted(samples)
    return statistics.median(s), s[0], s[min(len(s) - 1, int(0.9 * len(s)))]


def measure(run: Callable[[int], None], rounds: int, iters: int) -> List[float]:
    """Seconds per operation, one sample per round (after a warm-up)."""
    run(max(1, iters // 10))
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        run(iters)
        out.append((time.perf_counter() - t0) / iters)
    return out


def table(title: str, unit: str, scale: float, results: Dict[str, List[float]], ref: str) -> None:
    print(f"\n{title}")
    print(f"  {'peer':<28} {'median':>10} {'min':>10} {'p90':>10}  {'x ' + ref:>14}")
    ref_median = stats(results[ref])[0]
    for name, samples in results.items():
        med, lo, p90 = stats(samples)
        print(f"  {name:<28} {med * scale:>8.1f}{unit} {lo * scale:>8.1f}{unit} {p90 * scale:>8.1f}{unit}"
              f"  {med / ref_median:>13.3f}x")


# -- 1. lifecycle ------------------------------------------------------

def lifecycle_ashm(n: int) -> None:
    for _ in range(n):
        r = ashm.Region.create("bench", MiB)
        v = r.map()
        other = ashm.Region.adopt(os.dup(r.fd))  # what a receiver of the fd does
        w = other.map()
        v.release()
        w.release()
        other.close()
        r.close()


def lifecycle_shm(n: int) -> None:
    for _ in range(n):
        s = shared_memory.SharedMemory(create=True, size=MiB)
        other = shared_memory.SharedMemory(name=s.name)  # attach by name
        other.close()
        s.close()
        s.unlink()


# -- 2. passing a 64 MiB array -----------------------------------------

def worker_ashm(sock, parent_end) -> None:  # type: ignore[no-untyped-def]
    parent_end.close()  # inherited by fork: the parent's close must reach us
    while True:
        try:
            region, _ = ashm.recv_region(sock)
        except ConnectionResetError:
            return
        with region:
            view = region.map()
            a = np.frombuffer(view, dtype=np.float64)
            a[0] += 1
            del a
            view.release()
        sock.send(b"done")


def worker_shm(conn, parent_end) -> None:  # type: ignore[no-untyped-def]
    parent_end.close()
    while True:
        try:
            name = conn.recv()
        except EOFError:
            return
        # Python < 3.13 registers an attached segment with the resource
        # tracker as if this process had made it; the worker is forked and
        # shares the parent's tracker, where the name already is.
        s = shared_memory.SharedMemory(name=name)
        a = np.ndarray((PASS_BYTES // 8,), dtype=np.float64, buffer=s.buf)
        a[0] += 1
        del a
        s.close()
        conn.send("done")


def worker_queue(qin, qout) -> None:  # type: ignore[no-untyped-def]
    while True:
        a = qin.get()
        if a is None:
            return
        a[0] += 1
        qout.put(a)


def pass_benchmarks(rounds: int) -> Dict[str, List[float]]:
    import socket
    ctx = multiprocessing.get_context("fork")
    src = np.arange(PASS_BYTES // 8, dtype=np.float64)
    results: Dict[str, List[float]] = {}

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    p = ctx.Process(target=worker_ashm, args=(theirs, ours))
    p.start()
    theirs.close()

    def one_ashm(n: int) -> None:
        for _ in range(n):
            with ashm.Region.create("bench-array", PASS_BYTES) as r:
                view = r.map()
                a = np.frombuffer(view, dtype=np.float64)
                np.copyto(a, src)
                ashm.send_region(ours, r)
                assert ours.recv(8) == b"done"
                assert a[0] == src[0] + 1
                del a
                view.release()

    results["ashm (fd, numpy view)"] = measure(one_ashm, rounds, 1)
    ours.close()
    p.join()

    parent, child = ctx.Pipe()
    p = ctx.Process(target=worker_shm, args=(child, parent))
    p.start()
    child.close()

    def one_shm(n: int) -> None:
        for _ in range(n):
            s = shared_memory.SharedMemory(create=True, size=PASS_BYTES)
            a = np.ndarray((PASS_BYTES // 8,), dtype=np.float64, buffer=s.buf)
            np.copyto(a, src)
            parent.send(s.name)
            assert parent.recv() == "done"
            assert a[0] == src[0] + 1
            del a
            s.close()
            s.unlink()

    results["shared_memory (name)"] = measure(one_shm, rounds, 1)
    parent.close()
    p.join()

    qin, qout = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=worker_queue, args=(qin, qout))
    p.start()

    def one_queue(n: int) -> None:
        for _ in range(n):
            qin.put(src)
            b = qout.get()
            assert b[0] == src[0] + 1

    results["multiprocessing.Queue"] = measure(one_queue, rounds, 1)
    qin.put(None)
    p.join()
    return results


# -- 4. channel round trip ---------------------------------------------

def worker_chan(ping_region, pong_region) -> None:  # type: ignore[no-untyped-def]
    # A forked child opens its own endpoints (inherited ones refuse: ECHILD).
    with ashm.Channel(ping_region, "consumer") as ping, ashm.Channel(pong_region, "producer") as pong:
        while True:
            m = ping.recv()
            if m == b"quit":
                return
            pong.send(m)


def worker_pipe(conn, parent_end) -> None:  # type: ignore[no-untyped-def]
    parent_end.close()
    while True:
        m = conn.recv_bytes()
        if m == b"quit":
            return
        conn.send_bytes(m)


def chan_benchmarks(rounds: int, iters: int) -> Dict[str, List[float]]:
    ctx = multiprocessing.get_context("fork")
    results: Dict[str, List[float]] = {}
    ping_r = ashm.Channel.create("bench-ping", "queue", len(CHAN_MSG), 64)
    pong_r = ashm.Channel.create("bench-pong", "queue", len(CHAN_MSG), 64)
    p = ctx.Process(target=worker_chan, args=(ping_r, pong_r))
    p.start()
    with ashm.Channel(ping_r, "producer") as ping, ashm.Channel(pong_r, "consumer") as pong:
        def one_chan(n: int) -> None:
            for _ in range(n):
                ping.send(CHAN_MSG)
                assert pong.recv() == CHAN_MSG

        results["ashm.Channel"] = measure(one_chan, rounds, iters)
        ping.send(b"quit")
    p.join()
    ping_r.close()
    pong_r.close()

    parent, child = ctx.Pipe()
    p = ctx.Process(target=worker_pipe, args=(child, parent))
    p.start()
    child.close()

    def one_pipe(n: int) -> None:
        for _ in range(n):
            parent.send_bytes(CHAN_MSG)
            assert parent.recv_bytes() == CHAN_MSG

    results["multiprocessing.Pipe"] = measure(one_pipe, rounds, iters)
    parent.send_bytes(b"quit")
    p.join()
    parent.close()
    return results


# -- 3. kill -9 --------------------------------------------------------

CHILD_ASHM = """
import ashm, sys
r = ashm.Region.create("bench-kill", {size})
v = r.map()
v[:] = b"x" * len(v)
print("ready 0", flush=True)  # no tracker, no name
sys.stdin.read()
"""

CHILD_SHM = """
import sys
from multiprocessing import shared_memory, resource_tracker
s = shared_memory.SharedMemory(create=True, size={size})
s.buf[:] = b"x" * {size}
print("ready", resource_tracker._resource_tracker._pid, s.name.lstrip("/"), flush=True)
sys.stdin.read()
"""


def shm_snapshot() -> Dict[str, int]:
    out = {}
    for n in os.listdir("/dev/shm"):
        try:
            out[n] = os.stat(os.path.join("/dev/shm", n)).st_blocks * 512
        except FileNotFoundError:
            pass
    return out


def meminfo_shmem() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Shmem:"):
                return int(line.split()[1]) * 1024
    return 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def kill_case(code: str, group: bool) -> Tuple[int, int, int]:
    """Run code in a new interpreter (its own session and process group),
    kill it (or its whole group) with SIGKILL; return the files and bytes
    it left in /dev/shm and the growth of the system's Shmem. The child
    prints "ready TRACKER_PID [NAMES...]" once its segment is filled."""
    before, shmem0 = shm_snapshot(), meminfo_shmem()
    # The child's stderr (and its resource tracker's "leaked shared_memory"
    # warning) is shown only if it fails to start.
    err = tempfile.TemporaryFile("w+")
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code).format(size=PASS_BYTES)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                         start_new_session=True)
    assert p.stdout is not None
    words = p.stdout.readline().split()
    if not words or words[0] != "ready":
        p.kill()
        p.wait()
        err.seek(0)
        sys.exit(f"bench-python: the kill -9 child did not start:\n{err.read()}")
    tracker = int(words[1])
    if group:
        os.killpg(p.pid, signal.SIGKILL)
    else:
        p.kill()
    p.wait()
    if tracker:
        # A tracker that survived cleans up, then exits: wait (bounded)
        # for it to be gone before counting.
        end = time.monotonic() + 10
        while pid_alive(tracker) and time.monotonic() < end:
            time.sleep(0.01)
    # Only what the child made counts, and only that is removed: other
    # programs on the machine make and remove /dev/shm files meanwhile.
    # The child names its segment; an ashm child has none, and any new
    # file with "bench-kill" in its name would be its own.
    after = shm_snapshot()
    named = set(words[2:])
    new = {n: b for n, b in after.items() if n not in before and (n in named or "bench-kill" in n)}
    shmem = meminfo_shmem() - shmem0
    for n in new:  # leave nothing behind ourselves
        try:
            os.unlink(os.path.join("/dev/shm", n))
        except FileNotFoundError:
            pass
    p.stdin.close()  # type: ignore[union-attr]
    p.stdout.close()
    err.close()
    return len(new), sum(new.values()), shmem


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--strict", action="store_true")
    o, _ = ap.parse_known_args()  # bench.sh passes every benchmark the same flags
    if o.quick:
        o.rounds, o.iters = 5, 50
    pass_rounds = max(3, min(o.rounds, 11))

    print(f"bench-python: Python {sys.version.split()[0]}, numpy {np.__version__}, libashm {ashm.library_version()}, "
          f"{o.rounds} rounds x {o.iters} (lifecycle), {pass_rounds} rounds (64 MiB pass)")
    ok = True

    life = {"ashm": measure(lifecycle_ashm, o.rounds, o.iters),
            "shared_memory": measure(lifecycle_shm, o.rounds, o.iters)}
    table("lifecycle: create + attach + close, 1 MiB (per cycle)", " us", 1e6, life, "shared_memory")
    ratio = stats(life["ashm"])[0] / stats(life["shared_memory"])[0]
    met = ratio <= TARGET_LIFECYCLE
    ok &= met
    print(f"target lifecycle <= {TARGET_LIFECYCLE:.2f}x shared_memory: {ratio:.3f}x {'PASS' if met else 'FAIL'}")

    passing = pass_benchmarks(pass_rounds)
    table("pass: 64 MiB numpy array to another process and back (per round trip)", " ms", 1e3, passing,
          "multiprocessing.Queue")
    med = {k: stats(v)[0] for k, v in passing.items()}
    speedup = med["multiprocessing.Queue"] / med["ashm (fd, numpy view)"]
    print(f"  ashm takes {med['ashm (fd, numpy view)'] / med['shared_memory (name)']:.2f}x the time of shared_memory "
          "(both: a fresh segment, the array copied in, its pages faulted in by both processes)")
    met = speedup >= TARGET_PASS
    ok &= met
    print(f"target pass >= {TARGET_PASS:.1f}x faster than multiprocessing.Queue: {speedup:.1f}x "
          f"{'PASS' if met else 'FAIL'}")

    print("\nkill -9: a process with a filled 64 MiB segment, killed with SIGKILL")
    print(f"  {'case':<44} {'/dev/shm files':>14} {'bytes left':>12} {'Shmem growth':>13}")
    cases = [("ashm region", CHILD_ASHM, False),
             ("shared_memory, process killed", CHILD_SHM, False),
             ("shared_memory, process group killed", CHILD_SHM, True)]
    left = {}
    for name, code, group in cases:
        files, nbytes, shmem = kill_case(code, group)
        left[name] = (files, nbytes)
        print(f"  {name:<44} {files:>14} {nbytes / MiB:>10.1f}Mi {shmem / MiB:>11.1f}Mi")
    print("  (Shmem is system-wide: other processes move it too; the files column is exact)")
    files, nbytes = left["ashm region"]
    met = files == 0 and nbytes == 0
    ok &= met
    print(f"target kill -9 leaves 0 files in /dev/shm: ashm {files} files, {nbytes} bytes {'PASS' if met else 'FAIL'}")
    sf, sb = left["shared_memory, process group killed"]

    chan = chan_benchmarks(o.rounds, o.iters * 10)
    table("chan: 64-byte message to another process and back (per round trip)", " us", 1e6, chan,
          "multiprocessing.Pipe")
    chan_ratio = stats(chan["ashm.Channel"])[0] / stats(chan["multiprocessing.Pipe"])[0]
    met = chan_ratio <= TARGET_CHAN
    ok &= met
    print(f"target chan round trip <= {TARGET_CHAN:.2f}x multiprocessing.Pipe: {chan_ratio:.3f}x "
          f"{'PASS' if met else 'FAIL'}")
    print(f"RATIO bench=python lifecycle_ashm/shm={ratio:.3f} pass_queue/ashm={speedup:.2f} "
          f"kill_shm_group_files={sf} kill_shm_group_bytes={sb} chan_ashm/pipe={chan_ratio:.3f}")
    return 0 if ok or not o.strict else 1


if __name__ == "__main__":
    sys.exit(main())
