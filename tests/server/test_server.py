"""The trio server without gdb: a scripted client over trio's in-memory streams and
over TCP, with FakeTarget (and once a live Timeline) behind the session."""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrdbg.machine.host import LiveHost
from rrdbg.rsp import ALL, Capability, checksum, frame, hex_encode
from rrdbg.rsp.framing import AckReceived, Framer, PacketReceived
from rrdbg.server.gdb import PACKET_SIZE, Address, SessionFactory, serve, serve_client, stop_server
from rrdbg.server.sessions import live_sessions
from rrdbg.target.i386 import TARGET_XML, encode_registers
from rrdbg.target.interface import StopKind
from rrdbg.target.session import Session
from rrdbg.testing import FakeTarget
from rrdbg.timeline.timeline import Timeline
from tests.conftest import guest

GDB_QSUPPORTED = (
    b"qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;"
    b"exec-events+;vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+;"
    b"xmlRegisters=i386"
)
LOCAL = Address("127.0.0.1", 0)
#: Bound on every test's trio part, so a bug hangs nothing for long.
TIMEOUT = 10


def new_session(target: FakeTarget, *, attached: bool = True) -> Session:
    return Session(
        target,
        capabilities=ALL if target.can_reverse else ALL - {Capability.REVERSE},
        packet_size=PACKET_SIZE,
        attached=attached,
    )


class Client:
    """gdb's end of the wire, scripted: frames requests, checks and acks replies."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.framer = Framer(1 << 20)
        self.ack = True
        #: Acks received from the server, in order (True for "+").
        self.acks: list[bool] = []

    async def send(self, payload: bytes) -> None:
        await self.stream.send_all(frame(payload))

    async def next_frame(self) -> AckReceived | PacketReceived:
        while (event := self.framer.next_frame()) is None:
            data = await self.stream.receive_some(1 << 16)
            if not data:
                raise EOFError("the server closed the connection")
            self.framer.feed(bytes(data))
        assert isinstance(event, AckReceived | PacketReceived), event
        return event

    async def reply(self) -> bytes:
        """The next packet's payload; acks on the way are kept in ``acks``."""
        while True:
            event = await self.next_frame()
            if isinstance(event, AckReceived):
                self.acks.append(event.positive)
                continue
            assert event.checksum_ok
            if self.ack:
                # As gdb does; the server may have closed already (after D).
                with contextlib.suppress(trio.BrokenResourceError):
                    await self.stream.send_all(b"+")
            return event.payload

    async def request(self, payload: bytes) -> bytes:
        await self.send(payload)
        return await self.reply()

    async def connect(self, halt: bytes = b"T05") -> None:
        """What gdb 13 sends on ``target remote``, checking the answers
        (``halt``: how the reply to ``?`` starts)."""
        features = await self.request(GDB_QSUPPORTED)
        assert features.startswith(b"PacketSize=%x;" % PACKET_SIZE)
        assert b"QStartNoAckMode+" in features
        assert b"swbreak+" in features
        assert await self.request(b"vMustReplyEmpty") == b""
        assert await self.request(b"QStartNoAckMode") == b"OK"
        assert self.acks == [True, True, True]
        self.ack = False
        assert await self.request(b"Hgp0.0") == b"OK"
        document = b""
        while True:
            chunk = await self.request(b"qXfer:features:read:target.xml:%x,ffb" % len(document))
            document += chunk[1:]
            if chunk[:1] == b"l":
                break
            assert chunk[:1] == b"m"
        assert document == TARGET_XML
        assert await self.request(b"qTStatus") == b"T0;tnotrun:0"
        assert (await self.request(b"?")).startswith(halt)
        # gdb offered multiprocess+ (GDB_QSUPPORTED): thread ids are pPID.TID.
        threads = await self.request(b"qXfer:threads:read::0,fff")
        assert re.fullmatch(
            rb'l<\?xml version="1.0"\?>\n<threads>(<thread id="p[0-9a-f]+\.[0-9a-f]+" '
            rb'core="0" name="[^"]*"/>)+</threads>\n',
            threads,
        ), threads
        assert await self.request(b"qAttached:1") in (b"0", b"1")
        assert await self.request(b"Hc-1") == b"OK"
        registers = await self.request(b"g")
        assert len(registers) == 2 * len(encode_registers(FakeTarget().registers))
        assert self.acks == [True, True, True]  # none after no-ack mode

    async def rest(self) -> bytes:
        """Everything the server sends until it closes."""
        out = b""
        while data := await self.stream.receive_some(1 << 16):
            out += data
        return out


async def wait_for(condition: Callable[[], bool]) -> None:
    """Poll ``condition``: it watches state that the server's worker thread changes."""
    with trio.fail_after(5):
        while not condition():  # noqa: ASYNC110 (no trio.Event across threads)
            await trio.sleep(0.005)


@asynccontextmanager
async def served(
    session: Session,
    make_pair: Callable[[], tuple[trio.abc.Stream, trio.abc.Stream]] = (
        trio.testing.memory_stream_pair
    ),
) -> AsyncIterator[tuple[Client, list[bool]]]:
    """A client talking to ``serve_client`` over in-memory streams; the list
    receives serve_client's result once it returns."""
    client_stream, server_stream = make_pair()
    result: list[bool] = []

    async def server() -> None:
        result.append(await serve_client(server_stream, session))
        await server_stream.aclose()

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server)
            yield Client(client_stream), result
            await client_stream.aclose()


# -- one client over memory streams -------------------------------------------------


@pytest.mark.trio
@pytest.mark.parametrize(
    "make_pair",
    [trio.testing.memory_stream_pair, trio.testing.lockstep_stream_pair],
    ids=["memory", "lockstep"],
)
async def test_connect_burst_then_detach(
    make_pair: Callable[[], tuple[trio.abc.Stream, trio.abc.Stream]],
) -> None:
    target = FakeTarget()
    target.memory[0] = 0x90
    async with served(new_session(target), make_pair) as (client, result):
        await client.connect()
        assert await client.request(b"m1000,1") == b"90"
        assert await client.request(b"Z0,1010,1") == b"OK"
        reply = await client.request(b"vCont;c:p1.-1")
        assert reply.startswith(b"T05") and reply.endswith(b"thread:p1.1;swbreak:;")
        assert await client.request(b"D") == b"OK"
        assert await client.rest() == b""
    assert result == [True]
    assert target.detached == 1


@pytest.mark.trio
async def test_ctrl_c_stops_a_spinning_run_promptly() -> None:
    target = FakeTarget(spin=True, spin_seconds=3)
    async with served(new_session(target)) as (client, result):
        await client.connect()
        await client.send(b"vCont;c")
        await wait_for(lambda: target.polls > 10)  # spinning
        t0 = time.monotonic()
        await client.stream.send_all(b"\x03")
        reply = await client.reply()
        elapsed = time.monotonic() - t0
        assert reply.startswith(b"T02")
        assert elapsed < 0.5
        assert not target.running
        assert (await client.request(b"?")).startswith(b"T02")
        # Interrupts while stopped are ignored; the session goes on.
        await client.stream.send_all(b"\x03")
        assert (await client.request(b"?")).startswith(b"T02")
        await client.send(b"k")
        assert await client.rest() == b""
    assert result == [True]
    assert target.killed


@pytest.mark.trio
async def test_ctrl_c_in_the_same_segment_as_the_resume() -> None:
    target = FakeTarget(spin=True, spin_seconds=3)
    async with served(new_session(target)) as (client, _):
        await client.request(b"QStartNoAckMode")
        client.ack = False
        await client.stream.send_all(frame(b"vCont;c") + b"\x03")
        with trio.fail_after(2):
            assert (await client.reply()).startswith(b"T02")
        await client.send(b"k")


@pytest.mark.trio
async def test_a_resume_is_acknowledged_while_it_runs() -> None:
    target = FakeTarget(spin=True, spin_seconds=3)
    async with served(new_session(target)) as (client, _):
        await client.send(b"vCont;c")
        with trio.fail_after(2):
            event = await client.next_frame()
        assert event == AckReceived(positive=True)
        await wait_for(lambda: target.polls > 0)  # the ack did not wait for the stop
        await client.stream.send_all(b"\x03")
        assert (await client.reply()).startswith(b"T02")
        await client.send(b"k")


@pytest.mark.trio
async def test_kill_ends_the_session_without_a_reply() -> None:
    target = FakeTarget()
    async with served(new_session(target)) as (client, result):
        await client.send(b"k")
        assert await client.rest() == b"+"
    assert result == [True]
    assert target.killed


@pytest.mark.trio
async def test_vkill_and_detach_reply_ok() -> None:
    for packet, killed in ((b"vKill;1", True), (b"D;1", False)):
        target = FakeTarget()
        async with served(new_session(target)) as (client, result):
            assert await client.request(packet) == b"OK"
            assert await client.rest() == b""
        assert result == [True]
        assert target.killed is killed


@pytest.mark.trio
async def test_bad_checksum_is_nakked_and_the_resend_answered() -> None:
    async with served(new_session(FakeTarget())) as (client, _):
        good = frame(b"p8")
        await client.stream.send_all(good[:-2] + b"%02x" % ((checksum(b"p8") + 1) & 0xFF))
        with trio.fail_after(1):  # the NAK comes at once, not with the next reply
            assert await client.next_frame() == AckReceived(positive=False)
        await client.stream.send_all(good)
        assert await client.reply() == hex_encode((0x1000).to_bytes(4, "little"))
        assert client.acks == [True]
        # A "-" from us makes the server send its last packet again.
        await client.stream.send_all(b"-")
        assert await client.reply() == hex_encode((0x1000).to_bytes(4, "little"))
        await client.send(b"k")


@pytest.mark.trio
async def test_an_oversized_packet_gets_an_error_and_the_session_goes_on() -> None:
    async with served(new_session(FakeTarget())) as (client, _):
        assert await client.request(b"M1000,8000:" + b"00" * 0x8000) == b"E16"
        assert await client.request(b"m1000,2") == b"0000"
        assert client.acks == [True, True]
        await client.send(b"k")


@pytest.mark.trio
async def test_client_vanishing_mid_run_stops_the_guest() -> None:
    target = FakeTarget(spin=True, spin_seconds=3)
    async with served(new_session(target)) as (client, result):
        await client.request(b"QStartNoAckMode")
        await client.send(b"vCont;c")
        await wait_for(lambda: target.polls > 0)
        await client.stream.aclose()
        await wait_for(lambda: bool(result))
    assert result == [False]
    assert not target.running
    assert target.last_stop.kind is StopKind.INTERRUPT


# -- serve(): TCP, one client at a time -----------------------------------------------------


async def tcp_client(port: int) -> Client:
    return Client(await trio.open_tcp_stream("127.0.0.1", port))


def live_style(target: FakeTarget, ended: list[bool]) -> SessionFactory:
    """One target for the server's life: like ``live_sessions``, over a FakeTarget."""

    def make() -> tuple[Session, Callable[[bool], None]]:
        session = new_session(target, attached=False)

        def finish(goodbye: bool) -> None:
            if not goodbye:
                target.detach()
                return
            ended.append(True)
            stop_server()

        return session, finish

    return make


@pytest.mark.trio
async def test_disconnect_mid_run_leaves_a_live_server_ready_for_the_next_client() -> None:
    target = FakeTarget(spin=True, spin_seconds=3)
    ended: list[bool] = []
    log = io.StringIO()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve, live_style(target, ended), LOCAL, log=log))
            assert f"waiting for gdb on 127.0.0.1:{port}" in log.getvalue()
            first = await tcp_client(port)
            await first.connect()
            target.insert_breakpoint(0x1FFF, hardware=False)  # never reached
            await first.send(b"vCont;c")
            await wait_for(lambda: target.polls > 0)
            await first.stream.aclose()
            await wait_for(lambda: target.detached == 1)
            assert not target.running
            assert target.breakpoints == {}
            second = await tcp_client(port)
            await second.connect(halt=b"T02")  # the stop of the interrupted run
            assert await second.request(b"qAttached") == b"0"
            await second.send(b"k")
            assert await second.rest() == b""
    # serve() returned on its own: the live session ended the server.
    assert ended == [True]
    assert target.killed


@pytest.mark.trio
async def test_a_second_client_is_refused_while_one_is_connected() -> None:
    made: list[FakeTarget] = []

    def factory() -> tuple[Session, Callable[[bool], None]]:
        made.append(FakeTarget())
        return new_session(made[-1]), lambda _goodbye: None

    log = io.StringIO()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve, factory, LOCAL, log=log))
            first = await tcp_client(port)
            await first.connect()
            second = await tcp_client(port)
            # Told why, in a way gdb prints, then closed.
            await second.send(GDB_QSUPPORTED)
            answer = await second.rest()
            assert b"$E.rrdbg: another gdb is connected to this server" in answer
            assert "refusing a second gdb" in log.getvalue()
            assert (await first.request(b"?")).startswith(b"T05")
            await first.request(b"D")
            assert await first.rest() == b""
            third = await tcp_client(port)  # the first one left: welcome
            assert (await third.request(b"?")).startswith(b"T05")
            assert len(made) == 2
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_serve_once_returns_after_the_client_leaves() -> None:
    def factory() -> tuple[Session, Callable[[bool], None]]:
        return new_session(FakeTarget()), lambda _goodbye: None

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve, factory, LOCAL, once=True, log=io.StringIO()))
            client = await tcp_client(port)
            await client.connect()
            await client.stream.aclose()
        # the nursery exits only because serve() returned


@pytest.fixture
def sink() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_WRONLY)
    yield fd
    os.close(fd)


@pytest.mark.trio
async def test_live_timeline_survives_a_client_vanishing_mid_run(sink: int) -> None:
    debugme = guest("debugme")
    timeline = Timeline.live_run(
        debugme, ["spin"], LiveHost(stdout_fd=sink), stdout_fd=sink, stderr_fd=sink
    )
    ended: list[bool] = []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            factory = live_sessions(timeline, lambda: ended.append(True))
            port = await nursery.start(partial(serve, factory, LOCAL, log=io.StringIO()))
            first = await tcp_client(port)
            await first.request(b"QStartNoAckMode")
            first.ack = False
            await first.send(b"vCont;c")
            await trio.sleep(0.1)
            await first.stream.aclose()
            # Until the server has stopped the guest, a new client is refused
            # (with an error reply saying why).
            while True:
                second = await tcp_client(port)
                try:
                    if await second.request(b"QStartNoAckMode") == b"OK":
                        break
                except EOFError:
                    pass
                await trio.sleep(0.01)
            second.ack = False
            assert (await second.request(b"?")).startswith(b"T02")
            assert timeline.last_stop.kind is StopKind.INTERRUPT
            assert timeline.icount > 0
            await second.send(b"k")
            assert await second.rest() == b""
    assert ended == [True]


# -- any bytes at all --------------------------------------------------------------------------

PAYLOADS = [
    GDB_QSUPPORTED,
    b"QStartNoAckMode",
    b"?",
    b"g",
    b"G" + b"00" * len(encode_registers(FakeTarget().registers)),
    b"p8",
    b"P8=10100000",
    b"m1000,40",
    b"M1000,2:abcd",
    b"X1000,1:}",
    b"c",
    b"s",
    b"C0b",
    b"vCont;c",
    b"vCont;s:1;c",
    b"vCont?",
    b"bc",
    b"bs",
    b"Z0,1010,1",
    b"z0,1010,1",
    b"Z1,1020,1",
    b"Z2,1800,4",
    b"Z4,1800,4",
    b"qRcmd,68656c70",
    b"qRcmd,6e6f7065",
    b"qXfer:features:read:target.xml:0,ffb",
    b"qXfer:threads:read::0,fff",
    b"qfThreadInfo",
    b"Hg0",
    b"T1",
    b"vFile:setfs:0",
    b"vMustReplyEmpty",
    b"D",
    b"k",
    b"vKill;1",
]
PREFIXES = sorted({p[:1] for p in PAYLOADS} | {b"qXfer:", b"vCont;", b"qRcmd,", b"c", b"Z2,"})


def corrupt(packet: bytes) -> bytes:
    return packet[:-1] + (b"0" if packet[-1:] != b"0" else b"1")


#: Packets with numbers in them, out of range or not.
NUMBERS = st.tuples(
    st.sampled_from(
        [
            b"c",
            b"s",
            b"C05;",
            b"m",
            b"M",
            b"p",
            b"P",
            b"Z0,",
            b"z2,",
            b"Z4,",
            b"qXfer:threads:read::",
        ]
    ),
    st.lists(st.integers(0, 1 << 40).map(b"%x".__mod__), min_size=1, max_size=3),
    st.sampled_from([b",", b":", b"="]),
).map(lambda t: frame(t[0] + t[2].join(t[1])))
CHUNKS = st.one_of(
    NUMBERS,
    st.sampled_from(PAYLOADS).map(frame),
    st.tuples(st.sampled_from(PREFIXES), st.binary(max_size=24)).map(lambda t: frame(t[0] + t[1])),
    st.sampled_from(PAYLOADS).map(frame).map(corrupt),
    st.sampled_from([b"\x03", b"+", b"-", b"$", b"#", b"}", b"*", b"$#00"]),
    st.tuples(
        st.sampled_from(PREFIXES),
        st.text(alphabet="0123456789abcdefp-,:;=", max_size=24).map(str.encode),
    ).map(lambda t: frame(t[0] + t[1])),
    st.binary(max_size=40),
)


async def feed(chunks: list[bytes], target: FakeTarget) -> bytes:
    client, server = trio.testing.memory_stream_pair()
    session = new_session(target)
    result: list[bool] = []

    async def run_server() -> None:
        result.append(await serve_client(server, session))
        await server.aclose()

    async def drain() -> None:
        out.extend(await Client(client).rest())

    out = bytearray()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_server)
            nursery.start_soon(drain)
            for chunk in chunks:
                try:
                    await client.send_all(chunk)
                except trio.BrokenResourceError:
                    break  # the session ended (k, D)
                await trio.lowlevel.checkpoint()
            await client.send_eof()
    assert len(result) == 1
    return bytes(out)


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(CHUNKS, max_size=25), st.booleans())
def test_any_bytes_are_answered_or_ignored_never_fatal(chunks: list[bytes], reverse: bool) -> None:
    target = FakeTarget(end=0x1080, reverse=reverse)
    out = trio.run(feed, chunks, target)
    # What comes back is well formed: acks, and packets with good checksums.
    framer = Framer(1 << 20)
    framer.feed(out)
    while (event := framer.next_frame()) is not None:
        assert isinstance(event, AckReceived | PacketReceived), event
        if isinstance(event, PacketReceived):
            assert event.checksum_ok
    assert framer.buffered == 0


@pytest.mark.trio
async def test_a_hundred_immediate_reconnects_are_all_served() -> None:
    made: list[FakeTarget] = []

    def factory() -> tuple[Session, Callable[[bool], None]]:
        made.append(FakeTarget())
        return new_session(made[-1]), lambda _goodbye: None

    log = io.StringIO()
    with trio.fail_after(TIMEOUT * 4):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve, factory, LOCAL, log=log))
            for i in range(100):
                client = await tcp_client(port)
                assert (await client.request(b"?")).startswith(b"T05"), i
                if i % 2:
                    await client.request(b"D")  # detach, then close at once
                await client.stream.aclose()  # or just close
            assert "refusing" not in log.getvalue()
            assert len(made) == 100
            nursery.cancel_scope.cancel()
