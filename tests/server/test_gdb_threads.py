"""Threads with real gdb 13: every thread listed, stops naming the thread
that stopped, per-thread registers, stepping one thread forwards and
backwards across the scheduler's switches, and reverse watchpoints finding
the last write of a shared variable by a given thread.

The program: tests/guests/threads.c ``race 3000`` recorded with a quantum
of 2000 instructions, so its two workers are switched many times while
they increment ``race_shared`` without a lock.  The truth for "the last
write by thread T" is a forward pass of the same recording with a memory
hook noting (icount, thread) of every write.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from rrdbg.timeline.timeline import Timeline
from tests.conftest import guest, record_quietly
from tests.server.gdbrun import gdb_batch, needs_gdb, rrdbg_server
from tests.timeline.test_timeline import symbols

pytestmark = needs_gdb
THREADS = guest("threads")
SYMS = symbols(THREADS)
LOCAL = "127.0.0.1:0"


@pytest.fixture(scope="module")
def race(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[tuple[int, int]]]:
    """The recording, and (icount, tid) of every write to race_shared."""
    directory = tmp_path_factory.mktemp("threads") / "race.rr"
    record_quietly(THREADS, ["race", "3000"], directory, quantum=2000)
    sink = os.open(os.devnull, os.O_WRONLY)
    t = Timeline.replay(str(directory), stdout_fd=sink, stderr_fd=sink)
    m = t.machine
    shared = SYMS["race_shared"]
    writes: list[tuple[int, int]] = []

    def on_write(address: int, size: int) -> None:
        if address < shared + 4 and address + size > shared:
            writes.append((m.cpu.count_at(m.cpu.eip), m.current_tid))

    m.cpu.watch_memory(write=True, address=shared, length=4, callback=on_write)
    m.cpu.retranslate()
    assert t.history_end is not None
    m.run(t.history_end)
    os.close(sink)
    return str(directory), writes


def _gdb(directory: str, commands: list[str]) -> str:
    with rrdbg_server(["replay", "--gdb", LOCAL, "--once", directory]) as srv:
        out = gdb_batch(THREADS, commands, port=srv.port, timeout=120)
        srv.stop()
    return out


def _tagged(out: str, tag: str) -> list[int]:
    return [int(v, 0) for v in re.findall(rf"^@{tag} (\S+)$", out, re.MULTILINE)]


def _when(out: str) -> list[int]:
    return [int(v) for v in re.findall(r"^Current icount: (\d+)$", out, re.MULTILINE)]


def test_info_threads_lists_every_thread_and_the_stop_names_the_worker(
    race: tuple[str, list[tuple[int, int]]],
) -> None:
    directory, writes = race
    out = _gdb(
        directory,
        [
            "break race_worker",
            "continue",
            "info threads",
            'printf "@tid %d\\n", $_thread',
            "continue",
            "info threads",
            'printf "@tid %d\\n", $_thread',
        ],
    )
    rows = re.findall(r"^(\*| ) +(\d) +Thread (\d+)\.(\d+) \"([\w-]+)\" (.*)$", out, re.MULTILINE)
    assert len(rows) == 6, out  # main and its two workers, twice
    first, second = rows[:3], rows[3:]
    tids = sorted({int(r[3]) for r in rows})
    assert len(tids) == 3 and len({r[2] for r in rows}) == 1  # one process
    # Names as prctl(PR_SET_NAME) gave them (pthread_setname_np), else the program's.
    # (At the second stop one worker has named itself; the stopped one not yet.)
    names = [r[4] for r in second]
    assert names[0] == "threads" and sorted(names[1:]) in (
        ["racer-a", "threads"],
        ["racer-b", "threads"],
    ), names
    assert re.search(r"Thread \d+ \"[\w-]+\" hit Breakpoint 1, race_worker", out)
    # Each stop is in a worker (gdb's threads 2 and 3), the other one shown
    # where it is; main waits in pthread_join.
    stopped = [[r for r in rows if r[0] == "*"] for rows in (first, second)]
    assert [s[0][1] for s in stopped] == ["2", "3"] or [s[0][1] for s in stopped] == ["3", "2"]
    assert all("race_worker" in s[0][5] for s in stopped)
    assert _tagged(out, "tid") == [int(s[0][1]) for s in stopped]
    assert "in _dl_sysinfo_int80" in first[0][5] or "pthread" in first[0][5], first
    assert {tid for _, tid in writes} == set(tids)  # main sets it to 0 first


@pytest.mark.parametrize("gdb_thread", [2, 3])
def test_reverse_continue_finds_the_last_write_by_a_given_thread(
    race: tuple[str, list[tuple[int, int]]], gdb_thread: int
) -> None:
    """From after both workers ended, `watch race_shared if $_thread == N`
    and reverse-continue: the stop is the last write of that thread, before
    it (x86 reports the accessing instruction), in that thread."""
    directory, writes = race
    line = _source_line("race shared=")
    out = _gdb(
        directory,
        [
            "info threads",
            f"break threads.c:{line}",
            "continue",
            "delete",
            "info threads",
            f"watch race_shared if $_thread == {gdb_thread}",
            "reverse-continue",
            'printf "@tid %d\\n", $_thread',
            "monitor when",
            "info threads",
        ],
    )
    ids = dict(re.findall(r"^[* ] +(\d) +Thread \d+\.(\d+) ", out, re.MULTILINE))
    tid = int(ids[str(gdb_thread)])
    expected = max(k for k, t in writes if t == tid)
    assert _tagged(out, "tid") == [gdb_thread], out
    assert _when(out) == [expected], out
    assert re.search(
        rf'Thread {gdb_thread} "racer-[ab]" hit Hardware watchpoint 2: race_shared', out
    )


def test_stepping_one_thread_back_and_forth_across_switches(
    race: tuple[str, list[tuple[int, int]]],
) -> None:
    """`thread N` + stepi while the other worker runs: thread N executes one
    instruction (the others run until it is switched in).  reverse-stepi
    twice goes back to thread N's own previous instruction, in its previous
    time slice (gdb does not switch threads); stepi twice comes back to the
    same pc and icount."""
    directory, _writes = race
    out = _gdb(
        directory,
        [
            "break race_worker",
            "continue",
            "continue",
            "delete",
            "stepi 500",
            'printf "@cur %d\\n", $_thread',
            # The other worker (gdb's threads 2 and 3 are the workers).
            'python gdb.execute("thread %d" % (5 - gdb.selected_thread().num))',
            'printf "@other %d\\n", $_thread',
            "stepi",
            'printf "@pc %#x\\n", $pc',
            "monitor when",
            "reverse-stepi",
            'printf "@pc %#x\\n", $pc',
            "monitor when",
            "reverse-stepi",
            'printf "@pc %#x\\n", $pc',
            "monitor when",
            'printf "@cur %d\\n", $_thread',
            "stepi",
            "stepi",
            'printf "@pc %#x\\n", $pc',
            "monitor when",
            'printf "@cur %d\\n", $_thread',
        ],
    )
    current = _tagged(out, "cur")
    (other,) = _tagged(out, "other")
    pcs = _tagged(out, "pc")
    when = _when(out)
    assert len(pcs) == 4 and len(when) == 4, out
    assert current[0] in (2, 3) and other == 5 - current[0]
    assert current[1:] == [other, other], out
    assert "Switching to thread" not in out.split("reverse-stepi", 1)[-1].split("@cur")[0]
    switched_in = when[1]
    # The first reverse-stepi reaches the switch-in point; the second goes
    # back across the other thread's slice to thread 2's last instruction.
    assert when[0] == switched_in + 1
    assert when[2] < switched_in - 1
    assert pcs[3] == pcs[0] and when[3] == when[0]


def _source_line(text: str) -> int:
    source = Path(__file__).resolve().parents[1] / "guests" / "threads.c"
    for number, line in enumerate(source.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in threads.c")


def test_writing_the_registers_of_another_thread(race: tuple[str, list[tuple[int, int]]]) -> None:
    """`thread N` + `set $esi = ...` for a thread that is not the one that
    stopped: gdb reads the new value back in that thread, the stopped
    thread's register is unchanged (as with gdbserver)."""
    directory, _writes = race
    out = _gdb(
        directory,
        [
            "break race_worker",
            "continue",
            "continue",
            'printf "@esi %#x\\n", $esi',
            'python gdb.execute("thread %d" % (5 - gdb.selected_thread().num))',
            "set $esi = 0x5eed",
            "maint flush register-cache",
            'printf "@esi %#x\\n", $esi',
            'python gdb.execute("thread %d" % (5 - gdb.selected_thread().num))',
            "maint flush register-cache",
            'printf "@esi %#x\\n", $esi',
        ],
    )
    esi = _tagged(out, "esi")
    assert len(esi) == 3 and esi[1] == 0x5EED and esi[2] == esi[0] != 0x5EED, out
    assert "not supported" not in out, out
