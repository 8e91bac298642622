"""The pytest plugin (entry point ``pytest11: rrdbg``): record programs, serve
recordings to gdb, drive gdb through MI, and keep the recordings of failed tests.

Fixtures (factories; everything they start is stopped at teardown):

- ``rrdbg_record(program, *args, stdin=None, machine="linux", ram_mb=32,
  append="")`` runs ``rrdbg record`` and returns a ``Recorded`` (its
  directory, exit status and output).  ``stdin`` is bytes or a file path.
- ``rrdbg_serve(recording)`` serves it (``rrdbg replay --gdb``) on a free
  local port; a ``Served`` with the ``address`` to give gdb.
- ``rrdbg_gdb(recording)`` starts gdb (MI) on the recorded program and
  connects it to a server for the recording: an ``rrdbg.Gdb`` with
  ``break_at``, ``cont``, ``reverse_cont``, ``stepi``, ``reverse_stepi``,
  ``eval``, ``when``, ``seek``, ``watch``, ``finish`` ...
- ``rrdbg_open(recording)`` opens it with the Python API (``rrdbg.Recording``).

When a test fails, the recordings it made are copied to pytest's cache
(``.pytest_cache/d/rrdbg/...``) and the failure report says how to reopen
them: ``rrdbg replay --gdb :1234 PATH``.

Importing this module imports neither Unicorn nor the rest of rrdbg: the
recorder and servers are children of a fork server (``rrdbg/forkserver.py``,
started at the first recording or server of the session, so that each
skips Python's and rrdbg's start-up), or ``python -m rrdbg`` subprocesses
when it cannot start or ``RRDBG_FORKSERVER=off``; the API is imported only
by ``rrdbg_open``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

from rrdbg.errors import RrdbgError
from rrdbg.forkserver import Forked, ForkServer

if TYPE_CHECKING:
    from rrdbg.api import Recording
    from rrdbg.gdbmi import Gdb

_RECORDINGS = pytest.StashKey[list[Path]]()


@dataclass(frozen=True)
class Recorded:
    """A recording made by ``rrdbg_record``."""

    directory: Path
    program: Path
    #: ``rrdbg record``'s exit status: the guest's.
    status: int
    stdout: bytes
    stderr: bytes

    def __fspath__(self) -> str:
        return str(self.directory)


@dataclass
class Served:
    """A recording served to gdb by ``rrdbg replay --gdb``."""

    #: The server (``Forked`` has Popen's poll, wait, kill and terminate).
    process: subprocess.Popen[bytes] | Forked
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def _rrdbg(*args: str) -> list[str]:
    return [sys.executable, "-m", "rrdbg", *args]


@pytest.fixture(scope="session")
def rrdbg_forkserver() -> Iterator[ForkServer | None]:
    """The session's fork server (None: off, or it could not start; the
    fixtures then run ``python -m rrdbg``)."""
    if os.environ.get("RRDBG_FORKSERVER", "").lower() in ("off", "0", "no"):
        yield None
        return
    try:
        server = ForkServer.start()
    except RrdbgError as exc:
        sys.stderr.write(f"rrdbg: {exc}; starting each command on its own\n")
        yield None
        return
    yield server
    server.close()


def _run(forks: ForkServer | None, args: list[str], timeout: float) -> tuple[int, bytes, bytes]:
    """``rrdbg ARGS`` (forked, or a subprocess): its exit status and output."""
    if forks is None:
        proc = subprocess.run(
            _rrdbg(*args),
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        return proc.returncode, proc.stdout, proc.stderr
    with (
        open(os.devnull, "rb") as null,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        try:
            child = forks.spawn(args, stdin=null.fileno(), stdout=out.fileno(), stderr=err.fileno())
        except RrdbgError as exc:
            raise pytest.fail.Exception(f"rrdbg {' '.join(args)}: {exc}") from None
        try:
            code = child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise subprocess.TimeoutExpired(_rrdbg(*args), timeout) from None
        except BaseException:  # (Ctrl-C, or the fork server gone: as subprocess.run)
            child.kill()
            raise
        out.seek(0)
        err.seek(0)
        return code, out.read(), err.read()


def reopen_command(directory: Path) -> str:
    """The one line that serves a recording to gdb again."""
    return f"rrdbg replay --gdb :1234 {shlex.quote(str(directory))}"


def _program_of(recording: Recorded | os.PathLike[str] | str) -> Path:
    if isinstance(recording, Recorded):
        return recording.program
    info = subprocess.run(
        _rrdbg("info", os.fspath(recording)), capture_output=True, text=True, check=False
    )
    match = re.search(r"^program:\s+(.*) \(\d+ bytes", info.stdout, re.MULTILINE)
    if info.returncode != 0 or match is None:
        raise pytest.fail.Exception(f"not an rrdbg recording: {recording} ({info.stderr.strip()})")
    return Path(match.group(1))


@pytest.fixture
def rrdbg_record(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    rrdbg_forkserver: ForkServer | None,
) -> Callable[..., Recorded]:
    """Record a program; see the module docstring."""
    made = request.node.stash.setdefault(_RECORDINGS, [])

    def record(
        program: str | os.PathLike[str],
        *args: str,
        stdin: bytes | str | os.PathLike[str] | None = None,
        machine: Literal["linux", "pc"] = "linux",
        ram_mb: int | None = None,
        append: str = "",
        timeout: float = 600,
    ) -> Recorded:
        base = tmp_path_factory.mktemp("rrdbg")
        directory = base / (Path(program).name + ".rr")
        argv = ["record", "--force", "-o", str(directory)]
        if machine != "linux":
            argv += ["--machine", machine]
        if ram_mb is not None:
            argv += ["-m", str(ram_mb)]
        if append:
            argv += ["--append", append]
        if isinstance(stdin, bytes):
            source = base / "stdin"
            source.write_bytes(stdin)
            argv += ["--stdin", str(source)]
        elif stdin is not None:
            argv += ["--stdin", os.fspath(stdin)]
        argv += [os.fspath(program), *args]
        status, stdout, stderr = _run(rrdbg_forkserver, argv, timeout)
        if not (directory / "log.rrlog").exists():
            raise pytest.fail.Exception(
                f"rrdbg record {program} failed: {stderr.decode(errors='replace').strip()}"
            )
        made.append(directory)
        return Recorded(directory, Path(os.fspath(program)).resolve(), status, stdout, stderr)

    return record


@pytest.fixture
def rrdbg_serve(rrdbg_forkserver: ForkServer | None) -> Iterator[Callable[..., Served]]:
    """Serve a recording to gdb on a free port; see the module docstring."""
    started: list[Served] = []

    def serve(recording: Recorded | os.PathLike[str] | str) -> Served:
        from rrdbg.server.launch import start_server

        try:
            proc, port = start_server(
                ["replay", "--quiet", "--gdb", "127.0.0.1:0", os.fspath(recording)],
                forks=rrdbg_forkserver,
            )
        except RrdbgError as exc:
            raise pytest.fail.Exception(str(exc)) from None
        served = Served(proc, port)
        started.append(served)
        return served

    yield serve
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
        with contextlib.suppress(RrdbgError):  # (a fork server gone: killed all the same)
            served.process.wait()
        if served.process.stderr is not None:
            served.process.stderr.close()


@pytest.fixture
def rrdbg_gdb(rrdbg_serve: Callable[..., Served]) -> Iterator[Callable[..., Gdb]]:
    """gdb (MI) connected to a served recording; see the module docstring."""
    from rrdbg.gdbmi import Gdb

    if shutil.which("gdb") is None:
        pytest.skip("gdb is not installed")
    opened: list[Gdb] = []

    def start(
        recording: Recorded | os.PathLike[str] | str,
        program: str | os.PathLike[str] | None = None,
    ) -> Gdb:
        served = rrdbg_serve(recording)
        gdb = Gdb(os.fspath(program) if program is not None else str(_program_of(recording)))
        opened.append(gdb)
        gdb.connect(served.address)
        return gdb

    yield start
    for gdb in opened:
        gdb.close()


@pytest.fixture
def rrdbg_open() -> Iterator[Callable[..., Recording]]:
    """Open a recording with the Python API (closed at teardown)."""
    from rrdbg.api import Recording

    opened: list[Recording] = []

    def open_(recording: Recorded | os.PathLike[str] | str, **options: Any) -> Recording:
        r = Recording(os.fspath(recording), **options)
        opened.append(r)
        return r

    yield open_
    for r in opened:
        r.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    made = item.stash.get(_RECORDINGS, [])
    if not report.failed or not made:
        return
    kept = [_keep(item, directory) for directory in made]
    lines = ["the recordings of this test are kept; reopen with:"]
    lines += [f"  {reopen_command(path)}" for path in kept]
    report.sections.append(("rrdbg", "\n".join(lines)))
    item.stash[_RECORDINGS] = []  # once, even if setup and call both fail


def _keep(item: pytest.Item, directory: Path) -> Path:
    """Copy a failed test's recording where pytest keeps things between runs."""
    cache = getattr(item.config, "cache", None)
    if cache is None:
        return directory  # the cache plugin is off: tmp_path stays for a while too
    name = re.sub(r"[^\w.-]+", "_", item.nodeid)[-120:]
    target = Path(cache.mkdir("rrdbg")) / name / directory.name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(directory, target)
    return target
