"""The CodeLLDB configuration of docs/ide.md, run with lldb itself.

CodeLLDB runs its ``targetCreateCommands`` and ``processCreateCommands`` in
lldb; here lldb (Debian's) runs the same commands against ``rrdbg replay
--gdb`` and debugs forward: a breakpoint, a variable, a single instruction.
What lldb needs from the server beyond what gdb does: ``qHostInfo`` and
``qProcessInfo`` (the triple), the auxiliary vector (its Linux loader finds
the executable's load address from AT_ENTRY), and thread ids with leading
zeros (``vCont;s:0001``).  Reverse execution from lldb needs LLVM 20's
client (``process continue --reverse``), which is checked when present.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable

import pytest

from rrdbg.pytest_plugin import Recorded
from tests.conftest import guest
from tests.ide.test_adapters import _workspace, configuration, served_at

LLDB = shutil.which("lldb")
pytestmark = pytest.mark.skipif(LLDB is None, reason="lldb is not installed")


def _lldb(commands: list[str]) -> str:
    assert LLDB is not None
    argv = [LLDB, "--no-lldbinit", "--batch"]
    for command in commands:
        argv += ["-o", command]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    return proc.stdout + proc.stderr


def _codelldb_session(recording: Recorded, commands: list[str]) -> str:
    """lldb running the CodeLLDB configuration's commands (pointed at a
    server for ``recording``), then ``commands``; its output."""
    cfg = configuration("CodeLLDB")
    (connect,) = cfg["processCreateCommands"]
    documented = connect.split()[-1]
    with served_at(recording, documented) as address:
        return _lldb(
            [_workspace(c) for c in cfg["targetCreateCommands"]]
            + [connect.replace(documented, address)]
            + commands
        )


def test_codelldb_configuration_debugs_forward(
    rrdbg_record: Callable[..., Recorded],
) -> None:
    cfg = configuration("CodeLLDB")
    assert (cfg["type"], cfg["request"], cfg["reverseDebugging"]) == ("lldb", "custom", True)
    out = _codelldb_session(
        rrdbg_record(guest("debugme")),
        [
            "breakpoint set -n bump",
            "continue",
            "frame variable by",
            "continue",
            "frame variable by",
            "thread step-inst",
            "register read eip",
        ],
    )
    assert "stop reason = breakpoint 1.1" in out, out
    assert re.findall(r"\(int\) by = (\d+)", out) == ["1", "2"], out
    assert re.search(r"eip = 0x[0-9a-f]+\s+debugme`bump \+ \d+", out), out
    assert "lost connection" not in out


def test_lldb_reverse_when_its_client_has_it(rrdbg_record: Callable[..., Recorded]) -> None:
    if "--reverse" not in _lldb(["help process continue"]):
        pytest.skip("this lldb has no reverse execution (LLVM 20 added it)")
    out = _codelldb_session(
        rrdbg_record(guest("debugme")),
        [
            "breakpoint set -n bump",
            "continue",
            "continue",
            "process continue --reverse",
            "frame variable by",
        ],
    )
    assert re.findall(r"\(int\) by = (\d+)", out) == ["1"], out
