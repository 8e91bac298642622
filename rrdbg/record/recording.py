"""A recording: a directory holding the replay log and the snapshot image.

Role: ``record()`` runs a program on a live host, logging every host answer
and saving snapshots (the first, named like QEMU's ``rrsnapshot=``, at icount
0; then one every ``interval`` instructions); ``replay()`` runs it again from
the log alone and checks the final count and machine digest; ``describe()``
summarises a recording for ``rrdbg info``.

Layout of DIR: ``log.rrlog`` (docs/replay-log.md), unless the user gave an
image ``snapshots.qcow2`` (docs/snapshot-format.md), ``blocks.cache``, the
program's decoded blocks (an optional speed-up for replays), and ``files/``:
every file the guest executes, kept as ``files/<sha256>`` (a hard link to the
original when possible, a copy otherwise), so that a recording replays after
its program is rebuilt, moved or deleted, and on another machine.  The log
header names the image, so a recording made with ``--image`` finds it again,
and names the program by the path the guest knew it by.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rrdbg import __version__
from rrdbg.errors import ReplayDivergence, RrdbgError
from rrdbg.machine.base import Machine
from rrdbg.machine.engine import CPU_MODEL_NAME, CPU_MODELS, is_this_unicorn, unicorn_version
from rrdbg.machine.host import LiveHost
from rrdbg.machine.linux import ExitStatus
from rrdbg.machine.linux.process import DEFAULT_QUANTUM
from rrdbg.machine.linux.signals import SI_USER, siginfo
from rrdbg.machine.loader import read_kernel, read_program
from rrdbg.machine.machine import RUN_SLICE, LinuxMachine, RunResult, check_interpreter
from rrdbg.machine.pc import PcResult
from rrdbg.machine.registers import write_register
from rrdbg.record.events import (
    DEBUG_KINDS,
    EndRecord,
    Kind,
    decode_debug_memory,
    decode_debug_register,
    decode_debug_signal,
)
from rrdbg.record.files import FILES_NAME, KeptFiles, _sha256, keep_file, kept_file
from rrdbg.record.hosts import RecordingHost, ReplayHost
from rrdbg.record.log import Cursor, LogHeader, LogReader, LogWriter
from rrdbg.snapshot.qcow2 import Qcow2Image, SnapshotInfo
from rrdbg.snapshot.vmstate import SnapshotStore

LOG_NAME = "log.rrlog"
IMAGE_NAME = "snapshots.qcow2"
#: A cache of the program's decoded blocks, so a replay need not decode them
#: again: magic, the program's SHA-256, CRC-32 of the records, then
#: (u32 address, u32 size, u32 instruction count) records.  Optional: a
#: missing or damaged cache only makes a replay decode blocks itself.
BLOCKS_NAME = "blocks.cache"
#: Version 2: blocks holding port I/O are never cached (an exit must be
#: placed there), so caches written before that are not trusted.
_BLOCKS_MAGIC = b"RRBLOCK2"
#: Fewest instructions between snapshots by default: about 45 ms of replay at
#: the pinned Unicorn's ~2.2 G instr/s, the worst case a reverse step then has
#: to replay.  The recorder stretches the interval so that snapshots cost at
#: most 1/SNAPSHOT_COST_RATIO of the run (a big process costs more per
#: snapshot).  docs/snapshot-format.md has the measurements.
DEFAULT_SNAPSHOT_INTERVAL = 100_000_000
SNAPSHOT_COST_RATIO = 50


class IncompleteReplay(RrdbgError):
    """The recording ends before the program did (the recorder was killed)."""


@dataclass(frozen=True, slots=True)
class RecordStats:
    result: RunResult
    snapshots: list[SnapshotInfo]
    snapshot_seconds: float
    log_bytes: int
    image_bytes: int


@dataclass(slots=True)
class Description:
    """What ``rrdbg info`` shows."""

    header: LogHeader
    total_icount: int | None
    last_icount: int
    events: dict[str, int]
    clean_end: bool
    truncated_at: int | None
    end: EndRecord | None
    snapshots: list[SnapshotInfo] = field(default_factory=list)
    log_bytes: int = 0
    image: str = ""
    image_bytes: int = 0


def program_file(directory: Path, header: LogHeader) -> str:
    """The program to load for replaying: the recording's own copy, or (a
    recording made before rrdbg kept files) the recorded path, checked."""
    kept = kept_file(directory, header.program_sha256)
    if kept.exists():
        if (kept.stat().st_size, _sha256(str(kept))) != (
            header.program_size,
            header.program_sha256,
        ):
            raise RrdbgError(
                f"{directory}: the program kept in the recording ({kept}) was changed "
                "in place (it is a hard link: something wrote to the original file)"
            )
        return str(kept)
    program = header.program_path
    if not os.path.exists(program):
        raise RrdbgError(f"{directory}: the recorded program {program} is missing")
    if (os.path.getsize(program), _sha256(program)) != (header.program_size, header.program_sha256):
        raise RrdbgError(f"{directory}: {program} has changed since it was recorded")
    return program


def image_path(directory: Path, header: LogHeader) -> Path:
    """Where a recording's snapshot image is (its own, or the --image it named)."""
    image = Path(header.snapshot_image)
    return image if image.is_absolute() else directory / image


@dataclass(frozen=True, slots=True)
class PcOptions:
    """How a bare-metal PC recording's machine is built (kept in the log header)."""

    ram_mb: int = 32
    cmdline: str = ""

    def header_fields(self) -> dict[str, str]:
        return {"machine": "pc", "ram_mb": str(self.ram_mb), "cmdline": self.cmdline}

    @classmethod
    def from_header(cls, header: LogHeader) -> PcOptions | None:
        extra = header.extra
        if extra.get("machine") != "pc":
            return None
        try:
            return cls(int(extra.get("ram_mb", "32")), extra.get("cmdline", ""))
        except ValueError:
            raise RrdbgError("the recording's PC machine settings are damaged") from None


@dataclass(slots=True)
class NewRecording:
    """A recording directory being written: its log, image and header."""

    directory: Path
    header: LogHeader
    qcow: Qcow2Image
    image_file: Path
    writer: LogWriter


def new_recording(
    program: str,
    args: list[str],
    directory: str,
    *,
    image: str | None = None,
    snapshot_name: str = "init",
    interval: int = 0,
    force: bool = False,
    pc: PcOptions | None = None,
    exe_path: str | None = None,
    force_hint: str = "use --force to replace it",
    program_image: bytes | None = None,
    parents: bool = True,
    quantum: int | None = None,
    cpus: int | None = None,
    cpu_model: str = CPU_MODEL_NAME,
) -> NewRecording:
    """Create DIR (or refuse), its snapshot image and its log with a header,
    and keep the program in DIR/files.

    Nothing on disk changes before every check has passed.  With ``pc``,
    PROGRAM is a Multiboot kernel for the bare-metal PC machine.
    ``exe_path`` is the path the guest knows the program by, when PROGRAM is
    a kept copy of it (default: PROGRAM's absolute path).  ``program_image`` is the
    program as a running machine loaded it (a live session being saved): it
    is what the recording keeps, even if PROGRAM changed on disk since.
    Without ``parents``, DIR's parent directory must exist (a debugger
    client's ``monitor save`` creates nothing but DIR).  File-system errors
    are one-line ``RrdbgError``s.
    """
    try:
        return _new_recording(
            program,
            args,
            directory,
            image=image,
            snapshot_name=snapshot_name,
            interval=interval,
            force=force,
            pc=pc,
            exe_path=exe_path,
            force_hint=force_hint,
            program_image=program_image,
            parents=parents,
            quantum=quantum,
            cpus=cpus,
            cpu_model=cpu_model,
        )
    except OSError as exc:
        raise RrdbgError(f"{directory}: cannot write a recording there: {_reason(exc)}") from None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _new_recording(
    program: str,
    args: list[str],
    directory: str,
    *,
    image: str | None,
    snapshot_name: str,
    interval: int,
    force: bool,
    pc: PcOptions | None,
    exe_path: str | None,
    force_hint: str,
    program_image: bytes | None,
    parents: bool,
    quantum: int | None,
    cpus: int | None,
    cpu_model: str,
) -> NewRecording:
    # Bad programs fail before anything is created.
    if program_image is not None:
        loaded_image = program_image
    else:
        loaded = read_kernel(program) if pc is not None else read_program(program)
        loaded_image = loaded.image
    out = Path(directory)
    if not directory:
        raise RrdbgError("no recording directory given")
    if not parents and not out.absolute().parent.is_dir():
        raise RrdbgError(f"{directory}: no such directory {out.absolute().parent}")
    if out.exists() and not out.is_dir():
        raise RrdbgError(f"{directory}: exists and is not a directory")
    replacing = out.exists() and any(out.iterdir())
    if replacing and not force:
        raise RrdbgError(f"{directory}: already exists ({force_hint})")
    # No fsync: ordered writes already make a killed recorder's image valid;
    # only a power cut could lose or tear the last snapshot.
    if image is not None:  # checked before anything on disk changes
        image_file = Path(image)
        qcow = Qcow2Image.open(image, writable=True, sync=False)
        image_ref = str(image_file.resolve())
        if qcow.find(snapshot_name) is not None:
            qcow.close()
            raise RrdbgError(
                f"{image}: already has a snapshot named {snapshot_name!r} "
                "(choose another with --snapshot)"
            )
    if replacing:
        for name in (LOG_NAME, IMAGE_NAME, BLOCKS_NAME):
            if (out / name).exists():
                (out / name).unlink()
        shutil.rmtree(out / FILES_NAME, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    sha256 = hashlib.sha256(loaded_image).digest()
    keep_file(out, program, sha256, program_image)
    if image is None:
        image_file = out / IMAGE_NAME
        qcow = Qcow2Image.create(str(image_file), sync=False)
        image_ref = IMAGE_NAME
    argv = [program, *args]
    header = LogHeader(
        rrdbg_version=__version__,
        unicorn_version=unicorn_version(),
        cpu_model=cpu_model,
        program_path=exe_path or os.path.abspath(program),
        program_size=len(loaded_image),
        program_sha256=sha256,
        argv=tuple(a.encode() for a in argv),
        snapshot_image=image_ref,
        snapshot_interval=interval,
        created_ns=time.time_ns(),
        extra={
            "snapshot_name": snapshot_name,
            # Blocking reads wait as interruptible ones (a recorded poll first).
            "reads": "interruptible",
            **(pc.header_fields() if pc else _linux_fields(quantum, cpus)),
        },
    )
    try:
        writer = LogWriter.create(str(out / LOG_NAME), header)
    except BaseException:
        qcow.close()
        raise
    return NewRecording(out, header, qcow, image_file, writer)


def record(
    program: str,
    args: list[str],
    directory: str,
    *,
    image: str | None = None,
    snapshot_name: str = "init",
    interval: int | None = None,
    stdin: str | None = None,
    force: bool = False,
    environ: Mapping[str, str] | None = None,
    force_hint: str = "use --force to replace it",
    sysroot: str | None = None,
    quantum: int | None = None,
    cpu_model: str = CPU_MODEL_NAME,
) -> RecordStats:
    """Run ``program`` live, writing a recording to ``directory``.

    ``interval`` fixes the instructions between snapshots; by default it is
    at least DEFAULT_SNAPSHOT_INTERVAL and adapts to the snapshot cost.
    ``sysroot``: where absolute paths resolve first (LiveHost).
    """
    if interval is not None and interval <= 0:
        raise RrdbgError("the snapshot interval must be a positive number of instructions")
    adaptive = interval is None
    base_interval = DEFAULT_SNAPSHOT_INTERVAL if interval is None else interval
    live = LiveHost(stdin_path=stdin, environ=environ, sysroot=sysroot)
    try:
        check_interpreter(program, live)
    except BaseException:
        live.shutdown()
        raise
    rec = new_recording(
        program,
        args,
        directory,
        image=image,
        snapshot_name=snapshot_name,
        interval=0 if adaptive else base_interval,
        force=force,
        force_hint=force_hint,
        quantum=quantum,
        cpu_model=cpu_model,
    )
    out, header, qcow, image_file = rec.directory, rec.header, rec.qcow, rec.image_file
    argv = [program, *args]
    snapshots: list[SnapshotInfo] = []
    snap_time = 0.0
    with qcow, rec.writer as writer:
        host = RecordingHost(live, writer, KeptFiles(out))
        host.flush = writer.flush
        try:
            machine = LinuxMachine(program, argv, host, quantum=quantum, cpu_model=cpu_model)
            host.icount = lambda: machine.cpu.counter.total
            store = SnapshotStore(qcow)

            def snapshot(name: str) -> int:
                """Save one; returns the instructions to run before the next."""
                nonlocal snap_time
                t0 = time.perf_counter()
                # The log must hold every event before the snapshot's cursor
                # first: a recorder killed later still replays to here.
                writer.flush()
                snapshots.append(store.save(machine, name, writer.position.to_bytes()))
                cost = time.perf_counter() - t0
                snap_time += cost
                if not adaptive:
                    return base_interval
                speed = (machine.icount - last[0]) / max(t0 - last[1], 1e-9)
                last[:] = [machine.icount, time.perf_counter()]
                return max(base_interval, int(cost * SNAPSHOT_COST_RATIO * speed))

            last = [0, time.perf_counter()]
            next_snapshot = snapshot(snapshot_name)
            while machine.exit is None:
                machine.run(min(next_snapshot, machine.icount + RUN_SLICE), exact=False)
                if machine.exit is None and machine.icount >= next_snapshot:
                    next_snapshot = machine.icount + snapshot(f"{snapshot_name}-{machine.icount}")
            result = machine.run_to_end()
            end = EndRecord(result.exit.code, result.exit.signal, result.icount, machine.digest())
            writer.close(result.icount, end.encode())
            write_block_cache(out / BLOCKS_NAME, header.program_sha256, machine)
        finally:
            live.shutdown()
    return RecordStats(
        result=result,
        snapshots=snapshots,
        snapshot_seconds=snap_time,
        log_bytes=(out / LOG_NAME).stat().st_size,
        image_bytes=image_file.stat().st_size,
    )


def write_block_cache(path: Path, program_sha256: bytes, machine: Machine) -> None:
    records = machine.cpu.known_blocks()
    path.write_bytes(
        _BLOCKS_MAGIC + program_sha256 + zlib.crc32(records).to_bytes(4, "little") + records
    )


def seed_blocks(directory: Path, program_sha256: bytes, machine: Machine) -> None:
    """Give the machine the decoded blocks of a recording's ``blocks.cache`` (if valid)."""
    path = directory / BLOCKS_NAME
    try:
        data = path.read_bytes()
    except OSError:
        return
    head = len(_BLOCKS_MAGIC) + 32 + 4
    records = data[head:]
    if (
        data[: len(_BLOCKS_MAGIC)] != _BLOCKS_MAGIC
        or data[len(_BLOCKS_MAGIC) : len(_BLOCKS_MAGIC) + 32] != program_sha256
        or int.from_bytes(data[head - 4 : head], "little") != zlib.crc32(records)
    ):
        return
    machine.cpu.seed_blocks(records)


class _Source:
    """Adapts a LogReader to the ReplayHost's peek/advance interface."""

    def __init__(self, reader: LogReader) -> None:
        self.reader = reader

    def peek(self) -> tuple[int, int, bytes] | None:
        event = self.reader.peek()
        return None if event is None else (event.icount, event.kind, event.payload)

    def advance(self) -> None:
        self.reader.next()


@dataclass
class Replay:
    """An open recording, ready to replay (the machine is at its first snapshot)."""

    directory: Path
    header: LogHeader
    reader: LogReader
    machine: LinuxMachine
    host: ReplayHost
    image: Qcow2Image | None = None
    store: SnapshotStore | None = None
    #: (icount, kind, payload) of the debugger writes still to apply.
    debug_writes: list[tuple[int, int, bytes]] = field(default_factory=list)
    #: The icount a recording of an unfinished run stops at (a live session
    #: saved early), or None when it runs to the program's end.
    stopped_at: int | None = None

    def close(self) -> None:
        if self.image is not None:
            self.image.close()
        self.reader.close()

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_to_end(self, *, check: bool = True) -> RunResult:
        """Replay to the end (or where the recording stops); with ``check``,
        verify against the END record."""
        m = self.machine
        stop_at = self.stopped_at
        if stop_at is not None:
            return self._run_to_stop(stop_at, check=check)
        try:
            pending = self.debug_writes
            while m.exit is None and pending and pending[0][0] >= m.icount:
                # A debugger changed the live run here: run to that exact
                # instruction count and make the same change.
                icount, kind, payload = pending[0]
                m.run(icount, exact=True)
                if m.exit is not None:
                    break
                self._debug_write(icount, kind, payload)
                pending.pop(0)
            result = m.run_to_end()
        except ReplayDivergence:
            _raise_if_incomplete(self.directory, self.reader, m.cpu.counter.total)
            raise
        if check:
            self.verify(result)
        return result

    def _run_to_stop(self, stop_at: int, *, check: bool) -> RunResult:
        m = self.machine
        try:
            for icount, kind, payload in self.debug_writes:
                if icount > stop_at:
                    break
                self._run_exactly_to(icount)
                self._debug_write(icount, kind, payload)
            self._run_exactly_to(stop_at)
        except ReplayDivergence:
            _raise_if_incomplete(self.directory, self.reader, m.cpu.counter.total)
            raise
        event = self.reader.peek()
        if check and (event is None or event.kind != Kind.END):
            raise ReplayDivergence(
                f"replay diverged: the recording stops at icount {stop_at} but goes on"
            )
        if check and event is not None:
            end = EndRecord.decode(event.payload)
            if end.digest != m.digest():
                raise ReplayDivergence(
                    f"replay diverged: the machine state at icount {stop_at}, where the "
                    "recording stops, differs from the recorded one"
                )
        return RunResult(m.icount, ExitStatus(), None, finished=False)

    def _debug_write(self, icount: int, kind: int, payload: bytes) -> None:
        """Make the debugger's change recorded at ``icount`` (the machine is
        there), which must be the log's next event."""
        event = self.reader.peek()
        if event is None or (event.icount, event.kind) != (icount, kind):
            raise ReplayDivergence(
                f"replay diverged at icount {self.machine.icount}: the recording's debugger "
                f"write at icount {icount} is not the next event"
            )
        apply_debug_write(self.machine, kind, payload)
        self.reader.next()

    def _run_exactly_to(self, icount: int) -> None:
        m = self.machine
        while m.exit is None and m.icount < icount:
            m.run(min(icount, m.icount + RUN_SLICE), exact=True)
        if m.icount != icount:
            raise ReplayDivergence(
                f"replay diverged: the program ended at icount {m.icount}, before the "
                f"recording stops ({icount})"
            )

    def verify(self, result: RunResult) -> None:
        event = self.reader.peek()
        if event is None or event.kind != Kind.END:
            what = "nothing" if event is None else f"{Kind(event.kind).name.lower()} event"
            raise ReplayDivergence(
                f"replay diverged: the program ended at icount {result.icount} "
                f"but the recording continues with {what}"
            )
        end = EndRecord.decode(event.payload)
        ended = ExitStatus(code=end.exit_code, signal=end.exit_signal)
        if end.icount != result.icount:
            raise ReplayDivergence(
                f"replay diverged: the program ended at icount {result.icount}, "
                f"the recording at {end.icount}"
            )
        if ended != result.exit:
            raise ReplayDivergence(
                f"replay diverged at icount {result.icount}: exit {result.exit}, recorded {ended}"
            )
        if end.digest != self.machine.digest():
            raise ReplayDivergence(
                f"replay diverged: the final machine state at icount {result.icount} "
                "differs from the recorded one"
            )


def _linux_fields(quantum: int | None, cpus: int | None) -> dict[str, str]:
    """The header fields a Linux program's replay needs to schedule its
    threads as the recording did."""
    count = cpus if cpus is not None else len(os.sched_getaffinity(0))
    return {
        "quantum": str(quantum or DEFAULT_QUANTUM),
        "cpus": str(count),
        "timers": "exact",
        # A console read blocks only its task (sched.poll_host_waits).
        "host_waits": "task",
        # /proc about the processes comes from the kernel (procfs.py).
        "proc": "kernel",
    }


def configure_linux(machine: LinuxMachine, header: LogHeader) -> None:
    """Make a replaying machine behave as the recorded one did: reads wait
    as interruptible ones only if they did (not in recordings made before),
    and threads are scheduled with the recorded quantum."""
    machine.linux.interruptible_reads = header.extra.get("reads") == "interruptible"
    machine.linux.exact_timers = header.extra.get("timers") == "exact"
    machine.linux.sys.task_host_waits = header.extra.get("host_waits") == "task"
    machine.linux.sys.kernel_proc = header.extra.get("proc") == "kernel"
    quantum = header.extra.get("quantum", "")
    if quantum.isdigit() and int(quantum) > 0:
        machine.linux.quantum = int(quantum)
    # Recordings made before the count was kept told the program 1 CPU.
    cpus = header.extra.get("cpus", "")
    machine.linux.cpus = int(cpus) if cpus.isdigit() and int(cpus) > 0 else 1


def apply_debug_write(machine: Machine, kind: int, payload: bytes) -> None:
    """Make a recorded debugger change (a register or memory write, a signal
    discarded or sent) again, in the process (and thread) it was made in."""
    if kind == Kind.DEBUG_REGISTER:
        name, value, pid, tid = decode_debug_register(payload)
        if isinstance(machine, LinuxMachine):
            machine.write_thread_register(pid, tid, name, value)
        else:
            write_register(machine.debuggee.engine, name, value)
    elif kind == Kind.DEBUG_SIGNAL:
        discarded, sent, pid = decode_debug_signal(payload)
        if not isinstance(machine, LinuxMachine):
            raise RrdbgError("a signal event in a recording of a kernel")
        linux = machine.process_for_debugger(pid).linux
        if discarded:
            linux.state.task.signals.discard(discarded)
            machine.settle_restart()
        if sent:
            linux.send(sent, siginfo(sent, SI_USER, linux.ids.pid, linux.ids.uid))
            # gdb asked for it to be delivered: no stop to report it first.
            machine.note_signal_stop(machine.icount, sent)
    else:
        address, data, pid = decode_debug_memory(payload)
        space = (
            machine.process_for_debugger(pid)
            if isinstance(machine, LinuxMachine)
            else machine.debuggee
        )
        space.memory.poke(address, data)
        space.cpu.invalidate_code(address, address + len(data))


def _raise_if_incomplete(directory: Path, reader: LogReader, icount: int) -> None:
    """A divergence at the end of a log that was cut short is not a divergence."""
    if reader.peek() is None and not reader.clean_end:
        raise IncompleteReplay(
            f"{directory}: the recording ends at icount {icount} before the program "
            "does (the recorder was stopped); replayed up to there"
        ) from None


def open_log(directory: str) -> LogReader:
    """The log of the recording in ``directory``, after checking that it can be
    replayed here (the program is there and unchanged, same Unicorn and CPU)."""
    d = Path(directory)
    if not d.is_dir():
        raise RrdbgError(f"{directory}: no such recording directory")
    log_path = d / LOG_NAME
    if not log_path.exists():
        raise RrdbgError(f"{directory}: not a recording (no {LOG_NAME})")
    reader = LogReader.open(str(log_path))
    try:
        header = reader.header
        program_file(d, header)
        if not is_this_unicorn(header.unicorn_version) or header.cpu_model not in CPU_MODELS:
            raise RrdbgError(
                f"{directory}: recorded with Unicorn {header.unicorn_version}, CPU model "
                f"{header.cpu_model}; this rrdbg runs {unicorn_version()}, models "
                f"{', '.join(CPU_MODELS)}"
            )
    except BaseException:
        reader.close()
        raise
    return reader


def open_recording(
    directory: str,
    *,
    quiet: bool = False,
    stdout_fd: int = 1,
    stderr_fd: int = 2,
    snapshot: str | None = None,
) -> Replay:
    """Open DIR for replay; with ``snapshot``, start from that snapshot."""
    d = Path(directory)
    reader = open_log(directory)
    try:
        header = reader.header
        program = program_file(d, header)
        host = ReplayHost(
            _Source(reader),
            quiet=quiet,
            stdout_fd=stdout_fd,
            stderr_fd=stderr_fd,
            files=KeptFiles(d),
        )
        try:
            machine = LinuxMachine(
                program,
                list(header.argv),
                host,
                exe_path=header.program_path,
                cpu_model=header.cpu_model,
            )
            configure_linux(machine, header)
        except ReplayDivergence:
            _raise_if_incomplete(d, reader, 0)
            raise
        host.icount = lambda: machine.cpu.counter.total
        replay = Replay(d, header, reader, machine, host)
        if snapshot is not None:
            image = Qcow2Image.open(str(image_path(d, header)), writable=False)
            replay.image = image
            replay.store = SnapshotStore(image)
            info = image.find(snapshot)
            if info is None:
                raise RrdbgError(f"{directory}: no snapshot named {snapshot!r}")
            cursor = replay.store.load(machine, info)
            reader.seek(Cursor.from_bytes(cursor))
        seed_blocks(d, header.program_sha256, machine)
        with LogReader.open(str(d / LOG_NAME)) as scan:
            scan.seek(reader.position)  # what the replay has not consumed yet
            for e in scan:
                if e.kind in DEBUG_KINDS:
                    replay.debug_writes.append((e.icount, e.kind, bytes(e.payload)))
                elif e.kind == Kind.END:
                    end = EndRecord.decode(e.payload)
                    replay.stopped_at = None if end.finished else end.icount
        return replay
    except BaseException:
        reader.close()
        raise


def describe(directory: str) -> Description:
    d = Path(directory)
    log_path = d / LOG_NAME
    if not log_path.exists():
        raise RrdbgError(f"{directory}: not a recording (no {LOG_NAME})")
    with LogReader.open(str(log_path)) as reader:
        summary = reader.summary()
        header = reader.header
    counts: dict[str, int] = {}
    for kind, n in summary.events_by_kind.items():
        try:
            name = Kind(kind).name.lower()
        except ValueError:
            name = f"kind-{kind}"
        counts[name] = n
    end = EndRecord.decode(summary.end_payload) if summary.end_payload is not None else None
    desc = Description(
        header=header,
        total_icount=end.icount if end else None,
        last_icount=summary.last_icount or 0,
        events=counts,
        clean_end=summary.clean_end,
        truncated_at=summary.truncated_at,
        end=end,
        log_bytes=summary.file_bytes,
    )
    path = image_path(d, header)
    desc.image = str(path)
    if path.exists():
        desc.image_bytes = path.stat().st_size
        with Qcow2Image.open(str(path), writable=False) as image:
            desc.snapshots = image.snapshots()
            if end is None:
                # A killed recorder: it got at least as far as its last
                # snapshot whose log position was written.
                readable = Cursor(summary.truncated_at or summary.file_bytes, 0)
                trusted = trusted_snapshots(SnapshotStore(image), desc.snapshots, readable)
                desc.last_icount = max([desc.last_icount, *(s.icount or 0 for s in trusted)])
    return desc


def trusted_snapshots(
    store: SnapshotStore, snapshots: list[SnapshotInfo], readable: Cursor
) -> list[SnapshotInfo]:
    """The snapshots of a log cut short (a killed recorder) whose log position
    lies in its readable part.  Recorders flush the log before each
    snapshot; ones before that change did not, and their last snapshots may
    name events that were never written."""
    out = []
    for snap in snapshots:
        cursor = Cursor.from_bytes(store.read_header(snap)[0].cursor)
        if (cursor.chunk_offset, cursor.index) <= (readable.chunk_offset, readable.index):
            out.append(snap)
    return out


# -- the bare-metal PC machine ------------------------------------------------


def record_pc(
    kernel: str,
    directory: str,
    options: PcOptions,
    *,
    image: str | None = None,
    snapshot_name: str = "init",
    interval: int | None = None,
    stdin: str | None = None,
    force: bool = False,
    force_hint: str = "use --force to replace it",
    cpu_model: str = CPU_MODEL_NAME,
) -> tuple[PcResult, list[SnapshotInfo]]:
    """Run a Multiboot kernel live on the PC machine, writing a recording.

    Serial input, the RTC's time of day and the console output are events at
    their exact icounts (the host interface, as for Linux programs)."""
    from rrdbg.machine.pc import PcMachine

    if interval is not None and interval <= 0:
        raise RrdbgError("the snapshot interval must be a positive number of instructions")
    step = interval or DEFAULT_SNAPSHOT_INTERVAL
    rec = new_recording(
        kernel,
        [],
        directory,
        image=image,
        snapshot_name=snapshot_name,
        interval=interval or 0,
        force=force,
        pc=options,
        force_hint=force_hint,
        cpu_model=cpu_model,
    )
    snapshots: list[SnapshotInfo] = []
    live = LiveHost(stdin_path=stdin)
    with rec.qcow, rec.writer as writer:
        host = RecordingHost(live, writer)
        host.flush = writer.flush
        try:
            machine = PcMachine(
                kernel, host, ram_mb=options.ram_mb, cmdline=options.cmdline, cpu_model=cpu_model
            )
            host.icount = machine.event_icount
            store = SnapshotStore(rec.qcow)
            writer.flush()
            snapshots.append(store.save(machine, snapshot_name, writer.position.to_bytes()))
            while True:
                result = machine.run_to_end(max_icount=machine.icount + step)
                if not result.reason.startswith("stopped after"):
                    break
                name = f"{snapshot_name}-{machine.icount}"
                # The log must hold every event before the snapshot's cursor
                # first: a recorder killed later still replays to here.
                writer.flush()
                snapshots.append(store.save(machine, name, writer.position.to_bytes()))
            code, signal = machine.end_status()
            end = EndRecord(code, signal, result.icount, machine.digest())
            writer.close(result.icount, end.encode())
        finally:
            live.shutdown()
    return result, snapshots


#: The reason of a replay that reached the end of a recording saved early.
STOPPED_REASON = (
    "the recording stops at icount {icount}, where its live session was saved; "
    "the program had not finished"
)


def _stopped_at(directory: Path) -> int | None:
    """The icount a recording of an unfinished run stops at, or None."""
    with LogReader.open(str(directory / LOG_NAME)) as scan:
        for event in scan:
            if event.kind == Kind.END:
                end = EndRecord.decode(event.payload)
                return None if end.finished else end.icount
    return None


def replay_pc(directory: str, *, quiet: bool = False, stdout_fd: int = 1) -> PcResult:
    """Replay a PC recording to its end and check it against the END record."""
    from rrdbg.machine.pc import PcMachine

    reader = open_log(directory)
    with reader:
        options = PcOptions.from_header(reader.header)
        if options is None:
            raise RrdbgError(f"{directory}: not a PC recording")
        host = ReplayHost(_Source(reader), quiet=quiet, stdout_fd=stdout_fd)
        header = reader.header
        machine = PcMachine(
            program_file(Path(directory), header),
            host,
            ram_mb=options.ram_mb,
            cmdline=options.cmdline,
            kernel_name=header.argv[0].decode("utf-8", "surrogateescape"),
            cpu_model=header.cpu_model,
        )
        host.icount = machine.event_icount
        stopped = _stopped_at(Path(directory))
        try:
            result = machine.run_to_end(max_icount=stopped)
        except ReplayDivergence:
            _raise_if_incomplete(Path(directory), reader, machine.cpu.counter.total)
            raise
        event = reader.peek()
        if stopped is not None and result.icount == stopped and event is not None:
            # A live session saved before the kernel ended: check the state there.
            if event.kind != Kind.END or EndRecord.decode(event.payload).digest != (
                machine.digest()
            ):
                raise ReplayDivergence(
                    f"replay diverged: the machine state at icount {stopped}, where the "
                    "recording stops, differs from the recorded one"
                )
            return PcResult(result.icount, None, STOPPED_REASON.format(icount=stopped))
        if event is None or event.kind != Kind.END:
            _raise_if_incomplete(Path(directory), reader, result.icount)
            raise ReplayDivergence(
                f"replay diverged: the kernel stopped at icount {result.icount} "
                "but the recording goes on"
            )
        end = EndRecord.decode(event.payload)
        if (end.icount, end.exit_code) != (result.icount, result.status):
            raise ReplayDivergence(
                f"replay diverged: the run ended at icount {result.icount} with status "
                f"{result.status}, the recording at {end.icount} with {end.exit_code}"
            )
        if end.digest != machine.digest():
            raise ReplayDivergence(
                f"replay diverged: the final machine state at icount {result.icount} "
                "differs from the recorded one"
            )
    return result
