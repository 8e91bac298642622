"""The README's first command, tools/demo.sh, does what the README says: a
recording, then gdb stopping backwards at the last write to ``counter``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")
@pytest.mark.skipif(
    not (ROOT / ".venv" / "bin" / "rrdbg").exists(),
    reason="tools/install.sh has not made .venv (tools/test.sh does)",
)
def test_demo_finds_the_last_write_backwards() -> None:
    proc = subprocess.run(
        [str(ROOT / "tools" / "demo.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "total=55 counter=15" in out
    assert "(debugme exited with status 7" in out
    first = out.index("Old value = 15\nNew value = 10\n")
    assert "in bump (by=5) at tests/guests/debugme.c:25" in out[first:]
    assert out.index("Old value = 10\nNew value = 6\n") > first
