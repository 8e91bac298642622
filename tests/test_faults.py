"""A crash is reported at the faulting instruction, everywhere, as native gdb sees it.

The ``faults`` guest ends with one fault of a chosen kind (memory, divide,
invalid opcode, jump/call into nothing, stack overflow, privileged
instructions, port I/O, int3, ``int $n``) placed at the start, in the middle
or at the end of its block.  Native gdb running the same binary is the
truth for the pc and the signal; rrdbg must agree in ``run``, in a recording
(``rrdbg info``, replay, the Python API) and in gdb (replay and live), and
stepping around the fault must move exactly one instruction.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rrdbg.api import Recording
from rrdbg.machine.host import LiveHost
from rrdbg.machine.machine import LinuxMachine
from rrdbg.record.recording import describe
from tests.conftest import can_run_i386_natively, guest, record_quietly
from tests.server.gdbrun import GDB, gdb_batch, needs_gdb, rrdbg_server

pytestmark = [
    needs_gdb,
    pytest.mark.skipif(not can_run_i386_natively(), reason="cannot run i386 binaries natively"),
]

FAULTS = guest("faults")
KINDS = [
    "read",
    "write",
    "rodata",
    "prot",
    "div",
    "ud2",
    "jump",
    "call",
    "stack",
    "hlt",
    "cli",
    "in",
    "int3",
    "intn",
]
POSITIONS = ("start", "middle", "end")
CASES = [(k, p) for k in KINDS for p in POSITIONS if k != "stack" or p == "start"]
LOCAL = "127.0.0.1:0"
SIGNALS = {"SIGSEGV": 11, "SIGFPE": 8, "SIGILL": 4, "SIGTRAP": 5}


@functools.cache
def native(kind: str, pos: str) -> tuple[int, int]:
    """(signal, pc) of the fault as gdb shows it for a native run.

    The stack limit is pinned to Linux's default 8 MiB, the size of rrdbg's
    stack, so that the overflow happens at the same frame's store."""
    assert GDB is not None
    cmd = (
        f"ulimit -s 8192; exec {GDB} -nx -batch -ex run "
        "-ex 'printf \"@pc %#x\\n\", $pc' -ex 'printf \"@sig %d\\n\", $_siginfo.si_signo' "
        f"--args {FAULTS} {kind} {pos}"
    )
    out = subprocess.run(
        ["bash", "-c", cmd], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    pc = re.search(r"^@pc (0x[0-9a-f]+)$", out, re.MULTILINE)
    sig = re.search(r"^@sig (\d+)$", out, re.MULTILINE)
    assert pc and sig, out
    return int(sig.group(1)), int(pc.group(1), 16)


@pytest.mark.parametrize(("kind", "pos"), CASES)
def test_run_stops_where_native_gdb_does(kind: str, pos: str) -> None:
    machine = LinuxMachine(FAULTS, [FAULTS, kind, pos], LiveHost(environ={}))
    result = machine.run_to_end()
    assert result.fault is not None
    assert (result.fault.signal, result.fault.eip) == native(kind, pos)
    assert machine.cpu.eip == result.fault.eip


def test_rrdbg_run_names_the_faulting_instruction() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rrdbg", "run", FAULTS, "read", "middle"],
        capture_output=True,
        text=True,
        check=False,
    )
    signal, pc = native("read", "middle")
    assert proc.returncode == 128 + signal
    assert f"guest SIGSEGV at eip={pc:#010x} accessing 0x12345678 (read of unmapped memory)" in (
        proc.stderr
    )


@pytest.mark.parametrize(("kind", "pos"), CASES)
def test_recording_ends_at_the_fault(kind: str, pos: str, tmp_path: Path) -> None:
    directory = tmp_path / "f.rr"
    stats = record_quietly(FAULTS, [kind, pos], directory)
    signal, pc = native(kind, pos)
    assert stats.result.fault is not None and stats.result.fault.eip == pc
    info = describe(str(directory))
    assert info.end is not None and info.end.exit_signal == signal
    with Recording(directory) as r:
        assert r.end == info.total_icount
        stop = r.cont()
        assert (stop.kind, stop.signal, stop.pc, stop.icount) == ("signal", signal, pc, r.end)
        back = r.step_back()
        assert back.icount == r.end - 1 and back.kind == "step"
        before = back.pc
        again = r.step()
        if kind == "int3":
            # A trap: the stop is after the instruction, which retired;
            # stepping it again reports it again.
            assert (again.kind, again.signal, again.icount, again.pc) == (
                "signal",
                signal,
                r.end,
                pc,
            )
        else:
            assert (again.kind, again.icount, again.pc) == ("step", r.end, pc)
            # Running the faulting instruction reports the fault again.
            fault = r.step()
            assert (fault.kind, fault.signal, fault.icount) == ("signal", signal, r.end)
        r.step_back()
        assert r.pc == before


def _gdb_session(commands: list[str]) -> list[str]:
    return [
        "continue",
        'printf "@pc %#x\\n", $pc',
        "reverse-stepi",
        'printf "@back %#x\\n", $pc',
        "stepi",
        'printf "@fwd %#x\\n", $pc',
        "stepi",
        'printf "@again %#x\\n", $pc',
        *commands,
    ]


def _check_gdb(out: str, kind: str, pos: str) -> None:
    signal, pc = native(kind, pos)
    names = re.findall(r"Program received signal (SIG\w+)", out)
    # The fault is reported by `continue`, and again by stepping into it;
    # except int3's SIGTRAP, which gdb takes for the end of its stepi (as it
    # does natively).
    expected = [signal] if kind == "int3" else [signal, signal]
    assert [SIGNALS[n] for n in names] == expected, out
    for tag in ("pc", "fwd", "again"):
        assert re.search(rf"^@{tag} {pc:#x}$", out, re.MULTILINE), (tag, out)
    back = re.search(r"^@back (0x[0-9a-f]+)$", out, re.MULTILINE)
    assert back and int(back.group(1), 16) != pc, out


GDB_CASES = [(k, "middle") for k in KINDS if k != "stack"] + [("stack", "start")]


@pytest.mark.parametrize(("kind", "pos"), GDB_CASES)
def test_gdb_on_a_replay_stops_at_the_fault(kind: str, pos: str, tmp_path: Path) -> None:
    directory = tmp_path / "f.rr"
    record_quietly(FAULTS, [kind, pos], directory)
    with rrdbg_server(["replay", "--gdb", LOCAL, "--once", str(directory)]) as srv:
        out = gdb_batch(FAULTS, _gdb_session([]), port=srv.port)
        srv.stop()
    _check_gdb(out, kind, pos)


@pytest.mark.parametrize(("kind", "pos"), [("read", "start"), ("div", "end"), ("intn", "middle")])
def test_gdb_live_stops_at_the_fault(kind: str, pos: str) -> None:
    with rrdbg_server(["debug", "--gdb", LOCAL, FAULTS, kind, pos]) as srv:
        out = gdb_batch(FAULTS, _gdb_session(["kill"]), port=srv.port)
        srv.stop()
    _check_gdb(out, kind, pos)
    assert "faults.c" in out  # the line of the crash is shown
