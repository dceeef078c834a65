# SPDX-License-Identifier: MIT
"""The cross-process key-value store as a MutableMapping."""
from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import MutableMapping
from ctypes import byref, c_int, c_size_t, c_uint64, c_void_p
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

from ._lib import (KV_CREATE, Handle, KV_DAMAGE_FN, KV_FOREACH_FN, KV_RDONLY, KV_SYNC, KVReport, KVStats, check_kv,
                   encode, lib)
from ._region import Region

Value = Union[bool, int, float, str, bytes]

# type id: (name, struct format or None)
_TYPES: Dict[int, Tuple[str, Optional[str]]] = {
    1: ("bool", "<?"),
    2: ("int32", "<i"),
    3: ("int64", "<q"),
    4: ("uint64", "<Q"),
    5: ("float", "<f"),
    6: ("double", "<d"),
    7: ("string", None),
    8: ("bytes", None),
}
_BY_NAME = {name: (tid, fmt) for tid, (name, fmt) in _TYPES.items()}


def _key(key: str) -> bytes:
    if not isinstance(key, str):
        raise TypeError(f"KV keys are str, not {type(key).__name__}")
    return encode(key, "key")


def _decode(tid: int, raw: bytes) -> Value:
    name, fmt = _TYPES.get(tid, ("?", None))
    if fmt is not None:
        return struct.unpack(fmt, raw)[0]  # type: ignore[no-any-return]
    if tid == 7:
        return raw.decode("utf-8", "surrogateescape")
    return raw


def _encode(value: Any, type_name: str) -> Tuple[int, bytes]:
    try:
        tid, fmt = _BY_NAME[type_name]
    except KeyError:
        raise ValueError(f"unknown KV type {type_name!r} (one of {', '.join(_BY_NAME)})") from None
    if fmt is not None:
        try:
            return tid, struct.pack(fmt, value)
        except struct.error as e:
            raise OverflowError(f"{value!r} does not fit a {type_name}: {e}") from None
    if tid == 7:
        if not isinstance(value, str):
            raise TypeError("a string value must be str")
        b = value.encode("utf-8", "surrogateescape")
        if b"\0" in b:
            raise ValueError("a string value cannot hold a NUL (use bytes)")
        return tid, b
    return tid, bytes(value)


def _infer(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        # int64 as the issue says; the positive ints int64 cannot hold but
        # uint64 can are stored as uint64 rather than refused.
        return "int64" if value < 1 << 63 else "uint64"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes"
    raise TypeError(f"KV values are bool, int, float, str or bytes, not {type(value).__name__}"
                    " (set_typed() for the other C types)")


class Damage(NamedTuple):
    """One damaged part of a store, as :meth:`KV.check` reports it."""
    offset: int
    length: int
    what: str


class CheckReport(NamedTuple):
    """What :meth:`KV.check` found. ``ok`` is True when nothing is damaged."""
    ok: bool
    records: int
    keys: int
    damaged: int
    damaged_bytes: int
    index_errors: int
    header_ok: bool
    damage: List[Damage]


class KV(Handle, MutableMapping):  # type: ignore[type-arg]
    """A key-value store shared by any number of processes, on a file
    (persistent) or on a region (anonymous). A ``MutableMapping`` from
    ``str`` to ``bool``, ``int`` (int64), ``float`` (double), ``str`` and
    ``bytes``; :meth:`get_typed`/:meth:`set_typed` reach the other C types
    (int32, uint64, float). A write by one process is seen by every other
    at once; readers never wait for a writer; a write that returned
    survives the death of the process (and, after :meth:`sync`, power loss).

    ``KV(path, create=False, readonly=False)`` opens the store in a file:
    FileNotFoundError if it does not exist and ``create`` is false. With
    ``sync=True`` every write is durable before it returns (slow).
    Use it as a context manager or call :meth:`close`. After ``fork()`` a
    child must open its own handle (OSError ECHILD otherwise).
    """

    def __init__(self, path: "str | os.PathLike[str]", create: bool = False, readonly: bool = False, *,
                 sync: bool = False) -> None:
        self._handle: Optional[int] = None
        h = c_void_p()
        check_kv(lib.ashm_kv_open(encode(path, "path"), self._flags(create, readonly, sync), byref(h)),
                 "ashm_kv_open", os.fspath(path))
        self._handle = h.value

    @staticmethod
    def _flags(create: bool, readonly: bool, sync: bool) -> int:
        return (KV_CREATE if create else 0) | (KV_RDONLY if readonly else 0) | (KV_SYNC if sync else 0)

    @classmethod
    def on_region(cls, region: Region, *, create: bool = True, readonly: bool = False) -> "KV":
        """The store in ``region``, laid out there if the region is empty
        (and ``create``). The region may be closed afterwards: the store
        keeps its own fd. Share the region (fd passing, a name, a Pool) and
        open it there with ``KV.on_region`` too."""
        self = cls.__new__(cls)
        self._handle = None
        h = c_void_p()
        check_kv(lib.ashm_kv_open_region(region._h(), cls._flags(create, readonly, False), byref(h)),
                 "ashm_kv_open_region")
        self._handle = h.value
        return self

    # -- lifetime -----------------------------------------------------
    def _h(self) -> int:
        h = self._handle
        if h is None:
            raise ValueError("operation on a closed KV store")
        return h

    def close(self) -> None:
        """Close the handle (again: no-op)."""
        h, self._handle = self._handle, None
        if h is not None:
            lib.ashm_kv_close(h)

    def __reduce__(self) -> Any:
        # A handle is a pointer into this process: pass the region (or
        # the path) and open the store again on the other side.
        raise TypeError("a KV handle cannot be pickled: pass its Region (or path) and open it there")

    def fileno(self) -> int:
        """The store's fd, borrowed (for a region store: to send it)."""
        return lib.ashm_kv_fd(self._h())

    # -- typed access -------------------------------------------------
    def get_typed(self, key: str) -> Tuple[str, Value]:
        """``(type_name, value)`` of ``key``: type_name one of "bool",
        "int32", "int64", "uint64", "float", "double", "string", "bytes".
        KeyError if absent; OSError EBADMSG if its record is damaged."""
        k = _key(key)
        tid = c_int()
        n = c_size_t()
        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            r = lib.ashm_kv_get(self._h(), k, byref(tid), buf, size, byref(n))
            if r == -2:  # ENOENT
                raise KeyError(key)
            check_kv(r, "ashm_kv_get", key)
            if n.value <= size:
                break
            size = n.value  # grew, or was replaced meanwhile: again
        return _TYPES.get(tid.value, (str(tid.value), None))[0], _decode(tid.value, buf.raw[:n.value])

    def set_typed(self, key: str, value: Any, type_name: str) -> None:
        """Store ``value`` as the C type ``type_name`` (see :meth:`get_typed`).
        OverflowError if it does not fit."""
        tid, raw = _encode(value, type_name)
        check_kv(lib.ashm_kv_set(self._h(), _key(key), tid, raw, len(raw)), "ashm_kv_set", key)

    # -- MutableMapping -----------------------------------------------
    def __getitem__(self, key: str) -> Value:
        return self.get_typed(key)[1]

    def __setitem__(self, key: str, value: Value) -> None:
        self.set_typed(key, value, _infer(value))

    def __delitem__(self, key: str) -> None:
        r = lib.ashm_kv_remove(self._h(), _key(key))
        if r == -2:
            raise KeyError(key)
        check_kv(r, "ashm_kv_remove", key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return bool(check_kv(lib.ashm_kv_contains(self._h(), _key(key)), "ashm_kv_contains", key))

    def __len__(self) -> int:
        n = c_uint64()
        check_kv(lib.ashm_kv_count(self._h(), byref(n)), "ashm_kv_count")
        return n.value

    def keys_snapshot(self) -> List[str]:
        """Every key of one instant's snapshot of the store."""
        found: List[str] = []

        def each(key: bytes, tid: int, length: int, _: Any) -> int:
            found.append(key.decode("utf-8", "surrogateescape"))
            return 0

        check_kv(lib.ashm_kv_foreach(self._h(), KV_FOREACH_FN(each), None), "ashm_kv_foreach")
        return found

    def __iter__(self) -> Iterator[str]:
        """Iterates over a snapshot: writes made meanwhile are not seen."""
        return iter(self.keys_snapshot())

    def clear(self) -> None:
        """Remove every key, in one step."""
        check_kv(lib.ashm_kv_clear(self._h()), "ashm_kv_clear")

    # -- maintenance --------------------------------------------------
    def sync(self) -> None:
        """Make every write so far durable (no-op on a region store)."""
        check_kv(lib.ashm_kv_sync(self._h()), "ashm_kv_sync")

    def compact(self) -> None:
        """Rewrite the store with live records only, online."""
        check_kv(lib.ashm_kv_compact(self._h()), "ashm_kv_compact")

    def stats(self) -> Dict[str, int]:
        """Keys, bytes live and dead, rebuilds, ... as a dict."""
        s = KVStats()
        check_kv(lib.ashm_kv_stats_get(self._h(), byref(s)), "ashm_kv_stats_get")
        return {name: getattr(s, name) for name, _ in KVStats._fields_}

    def check(self) -> CheckReport:
        """Verify every record of the store without changing anything."""
        damage: List[Damage] = []

        def each(offset: int, length: int, what: bytes, _: Any) -> None:
            damage.append(Damage(offset, length, what.decode("utf-8", "replace")))

        rep = KVReport()
        r = check_kv(lib.ashm_kv_check_fd(self.fileno(), KV_DAMAGE_FN(each), None, byref(rep)), "ashm_kv_check_fd")
        return CheckReport(r == 0, rep.records, rep.keys, rep.damaged, rep.damaged_bytes, rep.index_errors,
                           bool(rep.header_ok), damage)

    def __repr__(self) -> str:
        return "<ashm.KV closed>" if self._handle is None else f"<ashm.KV fd={self.fileno()} keys={len(self)}>"
