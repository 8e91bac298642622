"""RspConnection: the sans-IO GDB remote protocol endpoint of the stub side.

Role: bytes in (``receive_data``), typed events out (``next_event``), replies in
(``send``), bytes out (``data_to_send``), in the manner of h11.  It owns the
connection-level rules: acknowledgements, resends, the switch to no-ack mode,
interrupts, EOF.  It never does I/O and never decides what a request means for
the target.

Theory of operation
-------------------
Bytes are parsed lazily, one event per ``next_event`` call, so that everything
the connection does in reply (``+``, ``-``, a resend) is queued in order with the
replies the caller sends in between.  In ack mode (the start of every session):

- a packet with a good checksum queues ``+`` and becomes an event;
- a bad checksum queues ``-`` and no event (the client resends);
- a received ``-`` queues the last packet we sent again; ``+`` needs nothing.

``QStartNoAckMode`` is special: the switch happens only once its ``OK`` has been
queued, so the ``OK`` itself still goes out in ack mode and gdb's ``+`` for it
(which may arrive later) is ignored.  In no-ack mode nothing is acknowledged,
incoming ``+``/``-`` are ignored and checksums are not checked.  A 0x03 outside
a packet is an ``Interrupt`` event in either mode.

Invariants:
- ``receive_data`` and ``next_event`` never raise, whatever the bytes; a bug in
  our own use of the API (an unencodable reply) raises ``LocalProtocolError``
  from ``send``.
- At most about ``packet_size`` bytes of a packet being received are held.

Must not import anything outside the stdlib, ``rrdbg.errors`` and ``rrdbg.rsp``
(no sockets, no trio).
"""

from __future__ import annotations

from typing import Final, assert_never

from rrdbg.errors import LocalProtocolError
from rrdbg.rsp.framing import (
    AckReceived,
    BadPacket,
    Framer,
    InterruptReceived,
    PacketReceived,
    frame_raw,
)
from rrdbg.rsp.hexcodec import rle_encode
from rrdbg.rsp.replies import Ok, Reply, encode_reply, is_binary
from rrdbg.rsp.requests import Interrupt, MalformedPacket, Request, StartNoAckMode
from rrdbg.rsp.table import ALL, TABLE, Capability

#: What a connection enables unless told otherwise: reverse execution is only
#: possible when replaying, so a server opts in with ``Capability.REVERSE``.
DEFAULT_CAPABILITIES: Final = ALL - {Capability.REVERSE}
#: The default largest packet payload we accept (advertised as ``PacketSize``).
DEFAULT_PACKET_SIZE: Final = 0x4000


class RspConnection:
    """One client connection's protocol state (see the module's theory of operation)."""

    __slots__ = (
        "_capabilities",
        "_closed",
        "_framer",
        "_last_packet",
        "_no_ack",
        "_no_ack_pending",
        "_outgoing",
        "_packet_size",
        "_rle",
    )

    def __init__(
        self,
        *,
        packet_size: int = DEFAULT_PACKET_SIZE,
        capabilities: frozenset[Capability] = DEFAULT_CAPABILITIES,
        rle: bool = True,
    ) -> None:
        """Args:
        packet_size: the largest payload accepted; longer packets become
            ``MalformedPacket``.
        capabilities: which optional packets are understood (``capabilities``
            can be changed later, e.g. once a session knows it is replaying).
        rle: run-length encode outgoing text replies where it saves bytes.
        """
        if packet_size < 1:
            raise LocalProtocolError(f"packet size must be positive, not {packet_size}")
        self._packet_size = packet_size
        self._capabilities = frozenset(capabilities)
        self._rle = rle
        self._framer = Framer(packet_size)
        self._outgoing = bytearray()
        self._last_packet: bytes | None = None
        self._no_ack = False
        self._no_ack_pending = False
        self._closed = False

    @property
    def packet_size(self) -> int:
        """The largest payload we accept (advertised as ``PacketSize=<hex>``)."""
        return self._packet_size

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The optional packet groups understood; others are ``UnknownPacket``."""
        return self._capabilities

    @capabilities.setter
    def capabilities(self, value: frozenset[Capability]) -> None:
        self._capabilities = frozenset(value)

    @property
    def no_ack(self) -> bool:
        """True once the ``OK`` for ``QStartNoAckMode`` has been queued."""
        return self._no_ack

    @property
    def closed(self) -> bool:
        """True once EOF (``receive_data(b"")``) was received."""
        return self._closed

    @property
    def bytes_buffered(self) -> int:
        """Received bytes held and not yet turned into events (for flow-control checks)."""
        return self._framer.buffered

    def supported_features(self) -> bytes:
        """This connection's ``qSupported`` reply text (see ``table.supported_features``)."""
        return TABLE.supported_features(self._capabilities, self._packet_size)

    def receive_data(self, data: bytes) -> None:
        """Feed bytes received from the client; ``b""`` means EOF.  Never raises.

        Bytes after EOF are ignored.  Nothing is parsed until ``next_event``.
        """
        if self._closed:
            return
        if not data:
            self._closed = True
            return
        self._framer.feed(data)

    def next_event(self) -> Request | Interrupt | None:
        """The next request or interrupt, or None if more data is needed.  Never raises.

        May queue ``+``, ``-`` or a resend for ``data_to_send``.  After EOF the
        remaining complete packets are still returned, then None forever (a
        packet cut off by EOF is dropped); check ``closed``.
        """
        while True:
            frame = self._framer.next_frame()
            match frame:
                case None:
                    return None
                case AckReceived(positive):
                    if not positive and not self._no_ack and self._last_packet is not None:
                        self._outgoing += self._last_packet
                case InterruptReceived():
                    return Interrupt()
                case PacketReceived(payload, checksum_ok):
                    if self._acknowledge(checksum_ok):
                        request = TABLE.parse(payload, self._capabilities)
                        self._no_ack_pending = isinstance(request, StartNoAckMode)
                        return request
                case BadPacket(prefix, message, checksum_ok):
                    if self._acknowledge(checksum_ok):
                        self._no_ack_pending = False
                        return MalformedPacket(prefix, message)
                case _:
                    assert_never(frame)

    def _acknowledge(self, checksum_ok: bool) -> bool:
        """Queue the ack for a complete packet; False if it must be dropped (NAK sent)."""
        if self._no_ack:
            return True
        self._outgoing += b"+" if checksum_ok else b"-"
        return checksum_ok

    def send(self, reply: Reply) -> None:
        """Queue one reply packet, framed and checksummed.

        Raises:
            LocalProtocolError: the reply cannot be encoded (see ``encode_reply``).
        """
        wire = encode_reply(reply)
        if self._rle and not is_binary(reply):
            wire = rle_encode(wire)
        packet = frame_raw(wire)
        self._outgoing += packet
        if self._no_ack_pending:
            self._no_ack_pending = False
            if isinstance(reply, Ok):
                self._no_ack = True
        self._last_packet = None if self._no_ack else packet

    def data_to_send(self) -> bytes:
        """Take everything queued: acks, NAKs, resends and reply packets, in order."""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out
