"""The kernel side of the process and the syscall dispatcher.

Role: ``Linux`` is the kernel side of one process: its memory map and brk,
its fd table (fdtable.py), signal dispositions and timers, working directory
and virtual clocks, and its task (task.py: the thread's mask, pending
signals, TLS); ``LinuxState`` is the part a snapshot saves.  ``dispatch``
looks a syscall number up in the table the ``sys_*`` modules fill with
``@syscall(nr)``.  Anything a call observes from outside the machine goes
through the ``Host``; the rest is state kept here, so the same inputs always
give the same results.

Time is virtual: one retired instruction is one nanosecond, plus whatever the
guest has slept.  CLOCK_REALTIME adds the host's wall-clock time at boot.

Errors are returned, never raised: a bad guest pointer gives -EFAULT, an
unknown syscall -ENOSYS (reported once on stderr by name and number).
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from rrdbg.errors import GuestMemoryError
from rrdbg.machine.host import FileStat, Host, Ids
from rrdbg.machine.linux.fdtable import FdTable, FileKind
from rrdbg.machine.linux.process import ExecRequest, NewProcess, System
from rrdbg.machine.linux.signals import (
    DEFAULT_IGNORE,
    DEFAULT_STOP,
    SI_KERNEL,
    SI_TIMER,
    SI_TKILL,
    SI_USER,
    SIG_DFL,
    SIG_IGN,
    UNBLOCKABLE,
    CpuAccess,
    Restored,
    SigAction,
    SignalState,
    Timer,
    bit,
    siginfo,
)
from rrdbg.machine.linux.task import Task, Wait
from rrdbg.machine.memory import GuestMemory
from rrdbg.machine.syscall_names import SYSCALL_NAMES

MMAP_TOP = 0xB7F00000
#: End of user space (3G/1G split). Above it live rrdbg's own pages (the GDT):
#: no syscall may map, unmap or re-protect anything there.
USER_TOP = 0xC0000000
NS_PER_INSN = 1
#: CLOCK_MONOTONIC at icount 0: a machine that has been up for a while.
MONOTONIC_BASE_NS = 1_000_000_000

_MAP_SHARED = 0x01
_MAP_PRIVATE = 0x02
_MAP_FIXED = 0x10
_MAP_ANONYMOUS = 0x20
_MAP_FIXED_NOREPLACE = 0x100000
_MREMAP_MAYMOVE = 1
_MREMAP_FIXED = 2
_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_EMPTY_PATH = 0x1000
_RLIM_INFINITY64 = (1 << 64) - 1

_TCGETS = 0x5401
_TCSETS, _TCSETSW, _TCSETSF = 0x5402, 0x5403, 0x5404
_TIOCGWINSZ = 0x5413
_TIOCGPGRP = 0x540F
_FIONBIO = 0x5421

_SIGPIPE = 13
O_NONBLOCK = 0o4000
_POLLIN = 1
#: A syscall cut short by a signal, to be restarted or to fail with EINTR
#: when the signal is delivered (never seen by the program).
ERESTARTSYS = 512
#: What a handler returns when its task now waits (``Linux.block``): EAX is
#: left alone and set when the task is woken (``Task.result``).
BLOCKED = -(1 << 40)

_UTSNAME = (b"Linux", b"rrdbg", b"6.1.0-rrdbg", b"#1 SMP PREEMPT_DYNAMIC", b"i686", b"(none)")


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How the process ended: an exit code, or the signal that killed it."""

    code: int | None = None
    signal: int | None = None

    @property
    def shell_status(self) -> int:
        """The status a shell reports: the code, or 128 + signal."""
        if self.signal is not None:
            return 128 + self.signal
        return (self.code or 0) & 0xFF


@dataclass(slots=True)
class LinuxState:
    """Kernel-side state of the process (part of a machine snapshot): what
    its threads share, and its one task (task.py)."""

    brk_start: int = 0
    brk: int = 0
    sleep_ns: int = 0
    fdt: FdTable = field(default_factory=FdTable.with_console)
    sigactions: dict[int, bytes] = field(default_factory=dict)
    #: alarm, setitimer and POSIX timers (signals.py), by timer id.
    timers: dict[int, Timer] = field(default_factory=dict)
    #: prctl's dumpable flag; the umask.
    dumpable: int = 1
    umask: int = 0o022
    #: The working directory after a chdir, canonical and absolute; empty:
    #: the host's own (rrdbg's), which relative paths then use as they are.
    cwd: bytes = b""
    #: The running task (its registers are the CPU's).
    task: Task = field(default_factory=Task)
    #: The process's other threads, by tid, each with its saved context.
    others: dict[int, Task] = field(default_factory=dict)
    #: The scheduler (sched.py): the icount at which the running task's
    #: time slice ends (0: not started), the next tid to give, and the
    #: counter that orders blocked tasks for FIFO wake-ups.
    slice_end: int = 0
    next_tid: int = 0
    wait_order: int = 0
    #: exit() of the first thread while others run: the process's status
    #: when the last one ends (Linux reports the leader's code).
    leader_code: int | None = None
    #: Process-directed signals every thread blocks (Linux's shared pending
    #: queue): the first thread to unblock or sigwait for one takes it.
    shared: list[tuple[int, bytes]] = field(default_factory=list)
    #: The process's place in the tree (process.py): its parent (0: the
    #: host's process that started rrdbg), process group and session (0:
    #: the first process's), the signal its parent gets when it ends, the
    #: pid of the parent a vfork suspended until this process execs or
    #: ends, and the pid of the process whose memory it shares (clone with
    #: CLONE_VM: its writes go back there when it execs or ends).
    ppid: int = 0
    pgid: int = 0
    sid: int = 0
    exit_signal: int = 17
    vfork_parent: int = 0
    vm_parent: int = 0
    #: The icounts at which it was made (fork) and last exec'd (0: never):
    #: a debugger's view of its history begins at the later one.
    born: int = 0
    exec_at: int = 0
    #: Where exec put the argument strings ([arg_start, arg_end): what
    #: /proc/PID/cmdline shows, as Linux's mm->arg_start/arg_end).
    arg_start: int = 0
    arg_end: int = 0

    def _process_fields(self) -> tuple[int, ...]:
        return (
            self.ppid,
            self.pgid,
            self.sid,
            self.exit_signal,
            self.vfork_parent,
            self.vm_parent,
            self.born,
            self.exec_at,
            self.arg_start,
            self.arg_end,
        )

    def tasks(self) -> list[Task]:
        """Every task, in tid order."""
        return sorted([self.task, *self.others.values()], key=lambda t: t.tid)

    def find(self, tid: int) -> Task | None:
        return self.task if self.task.tid == tid else self.others.get(tid)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (vmstate stores it; no pickle of untrusted files).
        The keys are those of the one-object state of earlier versions, so
        snapshots read both ways; threads add keys only when there are any."""
        t = self.task
        signals = t.signals.to_json()
        signals["timers"] = [[n, tm.to_json()] for n, tm in sorted(self.timers.items())]
        threads: dict[str, Any] = {}
        if (
            self.others
            or self.next_tid
            or self.shared
            or t.robust_list
            or t.poll_deadline
            or t.pipe_done
            or t.wait
            or t.result is not None
        ):
            threads = {
                "tid": t.tid,
                "robust_list": t.robust_list,
                "poll_deadline": t.poll_deadline,
                "pipe_done": t.pipe_done,
                "wait": None if t.wait is None else t.wait.to_json(),
                "result": t.result,
                "others": [o.thread_json() for _, o in sorted(self.others.items())],
                "slice_end": self.slice_end,
                "next_tid": self.next_tid,
                "wait_order": self.wait_order,
                "leader_code": self.leader_code,
                "shared": [[s, i.hex()] for s, i in self.shared],
            }
        return {
            "brk_start": self.brk_start,
            "brk": self.brk,
            "sleep_ns": self.sleep_ns,
            "tid_address": t.tid_address,
            **self.fdt.to_json(),
            "sigactions": [[s, a.hex()] for s, a in sorted(self.sigactions.items())],
            "sigmask": t.sigmask,
            "tls": [[i, d.hex()] for i, d in sorted(t.tls.items())],
            "signals": signals,
            "cwd": self.cwd.hex(),
            "comm": t.comm.hex(),
            "dumpable": self.dumpable,
            "umask": self.umask,
            **({"threads": threads} if threads else {}),
            **({"process": list(fields)} if (fields := self._process_fields()) != _ROOT else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinuxState:
        """Inverse of ``to_json``; raises KeyError/TypeError/ValueError on bad input."""
        signals = data.get("signals")  # (snapshots from before signals: none)
        threads = data.get("threads") or {}
        wait = threads.get("wait")
        result = threads.get("result")
        leader_code = threads.get("leader_code")
        task = Task(
            tid=int(threads.get("tid", 0)),
            sigmask=int(data["sigmask"]),
            signals=SignalState.from_json(signals),
            tls={int(i): bytes.fromhex(d) for i, d in data["tls"]},
            tid_address=int(data["tid_address"]),
            comm=bytes.fromhex(data.get("comm", "")),
            robust_list=int(threads.get("robust_list", 0)),
            poll_deadline=int(threads.get("poll_deadline", 0)),
            pipe_done=int(threads.get("pipe_done", 0)),
            wait=None if wait is None else Wait.from_json(wait),
            result=None if result is None else int(result),
        )
        others = [Task.from_thread_json(o) for o in threads.get("others", [])]
        given = [int(n) for n in data.get("process", _ROOT)]
        fields = given + list(_ROOT[len(given) :])  # (older snapshots have fewer)
        ppid, pgid, sid, exit_signal, vfork_parent, vm_parent, born, exec_at = fields[:8]
        arg_start, arg_end = fields[8:10]
        return cls(
            ppid=ppid,
            pgid=pgid,
            sid=sid,
            exit_signal=exit_signal,
            vfork_parent=vfork_parent,
            vm_parent=vm_parent,
            born=born,
            exec_at=exec_at,
            arg_start=arg_start,
            arg_end=arg_end,
            brk_start=int(data["brk_start"]),
            brk=int(data["brk"]),
            sleep_ns=int(data["sleep_ns"]),
            fdt=FdTable.from_json(data),
            sigactions={int(s): bytes.fromhex(a) for s, a in data["sigactions"]},
            timers={int(n): Timer.from_json(t) for n, t in (signals or {}).get("timers", [])},
            cwd=bytes.fromhex(data.get("cwd", "")),
            dumpable=int(data.get("dumpable", 1)),
            umask=int(data.get("umask", 0o022)),
            task=task,
            others={o.tid: o for o in others},
            slice_end=int(threads.get("slice_end", 0)),
            next_tid=int(threads.get("next_tid", 0)),
            wait_order=int(threads.get("wait_order", 0)),
            leader_code=None if leader_code is None else int(leader_code),
            shared=[(int(s), bytes.fromhex(i)) for s, i in threads.get("shared", [])],
        )


#: The process fields of the first process (no "process" key in its JSON).
_ROOT = (0, 0, 0, 17, 0, 0, 0, 0, 0, 0)

SyscallHandler = Callable[["Linux", int, int, int, int, int, int], int]
_TABLE: dict[int, SyscallHandler] = {}


def syscall(nr: int) -> Callable[[SyscallHandler], SyscallHandler]:
    def register(fn: SyscallHandler) -> SyscallHandler:
        _TABLE[nr] = fn
        return fn

    return register


class ProcessExit(Exception):  # control flow; never escapes the machine
    """Raised by exit/kill handlers; the machine stops with ``status``."""

    def __init__(self, status: ExitStatus) -> None:
        super().__init__(status)
        self.status = status


class Linux:
    """The syscall layer of one process."""

    def __init__(
        self,
        memory: GuestMemory,
        host: Host,
        *,
        exe_path: bytes,
        set_tls: Callable[[int, int, int, int, int], None],
        clear_tls: Callable[[int], None],
        icount: Callable[[], int],
        ids: Ids,
        epoch_ns: int,
        warn: TextIO | None = None,
        system: System | None = None,
    ) -> None:
        """``system``: the machine's process tree this process joins (None:
        a new one, this process its root)."""
        self.mem = memory
        self.host = host
        self.exe_path = exe_path
        self._set_tls = set_tls
        self._clear_tls = clear_tls
        self._icount = icount
        self.ids = ids
        self.epoch_ns = epoch_ns
        self.state = LinuxState()
        if system is None:
            system = System(root=ids.pid, files=self.state.fdt.files)
        self.sys = system
        system.procs[ids.pid] = self
        #: Set when a signal may have become deliverable or a sigreturn
        #: changed the registers: the machine stops after this syscall and
        #: handles it before the program goes on.
        self.need_signal_check = False
        #: Threads clone just made, with their stack pointer (0: the
        #: parent's) and whether TLS was given: the machine builds their
        #: CPU context from the parent's after the syscall.
        self.new_threads: list[tuple[Task, int]] = []
        #: Processes fork just made, and an execve to carry out: the
        #: machine does both after the syscall (process.py).
        self.new_processes: list[NewProcess] = []
        self.exec_request: ExecRequest | None = None
        #: Registers a sigreturn brings back (the machine applies them).
        self.sigreturn: Restored | None = None
        #: The CPU, for the syscalls that read registers (the machine sets it).
        self.cpu: CpuAccess | None = None
        self._warn = warn if warn is not None else sys.stderr
        # (One line per kind of event for the whole machine, not per process.)
        self._reported: set[int] = system.reported
        self._warned: set[str] = system.warned

    # Machine-wide settings (process.py keeps them; a recording stores them).
    @property
    def quantum(self) -> int:
        return self.sys.quantum

    @quantum.setter
    def quantum(self, value: int) -> None:
        self.sys.quantum = value

    @property
    def cpus(self) -> int:
        return self.sys.cpus

    @cpus.setter
    def cpus(self, value: int) -> None:
        self.sys.cpus = value

    @property
    def exact_timers(self) -> bool:
        return self.sys.exact_timers

    @exact_timers.setter
    def exact_timers(self, value: bool) -> None:
        self.sys.exact_timers = value

    @property
    def interruptible_reads(self) -> bool:
        return self.sys.interruptible_reads

    @interruptible_reads.setter
    def interruptible_reads(self, value: bool) -> None:
        self.sys.interruptible_reads = value

    def bind_cpu(
        self,
        set_tls: Callable[[int, int, int, int, int], None],
        clear_tls: Callable[[int], None],
        cpu: CpuAccess,
    ) -> None:
        """The process runs on another CPU now (execve gave it a new one)."""
        self._set_tls, self._clear_tls, self.cpu = set_tls, clear_tls, cpu

    @property
    def multitask(self) -> bool:
        """Whether another task (a thread, another process) may run while
        this one waits: then a blocking call blocks only its task."""
        return bool(self.state.others) or len(self.sys.procs) > 1

    @property
    def pid(self) -> int:
        return self.ids.pid

    @property
    def ppid(self) -> int:
        return self.state.ppid or self.ids.ppid

    @property
    def pgid(self) -> int:
        return self.state.pgid or self.sys.root

    @property
    def sid(self) -> int:
        return self.state.sid or self.sys.root

    @property
    def task(self) -> Task:
        """The task making the current syscall."""
        return self.state.task

    @property
    def fdt(self) -> FdTable:
        return self.state.fdt

    def set_brk_start(self, addr: int) -> None:
        self.state.brk_start = self.state.brk = addr

    # -- dispatch ------------------------------------------------------
    def dispatch(self, nr: int, args: list[int]) -> int:
        """Run syscall ``nr``; returns EAX (negative errno on failure)."""
        handler = _TABLE.get(nr)
        if handler is None:
            if nr not in self._reported:
                self._reported.add(nr)
                name = SYSCALL_NAMES.get(nr, "unknown")
                self._warn.write(f"rrdbg: unsupported syscall {name} ({nr}) returns ENOSYS\n")
                self._warn.flush()
            return -errno.ENOSYS
        try:
            result = handler(self, *args[:6])
        except GuestMemoryError:
            return -errno.EFAULT
        if result == BLOCKED:
            wait = self.state.task.wait
            if wait is not None:
                wait.nr = nr
            return result
        if result == -ERESTARTSYS:
            # EINTR unless the signal's delivery restarts it (machine.py).
            self.state.task.signals.restart = nr
            return -errno.EINTR
        return result

    # -- helpers -------------------------------------------------------
    def warn_once(self, key: str, text: str) -> None:
        """One ``rrdbg:`` line on stderr, once per kind of event."""
        if key not in self._warned:
            self._warned.add(key)
            self._warn.write(f"rrdbg: {text}\n")
            self._warn.flush()

    def virtual_ns(self) -> int:
        return self._icount() * NS_PER_INSN + self.sys.sleep_ns

    def _clock_ns(self, clock: int) -> int | None:
        if clock in (0, 5, 8, 11):  # REALTIME, REALTIME_COARSE, _ALARM, TAI
            return self.epoch_ns + self.virtual_ns()
        if clock in (1, 4, 6, 7, 9):  # MONOTONIC, _RAW, _COARSE, BOOTTIME, _ALARM
            return MONOTONIC_BASE_NS + self.virtual_ns()
        if clock in (2, 3):  # process / thread CPU time
            return self._icount() * NS_PER_INSN
        return None

    def _path(self, addr: int) -> bytes:
        return self.mem.read_cstring(addr, 4096)

    def _resolve(self, dirfd: int, path: bytes) -> bytes | int:
        """The path for the host: relative ones joined to the directory
        ``dirfd`` was opened as, or to the working directory (AT_FDCWD).
        Never normalised: the host walks ``..`` and symlinks as Linux does."""
        if path.startswith(b"/"):
            return path
        dirfd = _signed(dirfd & 0xFFFFFFFF)
        if dirfd == _AT_FDCWD:
            base = self.state.cwd
        else:
            handle = self._handle(dirfd)
            if handle is None:
                return -errno.EBADF
            f = self.state.fdt.files.get(handle)
            if f is None or not f.path:
                return -errno.ENOTDIR  # the console, or a file opened before paths were kept
            base = f.path
        if not base:
            return path
        return base.rstrip(b"/") + b"/" + path

    def own_exe(self, path: bytes) -> bytes:
        """/proc/self/exe (or /proc/PID/exe of this process) as the file it
        stands for: the program this process runs, not rrdbg's Python."""
        if path in (b"/proc/self/exe", b"/proc/thread-self/exe", b"/proc/%d/exe" % self.pid):
            return self.exe_path
        return path

    def own_fd(self, path: bytes) -> int | None:
        """The descriptor /dev/fd/N, /proc/self/fd/N (or /proc/PID/fd/N of
        this process), /dev/stdin, /dev/stdout or /dev/stderr names; None
        for any other path."""
        std = {b"/dev/stdin": 0, b"/dev/stdout": 1, b"/dev/stderr": 2}.get(path)
        if std is not None:
            return std
        prefixes = (
            b"/dev/fd/",
            b"/proc/self/fd/",
            b"/proc/thread-self/fd/",
            b"/proc/%d/fd/" % self.pid,
        )
        for prefix in prefixes:
            if path.startswith(prefix) and path[len(prefix) :].isdigit():
                return int(path[len(prefix) :])
        return None

    def _at(self, addr: int, dirfd: int = _AT_FDCWD) -> bytes | int:
        """The guest path at ``addr``, resolved as ``_resolve`` does."""
        return self._resolve(dirfd, self._path(addr))

    def set_cwd(self, canonical: bytes) -> None:
        """chdir: make paths of files opened relative to the host's working
        directory absolute first (they were relative to it)."""
        if not self.state.cwd:
            base = self.host.getcwd()
            for f in self.state.fdt.files.values():
                if f.path and not f.path.startswith(b"/"):
                    f.path = base.rstrip(b"/") + b"/" + f.path
        self.state.cwd = canonical

    def _handle(self, fd: int) -> int | None:
        return self.state.fdt.handle(_signed(fd))

    def file_path(self, fd: int) -> str:
        """The path an fd's file was opened by, for naming its mappings."""
        f = self.state.fdt.file(_signed(fd))
        path = f.path if f is not None and f.path else b"[file]"
        if not path.startswith(b"/") and path != b"[file]":
            path = self.state.cwd.rstrip(b"/") + b"/" + path if self.state.cwd else path
        return path.decode("utf-8", "surrogateescape")

    def _close_fd(self, fd: int) -> int:
        if self.state.fdt.handle(fd) is None:
            return -errno.EBADF
        f = self.state.fdt.file(fd)
        released = self.state.fdt.close(fd)
        if released is not None and f is not None and f.kind is FileKind.PIPE:
            self.pipe_event()  # a reader may now see the end, a writer EPIPE
        return 0 if released is None else self.host.close(released)

    def pipe_event(self) -> None:
        """Something was read from, written to or closed on a pipe: threads
        waiting on a pipe, in any process, make their call again (when they
        next run)."""
        for t, _k in self.sys.tasks():
            if t.wait is not None and t.wait.kind in ("pipe", "poll") and t is not self.state.task:
                self.wake(t, BLOCKED)

    def _stat64(self, st: FileStat) -> bytes:
        return struct.pack(
            "<Q4xIIIIIQ4xqIQIIIIIIQ",
            st.dev,
            st.ino & 0xFFFFFFFF,
            st.mode,
            st.nlink,
            st.uid,
            st.gid,
            st.rdev,
            st.size,
            st.blksize,
            st.blocks,
            *_ts32(st.atime_ns),
            *_ts32(st.mtime_ns),
            *_ts32(st.ctime_ns),
            st.ino,
        )

    def _statx(self, st: FileStat) -> bytes:
        def ts(ns: int) -> bytes:
            return struct.pack("<qIi", ns // 1_000_000_000, ns % 1_000_000_000, 0)

        head = struct.pack(
            "<IIQIIIHHQQQQ",
            0x7FF,  # STATX_BASIC_STATS
            st.blksize,
            0,
            st.nlink,
            st.uid,
            st.gid,
            st.mode,
            0,
            st.ino,
            st.size,
            st.blocks,
            0,
        )
        times = ts(st.atime_ns) + ts(0) + ts(st.ctime_ns) + ts(st.mtime_ns)
        devs = struct.pack(
            "<IIII", os.major(st.rdev), os.minor(st.rdev), os.major(st.dev), os.minor(st.dev)
        )
        return (head + times + devs).ljust(256, b"\0")

    def _write_result(self, addr: int, data: bytes) -> None:
        self.mem.write(addr, data)

    # -- signals (signals.py holds the state and the frames) ------------
    def action(self, sig: int) -> SigAction:
        raw = self.state.sigactions.get(sig)
        return SigAction.decode(raw) if raw else SigAction()

    def set_action(self, sig: int, action: SigAction) -> None:
        self.state.sigactions[sig] = action.encode()

    def ignored(self, sig: int) -> bool:
        """Would ``sig`` be discarded on arrival (ignored, explicitly or by default)?"""
        handler = self.action(sig).handler
        if handler == SIG_IGN:
            return True
        return handler == SIG_DFL and (sig in DEFAULT_IGNORE or sig in DEFAULT_STOP)

    def send(self, sig: int, info: bytes) -> None:
        """Generate ``sig`` for the process (kill, timers): it goes to the
        first thread that does not block it (or waits for it in sigwait),
        the first thread (the leader) tried first, as Linux's
        complete_signal prefers the task it was sent to; if every thread
        blocks it, it waits in the process's shared queue."""
        target = self.signal_target(sig)
        if target is not None:
            self.send_to(target, sig, info)
        elif sig >= 32 or all(s != sig for s, _ in self.state.shared):
            self.state.shared.append((sig, info))

    def signal_target(self, sig: int) -> Task | None:
        tasks = self.state.tasks()
        if len(tasks) == 1 and not tasks[0].sigmask & bit(sig):
            return tasks[0]
        leader = self.state.find(self.ids.pid)
        order = ([leader] if leader is not None else []) + [t for t in tasks if t is not leader]
        for t in order:
            w = t.wait
            if w is not None and w.kind == "sigwait" and w.bitset & bit(sig):
                return t  # sigwait unblocks what it waits for, as Linux does
            if not t.sigmask & bit(sig) and not t.exited:
                return t
        return None

    def take_shared(self, wanted: int, *, one: bool = False) -> None:
        """Move the shared signals in ``wanted`` (a mask) to the running
        task's queue: it unblocked them, or (``one``: the first only)
        sigwaits for them."""
        st = self.state
        if not st.shared:
            return
        taken = 0
        keep = []
        for sig, info in st.shared:
            if bit(sig) & wanted and not (one and taken):
                st.task.signals.enqueue(sig, info)
                self.need_signal_check = True
                taken += 1
            else:
                keep.append((sig, info))
        st.shared = keep

    def send_to(self, task: Task, sig: int, info: bytes) -> None:
        """Generate ``sig`` for one thread: queued unless it would be
        ignored and is not blocked (a blocked one waits: its disposition
        may change before it is unblocked).  The machine delivers it on the
        way back to user mode (``need_signal_check``); a thread blocked in
        the kernel is woken with EINTR if the signal interrupts it."""
        if self.ignored(sig) and not task.sigmask & bit(sig):
            return
        task.signals.enqueue(sig, info)
        # (The running task may be blocked too: its wait just began, or
        # every task waits and time is passing.)
        if task.wait is not None and task.wait.kind == "sigwait" and task.wait.bitset & bit(sig):
            self.wake(task, BLOCKED)  # sigwaitinfo is made again and takes it
        elif task.wait is not None and self.interrupts(task):
            self.interrupt(task)
        elif task is self.state.task:
            self.need_signal_check = True

    def kill_self(self, sig: int, code: int = SI_USER) -> int:
        """kill of the process itself (signal 0 only checks)."""
        if sig == 0:
            return 0
        if not 1 <= sig <= 64:
            return -errno.EINVAL
        self.send(sig, siginfo(sig, code, self.ids.pid, self.ids.uid))
        return 0

    def tkill(self, task: Task, sig: int) -> int:
        """tkill/tgkill: ``sig`` for one thread (signal 0 only checks)."""
        if sig == 0:
            return 0
        if not 1 <= sig <= 64:
            return -errno.EINVAL
        self.send_to(task, sig, siginfo(sig, SI_TKILL, self.ids.pid, self.ids.uid))
        return 0

    def tkill_self(self, sig: int) -> int:
        return self.tkill(self.state.task, sig)

    def deliverable(self) -> bool:
        self.take_shared(~self.state.task.sigmask)
        return bool(self.state.task.signals.pending_mask() & ~self.state.task.sigmask)

    def set_mask(self, mask: int) -> None:
        self.state.task.sigmask = mask & ~UNBLOCKABLE & ((1 << 64) - 1)
        if self.deliverable():
            self.need_signal_check = True

    # -- timers on virtual time -----------------------------------------------
    def timer_now(self, timer: Timer) -> int:
        """A timer's clock now: virtual ns (real) or instructions run (cpu)."""
        return self.virtual_ns() if timer.clock == "real" else self._icount() * NS_PER_INSN

    def next_timer_icount(self) -> int | None:
        """The icount at which the next armed timer expires, if it can while
        the process runs (real timers also expire during sleeps)."""
        best = None
        sleep = self.sys.sleep_ns
        for t in self.state.timers.values():
            if not t.deadline:
                continue
            at = (t.deadline - sleep if t.clock == "real" else t.deadline) // NS_PER_INSN
            best = at if best is None else min(best, at)
        return best

    def next_wait_icount(self) -> int | None:
        """The icount at which the earliest deadline of a blocked thread's
        wait passes while others run (it is woken exactly then)."""
        running = self.state.task
        waits = [t.wait for t, _k in self.sys.tasks() if t.wait is not None and t is not running]
        deadlines = [w.deadline for w in waits if w.deadline and w.kind != "exited"]
        if not deadlines:
            return None
        return (min(deadlines) - self.sys.sleep_ns) // NS_PER_INSN

    def expire_timers(self) -> None:
        """Fire every timer whose deadline has passed (called at each stop)."""
        for number, t in sorted(self.state.timers.items()):
            now = self.timer_now(t)
            if not t.deadline or t.deadline > now:
                continue
            fired = 1
            if t.interval:
                late = (now - t.deadline) // t.interval
                fired += late
                t.deadline += (late + 1) * t.interval
            else:
                t.deadline = 0
            if t.notify == 1:  # SIGEV_NONE
                continue
            if number < 0:  # setitimer's: SIGALRM, SIGVTALRM, SIGPROF
                self.send(t.signo, siginfo(t.signo, SI_KERNEL))
            elif t.queued and self._timer_signal_pending(t.signo):
                t.overrun += fired
            else:
                t.overrun = fired - 1
                t.queued = True
                info = siginfo(t.signo, SI_TIMER, number, t.overrun, t.value)
                self.send(t.signo, info)

    def _timer_signal_pending(self, sig: int) -> bool:
        """Is a timer's signal still queued anywhere (any thread, shared)?"""
        queues = [t.signals.queue for t in self.state.tasks()] + [self.state.shared]
        return any(s == sig for q in queues for s, _ in q)

    def sleep(self, ns: int) -> int:
        """Let ``ns`` of virtual time pass, as a sleeping process does; real
        timers fire on the way.  Returns the time left when a signal that
        interrupts (one a handler takes, or one that kills) cut it short,
        else 0."""
        end = self.virtual_ns() + ns
        while True:
            due = [
                t.deadline
                for t in self.state.timers.values()
                if t.deadline and t.clock == "real" and t.deadline <= end
            ]
            if not due:
                self.sys.sleep_ns += end - self.virtual_ns()
                return 0
            self.sys.sleep_ns += max(min(due) - self.virtual_ns(), 0)
            self.expire_timers()
            if self.interrupting():
                return end - self.virtual_ns()

    def host_wait(self, handle: int) -> int | None:
        """Before a read of the console (a terminal, a pipe from outside)
        while another task could run: BLOCKED if it has nothing yet (the
        task waits; the scheduler asks the host again at its switches and,
        when no task can run, waits for real: sched.poll_host_waits), None
        to go ahead with the read.  Every answer is a recorded poll."""
        if not self.sys.task_host_waits or not self.multitask:
            return None
        f = self.state.fdt.files.get(handle)
        if f is None or f.flags & O_NONBLOCK or f.kind is not FileKind.CONSOLE:
            return None
        ready = self.host.fs_call("poll", (struct.pack("<ih", handle, _POLLIN), 0))
        if isinstance(ready, int) or struct.unpack_from("<h", ready, 0)[0]:
            return None  # data, the end or an error: the read says which
        return self.block(Wait("host", address=handle, bitset=_POLLIN))

    def wait_to_read(self, handle: int) -> bool:
        """Before a read that may block while a real-time timer that can
        interrupt it is armed: wait for ``handle`` to have data as the
        blocked process would, the virtual time passing and the timers
        firing.  False when a signal that interrupts came first (the read is
        then cut short).  Files and directories never block; with no such
        timer (left) the read itself blocks (or, on the process's own empty
        pipe, ends it), as before."""
        f = self.state.fdt.files.get(handle)
        if not self.interruptible_reads or f is None or f.flags & O_NONBLOCK:
            return True
        if f.kind in (FileKind.FILE, FileKind.DIRECTORY):
            return True
        own_pipe = f.kind is FileKind.PIPE
        if own_pipe and self.multitask:
            return True  # the read blocks only its thread (sys_files._would_block)
        query = struct.pack("<ih", handle, _POLLIN)
        while True:
            due = self._interrupting_deadlines()
            if not due:
                return True
            wait = max(min(due) - self.virtual_ns(), 0)
            # Nothing but the process fills its own pipes: no real waiting.
            ms = 0 if own_pipe else (wait + 999_999) // 10**6
            ready = self.host.fs_call("poll", (query, ms))
            if isinstance(ready, int) or struct.unpack_from("<h", ready, 0)[0]:
                return True  # data, end of file or an error: the read says which
            if self.sleep(wait) or self.interrupting():
                return False

    def _interrupting_deadlines(self) -> list[int]:
        """Deadlines of the real-time timers whose signal would cut a wait
        short (sent, not blocked, not ignored)."""
        mask = self.state.task.sigmask
        return [
            t.deadline
            for t in self.state.timers.values()
            if t.deadline
            and t.clock == "real"
            and t.notify == 0  # SIGEV_SIGNAL
            and not bit(t.signo) & mask
            and not self.ignored(t.signo)
        ]

    def interrupting(self) -> bool:
        """Is a signal pending that would end a wait: deliverable and not
        ignored (a handler runs or the process dies)?"""
        return self.interrupts(self.state.task)

    def interrupts(self, task: Task) -> bool:
        """``interrupting`` for any task."""
        mask = task.sigmask
        return any(not bit(s) & mask and not self.ignored(s) for s, _ in task.signals.queue)

    # -- blocking and waking (sched.py schedules) -------------------------
    def block(self, wait: Wait) -> int:
        """Put the running task to sleep on ``wait``; its handler returns
        what this returns (BLOCKED) and the result comes when it is woken."""
        wait.order = self.state.wait_order
        self.state.wait_order += 1
        self.state.task.wait = wait
        self.need_signal_check = True
        return BLOCKED

    def wake(self, task: Task, result: int) -> None:
        """Make a blocked task runnable; ``result`` is its syscall's EAX
        (BLOCKED: the syscall is made again, its number still in EAX)."""
        task.wait = None
        task.result = result
        if result != BLOCKED:
            # The call ends (EINTR, a count): it is not made again.
            task.poll_deadline = task.pipe_done = 0

    def interrupt(self, task: Task) -> None:
        """A signal cuts a blocked task's wait short, as Linux's return
        codes say: a PI lock is always taken again (ERESTARTNOINTR); a pipe
        read or write and an untimed futex wait fail with EINTR unless the
        handler has SA_RESTART (ERESTARTSYS: machine.py makes them again);
        the rest fail with EINTR (a sleep also says how much time was
        left)."""
        wait = task.wait
        assert wait is not None
        if wait.kind in ("exited", "vfork"):
            return  # (a vfork parent is not interrupted: Linux waits killably)
        if wait.kind == "pi":
            self.wake(task, BLOCKED)
            return
        if wait.kind == "pipe" and task.pipe_done:
            self.wake(task, task.pipe_done)  # a write cut short: what it wrote
            return
        if wait.kind in ("pipe", "child", "host") or (wait.kind == "futex" and not wait.deadline):
            task.signals.restart = wait.nr
        if wait.kind == "sleep" and wait.rem and wait.rem_format:
            left = max(wait.deadline - self.virtual_ns(), 0)
            with contextlib.suppress(GuestMemoryError):
                self.mem.write(wait.rem, struct.pack(wait.rem_format, left // 10**9, left % 10**9))
        self.wake(task, -errno.EINTR)

    def sleep_for(self, ns: int, rem: int = 0, rem_format: str = "") -> int:
        """A sleep syscall: 0 when ``ns`` of virtual time has passed, -EINTR
        (and the time left at ``rem``) when a signal cut it short.  With
        other threads the task blocks (BLOCKED) and they run meanwhile."""
        if self.multitask:
            if ns <= 0:
                return 0
            wait = Wait("sleep", deadline=self.virtual_ns() + ns, rem=rem, rem_format=rem_format)
            return self.block(wait)
        left = self.sleep(ns)
        if not left:
            return 0
        if rem and rem_format:
            self.mem.write(rem, struct.pack(rem_format, left // 10**9, left % 10**9))
        return -errno.EINTR

    def pause(self) -> int:
        """pause, sigsuspend, an empty poll: -EINTR once a signal that
        interrupts has come; with other threads the task blocks meanwhile."""
        if self.multitask and not self.interrupting():
            return self.block(Wait("signal"))
        self.wait_for_signal()
        return -errno.EINTR

    def wait_for_signal(self) -> None:
        """pause/sigsuspend: sleep until an interrupting signal arrives.
        With nothing armed that could send one, the process would sleep
        forever: it is ended (SIGKILL) with one line saying so."""
        while not self.interrupting():
            real = [
                t.deadline for t in self.state.timers.values() if t.deadline and t.clock == "real"
            ]
            if not real:
                # (A CPU-time timer cannot fire while the process sleeps.)
                self._warn.write(
                    "rrdbg: the program waits for a signal that nothing can send "
                    "(no timer is armed); ending it\n"
                )
                raise ProcessExit(ExitStatus(signal=9))
            self.sleep(max(min(real) - self.virtual_ns(), 0))


def _signed(x: int) -> int:
    return x - (1 << 32) if x & 0x80000000 else x


def _ts32(ns: int) -> tuple[int, int]:
    return (ns // 1_000_000_000) & 0xFFFFFFFF, ns % 1_000_000_000


def _u32(x: int) -> int:
    return x & 0xFFFFFFFF
