"""Open files and the fd table: the kernel objects behind file descriptors.

An ``OpenFile`` is Linux's ``struct file`` (an open file description): the
host handle it stands for, its status flags (O_APPEND, O_NONBLOCK ...), the
path it was opened by and how many descriptors refer to it.  Its ``kind``
says what sort of object it is: the console the process inherited (fds 0-2:
whatever the host gave, a terminal, a pipe or a file), a file or a directory
of the host, or one end of a pipe the process made.

An ``FdTable`` maps descriptors to open files, with each descriptor's own
FD_CLOEXEC flag.  Descriptors are the lowest free numbers, as on Linux; the
host handle is released when the last descriptor for it closes.  Threads
share one table; ``fork`` copies it, and every process's table refers into
the machine's one dict of open files (process.py), so a file's ``refs``
counts descriptors in every process.

Invariant: every descriptor's handle is a key of ``files``, and a file's
``refs`` is the number of descriptors that refer to it.
"""

from __future__ import annotations

import enum
import errno
import os
from dataclasses import dataclass, field
from typing import Any

#: The most descriptors a process may have (RLIMIT_NOFILE's usual soft limit).
MAX_FDS = 1024
O_DIRECTORY = 0o200000


class FileKind(enum.Enum):
    CONSOLE = "console"
    FILE = "file"
    DIRECTORY = "directory"
    PIPE = "pipe"


@dataclass(slots=True)
class OpenFile:
    handle: int
    flags: int
    refs: int = 1
    #: The path it was opened by (names file mappings, as /proc/PID/maps
    #: does, and is the base of *at calls on a directory); b"pipe:[N]" for
    #: a pipe's ends; empty for the inherited console.
    path: bytes = b""

    @property
    def kind(self) -> FileKind:
        if self.path.startswith(b"pipe:"):
            return FileKind.PIPE
        if not self.path:
            return FileKind.CONSOLE
        if self.flags & O_DIRECTORY:
            return FileKind.DIRECTORY
        return FileKind.FILE


@dataclass(slots=True)
class FdTable:
    fds: dict[int, int] = field(default_factory=dict)  # fd -> host handle
    cloexec: dict[int, int] = field(default_factory=dict)  # fd -> FD_CLOEXEC (0 or 1)
    files: dict[int, OpenFile] = field(default_factory=dict)  # host handle -> file

    @classmethod
    def with_console(cls) -> FdTable:
        """Descriptors 0, 1, 2: the host's stdin, stdout and stderr."""
        table = cls()
        for fd in (0, 1, 2):
            table.fds[fd] = fd
            table.files[fd] = OpenFile(fd, os.O_RDONLY if fd == 0 else os.O_WRONLY)
        return table

    def fork(self) -> FdTable:
        """The child's table after fork: the same descriptors and flags,
        referring to the same open files (one more reference each)."""
        for handle in self.fds.values():
            self.files[handle].refs += 1
        return FdTable(dict(self.fds), dict(self.cloexec), self.files)

    def close_on_exec(self) -> list[int]:
        """The descriptors execve closes (FD_CLOEXEC)."""
        return sorted(fd for fd, flag in self.cloexec.items() if flag and fd in self.fds)

    def handle(self, fd: int) -> int | None:
        return self.fds.get(fd)

    def file(self, fd: int) -> OpenFile | None:
        handle = self.fds.get(fd)
        return None if handle is None else self.files.get(handle)

    def install(self, file: OpenFile, *, cloexec: bool = False, minimum: int = 0) -> int:
        """A new descriptor (the lowest free one from ``minimum``) for a file
        just opened; -EMFILE when none is left."""
        fd = self._free(minimum)
        if fd < 0:
            return fd
        self.files[file.handle] = file
        self._bind(fd, file.handle, cloexec)
        return fd

    def dup(self, fd: int, *, minimum: int = 0, cloexec: bool = False) -> int:
        """dup/F_DUPFD: another descriptor for the same open file."""
        handle = self.fds.get(fd)
        if handle is None:
            return -errno.EBADF
        new = self._free(minimum)
        if new < 0:
            return new
        self.files[handle].refs += 1
        self._bind(new, handle, cloexec)
        return new

    def dup_to(self, fd: int, new: int, *, cloexec: bool = False) -> int | None:
        """dup2/dup3 after the checks: ``new`` refers to ``fd``'s file; the
        handle of a file this closed for the last time, to release, or None."""
        handle = self.fds[fd]
        released = self.close(new) if new in self.fds else None
        self.files[handle].refs += 1
        self._bind(new, handle, cloexec)
        return released

    def get_cloexec(self, fd: int) -> int:
        return self.cloexec.get(fd, 0)

    def set_cloexec(self, fd: int, value: int) -> None:
        self.cloexec[fd] = value

    def close(self, fd: int) -> int | None:
        """Forget ``fd``; the host handle to release if it was the last
        descriptor of its file, else None.  (``fd`` must be open.)"""
        handle = self.fds.pop(fd)
        self.cloexec.pop(fd, None)
        f = self.files[handle]
        f.refs -= 1
        if f.refs == 0:
            del self.files[handle]
            return handle
        return None

    def lowest_free(self, minimum: int = 0) -> int:
        """The descriptor the next open (dup from ``minimum``) would get,
        or -EMFILE."""
        return self._free(minimum)

    def _free(self, minimum: int) -> int:
        fd = minimum
        while fd in self.fds:
            fd += 1
        return fd if fd < MAX_FDS else -errno.EMFILE

    def _bind(self, fd: int, handle: int, cloexec: bool) -> None:
        self.fds[fd] = handle
        if cloexec:
            self.cloexec[fd] = 1
        else:
            self.cloexec.pop(fd, None)

    # -- snapshots: the keys LinuxState has always used ----------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "fds": [[fd, h] for fd, h in sorted(self.fds.items())],
            "fd_flags": [[fd, f] for fd, f in sorted(self.cloexec.items())],
            "files": [[h, f.flags, f.refs, f.path.hex()] for h, f in sorted(self.files.items())],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FdTable:
        return cls(
            fds={int(fd): int(h) for fd, h in data["fds"]},
            cloexec={int(fd): int(f) for fd, f in data["fd_flags"]},
            files={
                int(f[0]): OpenFile(
                    int(f[0]), int(f[1]), int(f[2]), bytes.fromhex(f[3]) if len(f) > 3 else b""
                )
                for f in data["files"]
            },
        )
