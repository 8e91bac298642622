"""Guest memory: one host reservation backs the whole 4 GiB i386 address space.

Role: keep the guest's memory map (page-aligned regions with Linux-style
PROT_* permissions) and mirror it into Unicorn with ``mem_map_ptr``.

Invariants:
- Guest address ``a`` always lives at host address ``host_base + a``: a region
  can be split, re-protected or re-mapped without copying, and the whole guest
  RAM is one buffer that snapshots can diff page by page.
- Every rrdbg region is exactly one Unicorn region (we split regions
  ourselves instead of relying on Unicorn's partial unmap).
- Unmapped ranges read as zero when mapped again (MADV_DONTNEED, or a fresh
  anonymous host mapping over a range that was shared), as a fresh anonymous
  mapping does on Linux.
- After ``fork_into`` the two address spaces share their pages copy-on-write:
  host ranges are private mappings of memory files that are never written
  after they are made, so the host kernel copies a page only when a side
  writes it, and a page still mapped from a file holds that file's bytes.
  Host addresses never move, so Unicorn's pointers stay valid.
"""

from __future__ import annotations

import bisect
import ctypes
import mmap
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rrdbg.errors import EmulatorError, GuestMemoryError
from rrdbg.machine.engine import Engine

PAGE = 0x1000
ADDRESS_SPACE = 1 << 32
PROT_READ = 1
PROT_WRITE = 2
PROT_EXEC = 4
_MAP_NORESERVE = 0x4000  # Linux values; Python's mmap module does not export them
_MAP_FIXED = 0x10
#: fork shares contents in blocks of this size (zero blocks are skipped: a
#: fresh mapping reads as zero anyway).
_SHARE_BLOCK = 1 << 16
_ZERO = bytes(_SHARE_BLOCK)
#: Blocks of a new file closer than this share one host mapping (the hole
#: between reads as zero), so that a process keeps few host mappings.
_SHARE_GAP = 1 << 20
#: An address space mapping more files than this is copied whole into the
#: next fork's file (bounds the host's mappings and descriptors).
_MAX_FILES = 16
#: /proc/self/pagemap: the top byte of an entry has bit 7 "present", bit 6
#: "swapped", bit 5 "file page".  A page of a private file mapping that is
#: present but not a file page, or swapped, was written since the file was
#: mapped; any other page still reads the file's bytes.
_WRITTEN = bytes(1 if (b & 0x40) or (b & 0xA0) == 0x80 else 0 for b in range(256))

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int64,
]


class _MemFile:
    """A memory file holding an address space's non-zero blocks as they
    were at one fork, at offset = guest address; never written afterwards.
    Closed when no address space maps it any more."""

    __slots__ = ("fd",)

    def __init__(self) -> None:
        self.fd = -1  # (set first: __del__ runs even when memfd_create fails)
        self.fd = os.memfd_create("rrdbg-fork", os.MFD_CLOEXEC)

    def __del__(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)


@dataclass(slots=True)
class _Span:
    """Guest [lo, hi) whose host pages are a private mapping of ``file``."""

    lo: int
    hi: int
    file: _MemFile


_pagemap_ok: bool | None = None


def _pagemap_works() -> bool:
    """Whether /proc/self/pagemap tells pages written in a private file
    mapping from the others, tried once on a mapping of our own (a sandbox
    may show the file but zero the flags: then forks copy instead)."""
    global _pagemap_ok
    if _pagemap_ok is None:
        _pagemap_ok = False
        try:
            fd = os.memfd_create("rrdbg-probe", os.MFD_CLOEXEC)
            try:
                os.ftruncate(fd, 2 * PAGE)
                os.pwrite(fd, b"\1" * 2 * PAGE, 0)
                probe = mmap.mmap(fd, 2 * PAGE, flags=mmap.MAP_PRIVATE)
                try:
                    probe[0] = 2  # written: an anonymous copy now
                    _ = probe[PAGE]  # read: still the file's page
                    base = ctypes.addressof(ctypes.c_char.from_buffer(probe))
                    with open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
                        data = os.pread(pagemap.fileno(), 16, 8 * (base // PAGE))
                    flags = data[7::8].translate(_WRITTEN)
                    _pagemap_ok = flags == b"\1\0"
                finally:
                    probe.close()
            finally:
                os.close(fd)
        except (OSError, ValueError, BufferError):
            _pagemap_ok = False
    return _pagemap_ok


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
        #: Host ranges that are private mappings of fork files, sorted
        #: (MADV_DONTNEED there would bring back the file's bytes, not zeros).
        self._spans: list[_Span] = []
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
            if self._spans and self._span_overlap(lo, hi):
                self._host_map(lo, hi)
            else:
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
        for span in list(self._spans):  # what is left lies outside every region
            self._host_map(span.lo, span.hi)

    # -- fork ----------------------------------------------------------
    def fork_into(self, target: GuestMemory, below: int) -> None:
        """fork's copy: ``target`` gets every region below ``below`` (with
        its permissions and name) and its contents, shared copy-on-write.

        A block still mapped from an earlier fork's file and not written
        since is mapped from that file into ``target`` too (nothing copied);
        every other non-zero block goes once into a new file that both sides
        then map.  Writes on either side copy just the page written (the
        host kernel does it, below Unicorn).  Where the host has no memory
        files, or no pagemap to tell written pages, the contents are copied.
        """
        plan: list[tuple[int, int, _MemFile | None]] = []  # None: the new file
        fresh: list[tuple[int, int]] = []  # blocks for the new file
        files = {id(span.file) for span in self._spans}
        # (Past _MAX_FILES, or without a pagemap to trust, the blocks are
        # copied into the new file and the old files let go of.)
        written = self._written_pages() if len(files) < _MAX_FILES else None
        for r in self._regions:
            if r.start >= below:
                break
            target.map(r.start, r.size, r.perms, r.name)
            for lo in range(r.start, r.end, _SHARE_BLOCK):
                hi = min(lo + _SHARE_BLOCK, r.end)
                span = self._span_at(lo)
                source: _MemFile | None
                if (
                    written is not None
                    and span is not None
                    and span.hi >= hi
                    and 1 not in written[span.lo][(lo - span.lo) // PAGE : (hi - span.lo) // PAGE]
                ):
                    source = span.file
                # (bytes compare with memcmp; a memoryview compares item by item)
                elif self._mm[lo:hi] != _ZERO[: hi - lo]:
                    source = None
                    fresh.append((lo, hi))
                else:
                    if span is not None:
                        self._host_map(lo, hi)  # zeros: no old file kept for them
                    continue
                if (
                    plan
                    and plan[-1][2] is source
                    and (plan[-1][1] == lo or (source is None and lo - plan[-1][1] < _SHARE_GAP))
                ):
                    plan[-1] = (plan[-1][0], hi, source)
                else:
                    plan.append((lo, hi, source))
        if not plan:
            return
        new: _MemFile | None = None
        if fresh:
            try:
                new = _MemFile()
                os.ftruncate(new.fd, fresh[-1][1])
                for lo, hi in fresh:
                    at = lo
                    while at < hi:
                        at += os.pwrite(new.fd, self._view[at:hi], at)
            except OSError:
                new = None  # no memory files here: copy instead
        for lo, hi, source in plan:
            if source is not None:
                target._host_map(lo, hi, source)
            elif new is not None:
                self._host_map(lo, hi, new)
                target._host_map(lo, hi, new)
        if new is None:
            for lo, hi in fresh:
                target.load_raw(lo, self._view[lo:hi])

    def _written_pages(self) -> dict[int, bytes] | None:
        """For each fork-file span (by its start), a byte per page: 1 if the
        page was written since the file was mapped (None when the host shows
        no pagemap)."""
        out: dict[int, bytes] = {}
        if not self._spans:
            return out
        if not _pagemap_works():
            return None
        try:
            with open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
                for span in self._spans:
                    first = (self.host_base + span.lo) // PAGE
                    data = os.pread(pagemap.fileno(), 8 * (span.hi - span.lo) // PAGE, 8 * first)
                    out[span.lo] = data[7::8].translate(_WRITTEN)
        except OSError:
            return None
        return out

    def _span_at(self, addr: int) -> _Span | None:
        i = bisect.bisect_right(self._spans, addr, key=lambda s: s.lo) - 1
        if i >= 0 and self._spans[i].lo <= addr < self._spans[i].hi:
            return self._spans[i]
        return None

    def _span_overlap(self, lo: int, hi: int) -> bool:
        i = max(bisect.bisect_right(self._spans, lo, key=lambda s: s.lo) - 1, 0)
        for span in self._spans[i:]:
            if span.lo >= hi:
                break
            if span.hi > lo:
                return True
        return False

    def _host_map(self, lo: int, hi: int, file: _MemFile | None = None) -> None:
        """Put a new private host mapping at guest [lo, hi): of ``file`` (at
        offset lo) or, without one, anonymous zeros."""
        flags = mmap.MAP_PRIVATE | _MAP_FIXED | _MAP_NORESERVE
        flags |= mmap.MAP_ANONYMOUS if file is None else 0
        prot = mmap.PROT_READ | mmap.PROT_WRITE
        fd = -1 if file is None else file.fd
        got = _libc.mmap(self.host_base + lo, hi - lo, prot, flags, fd, lo if file else 0)
        if got != self.host_base + lo:
            reason = os.strerror(ctypes.get_errno())
            raise EmulatorError(f"cannot map host memory for guest {lo:#x}-{hi:#x}: {reason}")
        # The span list follows: what [lo, hi) covered is cut out, the new span goes in.
        kept: list[_Span] = []
        for span in self._spans:
            if span.hi <= lo or span.lo >= hi:
                kept.append(span)
                continue
            if span.lo < lo:
                kept.append(_Span(span.lo, lo, span.file))
            if hi < span.hi:
                kept.append(_Span(hi, span.hi, span.file))
        if file is not None:
            kept.append(_Span(lo, hi, file))
        kept.sort(key=lambda s: s.lo)
        self._spans = kept

    def view(self, addr: int, size: int) -> memoryview:
        """Direct view of guest memory (no checks; for snapshots and hashing)."""
        return self._view[addr : addr + size]
