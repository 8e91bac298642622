"""A process that has imported rrdbg once and forks a child per command.

Role: start-up is mostly importing (Python, Unicorn's binding, trio: some
150-450 ms a command); a test suite that records and serves hundreds of
small programs (the pytest plugin) pays it twice a program.  The fork
server pays it once: ``ForkServer.start()`` runs ``python -m
rrdbg.forkserver``, which imports what ``rrdbg record``, ``replay`` and
``--gdb`` servers need and waits; each ``spawn`` forks a child that runs
``rrdbg ARGS`` with the caller's standard streams, directory and
environment, as ``python -m rrdbg ARGS`` would.

Protocol (a UNIX socket pair; each message a 4-byte length and JSON):
the client sends ``{"spawn": [ARGS], "cwd": DIR, "env": {...}}`` with its
stdin, stdout and stderr descriptors attached (SCM_RIGHTS), and
``{"kill": PID, "signal": N}``; the server answers ``{"started": PID}``
(or ``{"error": TEXT}``) in order, and says ``{"exited": PID, "code": N}``
when a child ends (N < 0: killed by signal -N, as subprocess says).

Invariants: the server process has one thread (it forks); it signals only
children it has not reaped, so a pid reused by another process is never
hit; when the client goes away, the server ends (its children run on).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, BinaryIO

from rrdbg.errors import RrdbgError

_LEN = struct.Struct("<I")
#: Modules a command needs, imported once by the server.
_PRELOAD = (
    "rrdbg.cli",
    "rrdbg.record.recording",
    "rrdbg.record.index",
    "rrdbg.timeline.timeline",
    "rrdbg.machine.machine",
    "rrdbg.machine._icount",
    "rrdbg.server.gdb",
    "unicorn.unicorn_py3.arch.intel",
)
#: Seconds the server may take to import them.
START_TIMEOUT = 60.0


def _send(sock: socket.socket, message: Mapping[str, Any], fds: Sequence[int] = ()) -> None:
    data = json.dumps(message).encode()
    packet = _LEN.pack(len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [packet], list(fds))
        packet = packet[sent:]
    if packet:
        sock.sendall(packet)


def _receive(sock: socket.socket, *, fds: bool = False) -> tuple[dict[str, Any], list[int]] | None:
    """One message (and the descriptors sent with it); None at the end."""
    got: list[int] = []
    head = b""
    while len(head) < _LEN.size:
        if fds and not head:
            chunk, more, _flags, _addr = socket.recv_fds(sock, _LEN.size, 3)
            got += more
        else:
            chunk = sock.recv(_LEN.size - len(head))
        if not chunk:
            for fd in got:
                os.close(fd)
            return None
        head += chunk
    (n,) = _LEN.unpack(head)
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            return None
        body += chunk
    message = json.loads(body)
    if not isinstance(message, dict):
        raise TypeError("not a message")
    return message, got


# -- the server ----------------------------------------------------------------


def serve(sock: socket.socket) -> None:
    """The server's loop: fork on each spawn, report each end; returns when
    the client has gone."""
    for name in _PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    from rrdbg.cli import command_parser

    command_parser()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (the client's Ctrl-C is the client's)
    children: set[int] = set()
    _send(sock, {"ready": os.getpid()})
    while True:
        try:
            ready, _, _ = select.select([sock.fileno(), wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(sock, children)
        if sock.fileno() not in ready:
            continue
        try:
            got = _receive(sock, fds=True)
        except (OSError, ValueError, TypeError):
            got = None
        if got is None:
            return
        message, fds = got
        if "kill" in message:
            pid = int(message["kill"])
            if pid in children:  # (not reaped: the pid is still the child's)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, int(message.get("signal", signal.SIGKILL)))
            continue
        try:
            pid = _fork(sock, message, fds, wake_r, wake_w)
        except Exception as exc:
            _send(sock, {"error": str(exc) or type(exc).__name__})
        else:
            children.add(pid)
            _send(sock, {"started": pid})
        finally:
            for fd in fds:
                os.close(fd)


def _reap(sock: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _fork(
    sock: socket.socket, message: dict[str, Any], fds: list[int], wake_r: int, wake_w: int
) -> int:
    args = [str(a) for a in message["spawn"]]
    cwd = str(message.get("cwd") or os.getcwd())
    env = {str(k): str(v) for k, v in dict(message.get("env") or {}).items()}
    if len(fds) != 3:
        raise RrdbgError("a spawn needs stdin, stdout and stderr")
    if threading.active_count() != 1:
        raise RrdbgError("the fork server has threads: it cannot fork safely")
    pid = os.fork()
    if pid:
        return pid
    # The child: rrdbg ARGS with the client's streams, directory and
    # environment; never returns.
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sock.close()
        os.close(wake_r)
        os.close(wake_w)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        from rrdbg.cli import main

        sys.argv = ["rrdbg", *args]
        code = main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        code = 130
    except BaseException as exc:  # (a bug: say it as python -m rrdbg would)
        with contextlib.suppress(Exception):
            print(f"rrdbg: internal error: {exc!r}", file=sys.stderr)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _main() -> None:
    fd = int(sys.argv[1])
    sock = socket.socket(fileno=fd)
    with contextlib.suppress(OSError):  # (the client went away mid-message)
        serve(sock)


# -- the client ----------------------------------------------------------------


class ForkServer:
    """The client: start the server, spawn commands, end it (``close``)."""

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self._process = process
        self._sock = sock
        self._lock = threading.Lock()
        self._exited: dict[int, int] = {}
        self._replies: list[dict[str, Any]] = []
        self.closed = False

    @classmethod
    def start(cls) -> ForkServer:
        """A fork server that has imported rrdbg; RrdbgError if it cannot."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "rrdbg.forkserver", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        except OSError as exc:
            ours.close()
            raise RrdbgError(f"cannot start the fork server: {exc}") from None
        finally:
            theirs.close()
        server = cls(process, ours)
        try:
            server._take(lambda m: "ready" in m, START_TIMEOUT)
        except RrdbgError:
            server.close()
            raise RrdbgError("the fork server did not start") from None
        return server

    def _pump(self, timeout: float | None) -> bool:
        """Read one message if one arrives within ``timeout``; whether one
        did (RrdbgError once the server has gone)."""
        if self.closed:
            raise RrdbgError("the fork server has ended")
        ready, _, _ = select.select([self._sock], [], [], timeout)
        if not ready:
            return False
        try:
            got = _receive(self._sock)
        except (OSError, ValueError, TypeError):
            got = None
        if got is None:
            self.closed = True
            raise RrdbgError("the fork server has ended")
        message, _ = got
        if "exited" in message:
            self._exited[int(message["exited"])] = int(message["code"])
        else:
            self._replies.append(message)
        return True

    def _take(self, wanted: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        """The first reply ``wanted`` accepts, once it came (RrdbgError if
        none came within ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self._replies):
                if wanted(m):
                    return self._replies.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                self.closed = True
                raise RrdbgError("the fork server did not answer")
            self._pump(left)

    def spawn(
        self,
        args: Sequence[str],
        *,
        stdin: int,
        stdout: int,
        stderr: int,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Forked:
        """``rrdbg ARGS`` in a forked child with these descriptors."""
        with self._lock:
            if self.closed:
                raise RrdbgError("the fork server has ended")
            request = {
                "spawn": list(args),
                "cwd": cwd or os.getcwd(),
                "env": dict(os.environ if env is None else env),
            }
            try:
                _send(self._sock, request, [stdin, stdout, stderr])
            except OSError as exc:
                self.closed = True
                raise RrdbgError(f"the fork server has ended: {exc}") from None
            reply = self._take(lambda m: "started" in m or "error" in m, START_TIMEOUT)
            if "error" in reply:
                raise RrdbgError(f"the fork server could not start rrdbg: {reply['error']}")
            return Forked(self, int(reply["started"]))

    def _status(self, pid: int, timeout: float | None) -> int | None:
        """The child's exit code once it has ended within ``timeout``
        seconds (None: wait as long as it takes), else None."""
        with self._lock:
            deadline = None if timeout is None else time.monotonic() + timeout
            while pid not in self._exited:
                left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                try:
                    read = self._pump(left)
                except RrdbgError:
                    raise RrdbgError("the fork server ended before its child") from None
                if not read and left == 0:
                    return None
            return self._exited[pid]

    def _signal(self, pid: int, sig: int) -> None:
        with self._lock:
            if not self.closed and pid not in self._exited:
                with contextlib.suppress(OSError):
                    _send(self._sock, {"kill": pid, "signal": sig})

    def close(self) -> None:
        """End the server (children still running go on until they end)."""
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self.closed = True
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class Forked:
    """A child of the fork server, used like ``subprocess.Popen``."""

    stderr: BinaryIO | None = None

    def __init__(self, server: ForkServer, pid: int) -> None:
        self._server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._server._status(self.pid, 0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self._server._status(self.pid, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(["rrdbg"], timeout or 0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            self._server._signal(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


if __name__ == "__main__":
    _main()
