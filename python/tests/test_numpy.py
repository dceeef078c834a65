# SPDX-License-Identifier: MIT
"""numpy arrays over regions, with no copy."""
from __future__ import annotations

import pytest

import ashm

np = pytest.importorskip("numpy")


def test_frombuffer_is_zero_copy() -> None:
    with ashm.Region.create("py-numpy", 1 << 20) as r:
        view = r.map()
        a = np.frombuffer(view, dtype=np.float64)
        assert a.size == (1 << 20) // 8
        assert not a.flags.owndata and a.flags.writeable
        # The array's memory is the mapping's: same address, no copy.
        addr = a.__array_interface__["data"][0]
        b = np.frombuffer(view, dtype=np.uint8)
        assert b.__array_interface__["data"][0] == addr
        a[:] = np.arange(a.size)
        assert r.read(8, 8) == np.float64(1).tobytes()  # written through the array, seen in the file
        r.write(0, np.float64(42).tobytes())
        assert a[0] == 42  # and the other way round
        del a, b
        view.release()


def test_readonly_view_gives_readonly_array() -> None:
    with ashm.Region.create("py-numpy-ro", 4096) as r:
        a = np.frombuffer(r.map(writable=False), dtype=np.uint8)
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a[0] = 1


def test_array_keeps_mapping_alive() -> None:
    r = ashm.Region.create("py-numpy-alive", 4096)
    a = np.frombuffer(r.map(), dtype=np.uint32)
    a[:] = 7
    r.close()
    assert int(a.sum()) == 7 * 1024  # still mapped: the array holds the view
    del a
