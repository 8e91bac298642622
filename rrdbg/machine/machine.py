"""A Linux i386 machine: a tree of processes, each with its own CPU and
memory (a Unicorn engine), the loader, the syscall layer and the host.

Role: the object the rest of rrdbg drives.  ``run(limit)`` executes the
guest until it exits, faults, or reaches instruction count ``limit``; the
machine never calls anything above it (no server, no recorder): it returns
a ``Stop`` and the caller decides.  ``engine``, ``memory``, ``cpu`` and
``linux`` are the running process's; ``debuggee`` is the process a
debugger follows (docs/processes.md).

Determinism: given the same program, arguments and ``Host`` answers, two
machines retire the same instructions and reach the same ``digest()``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from unicorn import x86_const as x86

from rrdbg.errors import EmulatorError, GuestMemoryError, LoaderError
from rrdbg.machine import icount as ic
from rrdbg.machine.cpu import TLS_ENTRIES, TLS_FIRST_ENTRY, Cpu, Fault, Stop, StopReason
from rrdbg.machine.engine import CPU_MODEL_NAME, Engine, cpu_model_id
from rrdbg.machine.host import Host, Ids
from rrdbg.machine.linux import ExitStatus, Linux, LinuxState, ProcessExit, sched, sys_process
from rrdbg.machine.linux.kernel import BLOCKED, MMAP_TOP, USER_TOP
from rrdbg.machine.linux.process import System, Zombie
from rrdbg.machine.linux.signals import (
    DEFAULT_IGNORE,
    DEFAULT_STOP,
    SA_NODEFER,
    SA_ONSTACK,
    SA_RESETHAND,
    SA_RESTART,
    SI_KERNEL,
    SIG_DFL,
    SIG_IGN,
    SIGBUS,
    SIGFPE,
    SIGILL,
    SIGSEGV,
    SIGTRAP,
    SS_AUTODISARM,
    SigAction,
    bit,
    build_frame,
    siginfo,
)
from rrdbg.machine.linux.solib import libraries_svr4
from rrdbg.machine.linux.task import Task
from rrdbg.machine.loader import (
    Program,
    Symbols,
    build_stack,
    load_span,
    map_program,
    parse_program,
    read_program,
)
from rrdbg.machine.memory import GuestMemory, Region
from rrdbg.machine.registers import write_register

#: Where a dynamic loader is placed to measure it before it is placed for good.
_PROBE_BASE = 0x10000

#: AT_HWCAP is CPUID.1:EDX, the same for every model in engine.CPU_MODELS
#: (tests/machine/test_cpu.py checks it for the default one).
HWCAP = 0x078BFBFD

_SYSCALL_REGS = (
    x86.UC_X86_REG_EAX,
    x86.UC_X86_REG_EBX,
    x86.UC_X86_REG_ECX,
    x86.UC_X86_REG_EDX,
    x86.UC_X86_REG_ESI,
    x86.UC_X86_REG_EDI,
    x86.UC_X86_REG_EBP,
)

#: Registers that make up the user-visible CPU state (digest, debugger).
STATE_REGS = (
    ("eax", x86.UC_X86_REG_EAX),
    ("ecx", x86.UC_X86_REG_ECX),
    ("edx", x86.UC_X86_REG_EDX),
    ("ebx", x86.UC_X86_REG_EBX),
    ("esp", x86.UC_X86_REG_ESP),
    ("ebp", x86.UC_X86_REG_EBP),
    ("esi", x86.UC_X86_REG_ESI),
    ("edi", x86.UC_X86_REG_EDI),
    ("eip", x86.UC_X86_REG_EIP),
    ("eflags", x86.UC_X86_REG_EFLAGS),
    ("cs", x86.UC_X86_REG_CS),
    ("ss", x86.UC_X86_REG_SS),
    ("ds", x86.UC_X86_REG_DS),
    ("es", x86.UC_X86_REG_ES),
    ("fs", x86.UC_X86_REG_FS),
    ("gs", x86.UC_X86_REG_GS),
)


@dataclass(frozen=True, slots=True)
class Loaded:
    """The program a process runs (what a debugger needs of it)."""

    program: Program
    interp: Program | None
    auxv: bytes
    exe_path: str


@dataclass(slots=True)
class Process:
    """One process's machine side: its address space, the CPU that runs
    it (a Unicorn engine of its own, so a switch between processes costs
    no remapping), and its kernel side."""

    linux: Linux
    engine: Engine
    memory: GuestMemory
    cpu: Cpu
    regs: CpuRegisters
    read_syscall_regs: Callable[[], list[int]]
    #: Its program (None: a container a snapshot is restored into, until
    #: ``load_state`` says whose it is).
    loaded: Loaded | None = None
    #: The CPU as made (kernel mode, before any program): exec starts there.
    boot_context: bytes = b""


class TreeMemory:
    """Every process's address space seen as one, for checkpoints and
    snapshots: the first process's at 0 (so a one-process machine saves
    exactly what it always did), process ``pid``'s at ``pid << 32``.  A
    process keeps its place, and its container (engine, CPU) keeps its
    process, across restores: hooks a debugger set on a CPU stay valid.
    Restoring (``unmap_all`` then ``map``) makes containers for processes
    that do not exist now; ``take`` hands them to ``load_state``."""

    def __init__(self, machine: LinuxMachine) -> None:
        self._m = machine
        self._pending: dict[int, Process] | None = None

    def containers(self) -> dict[int, Process]:
        """pid -> container, as now (or as a restore has made them so far)."""
        return self._pending if self._pending is not None else self._m.procs

    def _base(self, pid: int) -> int:
        return 0 if pid == self._m._root_ids.pid else pid << 32

    def _pid(self, addr: int) -> int:
        high = addr >> 32
        return self._m._root_ids.pid if high == 0 else high

    def take(self, pids: list[int]) -> dict[int, Process]:
        """The containers of ``pids`` (restoring ends here)."""
        have = self.containers()
        self._pending = None
        taken = {pid: have.get(pid) or self._m._blank_process(pid) for pid in pids}
        for pid, proc in have.items():
            if pid not in taken:
                self._m._spare[pid] = proc  # it may come back (a fork again)
        return taken

    def _space(self, addr: int) -> GuestMemory:
        pid = self._pid(addr)
        have = self.containers()
        if pid not in have:
            if self._pending is None:
                self._pending = dict(have)
            have = self._pending
            have[pid] = self._m._blank_process(pid)
        return have[pid].memory

    def regions(self) -> Iterator[Region]:
        have = self.containers()
        for base, pid in sorted((self._base(pid), pid) for pid in have):
            for r in have[pid].memory.regions():
                yield Region(r.start + base, r.end + base, r.perms, r.name)

    def view(self, addr: int, size: int) -> memoryview:
        return self._space(addr).view(addr & _LOW32, size)

    def load_raw(self, addr: int, data: bytes | memoryview) -> None:
        self._space(addr).load_raw(addr & _LOW32, data)

    def map(self, start: int, size: int, perms: int, name: str = "") -> None:
        self._space(start).map(start & _LOW32, size, perms, name)

    def unmap_all(self) -> None:
        self._pending = dict(self.containers())
        for proc in self._pending.values():
            proc.memory.unmap_all()


_LOW32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run to completion ended."""

    icount: int
    exit: ExitStatus
    fault: Fault | None
    #: False for a replay of a recording that stops before the program ended
    #: (``exit`` is then empty: the program was still running).
    finished: bool = True


def _no_interp(program: str, interp: str, error: int) -> LoaderError:
    return LoaderError(
        f"{program}: its dynamic loader {interp} cannot be opened: {os.strerror(-error)} "
        "(Debian: apt-get install libc6-i386; or give --sysroot DIR)"
    )


def check_interpreter(program_path: str, host: Host) -> None:
    """Raise the loader's error now if ``program_path`` needs a dynamic
    loader ``host`` cannot open (before a recording directory is made)."""
    interp = read_program(program_path).interp
    if interp is not None and (error := host.access(os.fsencode(interp), os.R_OK)) < 0:
        raise _no_interp(program_path, interp, error)


class LinuxMachine:
    """One static i386 Linux program under emulation."""

    def __init__(
        self,
        program_path: str,
        argv: list[str] | list[bytes],
        host: Host,
        *,
        native: bool | None = None,
        warn: TextIO | None = None,
        exe_path: str | None = None,
        quantum: int | None = None,
        cpus: int | None = None,
        cpu_model: str = CPU_MODEL_NAME,
    ) -> None:
        """``exe_path`` is the path the guest knows its program by
        (``/proc/self/exe``), when ``program_path`` is a copy of it (a
        recording's kept file); default: ``program_path`` made absolute.
        ``quantum``: the scheduler's time slice in instructions (default
        DEFAULT_QUANTUM); ``cpus``: the CPUs the program is told it may use
        (default: the host's, for a live run; 1 otherwise); ``cpu_model``:
        a name in engine.CPU_MODELS (a recording's, when replaying)."""
        cpu_model_id(cpu_model)  # (unknown: an error before anything is made)
        #: The emulated CPU model of every process's CPU.
        self.cpu_model = cpu_model
        self.program = read_program(program_path)
        self.host = host
        self._native = native
        self._warn = warn
        self.exit: ExitStatus | None = None
        self.fault: Fault | None = None
        ids = host.ids()
        self._epoch_ns = host.realtime_epoch_ns()
        proc = self._new_process(
            ids, (exe_path or os.path.abspath(program_path)).encode(), system=None
        )
        #: Every process with an address space, by pid; the one running is
        #: ``_proc``, and ``engine``, ``memory``, ``cpu``, ``linux`` and
        #: ``regs`` are its (everything below works on the running process).
        self.procs: dict[int, Process] = {ids.pid: proc}
        self._proc = proc
        self.engine: Engine
        self.memory: GuestMemory
        self.cpu: Cpu
        self.linux: Linux
        self.regs: CpuRegisters
        self._read_syscall_regs: Callable[[], list[int]]
        self._use(proc)
        self._root_ids = ids
        self._root_exe = proc.linux.exe_path
        #: Containers of processes that do not exist at this point of the
        #: run (ended, or not made yet after going back): a process that
        #: comes back gets its own again.
        self._spare: dict[int, Process] = {}
        #: The process a debugger looks at (registers, memory, breakpoints,
        #: threads): the first one.
        self.followed = ids.pid
        self._tree = TreeMemory(self)
        if quantum is not None:
            self.linux.quantum = quantum
        self.linux.cpus = cpus if cpus is not None else host.cpu_count()
        #: Which signals stop a run before their delivery (a debugger's
        #: choice; None: none do).  The stop is a SIGNAL stop; the next run
        #: delivers the signal.
        self.stop_for_signal: Callable[[int], bool] | None = None
        #: (icount, signal) of the SIGNAL stop made last, not to stop twice.
        self._reported: tuple[int, int] | None = None
        #: A tid: ``run`` stops (SWITCH) as soon as that thread is switched
        #: in (a debugger stepping a thread whose slice just ended).
        self.run_until_thread: int | None = None
        #: Context switches made (a statistic for benchmarks; not state).
        self.switches = 0
        #: A process's end seen inside a syscall, carried out after it.
        self._ending: ExitStatus | None = None
        #: Stop (PROCESS) when the followed process forks, vforks or execs, or
        #: its vfork child execs or ends (a debugger's fork/exec events).
        self.process_events = False
        #: The last such event: ("fork" | "vfork" | "vforkdone", child pid,
        #: b"") or ("exec", pid, the new program's path).
        self.event: tuple[str, int, bytes] | None = None
        #: Processes whose end stops a run (an "exit" event): the ones a
        #: debugger holds besides the followed one.
        self.held: frozenset[int] = frozenset()
        #: The status of the last process that ended (for an "exit" event).
        self.ended: ExitStatus | None = None
        #: The process an event stops (the forking or exec'ing one, a
        #: vfork child's parent, the one that ended).
        self.event_process = 0
        #: An event met at the same instruction as ``event`` (a held vfork
        #: child's end and its parent's vforkdone), reported at the next run.
        self.later_event: tuple[tuple[str, int, bytes], int] | None = None
        args = [a.encode() if isinstance(a, str) else a for a in argv]
        #: The file the program was loaded from, and the path the guest knows
        #: it by (the same, unless replaying a recording's kept copy).
        self.program_path = program_path
        self.exe_path = exe_path or os.path.abspath(program_path)
        self.argv: list[bytes] = args
        #: The dynamic loader of a dynamically linked program, where it was put.
        self.interp: Program | None
        self.interp, self._auxv = self._load(self.program, args)
        proc.loaded = Loaded(self.program, self.interp, self._auxv, self.exe_path)
        #: Programs by the path the guest knows them by (a snapshot restores
        #: processes into containers that must learn which program they run).
        self._loaded_by_exe = {proc.linux.exe_path: proc.loaded}
        self.linux.state.task.tid = ids.pid

    # -- processes: address spaces and CPUs ------------------------------
    def _new_process(self, ids: Ids, exe_path: bytes, system: System | None) -> Process:
        """An empty address space with its own CPU and kernel side."""
        engine = Engine(self.cpu_model)
        memory = GuestMemory(engine)
        cpu = Cpu(memory, engine, native=self._native)
        regs = CpuRegisters(engine)
        cpu.on_syscall = self._syscall
        # Virtual TSC: one tick per retired instruction (no host time leaks).
        cpu.on_rdtsc = lambda n: n * TSC_PER_INSN
        proc = Process(
            None,  # type: ignore[arg-type]
            engine,
            memory,
            cpu,
            regs,
            engine.batch_reader(_SYSCALL_REGS),
            boot_context=engine.context_bytes(),
        )
        proc.linux = self._new_linux(proc, ids, exe_path, system)
        return proc

    def _new_linux(self, proc: Process, ids: Ids, exe_path: bytes, system: System | None) -> Linux:
        """A process's kernel side, on ``proc``'s memory and CPU."""
        linux = Linux(
            proc.memory,
            self.host,
            exe_path=exe_path,
            set_tls=proc.cpu.set_gdt_entry,
            clear_tls=proc.cpu.clear_gdt_entry,
            icount=lambda: self.cpu.counter.total,
            ids=ids,
            epoch_ns=self._epoch_ns,
            warn=self._warn,
            system=system,
        )
        linux.cpu = proc.regs
        return linux

    def _use(self, proc: Process) -> None:
        """Make ``proc`` the running process (its CPU counts on from the
        machine's icount)."""
        if proc is not self._proc:
            icount = self.icount
            if self._proc.linux.sys.procs.get(self._proc.linux.pid) is self._proc.linux:
                self._proc.linux.state.task.ran_until = icount
            proc.cpu.count_from(icount)
            self.switches += 1
        self._bind(proc)

    def _load(
        self,
        program: Program,
        args: list[bytes],
        env: list[bytes] | None = None,
        execfn: bytes | None = None,
    ) -> tuple[Program | None, bytes]:
        """Map ``program`` (and its dynamic loader) into the running
        process's empty address space, lay out its stack and start its CPU
        at the entry point, as Linux's exec does; (loader, auxv)."""
        # Its regions are named by the path the guest knows the program by
        # (not a recording's copy of the file: /proc/PID/maps shows them).
        map_program(program, self.memory, os.fsdecode(self.linux.exe_path))
        # A new process's FPU is in its FNINIT state (every x87 register
        # empty), not the CPU's reset state (tag word 0x5555).
        self.regs.fpu_reset()
        self.linux.set_brk_start(program.brk_start)
        interp = None if program.interp is None else self._load_interp(program, program.interp)
        interp_base = 0 if interp is None else load_span(interp)[0]
        esp = build_stack(
            program, self.memory, self.host, args, HWCAP, interp_base, env=env, execfn=execfn
        )
        auxv = _auxv_at(self.memory, esp)
        # Where the argument strings are (/proc/PID/cmdline reads them there).
        (argc,) = struct.unpack("<I", self.memory.read_raw(esp, 4))
        st = self.linux.state
        st.arg_start = st.arg_end = 0
        if argc:
            first, last = struct.unpack(
                "<II", self.memory.read_raw(esp + 4, 4) + self.memory.read_raw(esp + 4 * argc, 4)
            )
            st.arg_start = first
            st.arg_end = last + len(self.memory.read_cstring(last, 1 << 17)) + 1
        entry = program.entry if interp is None else interp.entry
        self.cpu.enter_user_mode(entry, esp)
        # The i386 ELF ABI: EDX = 0 (no rtld_fini); other registers are zero too.
        for _, reg in STATE_REGS[:8]:
            if reg not in (x86.UC_X86_REG_ESP, x86.UC_X86_REG_EIP):
                self.engine.reg_write(reg, 0)
        return interp, auxv

    def _load_interp(self, program: Program, path: str) -> Program:
        """Map the dynamic loader below the mmap area's top, as Linux maps
        an ET_DYN interpreter; its bytes come through the host (recorded,
        and kept by a recording like every mapped file)."""
        host = self.host
        fail = f"{program.path}: its dynamic loader {path}"
        handle = host.open(os.fsencode(path), 0, 0)
        if handle < 0:
            raise _no_interp(program.path, path, handle)
        try:
            st = host.fstat(handle)
            image = host.map_file(handle, 0, st.size) if not isinstance(st, int) else st
        finally:
            host.close(handle)
        if isinstance(image, int):
            raise LoaderError(f"{fail} cannot be read: {os.strerror(-image)}")
        probe = parse_program(path, image, load_base=_PROBE_BASE)
        if not probe.is_pie or probe.interp is not None:
            raise LoaderError(f"{fail} is not a shared object")
        lo, hi = load_span(probe)
        base = self.memory.find_free(hi - lo, MMAP_TOP, bottom=program.brk_start)
        if base is None:
            raise LoaderError(f"{fail} does not fit in the address space")
        interp = parse_program(path, image, load_base=base - (lo - _PROBE_BASE))
        map_program(interp, self.memory)
        return interp

    # -- the syscall gate (runs inside Unicorn's interrupt hook) ----------
    def _syscall(self) -> bool:
        regs = self._read_syscall_regs()
        try:
            result = self.linux.dispatch(regs[0], regs[1:])
        except ProcessExit as done:
            self._ending = done.status
            return True
        if result == BLOCKED:
            return True  # the scheduler runs another task; EAX comes on waking
        self.engine.reg_write(x86.UC_X86_REG_EAX, result & 0xFFFFFFFF)
        # A signal may have become deliverable, or a sigreturn changed the
        # registers: stop here and let run() see to it.
        return self.linux.need_signal_check

    # -- running -------------------------------------------------------
    @property
    def icount(self) -> int:
        return self.cpu.icount

    @property
    def finished(self) -> bool:
        return self.exit is not None

    def run(self, limit: int = ic.NO_LIMIT, *, exact: bool = True) -> Stop:
        """Run until exit, fault, exit address or ``limit`` instructions (see Cpu.run).

        Signals are taken here, between runs of the CPU: timers fire at the
        icount their deadline falls on, a pending signal is delivered before
        the next instruction (which counts one instruction: the state before
        delivery and the handler's entry are distinct icounts), and a fault
        with a handler becomes a signal delivered at the faulting instruction.
        A signal is never delivered at ``limit``: the state there is the one
        before delivery."""
        if self.exit is not None:
            raise EmulatorError("the program has already exited")
        if self.later_event is not None and self.event is None:
            (self.event, self.event_process), self.later_event = self.later_event, None
            if self.process_events:
                return Stop(StopReason.PROCESS, self.icount)
            self.event = None
        while True:
            k = self.linux
            sched.expire_timers(k)
            ended = self._schedule()
            if ended is not None:
                return ended
            k = self.linux
            if self.icount < limit and k.deliverable():
                ended = self._deliver_signals(limit)
                if ended is not None:
                    return ended
                if k.sys.procs.get(k.pid) is not k or self._slice_over():
                    # The delivery ended the process, or took the slice's
                    # last instruction.
                    continue
            run_to = limit
            due = sched.next_timer_icount(k)
            if due is not None and self.icount < due < limit:
                run_to = due
            if k.multitask:
                # The slice's end, and a blocked thread's deadline (woken
                # then, running at its turn).
                for at in (k.state.slice_end, k.next_wait_icount()):
                    if at is not None and self.icount < at < run_to:
                        run_to = at
            stop = self.cpu.run(run_to, exact=exact or run_to != limit)
            sched.expire_timers(k)
            if self._ending is not None:
                status, self._ending = self._ending, None
                if self._end_process(status):
                    return stop
                if self.event is not None and (self.process_events or self.event[0] == "exit"):
                    ended = self._schedule()
                    return ended or Stop(StopReason.PROCESS, self.icount)
                self.event = None
                continue
            self._after_syscall()
            if self.event is not None and self.process_events and stop.reason is StopReason.SYSCALL:
                ended = self._schedule()
                return ended or Stop(StopReason.PROCESS, self.icount)
            self.event = None
            if stop.reason is StopReason.FAULT:
                assert stop.fault is not None
                if self._fault_to_handler(stop.fault):
                    continue
                if self._end_process(ExitStatus(signal=stop.fault.signal), stop.fault):
                    return stop
                if self.event is not None and self.event[0] == "exit":
                    ended = self._schedule()
                    return ended or Stop(StopReason.PROCESS, self.icount)
                continue
            if stop.reason is StopReason.SYSCALL:
                continue
            if stop.reason is StopReason.LIMIT and run_to != limit:
                sched.expire_waits(k)
                continue  # a deadline (timer, wait) or the end of a time slice
            if stop.reason is StopReason.EXIT and self._slice_over():
                # The running thread reached a stop address just as its
                # slice ended: it does not run that instruction now.
                continue
            # At a stop, the running task is the one that executes the next
            # instruction: the state at an icount is the same however it
            # was reached.
            ended = self._schedule()
            if ended is not None:
                return ended
            return stop

    def _end_process(self, status: ExitStatus, fault: Fault | None = None) -> bool:
        """The running process has ended (exit_group, a fatal signal or
        fault, its last thread's exit).  Alone, the machine ends with it
        (True); else its kernel side is torn down (the parent is told), its
        address space dropped, and the scheduler picks another task at the
        next turn.  The machine's status is the first process's."""
        k = self.linux
        sys = k.sys
        if len(sys.procs) == 1:
            if k.pid == sys.root or (sys.root_code is None and sys.root_signal is None):
                self.exit = status
                self.fault = fault
            else:
                self.exit = ExitStatus(code=sys.root_code, signal=sys.root_signal)
            return True
        if k.pid == sys.root:
            self.fault = fault
        self._give_memory_back(self._proc)
        self._note_vfork_done(k)
        if k.pid in self.held:
            if self.event is not None:
                # (Its vfork parent's vforkdone came first: reported first.)
                self.later_event = (self.event, self.event_process)
            self.event = ("exit", k.pid, b"")
            self.event_process = k.pid
            self.ended = status
        sys_process.process_ended(k, status.code, status.signal)
        del self.procs[k.pid]
        self._spare[k.pid] = self._proc
        return False

    # -- threads (the scheduler's policy is linux/sched.py) ---------------
    def _slice_over(self) -> bool:
        k = self.linux
        return k.multitask and self.icount >= k.state.slice_end

    def _schedule(self) -> Stop | None:
        """Switch tasks where the scheduler says so: the running task
        blocked or exited, or its slice is over.  A Stop if the process
        ended (every thread waits forever)."""
        k = self.linux
        st = k.state
        alive = k.sys.procs.get(k.pid) is k
        if alive and not k.multitask and st.task.wait is None and st.task.result is None:
            return None  # one thread: nothing to decide
        sched.expire_waits(k)
        current = st.task
        if alive and current.wait is None and k.multitask and self.icount < st.slice_end:
            # Still its turn; a wait it just began may have ended already
            # (a signal, a deadline): its result is due now.
            self._give_result(current)
            return None
        try:
            # A console read that was waiting may have its data now (a
            # recorded answer: replays decide the same).
            sched.poll_host_waits(k, 0)
            chosen = sched.pick_next(k)
            if chosen is None:
                sched.idle(k)
                chosen = sched.pick_next(k)
        except ProcessExit as done:
            # Every task waits for something that can never happen.
            sys = k.sys
            if sys.root in sys.procs:
                self.exit = done.status
            else:  # the first process has ended: its status stands
                self.exit = ExitStatus(code=sys.root_code, signal=sys.root_signal)
            return Stop(StopReason.END, self.icount)
        assert chosen is not None
        task, owner = chosen
        if owner is not k:
            self._use(self.procs[owner.pid])
        if task is not owner.state.task:
            self._switch_to(task)
        owner.state.slice_end = self.icount + owner.quantum if owner.multitask else 0
        self._give_result(task)
        if task is not current and task.tid == self.run_until_thread:
            return Stop(StopReason.SWITCH, self.icount)
        return None

    def _give_result(self, task: Task) -> None:
        """The running task's blocking call ends: its result into EAX, or
        (BLOCKED) back to its int $0x80 to make it again, EAX still the
        number."""
        if task.result == BLOCKED:
            self.cpu.eip = self.cpu.eip - 2
        elif task.result is not None:
            self.engine.reg_write(x86.UC_X86_REG_EAX, task.result & 0xFFFFFFFF)
        task.result = None

    def _switch_to(self, task: Task) -> None:
        """Make ``task`` the running one: save the CPU context of the one
        running (an exited one is dropped), load ``task``'s, and put its
        TLS descriptors in the GDT (the context already holds the segment
        bases it loaded)."""
        st = self.linux.state
        current = st.task
        if not current.exited:
            current.context = self.engine.context_bytes()
            current.ran_until = self.icount
            st.others[current.tid] = current
        del st.others[task.tid]
        self.switches += 1
        st.task = task
        self.engine.restore_context_bytes(task.context)
        task.context = b""
        self._load_tls(task)

    def _load_tls(self, task: Task) -> None:
        _load_tls(self.cpu, task)

    # -- threads and processes as a debugger sees them --------------------------
    @property
    def debuggee(self) -> Process:
        """The process a debugger looks at (``followed``): its registers,
        memory and breakpoints.  At a point of the run where it does not
        exist (not made yet, or ended), its container all the same (hooks
        and breakpoints set on its CPU apply when it comes back); the
        running one if it never existed."""
        return self.procs.get(self.followed) or self._spare.get(self.followed) or self._proc

    @property
    def pid(self) -> int:
        return self.debuggee.linux.pid

    @property
    def history_floor(self) -> int:
        """Where the followed process's history begins for a debugger: the
        icount it was made at (0 for the first process)."""
        return self.debuggee.linux.state.born

    @property
    def exec_barrier(self) -> int:
        """The icount at which the followed process last exec'd since it was
        made (0: it has not): before, it ran another program, which a
        debugger must load again to go on backwards."""
        st = self.debuggee.linux.state
        return st.exec_at if st.exec_at > st.born else 0

    @property
    def running_tid(self) -> int:
        """The thread that executes the next instruction (in any process)."""
        return self.linux.state.task.tid

    @property
    def current_tid(self) -> int:
        """The debugged process's current thread: the one that executes the
        next instruction, or (another process running) the one that will
        when the process runs again."""
        return self.debuggee.linux.state.task.tid

    @property
    def multitask(self) -> bool:
        """More than one task (thread or process) may run."""
        return self.linux.multitask

    def threads(self, pid: int | None = None) -> list[tuple[int, str]]:
        """(tid, name) of every thread alive of the debugged process (or of
        process ``pid``), in tid order; the name is the one
        prctl(PR_SET_NAME) gave, else the program's."""
        proc = self.debuggee if pid is None else self.procs.get(pid)
        if proc is None:
            return []
        k = proc.linux
        base = os.path.basename(os.fsdecode(k.exe_path))[:15]
        return [
            (t.tid, (t.comm.decode("utf-8", "replace") if t.comm else base))
            for t in k.state.tasks()
            if not t.exited
        ]

    def thread_ran_until(self, tid: int) -> int | None:
        """For a thread of the debugged process that does not execute the
        next instruction: the icount it was last switched out at (0: it
        never ran); None for the running one or no thread."""
        if tid == self.running_tid:
            return None
        task = self.debuggee.linux.state.find(tid)
        return None if task is None else task.ran_until

    @contextlib.contextmanager
    def viewing(self, tid: int) -> Iterator[None]:
        """Inside, the debugged process's CPU registers are thread ``tid``'s
        (read them only)."""
        d = self.debuggee
        task = d.linux.state.others.get(tid)
        if task is None:
            yield
            return
        mine = d.engine.context_bytes()
        d.engine.restore_context_bytes(task.context)
        try:
            yield
        finally:
            d.engine.restore_context_bytes(mine)

    def container(self, pid: int) -> Process | None:
        """Process ``pid``'s container (engine, memory, CPU), alive or kept."""
        return self.procs.get(pid) or self._spare.get(pid)

    def process_for_debugger(self, pid: int) -> Process:
        """The process a debugger's change is for: ``pid``, or the followed
        one for 0 (changes recorded before processes were named)."""
        if not pid:
            return self.debuggee
        proc = self.procs.get(pid)
        if proc is None:
            raise EmulatorError(f"a debugger's change for process {pid}, which does not exist")
        return proc

    def write_thread_register(self, pid: int, tid: int, name: str, value: bytes) -> None:
        """A debugger writes register ``name`` of thread ``tid`` of process
        ``pid`` (0: the followed process, its current thread): the CPU's if
        the thread is the process's current one, else its saved context."""
        proc = self.process_for_debugger(pid)
        task = proc.linux.state.others.get(tid) if tid else None
        if task is None:
            write_register(proc.engine, name, value)
            return
        mine = proc.engine.context_bytes()
        proc.engine.restore_context_bytes(task.context)
        try:
            write_register(proc.engine, name, value)
            task.context = proc.engine.context_bytes()
        finally:
            proc.engine.restore_context_bytes(mine)

    def _start_threads(self) -> None:
        """Give the threads clone just made their registers: the parent's
        after the call, with EAX = 0, the new stack, and GS reloaded from
        the thread's own TLS descriptors."""
        k = self.linux
        made, k.new_threads = k.new_threads, []
        if not made:
            return
        parent = self.engine.context_bytes()
        gs = self.engine.reg_read(x86.UC_X86_REG_GS)
        for child, stack in made:
            self.engine.reg_write(x86.UC_X86_REG_EAX, 0)
            if stack:
                self.engine.reg_write(x86.UC_X86_REG_ESP, stack)
            self._load_tls(child)
            self.engine.reg_write(x86.UC_X86_REG_GS, gs)
            child.context = self.engine.context_bytes()
            self.engine.restore_context_bytes(parent)
        self._load_tls(k.state.task)
        # A new thread is not preempting anyone: the parent's slice goes on.
        if not k.state.slice_end:
            k.state.slice_end = self.icount + k.quantum

    def _start_processes(self) -> None:
        """Give the children fork just made an address space (a copy of the
        parent's: every region and its contents, the GDT's TLS entries
        aside) and the parent's registers after the call, with EAX = 0."""
        k = self.linux
        made, k.new_processes = k.new_processes, []
        parent = self._proc
        context = self.engine.context_bytes()
        for new in made:
            child = self._spare.pop(new.ids.pid, None)
            if child is None:
                child = self._new_process(new.ids, k.exe_path, k.sys)
            else:
                _fresh_address_space(child)
                child.linux = self._new_linux(child, new.ids, k.exe_path, k.sys)
            child.linux.state = new.state
            parent.memory.fork_into(child.memory, USER_TOP)  # the GDT: each CPU has its own
            child.engine.restore_context_bytes(context)
            child.engine.reg_write(x86.UC_X86_REG_EAX, 0)
            if new.stack:
                child.engine.reg_write(x86.UC_X86_REG_ESP, new.stack)
            child.cpu.adopt(self.icount)
            _load_tls(child.cpu, new.state.task)
            if new.child_tid:
                with contextlib.suppress(GuestMemoryError):
                    child.memory.write(new.child_tid, struct.pack("<I", new.ids.pid))
            child.loaded = parent.loaded
            self.procs[new.ids.pid] = child
            if k.pid == self.followed or k.pid in self.held:
                kind = "vfork" if new.state.vfork_parent else "fork"
                self.event = (kind, new.ids.pid, b"")
                self.event_process = k.pid
        # The parent's slice goes on (a new process preempts nobody).
        if not k.state.slice_end:
            k.state.slice_end = self.icount + k.quantum

    def _note_vfork_done(self, k: Linux) -> None:
        parent = k.state.vfork_parent
        if parent and (parent == self.followed or parent in self.held):
            self.event = ("vforkdone", k.pid, b"")
            self.event_process = parent  # a stop in the parent

    def _give_memory_back(self, proc: Process) -> None:
        """A CLONE_VM child (vfork, posix_spawn) execs or ends: what it
        wrote into the memory it shares with its parent goes there (the
        parent was suspended meanwhile, so this is what sharing gives)."""
        k = proc.linux
        owner = self.procs.get(k.state.vm_parent)
        k.state.vm_parent = 0
        if owner is None:
            return
        src, dst = proc.memory, owner.memory
        for r in src.regions():
            if r.start >= USER_TOP:
                continue
            for d in dst.overlapping(r.start, r.end):
                lo, hi = max(r.start, d.start), min(r.end, d.end)
                for at in range(lo, hi, _DIGEST_BLOCK):
                    size = min(_DIGEST_BLOCK, hi - at)
                    mine = src.read_raw(at, size)
                    if mine != dst.read_raw(at, size):
                        dst.poke(at, mine)

    def _exec(self) -> None:
        """Carry out an execve that passed its checks: the process's
        container gets a fresh address space with the program loaded (the
        same engine and CPU: a debugger's hooks on it stay), its other
        threads end, and the kernel side does the rest (sys_process)."""
        k = self.linux
        request, k.exec_request = k.exec_request, None
        assert request is not None
        icount = self.icount
        name = os.fsdecode(request.path)
        program = parse_program(name, request.image)
        proc = self._proc
        self._give_memory_back(proc)
        self._note_vfork_done(k)
        if k.pid == self.followed or k.pid in self.held:
            self.event = ("exec", k.pid, request.path)
            self.event_process = k.pid
        k.exe_path = request.path
        sys_process.exec_kernel_side(k, os.path.basename(request.path)[:15])
        k.state.exec_at = icount
        _fresh_address_space(proc)
        # The loader's host calls (the dynamic loader, AT_RANDOM) happen at
        # this icount; starting the CPU counts from 0 again: set it back.
        proc.cpu.adopt(icount)
        interp, auxv = self._load(program, request.argv, request.envp, request.filename)
        proc.cpu.adopt(icount)
        proc.loaded = self._loaded_by_exe[request.path] = Loaded(program, interp, auxv, name)

    def _blank_process(self, pid: int) -> Process:
        """A container for process ``pid`` (a snapshot restores it into it):
        the one it had before if any (hooks on its CPU stay valid), else a
        new, empty one."""
        spare = self._spare.pop(pid, None)
        if spare is not None:
            return spare
        return self._new_process(self._root_ids, b"", self.linux.sys)

    def _bind(self, proc: Process) -> None:
        """The machine's attributes name ``proc``'s engine, memory, CPU and
        kernel side (the count is the caller's business)."""
        self._proc = proc
        self.engine = proc.engine
        self.memory = proc.memory
        self.cpu = proc.cpu
        self.linux = proc.linux
        self.regs = proc.regs
        self._read_syscall_regs = proc.read_syscall_regs

    def _after_syscall(self) -> None:
        k = self.linux
        k.need_signal_check = False
        self._start_threads()
        if k.new_processes:
            self._start_processes()
        if k.exec_request is not None:
            self._exec()
        restored, k.sigreturn = k.sigreturn, None
        if restored is not None:
            self.regs.set_regs(restored.regs)
            if restored.fxsave is not None:
                self.regs.fpu_restore(restored.fxsave)
            else:
                self.regs.fpu_reset()

    def settle_restart(self) -> None:
        """A syscall a signal cut short, with no signal left to deliver (gdb
        discarded it): made again now, as Linux does when no handler runs,
        so the state at this icount is the same however it is reached."""
        st = self.linux.state.task.signals
        if st.restart and not self.linux.deliverable():
            self._restart_syscall(st.restart)
            st.restart = 0

    def _restart_syscall(self, nr: int) -> None:
        """Back to the ``int $0x80`` just made, with its number in EAX again
        (Linux's restart: ip -= 2, ax = orig_ax); other entries fail with
        EINTR instead."""
        eip = self.cpu.eip
        try:
            made_by = self.memory.read(eip - 2, 2, 0)
        except GuestMemoryError:
            return
        if made_by == b"\xcd\x80":
            self.cpu.eip = eip - 2
            self.engine.reg_write(x86.UC_X86_REG_EAX, nr)

    def note_signal_stop(self, icount: int, signal: int) -> None:
        """A debugger has shown the delivery of ``signal`` at ``icount`` as a
        stop (going back to it): the next run delivers it."""
        self._reported = (icount, signal)

    def _deliver_signals(self, limit: int) -> Stop | None:
        """Deliver what is pending and unblocked, one frame per signal (the
        last delivered runs first, as on Linux); a Stop if the process died."""
        k = self.linux
        st = k.state.task.signals
        while self.icount < limit:
            taken = st.take(k.state.task.sigmask)
            if taken is None:
                # Nothing (left) runs a handler: a syscall cut short is made
                # again rather than left to a later, unrelated delivery.
                self.settle_restart()
                return None
            sig, queued = taken
            action = k.action(sig)
            # A fault's entry carries the trap details for the sigcontext.
            info, trap = queued[:128], struct.unpack("<3I", queued[128:140] or bytes(12))
            if action.handler == SIG_IGN or (
                action.handler == SIG_DFL and (sig in DEFAULT_IGNORE or sig in DEFAULT_STOP)
            ):
                continue
            report = self.stop_for_signal
            if report is not None and self._reported != (self.icount, sig) and report(sig):
                # Stop before delivery, as gdbserver does; it stays pending.
                st.queue.insert(0, (sig, queued))
                self._reported = (self.icount, sig)
                return Stop(StopReason.SIGNAL, self.icount, signal=sig)
            if action.handler == SIG_DFL:
                return self._died(sig)
            if st.restart:
                # The syscall this signal cut short: made again when the
                # handler returns (SA_RESTART), else it fails with EINTR
                # (already in EAX); the frame saves which.
                if action.flags & SA_RESTART:
                    self._restart_syscall(st.restart)
                st.restart = 0
            saved = st.saved_mask if st.saved_mask is not None else k.state.task.sigmask
            st.saved_mask = None
            esp = self.regs.get_regs()["esp"]
            try:
                entry = build_frame(
                    self.memory,
                    self.regs,
                    sig,
                    info,
                    action,
                    saved,
                    st,
                    trapno=trap[0],
                    err=trap[1],
                    cr2=trap[2],
                )
            except GuestMemoryError:
                # No room for the frame (a stack overflow into its guard):
                # Linux's force_sigsegv.
                return self._died(SIGSEGV)
            self.regs.set_regs(entry.regs)
            self.regs.fpu_reset()
            mask = k.state.task.sigmask | action.mask
            if not action.flags & SA_NODEFER:
                mask |= bit(sig)
            k.set_mask(mask)
            if action.flags & SA_RESETHAND:
                k.set_action(sig, SigAction())
            sp, flags, _size = st.altstack
            if action.flags & SA_ONSTACK and flags & SS_AUTODISARM and not st.on_altstack(esp):
                st.altstack = (0, 2, 0)
            del sp
            # Delivery is the kernel entering the handler: one instruction.
            self.cpu.set_icount(self.icount + 1)
        return None

    def _died(self, sig: int) -> Stop | None:
        """The running process is killed by ``sig``: END if that ends the
        machine, else None (another process runs next)."""
        if self._end_process(ExitStatus(signal=sig)):
            return Stop(StopReason.END, self.icount)
        if self.event is not None and self.event[0] == "exit":
            return self._schedule() or Stop(StopReason.PROCESS, self.icount)
        return None

    def _fault_to_handler(self, fault: Fault) -> bool:
        """A fault the program handles: queue its signal (with siginfo and
        the trap details for the frame) to be delivered at once.  A fault
        whose signal is blocked or not handled kills the process, as
        Linux's force_sig does."""
        k = self.linux
        sig = fault.signal
        action = k.action(sig)
        if action.handler in (SIG_DFL, SIG_IGN) or k.state.task.sigmask & bit(sig):
            return False
        trapno, err, cr2, code, addr = _fault_details(fault, self.memory)
        trap = struct.pack("<3I", trapno, err, cr2)
        k.state.task.signals.queue.insert(0, (sig, siginfo(sig, code, addr) + trap))
        self.cpu.forget_exception()
        return True

    def run_to_end(self) -> RunResult:
        """Run until the process ends.

        Runs in slices of ``RUN_SLICE`` instructions: Python only handles
        signals (Ctrl-C) between calls into the emulator, and a guest in a
        tight loop would otherwise never give it the chance.
        """
        while self.exit is None:
            self.run(self.icount + RUN_SLICE, exact=False)
        return RunResult(self.icount, self.exit, self.fault)

    # -- machine state (checkpoints, snapshots) ------------------------------
    @property
    def state_memory(self) -> TreeMemory:
        """Every process's address space, as snapshots save it."""
        return self._tree

    @property
    def root_pid(self) -> int:
        """The first process's pid (the one a debugger follows at first)."""
        return self._root_ids.pid

    def save_state(self) -> dict[str, Any]:
        """The kernel side as JSON: the running process's state under the
        keys a one-process machine has always used; with other processes
        (or any that ended), a "tree" key with theirs, in the slot order of
        ``state_memory``, their CPU contexts and the process table."""
        k = self.linux
        sys = k.sys
        for each in sys.procs.values():
            each.state.sleep_ns = sys.sleep_ns
            each.state.next_tid = sys.next_pid
        data = k.state.to_json()
        if len(sys.procs) == 1 and k.pid == sys.root and not sys.zombies:
            return data
        procs = []
        for _pid, proc in sorted(self._tree.containers().items()):
            p = proc.linux
            entry: dict[str, Any] = {"pid": p.pid, "ppid": p.ids.ppid, "exe": p.exe_path.hex()}
            if p is not k:
                entry["state"] = p.state.to_json()
                entry["context"] = zlib.compress(proc.engine.context_bytes()).hex()
                entry["ran_until"] = p.state.task.ran_until
            procs.append(entry)
        data["tree"] = {
            "running": k.pid,
            "root": sys.root,
            "root_status": [sys.root_code, sys.root_signal],
            "zombies": [z.to_json() for _, z in sorted(sys.zombies.items())],
            "procs": procs,
        }
        return data

    def virtual_ns(self) -> int:
        return self.linux.virtual_ns()

    def load_state(
        self, icount: int, cpu_context: bytes, state: dict[str, Any], *, keep_code: bool
    ) -> None:
        """Adopt a saved count, the running process's CPU context and the
        kernel side (``save_state``'s JSON); the caller has already restored
        ``state_memory`` (the address spaces, slot by slot).  Cached
        translations are dropped unless no executable byte changed
        (``keep_code``)."""
        self.event = self.later_event = None  # (events belong to the run that met them)
        tree = state.get("tree")
        sys = self.linux.sys
        root_ids = self._root_ids
        entries: list[dict[str, Any]] = (
            list(tree["procs"])
            if tree is not None
            else [{"pid": root_ids.pid, "ppid": root_ids.ppid, "exe": self._root_exe.hex()}]
        )
        running_pid = int(tree["running"]) if tree is not None else root_ids.pid
        containers = self._tree.take([int(e["pid"]) for e in entries])
        running_state = LinuxState.from_json(state)
        sys.procs.clear()
        sys.zombies.clear()
        sys.files = running_state.fdt.files
        sys.sleep_ns = running_state.sleep_ns
        sys.next_pid = running_state.next_tid
        self.procs = {}
        running: Process | None = None
        for entry in entries:
            pid = int(entry["pid"])
            proc = containers[pid]
            k = proc.linux
            if pid == running_pid:
                st = running_state
                running = proc
            else:
                st = LinuxState.from_json(entry["state"])
                proc.engine.restore_context_bytes(zlib.decompress(bytes.fromhex(entry["context"])))
                st.task.ran_until = int(entry.get("ran_until", 0))
            if not st.task.tid:  # a snapshot from before threads
                st.task.tid = pid
            st.fdt.files = sys.files
            k.state = st
            k.sys = sys
            k.ids = dataclasses.replace(root_ids, pid=pid, ppid=int(entry["ppid"]))
            k.exe_path = bytes.fromhex(entry["exe"])
            proc.loaded = self._loaded_by_exe.get(k.exe_path, proc.loaded)
            k.new_threads = []
            k.new_processes = []
            k.exec_request = None
            k.sigreturn = None
            k.need_signal_check = False
            if not keep_code:
                proc.cpu.flush_code()
            sys.procs[pid] = k
            self.procs[pid] = proc
        if running is None:
            raise ValueError(f"the running process {running_pid} is not in the state")
        if tree is not None:
            sys.root = int(tree["root"])
            sys.root_code, sys.root_signal = (
                None if v is None else int(v) for v in tree["root_status"]
            )
            for z in tree["zombies"]:
                zombie = Zombie.from_json(z)
                sys.zombies[zombie.pid] = zombie
        else:
            sys.root = root_ids.pid
            sys.root_code = sys.root_signal = None
        self._proc = running
        self._bind(running)
        self.engine.restore_context_bytes(cpu_context)
        self.cpu.count_from(icount)
        self._ending = None
        self.exit = None
        self.fault = None
        self._reported = None

    # -- what a timeline asks (DebuggableMachine) -------------------------
    def event_icount(self) -> int:
        # Host calls happen inside system calls, which end their block.
        return self.cpu.counter.total

    def waits_on_host(self) -> bool:
        try:
            code = self.memory.read(self.cpu.eip, 2, perms=0)
        except GuestMemoryError:
            return False  # it faults at once
        return code in _SYSCALL_INSNS

    def write_origin(self) -> tuple[int, int, str]:
        # Inside a system call: the int 0x80 that asked for it.
        return self.cpu.counter.total - 1, self.cpu.eip - 2, "system call"

    def end_status(self) -> tuple[int | None, int | None]:
        assert self.exit is not None
        return self.exit.code, self.exit.signal

    def _followed_program(self) -> Loaded:
        """The program the followed process runs now (it may have exec'd)."""
        loaded = self.debuggee.loaded
        if loaded is None:  # (a container whose program this session never loaded)
            loaded = Loaded(self.program, self.interp, self._auxv, self.exe_path)
        return loaded

    def symbols(self) -> Symbols:
        return Symbols.read(self._followed_program().program)

    @property
    def program_image(self) -> bytes:
        return self.program.image

    @property
    def current_exe(self) -> str:
        """The program file the followed process runs now."""
        return self._followed_program().exe_path

    @property
    def current_image(self) -> bytes:
        return self._followed_program().program.image

    def auxv(self) -> bytes | None:
        return self._followed_program().auxv

    def signal_info(self, signal: int) -> bytes | None:
        d = self.debuggee
        if self.fault is not None and self.fault.signal == signal:
            _trapno, _err, _cr2, code, addr = _fault_details(self.fault, d.memory)
            return siginfo(signal, code, addr)
        for sig, info in d.linux.state.task.signals.queue:
            if sig == signal:
                return info[:128]
        return None

    def libraries(self, annex: str = "") -> bytes | None:
        """gdbserver's ``qXfer:libraries-svr4`` document; None for a static program."""
        program = self._followed_program().program
        if program.interp is None:
            return None
        return libraries_svr4(self.debuggee.memory.read, program.dynamic_vaddr, annex)

    # -- inspection ----------------------------------------------------
    def registers(self) -> dict[str, int]:
        return {name: self.engine.reg_read(reg) for name, reg in STATE_REGS}

    def digest(self) -> str:
        """SHA-256 over registers (incl. x87/SSE), the memory map and
        contents, and the kernel state that decides what runs next: of
        every process (one process: exactly as before processes existed)."""
        h = hashlib.sha256()
        h.update(struct.pack("<Q", self.icount))
        for _, reg in STATE_REGS:
            h.update(struct.pack("<I", self.engine.reg_read(reg) & 0xFFFFFFFF))
        for i in range(8):
            h.update(repr(self.engine.reg_read_any(x86.UC_X86_REG_XMM0 + i)).encode())
            h.update(repr(self.engine.reg_read_any(x86.UC_X86_REG_FP0 + i)).encode())
        for reg in (x86.UC_X86_REG_FPSW, x86.UC_X86_REG_FPCW, x86.UC_X86_REG_MXCSR):
            h.update(repr(self.engine.reg_read_any(reg)).encode())
        mem = self._tree
        for r in mem.regions():
            h.update(struct.pack("<QQI", r.start, r.end, r.perms))
            # Untouched memory (most of a stack) is common: a zero block adds
            # one marker byte instead of 64 KiB to the hash.
            for lo in range(r.start, r.end, _DIGEST_BLOCK):
                block = mem.view(lo, min(_DIGEST_BLOCK, r.end - lo)).tobytes()
                if block == _ZERO_BLOCK[: len(block)]:
                    h.update(b"\0")
                else:
                    h.update(b"\1")
                    h.update(block)
        k = self.linux
        sys = k.sys
        for _pid, proc in sorted(mem.containers().items()):
            p = proc.linux
            st = p.state
            if p is not k:
                # Another process: its pid, where it is, what it waits for.
                h.update(struct.pack("<I", p.pid))
                ctx = proc.engine.context_bytes()
                h.update(repr(proc.engine.context_read(ctx, _DIGEST_REGS)).encode())
            h.update(struct.pack("<IIQQ", st.brk_start, st.brk, sys.sleep_ns, st.task.sigmask))
            if st.others or p is not k:
                # Other threads: their registers and what they wait for.
                h.update(struct.pack("<IQ", st.task.tid, st.slice_end))
                tasks = sorted(st.others.items())
                if p is not k:
                    tasks.append((st.task.tid, st.task))
                for tid, t in tasks:
                    h.update(struct.pack("<IQ", tid, t.sigmask))
                    # Architectural registers only: a context also holds the
                    # CPU's lazy flag state, which depends on how it got there.
                    if t.context:
                        h.update(repr(proc.engine.context_read(t.context, _DIGEST_REGS)).encode())
                    h.update(repr(None if t.wait is None else t.wait.to_json()).encode())
                    h.update(repr(t.result).encode())
        if sys.zombies:
            h.update(repr([z.to_json() for _, z in sorted(sys.zombies.items())]).encode())
        return h.hexdigest()


def _load_tls(cpu: Cpu, task: Task) -> None:
    """Put ``task``'s TLS descriptors in ``cpu``'s GDT."""
    for index in range(TLS_FIRST_ENTRY, TLS_FIRST_ENTRY + TLS_ENTRIES):
        entry = task.gdt_entry(index)
        # Only what differs (threads of one process usually differ in
        # one entry, the one %gs selects).
        if cpu.gdt_entry(index) == entry:
            continue
        if entry is None:
            cpu.clear_gdt_entry(index)
        else:
            cpu.set_gdt_entry(index, *entry)


def _fresh_address_space(proc: Process) -> None:
    """Empty a container's address space for a new program (exec) or a new
    life (a process made again after going back): no region but the GDT,
    no translated code."""
    proc.memory.unmap_all()
    proc.cpu.flush_code()
    proc.engine.restore_context_bytes(proc.boot_context)
    proc.cpu.reset_gdt()


def _fault_details(fault: Fault, memory: GuestMemory) -> tuple[int, int, int, int, int]:
    """(trapno, err, cr2, si_code, si_addr) of a fault, as Linux's trap
    handlers fill the sigcontext and siginfo (linux-abi.md 2.6)."""
    sig = fault.signal
    if sig == SIGSEGV and fault.address is not None:
        mapped = memory.region_at(fault.address) is not None
        write = "write" in fault.what
        err = 4 | (2 if write else 0) | (1 if mapped else 0)
        code = 2 if mapped else 1  # SEGV_ACCERR, SEGV_MAPERR
        return 14, err, fault.address, code, fault.address
    if sig == SIGSEGV:
        return 13, 0, 0, SI_KERNEL, 0  # #GP
    if sig == SIGFPE:
        return 0, 0, 0, 1, fault.eip  # #DE, FPE_INTDIV
    if sig == SIGILL:
        return 6, 0, 0, 2, fault.eip  # #UD, ILL_ILLOPN
    if sig == SIGTRAP:
        return 3, 0, 0, SI_KERNEL, 0  # int3
    if sig == SIGBUS:
        return 11, 0, 0, 0, 0
    return 0, 0, 0, SI_KERNEL, 0


class CpuRegisters:
    """The registers signal delivery saves and restores, through the engine."""

    _GENERAL = STATE_REGS[:10]  # eax..edi, esp, ebp, eip, eflags
    _SEGMENTS = STATE_REGS[10:]

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get_regs(self) -> dict[str, int]:
        return {name: self.engine.reg_read(reg) & 0xFFFFFFFF for name, reg in STATE_REGS}

    def set_regs(self, regs: dict[str, int]) -> None:
        for name, reg in self._GENERAL:
            self.engine.reg_write(reg, regs[name] & 0xFFFFFFFF)
        for name, reg in self._SEGMENTS:
            # Only what changed: reloading cs/ss means a descriptor check.
            if name in regs and self.engine.reg_read(reg) != regs[name]:
                self.engine.reg_write(reg, regs[name])

    def fpu_save(self) -> bytes:
        """The FXSAVE image: control/status/abridged tags, MXCSR, ST0-7, XMM0-7."""
        e = self.engine
        fsw = e.reg_read(x86.UC_X86_REG_FPSW)
        tags = e.reg_read(x86.UC_X86_REG_FPTAG)
        abridged = sum(1 << i for i in range(8) if (tags >> (2 * i)) & 3 != 3)
        top = (fsw >> 11) & 7
        head = struct.pack(
            "<HHBxHIIII",
            e.reg_read(x86.UC_X86_REG_FPCW),
            fsw,
            abridged,
            0,
            0,
            0,
            e.reg_read(x86.UC_X86_REG_MXCSR),
            0xFFFF,
        )
        st = b""
        for i in range(8):
            mantissa, exponent = e.reg_read_any(x86.UC_X86_REG_FP0 + ((top + i) & 7))
            st += struct.pack("<QH6x", mantissa, exponent)
        xmm = b"".join(
            (e.reg_read_any(x86.UC_X86_REG_XMM0 + i)).to_bytes(16, "little") for i in range(8)
        )
        return (head + st + xmm).ljust(512, b"\0")

    def fpu_restore(self, image: bytes) -> None:
        e = self.engine
        fcw, fsw, abridged = struct.unpack_from("<HHB", image)
        (mxcsr,) = struct.unpack_from("<I", image, 24)
        top = (fsw >> 11) & 7
        e.reg_write(x86.UC_X86_REG_FPCW, fcw)
        e.reg_write(x86.UC_X86_REG_FPSW, fsw)
        e.reg_write(
            x86.UC_X86_REG_FPTAG,
            sum((0 if abridged & (1 << i) else 3) << (2 * i) for i in range(8)),
        )
        for i in range(8):
            mantissa, exponent = struct.unpack_from("<QH", image, 32 + 16 * i)
            e.reg_write_any(x86.UC_X86_REG_FP0 + ((top + i) & 7), (mantissa, exponent))
        e.reg_write(x86.UC_X86_REG_MXCSR, mxcsr & 0xFFFF)
        for i in range(8):
            e.reg_write_any(
                x86.UC_X86_REG_XMM0 + i,
                int.from_bytes(image[160 + 16 * i : 176 + 16 * i], "little"),
            )

    def fpu_reset(self) -> None:
        e = self.engine
        e.reg_write(x86.UC_X86_REG_FPCW, 0x037F)
        e.reg_write(x86.UC_X86_REG_FPSW, 0)
        e.reg_write(x86.UC_X86_REG_FPTAG, 0xFFFF)
        e.reg_write(x86.UC_X86_REG_MXCSR, 0x1F80)


def _auxv_at(memory: GuestMemory, esp: int) -> bytes:
    """The auxiliary vector of the initial stack at ``esp`` (argc, argv, NULL,
    envp, NULL, then (type, value) pairs up to AT_NULL), as bytes."""
    words = memory.view(esp, memory.region_at(esp).end - esp)  # type: ignore[union-attr]
    count = len(words) // 4
    values = struct.unpack_from(f"<{count}I", words)
    i = 1 + values[0] + 1  # past argc, argv and its NULL
    while values[i]:
        i += 1
    start = i = i + 1  # past envp's NULL
    while values[i]:
        i += 2
    return struct.pack(f"<{i + 2 - start}I", *values[start : i + 2])


TSC_PER_INSN = 1
#: int 0x80, sysenter, syscall: the instructions that may wait on the host.
_SYSCALL_INSNS = (b"\xcd\x80", b"\x0f\x34", b"\x0f\x05")
_DIGEST_BLOCK = 1 << 16
_DIGEST_REGS = (
    *(reg for _, reg in STATE_REGS),
    *(x86.UC_X86_REG_XMM0 + i for i in range(8)),
    *(x86.UC_X86_REG_FP0 + i for i in range(8)),
    x86.UC_X86_REG_FPSW,
    x86.UC_X86_REG_FPCW,
    x86.UC_X86_REG_MXCSR,
)
_ZERO_BLOCK = bytes(_DIGEST_BLOCK)
#: Instructions per call into the emulator in run_to_end (a few milliseconds).
RUN_SLICE = 1 << 24


def run_program(
    program: str,
    args: list[str],
    host: Host,
    *,
    native: bool | None = None,
    warn: TextIO | None = None,
) -> RunResult:
    """Convenience: load, run to the end and return how it ended."""
    machine = LinuxMachine(program, [program, *args], host, native=native, warn=warn)
    return machine.run_to_end()
