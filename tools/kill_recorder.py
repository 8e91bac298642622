"""Kill the recorder at random moments and check what it leaves behind.

A recording must survive ``kill -9`` of ``rrdbg record`` at any moment: it
replays, its output is a prefix of what the recorder had printed, and it gets
at least as far as its last snapshot (the recorder writes the log before each
snapshot that points into it).

    python tools/kill_recorder.py [--rounds N] [--seed S]

runs N rounds (default 20) on each of two guests, one that prints and then
computes for a long time without system calls and one that makes many, and
prints one line per round.  tests/record/test_kill.py runs a
few rounds of the same check.
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "tests" / "guests" / "bin"
#: (guest, arguments): few system calls, and many.
#: (guest, arguments): output, then a long loop without system calls (debugme
#: loop: ~2 G instructions); and many system calls (malloc).
CASES: tuple[tuple[str, list[str]], ...] = (("debugme", ["loop"]), ("malloc", []))
RRDBG = [sys.executable, "-m", "rrdbg"]


@dataclass(frozen=True)
class Outcome:
    """What one killed recording gave."""

    recorded_stdout: bytes
    replay_stdout: bytes
    replay_status: int
    replay_stderr: str
    #: The icount of the recording's last snapshot (or its end, if the
    #: recorder finished): where the replay must get to at least.
    reached: int
    #: The icount the replay got to.
    replayed: int
    #: Killed before the recording existed (the interpreter was starting).
    too_early: bool = False

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.too_early:
            return out
        if not self.recorded_stdout.startswith(self.replay_stdout):
            out.append("the replay printed what the recorder had not")
        if self.replay_status not in (0, 1):
            out.append(f"replay exited with {self.replay_status}: {self.replay_stderr.strip()}")
        if self.replayed < self.reached:
            out.append(
                f"replay stopped at {self.replayed}, before the last snapshot {self.reached}"
            )
        if "Traceback" in self.replay_stderr:
            out.append("a traceback")
        return out


def kill_once(program: str, args: list[str], delay: float, workdir: Path) -> Outcome:
    """Record ``program``, SIGKILL the recorder after ``delay`` seconds, replay."""
    rec = Path(tempfile.mkdtemp(dir=workdir)) / "k.rr"  # nothing left from an earlier round
    record = [*RRDBG, "record", "--force", "--snapshot-interval", "20000000", "-o", str(rec)]
    proc = subprocess.Popen(
        [*record, program, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    recorded, _ = proc.communicate(timeout=60)
    if not (rec / "log.rrlog").exists():
        return Outcome(recorded, b"", 0, "", 0, 0, too_early=True)
    info = subprocess.run(
        [*RRDBG, "info", str(rec)], capture_output=True, text=True, check=False, timeout=60
    )
    total = re.search(r"instructions: (\d+)", info.stdout)
    snapshots = [int(v) for v in re.findall(r" icount +(\d+) +vmstate", info.stdout)]
    reached = int(total.group(1)) if total else max(snapshots, default=0)
    replay = subprocess.run(
        [*RRDBG, "replay", str(rec)], capture_output=True, check=False, timeout=300
    )
    stderr = replay.stderr.decode(errors="replace")
    ended = re.search(r"ends at icount (\d+)", stderr)
    replayed = int(ended.group(1)) if ended else reached
    return Outcome(recorded, replay.stdout, replay.returncode, stderr, reached, replayed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    ns = parser.parse_args()
    rng = random.Random(ns.seed)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in CASES:
            for i in range(ns.rounds):
                delay = rng.uniform(0.3, 1.5)  # after the interpreter has started
                outcome = kill_once(str(GUESTS / name), args, delay, Path(tmp))
                problems = outcome.problems()
                failures += bool(problems)
                if outcome.too_early:
                    print(f"{name} round {i + 1}: killed after {delay:.2f}s, before it started")
                    continue
                print(
                    f"{name} round {i + 1}: killed after {delay:.2f}s, snapshot at "
                    f"{outcome.reached}, replayed to {outcome.replayed}, "
                    f"{len(outcome.replay_stdout)}/{len(outcome.recorded_stdout)} bytes: "
                    + ("; ".join(problems) or "ok")
                )
    print(f"{failures} of {2 * ns.rounds} rounds failed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
