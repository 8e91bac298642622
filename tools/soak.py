"""Random forward, backward and seek operations on one timeline, watching memory.

    python tools/soak.py [RECORDING] [--operations N] [--seed S]

Drives the same Timeline a replay server drives (breakpoints and a
watchpoint toggled at random, continue and reverse-continue, stepi both
ways, seeks) and prints the process's resident memory every 500 operations
next to the documented bound (docs/reverse-execution.md, "Memory"): the
checkpoint budget, the translated-code buffer, the guest's memory and the
history.  Without RECORDING it records tests/guests/bin/debugme first.
tests/timeline/test_soak.py runs a short version.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording", nargs="?")
    parser.add_argument("--operations", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
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
