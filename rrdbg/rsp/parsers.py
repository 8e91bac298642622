"""Argument parsers: the text after a packet's prefix -> a typed request.

Role: one small function per packet shape, used by ``table.py``.  A parser gets
the payload *after* its table prefix (``m8048000,4`` -> ``b"8048000,4"``).

Errors: a parser raises ``RemoteProtocolError`` for bad arguments (the table turns
it into ``MalformedPacket``) and ``UnsupportedVariant`` for a well-formed variant
of a known packet that we do not implement, such as ``qXfer:...:write`` or a
``vCont;t`` action (the table turns it into ``UnknownPacket``, so the client
gets the empty "not supported" reply).

Must not import anything outside the stdlib, ``rrdbg.errors`` and ``rrdbg.rsp``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from rrdbg.errors import RemoteProtocolError
from rrdbg.rsp.hexcodec import hex_decode, parse_hex
from rrdbg.rsp.requests import (
    Detach,
    Direction,
    FileClose,
    FileFstat,
    FileOpen,
    FileOperation,
    FilePread,
    FileSetFs,
    InsertPoint,
    MonitorCommand,
    PassSignals,
    PointKind,
    QueryAttached,
    QueryCurrentThread,
    QuerySupported,
    QuerySymbol,
    ReadMemory,
    ReadRegister,
    ReadXfer,
    RemovePoint,
    Request,
    Resume,
    ResumeAction,
    SetThread,
    ThreadAlive,
    VCont,
    VContAction,
    VKill,
    WriteMemory,
    WriteRegister,
    WriteRegisters,
)

Parser = Callable[[bytes], Request]

# A thread id: "1", "-1", "0", or with multiprocess "p1", "p1.-1", "p-1.0".
_ID = rb"(?:-1|[0-9a-fA-F]+)"
_THREAD_ID: Final = re.compile(rb"%s|p%s(?:\.%s)?" % (_ID, _ID, _ID))


class UnsupportedVariant(Exception):
    """A well-formed variant of a known packet that we do not implement."""


def _ascii(text: bytes, what: str) -> str:
    try:
        return text.decode("ascii")
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"non-ASCII {what}") from None


def _split(text: bytes, separator: bytes, what: str) -> tuple[bytes, bytes]:
    head, found, tail = text.partition(separator)
    if not found:
        raise RemoteProtocolError(f"missing {separator.decode()!r} in {what}")
    return head, tail


def _after(text: bytes, delimiter: bytes, what: str) -> bytes:
    """``text`` without its leading ``delimiter``, which must be there."""
    if not text.startswith(delimiter):
        raise RemoteProtocolError(f"{what} arguments must start with {delimiter.decode()!r}")
    return text[len(delimiter) :]


def _thread(text: bytes) -> str:
    if _THREAD_ID.fullmatch(text) is None:
        raise RemoteProtocolError(f"bad thread id {text[:40]!r}")
    return text.decode("ascii")


def _signal(text: bytes) -> int:
    signal = parse_hex(text, "signal")
    if signal > 0xFF:
        raise RemoteProtocolError(f"signal {signal:#x} out of range")
    return signal


def _address_and_length(text: bytes) -> tuple[int, int]:
    address, length = _split(text, b",", "address,length")
    return parse_hex(address, "address"), parse_hex(length, "length")


def no_argument(make: Callable[[], Request]) -> Parser:
    """A parser for a packet that takes nothing after its prefix."""

    def parse(argument: bytes) -> Request:
        if argument:
            raise RemoteProtocolError(f"unexpected argument {argument[:40]!r}")
        return make()

    return parse


def query_supported(argument: bytes) -> Request:
    if not argument:
        return QuerySupported(())
    features = _after(argument, b":", "qSupported")
    return QuerySupported(tuple(_ascii(f, "feature") for f in features.split(b";") if f))


def read_xfer(argument: bytes) -> Request:
    rest = _after(argument, b":", "qXfer")
    head, window = rest.rpartition(b":")[::2]
    parts = head.split(b":", 2)
    if len(parts) != 3:
        raise RemoteProtocolError("qXfer needs OBJECT:OPERATION:ANNEX:OFFSET,LENGTH")
    obj, operation, annex = parts
    if operation != b"read":
        raise UnsupportedVariant
    offset, length = _address_and_length(window)
    return ReadXfer(_ascii(obj, "qXfer object"), _ascii(annex, "qXfer annex"), offset, length)


def write_registers(argument: bytes) -> Request:
    return WriteRegisters(hex_decode(argument))


def read_register(argument: bytes) -> Request:
    return ReadRegister(parse_hex(argument, "register number"))


def write_register(argument: bytes) -> Request:
    number, value = _split(argument, b"=", "P packet")
    return WriteRegister(parse_hex(number, "register number"), hex_decode(value))


def read_memory(argument: bytes) -> Request:
    return ReadMemory(*_address_and_length(argument))


def _write_memory(argument: bytes, decode: Callable[[bytes], bytes]) -> Request:
    where, data_text = _split(argument, b":", "memory write")
    address, length = _address_and_length(where)
    data = decode(data_text)
    if len(data) != length:
        raise RemoteProtocolError(f"memory write says {length} bytes but carries {len(data)}")
    return WriteMemory(address, data)


def write_memory_hex(argument: bytes) -> Request:
    return _write_memory(argument, hex_decode)


def write_memory_binary(argument: bytes) -> Request:
    # Escapes were undone by the framer: what follows ':' is the data itself.
    return _write_memory(argument, bytes)


def resume(action: ResumeAction) -> Parser:
    """``c [addr]`` / ``s [addr]``."""

    def parse(argument: bytes) -> Request:
        address = parse_hex(argument, "address") if argument else None
        return Resume(action, Direction.FORWARD, address=address)

    return parse


def resume_with_signal(action: ResumeAction) -> Parser:
    """``C sig[;addr]`` / ``S sig[;addr]``."""

    def parse(argument: bytes) -> Request:
        signal, found, address = argument.partition(b";")
        return Resume(
            action,
            Direction.FORWARD,
            signal=_signal(signal),
            address=parse_hex(address, "address") if found else None,
        )

    return parse


def resume_backward(action: ResumeAction) -> Parser:
    """``bc`` / ``bs``: no arguments."""
    return no_argument(lambda: Resume(action, Direction.BACKWARD))


def _vcont_action(text: bytes) -> VContAction:
    letter, rest = text[:1], text[1:]
    body, found, thread_text = rest.partition(b":")
    thread = _thread(thread_text) if found else None
    if letter in (b"c", b"s"):
        if body:
            raise RemoteProtocolError(f"vCont action {text[:40]!r} takes no signal")
        kind = ResumeAction.CONTINUE if letter == b"c" else ResumeAction.STEP
        return VContAction(kind, None, thread)
    if letter in (b"C", b"S"):
        kind = ResumeAction.CONTINUE if letter == b"C" else ResumeAction.STEP
        return VContAction(kind, _signal(body), thread)
    if letter in (b"t", b"r"):
        raise UnsupportedVariant  # not advertised in our vCont? reply
    raise RemoteProtocolError(f"bad vCont action {text[:40]!r}")


def vcont(argument: bytes) -> Request:
    """The text after ``vCont;``: ``action[:thread]`` separated by ``;``."""
    return VCont(tuple(_vcont_action(action) for action in argument.split(b";")))


def point(kind: PointKind, insert: bool) -> Parser:
    """``Z<kind>,addr,size`` / ``z<kind>,addr,size``; condition lists are not supported."""

    def parse(argument: bytes) -> Request:
        parts = argument.split(b",")
        if len(parts) != 3 or parts[0]:
            raise RemoteProtocolError("breakpoint packet needs ,ADDRESS,KIND")
        address = parse_hex(parts[1], "address")
        size = parse_hex(parts[2], "breakpoint kind")
        if insert:
            return InsertPoint(kind, address, size)
        return RemovePoint(kind, address, size)

    return parse


def query_attached(argument: bytes) -> Request:
    if not argument:
        return QueryAttached(None)
    return QueryAttached(parse_hex(_after(argument, b":", "qAttached"), "pid"))


def query_current_thread(argument: bytes) -> Request:
    return no_argument(QueryCurrentThread)(argument)


def set_thread(argument: bytes) -> Request:
    operation = argument[:1]
    if operation not in (b"g", b"c"):
        raise RemoteProtocolError(f"bad H operation {operation!r}")
    return SetThread(operation.decode("ascii"), _thread(argument[1:]))


def thread_alive(argument: bytes) -> Request:
    return ThreadAlive(_thread(argument))


def monitor_command(argument: bytes) -> Request:
    return MonitorCommand(hex_decode(_after(argument, b",", "qRcmd")))


def pass_signals(argument: bytes) -> Request:
    """``QPassSignals:[SIG[;SIG]...]``: hex gdb signal numbers."""
    rest = _after(argument, b":", "QPassSignals")
    if not rest:
        return PassSignals(frozenset())
    # gdb ends the list with ";" ("QPassSignals:e;10;14;"): no empty item.
    return PassSignals(frozenset(parse_hex(s, "signal") for s in rest.split(b";") if s))


def query_symbol(argument: bytes) -> Request:
    rest = _after(argument, b":", "qSymbol")
    value, name = _split(rest, b":", "qSymbol")
    return QuerySymbol(
        parse_hex(value, "symbol value") if value else None,
        hex_decode(name) if name else None,
    )


def file_operation(argument: bytes) -> Request:
    payload = _after(argument, b":", "vFile")
    name, _, rest = payload.partition(b":")
    if name == b"setfs":
        return FileSetFs(parse_hex(rest, "pid"))
    if name == b"open":
        fields = rest.split(b",")
        if len(fields) != 3:
            raise RemoteProtocolError("vFile:open needs PATHNAME,FLAGS,MODE")
        return FileOpen(
            hex_decode(fields[0]), parse_hex(fields[1], "flags"), parse_hex(fields[2], "mode")
        )
    if name in (b"close", b"fstat"):
        fd = parse_hex(rest, "file descriptor")
        return FileClose(fd) if name == b"close" else FileFstat(fd)
    if name == b"pread":
        fields = rest.split(b",")
        if len(fields) != 3:
            raise RemoteProtocolError("vFile:pread needs FD,COUNT,OFFSET")
        return FilePread(
            parse_hex(fields[0], "fd"),
            parse_hex(fields[1], "count"),
            parse_hex(fields[2], "offset"),
        )
    return FileOperation(payload)


def vkill(argument: bytes) -> Request:
    return VKill(parse_hex(_after(argument, b";", "vKill"), "pid"))


def detach(argument: bytes) -> Request:
    if not argument:
        return Detach(None)
    return Detach(parse_hex(_after(argument, b";", "D packet"), "pid"))
