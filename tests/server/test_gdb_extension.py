"""rrdbg's gdb commands (rrdbg/gdb_extension.py) in real gdb 13, and gdb's own
``record`` on an rrdbg target."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rrdbg.machine.loader import Symbols, read_program
from tests.conftest import guest, record_quietly
from tests.server.gdbrun import GDB, gdb_batch, needs_gdb, rrdbg_server

pytestmark = needs_gdb
DEBUGME = guest("debugme")
LOCAL = "127.0.0.1:0"
EXTENSION = str(Path(__file__).parents[2] / "rrdbg" / "gdb_extension.py")
SYMS = Symbols.read(read_program(DEBUGME))


@pytest.fixture
def recording(tmp_path: Path) -> str:
    directory = tmp_path / "debugme.rr"
    record_quietly(DEBUGME, [], directory)
    return str(directory)


def _icounts(out: str) -> list[int]:
    return [int(v) for v in re.findall(r"^Current icount: (\d+)$", out, re.MULTILINE)]


def _session(recording: str, commands: list[str]) -> str:
    with rrdbg_server(["replay", "--gdb", LOCAL, "--once", recording]) as srv:
        out = gdb_batch(DEBUGME, [f"source {EXTENSION}", *commands], port=srv.port)
        srv.stop()
    return out


def test_when_seek_checkpoint_restart_and_info(recording: str) -> None:
    out = _session(
        recording,
        [
            "break bump",
            "continue",
            "continue",
            "when",
            "checkpoint second-bump",
            "continue",
            "info checkpoints",
            "restart second-bump",
            'printf "@by %d @pc %#x\\n", by, $pc',
            "seek 1000",
            'printf "@pc %#x\\n", $pc',
            "seek second-bump",
            "when",
            "info rrdbg",
        ],
    )
    at_second, *rest = _icounts(out)
    assert "checkpoint 'second-bump' at icount" in out
    # rrdbg's checkpoints, not gdb's "No checkpoints."
    assert re.search(r"^\s+-\s+second-bump\s+icount " + str(at_second), out, re.MULTILINE)
    assert "No checkpoints." not in out
    # restart: back at the second hit, and gdb shows that state (no stale cache).
    bp = re.search(r"Breakpoint 1 at (0x[0-9a-f]+)", out)
    assert bp is not None
    assert f"@by 2 @pc {bp.group(1)}" in out
    assert rest[0] == at_second  # restart says where it went
    assert 1000 in rest and rest[-2:] == [at_second, at_second]
    seek_pc = re.search(r"^@pc (0x[0-9a-f]+)$", out, re.MULTILINE)
    assert seek_pc and seek_pc.group(1) != bp.group(1)
    assert f"rrdbg 0.1.0: replay of {recording}" in out
    assert "Protocol error" not in out


def test_last_write_evaluates_gdb_expressions(recording: str) -> None:
    out = _session(
        recording,
        [
            "break square",
            "continue",
            "continue",
            "last-write counter",
            "last-write history[1]",
            "last-write history[2]",
            "last-write &counter 4",
            "monitor last-write counter",
            "last-write no_such_thing",
        ],
    )
    counter = SYMS.lookup("counter")
    assert counter is not None
    lines = re.findall(
        r"^last write to (0x[0-9a-f]+)\+(\d+) .*: icount \d+, pc \S+ <bump\+\d+>$", out, re.M
    )
    assert (f"{counter[0]:#x}", "4") in lines  # gdb gave address and size of counter
    history = SYMS.lookup("history")
    assert history is not None
    assert (f"{history[0] + 4:#x}", "4") in lines  # history[1], written by bump(1)
    assert f"no write to {history[0] + 8:#x}+4 before icount" in out  # history[2]
    assert lines.count((f"{counter[0]:#x}", "4")) == 3  # the symbol in a monitor argument too
    assert re.search(r"^  at tests/guests/debugme.c:2[56]$", out, re.MULTILINE)
    assert 'No symbol "no_such_thing" in current context.' in out


def test_monitor_errors_are_console_text_and_extension_errors_are_gdb_errors(
    recording: str,
) -> None:
    out = _session(recording, ["monitor frobnicate", "seek 99999999", 'printf "@alive\\n"'])
    assert "rrdbg: error: unknown or malformed monitor command 'frobnicate'" in out
    assert "Protocol error" not in out
    assert re.search(r"^icount 99999999 is beyond the end of history \(\d+\)$", out, re.M)
    assert "@alive" in out


@pytest.mark.parametrize("with_extension", [False, True])
def test_gdbs_record_command_does_not_crash_gdb(recording: str, with_extension: bool) -> None:
    commands = ["record", "stepi", 'printf "@alive\\n"']
    if with_extension:
        out = _session(recording, commands)
        assert "rrdbg records already" in out
        assert "Process record" not in out
    else:
        with rrdbg_server(["replay", "--gdb", LOCAL, "--once", recording]) as srv:
            out = gdb_batch(DEBUGME, commands, port=srv.port)
            srv.stop()
    assert "internal-error" not in out and "@alive" in out, out


def test_rrdbg_gdb_opens_the_latest_recording(tmp_path: Path) -> None:
    assert GDB is not None
    env_dir = tmp_path / "state"
    env = {"RRDBG_STATE_DIR": str(env_dir), "PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    run = subprocess.run(
        [sys.executable, "-m", "rrdbg", "record", DEBUGME],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 7, run.stderr
    out = subprocess.run(
        [sys.executable, "-m", "rrdbg", "gdb", "--end", "--", "-batch", "-ex", "when", "-ex", "bt"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    text = out.stdout + out.stderr
    *_, end = _icounts(text)  # the seek to the end says it, then `when`
    assert end > 10000
    assert re.search(r"#\d+ +0x[0-9a-f]+ in _exit \(\)", text), text  # just before the exit
