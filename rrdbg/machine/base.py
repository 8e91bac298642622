"""What every emulated machine offers the layers above (checkpoints, timelines).

Role: ``Protocol``s so that checkpoints, snapshots and timelines work for
the Linux process machine and the bare-metal PC alike.  A machine's
state is its CPU context (Unicorn's), its memory (``memory``) and everything
else as a JSON-able dict (``save_state``: the syscall layer for Linux, the
devices and virtual time for the PC).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from rrdbg.machine.cpu import Cpu, Stop
from rrdbg.machine.engine import Engine
from rrdbg.machine.linux import ExitStatus
from rrdbg.machine.loader import Symbols
from rrdbg.machine.memory import GuestMemory, Region


class StateMemory(Protocol):
    """The memory a machine's snapshots save: ``GuestMemory`` itself, or
    every process's address space seen as one (machine.TreeMemory)."""

    def regions(self) -> Iterator[Region]: ...

    def view(self, addr: int, size: int) -> memoryview: ...

    def load_raw(self, addr: int, data: bytes | memoryview) -> None: ...

    def map(self, start: int, size: int, perms: int, name: str = "") -> None: ...

    def unmap_all(self) -> None: ...


class AddressSpace(Protocol):
    """What a debugger reads and instruments: one address space, its CPU."""

    @property
    def engine(self) -> Engine: ...

    @property
    def memory(self) -> GuestMemory: ...

    @property
    def cpu(self) -> Cpu: ...


class Machine(Protocol):
    @property
    def engine(self) -> Engine: ...

    @property
    def memory(self) -> GuestMemory: ...

    @property
    def debuggee(self) -> AddressSpace:
        """The process a debugger follows (a PC: the machine itself)."""

    @property
    def state_memory(self) -> StateMemory:
        """What snapshots save and restore (``memory`` for one address space)."""

    @property
    def cpu(self) -> Cpu: ...

    @property
    def icount(self) -> int: ...

    def save_state(self) -> dict[str, Any]:
        """Everything but the CPU context and memory, JSON-able."""

    def load_state(
        self, icount: int, cpu_context: bytes, state: dict[str, Any], *, keep_code: bool
    ) -> None:
        """Adopt a saved context, count and ``save_state`` dict (memory restored already)."""

    def virtual_ns(self) -> int:
        """The guest's clock (a snapshot's "VM clock")."""

    def digest(self) -> str:
        """SHA-256 of the whole machine state."""


class DebuggableMachine(Machine, Protocol):
    """What a timeline (``rrdbg/timeline``) needs to run and inspect a machine.

    ``run`` stops at exact instruction counts and leaves the machine in the
    one state that icount has, however it got there; ``exit`` is set once
    the machine has ended (a Linux exit or fatal signal; isa-debug-exit, a
    final halt or an unhandled fault on the PC)."""

    @property
    def exit(self) -> ExitStatus | None: ...

    @property
    def program_path(self) -> str: ...

    @property
    def exe_path(self) -> str:
        """The path the guest (and the recording) knows the program by."""

    @property
    def program_image(self) -> bytes:
        """The program file's bytes as loaded (gdb may fetch them: vFile)."""

    @property
    def current_exe(self) -> str:
        """The program the followed process runs now (``exe_path`` until it execs)."""

    @property
    def current_image(self) -> bytes:
        """That program's bytes."""

    def run(self, limit: int, *, exact: bool = True) -> Stop:
        """Run until ``limit`` or a stop (``Cpu.run``'s reasons, plus END)."""

    def event_icount(self) -> int:
        """The exact icount of a host call being made now (from inside a hook)."""

    def waits_on_host(self) -> bool:
        """Whether the next instruction may block on the live host."""

    def write_origin(self) -> tuple[int, int, str]:
        """(icount, pc, how) of a write the machine itself is making into guest
        memory now (a system call's result, an interrupt frame)."""

    def end_status(self) -> tuple[int | None, int | None]:
        """(exit code, signal) for the recording's END record."""

    def symbols(self) -> Symbols:
        """The program's symbols, to name code addresses."""

    def auxv(self) -> bytes | None:
        """The auxiliary vector the program started with (None: a kernel)."""

    def signal_info(self, signal: int) -> bytes | None:
        """The 128-byte siginfo of ``signal`` about to be delivered (pending)
        or of the fault that ended the program; None if there is none."""

    def libraries(self, annex: str = "") -> bytes | None:
        """The dynamic linker's library list (gdbserver's
        ``qXfer:libraries-svr4``); None: no dynamic linker."""

    # Threads (a PC is one): ids as the guest knows them.
    @property
    def pid(self) -> int: ...

    @property
    def running_tid(self) -> int:
        """The thread that executes the next instruction (any process)."""

    @property
    def multitask(self) -> bool:
        """Whether more than one task (thread, process) may run."""

    @property
    def current_tid(self) -> int:
        """The followed process's current thread (the one that executes the
        next instruction, or will when that process runs again)."""

    def threads(self) -> list[tuple[int, str]]:
        """(tid, name) of every live thread, in tid order."""

    def thread_ran_until(self, tid: int) -> int | None:
        """The icount a thread that is not running was last switched out at
        (0: never ran); None for the running thread or an unknown one."""

    def viewing(self, tid: int) -> AbstractContextManager[None]:
        """Inside, the CPU's registers are thread ``tid``'s (for reading)."""
