"""The packet table: qSupported text, capability gating, order independence."""

from __future__ import annotations

import dataclasses
import random

import pytest

from rrdbg.errors import LocalProtocolError
from rrdbg.rsp import (
    ALL,
    PACKETS,
    Capability,
    InsertPoint,
    MalformedPacket,
    PointKind,
    QueryHaltReason,
    ReadMemory,
    ReadRegisters,
    Resume,
    UnknownPacket,
    VCont,
    VContAction,
    answers_with_stop_reply,
    parse_request,
    supported_features,
)
from rrdbg.rsp.requests import Direction, ResumeAction
from rrdbg.rsp.table import Match, PacketTable

from .test_requests import GOOD, MALFORMED, UNKNOWN


def test_supported_features_without_reverse() -> None:
    assert supported_features(frozenset({Capability.WATCHPOINTS}), 0x4000) == (
        b"PacketSize=4000;multiprocess+;QStartNoAckMode+;QPassSignals+;qXfer:features:read+;"
        b"qXfer:threads:read+;swbreak+;hwbreak+;vContSupported+"
    )
    assert supported_features(frozenset(), 0x1000).startswith(b"PacketSize=1000;")


def test_supported_features_with_reverse() -> None:
    assert supported_features(ALL, 0x20000) == (
        b"PacketSize=20000;multiprocess+;QStartNoAckMode+;QPassSignals+;qXfer:features:read+;"
        b"qXfer:threads:read+;qXfer:siginfo:read+;qXfer:libraries-svr4:read+;"
        b"qXfer:auxv:read+;qXfer:exec-file:read+;fork-events+;vfork-events+;exec-events+;"
        b"swbreak+;hwbreak+;vContSupported+;ReverseStep+;ReverseContinue+"
    )


@pytest.mark.parametrize("payload", [b"bc", b"bs"])
def test_reverse_packets_need_the_capability(payload: bytes) -> None:
    assert parse_request(payload, frozenset({Capability.WATCHPOINTS})) == UnknownPacket(payload)
    assert isinstance(parse_request(payload, frozenset({Capability.REVERSE})), Resume)


@pytest.mark.parametrize("kind", [PointKind.WRITE, PointKind.READ, PointKind.ACCESS])
def test_watchpoints_need_the_capability(kind: PointKind) -> None:
    for letter in b"Zz":
        payload = b"%c%d,2000,4" % (letter, kind.value)
        assert parse_request(payload, frozenset()) == UnknownPacket(payload)
        assert not isinstance(
            parse_request(payload, frozenset({Capability.WATCHPOINTS})), UnknownPacket
        )


def test_breakpoints_need_no_capability() -> None:
    assert parse_request(b"Z0,10,1", frozenset()) == InsertPoint(PointKind.SOFTWARE, 0x10, 1)
    assert parse_request(b"Z1,10,1", frozenset()) == InsertPoint(PointKind.HARDWARE, 0x10, 1)


def test_every_table_entry_is_reachable() -> None:
    """Each prefix, given a plausible payload, is handled by its own entry."""
    table = PacketTable(PACKETS)
    for spec in PACKETS:
        found = table.lookup(spec.prefix)
        assert found is not None
        assert found[0] is spec, spec.prefix


@pytest.mark.parametrize("seed", range(5))
def test_order_does_not_matter(seed: int) -> None:
    shuffled = list(PACKETS)
    random.Random(seed).shuffle(shuffled)
    table = PacketTable(shuffled)
    for payload in [p for p, _ in GOOD] + MALFORMED + UNKNOWN:
        assert table.parse(payload) == parse_request(payload), payload


def test_duplicate_prefix_is_rejected() -> None:
    with pytest.raises(LocalProtocolError):
        PacketTable([*PACKETS, PACKETS[0]])


def test_longest_prefix_wins_and_falls_back() -> None:
    spec = next(s for s in PACKETS if s.prefix == b"m")
    long_spec = dataclasses.replace(
        spec, prefix=b"mx", match=Match.EXACT, parse=lambda _: ReadRegisters()
    )
    table = PacketTable([spec, long_spec])
    assert table.parse(b"mx") == ReadRegisters()
    # 'mx1' does not match the exact 'mx' entry: the shorter 'm' entry gets it.
    assert table.parse(b"m1,2") == ReadMemory(1, 2)
    assert isinstance(table.parse(b"mx1"), MalformedPacket)


def test_stop_reply_packets() -> None:
    assert answers_with_stop_reply(QueryHaltReason())
    assert answers_with_stop_reply(Resume(ResumeAction.STEP, Direction.BACKWARD))
    assert answers_with_stop_reply(VCont((VContAction(ResumeAction.CONTINUE, None, None),)))
    assert not answers_with_stop_reply(ReadRegisters())
    assert not answers_with_stop_reply(UnknownPacket(b"bc"))


def test_table_rows_are_documented() -> None:
    for spec in PACKETS:
        assert spec.syntax.startswith(spec.prefix.decode()), spec
