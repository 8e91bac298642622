"""A dynamically linked program against its static twin, side by side.

Both are built here from tests/guests/compute.c with the host's gcc -m32
(static: ``-static``; dynamic: what ``gcc -m32 -O1`` gives by default, PIE,
libc from /lib32).  Modes, alternated round by round:

- start-up: ``compute 0`` (no work: the loader, the libraries' relocations
  and libc's start-up) in ``rrdbg run``, in process, machine set-up included;
- forward: ``compute ITERS`` in ``rrdbg run``;
- record: ``rrdbg record`` of ``compute ITERS`` (the dynamic one keeps the
  loader and libc in ``files/``);
- native: each binary run natively (a subprocess, for reference).

Prints median seconds, guest instructions, and the dynamic / static ratios.

Usage: python benchmarks/bench_dynamic.py [--rounds N] [--iterations ITERS]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrdbg.machine.host import LiveHost  # noqa: E402
from rrdbg.machine.machine import LinuxMachine  # noqa: E402
from rrdbg.record.recording import record  # noqa: E402

SOURCE = ROOT / "tests" / "guests" / "compute.c"
ENV = {"LANG": "C"}


def build(out: Path) -> dict[str, str]:
    binaries = {"static": str(out / "compute-static"), "dynamic": str(out / "compute-dynamic")}
    base = ["gcc", "-m32", "-O1", "-g", str(SOURCE), "-lm"]
    subprocess.run([*base, "-static", "-o", binaries["static"]], check=True)
    subprocess.run([*base, "-o", binaries["dynamic"]], check=True)
    return binaries


def run_live(program: str, iterations: int, sink: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    host = LiveHost(environ=ENV, stdout_fd=sink, stderr_fd=sink)
    m = LinuxMachine(program, ["compute", str(iterations)], host)
    result = m.run_to_end()
    host.shutdown()
    return time.perf_counter() - t0, result.icount


def run_record(program: str, iterations: int, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    saved = os.dup(1)
    sink = os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 1)
    try:
        t0 = time.perf_counter()
        record(program, [str(iterations)], str(out), environ=ENV)
        return time.perf_counter() - t0
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(sink)


def run_native(program: str, iterations: int) -> float:
    t0 = time.perf_counter()
    subprocess.run([program, str(iterations)], check=True, capture_output=True, env=ENV)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=200)
    ns = parser.parse_args()
    sink = os.open(os.devnull, os.O_WRONLY)
    with tempfile.TemporaryDirectory() as tmp:
        binaries = build(Path(tmp))
        times: dict[tuple[str, str], list[float]] = {}
        counts: dict[tuple[str, str], int] = {}
        for _ in range(ns.rounds):
            for kind, program in binaries.items():
                for mode, iters in (("start-up", 0), ("forward", ns.iterations)):
                    seconds, icount = run_live(program, iters, sink)
                    times.setdefault((kind, mode), []).append(seconds)
                    counts[(kind, mode)] = icount
                rec = run_record(program, ns.iterations, Path(tmp) / f"{kind}.rr")
                times.setdefault((kind, "record"), []).append(rec)
                times.setdefault((kind, "native"), []).append(run_native(program, ns.iterations))
    print(f"compute, {ns.rounds} rounds, {ns.iterations} iterations; medians")
    print(f"{'mode':10} {'static s':>10} {'dynamic s':>10} {'dyn/static':>10}  instructions")
    for mode in ("start-up", "forward", "record", "native"):
        s = statistics.median(times[("static", mode)])
        d = statistics.median(times[("dynamic", mode)])
        extra = ""
        if (("static", mode)) in counts:
            extra = f"  {counts[('static', mode)]:,} / {counts[('dynamic', mode)]:,}"
        print(f"{mode:10} {s:10.4f} {d:10.4f} {d / s:10.2f}{extra}")
    fs, fd_ = (statistics.median(times[(k, "forward")]) for k in ("static", "dynamic"))
    ss, sd = (statistics.median(times[(k, "start-up")]) for k in ("static", "dynamic"))
    per_s = (counts[("static", "forward")] - counts[("static", "start-up")]) / max(fs - ss, 1e-9)
    per_d = (counts[("dynamic", "forward")] - counts[("dynamic", "start-up")]) / max(fd_ - sd, 1e-9)
    print(
        f"forward speed after start-up: static {per_s / 1e6:.0f} M instr/s, "
        f"dynamic {per_d / 1e6:.0f} M instr/s ({per_d / per_s:.2f}x)"
    )


if __name__ == "__main__":
    main()
