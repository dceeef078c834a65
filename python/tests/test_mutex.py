# SPDX-License-Identifier: MIT
"""ashm.Mutex and ashm.wait/wake, within a process and across separate
interpreters (peer.py)."""
from __future__ import annotations

import errno
import os
import signal

import pytest
from conftest import spawn_peer, wait_peer

import ashm


def test_init_lock_unlock() -> None:
    with ashm.Region.create("mutex", 4096) as r:
        ashm.Mutex.init(r, 64)
        m, other = ashm.Mutex(r, 64), ashm.Mutex(r, 64)
        with m:
            assert m.owner_died is False
            assert other.trylock() is False
            with pytest.raises(TimeoutError):
                other.lock(timeout=0)
            with pytest.raises(TimeoutError):
                other.lock(timeout=0.001)
            with pytest.raises(PermissionError):
                other.unlock()
        assert other.trylock() is True and other.owner_died is False
        other.unlock()
        assert other.lock(timeout=1) is False
        other.unlock()
        for h in (m, other):
            h.close()
            h.close()
        with pytest.raises(ValueError):
            m.lock()


def test_bad_arguments() -> None:
    with ashm.Region.create("mutex", 4096) as r:
        with pytest.raises(OSError) as e:
            ashm.Mutex.init(r, 3)
        assert e.value.errno == errno.EINVAL
        with pytest.raises(OSError) as e:
            ashm.Mutex.init(r, 4096)
        assert e.value.errno == errno.ERANGE
        m = ashm.Mutex(r, 128)  # zeros: not a mutex yet
        with pytest.raises(OSError) as e:
            m.lock(timeout=0)
        assert e.value.errno == errno.EBADMSG
        m.close()


def test_exclusion_between_interpreters() -> None:
    n = 300
    with ashm.Region.create("mutex-count", 4096) as r:
        ashm.Mutex.init(r, 0)
        peers = [spawn_peer("mutex-count", str(r.fd), str(n), pass_fds=(r.fd,)) for _ in range(2)]
        m = ashm.Mutex(r, 0)
        view = r.map()
        counter = view[8:16].cast("Q")
        for _ in range(n):
            with m:
                v = counter[0]
                os.sched_yield()
                counter[0] = v + 1
        for p in peers:
            wait_peer(p)
        assert counter[0] == 3 * n
        m.close()


def test_owner_killed_while_holding() -> None:
    with ashm.Region.create("mutex-died", 4096) as r:
        ashm.Mutex.init(r, 0)
        p = spawn_peer("mutex-hold", str(r.fd), pass_fds=(r.fd,))
        assert p.stdout.readline().strip() == "held", p.stderr.read()
        m = ashm.Mutex(r, 0)
        assert m.trylock() is False
        p.send_signal(signal.SIGKILL)
        p.wait(60)
        assert m.lock(timeout=60) is True
        assert m.owner_died is True
        m.unlock()
        m.close()
        # released cleanly: the next one is a plain lock
        with ashm.Mutex(r, 0) as m2:
            assert m2.owner_died is False
        m2.close()


def test_wait_wake_in_process() -> None:
    with ashm.Region.create("word", 4096) as r:
        view = r.map()
        words = view.cast("I")
        assert ashm.wait(view, 0, 1, timeout=0) is False  # not 1: returns at once
        with pytest.raises(TimeoutError):
            ashm.wait(view, 0, 0, timeout=0.001)
        assert ashm.wake(view, 0) == 0
        with pytest.raises(ValueError):
            ashm.wait(view, 2, 0)  # misaligned
        with pytest.raises(ValueError):
            ashm.wake(view, 4096)  # outside
        with pytest.raises(ValueError):
            ashm.wake(view, 0, 0)
        ro = r.map(writable=False)
        assert ashm.wait(ro, 0, 7, timeout=0) is False  # a read-only view works too
        words.release()
        ro.release()
        view.release()


def test_wait_wake_between_interpreters() -> None:
    with ashm.Region.create("word", 4096) as r:
        view = r.map()
        words = view.cast("I")
        # the peer sleeps on word 0, we wake it
        p = spawn_peer("wait-word", str(r.fd), pass_fds=(r.fd,))
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
        words[0] = 42
        ashm.wake(view, 0, None)
        assert wait_peer(p).strip() == "42"
        # we sleep on word 1, the peer wakes us
        p = spawn_peer("wake-word", str(r.fd), "7", pass_fds=(r.fd,))
        while words[1] == 0:
            ashm.wait(view, 4, 0, timeout=60)
        assert words[1] == 7
        wait_peer(p)
        words.release()
        view.release()


def test_not_picklable_threads_wait_without_the_gil() -> None:
    import pickle
    import threading
    with ashm.Region.create("mutex-threads", 4096) as r:
        ashm.Mutex.init(r, 0)
        a, b = ashm.Mutex(r, 0), ashm.Mutex(r, 0)
        with pytest.raises(TypeError):
            pickle.dumps(a)
        a.lock()
        got = []
        t = threading.Thread(target=lambda: got.append(b.lock(timeout=60)))
        t.start()  # it sleeps in the library, without the GIL: we carry on
        assert b.trylock() is False
        a.unlock()
        t.join(60)
        assert got == [False]
        b.unlock()
        a.close()
        b.close()
