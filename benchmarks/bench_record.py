"""Record and replay against plain execution, side by side in one run.

Modes, alternated round by round on the compute guest (default 1000
iterations, about 470 M instructions):

- ``run``: what ``rrdbg run`` does (exact icount, live host);
- ``record``: ``rrdbg record`` with the default snapshot interval, into a
  fresh directory each round;
- ``replay``: ``rrdbg replay --quiet`` of that recording, final state checked;
- ``plain``: the same machine without any instruction counting (the Unicorn
  ceiling, as in bench_icount.py).

Prints median seconds and the ratios (record / run time, replay / plain
speed; both the ratio of the medians and the median of each round's ratio),
then per-snapshot time and size, log bytes per million instructions, and the
peak resident memory of ``rrdbg run``, ``record`` and ``replay`` each measured
in its own process.

Usage: python benchmarks/bench_record.py [--rounds N] [--iterations ITERS] [--interval N]
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
from rrdbg.record.recording import (  # noqa: E402
    LOG_NAME,
    RecordStats,
    open_recording,
    record,
)

COMPUTE = str(ROOT / "tests" / "guests" / "bin" / "compute")
ENV = {"LANG": "C"}


def run_live(iterations: int, sink: int) -> float:
    """What ``rrdbg run`` does, set-up included (as record's time includes its own)."""
    t0 = time.perf_counter()
    host = LiveHost(environ=ENV, stdout_fd=sink, stderr_fd=sink)
    m = LinuxMachine(COMPUTE, ["compute", str(iterations)], host)
    m.run_to_end()
    return time.perf_counter() - t0


def run_plain(iterations: int, sink: int) -> float:
    host = LiveHost(environ=ENV, stdout_fd=sink, stderr_fd=sink)
    m = LinuxMachine(COMPUTE, ["compute", str(iterations)], host)
    m.engine.hook_del_raw(m.cpu.block_hook)
    m.cpu.flush_code()
    t0 = time.perf_counter()
    while m.exit is None:
        if m.engine.start(m.cpu.eip) != 0:
            raise RuntimeError("plain run failed")
    return time.perf_counter() - t0


def run_record(iterations: int, directory: Path, interval: int | None) -> tuple[float, RecordStats]:
    if directory.exists():
        shutil.rmtree(directory)
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the recorder's guest console is the process's stdout
    try:
        t0 = time.perf_counter()
        stats = record(COMPUTE, [str(iterations)], str(directory), interval=interval, environ=ENV)
        elapsed = time.perf_counter() - t0
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    return elapsed, stats


def run_replay(directory: Path, sink: int) -> float:
    """Replay execution speed: the run itself and its final check, not the set-up."""
    with open_recording(str(directory), quiet=True, stdout_fd=sink) as replay:
        t0 = time.perf_counter()
        replay.run_to_end()
        return time.perf_counter() - t0


def peak_rss_mb(args: list[str]) -> float:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rrdbg", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **ENV},
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"rrdbg {' '.join(args)} exited {proc.returncode}")
    return usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument(
        "--interval",
        type=int,
        default=None,
        help="fixed snapshot interval (default: the recorder's adaptive one)",
    )
    ns = parser.parse_args()
    sink = os.open(os.devnull, os.O_WRONLY)
    work = Path(tempfile.mkdtemp(prefix="rrdbg-bench-"))
    rec_dir = work / "compute.rr"
    times: dict[str, list[float]] = {"run": [], "record": [], "replay": [], "plain": []}
    stats: RecordStats | None = None
    try:
        run_record(ns.iterations, rec_dir, ns.interval)  # warm-up
        for _ in range(ns.rounds):
            times["run"].append(run_live(ns.iterations, sink))
            elapsed, stats = run_record(ns.iterations, rec_dir, ns.interval)
            times["record"].append(elapsed)
            times["replay"].append(run_replay(rec_dir, sink))
            times["plain"].append(run_plain(ns.iterations, sink))
        assert stats is not None
        med = {k: statistics.median(v) for k, v in times.items()}
        icount = stats.result.icount
        interval = f"{ns.interval:,}" if ns.interval else "adaptive"
        print(
            f"guest: compute {ns.iterations} = {icount:,} instructions; "
            f"snapshot interval {interval}; median of {ns.rounds} rounds"
        )
        print(f"{'mode':<8}{'seconds':>10}{'M instr/s':>12}")
        for name, t in med.items():
            print(f"{name:<8}{t:>10.3f}{icount / t / 1e6:>12.1f}")
        # Ratios of the medians, and the median of each round's own ratio: the
        # modes of one round run back to back, so the latter cancels the slow
        # swings of a shared host's speed.
        for label, num, den, goal in (
            ("record time / run time:    ", "record", "run", "(goal <= 1.10)"),
            ("replay speed / plain speed:", "plain", "replay", "(goal >= 0.90)"),
            ("replay speed / run speed:  ", "run", "replay", ""),
        ):
            paired = statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))
            print(
                f"{label} {med[num] / med[den]:.3f}  per-round median {paired:.3f}  {goal}".rstrip()
            )
        n = len(stats.snapshots)
        print(
            f"snapshots: {n}, {stats.snapshot_seconds / n * 1e3:.2f} ms each (last recording), "
            f"image {stats.image_bytes / 1e6:.2f} MB = {stats.image_bytes / n / 1e3:.0f} kB "
            "per snapshot"
        )
        log_bytes = (rec_dir / LOG_NAME).stat().st_size
        print(
            f"log: {log_bytes} bytes = {log_bytes / (icount / 1e6):.2f} bytes per million "
            "instructions"
        )
        rss_run = peak_rss_mb(["run", COMPUTE, str(ns.iterations)])
        shutil.rmtree(rec_dir)
        interval_args = ["--snapshot-interval", str(ns.interval)] if ns.interval else []
        rss_rec = peak_rss_mb(
            ["record", "-o", str(rec_dir), *interval_args, COMPUTE, str(ns.iterations)]
        )
        rss_rep = peak_rss_mb(["replay", "--quiet", str(rec_dir)])
        print(f"peak RSS: run {rss_run:.0f} MB, record {rss_rec:.0f} MB, replay {rss_rep:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
