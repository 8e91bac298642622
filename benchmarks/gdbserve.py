"""Shared by the gdb benchmarks: serve a recording with ``rrdbg replay --gdb``
and drive gdb with a Python script."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrdbg.server.launch import start_server  # noqa: E402


def serve_recording(recording: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start a one-client replay server on a free port; the process and port."""
    args = ["replay", "--quiet", "--gdb", "127.0.0.1:0", "--once", str(recording)]
    return start_server(args, cwd=str(ROOT))


#: The start of every benchmark's gdb script: ``run(cmd)`` (output as a
#: string), ``timed(cmd)`` (seconds), connected to the server at ``%(port)d``.
GDB_PRELUDE = r"""
import time, gdb
def run(cmd):
    return gdb.execute(cmd, to_string=True)
def timed(cmd):
    t0 = time.perf_counter()
    run(cmd)
    return time.perf_counter() - t0
run("set pagination off")
run("target remote 127.0.0.1:%(port)d")
"""


def run_gdb_script(gdb: str, script: Path, text: str, program: str) -> str:
    """Write ``GDB_PRELUDE`` + ``text`` (already %-formatted) to ``script``,
    run it with gdb in batch mode on ``program``; gdb's stdout."""
    script.write_text(text)
    return subprocess.run(
        [gdb, "-nx", "-batch", "-x", str(script), program],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    ).stdout


def timed_rrdbg(*args: str) -> float:
    """Run ``rrdbg ARGS`` (its stdout discarded, from the checkout this
    script belongs to); the wall seconds it took."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "rrdbg", *args], check=True, stdout=subprocess.DEVNULL, cwd=ROOT
    )
    return time.perf_counter() - t0


def find_gdb() -> str | None:
    """gdb's path, or None after saying on stderr that it is missing."""
    gdb = shutil.which("gdb")
    if gdb is None:
        print("gdb is not installed", file=sys.stderr)
    return gdb
