"""The host interface: the one door through which the outside world reaches the guest.

Role: every value a guest can observe that does not follow from its program
and its earlier inputs (environment, ids, random bytes, the wall-clock epoch,
console input, host files) is obtained by calling a ``Host`` method.  The
machine never touches ``os``, ``time`` or ``random`` itself.  Recording wraps
a live host and logs each result; replay substitutes the log.

Results are plain data (bytes, ints, small frozen dataclasses).  Failures are
negative errno values, exactly as the Linux syscall would return them, so a
recorded failure replays like a recorded success.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat as stat_mod
import struct
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ids:
    pid: int
    ppid: int
    uid: int
    euid: int
    gid: int
    egid: int


@dataclass(frozen=True, slots=True)
class FileStat:
    """What stat(2) says about a file, independent of any struct layout."""

    dev: int
    ino: int
    mode: int
    nlink: int
    uid: int
    gid: int
    rdev: int
    size: int
    blksize: int
    blocks: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int


def _to_stat(st: os.stat_result) -> FileStat:
    return FileStat(
        dev=st.st_dev,
        ino=st.st_ino,
        mode=st.st_mode,
        nlink=st.st_nlink,
        uid=st.st_uid,
        gid=st.st_gid,
        rdev=st.st_rdev,
        size=st.st_size,
        blksize=st.st_blksize,
        blocks=st.st_blocks,
        atime_ns=st.st_atime_ns,
        mtime_ns=st.st_mtime_ns,
        ctime_ns=st.st_ctime_ns,
    )


class Host(ABC):
    """Everything the guest can learn from outside the machine.

    File handles are small integers chosen by the host; console handles 0, 1
    and 2 always exist and stand for the guest's stdin, stdout and stderr.
    """

    @abstractmethod
    def environment(self) -> list[bytes]: ...
    @abstractmethod
    def ids(self) -> Ids: ...
    @abstractmethod
    def random_bytes(self, n: int) -> bytes: ...
    @abstractmethod
    def realtime_epoch_ns(self) -> int:
        """Wall-clock time at boot; guest clocks advance from it in virtual time."""

    def cpu_count(self) -> int:
        """How many CPUs the guest is told it may use (sched_getaffinity).
        A recording keeps the number in its header (not as an event), so
        hosts that replay say 1 and the replay takes the header's."""
        return 1

    @abstractmethod
    def read(self, handle: int, n: int) -> bytes | int: ...
    @abstractmethod
    def write(self, handle: int, data: bytes) -> int: ...
    @abstractmethod
    def open(self, path: bytes, flags: int, mode: int) -> int: ...
    @abstractmethod
    def close(self, handle: int) -> int: ...
    @abstractmethod
    def lseek(self, handle: int, offset: int, whence: int) -> int: ...
    @abstractmethod
    def fstat(self, handle: int) -> FileStat | int: ...
    @abstractmethod
    def stat(self, path: bytes, follow: bool) -> FileStat | int: ...
    @abstractmethod
    def access(self, path: bytes, mode: int) -> int: ...
    @abstractmethod
    def readlink(self, path: bytes) -> bytes | int: ...
    @abstractmethod
    def getcwd(self) -> bytes: ...
    @abstractmethod
    def unlink(self, path: bytes) -> int: ...
    @abstractmethod
    def getdents(self, handle: int, count: int) -> bytes | int:
        """Up to ``count`` bytes of the directory's next entries, as Linux's
        ``getdents64`` gives them (``struct linux_dirent64`` records, in the
        file system's own order, ``.`` and ``..`` included); b"" at the end."""

    @abstractmethod
    def mkdir(self, path: bytes, mode: int) -> int: ...
    @abstractmethod
    def rmdir(self, path: bytes) -> int: ...
    @abstractmethod
    def rename(self, old: bytes, new: bytes) -> int: ...
    @abstractmethod
    def map_file(self, handle: int, offset: int, length: int) -> bytes | int:
        """The bytes a file mapping of ``length`` bytes at ``offset`` shows
        (fewer at the end of the file), without moving the file position."""

    @abstractmethod
    def pipe(self) -> bytes | int:
        """A new pipe: its read and write handles (two little-endian u32),
        or -errno.  Both ends are non-blocking on the host: one process
        cannot wait on a pipe only it can fill (the kernel decides)."""

    @abstractmethod
    def fs_call(self, op: str, args: tuple[int | bytes, ...]) -> int | bytes:
        """One of the file-system operations in ``FS_OPS`` (metadata, links,
        the working directory, positioned I/O, sync, locks, poll): an int
        (0, a count, or -errno) or bytes, as each documents."""

    def file_content(self, handle: int) -> bytes | int:
        """The whole file behind ``handle``: what a recording keeps of a
        mapped file.  Only live hosts can answer."""
        return -errno.ENOSYS

    @abstractmethod
    def terminal_attrs(self, handle: int) -> bytes | int:
        """The i386 ``struct termios`` of a terminal handle, or -ENOTTY."""

    @abstractmethod
    def window_size(self, handle: int) -> bytes | int:
        """The ``struct winsize`` of a terminal handle, or -ENOTTY."""


# Guest open(2) flag bits on i386 (the same values as on x86-64 Linux hosts,
# but spelled out so a host with other values still gets the guest's meaning).
O_ACCMODE = 0o3
O_CREAT = 0o100
O_EXCL = 0o200
O_NOCTTY = 0o400
O_TRUNC = 0o1000
O_APPEND = 0o2000
O_NONBLOCK = 0o4000
O_DIRECTORY = 0o200000
O_NOFOLLOW = 0o400000
O_CLOEXEC = 0o2000000
O_LARGEFILE = 0o100000

_FLAG_MAP = (
    (O_CREAT, os.O_CREAT),
    (O_EXCL, os.O_EXCL),
    (O_NOCTTY, os.O_NOCTTY),
    (O_TRUNC, os.O_TRUNC),
    (O_APPEND, os.O_APPEND),
    (O_NONBLOCK, os.O_NONBLOCK),
    (O_DIRECTORY, os.O_DIRECTORY),
    (O_NOFOLLOW, os.O_NOFOLLOW),
)


def _errno_of(exc: OSError) -> int:
    return -(exc.errno or errno.EIO)


#: The host's getdents64 system call (x86-64 Linux): the listing in the file
#: system's own order, as the guest's libc expects it.
_SYS_GETDENTS64_X86_64 = 217


def _host_getdents64(fd: int, count: int) -> bytes | int:
    """The host's getdents64 on ``fd`` (Linux x86-64 hosts; elsewhere a
    listing built from os.scandir in the same record format)."""
    import ctypes
    import platform

    count = max(0, min(count, 1 << 20))
    if platform.system() == "Linux" and platform.machine() == "x86_64":
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(count)
        n = libc.syscall(_SYS_GETDENTS64_X86_64, fd, buf, ctypes.c_uint(count))
        if n < 0:
            return -ctypes.get_errno()
        return buf.raw[:n]
    return -errno.ENOSYS


#: The operations of ``Host.fs_call``: name -> (arguments, result).
FS_OPS = {
    "realdir": ("path", "the canonical absolute path of a directory (chdir), or -errno"),
    "chmod": ("path, mode, follow", "int"),
    "fchmod": ("handle, mode", "int"),
    "chown": ("path, uid, gid, follow (uid/gid -1: unchanged)", "int"),
    "fchown": ("handle, uid, gid", "int"),
    "utimens": ("path, atime_ns, mtime_ns, follow (-1 now, -2 unchanged)", "int"),
    "futimens": ("handle, atime_ns, mtime_ns", "int"),
    "truncate": ("path, length", "int"),
    "ftruncate": ("handle, length", "int"),
    "fsync": ("handle", "int"),
    "fdatasync": ("handle", "int"),
    "link": ("old, new, follow", "int"),
    "symlink": ("target, path", "int"),
    "pread": ("handle, count, offset", "bytes, or -errno"),
    "pwrite": ("handle, data, offset", "int: bytes written"),
    "statfs": (
        "path",
        "12 u64: type, bsize, blocks, bfree, bavail, files, ffree, fsid0, fsid1, "
        "namelen, frsize, flags",
    ),
    "fstatfs": ("handle", "as statfs"),
    "flock": ("handle, operation", "int"),
    "fallocate": ("handle, mode, offset, length", "int"),
    "poll": ("(handle i32, events i16) records, timeout_ms", "revents i16 per record, or -errno"),
    "getxattr": ("path or handle, name, follow", "the value, or -errno"),
    "listxattr": ("path or handle, follow", "the names, each NUL-terminated, or -errno"),
    "setxattr": ("path or handle, name, value, flags, follow", "int"),
    "removexattr": ("path or handle, name, follow", "int"),
    "procfile": (
        "path, contents (a /proc file the kernel made)",
        "a handle to a read-only file holding the contents, or -errno",
    ),
    "procdir": (
        "path, entries (a /proc directory the kernel made: per entry a d_type byte, "
        "the name, a NUL; /proc itself also lists the host's entries that are not pids)",
        "a handle to a directory holding those entries, or -errno",
    ),
}

_UTIME_NOW, _UTIME_OMIT = -1, -2


def _pread_all(fd: int, offset: int, length: int) -> bytes | int:
    """``length`` bytes at ``offset`` (fewer at the end of the file)."""
    parts = []
    try:
        while length > 0:
            got = os.pread(fd, min(length, 1 << 24), offset)
            if not got:
                break
            parts.append(got)
            offset += len(got)
            length -= len(got)
    except OSError as exc:
        # What mmap(2) says: a pipe or a directory cannot be mapped, a file
        # open for writing only cannot be read.
        if exc.errno in (errno.ESPIPE, errno.EISDIR):
            return -errno.ENODEV
        return -errno.EACCES if exc.errno == errno.EBADF else _errno_of(exc)
    return b"".join(parts)


class LiveHost(Host):
    """The real host: the process environment, its files and its console."""

    def __init__(
        self,
        *,
        stdin_path: str | None = None,
        environ: Mapping[str, str] | None = None,
        stdout_fd: int = 1,
        stderr_fd: int = 2,
        sysroot: str | None = None,
    ) -> None:
        """``sysroot``: absolute paths the guest reads (open, stat, access,
        readlink) resolve under this directory first, like qemu-user's
        ``-L``: a Debian i386 tree supplies the loader and libraries."""
        self._sysroot = os.fsencode(os.path.abspath(sysroot)) if sysroot else None
        env = os.environ if environ is None else environ
        self._env = [f"{k}={v}".encode() for k, v in env.items()]
        self._fds: dict[int, int] = {}
        # Console handles: the guest's stdin may come from a file.
        stdin_fd = 0
        if stdin_path is not None:
            stdin_fd = os.open(stdin_path, os.O_RDONLY | os.O_CLOEXEC)
        self._fds = {0: stdin_fd, 1: stdout_fd, 2: stderr_fd}
        self._own = {stdin_fd} if stdin_path is not None else set()
        self._next = 3
        #: Directories made for "procdir" handles, removed when they close.
        self._made_dirs: dict[int, str] = {}

    def environment(self) -> list[bytes]:
        return list(self._env)

    def cpu_count(self) -> int:
        return len(os.sched_getaffinity(0))

    def ids(self) -> Ids:
        return Ids(
            pid=os.getpid(),
            ppid=os.getppid(),
            uid=os.getuid(),
            euid=os.geteuid(),
            gid=os.getgid(),
            egid=os.getegid(),
        )

    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)

    def realtime_epoch_ns(self) -> int:
        return time.time_ns()

    def _fd(self, handle: int) -> int | None:
        return self._fds.get(handle)

    def _in_root(self, path: bytes) -> bytes:
        if self._sysroot is None or not path.startswith(b"/"):
            return path
        inside = self._sysroot + path
        return inside if os.path.lexists(inside) else path

    def read(self, handle: int, n: int) -> bytes | int:
        fd = self._fd(handle)
        if fd is None:
            return -errno.EBADF
        try:
            return os.read(fd, n)
        except OSError as exc:
            return _errno_of(exc)

    def write(self, handle: int, data: bytes) -> int:
        fd = self._fd(handle)
        if fd is None:
            return -errno.EBADF
        try:
            if handle in (1, 2):
                # Console output must not be lost: write it all.
                view = memoryview(data)
                while view:
                    done = os.write(fd, view)
                    view = view[done:]
                return len(data)
            return os.write(fd, data)
        except OSError as exc:
            return _errno_of(exc)

    def open(self, path: bytes, flags: int, mode: int) -> int:
        host_flags = flags & O_ACCMODE
        for guest_bit, host_bit in _FLAG_MAP:
            if flags & guest_bit:
                host_flags |= host_bit
        try:
            fd = os.open(self._in_root(path), host_flags | os.O_CLOEXEC, mode)
        except OSError as exc:
            return _errno_of(exc)
        handle = self._next
        self._next += 1
        self._fds[handle] = fd
        self._own.add(fd)
        return handle

    def close(self, handle: int) -> int:
        fd = self._fds.pop(handle, None)
        made = self._made_dirs.pop(handle, None)
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        if fd is None:
            return -errno.EBADF
        if fd in self._own:
            self._own.discard(fd)
            try:
                os.close(fd)
            except OSError as exc:
                return _errno_of(exc)
        return 0

    def lseek(self, handle: int, offset: int, whence: int) -> int:
        fd = self._fd(handle)
        if fd is None:
            return -errno.EBADF
        try:
            return os.lseek(fd, offset, whence)
        except OSError as exc:
            return _errno_of(exc)

    def fstat(self, handle: int) -> FileStat | int:
        fd = self._fd(handle)
        if fd is None:
            return -errno.EBADF
        try:
            return _to_stat(os.fstat(fd))
        except OSError as exc:
            return _errno_of(exc)

    def stat(self, path: bytes, follow: bool) -> FileStat | int:
        try:
            return _to_stat(os.stat(self._in_root(path), follow_symlinks=follow))
        except OSError as exc:
            return _errno_of(exc)

    def access(self, path: bytes, mode: int) -> int:
        path = self._in_root(path)
        try:
            os.stat(path)
        except OSError as exc:
            return _errno_of(exc)
        return 0 if os.access(path, mode) else -errno.EACCES

    def readlink(self, path: bytes) -> bytes | int:
        if path == b"/proc/self/exe":
            return -errno.ENOENT  # the guest is not a host process
        try:
            return os.readlink(self._in_root(path))
        except OSError as exc:
            return _errno_of(exc)

    def getcwd(self) -> bytes:
        return os.getcwdb()

    def unlink(self, path: bytes) -> int:
        try:
            os.unlink(path)
        except OSError as exc:
            return _errno_of(exc)
        return 0

    def getdents(self, handle: int, count: int) -> bytes | int:
        fd = self._fd(handle)
        if fd is None:
            return -errno.EBADF
        return _host_getdents64(fd, count)

    def mkdir(self, path: bytes, mode: int) -> int:
        try:
            os.mkdir(path, mode)
        except OSError as exc:
            return _errno_of(exc)
        return 0

    def rmdir(self, path: bytes) -> int:
        try:
            os.rmdir(path)
        except OSError as exc:
            return _errno_of(exc)
        return 0

    def rename(self, old: bytes, new: bytes) -> int:
        try:
            os.rename(old, new)
        except OSError as exc:
            return _errno_of(exc)
        return 0

    def map_file(self, handle: int, offset: int, length: int) -> bytes | int:
        fd = self._fd(handle)
        if fd is None:
            return -errno.EBADF
        return _pread_all(fd, offset, length)

    def file_content(self, handle: int) -> bytes | int:
        fd = self._fd(handle)
        if fd is None:
            return -errno.EBADF
        try:
            size = os.fstat(fd).st_size
        except OSError as exc:
            return _errno_of(exc)
        return _pread_all(fd, 0, size)

    def pipe(self) -> bytes | int:
        try:
            read_fd, write_fd = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            return _errno_of(exc)
        handles = []
        for fd in (read_fd, write_fd):
            handle = self._next
            self._next += 1
            self._fds[handle] = fd
            self._own.add(fd)
            handles.append(handle)
        return struct.pack("<II", *handles)

    def fs_call(self, op: str, args: tuple[int | bytes, ...]) -> int | bytes:
        method = getattr(self, "_fs_" + op, None)
        if op not in FS_OPS or method is None:
            return -errno.ENOSYS
        try:
            result: int | bytes = method(*args)
        except OSError as exc:
            return _errno_of(exc)
        except (TypeError, ValueError, OverflowError):
            return -errno.EINVAL
        return result

    def _need(self, handle: int) -> int:
        fd = self._fd(handle)
        if fd is None:
            raise OSError(errno.EBADF, "bad handle")
        return fd

    def _fs_realdir(self, path: bytes) -> bytes:
        fd = os.open(self._in_root(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return os.fsencode(os.readlink(f"/proc/self/fd/{fd}"))
        finally:
            os.close(fd)

    def _fs_chmod(self, path: bytes, mode: int, follow: int) -> int:
        os.chmod(path, mode, follow_symlinks=bool(follow))
        return 0

    def _fs_fchmod(self, handle: int, mode: int) -> int:
        os.fchmod(self._need(handle), mode)
        return 0

    def _fs_chown(self, path: bytes, uid: int, gid: int, follow: int) -> int:
        os.chown(path, uid, gid, follow_symlinks=bool(follow))
        return 0

    def _fs_fchown(self, handle: int, uid: int, gid: int) -> int:
        os.fchown(self._need(handle), uid, gid)
        return 0

    def _times(self, target: int | bytes, atime: int, mtime: int, follow: bool) -> tuple[int, int]:
        if _UTIME_OMIT in (atime, mtime):
            st = os.stat(target, follow_symlinks=follow)
            atime = st.st_atime_ns if atime == _UTIME_OMIT else atime
            mtime = st.st_mtime_ns if mtime == _UTIME_OMIT else mtime
        now = time.time_ns()
        return (now if atime == _UTIME_NOW else atime, now if mtime == _UTIME_NOW else mtime)

    def _fs_utimens(self, path: bytes, atime: int, mtime: int, follow: int) -> int:
        os.utime(
            path, ns=self._times(path, atime, mtime, bool(follow)), follow_symlinks=bool(follow)
        )
        return 0

    def _fs_futimens(self, handle: int, atime: int, mtime: int) -> int:
        fd = self._need(handle)
        os.utime(fd, ns=self._times(fd, atime, mtime, True))
        return 0

    def _fs_truncate(self, path: bytes, length: int) -> int:
        os.truncate(path, length)
        return 0

    def _fs_ftruncate(self, handle: int, length: int) -> int:
        os.ftruncate(self._need(handle), length)
        return 0

    def _fs_fsync(self, handle: int) -> int:
        fd = self._need(handle)
        if handle > 2:  # the console is not synced
            os.fsync(fd)
        return 0

    def _fs_fdatasync(self, handle: int) -> int:
        fd = self._need(handle)
        if handle > 2:
            os.fdatasync(fd)
        return 0

    def _fs_link(self, old: bytes, new: bytes, follow: int) -> int:
        os.link(old, new, follow_symlinks=bool(follow))
        return 0

    def _fs_symlink(self, target: bytes, path: bytes) -> int:
        os.symlink(target, path)
        return 0

    def _fs_pread(self, handle: int, count: int, offset: int) -> bytes:
        return os.pread(self._need(handle), count, offset)

    def _fs_pwrite(self, handle: int, data: bytes, offset: int) -> int:
        return os.pwrite(self._need(handle), data, offset)

    def _fs_statfs(self, path: bytes) -> bytes | int:
        return _statfs(self._in_root(path))

    def _fs_fstatfs(self, handle: int) -> bytes | int:
        return _statfs(self._need(handle))

    def _fs_flock(self, handle: int, operation: int) -> int:
        import fcntl

        fcntl.flock(self._need(handle), operation)
        return 0

    def _fs_fallocate(self, handle: int, mode: int, offset: int, length: int) -> int:
        if mode:
            return -errno.EOPNOTSUPP
        os.posix_fallocate(self._need(handle), offset, length)
        return 0

    def _fs_poll(self, records: bytes, timeout_ms: int) -> bytes | int:
        import select

        poller = select.poll()
        entries = [struct.unpack_from("<ih", records, i) for i in range(0, len(records), 6)]
        for handle, events in entries:
            fd = self._fd(handle)
            if fd is not None:
                poller.register(fd, events & 0xFFFF)
        ready = dict(poller.poll(None if timeout_ms < 0 else timeout_ms))
        out = b""
        for handle, _events in entries:
            fd = self._fd(handle)
            revents = 0x20 if fd is None else ready.get(fd, 0)  # POLLNVAL
            out += struct.pack("<h", revents if revents < 0x8000 else revents - 0x10000)
        return out

    def _xattr_target(self, target: int | bytes) -> int | bytes:
        return self._need(target) if isinstance(target, int) else self._in_root(target)

    def _fs_getxattr(self, target: int | bytes, name: bytes, follow: int) -> bytes:
        return os.getxattr(self._xattr_target(target), name, follow_symlinks=bool(follow))

    def _fs_listxattr(self, target: int | bytes, follow: int) -> bytes:
        names = os.listxattr(self._xattr_target(target), follow_symlinks=bool(follow))
        return b"".join(os.fsencode(n) + b"\0" for n in names)

    def _fs_setxattr(
        self, target: int | bytes, name: bytes, value: bytes, flags: int, follow: int
    ) -> int:
        os.setxattr(self._xattr_target(target), name, value, flags, follow_symlinks=bool(follow))
        return 0

    def _fs_removexattr(self, target: int | bytes, name: bytes, follow: int) -> int:
        os.removexattr(self._xattr_target(target), name, follow_symlinks=bool(follow))
        return 0

    def _fs_procfile(self, path: bytes, contents: bytes) -> int:
        # A memory file: the guest reads, seeks, stats and maps it as it
        # would the real /proc file (whose contents the kernel made).
        fd = os.memfd_create(os.fsdecode(path).replace("/", "_")[-200:] or "proc", os.MFD_CLOEXEC)
        try:
            os.write(fd, contents)
            os.lseek(fd, 0, os.SEEK_SET)
        except OSError:
            os.close(fd)
            raise
        handle = self._next
        self._next += 1
        self._fds[handle] = fd
        self._own.add(fd)
        return handle

    def _fs_procdir(self, path: bytes, entries: bytes) -> int:
        # A real directory holding the entries (getdents, fstat, fchdir work
        # on it as on any), removed when the handle closes.
        made = tempfile.mkdtemp(prefix="rrdbg-proc-")
        try:
            listed: list[tuple[int, bytes]] = []
            for record in entries.split(b"\0")[:-1]:
                listed.append((record[0], record[1:]))
            if path.rstrip(b"/") == b"/proc":
                with os.scandir(b"/proc") as it:
                    for e in it:
                        if not e.name.isdigit() and e.name not in (b"self", b"thread-self"):
                            kind = 4 if e.is_dir(follow_symlinks=False) else 8
                            listed.append((10 if e.is_symlink() else kind, e.name))
            for kind, name in listed:
                if not name or b"/" in name or name in (b".", b".."):
                    continue
                where = os.path.join(os.fsencode(made), name)
                if kind == 4:
                    os.mkdir(where)
                elif kind == 10:
                    os.symlink(b"/", where)
                else:
                    os.close(os.open(where, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o444))
            fd = os.open(made, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            shutil.rmtree(made, ignore_errors=True)
            raise
        handle = self._next
        self._next += 1
        self._fds[handle] = fd
        self._own.add(fd)
        self._made_dirs[handle] = made
        return handle

    def terminal_attrs(self, handle: int) -> bytes | int:
        fd = self._fd(handle)
        if fd is None:
            return -errno.EBADF
        if not os.isatty(fd):
            return -errno.ENOTTY
        import termios

        try:
            iflag, oflag, cflag, lflag, _ispeed, _ospeed, cc = termios.tcgetattr(fd)
        except termios.error:
            return -errno.ENOTTY
        ccbytes = bytes(c if isinstance(c, int) else c[0] for c in cc[:19])
        return struct.pack("<4IB19s", iflag, oflag, cflag, lflag, 0, ccbytes.ljust(19, b"\0"))

    def window_size(self, handle: int) -> bytes | int:
        fd = self._fd(handle)
        if fd is None:
            return -errno.EBADF
        if not os.isatty(fd):
            return -errno.ENOTTY
        try:
            size = os.get_terminal_size(fd)
        except OSError as exc:
            return _errno_of(exc)
        return struct.pack("<4H", size.lines, size.columns, 0, 0)

    def shutdown(self) -> None:
        for fd in list(self._own):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._own.clear()
        for made in self._made_dirs.values():
            shutil.rmtree(made, ignore_errors=True)
        self._made_dirs.clear()


def is_directory(mode: int) -> bool:
    return stat_mod.S_ISDIR(mode)


class SeededHost(LiveHost):
    """A live host whose nondeterministic answers are fixed by a seed.

    Files and the console are still the real ones; random bytes, the clock
    epoch and the process ids are not.  Tests use it to compare runs.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        stdin_path: str | None = None,
        environ: Mapping[str, str] | None = None,
        stdout_fd: int = 1,
        stderr_fd: int = 2,
        epoch_ns: int = 1_700_000_000_000_000_000,
    ) -> None:
        super().__init__(
            stdin_path=stdin_path,
            environ={} if environ is None else environ,
            stdout_fd=stdout_fd,
            stderr_fd=stderr_fd,
        )
        import random

        self._rng = random.Random(seed)
        self._epoch = epoch_ns

    def ids(self) -> Ids:
        return Ids(pid=1000, ppid=999, uid=1000, euid=1000, gid=1000, egid=1000)

    def random_bytes(self, n: int) -> bytes:
        return self._rng.randbytes(n)

    def realtime_epoch_ns(self) -> int:
        return self._epoch


def _statfs(target: int | bytes) -> bytes | int:
    """statfs(2)/fstatfs(2) through libc: Python's statvfs has no f_type."""
    import ctypes

    buf = ctypes.create_string_buffer(120)  # x86-64 struct statfs
    libc = ctypes.CDLL(None, use_errno=True)
    call = libc.fstatfs if isinstance(target, int) else libc.statfs
    if call(target, buf) != 0:
        return -ctypes.get_errno()
    (f_type, bsize, blocks, bfree, bavail, files, ffree, fsid0, fsid1, namelen, frsize, flags) = (
        struct.unpack_from("<qqQQQQQiiqqq", buf.raw)
    )
    return struct.pack(
        "<12Q",
        f_type & 0xFFFFFFFF,
        bsize,
        blocks,
        bfree,
        bavail,
        files,
        ffree,
        fsid0 & 0xFFFFFFFF,
        fsid1 & 0xFFFFFFFF,
        namelen,
        frsize,
        flags,
    )
