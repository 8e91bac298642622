"""Block-granular instruction counting and memory watches: the native hooks
and their Python twins.

Role: give the CPU an always-up-to-date count of retired guest instructions
at translated-block granularity (``total``), plus the facts needed to make it
exact at any stop (the last block entered).  See ``_icount.c`` for the
native hook; ``PyCounter`` below is the same algorithm in Python, used when
the extension is not built or when asked for (``RRDBG_ICOUNT=python``).

Memory watches (``make_watch``): a callback for the guest accesses that
overlap a watched range, with the exact range checked in C (natively) or in
the hook (the twin); both call the callback for exactly the same accesses.

Invariants shared by both counter implementations:
- ``total`` counts every instruction of every block whose hook returned
  without stopping; a block the hook stops at is *not* executed.
- A block is known by (address, size); an unknown one stops the engine with
  ``stop_reason == STOP_UNKNOWN`` so Python can decode it and resume.
- ``total + icount(block) > limit`` stops the engine with ``STOP_LIMIT``.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import struct
from collections.abc import Callable
from typing import Protocol

from rrdbg.errors import EmulatorError
from rrdbg.machine.engine import BLOCK_HOOK_CFUNC, EMU_STOP_ADDRESS, TLB_FILL_CFUNC, Engine

STOP_NONE = 0
STOP_LIMIT = 1
STOP_UNKNOWN = 2
NO_LIMIT = (1 << 64) - 1
_MAX_SIZE = 0x7FFF
_MAX_ICOUNT = 0xFFFF


class Counter(Protocol):
    """What the CPU needs from a block counter (both implementations)."""

    total: int
    limit: int
    last_addr: int
    last_size: int
    last_icount: int
    stop_reason: int
    stop_addr: int
    stop_size: int
    #: Blocks decoded so far (by the hook itself or by the CPU's slow path).
    learned: int

    def set_entry(self, addr: int, size: int, icount: int) -> bool: ...
    def pass_once(self, addr: int, size: int, icount: int) -> None: ...
    def forget(self, lo: int, hi: int) -> None: ...
    def forget_all(self) -> None: ...
    def set_cacheable(self, lo: int, hi: int, flag: bool, /) -> None: ...
    def set_io_check(self, flag: bool, /) -> None: ...
    def entries(self) -> bytes: ...


class PyCounter:
    """Pure-Python block counter with the native counter's exact semantics."""

    def __init__(self, engine: Engine) -> None:
        self.total = 0
        self.limit = NO_LIMIT
        self.last_addr = 0
        self.last_size = 0
        self.last_icount = 0
        self.stop_reason = STOP_NONE
        self.stop_addr = 0
        self.stop_size = 0
        self.learned = 0
        self._table: dict[int, tuple[int, int]] = {}
        self._pass: tuple[int, int, int] | None = None
        stop = engine.stop

        # A closure over locals keeps the per-block cost as low as Python allows.
        def hook(_uc: int | None, address: int, size: int, _ud: int | None) -> None:
            entry = self._table.get(address)
            if entry is not None and entry[0] == size:
                n = entry[1]
            elif self._pass is not None and self._pass[:2] == (address, size):
                n = self._pass[2]
                self._pass = None
            else:
                self.stop_reason = STOP_UNKNOWN
                self.stop_addr = address
                self.stop_size = size
                stop()
                return
            if self.total + n > self.limit:
                self.stop_reason = STOP_LIMIT
                self.stop_addr = address
                self.stop_size = size
                stop()
                return
            self.total += n
            self.last_addr = address
            self.last_size = size
            self.last_icount = n

        self._cfunc = BLOCK_HOOK_CFUNC(hook)
        self.hook_handle = engine.hook_block_raw(
            ctypes.cast(self._cfunc, ctypes.c_void_p).value or 0, 0
        )

    def set_entry(self, addr: int, size: int, icount: int) -> bool:
        # Same representability limits as the native table, so both agree.
        if addr > 0xFFFFFFFF or size > _MAX_SIZE or icount > _MAX_ICOUNT:
            return False
        self._table[addr] = (size, icount)
        return True

    def pass_once(self, addr: int, size: int, icount: int) -> None:
        self._pass = (addr, size, icount)

    def forget(self, lo: int, hi: int) -> None:
        for addr in [a for a in self._table if lo <= a < hi]:
            del self._table[addr]
        self._pass = None

    def forget_all(self) -> None:
        self._table.clear()
        self._pass = None

    def set_cacheable(self, lo: int, hi: int, flag: bool, /) -> None:
        """Unused: the Python counter learns blocks through the CPU's slow path."""

    def set_io_check(self, flag: bool, /) -> None:
        """Unused: the Python counter learns blocks through the CPU's slow path."""

    def entries(self) -> bytes:
        return b"".join(
            struct.pack("<III", addr, size, n) for addr, (size, n) in sorted(self._table.items())
        )


def native_available() -> bool:
    """Whether the C extension was built for this interpreter."""
    try:
        from rrdbg.machine import _icount  # noqa: F401
    except ImportError:
        return False
    return True


def make_counter(engine: Engine, native: bool | None = None) -> tuple[Counter, bool, int]:
    """Create and register the block counter.

    Returns the counter, whether it is the native one, and the hook handle.

    ``native=None`` picks the C hook when built, unless the environment
    variable ``RRDBG_ICOUNT=python`` asks for the fallback.
    """
    if native is None:
        native = os.environ.get("RRDBG_ICOUNT", "") != "python" and native_available()
    if native:
        from rrdbg.machine import _icount

        counter = _icount.NativeCounter(EMU_STOP_ADDRESS)
        handle = engine.hook_block_raw(counter.hook_address, counter.user_data)
        engine.keep_alive(counter)
        return counter, True, handle
    py = PyCounter(engine)
    return py, False, py.hook_handle


#: Unicorn's uc_mem_type values for the accesses a TLB fill is asked about.
MEM_READ = 16
MEM_WRITE = 17
MEM_FETCH = 18
_PAGE_SHIFT = 12


class Pages(Protocol):
    """The guest's page permissions as the TLB fill hook sees them (both twins).

    The hook answers each fill with the identity address and the page's
    PROT_* bits; Unicorn raises a precise fault when they do not allow the
    access, and ``take_fault`` then says which access it was.  Fetches are
    always allowed (see ``_icount.c``).  Trap bits (``set_traps``) are
    withheld from every fill of their pages: an access they refuse is
    reported with ``trapped`` true when the page's own bits allow it.
    """

    @property
    def fills(self) -> int: ...

    def set_perms(self, lo: int, hi: int, perms: int, /) -> None: ...
    def set_traps(self, lo: int, hi: int, bits: int, /) -> None: ...
    def take_fault(self) -> tuple[int, int, bool] | None: ...


class _TlbEntry(ctypes.Structure):
    _fields_ = [("paddr", ctypes.c_uint64), ("perms", ctypes.c_int)]


class PyPages:
    """Pure-Python twin of ``_icount.NativePages`` (same answers, slower fills)."""

    def __init__(self, engine: Engine) -> None:
        self._fills = 0
        self._perms = bytearray(1 << (32 - _PAGE_SHIFT))
        self._traps = bytearray(1 << (32 - _PAGE_SHIFT))
        self._fault: tuple[int, int, bool] | None = None
        perms, traps = self._perms, self._traps
        need = {MEM_READ: 1, MEM_WRITE: 2}

        def hook(_uc: int | None, vaddr: int, kind: int, entry: int, _ud: int | None) -> bool:
            self._fills += 1
            e = _TlbEntry.from_address(entry)
            e.paddr = vaddr
            inside = vaddr < 1 << 32
            trap = traps[vaddr >> _PAGE_SHIFT] if inside else 0
            if kind == MEM_FETCH:
                e.perms = 7 & ~trap
                return True
            bits = perms[vaddr >> _PAGE_SHIFT] if inside else 0
            e.perms = bits & ~trap
            want = need.get(kind, 0)
            if e.perms & want != want:
                self._fault = (kind, vaddr, bits & want == want)
            return True

        self._cfunc = TLB_FILL_CFUNC(hook)
        engine.hook_tlb_fill_raw(ctypes.cast(self._cfunc, ctypes.c_void_p).value or 0, 0)

    @property
    def fills(self) -> int:
        return self._fills

    def set_perms(self, lo: int, hi: int, perms: int, /) -> None:
        first, last = lo >> _PAGE_SHIFT, (min(hi, 1 << 32) + (1 << _PAGE_SHIFT) - 1) >> _PAGE_SHIFT
        self._perms[first:last] = bytes([perms]) * (last - first)

    def set_traps(self, lo: int, hi: int, bits: int, /) -> None:
        first, last = lo >> _PAGE_SHIFT, (min(hi, 1 << 32) + (1 << _PAGE_SHIFT) - 1) >> _PAGE_SHIFT
        self._traps[first:last] = bytes([bits & 3]) * (last - first)

    def take_fault(self) -> tuple[int, int, bool] | None:
        fault, self._fault = self._fault, None
        return fault


def make_pages(engine: Engine, native: bool) -> Pages:
    """Put ``engine`` in virtual-TLB mode with a page-permission fill hook."""
    pages: Pages
    if native:
        from rrdbg.machine import _icount

        np = _icount.NativePages()
        engine.hook_tlb_fill_raw(np.hook_address, np.user_data)
        engine.keep_alive(np)
        pages = np
    else:
        pages = PyPages(engine)
        engine.keep_alive(pages)
    engine.set_virtual_tlb()
    return pages


#: capstone 5's CS_ARCH_X86 and CS_MODE_32 (pyproject.toml pins capstone 5).
_CS_ARCH_X86, _CS_MODE_32, _CS_MAJOR = 3, 4, 5


def _capstone_library() -> ctypes.CDLL:
    """capstone's C library.  Loaded from the Python package's own copy
    without importing the package: its Python modules (every architecture's
    constants) take about 25 ms to import, a tenth of a short run.  Any
    other layout goes through the package's own search."""
    spec = importlib.util.find_spec("capstone")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(folder, "lib", "libcapstone.so")
        if os.path.exists(path):
            lib = ctypes.CDLL(path)
            if lib.cs_version(None, None) >> 8 == _CS_MAJOR:
                return lib
    import capstone

    found: ctypes.CDLL = capstone._cs
    if found.cs_version(None, None) >> 8 != _CS_MAJOR:
        raise EmulatorError("capstone 5 is needed (pip install 'capstone>=5.0.1,<6')")
    return found


class NativeDecoder:
    """A capstone handle and instruction buffer for the C hook's own decoding."""

    def __init__(self) -> None:
        lib = _capstone_library()
        self._handle = ctypes.c_size_t()
        if lib.cs_open(_CS_ARCH_X86, _CS_MODE_32, ctypes.byref(self._handle)):
            raise EmulatorError("cannot open a capstone handle")
        lib.cs_malloc.restype = ctypes.c_void_p
        lib.cs_malloc.argtypes = [ctypes.c_size_t]
        self.insn = lib.cs_malloc(self._handle) or 0
        self.disasm_iter = ctypes.cast(lib.cs_disasm_iter, ctypes.c_void_p).value or 0
        if not self.insn or not self.disasm_iter:
            raise EmulatorError("cannot set up capstone for the native hook")

    @property
    def handle(self) -> int:
        return int(self._handle.value)


def attach_native_decoder(counter: Counter, host_base: int, engine: Engine) -> bool:
    """Let a native counter decode new blocks (no stop, no Python) and count
    instructions in a block's prefix (``count_prefix``); False for the twin."""
    if not hasattr(counter, "set_decoder"):
        return False
    decoder = NativeDecoder()
    engine.keep_alive(decoder)
    counter.set_decoder(host_base, decoder.handle, decoder.disasm_iter, decoder.insn)
    return True


#: Unicorn compares a memory hook's bounds with an access's first byte; the
#: widest single access (an SSE store) starts this far below a range it overlaps.
WATCH_REACH = 16


class MemoryWatch:
    """A registered memory watch: ``callback(address, size)`` for every guest
    read (or write) that overlaps [lo, hi) as Unicorn reports accesses (a
    load crossing a page is also reported as its aligned halves)."""

    def __init__(
        self,
        engine: Engine,
        native: bool,
        *,
        write: bool,
        lo: int,
        hi: int,
        callback: Callable[[int, int], None],
    ) -> None:
        if hi <= lo:
            raise EmulatorError(f"empty watch range [{lo:#x}, {hi:#x})")
        self._engine = engine
        self.native = native
        begin, end = max(lo - WATCH_REACH, 0), hi - 1
        if native:
            from rrdbg.machine import _icount

            self._native = _icount.NativeWatch(lo, hi, callback)
            self.handle = engine.hook_mem_raw(
                write=write,
                fn_address=self._native.hook_address,
                user_data=self._native.user_data,
                begin=begin,
                end=end,
            )
            return

        def hook(_uc: object, _access: int, address: int, size: int, _v: int, _d: object) -> None:
            if address < hi and address + size > lo:
                callback(address, size)

        self.handle = engine.hook_mem(write=write, callback=hook, begin=begin, end=end)

    def remove(self) -> None:
        if self.native:
            self._engine.hook_del_raw(self.handle)
        else:
            self._engine.hook_del(self.handle)
