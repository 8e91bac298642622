"""The pytest plugin, used the way a user's suite uses it: record a program,
drive gdb over MI against the recording, go backwards; and, when a test
fails, the recording is kept and the report says how to reopen it.

debugme's main calls bump(i) then square(i) for i = 1..5; ``counter``
(written only by bump) goes 0, 1, 3, 6, 10, 15; it prints
"total=55 counter=15" and exits with status 7.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rrdbg.gdbmi import Gdb
from rrdbg.pytest_plugin import Recorded
from tests.conftest import guest

pytest_plugins = ["pytester"]
DEBUGME = guest("debugme")


def test_record_then_reverse_debug_with_gdb(
    rrdbg_record: Callable[..., Recorded], rrdbg_gdb: Callable[..., Gdb]
) -> None:
    rec = rrdbg_record(DEBUGME)
    assert rec.status == 7
    assert rec.stdout == b"total=55 counter=15\n"
    gdb = rrdbg_gdb(rec)
    gdb.break_at("bump")
    for by in (1, 2, 3):
        stop = gdb.cont()
        assert (stop.reason, stop.func, gdb.eval("by")) == ("breakpoint-hit", "bump", str(by))
    at_three = gdb.when()
    stop = gdb.reverse_cont()
    assert (stop.reason, gdb.eval("by"), gdb.eval("counter")) == ("breakpoint-hit", "2", "1")
    assert gdb.when() < at_three
    # The last write to counter before here, found backwards with a watchpoint.
    gdb.delete()
    gdb.watch("counter")
    stop = gdb.reverse_cont()
    assert stop.reason == "watchpoint-trigger"
    assert stop.func == "bump"
    assert stop.results["value"] == {"old": "1", "new": "0"}  # reversed: before, after
    stop = gdb.reverse_stepi()
    assert stop.reason in ("end-stepping-range", "watchpoint-trigger")
    here = gdb.when()
    stop = gdb.stepi()
    assert gdb.when() == here + 1
    gdb.delete()
    gdb.seek(0)
    assert gdb.when() == 0
    stop = gdb.reverse_stepi()
    assert stop.reason == "no-history"


def test_the_python_api_through_the_fixtures(
    rrdbg_record: Callable[..., Recorded], rrdbg_open: Callable[..., object]
) -> None:
    from rrdbg import Recording

    r = rrdbg_open(rrdbg_record(DEBUGME))
    assert isinstance(r, Recording)
    r.seek(r.end)
    write = r.last_write("counter")
    assert write is not None and write.function.startswith("bump")


def test_a_failing_test_keeps_its_recording(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        def test_fails(rrdbg_record):
            rec = rrdbg_record({DEBUGME!r}, "segv")
            assert rec.status == 0, "the guest dies of SIGSEGV"

        def test_passes(rrdbg_record):
            assert rrdbg_record({DEBUGME!r}).status == 7
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    lines = re.findall(r"^\s+rrdbg replay --gdb :1234 (\S+)$", out, re.MULTILINE)
    assert len(lines) == 1, out
    kept = Path(lines[0])
    assert kept.is_dir() and (kept / "log.rrlog").exists()
    assert ".pytest_cache" in kept.parts
    # The kept recording replays.
    replay = subprocess.run(
        [sys.executable, "-m", "rrdbg", "replay", str(kept)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert replay.returncode == 128 + 11 and replay.stdout == b"total=55 counter=15\n"


def test_the_plugin_loads_no_emulator() -> None:
    code = (
        "import sys, rrdbg.pytest_plugin, rrdbg; "
        "print(sorted(m for m in sys.modules if m in ('unicorn', 'rrdbg.machine')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_documented_example(
    rrdbg_record: Callable[..., Recorded], rrdbg_gdb: Callable[..., Gdb]
) -> None:
    """docs/pytest.md's first example, as written there."""
    rec = rrdbg_record(DEBUGME)
    assert rec.status == 7 and rec.stdout == b"total=55 counter=15\n"

    gdb = rrdbg_gdb(rec)
    gdb.break_at("debugme.c:45")
    gdb.cont()
    gdb.watch("counter")
    stop = gdb.reverse_cont()
    assert stop.reason == "watchpoint-trigger" and stop.func == "bump"
    assert stop.results["value"] == {"old": "15", "new": "10"}
    assert gdb.eval("by") == "5"


def test_a_program_that_cannot_be_recorded_fails_the_test_in_one_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_missing(rrdbg_record):
            rrdbg_record("/no/such/program")
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*rrdbg record /no/such/program failed: rrdbg: *"])
    assert "Traceback" not in result.stdout.str()


def test_a_kernel_through_the_fixtures(
    rrdbg_record: Callable[..., Recorded], rrdbg_gdb: Callable[..., Gdb]
) -> None:
    """machine="pc": a kernel's recording, its timer handler found backwards."""
    rec = rrdbg_record(guest("k_ticks"), machine="pc", ram_mb=4)
    assert rec.status == 1  # isa-debug-exit 0
    assert b"k_ticks: done" in rec.stdout
    gdb = rrdbg_gdb(rec)
    gdb.break_at("timer_irq")
    first = gdb.cont()
    assert first.reason == "breakpoint-hit" and first.func == "timer_irq"
    assert gdb.eval("ticks") == "0"
    gdb.delete()
    assert gdb.cont().reason == "no-history"  # just before isa-debug-exit
    gdb.break_at("timer_irq")
    last = gdb.reverse_cont()
    assert last.func == "timer_irq" and gdb.eval("ticks") in ("49", "50")


def test_gdb_finds_the_bundled_sources_from_any_directory(
    rrdbg_record: Callable[..., Recorded],
    rrdbg_gdb: Callable[..., Gdb],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The guests name their sources relative to the repository; gdb runs
    # elsewhere, and still shows the right file.
    rec = rrdbg_record(DEBUGME)
    monkeypatch.chdir(tmp_path)
    gdb = rrdbg_gdb(rec)
    gdb.break_at("bump")
    stop = gdb.cont()
    source = Path(__file__).parent / "guests" / "debugme.c"
    assert Path(stop.frame["fullname"]) == source.resolve()
    assert "counter += by" in gdb.console("list 25,25")


def test_a_failing_monitor_command_raises_in_the_mi_client(
    rrdbg_record: Callable[..., Recorded], rrdbg_gdb: Callable[..., Gdb]
) -> None:
    from rrdbg.gdbmi import GdbError

    gdb = rrdbg_gdb(rrdbg_record(DEBUGME))
    with pytest.raises(GdbError, match="beyond the end of history"):
        gdb.seek(99_999_999)
    assert gdb.when() == 0
