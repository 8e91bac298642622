"""rrdbg.testing: a test kit for code that drives or implements a ``Target``.

Role: what a test needs to exercise the debugger side without the emulator,
and to check an emulator-backed target against the contract in
``rrdbg/target/interface.py``, in the manner of ``trio.testing``:

- ``FakeTarget``: a small, pure-Python ``Target``.  Its machine is a toy: one
  ``bytearray`` of memory at ``base`` in which every byte is a one-byte
  instruction that only advances ``eip``; the instruction at ``end`` ends the
  program (or, with ``spin=True``, jumps to itself forever, so a run only
  stops when ``interrupted`` says so); running off mapped memory faults.  It
  records every breakpoint, watchpoint, register write, resume and monitor
  command, and can instead answer resumes from a script of ``StopEvent`` s.
- ``check_target(make_target)``: the conformance suite.  It calls
  ``make_target`` for fresh targets and checks the whole contract (registers,
  memory, breakpoints, steps, ``last_stop``, watchpoints, ``monitor``,
  backward resumes, and with ``make_spinning`` the reaction to Ctrl-C).

Invariants: the checks raise ``AssertionError`` with a message naming the
broken rule, and do not rely on ``assert`` statements (they hold under
``python -O``).  No run in ``check_target`` can hang: every continue gets an
``interrupted`` that turns true after a deadline.

Must not import trio, sockets or the emulator: a test that uses only the kit
stays pure Python.  The server calls ``FakeTarget.resume`` in a worker thread;
a test may read ``running`` and ``polls`` meanwhile, and should leave the rest
alone until the run is over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Final

from rrdbg.errors import TargetError
from rrdbg.target import i386
from rrdbg.target.interface import (
    SIGINT,
    Direction,
    Interrupted,
    Report,
    StopEvent,
    StopKind,
    Target,
    ThreadInfo,
    WatchKind,
    no_report,
)

__all__ = ["FAKE_HELP", "FakeTarget", "check_target", "never"]

#: Signal of a fault (running off mapped memory), as Linux reports it.
SIGSEGV: Final = 11
#: ``Exx`` numbers the fake uses, as the real target does.
EFAULT: Final = 14
EINVAL: Final = 22
#: How long ``FakeTarget`` sleeps between two polls of ``interrupted`` while
#: spinning: short enough for a prompt Ctrl-C, long enough to leave the CPU
#: (and the GIL) to the thread that sets the flag.
SPIN_POLL_SECONDS: Final = 0.001
#: Instructions between two polls of ``interrupted`` outside the spin loop.
POLL_INSTRUCTIONS: Final = 1024

FAKE_HELP: Final = """\
FakeTarget monitor commands:
  help    this list
  when    the current instruction count
"""


def never() -> bool:
    """An ``Interrupted`` that never interrupts."""
    return False


def _initial_registers(entry: int, stack: int) -> dict[str, bytes]:
    values = {spec.name: bytes(spec.size) for spec in i386.REGISTERS}
    for name, value in (
        ("eip", entry),
        ("esp", stack),
        ("eflags", 0x202),
        ("cs", 0x73),
        ("ss", 0x7B),
        ("ds", 0x7B),
        ("es", 0x7B),
        ("fctrl", 0x37F),
        ("mxcsr", 0x1F80),
        ("orig_eax", 0xFFFFFFFF),
    ):
        values[name] = value.to_bytes(4, "little")
    return values


class FakeTarget:
    """A pure-Python ``Target`` over a toy machine (see the module docstring).

    Everything it records is a public attribute, meant to be read by tests:
    ``registers``, ``memory`` (at ``base``), ``breakpoints`` (address ->
    hardware), ``watchpoints``, ``register_writes`` (names, in order),
    ``resumes`` (``(step, direction)``, in order), ``monitor_commands``,
    ``killed``, ``detached`` (how many times), ``running`` (True while
    ``resume`` runs) and ``polls`` (calls of ``interrupted``).
    """

    def __init__(
        self,
        *,
        base: int = 0x1000,
        size: int = 0x1000,
        entry: int | None = None,
        end: int | None = None,
        exit_code: int = 0,
        spin: bool = False,
        spin_seconds: float | None = None,
        reverse: bool = False,
        bounded: bool = True,
        script: Iterable[StopEvent] = (),
    ) -> None:
        """Args:
        base, size: the one mapped range; everything else is unmapped.
        entry: the first instruction (default ``base``).
        end: the address of the last instruction, which exits with
            ``exit_code`` (default: 0x100 bytes after ``entry``).
        spin: make the last instruction a jump to itself instead.
        spin_seconds: with ``spin``, a run that spins this long without
            being interrupted exits instead (a safety net for tests that
            must not hang when the interrupt they test is lost).
        reverse: accept backward resumes (``can_reverse``).
        bounded: what ``step_is_bounded`` answers.
        script: stop events that ``resume`` returns, one per call, before it
            starts executing the toy program (``icount`` follows them).
        """
        self.base = base
        self.memory = bytearray(size)
        self.entry = base if entry is None else entry
        self.end = self.entry + 0x100 if end is None else end
        self.exit_code = exit_code
        self.spin = spin
        self.spin_seconds = spin_seconds
        self.reverse = reverse
        self.bounded = bounded
        self.script = list(script)
        self.registers = _initial_registers(self.entry, base + size - 0x100)
        self.breakpoints: dict[int, bool] = {}
        self.watchpoints: list[tuple[WatchKind, int, int]] = []
        self.register_writes: list[str] = []
        self.resumes: list[tuple[bool, Direction]] = []
        self.monitor_commands: list[str] = []
        self.killed = False
        self.detached = 0
        self.running = False
        self.polls = 0
        self.icount = 0
        self._last_stop = StopEvent(StopKind.STEP, 0)
        #: eip before each executed instruction: ``trail[n]`` is eip at icount n.
        self._trail: list[int] = []
        self._fault_pending = False
        self._exit: StopEvent | None = None

    # -- Target: state ---------------------------------------------------------
    @property
    def can_reverse(self) -> bool:
        return self.reverse

    @property
    def last_stop(self) -> StopEvent:
        return self._last_stop

    @property
    def eip(self) -> int:
        return int.from_bytes(self.registers["eip"], "little")

    @eip.setter
    def eip(self, value: int) -> None:
        self.registers["eip"] = (value & 0xFFFFFFFF).to_bytes(4, "little")

    process_id = 1
    current_thread = 1

    def threads(self, pid: int | None = None) -> list[ThreadInfo]:
        return [ThreadInfo(1, "fake")] if pid in (None, self.process_id) else []

    def select_thread(self, tid: int) -> None:
        if tid != 1:
            raise TargetError(f"no thread {tid}", errno=EINVAL)

    # One process that never forks.
    has_processes = False

    def process_ids(self) -> list[int]:
        return [self.process_id]

    def debugged_processes(self) -> list[int]:
        return [self.process_id]

    def set_resumed(self, pids: frozenset[int] | None) -> None:
        pass

    def frozen(self, pids: set[int]) -> set[int]:
        return set()

    def follow_process(self, pid: int) -> None:
        if pid != self.process_id:
            raise TargetError(f"no process {pid}", errno=EINVAL)

    def detach_process(self, pid: int) -> bool:
        return False

    def set_process_events(self, on: bool) -> None:
        pass

    def read_registers(self) -> dict[str, bytes]:
        return dict(self.registers)

    def write_register(self, name: str, value: bytes) -> None:
        spec = i386.REGISTER_BY_NAME.get(name)
        if spec is None:
            raise TargetError(f"no register named {name!r}", errno=EINVAL)
        if len(value) != spec.size:
            raise TargetError(f"register {name} takes {spec.size} bytes", errno=EINVAL)
        self.registers[name] = bytes(value)
        self.register_writes.append(name)

    def _check_range(self, address: int, length: int) -> int:
        offset = address - self.base
        if offset < 0 or offset + length > len(self.memory) or length < 0:
            raise TargetError(f"cannot access {length} bytes at {address:#x}", errno=EFAULT)
        return offset

    def auxv(self) -> bytes | None:
        return None

    def siginfo(self) -> bytes | None:
        return None

    def set_pass_signals(self, signals: frozenset[int]) -> None:
        self.passed = signals

    def deliver_on_resume(self, signal: int | None) -> None:
        self.resume_signal = signal

    def libraries(self, annex: str) -> bytes | None:
        return None

    def exec_file(self) -> str | None:
        return None

    def target_file(self, path: str) -> bytes | None:
        return None

    def read_memory(self, address: int, length: int) -> bytes:
        offset = self._check_range(address, length)
        return bytes(self.memory[offset : offset + length])

    def write_memory(self, address: int, data: bytes) -> None:
        offset = self._check_range(address, len(data))
        self.memory[offset : offset + len(data)] = data

    # -- Target: breakpoints and watchpoints -------------------------------------
    def insert_breakpoint(self, address: int, *, hardware: bool) -> None:
        self.breakpoints[address] = hardware

    def remove_breakpoint(self, address: int, *, hardware: bool) -> None:
        self.breakpoints.pop(address, None)

    def insert_watchpoint(self, kind: WatchKind, address: int, length: int) -> None:
        if length <= 0 or address < 0 or address + length > 1 << 32:
            raise TargetError(f"bad watchpoint range {address:#x}+{length}", errno=EINVAL)
        self.watchpoints.append((kind, address, length))

    def remove_watchpoint(self, kind: WatchKind, address: int, length: int) -> None:
        if (kind, address, length) in self.watchpoints:
            self.watchpoints.remove((kind, address, length))

    # -- Target: running ---------------------------------------------------------
    def step_is_bounded(self) -> bool:
        return self.bounded

    def resume(
        self,
        *,
        step: bool,
        direction: Direction,
        interrupted: Interrupted,
        report: Report = no_report,
    ) -> StopEvent:
        self.resumes.append((step, direction))
        if direction is Direction.BACKWARD and not self.reverse:
            raise TargetError("this FakeTarget cannot run backward", errno=EINVAL)
        self.running = True
        try:
            if self.script:
                stop = self.script.pop(0)
                self.icount = stop.icount
            elif direction is Direction.BACKWARD:
                stop = self._backward(step=step)
            else:
                stop = self._forward(step=step, interrupted=interrupted)
        finally:
            self.running = False
        self._last_stop = stop
        return stop

    def _poll(self, interrupted: Interrupted) -> bool:
        self.polls += 1
        return interrupted()

    def _execute_one(self, *, spin: bool) -> StopEvent | None:
        """One instruction; a stop event if it faults or ends the program."""
        if self._exit is not None:
            return self._exit
        if self._fault_pending:
            # The fault was reported; going on delivers it: the process dies.
            self._exit = StopEvent(StopKind.EXITED, self.icount, signal=SIGSEGV)
            return self._exit
        eip = self.eip
        if not 0 <= eip - self.base < len(self.memory):
            self._fault_pending = True
            return StopEvent(StopKind.SIGNAL, self.icount, signal=SIGSEGV)
        del self._trail[self.icount :]
        self._trail.append(eip)
        self.icount += 1
        if eip == self.end:
            if not spin:
                self._exit = StopEvent(StopKind.EXITED, self.icount, exit_code=self.exit_code)
                return self._exit
            return None  # jmp $
        self.eip = eip + 1
        return None

    def _forward(self, *, step: bool, interrupted: Interrupted) -> StopEvent:
        spin = self.spin
        # The first instruction runs even if a breakpoint is on it (step over).
        stop = self._execute_one(spin=spin)
        if stop is not None:
            return stop
        if step:
            return StopEvent(StopKind.STEP, self.icount)
        give_up = None if self.spin_seconds is None else time.monotonic() + self.spin_seconds
        since_poll = 0
        while True:
            if self.eip in self.breakpoints:
                return StopEvent(
                    StopKind.BREAKPOINT, self.icount, hardware=self.breakpoints[self.eip]
                )
            spinning = spin and self.eip == self.end
            if spinning and give_up is not None and time.monotonic() >= give_up:
                spin = spinning = False
            since_poll += 1
            if spinning or since_poll >= POLL_INSTRUCTIONS:
                since_poll = 0
                if self._poll(interrupted):
                    return StopEvent(StopKind.INTERRUPT, self.icount, signal=SIGINT)
                if spinning:
                    time.sleep(SPIN_POLL_SECONDS)
            stop = self._execute_one(spin=spin)
            if stop is not None:
                return stop

    def _backward(self, *, step: bool) -> StopEvent:
        self._exit = None
        self._fault_pending = False
        while self.icount > 0:
            self.icount -= 1
            self.eip = self._trail[self.icount]
            if step:
                return StopEvent(StopKind.STEP, self.icount)
            if self.eip in self.breakpoints:
                return StopEvent(
                    StopKind.BREAKPOINT, self.icount, hardware=self.breakpoints[self.eip]
                )
        return StopEvent(StopKind.HISTORY_BEGIN, 0)

    # -- Target: the rest --------------------------------------------------------
    def monitor(self, command: str, interrupted: Interrupted) -> tuple[str, StopEvent | None]:
        self.monitor_commands.append(command)
        words = command.split()
        if not words or words == ["help"]:
            return FAKE_HELP, None
        if words == ["when"]:
            return f"Current icount: {self.icount}\n", None
        raise TargetError(f"unknown monitor command {words[0]!r}", errno=EINVAL)

    def kill(self) -> None:
        self.killed = True
        self.detach()

    def detach(self) -> None:
        self.detached += 1
        self.breakpoints.clear()
        self.watchpoints.clear()


# -- the conformance suite ---------------------------------------------------------

#: How long a continue in ``check_target`` may run before it is interrupted.
RUN_DEADLINE_SECONDS: Final = 30.0
#: Instructions stepped from the start to find breakpoint addresses.
_STEPS: Final = 8
#: Registers any value can be written to and read back on every target.
DATA_REGISTERS: Final = (
    *("eax", "ecx", "edx", "ebx", "ebp", "esi", "edi"),
    *(f"st{i}" for i in range(8)),
    *(f"xmm{i}" for i in range(8)),
)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _deadline(seconds: float) -> Interrupted:
    limit = time.monotonic() + seconds

    def interrupted() -> bool:
        return time.monotonic() >= limit

    return interrupted


def _u32(value: bytes) -> int:
    return int.from_bytes(value[:4], "little")


def _eip(target: Target) -> int:
    return _u32(target.read_registers()["eip"])


def _resume(
    target: Target,
    *,
    step: bool,
    direction: Direction = Direction.FORWARD,
    interrupted: Interrupted | None = None,
) -> StopEvent:
    stop = target.resume(
        step=step,
        direction=direction,
        interrupted=interrupted or _deadline(RUN_DEADLINE_SECONDS),
    )
    _expect(isinstance(stop, StopEvent), f"resume returned {stop!r}, not a StopEvent")
    _expect(target.last_stop == stop, f"last_stop {target.last_stop} is not the last resume {stop}")
    return stop


def _expect_refused(action: Callable[[], object], what: str) -> None:
    try:
        action()
    except TargetError as exc:
        _expect(
            isinstance(exc.errno, int) and 0 < exc.errno < 256,
            f"{what}: TargetError errno {exc.errno!r} does not fit an Exx reply",
        )
        return
    raise AssertionError(f"{what}: expected TargetError")


def _close(target: Target) -> None:
    close = getattr(target, "close", None)
    if callable(close):
        close()


def _check_fresh(target: Target) -> None:
    _expect(target.last_stop.icount == 0, f"a new target starts at icount 0: {target.last_stop}")
    _expect(isinstance(target.can_reverse, bool), "can_reverse is a bool")
    _expect(isinstance(target.step_is_bounded(), bool), "step_is_bounded() is a bool")


def _check_registers(target: Target) -> None:
    before = target.last_stop
    regs = target.read_registers()
    names = [spec.name for spec in i386.REGISTERS]
    _expect(
        set(regs) == set(names),
        f"read_registers names: missing {sorted(set(names) - set(regs))}, "
        f"unknown {sorted(set(regs) - set(names))}",
    )
    for spec in i386.REGISTERS:
        value = regs[spec.name]
        _expect(
            isinstance(value, bytes) and len(value) == spec.size,
            f"register {spec.name} must be {spec.size} bytes, got {value!r}",
        )
    for spec in i386.REGISTERS:
        target.write_register(spec.name, regs[spec.name])
    _expect(target.read_registers() == regs, "writing back every register changed some")
    for number, name in enumerate(DATA_REGISTERS):
        size = i386.REGISTER_BY_NAME[name].size
        value = bytes((0x11 * (number + 1) + i) & 0xFF for i in range(size))
        target.write_register(name, value)
        got = target.read_registers()[name]
        _expect(got == value, f"wrote {value.hex()} to {name}, read back {got.hex()}")
        target.write_register(name, regs[name])
    _expect(target.read_registers() == regs, "restoring the registers did not restore them")
    _expect_refused(lambda: target.write_register("eax", b"\x01\x02"), "a 2-byte eax")
    _expect_refused(lambda: target.write_register("rax", bytes(8)), "an unknown register")
    _expect(target.last_stop == before, "register access must not run the guest")


def _check_memory(target: Target, unmapped: int) -> None:
    before = target.last_stop
    address = (_u32(target.read_registers()["esp"]) - 64) & ~3
    original = target.read_memory(address, 32)
    _expect(len(original) == 32, f"read_memory(…, 32) returned {len(original)} bytes")
    pattern = bytes(range(0xA0, 0xC0))
    target.write_memory(address, pattern)
    _expect(target.read_memory(address, 32) == pattern, "memory write did not read back")
    _expect(target.read_memory(address + 5, 3) == pattern[5:8], "unaligned read is wrong")
    target.write_memory(address, original)
    _expect(target.read_memory(address, 32) == original, "memory restore did not read back")
    _expect_refused(lambda: target.read_memory(unmapped, 4), f"reading unmapped {unmapped:#x}")
    _expect_refused(lambda: target.write_memory(unmapped, bytes(4)), f"writing {unmapped:#x}")
    _expect(target.last_stop == before, "memory access must not run the guest")


def _trail(make_target: Callable[[], Target]) -> list[int]:
    """eip at icount 0.._STEPS, by single steps on a fresh target."""
    target = make_target()
    try:
        eips = [_eip(target)]
        for n in range(1, _STEPS + 1):
            stop = _resume(target, step=True)
            _expect(
                stop.kind is StopKind.STEP and stop.icount == n,
                f"step {n} from the start gave {stop}, expected a STEP at icount {n}",
            )
            eips.append(_eip(target))
        return eips
    finally:
        _close(target)


def _first_visits(eips: list[int]) -> list[int]:
    """Icounts (> 1) at which eip is at an address not seen before."""
    return [n for n in range(2, len(eips)) if eips[n] not in eips[:n]]


def _check_breakpoint(target: Target, eips: list[int], n: int, *, hardware: bool) -> None:
    address = eips[n]
    code = target.read_memory(address, 1)
    target.insert_breakpoint(address, hardware=hardware)
    _expect(target.read_memory(address, 1) == code, "a breakpoint must not show in memory")
    stop = _resume(target, step=False)
    _expect(
        stop.kind is StopKind.BREAKPOINT and stop.icount == n,
        f"breakpoint at {address:#x}: expected BREAKPOINT at icount {n}, got {stop}",
    )
    _expect(stop.hardware is hardware, f"breakpoint hardware={hardware}, stop says {stop}")
    _expect(_eip(target) == address, f"stopped at eip {_eip(target):#x}, not {address:#x}")
    # Stepping from a breakpoint executes the instruction under it, once.
    stop = _resume(target, step=True)
    _expect(
        stop.kind is StopKind.STEP and stop.icount == n + 1 and _eip(target) == eips[n + 1],
        f"a step from the breakpoint gave {stop} at {_eip(target):#x}, "
        f"expected icount {n + 1} at {eips[n + 1]:#x}",
    )


def _check_breakpoints(make_target: Callable[[], Target], eips: list[int]) -> None:
    visits = _first_visits(eips[:-1])
    _expect(bool(visits), f"the first {_STEPS} steps visit too few addresses: {eips}")
    first = visits[0]
    # A second breakpoint reached after the first without passing it again.
    later = [n for n in visits if n > first and eips[first] not in eips[first + 1 : n]]
    _expect(bool(later), f"the first {_STEPS} steps visit too few addresses: {eips}")
    second = later[-1]
    for hardware in (False, True):
        target = make_target()
        try:
            _check_breakpoint(target, eips, first, hardware=hardware)
        finally:
            _close(target)
    # Continuing from a breakpoint that stays inserted moves on.
    target = make_target()
    try:
        target.insert_breakpoint(eips[first], hardware=False)
        target.insert_breakpoint(eips[second], hardware=False)
        stop = _resume(target, step=False)
        _expect(stop.icount == first, f"expected the breakpoint at icount {first}, got {stop}")
        stop = _resume(target, step=False)
        _expect(
            stop.kind is StopKind.BREAKPOINT and stop.icount == second,
            f"continuing from a breakpoint: expected icount {second}, got {stop}",
        )
    finally:
        _close(target)
    # A removed breakpoint no longer stops.
    target = make_target()
    try:
        target.insert_breakpoint(eips[first], hardware=False)
        target.insert_breakpoint(eips[second], hardware=True)
        target.remove_breakpoint(eips[first], hardware=False)
        stop = _resume(target, step=False)
        _expect(
            stop.kind is StopKind.BREAKPOINT and stop.icount == second and stop.hardware,
            f"after removing the first breakpoint: expected icount {second}, got {stop}",
        )
    finally:
        _close(target)
    # detach() drops breakpoints and watchpoints.
    target = make_target()
    try:
        target.insert_breakpoint(eips[first], hardware=False)
        target.insert_breakpoint(eips[second], hardware=True)
        target.detach()
        stop = _resume(target, step=False)
        _expect(
            stop.kind is not StopKind.BREAKPOINT,
            f"breakpoints must be gone after detach(), got {stop}",
        )
    finally:
        _close(target)


def _check_steps(target: Target, eips: list[int]) -> None:
    for n in range(1, 4):
        stop = _resume(target, step=True)
        _expect(
            stop.kind is StopKind.STEP and stop.icount == n and _eip(target) == eips[n],
            f"step {n}: expected STEP at icount {n} at {eips[n]:#x}, got {stop}",
        )


def _check_watchpoints(target: Target) -> None:
    before = target.last_stop
    address = (_u32(target.read_registers()["esp"]) - 64) & ~3
    for kind in WatchKind:
        target.insert_watchpoint(kind, address, 4)
    for kind in WatchKind:
        target.remove_watchpoint(kind, address, 4)
    _expect(target.last_stop == before, "watchpoint changes must not run the guest")
    stop = _resume(target, step=True)
    _expect(stop.kind is StopKind.STEP, f"a step after removing watchpoints gave {stop}")


def _check_monitor(target: Target) -> None:
    before = target.last_stop
    text, stop = target.monitor("help", never)
    _expect(isinstance(text, str) and bool(text.strip()), f"monitor help returned {text!r}")
    _expect(stop is None, f"monitor help must not move the target: {stop}")
    _expect(target.last_stop == before, "monitor help must not run the guest")


def _check_backward(make_target: Callable[[], Target], eips: list[int]) -> None:
    target = make_target()
    try:
        if not target.can_reverse:
            _expect_refused(
                lambda: target.resume(step=True, direction=Direction.BACKWARD, interrupted=never),
                "a backward step on a target that cannot reverse",
            )
            return
        for _ in range(3):
            _resume(target, step=True)
        stop = _resume(target, step=True, direction=Direction.BACKWARD)
        _expect(
            stop.kind is StopKind.STEP and stop.icount == 2 and _eip(target) == eips[2],
            f"a backward step from icount 3: expected STEP at 2, got {stop}",
        )
        target.insert_breakpoint(eips[1], hardware=False)
        stop = _resume(target, step=False, direction=Direction.BACKWARD)
        _expect(
            stop.kind is StopKind.BREAKPOINT and stop.icount == 1,
            f"a backward continue to a breakpoint at icount 1 gave {stop}",
        )
        target.remove_breakpoint(eips[1], hardware=False)
        stop = _resume(target, step=False, direction=Direction.BACKWARD)
        _expect(
            stop.kind is StopKind.HISTORY_BEGIN and stop.icount == 0 and _eip(target) == eips[0],
            f"a backward continue to the start gave {stop}",
        )
    finally:
        _close(target)


def _check_interrupt(make_spinning: Callable[[], Target]) -> None:
    target = make_spinning()
    try:
        calls = 0

        def interrupted() -> bool:
            nonlocal calls
            calls += 1
            return calls > 3

        t0 = time.monotonic()
        stop = _resume(target, step=False, interrupted=interrupted)
        elapsed = time.monotonic() - t0
        _expect(
            stop.kind is StopKind.INTERRUPT and stop.signal == SIGINT,
            f"an interrupted run must stop with INTERRUPT/SIGINT, got {stop}",
        )
        _expect(calls == 4, f"the run went on after interrupted() said so ({calls} polls)")
        _expect(elapsed < 5.0, f"four polls of interrupted() took {elapsed:.1f} s")
    finally:
        _close(target)


def _with(make_target: Callable[[], Target], check: Callable[[Target], None]) -> None:
    target = make_target()
    try:
        check(target)
    finally:
        _close(target)


def check_target(
    make_target: Callable[[], Target],
    *,
    make_spinning: Callable[[], Target] | None = None,
    unmapped: int = 0,
) -> None:
    """Check the ``Target`` contract on targets from ``make_target``.

    Args:
        make_target: returns a new target, stopped at icount 0 at the same
            start state every time, whose program runs at least 9
            instructions, the first 8 of them without a system call, and
            then ends (or stops on its own) within a few seconds.  Its esp
            must point into writable memory with 64 bytes mapped below it.
            Targets with a ``close()`` method are closed when done with.
        make_spinning: optional; returns a target whose program runs forever,
            to check that ``resume`` stops as soon as ``interrupted`` is true.
        unmapped: an address with nothing mapped in the 4 bytes from it.

    Raises:
        AssertionError: the first broken rule, named in the message.
    """
    _with(make_target, _check_fresh)
    _with(make_target, _check_registers)
    _with(make_target, lambda t: _check_memory(t, unmapped))
    eips = _trail(make_target)
    _with(make_target, lambda t: _check_steps(t, eips))
    _check_breakpoints(make_target, eips)
    _with(make_target, _check_watchpoints)
    _with(make_target, _check_monitor)
    _check_backward(make_target, eips)
    _with(make_target, lambda t: t.kill())
    if make_spinning is not None:
        _check_interrupt(make_spinning)
