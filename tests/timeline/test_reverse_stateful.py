"""The main guard of reverse execution: going backwards equals going forwards.

A hypothesis state machine drives a replay timeline of the debugme guest
with stepi, continue, reverse-stepi, reverse-continue (to breakpoints and a
write watchpoint) and seeks, in any order.  Invariants: the machine-state
digest at an icount is always the one first seen there; every stop is where
a model computed from one plain forward pass says it must be.  Checkpoint
spacing, periodic checkpoints and the memory budget are shrunk so that
every restore path runs within the guest's ~34 k instructions.
"""

from __future__ import annotations

import bisect
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from rrdbg.target.interface import Direction, StopKind, WatchKind
from rrdbg.timeline import policy
from rrdbg.timeline.timeline import Timeline
from tests.conftest import guest, record_quietly
from tests.timeline.test_timeline import SYMS

DEBUGME = guest("debugme")
F, B = Direction.FORWARD, Direction.BACKWARD
BREAK_CANDIDATES = (SYMS["bump"], SYMS["square"], SYMS["main"])
COUNTER = SYMS["counter"]


def _never() -> bool:
    return False


class _World:
    """A recording plus the model answers from one forward pass."""

    def __init__(self, directory: Path) -> None:
        self.directory = str(directory)
        self.sink = os.open(os.devnull, os.O_WRONLY)
        t = self.timeline()
        m = t.machine
        self.hits: dict[int, list[int]] = {a: [] for a in BREAK_CANDIDATES}
        self.writes: list[int] = []  # icounts of instructions writing counter
        for address in BREAK_CANDIDATES:
            m.cpu.watch_code(address, self.hits[address].append)

        def on_write(address: int, size: int) -> None:
            if address < COUNTER + 4 and address + size > COUNTER:
                self.writes.append(m.cpu.count_at(m.cpu.eip))

        m.cpu.watch_memory(write=True, begin=COUNTER - 16, end=COUNTER + 3, callback=on_write)
        m.cpu.retranslate()
        assert t.history_end is not None
        m.run(t.history_end)
        self.end = t.history_end

    def timeline(self) -> Timeline:
        return Timeline.replay(self.directory, stdout_fd=self.sink, stderr_fd=self.sink)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> _World:
    directory = tmp_path_factory.mktemp("stateful") / "debugme.rr"
    record_quietly(DEBUGME, [], directory)
    return _World(directory)


class ReverseMatchesForward(RuleBasedStateMachine):
    world: _World

    @initialize(
        breakpoints=st.sets(st.sampled_from(BREAK_CANDIDATES)),
        watching=st.booleans(),
        start=st.floats(0, 1),
    )
    def boot(self, breakpoints: set[int], watching: bool, start: float) -> None:
        self.t = self.world.timeline()
        self.t.budget = 600_000  # a handful of checkpoints: eviction happens
        self.seen: dict[int, str] = {}
        self.watching = False
        for address in breakpoints:
            self.t.insert_breakpoint(address, hardware=False)
        self.toggle_watch(watching)
        # Most hits are near the end of the run (the loop in main): start
        # anywhere, often after them.
        self.t.seek(int(start * self.world.end))

    # -- model -------------------------------------------------------------
    def _hit_icounts(self) -> list[int]:
        out: set[int] = set()
        for address in self.t.breakpoints:
            out.update(self.world.hits[address])
        if self.watching:
            out.update(self.world.writes)
        return sorted(out)

    # -- rules ---------------------------------------------------------------
    @rule(address=st.sampled_from(BREAK_CANDIDATES), on=st.booleans())
    def toggle_breakpoint(self, address: int, on: bool) -> None:
        if on:
            self.t.insert_breakpoint(address, hardware=False)
        else:
            self.t.remove_breakpoint(address, hardware=False)

    @rule(on=st.booleans())
    def toggle_watch(self, on: bool) -> None:
        if on and not self.watching:
            self.t.insert_watchpoint(WatchKind.WRITE, COUNTER, 4)
        elif not on and self.watching:
            self.t.remove_watchpoint(WatchKind.WRITE, COUNTER, 4)
        self.watching = on

    @rule()
    def stepi(self) -> None:
        before = self.t.icount
        stop = self.t.resume(step=True, direction=F, interrupted=_never)
        if before >= self.world.end:
            assert stop.kind is StopKind.HISTORY_END
            assert self.t.icount == before
        else:
            assert self.t.icount == before + 1

    @rule()
    def reverse_stepi(self) -> None:
        before = self.t.icount
        stop = self.t.resume(step=True, direction=B, interrupted=_never)
        if before == 0:
            assert stop.kind is StopKind.HISTORY_BEGIN
            assert self.t.icount == 0
        else:
            assert self.t.icount == before - 1
            undoes_write = self.watching and before - 1 in self.world.writes
            assert stop.kind is (StopKind.WATCHPOINT if undoes_write else StopKind.STEP)

    @rule()
    def cont(self) -> None:
        now = self.t.icount
        stop = self.t.resume(step=False, direction=F, interrupted=_never)
        bps = sorted(k for a in self.t.breakpoints for k in self.world.hits[a] if k > now)
        # A forward watch stop comes just after the writing instruction.
        watch = [k + 1 for k in self.world.writes if k >= now] if self.watching else []
        expected = min([*bps[:1], *watch[:1], self.world.end])
        assert self.t.icount == expected, (stop, now)
        if expected == self.world.end and expected not in bps and expected not in watch:
            assert stop.kind is StopKind.HISTORY_END

    @rule()
    def reverse_cont(self) -> None:
        now = self.t.icount
        stop = self.t.resume(step=False, direction=B, interrupted=_never)
        hits = self._hit_icounts()
        i = bisect.bisect_left(hits, now)
        expected = hits[i - 1] if i else 0
        assert self.t.icount == expected, (stop, now)
        if i == 0:
            assert stop.kind is StopKind.HISTORY_BEGIN
        else:
            assert stop.kind in (StopKind.BREAKPOINT, StopKind.WATCHPOINT)

    @rule(fraction=st.floats(0, 1))
    def seek(self, fraction: float) -> None:
        target = int(fraction * self.world.end)
        self.t.seek(target)
        assert self.t.icount == target

    @precondition(lambda self: self.t.icount > 0)
    @rule(k=st.integers(1, 3000))
    def seek_back(self, k: int) -> None:
        target = max(self.t.icount - k, 0)
        self.t.seek(target)
        assert self.t.icount == target

    # -- invariants -----------------------------------------------------------
    @invariant()
    def same_state_as_first_visit(self) -> None:
        digest = self.t.machine.digest()
        assert digest == self.seen.setdefault(self.t.icount, digest)

    @invariant()
    def within_budget(self) -> None:
        # Protected checkpoints (icount 0) may exceed a tiny budget alone.
        assert self.t.checkpoint_bytes() <= max(self.t.budget, 1 << 20) * 2


@pytest.mark.slow
def test_reverse_matches_forward(world: _World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy, "NEAR", 2000)
    monkeypatch.setattr(policy, "FORWARD_INTERVAL", 5000)
    monkeypatch.setattr(policy, "COST_RATIO", 0)
    ReverseMatchesForward.world = world
    run = ReverseMatchesForward.TestCase
    run.settings = settings(
        max_examples=int(os.environ.get("RRDBG_STATEFUL_EXAMPLES", "60")),
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    run().runTest()
