"""Real gdb 13 against a toy stub built on RspConnection.

The stub fakes a CPU whose every instruction is one byte long, with a history
that starts at 0x1000.  It is just enough to check, with the real client, the
things unit tests can only assert by string: the qSupported text, the no-ack
switch, target.xml, the g layout, run-length-encoded replies, stop replies
(replaylog, swbreak) and monitor output.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import assert_never

import pytest

from rrdbg.rsp import (
    ALL,
    Capability,
    ConsoleOutput,
    Detach,
    Direction,
    Empty,
    ErrorReply,
    FileClose,
    FileFstat,
    FileOpen,
    FileOperation,
    FilePread,
    FileSetFs,
    HexData,
    InsertPoint,
    Interrupt,
    Kill,
    MalformedPacket,
    MonitorCommand,
    MustReplyEmpty,
    Ok,
    PassSignals,
    PointKind,
    QueryAttached,
    QueryCurrentThread,
    QueryHaltReason,
    QueryHostInfo,
    QueryOffsets,
    QueryProcessInfo,
    QuerySupported,
    QuerySymbol,
    QueryThreadInfo,
    QueryTraceStatus,
    RawReply,
    ReadMemory,
    ReadRegister,
    ReadRegisters,
    ReadXfer,
    RemovePoint,
    ReplayLog,
    Reply,
    Request,
    Resume,
    ResumeAction,
    RspConnection,
    SetThread,
    StartNoAckMode,
    StopReply,
    SwBreak,
    ThreadAlive,
    UnknownPacket,
    VCont,
    VContQuery,
    VKill,
    WriteMemory,
    WriteRegister,
    WriteRegisters,
    XferChunk,
)
from rrdbg.target.i386 import REGISTERS, TARGET_XML, encode_registers

GDB = shutil.which("gdb")
pytestmark = pytest.mark.skipif(GDB is None, reason="gdb is not installed")

START = 0x1000
MEMORY_SIZE = 0x1000


class ToyTarget:
    def __init__(self) -> None:
        self.registers = {spec.name: bytes(spec.size) for spec in REGISTERS}
        self.memory = bytearray(b"\x90" * 0x100 + bytes(MEMORY_SIZE - 0x100))
        self.breakpoints: set[int] = set()
        self.eip = START
        self.packets: list[Request | Interrupt] = []

    @property
    def eip(self) -> int:
        return int.from_bytes(self.registers["eip"], "little")

    @eip.setter
    def eip(self, value: int) -> None:
        self.registers["eip"] = value.to_bytes(4, "little")

    def resume(self, action: ResumeAction, direction: Direction) -> StopReply:
        step = 1 if direction is Direction.FORWARD else -1
        if action is ResumeAction.STEP:
            if self.eip + step < START:
                return StopReply(5, reason=ReplayLog(begin=True))
            self.eip += step
            return StopReply(5)
        while START <= self.eip + step < START + 0x100:
            self.eip += step
            if self.eip in self.breakpoints:
                return StopReply(5, reason=SwBreak())
        return StopReply(5, reason=ReplayLog(begin=direction is Direction.BACKWARD))

    def answer(self, conn: RspConnection, request: Request | Interrupt) -> list[Reply] | None:
        self.packets.append(request)
        match request:
            case QuerySupported():
                return [RawReply(conn.supported_features())]
            case StartNoAckMode() | SetThread() | ThreadAlive() | QuerySymbol() | Detach():
                return [Ok()]
            case ReadXfer(object="features", annex="target.xml", offset=offset, length=length):
                chunk = TARGET_XML[offset : offset + length]
                return [XferChunk(chunk, last=offset + length >= len(TARGET_XML))]
            case ReadXfer(object="threads", annex="", offset=offset, length=length):
                doc = b'<?xml version="1.0"?><threads><thread id="1"/></threads>'
                chunk = doc[offset : offset + length]
                return [XferChunk(chunk, last=offset + length >= len(doc))]
            case QueryHaltReason():
                return [StopReply(5)]
            case QueryThreadInfo(first):
                return [RawReply(b"m1" if first else b"l")]
            case QueryAttached():
                return [RawReply(b"1")]
            case QueryCurrentThread():
                return [RawReply(b"QC1")]
            case ReadRegisters():
                return [HexData(encode_registers(self.registers))]
            case ReadRegister(number):
                return [HexData(self.registers[REGISTERS[number].name])]
            case ReadMemory(address, length):
                offset = address - START
                if offset < 0 or offset + length > MEMORY_SIZE:
                    return [ErrorReply(14)]
                return [HexData(bytes(self.memory[offset : offset + length]))]
            case WriteMemory(address, data):
                self.memory[address - START : address - START + len(data)] = data
                return [Ok()]
            case VContQuery():
                return [RawReply(b"vCont;c;C;s;S")]
            case VCont(actions):
                return [self.resume(actions[0].kind, Direction.FORWARD)]
            case Resume(action, direction):
                return [self.resume(action, direction)]
            case InsertPoint(PointKind.SOFTWARE, address):
                self.breakpoints.add(address)
                return [Ok()]
            case RemovePoint(PointKind.SOFTWARE, address):
                self.breakpoints.discard(address)
                return [Ok()]
            case MonitorCommand(command):
                return [ConsoleOutput(b"toy says: " + command + b"\n"), Ok()]
            case Kill() | VKill():
                return None
            case MalformedPacket():
                return [ErrorReply(1)]
            case (
                MustReplyEmpty()
                | ReadXfer()
                | QueryTraceStatus()
                | QueryOffsets()
                | QueryHostInfo()
                | QueryProcessInfo()
                | FileOperation()
                | FileSetFs()
                | FileOpen()
                | FileClose()
                | FilePread()
                | FileFstat()
                | UnknownPacket()
                | InsertPoint()
                | RemovePoint()
                | WriteRegisters()
                | WriteRegister()
                | Interrupt()
            ):
                return [Empty()]
            case PassSignals():
                return [Ok()]  # offered (QPassSignals+), so answered
            case _:
                assert_never(request)


def serve(listener: socket.socket, target: ToyTarget) -> None:
    client, _ = listener.accept()
    # The toy has no auxv and no program file.
    conn = RspConnection(capabilities=ALL - {Capability.AUXV, Capability.EXEC_FILE})
    with client:
        while True:
            data = client.recv(65536)
            conn.receive_data(data)
            while (request := conn.next_event()) is not None:
                replies = target.answer(conn, request)
                if replies is None:
                    client.sendall(conn.data_to_send())
                    return
                for reply in replies:
                    conn.send(reply)
            client.sendall(conn.data_to_send())
            if conn.closed:
                return


@pytest.fixture
def toy() -> Iterator[tuple[ToyTarget, int]]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    target = ToyTarget()
    thread = threading.Thread(target=serve, args=(listener, target), daemon=True)
    thread.start()
    try:
        yield target, listener.getsockname()[1]
    finally:
        thread.join(timeout=30)
        listener.close()


def run_gdb(port: int, *commands: str) -> str:
    assert GDB is not None
    args = [GDB, "-batch", "-nx", "-ex", "set confirm off"]
    args += ["-ex", f"target remote 127.0.0.1:{port}"]
    for command in commands:
        args += ["-ex", command]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout + proc.stderr


def test_gdb_session(toy: tuple[ToyTarget, int]) -> None:
    target, port = toy
    out = run_gdb(
        port,
        "info registers eip",
        "x/4xw 0x1800",  # zeros: the reply is run-length encoded
        "x/2xb 0x1000",
        "stepi",
        "stepi",
        "info registers eip",
        "reverse-stepi",
        "info registers eip",
        "break *0x1010",
        "continue",
        "info registers eip",
        "reverse-continue",
        "info registers eip",
        "reverse-stepi",
        "monitor hello",
        "p $xmm0.uint128",
        "kill",
    )
    lines = out.splitlines()
    # gdb always warns that it has no executable; anything else (a rejected
    # target.xml, a failure reply) is a failure.
    warnings = [line for line in lines if "warning" in line.lower()]
    assert all("No executable has been specified" in w for w in warnings), out
    assert "Remote failure" not in out and "not supported" not in out, out
    eips = [line.split()[1] for line in lines if line.startswith("eip ")]
    assert eips == ["0x1000", "0x1002", "0x1001", "0x1010", "0x1000"], out
    assert "0x1800:\t0x00000000\t0x00000000\t0x00000000\t0x00000000" in out
    assert "0x1000:\t0x90\t0x90" in out
    assert "Breakpoint 1, 0x00001010 in ?? ()" in out
    # bc to the start of history, then bs at the start: both are replaylog:begin.
    assert out.count("No more reverse-execution history.") == 2, out
    assert "toy says: hello" in out
    assert "$1 = 0" in out
    assert StartNoAckMode() in target.packets
    assert any(isinstance(p, Resume) and p.direction is Direction.BACKWARD for p in target.packets)
