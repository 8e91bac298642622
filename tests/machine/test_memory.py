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
        for p in range(PAGES):
            addr = BASE + p * PAGE
            mapped = p in self.model
            assert self.mem.is_mapped(addr, PAGE) == mapped
            region = self.mem.region_at(addr)
            assert (region.perms if region else None) == self.model.get(p)
            if mapped:
                page = self.mem.view(addr, PAGE).tobytes()
                expected = bytearray(PAGE)
                for a, v in self.data.items():
                    if a // PAGE == addr // PAGE:
                        expected[a - addr] = v
                assert page == bytes(expected)
        regions = list(self.mem.regions())
        assert all(a.end <= b.start for a, b in itertools.pairwise(regions))


TestMemoryMatchesPageModel = MemoryMatchesPageModel.TestCase
TestMemoryMatchesPageModel.settings = settings(max_examples=40, stateful_step_count=25)


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
