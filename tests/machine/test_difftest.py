"""The CPU against the host's (tools/difftest.py), every instruction class.

Each case runs one instruction from random registers, flags, x87/SSE state
and memory natively (a 32-bit helper) and in rrdbg's Linux machine, and
compares the end states (the EFLAGS bits the architecture leaves undefined
masked).  Every class must match but for the differences docs/machine.md
lists (difftest.KNOWN, counted apart).  The classes beyond the integer one
need rrdbg's Unicorn build (third_party/unicorn): a stock library differs
in the ways that page's table shows.  The long run is ``python
tools/difftest.py``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rrdbg.machine.engine import patch_level

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


#: The host CPU features (/proc/cpuinfo) each class's instructions need.
HOST_FEATURES = {
    "x87": {"fpu"},
    "mmx": {"mmx"},
    "sse": {"sse"},
    "sse2": {"sse2"},
    "sse3": {"pni"},
    "ssse3": {"ssse3"},
    "sse4.1": {"sse4_1"},
    "sse4.2": {"sse4_2"},
    "aes": {"aes", "pclmulqdq"},
    "bmi": {"popcnt", "abm", "bmi1", "bmi2", "adx", "movbe"},
}


def host_features() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    match = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    return set(match[1].split()) if match else set()


@pytest.mark.skipif(not patch_level(), reason="needs rrdbg's Unicorn build (tools/install.sh)")
@pytest.mark.parametrize("klass", list(HOST_FEATURES))
def test_every_class_matches_the_host_on_the_default_model(klass: str) -> None:
    missing = HOST_FEATURES[klass] - host_features()
    if missing:
        pytest.skip(f"this host CPU lacks {', '.join(sorted(missing))}")
    done = _difftest("--class", klass, "--count", "300", "--seed", "13")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(rf"^ +{re.escape(klass)} +0 of \d+", done.stdout, re.MULTILINE), done.stdout


def test_a_difference_is_found() -> None:
    # The harness itself: CPUID (family, model, features) differs between
    # the emulated CPU model and any real host.
    done = _difftest("--insn", "mov eax, 1; cpuid", "--count", "3")
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"^custom +mov +3 +e\.g\. mov eax, 1; cpuid: eax ", done.stdout, re.MULTILINE)
