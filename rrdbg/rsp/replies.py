"""Typed replies and their one encoder, ``encode_reply``.

Role: everything rrdbg can answer, as frozen dataclasses, and the exact payload
text gdb 13 expects for each (docs/rsp.md lists them).  ``encode_reply`` returns
the payload as it goes on the wire, *without* ``$``/``#cs`` framing: binary
data (``XferChunk``, ``BinaryData``) is already escaped, text replies are checked
to contain none of the framing bytes.

Invariants: encoding never depends on connection state; an unencodable reply
(a signal above 255, a raw text with ``#``) is a bug on our side and raises
``LocalProtocolError``.

Must not import anything outside the stdlib, ``rrdbg.errors`` and ``rrdbg.rsp``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias, assert_never

from rrdbg.errors import LocalProtocolError
from rrdbg.rsp.hexcodec import escape_binary, hex_encode


@dataclass(frozen=True, slots=True)
class Ok:
    """``OK``."""


@dataclass(frozen=True, slots=True)
class Empty:
    """The empty reply: "not supported"."""


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """``Exx``: ``errno`` as two hex digits."""

    errno: int


@dataclass(frozen=True, slots=True)
class HexData:
    """Bytes as hex: memory (``m``), registers (``g``/``p``), monitor output."""

    data: bytes


@dataclass(frozen=True, slots=True)
class BinaryData:
    """Bytes sent as escaped binary (binary memory reads, ``vFile`` data)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class FileResult:
    """A ``vFile`` answer: ``Fresult[,errno][;attachment]`` (result -1 with an
    errno on failure; the attachment is sent as escaped binary)."""

    result: int
    errno: int | None = None
    attachment: bytes | None = None


@dataclass(frozen=True, slots=True)
class RawReply:
    """Protocol text sent as is (the ``qSupported`` answer, ``vCont;c;C;s;S``, ``m1``)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class XferChunk:
    """A ``qXfer`` read answer: ``l`` (``last``) or ``m`` (more follows) + escaped data."""

    data: bytes
    last: bool


@dataclass(frozen=True, slots=True)
class SwBreak:
    """Stop reason ``swbreak:``: a software breakpoint (PC already at the breakpoint)."""


@dataclass(frozen=True, slots=True)
class HwBreak:
    """Stop reason ``hwbreak:``: a hardware breakpoint."""


class WatchKind(enum.Enum):
    """Which watchpoint triggered; the value is the stop-reason keyword."""

    WRITE = "watch"
    READ = "rwatch"
    ACCESS = "awatch"


@dataclass(frozen=True, slots=True)
class Watch:
    """Stop reason ``watch:ADDR``/``rwatch:ADDR``/``awatch:ADDR`` (the data address)."""

    kind: WatchKind
    address: int


@dataclass(frozen=True, slots=True)
class ReplayLog:
    """Stop reason ``replaylog:begin``/``replaylog:end``: history ran out."""

    begin: bool


@dataclass(frozen=True, slots=True)
class Forked:
    """Stop reason ``fork:pPID.TID;`` (``vfork:`` with ``vfork``): the thread
    that stopped made the new process ``pid`` (its first thread ``tid``)."""

    pid: int
    tid: int
    vfork: bool = False


@dataclass(frozen=True, slots=True)
class VForkDone:
    """Stop reason ``vforkdone:;``: the child of a vfork has exec'd or ended."""


@dataclass(frozen=True, slots=True)
class Execd:
    """Stop reason ``exec:<hex path>;``: the process now runs ``path``."""

    path: bytes


StopReason: TypeAlias = SwBreak | HwBreak | Watch | ReplayLog | Forked | VForkDone | Execd


@dataclass(frozen=True, slots=True)
class StopReply:
    """``TAAthread:TT;[reason;]``: the target stopped with ``signal``.

    ``registers`` are optional expedited values ``(gdb number, raw bytes)`` sent
    before ``thread:`` so gdb can skip a ``g`` round trip for them.
    """

    signal: int
    thread: int | None = 1
    reason: StopReason | None = None
    registers: tuple[tuple[int, bytes], ...] = ()
    #: With the multiprocess extensions, the process id: ``thread:pPID.TID``.
    process: int | None = None


@dataclass(frozen=True, slots=True)
class Exited:
    """``Wxx[;process:PID]``: the process exited with status ``code`` (0-255)."""

    code: int
    process: int | None = None


@dataclass(frozen=True, slots=True)
class Terminated:
    """``Xxx``: the process was killed by ``signal``."""

    signal: int
    process: int | None = None


@dataclass(frozen=True, slots=True)
class ConsoleOutput:
    """``O<hex>``: text for gdb's console (while running, or before a ``qRcmd`` answer)."""

    text: bytes


Reply: TypeAlias = (
    Ok
    | Empty
    | ErrorReply
    | HexData
    | BinaryData
    | FileResult
    | RawReply
    | XferChunk
    | StopReply
    | Exited
    | Terminated
    | ConsoleOutput
)

_FRAMING_BYTES = frozenset(b"#$}*")


def _byte(value: int, what: str) -> bytes:
    if not 0 <= value <= 0xFF:
        raise LocalProtocolError(f"{what} {value} does not fit in one byte")
    return b"%02x" % value


def _process(process: int | None) -> bytes:
    return b"" if process is None else b";process:%x" % process


def _reason(reason: StopReason) -> bytes:
    match reason:
        case SwBreak():
            return b"swbreak:;"
        case HwBreak():
            return b"hwbreak:;"
        case Watch(kind, address):
            if address < 0:
                raise LocalProtocolError(f"negative watch address {address}")
            return b"%s:%x;" % (kind.value.encode("ascii"), address)
        case ReplayLog(begin):
            return b"replaylog:begin;" if begin else b"replaylog:end;"
        case Forked(pid, tid, vfork):
            return b"%s:p%x.%x;" % (b"vfork" if vfork else b"fork", pid, tid)
        case VForkDone():
            return b"vforkdone:;"
        case Execd(path):
            return b"exec:%s;" % hex_encode(path)
        case _:
            assert_never(reason)


def _stop(reply: StopReply) -> bytes:
    out = bytearray(b"T" + _byte(reply.signal, "signal"))
    for number, value in reply.registers:
        out += b"%02x:%s;" % (number, hex_encode(value))
    if reply.thread is not None:
        if reply.thread < 0:
            raise LocalProtocolError(f"negative thread id {reply.thread}")
        if reply.process is not None:
            out += b"thread:p%x.%x;" % (reply.process, reply.thread)
        else:
            out += b"thread:%02x;" % reply.thread
    if reply.reason is not None:
        out += _reason(reply.reason)
    return bytes(out)


def encode_reply(reply: Reply) -> bytes:
    """The wire payload of ``reply`` (no ``$``, ``#`` or checksum).

    Raises:
        LocalProtocolError: the reply cannot be encoded (a value out of range, or
            framing bytes in a ``RawReply``).
    """
    match reply:
        case Ok():
            return b"OK"
        case Empty():
            return b""
        case ErrorReply(errno):
            return b"E" + _byte(errno, "errno")
        case HexData(data):
            return hex_encode(data)
        case BinaryData(data):
            return escape_binary(data)
        case FileResult(result, errno, attachment):
            out = b"F-%x" % -result if result < 0 else b"F%x" % result
            if errno is not None:
                out += b",%x" % errno
            if attachment is not None:
                out += b";" + escape_binary(attachment)
            return out
        case RawReply(payload):
            if not _FRAMING_BYTES.isdisjoint(payload):
                raise LocalProtocolError(f"raw reply {payload[:40]!r} contains # $ }} or *")
            return payload
        case XferChunk(data, last):
            return (b"l" if last else b"m") + escape_binary(data)
        case StopReply():
            return _stop(reply)
        case Exited(code, process):
            return b"W" + _byte(code, "exit code") + _process(process)
        case Terminated(signal, process):
            return b"X" + _byte(signal, "signal") + _process(process)
        case ConsoleOutput(text):
            return b"O" + hex_encode(text)
        case _:
            assert_never(reply)


def is_binary(reply: Reply) -> bool:
    """True if the encoded payload may contain escapes (so it must not be run-length coded)."""
    return isinstance(reply, XferChunk | BinaryData | FileResult)
