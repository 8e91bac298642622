"""Start-up: how long rrdbg takes for a tiny program, phase by phase.

Side by side in one run, the median wall time of --repeat launches of:

- the interpreter alone (``python -S -c pass``, then with site as installed);
- the interpreter importing Unicorn's binding, and everything ``rrdbg run``
  imports (ended with ``os._exit``, as the rrdbg program ends);
- ``rrdbg run``, ``rrdbg record`` and ``rrdbg replay`` of the hello guest,
  and a served replay (``rrdbg replay --gdb``: launch, gdb's first packet
  ``?`` answered, ``k``, the server's exit);
- ``rrdbg record`` and the served replay forked by a fork server (what
  the pytest plugin does: the imports are paid once per test session);
- qemu-i386 (when installed) and the program run natively.

Phases: imports = import-only - interpreter; work = run - import-only.
Goal (issue 18): ``rrdbg run`` <= 50 ms; record and a served replay close.

Usage: python benchmarks/bench_startup.py [--repeat N] [--program PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrdbg.forkserver import ForkServer  # noqa: E402
from rrdbg.server.launch import start_server  # noqa: E402

HELLO = str(ROOT / "tests" / "guests" / "bin" / "hello")
PY = sys.executable
IMPORTS = "import os, rrdbg.cli, rrdbg.machine.machine; os._exit(0)"


def timed(action: Callable[[], object], repeat: int) -> float:
    action()  # warm the page cache and the per-program cache
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        action()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def command(*argv: str) -> Callable[[], object]:
    def run() -> object:
        return subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, check=True
        )

    return run


def forked(forks: ForkServer, *args: str) -> Callable[[], object]:
    """``rrdbg ARGS`` forked by the fork server (as the pytest plugin runs it)."""

    def run() -> object:
        with open(os.devnull, "r+b") as null:
            code = forks.spawn(
                args, stdin=null.fileno(), stdout=null.fileno(), stderr=null.fileno(), cwd=str(ROOT)
            ).wait(60)
        if code not in (0, 7):
            raise RuntimeError(f"rrdbg {' '.join(args)}: status {code}")
        return code

    return run


def served(recording: Path, forks: ForkServer | None = None) -> Callable[[], object]:
    def run() -> object:
        args = ["replay", "--quiet", "--gdb", "127.0.0.1:0", "--once", str(recording)]
        proc, port = start_server(args, cwd=str(ROOT), forks=forks)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"$?#3f")
            data = b""
            while b"#" not in data.lstrip(b"+")[1:] or len(data.split(b"#")[-1]) < 2:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.sendall(b"+$k#6b")
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()
        return proc

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--program", default=HELLO)
    ns = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rrdbg-bench-start-"))
    rec = work / "hello.rr"
    rows: list[tuple[str, float]] = []
    try:
        program = ns.program
        rows.append(("python -S -c pass", timed(command(PY, "-S", "-c", "pass"), ns.repeat)))
        rows.append(("python -c pass", timed(command(PY, "-c", "pass"), ns.repeat)))
        rows.append(
            ("python: import unicorn", timed(command(PY, "-c", "import unicorn"), ns.repeat))
        )
        rows.append(("python: rrdbg's imports", timed(command(PY, "-c", IMPORTS), ns.repeat)))
        rows.append(("rrdbg run", timed(command(PY, "-m", "rrdbg", "run", program), ns.repeat)))
        record = command(PY, "-m", "rrdbg", "record", "--force", "-o", str(rec), program)
        rows.append(("rrdbg record", timed(record, ns.repeat)))
        rows.append(
            ("rrdbg replay", timed(command(PY, "-m", "rrdbg", "replay", str(rec)), ns.repeat))
        )
        rows.append(("rrdbg replay --gdb (served, ?, k)", timed(served(rec), ns.repeat)))
        forks = ForkServer.start()
        try:
            fork_record = forked(forks, "record", "--force", "-o", str(rec), program)
            rows.append(("fork server: rrdbg record", timed(fork_record, ns.repeat)))
            rows.append(("fork server: served (?, k)", timed(served(rec, forks), ns.repeat)))
        finally:
            forks.close()
        qemu = shutil.which("qemu-i386")
        if qemu:
            rows.append(("qemu-i386", timed(command(qemu, program), ns.repeat)))
        rows.append(("native", timed(command(program), ns.repeat)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = dict(rows)
    print(f"program: {os.path.basename(program)}; medians of {ns.repeat}")
    for label, seconds in rows:
        print(f"  {label:<36} {seconds * 1e3:7.1f} ms")
    interpreter = table["python -c pass"]
    imports = table["python: rrdbg's imports"]
    run = table["rrdbg run"]
    print(
        f"rrdbg run = interpreter {interpreter * 1e3:.0f} ms + imports "
        f"{(imports - interpreter) * 1e3:.0f} ms + loading and running "
        f"{(run - imports) * 1e3:.0f} ms (goal <= 50 ms in all)"
    )
    if "qemu-i386" in table:
        print(f"rrdbg run / qemu-i386: {run / table['qemu-i386']:.1f}")
    pair = table["rrdbg record"] + table["rrdbg replay --gdb (served, ?, k)"]
    fork_pair = table["fork server: rrdbg record"] + table["fork server: served (?, k)"]
    print(
        f"record + served replay (the pytest plugin's pair): {pair * 1e3:.0f} ms as "
        f"commands, {fork_pair * 1e3:.0f} ms from the fork server ({pair / fork_pair:.1f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
