"""The main guard of reverse execution: going backwards equals going forwards.

A hypothesis state machine drives a replay timeline with stepi, continue,
reverse-stepi, reverse-continue (to breakpoints and a write watchpoint;
alone or with replicas scanning older intervals at once) and seeks, in any
order.  Invariants: the machine-state digest at an icount is
always the one first seen there; every stop is where a model computed from
one plain forward pass says it must be.  Checkpoint spacing, periodic
checkpoints and the memory budget are shrunk so that every restore path runs
within the guest's run.

Worlds: the debugme Linux guest (~34 k instructions); the same guest
ending in a SIGSEGV from a store in the middle of a block (the recording
ends at the faulting instruction, which never retires, and running into it
again reports the signal again); and the k_busy
kernel on the PC machine (timer interrupts into ordinary code, ticks held
back by cli and taken after sti's shadow and popf; its recording has qcow2
snapshots every 50 k instructions).  Breakpoint candidates there include
the IRQ0 stub, which is entered by interrupt delivery, not by a jump.
Also: signal handlers (signals, sigread), two threads racing on a
variable under the deterministic scheduler (threads), and two processes
passing a byte back and forth through pipes (pipeline): the debugger
follows the first one, so its breakpoints, watchpoints and steps are the
first process's, and a step waits for it across the other's slices.
"""

from __future__ import annotations

import bisect
import os
from pathlib import Path
from typing import Any

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

from rrdbg.machine.machine import LinuxMachine
from rrdbg.record.recording import PcOptions, record_pc
from rrdbg.target.interface import Direction, StopKind, WatchKind
from rrdbg.timeline import parallel, policy
from rrdbg.timeline.timeline import Timeline
from tests.conftest import guest, record_quietly
from tests.timeline.test_timeline import SYMS, symbols

DEBUGME = guest("debugme")
K_BUSY = guest("k_busy")
BUSY = symbols(K_BUSY)
SIGNALS = guest("signals")
SIG = symbols(SIGNALS)
SIGREAD = guest("sigread")
SR = symbols(SIGREAD)
THREADS = guest("threads")
TH = symbols(THREADS)
PROCS = guest("procs")
PR = symbols(PROCS)
F, B = Direction.FORWARD, Direction.BACKWARD


def _never() -> bool:
    return False


class _World:
    """A recording plus the model answers from one forward pass."""

    #: For a machine with processes: (icount, pid) of every switch between
    #: processes in the forward pass, to know when the followed one runs.
    switches: list[tuple[int, int]] | None = None
    followed = 0

    def __init__(
        self,
        directory: Path,
        candidates: tuple[int, ...],
        watched: int,
        *,
        fatal: bool = False,
        processes: bool = False,
        threads: bool = False,
        python_counter: bool = False,
    ) -> None:
        self.directory = str(directory)
        self.python_counter = python_counter
        self.fatal = fatal
        self.candidates = candidates
        self.watched = watched
        BREAK_CANDIDATES, COUNTER = candidates, watched
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

        m.cpu.watch_memory(write=True, address=COUNTER, length=4, callback=on_write)
        m.cpu.retranslate()
        assert t.history_end is not None
        if processes:
            assert isinstance(m, LinuxMachine)
            self.followed = m.pid
            self.switches = [(0, m.pid)]
            use = m._use

            def noting(proc: Any) -> None:
                if proc.linux.pid != self.switches[-1][1]:  # type: ignore[index]
                    self.switches.append((m.icount, proc.linux.pid))  # type: ignore[union-attr]
                use(proc)

            m._use = noting  # type: ignore[method-assign]
        if threads:
            assert isinstance(m, LinuxMachine)
            ts = self.thread_switches = [(0, m.current_tid)]
            switch = m._switch_to

            def noting_thread(task: Any) -> None:
                if task.tid != ts[-1][1]:
                    ts.append((m.icount, task.tid))
                switch(task)

            m._switch_to = noting_thread  # type: ignore[method-assign]
        m.run(t.history_end + 1 if fatal else t.history_end)
        self.end = t.history_end
        assert t.fatal_end is fatal
        if fatal:
            # The fault is exact: at the end of history, not retired; a
            # signal's default action ends it before delivery.
            assert m.exit is not None and m.exit.signal is not None
            assert m.icount == self.end
            self.fault_pc = m.cpu.eip

    def timeline(self) -> Timeline:
        if not self.python_counter:
            return Timeline.replay(self.directory, stdout_fd=self.sink, stderr_fd=self.sink)
        saved = os.environ.get("RRDBG_ICOUNT")
        os.environ["RRDBG_ICOUNT"] = "python"
        try:
            t = Timeline.replay(self.directory, stdout_fd=self.sink, stderr_fd=self.sink)
        finally:
            if saved is None:
                del os.environ["RRDBG_ICOUNT"]
            else:
                os.environ["RRDBG_ICOUNT"] = saved
        assert not t.machine.cpu.native
        return t

    #: For a machine with threads: (icount, tid) of every thread switch in
    #: the forward pass (a debugger's steps follow the thread it stepped).
    thread_switches: list[tuple[int, int]] | None = None

    def tid_at(self, k: int) -> int:
        """The thread that executes the instruction at icount k."""
        ts = self.thread_switches or [(0, 0)]
        return ts[bisect.bisect_right(ts, (k, 1 << 62)) - 1][1]

    def thread_before(self, k: int) -> int | None:
        """The last icount < k at which the thread running at k ran (None:
        it had not run before k, its history begins there)."""
        ts = self.thread_switches or [(0, 0)]
        who = self.tid_at(k)
        j = k - 1
        while j >= 0 and self.tid_at(j) != who:
            j = ts[bisect.bisect_right(ts, (j, 1 << 62)) - 1][0] - 1
        return j if j >= 0 else None

    def thread_next(self, k: int, who: int) -> int | None:
        """The first icount >= k at which thread ``who`` runs (None: never)."""
        ts = self.thread_switches or [(0, 0)]
        while k < self.end and self.tid_at(k) != who:
            i = bisect.bisect_right(ts, (k, 1 << 62))
            if i >= len(ts):
                return None
            k = ts[i][0]
        return k if k < self.end else None

    def runs_followed(self, k: int) -> bool:
        """Whether the followed process executes the instruction at icount k."""
        if self.switches is None:
            return True
        i = bisect.bisect_right(self.switches, (k, 1 << 62)) - 1
        return self.switches[i][1] == self.followed

    def next_followed(self, k: int) -> int:
        """The first icount >= k at which the followed process runs."""
        while k < self.end and not self.runs_followed(k):
            i = bisect.bisect_right(self.switches or [], (k, 1 << 62))
            k = self.switches[i][0] if self.switches and i < len(self.switches) else self.end
        return k

    def previous_followed(self, k: int) -> int:
        """The last icount < k at which the followed process ran (0: none)."""
        k -= 1
        while k > 0 and not self.runs_followed(k):
            i = bisect.bisect_right(self.switches or [], (k, 1 << 62)) - 1
            k = (self.switches or [(0, 0)])[i][0] - 1
        return max(k, 0)


@pytest.fixture(
    scope="module",
    params=[
        "debugme",
        "debugme-segv",
        "debugme-python",
        "k_busy",
        "signals",
        "sigread",
        "threads",
        "pipeline",
    ],
)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> _World:
    if request.param == "pipeline":
        # A parent and a child passing a byte back and forth through two
        # pipes: switches at every blocking read and at the quantum;
        # breakpoints in both sides' functions (the child's never stop the
        # followed parent) and a watch on the parent's count.
        directory = tmp_path_factory.mktemp("stateful") / "pipeline.rr"
        record_quietly(PROCS, ["pingpong", "30"], directory, quantum=2000)
        candidates = (PR["trip"], PR["echo_one"], PR["wait_for"], PR["write_all"])
        return _World(directory, candidates, PR["trips"], processes=True)
    if request.param == "threads":
        # Two threads racing on a variable, switched every 2000 instructions
        # (and at every futex wait of the joins): moving in time crosses
        # thread switches, and every task is in every checkpoint.
        directory = tmp_path_factory.mktemp("stateful") / "threads.rr"
        record_quietly(THREADS, ["race", "3000"], directory, quantum=2000)
        threads = (TH["race_worker"], TH["mode_race"], TH["start_thread"])
        return _World(directory, threads, TH["race_shared"], threads=True)
    if request.param == "sigread":
        # Reads cut short by timer signals: EINTR, and restarted after the
        # handler (the restart pending in the state between the syscall and
        # the delivery).
        directory = tmp_path_factory.mktemp("stateful") / "sigread.rr"
        record_quietly(SIGREAD, [], directory)
        return _World(directory, (SR["tick"], SR["tick_then_feed"], SR["main"]), SR["ticks"])
    if request.param == "signals":
        # Handlers for self-sent signals, faults left with siglongjmp and
        # timer signals at exact icounts; it ends killed by SIGTERM.
        directory = tmp_path_factory.mktemp("stateful") / "signals.rr"
        record_quietly(SIGNALS, [], directory)
        candidates = (SIG["count"], SIG["tick"], SIG["fault_handler"], SIG["nest"])
        return _World(directory, candidates, SIG["ticks"], fatal=True)
    if request.param.startswith("debugme"):
        # (debugme-python: the same world replayed with the pure-Python
        # block counter and page map, whose memory watches and page traps
        # are the native ones' twins.)
        args = ["segv"] if request.param == "debugme-segv" else []
        directory = tmp_path_factory.mktemp("stateful") / f"{request.param}.rr"
        record_quietly(DEBUGME, args, directory)
        return _World(
            directory,
            (SYMS["bump"], SYMS["square"], SYMS["main"]),
            SYMS["counter"],
            fatal=bool(args),
            python_counter=request.param == "debugme-python",
        )
    directory = tmp_path_factory.mktemp("stateful") / "k_busy.rr"
    fd = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(fd, 1)
    try:
        record_pc(K_BUSY, str(directory), PcOptions(2, "loop=35000"), interval=50_000)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(fd)
    irq0_stub = BUSY["isr_stubs"] + 16 * 0x20
    candidates = (irq0_stub, BUSY["timer_irq"], BUSY["popf_done"], _serial_out())
    return _World(directory, candidates, BUSY["ticks"])


def _serial_out() -> int:
    """The address of serial_putc's ``out`` (an instruction the PC machine
    emulates in a hook: a breakpoint there must still count it exactly)."""
    import capstone

    from rrdbg.machine.loader import read_kernel

    start = BUSY["serial_putc"]
    (text,) = [g for g in read_kernel(K_BUSY).segments if g.vaddr <= start < g.vaddr + g.memsz]
    code = text.data[start - text.vaddr : start - text.vaddr + 128]
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_32)
    for insn in md.disasm(code, start):
        if insn.mnemonic == "out":
            return int(insn.address)
    raise AssertionError("no out in serial_putc")


class ReverseMatchesForward(RuleBasedStateMachine):
    world: _World

    @initialize(
        breakpoints=st.sets(st.sampled_from(range(4))),
        watching=st.booleans(),
        start=st.floats(0, 1),
        jobs=st.sampled_from([1, 2, 3]),
    )
    def boot(self, breakpoints: set[int], watching: bool, start: float, jobs: int) -> None:
        self.t = self.world.timeline()
        # reverse-continue alone, or with replicas scanning other intervals.
        self.t.jobs = jobs
        breakpoints = {self.world.candidates[i % len(self.world.candidates)] for i in breakpoints}
        self.t.budget = 600_000  # a handful of checkpoints: eviction happens
        # Signals go to the program without stops (the model knows
        # breakpoints, watchpoints and the ends; tests/server covers stops).
        self.t.set_pass_signals(frozenset(range(1, 65)))
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

    def _end_kinds(self) -> tuple[StopKind, ...]:
        if self.world.fatal:
            return (StopKind.SIGNAL, StopKind.HISTORY_END)
        return (StopKind.HISTORY_END,)

    # -- rules ---------------------------------------------------------------
    @rule(which=st.sampled_from(range(4)), on=st.booleans())
    def toggle_breakpoint(self, which: int, on: bool) -> None:
        address = self.world.candidates[which % len(self.world.candidates)]
        if on:
            self.t.insert_breakpoint(address, hardware=False)
        else:
            self.t.remove_breakpoint(address, hardware=False)

    @rule(on=st.booleans())
    def toggle_watch(self, on: bool) -> None:
        if on and not self.watching:
            self.t.insert_watchpoint(WatchKind.WRITE, self.world.watched, 4)
        elif not on and self.watching:
            self.t.remove_watchpoint(WatchKind.WRITE, self.world.watched, 4)
        self.watching = on

    @rule()
    def stepi(self) -> None:
        before = self.t.icount
        stop = self.t.resume(step=True, direction=F, interrupted=_never)
        if before >= self.world.end:
            # Stepping the faulting instruction reports the fault again
            # (until it has been reported: then the history is over).
            assert stop.kind in self._end_kinds(), stop
            assert self.t.icount == before
        elif self.world.thread_switches is not None:
            # The thread that stopped executes one instruction; the others
            # run after it until it runs again (unless it has ended).
            w = self.world
            who = w.tid_at(before)
            again = w.thread_next(before + 1, who)
            if again is None:
                assert before < self.t.icount <= w.end, (stop, before)
            elif stop.kind in (StopKind.BREAKPOINT, StopKind.WATCHPOINT):
                assert before < self.t.icount <= again, (stop, before, again)
            else:
                assert self.t.icount == again, (stop, before, again)
        elif self.world.switches is not None:
            # The followed process executes one instruction: the others run
            # first while it waits, and after it until it runs again.
            w = self.world
            expected = w.next_followed(w.next_followed(before) + 1)
            if stop.kind in (StopKind.BREAKPOINT, StopKind.WATCHPOINT):
                assert before < self.t.icount <= expected, (stop, before, expected)
            else:
                assert self.t.icount == expected, (stop, before, expected)
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
            if self.world.thread_switches is not None:
                # Back to the stopped thread's own previous instruction; at
                # its first one its history begins.
                found = self.world.thread_before(before)
                if found is None:
                    assert stop.kind is StopKind.HISTORY_BEGIN, (stop, before)
                    assert self.t.icount == before
                    return
                landing = found
            else:
                landing = self.world.previous_followed(before)
            assert self.t.icount == landing, (stop, before)
            undoes_write = self.watching and landing in self.world.writes
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
            assert stop.kind in self._end_kinds(), stop

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
    def fault_is_exact(self) -> None:
        if self.world.fatal and self.t.icount == self.world.end:
            assert self.t.machine.cpu.eip == self.world.fault_pc

    @invariant()
    def within_budget(self) -> None:
        # Protected checkpoints (icount 0) may exceed a tiny budget alone.
        assert self.t.checkpoint_bytes() <= max(self.t.budget, 1 << 20) * 2


@pytest.mark.slow
def test_reverse_matches_forward(world: _World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy, "NEAR", 2000)
    monkeypatch.setattr(policy, "FORWARD_INTERVAL", 5000)
    monkeypatch.setattr(policy, "COST_RATIO", 0)
    monkeypatch.setattr(parallel, "MIN_INTERVAL", 1000)
    ReverseMatchesForward.world = world
    run = ReverseMatchesForward.TestCase
    examples = int(os.environ.get("RRDBG_STATEFUL_EXAMPLES", "60"))
    if world.directory.endswith("k_busy.rr"):
        # The PC world's run is ten times longer: fewer, as many steps.
        monkeypatch.setattr(policy, "FORWARD_INTERVAL", 20_000)
        examples = max(examples // 2, 1)
    run.settings = settings(
        max_examples=examples,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    run().runTest()
