"""Real gdb 13 against rrdbg's server: live debugging and replays, over TCP and stdio."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import guest, record_quietly
from tests.server.gdbrun import GDB, gdb_batch, needs_gdb, rrdbg_server

pytestmark = needs_gdb
DEBUGME = guest("debugme")
LOCAL = "127.0.0.1:0"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("rec") / "debugme.rr"
    record_quietly(DEBUGME, [], directory)
    return str(directory)


def test_break_step_next_finish_and_print(recording: str) -> None:
    with rrdbg_server(["replay", "--gdb", LOCAL, "--once", recording]) as srv:
        out = gdb_batch(
            DEBUGME,
            [
                "break bump",
                "continue",
                "bt",
                "print by",
                "finish",
                "print counter",
                "next",
                "step",
                "print x",
                "stepi",
                "info registers eip",
                "up",
                "print total",
                "print history[1]",
            ],
            port=srv.port,
        )
        srv.stop()
    assert "Breakpoint 1, bump (by=1) at tests/guests/debugme.c:25" in out
    assert re.search(r"#1 +0x[0-9a-f]+ in main \(argc=1", out)
    assert "$1 = 1" in out  # by
    # finish: back in main, at the call's line
    assert re.search(r"0x[0-9a-f]+ in main \(argc=1, argv=0x[0-9a-f]+\) at \S+debugme.c:42", out)
    assert "$2 = 1" in out  # counter after bump(1)
    assert "square (x=1) at tests/guests/debugme.c:19" in out
    assert "$3 = 1" in out  # x
    assert re.search(r"eip +0x[0-9a-f]+ +0x[0-9a-f]+ <square\+\d+>", out)
    assert "$4 = 0" in out  # total, before the first square() returned
    assert "$5 = 1" in out  # history[1]


def test_watchpoints_report_old_and_new_values(recording: str) -> None:
    with rrdbg_server(["replay", "--gdb", LOCAL, "--once", recording]) as srv:
        out = gdb_batch(
            DEBUGME,
            [
                "watch counter",
                "continue",
                "continue",
                "delete",
                "rwatch counter",
                "continue",
                "delete",
                "awatch counter",
                "continue",
            ],
            port=srv.port,
        )
        srv.stop()
    assert "Hardware watchpoint 1: counter" in out
    assert "Old value = 0\nNew value = 1" in out
    assert "Old value = 1\nNew value = 3" in out
    assert "Hardware read watchpoint 2: counter\n\nValue = 3" in out
    assert re.search(r"Hardware access \(read/write\) watchpoint 3: counter\n\nValue = ", out)


def test_live_session_writes_memory_and_registers_and_exits(tmp_path: Path) -> None:
    saved = tmp_path / "live.rr"
    with rrdbg_server(["debug", "--gdb", LOCAL, "-o", str(saved), DEBUGME]) as srv:
        out = gdb_batch(
            DEBUGME,
            [
                "break square",
                "continue",
                "set var counter = 100",
                "print counter",
                "print $eax = 1234",
                "print $eax",
                "delete",
                "continue",  # to the last state before the exit
                "continue",  # past it: the program ends
            ],
            port=srv.port,
        )
        status, stdout, stderr = srv.stop()
    assert "$1 = 100" in out
    assert "$3 = 1234" in out
    assert "the end of the program: the next instruction exits with status 7;" in out
    assert re.search(r"\[Inferior 1 \(process \d+\) exited with code 07\]", out)
    assert stdout == b"total=55 counter=114\n"
    assert status == 7
    assert b"recording saved" in stderr
    # The saved recording replays the debugger's changes.
    replay = subprocess.run(
        [sys.executable, "-m", "rrdbg", "replay", str(saved)],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert replay.stdout == b"total=55 counter=114\n"
    assert replay.returncode == 7, replay.stderr


def test_guest_sigsegv_is_a_signal_stop_then_termination() -> None:
    with rrdbg_server(["debug", "--gdb", LOCAL, DEBUGME, "segv"]) as srv:
        out = gdb_batch(
            DEBUGME,
            ["continue", "print counter", "info registers eip", "continue"],
            port=srv.port,
        )
        status, _out, _err = srv.stop()
    assert "Program received signal SIGSEGV, Segmentation fault." in out
    assert "$1 = 15" in out
    assert "Program terminated with signal SIGSEGV, Segmentation fault." in out
    assert status == 128 + 11


def test_ctrl_c_stops_a_spinning_guest_promptly() -> None:
    assert GDB is not None
    with rrdbg_server(["debug", "--gdb", LOCAL, DEBUGME, "spin"]) as srv:
        gdb = subprocess.Popen(
            [
                GDB,
                "-nx",
                "-batch",
                "-ex",
                f"target remote 127.0.0.1:{srv.port}",
                "-ex",
                "continue",
                "-ex",
                "print counter > 0",
                "-ex",
                "kill",
                DEBUGME,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(2.0)  # connected and spinning
        t0 = time.monotonic()
        os.killpg(gdb.pid, signal.SIGINT)
        out, _ = gdb.communicate(timeout=30)
        elapsed = time.monotonic() - t0
        srv.stop()
    text = out.decode()
    assert "Program received signal SIGINT, Interrupt." in text
    assert "$1 = 1" in text
    assert elapsed < 10


def test_detach_and_reconnect_start_a_fresh_session(recording: str) -> None:
    with rrdbg_server(["replay", "--gdb", LOCAL, recording]) as srv:
        first = gdb_batch(
            DEBUGME, ["break square", "continue", "monitor when", "detach"], port=srv.port
        )
        second = gdb_batch(DEBUGME, ["monitor when", "monitor info replay"], port=srv.port)
        srv.proc.send_signal(signal.SIGINT)
        srv.stop()
    when = re.findall(r"^Current icount: (\d+)$", first, re.MULTILINE)
    assert when and int(when[0]) > 0
    assert re.search(r"^Current icount: 0$", second, re.MULTILINE)
    assert f"Replaying execution '{recording}': instruction count = 0" in second


def test_disconnect_mid_run_leaves_the_live_server_ready() -> None:
    assert GDB is not None
    with rrdbg_server(["debug", "--gdb", LOCAL, DEBUGME, "spin"]) as srv:
        gdb = subprocess.Popen(
            [GDB, "-nx", "-batch", "-ex", f"target remote 127.0.0.1:{srv.port}", "-ex", "continue"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        time.sleep(2.0)
        gdb.kill()  # the client vanishes while the guest runs
        gdb.wait()
        out = gdb_batch(DEBUGME, ["print counter > 0", "kill"], port=srv.port)
        status, _o, _e = srv.stop()
    assert "$1 = 1" in out
    assert status is not None


def test_stdio_transport(recording: str) -> None:
    cmd = f"{sys.executable} -m rrdbg replay --gdb stdio {recording}"
    out = gdb_batch(
        DEBUGME,
        [f"target remote | {cmd}", "break bump", "continue", "print by", "delete", "continue"],
    )
    assert "Breakpoint 1, bump (by=1)" in out
    assert "$1 = 1" in out
    # Guest output goes to stderr, never into the protocol stream.
    assert "total=55 counter=15" in out


def test_end_of_history_in_a_replay(recording: str) -> None:
    with rrdbg_server(["replay", "--gdb", LOCAL, "--once", recording]) as srv:
        out = gdb_batch(DEBUGME, ["continue", "continue", "stepi"], port=srv.port)
        _, stdout, _ = srv.stop()
    assert out.count("No more reverse-execution history.") == 3
    assert stdout == b"total=55 counter=15\n"  # printed once


@pytest.mark.parametrize(
    ("name", "signame", "status"),
    [("fault_ill", "SIGILL, Illegal instruction", 132), ("fault_fpe", "SIGFPE", 136)],
)
def test_other_guest_faults(name: str, signame: str, status: int) -> None:
    program = guest(name)
    with rrdbg_server(["debug", "--gdb", LOCAL, program]) as srv:
        out = gdb_batch(program, ["continue", "info registers eip", "continue"], port=srv.port)
        code, _out, _err = srv.stop()
    assert f"Program received signal {signame}" in out
    assert re.search(r"eip +0x[0-9a-f]+ +0x[0-9a-f]+ <main\+\d+>", out)
    assert "Program terminated with signal" in out
    assert code == status


def test_client_side_commands_built_on_breakpoints(recording: str) -> None:
    with rrdbg_server(["replay", "--gdb", LOCAL, "--once", recording]) as srv:
        out = gdb_batch(
            DEBUGME,
            [
                "tbreak main",
                "continue",
                "advance square",
                "print x",
                "until",
                "nexti",
                "info breakpoints",
            ],
            port=srv.port,
        )
        srv.stop()
    assert "Temporary breakpoint 1, main (argc=1" in out
    assert "square (x=1) at" in out
    assert "$1 = 1" in out
    assert "No breakpoints or watchpoints." in out


def test_software_watchpoint(recording: str) -> None:
    with rrdbg_server(["replay", "--gdb", LOCAL, "--once", recording]) as srv:
        out = gdb_batch(
            DEBUGME,
            [
                "break bump",
                "continue",
                "set can-use-hw-watchpoints 0",
                "watch counter",
                "continue",
            ],
            port=srv.port,
        )
        srv.stop()
    assert "Watchpoint 2: counter" in out
    assert "Old value = 0\nNew value = 1" in out


def test_info_auxv_shows_the_recorded_auxiliary_vector(recording: str) -> None:
    """qXfer:auxv:read: what the program started with (lldb finds the load
    address from AT_ENTRY; gdb shows it with info auxv)."""
    from tests.server.test_gdb_reverse import _entry_point

    with rrdbg_server(["replay", "--gdb", "127.0.0.1:0", "--once", recording]) as srv:
        out = gdb_batch(DEBUGME, ["info auxv"], port=srv.port)
        srv.stop()
    entry = _entry_point(DEBUGME)
    assert re.search(rf"^9\s+AT_ENTRY\s+Entry point of program\s+{entry:#x}$", out, re.M), out
    assert re.search(r"^6\s+AT_PAGESZ\s+System page size\s+4096$", out, re.M), out


def test_gdb_without_the_program_reads_it_from_the_recording(tmp_path: Path) -> None:
    # The program is deleted after recording; gdb is given no file at all.
    prog = tmp_path / "debugme"
    prog.write_bytes(Path(DEBUGME).read_bytes())
    prog.chmod(0o755)
    directory = tmp_path / "d.rr"
    record_quietly(str(prog), [], directory)
    prog.unlink()
    assert GDB is not None
    proc = subprocess.run(
        [
            GDB,
            "-nx",
            "-batch",
            "-ex",
            f"target remote | {sys.executable} -m rrdbg replay --gdb stdio {directory}",
            "-ex",
            "break bump",
            "-ex",
            "continue",
            "-ex",
            "info symbol $pc",
            "-ex",
            "remote get /etc/hostname " + str(tmp_path / "stolen"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    )
    out = proc.stdout + proc.stderr
    assert f"Reading symbols from target:{prog}" in out, out
    assert "Breakpoint 1, bump (by=1)" in out, out
    assert "bump + 3 in section .text" in out, out
    assert "Remote I/O error: No such file or directory" in out, out
    assert not (tmp_path / "stolen").exists()


def test_a_live_session_killed_early_saves_a_recording_that_stops_there(tmp_path: Path) -> None:
    saved = tmp_path / "early.rr"
    with rrdbg_server(["debug", "--gdb", LOCAL, "-o", str(saved), DEBUGME]) as srv:
        out = gdb_batch(
            DEBUGME,
            [
                "break bump",
                "continue",
                "continue",
                "set var counter = 40",
                "next",
                'printf "@at %d\\n", $pc',
                "monitor when",
                "reverse-stepi",
                "kill",
            ],
            port=srv.port,
        )
        srv.stop()
    (when,) = [int(v) for v in re.findall(r"^Current icount: (\d+)$", out, re.MULTILINE)]
    info = subprocess.run(
        [sys.executable, "-m", "rrdbg", "info", str(saved)], capture_output=True, check=False
    )
    assert f"instructions: {when} (the program had not finished".encode() in info.stdout, out
    assert b"ends cleanly" in info.stdout
    replay = subprocess.run(
        [sys.executable, "-m", "rrdbg", "replay", str(saved)],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout == b""
    assert b"stops at icount %d" % when in replay.stderr
    # gdb on it: the end of history is where the session was; the debugger's
    # write is replayed on the way.
    with rrdbg_server(["replay", "--gdb", LOCAL, "--once", str(saved)]) as srv:
        out = gdb_batch(DEBUGME, ["continue", "print counter", "monitor when"], port=srv.port)
        srv.stop()
    assert "No more reverse-execution history." in out
    assert "$1 = 42" in out  # 40, then bump added 2
    assert re.search(rf"^Current icount: {when}$", out, re.MULTILINE), out


def test_hostile_monitor_save_leaves_the_live_server_running(tmp_path: Path) -> None:
    with rrdbg_server(["debug", "--gdb", LOCAL, DEBUGME]) as srv:
        out = gdb_batch(
            DEBUGME,
            [
                "monitor save /proc/self/x",
                f"monitor save {tmp_path}/no/such/parent/x.rr",
                "monitor save /",
                "stepi",
                "monitor when",
                "kill",
            ],
            port=srv.port,
        )
        _status, _out, err = srv.stop()
    assert out.count("rrdbg: error: ") == 3, out
    assert "Current icount: 1" in out
    assert b"Traceback" not in err
    assert not (tmp_path / "no").exists()


def test_monitor_exit_ends_the_server_as_gdbserver_does(recording: str, tmp_path: Path) -> None:
    """gdbserver's ``monitor exit``: a replay server without --once ends
    (status 0); a live one ends too, its program killed."""
    with rrdbg_server(["replay", "--gdb", LOCAL, recording]) as srv:
        out = gdb_batch(DEBUGME, ["monitor exit"], port=srv.port)
        assert srv.proc.wait(timeout=30) == 0, out
    with rrdbg_server(["debug", "--gdb", LOCAL, "-o", str(tmp_path / "live.rr"), DEBUGME]) as srv:
        out = gdb_batch(DEBUGME, ["break square", "continue", "monitor exit"], port=srv.port)
        _status, _stdout, stderr = srv.stop()
    assert "Breakpoint 1, square" in out
    assert b"recording saved" in stderr, stderr
    assert "unknown or malformed monitor command" not in out
