"""A debuggable run: one machine moving along the icount axis of its history.

Role: the object a debugger session drives.  It owns the machine, the
``History`` of host events, in-memory checkpoints, and the breakpoints and
watchpoints, and it implements the ``Target`` interface
(``rrdbg/target/interface.py``).

Two kinds of timeline:
- **replay** (``Timeline.replay``): a finished (or cut-short) recording.  The
  guest sees only recorded answers; forward execution stops at the end of
  history with ``HISTORY_END`` (gdb: "No more reverse-execution history"):
  just before the instruction that ended the program, at a fatal fault, or
  at the last recorded event of a log that was cut short.
- **live** (``Timeline.live``): ``rrdbg debug``.  The guest runs against the
  real host, and every answer is recorded (and written to ``-o DIR`` when
  saving).  Re-executing the past replays from the history; reaching its end
  goes live again.  The program's exit is reported as an exit.

Invariants:
- the machine is only ever run by this class, from the caller's thread, and
  never from inside an emulator callback (hooks record facts and ask to stop);
  a parallel reverse-continue runs *replicas* (other timelines over the same
  history, each with its own machine) in worker threads, never this one's;
- after any stop at icount ``n`` the debugger writes recorded at ``n`` have
  been applied, so the state at ``n`` is the same however it was reached;
- checkpoints are taken only at such stops, so restoring one and running
  forward reproduces every later state exactly.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rrdbg.errors import (
    EmulatorError,
    GuestMemoryError,
    ReplayDivergence,
    RrdbgError,
    SnapshotFormatError,
    TargetError,
)
from rrdbg.machine import icount as ic
from rrdbg.machine.base import DebuggableMachine
from rrdbg.machine.cpu import Cpu, StopReason, signal_name
from rrdbg.machine.engine import CPU_MODEL_NAME, Engine
from rrdbg.machine.host import Host
from rrdbg.machine.loader import Lines, Symbols
from rrdbg.machine.machine import LinuxMachine
from rrdbg.machine.pc import PcMachine
from rrdbg.machine.registers import read_register, registers_reader, write_register
from rrdbg.record.events import (
    DEBUG_KINDS,
    EndRecord,
    Kind,
    encode_debug_memory,
    encode_debug_register,
    encode_debug_signal,
)
from rrdbg.record.files import KeptFiles
from rrdbg.record.log import Cursor, LogHeader, LogWriter
from rrdbg.record.recording import (
    BLOCKS_NAME,
    IncompleteReplay,
    PcOptions,
    apply_debug_write,
    configure_linux,
    image_path,
    open_log,
    program_file,
    seed_blocks,
    trusted_snapshots,
)
from rrdbg.snapshot.qcow2 import Qcow2Image, SnapshotInfo
from rrdbg.snapshot.vmstate import SnapshotStore
from rrdbg.target.interface import (
    SIGINT,
    Direction,
    Interrupted,
    Report,
    StopEvent,
    StopKind,
    ThreadInfo,
    WatchKind,
    no_report,
)
from rrdbg.timeline import parallel, policy
from rrdbg.timeline.checkpoint import Checkpoint, capture, restore
from rrdbg.timeline.history import History
from rrdbg.timeline.host import TimelineHost

#: Instructions per call into the emulator between two looks at the
#: interrupt flag: a few milliseconds at full speed.
POLL_SLICE = 1 << 23
#: Before a forward run with watchpoints armed, take a checkpoint if the
#: nearest one is further back than this: a hit in the middle of a block is
#: found only at the block's end, and the stop just after the access is then
#: reached by replaying from the checkpoint.
WATCH_CHECKPOINT_DISTANCE = 1 << 20

_NO_LIMIT = ic.NO_LIMIT
#: A parallel reverse-continue scans the interval just before now alone
#: first when it is this short (a few milliseconds of replay: a hit there,
#: stepping back through a loop, costs no more than with one executor).
ALONE_FIRST = 1 << 22
#: Instructions between a replica's looks at whether its scan is still wanted.
REPLICA_POLL_SLICE = 1 << 20
#: Seconds between progress lines of a long reverse-continue.
REPORT_EVERY = 1.0


@dataclass(frozen=True, slots=True)
class _Watch:
    kind: WatchKind
    address: int
    length: int


class Timeline:
    """A machine, its history and its checkpoints (implements ``Target``)."""

    def __init__(
        self,
        machine: DebuggableMachine,
        history: History,
        host: TimelineHost,
        *,
        name: str,
        live: bool,
        history_end: int | None,
        writer: LogWriter | None = None,
        directory: Path | None = None,
        pc: PcOptions | None = None,
        fatal_end: bool = False,
    ) -> None:
        self.machine = machine
        #: The PC machine's settings (None: a Linux program).
        self.pc = pc
        #: Replay: the recording ends on a fatal fault at ``history_end``; a
        #: forward run there shows it (a signal stop), as the live run did.
        self.fatal_end = fatal_end
        self.history = history
        self.host = host
        self.name = name
        self.live = live
        #: Replay: the last icount history reaches (None: not known yet).
        self.history_end = history_end
        self.writer = writer
        self.directory = directory
        self.checkpoints: list[Checkpoint] = []
        self.breakpoints: dict[int, bool] = {}  # address -> hardware (followed process)
        self.watchpoints: list[_Watch] = []
        #: Processes gdb holds besides the followed one: a fork's child until
        #: gdb detaches it (all of them with ``set detach-on-fork off``), a
        #: parent gdb turned away from until it detaches it.
        self._attached: set[int] = set()
        #: The breakpoints and watchpoints of those processes.
        self._points: dict[int, tuple[dict[int, bool], list[_Watch]]] = {}
        #: The processes a forward run stops in (gdb's, when it began).
        self._holding: set[int] = set()
        #: Processes gdb saw stop and has not resumed since.
        self._frozen: set[int] = set()
        #: The furthest icount ever reached.
        self.frontier = 0
        #: The machine's state differs from the recorded one at this icount
        #: (a debugger write in the past); undone before the next resume.
        self.dirty = False
        self._last_stop = StopEvent(StopKind.STEP, 0)
        #: A live program's end, noted when it happened (see _run_slice).
        self._final_end: EndRecord | None = None
        #: Signals gdb lets through without a stop (QPassSignals; Linux numbers).
        self.pass_signals: frozenset[int] = frozenset()
        #: The signal gdb asked to deliver on the coming resume (None: none).
        self._resume_signal: int | None = None
        #: (kind, address, icount, thread) of the access a forward run met.
        #: A forward watch hit: kind, address, icount (perhaps its block's
        #: start, see _pin_access), thread, the icount after its block.
        self._watch_hit: tuple[WatchKind, int, int, int, int] | None = None
        self._access_block_end = 0
        self._closed = False
        self._reader: tuple[Engine, Callable[[], dict[str, bytes]]] | None = None
        #: Bytes the in-memory checkpoints may use (policy.evictions).
        self.budget = policy.DEFAULT_BUDGET
        #: QEMU's replay_break: stop when execution reaches this icount.
        self.replay_break: int | None = None
        #: Progress lines during long searches (the server sends them to gdb).
        self.report: Report = no_report
        #: The recording's qcow2 snapshots, usable as far checkpoints.
        self.image: Qcow2Image | None = None
        self.store: SnapshotStore | None = None
        self.disk: list[SnapshotInfo] = []
        self._blocks: Path | None = None
        self._program_sha256 = b""
        self._symbols: Symbols | None = None
        self._lines: Lines | None = None
        #: This session's named checkpoints (monitor checkpoint in a replay).
        self.named: dict[str, Checkpoint] = {}
        #: The recorder's own snapshots are PREFIX and PREFIX-ICOUNT.
        self.snapshot_prefix = "init"
        self._periodic = policy.FORWARD_INTERVAL
        #: Instructions per second of the last long seek (policy.near_distance).
        self._replay_rate = float("inf")
        self.take_checkpoint()

    # -- construction ----------------------------------------------------
    @classmethod
    def replay(
        cls,
        directory: str,
        *,
        stdout_fd: int = 1,
        stderr_fd: int = 2,
        quiet: bool = False,
    ) -> Timeline:
        """A timeline over the recording in ``directory``, at icount 0."""
        reader = open_log(directory)
        with reader:
            header = reader.header
            history = History.load(reader)
            end_event = reader.end_event
            readable = reader.position  # the end of what can be read
        end = EndRecord.decode(end_event.payload) if end_event is not None else None
        jobs = parallel.default_jobs()
        timeline = cls._replay_of(
            directory,
            header,
            history,
            end,
            readable,
            stdout_fd=stdout_fd,
            stderr_fd=stderr_fd,
            quiet=quiet,
        )
        timeline.jobs = jobs
        return timeline

    @classmethod
    def _replay_of(
        cls,
        directory: str,
        header: LogHeader,
        history: History,
        end: EndRecord | None,
        readable: Cursor,
        *,
        stdout_fd: int,
        stderr_fd: int,
        quiet: bool,
        replica: bool = False,
    ) -> Timeline:
        pc = PcOptions.from_header(header)
        host = TimelineHost(
            history,
            None,
            quiet=quiet,
            stdout_fd=stdout_fd,
            stderr_fd=stderr_fd,
            files=KeptFiles(Path(directory)),
        )
        name = header.argv[0].decode("utf-8", "surrogateescape") if header.argv else None
        program = program_file(Path(directory), header)
        try:
            machine = _machine(
                program,
                list(header.argv),
                host,
                pc,
                kernel_name=name,
                exe_path=header.program_path,
                cpu_model=header.cpu_model,
            )
            if isinstance(machine, LinuxMachine):
                configure_linux(machine, header)
        except ReplayDivergence:
            if end is not None:
                raise
            # Same words as rrdbg replay for a log cut before its first event.
            raise IncompleteReplay(
                f"{directory}: the recording ends at icount 0 before the program does "
                "(the recorder was stopped): nothing to debug"
            ) from None
        seed_blocks(Path(directory), header.program_sha256, machine)
        fatal_end = False
        if end is None:
            history_end = history.last_icount
        elif end.exit_code is not None:
            # exit/exit_group, isa-debug-exit: the last state worth showing
            # is just before it.
            history_end = end.icount - 1
        else:
            # A fatal signal (at the faulting instruction, which did not
            # retire) or a final halt: the state there.
            history_end = end.icount
            fatal_end = end.exit_signal is not None
        name = str(Path(directory))
        timeline = cls(
            machine,
            history,
            host,
            name=name,
            live=False,
            history_end=history_end,
            directory=Path(directory),
            pc=pc,
            fatal_end=fatal_end,
        )
        timeline._blocks = Path(directory) / BLOCKS_NAME
        timeline.snapshot_prefix = header.extra.get("snapshot_name", "init")
        timeline._program_sha256 = header.program_sha256
        path = image_path(Path(directory), header)
        if path.exists():
            try:
                timeline.attach_image(Qcow2Image.open(str(path), writable=False))
                if end is None:
                    timeline._trust_snapshots_up_to(readable)
            except RrdbgError as exc:
                # The snapshots only make going back faster: the log is the
                # recording.  Do as rrdbg replay (which needs no image) does.
                timeline.image = timeline.store = None
                timeline.disk = []
                if not replica:  # (the timeline said so already)
                    print(f"rrdbg: {exc}; going on without its snapshots", file=sys.stderr)
        timeline._replica_parts = (header, history, end, readable)
        return timeline

    def _replica(self) -> Timeline | None:
        """Another timeline over the same history (sharing its events), for
        a worker of a parallel reverse-continue: a replay of the same
        recording, or of a live session's history so far."""
        if self._replica_parts is not None and self.directory is not None:
            header, history, end, readable = self._replica_parts
            replica = Timeline._replay_of(
                str(self.directory),
                header,
                history.view(),
                end,
                readable,
                stdout_fd=1,
                stderr_fd=2,
                quiet=True,
                replica=True,
            )
        elif self._live_parts is not None:
            replica = self._live_replica(*self._live_parts)
        else:
            return None
        replica._periodic = self._periodic
        replica._poll_slice = REPLICA_POLL_SLICE
        return replica

    def _live_replica(self, program: str, args: list[str], quantum: int | None) -> Timeline:
        """A replay of this live session's history so far: the machine made
        as the live one was (its answers come from the history now), set
        up as the live one is, as ``configure_linux`` does from a header."""
        live = self.machine
        try:
            same = Path(program).read_bytes() == live.program_image
        except OSError:
            same = False
        if not same:
            # (A replica reads it again: it must run what the session runs.)
            raise RrdbgError(f"{program} changed since the session began")
        history = self.history.view()
        host = TimelineHost(history, None, quiet=True, files=self.host.files)
        machine = _machine(
            program, [program, *args], host, self.pc, quantum=quantum, cpu_model=live.engine.model
        )
        if isinstance(machine, LinuxMachine) and isinstance(live, LinuxMachine):
            k, mine = live.linux, machine.linux
            mine.interruptible_reads = k.interruptible_reads
            mine.exact_timers = k.exact_timers
            mine.sys.task_host_waits = k.sys.task_host_waits
            mine.sys.kernel_proc = k.sys.kernel_proc
            mine.quantum = k.quantum
            mine.cpus = k.cpus
        return Timeline(
            machine,
            history,
            host,
            name=self.name,
            live=False,
            history_end=self.frontier,
            pc=self.pc,
        )

    def _trust_snapshots_up_to(self, readable: Cursor) -> None:
        """A log whose recorder was killed: keep the snapshots whose log
        position was written (recorders since rrdbg 0.1 flush the log before
        each snapshot; older ones did not), and let the history reach the
        last of them (a guest computing without system calls logs nothing
        between snapshots)."""
        assert self.store is not None
        kept = trusted_snapshots(self.store, self.disk, readable)
        self.disk = kept
        last = max((s.icount or 0 for s in kept), default=0)
        if self.history_end is not None and last > self.history_end:
            self.history_end = last

    @classmethod
    def live_run(
        cls,
        program: str,
        args: list[str],
        live_host: Host,
        *,
        writer: LogWriter | None = None,
        stdout_fd: int = 1,
        stderr_fd: int = 2,
        pc: PcOptions | None = None,
        files: KeptFiles | None = None,
        quantum: int | None = None,
        cpu_model: str = CPU_MODEL_NAME,
    ) -> Timeline:
        """A live session of ``program`` (a kernel with ``pc``): runs on
        ``live_host`` and records (mapped files kept in ``files``: the
        recording's, or in memory); ``quantum`` is the scheduler's,
        ``cpu_model`` the emulated CPU's."""
        history = History(writer)
        host = TimelineHost(
            history, live_host, stdout_fd=stdout_fd, stderr_fd=stderr_fd, files=files
        )
        if writer is not None:
            host.set_flush(writer.flush)
        machine = _machine(
            program, [program, *args], host, pc, quantum=quantum, cpu_model=cpu_model
        )
        timeline = cls(
            machine,
            history,
            host,
            name=program,
            live=True,
            history_end=None,
            writer=writer,
            pc=pc,
        )
        timeline._live_parts = (program, args, quantum)
        timeline.jobs = parallel.default_jobs()
        return timeline

    # -- Target: state -----------------------------------------------------
    @property
    def can_reverse(self) -> bool:
        return True

    @property
    def icount(self) -> int:
        return self.machine.icount

    @property
    def last_stop(self) -> StopEvent:
        return self._last_stop

    @property
    def process_id(self) -> int:
        return self.machine.pid

    def threads(self, pid: int | None = None) -> list[ThreadInfo]:
        m = self.machine
        if pid is not None and isinstance(m, LinuxMachine) and pid != m.followed:
            if pid not in self.debugged_processes():
                return []
            return [ThreadInfo(tid, name) for tid, name in m.threads(pid)]
        return [ThreadInfo(tid, name) for tid, name in m.threads()]

    def set_resumed(self, pids: frozenset[int] | None) -> None:
        self._resumed = pids

    #: The processes the next resume is for (None: every one).
    _resumed: frozenset[int] | None = None

    def frozen(self, pids: set[int]) -> set[int]:
        scope = self._resumed
        kept = self._frozen if scope is None else self._frozen - scope
        return pids & kept if scope is not None else set()

    def _watched(self) -> list[int]:
        """The processes whose stops a run reports: the followed one and
        those gdb holds, except one gdb saw stop and has not resumed since
        (gdb's schedule-multiple off): gdb keeps that one's state from the
        stop (its inline frames) and would not take a stop there."""
        pids = self.debugged_processes()
        return [p for i, p in enumerate(pids) if i == 0 or p not in self._frozen]

    def _unwatched(self) -> list[tuple[int, Cpu, dict[int, bool]]]:
        """Processes gdb holds that the next run does not watch."""
        m = self.machine
        if not isinstance(m, LinuxMachine):
            return []
        watched = set(self._watched())
        return [
            (pid, m.procs[pid].cpu, {})
            for pid in self.debugged_processes()[1:]
            if pid not in watched
        ]

    def _held(self) -> list[tuple[int, Cpu, dict[int, bool]]]:
        """(pid, CPU, breakpoints) of the processes a run watches besides
        the followed one."""
        m = self.machine
        if not isinstance(m, LinuxMachine):
            return []
        return [
            (pid, m.procs[pid].cpu, self._points.get(pid, ({}, []))[0])
            for pid in self._watched()[1:]
        ]

    def _breakpoints_of_runner(self) -> dict[int, bool] | None:
        """The breakpoints of the process that runs next, if the debugger holds it."""
        m = self.machine
        if m.debuggee.cpu is m.cpu:
            return self.breakpoints
        if isinstance(m, LinuxMachine) and m.linux.pid in self.debugged_processes():
            return self._points.get(m.linux.pid, ({}, []))[0]
        return None

    @property
    def current_thread(self) -> int:
        return self.machine.current_tid

    # -- processes -------------------------------------------------------------
    @property
    def has_processes(self) -> bool:
        return isinstance(self.machine, LinuxMachine)

    def process_ids(self) -> list[int]:
        m = self.machine
        return sorted(m.procs) if isinstance(m, LinuxMachine) else [m.pid]

    def debugged_processes(self) -> list[int]:
        m = self.machine
        if not isinstance(m, LinuxMachine):
            return [m.pid]
        kept = sorted(pid for pid in self._attached if pid in m.procs and pid != m.followed)
        return [m.followed, *kept]

    def follow_process(self, pid: int) -> None:
        m = self.machine
        if not isinstance(m, LinuxMachine) or pid not in m.procs:
            raise TargetError(f"no process {pid}", errno=3)  # ESRCH
        if pid == m.followed:
            return
        # Breakpoints stay armed on a CPU between runs: not on the one the
        # debugger leaves (they are the other process's addresses now).
        m.debuggee.cpu.set_exit_addresses(set())
        # Each process keeps its own breakpoints and watchpoints (gdb sets
        # them per address space, after Hg to the process).
        old = m.followed
        self._points[old] = (self.breakpoints, self.watchpoints)
        self.breakpoints, self.watchpoints = self._points.pop(pid, ({}, []))
        if old in m.procs:
            self._attached.add(old)  # gdb still holds it until it detaches
        self._attached.discard(pid)
        m.followed = pid
        self._selected = None
        self._reader = None

    def detach_process(self, pid: int) -> bool:
        m = self.machine
        if not isinstance(m, LinuxMachine) or pid not in m.procs:
            return False
        if pid != m.followed:
            # It goes on running, unobserved.
            self._attached.discard(pid)
            self._points.pop(pid, None)
            m.procs[pid].cpu.set_exit_addresses(set())
            return True
        others = self.debugged_processes()[1:]
        child = self._newest_child
        if not others and child is not None and child in m.procs and child != pid:
            others = [child]
        if not others:
            return False
        self.follow_process(others[0])
        self._attached.discard(pid)
        self._points.pop(pid, None)
        return True

    def set_process_events(self, on: bool) -> None:
        self.process_events = on

    #: Forward runs stop at the followed process's fork, vfork and exec.
    process_events = False
    #: The child of the last fork event (gdb may turn to it).
    _newest_child: int | None = None

    @property
    def _floor(self) -> int:
        """Reverse execution stops where the followed process's history
        begins: its fork (0 for the first process), or its last exec for a
        client without exec events (it could not load the program before),
        or the fork of another process gdb holds."""
        m = self.machine
        if not isinstance(m, LinuxMachine):
            return 0
        floor = m.history_floor if self.process_events else max(m.history_floor, m.exec_barrier)
        # While gdb holds another process, history begins where it was made
        # too: before, gdb's inferior would have no thread (and gdb does not
        # take the same process forked twice).
        for pid in self.debugged_processes()[1:]:
            floor = max(floor, m.procs[pid].linux.state.born)
        return floor

    @property
    def _barrier(self) -> int:
        """The followed process's last exec (0: none since it was made):
        going back past it is an exec event naming the program it ran
        before, so that gdb loads that one again."""
        m = self.machine
        return m.exec_barrier if isinstance(m, LinuxMachine) and self.process_events else 0

    def _back_over_exec(self, barrier: int, note: str) -> StopEvent:
        """Back to the instruction before ``barrier`` (the execve about to
        run, in the program before): an exec event that names it."""
        m = self.machine
        self.seek(barrier - 1)
        path = os.fsdecode(m.debuggee.linux.exe_path) if isinstance(m, LinuxMachine) else ""
        return StopEvent(StopKind.EXEC, m.icount, path=path, note=note)

    def select_thread(self, tid: int) -> None:
        if all(t != tid for t, _ in self.machine.threads()):
            raise TargetError(f"no thread {tid}", errno=3)  # ESRCH
        self._selected = None if tid == self.machine.current_tid else tid

    #: The thread select_thread chose, if not the running one.
    _selected: int | None = None

    def _read_registers(self) -> dict[str, bytes]:
        # The followed process's CPU (another one once gdb turns to a child).
        engine = self.machine.debuggee.engine
        if self._reader is None or self._reader[0] is not engine:
            self._reader = (engine, registers_reader(engine))
        return self._reader[1]()

    def read_registers(self) -> dict[str, bytes]:
        if self._selected is not None:
            with self.machine.viewing(self._selected):
                return self._read_registers()
        return self._read_registers()

    def read_register(self, name: str) -> bytes:
        return read_register(self.machine.debuggee.engine, name)

    def exec_file(self) -> str | None:
        return self.machine.current_exe

    def target_file(self, path: str) -> bytes | None:
        # The program as it was loaded and the files the guest mapped (the
        # dynamic loader, the libraries) as the recording keeps them: no
        # other host file.
        m = self.machine
        if path == m.current_exe:
            return m.current_image
        if path == m.exe_path:
            return m.program_image
        try:
            return self.host.files.by_path(os.fsencode(path))
        except RrdbgError:
            return None  # a damaged or missing copy: gdb goes on without it

    def auxv(self) -> bytes | None:
        return self.machine.auxv()

    def siginfo(self) -> bytes | None:
        last = self._last_stop
        if last.kind is not StopKind.SIGNAL or last.icount != self.machine.icount:
            return None
        return self.machine.signal_info(last.signal)

    def libraries(self, annex: str) -> bytes | None:
        return self.machine.libraries(annex)

    def read_memory(self, address: int, length: int) -> bytes:
        try:
            return self.machine.debuggee.memory.read(address, length, perms=0)
        except GuestMemoryError as exc:
            raise TargetError(str(exc), errno=14) from None

    # -- Target: changes -----------------------------------------------------
    def _at_live_frontier(self) -> bool:
        """Live, and where the program really is: nothing executed beyond here.

        (The history being used up is not enough: stepping back a little
        from the frontier often crosses no event.)"""
        m = self.machine
        return self.live and m.exit is None and m.icount >= self.frontier and self.host.at_frontier

    def _check_alive(self) -> None:
        """A debugger change needs the process it looks at to exist now."""
        m = self.machine
        if isinstance(m, LinuxMachine) and m.followed not in m.procs:
            raise TargetError(f"process {m.followed} does not exist at this point", errno=3)

    def write_register(self, name: str, value: bytes) -> None:
        self._check_alive()
        m = self.machine
        pid = m.pid if isinstance(m, LinuxMachine) else 0
        tid = self._selected or 0
        try:
            if isinstance(m, LinuxMachine):
                m.write_thread_register(pid, tid, name, value)
            else:
                write_register(m.debuggee.engine, name, value)
        except EmulatorError as exc:
            raise TargetError(str(exc), errno=22) from None
        self._reader = None
        self._after_write(Kind.DEBUG_REGISTER, encode_debug_register(name, value, pid, tid))

    def write_memory(self, address: int, data: bytes) -> None:
        self._check_alive()
        m = self.machine
        space = m.debuggee
        mem = space.memory
        if not mem.is_mapped(address, len(data)):
            raise TargetError(f"cannot write memory at {address:#x}", errno=14)
        mem.poke(address, data)
        space.cpu.invalidate_code(address, address + len(data))
        pid = m.pid if isinstance(m, LinuxMachine) else 0
        self._after_write(Kind.DEBUG_MEMORY, encode_debug_memory(address, data, pid))

    def _after_write(self, kind: Kind, payload: bytes) -> None:
        if self._at_live_frontier():
            # Part of the run: recorded, so a replay makes the same change here.
            now = self.machine.icount
            self.history.append(now, kind, payload)
            # A checkpoint here predates the change; the state at an icount
            # includes the debugger writes made there, so take it again.
            if any(c.icount == now for c in self.checkpoints):
                self.checkpoints = [c for c in self.checkpoints if c.icount != now]
                self.take_checkpoint()
        else:
            self.dirty = True

    def insert_breakpoint(self, address: int, *, hardware: bool) -> None:
        self.breakpoints[address] = hardware

    def remove_breakpoint(self, address: int, *, hardware: bool) -> None:
        self.breakpoints.pop(address, None)

    def insert_watchpoint(self, kind: WatchKind, address: int, length: int) -> None:
        if length <= 0 or address + length > 1 << 32:
            raise TargetError(f"bad watchpoint range {address:#x}+{length}", errno=22)
        self.watchpoints.append(_Watch(kind, address, length))

    def remove_watchpoint(self, kind: WatchKind, address: int, length: int) -> None:
        w = _Watch(kind, address, length)
        if w in self.watchpoints:
            self.watchpoints.remove(w)

    def detach(self) -> None:
        self.breakpoints.clear()
        self.watchpoints.clear()
        m = self.machine
        if isinstance(m, LinuxMachine):
            for pid in self._attached & set(m.procs):
                m.procs[pid].cpu.set_exit_addresses(set())
        self._attached.clear()
        self._points.clear()

    def kill(self) -> None:
        self.detach()

    # -- checkpoints and seeking -------------------------------------------------
    def attach_image(self, image: Qcow2Image) -> None:
        """Use the snapshots of ``image`` (a recording's) as far checkpoints."""
        self.image = image
        self.store = SnapshotStore(image)
        self.disk = sorted(
            (s for s in image.snapshots() if s.icount is not None), key=lambda s: s.icount or 0
        )

    def take_checkpoint(self) -> Checkpoint:
        """An in-memory checkpoint of the current state (kept within the budget)."""
        m = self.machine
        icounts = [c.icount for c in self.checkpoints]
        i = bisect.bisect_right(icounts, m.icount)
        if i and self.checkpoints[i - 1].icount == m.icount:
            return self.checkpoints[i - 1]
        previous = self.checkpoints[i - 1] if i else None
        cp = capture(m, previous)
        self.checkpoints.insert(i, cp)
        self._enforce_budget()
        return cp

    def checkpoint_bytes(self) -> int:
        """Memory the in-memory checkpoints use (shared chunks counted once)."""
        seen: set[int] = set()
        total = 0
        for cp in self.checkpoints:
            total += len(cp.context)
            for data in cp.chunks.values():
                if id(data) not in seen:
                    seen.add(id(data))
                    total += len(data)
        return total

    def _enforce_budget(self) -> None:
        cps = self.checkpoints
        sizes = []
        for k, cp in enumerate(cps):
            prev = cps[k - 1].chunks if k else {}
            own = sum(len(d) for c, d in cp.chunks.items() if prev.get(c) is not d)
            sizes.append(own + len(cp.context))
        named = {id(c) for c in self.named.values()}
        drop = policy.evictions(
            [c.icount for c in cps],
            sizes,
            [c.icount == 0 or id(c) in named for c in cps],
            self.machine.icount,
            self.budget,
        )
        for k in reversed(drop):
            del cps[k]

    def _nearest_checkpoint(self, icount: int) -> Checkpoint:
        i = bisect.bisect_right([c.icount for c in self.checkpoints], icount)
        return self.checkpoints[max(i - 1, 0)]

    def _go_near(self, icount: int) -> None:
        """Restore the best checkpoint (memory or disk) at or before ``icount``,
        unless the machine is already between it and ``icount``."""
        m = self.machine
        best = self._nearest_checkpoint(icount).icount
        j = bisect.bisect_right([d.icount or 0 for d in self.disk], icount)
        if j:
            best = max(best, self.disk[j - 1].icount or 0)
        if not (self.dirty or self._broken) and m.exit is None and best <= m.icount <= icount:
            return
        self._restore_at_or_before(icount)

    def _restore_at_or_before(self, icount: int) -> None:
        """Restore the latest checkpoint or snapshot at or before ``icount``.

        A snapshot that fails its checks is dropped with one line on stderr,
        and the next best one (down to the checkpoint at icount 0, from
        which the log replays) is used instead: never a wrong history."""
        while True:
            cp = self._nearest_checkpoint(icount)
            j = bisect.bisect_right([d.icount or 0 for d in self.disk], icount)
            if not (j and (self.disk[j - 1].icount or 0) > cp.icount):
                self._restore(cp)
                return
            snap = self.disk[j - 1]
            try:
                self._load_snapshot(snap)
                return
            except SnapshotFormatError as exc:
                self.disk.remove(snap)
                print(f"rrdbg: {exc}; not using it", file=sys.stderr, flush=True)

    def _load_snapshot(self, snap: SnapshotInfo) -> None:
        assert self.store is not None
        m = self.machine
        self.store.load(m, snap)
        self.history.rewind(m.icount)
        self.dirty = False
        self._broken = False
        if self._blocks is not None:
            seed_blocks(self._blocks.parent, self._program_sha256, m)
        self.take_checkpoint()  # next time from memory

    def seek(self, icount: int, interrupted: Interrupted | None = None) -> bool:
        """Go to ``icount`` exactly (no breakpoints); False if interrupted first.

        Restores the nearest checkpoint at or before it unless running on
        from where the machine is is shorter, then replays forward.  A long
        replay leaves a checkpoint about NEAR/2 instructions before
        ``icount``, so that stepping back from there again is cheap.
        """
        m = self.machine
        if icount < 0:
            raise TargetError("cannot seek before icount 0", errno=22)
        start = m.icount
        try:
            return self._seek(icount, interrupted)
        except RrdbgError:
            self._recover(start)
            raise

    def _seek(self, icount: int, interrupted: Interrupted | None) -> bool:
        m = self.machine
        self._go_near(icount)
        near = policy.near_distance(self._replay_rate)
        start, started = m.icount, time.perf_counter()
        with self._disarmed():
            for goal in (icount - near // 2, icount):
                if goal - m.icount <= near // 2 and goal != icount:
                    continue
                while m.icount < goal:
                    stop = self._run_slice(goal, interrupted)
                    if stop is not None:
                        if stop.kind is StopKind.INTERRUPT:
                            return False
                        if m.icount < goal:
                            raise RrdbgError(
                                f"cannot reach icount {icount}: the run ends at {m.icount}"
                            )
                if goal != icount:
                    self.take_checkpoint()
        elapsed = time.perf_counter() - started
        if m.icount - start >= 1000 and elapsed > 0:
            # The replay speed of this guest around here (a checkpoint
            # captured on the way included): the next seek adapts to it.
            self._replay_rate = (m.icount - start) / elapsed
        return True

    def _restore(self, cp: Checkpoint) -> None:
        restore(self.machine, cp)
        self.history.rewind(cp.icount)
        self.dirty = False
        self._broken = False

    def _maybe_periodic_checkpoint(self) -> None:
        """During long runs: a checkpoint every ``_periodic`` instructions."""
        m = self.machine
        if m.exit is not None or self.dirty or self._broken:
            return
        if m.icount - self._nearest_checkpoint(m.icount).icount < self._periodic:
            return
        t0 = time.perf_counter()
        self.take_checkpoint()
        cost = time.perf_counter() - t0
        # Keep checkpoints under 1/COST_RATIO of the run (at ~2 G instr/s),
        # but leave a parallel reverse-continue enough intervals to share.
        self._periodic = max(policy.FORWARD_INTERVAL, int(cost * policy.COST_RATIO * 2e9))
        if self.jobs > 1 and self.history_end is not None:
            share = self.history_end // (policy.INTERVALS_PER_JOB * self.jobs)
            dearest = int(cost * policy.SHARE_COST_RATIO * 2e9)
            self._periodic = max(policy.FORWARD_INTERVAL, dearest, min(self._periodic, share))

    def step_is_bounded(self) -> bool:
        if not self._at_live_frontier():
            return True  # replayed host calls never wait
        return not self.machine.waits_on_host()

    # -- Target: running -------------------------------------------------------
    def set_pass_signals(self, signals: frozenset[int]) -> None:
        self.pass_signals = signals

    def deliver_on_resume(self, signal: int | None) -> None:
        self._resume_signal = signal

    def _settle_signal(self) -> None:
        """Before going forward: what gdb said of the signal the program
        stopped for (``C sig``, or ``c``: discard it), or a signal it asks
        to send.  A live session makes the change and records it (a debug
        event, as for register writes); a replay follows its recording."""
        wanted, self._resume_signal = self._resume_signal, None
        m = self.machine
        if not isinstance(m, LinuxMachine):
            return
        last = self._last_stop
        stopped_for = (
            last.signal
            if last.kind is StopKind.SIGNAL and last.icount == m.icount and m.exit is None
            else None
        )
        if wanted == stopped_for or not self._at_live_frontier():
            return
        pid = m.pid
        payload = encode_debug_signal(stopped_for or 0, wanted or 0, pid)
        apply_debug_write(m, Kind.DEBUG_SIGNAL, payload)
        self._after_write(Kind.DEBUG_SIGNAL, payload)

    def resume(
        self,
        *,
        step: bool,
        direction: Direction,
        interrupted: Interrupted,
        report: Report = no_report,
    ) -> StopEvent:
        self.report = report
        if self.live:
            # Replicas still winding down a search read the history, which
            # going forward live appends to.
            self._join_workers()
        if direction is Direction.FORWARD:
            self._settle_signal()
        else:
            self._resume_signal = None
        start = self.machine.icount
        thread = self.machine.current_tid if self._selected is None else self._selected
        self._selected = None
        scope = self._resumed
        self._frozen = set() if scope is None else self._frozen - scope
        for _pid, other, _points in self._unwatched():
            other.set_exit_addresses(set())  # (armed for an earlier run)
        try:
            if direction is Direction.BACKWARD:
                stop = self._backward(step=step, interrupted=interrupted, thread=thread)
            elif step and (len(self.machine.threads()) > 1 or self.machine.multitask):
                stop = self._step_thread(thread, interrupted)
            else:
                stop = self._forward(step=step, interrupted=interrupted)
        except RrdbgError:
            self._recover(start)
            raise
        finally:
            self._resumed = None
        m = self.machine
        if isinstance(m, LinuxMachine) and stop.kind is not StopKind.EXITED:
            self._frozen.add(m.followed)  # gdb has seen it stop
        self._last_stop = stop
        return stop

    #: Set when a run failed half-way (a damaged recording, say): the machine's
    #: state is not one of the history's until a checkpoint is restored.
    _broken = False
    _recovering = False

    def _recover(self, icount: int) -> None:
        """After a failed run: never run on from that state; go back to
        ``icount`` (where the operation started) if that can be done."""
        self._broken = True
        if self._recovering:
            return
        self._recovering = True
        try:
            with contextlib.suppress(RrdbgError):
                self.seek(icount)
        finally:
            self._recovering = False

    def _undo_past_writes(self) -> str:
        if not self.dirty:
            return ""
        # Writes made in the past are not part of the recording: undo them.
        self.seek(self.machine.icount)
        return "rrdbg: changes made in the past were undone (the recording is immutable)"

    def _backward(self, *, step: bool, interrupted: Interrupted, thread: int) -> StopEvent:
        m = self.machine
        note = self._undo_past_writes()
        now = m.icount
        floor = self._floor
        if now <= floor:
            self.seek(floor)  # a finished machine at 0 is still the state at 0
            return StopEvent(StopKind.HISTORY_BEGIN, floor, note=note)
        barrier = self._barrier
        if step:
            if now == barrier:
                return self._back_over_exec(barrier, note)
            self.seek(now - 1)
            if m.running_tid != thread:
                # Another task ran the instruction before: the stepping
                # thread's own last one is where it was last switched out
                # (none: it has not run yet, its history begins here).
                ran = m.thread_ran_until(thread)
                if not ran or ran - 1 < floor:
                    self.seek(now)
                    return StopEvent(StopKind.HISTORY_BEGIN, now, note=note)
                if ran - 1 < barrier:
                    return self._back_over_exec(barrier, note)
                self.seek(ran - 1)
            at = m.icount
            watched = self._watched_access_at(at) if self.watchpoints else None
            if watched is not None:
                # Stepping back over a watched access is a watchpoint stop, as
                # with gdb's own process record: gdb shows the value change.
                return _with_note(watched, note)
            return StopEvent(StopKind.STEP, at, note=note)
        if barrier and now <= barrier:
            return self._back_over_exec(barrier, note)
        stop = self._reverse_continue(now, interrupted, max(floor, barrier))
        if barrier and stop.kind is StopKind.HISTORY_BEGIN:
            # Nothing since the exec: on into the program before.
            return self._back_over_exec(barrier, note)
        return _with_note(stop, note)

    def _reverse_continue(self, now: int, interrupted: Interrupted, floor: int) -> StopEvent:
        """QEMU's algorithm: replay the interval before ``now`` with every
        breakpoint and watchpoint observed (not stopping), keep the *last*
        hit; without one, do the same for the interval before that, back to
        the start of history.  With replicas (``jobs`` > 1), several
        intervals are replayed at once (``_search_parallel``)."""
        self.take_checkpoint()  # the way back if the search is interrupted
        self._join_workers()  # (their checkpoints cut finer intervals)
        spans = self._parallel_spans(now, floor)
        found = None
        if len(spans) > 1 and spans[0].length <= ALONE_FIRST:
            # A short interval just before now alone first.
            best, block_end, end, start = self._search(now, interrupted, floor, first_only=True)
            if best.kind is StopKind.INTERRUPT or best.icount >= floor or start <= floor:
                return self._stop_at_found(now, floor, best, block_end, end)
            spans = self._parallel_spans(start, floor)
            found = self._search_parallel(spans, interrupted)
            if found is None:
                found = self._search(start, interrupted, floor)[:3]
        elif len(spans) > 1:
            found = self._search_parallel(spans, interrupted)
        if found is None:
            found = self._search(now, interrupted, floor)[:3]
        best, block_end, end = found
        if best.kind is StopKind.INTERRUPT:
            best = dataclasses.replace(best, icount=now)
        return self._stop_at_found(now, floor, best, block_end, end)

    def _search(
        self, now: int, interrupted: Interrupted, floor: int, *, first_only: bool = False
    ) -> tuple[StopEvent, int, int, int]:
        """The sequential search back from ``now`` (``first_only``: in the
        interval before it only): the last hit (or an INTERRUPT or a POSITION
        -1 stop), its block's end for a watchpoint, the end of its interval,
        and the icount searched back to."""
        m = self.machine
        end = now
        start = 0
        best = StopEvent(StopKind.POSITION, -1)
        best_block_end = 0

        def consider(event: StopEvent) -> None:
            nonlocal best, best_block_end
            if start <= event.icount < end and event.icount >= best.icount:
                best = event
                if event.kind is StopKind.WATCHPOINT:
                    best_block_end = self._access_block_end

        started = last_report = time.monotonic()
        interrupted_at: int | None = None
        # The hooks stay in place for the whole search: the code is
        # translated with them once, not once per interval.
        with self._scan_hooks(consider):
            while True:
                self._restore_at_or_before(end - 1)
                start = m.icount
                rb = self.replay_break
                if rb is not None:
                    consider(StopEvent(StopKind.POSITION, rb, signal=SIGINT))
                if not self._run_plain(end, interrupted):
                    interrupted_at = m.icount
                    break
                if best.icount >= floor or start <= floor or first_only:
                    break
                end = start
                if time.monotonic() - last_report >= REPORT_EVERY:
                    last_report = time.monotonic()
                    self.report(
                        f"rrdbg: reverse-continue: no stop after icount {end} "
                        f"({time.monotonic() - started:.0f} s); searching further back"
                    )
        if interrupted_at is not None:
            return StopEvent(StopKind.INTERRUPT, now, signal=SIGINT), 0, end, start
        return best, best_block_end, end, start

    # -- parallel reverse-continue ------------------------------------------------
    #: Executors of a reverse-continue: this timeline and ``jobs - 1``
    #: replicas, in threads (the emulator runs without the GIL); 1: alone.
    jobs = 1
    _replica_parts: tuple[LogHeader, History, EndRecord | None, Cursor] | None = None
    _live_parts: tuple[str, list[str], int | None] | None = None
    _replicas: list[Timeline] | None = None

    def _parallel_ok(self) -> bool:
        """Whether a replica behaves as this timeline in a search: nothing
        written in the past, and a debugger that holds the first process
        only (replicas follow it, and nothing else)."""
        m = self.machine
        if self.dirty or (self._replica_parts is None and self._live_parts is None):
            return False
        if isinstance(m, LinuxMachine):
            return self.debugged_processes() == [m.followed] and m.followed == m.root_pid
        return True

    def _replicas_for(self, n: int) -> list[Timeline]:
        """``n`` replicas, made on first use and kept; each set up with this
        timeline's breakpoints, watchpoints, signals and restore points."""
        if self._replicas is None:
            self._replicas = []
        while len(self._replicas) < n:
            try:
                replica = self._replica()
            except (RrdbgError, OSError, MemoryError) as exc:
                self._alone(exc)
                break
            if replica is None:
                break
            self._replicas.append(replica)
        del self._replicas[max(n, 0) :]  # (fewer jobs: free the machines)
        out = self._replicas[:n]
        for r in out:
            r.checkpoints = list(self.checkpoints)
            r.disk = list(self.disk) if r.store is not None else []
            r.breakpoints = dict(self.breakpoints)
            r.watchpoints = list(self.watchpoints)
            r.pass_signals = self.pass_signals
            r.replay_break = self.replay_break
            r.budget = self.budget
            if self.live:
                r.history_end = self.frontier
        return out

    #: Why reverse-continue searches alone for the rest of the session (a
    #: replica could not be made, or failed).
    _alone_because: str | None = None

    def _alone(self, exc: BaseException) -> None:
        """Search alone from now on, saying why once."""
        if self._alone_because is None:
            self._alone_because = str(exc) or type(exc).__name__
            print(
                f"rrdbg: reverse-continue goes on one interval at a time: {self._alone_because}",
                file=sys.stderr,
                flush=True,
            )
        self._join_workers()
        self._replicas = []

    def _parallel_spans(self, now: int, floor: int) -> list[parallel.Interval]:
        """The intervals a parallel search back from ``now`` would scan,
        newest first; none when it does not apply."""
        if self.jobs < 2 or self._alone_because is not None or not self._parallel_ok():
            return []
        points = [c.icount for c in self.checkpoints]
        if self._replica_parts is not None:  # (replicas of a live session have no image)
            points += [d.icount or 0 for d in self.disk]
        return parallel.intervals(points, floor, now)

    def _search_parallel(
        self, spans: list[parallel.Interval], interrupted: Interrupted
    ) -> tuple[StopEvent, int, int] | None:
        """``_search`` over ``spans`` with this timeline and its replicas
        each replaying other intervals (``parallel``); None where it does
        not apply, or when an executor failed (the sequential search then
        meets the same error, or none if it was in an interval it does not
        need)."""
        if len(spans) < 2:
            return None
        now = spans[0].end
        self._join_workers()
        replicas = self._replicas_for(min(self.jobs, len(spans)) - 1)
        if not replicas:
            return None
        board: parallel.Board[tuple[StopEvent, int]] = parallel.Board(spans, 1 + len(replicas))
        # Workers still scanning older intervals once the answer is known
        # stop at their next poll; they are joined before the replicas are
        # used again (_join_workers), not here.
        self._workers = []
        try:
            for k, r in enumerate(replicas):
                worker = threading.Thread(
                    target=r._scan_intervals,
                    args=(board, k + 1, interrupted),
                    name=f"rrdbg-scan-{k + 1}",
                    daemon=True,
                )
                worker.start()
                self._workers.append(worker)
            self._scan_intervals(board, 0, interrupted)
            board.wait(0.05, interrupted)
        finally:
            if not board.settled:
                board.interrupt()
        if self.live:
            # (Going on live appends to the history the replicas read.)
            self._join_workers()
        if board.failed is not None and not board.settled:
            self._alone(board.failed)
            return None
        if board.interrupted and not board.settled:
            return StopEvent(StopKind.INTERRUPT, now, signal=SIGINT), 0, now
        answer = board.answer
        if answer is None:
            return StopEvent(StopKind.POSITION, -1), 0, spans[-1].start
        i, (event, block_end) = answer
        return event, block_end, spans[i].end

    _workers: list[threading.Thread] | None = None
    #: Instructions per call into the emulator at most (between polls).
    _poll_slice = POLL_SLICE

    def _join_workers(self) -> None:
        """Wait for the workers of the last search, and keep their replicas'
        checkpoints (states of the same recording: the next search has
        finer intervals), within the budget."""
        for w in self._workers or []:
            w.join()
        self._workers = None
        for r in self._replicas or []:
            self._adopt_checkpoints(r.checkpoints)
            r.checkpoints = r.checkpoints[:1]

    def _scan_intervals(
        self, board: parallel.Board[tuple[StopEvent, int]], executor: int, interrupted: Interrupted
    ) -> None:
        """Replay the intervals ``board`` hands out, noting the last hit of
        each (the caller's thread for executor 0, a worker's otherwise)."""
        span = parallel.Interval(0, 0)
        best: tuple[StopEvent, int] | None = None

        def consider(event: StopEvent) -> None:
            nonlocal best
            if span.start <= event.icount < span.end and (
                best is None or event.icount >= best[0].icount
            ):
                block_end = self._access_block_end if event.kind is StopKind.WATCHPOINT else 0
                best = (event, block_end)

        started = last_report = time.monotonic()
        i: int | None = None
        try:
            with self._scan_hooks(consider):
                while (i := board.take(executor)) is not None:
                    span, best = board.spans[i], None

                    def stop(i: int = i) -> bool:
                        return interrupted() or board.stop_wanted(i)

                    self._restore_at_or_before(span.start)
                    rb = self.replay_break
                    if rb is not None:
                        consider(StopEvent(StopKind.POSITION, rb, signal=SIGINT))
                    # From an earlier state (a checkpoint evicted since the
                    # intervals were cut), stop at the start first: a block
                    # must not run across it (a hook may name its start).
                    if not self._run_plain(span.start, stop) or not self._run_plain(span.end, stop):
                        if interrupted():
                            board.interrupt()
                        board.drop(i)
                        continue
                    board.finish(i, best)
                    if executor == 0 and time.monotonic() - last_report >= REPORT_EVERY:
                        last_report = time.monotonic()
                        self.report(
                            f"rrdbg: reverse-continue: no stop after icount "
                            f"{board.searched_back_to()} ({time.monotonic() - started:.0f} s, "
                            f"{board.jobs} at once); searching further back"
                        )
        except BaseException as exc:  # the caller goes on alone (or stops)
            board.fail(exc, -1 if i is None else i)
            if executor == 0 and not isinstance(exc, Exception):
                raise

    def _adopt_checkpoints(self, others: list[Checkpoint]) -> None:
        """Add checkpoints of the same history taken by a replica."""
        have = {c.icount for c in self.checkpoints}
        fresh = [c for c in others if c.icount not in have]
        if not fresh:
            return
        self.checkpoints = sorted([*self.checkpoints, *fresh], key=lambda c: c.icount)
        self._enforce_budget()

    def _stop_at_found(
        self, now: int, floor: int, best: StopEvent, best_block_end: int, end: int
    ) -> StopEvent:
        """Go to what a search found and say so."""
        m = self.machine
        if best.kind is StopKind.INTERRUPT:  # back to where the search began
            self.seek(now)
            return best
        if best.icount < floor:
            # Nothing since the followed process's history began.
            self.seek(floor)
            return StopEvent(StopKind.HISTORY_BEGIN, floor)
        if best.kind is StopKind.WATCHPOINT and best.watch is not None:
            k, _pc = self._pin_access(
                best.icount, min(best_block_end, end), self._watch_specs(*best.watch), last=True
            )
            best = dataclasses.replace(best, icount=k)
        self.seek(best.icount)
        if best.process is not None:
            self.follow_process(best.process)
        if best.kind is StopKind.SIGNAL and isinstance(m, LinuxMachine):
            # Stopped before the delivery, as a forward run stops: the next
            # forward run delivers it instead of stopping again.
            m.note_signal_stop(best.icount, best.signal)
        return best

    def _watched_access_at(self, icount: int) -> StopEvent | None:
        """Whether the instruction at ``icount`` (the machine is there) accesses
        a watched location; the machine is left where it was."""
        self.take_checkpoint()  # here: the way back after the probe
        found: list[StopEvent] = []

        def consider(event: StopEvent) -> None:
            # (Only the instruction at icount runs: any access is its own,
            # whatever EIP Unicorn showed the hook.)
            if event.kind is StopKind.WATCHPOINT:
                found.append(dataclasses.replace(event, icount=icount))

        with self._scan_hooks(consider):
            self._run_plain(icount + 1, None)
        self.seek(icount)
        return found[-1] if found else None

    def _watch_specs(self, kind: WatchKind, address: int) -> list[tuple[bool, int, int]]:
        """(write, address, length) of the memory watches behind a watchpoint."""
        out = []
        for w in self.watchpoints:
            if (w.kind, w.address) == (kind, address):
                for write, one in ((True, WatchKind.WRITE), (False, WatchKind.READ)):
                    if w.kind is one or w.kind is WatchKind.ACCESS:
                        out.append((write, w.address, w.length))
        return out

    def _pin_access(
        self, k: int, block_end: int, specs: list[tuple[bool, int, int]], *, last: bool
    ) -> tuple[int, int | None]:
        """(icount, pc) of the instruction that made an access a memory hook
        reported at ``k``, the first (or ``last``) in [k, block_end); the pc
        is None when the answer is ``k`` unchecked.

        Unicorn brings EIP up to date before a memory hook only for plain
        loads and stores: for an SSE movq, an x87 store or fxsave the hook
        sees its block's start.  So when the block has more than one
        candidate, run its instructions one at a time from ``k`` with the
        watches armed; the machine is left after the last one run."""
        m = self.machine
        if block_end - k <= 1 or not specs:
            return k, None
        self.seek(k)
        cpu = m.debuggee.cpu
        hit = [False]

        def note(_addr: int, _size: int) -> None:
            hit[0] = True

        handles = [
            cpu.watch_memory(write=write, address=a, length=n, callback=note)
            for write, a, n in specs
        ]
        cpu.retranslate()
        found: tuple[int, int | None] = (k, None)
        try:
            with self._disarmed():
                while m.icount < block_end:
                    before, pc = m.icount, m.debuggee.cpu.eip
                    hit[0] = False
                    if not self._run_plain(before + 1, None) or m.icount != before + 1:
                        break
                    if hit[0]:
                        found = (before, pc)
                        if not last:
                            break
        finally:
            for h in handles:
                cpu.unwatch(h)
            cpu.retranslate()
        return found

    def _run_plain(self, end: int, interrupted: Interrupted | None) -> bool:
        """Run to ``end`` (or the end of what was recorded); False if interrupted."""
        m = self.machine
        while m.icount < end:
            stop = self._run_slice(end, interrupted)
            if stop is not None:
                return stop.kind is not StopKind.INTERRUPT
        return True

    def _forward(
        self, *, step: bool, interrupted: Interrupted, until_thread: int | None = None
    ) -> StopEvent:
        """Run forward a step or until a stop; with ``until_thread``, also
        until that thread is switched in (a STEP stop)."""
        m = self.machine
        note = self._undo_past_writes()
        started_at = m.icount
        if m.exit is not None:
            return self._finished_stop(note)
        end = self.history_end
        if end is not None and m.icount >= end and not self.fatal_end:
            return StopEvent(StopKind.HISTORY_END, m.icount, note=note)
        target = m.icount + 1 if step else _NO_LIMIT
        if end is not None:
            # A fatal fault at the end runs too: its instruction does not retire.
            target = min(target, end + 1 if self.fatal_end else end)
        rb = self.replay_break
        if rb is not None and m.icount < rb < target:
            target = rb
        if self.watchpoints:
            cp = self._nearest_checkpoint(m.icount)
            if m.icount - cp.icount > WATCH_CHECKPOINT_DISTANCE:
                self.take_checkpoint()
        if isinstance(m, LinuxMachine):
            # Stop before delivering a signal gdb wants to see (gdbserver's way).
            passed = self.pass_signals
            held = self._holding = set(self._watched())
            # (Only in a process gdb holds: a detached one runs unobserved.)
            m.stop_for_signal = lambda sig: sig not in passed and m.linux.pid in held
            # The end of a process gdb holds is a stop (the followed one's
            # too while gdb holds others: gdb turns to them after it).
            m.held = frozenset(held) if len(held) > 1 else frozenset()
            m.run_until_thread = until_thread
            m.process_events = self.process_events
        try:
            with self._armed():
                # (At a breakpoint of the process that runs next, if held.)
                points = self._breakpoints_of_runner()
                at_break = points is not None and m.cpu.eip in points
                stop = self._run_to(target, interrupted, step_over=at_break)
        finally:
            if isinstance(m, LinuxMachine):
                m.stop_for_signal = None
                m.run_until_thread = None
                m.process_events = False
                m.held = frozenset()
        if self._watch_hit is not None:
            kind, address, count, writer, block_end = self._watch_hit
            self._watch_hit = None
            count, _pc = self._pin_access(
                count, block_end, self._watch_specs(kind, address), last=False
            )
            if count + 1 != m.icount or m.exit is not None:
                self.seek(count + 1)
            # The thread that made the access, even if its slice ended with
            # it (another thread runs next): its registers, its stop.
            if writer != m.current_tid and any(t == writer for t, _ in m.threads()):
                self._selected = writer
            stop = StopEvent(StopKind.WATCHPOINT, m.icount, watch=(kind, address), thread=writer)
        self.frontier = max(self.frontier, m.icount)
        self.host.shown_until = max(self.host.shown_until, m.icount)
        if stop.kind is StopKind.POSITION:
            if step:
                stop = StopEvent(StopKind.STEP, m.icount)
            elif m.icount == rb:
                # QEMU reports a replay_break stop as an interrupt.
                self.replay_break = None
                stop = StopEvent(StopKind.POSITION, m.icount, signal=SIGINT)
            elif end is not None and m.icount >= end:
                stop = StopEvent(StopKind.HISTORY_END, m.icount)
        elif stop.kind is StopKind.EXITED and stop.process is not None:
            pass  # another process gdb holds ended; the machine goes on
        elif stop.kind is StopKind.EXITED and not self.live:
            # Not a live run: show the last state before the program ended
            # (a PC that halted for good: that state).
            last = m.icount - 1 if end is None else min(end, m.icount)
            if last != m.icount:
                self.seek(last)
            stop = StopEvent(StopKind.HISTORY_END, m.icount)
        elif stop.kind is StopKind.EXITED and self._final_end is not None:
            # A live run that reaches its end stops first at the last state
            # (as rr does, and record full before exit_group), so gdb keeps
            # the process and can go back; a resume from there ends it.
            last = _last_state(self._final_end)
            if started_at != last:
                self.seek(last)
                stop = StopEvent(StopKind.HISTORY_END, m.icount, note=_end_note(self._final_end))
        return _with_note(stop, note)

    def _step_thread(self, thread: int, interrupted: Interrupted) -> StopEvent:
        """A single step of one thread among several: the others run as the
        scheduler says until ``thread`` has executed one instruction (gdb's
        all-stop stepping without scheduler locking); a stop in another
        thread on the way (a breakpoint, a signal) is reported instead."""
        m = self.machine

        def alive() -> bool:
            return any(t == thread for t, _ in m.threads())

        if m.running_tid != thread and alive():
            stop = self._forward(step=False, interrupted=interrupted, until_thread=thread)
            if stop.kind is not StopKind.STEP or m.running_tid != thread:
                return stop
        stop = self._forward(step=True, interrupted=interrupted)
        if stop.kind is StopKind.STEP and m.running_tid != thread and alive():
            stop = self._forward(step=False, interrupted=interrupted, until_thread=thread)
        return stop

    def _finished_stop(self, note: str) -> StopEvent:
        m = self.machine
        if not self.live:
            return StopEvent(StopKind.HISTORY_END, m.icount, note=note)
        status = m.exit
        assert status is not None
        if status.signal is not None:
            return StopEvent(StopKind.EXITED, m.icount, signal=status.signal, note=note)
        return StopEvent(StopKind.EXITED, m.icount, exit_code=status.code, note=note)

    def _run_to(self, target: int, interrupted: Interrupted, *, step_over: bool) -> StopEvent:
        """Run forward until ``target`` or a stop; the caller has armed points."""
        m = self.machine
        if step_over and m.icount < target:
            # Unicorn halts *at* an exit address: execute that instruction first.
            cpu = m.cpu
            points = self._breakpoints_of_runner()
            addr = cpu.eip
            cpu.remove_exit(addr)
            try:
                stop = self._run_slice(m.icount + 1, interrupted)
            finally:
                if points is not None and addr in points:
                    cpu.add_exit(addr)
            if stop is not None or self._watch_hit is not None:
                return stop or StopEvent(StopKind.POSITION, m.icount)
        while m.icount < target:
            stop = self._run_slice(target, interrupted)
            if stop is not None:
                return stop
            if self._watch_hit is not None:
                break
        return StopEvent(StopKind.POSITION, m.icount)

    def _run_slice(self, target: int, interrupted: Interrupted | None) -> StopEvent | None:
        """One call into the emulator; a stop event, or None to go on."""
        m = self.machine
        # Memory watches whose page was touched go back to page traps (a
        # page written once in a while costs nothing in between; see Cpu).
        m.debuggee.cpu.rearm_watches()
        pending = self.history.next_debug_write()
        limit = min(target, m.icount + self._poll_slice)
        if pending is not None and pending[0] < limit:
            limit = max(pending[0], m.icount)
        if limit > m.icount:
            stop = m.run(limit, exact=limit in (target, pending[0] if pending else -1))
        else:
            stop = None
        if m.exit is not None and self.live and self._final_end is None and self.host.at_frontier:
            # How the program ended, noted when it does: a fault or a fatal
            # signal ends it without retiring an instruction, so going back to
            # that icount later shows the state before, not the end.
            code, signal = m.end_status()
            self._final_end = EndRecord(code, signal, m.icount, m.digest())
        self.frontier = max(self.frontier, m.icount)
        self._apply_debug_writes()
        self._maybe_periodic_checkpoint()
        if stop is None:
            return None
        if stop.reason is StopReason.FAULT:
            assert stop.fault is not None
            return StopEvent(StopKind.SIGNAL, m.icount, signal=stop.fault.signal)
        if stop.reason is StopReason.SIGNAL:
            assert stop.signal is not None
            if isinstance(m, LinuxMachine) and m.linux.pid != m.followed:
                self.follow_process(m.linux.pid)  # another process gdb holds
            return StopEvent(StopKind.SIGNAL, m.icount, signal=stop.signal)
        if stop.reason in (StopReason.SYSCALL, StopReason.END):
            status = m.exit
            if status is None:
                return None
            if status.signal is not None:
                return StopEvent(StopKind.EXITED, m.icount, signal=status.signal)
            return StopEvent(StopKind.EXITED, m.icount, exit_code=status.code)
        if stop.reason is StopReason.EXIT:
            if isinstance(m, LinuxMachine) and m.linux.pid != m.followed:
                # A breakpoint of another process gdb holds: gdb turns to it.
                self.follow_process(m.linux.pid)
            hardware = self.breakpoints.get(m.debuggee.cpu.eip, False)
            return StopEvent(StopKind.BREAKPOINT, m.icount, hardware=hardware)
        if stop.reason is StopReason.REQUEST:
            return None
        if stop.reason is StopReason.SWITCH:
            return StopEvent(StopKind.STEP, m.icount)
        if stop.reason is StopReason.PROCESS and isinstance(m, LinuxMachine):
            return self._process_event(m)
        if interrupted is not None and interrupted() and m.icount < target:
            return StopEvent(StopKind.INTERRUPT, m.icount, signal=SIGINT)
        return None

    def _process_event(self, m: LinuxMachine) -> StopEvent | None:
        """The stop for the process event the machine stopped at."""
        event, m.event = m.event, None
        if event is None:
            return None
        what, pid, path = event
        if what in ("fork", "vfork") and pid in self._attached:
            # A fork made again after going back, whose child gdb still
            # holds: gdb knows it (a second fork event for the same process
            # would confuse it); its threads come back listed.  It is held
            # again from here: its breakpoints, signals and end.
            self._holding.add(pid)
            m.held = frozenset(self._holding)
            if pid in m.procs:
                points = self._points.get(pid, ({}, []))[0]
                m.procs[pid].cpu.set_exit_addresses(set(points))
            return None
        where = m.event_process
        if what != "exit" and where != m.followed and where in m.procs:
            self.follow_process(where)  # an event of another process gdb holds
        if what in ("fork", "vfork"):
            self._newest_child = pid
            self._attached.add(pid)  # gdb holds the child until it detaches it
            kind = StopKind.FORK if what == "fork" else StopKind.VFORK
            return StopEvent(kind, m.icount, child=pid)
        if what == "vforkdone":
            return StopEvent(StopKind.VFORK_DONE, m.icount, child=pid)
        if what == "exit":
            # A process gdb holds has ended (the followed one: gdb turns to
            # another it holds).
            status = m.ended
            assert status is not None
            if pid == m.followed:
                rest = self.debugged_processes()[1:]
                if rest:
                    self.follow_process(rest[0])
            self._attached.discard(pid)
            self._points.pop(pid, None)
            # Its breakpoints go with it (its container may run again when
            # the machine goes back: unobserved then).
            ended = m.container(pid)
            if ended is not None and pid != m.followed:
                ended.cpu.set_exit_addresses(set())
            if status.signal is not None:
                return StopEvent(StopKind.EXITED, m.icount, signal=status.signal, process=pid)
            return StopEvent(StopKind.EXITED, m.icount, exit_code=status.code, process=pid)
        return StopEvent(StopKind.EXEC, m.icount, path=os.fsdecode(path))

    def _apply_debug_writes(self) -> None:
        """Apply the recorded debugger writes at the machine's icount."""
        m = self.machine
        # Host events at this icount were consumed by the run that got here,
        # so a due write is the next event.
        while (event := self.history.peek()) is not None:
            icount, kind, payload = event
            if icount != m.icount or kind not in DEBUG_KINDS:
                return
            apply_debug_write(m, kind, payload)
            self.history.advance()

    # -- arming breakpoints and watchpoints ----------------------------------------
    @contextmanager
    def _scan_hooks(self, consider: Callable[[StopEvent], None]) -> Iterator[None]:
        """Breakpoints and watchpoints as hooks that note hits without stopping."""
        cpu = self.machine.debuggee.cpu
        cpu.set_exit_addresses(set())
        handles: list[int] = []
        for address, hardware in self.breakpoints.items():

            def on_code(k: int, hardware: bool = hardware) -> None:
                consider(StopEvent(StopKind.BREAKPOINT, k, hardware=hardware))

            handles.append(cpu.watch_code(address, on_code))
        held: list[tuple[Cpu, int]] = []
        for pid, other, points in self._held():
            for address, hardware in points.items():

                def on_held(k: int, hardware: bool = hardware, pid: int = pid) -> None:
                    consider(StopEvent(StopKind.BREAKPOINT, k, hardware=hardware, process=pid))

                other.set_exit_addresses(set())
                held.append((other, other.watch_code(address, on_held)))
        for other in {id(c): c for c, _ in held}.values():
            other.retranslate()
        for w in self.watchpoints:
            for write, kind in ((True, WatchKind.WRITE), (False, WatchKind.READ)):
                if w.kind is not kind and w.kind is not WatchKind.ACCESS:
                    continue

                def on_access(_address: int, _size: int, w: _Watch = w) -> None:
                    k = cpu.count_at(cpu.eip)
                    self._access_block_end = cpu.block_end()
                    consider(StopEvent(StopKind.WATCHPOINT, k, watch=(w.kind, w.address)))

                handles.append(
                    cpu.watch_memory(
                        write=write, address=w.address, length=w.length, callback=on_access
                    )
                )
        if handles:
            cpu.retranslate()
        m = self.machine
        if isinstance(m, LinuxMachine):
            # Deliveries gdb stops for going forward are stops going back
            # too, as with record full: noted, never stopped at.
            passed = self.pass_signals
            holding = set(self._watched())

            def on_signal(sig: int) -> bool:
                pid = m.linux.pid
                if sig not in passed and pid in holding:
                    other = None if pid == m.followed else pid
                    consider(StopEvent(StopKind.SIGNAL, m.icount, signal=sig, process=other))
                return False

            m.stop_for_signal = on_signal
        try:
            yield
        finally:
            if isinstance(m, LinuxMachine):
                m.stop_for_signal = None
            for h in handles:
                cpu.unwatch(h)
            if handles:
                cpu.retranslate()
            for other, h in held:
                other.unwatch(h)
            for other in {id(c): c for c, _ in held}.values():
                other.retranslate()

    def _armed(self) -> _Arming:
        return _Arming(self, arm=True)

    def _disarmed(self) -> _Arming:
        return _Arming(self, arm=False)

    def watch_hook(self, kind: WatchKind) -> Callable[[int, int], None]:
        def hook(address: int, size: int) -> None:
            if self._watch_hit is not None:
                return
            for w in self.watchpoints:
                if (
                    address < w.address + w.length
                    and address + size > w.address
                    and (w.kind is kind or w.kind is WatchKind.ACCESS)
                ):
                    cpu = self.machine.debuggee.cpu
                    count = cpu.count_at(cpu.eip)
                    self._watch_hit = (
                        w.kind,
                        w.address,
                        count,
                        self.machine.running_tid,
                        cpu.block_end(),
                    )
                    cpu.request_stop()
                    return

        return hook

    # -- monitor ---------------------------------------------------------------------
    def monitor(self, command: str, interrupted: Interrupted) -> tuple[str, StopEvent | None]:
        """QEMU's HMP replay commands (same names and wording) and rrdbg's own."""
        words = command.split()
        match words:
            case [] | ["help"]:
                return _HELP, None
            case ["info", "replay"]:
                mode = "Recording" if self._at_live_frontier() else "Replaying"
                return f"{mode} execution '{self.name}': instruction count = {self.icount}\n", None
            case ["when"]:
                return f"Current icount: {self.icount}\n", None
            case ["info", "rrdbg"]:
                return self._describe_session(), None
            case ["replay_seek", arg]:
                return self._monitor_seek(_number(arg, "icount"), interrupted)
            case ["seek", arg]:
                # A number is an icount (checkpoint ids are for restart).
                at = None if arg[:1].isdigit() else self._checkpoint_icount(arg, by_id=False)
                if at is not None:
                    return self._monitor_seek(at, interrupted, quiet=True)
                return self._monitor_seek(_number(arg, "icount"), interrupted, quiet=True)
            case ["restart", arg]:
                icount = self._checkpoint_icount(arg, by_id=True)
                if icount is None:
                    raise TargetError(f"no checkpoint named {arg!r} (see: info checkpoints)", 22)
                return self._monitor_seek(icount, interrupted, quiet=True)
            case ["replay_break", arg]:
                self.replay_break = _number(arg, "icount")
                return "", None
            case ["replay_delete_break"]:
                self.replay_break = None
                return "", None
            case ["checkpoint", *rest] if len(rest) <= 2:
                save = "--save" in rest
                names = [w for w in rest if w != "--save"]
                if len(names) > 1 or len(rest) - len(names) > 1:
                    raise TargetError("usage: checkpoint [--save] [NAME]", errno=22)
                name = names[0] if names else f"checkpoint-{self.icount}"
                return self._named_checkpoint(name, save=save), None
            case ["info", "checkpoints"]:
                return self._describe_checkpoints(), None
            case ["last-write", addr] | ["last-write", addr, _]:
                address, size = self._address(addr)
                length = _number(words[2], "length") if len(words) > 2 else size
                return self._last_write(address, length, interrupted), None
            case ["save", directory]:
                return self.save(directory), None
            case ["jobs"]:
                return self._describe_jobs(), None
            case ["jobs", arg]:
                jobs = _number(arg, "number of jobs")
                if not 1 <= jobs <= 64:
                    raise TargetError(f"bad number of jobs {arg!r} (1 to 64)", errno=22)
                self.jobs = jobs
                self._alone_because = None  # (try again)
                return self._describe_jobs(), None
            case _:
                raise TargetError(
                    f"unknown or malformed monitor command {command.strip()!r} (try: monitor help)",
                    errno=22,
                )

    def _describe_jobs(self) -> str:
        if self.jobs == 1:
            return "reverse-continue replays one interval of history at a time\n"
        text = f"reverse-continue replays up to {self.jobs} intervals of history at once"
        if self._replica_parts is None and self._live_parts is None:
            return text + " in rrdbg's sessions (this one: one at a time)\n"
        if self._alone_because is not None:
            return text + f" (this session: one at a time: {self._alone_because})\n"
        return text + "\n"

    def _history_limit(self) -> int:
        """The furthest icount a seek may go to."""
        if self.history_end is not None:
            return self.history_end
        return max(self.frontier, self.icount)

    def _monitor_seek(
        self, icount: int, interrupted: Interrupted, *, quiet: bool = False
    ) -> tuple[str, StopEvent]:
        limit = self._history_limit()
        if icount > limit:
            raise TargetError(f"icount {icount} is beyond the end of history ({limit})", errno=22)
        note = self._undo_past_writes()
        if not self.seek(icount, interrupted):
            raise TargetError("seek interrupted", errno=4)
        stop = StopEvent(StopKind.POSITION, icount)
        self._last_stop = stop
        text = f"{note}\n" if note else ""
        text += f"Current icount: {icount}\n"
        if not quiet:
            # gdb does not re-read registers after a monitor command (the gdb
            # extension's seek and restart flush its caches themselves).
            text += "rrdbg: 'maintenance flush register-cache' (or any step) makes gdb show it\n"
        return text, stop

    def _checkpoint_icount(self, name: str, *, by_id: bool) -> int | None:
        """The icount of the named checkpoint (this session's, or a snapshot)."""
        cp = self.named.get(name)
        if cp is not None:
            return cp.icount
        snap = self._find_checkpoint(name, by_id=by_id)
        return snap.icount if snap is not None else None

    def _find_checkpoint(self, name: str, *, by_id: bool = True) -> SnapshotInfo | None:
        """The recording's snapshot named ``name`` (or, ``by_id``, with that id)."""
        for snap in self.disk:
            if snap.name == name or (by_id and snap.id == name):
                return snap
        return None

    def _address(self, text: str) -> tuple[int, int]:
        """An address argument: a number, or a symbol (``counter``,
        ``history+8``); with the size it covers (1 for a number)."""
        match = re.fullmatch(r"([A-Za-z_.$][\w.$@]*)(?:\+(\w+))?", text)
        if match is None:
            return _number(text, "address"), 1
        found = self.symbols.lookup(match.group(1))
        if found is None:
            raise TargetError(f"no symbol {match.group(1)!r} in the program", errno=22)
        address, size = found
        if match.group(2) is not None:
            return address + _number(match.group(2), "offset"), 1
        return address, max(size, 1)

    def _describe_session(self) -> str:
        """``info rrdbg``: what this session is (the gdb extension checks the
        first word to know it talks to rrdbg)."""
        from rrdbg import __version__

        m = self.machine
        if self.live:
            kind = f"live session of {m.exe_path}"
            end = f"history so far: 0..{self._history_limit()} (then the program runs on)"
        else:
            kind = f"replay of {self.name} (program {m.exe_path})"
            end = f"history: 0..{self.history_end}"
            if self.fatal_end:
                end += " (ends at a fatal fault)"
        mode = "recording" if self._at_live_frontier() else "replaying"
        text = (
            f"rrdbg {__version__}: {kind}\n"
            f"Current icount: {self.icount} ({mode})\n"
            f"{end}\n"
            f"checkpoints: {len(self.disk)} named or on disk, {len(self.checkpoints)} in memory\n"
        )
        root = self.lines.source_root(m.exe_path)
        if root is not None:
            text += f"sources: {root}\n"
        return text

    def _named_checkpoint(self, name: str, *, save: bool) -> str:
        """A named checkpoint.  In a replay it lives in memory for this
        session (never evicted; at most MAX_NAMED of them) unless ``save``
        asks to add it to the recording's image.  In a live session writing
        a recording (-o), it is a snapshot of that recording."""
        if self.dirty:
            raise TargetError("the state was changed in the past; step first to undo", errno=22)
        if name in self.named or self._find_checkpoint(name, by_id=False) is not None:
            raise TargetError(f"a checkpoint named {name!r} already exists", errno=17)
        if not save and not (self.live and self.writer is not None):
            if len(self.named) >= MAX_NAMED:
                raise TargetError(
                    f"{MAX_NAMED} checkpoints are kept in memory at most; "
                    "checkpoint --save NAME adds one to the recording instead",
                    errno=28,
                )
            self.named[name] = self.take_checkpoint()
            self._enforce_budget()
            return f"checkpoint {name!r} at icount {self.icount} (in memory, for this session)\n"
        if self.image is None:
            raise TargetError(
                "no snapshot image: start 'rrdbg debug' with -o DIR to keep checkpoints", errno=22
            )
        if self.dirty:
            raise TargetError("the state was changed in the past; step first to undo", errno=22)
        cursor = self.history.cursor_for(self.icount)
        if cursor is None:
            raise TargetError("no log position for this icount", errno=22)
        if self.image.find(name) is not None:
            raise TargetError(f"a snapshot named {name!r} already exists", errno=17)
        own = re.compile(re.escape(self.snapshot_prefix) + r"(-\d+)?")
        added = [s for s in self.disk if not own.fullmatch(s.name)]
        if len(added) >= MAX_SAVED:
            raise TargetError(
                f"the recording holds {MAX_SAVED} named checkpoints already (the limit); "
                "qemu-img snapshot -d NAME removes one",
                errno=28,
            )
        if not self.image.writable:
            path = self.image.path
            self.image.close()
            self.attach_image(Qcow2Image.open(path, writable=True, sync=False))
        assert self.store is not None
        assert self.image is not None
        if self.writer is not None:
            self.writer.flush()  # the cursor must name a chunk on disk
        info = self.store.save(self.machine, name, cursor.to_bytes())
        self.attach_image(self.image)
        self.take_checkpoint()
        return (
            f"checkpoint {info.name!r} at icount {self.icount} "
            f"(snapshot {info.id} in {self.image.path})\n"
        )

    def _describe_checkpoints(self) -> str:
        lines = []
        if self.image is not None:
            lines.append(f"snapshots in {self.image.path}:")
            for snap in self.disk:
                lines.append(f"  {snap.id:>4}  {snap.name:<24} icount {snap.icount}")
        else:
            lines.append("no snapshot image")
        for name, cp in sorted(self.named.items(), key=lambda kv: kv[1].icount):
            lines.append(f"     -  {name:<24} icount {cp.icount} (in memory, this session)")
        icounts = ", ".join(str(c.icount) for c in self.checkpoints)
        lines.append(
            f"in memory: {len(self.checkpoints)} checkpoints, "
            f"{self.checkpoint_bytes() / 1e6:.1f} MB of {self.budget / 1e6:.0f} MB: {icounts}"
        )
        return "\n".join(lines) + "\n"

    def _last_write(self, address: int, length: int, interrupted: Interrupted) -> str:
        """``monitor last-write``: the answer of ``last_write`` as a line."""
        now = self.icount
        found = self.last_write(address, length, interrupted)
        if found is None:
            return f"no write to {address:#x}+{length} before icount {now}\n"
        k, pc, how = found
        name = self.symbols.describe(pc)
        where = f" <{name}>" if name else ""
        by = f" ({how})" if how else ""
        return (
            f"last write to {address:#x}+{length} before icount {now}: "
            f"icount {k}, pc {pc:#x}{where}{by}\n"
        )

    @property
    def symbols(self) -> Symbols:
        """The program's (or kernel's) symbols, read once."""
        if self._symbols is None:
            self._symbols = self.machine.symbols()
        return self._symbols

    @property
    def lines(self) -> Lines:
        """The program's DWARF line table, read once."""
        if self._lines is None:
            self._lines = Lines.read_image(self.machine.program_image)
        return self._lines

    def last_write(
        self, address: int, length: int, interrupted: Interrupted
    ) -> tuple[int, int, str] | None:
        """(icount, pc, how) of the last write to [address, address+length)
        before now, by an instruction (how "") or by the machine itself (a
        system call's result, an interrupt frame); None if there was none.
        The position does not change."""
        if length <= 0 or address + length > 1 << 32:
            raise TargetError(f"bad range {address:#x}+{length}", errno=22)
        self._undo_past_writes()
        m = self.machine
        now = m.icount
        found: tuple[int, int, str] | None = None
        end = now
        self.take_checkpoint()
        while end > 0:
            self._restore_at_or_before(end - 1)
            start = m.icount
            hits = self._writes_until(address, length, end, interrupted)
            if hits is None:
                self.seek(now)
                raise TargetError("last-write interrupted", errno=4)
            if hits:
                k, pc, how, block_end = max(hits)
                if not how:
                    k, pinned = self._pin_access(k, block_end, [(True, address, length)], last=True)
                    pc = pc if pinned is None else pinned
                found = (k, pc, how)
                break
            end = start
        self.seek(now)
        return found

    def _writes_until(
        self, address: int, length: int, end: int, interrupted: Interrupted
    ) -> list[tuple[int, int, str, int]] | None:
        """Run from here to ``end`` noting every write (icount, pc, how, end of
        its block: see _pin_access) to the range, by the CPU or by the
        kernel; None if interrupted."""
        m = self.machine
        cpu = m.debuggee.cpu
        mem = m.debuggee.memory
        hits: list[tuple[int, int, str, int]] = []

        def on_cpu(_addr: int, _size: int) -> None:
            k = cpu.count_at(cpu.eip)
            if k < end:
                hits.append((k, cpu.eip, "", min(cpu.block_end(), end)))

        def on_kernel(addr: int, size: int) -> None:
            if addr < address + length and addr + size > address:
                k, pc, how = m.write_origin()
                if k < end:
                    hits.append((k, pc, how, k + 1))

        handle = cpu.watch_memory(write=True, address=address, length=length, callback=on_cpu)
        cpu.retranslate()
        mem.on_poke = on_kernel
        try:
            with self._disarmed():
                while m.icount < end:
                    stop = self._run_slice(end, interrupted)
                    if stop is not None:
                        if stop.kind is StopKind.INTERRUPT:
                            return None
                        break
        finally:
            mem.on_poke = None
            cpu.unwatch(handle)
            cpu.retranslate()
        return hits

    def save(self, directory: str) -> str:
        """Write the history so far as a recording directory (live sessions).

        DIR is created, nothing else: its parent must exist (this runs for a
        debugger client).  Errors, file-system ones included, are TargetErrors."""
        try:
            return self._save(directory)
        except OSError as exc:
            raise TargetError(
                f"{directory}: cannot write a recording there: {exc.strerror or exc}", errno=5
            ) from None

    def _save(self, directory: str) -> str:
        from rrdbg.record.recording import new_recording, write_block_cache

        if not self.live:
            raise TargetError("this is a recording already; copy its directory instead", errno=22)
        m = self.machine
        args = (
            [a.decode("utf-8", "surrogateescape") for a in m.argv[1:]]
            if isinstance(m, LinuxMachine)
            else []
        )
        rec = new_recording(
            m.program_path,
            args,
            directory,
            pc=self.pc,
            exe_path=m.exe_path,
            program_image=m.program_image,
            parents=False,
            quantum=self.machine.linux.quantum if isinstance(self.machine, LinuxMachine) else None,
            cpus=self.machine.linux.cpus if isinstance(self.machine, LinuxMachine) else None,
            cpu_model=m.engine.model,
            force_hint="monitor save writes a new directory",
        )
        writer = rec.writer
        cursors = []
        h = self.history
        for i in range(len(h)):
            cursors.append(writer.position)
            writer.append(h.icounts[i], h.kinds[i], h.payloads[i])
        end_cursor = writer.position
        writer.flush()

        def cursor_of(icount: int) -> Cursor:
            j = bisect.bisect_right(h.icounts, icount)
            return cursors[j] if j < len(cursors) else end_cursor

        saved = self._save_checkpoints(rec.qcow, cursor_of, first="init")
        end = self._end_record()
        writer.close(end.icount, end.encode())
        write_block_cache(rec.directory / BLOCKS_NAME, rec.header.program_sha256, m)
        self.host.files.save_to(rec.directory)
        rec.qcow.close()
        if end.finished:
            state = "complete (the program ended)"
        else:
            state = f"stops at icount {end.icount}, where the program is (it runs on here)"
        return f"saved {len(h)} events and {saved} snapshots to {directory}: {state}\n"

    def _end_record(self) -> EndRecord:
        """The END record of the live history so far: how the program ended,
        or (still running) the state at the furthest point it reached, where
        a recording of it stops."""
        m = self.machine
        if self._final_end is not None:
            return self._final_end
        if m.exit is not None and self.host.at_frontier:
            code, signal = m.end_status()
            return EndRecord(code, signal, m.icount, m.digest())
        here = m.icount
        if here != self.frontier:
            self.seek(self.frontier)
        try:
            if m.exit is not None:
                # The program did end there (the user had stepped back from it).
                code, signal = m.end_status()
                return EndRecord(code, signal, m.icount, m.digest())
            return EndRecord(None, None, m.icount, m.digest(), finished=False)
        finally:
            if here != self.frontier:
                self.seek(here)

    def _save_checkpoints(
        self, image: Qcow2Image, cursor_of: Callable[[int], Cursor], *, first: str | None
    ) -> int:
        """Write the in-memory checkpoints (up to the frontier) as snapshots
        ``init-N`` (``first`` names the one at icount 0; None skips it) and
        come back to the current position; returns how many were written."""
        m = self.machine
        here = m.icount
        store = SnapshotStore(image)
        saved = 0
        try:
            for cp in list(self.checkpoints):
                if cp.icount > self.frontier or (cp.icount == 0 and first is None):
                    continue
                name = first if cp.icount == 0 and first is not None else f"init-{cp.icount}"
                if image.find(name) is not None:
                    continue
                self._restore(cp)
                store.save(m, name, cursor_of(cp.icount).to_bytes())
                saved += 1
        finally:
            self.seek(here)
        return saved

    # -- saving (live) --------------------------------------------------------------
    def close(self) -> None:
        """Finish a live recording's log (if saving) and keep its checkpoints as
        snapshots in its image; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._join_workers()
        for replica in self._replicas or []:
            if replica.image is not None:
                replica.image.close()
        writer = self.writer
        if writer is None or writer.closed:
            return
        if self.image is not None and self.image.writable:
            writer.flush()  # snapshot cursors name chunks on disk

            def cursor_of(icount: int) -> Cursor:
                cursor = self.history.cursor_for(icount)
                assert cursor is not None
                return cursor

            with contextlib.suppress(RrdbgError):  # the log matters more
                self._save_checkpoints(self.image, cursor_of, first=None)
        try:
            end = self._end_record()
        except RrdbgError:
            # Cannot get back to the end of history: keep what was logged
            # (rrdbg info then says the log is incomplete).
            writer.flush()
            writer.abort()
            return
        writer.close(end.icount, end.encode())


class _Arming:
    """Context manager: breakpoints as exits and watchpoints as memory hooks."""

    def __init__(self, timeline: Timeline, *, arm: bool) -> None:
        self.t = timeline
        self.arm = arm
        self.hooks: list[int] = []

    def __enter__(self) -> None:
        t = self.t
        cpu = t.machine.debuggee.cpu
        # Exits stay armed between runs: gdb removes and re-inserts the same
        # breakpoints around every resume, and an unchanged set costs nothing.
        cpu.set_exit_addresses(set(t.breakpoints) if self.arm else set())
        for _pid, other, points in t._held():
            other.set_exit_addresses(set(points) if self.arm else set())
        if not self.arm:
            return
        if t.watchpoints:
            for w in t.watchpoints:
                for write, kind in ((True, WatchKind.WRITE), (False, WatchKind.READ)):
                    if w.kind is kind or w.kind is WatchKind.ACCESS:
                        hook = t.watch_hook(kind)
                        self.hooks.append(
                            cpu.watch_memory(
                                write=write, address=w.address, length=w.length, callback=hook
                            )
                        )
            cpu.retranslate()

    def __exit__(self, *exc: object) -> None:
        t = self.t
        cpu = t.machine.debuggee.cpu
        if self.hooks:
            for h in self.hooks:
                cpu.unwatch(h)
            cpu.retranslate()


#: Named checkpoints a replay session keeps in memory at most.
MAX_NAMED = 32
#: Named checkpoints checkpoint --save adds to a recording's image at most.
MAX_SAVED = 64


_HELP = """\
rrdbg monitor commands (QEMU's replay commands keep QEMU's names and wording):
  help                        this list
  info replay                 the recording and the current instruction count
  info rrdbg                  this session: what it debugs, where it is, where history ends
  when                        the current instruction count
  seek N|NAME                 go to instruction count N, or to a checkpoint
  restart NAME|ID             go to a checkpoint (see info checkpoints)
  replay_seek N               go to instruction count N (then: maint flush register-cache)
  replay_break N              stop when execution reaches icount N (either direction)
  replay_delete_break         forget the replay_break
  checkpoint [--save] [NAME]  keep this point by name: in memory for this session
                              (--save: as a snapshot added to the recording's image)
  info checkpoints            snapshots in the image and checkpoints in memory
  last-write ADDR|SYMBOL [LEN]  icount and pc of the last write to that memory before now
                              (a symbol covers its whole size unless LEN is given)
  save DIR                    (live sessions) write the recording so far to DIR
  jobs [N]                    how many intervals reverse-continue replays at once
                              (default: one per CPU, or RRDBG_JOBS)
  exit                        end the server, as gdbserver's (a live program is killed)
"""


def _machine(
    program: str,
    argv: list[str] | list[bytes],
    host: TimelineHost,
    pc: PcOptions | None,
    *,
    kernel_name: str | None = None,
    exe_path: str | None = None,
    quantum: int | None = None,
    cpu_model: str = CPU_MODEL_NAME,
) -> DebuggableMachine:
    machine: DebuggableMachine
    if pc is None:
        machine = LinuxMachine(
            program, argv, host, exe_path=exe_path, quantum=quantum, cpu_model=cpu_model
        )
    else:
        machine = PcMachine(
            program,
            host,
            ram_mb=pc.ram_mb,
            cmdline=pc.cmdline,
            kernel_name=kernel_name,
            exe_path=exe_path,
            cpu_model=cpu_model,
        )
    host.set_icount(machine.event_icount)
    return machine


def _number(text: str, what: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise TargetError(f"bad {what} {text!r}", errno=22) from None
    if value < 0:
        raise TargetError(f"bad {what} {text!r}", errno=22)
    return value


def _last_state(end: EndRecord) -> int:
    """The icount of the last state worth showing of a finished run: just
    before an exit call, or at the fatal fault or signal (which does not
    retire an instruction)."""
    return end.icount - 1 if end.exit_code is not None else end.icount


def _end_note(end: EndRecord) -> str:
    if end.exit_code is not None:
        how = f"the next instruction exits with status {end.exit_code}"
    elif end.exit_signal is not None:
        how = f"{signal_name(end.exit_signal)} ends it here"
    else:
        how = "it halts here for good"
    return f"rrdbg: the end of the program: {how}; reverse commands go back, continuing lets it end"


def _with_note(stop: StopEvent, note: str) -> StopEvent:
    if not note:
        return stop
    both = f"{note}\n{stop.note}" if stop.note else note
    return dataclasses.replace(stop, note=both)
