# SPDX-License-Identifier: MIT
"""Channels: messages between processes through a region of their own."""
from __future__ import annotations

import ctypes
import errno
from ctypes import byref, c_size_t, c_uint, c_uint64, c_void_p
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from ._lib import ChanInfo, ChanPeer, Handle, check, encode, lib
from ._region import Buffer, Region, lookup
from ._sync import timeout_ns

#: Kinds, for :meth:`Channel.create`.
CHAN_QUEUE = 1
CHAN_PUBSUB = 2
#: Pub/sub: overwrite the oldest message rather than wait for a slow subscriber.
CHAN_OVERWRITE = 1 << 0
#: Roles, for :class:`Channel`.
CHAN_PRODUCER = 1
CHAN_CONSUMER = 2
CHAN_PUBLISHER = 3
CHAN_SUBSCRIBER = 4

_KINDS: Dict[str, int] = {"queue": CHAN_QUEUE, "pubsub": CHAN_PUBSUB}
_ROLES: Dict[str, int] = {"producer": CHAN_PRODUCER, "consumer": CHAN_CONSUMER, "publisher": CHAN_PUBLISHER,
                          "subscriber": CHAN_SUBSCRIBER}
_ROLE_NAMES = {v: k for k, v in _ROLES.items()}
_WRITERS = (CHAN_PRODUCER, CHAN_PUBLISHER)


def _code(value: Union[int, str], table: Dict[str, int], what: str) -> int:
    if isinstance(value, str):
        try:
            return table[value]
        except KeyError:
            raise ValueError(f"unknown {what} {value!r} (one of {', '.join(table)})") from None
    return value


class ChannelPeer(NamedTuple):
    """One producer (queue) or subscriber (pub/sub) place."""
    index: int
    alive: bool  #: a live process holds it
    active: bool  #: pub/sub: a subscriber has used it
    position: int  #: queue: the ring's tail; pub/sub: the cursor
    lag: int  #: messages not read yet
    lost: int  #: pub/sub: messages it lost


class ChannelStat(NamedTuple):
    """What :meth:`Channel.stat` reports: what the peers wrote in the
    region, a report rather than a promise."""
    kind: str  #: "queue" or "pubsub"
    overwrite: bool
    msg_max: int
    depth: int
    peers: int
    producers: int  #: queue: live ones
    consumers: int
    publishers: int  #: pub/sub: live ones
    subscribers: int
    size: int  #: bytes of the region
    sent: int  #: messages committed, ever
    queued: int  #: queue: messages not consumed yet
    lost: int  #: pub/sub: messages lost by subscribers
    places: List[ChannelPeer]


class Channel(Handle):
    """One endpoint of a channel: a producer or the consumer of a queue,
    the publisher or a subscriber of a pub/sub channel.

    The channel itself is a region made by :meth:`create`; share it like
    any region (fd passing, :func:`ashm.publish`), then open an endpoint on
    it in each process: ``Channel(region, "consumer")``, or
    ``Channel.open(name, "consumer")`` for a region published in ashmd.
    The endpoint has its own fd on the region, which may be closed after.

    Timeouts are seconds: None waits without limit, 0 never waits
    (BlockingIOError), more raises TimeoutError when nothing came. Errors
    are ``OSError`` by errno: BrokenPipeError when every writer is gone
    and everything was read, ConnectionResetError when a writer's ring is
    full and its reader is gone, OSError EBADMSG when a peer damaged the
    channel, EMSGSIZE for a message over ``msg_max``.

    An endpoint is used by one thread at a time. After ``fork()`` the
    child must open its own.
    """

    __slots__ = ("_handle", "_role", "_msg_max", "_buf", "_reserved", "_peeked", "_region", "__weakref__")

    def __init__(self, region: Region, role: Union[int, str]) -> None:
        """Open an endpoint with ``role`` ("producer", "consumer",
        "publisher", "subscriber" or a CHAN_* role). OSError EBADMSG not a
        channel; EPROTOTYPE a role of the other kind; EBUSY the place is
        taken (the consumer, the publisher, or every producer or
        subscriber place, by live processes); PermissionError a writing
        role on a read-only region. A subscriber on a read-only region
        (a read-only :func:`ashm.lookup`) has no :meth:`fileno`."""
        self._handle: Optional[int] = None
        self._reserved: Optional[memoryview] = None
        self._peeked: Optional[memoryview] = None
        self._buf: Any = None
        self._region: Optional[Region] = None
        self._role = _code(role, _ROLES, "role")
        info = ChanInfo()
        check(lib.ashm_chan_stat(region._h(), byref(info), None, 0), "ashm_chan_stat")
        self._msg_max = info.msg_max
        h = c_void_p()
        check(lib.ashm_chan_open(region._h(), self._role, 0, byref(h)), "ashm_chan_open")
        self._handle = h.value
        try:
            self._region = region.dup()  # for stat()
        except BaseException:
            self.close()
            raise

    @classmethod
    def create(cls, name: Optional[str], kind: Union[int, str], msg_max: int, depth: int, peers: int = 1, *,
               flags: int = 0) -> Region:
        """Make a channel and return its region (the creator is no
        endpoint). ``kind``: "queue" (up to ``peers`` producers, one
        consumer, lossless) or "pubsub" (one publisher, up to ``peers``
        subscribers). ``msg_max``: the largest message in bytes; ``depth``:
        messages per ring, a power of two. ``flags`` may be
        :data:`CHAN_OVERWRITE` (pub/sub: a subscriber a whole ring behind
        loses the oldest messages instead of holding the publisher back).
        OSError EINVAL for a bad kind, geometry or flags."""
        h = c_void_p()
        check(lib.ashm_chan_create(None if name is None else encode(name), _code(kind, _KINDS, "kind"), msg_max,
                                   depth, peers, flags, byref(h)), "ashm_chan_create", name)
        return Region(h.value)  # type: ignore[arg-type]

    @classmethod
    def open(cls, name: str, role: Union[int, str], writable: Optional[bool] = None) -> "Channel":
        """Look the channel published as ``name`` up in ashmd and open an
        endpoint on it. The lookup is writable for every role but a
        subscriber, unless ``writable`` says otherwise (a subscriber that
        may write gets its own page: the publisher then wakes it, and it
        has a :meth:`fileno`; so a subscriber asks for writable first and
        falls back to read-only on PermissionError)."""
        code = _code(role, _ROLES, "role")
        if writable is None and code == CHAN_SUBSCRIBER:
            try:
                region = lookup(name, writable=True)
            except PermissionError:
                region = lookup(name)
        else:
            region = lookup(name, writable=True if writable is None else writable)
        with region:
            return cls(region, code)

    @staticmethod
    def is_channel(region: Region) -> bool:
        """True if ``region`` holds a channel of this library's format."""
        return check(lib.ashm_chan_is_channel(region._h()), "ashm_chan_is_channel") == 1

    @staticmethod
    def stat_region(region: Region) -> ChannelStat:
        """Describe the channel in ``region`` without joining it."""
        info = ChanInfo()
        check(lib.ashm_chan_stat(region._h(), byref(info), None, 0), "ashm_chan_stat")
        places = (ChanPeer * max(info.peers, 1))()
        check(lib.ashm_chan_stat(region._h(), byref(info), places, info.peers), "ashm_chan_stat")
        return ChannelStat("queue" if info.kind == CHAN_QUEUE else "pubsub", bool(info.flags & CHAN_OVERWRITE),
                           info.msg_max, info.depth, info.peers, info.producers, info.consumers, info.publishers,
                           info.subscribers, info.size, info.sent, info.queued, info.lost,
                           [ChannelPeer(p.index, bool(p.alive), bool(p.active), p.position, p.lag, p.lost)
                            for p in places[:info.peers]])

    # -- lifetime -----------------------------------------------------
    def _h(self) -> int:
        h = self._handle
        if h is None:
            raise ValueError("operation on a closed channel")
        return h

    def close(self) -> None:
        """Close the endpoint (peers then see it gone). An outstanding
        reservation is dropped; an outstanding peek is not released (the
        next consumer gets the message) and its view is invalidated."""
        self._drop_views()
        h, self._handle = self._handle, None
        if h is not None:
            lib.ashm_chan_close(h)
        r, self._region = self._region, None
        if r is not None:
            r.close()

    def _drop_views(self) -> None:
        for v in (self._reserved, self._peeked):
            if v is not None:
                try:
                    v.release()
                except BufferError:
                    pass  # exported further: the caller broke the rule documented
        self._reserved = self._peeked = None

    def __reduce__(self) -> Any:
        raise TypeError("an ashm.Channel cannot be pickled: it is an endpoint; pickle its region and open one there")

    def __repr__(self) -> str:
        if self._handle is None:
            return "<ashm.Channel closed>"
        return f"<ashm.Channel {_ROLE_NAMES.get(self._role, self._role)} msg_max={self._msg_max}>"

    # -- properties ---------------------------------------------------
    @property
    def role(self) -> str:
        """"producer", "consumer", "publisher" or "subscriber"."""
        return _ROLE_NAMES[self._role]

    @property
    def msg_max(self) -> int:
        """The largest message the channel carries, in bytes."""
        return self._msg_max

    def fileno(self) -> int:
        """A pollable fd, owned by the endpoint: readable when the next
        recv/peek (consumer, subscriber) or send/reserve (producer) would
        not wait, or would fail because the peers are gone. After each
        wake-up, call with ``timeout=0`` until BlockingIOError: that also
        clears it. For ``selectors`` and ``loop.add_reader()``. The first
        call starts a thread in the library that waits for the endpoint.
        OSError EOPNOTSUPP for a read-only subscriber."""
        return check(lib.ashm_chan_fd(self._h()), "ashm_chan_fd")

    def set_spin(self, seconds: float) -> None:
        """How long a waiting call spins before it sleeps (0: never)."""
        check(lib.ashm_chan_set_spin(self._h(), int(seconds * 1e9)), "ashm_chan_set_spin")

    @property
    def lost(self) -> int:
        """Subscriber: messages lost so far (overwritten unread)."""
        n = c_uint64()
        check(lib.ashm_chan_lost(self._h(), byref(n)), "ashm_chan_lost")
        return n.value

    @property
    def last(self) -> Tuple[int, int]:
        """(source, seq) of the last message received or peeked: the
        producer's ring (0 for pub/sub) and its position in that ring's
        stream, unique for the life of the channel. For a writer: its ring
        and the position its next message takes."""
        src, seq = c_uint(), c_uint64()
        check(lib.ashm_chan_last(self._h(), byref(src), byref(seq)), "ashm_chan_last")
        return src.value, seq.value

    @property
    def index(self) -> Optional[int]:
        """The producer's ring or the subscriber's page, else None."""
        r = lib.ashm_chan_index(self._h())
        return None if r == -errno.ENOENT else check(r, "ashm_chan_index")

    # -- sending ------------------------------------------------------
    def send(self, data: Buffer, timeout: Optional[float] = None) -> None:
        """Copy ``data`` (any bytes-like object) in as one message.
        BlockingIOError/TimeoutError when full; ConnectionResetError full
        and the reader is gone; OSError EMSGSIZE over :attr:`msg_max`."""
        h = self._h()
        t = -1 if timeout is None else timeout_ns(timeout)
        if type(data) is bytes:  # the common case, without a view
            r = lib.ashm_chan_send(h, data, len(data), t)
        else:
            mv = memoryview(data).cast("B")
            n = mv.nbytes
            ptr: Any = bytes(mv) if mv.readonly else (ctypes.c_ubyte * n).from_buffer(mv) if n else None
            r = lib.ashm_chan_send(h, ptr, n, t)
        if r < 0:
            check(r, "ashm_chan_send")

    def reserve(self, n: int, timeout: Optional[float] = None) -> memoryview:
        """Zero-copy sending: room for ``n`` bytes in the channel, as a
        writable memoryview (16-byte aligned), to fill and then
        :meth:`commit`. The view is released by commit() (and close()):
        views or arrays made from it must be gone by then. Errors as
        :meth:`send`."""
        if self._reserved is not None:
            raise ValueError("a reservation is outstanding: commit() it first")
        p = c_void_p()
        check(lib.ashm_chan_reserve(self._h(), n, timeout_ns(timeout), byref(p)), "ashm_chan_reserve")
        view = memoryview((ctypes.c_ubyte * n).from_address(p.value or 0)).cast("B")
        self._reserved = view
        return view

    def commit(self, n: Optional[int] = None) -> None:
        """Publish the first ``n`` bytes (default: all that were reserved)
        of the reservation. BufferError, and nothing is published, while
        something made from the view (a numpy array, ``memoryview(view)``)
        still exists."""
        view = self._reserved
        if view is None:
            raise ValueError("commit() without reserve()")
        length = view.nbytes if n is None else n
        if not 0 <= length <= view.nbytes:
            raise ValueError(f"commit of {length} bytes out of {view.nbytes} reserved")
        view.release()  # BufferError while exported: the caller must drop those first
        self._reserved = None
        check(lib.ashm_chan_commit(self._h(), length), "ashm_chan_commit")

    # -- receiving ----------------------------------------------------
    def recv(self, timeout: Optional[float] = None) -> bytes:
        """The next message, copied out. BlockingIOError/TimeoutError when
        nothing came; BrokenPipeError when every writer is gone and
        everything was read."""
        if self._buf is None:
            n = c_size_t()
            self._buf = (ctypes.create_string_buffer(max(self._msg_max, 1)), n, byref(n))
        buf, n, n_ref = self._buf
        r = lib.ashm_chan_recv(self._h(), buf, self._msg_max, n_ref, -1 if timeout is None else timeout_ns(timeout))
        if r < 0:
            check(r, "ashm_chan_recv")
        return buf[:n.value]  # type: ignore[no-any-return]

    def recv_into(self, buffer: Any, timeout: Optional[float] = None) -> int:
        """Copy the next message into ``buffer`` (writable bytes-like) and
        return its length. OSError EMSGSIZE if it does not fit (it stays
        in the channel). Other errors as :meth:`recv`."""
        mv = memoryview(buffer).cast("B")
        size = mv.nbytes
        ptr = (ctypes.c_ubyte * size).from_buffer(mv) if size else None
        n = c_size_t()
        check(lib.ashm_chan_recv(self._h(), ptr, size, byref(n), timeout_ns(timeout)), "ashm_chan_recv")
        return n.value

    def peek(self, timeout: Optional[float] = None) -> memoryview:
        """Zero-copy receiving: the next message as a read-only memoryview
        into the channel, valid until :meth:`release` consumes it;
        release() (and close()) release the view. Copy what must outlive
        it. Errors as :meth:`recv`."""
        if self._peeked is not None:
            raise ValueError("a peeked message is outstanding: release() it first")
        p = c_void_p()
        n = c_size_t()
        check(lib.ashm_chan_peek(self._h(), timeout_ns(timeout), byref(p), byref(n)), "ashm_chan_peek")
        view = memoryview((ctypes.c_ubyte * n.value).from_address(p.value or 0)).cast("B").toreadonly()
        self._peeked = view
        return view

    def release(self) -> None:
        """Consume the message of :meth:`peek` and release its view.
        BufferError, and the message stays, while something made from the
        view (a numpy array, ``memoryview(view)``) still exists. OSError
        ESTALE (pub/sub with overwrite) if the publisher wrote over the
        message meanwhile: it counts as lost, what was read may be torn."""
        view = self._peeked
        if view is None:
            raise ValueError("release() without peek()")
        view.release()
        self._peeked = None
        check(lib.ashm_chan_release(self._h()), "ashm_chan_release")

    def stat(self) -> ChannelStat:
        """Describe the channel: geometry, live peers, counts, places."""
        if self._region is None:
            raise ValueError("operation on a closed channel")
        return Channel.stat_region(self._region)
