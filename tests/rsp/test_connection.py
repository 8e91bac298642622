"""RspConnection: acks, NAKs, resends, the no-ack switch, interrupts, EOF, output framing."""

from __future__ import annotations

import time

import pytest

from rrdbg.errors import LocalProtocolError
from rrdbg.rsp import (
    ALL,
    Capability,
    Direction,
    Empty,
    ErrorReply,
    HexData,
    Interrupt,
    MalformedPacket,
    Ok,
    RawReply,
    ReadMemory,
    ReadRegisters,
    Request,
    Resume,
    ResumeAction,
    RspConnection,
    StartNoAckMode,
    StopReply,
    UnknownPacket,
    VCont,
    XferChunk,
    frame,
)
from rrdbg.rsp.framing import frame_raw


def drain(conn: RspConnection) -> list[Request | Interrupt]:
    out = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


def test_good_packet_is_acked_then_returned() -> None:
    conn = RspConnection()
    conn.receive_data(b"$g#67")
    assert conn.data_to_send() == b""  # nothing happens before next_event
    assert conn.next_event() == ReadRegisters()
    assert conn.data_to_send() == b"+"
    assert conn.next_event() is None


def test_bad_checksum_is_naked_and_dropped() -> None:
    conn = RspConnection()
    conn.receive_data(b"$g#00$m0,1#fa")
    assert conn.next_event() == ReadMemory(0, 1)
    assert conn.data_to_send() == b"-+"


def test_nak_resends_the_last_packet() -> None:
    conn = RspConnection()
    conn.receive_data(b"-")
    assert conn.next_event() is None
    assert conn.data_to_send() == b""  # nothing sent yet: nothing to resend
    conn.send(Ok())
    conn.send(ErrorReply(1))
    assert conn.data_to_send() == b"$OK#9a$E01#a6"
    conn.receive_data(b"-+--")
    assert conn.next_event() is None
    assert conn.data_to_send() == b"$E01#a6" * 3


def test_no_ack_switch_happens_exactly_after_the_ok() -> None:
    conn = RspConnection()
    conn.receive_data(b"$QStartNoAckMode#b0")
    assert conn.next_event() == StartNoAckMode()
    assert not conn.no_ack
    assert conn.data_to_send() == b"+"
    conn.send(Ok())
    assert conn.no_ack
    assert conn.data_to_send() == b"$OK#9a"
    # gdb's late '+' for the OK, a '-', and a packet with a wrong checksum:
    # nothing is acknowledged, nothing resent, checksums are not enforced.
    conn.receive_data(b"+-$g#00")
    assert conn.next_event() == ReadRegisters()
    assert conn.data_to_send() == b""


def test_no_ack_is_not_entered_if_the_reply_is_not_ok() -> None:
    conn = RspConnection()
    conn.receive_data(frame(b"QStartNoAckMode"))
    assert conn.next_event() == StartNoAckMode()
    conn.send(Empty())
    assert not conn.no_ack
    conn.send(Ok())  # a later OK answers some other packet
    assert not conn.no_ack


def test_no_ack_pending_is_dropped_by_another_packet() -> None:
    conn = RspConnection()
    conn.receive_data(frame(b"QStartNoAckMode") + frame(b"g"))
    assert drain(conn) == [StartNoAckMode(), ReadRegisters()]
    conn.send(Ok())
    assert not conn.no_ack


def test_interrupt_outside_and_inside_packets() -> None:
    conn = RspConnection()
    conn.receive_data(b"\x03" + frame(b"qRcmd,\x03"))
    events = drain(conn)
    assert events[0] == Interrupt()
    assert isinstance(events[1], MalformedPacket)  # 0x03 is data, and not hex
    assert conn.data_to_send() == b"+"


def test_interrupt_in_no_ack_mode() -> None:
    conn = RspConnection()
    conn.receive_data(frame(b"QStartNoAckMode"))
    conn.next_event()
    conn.send(Ok())
    conn.receive_data(b"\x03")
    assert conn.next_event() == Interrupt()


def test_eof() -> None:
    conn = RspConnection()
    conn.receive_data(b"$g#67$m0,")
    conn.receive_data(b"")
    assert conn.closed
    conn.receive_data(b"1#fa")  # after EOF: ignored, not an error
    assert drain(conn) == [ReadRegisters()]
    assert conn.next_event() is None


def test_oversized_packet_becomes_malformed() -> None:
    conn = RspConnection(packet_size=32)
    conn.receive_data(frame(b"M0,40:" + b"00" * 0x40) + frame(b"g"))
    first, second = drain(conn)
    assert isinstance(first, MalformedPacket)
    assert first.payload.startswith(b"M0,40:")
    assert "too long" in first.message
    assert second == ReadRegisters()
    assert conn.data_to_send() == b"++"


def test_oversized_packet_with_bad_checksum_is_naked() -> None:
    conn = RspConnection(packet_size=8)
    conn.receive_data(b"$" + b"x" * 20 + b"#00")
    assert conn.next_event() is None
    assert conn.data_to_send() == b"-"


def test_capability_gating_and_setter() -> None:
    conn = RspConnection()
    assert Capability.REVERSE not in conn.capabilities
    conn.receive_data(frame(b"bc"))
    assert conn.next_event() == UnknownPacket(b"bc")
    assert b"Reverse" not in conn.supported_features()
    conn.capabilities = ALL
    conn.receive_data(frame(b"bc"))
    assert conn.next_event() == Resume(ResumeAction.CONTINUE, Direction.BACKWARD)
    assert conn.supported_features().endswith(b";ReverseStep+;ReverseContinue+")


def test_send_frames_and_run_length_encodes() -> None:
    conn = RspConnection()
    conn.send(HexData(bytes(8)))
    conn.send(Empty())
    conn.send(StopReply(5))
    assert conn.data_to_send() == b"$0*,#86$#00$T05thread:01;#07"


def test_rle_can_be_turned_off() -> None:
    conn = RspConnection(rle=False)
    conn.send(HexData(bytes(8)))
    assert conn.data_to_send() == frame_raw(b"0" * 16)


def test_binary_replies_are_never_run_length_encoded() -> None:
    conn = RspConnection()
    conn.send(XferChunk(b"}}}}}}", last=True))
    assert conn.data_to_send() == frame_raw(b"l" + b"}]" * 6)
    conn.send(XferChunk(b"aaaaaa", last=False))
    assert conn.data_to_send() == frame_raw(b"maaaaaa")


def test_send_rejects_unencodable_replies() -> None:
    conn = RspConnection()
    with pytest.raises(LocalProtocolError):
        conn.send(RawReply(b"a#b"))
    with pytest.raises(LocalProtocolError):
        conn.send(ErrorReply(256))
    assert conn.data_to_send() == b""


def test_packet_size_must_be_positive() -> None:
    with pytest.raises(LocalProtocolError):
        RspConnection(packet_size=0)


def test_gdb_connect_sequence() -> None:
    """The packets gdb 13.1 sends on connect, as one burst, in ack mode."""
    conn = RspConnection()
    packets = [
        b"qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;"
        b"vfork-events+;exec-events+;vContSupported+;QThreadEvents+;no-resumed+;"
        b"memory-tagging+;xmlRegisters=i386",
        b"vMustReplyEmpty",
        b"Hgp0.0",
        b"qXfer:features:read:target.xml:0,ffb",
        b"qTStatus",
        b"?",
        b"qfThreadInfo",
        b"qsThreadInfo",
        b"qAttached:1",
        b"Hc-1",
        b"g",
        b"m8049000,40",
        b"vCont?",
        b"vCont;s:1;c",
        b"vCont;c:p1.-1",
    ]
    conn.receive_data(b"".join(frame(p) for p in packets))
    events = drain(conn)
    assert len(events) == len(packets)
    assert not any(isinstance(e, UnknownPacket | MalformedPacket) for e in events)
    assert isinstance(events[-1], VCont)
    assert conn.data_to_send() == b"+" * len(packets)


def test_stepi_round_trip_is_fast() -> None:
    conn = RspConnection()
    conn.receive_data(frame(b"QStartNoAckMode"))
    conn.next_event()
    conn.send(Ok())
    conn.data_to_send()
    step = frame(b"vCont;s:1;c")
    registers = bytes(range(256)) + bytes(56)
    rounds = 2000
    start = time.perf_counter()
    for _ in range(rounds):
        conn.receive_data(step)
        conn.next_event()
        conn.send(StopReply(5))
        conn.receive_data(frame(b"g"))
        conn.next_event()
        conn.send(HexData(registers))
        conn.data_to_send()
    per_round = (time.perf_counter() - start) / rounds
    assert per_round < 200e-6, f"{per_round * 1e6:.0f} us per stepi round trip"
