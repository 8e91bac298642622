"""Start an ``rrdbg`` gdb server as a subprocess and wait until it listens.

Role: one helper for everything that runs a server in the background (the
pytest plugin, tests, benchmarks): ``python -m rrdbg ARGS``, then the
readiness line ``rrdbg: waiting for gdb on HOST:PORT`` on its stderr, which
names the port the system chose for port 0; or the same forked by a fork
server (``rrdbg/forkserver.py``).  Imports no trio and no emulator (the
plugin loads it at pytest start-up).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from typing import overload

from rrdbg.errors import RrdbgError
from rrdbg.forkserver import Forked, ForkServer

READY = re.compile(rb"waiting for gdb on [^:\s]+:(\d+)")


@overload
def start_server(
    args: Sequence[str],
    *,
    stdout: int | None = ...,
    cwd: str | None = ...,
    forks: None = ...,
) -> tuple[subprocess.Popen[bytes], int]: ...


@overload
def start_server(
    args: Sequence[str],
    *,
    stdout: int | None = ...,
    cwd: str | None = ...,
    forks: ForkServer | None,
) -> tuple[subprocess.Popen[bytes] | Forked, int]: ...


def start_server(
    args: Sequence[str],
    *,
    stdout: int | None = subprocess.DEVNULL,
    cwd: str | None = None,
    forks: ForkServer | None = None,
) -> tuple[subprocess.Popen[bytes] | Forked, int]:
    """Run ``rrdbg ARGS`` (a ``--gdb`` server; forked by ``forks`` if given)
    and return it with its port once it listens; RrdbgError with its
    message if it does not start.  The caller ends it (``kill``/``wait``)
    and owns its stderr pipe."""
    proc: subprocess.Popen[bytes] | Forked
    if forks is not None:
        proc = _forked(forks, args, stdout, cwd)
    else:
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
        rest = proc.stderr.read()
        proc.wait()
        proc.stderr.close()
        text = (line + rest).decode(errors="replace").strip()
        raise RrdbgError(f"rrdbg {' '.join(args)} did not start: {text}")
    return proc, int(match.group(1))


def _forked(forks: ForkServer, args: Sequence[str], stdout: int | None, cwd: str | None) -> Forked:
    """``start_server``'s child from the fork server: stdin from /dev/null,
    stderr a pipe the caller reads."""
    null = os.open(os.devnull, os.O_RDWR)
    read_end, write_end = os.pipe()
    try:
        # (None: ours, as subprocess inherits it.)
        out = null if stdout == subprocess.DEVNULL else 1 if stdout is None else stdout
        if out < 0:
            raise ValueError("stdout: a descriptor, None or DEVNULL")
        proc = forks.spawn(args, stdin=null, stdout=out, stderr=write_end, cwd=cwd)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(null)
        os.close(write_end)
    proc.stderr = os.fdopen(read_end, "rb")
    return proc
