"""Framing: $payload#cs cut out of a byte stream, escapes, run lengths, limits."""

from __future__ import annotations

import pytest

from rrdbg.rsp.framing import (
    PREFIX_KEPT,
    AckReceived,
    BadPacket,
    FrameEvent,
    Framer,
    FrameState,
    InterruptReceived,
    PacketReceived,
    checksum,
    frame,
    frame_raw,
)


def events(data: bytes, max_payload: int = 0x4000) -> list[FrameEvent]:
    framer = Framer(max_payload)
    framer.feed(data)
    out = []
    while (event := framer.next_frame()) is not None:
        out.append(event)
    return out


def test_checksum_is_sum_mod_256() -> None:
    assert checksum(b"") == 0
    assert checksum(b"OK") == 0x9A
    assert checksum(b"\xff\x02") == 1
    assert frame_raw(b"OK") == b"$OK#9a"
    assert frame_raw(b"") == b"$#00"


def test_good_packet() -> None:
    assert events(b"$g#67") == [PacketReceived(b"g", True)]


def test_bad_checksum_is_reported_not_dropped() -> None:
    assert events(b"$g#68") == [PacketReceived(b"g", False)]
    # Non-hex checksum characters are a bad checksum too.
    assert events(b"$g#zz") == [PacketReceived(b"g", False)]


def test_uppercase_checksum_digits_are_accepted() -> None:
    assert events(b"$OK#9A") == [PacketReceived(b"OK", True)]


def test_bytes_outside_packets() -> None:
    stream = b"junk+\x03-\r\n$g#67\x00+"
    assert events(stream) == [
        AckReceived(True),
        InterruptReceived(),
        AckReceived(False),
        PacketReceived(b"g", True),
        AckReceived(True),
    ]


def test_interrupt_inside_packet_is_data() -> None:
    payload = b"qRcmd,\x03"
    assert events(frame_raw(payload)) == [PacketReceived(payload, True)]


def test_dollar_and_plus_inside_packet_are_data() -> None:
    payload = b"a$b+c-"
    assert events(frame_raw(payload)) == [PacketReceived(payload, True)]


def test_escapes_are_decoded_and_checksum_covers_wire_bytes() -> None:
    wire = b"X0,1:}\x03"  # an escaped '#'
    assert events(frame_raw(wire)) == [PacketReceived(b"X0,1:#", True)]
    # The escaped byte may itself be '#': it does not end the packet.
    wire = b"a}#b"
    assert events(frame_raw(wire)) == [PacketReceived(b"a\x03b", True)]


def test_run_length_is_decoded() -> None:
    # '0* ' is four zeros; the count byte may be '}' (96 more) without escaping anything.
    assert events(frame_raw(b"0* x")) == [PacketReceived(b"0000x", True)]
    assert events(frame_raw(b"a*}")) == [PacketReceived(b"a" * 97, True)]
    # A run after an escape repeats the decoded byte.
    assert events(frame_raw(b"}]* ")) == [PacketReceived(b"}" * 4, True)]


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"*  ", "nothing to repeat"),
        (b"a*\x01", "count byte"),
    ],
)
def test_bad_run_length_is_a_bad_packet(wire: bytes, message: str) -> None:
    [event] = events(frame_raw(wire))
    assert isinstance(event, BadPacket)
    assert message in event.message
    assert event.checksum_ok


def test_frame_escapes_and_round_trips() -> None:
    payload = b"$#}*\x03"
    wire = frame(payload)
    assert wire.count(b"#") == 1  # only the terminator
    assert events(wire) == [PacketReceived(payload, True)]


def test_frame_with_rle_compresses_plain_payloads_only() -> None:
    assert frame(b"0" * 10, rle=True) == frame_raw(b"0*&")  # '0' and 9 more: '&' is 29 + 9
    assert frame(b"}" * 10, rle=True) == frame_raw(b"}]" * 10)


def test_split_at_every_position() -> None:
    stream = b"+$m10,4#ca$X0,2:}]}\x03#00\x03$a*!#00"
    whole = events(stream)
    for cut in range(len(stream) + 1):
        framer = Framer(0x4000)
        got: list[FrameEvent] = []
        for part in (stream[:cut], stream[cut:]):
            framer.feed(part)
            while (event := framer.next_frame()) is not None:
                got.append(event)
        assert got == whole, cut


def test_byte_at_a_time_walks_the_states() -> None:
    framer = Framer(100)
    seen = []
    for byte in b"$a}]*!#00":
        framer.feed(bytes([byte]))
        assert framer.next_frame() is None or framer.state is FrameState.IDLE
        seen.append(framer.state)
    assert seen == [
        FrameState.PAYLOAD,
        FrameState.PAYLOAD,
        FrameState.ESCAPE,
        FrameState.PAYLOAD,
        FrameState.RUN_LENGTH,
        FrameState.PAYLOAD,
        FrameState.CHECKSUM1,
        FrameState.CHECKSUM2,
        FrameState.IDLE,
    ]


def test_oversized_packet_is_consumed_with_bounded_memory() -> None:
    limit = 64
    framer = Framer(limit)
    payload = b"M0,1000:" + b"ab" * 5000
    wire = frame_raw(payload)
    peak = 0
    got: list[FrameEvent] = []
    for start in range(0, len(wire), 7):
        framer.feed(wire[start : start + 7])
        while (event := framer.next_frame()) is not None:
            got.append(event)
        peak = max(peak, framer.buffered)
    assert peak <= limit + 16
    [event] = got
    assert isinstance(event, BadPacket)
    assert event.prefix == payload[:PREFIX_KEPT]
    assert "too long" in event.message
    assert event.checksum_ok  # the running checksum covered the dropped bytes


def test_oversized_packet_is_followed_by_a_normal_one() -> None:
    got = events(frame_raw(b"x" * 100) + b"$g#67", max_payload=50)
    assert isinstance(got[0], BadPacket)
    assert not isinstance(got[0], PacketReceived)
    assert got[1:] == [PacketReceived(b"g", True)]


def test_packet_exactly_at_the_limit_is_accepted() -> None:
    assert events(frame_raw(b"x" * 50), max_payload=50) == [PacketReceived(b"x" * 50, True)]
    [event] = events(frame_raw(b"x" * 51), max_payload=50)
    assert isinstance(event, BadPacket)


def test_run_length_expanding_past_the_limit_is_too_long() -> None:
    [event] = events(frame_raw(b"0*~0*~"), max_payload=50)
    assert isinstance(event, BadPacket)
    assert "too long" in event.message
