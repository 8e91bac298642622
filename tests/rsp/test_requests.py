"""Request parsing: every packet in the table, good and malformed arguments."""

from __future__ import annotations

import pytest

from rrdbg.rsp import (
    Detach,
    Direction,
    FileClose,
    FileFstat,
    FileOpen,
    FileOperation,
    FilePread,
    FileSetFs,
    InsertPoint,
    Kill,
    MalformedPacket,
    MonitorCommand,
    MustReplyEmpty,
    PassSignals,
    PointKind,
    QueryAttached,
    QueryCurrentThread,
    QueryHaltReason,
    QueryOffsets,
    QuerySupported,
    QuerySymbol,
    QueryThreadInfo,
    QueryTraceStatus,
    ReadMemory,
    ReadRegister,
    ReadRegisters,
    ReadXfer,
    RemovePoint,
    Request,
    Resume,
    ResumeAction,
    SetThread,
    StartNoAckMode,
    ThreadAlive,
    UnknownPacket,
    VCont,
    VContAction,
    VContQuery,
    VKill,
    WriteMemory,
    WriteRegister,
    WriteRegisters,
    parse_request,
)

C, S = ResumeAction.CONTINUE, ResumeAction.STEP
FWD, BACK = Direction.FORWARD, Direction.BACKWARD

GOOD: list[tuple[bytes, Request]] = [
    (b"qSupported", QuerySupported(())),
    (
        b"qSupported:multiprocess+;swbreak+;xmlRegisters=i386",
        QuerySupported(("multiprocess+", "swbreak+", "xmlRegisters=i386")),
    ),
    (b"vMustReplyEmpty", MustReplyEmpty()),
    (b"QStartNoAckMode", StartNoAckMode()),
    (b"QPassSignals:0e;1e;14", PassSignals(frozenset({0x0E, 0x1E, 0x14}))),
    (b"QPassSignals:", PassSignals(frozenset())),
    # gdb 13 ends the list with ";"
    (b"QPassSignals:e;14;97;", PassSignals(frozenset({0x0E, 0x14, 0x97}))),
    (b"qXfer:features:read:target.xml:0,ffb", ReadXfer("features", "target.xml", 0, 0xFFB)),
    (
        b"qXfer:features:read:i386-32bit.xml:ffb,ffb",
        ReadXfer("features", "i386-32bit.xml", 0xFFB, 0xFFB),
    ),
    (b"qXfer:auxv:read::0,1000", ReadXfer("auxv", "", 0, 0x1000)),
    (b"?", QueryHaltReason()),
    (b"g", ReadRegisters()),
    (b"G0011aaFF", WriteRegisters(b"\x00\x11\xaa\xff")),
    (b"G", WriteRegisters(b"")),
    (b"p8", ReadRegister(8)),
    (b"p29", ReadRegister(0x29)),
    (b"P8=78563412", WriteRegister(8, b"\x78\x56\x34\x12")),
    (b"m8048000,4", ReadMemory(0x8048000, 4)),
    (b"mffffe000,0", ReadMemory(0xFFFFE000, 0)),
    (b"M2000,2:beef", WriteMemory(0x2000, b"\xbe\xef")),
    (b"M2000,0:", WriteMemory(0x2000, b"")),
    (b"X2000,0:", WriteMemory(0x2000, b"")),
    (b"X2000,4:a:,#", WriteMemory(0x2000, b"a:,#")),
    (b"c", Resume(C, FWD)),
    (b"c8048000", Resume(C, FWD, address=0x8048000)),
    (b"s", Resume(S, FWD)),
    (b"s1000", Resume(S, FWD, address=0x1000)),
    (b"C05", Resume(C, FWD, signal=5)),
    (b"C0b;1000", Resume(C, FWD, signal=11, address=0x1000)),
    (b"S02", Resume(S, FWD, signal=2)),
    (b"S13;ff", Resume(S, FWD, signal=0x13, address=0xFF)),
    (b"bc", Resume(C, BACK)),
    (b"bs", Resume(S, BACK)),
    (b"vCont?", VContQuery()),
    (b"vCont;c", VCont((VContAction(C, None, None),))),
    (b"vCont;s:1;c", VCont((VContAction(S, None, "1"), VContAction(C, None, None)))),
    (b"vCont;C05:1", VCont((VContAction(C, 5, "1"),))),
    (b"vCont;S0b", VCont((VContAction(S, 11, None),))),
    (b"vCont;c:p1.-1", VCont((VContAction(C, None, "p1.-1"),))),
    (b"vCont;s:-1", VCont((VContAction(S, None, "-1"),))),
    (b"Z0,8048000,1", InsertPoint(PointKind.SOFTWARE, 0x8048000, 1)),
    (b"z0,8048000,1", RemovePoint(PointKind.SOFTWARE, 0x8048000, 1)),
    (b"Z1,10,1", InsertPoint(PointKind.HARDWARE, 0x10, 1)),
    (b"z1,10,1", RemovePoint(PointKind.HARDWARE, 0x10, 1)),
    (b"Z2,2000,4", InsertPoint(PointKind.WRITE, 0x2000, 4)),
    (b"z2,2000,4", RemovePoint(PointKind.WRITE, 0x2000, 4)),
    (b"Z3,2000,2", InsertPoint(PointKind.READ, 0x2000, 2)),
    (b"z3,2000,2", RemovePoint(PointKind.READ, 0x2000, 2)),
    (b"Z4,2000,1", InsertPoint(PointKind.ACCESS, 0x2000, 1)),
    (b"z4,2000,1", RemovePoint(PointKind.ACCESS, 0x2000, 1)),
    (b"qAttached", QueryAttached(None)),
    (b"qAttached:1", QueryAttached(1)),
    (b"qAttached:2a", QueryAttached(0x2A)),
    (b"qC", QueryCurrentThread()),
    (b"qfThreadInfo", QueryThreadInfo(first=True)),
    (b"qsThreadInfo", QueryThreadInfo(first=False)),
    (b"Hg0", SetThread("g", "0")),
    (b"Hc-1", SetThread("c", "-1")),
    (b"Hgp1.1", SetThread("g", "p1.1")),
    (b"Hgp0.0", SetThread("g", "p0.0")),
    (b"Hcp1.-1", SetThread("c", "p1.-1")),
    (b"Hcp1", SetThread("c", "p1")),
    (b"T1", ThreadAlive("1")),
    (b"Tp1.1", ThreadAlive("p1.1")),
    (b"qRcmd,68656c70", MonitorCommand(b"help")),
    (b"qRcmd,", MonitorCommand(b"")),
    (b"qSymbol::", QuerySymbol(None, None)),
    (b"qSymbol::6d61696e", QuerySymbol(None, b"main")),
    (b"qSymbol:8048000:6d61696e", QuerySymbol(0x8048000, b"main")),
    (b"qTStatus", QueryTraceStatus()),
    (b"qOffsets", QueryOffsets()),
    (b"vFile:setfs:0", FileSetFs(0)),
    (b"vFile:open:2f62696e,0,1c0", FileOpen(b"/bin", 0, 0o700)),
    (b"vFile:pread:3,8000,1f", FilePread(3, 0x8000, 0x1F)),
    (b"vFile:fstat:3", FileFstat(3)),
    (b"vFile:close:3", FileClose(3)),
    (b"vFile:unlink:2f62696e", FileOperation(b"unlink:2f62696e")),
    (b"k", Kill()),
    (b"vKill;1", VKill(1)),
    (b"vKill;a", VKill(10)),
    (b"D", Detach(None)),
    (b"D;1", Detach(1)),
]


@pytest.mark.parametrize(("payload", "request_"), GOOD, ids=[p.decode() for p, _ in GOOD])
def test_parse(payload: bytes, request_: Request) -> None:
    assert parse_request(payload) == request_


MALFORMED = [
    b"qSupported;x",  # a name match, but not qSupported's delimiter
    b"qXfer:features:read:target.xml",
    b"qXfer:features:read:target.xml:0",
    b"qXfer:features:read:target.xml:x,1",
    b"qXfer:features",
    b"G0",  # odd hex
    b"G0g",
    b"G 0",
    b"p",
    b"px",
    b"p-1",
    b"p0x8",
    b"p 8",
    b"p1_0",
    b"P8",
    b"P8=1",
    b"P=00",
    b"m",
    b"m8048000",
    b"m8048000,",
    b"m,4",
    b"m+8,4",
    b"M2000,2:be",  # fewer bytes than announced
    b"M2000,1:beef",  # more
    b"M2000,2",
    b"X2000,3:ab",
    b"X2000:ab",
    b"cxyz",
    b"c-1",
    b"C",
    b"C1ff",  # signal above 255
    b"C05;",
    b"C05;zz",
    b"Sxx",
    b"vCont;",
    b"vCont;c;",
    b"vCont;x",
    b"vCont;c05",  # c takes no signal
    b"vCont;C",
    b"vCont;c:",
    b"vCont;c:q",
    b"vCont;s:1.2",
    b"Z0",
    b"Z0,1",
    b"Z0,1,1;X2,0a",  # conditions are not supported
    b"Z0,1,1,",
    b"Z0,,1",
    b"Z2;1,1",
    b"qAttached:",
    b"qAttached:x",
    b"qC:1",
    b"H",
    b"Hx1",
    b"Hg",
    b"Hgx",
    b"Hgp",
    b"Hgp1.",
    b"T",
    b"T-2",
    b"qRcmd,6",
    b"qRcmd,zz",
    b"qRcmd:00",
    b"qSymbol",
    b"qSymbol:",
    b"qSymbol:x:",
    b"qSymbol::6",
    b"vFile;open",
    b"vKill",
    b"vKill;",
    b"vKill;x",
    b"D1",
    b"D;",
    b"D;x",
    b"qSupported:\xff",
]


@pytest.mark.parametrize("payload", MALFORMED, ids=[repr(p) for p in MALFORMED])
def test_malformed(payload: bytes) -> None:
    request = parse_request(payload)
    assert isinstance(request, MalformedPacket), request
    assert request.payload == payload
    assert request.message


UNKNOWN = [
    b"",
    b"b",
    b"bcx",  # an exact packet with trailing text is another packet
    b"gx",
    b"?x",
    b"kx",
    b"qCRC:8048000,10",  # qC must not swallow qCRC
    b"qThreadExtraInfo,1",
    b"qL1200",
    b"qP0000001f0000000000000001",
    b"qGetTLSAddr:1,0,0",
    b"qTfV",
    b"QThreadEvents:1",
    b"QNonStop:1",
    b"vAttach;1",
    b"vRun;",
    b"vCtrlC",
    b"vContX",
    b"vCont",
    b"vCont;t",  # actions we do not advertise
    b"vCont;r1000,2000:1",
    b"vMustReplyEmptyX",
    b"qXfer:features:write:target.xml:0:abc",
    b"qXferX",
    b"qfThreadInfoX",
    b"Z5,0,1",
    b"z9,0,1",
    b"i",
    b"\x00\xff",
]


@pytest.mark.parametrize("payload", UNKNOWN, ids=[repr(p) for p in UNKNOWN])
def test_unknown(payload: bytes) -> None:
    assert parse_request(payload) == UnknownPacket(payload)


def test_requests_are_frozen_and_hashable() -> None:
    request = ReadMemory(1, 2)
    with pytest.raises(AttributeError):
        request.address = 3  # type: ignore[misc]
    assert hash(request) == hash(ReadMemory(1, 2))
