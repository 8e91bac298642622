"""Random forward, backward and seek operations on one timeline, watching memory.

    python tools/soak.py [RECORDING] [--operations N] [--seed S]

Drives the same Timeline a replay server drives (breakpoints and a
watchpoint toggled at random, continue and reverse-continue, stepi both
ways, seeks) and prints the process's resident memory every 500 operations
next to the documented bound (docs/reverse-execution.md, "Memory"): the
checkpoint budget, the translated-code buffer, the guest's memory and the
history.  Without RECORDING it records tests/guests/bin/debugme first.
tests/timeline/test_soak.py runs a short version.

With ``--server`` the operations go over the GDB protocol to a real
``rrdbg replay --gdb`` process (continue, reverse-continue, steps both ways,
breakpoints, a watchpoint, ``monitor replay_seek``), and it is that
process's resident memory that is watched.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrdbg.machine.engine import TCG_BUFFER_BYTES  # noqa: E402
from rrdbg.target.interface import Direction, WatchKind  # noqa: E402
from rrdbg.timeline.timeline import Timeline  # noqa: E402

#: What a Python process with rrdbg and Unicorn loaded takes before any guest.
BASELINE_BYTES = 80 << 20


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bound_bytes(t: Timeline) -> int:
    """The documented bound for this timeline's process."""
    guest = sum(r.end - r.start for r in t.machine.memory.regions())
    return BASELINE_BYTES + TCG_BUFFER_BYTES + t.budget + guest + t.history.memory_bytes()


def soak(t: Timeline, operations: int, rng: random.Random, report: Callable[[int], None]) -> int:
    """Run ``operations`` random operations; the peak resident memory seen."""
    never: Callable[[], bool] = lambda: False  # noqa: E731
    symbols = t.symbols
    candidates = [a for a in (symbols.address(n) for n in ("bump", "square", "main")) if a]
    watched = symbols.address("counter")
    end = t.history_end or 1
    peak = 0
    for i in range(1, operations + 1):
        op = rng.randrange(7)
        if op == 0 and candidates:
            address = rng.choice(candidates)
            if address in t.breakpoints:
                t.remove_breakpoint(address, hardware=False)
            else:
                t.insert_breakpoint(address, hardware=False)
        elif op == 1 and watched:
            if t.watchpoints:
                t.remove_watchpoint(WatchKind.WRITE, watched, 4)
            else:
                t.insert_watchpoint(WatchKind.WRITE, watched, 4)
        elif op in (2, 3):
            direction = Direction.FORWARD if op == 2 else Direction.BACKWARD
            t.resume(step=False, direction=direction, interrupted=never)
        elif op in (4, 5):
            direction = Direction.FORWARD if op == 4 else Direction.BACKWARD
            t.resume(step=True, direction=direction, interrupted=never)
        else:
            t.seek(rng.randrange(end + 1))
        if i % 50 == 0:
            peak = max(peak, rss_bytes())
        if i % 500 == 0:
            report(i)
    return max(peak, rss_bytes())


class RspClient:
    """gdb's end of the wire, just enough of it: no-ack mode, then packets."""

    def __init__(self, port: int) -> None:
        import socket

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buf = b""
        self.request(b"QStartNoAckMode")
        self.sock.sendall(b"+")

    def request(self, payload: bytes) -> bytes:
        checksum = sum(payload) & 0xFF
        self.sock.sendall(b"$%s#%02x" % (payload, checksum))
        while True:
            reply = self._packet()
            if not reply.startswith(b"O") or reply == b"OK":
                return reply  # console output (O...) comes before the answer

    def _packet(self) -> bytes:
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start + 1)
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                payload = self.buf[start + 1 : end]
                self.buf = self.buf[end + 3 :]
                return payload
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.buf += data


def soak_server(recording: str, operations: int, rng: random.Random) -> int:
    """``operations`` random requests to a replay server; its peak resident memory."""
    import subprocess
    import threading

    from rrdbg.machine.loader import Symbols, read_program
    from rrdbg.record.recording import describe, program_file

    desc = describe(recording)
    end = desc.end.icount if desc.end is not None else desc.last_icount
    symbols = Symbols.read(read_program(program_file(Path(recording), desc.header)))
    points = [a for a in (symbols.address(n) for n in ("bump", "square", "main")) if a]
    counter = symbols.address("counter")
    server = subprocess.Popen(
        [sys.executable, "-m", "rrdbg", "replay", "--quiet", "--gdb", "127.0.0.1:0", recording],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    line = server.stderr.readline()
    port = int(line.rsplit(":", 1)[1])
    # Keep reading what the server says, so that it never blocks on stderr.
    threading.Thread(target=server.stderr.read, daemon=True).start()
    client = RspClient(port)
    statm = Path(f"/proc/{server.pid}/statm")
    page = os.sysconf("SC_PAGE_SIZE")
    peak = 0
    inserted: set[bytes] = set()
    try:
        for i in range(1, operations + 1):
            op = rng.randrange(7)
            if op == 0 and points:
                point = b"0,%x,1" % rng.choice(points)
                kind = b"z" if point in inserted else b"Z"
                inserted ^= {point}
                client.request(kind + point)
            elif op == 1 and counter:
                point = b"2,%x,4" % counter
                kind = b"z" if point in inserted else b"Z"
                inserted ^= {point}
                client.request(kind + point)
            elif op == 2:
                client.request(b"vCont;c")
            elif op == 3:
                client.request(b"bc")
            elif op == 4:
                client.request(rng.choice([b"vCont;s", b"bs"]))
            else:
                command = b"replay_seek %d" % rng.randrange(end)
                client.request(b"qRcmd," + command.hex().encode())
            if i % 50 == 0:
                peak = max(peak, int(statm.read_text().split()[1]) * page)
            if i % 500 == 0:
                print(f"{i:6} operations: server resident {peak / 2**20:7.1f} MiB", flush=True)
        client.request(b"D")
    finally:
        server.kill()
        server.wait()
    return peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording", nargs="?")
    parser.add_argument("--operations", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server", action="store_true", help="through a replay server")
    ns = parser.parse_args()
    sink = os.open(os.devnull, os.O_WRONLY)
    with tempfile.TemporaryDirectory() as tmp:
        recording = ns.recording
        if recording is None:
            from rrdbg.record.recording import record

            recording = str(Path(tmp) / "debugme.rr")
            saved = os.dup(1)
            os.dup2(sink, 1)
            try:
                record(str(ROOT / "tests" / "guests" / "bin" / "debugme"), [], recording)
            finally:
                os.dup2(saved, 1)
        t = Timeline.replay(recording, stdout_fd=sink, stderr_fd=sink)
        if ns.server:
            peak = soak_server(recording, ns.operations, random.Random(ns.seed))
            ok = peak <= bound_bytes(t)
            print(f"server peak {peak / 2**20:.1f} MiB, bound {bound_bytes(t) / 2**20:.1f} MiB")
            return 0 if ok else 1

        def report(i: int) -> None:
            print(
                f"{i:6} operations: resident {rss_bytes() / 2**20:7.1f} MiB, "
                f"bound {bound_bytes(t) / 2**20:7.1f} MiB, "
                f"checkpoints {t.checkpoint_bytes() / 2**20:5.1f} MiB",
                flush=True,
            )

        peak = soak(t, ns.operations, random.Random(ns.seed), report)
        ok = peak <= bound_bytes(t)
        print(f"peak {peak / 2**20:.1f} MiB: {'within' if ok else 'OVER'} the bound")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
