"""The ``rrdbg`` command line.

Every failure a user can cause (bad arguments, bad program file, guest
faults) ends with one ``rrdbg: ...`` line on stderr and a non-zero status;
a traceback means a bug in rrdbg.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rrdbg import __version__
from rrdbg.errors import RrdbgError

if TYPE_CHECKING:
    from rrdbg.machine.machine import RunResult
    from rrdbg.machine.pc import PcResult
    from rrdbg.server.gdb import Address

EXIT_USAGE = 2
EXIT_INCOMPLETE = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"rrdbg: {message} (see 'rrdbg --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rrdbg",
        description="Record, replay and reverse-debug emulated i386 programs.",
    )
    parser.add_argument("--version", action="version", version=f"rrdbg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = sub.add_parser(
        "run",
        help="run an i386 Linux program under emulation",
        description="Run an ELF32 i386 Linux program under emulation, "
        "with its stdin/stdout/stderr and exit status passed through.",
    )
    run.add_argument("--stdin", metavar="FILE", help="read the guest's stdin from FILE")
    _add_machine_options(run)
    run.add_argument(
        "--icount",
        action="store_true",
        help="print the number of guest instructions executed to stderr at the end",
    )
    _add_program(run)

    rec = sub.add_parser(
        "record",
        help="run a program and record everything it observes, with snapshots",
        description="Run PROGRAM like 'rrdbg run' and write a recording directory: "
        "the replay log and a qcow2 image of machine snapshots.",
    )
    rec.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="recording directory (default: ./PROGRAM.rr, or ./PROGRAM-N.rr if that exists)",
    )
    rec.add_argument(
        "--image",
        metavar="QCOW2",
        help="keep snapshots in this existing qcow2 "
        "image (e.g. made by 'qemu-img create -f qcow2 empty.qcow2 1M')",
    )
    rec.add_argument(
        "--snapshot",
        metavar="NAME",
        default="init",
        help="name of the first snapshot, taken at icount 0 (default: init)",
    )
    rec.add_argument(
        "--snapshot-interval",
        metavar="N",
        type=_positive_int,
        default=None,
        help="instructions between snapshots (default: at least 100000000, more when "
        "snapshots are costly, keeping them under 2%% of the run time)",
    )
    rec.add_argument("--stdin", metavar="FILE", help="read the guest's stdin from FILE")
    rec.add_argument(
        "--force",
        action="store_true",
        help="replace an existing recording (without -o: ./PROGRAM.rr itself)",
    )
    _add_machine_options(rec)
    _add_program(rec)

    rep = sub.add_parser(
        "replay",
        help="replay a recording without touching the host",
        description="Replay a recording: the guest's output comes out again, with no "
        "stdin, files, clock or randomness read; the end state is checked.",
    )
    rep.add_argument("--quiet", action="store_true", help="do not print the guest's output")
    rep.add_argument(
        "--gdb",
        metavar="ADDR",
        help="serve the recording to gdb at ADDR (HOST:PORT, :PORT or stdio) instead "
        "of replaying it to the end; each connection starts at icount 0",
    )
    rep.add_argument(
        "--once", action="store_true", help="with --gdb: exit when the first client leaves"
    )
    _add_checkpoint_memory(rep)
    rep.add_argument("directory", metavar="DIR")

    dbg = sub.add_parser(
        "debug",
        help="run a program live under gdb, recording as it goes",
        description="Start PROGRAM stopped at its first instruction and serve it to gdb "
        "at ADDR; everything it observes is recorded (and saved with -o).",
    )
    dbg.add_argument(
        "--gdb",
        metavar="ADDR",
        default=":1234",
        help="where to serve gdb: HOST:PORT, :PORT or stdio (default :1234, like QEMU's -s)",
    )
    dbg.add_argument("--stdin", metavar="FILE", help="read the guest's stdin from FILE")
    dbg.add_argument("-o", "--output", metavar="DIR", help="save the recording to DIR")
    dbg.add_argument("--force", action="store_true", help="replace an existing recording")
    _add_checkpoint_memory(dbg)
    _add_machine_options(dbg)
    _add_program(dbg)

    info = sub.add_parser(
        "info", help="describe a recording", description="Describe a recording directory."
    )
    info.add_argument("directory", metavar="DIR")

    gdb = sub.add_parser(
        "gdb",
        help="open gdb on a recording (default: the most recent), connected and ready",
        description="Start gdb with the recording's program, rrdbg's gdb commands (when, "
        "seek, checkpoint, restart, last-write, info rrdbg) and a connection to the "
        "recording, as 'rr replay' does.  Arguments after -- go to gdb.",
        usage="rrdbg gdb [-h] [-g ICOUNT | --end] [--extension] [RECORDING] [-- GDB-ARG...]",
    )
    where = gdb.add_mutually_exclusive_group()
    where.add_argument(
        "-g",
        "--goto",
        metavar="ICOUNT",
        type=_non_negative_int,
        help="start at this instruction count instead of 0",
    )
    where.add_argument("--end", action="store_true", help="start at the end of the history")
    gdb.add_argument(
        "--extension",
        action="store_true",
        help="print the path of rrdbg's gdb commands (for 'source' in gdb) and exit",
    )
    _add_checkpoint_memory(gdb)
    gdb.add_argument("recording", metavar="RECORDING", nargs="?")

    ls = sub.add_parser(
        "ls",
        help="list recordings: program, date, length, how they end",
        description="List the recordings made with 'rrdbg record' and 'rrdbg debug -o' "
        "(newest last; * marks the one 'rrdbg gdb' opens by default), or those in DIRs.",
    )
    ls.add_argument("directories", metavar="DIR", nargs="*")
    return parser


def _add_machine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--machine",
        choices=("linux", "pc"),
        default="linux",
        help="linux: an i386 Linux program (default); pc: a Multiboot kernel on a "
        "bare-metal PC with COM1 on stdin/stdout and isa-debug-exit at port 0xf4",
    )
    parser.add_argument(
        "-m",
        dest="ram_mb",
        metavar="MB",
        type=_positive_int,
        default=None,
        help="--machine pc: RAM size (default 32)",
    )
    parser.add_argument(
        "--append", metavar="CMDLINE", default="", help="--machine pc: the kernel command line"
    )
    parser.add_argument(
        "--quantum",
        metavar="N",
        type=_positive_int,
        default=None,
        help="instructions a thread runs before the deterministic scheduler may "
        "switch to another (default 5000000; a recording keeps its own)",
    )
    parser.add_argument(
        "--cpu",
        metavar="MODEL",
        default=None,
        help="the emulated CPU model (default skylake-client, or qemu64 with a stock "
        "Unicorn; also haswell, sandybridge, westmere, nehalem; a recording keeps its own)",
    )
    parser.add_argument(
        "--sysroot",
        metavar="DIR",
        help="absolute paths the program reads (its dynamic loader and libraries "
        "first) resolve under DIR when they exist there, like qemu-user's -L: "
        "a Debian i386 tree extracted into DIR",
    )


def _cpu_model(ns: argparse.Namespace) -> str:
    """The --cpu model, checked (a one-line error for an unknown one)."""
    from rrdbg.machine.engine import CPU_MODEL_NAME, cpu_model_id

    model = str(ns.cpu or CPU_MODEL_NAME)
    cpu_model_id(model)
    return model


def _check_machine_options(ns: argparse.Namespace) -> None:
    if ns.machine == "pc":
        if ns.args:
            raise RrdbgError("--machine pc takes no guest arguments (use --append)")
    elif ns.append or ns.ram_mb is not None:
        raise RrdbgError("--append and -m are for --machine pc")
    if ns.quantum is not None and ns.machine == "pc":
        raise RrdbgError("--quantum is for Linux programs")
    if ns.sysroot is not None:
        if ns.machine == "pc":
            raise RrdbgError("--sysroot is for Linux programs")
        if not os.path.isdir(ns.sysroot):
            raise RrdbgError(f"--sysroot {ns.sysroot}: no such directory")
    _cpu_model(ns)


def _add_checkpoint_memory(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint-memory",
        metavar="MiB",
        type=_positive_int,
        default=256,
        help="memory for the in-memory checkpoints that make reverse execution fast, "
        "in MiB (default 256)",
    )


def _add_program(parser: argparse.ArgumentParser) -> None:
    # Everything after PROGRAM belongs to the guest, options included; a
    # missing PROGRAM is reported by main() with the same one-line error.
    parser.add_argument("program", metavar="PROGRAM", nargs="?")
    parser.add_argument("args", metavar="ARG", nargs=argparse.REMAINDER)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _cmd_run(ns: argparse.Namespace) -> int:
    from rrdbg.machine.host import LiveHost
    from rrdbg.machine.machine import LinuxMachine

    _check_machine_options(ns)
    if ns.machine == "pc":
        return _run_pc(ns)

    try:
        host = LiveHost(stdin_path=ns.stdin, sysroot=ns.sysroot)
    except OSError as exc:
        raise RrdbgError(f"cannot open --stdin file {ns.stdin}: {exc.strerror}") from None
    try:
        machine = LinuxMachine(
            ns.program,
            [ns.program, *ns.args],
            host,
            quantum=ns.quantum,
            cpu_model=_cpu_model(ns),
        )
        result = machine.run_to_end()
    finally:
        host.shutdown()
    _report_end(result)
    if ns.icount:
        print(f"rrdbg: {result.icount} instructions", file=sys.stderr)
    return result.exit.shell_status


def _run_pc(ns: argparse.Namespace) -> int:
    from rrdbg.machine.host import LiveHost
    from rrdbg.machine.pc import PcMachine

    try:
        host = LiveHost(stdin_path=ns.stdin)
    except OSError as exc:
        raise RrdbgError(f"cannot open --stdin file {ns.stdin}: {exc.strerror}") from None
    try:
        machine = PcMachine(
            ns.program, host, ram_mb=ns.ram_mb or 32, cmdline=ns.append, cpu_model=_cpu_model(ns)
        )
        result = machine.run_to_end()
    finally:
        host.shutdown()
    if ns.icount:
        print(f"rrdbg: {result.icount} instructions", file=sys.stderr)
    return _pc_status(result)


def _pc_status(result: PcResult) -> int:
    """As QEMU exits: isa-debug-exit's status, else 0 when the CPU halted or
    triple-faulted (QEMU with -no-reboot shuts down), with the reason said."""
    if result.status is not None:
        return result.status
    print(f"rrdbg: {result.reason}", file=sys.stderr)
    return 0 if result.reason.startswith(("hlt", "triple fault", "the recording stops")) else 1


def _report_end(result: RunResult) -> None:
    from rrdbg.machine.cpu import signal_name

    if not result.finished:
        from rrdbg.record.recording import STOPPED_REASON

        sys.stdout.flush()
        print(f"rrdbg: {STOPPED_REASON.format(icount=result.icount)}", file=sys.stderr)
    elif result.fault is not None:
        sys.stdout.flush()
        print(f"rrdbg: {result.fault.describe()}", file=sys.stderr)
    elif result.exit.signal is not None:
        print(f"rrdbg: guest killed by {signal_name(result.exit.signal)}", file=sys.stderr)


def _cmd_record(ns: argparse.Namespace) -> int:
    from rrdbg.record.recording import record

    if ns.stdin is not None and not os.path.isfile(ns.stdin):
        raise RrdbgError(f"cannot open --stdin file {ns.stdin}: no such file")
    if ns.program is None:
        raise RrdbgError("the following arguments are required: PROGRAM")
    from rrdbg.record import index

    directory = ns.output
    if directory is None:
        default = f"{os.path.basename(ns.program)}.rr"
        directory = default if ns.force else index.fresh_name(ns.program)
        if directory != default:
            print(f"rrdbg: {default} exists: recording to {directory}", file=sys.stderr)
    _check_machine_options(ns)
    if ns.machine == "pc":
        from rrdbg.record.recording import PcOptions, record_pc

        result, _snaps = record_pc(
            ns.program,
            directory,
            PcOptions(ns.ram_mb or 32, ns.append),
            image=ns.image,
            snapshot_name=ns.snapshot,
            interval=ns.snapshot_interval,
            stdin=ns.stdin,
            force=ns.force,
            cpu_model=_cpu_model(ns),
        )
        index.remember(directory)
        return _pc_status(result)
    stats = record(
        ns.program,
        ns.args,
        directory,
        image=ns.image,
        snapshot_name=ns.snapshot,
        interval=ns.snapshot_interval,
        stdin=ns.stdin,
        force=ns.force,
        sysroot=ns.sysroot,
        quantum=ns.quantum,
        cpu_model=_cpu_model(ns),
    )
    index.remember(directory)
    _report_end(stats.result)
    return stats.result.exit.shell_status


def _cmd_replay(ns: argparse.Namespace) -> int:
    from rrdbg.record.recording import open_recording

    if ns.gdb is not None:
        return _serve_replay(ns)
    if ns.once:
        raise RrdbgError("--once only makes sense with --gdb")
    from rrdbg.record.recording import PcOptions, open_log, replay_pc

    with open_log(ns.directory) as reader:
        is_pc = PcOptions.from_header(reader.header) is not None
    if is_pc:
        return _pc_status(replay_pc(ns.directory, quiet=ns.quiet))

    with open_recording(ns.directory, quiet=ns.quiet) as replay:
        result = replay.run_to_end()
    _report_end(result)
    return result.exit.shell_status


def _check_listen(address: Address) -> None:
    """Fail with one line now if the gdb address cannot be listened on,
    before anything (a recording directory, say) has been created."""
    import socket

    if address.stdio:
        return
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
        family, kind, proto, _name, sockaddr = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(sockaddr)
    except OSError as exc:
        raise RrdbgError(f"cannot serve gdb on {address}: {exc.strerror or exc}") from None


def _run_server(main: Callable[[], Awaitable[None]], address: Address) -> None:
    import warnings

    import trio

    # Ctrl-C landing inside trio's socket accept leaves a coroutine that was
    # never awaited; Python would print a warning about it on exit, which
    # is noise after "rrdbg: interrupted".
    warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
    try:
        trio.run(main)
    except OSError as exc:  # the address was taken between the check and now
        raise RrdbgError(f"cannot serve gdb on {address}: {exc.strerror or exc}") from None
    except BaseExceptionGroup as group:
        # trio wraps what escapes its tasks: Ctrl-C is a KeyboardInterrupt,
        # a server error one RrdbgError; anything else is a bug, shown whole.
        if group.split(KeyboardInterrupt)[1] is None:
            raise KeyboardInterrupt from None
        errors, rest = group.split(RrdbgError)
        if errors is not None and rest is None:
            first: BaseException = errors
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        raise


def _serve_replay(ns: argparse.Namespace) -> int:
    from rrdbg.record.recording import open_log
    from rrdbg.server.gdb import Address, serve
    from rrdbg.server.sessions import replay_sessions
    from rrdbg.timeline.timeline import Timeline

    address = Address.parse(ns.gdb)
    with open_log(ns.directory):  # a bad recording fails now, not at connect time
        pass
    _check_listen(address)
    out = 2 if address.stdio else 1
    # The first session's timeline is built now: whatever keeps the recording
    # from being debugged is one line here, not a reset connection later.
    ready: list[Timeline] = []

    def make() -> Timeline:
        if ready:
            return ready.pop()
        timeline = Timeline.replay(ns.directory, stdout_fd=out, stderr_fd=2, quiet=ns.quiet)
        timeline.budget = ns.checkpoint_memory << 20
        return timeline

    ready.append(make())

    _run_server(
        lambda: serve(replay_sessions(make), address, once=ns.once or address.stdio), address
    )
    return 0


def _cmd_debug(ns: argparse.Namespace) -> int:
    from rrdbg.machine.host import LiveHost
    from rrdbg.machine.machine import check_interpreter
    from rrdbg.record.files import KeptFiles
    from rrdbg.record.recording import PcOptions, new_recording, write_block_cache
    from rrdbg.server.gdb import Address, serve
    from rrdbg.server.sessions import live_sessions
    from rrdbg.snapshot.vmstate import SnapshotStore
    from rrdbg.timeline.timeline import Timeline

    _check_machine_options(ns)
    pc = PcOptions(ns.ram_mb or 32, ns.append) if ns.machine == "pc" else None
    address = Address.parse(ns.gdb)
    _check_listen(address)
    stdin = ns.stdin
    if stdin is None and address.stdio:
        stdin = os.devnull  # stdin is gdb's pipe: never let the guest read it
    if stdin is not None and not os.path.isfile(stdin) and stdin != os.devnull:
        raise RrdbgError(f"cannot open --stdin file {stdin}: no such file")
    out = 2 if address.stdio else 1
    try:
        host = LiveHost(stdin_path=stdin, stdout_fd=out, stderr_fd=2, sysroot=ns.sysroot)
    except OSError as exc:
        raise RrdbgError(f"cannot open --stdin file {stdin}: {exc.strerror}") from None
    rec = None
    if ns.output is not None:
        if pc is None:
            check_interpreter(ns.program, host)
        rec = new_recording(
            ns.program,
            ns.args,
            ns.output,
            force=ns.force,
            pc=pc,
            quantum=ns.quantum,
            cpu_model=_cpu_model(ns),
        )
    timeline = Timeline.live_run(
        ns.program,
        ns.args,
        host,
        writer=rec.writer if rec is not None else None,
        stdout_fd=out,
        stderr_fd=2,
        pc=pc,
        files=KeptFiles(rec.directory) if rec is not None else None,
        quantum=ns.quantum,
        cpu_model=_cpu_model(ns),
    )
    timeline.budget = ns.checkpoint_memory << 20
    if rec is not None:
        SnapshotStore(rec.qcow).save(timeline.machine, "init", rec.writer.position.to_bytes())
        timeline.attach_image(rec.qcow)

    ended: list[bool] = []

    def on_end() -> None:
        if ended:
            return
        ended.append(True)
        timeline.close()
        if rec is not None:
            write_block_cache(
                rec.directory / "blocks.cache", rec.header.program_sha256, timeline.machine
            )
            rec.qcow.close()
            print(f"rrdbg: recording saved in {rec.directory}", file=sys.stderr)
            from rrdbg.record import index

            index.remember(rec.directory)

    try:
        _run_server(lambda: serve(live_sessions(timeline, on_end), address), address)
    finally:
        on_end()
        host.shutdown()
    status = timeline.machine.exit
    return status.shell_status if status is not None else 0


def _cmd_info(ns: argparse.Namespace) -> int:
    from rrdbg.record.files import FILES_NAME
    from rrdbg.record.recording import describe

    d = describe(ns.directory)
    h = d.header
    args = " ".join(repr(a.decode(errors="replace")) for a in h.argv[1:])
    print(f"recording:   {ns.directory}")
    digest = h.program_sha256.hex()[:16]
    print(f"program:     {h.program_path} ({h.program_size} bytes, sha256 {digest}...)")
    from rrdbg.record.files import kept_file
    from rrdbg.record.recording import PcOptions

    if kept_file(Path(ns.directory), h.program_sha256).exists():
        print(f"             kept in the recording as {FILES_NAME}/{h.program_sha256.hex()}")
    else:
        print("             not kept in the recording (made by an older rrdbg): needs that path")

    pc = PcOptions.from_header(h)
    if pc is None:
        print(f"arguments:   {args or '(none)'}")
    else:
        print(f"machine:     pc, {pc.ram_mb} MB of RAM, command line {pc.cmdline!r}")
    print(f"recorded by: rrdbg {h.rrdbg_version}, Unicorn {h.unicorn_version}", end="")
    print(f", CPU model {h.cpu_model}")
    if "quantum" in h.extra:
        cpus = h.extra.get("cpus", "1")
        print(f"threads:     quantum {h.extra['quantum']} instructions, {cpus} CPUs reported")
    if d.end is not None:
        status = (
            f"exit code {d.end.exit_code}"
            if d.end.exit_signal is None
            else f"signal {d.end.exit_signal}"
        )
        if d.end.finished:
            print(f"instructions: {d.end.icount} (program ended: {status})")
        else:
            print(
                f"instructions: {d.end.icount} (the program had not finished: "
                "a live session saved there)"
            )
    else:
        print(f"instructions: at least {d.last_icount} (the log has no end record)")
    print(
        f"log:         {d.log_bytes} bytes, "
        + (
            "ends cleanly"
            if d.clean_end
            else f"INCOMPLETE: readable up to byte {d.truncated_at} (the recorder was stopped); "
            "replay stops there"
        )
    )
    print("events:      " + ", ".join(f"{k} {v}" for k, v in sorted(d.events.items())))
    print(f"image:       {d.image} ({d.image_bytes} bytes)")
    print(f"snapshots:   {len(d.snapshots)}")
    for snap in d.snapshots:
        icount = "-" if snap.icount is None else str(snap.icount)
        size = snap.vm_state_size
        print(f"  {snap.id:>4}  {snap.name:<24} icount {icount:>12}  vmstate {size} bytes")
    return 0


def _cmd_gdb(ns: argparse.Namespace) -> int:
    import shlex
    import shutil

    from rrdbg.record import index
    from rrdbg.record.recording import describe, open_log, program_file

    extension = str(Path(__file__).with_name("gdb_extension.py"))
    if ns.extension:
        print(extension)
        return 0
    gdb_args: list[str] = ns.gdb_args
    recording = Path(ns.recording) if ns.recording is not None else index.latest()
    with open_log(str(recording)) as reader:  # one-line errors for bad recordings
        header = reader.header
    program = program_file(recording, header)
    gdb = shutil.which("gdb")
    if gdb is None:
        raise RrdbgError("gdb is not installed (Debian: apt-get install gdb)")
    server = [sys.executable, "-m", "rrdbg", "replay", "--gdb", "stdio"]
    server += ["--checkpoint-memory", str(ns.checkpoint_memory), str(recording)]
    argv = [gdb, "-q", "-ex", f"source {extension}"]
    from rrdbg.machine.loader import Lines

    root = Lines.read_image(Path(program).read_bytes()).source_root(header.program_path)
    if root is not None:
        # The program names its sources relative to where it was built.
        argv += ["-ex", f"directory {root}"]
    argv += ["-ex", "target remote | " + shlex.join(server)]
    if ns.goto is not None:
        argv += ["-ex", f"seek {ns.goto}"]
    elif ns.end:
        end = describe(str(recording))
        last = end.last_icount if end.end is None else end.end.icount
        if end.end is not None and end.end.finished and end.end.exit_code is not None:
            last -= 1  # history ends just before the exit
        argv += ["-ex", f"seek {last}"]
    argv += [*gdb_args, program]
    sys.stdout.flush()
    os.execv(gdb, argv)
    raise AssertionError("unreachable")


def _cmd_ls(ns: argparse.Namespace) -> int:
    import datetime

    from rrdbg.machine.cpu import signal_name
    from rrdbg.record import index
    from rrdbg.record.recording import describe

    if ns.directories:
        paths: list[Path] = []
        for d in map(Path, ns.directories):
            if not d.is_dir():
                raise RrdbgError(f"{d}: no such directory")
            paths += (
                [d]
                if index.is_recording(d)
                else sorted(p for p in d.iterdir() if index.is_recording(p))
            )
        latest = None
    else:
        paths = index.known()
        try:
            latest = index.latest()
        except RrdbgError:
            latest = None
    if not paths:
        print("no recordings" if ns.directories else "no recordings yet (rrdbg record PROGRAM)")
        return 0
    rows = [("", "RECORDING", "PROGRAM", "RECORDED", "INSTRUCTIONS", "END")]
    for path in paths:
        try:
            desc = describe(str(path))
        except RrdbgError as exc:
            rows.append(("", str(path), "?", "?", "?", f"unreadable: {exc}"))
            continue
        created = datetime.datetime.fromtimestamp(desc.header.created_ns / 1e9)
        when = created.strftime("%Y-%m-%d %H:%M")
        if desc.end is None:
            length, end = f">={desc.last_icount}", "incomplete (recorder stopped)"
        else:
            length = str(desc.end.icount)
            if not desc.end.finished:
                end = "not finished (live session saved)"
            elif desc.end.exit_signal is not None:
                end = f"killed by {signal_name(desc.end.exit_signal)}"
            elif desc.end.exit_code is not None:
                end = f"exit {desc.end.exit_code}"
            else:
                end = "halted"
        mark = "*" if latest is not None and path.resolve() == latest.resolve() else ""
        program = os.path.basename(desc.header.program_path)
        rows.append((mark, str(path), program, when, length, end))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) if i != 4 else row[i].rjust(widths[i]) for i in range(5)]
        print(" ".join(cells) + "  " + row[5])
    return 0


_PARSER: argparse.ArgumentParser | None = None


def command_parser() -> argparse.ArgumentParser:
    """The command line's parser, built once (a fork server builds it
    before it forks)."""
    global _PARSER
    if _PARSER is None:
        _PARSER = build_parser()
    return _PARSER


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    gdb_args: list[str] = []
    if args[:1] == ["gdb"] and "--" in args:
        # Everything after -- is gdb's (argparse would take "-ex" as ours).
        cut = args.index("--")
        args, gdb_args = args[:cut], args[cut + 1 :]
    ns = parser.parse_args(args)
    ns.gdb_args = gdb_args
    if ns.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if ns.command in ("run", "record", "debug") and ns.program is None:
        parser.error("the following arguments are required: PROGRAM")
    try:
        if ns.command == "run":
            return _cmd_run(ns)
        if ns.command == "record":
            return _cmd_record(ns)
        if ns.command == "replay":
            return _cmd_replay(ns)
        if ns.command == "info":
            return _cmd_info(ns)
        if ns.command == "debug":
            return _cmd_debug(ns)
        if ns.command == "gdb":
            return _cmd_gdb(ns)
        if ns.command == "ls":
            return _cmd_ls(ns)
    except RrdbgError as exc:
        print(f"rrdbg: {exc}", file=sys.stderr)
        # A replay that ran out of recording is not bad input: say so apart.
        return EXIT_INCOMPLETE if type(exc).__name__ == "IncompleteReplay" else EXIT_USAGE
    except KeyboardInterrupt:
        print("rrdbg: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `rrdbg info DIR | head -1`: the reader left.  Quietly, as a program
        # killed by SIGPIPE would; stdout goes nowhere so the exit's flush
        # does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13
    raise AssertionError(ns.command)


def entry() -> None:
    """The ``rrdbg`` program: ``main``, then an exit that skips the
    interpreter's teardown (freeing every module and the emulator's
    libraries costs tens of milliseconds, a large part of a short run).
    Every command has finished its files by the time ``main`` returns."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        # (None: started with that descriptor closed; errors: a reader that
        # left, or a stream already closed.)
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    os._exit(code)
