#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The other process of the cross-process tests: a separate interpreter
that imports ashm on its own. One command per run:

  recv SOCKFD            receive a region on the socket, check it holds
                         "greeting", write "answer" at 64 with os.write()
                         on the fd and through a mapping at 128, reply "ok"
  lookup NAME            look NAME up read-only, print its first bytes,
                         check that every way of writing is refused
  lookup-rw NAME TEXT    look NAME up writable and write TEXT at 0
  expect-missing NAME    lookup must raise FileNotFoundError
  publish NAME TEXT      publish a region holding TEXT, print "ready",
                         and stay until the test closes our stdin
  kv-write PATH N        write keys k0..k{N-1} = i into the file store
  kv-read PATH N         read them back, print their sum
  kv-region SOCKFD       receive a region, open its store, add "peer"=1,
                         reply "ok"
  no-daemon              with ASHM_SOCKET on nothing: the broker calls
                         raise ConnectionRefusedError, regions still work
  mutex-count FD N       adopt the region, add 1 to the counter at 8
                         N times under the mutex at 0, non-atomically
  mutex-hold FD          take the mutex at 0, print "held", stay until
                         killed (or our stdin closes)
  wait-word FD           wait while the word at 0 is 0, print its value
  wake-word FD VALUE     store VALUE into the word at 4 and wake it
  chan-produce NAME N    open NAME as a producer, print "ready", send
                         m0..m{N-1}, exit (the consumer then sees EPIPE)
  chan-subscribe NAME N  open NAME as a subscriber, print "ready",
                         receive N messages, print them on one line
Failures exit non-zero with a message on stderr.
"""
from __future__ import annotations

import errno
import mmap
import os
import socket
import sys

import ashm


def refused(what: str, fn) -> None:  # type: ignore[no-untyped-def]
    """A read-only grant is a frozen region (EPERM from the seals) or an
    fd opened read-only (EBADF from write(), EACCES from mmap())."""
    try:
        fn()
    except OSError as e:
        if e.errno in (errno.EPERM, errno.EACCES, errno.EBADF):
            return
        raise
    sys.exit(f"peer: {what} was not refused")


def cmd_recv(fd: str) -> None:
    with socket.socket(fileno=int(fd)) as s:
        region, payload = ashm.recv_region(s)
        with region:
            assert payload == b"greeting", payload
            assert region.read(0, 8) == b"greeting", region.read(0, 8)
            os.pwrite(region.fd, b"answer", 64)
            view = region.map()
            view[128:134] = b"mapped"
            view.release()
            s.send(f"ok {region.name} {region.size}".encode())


def cmd_lookup(name: str) -> None:
    with ashm.lookup(name) as r:
        print(r.read(0, 16).rstrip(b"\0").decode())
        refused("write()", lambda: r.write(0, b"x"))
        refused("map(writable=True)", lambda: r.map(writable=True))
        refused("mmap(PROT_WRITE)", lambda: mmap.mmap(r.fd, r.size, mmap.MAP_SHARED,
                                                      mmap.PROT_READ | mmap.PROT_WRITE))
        refused("os.pwrite", lambda: os.pwrite(r.fd, b"x", 0))


def cmd_lookup_rw(name: str, text: str) -> None:
    with ashm.lookup(name, writable=True) as r:
        r.write(0, text.encode())


def cmd_expect_missing(name: str) -> None:
    try:
        ashm.lookup(name)
    except FileNotFoundError:
        return
    sys.exit(f"peer: {name} still found")


def cmd_publish(name: str, text: str) -> None:
    r = ashm.Region.create(name, 4096)
    r.write(0, text.encode())
    ashm.publish(r, name, 0o644)
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin


def cmd_kv_write(path: str, n: str) -> None:
    with ashm.KV(path, create=True) as kv:
        for i in range(int(n)):
            kv[f"k{i}"] = i
        kv["writer"] = "peer"
        kv.sync()


def cmd_kv_read(path: str, n: str) -> None:
    with ashm.KV(path, readonly=True) as kv:
        print(sum(kv[f"k{i}"] for i in range(int(n))), kv.get("from-test"))


def cmd_kv_region(fd: str) -> None:
    with socket.socket(fileno=int(fd)) as s:
        region, _ = ashm.recv_region(s)
        with region, ashm.KV.on_region(region) as kv:
            assert kv["from-test"] == "hello", dict(kv)
            kv["peer"] = os.getpid()
            s.send(b"ok")


def cmd_no_daemon() -> None:
    with ashm.Region.create("no-daemon", 4096) as r:
        for call in (lambda: ashm.publish(r, "x"), lambda: ashm.lookup("x"), ashm.names, ashm.purge):
            try:
                call()
            except ConnectionRefusedError as e:
                assert "Connection refused" in str(e), e
                continue
            sys.exit("peer: a broker call worked without a daemon")
        # Without a daemon pins are private and nothing is purged.
        r.unpin()
        assert r.pin() is False
        r.write(0, b"still works")
        print(r.read(0, 11).decode())


def cmd_mutex_count(fd: str, n: str) -> None:
    with ashm.Region.adopt(os.dup(int(fd))) as r:
        m = ashm.Mutex(r, 0)
        view = r.map()
    counter = view[8:16].cast("Q")
    for _ in range(int(n)):
        with m:
            v = counter[0]
            os.sched_yield()  # let the others run into the lock
            counter[0] = v + 1
    m.close()


def cmd_mutex_hold(fd: str) -> None:
    with ashm.Region.adopt(os.dup(int(fd))) as r:
        m = ashm.Mutex(r, 0)
    m.lock()
    print("held", flush=True)
    sys.stdin.read()


def cmd_wait_word(fd: str) -> None:
    with ashm.Region.adopt(os.dup(int(fd))) as r:
        view = r.map()
    words = view.cast("I")
    print("ready", flush=True)
    while words[0] == 0:
        ashm.wait(view, 0, 0, timeout=60)
    print(words[0])


def cmd_wake_word(fd: str, value: str) -> None:
    with ashm.Region.adopt(os.dup(int(fd))) as r:
        view = r.map()
    view.cast("I")[1] = int(value)
    ashm.wake(view, 4, None)


def cmd_chan_produce(name: str, n: str) -> None:
    with ashm.Channel.open(name, "producer") as ch:
        print("ready", flush=True)
        for i in range(int(n)):
            ch.send(f"m{i}".encode(), timeout=60)


def cmd_chan_subscribe(name: str, n: str) -> None:
    with ashm.Channel.open(name, "subscriber") as ch:
        print("ready", flush=True)
        got = [ch.recv(timeout=60).decode() for _ in range(int(n))]
    print(" ".join(got))


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    globals()["cmd_" + cmd.replace("-", "_")](*args)
