"""Typed requests: one frozen dataclass per packet meaning, plus the Ctrl-C event.

Role: the vocabulary ``RspConnection.next_event`` speaks.  A request carries
decoded values (ints, bytes, enums), never wire text; parsing lives in
``parsers.py`` and the prefix -> parser mapping in ``table.py``.

Invariants:
- Every packet becomes exactly one ``Request``: a typed one, ``UnknownPacket``
  (not understood or not enabled: the answer is the empty reply) or
  ``MalformedPacket`` (a known packet with bad arguments: the answer is ``Exx``).
- Thread ids stay text (``"1"``, ``"-1"``, ``"p1.-1"``): their meaning depends on
  whether multiprocess extensions were negotiated, which is the session's business.

Must not import anything outside the stdlib and ``rrdbg.errors``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias


class ResumeAction(enum.Enum):
    """How far a resume goes: to the next stop, or one instruction."""

    CONTINUE = enum.auto()
    STEP = enum.auto()


class Direction(enum.Enum):
    """Execution direction of a resume (``bc``/``bs`` are ``BACKWARD``)."""

    FORWARD = enum.auto()
    BACKWARD = enum.auto()


class PointKind(enum.Enum):
    """The breakpoint/watchpoint type of ``Z``/``z``; the value is the wire digit."""

    SOFTWARE = 0
    HARDWARE = 1
    WRITE = 2
    READ = 3
    ACCESS = 4


@dataclass(frozen=True, slots=True)
class Interrupt:
    """The client sent 0x03 outside a packet (Ctrl-C); answered by a stop reply, if running."""


@dataclass(frozen=True, slots=True)
class QuerySupported:
    """``qSupported[:f1;f2...]``: feature negotiation; ``features`` as gdb sent them."""

    features: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MustReplyEmpty:
    """``vMustReplyEmpty``: gdb checks that unknown ``v`` packets get an empty reply."""


@dataclass(frozen=True, slots=True)
class StartNoAckMode:
    """``QStartNoAckMode``: after our ``OK``, no more ``+``/``-``."""


@dataclass(frozen=True, slots=True)
class ReadXfer:
    """``qXfer:OBJECT:read:ANNEX:OFFSET,LENGTH`` (e.g. ``features``/``target.xml``)."""

    object: str
    annex: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class QueryHaltReason:
    """``?``: why the target is stopped (answered with a stop reply)."""


@dataclass(frozen=True, slots=True)
class ReadRegisters:
    """``g``: all registers."""


@dataclass(frozen=True, slots=True)
class WriteRegisters:
    """``G<hex>``: all registers; ``data`` is the decoded bytes."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ReadRegister:
    """``p<n>``: one register by gdb register number."""

    number: int


@dataclass(frozen=True, slots=True)
class WriteRegister:
    """``P<n>=<hex>``: one register; ``data`` is the decoded bytes."""

    number: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ReadMemory:
    """``m<addr>,<len>``."""

    address: int
    length: int


@dataclass(frozen=True, slots=True)
class WriteMemory:
    """``M<addr>,<len>:<hex>`` or ``X<addr>,<len>:<binary>``; ``len(data)`` is the length."""

    address: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Resume:
    """``c``/``s``/``C``/``S`` (forward) and ``bc``/``bs`` (backward).

    ``signal`` is the signal to deliver (``C``/``S`` only); ``address`` the optional
    resume address of ``c addr``/``s addr``/``C sig;addr``.
    """

    action: ResumeAction
    direction: Direction
    signal: int | None = None
    address: int | None = None


@dataclass(frozen=True, slots=True)
class VContQuery:
    """``vCont?``: which vCont actions are supported."""


@dataclass(frozen=True, slots=True)
class VContAction:
    """One action of ``vCont``: ``c``, ``s``, ``Csig`` or ``Ssig``, for ``thread`` or all (None)."""

    kind: ResumeAction
    signal: int | None
    thread: str | None


@dataclass(frozen=True, slots=True)
class VCont:
    """``vCont;action[:thread];...``: the first action that applies to a thread wins."""

    actions: tuple[VContAction, ...]


@dataclass(frozen=True, slots=True)
class InsertPoint:
    """``Z<kind>,<addr>,<size>``: insert a breakpoint or watchpoint."""

    kind: PointKind
    address: int
    size: int


@dataclass(frozen=True, slots=True)
class RemovePoint:
    """``z<kind>,<addr>,<size>``: remove a breakpoint or watchpoint."""

    kind: PointKind
    address: int
    size: int


@dataclass(frozen=True, slots=True)
class QueryAttached:
    """``qAttached[:pid]``: ``1`` if we attached to an existing process, ``0`` if we made it."""

    pid: int | None


@dataclass(frozen=True, slots=True)
class QueryCurrentThread:
    """``qC``: the current thread id."""


@dataclass(frozen=True, slots=True)
class QueryThreadInfo:
    """``qfThreadInfo`` (``first``) / ``qsThreadInfo``: the thread list, in pieces."""

    first: bool


@dataclass(frozen=True, slots=True)
class SetThread:
    """``H<op><thread>``: ``operation`` is ``"g"`` (registers/memory) or ``"c"`` (resume)."""

    operation: str
    thread: str


@dataclass(frozen=True, slots=True)
class ThreadAlive:
    """``T<thread>``: is the thread alive."""

    thread: str


@dataclass(frozen=True, slots=True)
class MonitorCommand:
    """``qRcmd,<hex>``: a ``monitor`` command; ``command`` is the decoded text."""

    command: bytes


@dataclass(frozen=True, slots=True)
class QuerySymbol:
    """``qSymbol:[value]:[hex name]``; ``qSymbol::`` (both None) offers symbol lookups."""

    value: int | None
    name: bytes | None


@dataclass(frozen=True, slots=True)
class QueryTraceStatus:
    """``qTStatus``: tracepoint status (we have no tracepoints)."""


@dataclass(frozen=True, slots=True)
class QueryOffsets:
    """``qOffsets``: section relocation offsets."""


@dataclass(frozen=True, slots=True)
class QueryHostInfo:
    """``qHostInfo`` (lldb): the target's triple, pointer size and byte order."""


@dataclass(frozen=True, slots=True)
class QueryProcessInfo:
    """``qProcessInfo`` (lldb): the process id and triple."""


@dataclass(frozen=True, slots=True)
class FileOperation:
    """``vFile:<operation>`` of a kind not parsed further (pwrite, unlink,
    readlink, ...); ``payload`` is everything after ``vFile:``."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class FileSetFs:
    """``vFile:setfs:PID``: whose file system later operations use (0: the target's)."""

    pid: int


@dataclass(frozen=True, slots=True)
class FileOpen:
    """``vFile:open:PATHNAME,FLAGS,MODE`` (File-I/O flag values, not the host's)."""

    path: bytes
    flags: int
    mode: int


@dataclass(frozen=True, slots=True)
class FileClose:
    """``vFile:close:FD``."""

    fd: int


@dataclass(frozen=True, slots=True)
class FilePread:
    """``vFile:pread:FD,COUNT,OFFSET``."""

    fd: int
    count: int
    offset: int


@dataclass(frozen=True, slots=True)
class FileFstat:
    """``vFile:fstat:FD``."""

    fd: int


@dataclass(frozen=True, slots=True)
class Kill:
    """``k``: kill the target (the RSP defines no reply)."""


@dataclass(frozen=True, slots=True)
class VKill:
    """``vKill;<pid>``: kill a process (reply ``OK``)."""

    pid: int


@dataclass(frozen=True, slots=True)
class Detach:
    """``D`` / ``D;<pid>``: detach (reply ``OK``)."""

    pid: int | None


@dataclass(frozen=True, slots=True)
class UnknownPacket:
    """A packet we do not understand or have not enabled: answer with the empty reply."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class PassSignals:
    """``QPassSignals:sig;sig...``: signals (gdb numbers) to deliver without
    stopping; each packet replaces the previous set."""

    signals: frozenset[int]


@dataclass(frozen=True, slots=True)
class MalformedPacket:
    """A known packet whose arguments are bad, or an unusable frame: answer ``Exx``.

    ``payload`` is the packet (only a prefix of it for an oversized packet).
    """

    payload: bytes
    message: str


Request: TypeAlias = (
    QuerySupported
    | MustReplyEmpty
    | StartNoAckMode
    | PassSignals
    | ReadXfer
    | QueryHaltReason
    | ReadRegisters
    | WriteRegisters
    | ReadRegister
    | WriteRegister
    | ReadMemory
    | WriteMemory
    | Resume
    | VContQuery
    | VCont
    | InsertPoint
    | RemovePoint
    | QueryAttached
    | QueryCurrentThread
    | QueryThreadInfo
    | SetThread
    | ThreadAlive
    | MonitorCommand
    | QuerySymbol
    | QueryTraceStatus
    | QueryOffsets
    | QueryHostInfo
    | QueryProcessInfo
    | FileOperation
    | FileSetFs
    | FileOpen
    | FileClose
    | FilePread
    | FileFstat
    | Kill
    | VKill
    | Detach
    | UnknownPacket
    | MalformedPacket
)
