# SPDX-License-Identifier: MIT
"""Regions in one process: properties, read/write, map, freeze, prot, pins."""
from __future__ import annotations

import errno
import mmap
import os

import pytest

import ashm

PAGE = mmap.PAGESIZE


def test_create_properties() -> None:
    with ashm.Region.create("py-props", 10000) as r:
        assert r.name == "py-props"
        assert r.size == 10000
        assert r.prot == ashm.PROT_READ | ashm.PROT_WRITE
        assert not r.frozen
        assert r.fd >= 0 and r.fileno() == r.fd
        assert os.readlink(f"/proc/self/fd/{r.fd}").startswith("/memfd:py-props")
        assert r.read(0, 16) == bytes(16)  # zeros
        assert "py-props" in repr(r)
    assert r.closed and "closed" in repr(r)


def test_exec_flag() -> None:
    with ashm.Region.create(None, PAGE, flags=ashm.REGION_EXEC) as r:
        assert r.name == "ashm"
        assert r.prot & ashm.PROT_EXEC


def test_read_write() -> None:
    with ashm.Region.create("py-rw", 100) as r:
        r.write(10, b"hello")
        r.write(20, bytearray(b"array"))
        r.write(30, memoryview(b"..view..")[2:6])
        assert r.read(10, 5) == b"hello"
        assert r.read(20, 5) == b"array"
        assert r.read(30, 4) == b"view"
        assert os.pread(r.fd, 5, 10) == b"hello"  # the fd is a plain file
        r.write(95, b"12345")  # up to the end
        with pytest.raises(OSError) as e:
            r.write(96, b"12345")
        assert e.value.errno == errno.EINVAL
        with pytest.raises(OSError) as e:
            r.read(0, 101)
        assert e.value.errno == errno.EINVAL


def test_map_shares_memory() -> None:
    with ashm.Region.create("py-map", 3 * PAGE) as r:
        v = r.map()
        assert isinstance(v, memoryview) and v.format == "B" and len(v) == 3 * PAGE and not v.readonly
        v[0:4] = b"abcd"
        assert r.read(0, 4) == b"abcd"
        tail = r.map(PAGE, PAGE, writable=False)
        assert tail.readonly and len(tail) == PAGE
        r.write(PAGE, b"seen")
        assert bytes(tail[:4]) == b"seen"
        with pytest.raises(TypeError):
            tail[0] = 1
        with pytest.raises(OSError) as e:
            r.map(1)  # not page-aligned
        assert e.value.errno == errno.EINVAL
        v.release()
        tail.release()


def test_map_outlives_close() -> None:
    r = ashm.Region.create("py-outlive", PAGE)
    v = r.map()
    v[:2] = b"ok"
    r.close()
    assert bytes(v[:2]) == b"ok"  # the mapping holds the memory, as in C
    with pytest.raises(ValueError):
        r.size
    v.release()


def test_empty_region_map() -> None:
    with ashm.Region.create("py-empty", 0) as r:
        with pytest.raises(OSError) as e:
            r.map()
        assert e.value.errno == errno.EINVAL


def test_freeze() -> None:
    with ashm.Region.create("py-freeze", PAGE) as r:
        v = r.map()
        v[:5] = b"fixed"
        with pytest.raises(OSError) as e:
            r.freeze()  # a writable mapping exists
        assert e.value.errno == errno.EBUSY
        v.release()
        r.freeze()
        r.freeze()  # again: fine
        assert r.frozen
        with pytest.raises(PermissionError):
            r.write(0, b"x")
        with pytest.raises(PermissionError):
            r.map()
        with pytest.raises(PermissionError):
            os.pwrite(r.fd, b"x", 0)  # the kernel's seals, not ours
        ro = r.map(writable=False)
        assert bytes(ro[:5]) == b"fixed"
        ro.release()


def test_from_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "service.ini"
    p.write_text("[service]\nname = x\n")
    with ashm.Region.from_file(p) as r:
        assert r.frozen and r.name == "service.ini"
        assert r.read(0, r.size) == p.read_bytes()
    with ashm.Region.from_file(str(p), "cfg") as r:
        assert r.name == "cfg"
    with pytest.raises(FileNotFoundError):
        ashm.Region.from_file(tmp_path / "missing")


def test_set_prot() -> None:
    with ashm.Region.create("py-prot", PAGE) as r:
        r.set_prot(ashm.PROT_READ)
        assert r.prot == ashm.PROT_READ
        with pytest.raises(PermissionError):
            r.write(0, b"x")
        with pytest.raises(PermissionError):
            r.map()
        with pytest.raises(OSError) as e:
            r.set_prot(ashm.PROT_READ | ashm.PROT_WRITE)  # bits only go away
        assert e.value.errno == errno.EINVAL
        with r.dup() as d:  # the mask belongs to the region, not the handle
            assert d.prot == ashm.PROT_READ


def test_adopt() -> None:
    with ashm.Region.create("py-adopt", 64) as r:
        r.write(0, b"same")
        with ashm.Region.adopt(os.dup(r.fd)) as a:
            assert a.name == "py-adopt" and a.read(0, 4) == b"same"


def test_adopt_refuses_non_memfd() -> None:
    rd, wr = os.pipe()
    os.close(wr)
    with pytest.raises(OSError) as e:
        ashm.Region.adopt(rd)
    assert e.value.errno == errno.EMEDIUMTYPE
    with pytest.raises(OSError):
        os.fstat(rd)  # consumed: closed on failure, as the C API says
    with pytest.raises(OSError) as e:
        ashm.Region.adopt(rd)
    assert e.value.errno == errno.EBADF


def test_closed_region() -> None:
    r = ashm.Region.create("py-closed", 1)
    r.close()
    r.close()
    for op in (lambda: r.fd, lambda: r.read(0, 1), lambda: r.map(), lambda: r.pin()):
        with pytest.raises(ValueError):
            op()


def test_pins_without_purge(need_daemon) -> None:  # type: ignore[no-untyped-def]
    with ashm.Region.create("py-pins", 4 * PAGE) as r:
        assert r.pin_status()
        r.unpin(PAGE, PAGE)
        assert not r.pin_status()
        assert r.pin_status(0, PAGE)
        assert not r.pin_status(PAGE, PAGE)
        assert r.pin(PAGE, PAGE) is False  # nothing purged
        assert r.pin_status()
        with pytest.raises(OSError) as e:
            r.pin(1, PAGE)
        assert e.value.errno == errno.EINVAL


def test_purge(need_daemon) -> None:  # type: ignore[no-untyped-def]
    with ashm.Region.create("py-purge", 4 * PAGE) as r:
        r.write(0, b"x" * (4 * PAGE))
        r.unpin(0, 2 * PAGE)
        assert ashm.purge() >= 2 * PAGE
        with pytest.raises(OSError) as e:
            r.read(0, 1)  # Android's MemoryFile: purged pages cannot be read
        assert e.value.errno == errno.ENODATA
        assert r.pin() is True
        assert r.read(0, 2 * PAGE) == bytes(2 * PAGE)  # purged pages read as zeros
        assert r.read(2 * PAGE, 4) == b"xxxx"  # pinned pages kept


def test_errors_are_oserror_subclasses() -> None:
    with pytest.raises(OSError) as e:
        ashm.Region.create("x" * 300, 1)
    assert e.value.errno == errno.ENAMETOOLONG
    assert "ashm_region_create" in str(e.value)
    with pytest.raises(ValueError):
        ashm.Region.create("nul\0", 1)
    with pytest.raises(OSError) as e:
        ashm.Region.create("x", 1, flags=1 << 20)
    assert e.value.errno == errno.EINVAL


def test_library_version() -> None:
    assert ashm.library_version() == ashm.__version__
