"""Hypothesis properties of the RSP core: round trips, chunking, robustness, bounded memory."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rrdbg.rsp import (
    PACKETS,
    BinaryData,
    ConsoleOutput,
    HexData,
    Interrupt,
    Ok,
    Reply,
    Request,
    RspConnection,
    StartNoAckMode,
    StopReply,
    WriteMemory,
    XferChunk,
    frame,
    parse_request,
)
from rrdbg.rsp.framing import Framer, PacketReceived
from rrdbg.rsp.hexcodec import decode_payload, escape_binary, hex_decode, rle_encode

# Bytes that matter to the framer, over-represented so that examples hit them.
SPECIAL = b"$#}*+-\x03"
noisy_bytes = st.lists(
    st.one_of(st.sampled_from([bytes([b]) for b in SPECIAL]), st.binary(max_size=4)),
    max_size=60,
).map(b"".join)


def gdb_read_frame(wire: bytes) -> bytes:
    """A model of gdb's ``read_frame``: ``$payload#cs`` -> payload with run lengths expanded.

    gdb expands ``*`` on the raw bytes (before any unescaping) and checks the checksum.
    """
    assert wire[:1] == b"$"
    assert wire[-3:-2] == b"#"
    raw = wire[1:-3]
    assert int(wire[-2:], 16) == sum(raw) & 0xFF
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == ord("*"):
            count = raw[i + 1]
            assert count not in b"#$", "forbidden run-length count"
            assert 32 <= count <= 126, "unprintable run-length count"
            out += out[-1:] * (count - 29)
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def gdb_unescape(data: bytes) -> bytes:
    """gdb's ``remote_unescape_input`` for binary replies."""
    out = bytearray()
    escaped = False
    for byte in data:
        if escaped:
            out.append(byte ^ 0x20)
            escaped = False
        elif byte == 0x7D:
            escaped = True
        else:
            out.append(byte)
    assert not escaped
    return bytes(out)


def collect(conn: RspConnection) -> list[Request | Interrupt]:
    out = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


@given(st.binary(max_size=300))
def test_frame_round_trips_through_the_framer(payload: bytes) -> None:
    framer = Framer(1000)
    framer.feed(frame(payload))
    assert framer.next_frame() == PacketReceived(payload, True)
    assert framer.next_frame() is None


@given(st.binary(max_size=300), st.integers(0, 0xFFFFFFFF))
def test_binary_write_round_trips_through_the_connection(data: bytes, address: int) -> None:
    conn = RspConnection()
    conn.receive_data(frame(b"X%x,%x:" % (address, len(data)) + data))
    assert collect(conn) == [WriteMemory(address, data)]
    assert conn.data_to_send() == b"+"


@given(st.lists(st.binary(max_size=40), max_size=8), st.data())
def test_chunking_does_not_change_events_or_output(
    payloads: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(
        frame(p) + data.draw(st.sampled_from([b"", b"+", b"-", b"\x03", b"x"])) for p in payloads
    )
    # A corrupted checksum somewhere exercises the NAK path too.
    if stream and data.draw(st.booleans()):
        stream = stream[:-1] + (b"0" if stream[-1:] != b"0" else b"1")

    def run(chunks: list[bytes]) -> tuple[list[Request | Interrupt], bytes]:
        conn = RspConnection()
        conn.send(Ok())  # something for '-' to resend
        events: list[Request | Interrupt] = []
        for chunk in chunks:
            conn.receive_data(chunk)
            events += collect(conn)
        return events, conn.data_to_send()

    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    chunks = [c for c in chunks if c]  # b"" would mean EOF
    assert run(chunks) == run([stream])


@settings(max_examples=300)
@given(noisy_bytes, st.integers(16, 64), st.booleans())
def test_arbitrary_bytes_never_raise_and_memory_stays_bounded(
    stream: bytes, packet_size: int, no_ack: bool
) -> None:
    conn = RspConnection(packet_size=packet_size)
    if no_ack:
        conn.receive_data(frame(b"QStartNoAckMode"))
        assert collect(conn) == [StartNoAckMode()]
        conn.send(Ok())
        assert conn.no_ack
    for start in range(0, len(stream), 5):
        conn.receive_data(stream[start : start + 5])
        collect(conn)
        # Only the packet in progress is held, and at most about packet_size of it.
        assert conn.bytes_buffered <= packet_size + 34
    conn.receive_data(b"")
    collect(conn)


@given(st.binary(max_size=200))
def test_parse_request_never_raises(payload: bytes) -> None:
    parse_request(payload)


@given(st.sampled_from([spec.prefix for spec in PACKETS]), noisy_bytes)
def test_parse_request_never_raises_on_known_prefixes(prefix: bytes, tail: bytes) -> None:
    parse_request(prefix + tail)


@given(st.binary(max_size=300).filter(lambda b: b"}" not in b and b"*" not in b))
def test_rle_round_trip(payload: bytes) -> None:
    encoded = rle_encode(payload)
    assert len(encoded) <= len(payload)
    assert decode_payload(encoded) == payload
    assert gdb_read_frame(b"$%s#%02x" % (encoded, sum(encoded) & 0xFF)) == payload


@given(st.binary(max_size=300))
def test_escape_round_trip(data: bytes) -> None:
    escaped = escape_binary(data)
    assert not any(b in escaped for b in b"#$*") and decode_payload(escaped) == data
    assert gdb_unescape(escaped) == data


replies = st.one_of(
    st.builds(HexData, st.binary(max_size=200)),
    st.builds(ConsoleOutput, st.binary(max_size=100)),
    st.builds(XferChunk, st.binary(max_size=200), st.booleans()),
    st.builds(BinaryData, st.binary(max_size=200)),
    st.builds(StopReply, st.integers(0, 255), st.one_of(st.none(), st.integers(0, 1000))),
)


@given(replies, st.booleans())
def test_sent_replies_decode_as_gdb_would(reply: Reply, rle: bool) -> None:
    conn = RspConnection(rle=rle)
    conn.send(reply)
    payload = gdb_read_frame(conn.data_to_send())
    match reply:
        case HexData(data):
            assert hex_decode(payload) == data
        case ConsoleOutput(text):
            assert payload[:1] == b"O"
            assert hex_decode(payload[1:]) == text
        case XferChunk(data, last):
            assert payload[:1] == (b"l" if last else b"m")
            assert gdb_unescape(payload[1:]) == data
        case BinaryData(data):
            assert gdb_unescape(payload) == data
        case StopReply(signal, thread):
            assert payload.startswith(b"T%02x" % signal)
            if thread is not None:
                assert payload.endswith(b"thread:%02x;" % thread)
        case _:
            raise AssertionError(reply)
