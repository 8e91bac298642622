"""rrdbg's Python API: record programs and move through recordings without gdb.

Role: the public, typed surface for scripts and tests (re-exported from
``rrdbg``).  ``record_program()`` makes a recording; ``Recording`` opens one as a
timeline (the object gdb sessions drive) and offers the debugger's verbs as
methods: seek to an icount, step either way, read registers, memory and
symbols, run to breakpoints or watchpoints in either direction, find the last
write to memory.  Everything is deterministic: the same calls on the same
recording give the same answers.

Invariants: a ``Recording`` never changes its recording (as a replay session
in gdb); positions are instruction counts (icounts) from 0 to ``end``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from rrdbg.errors import RrdbgError

Direction = Literal["forward", "backward"]
WatchKind = Literal["write", "read", "access"]
_DIRECTIONS: tuple[Direction, ...] = ("forward", "backward")
_WATCH_KINDS: tuple[WatchKind, ...] = ("write", "read", "access")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """A typo must not silently mean something else: ValueError naming the choices."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}, not {value!r}")


@dataclass(frozen=True, slots=True)
class Stop:
    """Where and why a run stopped."""

    #: "breakpoint", "watchpoint", "step", "history-begin" (icount 0 going
    #: backward), "history-end", "signal" (a fatal fault), "exited",
    #: "position" (a seek target).
    kind: str
    icount: int
    pc: int
    #: ``name+offset`` of the pc in the program's symbols ("" if unknown).
    function: str
    #: The watched address, for watchpoint stops.
    address: int | None = None
    #: The signal number of a fault stop.
    signal: int | None = None
    #: The source file and line of the pc, from the program's DWARF line
    #: table (None without debug information there).
    file: str | None = None
    line: int | None = None

    @property
    def where(self) -> str:
        """``file:line`` if known, else ``function``, else the pc."""
        if self.file is not None:
            return f"{self.file}:{self.line}"
        return self.function or f"{self.pc:#x}"


@dataclass(frozen=True, slots=True)
class Write:
    """The last write to some memory before a position."""

    icount: int
    pc: int
    function: str
    #: "" for an instruction; "system call" (the kernel wrote a syscall's
    #: result there) or "interrupt entry" (a PC interrupt frame).
    how: str
    #: The source file and line of the writing instruction (None if unknown).
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What ``record_program()`` made."""

    directory: Path
    #: The exit status as a shell sees it (128 + signal for a fatal signal;
    #: isa-debug-exit's status for a kernel).
    status: int
    #: Instructions the run executed.
    icount: int


def record_program(
    program: str | os.PathLike[str],
    *args: str,
    output: str | os.PathLike[str],
    stdin: str | os.PathLike[str] | None = None,
    machine: Literal["linux", "pc"] = "linux",
    ram_mb: int = 32,
    append: str = "",
    snapshot_interval: int | None = None,
    force: bool = False,
    sysroot: str | os.PathLike[str] | None = None,
    quantum: int | None = None,
) -> RecordResult:
    """Run ``program`` (an i386 Linux executable, static or dynamically
    linked, or with ``machine="pc"`` a Multiboot kernel) and record it into
    the directory ``output``, as ``rrdbg record`` does.  ``sysroot`` is
    ``--sysroot``, ``quantum`` is ``--quantum`` (threads' time slice).  The
    guest's output goes to this process's stdout."""
    from rrdbg.record.recording import PcOptions, record_pc
    from rrdbg.record.recording import record as record_linux

    out = str(output)
    source = None if stdin is None else str(stdin)
    if machine == "pc":
        if args:
            raise RrdbgError("a kernel takes no arguments (use append=...)")
        result, _ = record_pc(
            str(program),
            out,
            PcOptions(ram_mb, append),
            interval=snapshot_interval,
            stdin=source,
            force=force,
            force_hint="pass force=True to replace it",
        )
        return RecordResult(Path(out), result.status or 0, result.icount)
    if machine != "linux":
        raise ValueError(f"machine must be one of 'linux', 'pc', not {machine!r}")
    stats = record_linux(
        str(program),
        list(args),
        out,
        interval=snapshot_interval,
        stdin=source,
        force=force,
        force_hint="pass force=True to replace it",
        sysroot=None if sysroot is None else str(sysroot),
        quantum=quantum,
    )
    return RecordResult(Path(out), stats.result.exit.shell_status, stats.result.icount)


def _never() -> bool:
    return False


class Recording:
    """A recording opened for inspection: a position in its history that moves.

    ``with rrdbg.Recording("hello.rr") as r: r.run_to("main"); print(r.pc)``.
    The guest's console output is not shown (``show_output=True`` shows it
    once, as execution first passes it)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        show_output: bool = False,
        checkpoint_memory_mb: int = 256,
    ) -> None:
        from rrdbg.timeline.timeline import Timeline

        self.path = Path(directory)
        self._sink = os.open(os.devnull, os.O_WRONLY)
        try:
            out = 1 if show_output else self._sink
            self._t = Timeline.replay(str(self.path), stdout_fd=out, stderr_fd=out)
        except BaseException:
            os.close(self._sink)
            raise
        self._t.budget = checkpoint_memory_mb << 20
        #: The last icount of the history (the end of the recording).
        self.end: int = self._t.history_end if self._t.history_end is not None else 0

    # -- position ---------------------------------------------------------
    @property
    def icount(self) -> int:
        """Instructions executed so far: the position in the history."""
        return self._t.icount

    def seek(self, icount: int) -> None:
        """Go to instruction count ``icount`` (0 ..= ``end``), either way."""
        if not 0 <= icount <= self.end:
            raise RrdbgError(f"icount {icount} is outside the recording (0..{self.end})")
        self._t.seek(icount)

    def step(self, count: int = 1) -> Stop:
        """Execute ``count`` instructions (stopping early at the end of history)."""
        return self._steps(count, "forward")

    def step_back(self, count: int = 1) -> Stop:
        """Go back ``count`` instructions (stopping early at icount 0)."""
        return self._steps(count, "backward")

    def _steps(self, count: int, direction: Direction) -> Stop:
        _check_choice("direction", direction, _DIRECTIONS)
        if count < 1:
            raise RrdbgError("the step count must be at least 1")
        target = self.icount + count if direction == "forward" else self.icount - count
        if 0 <= target <= self.end:
            self._t.seek(target)
            status = self._t.machine.exit
            if status is not None and status.signal is not None:
                # The last instruction was a fatal trap (int3): it retired
                # and raised its signal on the way here.
                return self._stop("signal", signal=status.signal)
            return self._stop("step")
        # Past either end: go to it, and let one more step say how it ends.
        self._t.seek(self.end if direction == "forward" else 0)
        return self.step_once(direction)

    def step_once(self, direction: Direction = "forward") -> Stop:
        """One instruction, as gdb's stepi / reverse-stepi (watchpoints apply)."""
        _check_choice("direction", direction, _DIRECTIONS)
        return self._resume(step=True, direction=direction)

    # -- state ------------------------------------------------------------------
    @property
    def pc(self) -> int:
        return self.register("eip")

    def register(self, name: str) -> int:
        """A register by its gdb name (eax, eip, eflags, cs, st0, xmm0, ...)."""
        from rrdbg.errors import TargetError

        try:
            return int.from_bytes(self._t.read_register(name), "little")
        except (TargetError, KeyError, ValueError):
            raise RrdbgError(f"no register named {name!r}") from None

    def registers(self) -> dict[str, int]:
        """All registers gdb sees, by name."""
        return {n: int.from_bytes(v, "little") for n, v in self._t.read_registers().items()}

    def read_memory(self, address: int, length: int) -> bytes:
        """``length`` bytes of guest memory (RrdbgError if unmapped)."""
        return self._t.read_memory(address, length)

    def read_int(self, address: int, size: int = 4, *, signed: bool = False) -> int:
        """A little-endian integer from guest memory."""
        return int.from_bytes(self.read_memory(address, size), "little", signed=signed)

    def symbol(self, name: str) -> int:
        """The address of a function or global object of the program."""
        address = self._t.symbols.address(name)
        if address is None:
            raise RrdbgError(f"no symbol {name!r} in {self._t.machine.program_path}")
        return address

    def describe(self, address: int) -> str:
        """``name+offset`` of an address ("" if it is in no known symbol)."""
        return self._t.symbols.describe(address)

    def source_line(self, address: int) -> tuple[str, int] | None:
        """(file, line) of the code at an address, from the DWARF line table."""
        return self._t.lines.lookup(address)

    # -- breakpoints and watchpoints -------------------------------------------
    def _address(self, where: int | str) -> int:
        return where if isinstance(where, int) else self.symbol(where)

    def add_breakpoint(self, where: int | str) -> int:
        """A breakpoint at an address or a function's first instruction; the address."""
        address = self._address(where)
        self._t.insert_breakpoint(address, hardware=False)
        return address

    def remove_breakpoint(self, where: int | str) -> None:
        self._t.remove_breakpoint(self._address(where), hardware=False)

    def add_watchpoint(self, where: int | str, length: int = 4, kind: WatchKind = "write") -> int:
        """Stop when that memory is written (read, accessed); the address."""
        from rrdbg.target.interface import WatchKind as Kind

        _check_choice("kind", kind, _WATCH_KINDS)
        address = self._address(where)
        self._t.insert_watchpoint(Kind[kind.upper()], address, length)
        return address

    def remove_watchpoint(
        self, where: int | str, length: int = 4, kind: WatchKind = "write"
    ) -> None:
        from rrdbg.target.interface import WatchKind as Kind

        _check_choice("kind", kind, _WATCH_KINDS)
        self._t.remove_watchpoint(Kind[kind.upper()], self._address(where), length)

    def clear(self) -> None:
        """Remove every breakpoint and watchpoint."""
        self._t.detach()

    # -- running -------------------------------------------------------------------
    def cont(self) -> Stop:
        """Run forward to the next breakpoint or watchpoint, or the end of history."""
        return self._resume(step=False, direction="forward")

    def reverse_cont(self) -> Stop:
        """Run backward to the previous breakpoint or watchpoint hit, or icount 0."""
        return self._resume(step=False, direction="backward")

    def run_to(self, where: int | str, direction: Direction = "forward") -> Stop:
        """Run to the next (or previous) time execution reaches ``where``, with
        only that breakpoint in place; the other points come back after."""
        _check_choice("direction", direction, _DIRECTIONS)
        t = self._t
        saved_breaks, saved_watches = dict(t.breakpoints), list(t.watchpoints)
        t.breakpoints.clear()
        t.watchpoints.clear()
        try:
            t.insert_breakpoint(self._address(where), hardware=False)
            return self._resume(step=False, direction=direction)
        finally:
            t.breakpoints.clear()
            t.breakpoints.update(saved_breaks)
            t.watchpoints[:] = saved_watches

    def last_write(self, address: int | str, length: int = 4) -> Write | None:
        """The last write to [address, address+length) before the current
        position, or None; the position does not change."""
        found = self._t.last_write(self._address(address), length, _never)
        if found is None:
            return None
        k, pc, how = found
        file, line = self.source_line(pc) or (None, None)
        return Write(k, pc, self.describe(pc), how, file, line)

    def _resume(self, *, step: bool, direction: Direction) -> Stop:
        from rrdbg.target.interface import Direction as Dir
        from rrdbg.target.interface import StopKind

        event = self._t.resume(
            step=step,
            direction=Dir.FORWARD if direction == "forward" else Dir.BACKWARD,
            interrupted=_never,
        )
        kinds = {
            StopKind.BREAKPOINT: "breakpoint",
            StopKind.WATCHPOINT: "watchpoint",
            StopKind.STEP: "step",
            StopKind.HISTORY_BEGIN: "history-begin",
            StopKind.HISTORY_END: "history-end",
            StopKind.SIGNAL: "signal",
            StopKind.EXITED: "exited",
        }
        kind = kinds.get(event.kind, "position")
        address = event.watch[1] if event.watch is not None else None
        signal = event.signal if event.kind is StopKind.SIGNAL else None
        return self._stop(kind, address=address, signal=signal)

    def _stop(self, kind: str, *, address: int | None = None, signal: int | None = None) -> Stop:
        pc = self.pc
        file, line = self.source_line(pc) or (None, None)
        return Stop(kind, self.icount, pc, self.describe(pc), address, signal, file, line)

    # -- lifetime --------------------------------------------------------------------
    def close(self) -> None:
        if self._sink >= 0:
            self._t.close()
            os.close(self._sink)
            self._sink = -1

    def __enter__(self) -> Recording:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<rrdbg.Recording {str(self.path)!r} at icount {self.icount} of {self.end}>"
