"""Start an ``rrdbg`` gdb server as a subprocess and wait until it listens.

Role: one helper for everything that runs a server in the background (the
pytest plugin, tests, benchmarks): ``python -m rrdbg ARGS``, then the
readiness line ``rrdbg: waiting for gdb on HOST:PORT`` on its stderr, which
names the port the system chose for port 0.  Imports no trio and no
emulator (the plugin loads it at pytest start-up).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence

from rrdbg.errors import RrdbgError

READY = re.compile(rb"waiting for gdb on [^:\s]+:(\d+)")


def start_server(
    args: Sequence[str], *, stdout: int | None = subprocess.DEVNULL, cwd: str | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Run ``rrdbg ARGS`` (a ``--gdb`` server) and return it with its port
    once it listens; RrdbgError with its message if it does not start.
    The caller ends it (``kill``/``wait``) and owns its stderr pipe."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rrdbg", *args],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        cwd=cwd,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = READY.search(line)
    if match is None:
        proc.kill()
        rest = proc.communicate()[1]
        text = (line + rest).decode(errors="replace").strip()
        raise RrdbgError(f"rrdbg {' '.join(args)} did not start: {text}")
    return proc, int(match.group(1))
