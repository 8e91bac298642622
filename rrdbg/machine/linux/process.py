"""The process tree: what the processes of one machine share.

Role: ``System`` is the part of the kernel that is not any one process's:
the process table (each process's kernel side is a ``Linux``, kernel.py),
the processes that have ended and wait to be reaped (``Zombie``), the
open-file table every fd table refers into (a pipe or file inherited across
fork is one open file: one offset, one set of status flags, released on the
host when its last descriptor anywhere closes), virtual time, and the
counter that gives pids and tids (one number space, as on Linux).

Invariants: ``procs`` holds every process that has not ended, by pid; a
process that ended is in ``zombies`` until its parent reaps it (or at once
gone, when nobody will: its parent ignores SIGCHLD or has ended too).  The
first process (``root``) is the one rrdbg started: its status is the
machine's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rrdbg.machine.linux.fdtable import OpenFile

if TYPE_CHECKING:
    from rrdbg.machine.host import Ids
    from rrdbg.machine.linux.kernel import Linux, LinuxState
    from rrdbg.machine.linux.task import Task

#: Instructions a thread runs before the scheduler may switch to another
#: (docs/threads.md says how it was chosen).  Recordings store theirs.
DEFAULT_QUANTUM = 5_000_000

#: si_code values of SIGCHLD (waitid's infop, the signal's siginfo).
CLD_EXITED = 1
CLD_KILLED = 2
SIGCHLD = 17


@dataclass(slots=True)
class NewProcess:
    """A child fork just made, for the machine to give an address space
    (a copy of the parent's) and registers (the parent's, EAX = 0)."""

    state: LinuxState
    ids: Ids
    #: The child's stack pointer (0: the parent's).
    stack: int
    #: CLONE_CHILD_SETTID: where the child's tid goes in its memory (0: nowhere).
    child_tid: int


@dataclass(slots=True)
class ExecRequest:
    """An execve that passed its checks, for the machine to carry out after
    the call: ``path`` is the program's file as the host opens it,
    ``image`` its bytes, ``argv`` after any #! interpreters, ``filename``
    the path as the program gave it (AT_EXECFN)."""

    path: bytes
    image: bytes
    argv: list[bytes]
    envp: list[bytes]
    filename: bytes


@dataclass(slots=True)
class Zombie:
    """A process that has ended, kept until its parent waits for it."""

    pid: int
    ppid: int
    pgid: int
    uid: int
    #: The exit code, or the signal that killed it.
    code: int | None
    signal: int | None

    @property
    def wait_status(self) -> int:
        """The status word wait4 stores: code << 8, or the signal."""
        if self.signal is not None:
            return self.signal & 0x7F
        return ((self.code or 0) & 0xFF) << 8

    def to_json(self) -> list[Any]:
        return [self.pid, self.ppid, self.pgid, self.uid, self.code, self.signal]

    @classmethod
    def from_json(cls, data: list[Any]) -> Zombie:
        pid, ppid, pgid, uid, code, signal = data
        return cls(
            int(pid),
            int(ppid),
            int(pgid),
            int(uid),
            None if code is None else int(code),
            None if signal is None else int(signal),
        )


@dataclass(slots=True)
class System:
    """The machine-wide kernel state (see the module's docstring)."""

    procs: dict[int, Linux] = field(default_factory=dict)
    zombies: dict[int, Zombie] = field(default_factory=dict)
    files: dict[int, OpenFile] = field(default_factory=dict)
    #: Virtual time the machine has spent with no instruction running
    #: (sleeps, waits): CLOCK_MONOTONIC = icount + sleep_ns.
    sleep_ns: int = 0
    #: The next pid or tid to give (0: none given yet: the root's pid + 1).
    next_pid: int = 0
    #: The first process's pid, and how it ended once it has (the
    #: machine's status, reported when every process has ended).
    root: int = 0
    root_code: int | None = None
    root_signal: int | None = None
    #: The scheduler's time slice in instructions (a recording keeps it).
    quantum: int = DEFAULT_QUANTUM
    #: The CPUs sched_getaffinity reports (the host's when run live; a
    #: recording keeps the number): programs size their thread pools by
    #: it, and the threads still run one at a time.
    cpus: int = 1
    #: A timer armed by a syscall fires at its exact icount even before the
    #: machine's next stop; off when replaying a recording made before (it
    #: fired at the next stop).
    exact_timers: bool = True
    #: Reads wait as interruptible ones (wait_to_read); off when replaying
    #: a recording made before they did (its log has no waits).
    interruptible_reads: bool = True
    #: A read of the console that would wait while other tasks could run
    #: blocks only its task (sched.poll_host_waits); off when replaying a
    #: recording made before (the whole machine waited in the read).
    task_host_waits: bool = True
    #: /proc about the machine's processes comes from the kernel (procfs.py);
    #: off when replaying a recording made before (it read the host's).
    kernel_proc: bool = True
    #: What has been reported on stderr once (unknown syscalls, warnings).
    reported: set[int] = field(default_factory=set)
    warned: set[str] = field(default_factory=set)

    def new_pid(self) -> int:
        if not self.next_pid:
            self.next_pid = self.root + 1
        pid = self.next_pid
        self.next_pid += 1
        return pid

    def live(self) -> list[Linux]:
        """Every process that has not ended, in pid order."""
        return [self.procs[p] for p in sorted(self.procs)]

    def tasks(self) -> list[tuple[Task, Linux]]:
        """Every task of every live process, in tid order, with its process."""
        out = [(t, k) for k in self.procs.values() for t in k.state.tasks()]
        out.sort(key=lambda tk: tk[0].tid)
        return out

    def owner(self, tid: int) -> Linux | None:
        """The process a tid (or pid) belongs to."""
        k = self.procs.get(tid)
        if k is not None:
            return k
        for k in self.procs.values():
            if k.state.find(tid) is not None:
                return k
        return None

    def children(self, pid: int) -> list[int]:
        """The pids of ``pid``'s children, live and ended, in pid order."""
        live = [p for p, k in self.procs.items() if k.state.ppid == pid]
        dead = [p for p, z in self.zombies.items() if z.ppid == pid]
        return sorted(live + dead)

    def group(self, pgid: int) -> list[Linux]:
        return [k for k in self.live() if k.pgid == pgid]
