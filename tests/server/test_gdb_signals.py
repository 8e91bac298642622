"""gdb 13 through signal handlers, forwards and backwards, on a recording of
the ``signals`` guest (handlers for raised signals, faults, timers)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import guest, record_quietly
from tests.server.gdbrun import gdb_batch, needs_gdb, rrdbg_server

pytestmark = needs_gdb
SIGNALS = guest("signals")


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("sig") / "signals.rr"
    record_quietly(SIGNALS, [], directory)
    return str(directory)


def session(recording: str, commands: list[str]) -> str:
    with rrdbg_server(["replay", "--gdb", "127.0.0.1:0", recording]) as server:
        return gdb_batch(SIGNALS, commands, port=server.port)


def test_backtrace_through_a_handler_and_stepping_out_backwards(recording: str) -> None:
    text = session(
        recording,
        [
            "break count",
            "continue",
            "continue",
            "bt",
            "reverse-stepi",
            "bt 1",
            "stepi",
            "stepi",
            "bt 1",
        ],
    )
    # As with gdbserver: a stop before delivery, then the handler.
    assert "Program received signal SIGUSR1, User defined signal 1." in text, text
    # gdb recognises the frame rrdbg built (the sigreturn trampoline).
    assert "<signal handler called>" in text, text
    assert "in kill ()" in text, text
    # One instruction back from the handler's entry: the interrupted one, the
    # instruction after the kill syscall, with the signal not yet delivered;
    # forwards, the signal is seen again (as rr shows it), then the handler.
    assert text.count("Program received signal SIGUSR1") == 2, text
    back = text.split("reverse-stepi")[-1] if "reverse-stepi" in text else text
    assert "#0  0x" in back and "_dl_sysinfo_int80" in back, text
    assert text.count("count (sig=10)") >= 3, text


def test_a_fault_handler_steps_back_to_the_faulting_instruction(recording: str) -> None:
    text = session(
        recording,
        [
            "handle SIGUSR1 SIGUSR2 nostop noprint pass",
            "break fault_handler",
            "continue",
            "continue",
            "print sig",
            "print si->_sifields._sigfault.si_addr",
            "reverse-stepi",
            "x/i $pc",
            "stepi",
            "bt 1",
        ],
    )
    assert "Program received signal SIGSEGV, Segmentation fault." in text, text
    assert "SIGUSR1" not in text.split("pass")[-1], text  # passed silently
    assert "$1 = 11" in text, text
    assert "$2 = (void *) 0x1234" in text, text
    # The store to 0x1234 that faulted, not retired: the pc is on it.
    assert "movl   $0x1,0x1234" in text, text
    assert "fault_handler (sig=11" in text, text


def test_timer_handlers_both_ways(recording: str) -> None:
    text = session(
        recording,
        [
            "handle SIGUSR1 SIGUSR2 SIGSEGV SIGFPE SIGILL SIGCHLD nostop noprint pass",
            "break tick",
            "continue",
            "continue",
            "print ticks",
            "reverse-continue",
            "print ticks",
            "reverse-finish",
            "delete",
            "watch ticks",
            "continue",
            "reverse-continue",
            "print ticks",
        ],
    )
    assert "$1 = 1" in text and "$2 = 0" in text, text
    # Out of the handler backwards: where the alarm interrupted the program.
    assert "in _dl_sysinfo_int80 ()" in text.split("$2 = 0")[1], text
    assert "Old value = 0" in text and "New value = 1" in text, text
    assert "$3 = 0" in text, text


def test_reverse_continue_from_the_end_finds_the_last_handler(tmp_path: Path) -> None:
    directory = tmp_path / "s.rr"
    record_quietly(SIGNALS, [], directory)
    text = session(
        str(directory),
        [
            "handle SIGUSR1 SIGUSR2 SIGSEGV SIGFPE SIGILL SIGCHLD nostop noprint pass",
            "break on_alt_handler",
            "continue",
            "continue",
            "continue",
            "reverse-continue",
            "print on_alt",
        ],
    )
    # The run ends killed by SIGTERM: gdb sees it arrive, then the end of
    # the history; backwards from there the altstack handler is found again.
    assert "Program received signal SIGTERM, Terminated." in text, text
    assert "No more reverse-execution history." in text, text
    assert text.count("on_alt_handler (sig=12)") == 2, text
    assert "$1 = 0" in text, text


def test_a_live_session_records_what_gdb_did_with_a_signal(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.server.gdbrun import GDB

    out = tmp_path / "live.rr"
    assert GDB is not None
    server = f"{sys.executable} -m rrdbg debug -o {out} --gdb stdio {SIGNALS}"
    proc = subprocess.run(
        [
            GDB,
            "-nx",
            "-batch",
            "-ex",
            f"target remote | {server}",
            "-ex",
            "continue",
            "-ex",
            "signal 0",
            "-ex",
            "handle all nostop noprint pass",
            "-ex",
            "continue",  # to the last state: SIGTERM is about to end it
            "-ex",
            "continue",
            SIGNALS,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    text = proc.stdout + proc.stderr
    # The first SIGUSR1 (from kill) is discarded: two of three reach the handler.
    assert "Program received signal SIGUSR1" in text, text
    assert "handler: 2 hits" in text, text
    assert "Program terminated with signal SIGTERM" in text, text
    replay = subprocess.run(
        [sys.executable, "-m", "rrdbg", "replay", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert replay.returncode == 143, replay.stderr
    assert replay.stdout.startswith("handler: 2 hits\n"), replay.stdout


def _live(tmp_path: Path, out: Path, commands: list[str]) -> str:
    import subprocess
    import sys

    from tests.server.gdbrun import GDB

    assert GDB is not None
    server = f"{sys.executable} -m rrdbg debug -o {out} --gdb stdio {SIGNALS}"
    argv = [GDB, "-nx", "-batch", "-ex", f"target remote | {server}"]
    for command in commands:
        argv += ["-ex", command]
    proc = subprocess.run(
        [*argv, SIGNALS], capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path
    )
    return proc.stdout + proc.stderr


def _replay(out: Path) -> tuple[int, str]:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "rrdbg", "replay", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, proc.stdout


def test_continuing_with_another_signal_is_recorded(tmp_path: Path) -> None:
    """``signal SIG`` (vCont;C): sending one the program never got, at a
    breakpoint, and replacing the one it stopped for; both are part of the
    recording, so the replay takes the same path."""
    sent = tmp_path / "sent.rr"
    text = _live(
        tmp_path,
        sent,
        [
            "break signals.c:99",  # kill(getpid(), SIGUSR1), the handler installed
            "continue",
            "signal SIGUSR1",  # one more than the program sends itself
            "handle all nostop noprint pass",
            "continue",
            "continue",
        ],
    )
    # Delivered at once (gdb sent it: no "Program received signal" for it).
    assert "Program received signal SIGUSR1" not in text, text
    assert "handler: 4 hits" in text, text
    status, stdout = _replay(sent)
    assert status == 128 + 15, stdout
    assert stdout.startswith("handler: 4 hits\n"), stdout

    replaced = tmp_path / "replaced.rr"
    text = _live(
        tmp_path,
        replaced,
        [
            "continue",  # stops before the first SIGUSR1 is delivered
            "signal SIGUSR2",  # instead of it: no handler yet, so it is fatal
        ],
    )
    assert "Program received signal SIGUSR1" in text, text
    # It ends the program where it stood (as natively: no instruction ran).
    assert "Program terminated with signal SIGUSR2" in text, text
    status, stdout = _replay(replaced)
    assert status == 128 + 12, stdout
    assert stdout == "", stdout


def test_a_restarted_read_goes_back_through_its_handlers(tmp_path: Path) -> None:
    """sigread's third read is cut by timer ticks and restarted (SA_RESTART):
    the handler's caller is the read's ``int $0x80`` again; stepping back
    from the handler shows the read's EINTR before the restart rewound it;
    reverse-continue visits the earlier ticks."""
    program = guest("sigread")
    directory = tmp_path / "sigread.rr"
    record_quietly(program, [], directory)
    with rrdbg_server(["replay", "--gdb", "127.0.0.1:0", str(directory)]) as server:
        text = gdb_batch(
            program,
            [
                "break tick_then_feed",
                "continue",
                "continue",
                "print ticks",
                "bt",
                "reverse-stepi",
                "print $eax",
                "x/2xb $pc - 2",
                "reverse-continue",
                "print ticks",
                "continue",
                "continue",
                "print ticks",
            ],
            port=server.port,
        )
    assert "$1 = 1" in text, text  # the second tick (ticks counts from 0)
    assert "#1  <signal handler called>" in text and " in read ()" in text, text
    assert "$2 = -4" in text, text  # -EINTR, until the delivery restarts it
    assert re.search(r":\s+0xcd\s+0x80", text), text  # just after the int $0x80
    assert "$3 = 0" in text and "$4 = 2" in text, text


def test_siginfo_of_the_signal_stopped_for(recording: str) -> None:
    """``$_siginfo`` (qXfer:siginfo:read): the signal, its code and, for a
    fault, the address; nothing when the stop is not for a signal."""
    text = session(
        recording,
        [
            "print $_siginfo",
            "continue",
            "print $_siginfo.si_signo",
            "print $_siginfo.si_code",
            "handle SIGUSR1 SIGUSR2 SIGALRM nostop noprint pass",
            "continue",
            "print $_siginfo.si_signo",
            "print $_siginfo.si_code",
            "print $_siginfo._sifields._sigfault.si_addr",
            "reverse-stepi",
            "print $_siginfo",
        ],
    )
    assert text.count("Unable to read siginfo") == 2, text
    assert "Program received signal SIGUSR1" in text and "$1 = 10\n$2 = 0\n" in text, text
    assert "Program received signal SIGSEGV" in text, text
    assert "$3 = 11\n$4 = 1\n$5 = (void *) 0x1234\n" in text, text  # SEGV_MAPERR
