"""Shared test helpers: where the prebuilt guests are, and how to run them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from rrdbg.record.recording import RecordStats

GUESTS = Path(__file__).parent / "guests" / "bin"


def guest(name: str) -> str:
    path = GUESTS / name
    if not path.exists():
        pytest.fail(f"missing prebuilt guest {path}: run tools/build_guests.sh")
    return str(path)


def can_run_i386_natively() -> bool:
    try:
        proc = subprocess.run(
            [guest("exitcode"), "7"], check=False, capture_output=True, timeout=10
        )
    except OSError:
        return False
    return proc.returncode == 7


@pytest.fixture
def devnull() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        yield fd
    finally:
        os.close(fd)


def record_quietly(program: str, args: list[str], directory: Path, **options: Any) -> RecordStats:
    """``record()`` with the guest's stdout discarded (the environment empty
    unless given), for tests that need a recording."""
    from rrdbg.record.recording import record

    options.setdefault("environ", {})
    fd = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(fd, 1)
    try:
        return record(program, args, str(directory), **options)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(fd)


# The CLI remembers recordings (rrdbg gdb, rrdbg ls) in a state directory:
# tests must not touch the user's.
os.environ.setdefault(
    "RRDBG_STATE_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), f"rrdbg-tests-{os.getpid()}")
)
# Nor the user's per-program cache (ELF headers).
os.environ.setdefault(
    "RRDBG_CACHE_DIR",
    os.path.join(os.environ.get("TMPDIR", "/tmp"), f"rrdbg-tests-cache-{os.getpid()}"),
)
