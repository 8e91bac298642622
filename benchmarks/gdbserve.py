"""Shared by the gdb benchmarks: serve a recording with ``rrdbg replay --gdb``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def serve_recording(recording: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start a one-client replay server on a free port; the process and port."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rrdbg",
            "replay",
            "--quiet",
            "--gdb",
            "127.0.0.1:0",
            "--once",
            str(recording),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert server.stderr is not None
    match = re.search(rb":(\d+)\s*$", server.stderr.readline())
    if match is None:
        server.kill()
        raise RuntimeError("the rrdbg server did not start")
    return server, int(match.group(1))
