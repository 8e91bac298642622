"""Processes with real gdb 13: fork, vfork and exec events (``catch fork``,
``catch exec``), the default of following the parent (the child detached
and run on unobserved, breakpoints in the parent's address space only) and
``set follow-fork-mode child`` (gdb turns to the child, follows it through
its exec into a new program, steps backwards in it; its history begins at
its fork).

The program: tests/guests/procs.c, whose ``exec`` mode forks a child that
execs the same program (``/proc/self/exe``) with other arguments, and whose
``vfork`` mode does the same after vfork.  (A shell pipeline of Debian's
programs is in tests/test_corpus_gdb.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import guest, record_quietly
from tests.server.gdbrun import gdb_batch, needs_gdb, rrdbg_server

pytestmark = needs_gdb
PROCS = guest("procs")
LOCAL = "127.0.0.1:0"


@pytest.fixture(scope="module")
def exec_recording(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("procs") / "exec.rr"
    record_quietly(PROCS, ["exec"], directory)
    return str(directory)


def _gdb(directory: str, commands: list[str]) -> str:
    with rrdbg_server(["replay", "--gdb", LOCAL, "--once", directory]) as srv:
        out = gdb_batch(PROCS, commands, port=srv.port, timeout=120)
        srv.stop()
    return out


def test_fork_and_exec_events_with_the_parent_followed(exec_recording: str) -> None:
    """catch fork stops the parent at its fork, naming the child; gdb
    detaches the child, which execs unobserved (no exec stop: it is not
    followed); a breakpoint in exec_child (the same address in the child)
    does not stop; the parent goes on to its end."""
    out = _gdb(
        exec_recording,
        [
            "catch fork",
            "catch exec",
            "break exec_child",
            "continue",
            "info inferiors",
            "continue",
        ],
    )
    assert re.search(r"Catchpoint 1 \(forked process (\d+)\)", out), out
    assert re.search(r"\[Detaching after fork from child process \d+\]", out), out
    assert "exec'd" not in out and "Breakpoint 3," not in out, out
    assert "No more reverse-execution history." in out, out


def test_follow_fork_mode_child_through_an_exec_and_back(exec_recording: str) -> None:
    """gdb follows the child: the exec stop names the program, a breakpoint
    in the new program stops the child, reverse-stepi steps back in it, and
    reverse-continue ends at the child's fork (where its history begins)."""
    out = _gdb(
        exec_recording,
        [
            "set follow-fork-mode child",
            "catch exec",
            "continue",
            "info inferiors",
            "break exec_child",
            "continue",
            "info threads",
            'printf "@pc %#x\\n", $pc',
            "reverse-stepi",
            'printf "@back %#x\\n", $pc',
            "reverse-continue",
            "monitor when",
        ],
    )
    assert re.search(r"\[Attaching after .*fork to child .*\]", out), out
    assert re.search(r"hit Catchpoint 1 \(exec'd .*procs\)", out), out
    assert re.search(r"^\* 2 +process (\d+) ", out, re.MULTILINE), out
    assert re.search(r"hit Breakpoint 2(\.\d+)?, (0x[0-9a-f]+ in )?exec_child", out), out
    pc = re.findall(r"^@pc (\S+)$", out, re.MULTILINE)
    back = re.findall(r"^@back (\S+)$", out, re.MULTILINE)
    assert pc and back and pc[0] != back[0], out
    assert "No more reverse-execution history." in out, out


def test_vfork_events(tmp_path: Path) -> None:
    """vfork: the parent's stop names the child (vfork), and when the child
    has exec'd, the parent is told (vforkdone) before it goes on."""
    directory = tmp_path / "vfork.rr"
    record_quietly(PROCS, ["vfork"], directory)
    out = _gdb(str(directory), ["catch vfork", "continue", "continue", "continue"])
    assert len(re.findall(r"Catchpoint 1 \(vforked process \d+\)", out)) == 2, out
