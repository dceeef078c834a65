#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ashm demo, the service side, in Python: the program you run.

The scenario Ashmem was made for, with two unrelated processes (the same
as the C demo, examples/demo-service.c):

1. The service creates a 1 MiB region named "ProcessMemoryService",
   writes "Hello world!" into it through a mapping, and passes the
   region's fd to the client over a Unix socket.
2. The client (client.py, a separate Python program) reads the text with
   os.read() on the fd and through a mapping of its own, then writes an
   answer with os.write() on the fd. The service sees the answer in its
   mapping: one region, two processes.
3. The service fills a "config" region, freezes it and sends it. The
   client checks that it is frozen, reads it, and finds that every way
   of writing to it is refused by the kernel.

Protocol, one SOCK_SEQPACKET message per step:
  service -> client   region "ProcessMemoryService", payload "greeting"
  client  -> service  "written"
  service -> client   region "config", payload "config"
  client  -> service  "verified"
and the client answers "FAILED: <why>" instead when something is wrong.
The last line is "demo: OK", or "demo: FAILED: <why>" with status 1.
"""
import os
import socket
import subprocess
import sys
import tempfile

import ashm

REGION_NAME = "ProcessMemoryService"
REGION_SIZE = 1024 * 1024
GREETING = b"Hello world!"
ANSWER = b"Hello from the client!"
CONFIG = (b"[service]\n"
          b"name = ProcessMemoryService\n"
          b"region_size = 1048576\n"
          b"[limits]\n"
          b"max_clients = 8\n")


class Failed(Exception):
    pass


def say(text: str) -> None:
    print(f"[service] {text}", flush=True)


def expect_reply(conn: socket.socket, expected: bytes) -> None:
    msg = conn.recv(512)
    if not msg:
        raise Failed("the client hung up")
    if msg.startswith(b"FAILED: "):
        raise Failed("the client says: " + msg[8:].decode())
    if msg != expected:
        raise Failed(f"the client answered {msg!r}, expected {expected!r}")


def share_greeting(conn: socket.socket) -> None:
    with ashm.Region.create(REGION_NAME, REGION_SIZE) as region:
        view = region.map()
        view[:len(GREETING)] = GREETING
        say(f"created region '{region.name}' ({REGION_SIZE} bytes), fd {region.fd}, "
            f"wrote \"{GREETING.decode()}\"")
        # The fd travels as SCM_RIGHTS: the client gets its own fd on the
        # same memory.
        ashm.send_region(conn, region, b"greeting")
        expect_reply(conn, b"written")
        # Our mapping shows the client's write at once: same pages.
        seen = bytes(view[:64]).split(b"\0", 1)[0]
        view.release()
        say(f"sees: \"{seen.decode()}\"")
        if seen != ANSWER:
            raise Failed(f"the service sees {seen!r}, not the client's {ANSWER!r}")


def share_config(conn: socket.socket) -> None:
    # Written with write(), not through a mapping: freezing fails (EBUSY)
    # while a writable mapping of the region exists anywhere.
    with ashm.Region.create("config", len(CONFIG)) as region:
        region.write(0, CONFIG)
        region.freeze()
        say(f"created region 'config' ({len(CONFIG)} bytes), wrote it, froze it")
        ashm.send_region(conn, region, b"config")
        expect_reply(conn, b"verified")
        say("client confirms: config is frozen, every write was refused")
        if region.read(0, len(CONFIG)) != CONFIG:
            raise Failed("the frozen config changed")
        say("config unchanged")


def run(tmpdir: str) -> None:
    path = os.path.join(tmpdir, "demo.sock")
    client = os.path.join(os.path.dirname(os.path.abspath(__file__)), "client.py")
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as listener:
        listener.bind(path)
        listener.listen(1)
        say(f"listening on {path}")
        proc = subprocess.Popen([sys.executable, client, path])
        try:
            say(f"started client.py, pid {proc.pid}")
            listener.settimeout(60)  # a bound, in case the client dies first
            conn, _ = listener.accept()
            conn.settimeout(None)
            with conn:
                # The kernel tells who is at the other end: only our client.
                pid = int.from_bytes(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)[:4], "little")
                if pid != proc.pid:
                    raise Failed(f"pid {pid} connected, not our client")
                say(f"client pid {pid} connected")
                share_greeting(conn)
                share_config(conn)
        finally:
            status = proc.wait()
            os.unlink(path)
        say(f"client exited with status {status}")
        if status != 0:
            raise Failed(f"client.py exited with status {status}")


def main() -> int:
    try:
        with tempfile.TemporaryDirectory(prefix="ashm-demo-") as tmpdir:
            run(tmpdir)
    except (Failed, OSError) as e:
        print(f"demo: FAILED: {e}", flush=True)
        return 1
    print("demo: OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
