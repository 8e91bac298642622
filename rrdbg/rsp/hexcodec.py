"""Byte-level codecs of the GDB Remote Serial Protocol: hex, numbers, escapes, run lengths.

Role: the small pure functions every other rsp module uses to turn wire text into
values and back.  Parsers raise ``RemoteProtocolError`` (the client's text was
bad); encoders raise ``LocalProtocolError`` (we were asked to encode nonsense).

Invariants:
- ``hex_decode(hex_encode(b)) == b`` and ``decode_payload(escape_binary(b)) == b``.
- ``decode_payload(rle_encode(p)) == p`` for payloads without ``}`` (the only ones
  ``rle_encode`` is used on).
- Number parsing is strict: Python's ``int(x, 16)`` accepts ``0x``, ``_``, signs and
  spaces, none of which the protocol allows, so every input is checked first.

Must not import anything outside the stdlib and ``rrdbg.errors``.
"""

from __future__ import annotations

import re
from typing import Final

from rrdbg.errors import LocalProtocolError, RemoteProtocolError

_HEX_DIGITS: Final = re.compile(rb"[0-9a-fA-F]+")
_HEX_TEXT: Final = re.compile(rb"(?:[0-9a-fA-F]{2})*")

#: The largest number a packet argument may carry: no target has wider addresses.
MAX_NUMBER: Final = (1 << 64) - 1
#: Bytes that cannot appear raw in a packet body: they are sent as ``}`` + (byte ^ 0x20).
ESCAPED_BYTES: Final = b"#$}*"
ESCAPE: Final = 0x7D  # '}'
RUN_LENGTH: Final = 0x2A  # '*'
# A run-length count byte n means "n - 29 more copies"; the protocol wants it
# printable (' ' .. '~') and never '#' or '$' (6 and 7 copies).
_RLE_BIAS: Final = 29
_RLE_MIN: Final = 3
_RLE_MAX: Final = 126 - _RLE_BIAS
_RLE_FORBIDDEN: Final = frozenset({ord("#") - _RLE_BIAS, ord("$") - _RLE_BIAS})
_RUNS: Final = re.compile(rb"(.)\1{%d,}" % _RLE_MIN, re.DOTALL)
_NEEDS_ESCAPE: Final = re.compile(rb"[#$}*]")


def hex_encode(data: bytes) -> bytes:
    """Two lowercase hex digits per byte."""
    return data.hex().encode("ascii")


def hex_decode(text: bytes) -> bytes:
    """Bytes from an even-length hex string.

    Raises:
        RemoteProtocolError: odd length or a non-hex character.
    """
    if _HEX_TEXT.fullmatch(text) is None:
        raise RemoteProtocolError(f"bad hex data {_show(text)}")
    return bytes.fromhex(text.decode("ascii"))


def parse_hex(text: bytes, what: str = "number") -> int:
    """A non-negative integer written in hex digits only (no sign, prefix or spaces).

    Raises:
        RemoteProtocolError: empty, not hex, or above ``MAX_NUMBER``; ``what`` names
            the field in the message.
    """
    if _HEX_DIGITS.fullmatch(text) is None:
        raise RemoteProtocolError(f"bad {what} {_show(text)}")
    value = int(text, 16)
    if value > MAX_NUMBER:
        raise RemoteProtocolError(f"{what} {_show(text)} does not fit in 64 bits")
    return value


def le_bytes(value: int, size: int) -> bytes:
    """``value`` as ``size`` little-endian bytes (two's complement for negatives)."""
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def le_int(data: bytes) -> int:
    """The unsigned little-endian integer in ``data``."""
    return int.from_bytes(data, "little")


def escape_binary(data: bytes) -> bytes:
    """Escape ``# $ } *`` as ``}`` + (byte ^ 0x20), as binary packet bodies require."""
    if _NEEDS_ESCAPE.search(data) is None:
        return data
    return _NEEDS_ESCAPE.sub(lambda m: bytes((ESCAPE, m.group()[0] ^ 0x20)), data)


def rle_encode(payload: bytes) -> bytes:
    """Run-length encode a payload that contains no escapes; only where it saves bytes.

    Raises:
        LocalProtocolError: the payload contains ``}`` or ``*``.  Decoders disagree on
            whether a run after an escape repeats the escaped or the raw byte, so
            escaped (binary) payloads are never run-length encoded.
    """
    if b"}" in payload or b"*" in payload:
        raise LocalProtocolError("run-length encoding needs a payload without '}' and '*'")
    return _RUNS.sub(_encode_run, payload)


def _encode_run(match: re.Match[bytes]) -> bytes:
    run = match.group()
    byte = run[:1]
    out = bytearray(byte)
    more = len(run) - 1  # copies still to produce after the one just written
    while more:
        if more < _RLE_MIN:
            out += byte * more
            break
        count = min(more, _RLE_MAX)
        while count in _RLE_FORBIDDEN:
            count -= 1
        out += b"*" + bytes((count + _RLE_BIAS,))
        more -= count
        if more:
            out += byte
            more -= 1
    return bytes(out)


def decode_payload(raw: bytes, limit: int | None = None) -> bytes:
    """Undo ``}`` escapes and ``*`` run lengths in a packet body as it came off the wire.

    One pass, like gdbserver and QEMU: ``*`` repeats the byte decoded just before it
    (which may itself have been escaped).

    Raises:
        RemoteProtocolError: a dangling ``}`` or ``*``, a ``*`` with nothing before it or
            with a count below ``' '`` - 3, or a result longer than ``limit``.
    """
    if b"}" not in raw and b"*" not in raw:
        return raw
    out = bytearray()
    pos = 0
    end = len(raw)
    while pos < end:
        special = _next_special(raw, pos)
        out += raw[pos:special]
        if special == end:
            break
        if special + 1 >= end:
            raise RemoteProtocolError("packet ends inside an escape or a run length")
        marker, arg = raw[special], raw[special + 1]
        if marker == ESCAPE:
            out.append(arg ^ 0x20)
        else:
            if not out:
                raise RemoteProtocolError("run length with nothing to repeat")
            if arg < _RLE_BIAS:
                raise RemoteProtocolError(f"bad run-length count byte 0x{arg:02x}")
            out += out[-1:] * (arg - _RLE_BIAS)
        if limit is not None and len(out) > limit:
            raise RemoteProtocolError(f"packet too long once decoded (over {limit} bytes)")
        pos = special + 2
    if limit is not None and len(out) > limit:
        raise RemoteProtocolError(f"packet too long once decoded (over {limit} bytes)")
    return bytes(out)


def _next_special(raw: bytes, pos: int) -> int:
    escape = raw.find(b"}", pos)
    run = raw.find(b"*", pos)
    if escape < 0:
        return run if run >= 0 else len(raw)
    return escape if run < 0 else min(escape, run)


def _show(text: bytes, limit: int = 40) -> str:
    """A short printable rendering of client text for error messages."""
    shown = text[:limit].decode("ascii", "backslashreplace")
    return repr(shown + ("..." if len(text) > limit else ""))
