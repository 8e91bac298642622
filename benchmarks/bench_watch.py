"""Watchpoints far back on a hot page, with real gdb, against plain replay.

Records the hotwatch guest (``g_pair.inner`` written once at the start,
``g_pair.counter`` four bytes below it written every 6 instructions), serves
it with ``rrdbg replay --gdb`` and times, in one gdb session:

- ``continue`` from the start to the end of history with a breakpoint that
  is never hit: the plain replay of the whole history (the reference);
- ``reverse-continue`` from the end back to the start, no hit: the scan
  reverse execution does (issue 18's goal 4 compares it with the above);
- ``watch g_pair.inner`` and ``reverse-continue`` from the end: it must stop
  at the one write, near the start, after scanning the whole history
  (goal: <= 1.5x the plain replay);
- ``continue`` from there to the end with the watchpoint armed: the forward
  watchpoint over the same history (goal likewise);
- the same two for glibc's ``__libc_argc``, written once at the start on a
  page the loop never touches.

Each figure is the median of --repeat runs in the same session.

Usage: python benchmarks/bench_watch.py [--iterations N] [--repeat N]
(the default 20,000,000 iterations make about 120 M instructions; issue 18
measured 200,000,000, about 1.2 G).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.gdbserve import (  # noqa: E402
    GDB_PRELUDE,
    find_gdb,
    run_gdb_script,
    serve_recording,
    timed_rrdbg,
)

HOTWATCH = str(ROOT / "tests" / "guests" / "bin" / "hotwatch")

SCRIPT = (
    GDB_PRELUDE
    + r"""
run("break abort")
for _ in range(%(repeat)d):
    fwd = timed("continue")
    back = timed("reverse-continue")
    print("PLAIN", fwd, back)
run("continue")
for label, expr in (("HOT", "g_pair.inner"), ("QUIET", "*(int *)&__libc_argc")):
    run("delete")
    run("watch " + expr)
    for _ in range(%(repeat)d):
        back = timed("reverse-continue")
        where = run("x/i $pc")
        run("continue")  # forward over the write found: the watchpoint reports it
        fwd = timed("continue")
        print(label, back, fwd, where.split(":")[0].strip().replace(" ", "_"))
run("detach")
"""
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    ns = parser.parse_args()
    gdb = find_gdb()
    if gdb is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="rrdbg-bench-watch-"))
    try:
        rec = work / "hotwatch.rr"
        record_s = timed_rrdbg("record", "-o", str(rec), HOTWATCH, str(ns.iterations))
        replay_s = timed_rrdbg("replay", str(rec))
        server, port = serve_recording(rec)
        text = SCRIPT % {"port": port, "repeat": ns.repeat}
        out = run_gdb_script(gdb, work / "bench.py", text, HOTWATCH)
        server.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    plain = re.findall(r"^PLAIN ([\d.e-]+) ([\d.e-]+)$", out, re.MULTILINE)
    watches = {
        label: re.findall(rf"^{label} ([\d.e-]+) ([\d.e-]+) (\S+)$", out, re.MULTILINE)
        for label in ("HOT", "QUIET")
    }
    if len(plain) != ns.repeat or any(len(w) != ns.repeat for w in watches.values()):
        print(out, file=sys.stderr)
        return 1
    fwd = statistics.median(float(f) for f, _ in plain)
    back = statistics.median(float(b) for _, b in plain)
    instructions = 6 * ns.iterations
    print(
        f"recording: hotwatch {ns.iterations:,} iterations, about {instructions / 1e6:,.0f} M "
        f"instructions (recorded in {record_s:.1f} s; `rrdbg replay` {replay_s:.1f} s)"
    )
    print(
        f"continue start -> end (plain replay): {fwd:.3f} s "
        f"({instructions / fwd / 1e6:.0f} M instructions/s)"
    )
    print(f"reverse-continue end -> start, no hit: {back:.3f} s; ratio {back / fwd:.2f}")
    for label, what in (
        ("HOT", "g_pair.inner (a hot page)"),
        ("QUIET", "__libc_argc (a quiet page)"),
    ):
        watch = watches[label]
        wback = statistics.median(float(b) for b, _, _ in watch)
        wfwd = statistics.median(float(f) for _, f, _ in watch)
        stops = ", ".join(sorted({w for _, _, w in watch}))
        print(
            f"watch {what}, reverse-continue from the end: {wback:.3f} s; "
            f"ratio {wback / fwd:.2f} (goal <= 1.5); stopped at {stops}"
        )
        print(
            f"watch {what}, continue to the end: {wfwd:.3f} s; ratio {wfwd / fwd:.2f} (goal <= 1.5)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
