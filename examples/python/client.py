#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ashm demo, the client side, in Python: service.py starts it as a
separate program (``client.py SOCKET_PATH``). It receives two regions as
fds and does with them what any process could do with an fd it was
given: read and write through the fd, map it, and check what the kernel
allows. See service.py for the scenario and the protocol."""
import mmap
import os
import socket
import sys

import ashm

GREETING = b"Hello world!"
ANSWER = b"Hello from the client!"


class Failed(Exception):
    pass


def say(text: str) -> None:
    print(f"[client ] {text}", flush=True)


def receive(sock: socket.socket, expected: bytes) -> ashm.Region:
    region, payload = ashm.recv_region(sock)
    if payload != expected:
        region.close()
        raise Failed(f"got region with {payload!r}, expected {expected!r}")
    return region


def check_greeting(sock: socket.socket) -> None:
    with receive(sock, b"greeting") as region:
        say(f"received region '{region.name}', {region.size} bytes, as fd {region.fd}")
        # The fd shares its file offset with the service's: seek first.
        os.lseek(region.fd, 0, os.SEEK_SET)
        by_read = os.read(region.fd, 63).split(b"\0", 1)[0]
        say(f"read() on the fd: \"{by_read.decode()}\"")
        view = region.map(writable=False)
        by_map = bytes(view[:63]).split(b"\0", 1)[0]
        view.release()
        say(f"through a mapping: \"{by_map.decode()}\"")
        if by_read != GREETING or by_map != GREETING:
            raise Failed(f"expected {GREETING!r} both ways")
        os.lseek(region.fd, 0, os.SEEK_SET)
        os.write(region.fd, ANSWER + b"\0")
        say(f"wrote \"{ANSWER.decode()}\" with write() at offset 0")
    sock.send(b"written")


def expect_refused(how: str, attempt) -> None:  # type: ignore[no-untyped-def]
    try:
        attempt()
    except PermissionError as e:
        say(f"{how}: refused: {e.strerror}")
        return
    except OSError as e:
        raise Failed(f"{how} failed with \"{e.strerror}\", expected EPERM")
    raise Failed(f"{how} succeeded on a frozen region")


def check_config(sock: socket.socket) -> None:
    with receive(sock, b"config") as region:
        say(f"received region '{region.name}', {region.size} bytes, as fd {region.fd}")
        # Trust the contents only once nobody can change them any more.
        if not region.frozen:
            raise Failed(f"region '{region.name}' is not frozen")
        say("region.frozen is True: nobody can change it any more")
        view = region.map(writable=False)
        say("config, through a read-only mapping:")
        for line in bytes(view).decode().splitlines():
            say(f"    {line}")
        view.release()
        # Every way to write: the seals are in the kernel, so all fail.
        expect_refused("os.write() on the fd", lambda: os.pwrite(region.fd, b"x", 0))
        expect_refused("Region.map(writable=True)", lambda: region.map(writable=True))
        expect_refused("mmap(PROT_WRITE, MAP_SHARED)",
                       lambda: mmap.mmap(region.fd, region.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE))
    sock.send(b"verified")


def main() -> int:
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} SOCKET_PATH (service.py starts it)", file=sys.stderr)
        return 2
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        try:
            sock.connect(sys.argv[1])
            check_greeting(sock)
            check_config(sock)
        except (Failed, OSError) as e:
            say(f"FAILED: {e}")
            try:
                sock.send(f"FAILED: {e}".encode())
            except OSError:
                pass
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
