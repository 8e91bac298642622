"""Long reverse searches over the server: progress on gdb's console, and a
Ctrl-C that stops them within 100 ms leaving the position unchanged."""

from __future__ import annotations

import os
import time

import pytest
import trio

from rrdbg.rsp import ALL, hex_decode, hex_encode
from rrdbg.server.gdb import PACKET_SIZE
from rrdbg.target.session import Session
from rrdbg.timeline import timeline as timeline_module
from rrdbg.timeline.timeline import Timeline
from tests.conftest import guest, record_quietly
from tests.server.test_server import Client, served

#: About 940 M instructions: a reverse-continue over all of it takes ~0.5 s.
ITERATIONS = "2000"


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("long") / "compute.rr"
    record_quietly(guest("compute"), [ITERATIONS], directory)
    return str(directory)


def session_for(directory: str) -> Session:
    sink = os.open(os.devnull, os.O_WRONLY)
    timeline = Timeline.replay(directory, stdout_fd=sink, stderr_fd=sink)
    return Session(timeline, capabilities=ALL, packet_size=PACKET_SIZE, attached=True)


async def monitor(client: Client, command: bytes) -> bytes:
    return hex_decode(await client.request(b"qRcmd," + hex_encode(command)))


@pytest.mark.trio
@pytest.mark.slow
async def test_ctrl_c_stops_a_long_reverse_continue_within_100_ms(long_recording: str) -> None:
    async with served(session_for(long_recording)) as (client, _result):
        await client.connect()
        with trio.fail_after(60):
            end = await client.request(b"vCont;c")
        assert b"replaylog:end" in end
        before = await monitor(client, b"when")
        await client.send(b"bc")
        await trio.sleep(0.15)  # searching by now
        t0 = time.monotonic()
        await client.stream.send_all(b"\x03")
        reply = await client.reply()
        elapsed = time.monotonic() - t0
        assert reply.startswith(b"T02"), reply
        assert elapsed < 0.1, elapsed
        assert await monitor(client, b"when") == before  # the search left no trace


@pytest.mark.trio
@pytest.mark.slow
async def test_a_long_reverse_continue_reports_progress(
    long_recording: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timeline_module, "REPORT_EVERY", 0.0)
    async with served(session_for(long_recording)) as (client, _result):
        await client.connect()
        with trio.fail_after(60):
            await client.request(b"vCont;c")
            await client.send(b"bc")
            replies = [await client.reply()]
            while replies[-1].startswith(b"O"):
                replies.append(await client.reply())
    progress = [hex_decode(r[1:]).decode() for r in replies[:-1]]
    assert progress, replies
    prefix = "rrdbg: reverse-continue: no stop after icount"
    assert all(line.startswith(prefix) for line in progress)
    assert b"replaylog:begin" in replies[-1]
