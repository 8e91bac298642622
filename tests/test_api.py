"""The public Python API (``import rrdbg``): record, open, move both ways,
read state, run to breakpoints and watchpoints, find the last write.

debugme: main calls bump(i) then square(i) for i = 1..5; ``counter`` (written
only by bump) goes 0, 1, 3, 6, 10, 15; the exit status is 7.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import rrdbg
from tests.conftest import guest

DEBUGME = guest("debugme")


@pytest.fixture(scope="module")
def debugme(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("api") / "debugme.rr"
    fd = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(fd, 1)
    try:
        result = rrdbg.record_program(DEBUGME, output=directory)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(fd)
    assert (result.directory, result.status) == (directory, 7)
    assert result.icount > 30_000
    return directory


@pytest.fixture
def r(debugme: Path) -> Iterator[rrdbg.Recording]:
    with rrdbg.Recording(debugme) as recording:
        yield recording


def test_public_names() -> None:
    assert set(rrdbg.__all__) >= {
        "Recording",
        "Stop",
        "Write",
        "record_program",
        "RrdbgError",
        "Gdb",
    }
    with pytest.raises(AttributeError):
        rrdbg.no_such_name  # noqa: B018


def test_stepping_both_ways_returns_to_the_same_state(r: rrdbg.Recording) -> None:
    r.seek(20_000)
    before = r.registers()
    stop = r.step(7)
    assert (stop.kind, stop.icount) == ("step", 20_007)
    assert r.registers() != before
    stop = r.step_back(7)
    assert (stop.kind, r.icount) == ("step", 20_000)
    assert r.registers() == before
    one = r.step_once()
    assert one.icount == 20_001 and one.pc == r.pc


def test_run_to_and_back_with_breakpoints(r: rrdbg.Recording) -> None:
    bump = r.symbol("bump")
    stop = r.run_to("bump")
    assert (stop.kind, stop.pc, stop.function) == ("breakpoint", bump, "bump")
    assert r.read_int(r.symbol("counter")) == 0
    r.add_breakpoint("square")
    r.add_breakpoint("bump")
    hits = []
    while (stop := r.cont()).kind == "breakpoint":
        hits.append(stop.function)
    assert hits == ["square", *["bump", "square"] * 4]
    assert stop.kind == "history-end" and r.icount == r.end
    assert r.read_int(r.symbol("counter")) == 15
    stop = r.reverse_cont()
    assert (stop.kind, stop.function) == ("breakpoint", "square")
    stop = r.run_to("bump", "backward")  # only that breakpoint
    assert stop.function == "bump" and r.read_int(r.symbol("counter")) == 10
    r.clear()
    assert r.reverse_cont().kind == "history-begin" and r.icount == 0


def test_watchpoints_and_last_write(r: rrdbg.Recording) -> None:
    counter = r.symbol("counter")
    r.seek(r.end)
    write = r.last_write("counter")
    assert write is not None
    assert write.function.startswith("bump+") and write.how == ""
    assert r.icount == r.end  # last_write does not move
    r.add_watchpoint(counter, 4)
    stop = r.reverse_cont()
    assert (stop.kind, stop.address) == ("watchpoint", counter)
    assert stop.icount == write.icount  # backwards: at the writing instruction
    assert r.read_int(counter) == 10  # before the write
    r.step_once()
    assert r.read_int(counter) == 15
    # A buffer the kernel filled: the write is the system call's.
    r.seek(r.end)
    assert r.last_write(r.symbol("history"), 64) is not None


def test_bad_requests_are_rrdbg_errors(r: rrdbg.Recording) -> None:
    with pytest.raises(rrdbg.RrdbgError, match="outside the recording"):
        r.seek(r.end + 1)
    with pytest.raises(rrdbg.RrdbgError, match="no symbol"):
        r.symbol("no_such_function")
    with pytest.raises(rrdbg.RrdbgError, match="no register"):
        r.register("r15")
    with pytest.raises(rrdbg.RrdbgError):
        r.read_memory(0, 4)
    with pytest.raises(rrdbg.RrdbgError):
        r.step(0)
    with pytest.raises(rrdbg.RrdbgError):
        rrdbg.Recording(Path(DEBUGME).parent / "no-such.rr")


def test_a_kernel_recording(tmp_path: Path) -> None:
    """The same API on a PC recording: the last timer interrupt, backwards."""
    source = tmp_path / "none"
    source.write_bytes(b"")
    fd = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(fd, 1)
    try:
        result = rrdbg.record_program(
            guest("k_ticks"), output=tmp_path / "k.rr", machine="pc", stdin=source
        )
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(fd)
    assert result.status == 1
    with rrdbg.Recording(result.directory) as k:
        k.seek(k.end)
        stop = k.run_to("timer_irq", "backward")
        assert stop.function == "timer_irq"
        ticks = k.read_int(k.symbol("ticks"))
        assert ticks in (49, 50)


def test_the_documented_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """docs/python-api.md's first example, run as written (from a directory
    where tests/guests/bin/debugme resolves)."""
    import re

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "python-api.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert code is not None
    (tmp_path / "tests").symlink_to(root / "tests")
    monkeypatch.chdir(tmp_path)
    exec(compile(code.group(1), "python-api.md", "exec"), {})
    out = capfd.readouterr().out.splitlines()
    assert out[0] == "total=55 counter=15"  # the guest's own output
    assert out[1].startswith("7 ")
    assert out[-3:] == ["10", "15", "square 4"]


def test_steps_past_either_end_stop_there(r: rrdbg.Recording) -> None:
    r.seek(r.end - 2)
    stop = r.step(1_000_000)
    assert (stop.kind, r.icount) == ("history-end", r.end)
    r.seek(5)
    stop = r.step_back(1_000_000)
    assert (stop.kind, r.icount) == ("history-begin", 0)


@pytest.mark.parametrize("direction", ["forwards", "fwd", "backward ", "BACKWARD", "back"])
def test_a_direction_typo_is_a_value_error_naming_the_choices(
    r: rrdbg.Recording, direction: str
) -> None:
    before = r.icount
    with pytest.raises(ValueError, match="'forward', 'backward'"):
        r.run_to("bump", direction=direction)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'forward', 'backward'"):
        r.step_once(direction)  # type: ignore[arg-type]
    assert r.icount == before  # nothing ran


def test_a_watch_kind_typo_is_a_value_error(r: rrdbg.Recording) -> None:
    with pytest.raises(ValueError, match="'write', 'read', 'access'"):
        r.add_watchpoint("counter", kind="writes")  # type: ignore[arg-type]


def test_stops_and_writes_name_the_source_line(r: rrdbg.Recording) -> None:
    source = Path(__file__).parent / "guests" / "debugme.c"
    lines = source.read_text().splitlines()
    stop = r.run_to(r.symbol("bump") + 3)  # past the prologue
    assert stop.file == "tests/guests/debugme.c"
    assert stop.line is not None and "counter += by" in lines[stop.line - 1]
    assert stop.where == f"tests/guests/debugme.c:{stop.line}"
    r.seek(r.end)
    write = r.last_write("counter")
    assert write is not None and write.file == "tests/guests/debugme.c"
    assert write.line is not None and "counter += by" in lines[write.line - 1]
    # Code without debug information (static glibc) has no line.
    r.seek(0)
    assert r.step_once().file is None


def test_recording_over_an_existing_one_names_the_api_argument(
    debugme: Path, tmp_path: Path
) -> None:
    with pytest.raises(rrdbg.RrdbgError, match=r"pass force=True to replace it") as info:
        rrdbg.record_program(DEBUGME, output=debugme)
    assert "--force" not in str(info.value)


@pytest.mark.parametrize("counter", ["native", "python"])
def test_a_watchpoint_names_the_sse_store_unicorn_shows_with_a_stale_eip(
    counter: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # hotwatch's sse_stores: pxor; nop; movq -> the pair (+5); pcmpeqd (+13);
    # movd -> counter; nop; movq -> the pair (+26); ret (+34).  Unicorn runs
    # movq's memory hook with EIP at the block's start.
    if counter == "python":
        monkeypatch.setenv("RRDBG_ICOUNT", "python")
    directory = tmp_path / "sse.rr"
    fd = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(fd, 1)
    try:
        rrdbg.record_program(guest("hotwatch"), "10", "sse", output=directory)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(fd)
    with rrdbg.Recording(directory) as rec:
        inner = rec.symbol("g_pair") + 4
        rec.run_to("exit")
        rec.add_watchpoint(inner, 4, "write")
        back = [rec.reverse_cont().function for _ in range(2)]
        forward = [rec.cont().function for _ in range(2)]
        write = rec.last_write(inner, 4)
    assert back == ["sse_stores+26", "sse_stores+5"]
    assert forward == ["sse_stores+13", "sse_stores+34"]
    assert write is not None and write.function == "sse_stores+26"
