"""Reply encoding: the exact payload text gdb 13 expects (reference gdb-rsp.md, section 13)."""

from __future__ import annotations

import pytest

from rrdbg.errors import LocalProtocolError
from rrdbg.rsp import (
    BinaryData,
    ConsoleOutput,
    Empty,
    ErrorReply,
    Execd,
    Exited,
    Forked,
    HexData,
    HwBreak,
    Ok,
    RawReply,
    ReplayLog,
    Reply,
    StopReply,
    SwBreak,
    Terminated,
    VForkDone,
    Watch,
    WatchKind,
    XferChunk,
    encode_reply,
)

EXACT: list[tuple[Reply, bytes]] = [
    (Ok(), b"OK"),
    (Empty(), b""),
    (ErrorReply(1), b"E01"),
    (ErrorReply(0x14), b"E14"),
    (ErrorReply(255), b"Eff"),
    (HexData(b"\x55\x89\xe5\x83"), b"5589e583"),
    (HexData(b""), b""),
    (RawReply(b"vCont;c;C;s;S"), b"vCont;c;C;s;S"),
    (RawReply(b"m1"), b"m1"),
    (XferChunk(b"<target/>", last=True), b"l<target/>"),
    (XferChunk(b"<tar", last=False), b"m<tar"),
    (XferChunk(b"", last=True), b"l"),
    (XferChunk(b"a#b$c}d*e", last=True), b"la}\x03b}\x04c}]d}\x0ae"),
    (BinaryData(b"\x00}"), b"\x00}]"),
    (StopReply(5), b"T05thread:01;"),
    (StopReply(2), b"T02thread:01;"),
    (StopReply(5, thread=None), b"T05"),
    (StopReply(5, thread=0x1F), b"T05thread:1f;"),
    (StopReply(5, reason=Watch(WatchKind.WRITE, 0x2000)), b"T05thread:01;watch:2000;"),
    (StopReply(5, reason=Watch(WatchKind.READ, 0x2000)), b"T05thread:01;rwatch:2000;"),
    (StopReply(5, reason=Watch(WatchKind.ACCESS, 0x804A01C)), b"T05thread:01;awatch:804a01c;"),
    (StopReply(5, reason=ReplayLog(begin=True)), b"T05thread:01;replaylog:begin;"),
    (StopReply(5, reason=ReplayLog(begin=False)), b"T05thread:01;replaylog:end;"),
    (StopReply(5, reason=SwBreak()), b"T05thread:01;swbreak:;"),
    (
        StopReply(5, thread=0x10, process=0x10, reason=Forked(0x11, 0x11)),
        b"T05thread:p10.10;fork:p11.11;",
    ),
    (StopReply(5, reason=Forked(0x2A, 0x2A, vfork=True)), b"T05thread:01;vfork:p2a.2a;"),
    (StopReply(5, reason=VForkDone()), b"T05thread:01;vforkdone:;"),
    (StopReply(5, reason=Execd(b"/bin/ls")), b"T05thread:01;exec:2f62696e2f6c73;"),
    (StopReply(5, reason=HwBreak()), b"T05thread:01;hwbreak:;"),
    (
        StopReply(5, registers=((8, b"\x00\x80\x04\x08"), (4, b"\xf0\xff\xff\xbf"))),
        b"T0508:00800408;04:f0ffffbf;thread:01;",
    ),
    (Exited(0), b"W00"),
    (Exited(7), b"W07"),
    (Terminated(11), b"X0b"),
    (ConsoleOutput(b"hi\n"), b"O68690a"),
]


@pytest.mark.parametrize(("reply", "wire"), EXACT, ids=[repr(r) for r, _ in EXACT])
def test_encode(reply: Reply, wire: bytes) -> None:
    assert encode_reply(reply) == wire


@pytest.mark.parametrize(
    "reply",
    [
        ErrorReply(-1),
        ErrorReply(256),
        StopReply(256),
        StopReply(-1),
        StopReply(5, thread=-1),
        StopReply(5, reason=Watch(WatchKind.WRITE, -4)),
        Exited(256),
        Terminated(-1),
        RawReply(b"a#"),
        RawReply(b"$"),
        RawReply(b"x*y"),
        RawReply(b"}"),
    ],
    ids=repr,
)
def test_unencodable_replies_are_local_errors(reply: Reply) -> None:
    with pytest.raises(LocalProtocolError):
        encode_reply(reply)
