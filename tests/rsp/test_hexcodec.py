"""hexcodec: strict hex and numbers, little-endian ints, escapes and run lengths."""

from __future__ import annotations

import pytest

from rrdbg.errors import LocalProtocolError, RemoteProtocolError
from rrdbg.rsp.hexcodec import (
    MAX_NUMBER,
    decode_payload,
    escape_binary,
    hex_decode,
    hex_encode,
    le_bytes,
    le_int,
    parse_hex,
    rle_encode,
)


def test_hex() -> None:
    assert hex_encode(b"\x00\xab\xff") == b"00abff"
    assert hex_decode(b"00abFF") == b"\x00\xab\xff"
    assert hex_decode(b"") == b""


@pytest.mark.parametrize("text", [b"0", b"0g", b" 00", b"00 ", b"0x00", b"+0", b"\xff\xff"])
def test_hex_decode_is_strict(text: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        hex_decode(text)


def test_parse_hex() -> None:
    assert parse_hex(b"0") == 0
    assert parse_hex(b"8048000") == 0x8048000
    assert parse_hex(b"FfFf") == 0xFFFF
    assert parse_hex(b"f" * 16) == MAX_NUMBER
    assert parse_hex(b"0" * 40 + b"1") == 1


@pytest.mark.parametrize("text", [b"", b"-1", b"+1", b"0x1", b"1_0", b" 1", b"1 ", b"g", b"1" * 17])
def test_parse_hex_is_strict(text: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="address"):
        parse_hex(text, "address")


def test_little_endian() -> None:
    assert le_bytes(0x12345678, 4) == b"\x78\x56\x34\x12"
    assert le_bytes(-1, 2) == b"\xff\xff"
    assert le_int(b"\x78\x56\x34\x12") == 0x12345678


def test_escape_binary() -> None:
    assert escape_binary(b"plain") == b"plain"
    assert escape_binary(b"#$}*") == b"}\x03}\x04}]}\x0a"
    assert escape_binary(b"\x03\x7e") == b"\x03\x7e"  # only the four framing bytes


@pytest.mark.parametrize(
    ("plain", "encoded"),
    [
        (b"", b""),
        (b"000", b"000"),  # a run of 4 is the shortest that saves a byte
        (b"0000", b"0* "),
        (b"00000", b"0*!"),
        (b"0" * 7, b'0*"0'),  # 1 + 6 would need count '#': 1 + 5, then one more
        (b"0" * 8, b'0*"00'),  # 1 + 7 would need count '$'
        (b"0" * 9, b"0*%"),
        (b"0" * 10, b"0*&"),
        (b"0" * 98, b"0*~"),
        (b"0" * 99, b"0*~0"),
        (b"0" * 102, b"0*~0* "),
        (b"ab0000cd", b"ab0* cd"),
    ],
)
def test_rle_encode(plain: bytes, encoded: bytes) -> None:
    assert rle_encode(plain) == encoded
    assert decode_payload(encoded) == plain


def test_rle_encode_never_emits_frame_characters_as_counts() -> None:
    for length in range(1, 300):
        encoded = rle_encode(b"f" * length)
        assert b"#" not in encoded and b"$" not in encoded, length
        assert decode_payload(encoded) == b"f" * length


@pytest.mark.parametrize("payload", [b"a}b", b"a*b"])
def test_rle_refuses_escaped_payloads(payload: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        rle_encode(payload)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"abc}", "ends inside"),
        (b"abc*", "ends inside"),
        (b"* ", "nothing to repeat"),
        (b"a*\x10", "count byte"),
    ],
)
def test_decode_payload_errors(raw: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        decode_payload(raw)


def test_decode_payload_limit() -> None:
    assert decode_payload(b"a*~", limit=98) == b"a" * 98
    with pytest.raises(RemoteProtocolError, match="too long"):
        decode_payload(b"a*~", limit=97)
