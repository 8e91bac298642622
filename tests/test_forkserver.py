"""The fork server (rrdbg/forkserver.py): commands forked from a process
that has imported rrdbg once, with the caller's streams, directory and
environment; exit statuses as subprocess gives them; signals only to its
own children; it ends when its client does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rrdbg.errors import RrdbgError
from rrdbg.forkserver import ForkServer
from rrdbg.server.launch import start_server
from tests.conftest import guest

HELLO = guest("hello")
DEBUGME = guest("debugme")


@pytest.fixture(scope="module")
def forks() -> Iterator[ForkServer]:
    server = ForkServer.start()
    yield server
    server.close()


def _run(forks: ForkServer, args: list[str], **options: object) -> tuple[int, bytes, bytes]:
    with (
        open(os.devnull, "rb") as null,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        child = forks.spawn(
            args,
            stdin=null.fileno(),
            stdout=out.fileno(),
            stderr=err.fileno(),
            **options,  # type: ignore[arg-type]
        )
        code = child.wait(60)
        out.seek(0)
        err.seek(0)
        return code, out.read(), err.read()


def test_a_command_runs_as_python_m_rrdbg_would(forks: ForkServer, tmp_path: Path) -> None:
    code, out, _ = _run(forks, ["record", "-o", str(tmp_path / "d.rr"), DEBUGME])
    assert (code, out) == (7, b"total=55 counter=15\n")  # the guest's status and output
    assert (tmp_path / "d.rr" / "log.rrlog").exists()
    native = subprocess.run(
        [sys.executable, "-m", "rrdbg", "replay", str(tmp_path / "d.rr")],
        capture_output=True,
        check=False,
    )
    code2, out2, _ = _run(forks, ["replay", str(tmp_path / "d.rr")])
    assert (code2, out2) == (native.returncode, native.stdout)


def test_directory_and_environment_are_the_callers(forks: ForkServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "RRDBG_CACHE_DIR": str(cache)}
    code, out, _ = _run(
        forks, ["run", os.path.basename(HELLO)], cwd=os.path.dirname(HELLO), env=env
    )
    assert (code, out) == (0, b"Hello, world!\n")
    assert any(cache.iterdir())  # (the loader's cache, where the environment said)


def test_errors_and_usage_give_statuses(forks: ForkServer, tmp_path: Path) -> None:
    code, _, err = _run(forks, ["replay", str(tmp_path / "missing")])
    assert code != 0 and err.startswith(b"rrdbg: ") and err.count(b"\n") == 1
    code, _, err = _run(forks, ["no-such-command"])
    assert code == 2 and b"rrdbg" in err


def test_a_server_is_killed_and_reports_the_signal(forks: ForkServer, tmp_path: Path) -> None:
    _run(forks, ["record", "-o", str(tmp_path / "d.rr"), DEBUGME])
    proc, port = start_server(
        ["replay", "--gdb", "127.0.0.1:0", str(tmp_path / "d.rr")], forks=forks
    )
    assert port > 0 and proc.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(0.05)
    proc.kill()
    assert proc.wait(10) == -signal.SIGKILL
    assert proc.poll() == -signal.SIGKILL
    proc.kill()  # (ended: nothing is signalled)
    assert proc.stderr is not None
    proc.stderr.close()


def test_a_server_that_cannot_start_says_why(forks: ForkServer, tmp_path: Path) -> None:
    with pytest.raises(RrdbgError, match="did not start"):
        start_server(["replay", "--gdb", "127.0.0.1:0", str(tmp_path / "missing")], forks=forks)


def test_the_server_ends_with_its_client() -> None:
    server = ForkServer.start()
    server._sock.shutdown(socket.SHUT_RDWR)  # (as when the client's process ends)
    assert server._process.wait(10) == 0
    server.close()
    with pytest.raises(RrdbgError, match="ended"):
        server.spawn(["ls"], stdin=0, stdout=1, stderr=2)


def test_wait_in_one_thread_kill_from_another(forks: ForkServer, tmp_path: Path) -> None:
    _run(forks, ["record", "-o", str(tmp_path / "d.rr"), DEBUGME])
    args = ["replay", "--gdb", "127.0.0.1:0", str(tmp_path / "d.rr")]
    proc, _port = start_server(args, forks=forks)
    codes: list[int] = []
    waiter = threading.Thread(target=lambda: codes.append(proc.wait()))
    waiter.start()
    time.sleep(0.05)
    proc.terminate()  # (not behind the waiter)
    waiter.join(10)
    assert codes == [-signal.SIGTERM]
    assert proc.stderr is not None
    proc.stderr.close()


def test_a_closed_pipe_is_an_error_as_for_python_m_rrdbg(forks: ForkServer) -> None:
    # SIGPIPE stays ignored in the children, as in any Python program.
    def status(spawn: bool) -> int:
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            if spawn:
                with open(os.devnull, "rb") as null:
                    return forks.spawn(
                        ["run", HELLO], stdin=null.fileno(), stdout=write_end, stderr=write_end
                    ).wait(60)
            return subprocess.run(
                [sys.executable, "-m", "rrdbg", "run", HELLO],
                stdout=write_end,
                stderr=write_end,
                check=False,
            ).returncode
        finally:
            os.close(write_end)

    assert status(True) == status(False) != -signal.SIGPIPE


def test_a_missing_directory_is_refused(forks: ForkServer, tmp_path: Path) -> None:
    with pytest.raises(RrdbgError, match="no directory"):
        forks.spawn(["ls"], stdin=0, stdout=1, stderr=2, cwd=str(tmp_path / "gone"))
    assert _run(forks, ["ls", str(tmp_path)])[0] == 0  # (and it goes on)


def test_a_dead_server_is_an_error_not_a_hang() -> None:
    server = ForkServer.start()
    server._process.kill()
    server._process.wait()

    with pytest.raises(RrdbgError, match="ended"):
        server.spawn(["ls"], stdin=0, stdout=1, stderr=2)
    server.close()
