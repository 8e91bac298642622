"""Reverse execution with real gdb 13 against rrdbg: replays of debugme and live sessions.

The shape follows QEMU's reverse-debugging acceptance test (10 stepi, 10
reverse-stepi, 10 stepi again, then reverse-continue to breakpoints), plus what
QEMU does not test: the start of history ("No more reverse-execution
history."), reverse watchpoints (x86: the stop is at the accessing
instruction, before the access), source-level reverse stepping, breakpoints at
the current position, at several hits in one interval and at a snapshot
boundary, ``set exec-direction reverse``, and reverse execution in a live
session.

debugme's main calls bump(i) then square(i) for i = 1..5; ``counter`` (written
only by bump) goes 0, 1, 3, 6, 10, 15.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from rrdbg.record.recording import RecordStats, record
from tests.conftest import guest
from tests.server.gdbrun import gdb_batch, needs_gdb, rrdbg_server

pytestmark = needs_gdb
DEBUGME = guest("debugme")
LOCAL = "127.0.0.1:0"
NO_HISTORY = "No more reverse-execution history."
SOURCE = r"\S*debugme\.c"
OUTPUT = b"total=55 counter=15\n"


# -- recordings ---------------------------------------------------------------


@contextmanager
def _stdout_to_devnull() -> Iterator[None]:
    """The recorded guest writes to fd 1: keep it out of pytest's output."""
    fd = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(fd, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(fd)


def _record(directory: Path, interval: int | None = None) -> RecordStats:
    with _stdout_to_devnull():
        return record(DEBUGME, [], str(directory), interval=interval, environ={})


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("rec") / "debugme.rr"
    _record(directory)
    return str(directory)


# -- running gdb ----------------------------------------------------------------


def _replay(directory: str, commands: Sequence[str], *, timeout: float = 60) -> tuple[str, bytes]:
    """gdb's output for ``commands`` against ``rrdbg replay DIR``; and the
    server's stdout (the guest's output)."""
    with rrdbg_server(["replay", "--gdb", LOCAL, "--once", directory]) as srv:
        out = gdb_batch(DEBUGME, commands, port=srv.port, timeout=timeout)
        _status, stdout, _err = srv.stop()
    return out, stdout


def _pc(tag: str) -> str:
    """A gdb command printing ``@TAG 0x...`` (the pc) on a line of its own."""
    return f'printf "@{tag} %#x\\n", $pc'


def _val(tag: str, expr: str) -> str:
    """A gdb command printing ``@TAG N`` (an int expression) on a line of its own."""
    return f'printf "@{tag} %d\\n", {expr}'


def _tagged(out: str, tag: str) -> list[int]:
    return [int(v, 0) for v in re.findall(rf"^@{tag} (\S+)$", out, re.MULTILINE)]


def _when(out: str) -> list[int]:
    """The answers of ``monitor when`` (lines holding only a number), in order.

    gdb writes them to stderr: their order among themselves is kept, not
    their place in the rest of the output."""
    return [int(v) for v in re.findall(r"^Current icount: (\d+)$", out, re.MULTILINE)]


def _breakpoint_stops(out: str) -> list[tuple[int, str, int]]:
    """(breakpoint number, function, value of its argument) of every
    "Breakpoint N, f (arg=V) at ..." line (functions of one int argument:
    bump and square, not main)."""
    return [
        (int(n), func, int(value))
        for n, func, value in re.findall(
            r"^Breakpoint (\d+), (?:0x[0-9a-f]+ in )?(\w+) \(\w+=(\d+)\)", out, re.MULTILINE
        )
    ]


def _entry_point(program: str) -> int:
    """e_entry of an ELF32 executable."""
    with open(program, "rb") as f:
        header = f.read(28)
    assert header[:5] == b"\x7fELF\x01"
    return int.from_bytes(header[24:28], "little")


# -- 1. QEMU's acceptance test ------------------------------------------------


def test_stepi_reverse_stepi_and_stepi_again_visit_the_same_pcs(recording: str) -> None:
    steps = 10
    cmds = ["break main", "continue", "delete", "monitor when"]
    for k in range(steps):
        cmds += [f"set $p{k} = $pc", _pc("fwd"), "stepi"]
    cmds += [_pc("top"), "monitor when"]
    for _ in range(steps):
        cmds += ["reverse-stepi", _pc("back"), "monitor when"]
    for _ in range(steps):
        cmds += [_pc("again"), "stepi"]
    cmds += [_pc("top"), "monitor when"]
    # QEMU's second half: run to the end, break on the ten addresses, and
    # reverse-continue.  Unlike QEMU's BIOS code, these ten instructions
    # include the loop test (i <= 5) and the loop body's first instruction,
    # which run again later: the last of them to run before the end is the
    # loop test's jle at i == 6 (the 9th address), then the cmpl before it
    # (8th), then the loop body's first push at i == 5 (10th).
    cmds += ["continue", *(f"break *$p{k}" for k in range(steps))]
    for _ in range(3):
        cmds += ["reverse-continue", _pc("rc"), _val("i", "i")]
    out, _ = _replay(recording, cmds)

    fwd = _tagged(out, "fwd")
    assert len(fwd) == steps
    assert len(set(fwd)) == steps  # ten different instructions
    top = _tagged(out, "top")
    assert top[0] == top[1]
    assert top[0] not in fwd  # the call into bump(1) was the 10th step
    assert _tagged(out, "back") == fwd[::-1]
    assert _tagged(out, "again") == fwd
    when = _when(out)
    start = when[0]
    # +1 per stepi, -1 per reverse-stepi
    assert when == [start, start + steps, *range(start + steps - 1, start - 1, -1), start + steps]
    assert "Breakpoint 1, main (argc=1, argv=0x" in out
    assert out.count(NO_HISTORY) == 1  # the forward run to the end

    assert _tagged(out, "rc") == [fwd[8], fwd[7], fwd[9]]
    assert _tagged(out, "i") == [6, 6, 5]


def test_reverse_continue_stops_at_the_last_breakpoint_hit_before_now(recording: str) -> None:
    out, _ = _replay(
        recording,
        [
            "break bump",
            "break square",
            *["continue"] * 5,  # bump(1) square(1) bump(2) square(2) bump(3)
            _val("counter", "counter"),
            "reverse-continue",
            "bt",
            _val("counter", "counter"),
            "reverse-continue",
            "bt",
            _val("by", "by"),
            _val("counter", "counter"),
            "continue",
            "continue",
            _val("by", "by"),
        ],
    )
    assert _breakpoint_stops(out) == [
        (1, "bump", 1),
        (2, "square", 1),
        (1, "bump", 2),
        (2, "square", 2),
        (1, "bump", 3),
        # reverse-continue, twice
        (2, "square", 2),
        (1, "bump", 2),
        # forward again
        (2, "square", 2),
        (1, "bump", 3),
    ]
    assert _tagged(out, "counter") == [3, 3, 1]
    assert _tagged(out, "by") == [2, 3]
    assert re.search(
        rf"^#0  square \(x=2\) at {SOURCE}:19\n#1  0x[0-9a-f]+ in main \(argc=1, argv=0x[0-9a-f]+\)"
        rf" at {SOURCE}:43$",
        out,
        re.MULTILINE,
    )
    assert re.search(
        rf"^#0  bump \(by=2\) at {SOURCE}:25\n#1  0x[0-9a-f]+ in main \(argc=1, argv=0x[0-9a-f]+\)"
        rf" at {SOURCE}:42$",
        out,
        re.MULTILINE,
    )


# -- 2. the start of history ----------------------------------------------------


def test_reverse_continue_without_breakpoints_runs_back_to_the_entry_point(
    recording: str,
) -> None:
    out, stdout = _replay(
        recording,
        [
            "continue",
            "monitor when",
            "reverse-continue",
            _pc("pc"),
            "info symbol $pc",
            "monitor when",
            "reverse-stepi",
            _pc("pc"),
            "monitor when",
            "stepi",
            "monitor when",
            "reverse-stepi",
            "monitor when",
            "continue",
            "monitor when",
        ],
    )
    entry = _entry_point(DEBUGME)
    end, *rest = _when(out)
    assert end > 0
    assert rest == [0, 0, 1, 0, end]
    assert _tagged(out, "pc") == [entry, entry]
    assert "_start in section .text" in out
    # The forward run to the end, reverse-continue, reverse-stepi at 0, the
    # second forward run.
    assert out.count(NO_HISTORY) == 4
    assert f"\n{NO_HISTORY}\n{entry:#010x} in _start ()\n" in out
    assert f"{entry + 2:#010x} in _start ()\n{entry:#010x} in _start ()\n" in out
    # Two forward passes over the write: the guest's output, once.
    assert stdout == OUTPUT


# -- 3. reverse watchpoints ---------------------------------------------------------


def test_reverse_watch_stops_at_each_write_before_it_happens(recording: str) -> None:
    out, _ = _replay(
        recording,
        [
            "continue",  # to the end
            'printf "@counter %#x\\n", &counter',
            "watch counter",
            "reverse-continue",
            _val("now", "counter"),
            "x/i $pc",
            *["reverse-continue"] * 5,
            _val("now", "counter"),
            "continue",
            _val("now", "counter"),
        ],
    )
    (counter,) = _tagged(out, "counter")
    writes = re.findall(
        r"^Hardware watchpoint 1: counter\n\nOld value = (\d+)\nNew value = (\d+)\n"
        rf"(?:0x[0-9a-f]+ in )?bump \(by=(\d)\) at {SOURCE}:(\d+)\n",
        out,
        re.MULTILINE,
    )
    assert [tuple(map(int, w)) for w in writes] == [
        # backwards: at the writing instruction, the value before the write
        (15, 10, 5, 25),
        (10, 6, 4, 25),
        (6, 3, 3, 25),
        (3, 1, 2, 25),
        (1, 0, 1, 25),
        # forwards again: just after the write
        (0, 1, 1, 26),
    ]
    assert re.search(
        rf"^Old value = 15\nNew value = 10\n0x[0-9a-f]+ in bump \(by=5\) at {SOURCE}:25\n"
        r"25\t    counter \+= by;\n",
        out,
        re.MULTILINE,
    )
    # The state is the one before the store, and the pc is at the store.
    assert re.search(rf"^=> 0x[0-9a-f]+ <bump\+\d+>:\tmov +%eax,{counter:#x}$", out, re.MULTILINE)
    assert _tagged(out, "now") == [10, 0, 1]
    # The forward run to the end, and the sixth reverse-continue (from
    # bump(1)'s write: no earlier write).
    assert out.count(NO_HISTORY) == 2


def test_reverse_watch_from_just_after_a_forward_watch_stop(recording: str) -> None:
    # The forward stop is just after the write; reverse-continue from there
    # goes back over that same write, which is the first instruction of the
    # interval that starts at the checkpoint an earlier reverse-continue took.
    out, _ = _replay(
        recording,
        [
            "continue",
            "watch counter",
            "reverse-continue",  # bump(5)'s write
            "monitor when",
            "reverse-continue",  # bump(4)'s write; a checkpoint at bump(5)'s
            "continue",  # just after bump(4)'s write
            "continue",  # just after bump(5)'s write
            "monitor when",
            "reverse-continue",  # bump(5)'s write, at the checkpoint
            "monitor when",
            _val("now", "counter"),
        ],
    )
    pairs = re.findall(r"^Old value = (\d+)\nNew value = (\d+)$", out, re.MULTILINE)
    assert [tuple(map(int, p)) for p in pairs] == [
        (15, 10),
        (10, 6),
        (6, 10),
        (10, 15),
        (15, 10),
    ]
    write5, after5, again = _when(out)
    assert after5 == write5 + 1
    assert again == write5
    assert _tagged(out, "now") == [10]


def test_reverse_rwatch_and_awatch(recording: str) -> None:
    out, _ = _replay(
        recording,
        [
            "break 45",  # printf(..., counter): main reads counter here
            "continue",
            "delete",
            "rwatch counter",
            "reverse-continue",  # bump(5): history[counter & 15] = by
            "reverse-continue",  # bump(5): counter += by
            "delete",
            "awatch counter",
            "reverse-continue",  # bump(4): the read on line 26
            "reverse-continue",  # bump(4): the write on line 25
            "reverse-continue",  # bump(4): the read on line 25
            "x/i $pc",
            "delete",
            "rwatch counter",
            "continue",  # forwards: bump(4)'s read again, stopped after it
        ],
    )
    reads = re.findall(
        r"^Hardware read watchpoint \d: counter\n\nValue = (\d+)\n"
        rf"(?:0x[0-9a-f]+ in )?bump \(by=(\d)\) at {SOURCE}:(\d+)$",
        out,
        re.MULTILINE,
    )
    assert [tuple(map(int, r)) for r in reads] == [(15, 5, 26), (10, 5, 25), (6, 4, 25)]
    access = re.findall(
        r"^Hardware access \(read/write\) watchpoint 3: counter\n\n"
        r"(Value = \d+|Old value = \d+\nNew value = \d+)\n"
        rf"(?:0x[0-9a-f]+ in )?bump \(by=(\d)\) at {SOURCE}:(\d+)$",
        out,
        re.MULTILINE,
    )
    assert access == [
        ("Value = 10", "4", "26"),
        ("Old value = 10\nNew value = 6", "4", "25"),
        ("Value = 6", "4", "25"),
    ]
    assert re.search(r"^=> 0x[0-9a-f]+ <bump\+3>:\tmov +0x[0-9a-f]+,%edx$", out, re.MULTILINE)
    assert NO_HISTORY not in out


# -- 4. source-level reverse stepping ---------------------------------------------------


def test_reverse_finish_returns_to_the_call_in_main(recording: str) -> None:
    out, _ = _replay(
        recording,
        [
            "break square",
            "continue",
            "continue",  # square(2)
            "delete",
            "reverse-finish",
            _val("i", "i"),
            _val("total", "total"),
            "x/i $pc",
        ],
    )
    assert re.search(
        rf"^0x[0-9a-f]+ in main \(argc=1, argv=0x[0-9a-f]+\) at {SOURCE}:43\n"
        r"43\t        total \+= square\(i\);$",
        out,
        re.MULTILINE,
    )
    assert re.search(
        r"^=> 0x[0-9a-f]+ <main\+\d+>:\tcall +0x[0-9a-f]+ <square>$", out, re.MULTILINE
    )
    assert _tagged(out, "i") == [2]
    assert _tagged(out, "total") == [1]  # square(2) has not returned yet


def test_reverse_next_steps_back_over_calls(recording: str) -> None:
    out, _ = _replay(
        recording,
        [
            "tbreak 43",
            "continue",  # i == 1, before square(1)
            "next",  # to the loop's i++
            _val("total", "total"),
            "reverse-next",  # back over total += square(i)
            _val("total", "total"),
            _val("i", "i"),
            "reverse-next",  # back over bump(i)
            _val("counter", "counter"),
            "next",
            "next",
            _val("total", "total"),
        ],
    )
    lines = re.findall(r"^(\d+)\t", out, re.MULTILINE)
    assert lines == ["43", "41", "43", "42", "43", "41"]
    assert _tagged(out, "total") == [1, 0, 1]
    assert _tagged(out, "i") == [1]
    assert _tagged(out, "counter") == [0]
    # Stepping over (either way) never shows the callees.
    assert "square (x=" not in out
    assert "bump (by=" not in out


def test_reverse_step_enters_the_function_called_on_the_line_before(recording: str) -> None:
    out, _ = _replay(
        recording,
        [
            "break 43",
            "continue",
            "continue",  # i == 2, just after bump(2) returned
            "delete",
            "reverse-step",
            "bt",
            _val("counter", "counter"),
            "reverse-finish",
            _val("counter", "counter"),
            "x/i $pc",
        ],
    )
    assert re.search(rf"^bump \(by=2\) at {SOURCE}:27\n27\t}}$", out, re.MULTILINE)
    assert re.search(
        rf"^#0  bump \(by=2\) at {SOURCE}:27\n#1  0x[0-9a-f]+ in main \(argc=1, argv=0x[0-9a-f]+\)"
        rf" at {SOURCE}:42$",
        out,
        re.MULTILINE,
    )
    assert re.search(
        rf"^0x[0-9a-f]+ in main \(argc=1, argv=0x[0-9a-f]+\) at {SOURCE}:42\n"
        r"42\t        bump\(i\);$",
        out,
        re.MULTILINE,
    )
    assert re.search(r"^=> 0x[0-9a-f]+ <main\+\d+>:\tcall +0x[0-9a-f]+ <bump>$", out, re.MULTILINE)
    assert _tagged(out, "counter") == [3, 1]


# -- 5. breakpoints at the edges of the search ------------------------------------------


def test_a_breakpoint_at_the_current_position_is_not_a_hit(recording: str) -> None:
    # gdb does not step over a breakpoint at the pc before a reverse resume:
    # it sends "bc" with the breakpoint inserted where the target stands.
    out, _ = _replay(
        recording,
        [
            "break main",
            "continue",
            "reverse-continue",  # main's breakpoint never ran before
            "monitor when",
            "continue",
            "delete",
            "break bump",
            *["continue"] * 3,
            "reverse-continue",
            _val("by", "by"),
        ],
    )
    assert out.count("Breakpoint 1, main (argc=1") == 2
    assert f"{NO_HISTORY}\n{_entry_point(DEBUGME):#010x} in _start ()" in out
    assert _when(out) == [0]
    assert [s[1:] for s in _breakpoint_stops(out)] == [
        ("bump", 1),
        ("bump", 2),
        ("bump", 3),
        ("bump", 2),
    ]
    assert _tagged(out, "by") == [2]


def test_reverse_continue_finds_the_last_of_several_hits(recording: str) -> None:
    # A fresh server run to the end holds checkpoints only at 0 and at the
    # end: the first search scans one interval with all five bump() calls in
    # it, and must stop at the last one.
    out, _ = _replay(
        recording,
        [
            "break bump",
            *(c for _ in range(5) for c in ("continue", "monitor when")),
            "continue",  # to the end
            "monitor when",
            "reverse-continue",
            _val("by", "by"),
            "monitor when",
            *(c for _ in range(4) for c in ("reverse-continue", "monitor when")),
            "reverse-continue",
        ],
    )
    when = _when(out)
    forward, end, backward = when[:5], when[5], when[6:]
    assert forward == sorted(forward)
    assert end > forward[-1]
    assert backward == forward[::-1]
    assert [s[2] for s in _breakpoint_stops(out)] == [1, 2, 3, 4, 5, 5, 4, 3, 2, 1]
    assert _tagged(out, "by") == [5]
    assert out.count(NO_HISTORY) == 2


def test_breakpoint_hit_at_the_start_of_the_interval(recording: str) -> None:
    # reverse-continue from bump(3) leaves a checkpoint at bump(3); from
    # bump(4), the search's interval starts there, with the hit on its first
    # instruction.
    out, _ = _replay(
        recording,
        [
            "break bump",
            *["continue"] * 3,
            "monitor when",
            "reverse-continue",
            "continue",
            "continue",
            "reverse-continue",
            "monitor when",
            _val("by", "by"),
        ],
    )
    assert [s[2] for s in _breakpoint_stops(out)] == [1, 2, 3, 2, 3, 4, 3]
    first, second = _when(out)
    assert first == second
    assert _tagged(out, "by") == [3]


@pytest.fixture(scope="module")
def boundary(recording: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    """A recording with a snapshot exactly where bump(3) starts (``break
    *bump``: a block start, where an inexact run may stop); and that icount."""
    out, _ = _replay(recording, ["break *bump", *["continue"] * 3, "monitor when"])
    (icount,) = _when(out)
    directory = tmp_path_factory.mktemp("boundary") / "debugme.rr"
    stats = _record(directory, interval=icount)
    assert [s.icount for s in stats.snapshots] == [0, icount]
    return str(directory), icount


def test_breakpoint_at_a_snapshot(boundary: tuple[str, int]) -> None:
    directory, snap = boundary
    out, _ = _replay(
        directory,
        [
            "break *bump",
            *["continue"] * 4,  # bump(4)
            "monitor when",
            "reverse-continue",  # bump(3): the snapshot's first instruction
            "monitor when",
            _val("by", "by"),
            "reverse-continue",  # bump(2): the interval before the snapshot
            "monitor when",
            _val("by", "by"),
            "continue",  # bump(3)
            "monitor when",
            "reverse-stepi",
            "monitor when",
            "x/i $pc",
            "stepi",
            "monitor when",
            "stepi",
            "monitor when",
            "reverse-continue",  # the hit just before now, at the snapshot
            "monitor when",
            "reverse-stepi",
            "monitor when",
        ],
    )
    bump4, at3, bump2, again3, before, step3, after, back3, before2 = _when(out)
    assert bump4 > snap
    assert at3 == again3 == step3 == back3 == snap
    assert bump2 < snap
    assert before == before2 == snap - 1
    assert after == snap + 1
    assert _tagged(out, "by") == [3, 2]
    assert re.search(r"^=> 0x[0-9a-f]+ <main\+\d+>:\tcall +0x[0-9a-f]+ <bump>$", out, re.MULTILINE)
    assert [s[2] for s in _breakpoint_stops(out)] == [1, 2, 3, 4, 3, 2, 3, 3, 3]
    assert NO_HISTORY not in out


def test_reverse_continue_searches_back_past_a_snapshot(boundary: tuple[str, int]) -> None:
    directory, snap = boundary
    out, _ = _replay(
        directory,
        [
            "break *bump",
            *["continue"] * 4,  # bump(4), after the snapshot
            "delete",
            "break main",  # hit once, long before the snapshot
            "reverse-continue",
            "monitor when",
            "reverse-continue",
            "monitor when",
        ],
    )
    main, start = _when(out)
    assert 0 < main < snap
    assert start == 0
    assert re.search(r"^Breakpoint 2, main \(argc=1, argv=0x[0-9a-f]+\)", out, re.MULTILINE)
    assert out.count(NO_HISTORY) == 1


# -- 6. set exec-direction ----------------------------------------------------------


def test_exec_direction_reverse(recording: str) -> None:
    out, _ = _replay(
        recording,
        [
            "break bump",
            *["continue"] * 3,
            "set exec-direction reverse",
            "show exec-direction",
            "continue",  # back to bump(2)
            _val("by", "by"),
            "monitor when",
            "stepi",
            "monitor when",
            "stepi",
            "monitor when",
            "next",  # back out of bump to the call's line
            "set exec-direction forward",
            "show exec-direction",
            "stepi",
            "continue",
            _val("by", "by"),
            "monitor when",
        ],
    )
    assert "Reverse." in out
    assert "Forward." in out
    assert [s[2] for s in _breakpoint_stops(out)] == [1, 2, 3, 2, 2]
    at2, back1, back2, again = _when(out)
    assert (back1, back2, again) == (at2 - 1, at2 - 2, at2)
    assert re.search(
        rf"^main \(argc=1, argv=0x[0-9a-f]+\) at {SOURCE}:42\n42\t        bump\(i\);$",
        out,
        re.MULTILINE,
    )
    assert _tagged(out, "by") == [2, 2]
    assert NO_HISTORY not in out


# -- 7. live sessions -----------------------------------------------------------------------


def test_live_reverse_continue_then_run_to_the_exit() -> None:
    with rrdbg_server(["debug", "--gdb", LOCAL, DEBUGME]) as srv:
        out = gdb_batch(
            DEBUGME,
            [
                "break bump",
                *["continue"] * 3,
                "reverse-continue",
                _val("by", "by"),
                _val("counter", "counter"),
                "monitor when",
                "reverse-stepi",
                "monitor when",
                "info symbol $pc",
                *["continue"] * 4,  # bump(2) again, then 3, 4, 5
                "delete",
                "continue",  # to the last state before the exit
                "continue",  # past it: the program ends
            ],
            port=srv.port,
        )
        status, stdout, _err = srv.stop()
    assert [s[2] for s in _breakpoint_stops(out)] == [1, 2, 3, 2, 2, 3, 4, 5]
    assert _tagged(out, "by") == [2]
    assert _tagged(out, "counter") == [1]
    at2, back = _when(out)
    assert back == at2 - 1
    assert "bump + 1 in section .text" in out
    assert "the end of the program: the next instruction exits with status 7;" in out
    assert re.search(r"\[Inferior 1 \(process \d+\) exited with code 07\]", out)
    assert stdout == OUTPUT
    assert status == 7


def test_live_reverse_over_the_output_does_not_repeat_it() -> None:
    with rrdbg_server(["debug", "--gdb", LOCAL, DEBUGME]) as srv:
        out = gdb_batch(
            DEBUGME,
            [
                "break 47",  # after printf and fflush
                "continue",
                "break bump",
                "reverse-continue",  # back over the write(2) call
                _val("by", "by"),
                "delete",
                "reverse-continue",
                "monitor when",
                "continue",  # to the last state before the exit
                "continue",  # past it: the program ends
            ],
            port=srv.port,
        )
        status, stdout, _err = srv.stop()
    assert re.search(
        rf"^Breakpoint 1, main \(argc=1, argv=0x[0-9a-f]+\) at {SOURCE}:47$", out, re.MULTILINE
    )
    assert [s[1:] for s in _breakpoint_stops(out)] == [("bump", 5)]
    assert _tagged(out, "by") == [5]
    assert f"{NO_HISTORY}\n{_entry_point(DEBUGME):#010x} in _start ()" in out
    assert _when(out) == [0]
    assert "the end of the program: the next instruction exits with status 7;" in out
    assert re.search(r"\[Inferior 1 \(process \d+\) exited with code 07\]", out)
    assert stdout == OUTPUT
    assert status == 7


# -- gdb quirks rrdbg works around ------------------------------------------------------


def test_resume_after_a_step_over_at_the_end_of_history(recording: str) -> None:
    out, _ = _replay(
        recording,
        ["continue", "monitor when", "break *$pc", "continue", "reverse-stepi", "monitor when"],
        timeout=5,
    )
    # gdb 13 would hang if the step-over of the breakpoint at pc ended in
    # "no more history"; rrdbg reports that step as done, so gdb stops at
    # the breakpoint, and everything after works.
    assert out.count(NO_HISTORY) == 1
    assert "Breakpoint 1, " in out
    end, back = _when(out)
    assert back == end - 1


def test_reverse_stepi_over_a_watched_write_reports_it(recording: str) -> None:
    out, _ = _replay(
        recording,
        [
            "watch counter",
            "continue",  # just after bump(1)'s write
            "monitor when",
            "reverse-stepi",  # undoes it: at the store, counter == 0
            "monitor when",
            _val("now", "counter"),
            "continue",  # must stop after the same write again
            "monitor when",
        ],
    )
    after, at, again = _when(out)
    assert at == after - 1
    assert _tagged(out, "now") == [0]
    # gdb's record-full reports a watchpoint on a reverse step that undoes a
    # watched write; here, the values going backwards.
    assert re.search(
        rf"^Hardware watchpoint 1: counter\n\nOld value = 1\nNew value = 0\n"
        rf"0x[0-9a-f]+ in bump \(by=1\) at {SOURCE}:25$",
        out,
        re.MULTILINE,
    )
    assert out.count("Old value = 0\nNew value = 1\n") == 2
    assert again == after


def test_watchpoints_name_the_sse_store_whose_hook_sees_a_stale_eip(tmp_path: Path) -> None:
    # hotwatch's sse_stores writes g_pair.inner with two movq (at +5: 0, and
    # +26: all ones), whose memory hooks Unicorn runs with EIP at the
    # block's start.
    hotwatch = guest("hotwatch")
    directory = tmp_path / "sse.rr"
    with _stdout_to_devnull():
        record(hotwatch, ["10", "sse"], str(directory), environ={})
    with rrdbg_server(["replay", "--gdb", LOCAL, "--once", str(directory)]) as srv:
        out = gdb_batch(
            hotwatch,
            [
                "break exit",
                "continue",
                "watch g_pair.inner",
                "reverse-continue",
                "x/i $pc",
                "reverse-continue",
                "x/i $pc",
                "continue",
                "x/i $pc",
                "continue",
                "x/i $pc",
            ],
            port=srv.port,
        )
        srv.stop()
    stops = re.findall(r"^=> 0x[0-9a-f]+ <sse_stores\+(\d+)>:\s+(\w+)", out, re.MULTILINE)
    assert stops == [("26", "movq"), ("5", "movq"), ("13", "pcmpeqd"), ("34", "ret")], out
