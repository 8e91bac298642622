"""Host-call event payloads round-trip; malformed payloads raise LogFormatError only."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rrdbg.errors import LogFormatError
from rrdbg.machine.host import FileStat, Ids
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
