"""The IDE configurations of docs/ide.md, exercised as their adapters run them.

Each JSON block in docs/ide.md that names an rrdbg configuration is read
here; gdb is started as that adapter starts it (the configured program and
setup commands, ``-target-select remote`` to the configured address), and
the MI commands the adapter sends for its buttons or console are sent, with
checks on the ``*stopped`` records (reason, frame, the end of history).

debugme: main calls bump(i) then square(i) for i = 1..5; bump adds to
``counter`` at line 25 (0, 1, 3, 6, 10, 15).
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rrdbg.gdbmi import Gdb, parse_when, quote
from rrdbg.pytest_plugin import Recorded
from rrdbg.server.launch import start_server
from tests.conftest import guest
from tests.server.gdbrun import needs_gdb

pytestmark = needs_gdb
ROOT = Path(__file__).resolve().parents[2]
IDE_DOC = ROOT / "docs" / "ide.md"


def configuration(name: str) -> dict[str, Any]:
    """The JSON configuration in docs/ide.md whose name contains ``name``."""
    blocks = re.findall(r"```json\n(.*?)```", IDE_DOC.read_text(), re.DOTALL)
    for block in blocks:
        cfg: dict[str, Any] = json.loads(block)
        if name in cfg.get("name", ""):
            return cfg
    raise AssertionError(f"no configuration named {name!r} in {IDE_DOC}")


def _workspace(value: str) -> str:
    return value.replace("${workspaceFolder}", str(ROOT))


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def served_at(recording: Recorded, address: str) -> Iterator[str]:
    """``rrdbg replay --gdb`` at the configured address (another free port if
    that one is taken on this machine); the address gdb must use."""
    host, port = address.rsplit(":", 1)
    listen = address if _free(int(port)) else f"{host}:0"
    proc, actual = start_server(["replay", "--quiet", "--gdb", listen, str(recording.directory)])
    assert proc.stderr is not None
    try:
        yield f"{host}:{actual}"
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()


@pytest.fixture
def debugme(rrdbg_record: Callable[..., Recorded]) -> Recorded:
    return rrdbg_record(guest("debugme"))


def _line_of(stop: Any) -> tuple[str, int | None]:
    return stop.func, stop.line


def test_native_debug_attach_and_reverse_buttons(debugme: Recorded) -> None:
    cfg = configuration("Native Debug")
    assert (cfg["type"], cfg["request"], cfg["remote"]) == ("gdb", "attach", True)
    with served_at(debugme, cfg["target"]) as address, Gdb(_workspace(cfg["executable"])) as gdb:
        gdb.command(f"-target-select remote {address}")
        gdb.command("-break-insert -f debugme.c:25")  # a click in the gutter
        for _ in range(3):
            stop = gdb.resume("-exec-continue")
        assert (stop.reason, *_line_of(stop)) == ("breakpoint-hit", "bump", 25)
        assert gdb.eval("by") == "3"
        # Reverse: the previous hit.
        stop = gdb.resume("-exec-continue --reverse")
        assert (stop.reason, *_line_of(stop)) == ("breakpoint-hit", "bump", 25)
        assert (gdb.eval("by"), gdb.eval("counter")) == ("2", "1")
        # Step Back from bump's first line: back into main, at the call.
        gdb.command("-break-delete 1")
        stop = gdb.resume("-exec-step --reverse")
        assert (stop.reason, *_line_of(stop)) == ("end-stepping-range", "main", 42)
        assert gdb.eval("i") == "2"
        # Reverse at the start of history.
        stop = gdb.resume("-exec-continue --reverse")
        assert stop.reason == "no-history"
        assert stop.func == "_start"
        stop = gdb.resume("-exec-step --reverse")
        assert stop.reason == "no-history"


def test_the_reverse_mi_commands_adapters_send(debugme: Recorded) -> None:
    """-exec-next/-exec-step-instruction/-exec-finish with --reverse, and
    -data-evaluate-expression, through the Native Debug configuration."""
    cfg = configuration("Native Debug")
    with served_at(debugme, cfg["target"]) as address, Gdb(_workspace(cfg["executable"])) as gdb:
        gdb.command(f"-target-select remote {address}")
        gdb.command("-break-insert square")
        gdb.resume("-exec-continue")
        stop = gdb.resume("-exec-continue")  # square(2)
        assert (stop.reason, stop.func, gdb.eval("x")) == ("breakpoint-hit", "square", "2")
        # reverse-finish: back to the call in main, before square(2) ran.
        stop = gdb.resume("-exec-finish --reverse")
        assert stop.func == "main"
        assert stop.reason in ("end-stepping-range", "function-finished")
        line = stop.line
        assert line == 43
        assert gdb.eval("total") == "1"  # square(1) only
        # reverse-next: to the start of line 43, then over line 42, where
        # bump(2) runs backwards as one step.
        stop = gdb.resume("-exec-next --reverse")
        assert (stop.reason, *_line_of(stop)) == ("end-stepping-range", "main", 43)
        assert gdb.eval("counter") == "3"
        stop = gdb.resume("-exec-next --reverse")
        assert (stop.reason, *_line_of(stop)) == ("end-stepping-range", "main", 42)
        counter = gdb.eval("counter")
        assert counter == "1"
        pc = stop.pc
        stop = gdb.resume("-exec-step-instruction --reverse")
        assert stop.reason == "end-stepping-range" and stop.pc != pc
        stop = gdb.resume("-exec-step-instruction")
        assert stop.pc == pc and gdb.eval("counter") == counter
        # An expression the Watch view might show.
        assert gdb.eval("counter * 2 + total") == str(int(counter) * 2 + 1)


def test_cppdbg_server_address_and_console_reverse(debugme: Recorded, tmp_path: Path) -> None:
    cfg = configuration("C/C++")
    assert (cfg["type"], cfg["MIMode"]) == ("cppdbg", "gdb")
    gdb_path = cfg.get("miDebuggerPath", "gdb")
    with (
        served_at(debugme, cfg["miDebuggerServerAddress"]) as address,
        # The session's cwd is not the repository: sources are still found.
        Gdb(_workspace(cfg["program"]), gdb=gdb_path, cwd=str(tmp_path)) as gdb,
    ):
        for setup in cfg["setupCommands"]:
            try:
                gdb.command(_workspace(setup["text"]))
            except Exception:
                if not setup.get("ignoreFailures"):
                    raise
        gdb.command(f"-target-select remote {address}")
        gdb.command("-break-insert bump")
        for _ in range(4):
            stop = gdb.resume("-exec-continue")
        assert (stop.func, gdb.eval("by")) == ("bump", "4")
        assert Path(stop.frame["fullname"]) == ROOT / "tests" / "guests" / "debugme.c"

        # Debug Console lines "-exec <command>", as the adapter forwards them.
        def console(command: str) -> Any:
            return gdb.resume(f"-interpreter-exec console {quote(command)}")

        stop = console("reverse-continue")
        assert (stop.reason, stop.func, gdb.eval("by")) == ("breakpoint-hit", "bump", "3")
        at_break = parse_when(gdb.monitor("when"))
        stop = console("reverse-stepi")
        assert (stop.reason, stop.func) == ("end-stepping-range", "bump")
        assert parse_when(gdb.monitor("when")) == at_break - 1
        stop = console("reverse-finish")
        assert stop.func == "main" and stop.line == 42
        stop = console("reverse-next")  # to the start of line 42
        assert (stop.reason, *_line_of(stop)) == ("end-stepping-range", "main", 42)
        stop = console("reverse-next")  # back over the loop's i++ (line 41)
        assert (stop.reason, *_line_of(stop)) == ("end-stepping-range", "main", 41)
        assert (gdb.eval("i"), gdb.eval("counter")) == ("2", "3")
        gdb.console("delete")
        stop = console("reverse-continue")
        assert stop.reason == "no-history"
        assert parse_when(gdb.monitor("when")) == 0
