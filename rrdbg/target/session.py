"""The debugger session: typed requests in, replies out, via a ``Target``.

Role: rrdbg's equivalent of rr's ``GdbServer::dispatch_debugger_request``,
without any I/O.  ``handle(request)`` returns either the replies to send, or
a ``Deferred`` for requests that run the guest (resume, step, monitor
commands that move in time): the server calls ``Deferred.run(interrupted)``
off its event loop and sends what it returns.  Handlers *return* replies; they
never write, so a request can never be answered twice.

Threads: ids are the debuggee's (Linux's tid, ``pPID.TID`` with the
multiprocess extensions).  Stop replies name the thread that stopped; ``Hg``
selects whose registers are read, ``Hc`` or a vCont step action which thread
a step steps.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from html import escape as xml_escape
from typing import assert_never

from rrdbg.errors import RrdbgError, TargetError
from rrdbg.rsp import (
    Capability,
    ConsoleOutput,
    Detach,
    Empty,
    ErrorReply,
    Execd,
    Exited,
    FileClose,
    FileFstat,
    FileOpen,
    FileOperation,
    FilePread,
    FileResult,
    FileSetFs,
    Forked,
    HexData,
    HwBreak,
    InsertPoint,
    Interrupt,
    Kill,
    MalformedPacket,
    MonitorCommand,
    MustReplyEmpty,
    Ok,
    PassSignals,
    PointKind,
    QueryAttached,
    QueryCurrentThread,
    QueryHaltReason,
    QueryHostInfo,
    QueryOffsets,
    QueryProcessInfo,
    QuerySupported,
    QuerySymbol,
    QueryThreadInfo,
    QueryTraceStatus,
    RawReply,
    ReadMemory,
    ReadRegister,
    ReadRegisters,
    ReadXfer,
    RemovePoint,
    ReplayLog,
    Reply,
    Request,
    Resume,
    ResumeAction,
    SetThread,
    StartNoAckMode,
    StopReply,
    SwBreak,
    Terminated,
    ThreadAlive,
    UnknownPacket,
    VCont,
    VContQuery,
    VForkDone,
    VKill,
    Watch,
    WriteMemory,
    WriteRegister,
    WriteRegisters,
    XferChunk,
    supported_features,
)
from rrdbg.rsp import Direction as RspDirection
from rrdbg.rsp import (
    WatchKind as RspWatchKind,
)
from rrdbg.rsp.signals import from_gdb, to_gdb
from rrdbg.target import i386
from rrdbg.target.interface import (
    Direction,
    Interrupted,
    Report,
    StopEvent,
    StopKind,
    Target,
    WatchKind,
)

#: lldb's qHostInfo/qProcessInfo fields: the triple (hex-encoded), pointer
#: size and byte order.
_HOST_INFO = b"triple:%s;ptrsize:4;endian:little;ostype:linux;" % (
    b"i386-pc-linux-gnu".hex().encode()
)
#: Registers sent with every stop (as gdbserver does for i386) so that gdb can
#: show where the guest stopped without a ``g`` round trip.
EXPEDITED = tuple(i386.REGISTER_BY_NAME[n] for n in ("ebp", "esp", "eip"))
#: gdb errno values for ``Exx`` replies (any non-zero value reads as failure).
EINVAL = 22
EIO = 5
EFAULT = 14

_WATCH_KINDS = {
    PointKind.WRITE: WatchKind.WRITE,
    PointKind.READ: WatchKind.READ,
    PointKind.ACCESS: WatchKind.ACCESS,
}
_RSP_WATCH = {
    WatchKind.WRITE: RspWatchKind.WRITE,
    WatchKind.READ: RspWatchKind.READ,
    WatchKind.ACCESS: RspWatchKind.ACCESS,
}


@dataclass(frozen=True, slots=True)
class Deferred:
    """Work that runs the guest: call ``run`` off the event loop."""

    run: Callable[[Interrupted, Report], list[Reply]]
    #: Bounded work (a single step that cannot wait on the host): it takes
    #: about 50 us, less than handing it to a worker thread would, so the
    #: server may run it in place.
    quick: bool = False


Response = list[Reply] | Deferred


class Session:
    """One client's conversation with one target."""

    def __init__(
        self,
        target: Target,
        *,
        capabilities: frozenset[Capability],
        packet_size: int,
        attached: bool,
    ) -> None:
        self.target = target
        # Advertise the auxiliary vector only if there is one: gdb rejects a
        # feature it was promised and then told is unsupported.
        missing = set()
        if target.auxv() is None:
            missing.add(Capability.AUXV)
        if target.exec_file() is None:
            missing.add(Capability.EXEC_FILE)
        if target.libraries("") is None:
            missing.add(Capability.LIBRARIES)
        self.capabilities = capabilities - missing
        #: Files gdb opened with vFile:open: descriptor -> contents.
        self._files: dict[int, bytes] = {}
        self.packet_size = packet_size
        #: gdb's qAttached answer: True = quitting gdb detaches (replays),
        #: False = rrdbg started the process and quitting kills it (live).
        self.attached = attached
        self.client_features: frozenset[str] = frozenset()
        #: Set once the client has said goodbye (k, D, vKill): close after replying.
        self.finished = False
        #: How it said goodbye: "kill", "detach" or "exit" (``monitor exit``:
        #: the server ends too).
        self.goodbye: str | None = None
        #: The thread ``Hc`` named for the legacy resume packets (0: any).
        self._resume_thread = 0
        #: The processes the next c/s/bc/bs resumes (Hc), None: all.
        self._resume_scope: frozenset[int] | None = None
        #: Whether the note on processes gdb does not resume was given.
        self._scope_noted = False

    # -- dispatch ------------------------------------------------------------
    def handle(self, request: Request | Interrupt) -> Response:
        try:
            response = self._handle(request)
        except TargetError as exc:
            return [ErrorReply(exc.errno or 1)]
        except RrdbgError:
            return [ErrorReply(EINVAL)]
        except Exception as exc:  # a bug must not end the server: see _internal
            return _internal(request, exc)
        if isinstance(response, Deferred):
            return dataclasses.replace(response, run=_guarded(request, response.run))
        return response

    def _handle(self, request: Request | Interrupt) -> Response:
        t = self.target
        match request:
            case Interrupt():
                return []  # only meaningful while running; the server handles that
            case QuerySupported(features=features):
                self.client_features = frozenset(features)
                # Forks and execs stop only a client that asked for them
                # (and uses pPID.TID ids to name the new process).
                events = {"fork-events+", "vfork-events+", "exec-events+"}
                t.set_process_events(
                    Capability.PROCESSES in self.capabilities
                    and self.multiprocess
                    and bool(events & self.client_features)
                )
                return [RawReply(supported_features(self.capabilities, self.packet_size))]
            case MustReplyEmpty() | UnknownPacket() | FileOperation() | QueryOffsets():
                # Other vFile operations (pwrite, unlink, readlink, ...) are
                # not offered: gdb reads the program's file, nothing else.
                return [Empty()]
            case FileSetFs() | FileOpen() | FileClose() | FilePread() | FileFstat():
                if Capability.EXEC_FILE not in self.capabilities:
                    return [Empty()]  # no file to serve: no host I/O at all
                return [self._file(request)]
            case MalformedPacket():
                return [ErrorReply(EINVAL)]
            case SetThread(operation=operation, thread=thread):
                tid = self._thread(thread)
                other = self._other_process(thread)
                if tid is None and other is not None:
                    # gdb turns to another process (follow-fork-mode child,
                    # another inferior; Hc names the one a c/s/bc/bs resumes).
                    t.follow_process(other)
                    tid = self._thread(thread)
                if tid is None:
                    return [ErrorReply(EINVAL)]
                if operation == "g":
                    t.select_thread(tid or t.current_thread)
                else:
                    self._resume_thread = tid
                    # Which processes a c/s/bc/bs resumes: the one named, or all.
                    self._resume_scope = self._scope([thread])
                return [Ok()]
            case StartNoAckMode() | QuerySymbol():
                return [Ok()]
            case QueryTraceStatus():
                return [RawReply(b"T0;tnotrun:0")]
            case ReadXfer(object=obj, annex=annex, offset=offset, length=length):
                if (obj, annex) == ("features", "target.xml"):
                    document = i386.TARGET_XML
                elif (obj, annex) == ("threads", ""):
                    # One packet instead of qfThreadInfo + qsThreadInfo after each stop.
                    document = self._threads_xml()
                elif (obj, annex) == ("auxv", "") and (auxv := t.auxv()) is not None:
                    document = auxv
                elif obj == "libraries-svr4" and Capability.LIBRARIES in self.capabilities:
                    libraries = t.libraries(annex)
                    if libraries is None:
                        return [ErrorReply(EINVAL)]
                    document = libraries
                elif (obj, annex) == ("siginfo", "") and Capability.SIGINFO in self.capabilities:
                    info = t.siginfo()
                    if info is None:
                        return [ErrorReply(EINVAL)]  # not stopped for a signal
                    document = info
                elif obj == "exec-file" and (path := t.exec_file()) is not None:
                    # The annex is a process id; there is only ours.
                    document = os.fsencode(path)
                else:
                    known = ("features", "threads")
                    return [ErrorReply(EINVAL)] if obj in known else [Empty()]
                data = document[offset : offset + min(length, self.packet_size - 8)]
                return [XferChunk(data, last=offset + len(data) >= len(document))]
            case QueryHaltReason():
                return [self._stop_reply(t.last_stop)]
            case QueryAttached():
                return [RawReply(b"1" if self.attached else b"0")]
            case QueryCurrentThread():
                return [RawReply(b"QC" + self._thread_id(t.current_thread))]
            case QueryHostInfo():
                return [RawReply(_HOST_INFO)]
            case QueryProcessInfo():
                return [RawReply(b"pid:%x;" % t.process_id + _HOST_INFO)]
            case QueryThreadInfo(first=first):
                if not first:
                    return [RawReply(b"l")]
                ids = (self._thread_id(tid, pid) for pid, tid, _ in self._all_threads())
                return [RawReply(b"m" + b",".join(ids))]
            case ThreadAlive(thread=thread):
                tid = self._thread(thread)
                other = self._other_process(thread)
                if tid is None and other is not None:
                    # A thread of another process gdb holds (detach-on-fork off).
                    _, _, text = thread.partition(".")
                    try:
                        tid = int(text, 16)
                    except ValueError:
                        return [ErrorReply(EINVAL)]
                    alive = any(i.tid == tid for i in t.threads(other))
                else:
                    alive = tid == 0 or any(i.tid == tid for i in t.threads())
                return [Ok()] if alive else [ErrorReply(EINVAL)]
            case ReadRegisters():
                return [HexData(i386.encode_registers(t.read_registers()))]
            case WriteRegisters(data=data):
                values = i386.decode_registers(data)
                current = t.read_registers()
                for name, value in values.items():
                    if current.get(name) != value:
                        t.write_register(name, value)
                return [Ok()]
            case ReadRegister(number=number):
                spec = _register(number)
                return [HexData(t.read_registers()[spec.name])]
            case WriteRegister(number=number, data=data):
                spec = _register(number)
                if len(data) != spec.size:
                    return [ErrorReply(EINVAL)]
                t.write_register(spec.name, data)
                return [Ok()]
            case ReadMemory(address=address, length=length):
                # A shorter answer is allowed; gdb asks again for the rest.
                length = min(length, (self.packet_size - 8) // 2)
                return [HexData(t.read_memory(address, length))]
            case WriteMemory(address=address, data=data):
                t.write_memory(address, data)
                return [Ok()]
            case InsertPoint(kind=kind, address=address, size=size):
                self._point(kind, address, size, insert=True)
                return [Ok()]
            case RemovePoint(kind=kind, address=address, size=size):
                self._point(kind, address, size, insert=False)
                return [Ok()]
            case VContQuery():
                return [RawReply(b"vCont;c;C;s;S")]
            case PassSignals(signals=signals):
                linux = (from_gdb(s) for s in signals)
                t.set_pass_signals(frozenset(s for s in linux if s is not None))
                return [Ok()]
            case Resume(action=action, direction=direction, address=address, signal=signal):
                if direction is RspDirection.FORWARD:
                    t.deliver_on_resume(None if signal is None else from_gdb(signal))
                if address is not None:
                    if address > 0xFFFFFFFF:
                        raise TargetError(f"resume address {address:#x} is not 32-bit", EINVAL)
                    t.write_register("eip", address.to_bytes(4, "little"))
                step = action is ResumeAction.STEP
                back = direction is RspDirection.BACKWARD
                if step and self._resume_thread:
                    t.select_thread(self._resume_thread)  # Hc: the thread to step
                note = self._set_scope(self._resume_scope)
                return self._resume(step, Direction.BACKWARD if back else Direction.FORWARD, note)
            case VCont(actions=actions):
                # An action for another process gdb holds (its inferior is
                # the current one): the debugger turns to that process.
                named = actions[0].thread if actions else None
                if named is not None and (other := self._other_process(named)) is not None:
                    t.follow_process(other)
                # A step action for a thread steps it (the others run as the
                # scheduler says); else the first action that applies.
                chosen = next(
                    (
                        a
                        for a in actions
                        if a.kind is ResumeAction.STEP
                        and (a.thread is None or self._thread(a.thread) is not None)
                    ),
                    None,
                )
                for act in actions if chosen is None else [chosen]:
                    tid = None if act.thread is None else self._thread(act.thread)
                    if act.thread is not None and tid is None:
                        continue
                    step = act.kind is ResumeAction.STEP
                    if step and tid:
                        t.select_thread(tid)
                    # gdb steps one thread and leaves the rest stopped
                    # ("vCont;s:1", no default action) only to step over
                    # a breakpoint it has lifted (a user's stepi is
                    # "vCont;s:1;c").
                    over = step and len(actions) == 1 and act.thread is not None
                    sig = act.signal
                    t.deliver_on_resume(None if sig is None else from_gdb(sig))
                    note = self._set_scope(self._scope([a.thread for a in actions]))
                    return self._resume(step, Direction.FORWARD, note, step_over=over)
                return [ErrorReply(EINVAL)]
            case MonitorCommand(command=command) if command.split() == [b"exit"]:
                # gdbserver's "monitor exit": this client is done and the
                # server ends (a live program is killed, as by "kill").
                self.finished = True
                self.goodbye = "exit"
                return [Ok()]
            case MonitorCommand(command=command):
                return self._monitor(command)
            case Kill() | VKill():
                t.kill()
                self.finished = True
                self.goodbye = "kill"
                return [Ok()] if isinstance(request, VKill) else []
            case Detach(pid=pid) if pid is not None and t.has_processes and t.detach_process(pid):
                return [Ok()]  # another process of the machine stays followed
            case Detach():
                t.detach()
                self.finished = True
                self.goodbye = "detach"
                return [Ok()]
            case _:
                assert_never(request)

    # -- helpers -----------------------------------------------------------------
    def _point(self, kind: PointKind, address: int, size: int, *, insert: bool) -> None:
        t = self.target
        if kind in (PointKind.SOFTWARE, PointKind.HARDWARE):
            hardware = kind is PointKind.HARDWARE
            if insert:
                t.insert_breakpoint(address, hardware=hardware)
            else:
                t.remove_breakpoint(address, hardware=hardware)
            return
        watch = _WATCH_KINDS[kind]
        if insert:
            t.insert_watchpoint(watch, address, size)
        else:
            t.remove_watchpoint(watch, address, size)

    def _scope(self, threads: list[str | None]) -> frozenset[int] | None:
        """The processes resume actions for ``threads`` cover (None: all)."""
        pids: set[int] = set()
        for text in threads:
            if text is None or not text.startswith("p"):
                return None  # no thread, or no process named: every one
            pid = text[1:].partition(".")[0]
            if pid in ("-1", "0", ""):
                return None
            try:
                pids.add(int(pid, 16))
            except ValueError:
                return None
        return frozenset(pids)

    def _set_scope(self, scope: frozenset[int] | None) -> bytes:
        """Tell the target which processes gdb resumes; the first time gdb
        leaves one it holds out, a line on why (gdb's schedule-multiple)."""
        self.target.set_resumed(scope)
        held = set(self.target.debugged_processes()[1:]) if self.multiprocess else set()
        if scope is None or held <= scope or self._scope_noted or not self.target.frozen(held):
            return b""
        self._scope_noted = True
        left = ", ".join(str(pid) for pid in sorted(self.target.frozen(held - scope)))
        return (
            f"rrdbg: process {left} runs on as recorded while you resume only this one "
            "(a recording has one history); its stops are not shown until gdb resumes "
            "it: 'set schedule-multiple on' resumes every process\n"
        ).encode()

    def _resume(
        self, step: bool, direction: Direction, note: bytes = b"", *, step_over: bool = False
    ) -> Deferred:
        def run(interrupted: Interrupted, report: Report) -> list[Reply]:
            try:
                stop = self.target.resume(
                    step=step, direction=direction, interrupted=interrupted, report=report
                )
            except RrdbgError as exc:
                # gdb prints the console line, then "Remote failure reply".
                return [ConsoleOutput(f"rrdbg: {exc}\n".encode()), ErrorReply(_errno(exc))]
            if step_over and stop.kind is StopKind.HISTORY_END:
                # gdb 13 does not finish a step-over that ends in "no more
                # history" and then hangs on the next resume; report the step
                # as done (nothing moved) and let the resume that follows
                # meet the end of history instead.
                stop = StopEvent(StopKind.STEP, stop.icount, note=stop.note)
            out: list[Reply] = []
            if note:
                out.append(ConsoleOutput(note))
            if stop.note:
                out.append(ConsoleOutput((stop.note + "\n").encode()))
            out.append(self._stop_reply(stop))
            return out

        # Only a forward step is bounded: a backward one may replay far.
        quick = step and direction is Direction.FORWARD and self.target.step_is_bounded()
        return Deferred(run, quick=quick)

    def _monitor(self, command: bytes) -> Deferred:
        def run(interrupted: Interrupted, _report: Report) -> list[Reply]:
            try:
                text, _stop = self.target.monitor(command.decode("utf-8", "replace"), interrupted)
            except RrdbgError as exc:
                # Console text, then OK: an error reply would make gdb add
                # "Protocol error with Rcmd", which it is not.  The gdb
                # extension (rrdbg/gdb_extension.py) turns the "rrdbg: error:"
                # line into a gdb error.
                return [ConsoleOutput(f"rrdbg: error: {exc}\n".encode()), Ok()]
            if not text:
                return [Ok()]
            return [HexData(text.encode())]

        return Deferred(run)

    def _expedited(self) -> tuple[tuple[int, bytes], ...]:
        regs = self.target.read_registers()
        return tuple((spec.number, regs[spec.name]) for spec in EXPEDITED)

    def _file(self, request: FileSetFs | FileOpen | FileClose | FilePread | FileFstat) -> Reply:
        """gdb's host I/O, limited to the files ``target_file`` gives (the
        program): read-only, and every other path is "no such file"."""
        match request:
            case FileSetFs():
                return FileResult(0)
            case FileOpen(path=path, flags=flags):
                if flags & _FILEIO_ACCMODE != 0:
                    return FileResult(-1, _FILEIO_EACCES)
                data = self.target.target_file(os.fsdecode(path))
                if data is None:
                    return FileResult(-1, _FILEIO_ENOENT)
                fd = next(i for i in range(len(self._files) + 1) if i not in self._files)
                self._files[fd] = data
                return FileResult(fd)
            case FileClose(fd=fd):
                if self._files.pop(fd, None) is None:
                    return FileResult(-1, _FILEIO_EBADF)
                return FileResult(0)
            case FilePread(fd=fd, count=count, offset=offset):
                data = self._files.get(fd)
                if data is None:
                    return FileResult(-1, _FILEIO_EBADF)
                # Escaping may double the data: keep the packet within its size.
                count = min(count, (self.packet_size - 32) // 2)
                chunk = data[offset : offset + count]
                return FileResult(len(chunk), attachment=chunk)
            case FileFstat(fd=fd):
                data = self._files.get(fd)
                if data is None:
                    return FileResult(-1, _FILEIO_EBADF)
                stat = _fileio_stat(len(data))
                return FileResult(len(stat), attachment=stat)
            case _:
                assert_never(request)

    @property
    def multiprocess(self) -> bool:
        """Whether gdb agreed to the multiprocess extensions (``pPID.TID`` ids)."""
        return "multiprocess+" in self.client_features

    def _thread_id(self, tid: int, pid: int | None = None) -> bytes:
        if pid is None:
            pid = self.target.process_id
        return b"p%x.%x" % (pid, tid) if self.multiprocess else b"%x" % tid

    def _all_threads(self) -> list[tuple[int, int, str]]:
        """(pid, tid, name) of every thread of every process gdb holds (the
        followed process's only, without the multiprocess extensions)."""
        t = self.target
        pids = t.debugged_processes() if self.multiprocess else [t.process_id]
        return [(pid, i.tid, i.name) for pid in pids for i in t.threads(pid)]

    def _thread(self, text: str) -> int | None:
        """A thread id of gdb's as a tid: 0 for any or all (0, -1, pPID.-1,
        pPID.0, p-1...), None for one that is not ours."""
        pid, _, tid = text[1:].partition(".") if text.startswith("p") else ("", "", text)
        try:
            if pid not in ("", "-1") and int(pid, 16) not in (0, self.target.process_id):
                return None
            if tid in ("", "-1"):
                return 0
            # Hex, with any number of leading zeros (lldb sends "s:0001").
            value = int(tid, 16)
        except ValueError:
            return None
        if value == 0:
            return 0
        return value if any(i.tid == value for i in self.target.threads()) else None

    def _other_process(self, text: str) -> int | None:
        """The pid of ``pPID.TID`` when it names another live process."""
        if not text.startswith("p"):
            return None
        try:
            pid = int(text[1:].partition(".")[0], 16)
        except ValueError:
            return None
        t = self.target
        if pid == t.process_id or pid not in t.process_ids():
            return None
        return pid

    def _threads_xml(self) -> bytes:
        rows = b"".join(
            b'<thread id="%s" core="0" name="%s"/>'
            % (self._thread_id(tid, pid), xml_escape(name).encode())
            for pid, tid, name in self._all_threads()
        )
        return b'<?xml version="1.0"?>\n<threads>%s</threads>\n' % rows

    def _stop_reply(self, stop: StopEvent) -> Reply:
        reply = self._plain_stop_reply(stop)
        if not self.multiprocess:
            return reply
        if isinstance(reply, Exited | Terminated) and stop.process is not None:
            return dataclasses.replace(reply, process=stop.process)  # another held process
        if isinstance(reply, StopReply | Exited | Terminated):
            return dataclasses.replace(reply, process=self.target.process_id)
        return reply

    def _plain_stop_reply(self, stop: StopEvent) -> Reply:
        # The protocol speaks gdb's signal numbers, the target Linux's.
        stop = dataclasses.replace(stop, signal=to_gdb(stop.signal))
        tid = stop.thread or self.target.current_thread
        match stop.kind:
            case StopKind.EXITED:
                if stop.exit_code is not None:
                    return Exited(stop.exit_code & 0xFF)
                return Terminated(stop.signal)
            case StopKind.BREAKPOINT:
                if stop.hardware and "hwbreak+" in self.client_features:
                    return StopReply(stop.signal, tid, HwBreak(), self._expedited())
                if not stop.hardware and "swbreak+" in self.client_features:
                    return StopReply(stop.signal, tid, SwBreak(), self._expedited())
                return StopReply(stop.signal, tid, None, self._expedited())
            case StopKind.WATCHPOINT:
                assert stop.watch is not None
                kind, address = stop.watch
                watch = Watch(_RSP_WATCH[kind], address)
                return StopReply(stop.signal, tid, watch, self._expedited())
            case StopKind.HISTORY_END:
                return StopReply(stop.signal, tid, ReplayLog(begin=False), self._expedited())
            case StopKind.HISTORY_BEGIN:
                return StopReply(stop.signal, tid, ReplayLog(begin=True), self._expedited())
            case StopKind.STEP | StopKind.INTERRUPT | StopKind.POSITION | StopKind.SIGNAL:
                return StopReply(stop.signal, tid, None, self._expedited())
            case StopKind.FORK | StopKind.VFORK:
                assert stop.child is not None
                forked = Forked(stop.child, stop.child, vfork=stop.kind is StopKind.VFORK)
                return StopReply(stop.signal, tid, forked, self._expedited())
            case StopKind.VFORK_DONE:
                return StopReply(stop.signal, tid, VForkDone(), self._expedited())
            case StopKind.EXEC:
                execd = Execd(os.fsencode(stop.path))
                return StopReply(stop.signal, tid, execd, self._expedited())
            case _:
                assert_never(stop.kind)


def _internal(request: object, exc: Exception) -> list[Reply]:
    """The answer to a request that failed with an unexpected exception (a
    bug): an error reply with one line for gdb, and the same line on the
    server's stderr.  No client request may end the server."""
    line = f"rrdbg: internal error in {type(request).__name__}: {type(exc).__name__}: {exc}"
    print(line, file=sys.stderr, flush=True)
    return [ConsoleOutput(f"{line}\n".encode()), ErrorReply(EIO)]


def _guarded(
    request: object, run: Callable[[Interrupted, Report], list[Reply]]
) -> Callable[[Interrupted, Report], list[Reply]]:
    def guarded(interrupted: Interrupted, report: Report) -> list[Reply]:
        try:
            return run(interrupted, report)
        except Exception as exc:
            return _internal(request, exc)

    return guarded


def _errno(exc: RrdbgError) -> int:
    return (exc.errno or EINVAL) if isinstance(exc, TargetError) else EINVAL


def _register(number: int) -> i386.RegisterSpec:
    if not 0 <= number < len(i386.REGISTERS):
        raise TargetError(f"no register number {number}", errno=EINVAL)
    return i386.REGISTERS[number]


# File-I/O protocol values (gdb's "Protocol-specific Representation of
# Datatypes"), which are not the host's.
_FILEIO_ACCMODE = 0x3
_FILEIO_ENOENT = 2
_FILEIO_EBADF = 9
_FILEIO_EACCES = 13
_FILEIO_S_IFREG = 0o100000


def _fileio_stat(size: int) -> bytes:
    """A File-I/O ``struct stat`` (big-endian) of a read-only regular file."""
    return struct.pack(
        ">IIIIIIIQQQIII",
        0,  # st_dev
        0,  # st_ino
        _FILEIO_S_IFREG | 0o444,
        1,  # st_nlink
        0,  # st_uid
        0,  # st_gid
        0,  # st_rdev
        size,
        4096,  # st_blksize
        (size + 511) // 512,
        0,  # st_atime
        0,  # st_mtime
        0,  # st_ctime
    )
