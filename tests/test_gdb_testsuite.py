"""gdb's own testsuite against rrdbg (tools/gdb_testsuite.py): the tests run
under DejaGnu natively with gdb's ``record full`` and against ``rrdbg debug``
(board tests/dejagnu/rrdbg.exp); every check that passes natively must pass
against rrdbg, and nothing may fail there, except the tool's KNOWN checks.

Needs the Debian source mirror the first time (gdb's source is cached in
~/.cache/rrdbg-gdb-testsuite or $RRDBG_GDB_TESTSUITE_CACHE); where it cannot
be reached the test is skipped with the reason "gdb-testsuite: Debian source
mirror unreachable: ...", which ``-ra`` shows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.gdbrun import needs_gdb

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "gdb_testsuite.py"
EXIT_UNREACHABLE = 3
UNREACHABLE_PREFIX = "gdb-testsuite: Debian source mirror unreachable: "


@needs_gdb
@pytest.mark.slow
def test_gdb_reverse_tests_pass_as_natively(tmp_path: Path) -> None:
    """The gdb.reverse tests of tools/gdb_testsuite.py's DEFAULT_TESTS (21,
    sigall-reverse.exp among them: every signal stops before delivery,
    reaches its handler, and is gone back over, delivery included)."""
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--json", str(results)],
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
    )
    if proc.returncode == EXIT_UNREACHABLE:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(UNREACHABLE_PREFIX)]
        pytest.skip(lines[-1] if lines else proc.stderr.strip())
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    report = json.loads(results.read_text())
    assert len(report) >= 21
    for test, outcome in report.items():
        native = outcome["native"]["counts"].get("PASS", 0)
        ours = outcome["rrdbg"]["counts"].get("PASS", 0) + outcome["rrdbg"]["counts"].get(
            "KPASS", 0
        )
        # A run that stopped early would compare equal on nothing: every test
        # ran, and against rrdbg lacks at most its native-only checks.
        assert native > 0, (test, outcome["native"])
        assert ours >= native - 2, (test, outcome["rrdbg"])
    assert report["gdb.reverse/sigall-reverse.exp"]["native"]["counts"]["PASS"] >= 900
