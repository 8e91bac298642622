"""The GDB server: trio transports around the sans-IO protocol and session.

Role: the only module that imports trio.  It moves bytes between a stream
(TCP, or the stdin/stdout pipe of ``target remote | rrdbg ...``) and an
``RspConnection``, hands requests to a ``Session``, and runs the session's
``Deferred`` work (anything that runs the guest) in a worker thread so the
event loop stays free to notice a Ctrl-C (0x03) or a vanished client.

Theory of operation, one client:
- idle: read bytes, feed the connection, answer each request at once (a
  single step that cannot wait on the host counts as "at once": it is one
  instruction, ~50 us, cheaper than the ~70 us a thread hand-off costs here);
- running: a worker thread executes the deferred call while a reader task
  keeps reading; 0x03 (or the client going away) sets a flag the worker
  polls between emulator slices, so the guest stops within milliseconds;
  the stop reply is sent when the worker returns.  gdb sends nothing else
  while the target runs (all-stop mode); anything it does send is handled
  after the stop, in order.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TextIO

import trio

from rrdbg.errors import RrdbgError
from rrdbg.rsp import ConsoleOutput, Interrupt, Reply, Request, RspConnection
from rrdbg.target.session import Deferred, Session

#: Largest packet we accept, advertised in qSupported (room for 16 KiB of
#: memory in hex per ``m`` reply).
PACKET_SIZE = 0x8000
_READ_SIZE = 1 << 16


@dataclass(frozen=True, slots=True)
class Address:
    """Where to serve: a TCP host and port, or the process's stdin/stdout."""

    host: str = "127.0.0.1"
    port: int = 1234
    stdio: bool = False

    @classmethod
    def parse(cls, text: str) -> Address:
        """``HOST:PORT``, ``:PORT`` or ``stdio``; RrdbgError otherwise."""
        if text == "stdio":
            return cls(stdio=True)
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise RrdbgError(f"bad gdb address {text!r} (use HOST:PORT, :PORT or stdio)")
        return cls(host=host.strip("[]") or "127.0.0.1", port=int(port))

    def __str__(self) -> str:
        return "stdio" if self.stdio else f"{self.host}:{self.port}"


#: Makes a session for a new client, and what to do when it leaves
#: (argument: whether the client said goodbye with k/D rather than vanishing).
SessionFactory = Callable[[], tuple[Session, Callable[[bool], None]]]


class _Stop(Exception):
    """Ends the server (a live session's debuggee was killed or detached)."""


async def serve_client(stream: trio.abc.Stream, session: Session) -> bool:
    """Talk to one client until it leaves; True if it said goodbye (k/D)."""
    conn = RspConnection(packet_size=PACKET_SIZE, capabilities=session.capabilities)
    backlog: list[Request | Interrupt] = []
    while True:
        while True:
            item = backlog.pop(0) if backlog else conn.next_event()
            if item is None:
                break
            response = session.handle(item)
            if isinstance(response, Deferred):
                replies, gone = await _run_deferred(stream, conn, response, backlog)
                if gone:
                    return False
            else:
                replies = response
            for reply in replies:
                conn.send(reply)
            await _flush(stream, conn)
            if session.finished:
                return True
        # Parsing may have queued a NAK or a resend with no reply after it.
        await _flush(stream, conn)
        data = await _receive(stream)
        conn.receive_data(data)
        if not data:
            return False


def _discard(_text: str) -> None:
    pass


async def _receive(stream: trio.abc.Stream) -> bytes:
    try:
        return bytes(await stream.receive_some(_READ_SIZE))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return b""


async def _flush(stream: trio.abc.Stream, conn: RspConnection) -> None:
    data = conn.data_to_send()
    if data:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(data)


async def _run_deferred(
    stream: trio.abc.Stream,
    conn: RspConnection,
    work: Deferred,
    backlog: list[Request | Interrupt],
) -> tuple[list[Reply], bool]:
    """Run ``work`` in a thread, reading the client meanwhile.

    Returns the replies and whether the client went away during the run.
    """
    interrupted = threading.Event()
    if work.quick:
        # One instruction that cannot block (no system call): cheaper to run
        # here than to hand to a thread, and over before a Ctrl-C could matter.
        return work.run(interrupted.is_set, _discard), False
    result: list[list[Reply]] = []
    gone = False
    token = trio.lowlevel.current_trio_token()

    def report(text: str) -> None:
        # From the worker thread: an O packet gdb prints while it waits.
        def send() -> None:
            conn.send(ConsoleOutput((text + "\n").encode()))
            nursery.start_soon(_flush, stream, conn)

        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(send)

    async def worker() -> None:
        result.append(await trio.to_thread.run_sync(work.run, interrupted.is_set, report))
        nursery.cancel_scope.cancel()

    async def reader() -> None:
        nonlocal gone
        while True:
            # Bytes that came with the resume packet come first: a 0x03 right
            # behind it, and the packet's own "+", which must not wait for the stop.
            while (event := conn.next_event()) is not None:
                if isinstance(event, Interrupt):
                    interrupted.set()
                else:
                    backlog.append(event)
            await _flush(stream, conn)
            data = await _receive(stream)
            conn.receive_data(data)
            if not data:
                gone = True
                interrupted.set()  # no one to report to: stop the guest now
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker)
        nursery.start_soon(reader)
    return result[0], gone


async def serve(
    factory: SessionFactory,
    address: Address,
    *,
    once: bool = False,
    log: TextIO | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve clients one at a time until ``once`` is done or a session ends the server.

    Reports readiness with the bound port (useful with port 0), both through
    ``task_status`` and as a line on ``log``.
    """
    log = log or sys.stderr
    if address.stdio:
        task_status.started(0)
        await _serve_stdio(factory)
        return
    listeners = await trio.open_tcp_listeners(address.port, host=address.host)
    port = listeners[0].socket.getsockname()[1]
    print(f"rrdbg: waiting for gdb on {address.host}:{port}", file=log, flush=True)
    task_status.started(port)
    busy = trio.Lock()
    done = trio.Event()

    connected = [False]
    idle = [trio.Event()]
    idle[0].set()

    async def one(stream: trio.SocketStream) -> None:
        # A client that just left may still be being torn down (its stream
        # closed, the session finishing): the next one waits for that.  Only
        # a client still connected makes a newcomer a second gdb.
        if not connected[0]:
            with trio.move_on_after(_TEARDOWN_WAIT):
                await idle[0].wait()
        try:
            busy.acquire_nowait()
        except trio.WouldBlock:
            print("rrdbg: refusing a second gdb while one is connected", file=log, flush=True)
            await _refuse(stream)
            return
        idle[0] = trio.Event()
        try:
            session, finish = factory()
            connected[0] = True
            try:
                goodbye = await serve_client(stream, session)
            finally:
                connected[0] = False
                await trio.aclose_forcefully(stream)
            try:
                finish(goodbye)
            except _Stop:
                done.set()
            if once:
                done.set()
        finally:
            busy.release()
            idle[0].set()

    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_accept_loop, listener, one)
        await done.wait()
        nursery.cancel_scope.cancel()


#: How long a new client waits for the previous one's teardown.
_TEARDOWN_WAIT = 5.0
_REFUSAL = b"E.rrdbg: another gdb is connected to this server; it serves one at a time"


async def _refuse(stream: trio.SocketStream) -> None:
    """Tell a second gdb why it cannot connect, in a way gdb prints: an
    error reply (with text) to its first packet, then close."""
    conn = RspConnection(capabilities=frozenset())
    gone = (trio.BrokenResourceError, trio.ClosedResourceError)
    with trio.move_on_after(2), contextlib.suppress(*gone):
        while conn.next_event() is None:
            data = await _receive(stream)
            if not data:
                break
            conn.receive_data(data)
        await stream.send_all(b"+$" + _REFUSAL + b"#%02x" % (sum(_REFUSAL) & 0xFF))
    await trio.aclose_forcefully(stream)


async def _accept_loop(
    listener: trio.SocketListener, handler: Callable[[trio.SocketStream], Awaitable[None]]
) -> None:
    async with listener, trio.open_nursery() as nursery:
        while True:
            stream = await listener.accept()
            nursery.start_soon(handler, stream)


async def _serve_stdio(factory: SessionFactory) -> None:
    # The protocol owns the process's stdout from here on: anything else that
    # would print there (guest console, messages) goes to stderr instead.
    out_fd = os.dup(1)
    in_fd = os.dup(0)
    os.dup2(2, 1)
    stream = trio.StapledStream(trio.lowlevel.FdStream(out_fd), trio.lowlevel.FdStream(in_fd))
    session, finish = factory()
    try:
        goodbye = await serve_client(stream, session)
    finally:
        await trio.aclose_forcefully(stream)
    with contextlib.suppress(_Stop):
        finish(goodbye)


def stop_server() -> None:
    """Called by a session's ``finish`` to end the whole server."""
    raise _Stop
