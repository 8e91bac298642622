"""Real programs run exactly as natively: same stdout/stderr bytes and exit status.

The host kernel runs i386 static binaries itself, so every guest is run both
natively and under ``rrdbg run`` with the same arguments, environment and
stdin.  rrdbg's own diagnostics (lines starting with ``rrdbg:``) are removed
from stderr before comparing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import can_run_i386_natively, guest

pytestmark = pytest.mark.skipif(
    not can_run_i386_natively(), reason="this kernel cannot run i386 binaries natively"
)

ENV = {"PATH": "/usr/bin:/bin", "RRDBG_TEST": "value with spaces", "LANG": "C"}

CASES: list[tuple[str, list[str], bytes]] = [
    ("hello", [], b""),
    ("hello-musl", [], b""),
    ("hello-static-pie", [], b""),
    ("smc", [], b""),
    ("exitcode", [], b""),
    ("exitcode", ["42"], b""),
    ("exitcode", ["256"], b""),
    ("args", ["one", "two words", ""], b""),
    ("malloc", [], b""),
    ("recursion", [], b""),
    ("stdio_mix", [], b""),
    ("tls", [], b""),
    ("time_random", [], b""),
    ("stdin_echo", [], b"hello\x00world\nsecond line\n" * 100),
    ("stdin_echo", [], b""),
    ("compute", ["3"], b""),
    ("unknown_syscall", [], b""),
    ("abort", [], b""),
    ("fault_segv", [], b""),
    ("fault_ill", [], b""),
    ("fault_fpe", [], b""),
    ("signals", [], b""),
    ("sigread", [], b""),
    ("fpmath", [], b""),
]


def run(cmd: list[str], stdin: bytes, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        cmd, input=stdin, check=False, capture_output=True, env=ENV, cwd=cwd, timeout=120
    )


def rrdbg_cmd() -> list[str]:
    return [sys.executable, "-m", "rrdbg", "run"]


def own_lines_removed(stderr: bytes) -> bytes:
    return b"".join(
        line for line in stderr.splitlines(keepends=True) if not line.startswith(b"rrdbg: ")
    )


@pytest.mark.parametrize(("name", "args", "stdin"), CASES, ids=lambda v: str(v)[:20])
def test_same_as_native(name: str, args: list[str], stdin: bytes, tmp_path: Path) -> None:
    program = guest(name)
    native = run([program, *args], stdin, tmp_path)
    emulated = run([*rrdbg_cmd(), program, *args], stdin, tmp_path)
    assert emulated.stdout == native.stdout
    assert own_lines_removed(emulated.stderr) == native.stderr
    expected_status = native.returncode if native.returncode >= 0 else 128 - native.returncode
    assert emulated.returncode == expected_status


def test_files_same_as_native(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    native = run([guest("files"), str(tmp_path / "a")], b"", tmp_path)
    emulated = run([*rrdbg_cmd(), guest("files"), str(tmp_path / "b")], b"", tmp_path)
    assert native.returncode == 0
    assert (emulated.returncode, emulated.stdout, emulated.stderr) == (0, native.stdout, b"")


def test_directories_same_as_native(tmp_path: Path) -> None:
    # readdir order, errors and the old getdents records, as natively.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    native = run([guest("dirs"), str(tmp_path / "a")], b"", tmp_path)
    emulated = run([*rrdbg_cmd(), guest("dirs"), str(tmp_path / "b")], b"", tmp_path)
    assert native.returncode == 0
    assert b"  c/" in native.stdout  # the walk went two levels down
    assert (emulated.returncode, emulated.stdout, emulated.stderr) == (0, native.stdout, b"")


def test_file_system_calls_same_as_native(tmp_path: Path) -> None:
    # cwd, *at on directory fds, links, modes, times, sizes, pread/pwritev,
    # sendfile, locks, poll/select, statfs, accounting: output and the tree
    # left behind as natively.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    native = run([guest("fsops"), str(tmp_path / "a")], b"", tmp_path)
    emulated = run([*rrdbg_cmd(), guest("fsops"), str(tmp_path / "b")], b"", tmp_path)
    assert native.returncode == 0 and b"readlink a.txt" in native.stdout
    assert (emulated.returncode, emulated.stdout, emulated.stderr) == (0, native.stdout, b"")

    def tree(root: Path) -> list[tuple[str, int, bool]]:
        return sorted(
            (str(p.relative_to(root)), p.lstat().st_size, p.is_symlink()) for p in root.rglob("*")
        )

    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def _with_silent_stdin(cmd: list[str], cwd: Path) -> tuple[int, bytes]:
    """Run with stdin a pipe that stays open and empty (nothing is typed)."""
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=cwd
    )
    try:
        status = proc.wait(timeout=60)  # (a few lines of output fit in the pipe)
        assert proc.stdout is not None
        return status, proc.stdout.read()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_timer_cuts_a_read_of_silent_stdin_short(tmp_path: Path) -> None:
    # The read waits on the host as natively; the timer's signal ends it with
    # EINTR at the same virtual time, and the recording replays it.
    program = guest("sigread")
    native = _with_silent_stdin([program, "stdin"], tmp_path)
    assert native[0] == 0 and native[1].startswith(b"read: -1 Interrupted system call ticks=1\n")
    assert _with_silent_stdin([*rrdbg_cmd(), program, "stdin"], tmp_path) == native
    rec = tmp_path / "sigread.rr"
    recorded = _with_silent_stdin(
        [sys.executable, "-m", "rrdbg", "record", "-o", str(rec), program, "stdin"], tmp_path
    )
    assert recorded == native
    replayed = run([sys.executable, "-m", "rrdbg", "replay", str(rec)], b"", tmp_path)
    assert (replayed.returncode, replayed.stdout) == native


def test_stdin_from_file(tmp_path: Path) -> None:
    data = b"from a file\n"
    (tmp_path / "in.txt").write_bytes(data)
    out = run([*rrdbg_cmd(), "--stdin", "in.txt", guest("stdin_echo")], b"ignored", tmp_path)
    native = run([guest("stdin_echo")], data, tmp_path)
    assert out.returncode == 0
    assert out.stdout == native.stdout
    assert out.stdout.startswith(b"FROM A FILE\n")


def test_fault_messages(tmp_path: Path) -> None:
    segv = run([*rrdbg_cmd(), guest("fault_segv")], b"", tmp_path)
    assert segv.returncode == 139
    lines = [ln for ln in segv.stderr.decode().splitlines() if ln.startswith("rrdbg:")]
    assert len(lines) == 1
    assert lines[0].startswith("rrdbg: guest SIGSEGV at eip=0x")
    assert "accessing 0x00000010" in lines[0]
    ill = run([*rrdbg_cmd(), guest("fault_ill")], b"", tmp_path)
    assert ill.returncode == 132
    assert b"rrdbg: guest SIGILL at eip=0x" in ill.stderr
    fpe = run([*rrdbg_cmd(), guest("fault_fpe")], b"", tmp_path)
    assert fpe.returncode == 136
    assert b"rrdbg: guest SIGFPE at eip=0x" in fpe.stderr


def test_unknown_syscall_reported_once_by_name_and_number(tmp_path: Path) -> None:
    out = run([*rrdbg_cmd(), guest("unknown_syscall")], b"", tmp_path)
    assert out.returncode == 0
    reports = [ln for ln in out.stderr.decode().splitlines() if "unsupported syscall" in ln]
    assert reports == ["rrdbg: unsupported syscall unknown (32767) returns ENOSYS"]


def test_host_environment_is_the_default(tmp_path: Path) -> None:
    out = run([*rrdbg_cmd(), guest("args")], b"", tmp_path)
    assert b"value with spaces" in out.stdout


def test_guest_output_is_not_lost_through_a_pipe(tmp_path: Path) -> None:
    # 200 kB through a pipe that the reader drains slowly enough to fill.
    data = os.urandom(100_000).hex().encode()
    out = run([*rrdbg_cmd(), guest("stdin_echo")], data, tmp_path)
    native = run([guest("stdin_echo")], data, tmp_path)
    assert len(out.stdout) > 2 * 100_000
    assert out.stdout == native.stdout


def test_a_read_no_timer_signal_can_cut_short_ends_with_one_line(tmp_path: Path) -> None:
    # The timer's signal is blocked: nothing can end the read of the program's
    # own empty pipe (Linux would wait forever); rrdbg says so and ends it.
    emulated = run([*rrdbg_cmd(), guest("sigread"), "blocked"], b"", tmp_path)
    assert emulated.returncode == 137
    assert b"waits on a pipe only it could fill" in emulated.stderr
