"""Session dispatch with a FakeTarget: each request's reply, exactly as it goes on the wire."""

from __future__ import annotations

import pytest

from rrdbg.rsp import (
    ALL,
    Capability,
    ConsoleOutput,
    ErrorReply,
    Interrupt,
    MalformedPacket,
    Reply,
    Request,
    XferChunk,
    encode_reply,
    hex_encode,
    parse_request,
    supported_features,
)
from rrdbg.target.i386 import REGISTER_BY_NAME, REGISTERS, TARGET_XML, encode_registers
from rrdbg.target.interface import SIGINT, Direction, StopEvent, StopKind, WatchKind, no_report
from rrdbg.target.session import Deferred, Session
from rrdbg.testing import FAKE_HELP, FakeTarget, never

PACKET_SIZE = 0x4000
GDB_FEATURES = b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386"


def make(
    target: FakeTarget | None = None,
    *,
    capabilities: frozenset[Capability] = ALL - {Capability.REVERSE},
    packet_size: int = PACKET_SIZE,
    attached: bool = True,
) -> tuple[Session, FakeTarget]:
    target = target or FakeTarget()
    session = Session(target, capabilities=capabilities, packet_size=packet_size, attached=attached)
    return session, target


def replies(session: Session, request: Request | Interrupt) -> list[Reply]:
    response = session.handle(request)
    if isinstance(response, Deferred):
        return response.run(never, no_report)
    return response


def wire(session: Session, payload: bytes) -> list[bytes]:
    """The encoded replies to the packet ``payload``, as the server would send them."""
    request = parse_request(payload, session.capabilities)
    return [encode_reply(r) for r in replies(session, request)]


def one(session: Session, payload: bytes) -> bytes:
    out = wire(session, payload)
    assert len(out) == 1, out
    return out[0]


def le(value: int) -> bytes:
    return hex_encode(value.to_bytes(4, "little"))


def expedited(target: FakeTarget) -> bytes:
    regs = target.registers
    return b"05:%s;04:%s;08:%s;" % (
        hex_encode(regs["ebp"]),
        hex_encode(regs["esp"]),
        hex_encode(regs["eip"]),
    )


# -- one reply per request ----------------------------------------------------------


@pytest.mark.parametrize(
    ("packet", "reply"),
    [
        (b"vMustReplyEmpty", b""),
        (b"QStartNoAckMode", b"OK"),
        (b"Hgp0.0", b"OK"),
        (b"Hc-1", b"OK"),
        (b"qSymbol::", b"OK"),
        (b"qTStatus", b"T0;tnotrun:0"),
        (b"qOffsets", b""),
        (b"vFile:open:2f6574632f706173737764,0,0", b""),
        (b"vFile:setfs:0", b""),
        (b"qC", b"QC1"),
        (b"qfThreadInfo", b"m1"),
        (b"qsThreadInfo", b"l"),
        (b"T1", b"OK"),
        (b"Tp1.1", b"OK"),
        (b"Tp1.-1", b"OK"),
        (b"T2", b"E16"),
        (b"T0001", b"OK"),
        (b"T0x1", b"E16"),
        (
            b"qHostInfo",
            b"triple:693338362d70632d6c696e75782d676e75;ptrsize:4;endian:little;ostype:linux;",
        ),
        (
            b"qProcessInfo",
            b"pid:1;triple:693338362d70632d6c696e75782d676e75;ptrsize:4;endian:little;ostype:linux;",
        ),
        (b"qXfer:auxv:read::0,fff", b""),  # FakeTarget has none: not supported
        (b"vCont?", b"vCont;c;C;s;S"),
        (b"vCont;c:2", b"E16"),
        (b"qFooBar", b""),
        (b"vCont;t", b""),
        (b"qXfer:features:write:target.xml:0:abc", b""),
        (b"qXfer:libraries:read::0,fff", b""),
        (b"qXfer:features:read:i386-avx.xml:0,fff", b"E16"),
        (b"qXfer:threads:read:other:0,fff", b"E16"),
        (b"m1000", b"E16"),
        (b"Z0,zz,1", b"E16"),
        (b"p2a", b"E16"),
        (b"P2a=00000000", b"E16"),
        (b"P0=1234", b"E16"),
        (b"G00", b"E16"),
        (b"m0,4", b"E0e"),
        (b"M0,1:00", b"E0e"),
        (b"Z2,1000,0", b"E16"),
        (b"bc", b""),  # reverse packets are unknown without Capability.REVERSE
        (b"bs", b""),
    ],
)
def test_simple_replies(packet: bytes, reply: bytes) -> None:
    session, _ = make()
    assert wire(session, packet) == [reply]


def test_qsupported_is_the_table_answer_and_records_the_client_features() -> None:
    session, _ = make()
    # FakeTarget has no auxiliary vector, no program file and no dynamic
    # linker: none of them is advertised.
    caps = ALL - {
        Capability.REVERSE,
        Capability.AUXV,
        Capability.EXEC_FILE,
        Capability.LIBRARIES,
    }
    assert one(session, GDB_FEATURES) == supported_features(caps, PACKET_SIZE)
    assert session.client_features >= {"swbreak+", "hwbreak+", "multiprocess+"}
    reverse, _ = make(capabilities=ALL, packet_size=0x8000)
    text = one(reverse, b"qSupported")
    missing = {Capability.AUXV, Capability.EXEC_FILE, Capability.LIBRARIES}
    assert text == supported_features(ALL - missing, 0x8000)
    assert b"auxv" not in text
    assert b"PacketSize=8000" in text
    assert b"ReverseContinue+" in text
    assert b"ReverseStep+" in text


@pytest.mark.parametrize(("attached", "reply"), [(True, b"1"), (False, b"0")])
def test_qattached(attached: bool, reply: bytes) -> None:
    session, _ = make(attached=attached)
    assert one(session, b"qAttached:1") == reply
    assert one(session, b"qAttached") == reply


def test_interrupt_while_stopped_is_ignored() -> None:
    session, target = make()
    assert session.handle(Interrupt()) == []
    assert target.resumes == []


def test_malformed_packet_from_the_connection_is_an_error() -> None:
    session, _ = make()
    assert replies(session, MalformedPacket(b"mxyz", "packet too long")) == [ErrorReply(22)]


# -- registers -----------------------------------------------------------------------


def test_g_reads_every_register_in_gdb_order() -> None:
    session, target = make()
    target.registers["eax"] = bytes.fromhex("78563412")
    target.registers["xmm7"] = bytes(range(16))
    assert one(session, b"g") == hex_encode(encode_registers(target.registers))


def test_p_and_p_write_by_number() -> None:
    session, target = make()
    assert one(session, b"p8") == le(0x1000)
    assert one(session, b"P0=78563412") == b"OK"
    assert target.registers["eax"] == bytes.fromhex("78563412")
    assert one(session, b"p0") == b"78563412"
    st0 = REGISTER_BY_NAME["st0"]
    value = bytes(range(1, 11))
    assert one(session, b"P%x=%s" % (st0.number, hex_encode(value))) == b"OK"
    assert one(session, b"p%x" % st0.number) == hex_encode(value)
    assert one(session, b"p%x" % (len(REGISTERS) - 1)) == b"ffffffff"  # orig_eax


def test_G_writes_only_the_registers_that_changed() -> None:
    session, target = make()
    values = dict(target.registers)
    assert one(session, b"G" + hex_encode(encode_registers(values))) == b"OK"
    assert target.register_writes == []
    values["ecx"] = bytes.fromhex("efbeadde")
    values["xmm2"] = b"\x01" * 16
    assert one(session, b"G" + hex_encode(encode_registers(values))) == b"OK"
    assert target.register_writes == ["ecx", "xmm2"]
    assert target.registers == values


# -- memory ----------------------------------------------------------------------------


def test_memory_read_and_write() -> None:
    session, target = make()
    target.memory[0:4] = b"\x90\xcc\x31\xc0"
    assert one(session, b"m1000,4") == b"90cc31c0"
    assert one(session, b"M1001,2:abcd") == b"OK"
    assert one(session, b"X1003,2:#$") == b"OK"  # binary (the framer undid the escapes)
    assert bytes(target.memory[:5]) == b"\x90\xab\xcd#$"
    assert one(session, b"m1fff,2") == b"E0e"  # half of it is unmapped
    assert one(session, b"m1fff,1") == b"00"


def test_memory_reads_are_cut_to_the_packet_size() -> None:
    session, _ = make(FakeTarget(size=0x10000), packet_size=0x100)
    assert one(session, b"m1000,1000") == b"00" * ((0x100 - 8) // 2)


# -- breakpoints and watchpoints ---------------------------------------------------------


def test_breakpoints_and_watchpoints_reach_the_target() -> None:
    session, target = make()
    assert one(session, b"Z0,1010,1") == b"OK"
    assert one(session, b"Z1,1020,1") == b"OK"
    assert target.breakpoints == {0x1010: False, 0x1020: True}
    assert one(session, b"z0,1010,1") == b"OK"
    assert one(session, b"z0,1010,1") == b"OK"  # removing twice is fine
    assert target.breakpoints == {0x1020: True}
    for packet in (b"Z2,1800,4", b"Z3,1804,2", b"Z4,1808,1"):
        assert one(session, packet) == b"OK"
    assert target.watchpoints == [
        (WatchKind.WRITE, 0x1800, 4),
        (WatchKind.READ, 0x1804, 2),
        (WatchKind.ACCESS, 0x1808, 1),
    ]
    assert one(session, b"z3,1804,2") == b"OK"
    assert (WatchKind.READ, 0x1804, 2) not in target.watchpoints


def test_watchpoint_packets_are_unknown_without_the_capability() -> None:
    session, target = make(capabilities=frozenset())
    assert one(session, b"Z2,1800,4") == b""
    assert target.watchpoints == []


# -- qXfer ---------------------------------------------------------------------------------


def read_document(session: Session, annex: bytes, obj: bytes, chunk: int) -> tuple[bytes, int]:
    data = b""
    packets = 0
    while True:
        request = parse_request(b"qXfer:%s:read:%s:%x,%x" % (obj, annex, len(data), chunk))
        (reply,) = replies(session, request)
        assert isinstance(reply, XferChunk)
        packets += 1
        data += reply.data
        if reply.last:
            return data, packets


@pytest.mark.parametrize("chunk", [0x100, 0x3FF, 0xFFB, 0x10000])
def test_target_xml_in_chunks(chunk: int) -> None:
    session, _ = make()
    document, packets = read_document(session, b"target.xml", b"features", chunk)
    assert document == TARGET_XML
    expected = -(-len(TARGET_XML) // min(chunk, PACKET_SIZE - 8))
    assert packets in (expected, expected + 1)


def test_xfer_chunks_are_cut_to_the_packet_size() -> None:
    session, _ = make(packet_size=0x108)
    first = one(session, b"qXfer:features:read:target.xml:0,ffb")
    assert first == b"m" + TARGET_XML[:0x100]
    document, _ = read_document(session, b"target.xml", b"features", 0xFFB)
    assert document == TARGET_XML


def test_xfer_at_and_past_the_end() -> None:
    session, _ = make()
    size = len(TARGET_XML)
    assert one(session, b"qXfer:features:read:target.xml:%x,10" % (size - 4)) == (
        b"l" + TARGET_XML[-4:]
    )
    assert one(session, b"qXfer:features:read:target.xml:%x,10" % size) == b"l"
    assert one(session, b"qXfer:features:read:target.xml:%x,10" % (size + 100)) == b"l"
    assert one(session, b"qXfer:features:read:target.xml:0,0") == b"m"


THREADS_XML = b'<?xml version="1.0"?>\n<threads><thread id="1" core="0" name="fake"/></threads>\n'


def test_threads_document() -> None:
    session, _ = make()
    assert one(session, b"qXfer:threads:read::0,fff") == b"l" + THREADS_XML
    document, packets = read_document(session, b"", b"threads", 0x10)
    assert document == THREADS_XML
    assert packets == -(-len(THREADS_XML) // 0x10)


# -- monitor -----------------------------------------------------------------------------------


def test_monitor_output_is_hex() -> None:
    session, target = make()
    response = session.handle(parse_request(b"qRcmd," + hex_encode(b"help")))
    assert isinstance(response, Deferred)
    assert not response.quick
    assert [encode_reply(r) for r in response.run(never, no_report)] == [
        hex_encode(FAKE_HELP.encode())
    ]
    assert one(session, b"qRcmd," + hex_encode(b"when")) == hex_encode(b"Current icount: 0\n")
    assert target.monitor_commands == ["help", "when"]


def test_a_failing_monitor_command_is_console_text_not_a_protocol_error() -> None:
    session, _ = make()
    out = wire(session, b"qRcmd," + hex_encode(b"frobnicate 3"))
    assert out == [
        encode_reply(ConsoleOutput(b"rrdbg: error: unknown monitor command 'frobnicate'\n")),
        b"OK",
    ]
    assert out[0].startswith(b"O")


def test_monitor_command_that_is_not_utf8() -> None:
    session, target = make()
    assert wire(session, b"qRcmd,ff68656c70")[-1] == b"OK"
    assert target.monitor_commands == ["\ufffdhelp"]


# -- resumes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("packet", "step"),
    [
        (b"c", False),
        (b"s", True),
        (b"C05", False),
        (b"S0b", True),
        (b"vCont;c", False),
        (b"vCont;s:1;c", True),
        (b"vCont;c:p1.-1", False),
        (b"vCont;s:2;c", False),  # the step is for another thread
        (b"vCont;S05:1", True),
    ],
)
def test_forward_resumes(packet: bytes, step: bool) -> None:
    session, target = make()
    response = session.handle(parse_request(packet))
    assert isinstance(response, Deferred)
    assert response.quick is step  # a bounded step runs in place
    (reply,) = [encode_reply(r) for r in response.run(never, no_report)]
    assert target.resumes == [(step, Direction.FORWARD)]
    if step:
        assert target.icount == 1
        assert reply == b"T05" + expedited(target) + b"thread:01;"
    else:
        assert reply == b"W00"  # the toy program ran to its end


def test_a_step_that_may_wait_on_the_host_is_not_quick() -> None:
    session, _ = make(FakeTarget(bounded=False))
    response = session.handle(parse_request(b"vCont;s:1;c"))
    assert isinstance(response, Deferred)
    assert not response.quick


def test_resume_at_an_address_sets_eip_first() -> None:
    session, target = make()
    target.breakpoints[0x1050] = False
    assert wire(session, b"c1040")[0].startswith(b"T05")
    assert target.icount == 0x10
    assert target.eip == 0x1050
    assert target.register_writes == ["eip"]
    assert wire(session, b"S05;1060")[0].startswith(b"T05")
    assert target.eip == 0x1061


@pytest.mark.parametrize("packet", [b"c100000000", b"s1ffffffff", b"C05;100000000"])
def test_resume_at_an_address_beyond_32_bits_is_refused(packet: bytes) -> None:
    session, target = make()
    assert wire(session, packet) == [b"E16"]
    assert target.resumes == []
    assert target.eip == 0x1000


def test_backward_resumes_with_the_reverse_capability() -> None:
    session, target = make(FakeTarget(reverse=True), capabilities=ALL)
    for _ in range(3):
        wire(session, b"s")
    assert one(session, b"bs").startswith(b"T05")
    assert target.icount == 2
    assert one(session, b"bc") == b"T05" + expedited(target) + b"thread:01;replaylog:begin;"
    assert target.icount == 0
    assert target.resumes[-2:] == [(True, Direction.BACKWARD), (False, Direction.BACKWARD)]


def test_target_error_while_running_is_an_error_reply() -> None:
    session, _ = make(capabilities=ALL)  # says it can reverse; the target cannot
    out = wire(session, b"bc")
    assert out[0].startswith(b"O")  # the reason, on gdb's console
    assert b"cannot run backward".hex().encode() in out[0]
    assert out[1:] == [b"E16"]


def test_stop_note_goes_to_the_console_first() -> None:
    session, target = make(FakeTarget(script=[StopEvent(StopKind.STEP, 1, note="hello")]))
    out = wire(session, b"s")
    assert out == [b"O" + hex_encode(b"hello\n"), b"T05" + expedited(target) + b"thread:01;"]


# -- stop replies ----------------------------------------------------------------------------------

WATCH = 0x1800
STOPS: list[tuple[StopEvent, bytes, bool]] = [
    # (event, what follows "Txx<expedited>thread:01;" or the whole reply, gdb offered swbreak+/...)
    (StopEvent(StopKind.STEP, 1), b"T05|", True),
    (StopEvent(StopKind.BREAKPOINT, 2), b"T05|swbreak:;", True),
    (StopEvent(StopKind.BREAKPOINT, 2), b"T05|", False),
    (StopEvent(StopKind.BREAKPOINT, 2, hardware=True), b"T05|hwbreak:;", True),
    (StopEvent(StopKind.BREAKPOINT, 2, hardware=True), b"T05|", False),
    (StopEvent(StopKind.WATCHPOINT, 3, watch=(WatchKind.WRITE, WATCH)), b"T05|watch:1800;", True),
    (StopEvent(StopKind.WATCHPOINT, 3, watch=(WatchKind.READ, WATCH)), b"T05|rwatch:1800;", True),
    (
        StopEvent(StopKind.WATCHPOINT, 3, watch=(WatchKind.ACCESS, WATCH)),
        b"T05|awatch:1800;",
        False,
    ),
    (StopEvent(StopKind.INTERRUPT, 4, signal=SIGINT), b"T02|", True),
    (StopEvent(StopKind.POSITION, 5), b"T05|", True),
    (StopEvent(StopKind.SIGNAL, 6, signal=11), b"T0b|", True),
    (StopEvent(StopKind.EXITED, 7, exit_code=7), b"W07", True),
    (StopEvent(StopKind.EXITED, 7, exit_code=0x103), b"W03", True),
    (StopEvent(StopKind.EXITED, 7, signal=9), b"X09", True),
    (StopEvent(StopKind.HISTORY_END, 8), b"T05|replaylog:end;", True),
    (StopEvent(StopKind.HISTORY_BEGIN, 0), b"T05|replaylog:begin;", True),
    (StopEvent(StopKind.FORK, 9, child=0x2A), b"T05|fork:p2a.2a;", True),
    (StopEvent(StopKind.VFORK, 9, child=0x2A), b"T05|vfork:p2a.2a;", True),
    (StopEvent(StopKind.VFORK_DONE, 10, child=0x2A), b"T05|vforkdone:;", True),
    (StopEvent(StopKind.EXEC, 11, path="/bin/ls"), b"T05|exec:2f62696e2f6c73;", True),
]


def test_every_stop_kind_is_covered() -> None:
    assert {event.kind for event, _, _ in STOPS} == set(StopKind)


@pytest.mark.parametrize(
    ("event", "expected", "offered"),
    STOPS,
    ids=[f"{e.kind.value}-{x.decode()}-{o}" for e, x, o in STOPS],
)
def test_stop_reply(event: StopEvent, expected: bytes, offered: bool) -> None:
    session, target = make(FakeTarget(script=[event]))
    target.registers["ebp"] = bytes.fromhex("10203040")
    target.registers["eip"] = bytes.fromhex("55100000")
    features = b"qSupported:swbreak+;hwbreak+" if offered else b"qSupported:vContSupported+"
    wire(session, features)
    head, _, reason = expected.partition(b"|")
    want = head + expedited(target) + b"thread:01;" + reason if b"|" in expected else expected
    assert wire(session, b"vCont;c") == [want]
    assert target.last_stop == event
    assert one(session, b"?") == want  # the halt reason repeats the last stop


def test_expedited_registers_are_ebp_esp_eip() -> None:
    session, target = make()
    target.registers.update(
        ebp=bytes.fromhex("01020304"), esp=bytes.fromhex("05060708"), eip=bytes.fromhex("090a0b0c")
    )
    assert one(session, b"?") == b"T0505:01020304;04:05060708;08:090a0b0c;thread:01;"


# -- goodbyes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("packet", "reply", "goodbye"),
    [
        (b"k", [], "kill"),
        (b"vKill;1", [b"OK"], "kill"),
        (b"D", [b"OK"], "detach"),
        (b"D;1", [b"OK"], "detach"),
    ],
)
def test_goodbyes(packet: bytes, reply: list[bytes], goodbye: str) -> None:
    session, target = make()
    target.breakpoints[0x1010] = False
    assert not session.finished
    assert wire(session, packet) == reply
    assert session.finished
    assert session.goodbye == goodbye
    assert target.killed is (goodbye == "kill")
    assert target.detached == 1
    assert target.breakpoints == {}


def test_a_step_over_at_the_end_of_history_is_a_plain_step() -> None:
    """gdb 13 hangs after a step-over ("vCont;s:1") answered with replaylog:end;
    a user's stepi ("vCont;s:1;c") still gets it."""
    end = StopEvent(StopKind.HISTORY_END, 7)
    session, target = make(FakeTarget(script=[end, end, end]))
    assert one(session, b"vCont;s:1") == b"T05" + expedited(target) + b"thread:01;"
    assert one(session, b"vCont;s:1;c") == b"T05" + expedited(target) + b"thread:01;replaylog:end;"
    assert one(session, b"vCont;c") == b"T05" + expedited(target) + b"thread:01;replaylog:end;"


# -- the program's file over vFile and qXfer:exec-file ---------------------------


class FileTarget(FakeTarget):
    """A fake whose program is /opt/prog (made of 20000 counting bytes)."""

    PROGRAM = bytes(i & 0xFF for i in range(20000))

    def exec_file(self) -> str | None:
        return "/opt/prog"

    def target_file(self, path: str) -> bytes | None:
        return self.PROGRAM if path == "/opt/prog" else None


def _vfile_open(path: bytes, flags: int = 0) -> bytes:
    return b"vFile:open:%s,%x,1c0" % (hex_encode(path), flags)


def test_exec_file_is_advertised_and_served_only_when_there_is_one() -> None:
    with_file, _ = make(FileTarget())
    assert b"qXfer:exec-file:read+" in one(with_file, GDB_FEATURES)
    assert one(with_file, b"qXfer:exec-file:read:1:0,1000") == b"l/opt/prog"
    assert one(with_file, b"qXfer:exec-file:read::5,1000") == b"lprog"
    without, _ = make()
    assert b"exec-file" not in one(without, GDB_FEATURES)
    assert one(without, b"qXfer:exec-file:read::0,1000") == b""


def test_vfile_reads_the_program_in_chunks_that_fit_the_packet() -> None:
    session, _ = make(FileTarget(), packet_size=0x1000)
    assert one(session, b"vFile:setfs:0") == b"F0"
    assert one(session, _vfile_open(b"/opt/prog")) == b"F0"
    got = b""
    while True:
        reply = one(session, b"vFile:pread:0,8000,%x" % len(got))
        head, _, data = reply.partition(b";")
        assert head.startswith(b"F")
        n = int(head[1:], 16)
        # Escapes (}X) make the wire longer than n; undo them.
        out, i = bytearray(), 0
        while i < len(data):
            if data[i] == 0x7D:
                out.append(data[i + 1] ^ 0x20)
                i += 2
            else:
                out.append(data[i])
                i += 1
        assert len(out) == n and len(reply) <= 0x1000
        if n == 0:
            break
        got += bytes(out)
    assert got == FileTarget.PROGRAM
    fstat = one(session, b"vFile:fstat:0")
    assert fstat.startswith(b"F40;")
    assert one(session, b"vFile:close:0") == b"F0"
    assert one(session, b"vFile:close:0") == b"F-1,9"  # EBADF
    assert one(session, b"vFile:pread:0,10,0") == b"F-1,9"


@pytest.mark.parametrize(
    ("packet", "reply"),
    [
        (_vfile_open(b"/etc/passwd"), b"F-1,2"),  # nothing else of the host: ENOENT
        (_vfile_open(b"/opt/prog/../prog"), b"F-1,2"),  # exact path only
        (_vfile_open(b"/opt/prog", 1), b"F-1,d"),  # O_WRONLY: EACCES
        (_vfile_open(b"/opt/prog", 2 | 0x200), b"F-1,d"),  # O_RDWR|O_CREAT
        (b"vFile:pwrite:0,0,41", b""),  # not offered at all
        (b"vFile:unlink:" + hex_encode(b"/opt/prog"), b""),
        (b"vFile:readlink:" + hex_encode(b"/proc/self/exe"), b""),
        (b"vFile:open:zz,0,0", b"E16"),  # malformed
        (b"vFile:pread:0,10", b"E16"),
    ],
)
def test_vfile_serves_nothing_but_the_program(packet: bytes, reply: bytes) -> None:
    session, _ = make(FileTarget())
    assert one(session, packet) == reply


def test_multiprocess_thread_ids_once_gdb_agrees() -> None:
    event = StopEvent(StopKind.SIGNAL, 6, signal=11)
    session, _ = make(FakeTarget(script=[event, StopEvent(StopKind.EXITED, 7, exit_code=3)]))
    assert b"multiprocess+" in one(session, GDB_FEATURES)
    assert one(session, b"qC") == b"QCp1.1"
    assert one(session, b"qfThreadInfo") == b"mp1.1"
    assert b'<thread id="p1.1"' in one(session, b"qXfer:threads:read::0,1000")
    assert one(session, b"Hgp1.1") == b"OK"
    assert one(session, b"Tp1.1") == b"OK"
    reply = one(session, b"vCont;c:p1.-1")
    assert reply.startswith(b"T0b") and reply.endswith(b"thread:p1.1;")
    assert one(session, b"vCont;c") == b"W03;process:1"


class BuggyTarget(FakeTarget):
    """A target with a bug: reading registers raises something unexpected."""

    def read_registers(self) -> dict[str, bytes]:
        raise ValueError("a bug")


def test_an_unexpected_exception_is_an_error_reply_not_the_end_of_the_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    session, _ = make(BuggyTarget())
    out = wire(session, b"g")
    assert out[-1] == b"E05"
    assert b"internal error in ReadRegisters: ValueError: a bug" in hex_decode_console(out[0])
    assert "rrdbg: internal error in ReadRegisters" in capsys.readouterr().err
    assert one(session, b"qC") == b"QC1"  # the session goes on


def hex_decode_console(packet: bytes) -> bytes:
    assert packet.startswith(b"O")
    return bytes.fromhex(packet[1:].decode())
