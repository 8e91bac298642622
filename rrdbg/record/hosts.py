"""Recording and replaying hosts: the two ends of determinism.

Role: ``RecordingHost`` wraps a live ``Host`` and logs every answer it gives
the guest as an event at the current icount.  ``ReplayHost`` answers the same
calls from the log alone: no files, no clock, no randomness, no stdin; its
only side effect is the guest's console output (unless quiet).

Invariant: a replay asks the same questions, in the same order, at the same
icounts, with the same arguments as the recording.  Anything else is a
``ReplayDivergence`` naming the icount and both events; it is never ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

from rrdbg.errors import ReplayDivergence
from rrdbg.machine.host import FileStat, Host, Ids
from rrdbg.record.events import (
    KeptFile,
    Kind,
    Value,
    args_crc,
    decode_payload,
    encode_payload,
)
from rrdbg.record.files import KeptFiles


class EventSink(Protocol):
    def append(self, icount: int, kind: int, payload: bytes) -> None: ...


class EventSource(Protocol):
    """What the replaying host needs from a log reader."""

    def peek(self) -> tuple[int, int, bytes] | None:
        """(icount, kind, payload) of the next event, or None at the end."""

    def advance(self) -> None:
        """Consume the event ``peek`` returned."""


def _no_icount() -> int:
    return 0


class RecordingHost(Host):
    """A live host whose every answer is also written to the log."""

    def __init__(self, live: Host, sink: EventSink, files: KeptFiles | None = None) -> None:
        self.live = live
        self.sink = sink
        #: Where mapped files are kept (None: their bytes go into the log).
        self.files = files
        #: The path each open handle was opened by, to name kept files.
        self._paths: dict[int, bytes] = {}
        #: Files already kept, by identity (device, inode, size, mtime).
        self._kept: dict[tuple[int, int, int, int], bytes] = {}
        #: Where the guest is; set by the recorder once the machine exists
        #: (calls made while loading happen at icount 0).
        self.icount: Callable[[], int] = _no_icount
        #: Called before and after each console read: the recorder flushes the
        #: log then, so a recorder killed while the guest waits for input (or
        #: just after it got some) keeps everything up to that point.
        self.flush: Callable[[], None] = lambda: None

    def _log(self, kind: Kind, args: tuple[int | bytes, ...], value: Value) -> None:
        self.sink.append(self.icount(), kind, encode_payload(args_crc(args), value))

    def environment(self) -> list[bytes]:
        value = self.live.environment()
        self._log(Kind.ENVIRONMENT, (), value)
        return value

    def ids(self) -> Ids:
        value = self.live.ids()
        self._log(Kind.IDS, (), value)
        return value

    def cpu_count(self) -> int:
        return self.live.cpu_count()  # kept in the header (new_recording)

    def random_bytes(self, n: int) -> bytes:
        value = self.live.random_bytes(n)
        self._log(Kind.RANDOM, (n,), value)
        return value

    def realtime_epoch_ns(self) -> int:
        value = self.live.realtime_epoch_ns()
        self._log(Kind.EPOCH, (), value)
        return value

    def read(self, handle: int, n: int) -> bytes | int:
        if handle == 0:
            self.flush()
        value = self.live.read(handle, n)
        self._log(Kind.READ, (handle, n), value)
        if handle == 0:
            self.flush()
        return value

    def write(self, handle: int, data: bytes) -> int:
        value = self.live.write(handle, data)
        self._log(Kind.WRITE, (handle, data), value)
        return value

    def open(self, path: bytes, flags: int, mode: int) -> int:
        value = self.live.open(path, flags, mode)
        self._log(Kind.OPEN, (path, flags, mode), value)
        if value >= 0:
            self._paths[value] = path
        return value

    def close(self, handle: int) -> int:
        value = self.live.close(handle)
        self._log(Kind.CLOSE, (handle,), value)
        self._paths.pop(handle, None)
        return value

    def pipe(self) -> bytes | int:
        value = self.live.pipe()
        self._log(Kind.PIPE, (), value)
        return value

    def fs_call(self, op: str, args: tuple[int | bytes, ...]) -> int | bytes:
        value = self.live.fs_call(op, args)
        self._log(Kind.FS_CALL, (op.encode(), *args), value)
        return value

    def map_file(self, handle: int, offset: int, length: int) -> bytes | int:
        value = self.live.map_file(handle, offset, length)
        logged: Value = value
        if isinstance(value, bytes) and self.files is not None:
            sha = self._keep(handle)
            if sha is not None and self.files.load(sha)[offset : offset + length] == value:
                logged = KeptFile(sha)
        self._log(Kind.MAP_FILE, (handle, offset, length), logged)
        return value

    def _keep(self, handle: int) -> bytes | None:
        """Keep the whole file behind ``handle``; its hash, or None if the
        host cannot say (the mapped bytes then go into the log)."""
        assert self.files is not None
        st = self.live.fstat(handle)
        if isinstance(st, int):
            return None
        key = (st.dev, st.ino, st.size, st.mtime_ns)
        sha = self._kept.get(key)
        if sha is None:
            content = self.live.file_content(handle)
            if isinstance(content, int):
                return None
            sha = self._kept[key] = self.files.keep(self._paths.get(handle, b""), content)
        return sha

    def lseek(self, handle: int, offset: int, whence: int) -> int:
        value = self.live.lseek(handle, offset, whence)
        self._log(Kind.LSEEK, (handle, offset, whence), value)
        return value

    def fstat(self, handle: int) -> FileStat | int:
        value = self.live.fstat(handle)
        self._log(Kind.FSTAT, (handle,), value)
        return value

    def stat(self, path: bytes, follow: bool) -> FileStat | int:
        value = self.live.stat(path, follow)
        self._log(Kind.STAT, (path, int(follow)), value)
        return value

    def access(self, path: bytes, mode: int) -> int:
        value = self.live.access(path, mode)
        self._log(Kind.ACCESS, (path, mode), value)
        return value

    def readlink(self, path: bytes) -> bytes | int:
        value = self.live.readlink(path)
        self._log(Kind.READLINK, (path,), value)
        return value

    def getcwd(self) -> bytes:
        value = self.live.getcwd()
        self._log(Kind.GETCWD, (), value)
        return value

    def unlink(self, path: bytes) -> int:
        value = self.live.unlink(path)
        self._log(Kind.UNLINK, (path,), value)
        return value

    def getdents(self, handle: int, count: int) -> bytes | int:
        value = self.live.getdents(handle, count)
        self._log(Kind.GETDENTS, (handle, count), value)
        return value

    def mkdir(self, path: bytes, mode: int) -> int:
        value = self.live.mkdir(path, mode)
        self._log(Kind.MKDIR, (path, mode), value)
        return value

    def rmdir(self, path: bytes) -> int:
        value = self.live.rmdir(path)
        self._log(Kind.RMDIR, (path,), value)
        return value

    def rename(self, old: bytes, new: bytes) -> int:
        value = self.live.rename(old, new)
        self._log(Kind.RENAME, (old, new), value)
        return value

    def terminal_attrs(self, handle: int) -> bytes | int:
        value = self.live.terminal_attrs(handle)
        self._log(Kind.TERMINAL_ATTRS, (handle,), value)
        return value

    def window_size(self, handle: int) -> bytes | int:
        value = self.live.window_size(handle)
        self._log(Kind.WINDOW_SIZE, (handle,), value)
        return value


def _describe(kind: int) -> str:
    try:
        return Kind(kind).name.lower()
    except ValueError:
        return f"kind {kind}"


class ReplayHost(Host):
    """Answers the guest from a recording; touches nothing on the real host."""

    def __init__(
        self,
        source: EventSource,
        *,
        quiet: bool = False,
        stdout_fd: int = 1,
        stderr_fd: int = 2,
        files: KeptFiles | None = None,
    ) -> None:
        self.source = source
        #: The recording's kept files (mapped bytes that are not in the log).
        self.files = files
        self.quiet = quiet
        self._console = {1: stdout_fd, 2: stderr_fd}
        self.icount: Callable[[], int] = _no_icount

    def _next(self, kind: Kind, args: tuple[int | bytes, ...]) -> Value:
        here = self.icount()
        event = self.source.peek()
        wanted = f"{kind.name.lower()}{_shown(args)} at icount {here}"
        if event is None:
            raise ReplayDivergence(
                f"replay diverged: the guest asked for {wanted}, "
                "but the recording has no more events"
            )
        icount, got_kind, payload = event
        if got_kind != kind or icount != here:
            raise ReplayDivergence(
                f"replay diverged: the guest asked for {wanted}, but the recording has "
                f"{_describe(got_kind)} at icount {icount}"
            )
        crc, value = decode_payload(payload)
        if crc != args_crc(args):
            raise ReplayDivergence(
                f"replay diverged at icount {here}: {kind.name.lower()} called with other "
                "arguments than in the recording"
            )
        self.source.advance()
        return value

    def _int(self, kind: Kind, args: tuple[int | bytes, ...]) -> int:
        value = self._next(kind, args)
        if not isinstance(value, int):
            raise ReplayDivergence(f"recorded {kind.name.lower()} result is not a number")
        return value

    def _bytes_or_int(self, kind: Kind, args: tuple[int | bytes, ...]) -> bytes | int:
        value = self._next(kind, args)
        if not isinstance(value, bytes | int):
            raise ReplayDivergence(f"recorded {kind.name.lower()} result has the wrong type")
        return value

    def _stat(self, kind: Kind, args: tuple[int | bytes, ...]) -> FileStat | int:
        value = self._next(kind, args)
        if not isinstance(value, FileStat | int):
            raise ReplayDivergence(f"recorded {kind.name.lower()} result has the wrong type")
        return value

    def environment(self) -> list[bytes]:
        value = self._next(Kind.ENVIRONMENT, ())
        if not isinstance(value, list):
            raise ReplayDivergence("recorded environment has the wrong type")
        return value

    def ids(self) -> Ids:
        value = self._next(Kind.IDS, ())
        if not isinstance(value, Ids):
            raise ReplayDivergence("recorded ids have the wrong type")
        return value

    def random_bytes(self, n: int) -> bytes:
        value = self._bytes_or_int(Kind.RANDOM, (n,))
        if not isinstance(value, bytes):
            raise ReplayDivergence("recorded random bytes have the wrong type")
        return value

    def realtime_epoch_ns(self) -> int:
        return self._int(Kind.EPOCH, ())

    def read(self, handle: int, n: int) -> bytes | int:
        return self._bytes_or_int(Kind.READ, (handle, n))

    def write(self, handle: int, data: bytes) -> int:
        result = self._int(Kind.WRITE, (handle, data))
        fd = self._console.get(handle)
        if fd is not None and not self.quiet and result > 0:
            # The guest's console output is replay's one visible effect: write
            # what the recorded write accepted, all of it.
            view = memoryview(data)[:result]
            while view:
                view = view[os.write(fd, view) :]
        return result

    def open(self, path: bytes, flags: int, mode: int) -> int:
        return self._int(Kind.OPEN, (path, flags, mode))

    def close(self, handle: int) -> int:
        return self._int(Kind.CLOSE, (handle,))

    def lseek(self, handle: int, offset: int, whence: int) -> int:
        return self._int(Kind.LSEEK, (handle, offset, whence))

    def fstat(self, handle: int) -> FileStat | int:
        return self._stat(Kind.FSTAT, (handle,))

    def stat(self, path: bytes, follow: bool) -> FileStat | int:
        return self._stat(Kind.STAT, (path, int(follow)))

    def access(self, path: bytes, mode: int) -> int:
        return self._int(Kind.ACCESS, (path, mode))

    def readlink(self, path: bytes) -> bytes | int:
        return self._bytes_or_int(Kind.READLINK, (path,))

    def getcwd(self) -> bytes:
        value = self._bytes_or_int(Kind.GETCWD, ())
        if not isinstance(value, bytes):
            raise ReplayDivergence("recorded cwd has the wrong type")
        return value

    def unlink(self, path: bytes) -> int:
        return self._int(Kind.UNLINK, (path,))

    def getdents(self, handle: int, count: int) -> bytes | int:
        return self._bytes_or_int(Kind.GETDENTS, (handle, count))

    def mkdir(self, path: bytes, mode: int) -> int:
        return self._int(Kind.MKDIR, (path, mode))

    def rmdir(self, path: bytes) -> int:
        return self._int(Kind.RMDIR, (path,))

    def rename(self, old: bytes, new: bytes) -> int:
        return self._int(Kind.RENAME, (old, new))

    def pipe(self) -> bytes | int:
        return self._bytes_or_int(Kind.PIPE, ())

    def fs_call(self, op: str, args: tuple[int | bytes, ...]) -> int | bytes:
        return self._bytes_or_int(Kind.FS_CALL, (op.encode(), *args))

    def map_file(self, handle: int, offset: int, length: int) -> bytes | int:
        event = self.source.peek()
        if event is not None and event[1] == Kind.LSEEK and event[0] == self.icount():
            return self._legacy_map_file(handle, offset, length)
        value = self._next(Kind.MAP_FILE, (handle, offset, length))
        if isinstance(value, KeptFile):
            if self.files is None:
                raise ReplayDivergence("the recording maps a kept file, but none are available")
            return self.files.load(value.sha256)[offset : offset + length]
        if not isinstance(value, bytes | int):
            raise ReplayDivergence("recorded map_file result has the wrong type")
        return value

    def _legacy_map_file(self, handle: int, offset: int, length: int) -> bytes | int:
        """Recordings made before MAP_FILE read a mapping with lseek, read, lseek."""
        here = self.lseek(handle, 0, os.SEEK_CUR)
        if here < 0:
            return -13  # EACCES, as those versions answered
        pos = self.lseek(handle, offset, os.SEEK_SET)
        if pos < 0:
            return pos
        got = self.read(handle, length)
        self.lseek(handle, here, os.SEEK_SET)
        return got

    def terminal_attrs(self, handle: int) -> bytes | int:
        return self._bytes_or_int(Kind.TERMINAL_ATTRS, (handle,))

    def window_size(self, handle: int) -> bytes | int:
        return self._bytes_or_int(Kind.WINDOW_SIZE, (handle,))


def _shown(args: tuple[int | bytes, ...]) -> str:
    parts = []
    for a in args:
        if isinstance(a, bytes):
            parts.append(repr(a[:32]) + ("..." if len(a) > 32 else ""))
        else:
            parts.append(str(a))
    return "(" + ", ".join(parts) + ")"
