# SPDX-License-Identifier: MIT
"""ashm.Channel: queue and pub/sub between separate interpreters looked
up by broker name, zero-copy, selectors and asyncio on fileno(), the end
of the producers, timeouts."""
from __future__ import annotations

import asyncio
import errno
import os
import pickle
import selectors
from typing import List

import pytest
from conftest import Daemon, spawn_peer, wait_peer

import ashm

N = 200


def _name(tag: str) -> str:
    return f"py-chan-{tag}-{os.getpid()}"


def test_create_and_stat() -> None:
    with ashm.Channel.create("q", "queue", 64, 8, peers=2) as r:
        assert ashm.Channel.is_channel(r)
        st = ashm.Channel.stat_region(r)
        assert (st.kind, st.msg_max, st.depth, st.peers, st.producers, st.consumers) == ("queue", 64, 8, 2, 0, 0)
        assert len(st.places) == 2
        with ashm.Channel(r, "consumer") as c, ashm.Channel(r, ashm.CHAN_PRODUCER) as p:
            assert (c.role, p.role, c.msg_max) == ("consumer", "producer", 64)
            assert p.index == 0 and c.index is None
            with pytest.raises(TypeError):
                pickle.dumps(c)
            p.send(b"one")
            p.send(bytearray(b"two"))
            p.send(memoryview(b"xthreex")[1:-1])
            st = c.stat()
            assert (st.producers, st.consumers, st.sent, st.queued) == (1, 1, 3, 3)
            assert [c.recv(timeout=0) for _ in range(3)] == [b"one", b"two", b"three"]
            assert c.last == (0, 2)
            with pytest.raises(OSError) as e:
                p.send(b"x" * 65)
            assert e.value.errno == errno.EMSGSIZE
            p.send(b"y" * 10)
            buf = bytearray(4)
            with pytest.raises(OSError) as e:
                c.recv_into(buf, timeout=0)
            assert e.value.errno == errno.EMSGSIZE
            buf = bytearray(64)
            assert c.recv_into(buf, timeout=0) == 10 and buf[:10] == b"y" * 10
            with pytest.raises(OSError) as e:
                ashm.Channel(r, "consumer")
            assert e.value.errno == errno.EBUSY
            with pytest.raises(OSError) as e:
                ashm.Channel(r, "subscriber")
            assert e.value.errno == errno.EPROTOTYPE
        assert c.closed
        with pytest.raises(ValueError):
            c.recv()
    with ashm.Region.create("plain", 4096) as r:
        assert not ashm.Channel.is_channel(r)
        with pytest.raises(OSError) as e:
            ashm.Channel(r, "consumer")
        assert e.value.errno == errno.EBADMSG
    with pytest.raises(ValueError):
        ashm.Channel.create("q", "fifo", 64, 8)
    with pytest.raises(OSError) as e:
        ashm.Channel.create("q", "queue", 64, 3)
    assert e.value.errno == errno.EINVAL


def test_timeouts() -> None:
    with ashm.Channel.create("t", "queue", 16, 2) as r, \
            ashm.Channel(r, "consumer") as c, ashm.Channel(r, "producer") as p:
        with pytest.raises(BlockingIOError):
            c.recv(timeout=0)
        with pytest.raises(TimeoutError):
            c.recv(timeout=0.001)
        with pytest.raises(TimeoutError):
            c.peek(timeout=0.001)
        p.send(b"a", timeout=0)
        p.send(b"b", timeout=0)
        with pytest.raises(BlockingIOError):
            p.send(b"c", timeout=0)
        with pytest.raises(TimeoutError):
            p.send(b"c", timeout=0.001)
        with pytest.raises(TimeoutError):
            p.reserve(4, timeout=0.001)
        with pytest.raises(ValueError):
            c.recv(timeout=-1)
        assert c.recv() == b"a"


def test_zero_copy() -> None:
    with ashm.Channel.create("zc", "queue", 64, 4) as r, \
            ashm.Channel(r, "consumer") as c, ashm.Channel(r, "producer") as p:
        buf = p.reserve(64)
        assert not buf.readonly and buf.nbytes == 64
        with pytest.raises(ValueError):
            p.reserve(8)  # one at a time
        buf[:5] = b"hello"
        arr = pickle.PickleBuffer(buf)
        with pytest.raises(BufferError):
            p.commit(5)
        arr.release()
        p.commit(5)
        with pytest.raises(ValueError):
            buf[0]  # released by commit
        with pytest.raises(ValueError):
            p.commit()
        msg = c.peek(timeout=0)
        assert msg.readonly and bytes(msg) == b"hello"
        with pytest.raises(ValueError):
            c.peek(timeout=0)
        held = pickle.PickleBuffer(msg)  # an export of the view (as numpy.frombuffer): release refuses
        with pytest.raises(BufferError):
            c.release()
        held.release()
        c.release()
        with pytest.raises(ValueError):
            bytes(msg)  # released with the message
        with pytest.raises(BlockingIOError):
            c.peek(timeout=0)
        # a whole reservation, a peek then close: the message stays for the next consumer
        v = p.reserve(3)
        v[:] = b"abc"
        p.commit()
        assert bytes(c.peek()) == b"abc"
        c.close()
        with ashm.Channel(r, "consumer") as c2:
            assert c2.recv(timeout=0) == b"abc"


def test_queue_between_interpreters(need_daemon: Daemon) -> None:
    name = _name("queue")
    with ashm.Channel.create(name, "queue", 32, 8, peers=2) as r:
        ashm.publish(r, name, 0o600)
        try:
            with ashm.Channel.open(name, "consumer") as c:
                peers = [spawn_peer("chan-produce", name, str(N)) for _ in range(2)]
                for p in peers:
                    assert p.stdout.readline().strip() == "ready", p.stderr.read()
                got: List[List[bytes]] = [[], []]
                while True:
                    try:
                        msg = c.recv(timeout=60)
                    except BrokenPipeError:
                        break  # both producers gone, everything read
                    got[c.last[0]].append(msg)
                for p in peers:
                    wait_peer(p)
                want = [f"m{i}".encode() for i in range(N)]
                assert got == [want, want]
                with pytest.raises(BrokenPipeError):
                    c.recv(timeout=0)
        finally:
            ashm.unpublish(name)


def test_pubsub_between_interpreters(need_daemon: Daemon) -> None:
    name = _name("pubsub")
    with ashm.Channel.create(name, "pubsub", 32, 4, peers=2) as r:
        ashm.publish(r, name, 0o600)
        try:
            with ashm.Channel(r, "publisher") as pub:
                subs = [spawn_peer("chan-subscribe", name, str(N)) for _ in range(2)]
                for s in subs:
                    assert s.stdout.readline().strip() == "ready", s.stderr.read()
                for i in range(N):
                    pub.send(f"m{i}".encode(), timeout=60)  # the slowest holds us back: nothing lost
                want = " ".join(f"m{i}" for i in range(N))
                for s in subs:
                    assert wait_peer(s).strip() == want
                st = pub.stat()
                assert st.kind == "pubsub" and st.sent == N and st.lost == 0
        finally:
            ashm.unpublish(name)


def _drain(c: ashm.Channel, got: List[bytes]) -> bool:
    """Receive until empty; False once the producers are gone."""
    while True:
        try:
            got.append(c.recv(timeout=0))
        except BlockingIOError:
            return True
        except BrokenPipeError:
            return False


def test_selectors(need_daemon: Daemon) -> None:
    name = _name("sel")
    with ashm.Channel.create(name, "queue", 32, 4) as r:
        ashm.publish(r, name, 0o600)
        try:
            with ashm.Channel.open(name, "consumer") as c, selectors.DefaultSelector() as sel:
                sel.register(c.fileno(), selectors.EVENT_READ)
                p = spawn_peer("chan-produce", name, str(N))
                got: List[bytes] = []
                alive = True
                while alive:
                    assert sel.select(timeout=60), "no event in 60 s"
                    alive = _drain(c, got)
                wait_peer(p)
                assert got == [f"m{i}".encode() for i in range(N)]
        finally:
            ashm.unpublish(name)


def test_asyncio(need_daemon: Daemon) -> None:
    name = _name("aio")
    with ashm.Channel.create(name, "queue", 32, 4) as r:
        ashm.publish(r, name, 0o600)
        try:
            with ashm.Channel.open(name, "consumer") as c:
                async def main() -> List[bytes]:
                    loop = asyncio.get_running_loop()
                    done = loop.create_future()
                    got: List[bytes] = []

                    def readable() -> None:
                        if not _drain(c, got) and not done.done():
                            done.set_result(None)

                    loop.add_reader(c.fileno(), readable)
                    try:
                        p = spawn_peer("chan-produce", name, str(N))
                        await asyncio.wait_for(done, 60)
                    finally:
                        loop.remove_reader(c.fileno())
                    wait_peer(p)
                    return got

                assert asyncio.run(main()) == [f"m{i}".encode() for i in range(N)]
        finally:
            ashm.unpublish(name)


def test_consumer_gone() -> None:
    with ashm.Channel.create("reset", "queue", 16, 2) as r:
        ashm.Channel(r, "consumer").close()
        with ashm.Channel(r, "producer") as p:
            p.send(b"a", timeout=0)  # queued for the next consumer
            p.send(b"b", timeout=0)
            with pytest.raises(ConnectionResetError):
                p.send(b"c", timeout=0)
        with ashm.Channel(r, "consumer") as c:
            assert [c.recv(timeout=0), c.recv(timeout=0)] == [b"a", b"b"]
            with pytest.raises(BrokenPipeError):
                c.recv(timeout=0)


def test_pubsub_overwrite_counts_lost() -> None:
    with ashm.Channel.create("ow", "pubsub", 16, 4, peers=1, flags=ashm.CHAN_OVERWRITE) as r:
        with ashm.Channel(r, "publisher") as pub, ashm.Channel(r, "subscriber") as sub:
            assert sub.index == 0 and sub.lost == 0
            for i in range(7):
                pub.send(b"%d" % i, timeout=0)  # never waits: the oldest go
            got = []
            while True:
                try:
                    got.append(sub.recv(timeout=0))
                except BlockingIOError:
                    break
            assert sub.lost == 7 - len(got) > 0
            assert got == [b"%d" % i for i in range(7 - len(got), 7)]
            st = pub.stat()
            assert st.overwrite and st.sent == 7 and st.lost == sub.lost


def test_read_only_subscriber(need_daemon: Daemon) -> None:
    name = _name("ro")
    with ashm.Channel.create(name, "pubsub", 16, 4) as r:
        ashm.publish(r, name, 0o600)
        try:
            with ashm.Channel(r, "publisher") as pub, ashm.Channel.open(name, "subscriber", writable=False) as sub:
                assert sub.index is None
                with pytest.raises(OSError) as e:
                    sub.fileno()
                assert e.value.errno == errno.EOPNOTSUPP
                pub.send(b"hi")
                msg = sub.peek(timeout=10)
                assert msg.readonly and bytes(msg) == b"hi"
                sub.release()
            with pytest.raises(PermissionError):
                with ashm.lookup(name) as ro:
                    ashm.Channel(ro, "publisher")
        finally:
            ashm.unpublish(name)
