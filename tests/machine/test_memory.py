"""GuestMemory against a page-level model (hypothesis), plus the loader's stack layout."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from rrdbg.errors import GuestMemoryError
from rrdbg.machine.engine import Engine
from rrdbg.machine.host import SeededHost
from rrdbg.machine.loader import AT_PAGESZ, AT_RANDOM, STACK_TOP, build_stack, read_program
from rrdbg.machine.memory import PAGE, PROT_READ, PROT_WRITE, GuestMemory
from tests.conftest import guest

BASE = 0x10000000
PAGES = 16
perms_st = st.sampled_from([1, 3, 5, 7])
page_st = st.integers(0, PAGES - 1)


class MemoryMatchesPageModel(RuleBasedStateMachine):
    """Every map/unmap/protect leaves the same pages and bytes as a dict model."""

    def __init__(self) -> None:
        super().__init__()
        self.mem = GuestMemory(Engine())
        self.model: dict[int, int] = {}  # page index -> perms
        self.data: dict[int, int] = {}  # byte address -> value
        # After a fork: the other address space and what it must hold.
        self.other: tuple[GuestMemory, dict[int, int], dict[int, int]] | None = None

    @rule()
    def fork(self) -> None:
        child = GuestMemory(Engine())
        self.mem.fork_into(child, 1 << 32)
        self.other = (child, dict(self.model), dict(self.data))

    @rule()
    def switch(self) -> None:
        """Go on with the other side of a fork (the two must stay apart)."""
        if self.other is not None:
            mem, model, data = self.other
            self.other = (self.mem, self.model, self.data)
            self.mem, self.model, self.data = mem, model, data

    @rule(first=page_st, count=st.integers(1, 4), perms=perms_st)
    def map(self, first: int, count: int, perms: int) -> None:
        count = min(count, PAGES - first)
        self.mem.map(BASE + first * PAGE, count * PAGE, perms)
        for p in range(first, first + count):
            self.model[p] = perms
            for a in [a for a in self.data if a // PAGE == BASE // PAGE + p]:
                del self.data[a]

    @rule(first=page_st, count=st.integers(1, 4))
    def unmap(self, first: int, count: int) -> None:
        self.mem.unmap(BASE + first * PAGE, count * PAGE)
        for p in range(first, first + count):
            self.model.pop(p, None)
            for a in [a for a in self.data if a // PAGE == BASE // PAGE + p]:
                del self.data[a]

    @rule(first=page_st, count=st.integers(1, 4), perms=perms_st)
    def protect(self, first: int, count: int, perms: int) -> None:
        count = min(count, PAGES - first)
        pages = range(first, first + count)
        if all(p in self.model for p in pages):
            self.mem.protect(BASE + first * PAGE, count * PAGE, perms)
            for p in pages:
                self.model[p] = perms
        else:
            with pytest.raises(GuestMemoryError):
                self.mem.protect(BASE + first * PAGE, count * PAGE, perms)

    @rule(page=page_st, offset=st.integers(0, PAGE - 1), value=st.integers(0, 255))
    def poke(self, page: int, offset: int, value: int) -> None:
        addr = BASE + page * PAGE + offset
        if page in self.model:
            self.mem.poke(addr, bytes([value]))
            self.data[addr] = value
        else:
            with pytest.raises(GuestMemoryError):
                self.mem.poke(addr, bytes([value]))

    @invariant()
    def same_pages_and_bytes(self) -> None:
        sides = [(self.mem, self.model, self.data)]
        if self.other is not None:
            sides.append(self.other)
        for mem, model, data in sides:
            _check_against_model(mem, model, data)


def _check_against_model(mem: GuestMemory, model: dict[int, int], data: dict[int, int]) -> None:
    for p in range(PAGES):
        addr = BASE + p * PAGE
        mapped = p in model
        assert mem.is_mapped(addr, PAGE) == mapped
        region = mem.region_at(addr)
        assert (region.perms if region else None) == model.get(p)
        if mapped:
            page = mem.view(addr, PAGE).tobytes()
            expected = bytearray(PAGE)
            for a, v in data.items():
                if a // PAGE == addr // PAGE:
                    expected[a - addr] = v
            assert page == bytes(expected)
    regions = list(mem.regions())
    assert all(a.end <= b.start for a, b in itertools.pairwise(regions))


TestMemoryMatchesPageModel = MemoryMatchesPageModel.TestCase
TestMemoryMatchesPageModel.settings = settings(max_examples=40, stateful_step_count=25)


def _host_file_ranges(mem: GuestMemory) -> list[tuple[int, int]]:
    """Guest ranges whose host pages map a fork's memory file."""
    out = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and "rrdbg-fork" in fields[5]:
                lo, hi = (int(x, 16) - mem.host_base for x in fields[0].split("-"))
                if 0 <= lo < 1 << 32:
                    out.append((lo, hi))
    return out


def test_fork_shares_pages_copy_on_write() -> None:
    parent = GuestMemory(Engine())
    rw = PROT_READ | PROT_WRITE
    parent.map(0x100000, 0x400000, rw, "heap")  # 4 MiB, two written blocks far apart
    parent.map(0x800000, 0x10000, PROT_READ, "ro")  # never written: stays anonymous
    parent.poke(0x100000, b"first")
    parent.poke(0x4F0000, b"last")
    parent.map(0x9000000, PAGE, rw)
    parent.poke(0x9000000, b"x")
    child = GuestMemory(Engine())
    parent.fork_into(child, 0x9000000)  # the last region is not the child's
    assert [(r.start, r.end, r.perms, r.name) for r in child.regions()] == [
        (0x100000, 0x500000, rw, "heap"),
        (0x800000, 0x810000, PROT_READ, "ro"),
    ]
    # Both host ranges map one file where there is data (a gap over 1 MiB
    # between the two written blocks keeps two mappings).
    for side in (parent, child):
        assert _host_file_ranges(side) == [(0x100000, 0x110000), (0x4F0000, 0x500000)]
    child.poke(0x100000, b"CHILD")
    parent.poke(0x4F0000, b"PARENT")
    assert child.read(0x100000, 5) == b"CHILD" and parent.read(0x100000, 5) == b"first"
    assert parent.read(0x4F0000, 6) == b"PARENT" and child.read(0x4F0000, 4) == b"last"
    # Unmapping a shared range and mapping it again reads zeros, not the file.
    child.unmap(0x100000, 0x10000)
    child.map(0x100000, 0x10000, rw)
    assert child.read(0x100000, 5) == bytes(5) and parent.read(0x100000, 5) == b"first"
    child.unmap_all()
    assert _host_file_ranges(child) == []
    assert parent.read(0x4F0000, 6) == b"PARENT"


def _forked_once() -> tuple[GuestMemory, GuestMemory]:
    """A parent with two 64 KiB blocks of "A", and its first fork's child."""
    parent = GuestMemory(Engine())
    parent.map(0x100000, 0x20000, PROT_READ | PROT_WRITE)
    parent.poke(0x100000, b"A" * 0x20000)
    first = GuestMemory(Engine())
    parent.fork_into(first, 1 << 32)
    return parent, first


def test_a_second_fork_shares_what_the_first_shared_and_copies_what_changed() -> None:
    parent, first = _forked_once()
    # The region splits where no block of the first fork begins; a page of
    # the second part is written: the second fork must not share it from
    # the first fork's file.
    parent.protect(0x100000, 0x3000, PROT_READ)
    parent.poke(0x110000, b"B")
    second = GuestMemory(Engine())
    parent.fork_into(second, 1 << 32)
    assert second.read(0x110000, 2) == b"BA" and first.read(0x110000, 2) == b"AA"
    assert second.read(0x100000, 0x20000) == parent.read(0x100000, 0x20000)
    # The unwritten blocks come from the first file (one file for both
    # children there), the written one from a new file.
    first_file = {(lo, hi) for lo, hi in _host_file_ranges(first)}
    assert (0x100000, 0x120000) in first_file
    assert len(_host_file_ranges(second)) >= 2


def test_find_free_is_top_down_and_avoids_regions() -> None:
    mem = GuestMemory(Engine())
    mem.map(0x20000000, 2 * PAGE, PROT_READ)
    assert mem.find_free(PAGE, top=0x20002000) == 0x1FFFF000
    assert mem.find_free(PAGE, top=0x30000000) == 0x2FFFF000
    assert mem.find_free(0x1000_0000, top=0x1000_0000, bottom=0x1000) is None


def test_permission_checked_access() -> None:
    mem = GuestMemory(Engine())
    mem.map(0x5000, PAGE, PROT_READ)
    with pytest.raises(GuestMemoryError):
        mem.write(0x5000, b"x")
    mem.protect(0x5000, PAGE, PROT_READ | PROT_WRITE)
    mem.write(0x5000, b"hello\0")
    assert mem.read_cstring(0x5000) == b"hello"
    with pytest.raises(GuestMemoryError):
        mem.read(0x5FFF, 2)


def test_initial_stack_layout() -> None:
    program = read_program(guest("hello"))
    mem = GuestMemory(Engine())
    host = SeededHost(3, environ={"A": "1", "B": "two"})
    esp = build_stack(program, mem, host, [b"prog", b"x y"], hwcap=0x1234)
    assert esp % 16 == 0
    words = struct.unpack_from("<64I", mem.view(esp, 256))
    assert words[0] == 2
    assert mem.read_cstring(words[1]) == b"prog"
    assert mem.read_cstring(words[2]) == b"x y"
    assert words[3] == 0
    assert [mem.read_cstring(w) for w in words[4:6]] == [b"A=1", b"B=two"]
    assert words[6] == 0
    auxv = dict(zip(words[7::2], words[8::2], strict=False))
    assert auxv[AT_PAGESZ] == PAGE
    assert STACK_TOP - 64 <= auxv[AT_RANDOM] + 16 <= STACK_TOP
    assert bytes(mem.view(auxv[AT_RANDOM], 16)) == SeededHost(3).random_bytes(16)


def test_without_a_pagemap_forks_copy_and_let_old_files_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host whose pagemap cannot be trusted: every fork writes the blocks
    into its own file (same bytes on every side), and zero blocks no longer
    keep an earlier fork's file mapped."""
    from rrdbg.machine import memory

    monkeypatch.setattr(memory, "_pagemap_ok", False)
    parent, first = _forked_once()
    parent.poke(0x110000, bytes(0x10000))  # the second block is all zeros now
    parent.poke(0x100000, b"B")
    second = GuestMemory(Engine())
    parent.fork_into(second, 1 << 32)
    assert second.read(0x100000, 2) == b"BA" and first.read(0x100000, 2) == b"AA"
    assert second.read(0x110000, 4) == bytes(4) and first.read(0x110000, 4) == b"AAAA"
    assert (0x110000, 0x120000) not in _host_file_ranges(parent)
    assert _host_file_ranges(parent) == _host_file_ranges(second) == [(0x100000, 0x110000)]
