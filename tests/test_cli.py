"""Bad input of every kind gets one clear ``rrdbg:`` line and exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rrdbg.cli import main
from tests.conftest import guest


def rrdbg(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rrdbg", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rrdbg: ")
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


def _patched(tmp_path: Path, name: str, offset: int, data: bytes) -> str:
    image = bytearray(Path(guest("hello")).read_bytes())
    image[offset : offset + len(data)] = data
    path = tmp_path / name
    path.write_bytes(bytes(image))
    return str(path)


def test_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(rrdbg("run", str(tmp_path / "nope")), "no such file")


def test_directory(tmp_path: Path) -> None:
    assert_one_line_error(rrdbg("run", str(tmp_path)), "is a directory")


def test_not_an_elf(tmp_path: Path) -> None:
    (tmp_path / "script.sh").write_text("#!/bin/sh\necho hi\n")
    assert_one_line_error(rrdbg("run", str(tmp_path / "script.sh")), "not an ELF file")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert_one_line_error(rrdbg("run", str(tmp_path / "empty")), "not an ELF file")


def test_64_bit_elf() -> None:
    assert_one_line_error(rrdbg("run", sys.executable), "64-bit", "32-bit i386")


def test_non_x86_elf(tmp_path: Path) -> None:
    arm = _patched(tmp_path, "arm", 18, (40).to_bytes(2, "little"))  # e_machine = EM_ARM
    assert_one_line_error(rrdbg("run", arm), "EM_ARM", "i386")


def test_truncated_elf(tmp_path: Path) -> None:
    image = Path(guest("hello")).read_bytes()[:200]
    (tmp_path / "cut").write_bytes(image)
    assert_one_line_error(rrdbg("run", str(tmp_path / "cut")), "cut")


def test_garbage_program_headers(tmp_path: Path) -> None:
    bad = _patched(tmp_path, "badph", 28, (0x7FFFFFF0).to_bytes(4, "little"))  # e_phoff
    assert_one_line_error(rrdbg("run", bad), "badph")


def test_missing_stdin_file(tmp_path: Path) -> None:
    assert_one_line_error(
        rrdbg("run", "--stdin", str(tmp_path / "none"), guest("hello")), "--stdin"
    )


def test_no_program() -> None:
    assert_one_line_error(rrdbg("run"), "PROGRAM")


def test_unknown_option() -> None:
    assert_one_line_error(rrdbg("run", "--frobnicate", guest("hello")), "--frobnicate")


def test_unknown_command() -> None:
    assert_one_line_error(rrdbg("explode"), "explode")


def test_no_command_prints_help() -> None:
    proc = rrdbg()
    assert proc.returncode == 2
    assert "usage: rrdbg" in proc.stderr


def test_program_arguments_that_look_like_options_go_to_the_guest() -> None:
    proc = rrdbg("run", guest("args"), "--stdin", "-x")
    assert proc.returncode == 0
    assert "--stdin" in proc.stdout
    assert "-x" in proc.stdout


def test_icount_flag_reports_count() -> None:
    proc = rrdbg("run", "--icount", guest("exitcode"), "5")
    assert proc.returncode == 5
    assert proc.stderr.startswith("rrdbg: ")
    assert proc.stderr.rstrip().endswith("instructions")


def test_main_returns_status_in_process(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["run", guest("exitcode"), "9"]) == 9


def test_ctrl_c_interrupts_a_spinning_guest_promptly() -> None:
    import signal
    import time

    # SIGINT may be ignored in a non-interactive parent; the child must see
    # it as a terminal's Ctrl-C would arrive.
    old = signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rrdbg", "run", guest("spin")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    finally:
        signal.signal(signal.SIGINT, old)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"spinning\n"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err == b"rrdbg: interrupted\n"


@pytest.mark.parametrize("addr", ["bogus", ":99999", "host:", "1.2.3.4:x"])
def test_bad_gdb_address(addr: str, tmp_path: Path) -> None:
    assert_one_line_error(rrdbg("replay", "--gdb", addr, str(tmp_path)), "bad gdb address")
    assert_one_line_error(rrdbg("debug", "--gdb", addr, guest("debugme")), "bad gdb address")


def test_gdb_address_that_cannot_be_listened_on(tmp_path: Path) -> None:
    out = tmp_path / "never.rr"
    proc = rrdbg("debug", "--gdb", "192.0.2.1:1234", "-o", str(out), guest("debugme"))
    assert_one_line_error(proc, "cannot serve gdb on 192.0.2.1:1234")
    assert not out.exists()  # nothing created


def test_debug_and_replay_server_argument_errors(tmp_path: Path) -> None:
    assert_one_line_error(rrdbg("debug", "--gdb", ":0"), "PROGRAM")
    assert_one_line_error(rrdbg("debug", "--gdb", ":0", str(tmp_path / "nope")), "no such file")
    assert_one_line_error(
        rrdbg("debug", "--gdb", ":0", "--stdin", str(tmp_path / "nope"), guest("debugme")),
        "--stdin",
    )
    assert_one_line_error(rrdbg("replay", "--once", str(tmp_path)), "--once")
    assert_one_line_error(
        rrdbg("replay", "--gdb", ":0", str(tmp_path / "nope")), "no such recording"
    )
    existing = tmp_path / "exists.rr"
    existing.mkdir()
    (existing / "x").write_text("x")
    assert_one_line_error(
        rrdbg("debug", "--gdb", ":0", "-o", str(existing), guest("debugme")), "already exists"
    )


@pytest.mark.parametrize("command", ["replay", "debug"])
def test_ctrl_c_on_a_server_is_one_line_and_status_130(command: str, tmp_path: Path) -> None:
    import signal

    from tests.conftest import record_quietly

    if command == "replay":
        rec = tmp_path / "h.rr"
        record_quietly(guest("hello"), [], rec)
        args = ["replay", "--gdb", "127.0.0.1:0", str(rec)]
    else:
        args = ["debug", "--gdb", "127.0.0.1:0", guest("hello")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rrdbg", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline().startswith("rrdbg: waiting for gdb")
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=30) == 130
    assert rest == "rrdbg: interrupted\n"


def test_a_closed_pipe_is_not_a_traceback(tmp_path: Path) -> None:
    from tests.conftest import record_quietly

    rec = tmp_path / "h.rr"
    record_quietly(guest("hello"), [], rec)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rrdbg", "info", str(rec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head -0`: the reader is gone before the first line
    assert proc.wait(timeout=30) == 141
    assert proc.stderr.read() == b""


@pytest.mark.parametrize("closed", ["stdout", "stderr"])
def test_the_program_ends_cleanly_with_a_standard_stream_closed(closed: str) -> None:
    # (rrdbg ends with os._exit after flushing its streams: Python sets a
    # stream it was started without to None.)
    fd = 1 if closed == "stdout" else 2
    keep = {1: subprocess.DEVNULL, 2: subprocess.DEVNULL}
    proc = subprocess.run(
        ["sh", "-c", f'exec "$0" -m rrdbg run "$1" {fd}>&-', sys.executable, guest("exitcode")],
        check=False,
        stdout=keep[1],
        stderr=keep[2],
        timeout=60,
    )
    assert proc.returncode == 3
