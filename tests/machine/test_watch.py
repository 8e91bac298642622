"""Memory watches on hand-written code: exact hits through page traps and
native range checks, in both the native and the pure-Python twins."""

from __future__ import annotations

import pytest

from rrdbg.machine import cpu as cpu_mod
from rrdbg.machine.cpu import SIGSEGV, Cpu, StopReason
from rrdbg.machine.engine import Engine
from rrdbg.machine.memory import PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, GuestMemory

CODE = 0x08048000
STACK = 0x0B000000
DATA = 0x0C000000  # two read-write pages
RODATA = 0x0D000000  # one read-only page

LOOPS = 50
PROGRAM = b"".join(
    [
        b"\xb9" + LOOPS.to_bytes(4, "little"),  # 0: mov ecx, LOOPS
        b"\x89\x0d" + (DATA + 0x800).to_bytes(4, "little"),  # loop: mov [DATA+0x800], ecx
        b"\x49",  # dec ecx
        b"\x75\xf7",  # jnz loop
        b"\xc7\x05" + (DATA + PAGE + 4).to_bytes(4, "little") + (7).to_bytes(4, "little"),
        b"\xa1" + (DATA + PAGE + 4).to_bytes(4, "little"),  # mov eax, [DATA+PAGE+4]
        b"\xa3" + (DATA + PAGE - 2).to_bytes(4, "little"),  # mov [DATA+PAGE-2], eax
        b"\xa3" + (RODATA + 8).to_bytes(4, "little"),  # mov [RODATA+8], eax: SIGSEGV
        b"\xcd\x80",  # int 0x80 (not reached)
    ]
)
#: The icounts of the instructions after the loop (1 + 3 per iteration).
STORE, LOAD, CROSSING, READ_ONLY = 1 + 3 * LOOPS, 2 + 3 * LOOPS, 3 + 3 * LOOPS, 4 + 3 * LOOPS


def machine(native: bool) -> Cpu:
    engine = Engine()
    memory = GuestMemory(engine)
    memory.map(CODE, PAGE, PROT_READ | PROT_EXEC)
    memory.poke(CODE, PROGRAM)
    memory.map(STACK - PAGE, PAGE, PROT_READ | PROT_WRITE)
    memory.map(DATA, 2 * PAGE, PROT_READ | PROT_WRITE)
    memory.map(RODATA, PAGE, PROT_READ)
    cpu = Cpu(memory, engine, native=native)
    cpu.enter_user_mode(CODE, STACK)
    return cpu


def watching(
    cpu: Cpu, address: int, length: int, *, write: bool = True
) -> list[tuple[int, int, int]]:
    """Hits as (icount, address, size)."""
    hits: list[tuple[int, int, int]] = []

    def hit(addr: int, size: int) -> None:
        hits.append((cpu.count_at(cpu.eip), addr, size))

    cpu.watch_memory(write=write, address=address, length=length, callback=hit)
    cpu.retranslate()
    return hits


def run_to_the_fault(cpu: Cpu) -> None:
    stop = cpu.run()
    assert stop.reason is StopReason.FAULT
    assert stop.fault is not None and stop.fault.signal == SIGSEGV
    assert stop.fault.address == RODATA + 8
    assert stop.icount == READ_ONLY


@pytest.mark.parametrize("native", [True, False])
def test_a_watch_on_a_quiet_page_is_a_trap_until_that_page_is_written(native: bool) -> None:
    cpu = machine(native)
    hits = watching(cpu, DATA + PAGE + 4, 4)
    stop = cpu.run(STORE)
    assert (stop.reason, stop.icount, hits) == (StopReason.LIMIT, STORE, [])
    assert not cpu.watching_precisely  # the loop's page is not watched
    run_to_the_fault(cpu)
    assert hits == [(STORE, DATA + PAGE + 4, 4)]
    assert cpu.watching_precisely


@pytest.mark.parametrize("native", [True, False])
def test_every_write_to_a_hot_watched_location_is_seen(native: bool) -> None:
    cpu = machine(native)
    hits = watching(cpu, DATA + 0x800, 4)
    run_to_the_fault(cpu)
    assert hits == [(1 + 3 * i, DATA + 0x800, 4) for i in range(LOOPS)]


@pytest.mark.parametrize("native", [True, False])
def test_neighbours_on_the_watched_cache_line_are_filtered_out(native: bool) -> None:
    cpu = machine(native)
    # 4 bytes above the loop's store, 8 above: Unicorn's bounds (16 bytes
    # below the range) pass the loop's stores; the exact check drops them.
    hits = watching(cpu, DATA + 0x804, 4) + watching(cpu, DATA + 0x808, 8)
    run_to_the_fault(cpu)
    assert hits == []


@pytest.mark.parametrize("native", [True, False])
def test_a_store_crossing_into_the_watched_page_is_one_hit(native: bool) -> None:
    cpu = machine(native)
    hits = watching(cpu, DATA + PAGE, 2)
    run_to_the_fault(cpu)
    assert hits == [(CROSSING, DATA + PAGE - 2, 4)]


@pytest.mark.parametrize("native", [True, False])
def test_read_watches_trap_reads_and_not_writes(native: bool) -> None:
    cpu = machine(native)
    reads = watching(cpu, DATA + PAGE + 4, 4, write=False)
    run_to_the_fault(cpu)
    assert reads == [(LOAD, DATA + PAGE + 4, 4)]


@pytest.mark.parametrize("native", [True, False])
def test_a_write_to_a_watched_read_only_page_is_still_a_fault(native: bool) -> None:
    cpu = machine(native)
    hits = watching(cpu, RODATA + 8, 4)
    run_to_the_fault(cpu)
    assert hits == []


@pytest.mark.parametrize("native", [True, False])
def test_rearming_keeps_hooks_on_a_hot_page_for_a_while(
    native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cpu_mod, "HOT_TRAP", 100)
    monkeypatch.setattr(cpu_mod, "KEEP_HOT_HOOKS", 60)  # doubled: a hot page
    hot, quiet = machine(native), machine(native)
    hot_hits = watching(hot, DATA + 0x800, 4)  # springs at icount 1: hot
    quiet_hits = watching(quiet, DATA + PAGE + 4, 4)  # springs at STORE
    for cpu in (hot, quiet):
        cpu.run(LOAD)
    assert quiet.rearm_watches() and not quiet.watching_precisely
    # Hot: hooks kept while the trap sprang less than 120 instructions ago...
    hot.set_icount(100)
    assert not hot.rearm_watches() and hot.watching_precisely
    # ... and after a move back in time (the scan of an earlier interval).
    hot.set_icount(0)
    assert not hot.rearm_watches()
    hot.set_icount(LOAD)
    assert hot.rearm_watches() and not hot.watching_precisely
    # Re-armed, each trap springs again for the next write.
    for cpu in (hot, quiet):
        cpu.eip = CODE + 5 + 6 + 1 + 2  # the store after the loop
        cpu.set_icount(STORE)
        cpu.run(STORE + 1)
    assert quiet_hits == [(STORE, DATA + PAGE + 4, 4)] * 2
    assert len(hot_hits) == LOOPS


@pytest.mark.parametrize("native", [True, False])
def test_unwatching_the_last_watch_leaves_no_trap(native: bool) -> None:
    cpu = machine(native)
    hits: list[int] = []
    handle = cpu.watch_memory(
        write=True, address=DATA + PAGE + 4, length=4, callback=lambda a, s: hits.append(a)
    )
    cpu.unwatch(handle)
    run_to_the_fault(cpu)
    assert hits == [] and not cpu.watching_precisely
