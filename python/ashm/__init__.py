# SPDX-License-Identifier: MIT
"""ashm: anonymous shared memory for Linux (Android's Ashmem in userspace).

A Python face for libashm, through ctypes (no compiler needed)::

    import ashm, numpy as np
    with ashm.Region.create("frames", 64 << 20) as r:
        a = np.frombuffer(r.map(), dtype=np.float32)   # zero-copy
        a[:] = 1.0
        ashm.send_region(sock, r, b"frames")           # the fd travels

Regions live only as file descriptors: nothing is left in /dev/shm when a
process dies. They pass to other processes by fd (AF_UNIX sockets,
``multiprocessing`` pickling) or by name through ashmd (:func:`publish`,
:func:`lookup`), can be frozen (sealed read-only for everybody), have
their write permission removed, and be unpinned so the system may purge
them under memory pressure. :class:`KV` is the cross-process key-value
store as a ``MutableMapping``.

Every failure of the library raises ``OSError`` carrying its errno, as the
matching subclass (FileNotFoundError for ENOENT, PermissionError for
EPERM/EACCES, FileExistsError for EEXIST, ...), with the library's detail
text in the message and in its ``detail`` attribute when it has one.

The library loaded is ``$ASHM_LIBRARY`` if set (a build tree's
``libashm.so.0``), else the installed ``libashm.so.0``.

:class:`Mutex` is the robust cross-process lock (a dead owner is reported
to the next locker), :func:`wait`/:func:`wake` wait on a 32-bit word of a
mapping, and :class:`Channel` carries messages between processes through a
region (queue or pub/sub, copying or zero-copy, pollable).
"""
from __future__ import annotations

from ._kv import KV, CheckReport, Damage
from ._lib import lib as _cdll
from ._chan import (CHAN_CONSUMER, CHAN_OVERWRITE, CHAN_PRODUCER, CHAN_PUBLISHER, CHAN_PUBSUB, CHAN_QUEUE,
                    CHAN_SUBSCRIBER, Channel, ChannelPeer, ChannelStat)
from ._region import (PROT_EXEC, PROT_READ, PROT_WRITE, REGION_EXEC, Name, Region, lookup, names, publish, purge,
                      recv_region, send_region, unpublish)
from ._sync import MUTEX_ALIGN, MUTEX_SIZE, Mutex, wait, wake


def library_version() -> str:
    """The version of the libashm loaded, e.g. "0.3.0"."""
    return _cdll.ashm_version().decode()


__version__ = "0.3.0"

__all__ = [
    "Region", "REGION_EXEC", "PROT_READ", "PROT_WRITE", "PROT_EXEC",
    "send_region", "recv_region",
    "publish", "lookup", "unpublish", "names", "Name", "purge",
    "KV", "CheckReport", "Damage",
    "library_version",
    "Mutex", "MUTEX_SIZE", "MUTEX_ALIGN", "wait", "wake",
    "Channel", "ChannelStat", "ChannelPeer", "CHAN_QUEUE", "CHAN_PUBSUB", "CHAN_OVERWRITE",
    "CHAN_PRODUCER", "CHAN_CONSUMER", "CHAN_PUBLISHER", "CHAN_SUBSCRIBER",
]
