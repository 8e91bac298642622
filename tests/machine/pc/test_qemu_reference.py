"""The test kernels under real QEMU: the reference side of the pc machine's
differential check (the expected outputs are in expected.py).

Skipped where ``qemu-system-i386`` is missing; ``tools/install.sh --dev``
installs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.machine.pc.expected import CASES, KERNELS, KernelCase, comparable, qemu_argv

QEMU = shutil.which("qemu-system-i386")
pytestmark = pytest.mark.skipif(
    QEMU is None, reason="qemu-system-i386 is not installed (tools/install.sh --dev installs it)"
)


def run_qemu(
    case: KernelCase, kernel: str | None = None, memory_mib: int = 32
) -> subprocess.CompletedProcess[bytes]:
    path = KERNELS / case.kernel
    if not path.exists():
        pytest.fail(f"missing prebuilt kernel {path}: run tools/build_guests.sh")
    return subprocess.run(
        qemu_argv(case, kernel, memory_mib),
        input=case.stdin,
        capture_output=True,
        cwd=KERNELS,
        check=False,
        timeout=60,
    )


def qemu_version() -> tuple[int, int]:
    out = subprocess.run(
        ["qemu-system-i386", "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"version (\d+)\.(\d+)", out)
    assert match, out
    return int(match[1]), int(match[2])


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_and_status(name: str) -> None:
    case = CASES[name]
    proc = run_qemu(case)
    assert comparable(proc.stdout) == comparable(case.stdout), proc.stderr
    assert proc.returncode == case.qemu_status, proc.stderr


@pytest.mark.parametrize("name", sorted(CASES))
def test_exact_output_of_qemu_7_2(name: str) -> None:
    """The raw lines too: they document what QEMU 7.2 (Debian 12) hands a
    Multiboot kernel.  Other versions may have another firmware memory map."""
    if qemu_version() != (7, 2):
        pytest.skip("the raw values were taken from QEMU 7.2")
    case = CASES[name]
    assert run_qemu(case).stdout == case.stdout


def test_hello_raw_lines_are_the_machine_dependent_ones() -> None:
    """More RAM and an absolute kernel path change only the raw lines."""
    case = CASES["k_hello"]
    proc = run_qemu(case, kernel=str(KERNELS / case.kernel), memory_mib=64)
    assert proc.stdout != case.stdout
    assert comparable(proc.stdout) == comparable(case.stdout)
    assert f'raw cmdline="{KERNELS / "k_hello"} answer=42 greeting=hello"'.encode() in proc.stdout
    assert b"raw mem_lower=639 mem_upper=64384\r\n" in proc.stdout
    assert proc.returncode == case.qemu_status


def test_comparable_drops_only_raw_lines() -> None:
    text = b"a\r\nraw b=1\r\nc raw\r\nrawer\r\n"
    assert comparable(text) == b"a\r\nc raw\r\nrawer\r\n"
