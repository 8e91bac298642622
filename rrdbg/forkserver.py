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
(with a pidfd of the child attached, where the kernel has them) or
``{"error": TEXT}``, in order, and says ``{"exited": PID, "code": N}`` when
a child ends (N < 0: killed by signal -N, as subprocess says).

Invariants: the server process has one thread (it forks); a child's
``started`` comes before its ``exited``, and a pid is reused only after
its ``exited`` (the server reaps before it forks again), so statuses go to
the right child; signals go through the child's pidfd (or the server,
which signals only children it has not reaped), never to a reused pid;
when the client goes away, the server ends (its children run on, and can
still be signalled through their pidfds).
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
import traceback
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO, NoReturn

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
            try:
                pidfd = [os.pidfd_open(pid)]
            except (AttributeError, OSError):
                pidfd = []  # (a kernel before 5.3: signals go through the server)
            _send(sock, {"started": pid}, pidfd)
            for fd in pidfd:
                os.close(fd)
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
    if not os.path.isdir(cwd):
        raise RrdbgError(f"no directory {cwd}")
    if threading.active_count() != 1:
        raise RrdbgError("the fork server has threads: it cannot fork safely")
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # (nothing of the server's copied into a child)
    pid = os.fork()
    if not pid:
        _child(sock, args, cwd, env, fds, (wake_r, wake_w))
    return pid


def _child(
    sock: socket.socket,
    args: list[str],
    cwd: str,
    env: dict[str, str],
    fds: list[int],
    wake: tuple[int, int],
) -> NoReturn:
    """``rrdbg ARGS`` with the client's streams, directory and environment,
    as ``python -m rrdbg ARGS`` would run it; never returns."""
    code = 1
    try:
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            # (SIGPIPE stays ignored, as Python sets it at start-up.)
            sock.close()
            for fd in wake:
                os.close(fd)
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            for fd in fds:
                if fd > 2:
                    os.close(fd)
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            # Streams as a fresh interpreter would open them on these
            # descriptors (the server's were /dev/null's).
            sys.stdin = open(0, closefd=False, errors="surrogateescape")  # noqa: SIM115
            sys.stdout = open(  # noqa: SIM115
                1, "w", closefd=False, buffering=1 if os.isatty(1) else -1
            )
            sys.stderr = open(2, "w", closefd=False, buffering=1, errors="backslashreplace")  # noqa: SIM115
            from rrdbg.cli import main

            sys.argv = ["rrdbg", *args]
            code = main(args)
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:  # (as the interpreter does)
                print(exc.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            code = 130
        except BaseException:  # (a bug: shown as python -m rrdbg would)
            traceback.print_exc()
            code = 1
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(BaseException):
                    stream.flush()
    finally:
        os._exit(code if isinstance(code, int) and 0 <= code <= 255 else 1)


def _main() -> None:
    fd = int(sys.argv[1])
    sock = socket.socket(fileno=fd)
    with contextlib.suppress(OSError):  # (the client went away mid-message)
        serve(sock)


# -- the client ----------------------------------------------------------------


class ForkServer:
    """The client: start the server, spawn commands, end it (``close``).

    A reader thread takes the server's messages as they come: exits go to
    their child at once (``Forked.wait`` waits for its own), replies to the
    spawn waiting for them.  Thread-safe."""

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self._process = process
        self._sock = sock
        #: Guards the state below; notified at every message and at the end.
        self._cond = threading.Condition()
        #: One spawn at a time, so that replies pair with requests.
        self._spawning = threading.Lock()
        self._replies: list[dict[str, Any] | Forked] = []
        #: Children not reported ended, by pid.
        self._live: dict[int, Forked] = {}
        self.closed = False
        self._reader = threading.Thread(target=self._read, name="rrdbg-forkserver", daemon=True)

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
        server._reader.start()
        try:
            server._reply(START_TIMEOUT)
        except RrdbgError:
            server.close()
            raise RrdbgError("the fork server did not start") from None
        return server

    def _read(self) -> None:
        while True:
            try:
                got = _receive(self._sock, fds=True)
            except (OSError, ValueError, TypeError):
                got = None
            with self._cond:
                if got is None:
                    self.closed = True
                    self._cond.notify_all()
                    return
                message, fds = got
                if "exited" in message:
                    child = self._live.pop(int(message["exited"]), None)
                    if child is not None:
                        child._ended(int(message["code"]))
                elif "started" in message:
                    # (Registered here, before its exit can be read.)
                    child = Forked(self, int(message["started"]), fds[0] if fds else None)
                    self._live[child.pid] = child
                    self._replies.append(child)
                else:
                    for fd in fds:
                        os.close(fd)
                    self._replies.append(message)
                self._cond.notify_all()

    def _reply(self, timeout: float) -> dict[str, Any] | Forked:
        with self._cond:
            if not self._cond.wait_for(lambda: self._replies or self.closed, timeout):
                raise RrdbgError("the fork server did not answer")
            if not self._replies:
                raise RrdbgError("the fork server has ended")
            return self._replies.pop(0)

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
        request = {
            "spawn": list(args),
            "cwd": cwd or os.getcwd(),
            "env": dict(os.environ if env is None else env),
        }
        with self._spawning:
            if self.closed:
                raise RrdbgError("the fork server has ended")
            try:
                _send(self._sock, request, [stdin, stdout, stderr])
            except OSError as exc:
                raise RrdbgError(f"the fork server has ended: {exc}") from None
            reply = self._reply(START_TIMEOUT)
        if isinstance(reply, dict):
            raise RrdbgError(f"the fork server could not start rrdbg: {reply.get('error')}")
        return reply

    def _kill(self, child: Forked, sig: int) -> None:
        with self._cond:
            if child.returncode is not None:
                return
            if child._pidfd is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(child._pidfd, sig)
                return
            if not self.closed:
                with contextlib.suppress(OSError):
                    _send(self._sock, {"kill": child.pid, "signal": sig})

    def close(self) -> None:
        """End the server (children still running go on until they end)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._reader.is_alive():
            self._reader.join()
        self._sock.close()
        self.closed = True


class Forked:
    """A child of the fork server, used like ``subprocess.Popen``."""

    stderr: BinaryIO | None = None

    def __init__(self, server: ForkServer, pid: int, pidfd: int | None) -> None:
        self._server = server
        self.pid = pid
        self._pidfd = pidfd
        self.returncode: int | None = None

    def _ended(self, code: int) -> None:
        """(The reader, holding the server's lock.)"""
        self.returncode = code
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        server = self._server
        with server._cond:
            server._cond.wait_for(lambda: self.returncode is not None or server.closed, timeout)
            if self.returncode is not None:
                return self.returncode
            if server.closed:
                raise RrdbgError(f"the fork server ended before its child {self.pid}")
        raise subprocess.TimeoutExpired(["rrdbg"], timeout or 0)

    def send_signal(self, sig: int) -> None:
        self._server._kill(self, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


if __name__ == "__main__":
    _main()
