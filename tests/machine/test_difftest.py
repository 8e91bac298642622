"""The CPU against the host's (tools/difftest.py): integer instructions.

Each case runs one instruction from random registers, flags and memory
natively (a 32-bit helper) and in rrdbg's Linux machine, and compares the
end states (the EFLAGS bits the architecture leaves undefined masked).  The
long run over every class is ``python tools/difftest.py``; its findings are
in docs/machine.md.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIFFTEST = ROOT / "tools" / "difftest.py"

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc -m32")


def _difftest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DIFFTEST), *args], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("seed", ["11", "12"])
def test_integer_instructions_match_the_host(seed: str) -> None:
    done = _difftest("--class", "int", "--count", "500", "--seed", seed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^ +int +0 of 500$", done.stdout, re.MULTILINE), done.stdout


def test_a_difference_is_found() -> None:
    # The harness itself: CPUID (family, model, features) differs between
    # the emulated CPU model and any real host.
    done = _difftest("--insn", "mov eax, 1; cpuid", "--count", "3")
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"^custom +mov +3 +e\.g\. mov eax, 1; cpuid: eax ", done.stdout, re.MULTILINE)
