"""The task: one thread of execution and the kernel state that is its own.

Linux keeps per thread: the thread id, the blocked-signal mask, pending
signals sent to that thread, the alternate signal stack, the TLS descriptors
(``set_thread_area``), the ``clear_child_tid`` address (``set_tid_address``),
the robust futex list, the name ``prctl(PR_SET_NAME)`` sets, and the syscall
a signal interrupted.  Everything else (memory, fds, signal dispositions,
timers, the working directory) belongs to the process (``LinuxState``),
which its threads share.

A task that is not running keeps its CPU registers as a saved Unicorn
context (``context``); the running one's are in the CPU.  A task blocked in
the kernel (a futex wait, a sleep) says on what (``Wait``); the scheduler
(sched.py) wakes it with the result its syscall returns.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from rrdbg.machine.linux.signals import SignalState


@dataclass(slots=True)
class Wait:
    """What a blocked task waits for.

    ``kind`` is ``"futex"`` (woken by a FUTEX_WAKE on ``address`` whose
    bitset meets ``bitset``) or ``"sleep"`` (woken only by its deadline or a
    signal).  ``deadline`` is virtual nanoseconds (0: none); ``timeout`` is
    what the syscall returns when it passes.  ``order`` makes wake-ups FIFO.
    """

    kind: str
    address: int = 0
    bitset: int = 0xFFFFFFFF
    deadline: int = 0
    timeout: int = 0
    order: int = 0
    #: nanosleep's remaining-time pointer and format (EINTR writes it).
    rem: int = 0
    rem_format: str = ""
    #: The syscall that blocked (a signal may make it again: SA_RESTART).
    nr: int = 0

    def to_json(self) -> list[Any]:
        return list(dataclasses.astuple(self))

    @classmethod
    def from_json(cls, data: list[Any]) -> Wait:
        kind, address, bitset, deadline, timeout, order, rem, rem_format, *rest = data
        numbers = (int(n) for n in (address, bitset, deadline, timeout, order, rem))
        a, b, d, t, o, r = numbers
        nr = int(rest[0]) if rest else 0
        return cls(str(kind), a, b, d, t, o, r, str(rem_format), nr)


@dataclass(slots=True)
class Task:
    #: The thread id (the process id for the first task).
    tid: int = 0
    #: Blocked signals (bit n-1 for signal n).
    sigmask: int = 0
    #: Pending signals, the alternate stack, sigsuspend's saved mask, the
    #: interrupted syscall (signals.py).
    signals: SignalState = field(default_factory=SignalState)
    #: GDT index -> the user_desc that set_thread_area installed there.
    tls: dict[int, bytes] = field(default_factory=dict)
    #: set_tid_address: cleared (and woken) when the task exits.
    tid_address: int = 0
    #: prctl(PR_SET_NAME).
    comm: bytes = b""
    #: set_robust_list's head (0: none).
    robust_list: int = 0
    #: The saved CPU context while another task runs (empty while running).
    context: bytes = b""
    #: What the task is blocked on, or None when it can run.
    wait: Wait | None = None
    #: EAX to give the task when it runs next (a blocking call's result).
    result: int | None = None
    #: The icount at which it was last switched out (0: it never ran): its
    #: latest instruction is the one just before.
    ran_until: int = 0
    #: A poll/select blocked on the process's own pipes: its deadline in
    #: virtual ns (0: none), kept while the call is made again.
    poll_deadline: int = 0
    #: A blocking write to an own pipe waiting for room: bytes written so far.
    pipe_done: int = 0

    @property
    def exited(self) -> bool:
        """It called exit and waits to be dropped at the next switch."""
        return self.wait is not None and self.wait.kind == "exited"

    def gdt_entry(self, index: int) -> tuple[int, int, int, int] | None:
        """The GDT descriptor (base, limit, access, flags) that the TLS
        entry ``index`` of this task asks for; None: the entry is empty."""
        desc = self.tls.get(index)
        if desc is None:
            return None
        _entry, base, limit, bits = struct.unpack("<iIII", desc)
        return (base, limit, *user_desc_bits(bits))

    def thread_json(self) -> dict[str, Any]:
        """The form a task other than the running one takes in a snapshot
        (the running one keeps the one-task keys of LinuxState)."""
        return {
            "tid": self.tid,
            "sigmask": self.sigmask,
            "signals": self.signals.to_json(),
            "tls": [[i, d.hex()] for i, d in sorted(self.tls.items())],
            "tid_address": self.tid_address,
            "comm": self.comm.hex(),
            "robust_list": self.robust_list,
            # A context is mostly zeros: 5.5 KB raw, ~0.5 KB compressed.
            "context": zlib.compress(self.context).hex(),
            "wait": None if self.wait is None else self.wait.to_json(),
            "result": self.result,
            "ran_until": self.ran_until,
            "poll_deadline": self.poll_deadline,
            "pipe_done": self.pipe_done,
        }

    @classmethod
    def from_thread_json(cls, data: dict[str, Any]) -> Task:
        wait = data.get("wait")
        result = data.get("result")
        return cls(
            tid=int(data["tid"]),
            sigmask=int(data["sigmask"]),
            signals=SignalState.from_json(data["signals"]),
            tls={int(i): bytes.fromhex(d) for i, d in data["tls"]},
            tid_address=int(data["tid_address"]),
            comm=bytes.fromhex(data["comm"]),
            robust_list=int(data.get("robust_list", 0)),
            context=zlib.decompress(bytes.fromhex(data["context"])),
            wait=None if wait is None else Wait.from_json(wait),
            result=None if result is None else int(result),
            ran_until=int(data.get("ran_until", 0)),
            poll_deadline=int(data.get("poll_deadline", 0)),
            pipe_done=int(data.get("pipe_done", 0)),
        )


def user_desc_bits(bits: int) -> tuple[int, int]:
    """The access byte and flags nibble of a GDT descriptor for the flags
    word of a ``struct user_desc`` (linux-abi.md 5.4)."""
    seg_32bit = bits & 1
    contents = (bits >> 1) & 3
    read_exec_only = (bits >> 3) & 1
    limit_in_pages = (bits >> 4) & 1
    seg_not_present = (bits >> 5) & 1
    useable = (bits >> 6) & 1
    access = 0x10 | 0x60 | ((seg_not_present ^ 1) << 7) | ((read_exec_only ^ 1) << 1)
    access |= (contents << 2) | 1
    flags = useable | (seg_32bit << 2) | (limit_in_pages << 3)
    return access, flags
