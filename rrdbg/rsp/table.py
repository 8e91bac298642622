"""The packet table: every packet rrdbg understands, as data.

Role: map a packet payload to its parser, and record per packet the capability
it needs, whether its answer is a stop reply and which ``qSupported`` feature
advertises it.  ``parse_request``, ``supported_features`` and docs/rsp.md
(tools/gen_packet_docs.py) are all derived from ``PACKETS``.

Invariants:
- The longest matching prefix wins, so the order of ``PACKETS`` never changes
  which parser runs (it only orders the ``qSupported`` features and the docs).
- A packet whose capability is not enabled is ``UnknownPacket`` (empty reply),
  exactly as if it were not in the table, and its feature is not advertised.
- ``parse_request`` never raises: bad arguments become ``MalformedPacket``.

Must not import anything outside the stdlib, ``rrdbg.errors`` and ``rrdbg.rsp``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from rrdbg.errors import LocalProtocolError, RemoteProtocolError
from rrdbg.rsp import parsers as p
from rrdbg.rsp.requests import (
    Detach,
    FileOperation,
    InsertPoint,
    Kill,
    MalformedPacket,
    MonitorCommand,
    MustReplyEmpty,
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
    ReadMemory,
    ReadRegister,
    ReadRegisters,
    ReadXfer,
    RemovePoint,
    Request,
    Resume,
    ResumeAction,
    SetThread,
    StartNoAckMode,
    ThreadAlive,
    UnknownPacket,
    VCont,
    VContQuery,
    VKill,
    WriteMemory,
    WriteRegister,
    WriteRegisters,
)


class Capability(enum.Enum):
    """Optional target abilities; packets needing a missing one are not understood."""

    #: ``bc``/``bs`` and the ``ReverseContinue+``/``ReverseStep+`` features.
    REVERSE = "reverse"
    #: ``Z2``-``Z4``/``z2``-``z4`` (write, read and access watchpoints).
    WATCHPOINTS = "watchpoints"
    #: ``qXfer:auxv:read``: the process's auxiliary vector (lldb needs it).
    AUXV = "auxv"
    #: ``qXfer:exec-file:read`` and ``vFile`` reads of the program's file, so
    #: that gdb started without a program finds the symbols.
    EXEC_FILE = "exec-file"
    #: ``qXfer:libraries-svr4:read``: the dynamic linker's library list.
    LIBRARIES = "libraries-svr4"
    #: ``qXfer:siginfo:read``: the siginfo of the signal stopped for.
    SIGINFO = "siginfo"
    #: ``fork-events+``, ``vfork-events+`` and ``exec-events+``: stops when
    #: the process forks or execs (a Linux program; gdb must offer them too).
    PROCESSES = "processes"


#: Every capability: what ``parse_request`` assumes unless told otherwise.
ALL: Final = frozenset(Capability)


class Match(enum.Enum):
    """How a table prefix must relate to the payload."""

    #: The payload is exactly the prefix (``g``, ``vCont?``).
    EXACT = enum.auto()
    #: The payload starts with the prefix; the rest is the argument (``m``, ``Z0``).
    PREFIX = enum.auto()
    #: A named packet: the prefix alone or followed by ``:``, ``,`` or ``;``
    #: (``qSupported:...``, ``qRcmd,...``, ``vKill;...``), so ``qC`` is not ``qCRC``.
    NAME = enum.auto()


@dataclass(frozen=True, slots=True)
class PacketSpec:
    """One table row.  ``parse`` receives the payload after ``prefix``."""

    prefix: bytes
    parse: p.Parser
    request: type[object]
    syntax: str
    match: Match = Match.PREFIX
    capability: Capability | None = None
    stop_reply: bool = False
    feature: bytes | None = None
    notes: str = ""


_NAME_DELIMITERS: Final = frozenset(b":,;")


class PacketTable:
    """An index over packet specs: longest prefix first, independent of their order."""

    __slots__ = ("_by_prefix", "_lengths", "_stop_reply_types", "specs")

    def __init__(self, specs: Iterable[PacketSpec]) -> None:
        self.specs = tuple(specs)
        self._by_prefix: dict[bytes, PacketSpec] = {}
        for spec in self.specs:
            if not spec.prefix or spec.prefix in self._by_prefix:
                raise LocalProtocolError(f"bad or duplicate packet prefix {spec.prefix!r}")
            self._by_prefix[spec.prefix] = spec
        self._lengths = sorted({len(prefix) for prefix in self._by_prefix}, reverse=True)
        self._stop_reply_types = frozenset(s.request for s in self.specs if s.stop_reply)

    def lookup(self, payload: bytes) -> tuple[PacketSpec, bytes] | None:
        """The spec with the longest prefix that matches, and the argument after it."""
        for length in self._lengths:
            spec = self._by_prefix.get(payload[:length])
            if spec is None or len(payload) < length:
                continue
            argument = payload[length:]
            if spec.match is Match.EXACT and argument:
                continue
            if spec.match is Match.NAME and argument and argument[0] not in _NAME_DELIMITERS:
                continue
            return spec, argument
        return None

    def parse(self, payload: bytes, capabilities: frozenset[Capability] = ALL) -> Request:
        """The request for ``payload``; never raises."""
        found = self.lookup(payload)
        if found is None:
            return UnknownPacket(payload)
        spec, argument = found
        if spec.capability is not None and spec.capability not in capabilities:
            return UnknownPacket(payload)
        try:
            return spec.parse(argument)
        except p.UnsupportedVariant:
            return UnknownPacket(payload)
        except RemoteProtocolError as exc:
            return MalformedPacket(payload, str(exc))

    def supported_features(self, capabilities: frozenset[Capability], packet_size: int) -> bytes:
        """The ``qSupported`` reply text for a target with ``capabilities``."""
        features = [b"PacketSize=%x" % packet_size]
        features += [
            spec.feature
            for spec in self.specs
            if spec.feature is not None
            and (spec.capability is None or spec.capability in capabilities)
        ]
        # Other objects of the qXfer row.
        at = next(i for i, f in enumerate(features) if f.startswith(b"qXfer:")) + 1
        if Capability.EXEC_FILE in capabilities:
            features.insert(at, b"qXfer:exec-file:read+")
        if Capability.AUXV in capabilities:
            features.insert(at, b"qXfer:auxv:read+")
        if Capability.LIBRARIES in capabilities:
            features.insert(at, b"qXfer:libraries-svr4:read+")
        if Capability.PROCESSES in capabilities:
            after = max(i for i, f in enumerate(features) if f.startswith(b"qXfer:")) + 1
            features[after:after] = [b"fork-events+", b"vfork-events+", b"exec-events+"]
        if Capability.SIGINFO in capabilities:
            features.insert(at, b"qXfer:siginfo:read+")
        return b";".join(features)

    def answers_with_stop_reply(self, request: object) -> bool:
        """True for requests whose answer is a stop reply (``?``, resumes, ``vCont``)."""
        return type(request) in self._stop_reply_types


_C, _S = ResumeAction.CONTINUE, ResumeAction.STEP


def _points() -> tuple[PacketSpec, ...]:
    watch = {PointKind.WRITE: "write", PointKind.READ: "read", PointKind.ACCESS: "access"}
    features = {PointKind.SOFTWARE: b"swbreak+", PointKind.HARDWARE: b"hwbreak+"}
    specs = []
    for kind in PointKind:
        needs = Capability.WATCHPOINTS if kind in watch else None
        what = f"{watch[kind]} watchpoint" if kind in watch else f"{kind.name.lower()} breakpoint"
        for insert, letter, request in ((True, "Z", InsertPoint), (False, "z", RemovePoint)):
            specs.append(
                PacketSpec(
                    f"{letter}{kind.value}".encode(),
                    p.point(kind, insert),
                    request,
                    f"{letter}{kind.value},ADDR,KIND",
                    capability=needs,
                    # Advertised once per kind, with the inserting packet.
                    feature=features.get(kind) if insert else None,
                    notes=f"{'insert' if insert else 'remove'}: {what}; no ;cond lists",
                )
            )
    return tuple(specs)


PACKETS: Final[tuple[PacketSpec, ...]] = (
    # Connection set-up, in the order gdb 13 sends it.
    PacketSpec(
        b"qSupported",
        p.query_supported,
        QuerySupported,
        "qSupported[:FEATURE;...]",
        Match.NAME,
        # gdbserver's default: without it gdb 13's `record` on a remote
        # target fails an internal assertion (the magic pid has no inferior).
        feature=b"multiprocess+",
        notes="answered with supported_features(); thread ids pPID.TID once agreed",
    ),
    PacketSpec(
        b"vMustReplyEmpty",
        p.no_argument(MustReplyEmpty),
        MustReplyEmpty,
        "vMustReplyEmpty",
        Match.EXACT,
        notes="answered with the empty reply",
    ),
    PacketSpec(
        b"QStartNoAckMode",
        p.no_argument(StartNoAckMode),
        StartNoAckMode,
        "QStartNoAckMode",
        Match.EXACT,
        feature=b"QStartNoAckMode+",
        notes="acks stop once the OK is queued",
    ),
    PacketSpec(
        b"QPassSignals",
        p.pass_signals,
        PassSignals,
        "QPassSignals:SIG[;SIG]...",
        Match.NAME,
        feature=b"QPassSignals+",
        notes="signals (gdb numbers) delivered without a stop",
    ),
    PacketSpec(
        b"qXfer",
        p.read_xfer,
        ReadXfer,
        "qXfer:OBJECT:read:ANNEX:OFF,LEN",
        Match.NAME,
        feature=b"qXfer:features:read+;qXfer:threads:read+",
        notes=(
            "features/target.xml, threads, siginfo (of the signal stopped for), "
            "libraries-svr4, auxv and exec-file are served; write operations are unknown"
        ),
    ),
    *_points(),
    PacketSpec(
        b"vCont?",
        p.no_argument(VContQuery),
        VContQuery,
        "vCont?",
        Match.EXACT,
        feature=b"vContSupported+",
        notes="answer lists c, C, s, S",
    ),
    PacketSpec(
        b"vCont;",
        p.vcont,
        VCont,
        "vCont;ACTION[:THREAD]...",
        stop_reply=True,
        notes="actions c, s, Csig, Ssig; t and r are unknown",
    ),
    PacketSpec(
        b"bs",
        p.resume_backward(_S),
        Resume,
        "bs",
        Match.EXACT,
        Capability.REVERSE,
        stop_reply=True,
        feature=b"ReverseStep+",
        notes="one instruction backward",
    ),
    PacketSpec(
        b"bc",
        p.resume_backward(_C),
        Resume,
        "bc",
        Match.EXACT,
        Capability.REVERSE,
        stop_reply=True,
        feature=b"ReverseContinue+",
        notes="backward to the previous stop, or replaylog:begin",
    ),
    # Stop state, registers and memory.
    PacketSpec(
        b"?",
        p.no_argument(QueryHaltReason),
        QueryHaltReason,
        "?",
        Match.EXACT,
        stop_reply=True,
    ),
    PacketSpec(b"g", p.no_argument(ReadRegisters), ReadRegisters, "g", Match.EXACT),
    PacketSpec(b"G", p.write_registers, WriteRegisters, "GHEX"),
    PacketSpec(b"p", p.read_register, ReadRegister, "pN"),
    PacketSpec(b"P", p.write_register, WriteRegister, "PN=HEX"),
    PacketSpec(b"m", p.read_memory, ReadMemory, "mADDR,LEN"),
    PacketSpec(
        b"M", p.write_memory_hex, WriteMemory, "MADDR,LEN:HEX", notes="LEN must match the data"
    ),
    PacketSpec(
        b"X",
        p.write_memory_binary,
        WriteMemory,
        "XADDR,LEN:BINARY",
        notes="escaped binary; LEN must match",
    ),
    # Forward resumes (legacy forms; gdb 13 prefers vCont).
    PacketSpec(b"c", p.resume(_C), Resume, "c[ADDR]", stop_reply=True),
    PacketSpec(b"s", p.resume(_S), Resume, "s[ADDR]", stop_reply=True),
    PacketSpec(b"C", p.resume_with_signal(_C), Resume, "CSIG[;ADDR]", stop_reply=True),
    PacketSpec(b"S", p.resume_with_signal(_S), Resume, "SSIG[;ADDR]", stop_reply=True),
    # Threads and process.
    PacketSpec(b"qAttached", p.query_attached, QueryAttached, "qAttached[:PID]", Match.NAME),
    PacketSpec(b"qC", p.query_current_thread, QueryCurrentThread, "qC", Match.NAME),
    PacketSpec(
        b"qfThreadInfo",
        p.no_argument(lambda: QueryThreadInfo(first=True)),
        QueryThreadInfo,
        "qfThreadInfo",
        Match.EXACT,
    ),
    PacketSpec(
        b"qsThreadInfo",
        p.no_argument(lambda: QueryThreadInfo(first=False)),
        QueryThreadInfo,
        "qsThreadInfo",
        Match.EXACT,
    ),
    PacketSpec(b"H", p.set_thread, SetThread, "HgTHREAD, HcTHREAD"),
    PacketSpec(b"T", p.thread_alive, ThreadAlive, "TTHREAD"),
    PacketSpec(b"k", p.no_argument(Kill), Kill, "k", Match.EXACT, notes="no reply"),
    PacketSpec(b"vKill", p.vkill, VKill, "vKill;PID", Match.NAME),
    PacketSpec(b"D", p.detach, Detach, "D[;PID]"),
    # Everything else gdb asks on connect or on request.
    PacketSpec(
        b"qRcmd", p.monitor_command, MonitorCommand, "qRcmd,HEX", Match.NAME, notes="monitor CMD"
    ),
    PacketSpec(b"qSymbol", p.query_symbol, QuerySymbol, "qSymbol:[VALUE]:[HEXNAME]", Match.NAME),
    PacketSpec(
        b"qTStatus",
        p.no_argument(QueryTraceStatus),
        QueryTraceStatus,
        "qTStatus",
        Match.EXACT,
    ),
    PacketSpec(b"qOffsets", p.no_argument(QueryOffsets), QueryOffsets, "qOffsets", Match.EXACT),
    PacketSpec(
        b"qHostInfo",
        p.no_argument(QueryHostInfo),
        QueryHostInfo,
        "qHostInfo",
        Match.EXACT,
        notes="lldb: triple, ptrsize, endian",
    ),
    PacketSpec(
        b"qProcessInfo",
        p.no_argument(QueryProcessInfo),
        QueryProcessInfo,
        "qProcessInfo",
        Match.EXACT,
        notes="lldb: pid, triple",
    ),
    PacketSpec(
        b"vFile",
        p.file_operation,
        FileOperation,
        "vFile:OPERATION...",
        Match.NAME,
        notes="setfs, open, pread, fstat, close of the program's own file; nothing else",
    ),
)

#: The table built from ``PACKETS``.
TABLE: Final = PacketTable(PACKETS)


def parse_request(payload: bytes, capabilities: frozenset[Capability] = ALL) -> Request:
    """The typed request for a packet payload (escapes already undone); never raises.

    Packets not in the table, or needing a capability missing from ``capabilities``,
    become ``UnknownPacket``; known packets with bad arguments ``MalformedPacket``.
    """
    return TABLE.parse(payload, capabilities)


def supported_features(capabilities: frozenset[Capability], packet_size: int) -> bytes:
    """The ``qSupported`` reply, e.g.
    ``PacketSize=4000;QStartNoAckMode+;qXfer:features:read+;qXfer:threads:read+;swbreak+;...``
    (plus ``ReverseStep+;ReverseContinue+`` with ``Capability.REVERSE``)."""
    return TABLE.supported_features(capabilities, packet_size)


def answers_with_stop_reply(request: object) -> bool:
    """True if ``request`` is answered by a stop reply (``?``, ``c``/``s``/``C``/``S``,
    ``bc``/``bs``, ``vCont``), possibly much later and after ``O`` output packets."""
    return TABLE.answers_with_stop_reply(request)
