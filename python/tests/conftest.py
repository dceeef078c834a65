# SPDX-License-Identifier: MIT
"""Fixtures of the Python suite.

- The suite runs on the build tree: ``ASHM_LIBRARY`` names its
  libashm.so.0 and ``ASHMD`` its daemon (python/meson.build sets both).
- One private ashmd for the whole session, on a private runtime
  directory, exported to the library (and to every peer) as
  ``ASHM_SOCKET``; ``ASHM_NO_AUTOSTART=1`` keeps anything from starting
  the user's daemon. This is tests/tests.h's daemon_start() in Python.
- Each test must leave no fd open, no child process running and no new
  multiprocessing file in /dev/shm.
- Peers are real separate interpreters running ``peer.py``.
"""
from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from typing import Iterator, List, Optional, Sequence

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peer.py")
os.environ["ASHM_NO_AUTOSTART"] = "1"
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
# Peers import the same package as the tests.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [os.path.dirname(HERE)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def _children() -> List[int]:
    """Our running children, but multiprocessing's helpers that live as
    long as the process (the resource tracker, the fork server)."""
    me = str(os.getpid())
    kids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z" and b"from multiprocessing." not in cmdline:
            kids.append(int(pid))
    return kids


def _fds() -> set:
    """Our open fds, but those the library and multiprocessing keep on
    purpose: libashm's cache of pin-state blocks ("ashm-pinstate" memfds,
    as tests.h's tests_fd_is_library()), the listening socket of
    multiprocessing's resource sharer (made once a region was pickled
    outside of a process start: multiprocessing.reduction.DupFd), the
    resource tracker's pipe, the fork server's."""
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:ashm-pinstate"):
                fds.add(fd)
        except FileNotFoundError:  # the directory's own fd
            pass
    from multiprocessing import forkserver, resource_sharer, resource_tracker
    listener = getattr(resource_sharer._resource_sharer, "_listener", None)
    keep = [listener._listener._socket.fileno() if listener is not None else None,
            getattr(resource_tracker._resource_tracker, "_fd", None),
            getattr(forkserver._forkserver, "_forkserver_alive_fd", None)]
    return fds - {str(fd) for fd in keep if fd is not None}


def _mp_shm() -> set:
    """/dev/shm files that Python's multiprocessing makes (SharedMemory
    segments, semaphores): an ashm region is never one of them."""
    return {n for n in os.listdir("/dev/shm") if n.startswith(("psm_", "sem.mp-", "ashm-py"))}


def poll_until(cond, timeout: float = 10.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    """Wait for cond() with a bound, never a fixed sleep."""
    end = time.monotonic() + timeout
    delay = 0.001
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class Daemon:
    def __init__(self, exe: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="ashm-pytest-")
        self.sock = os.path.join(self.dir, "ashmd.sock")
        rd, wr = os.pipe()
        libc = ctypes.CDLL(None, use_errno=True)

        def child() -> None:
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: dies with the suite

        self.proc = subprocess.Popen([exe, "--socket", self.sock, "--ready-fd", str(wr), "--no-pressure"],
                                     preexec_fn=child, pass_fds=(wr,), stdin=subprocess.DEVNULL)
        os.close(wr)
        try:
            ready, _, _ = select.select([rd], [], [], 10)
            if not ready or len(os.read(rd, 1)) != 1:
                self.proc.kill()
                self.proc.wait()
                os.rmdir(self.dir)
                raise RuntimeError(f"{exe} did not start")
        finally:
            os.close(rd)
        os.environ["ASHM_SOCKET"] = self.sock

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(30)
        for n in ("ashmd.pid", "ashmd.sock"):
            try:
                os.unlink(os.path.join(self.dir, n))
            except FileNotFoundError:
                pass
        os.rmdir(self.dir)
        assert status == 0, f"ashmd exited with status {status}"


@pytest.fixture(scope="session", autouse=True)
def daemon() -> Iterator[Optional[Daemon]]:
    """The session's private ashmd, or None when ASHMD is not set."""
    exe = os.environ.get("ASHMD")
    if not exe:
        yield None
        return
    d = Daemon(exe)
    # The library keeps one connection to ashmd per process, made by the
    # first call that needs the daemon: make it now, not inside a test.
    import ashm
    with ashm.Region.create("warm-up", 4096) as r:
        r.unpin()
        r.pin()
    ashm.names()
    yield d
    d.stop()


@pytest.fixture
def need_daemon(daemon: Optional[Daemon]) -> Daemon:
    if daemon is None:
        pytest.skip("no ASHMD: set it to the build tree's ashmd")
    return daemon


_peers: List["subprocess.Popen[str]"] = []


@pytest.fixture(autouse=True)
def no_leaks(daemon: Optional[Daemon]) -> Iterator[None]:
    """Fail a test that leaks an fd, a process or a /dev/shm file. Peers
    that a failed test left behind are killed first."""
    import gc
    fds, shm = _fds(), _mp_shm()
    yield
    while _peers:
        p = _peers.pop()
        if p.poll() is None:
            p.kill()
        p.communicate()
    gc.collect()  # regions and views dropped by the test
    # multiprocessing's resource sharer thread may still be closing an fd
    # it handed out: let it finish, within a bound.
    poll_until(lambda: _fds() <= fds, 10, f"fds to be closed ({sorted(_fds() - fds)})")
    kids = [p for p in _children() if daemon is None or p != daemon.proc.pid]
    assert not kids, f"the test left child processes {kids}"
    # multiprocessing unlinks a named semaphore when its finalizer runs.
    poll_until(lambda: not (_mp_shm() - shm), 10, f"/dev/shm files to go ({sorted(_mp_shm() - shm)})")


def peer_cmd(*args: str) -> List[str]:
    return [sys.executable, PEER, *args]


def run_peer(*args: str, pass_fds: Sequence[int] = (), timeout: float = 60) -> str:
    """Run peer.py in a new interpreter; require exit 0, return stdout."""
    p = subprocess.run(peer_cmd(*args), pass_fds=pass_fds, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"peer {args} exited {p.returncode}:\n{p.stderr}{p.stdout}"
    return p.stdout


def spawn_peer(*args: str, pass_fds: Sequence[int] = ()) -> subprocess.Popen:  # type: ignore[type-arg]
    p = subprocess.Popen(peer_cmd(*args), pass_fds=pass_fds, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.PIPE, text=True)
    _peers.append(p)
    return p


def wait_peer(p: "subprocess.Popen[str]", timeout: float = 60) -> str:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, f"peer {p.args} exited {p.returncode}:\n{err}{out}"
    return out
