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
import subprocess
import sys
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
    in the new program stops the child, reverse-stepi steps back in it;
    reverse-continue goes back over the exec (an exec event: gdb loads the
    program before again) and then to the child's fork (where its history
    begins); continue meets the exec again."""
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
            "bt 1",
            "reverse-continue",
            "monitor when",
            "continue",
            "bt 1",
        ],
    )
    assert re.search(r"\[Attaching after .*fork to child .*\]", out), out
    assert re.search(r"hit Catchpoint 1 \(exec'd .*procs\)", out), out
    assert re.search(r"^\* 2 +process (\d+) ", out, re.MULTILINE), out
    assert re.search(r"hit Breakpoint 2(\.\d+)?, (0x[0-9a-f]+ in )?exec_child", out), out
    pc = re.findall(r"^@pc (\S+)$", out, re.MULTILINE)
    back = re.findall(r"^@back (\S+)$", out, re.MULTILINE)
    assert pc and back and pc[0] != back[0], out
    # Back over the exec: an exec event naming the program before (gdb loads
    # it again) at its execve; on back to the fork, where the child's
    # history begins; forward again, the exec is met again.
    execs = re.findall(r"hit Catchpoint 1 \(exec'd \S*procs\)", out)
    assert len(execs) == 3, out
    assert re.search(r"^#0 .* in (__)?execve|^#0 .*_dl_sysinfo_int80", out, re.M), out
    assert "No more reverse-execution history." in out, out


def test_vfork_events(tmp_path: Path) -> None:
    """vfork: the parent's stop names the child (vfork), and when the child
    has exec'd, the parent is told (vforkdone) before it goes on."""
    directory = tmp_path / "vfork.rr"
    record_quietly(PROCS, ["vfork"], directory)
    out = _gdb(str(directory), ["catch vfork", "continue", "continue", "continue"])
    assert len(re.findall(r"Catchpoint 1 \(vforked process \d+\)", out)) == 2, out


@pytest.fixture(scope="module")
def fork_recording(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("procs") / "fork.rr"
    record_quietly(PROCS, ["fork"], directory)
    return str(directory)


def _line(text: str, after: str = "static void mode_fork(void)") -> int:
    """The line of procs.c that holds ``text``, the first after ``after``."""
    lines = Path(PROCS).parent.parent.joinpath("procs.c").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i in range(start, len(lines)) if text in lines[i]) + 1


#: gdb stopped at the parent's third fork (the first two children detached),
#: then holding the children it makes from there.
_AT_THE_THIRD_FORK_HELD = (
    f"break procs.c:{_line('pid_t c = fork();')}",
    "continue",
    "set detach-on-fork off",
)


def _hits(out: str) -> list[tuple[str, str]]:
    """(gdb thread, breakpoint number) of every breakpoint stop, in order."""
    return re.findall(r"Thread (\d\.\d) \"procs\" hit Breakpoint (\d)\.\d", out)


def test_detach_on_fork_off_holds_the_child(fork_recording: str) -> None:
    """With detach-on-fork off gdb keeps the child as inferior 2: a
    breakpoint in the child's code stops it (the child's own x), stepping
    goes back and forth in it, its end is reported as inferior 2's exit,
    and the parent (inferior 1) goes on to a breakpoint of its own."""
    out = _gdb(
        fork_recording,
        [
            "set detach-on-fork off",
            "set schedule-multiple on",
            f"break procs.c:{_line('_exit(x);')}",
            "continue",
            "info inferiors",
            'printf "@child x=%d\\n", x',
            "reverse-stepi",
            "stepi",
            "continue",
            "inferior 1",
            f"break procs.c:{_line('parent: x=')}",
            "continue",
            'printf "@parent x=%d\\n", x',
        ],
    )
    assert re.search(r"\[New inferior 2 \(process \d+\)\]", out), out
    assert re.search(r"Thread 2\.1 \"procs\" hit Breakpoint 1\.2, mode_fork", out), out
    assert re.search(r"^\* 2 +process \d+ ", out, re.MULTILINE), out
    assert "@child x=42" in out, out
    assert re.search(r"\[Inferior 2 \(process \d+\) exited with code 052\]", out), out
    assert re.search(r"Thread 1\.1 \"procs\" hit Breakpoint 2\.1, mode_fork", out), out
    assert "@parent x=41" in out, out


def test_reverse_continue_finds_the_last_hit_in_any_held_process(fork_recording: str) -> None:
    """Two processes held: reverse-continue from the child's breakpoint
    stops at the parent's (the last hit in either) and turns to the parent;
    going on backwards stops at the child's fork (its history, and so the
    session's while gdb holds it, begins there); forward again, the same
    stops, the child still gdb's inferior 2."""
    out = _gdb(
        fork_recording,
        [
            *_AT_THE_THIRD_FORK_HELD,
            "set schedule-multiple on",
            f"break procs.c:{_line('_exit(3);')}",
            f"break procs.c:{_line('close(pfd[1]);', after='WNOHANG before')}",
            "continue",
            "continue",
            "reverse-continue",
            'printf "@back in %d\\n", $_inferior',
            "reverse-continue",
            'printf "@at the fork in %d\\n", $_inferior',
            "continue",
            "continue",
            "continue",
        ],
    )
    hits = _hits(out)
    assert hits == [("1.1", "3"), ("2.1", "2"), ("1.1", "3"), ("1.1", "3"), ("2.1", "2")], out
    # (gdb resumes every process: the stop at the fork may name either.)
    assert "@back in 1" in out and "@at the fork in " in out, out
    assert "No more reverse-execution history." in out, out
    assert len(re.findall(r"\[New inferior", out)) == 1, out
    assert re.search(r"\[Inferior 2 \(process \d+\) exited with code 03\]", out), out


def test_a_live_write_in_a_child_replays_in_that_child(tmp_path: Path) -> None:
    """Live, following the child: at its ``_exit(42)`` the argument on the
    stack is made 7, which changes its exit status (the parent reports
    it); the saved recording makes the write again in the child, not in
    the first process."""
    saved = tmp_path / "live.rr"
    with rrdbg_server(["debug", "--gdb", LOCAL, "-o", str(saved), PROCS, "fork"]) as srv:
        out = gdb_batch(
            PROCS,
            [
                "set follow-fork-mode child",
                "break _exit",
                "continue",
                "set var *(int *)($esp + 4) = 7",
                "delete",
                "continue",
                "continue",
            ],
            port=srv.port,
            timeout=120,
        )
        status, stdout, _stderr = srv.stop()
    assert "first child: exited 7\nparent: x=41\n" in stdout.decode(), (out, stdout)
    assert status == 0, out
    replay = subprocess.run(
        [sys.executable, "-m", "rrdbg", "replay", str(saved)],
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert replay.stdout == stdout, replay.stderr
    assert replay.returncode == 0, replay.stderr


def test_going_back_stops_at_the_fork_of_a_held_child(fork_recording: str) -> None:
    """From the child's breakpoint, in inferior 1, reverse-continue stops at
    the fork that made the held child (the parent's breakpoint before it is
    out of reach while gdb holds the child); continue reaches the child's
    breakpoint again, and its end."""
    out = _gdb(
        fork_recording,
        [
            *_AT_THE_THIRD_FORK_HELD,
            "set schedule-multiple on",
            f"break procs.c:{_line('_exit(3);')}",
            "continue",
            "inferior 1",
            "reverse-continue",
            'printf "@back in %d\\n", $_inferior',
            "continue",
            "continue",
        ],
    )
    hits = _hits(out)
    assert hits == [("2.1", "2"), ("2.1", "2")], out
    assert "No more reverse-execution history." in out and "@back in " in out, out
    assert re.search(r"\[Inferior 2 \(process \d+\) exited with code 03\]", out), out


def test_held_processes_gdb_does_not_resume_run_on_unobserved(fork_recording: str) -> None:
    """gdb's default schedule-multiple off resumes only the current
    inferior.  A new child (never seen stopped) is watched all the same:
    gdb resumes the parent, which stops first, then the child stops at its
    breakpoint.  Once gdb has seen the child stop and resumes only the
    parent, the child runs on as recorded (one history) and its next
    breakpoint is not reported (gdb would take it for a thread that stayed
    where it stopped); one line says so."""
    out = _gdb(
        fork_recording,
        [
            *_AT_THE_THIRD_FORK_HELD,
            f"break procs.c:{_line('read(pfd[0], &ch, 1);')}",
            f"break procs.c:{_line('_exit(3);')}",
            f"break procs.c:{_line('third child', after='WNOHANG before')}",
            "continue",
            "continue",
            "inferior 1",
            "continue",
            'printf "@in %d\\n", $_inferior',
        ],
    )
    hits = _hits(out)
    assert hits == [("1.1", "4"), ("2.1", "2")], out
    assert "rrdbg: process" in out and "set schedule-multiple on" in out, out
    assert "@in 1" in out, out
