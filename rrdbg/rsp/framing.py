"""Packet framing: the byte-level state machine that cuts ``$payload#cs`` out of a stream.

Role: turn raw bytes from the client into framing events (a packet with its
checksum verdict, an ack, a NAK, a Ctrl-C), and frame outgoing payloads.  It knows
nothing about what a packet means and nothing about ack policy: ``connection.py``
decides what to do with a bad checksum or a ``-``.

Theory of operation
-------------------
Outside a packet (``IDLE``) only four bytes matter: ``$`` starts a packet, ``+`` and
``-`` are acks, 0x03 is an interrupt; everything else is line noise and skipped.
Inside a packet (``PAYLOAD``) bytes are collected up to ``#``.  ``}`` (``ESCAPE``)
and ``*`` (``RUN_LENGTH``) each take the next byte as their argument, whatever it
is, so an escaped ``#`` or a count byte equal to ``}`` never ends or escapes
anything.  ``$`` and 0x03 inside a packet are data (a truncated packet shows up as
a checksum failure, not as a resynchronisation).  After ``#`` come two checksum
characters (``CHECKSUM1``, ``CHECKSUM2``); the packet is then reported and the
state returns to ``IDLE``.

The checksum covers the payload as sent (escapes and run lengths included), so
it is computed over the raw bytes; escapes and run lengths are undone only after
the packet is complete.

Invariants:
- ``Framer.feed`` and ``Framer.next_frame`` never raise on any input.
- Scanning uses ``re.search``/slicing, never a Python loop per byte, so a packet
  costs a handful of interpreter steps whatever its length.
- At most ``max_payload`` raw bytes of one packet are held; a longer packet is
  consumed to its end and reported as ``OversizedPacket`` with a short prefix.

Must not import anything outside the stdlib, ``rrdbg.errors`` and ``rrdbg.rsp``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from rrdbg.errors import RemoteProtocolError
from rrdbg.rsp.hexcodec import decode_payload, escape_binary, rle_encode

#: How much of an oversized or undecodable packet is kept for the error message.
PREFIX_KEPT: Final = 32
# Compact the input buffer once this much of it has been consumed: amortised O(1)
# per byte while keeping the buffer from growing without bound.
_COMPACT_AFTER: Final = 1 << 16

_IDLE_SPECIAL: Final = re.compile(rb"[$+\-\x03]")
_PAYLOAD_SPECIAL: Final = re.compile(rb"[#}*]")
_HEX_PAIR: Final = re.compile(rb"[0-9a-fA-F]{2}")


class FrameState(enum.Enum):
    """Where the framer is in the byte stream (see the module's theory of operation)."""

    #: Between packets: waiting for ``$``, ``+``, ``-`` or 0x03.
    IDLE = enum.auto()
    #: Inside a packet body, collecting bytes up to ``#``.
    PAYLOAD = enum.auto()
    #: After ``}``: the next byte is an escaped data byte.
    ESCAPE = enum.auto()
    #: After ``*``: the next byte is a run-length count.
    RUN_LENGTH = enum.auto()
    #: After ``#``: waiting for the first checksum digit.
    CHECKSUM1 = enum.auto()
    #: Waiting for the second checksum digit.
    CHECKSUM2 = enum.auto()


@dataclass(frozen=True, slots=True)
class PacketReceived:
    """A complete packet; ``payload`` has escapes and run lengths undone."""

    payload: bytes
    checksum_ok: bool


@dataclass(frozen=True, slots=True)
class BadPacket:
    """A complete packet whose body cannot be used: too long, or bad escapes/run lengths."""

    prefix: bytes
    message: str
    checksum_ok: bool


@dataclass(frozen=True, slots=True)
class AckReceived:
    """A ``+`` (positive) or ``-`` (resend request) outside a packet."""

    positive: bool


@dataclass(frozen=True, slots=True)
class InterruptReceived:
    """A 0x03 byte outside a packet."""


FrameEvent = PacketReceived | BadPacket | AckReceived | InterruptReceived


def checksum(payload: bytes) -> int:
    """The RSP checksum: the sum of the bytes, modulo 256."""
    return sum(payload) & 0xFF


def frame_raw(wire_payload: bytes) -> bytes:
    """``$`` + payload + ``#`` + checksum, for a payload that is already wire-safe."""
    return b"$%s#%02x" % (wire_payload, checksum(wire_payload))


def frame(payload: bytes, *, rle: bool = False) -> bytes:
    """Frame arbitrary payload bytes the way gdb frames a binary packet.

    ``# $ } *`` are escaped; with ``rle`` (and nothing to escape) runs are
    compressed.  ``Framer`` yields ``PacketReceived(payload, True)`` for the result.
    """
    wire = escape_binary(payload)
    if rle and wire == payload and b"*" not in wire:
        wire = rle_encode(wire)
    return frame_raw(wire)


class Framer:
    """Incremental parser of the client's byte stream into ``FrameEvent`` s."""

    __slots__ = (
        "_buf",
        "_checksum_text",
        "_max_payload",
        "_oversized",
        "_payload",
        "_pos",
        "_raw_length",
        "_raw_sum",
        "state",
    )

    def __init__(self, max_payload: int) -> None:
        self._max_payload = max_payload
        self._buf = bytearray()
        self._pos = 0
        self.state = FrameState.IDLE
        self._payload = bytearray()
        self._raw_length = 0
        self._raw_sum = 0  # checksum of raw bytes dropped from an oversized packet
        self._oversized = False
        self._checksum_text = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held: unconsumed input plus the partial packet (for memory checks)."""
        return len(self._buf) - self._pos + len(self._payload) + len(self._checksum_text)

    def feed(self, data: bytes) -> None:
        """Append received bytes; nothing is parsed until ``next_frame``."""
        if self._pos >= _COMPACT_AFTER or self._pos == len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_frame(self) -> FrameEvent | None:
        """The next framing event, or None when more bytes are needed."""
        buf = self._buf
        end = len(buf)
        while self._pos < end:
            pos = self._pos
            state = self.state
            if state is FrameState.IDLE:
                match = _IDLE_SPECIAL.search(buf, pos)
                if match is None:
                    self._pos = end
                    break
                at = match.start()
                self._pos = at + 1
                byte = buf[at]
                if byte == 0x24:  # '$'
                    self._start_packet()
                elif byte == 0x2B:  # '+'
                    return AckReceived(positive=True)
                elif byte == 0x2D:  # '-'
                    return AckReceived(positive=False)
                else:
                    return InterruptReceived()
            elif state is FrameState.PAYLOAD:
                match = _PAYLOAD_SPECIAL.search(buf, pos)
                stop = end if match is None else match.start()
                self._keep(buf, pos, stop)
                self._pos = stop
                if match is None:
                    break
                self._pos = stop + 1
                byte = buf[stop]
                if byte == 0x23:  # '#'
                    self.state = FrameState.CHECKSUM1
                else:
                    self._keep(buf, stop, stop + 1)
                    self.state = FrameState.ESCAPE if byte == 0x7D else FrameState.RUN_LENGTH
            elif state is FrameState.ESCAPE or state is FrameState.RUN_LENGTH:
                self._keep(buf, pos, pos + 1)
                self._pos = pos + 1
                self.state = FrameState.PAYLOAD
            elif state is FrameState.CHECKSUM1:
                self._checksum_text.append(buf[pos])
                self._pos = pos + 1
                self.state = FrameState.CHECKSUM2
            else:
                self._checksum_text.append(buf[pos])
                self._pos = pos + 1
                self.state = FrameState.IDLE
                return self._finish_packet()
        return None

    def _start_packet(self) -> None:
        self.state = FrameState.PAYLOAD
        self._payload.clear()
        self._checksum_text.clear()
        self._raw_length = 0
        self._raw_sum = 0
        self._oversized = False

    def _keep(self, buf: bytearray, start: int, stop: int) -> None:
        """Account for raw payload bytes ``buf[start:stop]``, storing them if within limits."""
        if start == stop:
            return
        self._raw_length += stop - start
        if not self._oversized and self._raw_length <= self._max_payload:
            self._payload += buf[start:stop]
            return
        if not self._oversized:
            # Switch to counting: keep only a prefix for the error message and a
            # running checksum, so memory stays bounded however long the packet is.
            self._oversized = True
            self._raw_sum = sum(self._payload)
            del self._payload[PREFIX_KEPT:]
        room = PREFIX_KEPT - len(self._payload)
        if room > 0:
            self._payload += buf[start : min(stop, start + room)]
        self._raw_sum += sum(buf[start:stop])

    def _finish_packet(self) -> FrameEvent:
        text = bytes(self._checksum_text)
        raw = bytes(self._payload)
        self._payload.clear()
        self._checksum_text.clear()
        total = self._raw_sum if self._oversized else sum(raw)
        ok = _HEX_PAIR.fullmatch(text) is not None and int(text, 16) == total & 0xFF
        if self._oversized:
            return BadPacket(
                raw[:PREFIX_KEPT],
                f"packet too long ({self._raw_length} bytes, limit {self._max_payload})",
                ok,
            )
        try:
            payload = decode_payload(raw, self._max_payload)
        except RemoteProtocolError as exc:
            return BadPacket(raw[:PREFIX_KEPT], str(exc), ok)
        return PacketReceived(payload, ok)
