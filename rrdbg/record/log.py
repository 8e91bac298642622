"""The replay log file: a versioned, chunked container of (icount, kind, payload) events.

Role: store, in order, every event a recording produces and give a replayer
sequential and random access to them.  This layer knows nothing about what
an event means: ``kind`` is a byte (0 is reserved for END, 1..255 belong to
the caller, see ``rrdbg/record/events.py``) and ``payload`` is opaque bytes.
docs/replay-log.md is the byte-by-byte specification; this module is its
reference implementation.

Invariants:
- All integers are little-endian.  Checksums are CRC-32C (Castagnoli), from
  the C extension ``_crc32c`` or its pure-Python twin ``py_crc32c``.
- A chunk is all or nothing: the writer emits it with a single ``write`` and
  the reader uses it only if its magic, length, CRC and event encoding all
  check out.  The readable log is the longest prefix of valid chunks; the
  offset of the first invalid (or missing) chunk is ``truncated_at``.  A
  recorder killed at any moment therefore leaves a log whose readable part is
  exactly the chunks it completed.
- Event icounts never decrease, inside a chunk and from chunk to chunk.
- The END event (kind 0) is the last event of its chunk and its chunk is the
  last one read: whatever follows it in the file is ignored.
- A ``Cursor`` (chunk offset, index in chunk) names one place in the event
  sequence; ``LogWriter.position`` and the cursors of the events a
  ``LogReader`` returns agree, so a snapshot can store the writer's position
  and a replayer can ``seek`` to it.
- Malformed input only ever raises ``LogFormatError`` (bad preamble or header
  on open, a cursor that names no event on seek); damaged chunks are not an
  error, they end the readable log.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import ClassVar, Final

from rrdbg.errors import LogFormatError

MAGIC: Final = b"RRDBGLOG"
FORMAT_VERSION: Final = 1
CHUNK_MAGIC: Final = b"RRCK"
#: The kind of the END event ``LogWriter.close`` appends; callers use 1..255.
KIND_END: Final = 0
DEFAULT_CHUNK_BYTES: Final = 64 * 1024
#: Preamble flag bits 8..15 are "incompatible": a reader that does not know
#: one refuses the log.  Bits 0..7 are "compatible" and ignored if unknown.
#: No flag is defined in format version 1.
INCOMPATIBLE_FLAGS_MASK: Final = 0xFF00
KNOWN_FLAGS: Final = 0

_PREAMBLE = struct.Struct("<8sHHI")  # magic, version, flags, header length
_CHUNK_HEAD = struct.Struct("<4sIIQI")  # magic, payload length, crc, first icount, count
_TLV_HEAD = struct.Struct("<HI")  # tag, value length
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_U64_MAX: Final = (1 << 64) - 1
_U32_MAX: Final = (1 << 32) - 1
_MAX_CHUNK_PAYLOAD: Final = _U32_MAX
_READ_MAX: Final = 1 << 30  # one pread() at most (Linux caps a read below 2 GiB)
_CACHED_CHUNKS: Final = 4

# -- CRC-32C ------------------------------------------------------------------
# Reflected Castagnoli polynomial, init and final xor 0xFFFFFFFF (as iSCSI,
# ext4, Btrfs, SSE4.2's crc32 instruction).  Slicing-by-16: _CRC_TABLES[k][b]
# is the CRC contribution of byte b followed by k zero bytes.


def _crc_tables() -> tuple[tuple[int, ...], ...]:
    base = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        base.append(c)
    tables = [base]
    for _ in range(15):
        prev = tables[-1]
        tables.append([(v >> 8) ^ base[v & 0xFF] for v in prev])
    return tuple(tuple(t) for t in tables)


_CRC_TABLES: Final = _crc_tables()
_SIXTEEN_BYTES = struct.Struct("16B")


def py_crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-32C of ``data``; pass a previous result as ``crc`` to continue it.

    ``crc32c(b, crc32c(a)) == crc32c(a + b)``, as with ``zlib.crc32``.
    About 2 ms per 64 KiB on CPython 3.11 (docs/replay-log.md).
    """
    t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15 = _CRC_TABLES
    crc ^= 0xFFFFFFFF
    view = memoryview(data).cast("B")
    n = len(view) & ~15
    for (
        b0,
        b1,
        b2,
        b3,
        b4,
        b5,
        b6,
        b7,
        b8,
        b9,
        b10,
        b11,
        b12,
        b13,
        b14,
        b15,
    ) in _SIXTEEN_BYTES.iter_unpack(view[:n]):
        crc = (
            t15[(crc ^ b0) & 0xFF]
            ^ t14[((crc >> 8) ^ b1) & 0xFF]
            ^ t13[((crc >> 16) ^ b2) & 0xFF]
            ^ t12[(crc >> 24) ^ b3]
            ^ t11[b4]
            ^ t10[b5]
            ^ t9[b6]
            ^ t8[b7]
            ^ t7[b8]
            ^ t6[b9]
            ^ t5[b10]
            ^ t4[b11]
            ^ t3[b12]
            ^ t2[b13]
            ^ t1[b14]
            ^ t0[b15]
        )
    for b in view[n:]:
        crc = t0[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


try:  # the C twin (rrdbg/record/_crc32c.c): same results, ~30x faster
    from rrdbg.record import _crc32c

    crc32c = _crc32c.crc32c
except ImportError:  # pragma: no cover - only without a C compiler
    crc32c = py_crc32c


# -- LEB128 -------------------------------------------------------------------


def _uvarint(value: int) -> bytes:
    """Unsigned LEB128, minimal length (at most 10 bytes for a u64)."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it); IndexError past the end, ValueError if > u64."""
    value = 0
    shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift >= 70:
            raise ValueError("varint longer than 10 bytes")
    if value > _U64_MAX:
        raise ValueError("varint above 2**64-1")
    return value, pos


# -- cursors and events ------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """A place in the event sequence: the event ``index`` of the chunk at ``chunk_offset``.

    ``index`` may equal the chunk's event count: the place just after that
    chunk (the same place as the next chunk's index 0).  ``to_bytes`` is a
    fixed ``SIZE``-byte form (u64 offset, u32 index) for snapshots to store.
    """

    chunk_offset: int
    index: int
    SIZE: ClassVar[int] = 12
    _PACK: ClassVar[struct.Struct] = struct.Struct("<QI")

    def to_bytes(self) -> bytes:
        return self._PACK.pack(self.chunk_offset, self.index)

    @classmethod
    def from_bytes(cls, data: bytes) -> Cursor:
        if len(data) != cls.SIZE:
            raise LogFormatError(f"a replay log cursor is {cls.SIZE} bytes, not {len(data)}")
        offset, index = cls._PACK.unpack(data)
        return cls(offset, index)


@dataclass(frozen=True, slots=True)
class Event:
    """One logged event; ``cursor`` is where it is (``LogReader.seek`` takes it)."""

    icount: int
    kind: int
    payload: bytes
    cursor: Cursor


# -- header -------------------------------------------------------------------

_TAG_RRDBG_VERSION = 1
_TAG_UNICORN_VERSION = 2
_TAG_CPU_MODEL = 3
_TAG_PROGRAM_PATH = 4
_TAG_PROGRAM_SIZE = 5
_TAG_PROGRAM_SHA256 = 6
_TAG_ARGV = 7
_TAG_SNAPSHOT_IMAGE = 8
_TAG_SNAPSHOT_INTERVAL = 9
_TAG_CREATED_NS = 10
_TAG_EXTRA = 11
_REQUIRED_TAGS = frozenset(range(_TAG_RRDBG_VERSION, _TAG_CREATED_NS + 1))


def _enc_str(s: str) -> bytes:
    # surrogateescape: a path from os.fsdecode() is stored as its original bytes.
    return s.encode("utf-8", "surrogateescape")


def _dec_str(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class LogHeader:
    """What a replay needs to know before the first event (docs/replay-log.md).

    Strings are stored as UTF-8 with ``surrogateescape`` (so any path that
    came from the file system round-trips); a string that cannot be encoded
    that way, an out-of-range integer or a digest that is not 32 bytes raises
    ``ValueError`` when the header is built.
    """

    rrdbg_version: str
    unicorn_version: str
    cpu_model: str
    program_path: str
    program_size: int
    program_sha256: bytes
    argv: tuple[bytes, ...]
    #: The qcow2 image, relative to the recording directory or absolute.
    snapshot_image: str
    snapshot_interval: int
    #: Wall clock (ns since the epoch) at record start; informational only.
    created_ns: int
    #: Forward-compatible string fields; readers keep keys they do not know.
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(bytes(a) for a in self.argv))
        object.__setattr__(self, "program_sha256", bytes(self.program_sha256))
        object.__setattr__(self, "extra", dict(self.extra))
        if len(self.program_sha256) != 32:
            raise ValueError("program_sha256 must be 32 bytes")
        for name in ("program_size", "snapshot_interval"):
            if not 0 <= getattr(self, name) <= _U64_MAX:
                raise ValueError(f"{name} must fit in 64 unsigned bits")
        if not -(1 << 63) <= self.created_ns < (1 << 63):
            raise ValueError("created_ns must fit in 64 signed bits")
        if len(self.argv) > _U32_MAX:
            raise ValueError("too many arguments")
        self.to_bytes()  # every string encodable, every field within its length field

    def to_bytes(self) -> bytes:
        """The TLV records of the header (without preamble and CRC)."""
        records: list[tuple[int, bytes]] = [
            (_TAG_RRDBG_VERSION, _enc_str(self.rrdbg_version)),
            (_TAG_UNICORN_VERSION, _enc_str(self.unicorn_version)),
            (_TAG_CPU_MODEL, _enc_str(self.cpu_model)),
            (_TAG_PROGRAM_PATH, _enc_str(self.program_path)),
            (_TAG_PROGRAM_SIZE, _U64.pack(self.program_size)),
            (_TAG_PROGRAM_SHA256, self.program_sha256),
            (
                _TAG_ARGV,
                _U32.pack(len(self.argv)) + b"".join(_U32.pack(len(a)) + a for a in self.argv),
            ),
            (_TAG_SNAPSHOT_IMAGE, _enc_str(self.snapshot_image)),
            (_TAG_SNAPSHOT_INTERVAL, _U64.pack(self.snapshot_interval)),
            (_TAG_CREATED_NS, _I64.pack(self.created_ns)),
        ]
        for key in sorted(self.extra):
            k = _enc_str(key)
            records.append((_TAG_EXTRA, _U32.pack(len(k)) + k + _enc_str(self.extra[key])))
        out = bytearray()
        for tag, value in records:
            if len(value) > _U32_MAX:
                raise ValueError(f"header field {tag} is longer than 4 GiB")
            out += _TLV_HEAD.pack(tag, len(value))
            out += value
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes, base: int = 0) -> LogHeader:
        """Parse TLV records; ``ValueError`` names the bad record's offset (+``base``)."""
        values: dict[int, bytes] = {}
        extra: dict[str, str] = {}
        pos = 0
        while pos < len(data):
            at = base + pos
            if pos + _TLV_HEAD.size > len(data):
                raise ValueError(f"header record at offset {at} is cut short")
            tag, length = _TLV_HEAD.unpack_from(data, pos)
            pos += _TLV_HEAD.size
            value = data[pos : pos + length]
            if len(value) != length:
                raise ValueError(f"header record at offset {at} is cut short")
            pos += length
            if tag == _TAG_EXTRA:
                if length < 4 or (klen := _U32.unpack_from(value)[0]) > length - 4:
                    raise ValueError(f"malformed extra field at offset {at}")
                key = _dec_str(value[4 : 4 + klen])
                if key in extra:
                    raise ValueError(f"duplicate extra field {key!r} at offset {at}")
                extra[key] = _dec_str(value[4 + klen :])
            elif tag in _REQUIRED_TAGS:
                if tag in values:
                    raise ValueError(f"duplicate header field {tag} at offset {at}")
                sizes = {
                    _TAG_PROGRAM_SIZE: 8,
                    _TAG_PROGRAM_SHA256: 32,
                    _TAG_SNAPSHOT_INTERVAL: 8,
                    _TAG_CREATED_NS: 8,
                }
                if tag in sizes and length != sizes[tag]:
                    raise ValueError(f"header field {tag} at offset {at} has length {length}")
                values[tag] = value
            # Unknown tags are skipped: additions that old readers may ignore.
        missing = sorted(_REQUIRED_TAGS - values.keys())
        if missing:
            raise ValueError(f"header field {missing[0]} is missing")
        return cls(
            rrdbg_version=_dec_str(values[_TAG_RRDBG_VERSION]),
            unicorn_version=_dec_str(values[_TAG_UNICORN_VERSION]),
            cpu_model=_dec_str(values[_TAG_CPU_MODEL]),
            program_path=_dec_str(values[_TAG_PROGRAM_PATH]),
            program_size=_U64.unpack(values[_TAG_PROGRAM_SIZE])[0],
            program_sha256=values[_TAG_PROGRAM_SHA256],
            argv=_decode_argv(values[_TAG_ARGV]),
            snapshot_image=_dec_str(values[_TAG_SNAPSHOT_IMAGE]),
            snapshot_interval=_U64.unpack(values[_TAG_SNAPSHOT_INTERVAL])[0],
            created_ns=_I64.unpack(values[_TAG_CREATED_NS])[0],
            extra=extra,
        )


def _decode_argv(value: bytes) -> tuple[bytes, ...]:
    if len(value) < 4:
        raise ValueError("malformed argv field")
    (count,) = _U32.unpack_from(value)
    pos = 4
    out = []
    for _ in range(count):
        if pos + 4 > len(value):
            raise ValueError("malformed argv field")
        (n,) = _U32.unpack_from(value, pos)
        pos += 4
        if pos + n > len(value):
            raise ValueError("malformed argv field")
        out.append(value[pos : pos + n])
        pos += n
    if pos != len(value):
        raise ValueError("malformed argv field")
    return tuple(out)


# -- writer -------------------------------------------------------------------


class LogWriter:
    """Appends events to a new log, one chunk per ``write`` (use ``create``).

    Events are buffered; the buffer becomes a chunk, written to the OS at
    once, when it reaches ``chunk_bytes`` or on ``flush()``.  Every completed
    chunk survives the recorder being killed (nothing is fsynced: a machine
    crash may lose the tail).  Leaving the ``with`` block without ``close``
    (an exception, say) writes the buffered events without an END event, so
    the log reads back as not cleanly ended.
    """

    def __init__(self, path: str, fd: int, header: LogHeader, chunk_bytes: int) -> None:
        self.path = path
        self.header = header
        self.chunk_bytes = chunk_bytes
        self._fd: int | None = fd
        self._offset = 0  # bytes in the file = offset of the next chunk
        self._buf = bytearray()
        self._count = 0
        self._first_icount = 0
        self._last_icount = 0
        self._events_written = 0
        self._chunks_written = 0

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        header: LogHeader,
        *,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> LogWriter:
        """Create ``path`` (never overwriting it) and write the preamble and header."""
        name = os.fspath(path)
        if not 1 <= chunk_bytes <= _MAX_CHUNK_PAYLOAD:
            raise ValueError(f"chunk_bytes must be in 1..{_MAX_CHUNK_PAYLOAD}")
        tlv = header.to_bytes()
        preamble = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, 0, len(tlv) + 4)
        blob = preamble + tlv + _U32.pack(crc32c(tlv, crc32c(preamble)))
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            raise LogFormatError(
                f"{name}: already exists; a replay log is never overwritten"
            ) from None
        except OSError as exc:
            raise LogFormatError(f"{name}: cannot create replay log: {exc.strerror}") from None
        writer = cls(name, fd, header, chunk_bytes)
        try:
            writer._write(blob)
        except BaseException:
            writer._close_fd()
            raise
        return writer

    # -- state -----------------------------------------------------------
    @property
    def position(self) -> Cursor:
        """The cursor the next appended event will have."""
        return Cursor(self._offset, self._count)

    @property
    def last_icount(self) -> int:
        """The icount of the last appended event (0 before the first)."""
        return self._last_icount

    @property
    def events_written(self) -> int:
        """Events in chunks already written to the file (END included)."""
        return self._events_written

    @property
    def events_buffered(self) -> int:
        return self._count

    @property
    def chunks_written(self) -> int:
        return self._chunks_written

    @property
    def bytes_written(self) -> int:
        """Bytes in the file: preamble, header and the chunks written so far."""
        return self._offset

    @property
    def closed(self) -> bool:
        return self._fd is None

    # -- appending -------------------------------------------------------
    def append(self, icount: int, kind: int, payload: bytes | bytearray | memoryview = b"") -> None:
        """Buffer one event; ``kind`` in 1..255, ``icount`` not below the last one."""
        if not 1 <= kind <= 255:
            raise ValueError(f"event kind {kind} is not in 1..255")
        self._append(icount, kind, payload)

    def flush(self) -> None:
        """Write the buffered events as one chunk (nothing if none are buffered)."""
        self._check_open()
        if self._count:
            self._write_chunk()

    def close(self, end_icount: int, end_payload: bytes | bytearray | memoryview = b"") -> None:
        """Append the END event (kind 0), write the last chunk and close the file."""
        self._append(end_icount, KIND_END, end_payload)
        try:
            if self._count:  # END may have filled the chunk and been written already
                self._write_chunk()
        finally:
            self._close_fd()

    def abort(self) -> None:
        """Write the buffered events and close without END (a no-op once closed)."""
        if self._fd is None:
            return
        try:
            if self._count:
                self._write_chunk()
        finally:
            self._close_fd()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.abort()
            return
        with contextlib.suppress(LogFormatError):  # the original exception matters more
            self.abort()

    # -- internals -------------------------------------------------------
    def _check_open(self) -> None:
        if self._fd is None:
            raise ValueError(f"{self.path}: replay log writer is closed")

    def _append(self, icount: int, kind: int, payload: bytes | bytearray | memoryview) -> None:
        self._check_open()
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        if not self._last_icount <= icount <= _U64_MAX:
            raise ValueError(
                f"event icount {icount} is below the previous one ({self._last_icount})"
                if icount < self._last_icount
                else f"event icount {icount} does not fit in 64 bits"
            )
        n = len(payload)
        if self._count and len(self._buf) + 21 + n > _MAX_CHUNK_PAYLOAD:
            self._write_chunk()
        if self._count:
            delta = icount - self._last_icount
        else:
            delta = 0
            self._first_icount = icount
        head = (
            bytes((delta, kind, n))
            if delta < 0x80 and n < 0x80
            else _uvarint(delta) + bytes((kind,)) + _uvarint(n)
        )
        if len(self._buf) + len(head) + n > _MAX_CHUNK_PAYLOAD:
            raise ValueError(f"event payload of {n} bytes does not fit in a chunk")
        self._buf += head
        self._buf += payload
        self._count += 1
        self._last_icount = icount
        if len(self._buf) >= self.chunk_bytes:
            self._write_chunk()

    def _write_chunk(self) -> None:
        payload = self._buf
        fields = _CHUNK_HEAD.pack(CHUNK_MAGIC, len(payload), 0, self._first_icount, self._count)
        crc = crc32c(payload, crc32c(fields[12:], crc32c(fields[4:8])))
        head = fields[:8] + _U32.pack(crc) + fields[12:]
        self._write(head + payload)
        self._events_written += self._count
        self._chunks_written += 1
        self._buf = bytearray()
        self._count = 0

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            raise LogFormatError(f"{self.path}: cannot write replay log: {exc.strerror}") from None
        self._offset += len(data)

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


# -- reader -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Chunk:
    offset: int
    end: int  # offset of the next chunk
    first_icount: int
    last_icount: int
    count: int


@dataclass(frozen=True, slots=True)
class LogSummary:
    """The whole readable log at a glance (``LogReader.summary``)."""

    #: Events read, END included.
    events: int
    #: Event count per kind (kind 0 is END).
    events_by_kind: Mapping[int, int]
    chunks: int
    #: Size of the file.
    file_bytes: int
    #: Where the readable log ends: after the last valid chunk.
    readable_bytes: int
    #: The icount of the last readable event (None if there is none).
    last_icount: int | None
    #: The END event's icount and payload, if the log ends cleanly.
    end_icount: int | None
    end_payload: bytes | None
    clean_end: bool
    #: Offset of the first invalid or missing chunk (None if ``clean_end``).
    truncated_at: int | None
    #: Bytes after the END chunk (ignored; 0 for a log written by LogWriter).
    trailing_bytes: int


class LogReader:
    """Reads a log written by ``LogWriter`` (use ``open``).

    Iterating, ``next()`` and ``peek()`` go forward from the current
    position; ``seek`` goes to any cursor.  Chunks are validated in file
    order the first time they are reached and decoded one at a time (a few
    decoded chunks are cached).  ``clean_end`` and ``truncated_at`` describe
    the part of the log reached so far: both are final once ``next()`` or
    ``peek()`` has returned None (``summary()`` reads the whole log).  The
    file must not change while it is open.
    """

    def __init__(self, path: str, fd: int, header: LogHeader, flags: int, first: int) -> None:
        self.path = path
        self.header = header
        self.flags = flags
        #: Offset of the first chunk (just after the header).
        self.first_chunk_offset = first
        self._fd: int | None = fd
        self._chunks: list[_Chunk] = []
        self._chunk_at: dict[int, int] = {}
        self._frontier = first  # offset after the last validated chunk
        self._done = False  # met END, EOF or an invalid chunk at _frontier
        self._end_event: Event | None = None
        self._truncated_at: int | None = None
        self._cache: OrderedDict[int, list[Event]] = OrderedDict()
        self._ci = -1  # index in _chunks of the chunk whose events are _events
        self._events: list[Event] = []
        self._ei = 0

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> LogReader:
        """Open ``path`` and check its preamble and header (``LogFormatError`` if bad)."""
        name = os.fspath(path)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise LogFormatError(f"{name}: cannot open replay log: {exc.strerror}") from None
        try:
            header, flags, first = _read_header(name, fd)
        except BaseException:
            os.close(fd)
            raise
        return cls(name, fd, header, flags, first)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> LogReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what has been learnt about the end -------------------------------
    @property
    def clean_end(self) -> bool:
        """True once the END event has been reached."""
        return self._end_event is not None

    @property
    def truncated_at(self) -> int | None:
        """Offset of the first invalid or missing chunk, once reached."""
        return self._truncated_at

    @property
    def end_event(self) -> Event | None:
        """The END event, once reached."""
        return self._end_event

    # -- sequential access -----------------------------------------------
    def peek(self) -> Event | None:
        """The next event without consuming it; None at the end of the readable log."""
        while self._ei >= len(self._events):
            target = self._ci + 1
            if target < len(self._chunks):
                events = self._load(target)
            elif self._done:
                return None
            else:
                scanned = self._scan_next()
                if scanned is None:
                    return None
                events = scanned
            self._ci, self._events, self._ei = target, events, 0
        return self._events[self._ei]

    def next(self) -> Event | None:
        """The next event, consumed; None at the end of the readable log."""
        event = self.peek()
        if event is not None:
            self._ei += 1
        return event

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        event = self.next()
        if event is None:
            raise StopIteration
        return event

    @property
    def position(self) -> Cursor:
        """The cursor of the next event, or (end of the readable log, 0) at the end."""
        event = self.peek()
        return event.cursor if event is not None else Cursor(self._frontier, 0)

    # -- random access ---------------------------------------------------
    def seek(self, cursor: Cursor) -> None:
        """Go to ``cursor`` (from an event, ``position`` or ``LogWriter.position``).

        Raises LogFormatError if it names no place in the readable log.
        """
        offset, index = cursor.chunk_offset, cursor.index
        while offset not in self._chunk_at and not self._done and self._frontier <= offset:
            self._scan_next()
        i = self._chunk_at.get(offset)
        if i is not None and 0 <= index <= self._chunks[i].count:
            self._ci, self._events, self._ei = i, self._load(i), index
        elif offset == self._frontier and index == 0 and self._done:
            self._ci, self._events, self._ei = len(self._chunks) - 1, [], 0
        else:
            raise LogFormatError(
                f"{self.path}: no event at chunk offset {offset}, index {index} "
                f"(the readable log is offsets {self.first_chunk_offset}..{self._frontier})"
            )

    def rewind(self) -> None:
        """Go back to the first event."""
        self._ci, self._events, self._ei = -1, [], 0

    def summary(self) -> LogSummary:
        """Read the whole log (the position is kept) and describe it."""
        saved = self.position
        self.rewind()
        by_kind: dict[int, int] = {}
        events = 0
        last: int | None = None
        while self.peek() is not None:
            for event in self._events[self._ei :]:
                by_kind[event.kind] = by_kind.get(event.kind, 0) + 1
                last = event.icount
            events += len(self._events) - self._ei
            self._ei = len(self._events)
        self.seek(saved)
        end = self._end_event
        size = self._file_size()
        return LogSummary(
            events=events,
            events_by_kind=dict(sorted(by_kind.items())),
            chunks=len(self._chunks),
            file_bytes=size,
            readable_bytes=self._frontier,
            last_icount=last,
            end_icount=None if end is None else end.icount,
            end_payload=None if end is None else end.payload,
            clean_end=end is not None,
            truncated_at=self._truncated_at,
            trailing_bytes=max(size - self._frontier, 0) if end is not None else 0,
        )

    # -- internals -------------------------------------------------------
    def _pread(self, offset: int, size: int) -> bytes:
        if self._fd is None:
            raise ValueError(f"{self.path}: replay log reader is closed")
        parts = []
        try:
            while size > 0:
                part = os.pread(self._fd, min(size, _READ_MAX), offset)
                if not part:
                    break
                parts.append(part)
                offset += len(part)
                size -= len(part)
        except OSError as exc:
            raise LogFormatError(f"{self.path}: cannot read replay log: {exc.strerror}") from None
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _file_size(self) -> int:
        if self._fd is None:
            raise ValueError(f"{self.path}: replay log reader is closed")
        try:
            return os.fstat(self._fd).st_size
        except OSError as exc:
            raise LogFormatError(f"{self.path}: cannot read replay log: {exc.strerror}") from None

    def _read_chunk(self, offset: int, prev_icount: int) -> tuple[_Chunk, list[Event]] | None:
        """Read and check the chunk at ``offset``; None if it is missing or invalid."""
        head = self._pread(offset, _CHUNK_HEAD.size)
        if len(head) < _CHUNK_HEAD.size:
            return None
        magic, length, crc, first, count = _CHUNK_HEAD.unpack(head)
        if magic != CHUNK_MAGIC or count == 0:
            return None
        end = offset + _CHUNK_HEAD.size + length
        if end > self._file_size():
            return None
        payload = self._pread(offset + _CHUNK_HEAD.size, length)
        if len(payload) != length or crc32c(payload, crc32c(head[12:], crc32c(head[4:8]))) != crc:
            return None
        if first < prev_icount:
            return None
        events = _decode_events(payload, offset, first, count)
        if events is None:
            return None
        return _Chunk(offset, end, first, events[-1].icount, count), events

    def _scan_next(self) -> list[Event] | None:
        """Validate the chunk at the frontier and add it; None (and done) if invalid."""
        prev = self._chunks[-1].last_icount if self._chunks else 0
        found = self._read_chunk(self._frontier, prev)
        if found is None:
            self._done = True
            self._truncated_at = self._frontier
            return None
        chunk, events = found
        self._chunk_at[chunk.offset] = len(self._chunks)
        self._chunks.append(chunk)
        self._frontier = chunk.end
        self._remember(chunk.offset, events)
        if events[-1].kind == KIND_END:
            self._done = True
            self._end_event = events[-1]
        return events

    def _load(self, i: int) -> list[Event]:
        chunk = self._chunks[i]
        events = self._cache.get(chunk.offset)
        if events is not None:
            self._cache.move_to_end(chunk.offset)
            return events
        prev = self._chunks[i - 1].last_icount if i else 0
        found = self._read_chunk(chunk.offset, prev)
        if found is None or found[0] != chunk:
            raise LogFormatError(
                f"{self.path}: the chunk at offset {chunk.offset} changed since it was read"
            )
        self._remember(chunk.offset, found[1])
        return found[1]

    def _remember(self, offset: int, events: list[Event]) -> None:
        self._cache[offset] = events
        self._cache.move_to_end(offset)
        while len(self._cache) > _CACHED_CHUNKS:
            self._cache.popitem(last=False)


def _read_header(name: str, fd: int) -> tuple[LogHeader, int, int]:
    """(header, flags, offset of the first chunk) of the open log ``fd``."""
    try:
        size = os.fstat(fd).st_size
        pre = os.pread(fd, _PREAMBLE.size, 0)
    except OSError as exc:
        raise LogFormatError(f"{name}: cannot read replay log: {exc.strerror}") from None
    if pre[: len(MAGIC)] != MAGIC[: len(pre)]:
        raise LogFormatError(f"{name}: not an rrdbg replay log")
    if len(pre) < _PREAMBLE.size:
        raise LogFormatError(
            f"{name}: replay log header truncated at offset {len(pre)} "
            f"(the preamble is {_PREAMBLE.size} bytes)"
        )
    _, version, flags, length = _PREAMBLE.unpack(pre)
    if version != FORMAT_VERSION:
        raise LogFormatError(
            f"{name}: replay log format version {version}, this rrdbg reads {FORMAT_VERSION}"
        )
    if length < 4:
        raise LogFormatError(
            f"{name}: malformed replay log header at offset 12 (header length {length})"
        )
    end = _PREAMBLE.size + length
    if end > size:
        raise LogFormatError(
            f"{name}: replay log header truncated at offset {size} (it ends at offset {end})"
        )
    try:
        blob = os.pread(fd, length, _PREAMBLE.size)
    except OSError as exc:
        raise LogFormatError(f"{name}: cannot read replay log: {exc.strerror}") from None
    if len(blob) != length:
        raise LogFormatError(
            f"{name}: replay log header truncated at offset {_PREAMBLE.size + len(blob)} "
            f"(it ends at offset {end})"
        )
    tlv = blob[:-4]
    (crc,) = _U32.unpack(blob[-4:])
    if crc32c(tlv, crc32c(pre)) != crc:
        raise LogFormatError(
            f"{name}: replay log header CRC mismatch (header at offset {_PREAMBLE.size}, "
            f"{length} bytes; checksum at offset {end - 4})"
        )
    # Checked after the CRC: flags are covered by it, so a damaged flag word
    # reads as damage, not as an unknown feature.
    unknown = flags & INCOMPATIBLE_FLAGS_MASK & ~KNOWN_FLAGS
    if unknown:
        raise LogFormatError(
            f"{name}: replay log uses format flags {unknown:#06x} this rrdbg does not know"
        )
    try:
        header = LogHeader.from_bytes(tlv, _PREAMBLE.size)
    except ValueError as exc:
        raise LogFormatError(f"{name}: malformed replay log header: {exc}") from None
    return header, flags, end


def _decode_events(payload: bytes, offset: int, icount: int, count: int) -> list[Event] | None:
    """The ``count`` events of a chunk payload, or None if it is malformed."""
    events: list[Event] = []
    append = events.append
    pos = 0
    size = len(payload)
    last = count - 1
    try:
        for index in range(count):
            delta = payload[pos]
            if delta & 0x80:
                delta, pos = _read_uvarint(payload, pos)
            else:
                pos += 1
            if delta and not index:
                return None
            icount += delta
            kind = payload[pos]
            length = payload[pos + 1]
            pos += 2
            if length & 0x80:
                length, pos = _read_uvarint(payload, pos - 1)
            end = pos + length
            if end > size or (kind == KIND_END and index != last):
                return None
            append(Event(icount, kind, payload[pos:end], Cursor(offset, index)))
            pos = end
    except (IndexError, ValueError):
        return None
    if pos != size or icount > _U64_MAX:
        return None
    return events
