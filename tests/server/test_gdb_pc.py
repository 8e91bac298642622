"""gdb 13 against the bare-metal PC machine: recordings of test kernels
served by ``rrdbg replay --gdb``, and a live ``rrdbg debug --machine pc``.

The acceptance points of the PC machine's issue: reverse-stepi back across
an interrupt entry returns to the interrupted instruction (and stepi goes
into the interrupt again), and reverse-continue from the end finds the last
run of the timer handler.  k_busy's ticks are taken at known places: after
``sti; nop`` at ``sti_done`` and right after a ``popf`` at ``popf_done``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rrdbg.timeline.timeline import Timeline
from tests.conftest import guest
from tests.server.gdbrun import gdb_batch, needs_gdb, rrdbg_server
from tests.server.test_gdb_reverse import _tagged, _val, _when
from tests.timeline.test_timeline import symbols

pytestmark = needs_gdb
K_BUSY = guest("k_busy")
K_ECHO = guest("k_echo")
K_UNHANDLED = guest("k_unhandled")
BUSY = symbols(K_BUSY)
LOCAL = "127.0.0.1:0"
NO_HISTORY = "No more reverse-execution history."
#: The IRQ0 stub: runtime.S has one 16-byte stub per vector; IRQ0 is vector 0x20.
IRQ0_STUB = BUSY["isr_stubs"] + 16 * 0x20


RECORD_PC = [sys.executable, "-m", "rrdbg", "record", "--machine", "pc"]


def _record(directory: Path, kernel: str, *options: str) -> None:
    proc = subprocess.run(
        [*RECORD_PC, "-o", str(directory), *options, kernel],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr  # isa-debug-exit 0: QEMU's status 1


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """k_busy with a short sum (two ticks in it), snapshots every 100 k
    instructions, and -m 4."""
    directory = tmp_path_factory.mktemp("pc") / "busy.rr"
    _record(directory, K_BUSY, "-m", "4", "--append", "loop=70000", "--snapshot-interval", "100000")
    return directory


def _gdb_on(recording: Path, kernel: str, commands: list[str]) -> tuple[str, bytes]:
    with rrdbg_server(["replay", "--gdb", LOCAL, "--once", str(recording)]) as srv:
        out = gdb_batch(kernel, commands, port=srv.port)
        _status, stdout, _err = srv.stop()
    return out, stdout


def test_reverse_stepi_across_an_interrupt_entry(busy: Path) -> None:
    """The tick held back by cli is taken after ``sti; nop``: stepping back
    from the first instruction of the IRQ0 stub lands on the nop, at the
    icount before, and stepping forward enters the interrupt again."""
    out, _ = _gdb_on(
        busy,
        K_BUSY,
        [
            f"break *{IRQ0_STUB:#x}",
            "condition 1 *(unsigned *)$esp == (unsigned)&sti_done",
            "continue",
            _val("entry", "$pc"),
            _val("saved", "*(unsigned *)$esp"),
            "monitor when",
            "reverse-stepi",
            _val("back", "$pc"),
            "monitor when",
            "x/i $pc",
            "stepi",
            _val("again", "$pc"),
            "monitor when",
            # The same across the popf: the tick comes right after it.
            "condition 1 *(unsigned *)$esp == (unsigned)&popf_done",
            "continue",
            "reverse-stepi",
            _val("popf", "$pc"),
            "x/i $pc",
        ],
    )
    assert _tagged(out, "entry") == [IRQ0_STUB]
    assert _tagged(out, "saved") == [BUSY["sti_done"]]
    # The interrupted instruction: the nop in sti's shadow, just before sti_done.
    assert _tagged(out, "back") == [BUSY["sti_done"] - 1]
    assert re.search(r"=> 0x[0-9a-f]+ <kmain\+\d+>:\s+nop", out)
    assert _tagged(out, "again") == [IRQ0_STUB]
    entered, before, again = _when(out)
    assert (before, again) == (entered - 1, entered)
    assert _tagged(out, "popf") == [BUSY["popf_done"] - 1]
    assert re.search(r"=> 0x[0-9a-f]+ <kmain\+\d+>:\s+popf", out)


def test_reverse_continue_finds_the_last_timer_handler_run(busy: Path) -> None:
    """From the end of the recording, reverse-continue to a breakpoint in the
    timer handler stops at its last run (the tick after the popf), at the
    icount a plain forward pass sees; once more reaches the run before."""
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        t = Timeline.replay(str(busy), stdout_fd=sink, stderr_fd=sink)
        hits: list[int] = []
        t.machine.cpu.watch_code(BUSY["timer_irq"], hits.append)
        t.machine.cpu.retranslate()
        assert t.history_end is not None
        t.machine.run(t.history_end)
    finally:
        os.close(sink)
    assert len(hits) >= 4  # two in the sum, one after sti, one after popf
    out, stdout = _gdb_on(
        busy,
        K_BUSY,
        [
            "continue",
            "break timer_irq",
            "reverse-continue",
            _val("from", "f->eip"),
            "monitor when",
            "reverse-continue",
            "monitor when",
        ],
    )
    assert NO_HISTORY in out
    assert out.count("Breakpoint 1, timer_irq (f=") == 2
    assert _tagged(out, "from") == [BUSY["popf_done"]]
    assert _when(out) == [hits[-1], hits[-2]]
    assert b"k_busy: after popf: taken at popf_done" in stdout


def test_an_unhandled_exception_is_a_signal_stop(tmp_path: Path) -> None:
    """k_unhandled executes ud2 with an empty IDT: the triple fault ends the
    recording; replayed, gdb stops there with SIGILL at the ud2, and that is
    the end of history.  Stepping back works from there."""
    directory = tmp_path / "unhandled.rr"
    proc = subprocess.run(
        [*RECORD_PC, "-o", str(directory), K_UNHANDLED],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr  # QEMU -no-reboot: status 0
    assert b"triple fault" in proc.stderr
    out, _ = _gdb_on(
        directory,
        K_UNHANDLED,
        ["continue", "x/i $pc", "monitor when", "continue", "reverse-stepi", "monitor when"],
    )
    assert "Program received signal SIGILL, Illegal instruction." in out
    assert re.search(r"=> 0x[0-9a-f]+ <\w+\+\d+>:\s+ud2", out)
    assert NO_HISTORY in out.split("SIGILL", 1)[1]
    fault, back = _when(out)
    assert back == fault - 1


def test_live_pc_session_records_what_it_debugs(tmp_path: Path) -> None:
    """``rrdbg debug --machine pc``: serial input from a file, a breakpoint
    in the receive interrupt handler, a step back and forth, then the
    kernel's isa-debug-exit as the inferior's exit code; the saved recording
    replays to the same output."""
    stdin = tmp_path / "input"
    stdin.write_bytes(b"hello world.")
    directory = tmp_path / "echo.rr"
    args = ["debug", "--machine", "pc", "--gdb", LOCAL, "--stdin", str(stdin)]
    with rrdbg_server([*args, "-o", str(directory), K_ECHO]) as srv:
        out = gdb_batch(
            K_ECHO,
            [
                "break com1_irq",
                "continue",
                "monitor when",
                "stepi",
                "reverse-stepi",
                "monitor when",
                "reverse-stepi",
                "monitor when",
                "delete",
                "continue",  # to the last state before the exit
                "continue",  # past it: the program ends
            ],
            port=srv.port,
        )
        status, stdout, _err = srv.stop()
    assert "Breakpoint 1, com1_irq (f=" in out
    hit, back_to_hit, before = _when(out)
    assert back_to_hit == hit and before == hit - 1
    assert "the end of the program: the next instruction exits with status 1;" in out
    assert "[Inferior 1 (process 1) exited with code 01]" in out
    assert status == 1
    assert b"HELLO WORLD." in stdout
    replay = subprocess.run(
        [sys.executable, "-m", "rrdbg", "replay", str(directory)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert replay.returncode == 1, replay.stderr
    assert replay.stdout == stdout
