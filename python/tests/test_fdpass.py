# SPDX-License-Identifier: MIT
"""send_region/recv_region between this interpreter and another one."""
from __future__ import annotations

import errno
import os
import socket

import pytest
from conftest import spawn_peer, wait_peer

import ashm


def test_region_to_another_interpreter() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, ashm.Region.create("py-fdpass", 4096) as r:
        view = r.map()
        view[:8] = b"greeting"
        p = spawn_peer("recv", str(theirs.fileno()), pass_fds=[theirs.fileno()])
        theirs.close()
        ashm.send_region(ours, r, b"greeting")
        reply = ours.recv(100)
        wait_peer(p)
        assert reply == b"ok py-fdpass 4096"
        # The peer's os.pwrite() and its mapping land in our mapping.
        assert bytes(view[64:70]) == b"answer"
        assert bytes(view[128:134]) == b"mapped"
        view.release()


def test_in_process_pair_and_payloads() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with a, b, ashm.Region.create("py-pair", 10) as r:
        ashm.send_region(a.fileno(), r, bytearray(b"by fd"))  # an int works too
        got, payload = ashm.recv_region(b)
        with got:
            assert payload == b"by fd" and got.name == "py-pair"
            assert os.fstat(got.fd).st_ino == os.fstat(r.fd).st_ino
        ashm.send_region(a, r)
        got, payload = ashm.recv_region(b)
        got.close()
        assert payload == b"\0"  # at least one byte always travels


def test_recv_refuses_a_non_memfd() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    rd, wr = os.pipe()
    with a, b:
        socket.send_fds(a, [b"pipe"], [rd])
        os.close(rd)
        os.close(wr)
        with pytest.raises(OSError) as e:
            ashm.recv_region(b)
        assert e.value.errno == errno.EMEDIUMTYPE  # and the pipe fd was closed (no_leaks)


def test_peer_gone() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    b.close()
    with a, ashm.Region.create("py-gone", 1) as r:
        with pytest.raises(BrokenPipeError):
            ashm.send_region(a, r)
        with pytest.raises(ConnectionResetError):
            ashm.recv_region(a)
