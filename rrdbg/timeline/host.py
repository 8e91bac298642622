"""The host of a timeline: replay while there is history, then (live) record.

Role: a ``Host`` that answers the guest from the ``History`` as long as
recorded events remain, and from a live, recording host once they run out
(the frontier of a live session).  A replayed recording has no live host:
running out of events there is the end of history.

Console output is shown once: a write the guest already made (at or below
``shown_until``, the furthest icount reached so far) is not printed again when
the timeline re-executes that part of history.
"""

from __future__ import annotations

from collections.abc import Callable

from rrdbg.machine.host import FileStat, Host, Ids
from rrdbg.record.files import KeptFiles
from rrdbg.record.hosts import RecordingHost, ReplayHost
from rrdbg.timeline.history import History


class TimelineHost(Host):
    def __init__(
        self,
        history: History,
        live: Host | None,
        *,
        quiet: bool = False,
        stdout_fd: int = 1,
        stderr_fd: int = 2,
        files: KeptFiles | None = None,
    ) -> None:
        self.history = history
        #: The files the guest mapped (a recording's, or this live session's).
        self.files = KeptFiles() if files is None else files
        self.replaying = ReplayHost(
            history, quiet=quiet, stdout_fd=stdout_fd, stderr_fd=stderr_fd, files=self.files
        )
        self.recording = RecordingHost(live, history, self.files) if live is not None else None
        self.live = live
        self.quiet = quiet
        #: Console output up to this icount has been shown already.
        self.shown_until = 0
        self._icount: Callable[[], int] = lambda: 0

    def set_icount(self, icount: Callable[[], int]) -> None:
        self._icount = icount
        self.replaying.icount = icount
        if self.recording is not None:
            self.recording.icount = icount

    def set_flush(self, flush: Callable[[], None]) -> None:
        if self.recording is not None:
            self.recording.flush = flush

    @property
    def at_frontier(self) -> bool:
        return self.recording is not None and self.history.exhausted

    def _pick(self) -> Host:
        if self.recording is not None and self.history.exhausted:
            return self.recording
        return self.replaying

    def environment(self) -> list[bytes]:
        return self._pick().environment()

    def ids(self) -> Ids:
        return self._pick().ids()

    def cpu_count(self) -> int:
        return self._pick().cpu_count()

    def random_bytes(self, n: int) -> bytes:
        return self._pick().random_bytes(n)

    def realtime_epoch_ns(self) -> int:
        return self._pick().realtime_epoch_ns()

    def read(self, handle: int, n: int) -> bytes | int:
        return self._pick().read(handle, n)

    def write(self, handle: int, data: bytes) -> int:
        host = self._pick()
        if host is self.replaying:
            self.replaying.quiet = self.quiet or self._icount() <= self.shown_until
        return host.write(handle, data)

    def open(self, path: bytes, flags: int, mode: int) -> int:
        return self._pick().open(path, flags, mode)

    def close(self, handle: int) -> int:
        return self._pick().close(handle)

    def lseek(self, handle: int, offset: int, whence: int) -> int:
        return self._pick().lseek(handle, offset, whence)

    def fstat(self, handle: int) -> FileStat | int:
        return self._pick().fstat(handle)

    def stat(self, path: bytes, follow: bool) -> FileStat | int:
        return self._pick().stat(path, follow)

    def access(self, path: bytes, mode: int) -> int:
        return self._pick().access(path, mode)

    def readlink(self, path: bytes) -> bytes | int:
        return self._pick().readlink(path)

    def getcwd(self) -> bytes:
        return self._pick().getcwd()

    def unlink(self, path: bytes) -> int:
        return self._pick().unlink(path)

    def getdents(self, handle: int, count: int) -> bytes | int:
        return self._pick().getdents(handle, count)

    def mkdir(self, path: bytes, mode: int) -> int:
        return self._pick().mkdir(path, mode)

    def rmdir(self, path: bytes) -> int:
        return self._pick().rmdir(path)

    def rename(self, old: bytes, new: bytes) -> int:
        return self._pick().rename(old, new)

    def map_file(self, handle: int, offset: int, length: int) -> bytes | int:
        return self._pick().map_file(handle, offset, length)

    def fs_call(self, op: str, args: tuple[int | bytes, ...]) -> int | bytes:
        return self._pick().fs_call(op, args)

    def pipe(self) -> bytes | int:
        return self._pick().pipe()

    def terminal_attrs(self, handle: int) -> bytes | int:
        return self._pick().terminal_attrs(handle)

    def window_size(self, handle: int) -> bytes | int:
        return self._pick().window_size(handle)
