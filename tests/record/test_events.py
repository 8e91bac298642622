"""Host-call event payloads round-trip; malformed payloads raise LogFormatError only."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rrdbg.errors import LogFormatError
from rrdbg.machine.host import FileStat, Ids
from rrdbg.record import events
from rrdbg.record.events import EndRecord, args_crc, decode_payload, encode_payload

ints = st.integers(-(1 << 63), (1 << 64) - 1)
stats = st.builds(FileStat, *[ints] * 13)
ids = st.builds(Ids, *[st.integers(0, 1 << 32)] * 6)
values = st.one_of(ints, st.binary(max_size=300), stats, st.lists(st.binary(max_size=40)), ids)


@given(crc=st.integers(0, 0xFFFFFFFF), value=values)
def test_payload_round_trip(crc: int, value: object) -> None:
    payload = encode_payload(crc, value)  # type: ignore[arg-type]
    assert decode_payload(payload) == (crc, value)


@given(data=st.binary(max_size=64))
def test_garbage_payload_is_a_format_error_or_decodes(data: bytes) -> None:
    with contextlib.suppress(LogFormatError):
        decode_payload(data)


def test_args_crc_distinguishes_types_and_values() -> None:
    assert args_crc((1,)) != args_crc((b"\x01",))
    assert args_crc((1, 2)) != args_crc((2, 1))
    assert args_crc(()) == args_crc(())


@given(
    code=st.none() | st.integers(0, 255),
    sig=st.none() | st.integers(1, 64),
    icount=st.integers(0, 1 << 62),
    digest=st.binary(min_size=32, max_size=32),
)
def test_end_record_round_trip(
    code: int | None, sig: int | None, icount: int, digest: bytes
) -> None:
    end = EndRecord(code, sig, icount, digest.hex())
    assert EndRecord.decode(end.encode()) == end


def test_bool_is_refused() -> None:
    with pytest.raises(TypeError):
        encode_payload(0, True)


def test_debugger_writes_name_their_process_and_thread() -> None:
    """Register, memory and signal events carry the pid (and tid) they were
    made in; payloads written before that (none) decode with 0, the
    followed process."""
    reg = events.encode_debug_register("eax", b"\x01\x00\x00\x00", 4711, 4712)
    assert events.decode_debug_register(reg) == ("eax", b"\x01\x00\x00\x00", 4711, 4712)
    old = events.encode_debug_register("eip", b"\x00\x10\x00\x00")
    assert events.decode_debug_register(old) == ("eip", b"\x00\x10\x00\x00", 0, 0)
    mem = events.encode_debug_memory(0x8049000, b"hi", 4713)
    assert events.decode_debug_memory(mem) == (0x8049000, b"hi", 4713)
    assert events.decode_debug_memory(events.encode_debug_memory(16, b"x")) == (16, b"x", 0)
    assert events.decode_debug_signal(events.encode_debug_signal(10, 0, 7)) == (10, 0, 7)
    assert events.decode_debug_signal(events.encode_debug_signal(10, 12)) == (10, 12, 0)
    with pytest.raises(LogFormatError):
        events.decode_debug_memory(mem + b"\x00")
