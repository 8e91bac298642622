"""The task: one thread of execution and the kernel state that is its own.

Linux keeps per thread: the thread id, the blocked-signal mask, pending
signals sent to that thread, the alternate signal stack, the TLS descriptors
(``set_thread_area``), the ``clear_child_tid`` address (``set_tid_address``),
the name ``prctl(PR_SET_NAME)`` sets, and the syscall a signal interrupted.
Everything else (memory, fds, signal dispositions, timers, the working
directory) belongs to the process (``LinuxState``), which threads share.

A process has one task today; processes and threads will give it more,
each with its registers saved while another runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rrdbg.machine.linux.signals import SignalState


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
