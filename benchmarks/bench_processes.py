"""Processes under the deterministic scheduler: what a process switch and a
fork cost, beside a thread switch measured the same way.

Workloads (tests/guests/procs.c, static), in process,
alternated round by round:

- ``pingpong N``: one byte back and forth N times between two processes
  through two pipes: every round trip blocks each side once, so two
  process switches; ``pingpong 0`` is the same program without the trips;
- ``tpingpong N``: the same hand-over between two threads of one process
  (a thread switch measured like a process switch);
- ``forkbig MB F``: a process that has touched MB MiB forks F children that
  exit at once (each waited for); ``forkbig MB 0`` is the baseline, ``forkbig
  MB 1`` gives the first fork (its pages go into a file both sides share),
  ``forkbig MB 10`` the later ones (which share that file again);
- ``forkhold MB F``: the same, but the F children live together; each reads
  every page and writes one in 16.  Host memory (proportional set size,
  sampled every 100,000 instructions) is measured beside ``forkhold MB 0``.

Printed: median seconds, guest instructions and switches per case; the cost
of one process switch (the pingpong difference divided by the switches it
adds, all costs of the blocking read and write included); the same for a
thread switch; the cost of a fork (with the child's exit and the wait) of
a process with MB MiB mapped, the first and the later ones; the host
memory each live child adds (pages are shared copy-on-write after fork: a
child should cost about the pages it writes, MB/16, not MB).

Usage: python benchmarks/bench_processes.py [--rounds N] [--trips N] [--megabytes N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrdbg.machine.host import LiveHost  # noqa: E402
from rrdbg.machine.machine import LinuxMachine  # noqa: E402

PROCS = str(ROOT / "tests" / "guests" / "bin" / "procs")
FORKS = 10
FORKS_HELD = 4


def run(program: str, args: list[str], sink: int) -> tuple[float, int, int]:
    host = LiveHost(environ={}, stdout_fd=sink, stderr_fd=sink)
    t0 = time.perf_counter()
    m = LinuxMachine(program, [program, *args], host)
    result = m.run_to_end()
    seconds = time.perf_counter() - t0
    host.shutdown()
    assert result.exit.code == 0, result
    return seconds, result.icount, m.switches


def _pss() -> int:
    """This process's proportional set size in bytes (a page mapped by two
    guest processes counts once)."""
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no Pss in /proc/self/smaps_rollup")


def peak_memory(program: str, args: list[str], sink: int) -> int:
    """Highest host memory above the start while the machine runs."""
    host = LiveHost(environ={}, stdout_fd=sink, stderr_fd=sink)
    m = LinuxMachine(program, [program, *args], host)
    base = peak = _pss()
    while not m.finished:
        m.run(m.icount + 100_000)
        peak = max(peak, _pss())
    host.shutdown()
    assert m.exit is not None, "the machine did not end"
    assert m.exit.code == 0, m.exit
    return peak - base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--trips", type=int, default=2000)
    parser.add_argument("--megabytes", type=int, default=100)
    ns = parser.parse_args()
    mb = str(ns.megabytes)
    cases: dict[str, tuple[str, list[str]]] = {
        "pingpong 0": (PROCS, ["pingpong", "0"]),
        f"pingpong {ns.trips}": (PROCS, ["pingpong", str(ns.trips)]),
        "tpingpong 0": (PROCS, ["tpingpong", "0"]),
        f"tpingpong {ns.trips}": (PROCS, ["tpingpong", str(ns.trips)]),
        f"forkbig {mb} 0": (PROCS, ["forkbig", mb, "0"]),
        f"forkbig {mb} 1": (PROCS, ["forkbig", mb, "1"]),
        f"forkbig {mb} {FORKS}": (PROCS, ["forkbig", mb, str(FORKS)]),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    counts: dict[str, tuple[int, int]] = {}
    sink = os.open(os.devnull, os.O_WRONLY)
    for _ in range(ns.rounds):
        for name, (program, args) in cases.items():
            seconds, icount, switches = run(program, args, sink)
            times[name].append(seconds)
            counts[name] = (icount, switches)
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"processes benchmark: {ns.rounds} rounds, medians")
    print(f"{'case':<22}{'seconds':>10}{'instructions':>16}{'switches':>10}")
    for name in cases:
        icount, switches = counts[name]
        print(f"{name:<22}{med[name]:>10.3f}{icount:>16}{switches:>10}")
    print()

    def per_switch(big: str, small: str) -> float:
        extra = counts[big][1] - counts[small][1]
        return (med[big] - med[small]) / max(extra, 1)

    process = per_switch(f"pingpong {ns.trips}", "pingpong 0")
    thread = per_switch(f"tpingpong {ns.trips}", "tpingpong 0")
    print(f"one process switch at a blocking pipe read: {process * 1e6:.0f} us")
    print(f"one thread switch at a blocking pipe read:  {thread * 1e6:.0f} us")
    print(f"  process / thread: {process / thread:.2f}x")
    first = med[f"forkbig {mb} 1"] - med[f"forkbig {mb} 0"]
    later = (med[f"forkbig {mb} {FORKS}"] - med[f"forkbig {mb} 1"]) / (FORKS - 1)
    print(f"a fork of a process with {mb} MiB touched (+ the child's exit, the wait):")
    print(f"  the first: {first * 1e3:.1f} ms")
    print(f"  each later one (nothing written in between): {later * 1e3:.1f} ms")
    held: dict[int, list[int]] = {0: [], FORKS_HELD: []}
    for _ in range(ns.rounds):
        for forks, peaks in held.items():
            peaks.append(peak_memory(PROCS, ["forkhold", mb, str(forks)], sink))
    alone, together = (statistics.median(held[f]) for f in (0, FORKS_HELD))
    child = (together - alone) / FORKS_HELD
    print(
        f"host memory: {mb} MiB process alone {alone / 2**20:.0f} MiB, with {FORKS_HELD} live "
        f"children {together / 2**20:.0f} MiB: {child / 2**20:.1f} MiB a child "
        f"({child / (int(mb) << 20):.2f} of the parent's {mb} MiB)"
    )


if __name__ == "__main__":
    main()
