"""The Target contract (rrdbg.testing.check_target) on every target: the pure-Python
FakeTarget, a live Timeline and a Timeline replaying a recording; plus checks that
the suite itself catches broken targets."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from rrdbg.errors import TargetError
from rrdbg.machine.host import LiveHost
from rrdbg.record.recording import record
from rrdbg.target.interface import Direction, Interrupted, Report, StopEvent, StopKind, no_report
from rrdbg.testing import FakeTarget, check_target
from rrdbg.timeline.timeline import Timeline
from tests.conftest import guest

DEBUGME = guest("debugme")


@pytest.fixture(scope="module")
def sink() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_WRONLY)
    yield fd
    os.close(fd)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory, sink: int) -> str:
    directory = tmp_path_factory.mktemp("conformance") / "debugme.rr"
    saved = os.dup(1)
    os.dup2(sink, 1)  # the guest's output
    try:
        record(DEBUGME, [], str(directory), environ={})
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return str(directory)


def live(args: list[str], sink: int) -> Callable[[], Timeline]:
    def make() -> Timeline:
        return Timeline.live_run(
            DEBUGME, args, LiveHost(stdout_fd=sink), stdout_fd=sink, stderr_fd=sink
        )

    return make


def test_fake_target() -> None:
    check_target(FakeTarget, make_spinning=lambda: FakeTarget(spin=True))


def test_fake_target_that_reverses() -> None:
    check_target(lambda: FakeTarget(reverse=True, base=0x8000, entry=0x8010), unmapped=0x7FFE)


def test_live_timeline(sink: int) -> None:
    check_target(live([], sink), make_spinning=live(["spin"], sink))


def test_replay_timeline(recording: str, sink: int) -> None:
    check_target(lambda: Timeline.replay(recording, stdout_fd=sink, stderr_fd=sink))


# -- the suite catches broken targets -----------------------------------------------


class SkipsBreakpoints(FakeTarget):
    def insert_breakpoint(self, address: int, *, hardware: bool) -> None:
        pass


class ExecutesTheBreakpoint(FakeTarget):
    def resume(
        self,
        *,
        step: bool,
        direction: Direction,
        interrupted: Interrupted,
        report: Report = no_report,
    ) -> StopEvent:
        stop = super().resume(step=step, direction=direction, interrupted=interrupted)
        if stop.kind is StopKind.BREAKPOINT:
            self.eip += 1
            self.icount += 1
        return stop


class ShortRegisters(FakeTarget):
    def read_registers(self) -> dict[str, bytes]:
        regs = super().read_registers()
        regs["st3"] = regs["st3"][:8]
        return regs


class ForgetsLastStop(FakeTarget):
    @property
    def last_stop(self) -> StopEvent:
        return StopEvent(StopKind.STEP, 0)


class UnmappedReadsAsZero(FakeTarget):
    def read_memory(self, address: int, length: int) -> bytes:
        try:
            return super().read_memory(address, length)
        except TargetError:
            return bytes(length)


class StepsTwice(FakeTarget):
    def resume(
        self,
        *,
        step: bool,
        direction: Direction,
        interrupted: Interrupted,
        report: Report = no_report,
    ) -> StopEvent:
        if step:
            super().resume(step=True, direction=direction, interrupted=interrupted)
        return super().resume(step=step, direction=direction, interrupted=interrupted)


class IgnoresInterrupts(FakeTarget):
    def resume(
        self,
        *,
        step: bool,
        direction: Direction,
        interrupted: Interrupted,
        report: Report = no_report,
    ) -> StopEvent:
        polls = 0

        def late() -> bool:
            nonlocal polls
            polls += 1
            said = interrupted()
            return polls > 10 and said

        return super().resume(step=step, direction=direction, interrupted=late)


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (SkipsBreakpoints, "expected BREAKPOINT"),
        (ExecutesTheBreakpoint, "stopped at eip 0x1003, not 0x1002"),
        (ShortRegisters, "register st3 must be 10 bytes"),
        (ForgetsLastStop, "last_stop"),
        (UnmappedReadsAsZero, "reading unmapped 0x0: expected TargetError"),
        (StepsTwice, "step 1 from the start"),
    ],
)
def test_the_suite_catches(broken: Callable[[], FakeTarget], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_target(broken)


def test_the_suite_catches_a_run_that_ignores_interrupts() -> None:
    with pytest.raises(AssertionError, match="went on after interrupted"):
        check_target(FakeTarget, make_spinning=lambda: IgnoresInterrupts(spin=True))


def test_the_kit_is_pure_python() -> None:
    heavy = ("trio", "unicorn", "socket", "rrdbg.machine")
    code = f"import sys, rrdbg.testing; print(sorted(set({heavy!r}) & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert out.stdout.strip() == "[]"
