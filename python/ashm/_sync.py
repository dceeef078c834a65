# SPDX-License-Identifier: MIT
"""The robust cross-process mutex, and futex-style waiting on a word."""
from __future__ import annotations

import ctypes
import errno
from ctypes import byref, c_void_p
from typing import Any, Optional

from ._lib import Handle, check, lib
from ._region import Region

#: Bytes a mutex takes in a region, and the alignment of its offset.
MUTEX_SIZE = 8
MUTEX_ALIGN = 4
_OWNER_DIED = 1
_INT_MAX = 2**31 - 1


def timeout_ns(timeout: Optional[float]) -> int:
    """Seconds (None: no limit) as the library's nanoseconds (< 0: no
    limit, 0: do not wait)."""
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError("timeout must be None or >= 0")
    return int(timeout * 1e9)


class Mutex(Handle):
    """A robust mutex shared by processes, living at ``offset`` in a region.

    Lay it out once with :meth:`init`, then open a handle in each process
    (or thread) that uses it: ``Mutex(region, offset)``. The handle has its
    own fd and mapping, so the region may be closed afterwards. When the
    owner dies holding the mutex (even by SIGKILL), the next :meth:`lock`
    gets it and returns True: the data it guards may be half-written.

    As a context manager it locks without a time limit on entry (the
    result is kept in :attr:`owner_died`) and unlocks on exit. Close the
    handle with :meth:`close` (a mutex it holds is then seen as held by a
    dead owner). After ``fork()`` the child must open its own handle.
    """

    __slots__ = ("_handle", "owner_died")

    def __init__(self, region: Region, offset: int = 0) -> None:
        """Open a handle on the mutex at ``offset`` in ``region``.
        PermissionError if the region cannot be mapped writable or sealed
        against shrinking."""
        self._handle: Optional[int] = None
        #: True if the last lock taken through this handle found its
        #: previous owner dead.
        self.owner_died = False
        h = c_void_p()
        check(lib.ashm_mutex_open(region._h(), offset, 0, byref(h)), "ashm_mutex_open")
        self._handle = h.value

    @staticmethod
    def init(region: Region, offset: int = 0) -> None:
        """Lay out a free mutex at ``offset`` (a multiple of
        :data:`MUTEX_ALIGN`; it takes :data:`MUTEX_SIZE` bytes). Nobody may
        be using it meanwhile. OSError EINVAL for a misaligned offset,
        ERANGE if it does not fit."""
        check(lib.ashm_mutex_init(region._h(), offset, 0), "ashm_mutex_init")

    def _h(self) -> int:
        h = self._handle
        if h is None:
            raise ValueError("operation on a closed mutex")
        return h

    def lock(self, timeout: Optional[float] = None) -> bool:
        """Take the mutex, waiting at most ``timeout`` seconds (None: no
        limit). Returns True if the last owner died holding it (the mutex
        is held now either way). TimeoutError; OSError EBADMSG if the
        bytes are not an initialized mutex; ECHILD after fork(). Not
        recursive: locking it again through the same handle waits."""
        r = check(lib.ashm_mutex_lock(self._h(), timeout_ns(timeout)), "ashm_mutex_lock")
        self.owner_died = r == _OWNER_DIED
        return self.owner_died

    def trylock(self) -> bool:
        """One attempt: True if the mutex is held now (see
        :attr:`owner_died`), False if a live owner holds it."""
        r = lib.ashm_mutex_trylock(self._h())
        if r == -errno.EBUSY:
            return False
        check(r, "ashm_mutex_trylock")
        self.owner_died = r == _OWNER_DIED
        return True

    def unlock(self) -> None:
        """Release the mutex. PermissionError if this handle does not hold it."""
        check(lib.ashm_mutex_unlock(self._h()), "ashm_mutex_unlock")

    def close(self) -> None:
        """Close the handle (again: no-op)."""
        h, self._handle = self._handle, None
        if h is not None:
            lib.ashm_mutex_close(h)

    def __enter__(self) -> "Mutex":
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()

    def __reduce__(self) -> Any:
        raise TypeError("an ashm.Mutex cannot be pickled: it is a handle; pickle its region and open one there")

    def __repr__(self) -> str:
        return "<ashm.Mutex closed>" if self._handle is None else "<ashm.Mutex>"


class _PyBuffer(ctypes.Structure):
    _fields_ = [("buf", c_void_p), ("obj", ctypes.py_object), ("len", ctypes.c_ssize_t),
                ("itemsize", ctypes.c_ssize_t), ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
                ("format", ctypes.c_char_p), ("shape", c_void_p), ("strides", c_void_p),
                ("suboffsets", c_void_p), ("internal", c_void_p)]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_PyBuffer)]
_release_buffer.restype = None


def _word(view: Any, offset: int, call: Any, *args: int) -> int:
    """Call call(address of the 32-bit word at offset in view, *args)
    while holding the buffer, so it stays mapped during the call."""
    b = _PyBuffer()
    if _get_buffer(view, byref(b), 0) != 0:  # PyBUF_SIMPLE: contiguous bytes, read-only is fine
        raise TypeError("a contiguous buffer is needed")
    try:
        if offset < 0 or offset + 4 > b.len:
            raise ValueError(f"offset {offset} is outside the buffer of {b.len} bytes")
        addr = (b.buf or 0) + offset
        if addr % 4:
            raise ValueError("the word must be 4-byte aligned")
        return call(addr, *args)  # type: ignore[no-any-return]
    finally:
        _release_buffer(byref(b))


def wait(view: Any, offset: int, expected: int, timeout: Optional[float] = None) -> bool:
    """Sleep while the 32-bit word (native order, as ``view.cast("I")``
    reads it) at ``offset`` in ``view`` equals ``expected``, at most
    ``timeout`` seconds (None: no limit). ``view`` is a view of a region's
    mapping (:meth:`Region.map`, or a numpy array over one): the kernel
    keys the wait by the region and the offset, so a :func:`wake` through
    any process's mapping of it reaches the sleeper.

    Returns True when woken (or spuriously: look at the word again), False
    if the word did not hold ``expected`` to begin with. TimeoutError at
    the timeout. Store to the word before waking: a wake with nobody
    asleep is lost, and a waiter that compares first never misses a change.
    """
    r = _word(view, offset, lib.ashm_wait, expected & 0xFFFFFFFF, timeout_ns(timeout))
    if r == -errno.EAGAIN:
        return False
    check(r, "ashm_wait")
    return True


def wake(view: Any, offset: int, n: Optional[int] = 1) -> int:
    """Wake up to ``n`` (None: all) processes or threads waiting on the
    word at ``offset`` in ``view``; returns how many were woken."""
    count = _INT_MAX if n is None else n
    if count < 1:
        raise ValueError("n must be >= 1")
    return check(_word(view, offset, lib.ashm_wake, min(count, _INT_MAX)), "ashm_wake")
