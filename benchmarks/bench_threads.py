"""Threads under the deterministic scheduler: what a switch costs, and the
forward speed of two threads against the same work in one.

Workloads (tests/guests/threads.c, static), in process, alternated round
by round:

- ``race N``: two threads, each N unlocked increments (no syscalls while
  they run: every switch is the quantum's), with the quantum at several
  values;
- ``serial N``: the same increments in one thread (no switches);
- ``cond``: a bounded buffer with condition variables (a futex wait or wake
  every few hundred instructions: switches at blocking calls).

Printed: median seconds, guest instructions, switches; the two-thread /
one-thread ratio per quantum; the cost of one switch, from the difference
between a small quantum and the largest one divided by the difference in
switches; and for ``cond`` the time per blocking switch.

Usage: python benchmarks/bench_threads.py [--rounds N] [--iterations N]
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

PROGRAM = str(ROOT / "tests" / "guests" / "bin" / "threads")
QUANTA = (10_000, 100_000, 1_000_000, 10_000_000)


def run(args: list[str], quantum: int, sink: int) -> tuple[float, int, int]:
    host = LiveHost(environ={}, stdout_fd=sink, stderr_fd=sink)
    t0 = time.perf_counter()
    m = LinuxMachine(PROGRAM, [PROGRAM, *args], host, quantum=quantum)
    result = m.run_to_end()
    seconds = time.perf_counter() - t0
    host.shutdown()
    assert result.exit.code == 0, result
    return seconds, result.icount, m.switches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=2_000_000)
    ns = parser.parse_args()
    n = str(ns.iterations)
    cases = {f"race q={q}": (["race", n], q) for q in QUANTA}
    cases["serial"] = (["serial", n], QUANTA[-1])
    cases["cond"] = (["cond"], 1_000_000)
    times: dict[str, list[float]] = {name: [] for name in cases}
    counts: dict[str, tuple[int, int]] = {}
    sink = os.open(os.devnull, os.O_WRONLY)
    for _ in range(ns.rounds):
        for name, (args, quantum) in cases.items():
            seconds, icount, switches = run(args, quantum, sink)
            times[name].append(seconds)
            counts[name] = (icount, switches)
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"threads benchmark: {ns.rounds} rounds, N={ns.iterations}, medians")
    print(f"{'case':<18}{'seconds':>10}{'instructions':>16}{'switches':>10}{'M insn/s':>10}")
    for name in cases:
        icount, switches = counts[name]
        rate = icount / med[name] / 1e6
        print(f"{name:<18}{med[name]:>10.3f}{icount:>16}{switches:>10}{rate:>10.1f}")
    print()
    print("two threads / the same work in one thread (time):")
    for q in QUANTA:
        print(f"  quantum {q:>10}: {med[f'race q={q}'] / med['serial']:.3f}x")
    big = f"race q={QUANTA[-1]}"
    small = f"race q={QUANTA[0]}"
    extra = counts[small][1] - counts[big][1]
    if extra > 0:
        per = (med[small] - med[big]) / extra
        print(f"one quantum switch: {per * 1e6:.1f} us ({extra} more switches at q={QUANTA[0]})")
    icount, switches = counts["cond"]
    if switches:
        print(
            f"cond: {switches} switches at blocking calls in {icount} instructions, "
            f"{med['cond'] / switches * 1e6:.1f} us of run time per switch (all costs)"
        )
    os.close(sink)


if __name__ == "__main__":
    main()
