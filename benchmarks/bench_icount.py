"""Forward speed of exact instruction counting against plain Unicorn, side by side.

Runs the compute guest (tests/guests/bin/compute, about 80 M instructions by
default) in one process, alternating the modes round by round so host noise
hits them alike:

- ``exact-native``: rrdbg's machine with the C block hook (what ``rrdbg run`` does);
- ``exact-python``: the same with the pure-Python block hook;
- ``exact-cpu-tlb``: ``exact-native`` with Unicorn's own TLB instead of the
  page-permission TLB hook that makes memory faults exact: the price of
  exact faults (one hook call per TLB miss);
- ``plain``: the same machine (memory setup, syscall handling) with the block
  hook removed and no count: the Unicorn ceiling;
- ``native-cpu``: the guest executed by the host CPU, for context.

Prints the median seconds, instructions per second and the ratios to plain.
The default, 1000 iterations (about 470 M instructions), measures steady-state
speed; the guest's own default of 170 iterations (80 M) runs for only ~40 ms,
where the one-time cost of decoding each new block with capstone shows.
Usage: python benchmarks/bench_icount.py [--rounds N] [--iterations ITERS] [--no-python]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrdbg.machine.cpu import Cpu  # noqa: E402
from rrdbg.machine.engine import unicorn_version  # noqa: E402
from rrdbg.machine.host import SeededHost  # noqa: E402
from rrdbg.machine.icount import native_available  # noqa: E402
from rrdbg.machine.machine import LinuxMachine  # noqa: E402

COMPUTE = str(ROOT / "tests" / "guests" / "bin" / "compute")


def _machine(iterations: int, sink: int, native: bool, virtual_tlb: bool = True) -> LinuxMachine:
    host = SeededHost(1, stdout_fd=sink, stderr_fd=sink)
    saved = Cpu.virtual_tlb
    Cpu.virtual_tlb = virtual_tlb
    try:
        return LinuxMachine(COMPUTE, ["compute", str(iterations)], host, native=native)
    finally:
        Cpu.virtual_tlb = saved


def run_exact(
    iterations: int, sink: int, native: bool, virtual_tlb: bool = True
) -> tuple[float, int]:
    m = _machine(iterations, sink, native, virtual_tlb)
    t0 = time.perf_counter()
    result = m.run_to_end()
    elapsed = time.perf_counter() - t0
    assert result.exit.code == 0, result
    return elapsed, result.icount


def run_plain(iterations: int, sink: int) -> tuple[float, int]:
    m = _machine(iterations, sink, True)
    # Remove rrdbg's block hook: what is left is Unicorn with the same memory
    # map and the same int 0x80 handling, and no instruction counting at all.
    m.engine.hook_del_raw(m.cpu.block_hook)
    m.cpu.flush_code()
    t0 = time.perf_counter()
    while m.exit is None:
        status = m.engine.start(m.cpu.eip)
        if status != 0:
            raise RuntimeError(f"plain run failed: {m.engine.strerror(status)}")
    elapsed = time.perf_counter() - t0
    assert m.exit.code == 0
    return elapsed, 0


def run_native_cpu(iterations: int, sink: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    subprocess.run([COMPUTE, str(iterations)], stdout=sink, check=True)
    return time.perf_counter() - t0, 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--no-python", action="store_true", help="skip the slow Python hook")
    ns = parser.parse_args()
    if not native_available():
        print("the C extension is not built (pip install -e .)", file=sys.stderr)
        return 2
    sink = os.open(os.devnull, os.O_WRONLY)
    modes: dict[str, Callable[[], tuple[float, int]]] = {
        "plain": lambda: run_plain(ns.iterations, sink),
        "exact-native": lambda: run_exact(ns.iterations, sink, True),
        "exact-cpu-tlb": lambda: run_exact(ns.iterations, sink, True, virtual_tlb=False),
    }
    if not ns.no_python:
        modes["exact-python"] = lambda: run_exact(ns.iterations, sink, False)
    try:
        modes["native-cpu"] = lambda: run_native_cpu(ns.iterations, sink)
        run_native_cpu(1, sink)
    except OSError:
        del modes["native-cpu"]
    times: dict[str, list[float]] = {m: [] for m in modes}
    icount = 0
    for fn in modes.values():  # warm-up round
        fn()
    for _ in range(ns.rounds):
        for name, fn in modes.items():
            elapsed, n = fn()
            times[name].append(elapsed)
            icount = n or icount
    plain = statistics.median(times["plain"])
    print(f"unicorn {unicorn_version()}, python {sys.version.split()[0]}")
    print(f"guest: compute {ns.iterations} = {icount:,} instructions; median of {ns.rounds} rounds")
    print(f"{'mode':<14}{'seconds':>10}{'M instr/s':>12}{'vs plain':>10}")
    for name, samples in times.items():
        med = statistics.median(samples)
        print(f"{name:<14}{med:>10.3f}{icount / med / 1e6:>12.1f}{plain / med:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
