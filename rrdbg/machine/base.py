"""What every emulated machine offers the layers above (checkpoints, timelines).

Role: a ``Protocol`` so that checkpoints (and later snapshots and timelines)
work for the Linux process machine and the bare-metal PC alike.  A machine's
state is its CPU context (Unicorn's), its memory (``memory``) and everything
else as a JSON-able dict (``save_state``: the syscall layer for Linux, the
devices and virtual time for the PC).
"""

from __future__ import annotations

from typing import Any, Protocol

from rrdbg.machine.cpu import Cpu
from rrdbg.machine.engine import Engine
from rrdbg.machine.memory import GuestMemory


class Machine(Protocol):
    @property
    def engine(self) -> Engine: ...

    @property
    def memory(self) -> GuestMemory: ...

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
