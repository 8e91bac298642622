"""The bare-metal PC machine: run, record and replay side by side, then gdb.

Uses the k_busy test kernel (a 4 M-iteration sum interrupted by a 10 kHz
timer: about 25 M instructions and 250 interrupts; ``--loop`` changes the
sum's length):

- ``PcMachine.run_to_end`` (what ``rrdbg run --machine pc`` does), a
  recording (``record_pc``, snapshots at the default interval) and its
  replay (``replay_pc``), interleaved over ``--rounds`` rounds: medians,
  instructions per second, and the ratios record / run and replay / run;
- with real gdb on the recording: ``reverse-stepi`` latency near the end,
  and ``reverse-continue`` from the end to the start with a breakpoint never
  hit against ``continue`` over the whole history (goal: <= 1.5, as for
  Linux programs).

Usage: python benchmarks/bench_pc.py [--rounds N] [--loop N] [--steps N]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.gdbserve import GDB_PRELUDE, run_gdb_script, serve_recording  # noqa: E402
from rrdbg.machine.host import SeededHost  # noqa: E402
from rrdbg.machine.pc import PcMachine  # noqa: E402
from rrdbg.record.recording import PcOptions, record_pc, replay_pc  # noqa: E402

K_BUSY = str(ROOT / "tests" / "guests" / "bin" / "k_busy")

SCRIPT = (
    GDB_PRELUDE
    + r"""
run("break *0")
fwd = timed("continue")
back = timed("reverse-continue")
print("SCAN", back, fwd)
run("continue")
back = sorted(timed("reverse-stepi") for _ in range(%(steps)d))
fwd = sorted(timed("stepi") for _ in range(%(steps)d))
print("RSTEP", back[len(back) // 2], fwd[len(fwd) // 2])
run("detach")
"""
)


def _quiet_stdout() -> int:
    saved = os.dup(1)
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.close(fd)
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loop", type=int, default=1 << 22)
    parser.add_argument("--steps", type=int, default=30)
    ns = parser.parse_args()
    options = PcOptions(32, f"loop={ns.loop}")
    work = Path(tempfile.mkdtemp(prefix="rrdbg-bench-pc-"))
    times: dict[str, list[float]] = {"run": [], "record": [], "replay": []}
    icount = 0
    saved = _quiet_stdout()
    try:
        for i in range(ns.rounds):
            t0 = time.perf_counter()
            machine = PcMachine(K_BUSY, SeededHost(1), cmdline=options.cmdline)
            result = machine.run_to_end()
            times["run"].append(time.perf_counter() - t0)
            icount = result.icount
            rec = work / f"busy{i}.rr"
            t0 = time.perf_counter()
            record_pc(K_BUSY, str(rec), options)
            times["record"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            replay_pc(str(rec), quiet=True)
            times["replay"].append(time.perf_counter() - t0)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"k_busy loop={ns.loop}: {icount:,} instructions, {ns.rounds} rounds (medians)")
    for name, value in median.items():
        print(f"  {name:<7} {value * 1e3:8.1f} ms  {icount / value / 1e6:7.1f} M instr/s")
    print(
        f"  record / run {median['record'] / median['run']:.2f}, "
        f"replay / run {median['replay'] / median['run']:.2f}"
    )

    gdb = shutil.which("gdb")
    if gdb is None:
        print("gdb is not installed: no gdb figures", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
        return 0
    try:
        server, port = serve_recording(work / "busy0.rr")
        script = work / "bench.py"
        out = run_gdb_script(gdb, script, SCRIPT % {"port": port, "steps": ns.steps}, K_BUSY)
        server.wait(timeout=60)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    scan = re.search(r"^SCAN ([\d.e-]+) ([\d.e-]+)$", out, re.MULTILINE)
    rstep = re.search(r"^RSTEP ([\d.e-]+) ([\d.e-]+)$", out, re.MULTILINE)
    if not scan or not rstep:
        print(out, file=sys.stderr)
        return 1
    back, fwd = float(scan.group(1)), float(scan.group(2))
    print(
        f"gdb: reverse-continue end -> start, no hit: {back:.3f} s; continue start -> end: "
        f"{fwd:.3f} s; ratio {back / fwd:.2f} (goal <= 1.5)"
    )
    print(
        f"gdb: reverse-stepi near the end: median {float(rstep.group(1)) * 1e3:.2f} ms "
        f"(stepi {float(rstep.group(2)) * 1e3:.2f} ms; goal <= 5 ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
