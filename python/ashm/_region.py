# SPDX-License-Identifier: MIT
"""Regions, fd passing and the name broker."""
from __future__ import annotations

import ctypes
import mmap
import os
import socket
import weakref
from ctypes import byref, c_size_t, c_uint64, c_void_p
from typing import Any, Callable, List, NamedTuple, Optional, Tuple, Union

from ._lib import Handle, NameInfo, check, encode, lib, libc

Buffer = Union[bytes, bytearray, memoryview]
SocketLike = Union[socket.socket, int]

PROT_READ = mmap.PROT_READ
PROT_WRITE = mmap.PROT_WRITE
PROT_EXEC = mmap.PROT_EXEC

#: Allow PROT_EXEC mappings (``Region.create(..., flags=REGION_EXEC)``).
REGION_EXEC = 1 << 0


def _fileno(sock: SocketLike) -> int:
    return sock if isinstance(sock, int) else sock.fileno()


class _Mapping:
    """One mapping made by ashm_region_map(), unmapped when the last
    memoryview (or numpy array) over it goes away. Its ctypes array is
    the buffer exporter, so Python keeps the memory mapped exactly as
    long as something can still reach it."""

    def __init__(self, region: "Region", addr: int, length: int, writable: bool) -> None:
        self.array = (ctypes.c_ubyte * length).from_address(addr)
        # The finalizer holds the region (not the other way round), so an
        # open region lives while its mappings do, and close() before the
        # views are gone leaves them valid: munmap() then, as in C.
        weakref.finalize(self.array, _unmap, region, addr, length)
        view = memoryview(self.array).cast("B")
        self.view = view if writable else view.toreadonly()


def _unmap(region: "Region", addr: int, length: int) -> None:
    if region._handle is not None:
        lib.ashm_region_unmap(region._handle, addr, length)
    else:
        libc.munmap(addr, length)


def _rebuild_region(dupfd: Any) -> "Region":
    return Region.adopt(dupfd.detach())


class Region(Handle):
    """A region of anonymous shared memory: a memfd that exists only as
    file descriptors, so nothing is left anywhere when its last holder
    exits or dies.

    Make one with :meth:`create`, :meth:`adopt` (an fd received from
    elsewhere), :meth:`from_file` (a frozen copy of a file),
    :func:`recv_region` or :func:`lookup`. Close it with :meth:`close` or
    use it as a context manager. Mappings returned by :meth:`map` stay
    valid after close, until the last view of them is released.

    A region pickles by passing its fd (``multiprocessing.reduction``'s
    ``DupFd``): handed to a ``multiprocessing.Pool`` worker, a ``Process``
    or through a ``multiprocessing.Queue``, the receiver gets its own fd
    on the same memory. Nothing is named in ``/dev/shm``.
    """

    __slots__ = ("_handle", "__weakref__")

    def __init__(self, _handle: int) -> None:
        """Not for direct use: see the class methods."""
        self._handle: Optional[int] = _handle

    # -- constructors -------------------------------------------------
    @classmethod
    def create(cls, name: Optional[str], size: int, *, flags: int = 0) -> "Region":
        """A new region of ``size`` bytes of zeros, named ``name`` (shown in
        ``/proc/PID/maps`` as ``/memfd:NAME``; None means "ashm"). ``flags``
        may be :data:`REGION_EXEC`.

        Raises ValueError for unknown flags (EINVAL as OSError), OSError
        ENAMETOOLONG for a name over 249 bytes, EFBIG, EMFILE, ENOMEM."""
        h = c_void_p()
        check(lib.ashm_region_create(None if name is None else encode(name), size, flags, byref(h)),
              "ashm_region_create", name)
        return cls(h.value)  # type: ignore[arg-type]

    @classmethod
    def adopt(cls, fd: int) -> "Region":
        """Make a region of ``fd`` (an int). The fd is consumed: the
        region owns it on success, and it is closed on failure. Pass
        ``os.dup(fd)`` to keep yours. OSError EMEDIUMTYPE if the fd is not
        a memfd (a pipe, a file, a /dev/shm segment), EBADF if not open."""
        h = c_void_p()
        check(lib.ashm_region_adopt(fd, 0, byref(h)), "ashm_region_adopt")
        return cls(h.value)  # type: ignore[arg-type]

    @classmethod
    def from_file(cls, path: "str | os.PathLike[str]", name: Optional[str] = None, *,
                  flags: int = 0) -> "Region":
        """A frozen region holding the contents of the regular file at
        ``path`` (the read-only configuration every process shares).
        ``name`` defaults to the file's base name."""
        h = c_void_p()
        check(lib.ashm_region_create_from_file(encode(path, "path"), None if name is None else encode(name),
                                               flags, byref(h)), "ashm_region_create_from_file", os.fspath(path))
        return cls(h.value)  # type: ignore[arg-type]

    def dup(self) -> "Region":
        """A second handle, with its own fd, on the same region."""
        h = c_void_p()
        check(lib.ashm_region_dup(self._h(), byref(h)), "ashm_region_dup")
        return Region(h.value)  # type: ignore[arg-type]

    # -- lifetime -----------------------------------------------------
    def _h(self) -> int:
        h = self._handle
        if h is None:
            raise ValueError("operation on a closed region")
        return h

    def close(self) -> None:
        """Close the handle and its fd (again: no-op). Views returned by
        :meth:`map` stay valid until released."""
        h, self._handle = self._handle, None
        if h is not None:
            lib.ashm_region_close(h)

    def __reduce__(self) -> Tuple[Callable[..., "Region"], Tuple[Any]]:
        from multiprocessing.reduction import DupFd  # type: ignore[attr-defined]
        return _rebuild_region, (DupFd(self.fd),)

    def __repr__(self) -> str:
        if self._handle is None:
            return "<ashm.Region closed>"
        return f"<ashm.Region {self.name!r} size={self.size} fd={self.fd}>"

    # -- properties ---------------------------------------------------
    @property
    def fd(self) -> int:
        """The region's fd, borrowed: owned by the region, never close it.
        Use it with os.read/os.write/select, or send it."""
        return lib.ashm_region_fd(self._h())

    def fileno(self) -> int:
        """The same as :attr:`fd`, for APIs that call ``fileno()``."""
        return self.fd

    @property
    def size(self) -> int:
        """The size in bytes, as fstat() reports it."""
        n = c_uint64()
        check(lib.ashm_region_get_size(self._h(), byref(n)), "ashm_region_get_size")
        return n.value

    @property
    def name(self) -> str:
        """The name given at creation (for an adopted fd, the kernel's)."""
        return lib.ashm_region_name(self._h()).decode("utf-8", "surrogateescape")

    @property
    def frozen(self) -> bool:
        """True if the region is frozen: nobody anywhere can change it."""
        return bool(check(lib.ashm_region_is_frozen(self._h()), "ashm_region_is_frozen"))

    @property
    def prot(self) -> int:
        """The protection mask, PROT_READ|PROT_WRITE|PROT_EXEC bits, the
        same for every holder in every process."""
        return check(lib.ashm_region_get_prot(self._h()), "ashm_region_get_prot")

    # -- contents -----------------------------------------------------
    def read(self, offset: int, n: int) -> bytes:
        """``n`` bytes at ``offset``, copied (Android's MemoryFile.readBytes).
        OSError EINVAL past the end, ENODATA over purged pages."""
        buf = ctypes.create_string_buffer(n)
        check(lib.ashm_region_read(self._h(), offset, buf, n), "ashm_region_read")
        return buf.raw

    def write(self, offset: int, data: Buffer) -> None:
        """Copy ``data`` (any bytes-like object) in at ``offset``. OSError
        EINVAL past the end; PermissionError when frozen or write-protected."""
        mv = memoryview(data).cast("B")
        n = mv.nbytes
        ptr: Any
        if isinstance(data, bytes):
            ptr = data
        elif mv.readonly:
            ptr = bytes(mv)
        else:
            ptr = (ctypes.c_ubyte * n).from_buffer(mv) if n else None
        check(lib.ashm_region_write(self._h(), offset, ptr, n), "ashm_region_write")

    def map(self, offset: int = 0, length: int = 0, writable: bool = True) -> memoryview:
        """Map ``length`` bytes at ``offset`` (page-aligned; 0 means to the
        end) and return them as a memoryview of format "B", read-only
        unless ``writable``. ``numpy.frombuffer(view, dtype)`` makes an
        array over the same memory, with no copy. The mapping lasts until
        the last view or array over it is released.

        PermissionError when ``writable`` and the region is frozen or its
        PROT_WRITE was removed; OSError EINVAL for an empty region or a
        range past the end."""
        prot = PROT_READ | (PROT_WRITE if writable else 0)
        if length == 0:
            size = self.size
            if offset >= size:
                check(-22, "ashm_region_map")  # EINVAL, as the library says for an empty range
            length = size - offset
        addr = c_void_p()
        check(lib.ashm_region_map(self._h(), offset, length, prot, byref(addr)), "ashm_region_map")
        return _Mapping(self, addr.value or 0, length, writable).view

    # -- sealing ------------------------------------------------------
    def freeze(self) -> None:
        """Seal the region so nobody can change it any more. OSError EBUSY
        while a writable mapping exists (release the views of
        ``map(writable=True)`` first)."""
        check(lib.ashm_region_freeze(self._h()), "ashm_region_freeze")

    def set_prot(self, prot: int) -> None:
        """Reduce the protection mask to ``prot`` (bits can only be
        removed; OSError EINVAL otherwise)."""
        check(lib.ashm_region_set_prot(self._h(), prot), "ashm_region_set_prot")

    # -- pins ---------------------------------------------------------
    def pin(self, offset: int = 0, length: int = 0) -> bool:
        """Pin pages (page-aligned; length 0 means to the end). Returns True
        if any of them were purged while unpinned (they read as zeros)."""
        return check(lib.ashm_region_pin(self._h(), offset, length), "ashm_region_pin") == 1

    def unpin(self, offset: int = 0, length: int = 0) -> None:
        """Unpin pages: the system may now purge them under memory
        pressure. PermissionError through a read-only fd."""
        check(lib.ashm_region_unpin(self._h(), offset, length), "ashm_region_unpin")

    def pin_status(self, offset: int = 0, length: int = 0) -> bool:
        """True if every page of the range is pinned, False if any is
        unpinned (or purged and not pinned since)."""
        return check(lib.ashm_region_get_pin_status(self._h(), offset, length), "ashm_region_get_pin_status") == 1


def purge(nbytes: int = 0, *, all_users: bool = False) -> int:
    """Ask ashmd to purge unpinned pages now (0: all of them); returns the
    bytes purged. OSError ECONNREFUSED when no daemon runs."""
    out = c_uint64()
    check(lib.ashm_purge(nbytes, 1 if all_users else 0, byref(out)), "ashm_purge")
    return out.value


# -- fd passing -------------------------------------------------------

def send_region(sock: SocketLike, region: Region, payload: Buffer = b"") -> None:
    """Send the region's fd (the region keeps its own) and ``payload`` in one
    message on an AF_UNIX socket (a ``socket.socket`` or an fd). An empty
    payload travels as one NUL byte. Never raises SIGPIPE: BrokenPipeError."""
    data = bytes(payload)
    check(lib.ashm_region_send(_fileno(sock), region._h(), data or None, len(data)), "ashm_region_send")


def recv_region(sock: SocketLike, maxlen: int = 65536) -> Tuple[Region, bytes]:
    """Receive a region sent by :func:`send_region` (or any memfd sent with
    SCM_RIGHTS) with its payload (up to ``maxlen`` bytes; on SOCK_STREAM
    ask for exactly the length sent). OSError EMEDIUMTYPE if the fd is not
    a memfd (it is closed), ConnectionResetError if the peer hung up."""
    buf = ctypes.create_string_buffer(maxlen)
    n = c_size_t()
    h = c_void_p()
    check(lib.ashm_region_recv(_fileno(sock), 0, buf, maxlen, byref(n), byref(h)), "ashm_region_recv")
    return Region(h.value), buf.raw[:n.value]  # type: ignore[arg-type]


# -- the broker -------------------------------------------------------

class Name(NamedTuple):
    """A published name, as :func:`names` reports it."""
    name: str
    size: int
    mode: int
    uid: int
    gid: int
    pid: int  #: the publisher, 0 once it has exited (a kept name)
    keep: bool
    writable: bool  #: True if the caller may look it up for writing


def publish(region: Region, name: str, mode: int = 0o600, keep: bool = False) -> None:
    """Publish ``region`` under ``name`` in ashmd, readable and writable
    according to the file-like ``mode``. The name lives as long as this
    process, or, with ``keep``, as long as the daemon. FileExistsError if
    the name is taken; ConnectionRefusedError without a daemon."""
    check(lib.ashm_publish(region._h(), encode(name), mode, 1 if keep else 0), "ashm_publish", name)


def lookup(name: str, writable: bool = False) -> Region:
    """The region published as ``name``. Read-only unless ``writable``: a
    read-only grant can never be used to write it, by any route.
    FileNotFoundError if there is no such name (or none you may read);
    PermissionError for ``writable`` without the write grant."""
    h = c_void_p()
    check(lib.ashm_lookup(encode(name), 1 if writable else 0, byref(h)), "ashm_lookup", name)
    return Region(h.value)  # type: ignore[arg-type]


def unpublish(name: str) -> None:
    """Remove a name (the region lives on in its holders)."""
    check(lib.ashm_unpublish(encode(name)), "ashm_unpublish", name)


def names() -> List[Name]:
    """The published names this process may read."""
    arr = ctypes.POINTER(NameInfo)()
    n = c_size_t()
    check(lib.ashm_names(byref(arr), byref(n)), "ashm_names")
    try:
        return [Name(i.name.decode("utf-8", "surrogateescape"), i.size, i.mode, i.uid, i.gid, i.pid,
                     bool(i.flags & 1), bool(i.writable)) for i in arr[:n.value]]
    finally:
        libc.free(arr)
