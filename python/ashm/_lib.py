# SPDX-License-Identifier: MIT
"""Loading libashm.so.0 and declaring its C functions for ctypes.

Nothing here is public: the rest of the package calls ``lib.ashm_*``
and turns negative errno returns into ``OSError`` with :func:`check`.

Which library is loaded:

1. ``$ASHM_LIBRARY``, when set: a path to ``libashm.so.0``, typically the
   one of a build tree (``build/src/libashm/libashm.so.0``). Nothing
   else is tried, so a test never picks up an installed copy by mistake.
2. ``libashm.so.0`` through the dynamic linker's search path.
3. The library directory that ``meson install`` wrote into
   ``ashm/_paths.py`` (for a prefix the linker does not search).
"""
from __future__ import annotations

import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int, c_int32,
                    c_int64, c_size_t, c_uint, c_uint32, c_uint64, c_void_p)
from typing import NoReturn, Optional, TypeVar

SONAME = "libashm.so.0"

# From include/ashm.h.
NAME_MAX = 249
PUBLISH_NAME_MAX = 255
KV_KEY_MAX = 4096
REGION_EXEC = 1 << 0
PUBLISH_KEEP = 1 << 0
LOOKUP_WRITE = 1 << 0
PURGE_ALL_USERS = 1 << 0
KV_CREATE = 1 << 0
KV_RDONLY = 1 << 1
KV_SYNC = 1 << 2


class NameInfo(Structure):
    _fields_ = [
        ("name", c_char * (PUBLISH_NAME_MAX + 1)),
        ("size", c_uint64),
        ("mode", c_uint32),
        ("uid", c_uint32),
        ("gid", c_uint32),
        ("pid", c_uint32),
        ("flags", c_uint),
        ("writable", c_uint),
    ]


class KVStats(Structure):
    _fields_ = [(n, c_uint64) for n in ("keys", "file_size", "allocated", "live_bytes", "dead_bytes", "log_used",
                                       "log_size", "slots", "rebuilds", "recoveries")] + [("version", c_uint32)]


class KVReport(Structure):
    _fields_ = [(n, c_uint64) for n in ("records", "keys", "damaged", "damaged_bytes", "index_errors")] + [
        ("header_ok", c_int)]


KV_FOREACH_FN = CFUNCTYPE(c_int, c_char_p, c_int, c_size_t, c_void_p)
KV_DAMAGE_FN = CFUNCTYPE(None, c_uint64, c_uint64, c_char_p, c_void_p)

_R = c_void_p  # ashm_region *
_K = c_void_p  # ashm_kv *
_M = c_void_p  # ashm_mutex *
_C = c_void_p  # ashm_chan *


class ChanPeer(Structure):
    _fields_ = [("index", c_uint32), ("alive", c_uint32), ("active", c_uint32),
                ("position", c_uint64), ("lag", c_uint64), ("lost", c_uint64)]


class ChanInfo(Structure):
    _fields_ = [(n, c_uint32) for n in ("kind", "flags", "msg_max", "depth", "peers", "producers", "consumers",
                                       "publishers", "subscribers")] + [
        (n, c_uint64) for n in ("size", "sent", "queued", "lost")]

# name: (restype, argtypes)
_PROTOTYPES = {
    "ashm_version": (c_char_p, []),
    "ashm_region_create": (c_int, [c_char_p, c_uint64, c_uint, POINTER(_R)]),
    "ashm_region_adopt": (c_int, [c_int, c_uint, POINTER(_R)]),
    "ashm_region_dup": (c_int, [_R, POINTER(_R)]),
    "ashm_region_close": (None, [_R]),
    "ashm_region_fd": (c_int, [_R]),
    "ashm_region_get_size": (c_int, [_R, POINTER(c_uint64)]),
    "ashm_region_name": (c_char_p, [_R]),
    "ashm_region_get_prot": (c_int, [_R]),
    "ashm_region_set_prot": (c_int, [_R, c_int]),
    "ashm_region_map": (c_int, [_R, c_uint64, c_size_t, c_int, POINTER(c_void_p)]),
    "ashm_region_unmap": (c_int, [_R, c_void_p, c_size_t]),
    "ashm_region_read": (c_int, [_R, c_uint64, c_void_p, c_size_t]),
    "ashm_region_write": (c_int, [_R, c_uint64, c_void_p, c_size_t]),
    "ashm_region_freeze": (c_int, [_R]),
    "ashm_region_is_frozen": (c_int, [_R]),
    "ashm_region_create_from_file": (c_int, [c_char_p, c_char_p, c_uint, POINTER(_R)]),
    "ashm_region_pin": (c_int, [_R, c_uint64, c_uint64]),
    "ashm_region_unpin": (c_int, [_R, c_uint64, c_uint64]),
    "ashm_region_get_pin_status": (c_int, [_R, c_uint64, c_uint64]),
    "ashm_purge": (c_int, [c_uint64, c_uint, POINTER(c_uint64)]),
    "ashm_publish": (c_int, [_R, c_char_p, c_uint, c_uint]),
    "ashm_lookup": (c_int, [c_char_p, c_uint, POINTER(_R)]),
    "ashm_unpublish": (c_int, [c_char_p]),
    "ashm_names": (c_int, [POINTER(POINTER(NameInfo)), POINTER(c_size_t)]),
    "ashm_region_send": (c_int, [c_int, _R, c_void_p, c_size_t]),
    "ashm_region_recv": (c_int, [c_int, c_uint, c_void_p, c_size_t, POINTER(c_size_t), POINTER(_R)]),
    "ashm_kv_error_detail": (c_char_p, []),
    "ashm_kv_type_name": (c_char_p, [c_int]),
    "ashm_kv_type_from_name": (c_int, [c_char_p]),
    "ashm_kv_open": (c_int, [c_char_p, c_uint, POINTER(_K)]),
    "ashm_kv_open_region": (c_int, [_R, c_uint, POINTER(_K)]),
    "ashm_kv_close": (None, [_K]),
    "ashm_kv_fd": (c_int, [_K]),
    "ashm_kv_set": (c_int, [_K, c_char_p, c_int, c_void_p, c_size_t]),
    "ashm_kv_remove": (c_int, [_K, c_char_p]),
    "ashm_kv_clear": (c_int, [_K]),
    "ashm_kv_get": (c_int, [_K, c_char_p, POINTER(c_int), c_void_p, c_size_t, POINTER(c_size_t)]),
    "ashm_kv_contains": (c_int, [_K, c_char_p]),
    "ashm_kv_count": (c_int, [_K, POINTER(c_uint64)]),
    "ashm_kv_foreach": (c_int, [_K, KV_FOREACH_FN, c_void_p]),
    "ashm_kv_sync": (c_int, [_K]),
    "ashm_kv_compact": (c_int, [_K]),
    "ashm_kv_stats_get": (c_int, [_K, POINTER(KVStats)]),
    "ashm_kv_check_fd": (c_int, [c_int, KV_DAMAGE_FN, c_void_p, POINTER(KVReport)]),
    # Locks and waiting on a word.
    "ashm_mutex_init": (c_int, [_R, c_uint64, c_uint]),
    "ashm_mutex_open": (c_int, [_R, c_uint64, c_uint, POINTER(_M)]),
    "ashm_mutex_close": (None, [_M]),
    "ashm_mutex_lock": (c_int, [_M, c_int64]),
    "ashm_mutex_trylock": (c_int, [_M]),
    "ashm_mutex_unlock": (c_int, [_M]),
    "ashm_wait": (c_int, [c_void_p, c_uint32, c_int64]),
    "ashm_wake": (c_int, [c_void_p, c_int]),
    # Channels.
    "ashm_chan_create": (c_int, [c_char_p, c_int, c_uint32, c_uint32, c_uint32, c_uint, POINTER(_R)]),
    "ashm_chan_open": (c_int, [_R, c_int, c_uint, POINTER(_C)]),
    "ashm_chan_close": (None, [_C]),
    "ashm_chan_send": (c_int, [_C, c_void_p, c_size_t, c_int64]),
    "ashm_chan_reserve": (c_int, [_C, c_size_t, c_int64, POINTER(c_void_p)]),
    "ashm_chan_commit": (c_int, [_C, c_size_t]),
    "ashm_chan_recv": (c_int, [_C, c_void_p, c_size_t, POINTER(c_size_t), c_int64]),
    "ashm_chan_peek": (c_int, [_C, c_int64, POINTER(c_void_p), POINTER(c_size_t)]),
    "ashm_chan_release": (c_int, [_C]),
    "ashm_chan_fd": (c_int, [_C]),
    "ashm_chan_set_spin": (c_int, [_C, c_uint64]),
    "ashm_chan_lost": (c_int, [_C, POINTER(c_uint64)]),
    "ashm_chan_last": (c_int, [_C, POINTER(c_uint), POINTER(c_uint64)]),
    "ashm_chan_index": (c_int, [_C]),
    "ashm_chan_stat": (c_int, [_R, POINTER(ChanInfo), POINTER(ChanPeer), c_size_t]),
    "ashm_chan_is_channel": (c_int, [_R]),
}


def _candidates() -> list[str]:
    env = os.environ.get("ASHM_LIBRARY")
    if env:
        return [env]
    found = [SONAME]
    try:
        from . import _paths  # written by meson install
        found.append(os.path.join(_paths.LIBDIR, SONAME))
    except ImportError:
        pass
    return found


def _load() -> ctypes.CDLL:
    errors = []
    for path in _candidates():
        try:
            dll = ctypes.CDLL(path, use_errno=False)
            break
        except OSError as e:
            errors.append(f"{path}: {e}")
    else:
        raise ImportError("ashm: cannot load libashm (" + "; ".join(errors) +
                          "); install ashm, or set ASHM_LIBRARY to the path of libashm.so.0")
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(dll, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return dll


lib = _load()

_H = TypeVar("_H", bound="Handle")
libc = ctypes.CDLL(None, use_errno=True)
libc.munmap.restype = c_int
libc.munmap.argtypes = [c_void_p, c_size_t]
libc.free.restype = None
libc.free.argtypes = [c_void_p]


def raise_errno(err: int, what: str, detail: Optional[str] = None, filename: Optional[str] = None) -> NoReturn:
    """Raise ``OSError(err, ...)``: Python picks the subclass from the
    errno (FileNotFoundError for ENOENT, PermissionError for EPERM and
    EACCES, FileExistsError for EEXIST, ...). The message names the call
    and, where the library had more to say, its detail text, which is
    also kept as the exception's ``detail`` attribute."""
    msg = f"{os.strerror(err)} ({what}" + (f": {detail})" if detail else ")")
    exc = OSError(err, msg, filename) if filename is not None else OSError(err, msg)
    exc.detail = detail or ""  # type: ignore[attr-defined]
    raise exc


def check(r: int, what: str, filename: Optional[str] = None) -> int:
    """Return r if it is >= 0, else raise the OSError of errno -r."""
    if r < 0:
        raise_errno(-r, what, None, filename)
    return r


def check_kv(r: int, what: str, key: Optional[str] = None) -> int:
    """check() for ashm_kv_*() calls, with ashm_kv_error_detail()."""
    if r < 0:
        d = lib.ashm_kv_error_detail()
        raise_errno(-r, what, d.decode("utf-8", "replace") if d else None, key)
    return r


def encode(s: "str | bytes | os.PathLike[str]", what: str = "name") -> bytes:
    """A str, bytes or path as the C string the library expects."""
    b = os.fsencode(s)
    if b"\0" in b:
        raise ValueError(f"{what} contains a NUL byte")
    return b


__all__ = ["lib", "libc", "check", "check_kv", "encode", "raise_errno", "NameInfo", "KVStats", "KVReport", "ChanInfo", "ChanPeer",
           "KV_FOREACH_FN", "KV_DAMAGE_FN", "c_char", "c_double", "c_float", "c_int32", "c_int64"]


class Handle:
    """What every handle of the library shares (Region, KV, Mutex,
    Channel): ``closed``, use as a context manager that closes it, and a
    close when it is collected. A subclass keeps its C handle in
    ``self._handle`` and defines :meth:`close`."""

    __slots__ = ()

    def close(self) -> None:
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return getattr(self, "_handle", None) is None

    def __enter__(self: _H) -> _H:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # The interpreter may have torn lib down already at exit.
        if getattr(self, "_handle", None) is not None and lib is not None:
            self.close()
