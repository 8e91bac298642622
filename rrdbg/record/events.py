"""Host-call events: what a recording stores about each ``Host`` call, byte by byte.

Role: give every ``Host`` method an event kind and encode its result (and a
fingerprint of its arguments) as an event payload for the replay log
(``log.py`` stores (icount, kind, payload) without knowing what they mean).

Payload layout (docs/replay-log.md, "Event kinds"):
``varint args_crc`` then one tagged value.  Values are tagged so that a
result that is sometimes data and sometimes ``-errno`` round-trips:

=====  ==========================================================
tag    value
=====  ==========================================================
0      int: zigzag LEB128
1      bytes: LEB128 length + bytes
2      FileStat: 13 zigzag LEB128 ints in field order
3      list of bytes: LEB128 count, then each as tag-1 bodies
4      Ids: 6 zigzag LEB128 ints (pid, ppid, uid, euid, gid, egid)
5      KeptFile: the 32-byte SHA-256 of a file kept in ``files/``
=====  ==========================================================

Invariant: ``decode_value(encode_value(v)) == v`` for every value a Host
method can return (tests/record/test_events.py).
"""

from __future__ import annotations

import dataclasses
import enum
import zlib

from rrdbg.errors import LogFormatError
from rrdbg.machine.host import FileStat, Ids


@dataclasses.dataclass(frozen=True, slots=True)
class KeptFile:
    """A mapped file's bytes stand in the recording's ``files/<sha256>``: a
    MAP_FILE event's value is then the slice the call's arguments name."""

    sha256: bytes


Value = int | bytes | FileStat | list[bytes] | Ids | KeptFile


class Kind(enum.IntEnum):
    """Event kinds, one per Host method (0 is the log's END event)."""

    END = 0
    ENVIRONMENT = 1
    IDS = 2
    RANDOM = 3
    EPOCH = 4
    READ = 5
    WRITE = 6
    OPEN = 7
    CLOSE = 8
    LSEEK = 9
    FSTAT = 10
    STAT = 11
    ACCESS = 12
    READLINK = 13
    GETCWD = 14
    UNLINK = 15
    TERMINAL_ATTRS = 16
    WINDOW_SIZE = 17
    #: A debugger wrote a register while the live guest was stopped (not a Host call).
    DEBUG_REGISTER = 18
    #: A debugger wrote guest memory while the live guest was stopped (not a Host call).
    DEBUG_MEMORY = 19
    GETDENTS = 20
    MKDIR = 21
    RMDIR = 22
    RENAME = 23
    MAP_FILE = 24
    #: A debugger's say over a signal in a live session (not a Host call):
    #: the pending signal it discarded and the one it sent instead (0: none).
    DEBUG_SIGNAL = 25
    #: ``fs_call(op, args)``: one of host.FS_OPS (the op's name is an argument).
    FS_CALL = 26
    PIPE = 27


#: Events that are not answers to the guest: a replay applies them itself at
#: their icount, before the guest runs on.
DEBUG_KINDS = frozenset({Kind.DEBUG_REGISTER, Kind.DEBUG_MEMORY, Kind.DEBUG_SIGNAL})


_STAT_FIELDS = [f.name for f in dataclasses.fields(FileStat)]
_IDS_FIELDS = [f.name for f in dataclasses.fields(Ids)]


def _uvarint(n: int, out: bytearray) -> None:
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _svarint(n: int, out: bytearray) -> None:
    _uvarint((n << 1) if n >= 0 else ((-n) << 1) - 1, out)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            if self.pos >= len(self.data) or shift > 70:
                raise LogFormatError("event payload: truncated or overlong varint")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def svarint(self) -> int:
        n = self.uvarint()
        return (n >> 1) if not n & 1 else -((n + 1) >> 1)

    def raw(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise LogFormatError("event payload: bytes run past the end")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def blob(self) -> bytes:
        return self.raw(self.uvarint())


def encode_value(value: Value, out: bytearray) -> None:
    if isinstance(value, bool):  # bool is an int: refuse the ambiguity
        raise TypeError("cannot encode a bool")
    if isinstance(value, int):
        out.append(0)
        _svarint(value, out)
    elif isinstance(value, bytes):
        out.append(1)
        _uvarint(len(value), out)
        out += value
    elif isinstance(value, FileStat):
        out.append(2)
        for name in _STAT_FIELDS:
            _svarint(getattr(value, name), out)
    elif isinstance(value, list):
        out.append(3)
        _uvarint(len(value), out)
        for item in value:
            _uvarint(len(item), out)
            out += item
    elif isinstance(value, Ids):
        out.append(4)
        for name in _IDS_FIELDS:
            _svarint(getattr(value, name), out)
    elif isinstance(value, KeptFile):
        if len(value.sha256) != 32:
            raise TypeError("a kept file is named by a 32-byte SHA-256")
        out.append(5)
        out += value.sha256
    else:
        raise TypeError(f"cannot encode {type(value).__name__}")


def decode_value(reader: _Reader) -> Value:
    tag = reader.raw(1)[0]
    if tag == 0:
        return reader.svarint()
    if tag == 1:
        return reader.blob()
    if tag == 2:
        return FileStat(**{name: reader.svarint() for name in _STAT_FIELDS})
    if tag == 3:
        return [reader.blob() for _ in range(reader.uvarint())]
    if tag == 4:
        return Ids(**{name: reader.svarint() for name in _IDS_FIELDS})
    if tag == 5:
        return KeptFile(reader.raw(32))
    raise LogFormatError(f"event payload: unknown value tag {tag}")


def args_crc(args: tuple[int | bytes, ...]) -> int:
    """A fingerprint of a call's arguments, to notice a diverging replay."""
    out = bytearray()
    for arg in args:
        encode_value(arg, out)
    return zlib.crc32(out)


def encode_payload(crc: int, value: Value) -> bytes:
    out = bytearray()
    _uvarint(crc, out)
    encode_value(value, out)
    return bytes(out)


def decode_payload(payload: bytes) -> tuple[int, Value]:
    reader = _Reader(payload)
    crc = reader.uvarint()
    value = decode_value(reader)
    if reader.pos != len(payload):
        raise LogFormatError("event payload: trailing bytes")
    return crc, value


@dataclasses.dataclass(frozen=True, slots=True)
class EndRecord:
    """The END event's payload: how the run ended and what state it ended in."""

    exit_code: int | None
    exit_signal: int | None
    icount: int
    digest: str
    #: False: the recording stops here while the program was still running
    #: (a live session saved or ended early); exit code and signal are None.
    finished: bool = True

    def encode(self) -> bytes:
        out = bytearray()
        _svarint(-1 if self.exit_code is None else self.exit_code, out)
        _svarint(-1 if self.exit_signal is None else self.exit_signal, out)
        _uvarint(self.icount, out)
        digest = bytes.fromhex(self.digest)
        _uvarint(len(digest), out)
        out += digest
        if not self.finished:
            # An optional trailing field: finished recordings encode as before.
            _uvarint(_END_STOPPED, out)
        return bytes(out)

    @classmethod
    def decode(cls, payload: bytes) -> EndRecord:
        reader = _Reader(payload)
        code = reader.svarint()
        signal = reader.svarint()
        icount = reader.uvarint()
        digest = reader.blob().hex()
        finished = True
        if reader.pos < len(reader.data):
            state = reader.uvarint()
            if state != _END_STOPPED:
                raise LogFormatError(f"END record: unknown end state {state}")
            finished = False
        return cls(
            None if code < 0 else code, None if signal < 0 else signal, icount, digest, finished
        )


#: The END record's optional last field: the program had not finished.
_END_STOPPED = 1


def encode_debug_register(name: str, value: bytes, pid: int = 0, tid: int = 0) -> bytes:
    """DEBUG_REGISTER payload: LEB128-prefixed gdb register name, then its
    bytes; then, when given, LEB128 pid and tid of the thread written (absent
    or 0: the followed process's current thread)."""
    out = bytearray()
    raw = name.encode()
    _uvarint(len(raw), out)
    out += raw
    _uvarint(len(value), out)
    out += value
    if pid or tid:
        _uvarint(pid, out)
        _uvarint(tid, out)
    return bytes(out)


def decode_debug_register(payload: bytes) -> tuple[str, bytes, int, int]:
    """(name, value, pid, tid); pid and tid 0 when the payload has none."""
    reader = _Reader(payload)
    try:
        name = reader.blob().decode()
    except UnicodeDecodeError:
        raise LogFormatError("debug-register event: the register name is not UTF-8") from None
    value = reader.blob()
    pid = tid = 0
    if reader.pos != len(payload):
        pid, tid = reader.uvarint(), reader.uvarint()
    if reader.pos != len(payload):
        raise LogFormatError("debug-register event: trailing bytes")
    return name, value, pid, tid


def encode_debug_memory(address: int, data: bytes, pid: int = 0) -> bytes:
    """DEBUG_MEMORY payload: LEB128 guest address, LEB128 length, the bytes
    written; then, when given, LEB128 pid of the process written (absent or
    0: the followed process)."""
    out = bytearray()
    _uvarint(address, out)
    _uvarint(len(data), out)
    out += data
    if pid:
        _uvarint(pid, out)
    return bytes(out)


def decode_debug_memory(payload: bytes) -> tuple[int, bytes, int]:
    """(address, data, pid); pid 0 when the payload has none."""
    reader = _Reader(payload)
    address = reader.uvarint()
    data = reader.blob()
    pid = reader.uvarint() if reader.pos != len(payload) else 0
    if reader.pos != len(payload):
        raise LogFormatError("debug-memory event: trailing bytes")
    return address, data, pid


def encode_debug_signal(discarded: int, sent: int, pid: int = 0) -> bytes:
    """DEBUG_SIGNAL payload: LEB128 signal discarded, LEB128 signal sent (0:
    none); then, when given, LEB128 pid of the process (absent or 0: the
    followed process)."""
    out = bytearray()
    _uvarint(discarded, out)
    _uvarint(sent, out)
    if pid:
        _uvarint(pid, out)
    return bytes(out)


def decode_debug_signal(payload: bytes) -> tuple[int, int, int]:
    """(discarded, sent, pid); pid 0 when the payload has none."""
    reader = _Reader(payload)
    discarded, sent = reader.uvarint(), reader.uvarint()
    pid = reader.uvarint() if reader.pos != len(payload) else 0
    if reader.pos != len(payload) or discarded > 64 or sent > 64:
        raise LogFormatError("debug-signal event: bad signal numbers or trailing bytes")
    return discarded, sent, pid
