"""gdb round trips against rrdbg, measured with real gdb.

Starts ``rrdbg replay --gdb`` on a recording of the compute guest and drives
gdb 13 (batch mode, timing with gdb's embedded Python) through:

- ``stepi``: the median wall time of one ``stepi`` as the user sees it (gdb
  sends vCont;s, then reads registers and memory around the new PC);
- ``m`` throughput: reading a 256 KiB guest array with
  ``Inferior.read_memory`` (gdb splits it into ``m`` packets), KiB/s;
- for context, one ``continue`` to a breakpoint hit once per iteration.

Goal (issue 4): at most 1 ms per stepi round trip.
Usage: python benchmarks/bench_gdb.py [--steps N] [--rounds N]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.gdbserve import serve_recording  # noqa: E402

COMPUTE = str(ROOT / "tests" / "guests" / "bin" / "compute")

SCRIPT = r"""
import time, gdb
gdb.execute("set pagination off")
gdb.execute("target remote 127.0.0.1:%(port)d")
gdb.execute("break table_walk")
gdb.execute("continue", to_string=True)
steps = []
for _ in range(%(steps)d):
    t0 = time.perf_counter()
    gdb.execute("stepi", to_string=True)
    steps.append(time.perf_counter() - t0)
steps.sort()
print("STEPI_MEDIAN", steps[len(steps) // 2])
addr = int(gdb.parse_and_eval("(unsigned)&table"))
inf = gdb.selected_inferior()
reads = []
for _ in range(5):
    gdb.execute("maint flush dcache", to_string=True)
    t0 = time.perf_counter()
    data = inf.read_memory(addr, 256 * 1024)
    reads.append(time.perf_counter() - t0)
    assert len(bytes(data)) == 256 * 1024
reads.sort()
print("READ_MEDIAN", reads[2])
conts = []
for _ in range(5):
    t0 = time.perf_counter()
    gdb.execute("continue", to_string=True)
    conts.append(time.perf_counter() - t0)
conts.sort()
print("CONT_MEDIAN", conts[2])
gdb.execute("detach", to_string=True)
"""


def one_round(recording: Path, steps: int) -> dict[str, float]:
    server, port = serve_recording(recording)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(SCRIPT % {"port": port, "steps": steps})
    gdb = shutil.which("gdb")
    assert gdb is not None
    out = subprocess.run(
        [gdb, "-nx", "-batch", "-x", f.name, COMPUTE],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    ).stdout
    server.wait(timeout=60)
    values = dict(re.findall(r"^(\w+_MEDIAN) ([\d.e-]+)$", out, re.MULTILINE))
    if len(values) != 3:
        raise RuntimeError(f"gdb script failed:\n{out}")
    return {k: float(v) for k, v in values.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    ns = parser.parse_args()
    if shutil.which("gdb") is None:
        print("gdb is not installed", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="rrdbg-bench-gdb-"))
    try:
        rec = work / "compute.rr"
        subprocess.run(
            [sys.executable, "-m", "rrdbg", "record", "-o", str(rec), COMPUTE, "20"],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=ROOT,
        )
        rounds = [one_round(rec, ns.steps) for _ in range(ns.rounds)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stepi = statistics.median(r["STEPI_MEDIAN"] for r in rounds)
    read = statistics.median(r["READ_MEDIAN"] for r in rounds)
    cont = statistics.median(r["CONT_MEDIAN"] for r in rounds)
    print(
        f"gdb stepi round trip: median {stepi * 1e3:.3f} ms "
        f"(goal <= 1 ms: {stepi / 1e-3:.2f} x the goal)"
    )
    print(f"gdb memory read (m packets): {256 / read:,.0f} KiB/s (256 KiB in {read * 1e3:.1f} ms)")
    print(f"gdb continue to the next breakpoint hit: median {cont * 1e3:.2f} ms")
    print(f"medians of {ns.rounds} rounds of {ns.steps} stepi, 5 reads and 5 continues each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
