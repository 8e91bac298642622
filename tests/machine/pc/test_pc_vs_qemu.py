"""The differential check, rrdbg's side: each test kernel under ``rrdbg run
--machine pc`` prints what it prints under QEMU (expected.py), lines that
depend on the firmware aside, and ends with the same status.

The pc machine is being built (issue 6): cases that need what is not there
yet are strict xfails naming the missing part, so they turn into failures
the moment they start to pass.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.machine.pc.expected import CASES, KERNELS, KernelCase, comparable

_MISSING: dict[str, str] = {}


def _params() -> list[object]:
    out: list[object] = []
    for name, case in CASES.items():
        marks = []
        if name in _MISSING:
            marks.append(pytest.mark.xfail(strict=True, reason=f"not yet: {_MISSING[name]}"))
        out.append(pytest.param(case, id=name, marks=marks))
    return out


@pytest.mark.parametrize("case", _params())
def test_kernel_prints_what_it_prints_under_qemu(case: KernelCase) -> None:
    argv = [sys.executable, "-m", "rrdbg", "run", "--machine", "pc", "-m", "32"]
    if case.append is not None:
        argv += ["--append", case.append]
    proc = subprocess.run(
        [*argv, case.kernel],
        input=case.stdin,
        capture_output=True,
        cwd=KERNELS,
        timeout=60,
        check=False,
    )
    assert comparable(proc.stdout) == comparable(case.stdout), proc.stderr
    assert proc.returncode == case.qemu_status, proc.stderr
