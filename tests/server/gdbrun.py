"""Helpers for tests that drive real gdb against an rrdbg server process."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from rrdbg.server.launch import start_server

GDB = shutil.which("gdb")
needs_gdb = pytest.mark.skipif(GDB is None, reason="gdb is not installed")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int

    def stop(self, timeout: float = 10) -> tuple[int, bytes, bytes]:
        """Wait for the server to end; its status, stdout and stderr."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise
        return self.proc.returncode, out, err


@contextmanager
def rrdbg_server(args: Sequence[str]) -> Iterator[Server]:
    """Start ``rrdbg ARGS`` (which must include ``--gdb 127.0.0.1:0``) and wait
    until it listens."""
    proc, port = start_server(args, stdout=subprocess.PIPE)
    server = Server(proc, port)
    try:
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def gdb_batch(
    program: str, commands: Sequence[str], *, port: int | None = None, timeout: float = 60
) -> str:
    """Run gdb in batch mode: connect (to ``port``, unless the first command
    connects itself) and run ``commands``; stdout and stderr, merged."""
    assert GDB is not None
    argv = [GDB, "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off"]
    if port is not None:
        argv += ["-ex", f"target remote 127.0.0.1:{port}"]
    for cmd in commands:
        argv += ["-ex", cmd]
    argv.append(program)
    env = {**os.environ, "LC_ALL": "C"}
    proc = subprocess.run(
        argv, capture_output=True, timeout=timeout, check=False, env=env, stdin=subprocess.DEVNULL
    )
    return proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
