"""Guest memory: one host reservation backs the whole 4 GiB i386 address space.

Role: keep the guest's memory map (page-aligned regions with Linux-style
PROT_* permissions) and mirror it into Unicorn with ``mem_map_ptr``.

Invariants:
- Guest address ``a`` always lives at host address ``host_base + a``: a region
  can be split, re-protected or re-mapped without copying, and the whole guest
  RAM is one buffer that snapshots can diff page by page.
- Every rrdbg region is exactly one Unicorn region (we split regions
  ourselves instead of relying on Unicorn's partial unmap).
- Unmapped ranges read as zero when mapped again (MADV_DONTNEED), as a fresh
  anonymous mapping does on Linux.
"""

from __future__ import annotations

import bisect
import ctypes
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rrdbg.errors import GuestMemoryError
from rrdbg.machine.engine import Engine

PAGE = 0x1000
ADDRESS_SPACE = 1 << 32
PROT_READ = 1
PROT_WRITE = 2
PROT_EXEC = 4
_MAP_NORESERVE = 0x4000  # Linux value; Python's mmap module does not export it


def page_down(x: int) -> int:
    return x & ~(PAGE - 1)


def page_up(x: int) -> int:
    return (x + PAGE - 1) & ~(PAGE - 1)


@dataclass(slots=True)
class Region:
    """A mapped range [start, end) with PROT_* permissions."""

    start: int
    end: int
    perms: int
    name: str

    @property
    def size(self) -> int:
        return self.end - self.start


def perms_text(perms: int) -> str:
    return "".join(
        c if perms & bit else "-"
        for c, bit in (("r", PROT_READ), ("w", PROT_WRITE), ("x", PROT_EXEC))
    )


class GuestMemory:
    """The guest's address space, backed by one host mapping."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._mm = mmap.mmap(
            -1, ADDRESS_SPACE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE
        )
        self.host_base = ctypes.addressof(ctypes.c_char.from_buffer(self._mm))
        self._view = memoryview(self._mm)
        self._regions: list[Region] = []  # sorted by start, non-overlapping
        self._starts: list[int] = []
        #: Called with (lo, hi) when host-side writes touch executable memory,
        #: so translated code and cached block counts can be dropped.
        self.on_code_change: Callable[[int, int], None] = lambda lo, hi: None
        #: Called with (lo, hi, perms) whenever the permissions of [lo, hi)
        #: change (perms 0 when unmapped).
        self.on_perms_change: Callable[[int, int, int], None] = lambda lo, hi, perms: None

    # -- the map -------------------------------------------------------
    def regions(self) -> Iterator[Region]:
        return iter(list(self._regions))

    def region_at(self, addr: int) -> Region | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and self._regions[i].start <= addr < self._regions[i].end:
            return self._regions[i]
        return None

    def overlapping(self, start: int, end: int) -> list[Region]:
        """The regions that overlap [start, end), in address order."""
        return self._overlapping(start, end)

    def is_free(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self._starts, end)
        return i == 0 or self._regions[i - 1].end <= start

    def _insert(self, region: Region) -> None:
        i = bisect.bisect_left(self._starts, region.start)
        self._regions.insert(i, region)
        self._starts.insert(i, region.start)
        self._engine.mem_map_ptr(
            region.start, region.size, region.perms, self.host_base + region.start
        )
        self.on_perms_change(region.start, region.end, region.perms)

    def _remove(self, region: Region) -> None:
        i = self._regions.index(region)
        del self._regions[i]
        del self._starts[i]
        self._engine.mem_unmap(region.start, region.size)
        self.on_perms_change(region.start, region.end, 0)

    def _overlapping(self, start: int, end: int) -> list[Region]:
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        out = []
        for r in self._regions[i:]:
            if r.start >= end:
                break
            if r.end > start:
                out.append(r)
        return out

    def map(self, start: int, size: int, perms: int, name: str = "") -> None:
        """Map [start, start+size) zero-filled; replaces whatever was there."""
        end = page_up(start + size)
        start = page_down(start)
        if start >= end or end > ADDRESS_SPACE:
            raise GuestMemoryError(f"cannot map {start:#x}+{size:#x}", start)
        self.unmap(start, end - start)
        self._insert(Region(start, end, perms, name))

    def unmap(self, start: int, size: int) -> None:
        """Unmap [start, start+size); pages outside any region are ignored."""
        end = page_up(start + size)
        start = page_down(start)
        for r in self._overlapping(start, end):
            self._remove(r)
            if r.start < start:
                self._insert(Region(r.start, start, r.perms, r.name))
            if end < r.end:
                self._insert(Region(end, r.end, r.perms, r.name))
            lo, hi = max(r.start, start), min(r.end, end)
            self._mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
            if r.perms & PROT_EXEC:
                self.on_code_change(lo, hi)

    def protect(self, start: int, size: int, perms: int) -> None:
        """Change permissions of [start, start+size); every page must be mapped."""
        end = page_up(start + size)
        start = page_down(start)
        if not self.is_mapped(start, end - start):
            raise GuestMemoryError(f"range {start:#x}-{end:#x} is not mapped", start)
        for r in self._overlapping(start, end):
            if r.perms == perms:
                continue
            self._remove(r)
            lo, hi = max(r.start, start), min(r.end, end)
            if r.start < lo:
                self._insert(Region(r.start, lo, r.perms, r.name))
            self._insert(Region(lo, hi, perms, r.name))
            if hi < r.end:
                self._insert(Region(hi, r.end, r.perms, r.name))
            if (r.perms | perms) & PROT_EXEC:
                self.on_code_change(lo, hi)

    def is_mapped(self, start: int, size: int, perms: int = 0) -> bool:
        """Whether every byte of [start, start+size) is mapped with ``perms``."""
        end = start + size
        if size <= 0:
            return 0 <= start <= ADDRESS_SPACE
        pos = start
        for r in self._overlapping(start, end):
            if r.start > pos or (r.perms & perms) != perms:
                return False
            pos = r.end
            if pos >= end:
                return True
        return False

    def find_free(self, size: int, top: int, bottom: int = 0x10000) -> int | None:
        """Highest page-aligned address a with [a, a+size) free and below ``top``."""
        size = page_up(size)
        hi = top
        for r in reversed(self._regions):
            if r.start >= hi:
                hi = min(hi, r.start)
                continue
            if r.end <= hi - size and hi - size >= bottom:
                return hi - size
            hi = min(hi, r.start)
        if hi - size >= bottom:
            return hi - size
        return None

    # -- contents ------------------------------------------------------
    def read(self, addr: int, size: int, perms: int = PROT_READ) -> bytes:
        """Read guest bytes; raises GuestMemoryError if not accessible."""
        if not self.is_mapped(addr, size, perms):
            raise GuestMemoryError(f"cannot read {size} bytes at {addr:#x}", addr)
        return self._mm[addr : addr + size]

    def write(self, addr: int, data: bytes, perms: int = PROT_WRITE) -> None:
        """Write guest bytes as the kernel would (permission-checked)."""
        if not self.is_mapped(addr, len(data), perms):
            raise GuestMemoryError(f"cannot write {len(data)} bytes at {addr:#x}", addr)
        self.poke(addr, data)

    #: Called as (address, size) for every write made outside the CPU (the
    #: kernel's, through ``write``/``poke``); None almost always.  The
    #: timeline sets it while it looks for the last write to some memory.
    on_poke: Callable[[int, int], None] | None = None

    def poke(self, addr: int, data: bytes) -> None:
        """Write without a permission check (loader, debugger), mapped pages only."""
        if self.on_poke is not None:
            self.on_poke(addr, len(data))
        if not self.is_mapped(addr, len(data)):
            raise GuestMemoryError(f"cannot write {len(data)} bytes at {addr:#x}", addr)
        self._mm[addr : addr + len(data)] = data
        r = self.region_at(addr)
        if r is not None and r.perms & PROT_EXEC:
            self.on_code_change(addr, addr + len(data))

    def read_cstring(self, addr: int, limit: int = 4096) -> bytes:
        """Read a NUL-terminated string (without the NUL)."""
        out = bytearray()
        while len(out) < limit:
            chunk_end = min(page_up(addr + 1), addr + (limit - len(out)))
            chunk = self.read(addr, chunk_end - addr)
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                return bytes(out)
            out += chunk
            addr = chunk_end
        raise GuestMemoryError(f"string at {addr:#x} is too long", addr)

    def load_raw(self, addr: int, data: bytes | memoryview) -> None:
        """Write bytes straight into the backing store (snapshot restore).

        No mapping or permission check: the caller restores the map first and
        the bytes outside it are zero by construction.
        """
        self._mm[addr : addr + len(data)] = data

    def read_raw(self, addr: int, size: int) -> bytes:
        """A copy of the backing store's bytes (no mapping check)."""
        return self._mm[addr : addr + size]

    def unmap_all(self) -> None:
        for r in list(self._regions):
            self.unmap(r.start, r.size)

    def view(self, addr: int, size: int) -> memoryview:
        """Direct view of guest memory (no checks; for snapshots and hashing)."""
        return self._view[addr : addr + size]
