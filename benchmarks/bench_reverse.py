"""Reverse execution with real gdb on a long recording, side by side with forward.

Records the compute guest (default 250 iterations, about 117 M instructions),
serves it with ``rrdbg replay --gdb`` and drives gdb 13 through:

- ``reverse-stepi`` latency: at positions near the start, middle and end of
  history (reached with ``monitor replay_seek``), the median wall time of
  one ``reverse-stepi`` over a run of them, and of a forward ``stepi`` for
  comparison (goal: <= 5 ms);
- ``reverse-next`` over one source line of the guest's table_walk loop, and
  ``next`` over the same kind of line (goal: <= 50 ms);
- ``reverse-continue`` from the end of history to its start with a
  breakpoint that is never hit, against ``continue`` from the start to the
  end with the same breakpoint, i.e. a whole forward replay: with one job
  (goal: <= 1.5x) and with 2 .. CPUs jobs, several intervals replayed at
  once (goal: <= 0.6x on 2 CPUs);
- the memory the timeline's checkpoints use (``monitor info checkpoints``)
  against its budget, and the server's peak RSS.

The searches alternate between the numbers of jobs, ``--rounds`` times;
medians are printed, and the ratio of each round.  The machines this runs
on are noisy: two emulation threads on its 2 vCPUs get 1.2-2x the
throughput of one.  ``--iterations 2500`` (1.17 G instructions) makes the
scan long enough that starting replicas does not count.

Usage: python benchmarks/bench_reverse.py [--iterations N] [--steps N]
                                          [--jobs N] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
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

COMPUTE = str(ROOT / "tests" / "guests" / "bin" / "compute")

SCRIPT = (
    GDB_PRELUDE
    + r"""
end = %(end)d
steps = %(steps)d
for label, where in (("start", 1000), ("middle", end // 2), ("end", end - 10)):
    run("monitor replay_seek %%d" %% where)
    run("maintenance flush register-cache")
    back = [timed("reverse-stepi") for _ in range(steps)]
    fwd = [timed("stepi") for _ in range(steps)]
    back.sort(); fwd.sort()
    print("RSTEP", label, back[len(back) // 2], fwd[len(fwd) // 2])
run("break table_walk")
run("monitor replay_seek %%d" %% (end // 2))
run("maintenance flush register-cache")
run("continue")
run("delete")
nexts = [timed("next") for _ in range(6)]
rnexts = [timed("reverse-next") for _ in range(6)]
nexts.sort(); rnexts.sort()
print("NEXT", rnexts[3], nexts[3])
run("break abort")
for _round in range(%(rounds)d):
    for jobs in %(jobs)s:
        # A forward replay of the whole history, then the search back over
        # it (each search after its own forward run: alike restore points).
        run("monitor replay_seek 0")
        run("maintenance flush register-cache")
        fwd = timed("continue")
        run("monitor jobs %%d" %% jobs)
        back = timed("reverse-continue")
        print("SCAN", jobs, back, fwd)
print("MEM", run("monitor info checkpoints").strip().splitlines()[-1])
run("detach")
"""
)


def machine_scaling(rec: Path, jobs: int, rounds: int) -> float:
    """What this machine gives ``jobs`` emulation threads: the time of one
    whole replay over the time of ``jobs`` whole replays at once, each in
    its own thread and timeline (1.0 per thread if they scaled perfectly).
    The parallel search cannot beat it."""
    from rrdbg.timeline.timeline import Timeline

    timelines = [Timeline.replay(str(rec), quiet=True) for _ in range(jobs)]

    def whole(t: Timeline) -> None:
        assert t.history_end is not None
        t.checkpoints, t.disk = t.checkpoints[:1], []
        t._periodic = 1 << 62
        t.seek(0)
        t.seek(t.history_end)

    whole(timelines[0])
    ratios = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        whole(timelines[0])
        one = time.perf_counter() - t0
        threads = [threading.Thread(target=whole, args=(t,)) for t in timelines]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        ratios.append(one * jobs / (time.perf_counter() - t0))
    for t in timelines:
        t.close()
    return statistics.median(ratios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=250)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument(
        "--jobs", type=int, default=len(os.sched_getaffinity(0)), help="most jobs to try"
    )
    parser.add_argument("--rounds", type=int, default=3, help="searches per number of jobs")
    ns = parser.parse_args()
    ns.rounds = max(ns.rounds, 1)
    jobs = list(range(1, max(ns.jobs, 1) + 1))
    gdb = find_gdb()
    if gdb is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="rrdbg-bench-rev-"))
    try:
        rec = work / "compute.rr"
        record_s = timed_rrdbg("record", "-o", str(rec), COMPUTE, str(ns.iterations))
        info = subprocess.run(
            [sys.executable, "-m", "rrdbg", "info", str(rec)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
        end = int(re.search(r"instructions: (\d+)", info).group(1)) - 1  # type: ignore[union-attr]
        scaling = {n: machine_scaling(rec, n, ns.rounds) for n in jobs if n > 1}
        server, port = serve_recording(rec)
        script = work / "bench.py"
        text = SCRIPT % {
            "port": port,
            "end": end,
            "steps": ns.steps,
            "jobs": repr(jobs),
            "rounds": ns.rounds,
        }
        out = run_gdb_script(gdb, script, text, COMPUTE)
        _, _status, usage = os.wait4(server.pid, 0)
        rss = usage.ru_maxrss / 1024
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rsteps = re.findall(r"^RSTEP (\w+) ([\d.e-]+) ([\d.e-]+)$", out, re.MULTILINE)
    nxt = re.search(r"^NEXT ([\d.e-]+) ([\d.e-]+)$", out, re.MULTILINE)
    scans = re.findall(r"^SCAN (\d+) ([\d.e-]+) ([\d.e-]+)$", out, re.MULTILINE)
    by_jobs: dict[str, list[tuple[float, float]]] = {}
    for n, back_s, fwd_s in scans:
        by_jobs.setdefault(n, []).append((float(back_s), float(fwd_s)))
    mem = re.search(r"^MEM (.*)$", out, re.MULTILINE)
    if len(rsteps) != 3 or not nxt or len(scans) != len(jobs) * ns.rounds or not mem:
        print(out, file=sys.stderr)
        return 1
    print(
        f"recording: compute {ns.iterations} = {end + 1:,} instructions "
        f"(recorded in {record_s:.1f} s)"
    )
    for label, back, fwd in rsteps:
        print(
            f"reverse-stepi near the {label:<6}: median {float(back) * 1e3:6.2f} ms "
            f"(stepi {float(fwd) * 1e3:.2f} ms; goal <= 5 ms)"
        )
    print(
        f"reverse-next over a line: median {float(nxt.group(1)) * 1e3:.1f} ms "
        f"(next {float(nxt.group(2)) * 1e3:.1f} ms; goal <= 50 ms)"
    )
    for n, pairs in by_jobs.items():
        back = statistics.median(b for b, _ in pairs)
        fwd = statistics.median(f for _, f in pairs)
        ratios = sorted(b / f for b, f in pairs)
        goal = "goal <= 1.5" if n == "1" else "goal <= 0.6 on 2 CPUs"
        print(
            f"reverse-continue end -> start, no hit, {n} job(s): median {back:.3f} s; "
            f"continue start -> end: median {fwd:.3f} s; ratio of medians {back / fwd:.2f}, "
            f"per round {', '.join(f'{r:.2f}' for r in ratios)} ({goal})"
        )
    for n, speedup in scaling.items():
        print(
            f"this machine: {n} whole replays at once, each in its own thread, "
            f"take 1/{speedup:.2f} of the time one after another (median)"
        )
    print(f"checkpoints: {mem.group(1)}")
    print(f"server peak RSS: {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
