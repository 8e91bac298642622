"""The ``Target`` interface: what a debugger session asks of a debuggee.

Role: the seam between the protocol side (``rsp``, ``target.session``) and
the emulation side (``timeline``, ``machine``).  Nothing here knows the wire
format or Unicorn.  Positions are instruction counts (icount): totally
ordered, so a stop event needs no other notion of time.

Contract (checked by tests/target/test_conformance.py against every target):
- every method but ``resume`` returns promptly and never runs the guest;
- ``resume`` runs the guest off the event loop and polls ``interrupted``
  often enough that a Ctrl-C stops it within ~100 ms;
- a refused request raises ``TargetError`` (its errno becomes an ``Exx``
  reply); guest faults are stop events, never exceptions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

SIGINT = 2
SIGTRAP = 5


class Direction(enum.Enum):
    FORWARD = "forward"
    BACKWARD = "backward"


class WatchKind(enum.Enum):
    """What a watchpoint reacts to (gdb's Z2, Z3, Z4)."""

    WRITE = "watch"
    READ = "rwatch"
    ACCESS = "awatch"


class StopKind(enum.Enum):
    """Why the guest stopped."""

    #: A single step completed.
    STEP = "step"
    #: A breakpoint address was reached (the instruction there has not run).
    BREAKPOINT = "breakpoint"
    #: A watched location was accessed (stopped just after the access going
    #: forward, just before it going backward, as x86 gdb expects).
    WATCHPOINT = "watchpoint"
    #: The client interrupted (Ctrl-C).
    INTERRUPT = "interrupt"
    #: A stop at an icount someone asked for (monitor replay_break, seek).
    POSITION = "position"
    #: The guest received a fatal signal (the faulting instruction did not run).
    SIGNAL = "signal"
    #: The guest exited (``exit_code``) or was killed by ``signal``.
    EXITED = "exited"
    #: No more history in the direction of travel (replaylog:end / begin).
    HISTORY_END = "history-end"
    HISTORY_BEGIN = "history-begin"
    #: The followed process made a new one (``child``) with fork or vfork;
    #: its vfork child exec'd or ended (VFORK_DONE); it exec'd ``path``.
    #: Reported going forward when the client asked for them.
    FORK = "fork"
    VFORK = "vfork"
    VFORK_DONE = "vfork-done"
    EXEC = "exec"


@dataclass(frozen=True, slots=True)
class StopEvent:
    kind: StopKind
    icount: int
    signal: int = SIGTRAP
    exit_code: int | None = None
    watch: tuple[WatchKind, int] | None = None
    #: Hardware breakpoint (Z1) rather than software (Z0).
    hardware: bool = False
    #: A one-line note for the user (shown through the console), or "".
    note: str = ""
    #: The thread the stop is about when it is not the one that runs next
    #: (a watchpoint met by the last instruction of a thread's time slice).
    thread: int | None = None
    #: FORK, VFORK, VFORK_DONE: the new (or finished) process's pid.
    child: int | None = None
    #: EXEC: the program the process runs now.
    path: str = ""
    #: A stop found going backward in another process the debugger holds
    #: (the target turns to it when it stops there).
    process: int | None = None


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    """A thread of the debuggee: its id (Linux's tid) and name (``comm``)."""

    tid: int
    name: str


Interrupted = Callable[[], bool]
#: Takes one line of progress for the user while a long run goes on; may be
#: called from the thread that runs the guest.
Report = Callable[[str], None]


def no_report(_text: str) -> None:
    """A ``Report`` that shows nothing."""


class Target(Protocol):
    """A stopped debuggee that can be inspected, changed and resumed."""

    @property
    def can_reverse(self) -> bool:
        """Whether ``resume`` accepts Direction.BACKWARD."""

    @property
    def last_stop(self) -> StopEvent:
        """The stop the target is in now (gdb's ``?``)."""

    @property
    def process_id(self) -> int:
        """The debuggee's process id (a thread id's ``p`` part)."""

    def threads(self, pid: int | None = None) -> list[ThreadInfo]:
        """Every live thread of process ``pid`` (the followed one by
        default), in tid order."""

    @property
    def current_thread(self) -> int:
        """The thread that stopped (the one that executes next)."""

    @property
    def has_processes(self) -> bool:
        """Whether the debuggee may fork and exec (fork/exec events)."""

    def process_ids(self) -> list[int]:
        """The live processes of the machine (the followed one among them)."""

    def debugged_processes(self) -> list[int]:
        """The processes the debugger holds, the followed one first: after a
        fork its child too until the debugger detaches it (gdb's
        ``detach-on-fork off`` keeps it).  Breakpoints in any of them stop."""

    def set_resumed(self, pids: frozenset[int] | None) -> None:
        """The processes the next resume is for (None: every one): stops in
        another process gdb holds are not reported (gdb thinks it stays
        where it is; it runs on as the history says)."""

    def frozen(self, pids: set[int]) -> set[int]:
        """Those of ``pids`` the debugger saw stop and has not resumed
        since: a run does not report their stops (they run on all the same)."""

    def follow_process(self, pid: int) -> None:
        """From now on the debugger looks at process ``pid`` (gdb turned to
        a child after a fork, or to another inferior); TargetError if there
        is no such process."""

    def detach_process(self, pid: int) -> bool:
        """gdb detaches from process ``pid``: True if the session goes on
        (another process was detached, or the followed one, leaving its
        newest child followed); False if there is nothing left to follow."""

    def set_process_events(self, on: bool) -> None:
        """Whether forward runs stop at the followed process's fork, vfork
        and exec (and its vfork child's exec or end)."""

    def select_thread(self, tid: int) -> None:
        """Until the next resume: registers are read from (and written to)
        thread ``tid``, and a single step steps that thread (running the
        others as the scheduler says until it has executed one instruction).
        TargetError if there is no such thread."""

    def read_registers(self) -> dict[str, bytes]:
        """All registers (of the selected thread) by gdb name, little-endian
        bytes of each register's size."""

    def write_register(self, name: str, value: bytes) -> None: ...

    def read_memory(self, address: int, length: int) -> bytes:
        """Exactly ``length`` bytes; TargetError if any of them is unmapped."""

    def auxv(self) -> bytes | None:
        """The process's auxiliary vector as the kernel gave it (``qXfer:auxv``;
        lldb needs AT_ENTRY), or None for a target without one."""

    def siginfo(self) -> bytes | None:
        """The siginfo (Linux's 128 bytes for i386) of the signal the target
        stopped for (``qXfer:siginfo:read``: gdb's ``$_siginfo``), or None
        when it is not stopped for a signal."""

    def libraries(self, annex: str) -> bytes | None:
        """The ``qXfer:libraries-svr4`` document (``annex``: gdb's
        ``start=...;prev=...``), or None for a program without a dynamic
        linker."""

    def exec_file(self) -> str | None:
        """The path of the program's file (``qXfer:exec-file``), or None."""

    def target_file(self, path: str) -> bytes | None:
        """The contents of a file of the debuggee that gdb may read (``vFile``):
        the program by its ``exec_file`` path; None for every other path."""

    def write_memory(self, address: int, data: bytes) -> None: ...

    def insert_breakpoint(self, address: int, *, hardware: bool) -> None: ...

    def remove_breakpoint(self, address: int, *, hardware: bool) -> None: ...

    def insert_watchpoint(self, kind: WatchKind, address: int, length: int) -> None: ...

    def remove_watchpoint(self, kind: WatchKind, address: int, length: int) -> None: ...

    def resume(
        self,
        *,
        step: bool,
        direction: Direction,
        interrupted: Interrupted,
        report: Report = no_report,
    ) -> StopEvent:
        """Run (or step) until a stop; may take long, so call it off the event loop.

        ``report`` receives progress lines during long searches (reverse-continue)."""

    def set_pass_signals(self, signals: frozenset[int]) -> None:
        """Signals (Linux numbers) to deliver without stopping (QPassSignals)."""

    def deliver_on_resume(self, signal: int | None) -> None:
        """The signal (Linux number) gdb asks to deliver when it next resumes
        forward (``C``/``S``), or None (``c``/``s``: the signal the target
        stopped for, if any, is not delivered)."""

    def step_is_bounded(self) -> bool:
        """True if a single step from here is certain to be quick: it cannot wait
        on the host (a live system call reading the console, say)."""

    def monitor(self, command: str, interrupted: Interrupted) -> tuple[str, StopEvent | None]:
        """Run a ``monitor`` command: its output, and a new stop if it moved in time."""

    def kill(self) -> None:
        """End the session's debuggee (gdb's ``k``); the target is unusable after."""

    def detach(self) -> None:
        """The client leaves: drop breakpoints and watchpoints."""
