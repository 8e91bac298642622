"""Exact instruction counting: run-to-K, native hook vs Python twin, vs Unicorn's count=."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrdbg.machine import icount as ic
from rrdbg.machine.cpu import StopReason
from rrdbg.machine.host import SeededHost
from rrdbg.machine.machine import LinuxMachine
from tests.conftest import guest

pytestmark = pytest.mark.skipif(not ic.native_available(), reason="C extension not built")

# Guests whose runs depend only on their arguments and the seeded host.
CASES: dict[str, list[str]] = {
    "hello": [],
    "recursion": [],
    "tls": [],
    "malloc": [],
    "stdio_mix": [],
    "time_random": [],
    "smc": [],
    "hello-static-pie": [],
}


@pytest.fixture(scope="module")
def sink() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_WRONLY)
    yield fd
    os.close(fd)


def make(name: str, sink: int, *, native: bool) -> LinuxMachine:
    host = SeededHost(7, stdout_fd=sink, stderr_fd=sink)
    return LinuxMachine(guest(name), [name, *CASES[name]], host, native=native)


@cache
def reference(name: str, sink: int) -> tuple[int, str]:
    """Total count and final digest of an uninterrupted native-hook run."""
    m = make(name, sink, native=True)
    result = m.run_to_end()
    return result.icount, m.digest()


@pytest.mark.parametrize("name", sorted(CASES))
def test_native_and_python_counters_agree_on_whole_runs(name: str, sink: int) -> None:
    total, digest = reference(name, sink)
    m = make(name, sink, native=False)
    assert m.run_to_end().icount == total
    assert m.digest() == digest


@pytest.mark.parametrize("name", ["hello", "stdio_mix", "time_random", "smc"])
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_run_to_k_then_continue_matches_uninterrupted(
    name: str, sink: int, data: st.DataObject
) -> None:
    total, final = reference(name, sink)
    # total itself is the exit_group syscall: running to it ends the process.
    k = data.draw(st.integers(0, total - 1), label="k")
    digests = []
    for native in (True, False):
        m = make(name, sink, native=native)
        stop = m.run(k)
        assert stop.reason is StopReason.LIMIT
        assert m.icount == k
        digests.append(m.digest())
        result = m.run_to_end()
        assert result.icount == total
        assert m.digest() == final
    assert digests[0] == digests[1]


def test_many_successive_stops_on_one_machine(sink: int) -> None:
    total, final = reference("malloc", sink)
    m = make("malloc", sink, native=True)
    k = 0
    step = 1
    while not m.finished:
        k = min(k + step, total)
        m.run(k)
        assert m.icount == k or m.finished
        step = step * 3 + 1 if step < 200_000 else 7
    assert m.icount == total
    assert m.digest() == final


def test_single_steps_through_startup(sink: int) -> None:
    m = make("hello", sink, native=True)
    ref = make("hello", sink, native=True)
    for k in range(1, 400):
        m.run(k)
        assert m.icount == k
    ref.run(399)
    assert m.digest() == ref.digest()


def _unicorn_count_digest(name: str, sink: int, k: int) -> str:
    """Machine state after k instructions counted by Unicorn itself (count=k).

    These guests never read the clock, so the syscall layer does not miss the
    count rrdbg's hook would have kept.
    """
    m = make(name, sink, native=True)
    m.engine.hook_del_raw(m.cpu.block_hook)
    m.cpu.flush_code()  # unicorn.md G2: count= after uncounted translation
    m.engine.uc.ctl_exits_enabled(False)
    m.engine.uc.emu_start(m.cpu.eip, 0xFFFFFFFF, 0, k)
    m.cpu.set_icount(k)
    return m.digest()


@pytest.mark.parametrize("name", ["hello", "smc"])
@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.01, 0.1, 0.33, 0.5, 0.9, 0.999])
def test_agrees_with_unicorn_count(sink: int, name: str, fraction: float) -> None:
    total, _ = reference(name, sink)
    k = max(1, int(total * fraction))
    ours = make(name, sink, native=True)
    ours.run(k)
    assert _unicorn_count_digest(name, sink, k) == ours.digest()


def test_count_at_a_fault_excludes_the_faulting_instruction(sink: int) -> None:
    m = LinuxMachine(guest("fault_segv"), ["fault_segv"], SeededHost(stdout_fd=sink), native=True)
    stop = m.run()
    while stop.reason is StopReason.SYSCALL and not m.finished:
        stop = m.run()
    assert stop.reason is StopReason.FAULT
    n = stop.icount
    # Running to n stops right before the faulting store, with nothing pending.
    m2 = LinuxMachine(guest("fault_segv"), ["fault_segv"], SeededHost(stdout_fd=sink), native=True)
    assert m2.run(n).reason is StopReason.LIMIT
    assert m2.cpu.eip == stop.fault.eip if stop.fault else False
    assert m2.run(n + 1).reason is StopReason.FAULT
    assert m2.icount == n


def test_limit_below_current_count_is_refused(sink: int) -> None:
    m = make("hello", sink, native=True)
    m.run(100)
    with pytest.raises(Exception, match="backwards"):
        m.run(50)
