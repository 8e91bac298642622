"""Linux i386 system calls for a single-threaded static program (``int 0x80``).

Role: turn a syscall (number in EAX, arguments in EBX, ECX, EDX, ESI, EDI,
EBP) into effects on guest memory and a result in EAX.  Anything the call
observes from outside the machine goes through the ``Host``; the rest (memory
map, brk, fd table, signal dispositions, virtual clocks) is state kept here,
so the same inputs always give the same results.

Time is virtual: one retired instruction is one nanosecond, plus whatever the
guest has slept.  CLOCK_REALTIME adds the host's wall-clock time at boot.

Errors are returned, never raised: a bad guest pointer gives -EFAULT, an
unknown syscall -ENOSYS (reported once on stderr by name and number).
"""

from __future__ import annotations

import errno
import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from rrdbg.errors import GuestMemoryError
from rrdbg.machine.cpu import TLS_ENTRIES, TLS_FIRST_ENTRY
from rrdbg.machine.host import FileStat, Host, Ids
from rrdbg.machine.memory import PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, GuestMemory, page_up
from rrdbg.machine.syscall_names import SYSCALL_NAMES

MMAP_TOP = 0xB7F00000
#: End of user space (3G/1G split). Above it live rrdbg's own pages (the GDT):
#: no syscall may map, unmap or re-protect anything there.
USER_TOP = 0xC0000000
NS_PER_INSN = 1
#: CLOCK_MONOTONIC at icount 0: a machine that has been up for a while.
MONOTONIC_BASE_NS = 1_000_000_000

_MAP_SHARED = 0x01
_MAP_PRIVATE = 0x02
_MAP_FIXED = 0x10
_MAP_ANONYMOUS = 0x20
_MAP_FIXED_NOREPLACE = 0x100000
_MREMAP_MAYMOVE = 1
_MREMAP_FIXED = 2
_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_EMPTY_PATH = 0x1000
_RLIM_INFINITY64 = (1 << 64) - 1

_TCGETS = 0x5401
_TCSETS, _TCSETSW, _TCSETSF = 0x5402, 0x5403, 0x5404
_TIOCGWINSZ = 0x5413
_TIOCGPGRP = 0x540F
_FIONBIO = 0x5421

_SIGPIPE = 13
_SIG_DFL = 0
_SIG_IGN = 1
#: Signals whose default action is to do nothing.
_DEFAULT_IGNORED = {17, 23, 28}  # SIGCHLD, SIGURG, SIGWINCH

_UTSNAME = (b"Linux", b"rrdbg", b"6.1.0-rrdbg", b"#1 SMP PREEMPT_DYNAMIC", b"i686", b"(none)")


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How the process ended: an exit code, or the signal that killed it."""

    code: int | None = None
    signal: int | None = None

    @property
    def shell_status(self) -> int:
        """The status a shell reports: the code, or 128 + signal."""
        if self.signal is not None:
            return 128 + self.signal
        return (self.code or 0) & 0xFF


@dataclass(slots=True)
class OpenFile:
    handle: int
    flags: int
    refs: int = 1


@dataclass(slots=True)
class LinuxState:
    """Kernel-side state of the process (part of a machine snapshot)."""

    brk_start: int = 0
    brk: int = 0
    sleep_ns: int = 0
    tid_address: int = 0
    fds: dict[int, int] = field(default_factory=dict)  # guest fd -> host handle
    fd_flags: dict[int, int] = field(default_factory=dict)  # guest fd -> FD_CLOEXEC
    files: dict[int, OpenFile] = field(default_factory=dict)  # host handle -> file
    sigactions: dict[int, bytes] = field(default_factory=dict)
    sigmask: int = 0
    tls: dict[int, bytes] = field(default_factory=dict)  # GDT index -> user_desc

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (vmstate stores it; no pickle of untrusted files)."""
        return {
            "brk_start": self.brk_start,
            "brk": self.brk,
            "sleep_ns": self.sleep_ns,
            "tid_address": self.tid_address,
            "fds": [[fd, h] for fd, h in sorted(self.fds.items())],
            "fd_flags": [[fd, f] for fd, f in sorted(self.fd_flags.items())],
            "files": [[h, f.flags, f.refs] for h, f in sorted(self.files.items())],
            "sigactions": [[s, a.hex()] for s, a in sorted(self.sigactions.items())],
            "sigmask": self.sigmask,
            "tls": [[i, d.hex()] for i, d in sorted(self.tls.items())],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinuxState:
        """Inverse of ``to_json``; raises KeyError/TypeError/ValueError on bad input."""
        return cls(
            brk_start=int(data["brk_start"]),
            brk=int(data["brk"]),
            sleep_ns=int(data["sleep_ns"]),
            tid_address=int(data["tid_address"]),
            fds={int(fd): int(h) for fd, h in data["fds"]},
            fd_flags={int(fd): int(f) for fd, f in data["fd_flags"]},
            files={int(h): OpenFile(int(h), int(fl), int(r)) for h, fl, r in data["files"]},
            sigactions={int(s): bytes.fromhex(a) for s, a in data["sigactions"]},
            sigmask=int(data["sigmask"]),
            tls={int(i): bytes.fromhex(d) for i, d in data["tls"]},
        )


SyscallHandler = Callable[["Linux", int, int, int, int, int, int], int]
_TABLE: dict[int, SyscallHandler] = {}


def syscall(nr: int) -> Callable[[SyscallHandler], SyscallHandler]:
    def register(fn: SyscallHandler) -> SyscallHandler:
        _TABLE[nr] = fn
        return fn

    return register


class ProcessExit(Exception):  # control flow; never escapes the machine
    """Raised by exit/kill handlers; the machine stops with ``status``."""

    def __init__(self, status: ExitStatus) -> None:
        super().__init__(status)
        self.status = status


class Linux:
    """The syscall layer of one process."""

    def __init__(
        self,
        memory: GuestMemory,
        host: Host,
        *,
        exe_path: bytes,
        set_tls: Callable[[int, int, int, int, int], None],
        clear_tls: Callable[[int], None],
        icount: Callable[[], int],
        ids: Ids,
        epoch_ns: int,
        warn: TextIO | None = None,
    ) -> None:
        self.mem = memory
        self.host = host
        self.exe_path = exe_path
        self._set_tls = set_tls
        self._clear_tls = clear_tls
        self._icount = icount
        self.ids = ids
        self.epoch_ns = epoch_ns
        self.state = LinuxState()
        self._warn = warn if warn is not None else sys.stderr
        self._reported: set[int] = set()
        for fd in (0, 1, 2):
            self.state.fds[fd] = fd
            self.state.files[fd] = OpenFile(fd, (os.O_RDONLY if fd == 0 else os.O_WRONLY))

    def set_brk_start(self, addr: int) -> None:
        self.state.brk_start = self.state.brk = addr

    # -- dispatch ------------------------------------------------------
    def dispatch(self, nr: int, args: list[int]) -> int:
        """Run syscall ``nr``; returns EAX (negative errno on failure)."""
        handler = _TABLE.get(nr)
        if handler is None:
            if nr not in self._reported:
                self._reported.add(nr)
                name = SYSCALL_NAMES.get(nr, "unknown")
                self._warn.write(f"rrdbg: unsupported syscall {name} ({nr}) returns ENOSYS\n")
                self._warn.flush()
            return -errno.ENOSYS
        try:
            return handler(self, *args[:6])
        except GuestMemoryError:
            return -errno.EFAULT

    # -- helpers -------------------------------------------------------
    def virtual_ns(self) -> int:
        return self._icount() * NS_PER_INSN + self.state.sleep_ns

    def _clock_ns(self, clock: int) -> int | None:
        if clock in (0, 5, 8, 11):  # REALTIME, REALTIME_COARSE, _ALARM, TAI
            return self.epoch_ns + self.virtual_ns()
        if clock in (1, 4, 6, 7, 9):  # MONOTONIC, _RAW, _COARSE, BOOTTIME, _ALARM
            return MONOTONIC_BASE_NS + self.virtual_ns()
        if clock in (2, 3):  # process / thread CPU time
            return self._icount() * NS_PER_INSN
        return None

    def _path(self, addr: int) -> bytes:
        return self.mem.read_cstring(addr, 4096)

    def _resolve(self, dirfd: int, path: bytes) -> bytes | int:
        """A path for the host, relative paths only against the cwd."""
        if path.startswith(b"/") or _signed(dirfd) == _AT_FDCWD:
            return path
        return -errno.ENOTSUP

    def _handle(self, fd: int) -> int | None:
        return self.state.fds.get(_signed(fd))

    def _new_fd(self, handle: int, minimum: int = 0) -> int:
        fd = minimum
        while fd in self.state.fds:
            fd += 1
        self.state.fds[fd] = handle
        return fd

    def _close_fd(self, fd: int) -> int:
        handle = self.state.fds.pop(fd, None)
        if handle is None:
            return -errno.EBADF
        self.state.fd_flags.pop(fd, None)
        f = self.state.files[handle]
        f.refs -= 1
        if f.refs == 0:
            del self.state.files[handle]
            return self.host.close(handle)
        return 0

    def _stat64(self, st: FileStat) -> bytes:
        return struct.pack(
            "<Q4xIIIIIQ4xqIQIIIIIIQ",
            st.dev,
            st.ino & 0xFFFFFFFF,
            st.mode,
            st.nlink,
            st.uid,
            st.gid,
            st.rdev,
            st.size,
            st.blksize,
            st.blocks,
            *_ts32(st.atime_ns),
            *_ts32(st.mtime_ns),
            *_ts32(st.ctime_ns),
            st.ino,
        )

    def _statx(self, st: FileStat) -> bytes:
        def ts(ns: int) -> bytes:
            return struct.pack("<qIi", ns // 1_000_000_000, ns % 1_000_000_000, 0)

        head = struct.pack(
            "<IIQIIIHHQQQQ",
            0x7FF,  # STATX_BASIC_STATS
            st.blksize,
            0,
            st.nlink,
            st.uid,
            st.gid,
            st.mode,
            0,
            st.ino,
            st.size,
            st.blocks,
            0,
        )
        times = ts(st.atime_ns) + ts(0) + ts(st.ctime_ns) + ts(st.mtime_ns)
        devs = struct.pack(
            "<IIII", os.major(st.rdev), os.minor(st.rdev), os.major(st.dev), os.minor(st.dev)
        )
        return (head + times + devs).ljust(256, b"\0")

    def _write_result(self, addr: int, data: bytes) -> None:
        self.mem.write(addr, data)

    def kill_self(self, sig: int) -> int:
        """Deliver ``sig`` to the process (no user handlers run yet)."""
        if sig == 0:
            return 0
        if not 1 <= sig <= 64:
            return -errno.EINVAL
        action = self.state.sigactions.get(sig)
        handler = struct.unpack_from("<I", action)[0] if action else _SIG_DFL
        blocked = bool(self.state.sigmask & (1 << (sig - 1))) and sig not in (9, 19)
        if handler == _SIG_IGN or (handler == _SIG_DFL and sig in _DEFAULT_IGNORED):
            return 0
        if blocked:
            return 0  # stays pending forever: nothing delivers it later
        raise ProcessExit(ExitStatus(signal=sig))


def _signed(x: int) -> int:
    return x - (1 << 32) if x & 0x80000000 else x


def _ts32(ns: int) -> tuple[int, int]:
    return (ns // 1_000_000_000) & 0xFFFFFFFF, ns % 1_000_000_000


def _u32(x: int) -> int:
    return x & 0xFFFFFFFF


# ---------------------------------------------------------------------------
# Process lifetime and identity
# ---------------------------------------------------------------------------


@syscall(1)  # exit
@syscall(252)  # exit_group
def _exit(k: Linux, code: int, *_: int) -> int:
    raise ProcessExit(ExitStatus(code=code & 0xFF))


@syscall(20)  # getpid
def _getpid(k: Linux, *_: int) -> int:
    return k.ids.pid


@syscall(224)  # gettid
def _gettid(k: Linux, *_: int) -> int:
    return k.ids.pid


@syscall(64)  # getppid
def _getppid(k: Linux, *_: int) -> int:
    return k.ids.ppid


@syscall(24)  # getuid
@syscall(199)  # getuid32
def _getuid(k: Linux, *_: int) -> int:
    return k.ids.uid


@syscall(49)  # geteuid
@syscall(201)  # geteuid32
def _geteuid(k: Linux, *_: int) -> int:
    return k.ids.euid


@syscall(47)  # getgid
@syscall(200)  # getgid32
def _getgid(k: Linux, *_: int) -> int:
    return k.ids.gid


@syscall(50)  # getegid
@syscall(202)  # getegid32
def _getegid(k: Linux, *_: int) -> int:
    return k.ids.egid


@syscall(37)  # kill
def _kill(k: Linux, pid: int, sig: int, *_: int) -> int:
    if _signed(pid) not in (0, -1, k.ids.pid):
        return -errno.ESRCH
    return k.kill_self(sig)


@syscall(238)  # tkill
def _tkill(k: Linux, tid: int, sig: int, *_: int) -> int:
    if tid != k.ids.pid:
        return -errno.ESRCH
    return k.kill_self(sig)


@syscall(270)  # tgkill
def _tgkill(k: Linux, tgid: int, tid: int, sig: int, *_: int) -> int:
    if tgid != k.ids.pid or tid != k.ids.pid:
        return -errno.ESRCH
    return k.kill_self(sig)


@syscall(122)  # uname
def _uname(k: Linux, buf: int, *_: int) -> int:
    k._write_result(buf, b"".join(f.ljust(65, b"\0") for f in _UTSNAME))
    return 0


@syscall(258)  # set_tid_address
def _set_tid_address(k: Linux, addr: int, *_: int) -> int:
    k.state.tid_address = addr
    return k.ids.pid


@syscall(311)  # set_robust_list
def _set_robust_list(k: Linux, head: int, length: int, *_: int) -> int:
    return 0 if length == 12 else -errno.EINVAL


@syscall(386)  # rseq
def _rseq(k: Linux, *_: int) -> int:
    # Restartable sequences only matter with preemption; a single-threaded
    # machine never preempts.  glibc copes with ENOSYS here silently.
    return -errno.ENOSYS


@syscall(340)  # prlimit64
def _prlimit64(k: Linux, pid: int, resource: int, new: int, old: int, *_: int) -> int:
    if pid not in (0, k.ids.pid):
        return -errno.ESRCH
    if old:
        k._write_result(old, struct.pack("<QQ", *_rlimit(resource)))
    return 0


@syscall(191)  # ugetrlimit
@syscall(76)  # getrlimit
def _ugetrlimit(k: Linux, resource: int, buf: int, *_: int) -> int:
    soft, hard = (min(v, 0xFFFFFFFF) for v in _rlimit(resource))
    k._write_result(buf, struct.pack("<II", soft, hard))
    return 0


def _rlimit(resource: int) -> tuple[int, int]:
    if resource == 3:  # RLIMIT_STACK
        return 8 << 20, _RLIM_INFINITY64
    if resource == 7:  # RLIMIT_NOFILE
        return 1024, 4096
    return _RLIM_INFINITY64, _RLIM_INFINITY64


# ---------------------------------------------------------------------------
# Files and the console
# ---------------------------------------------------------------------------


@syscall(3)  # read
def _read(k: Linux, fd: int, buf: int, count: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    count = min(count, 1 << 24)
    if not k.mem.is_mapped(buf, count, PROT_WRITE):
        return -errno.EFAULT
    data = k.host.read(handle, count)
    if isinstance(data, int):
        return data
    k.mem.write(buf, data)
    return len(data)


@syscall(4)  # write
def _write(k: Linux, fd: int, buf: int, count: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    return _written(k, k.host.write(handle, k.mem.read(buf, count)))


def _written(k: Linux, result: int) -> int:
    """A write to a pipe nobody reads raises SIGPIPE first, as on Linux."""
    if result == -errno.EPIPE:
        k.kill_self(_SIGPIPE)
    return result


@syscall(145)  # readv
def _readv(k: Linux, fd: int, iov: int, iovcnt: int, *_: int) -> int:
    total = 0
    for base, length in _iovecs(k, iov, iovcnt):
        if length == 0:
            continue
        got = _read(k, fd, base, length, 0, 0, 0)
        if got < 0:
            return got if total == 0 else total
        total += got
        if got < length:
            break
    return total


@syscall(146)  # writev
def _writev(k: Linux, fd: int, iov: int, iovcnt: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    data = b"".join(k.mem.read(base, length) for base, length in _iovecs(k, iov, iovcnt))
    if not data:
        return 0
    return _written(k, k.host.write(handle, data))


def _iovecs(k: Linux, iov: int, iovcnt: int) -> list[tuple[int, int]]:
    if iovcnt > 1024:
        raise GuestMemoryError("too many iovecs", iov)
    raw = k.mem.read(iov, 8 * iovcnt)
    return [struct.unpack_from("<II", raw, 8 * i) for i in range(iovcnt)]


def _open(k: Linux, path: bytes | int, flags: int, mode: int) -> int:
    if isinstance(path, int):
        return path
    handle = k.host.open(path, flags, mode)
    if handle < 0:
        return handle
    k.state.files[handle] = OpenFile(handle, flags)
    fd = k._new_fd(handle)
    if flags & 0o2000000:  # O_CLOEXEC
        k.state.fd_flags[fd] = 1
    return fd


@syscall(5)  # open
def _sys_open(k: Linux, path: int, flags: int, mode: int, *_: int) -> int:
    return _open(k, k._path(path), flags, mode)


@syscall(295)  # openat
def _openat(k: Linux, dirfd: int, path: int, flags: int, mode: int, *_: int) -> int:
    return _open(k, k._resolve(dirfd, k._path(path)), flags, mode)


@syscall(6)  # close
def _close(k: Linux, fd: int, *_: int) -> int:
    return k._close_fd(_signed(fd))


@syscall(41)  # dup
def _dup(k: Linux, fd: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    k.state.files[handle].refs += 1
    return k._new_fd(handle)


@syscall(63)  # dup2
def _dup2(k: Linux, old: int, new: int, *_: int) -> int:
    return _dup3(k, old, new, 0, allow_same=True)


@syscall(330)  # dup3
def _sys_dup3(k: Linux, old: int, new: int, flags: int, *_: int) -> int:
    return _dup3(k, old, new, flags, allow_same=False)


def _dup3(k: Linux, old: int, new: int, flags: int, *, allow_same: bool) -> int:
    handle = k._handle(old)
    if handle is None or _signed(new) < 0 or new >= 1024:
        return -errno.EBADF
    if old == new:
        return new if allow_same else -errno.EINVAL
    if new in k.state.fds:
        k._close_fd(new)
    k.state.files[handle].refs += 1
    k.state.fds[new] = handle
    if flags & 0o2000000:
        k.state.fd_flags[new] = 1
    return new


@syscall(55)  # fcntl
@syscall(221)  # fcntl64
def _fcntl(k: Linux, fd: int, cmd: int, arg: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    if cmd in (0, 1030):  # F_DUPFD, F_DUPFD_CLOEXEC
        k.state.files[handle].refs += 1
        new = k._new_fd(handle, arg)
        if cmd == 1030:
            k.state.fd_flags[new] = 1
        return new
    if cmd == 1:  # F_GETFD
        return k.state.fd_flags.get(fd, 0)
    if cmd == 2:  # F_SETFD
        k.state.fd_flags[fd] = arg & 1
        return 0
    if cmd == 3:  # F_GETFL
        return k.state.files[handle].flags
    if cmd == 4:  # F_SETFL
        return 0
    return -errno.EINVAL


@syscall(19)  # lseek
def _lseek(k: Linux, fd: int, offset: int, whence: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    if whence > 2:
        return -errno.EINVAL
    result = k.host.lseek(handle, _signed(offset), whence)
    if result > 0x7FFFFFFF:
        return -errno.EOVERFLOW
    return result


@syscall(140)  # _llseek
def _llseek(k: Linux, fd: int, hi: int, lo: int, result: int, whence: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    if whence > 2:
        return -errno.EINVAL
    offset = (hi << 32) | lo
    if offset & (1 << 63):
        offset -= 1 << 64
    pos = k.host.lseek(handle, offset, whence)
    if pos < 0:
        return pos
    k._write_result(result, struct.pack("<q", pos))
    return 0


@syscall(197)  # fstat64
def _fstat64(k: Linux, fd: int, buf: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    st = k.host.fstat(handle)
    if isinstance(st, int):
        return st
    k._write_result(buf, k._stat64(st))
    return 0


def _stat_path(k: Linux, dirfd: int, path_addr: int, flags: int) -> FileStat | int:
    path = k._path(path_addr)
    if not path and flags & _AT_EMPTY_PATH:
        handle = k._handle(dirfd)
        return -errno.EBADF if handle is None else k.host.fstat(handle)
    if not path:
        return -errno.ENOENT
    resolved = k._resolve(dirfd, path)
    if isinstance(resolved, int):
        return resolved
    return k.host.stat(resolved, follow=not flags & _AT_SYMLINK_NOFOLLOW)


@syscall(195)  # stat64
def _stat64(k: Linux, path: int, buf: int, *_: int) -> int:
    st = _stat_path(k, _u32(_AT_FDCWD), path, 0)
    if isinstance(st, int):
        return st
    k._write_result(buf, k._stat64(st))
    return 0


@syscall(196)  # lstat64
def _lstat64(k: Linux, path: int, buf: int, *_: int) -> int:
    st = _stat_path(k, _u32(_AT_FDCWD), path, _AT_SYMLINK_NOFOLLOW)
    if isinstance(st, int):
        return st
    k._write_result(buf, k._stat64(st))
    return 0


@syscall(300)  # fstatat64
def _fstatat64(k: Linux, dirfd: int, path: int, buf: int, flags: int, *_: int) -> int:
    st = _stat_path(k, dirfd, path, flags)
    if isinstance(st, int):
        return st
    k._write_result(buf, k._stat64(st))
    return 0


@syscall(383)  # statx
def _statx(k: Linux, dirfd: int, path: int, flags: int, mask: int, buf: int, *_: int) -> int:
    st = _stat_path(k, dirfd, path, flags)
    if isinstance(st, int):
        return st
    k._write_result(buf, k._statx(st))
    return 0


@syscall(33)  # access
def _access(k: Linux, path: int, mode: int, *_: int) -> int:
    return k.host.access(k._path(path), mode)


@syscall(307)  # faccessat
@syscall(439)  # faccessat2
def _faccessat(k: Linux, dirfd: int, path: int, mode: int, *_: int) -> int:
    resolved = k._resolve(dirfd, k._path(path))
    if isinstance(resolved, int):
        return resolved
    return k.host.access(resolved, mode)


def _readlink_common(k: Linux, path: bytes | int, buf: int, size: int) -> int:
    if isinstance(path, int):
        return path
    if _signed(size) <= 0:
        return -errno.EINVAL
    target = k.exe_path if path == b"/proc/self/exe" else k.host.readlink(path)
    if isinstance(target, int):
        return target
    data = target[:size]
    k._write_result(buf, data)
    return len(data)


@syscall(85)  # readlink
def _readlink(k: Linux, path: int, buf: int, size: int, *_: int) -> int:
    return _readlink_common(k, k._path(path), buf, size)


@syscall(305)  # readlinkat
def _readlinkat(k: Linux, dirfd: int, path: int, buf: int, size: int, *_: int) -> int:
    return _readlink_common(k, k._resolve(dirfd, k._path(path)), buf, size)


@syscall(183)  # getcwd
def _getcwd(k: Linux, buf: int, size: int, *_: int) -> int:
    cwd = k.host.getcwd() + b"\0"
    if len(cwd) > size:
        return -errno.ERANGE
    k._write_result(buf, cwd)
    return len(cwd)


@syscall(10)  # unlink
def _unlink(k: Linux, path: int, *_: int) -> int:
    return k.host.unlink(k._path(path))


@syscall(301)  # unlinkat
def _unlinkat(k: Linux, dirfd: int, path: int, flags: int, *_: int) -> int:
    if flags:
        return -errno.ENOTSUP
    resolved = k._resolve(dirfd, k._path(path))
    if isinstance(resolved, int):
        return resolved
    return k.host.unlink(resolved)


@syscall(54)  # ioctl
def _ioctl(k: Linux, fd: int, request: int, arg: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    if request == _TCGETS:
        attrs = k.host.terminal_attrs(handle)
        if isinstance(attrs, int):
            return attrs
        k._write_result(arg, attrs)
        return 0
    if request == _TIOCGWINSZ:
        size = k.host.window_size(handle)
        if isinstance(size, int):
            return size
        k._write_result(arg, size)
        return 0
    if request in (_TCSETS, _TCSETSW, _TCSETSF, _TIOCGPGRP, _FIONBIO):
        attrs = k.host.terminal_attrs(handle)
        if isinstance(attrs, int):
            return attrs
        if request == _TIOCGPGRP:
            k._write_result(arg, struct.pack("<I", k.ids.pid))
        return 0
    return -errno.ENOTTY


# ---------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------


@syscall(45)  # brk
def _brk(k: Linux, addr: int, *_: int) -> int:
    st = k.state
    if addr < st.brk_start:
        return st.brk
    old_top, new_top = page_up(st.brk), page_up(addr)
    if new_top > old_top:
        if new_top > MMAP_TOP or not k.mem.is_free(old_top, new_top):
            return st.brk
        k.mem.map(old_top, new_top - old_top, PROT_READ | PROT_WRITE, "[heap]")
    elif new_top < old_top:
        k.mem.unmap(new_top, old_top - new_top)
    st.brk = addr
    return addr


def _mmap(k: Linux, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
    if length == 0 or addr & (PAGE - 1):
        return -errno.EINVAL
    size = page_up(length)
    if size == 0 or size > 0xFFFFF000:
        return -errno.ENOMEM
    if not flags & (_MAP_SHARED | _MAP_PRIVATE):
        return -errno.EINVAL
    prot &= PROT_READ | PROT_WRITE | PROT_EXEC
    data = b""
    anonymous = bool(flags & _MAP_ANONYMOUS)
    if not anonymous:
        handle = k._handle(fd)
        if handle is None:
            return -errno.EBADF
        # A file mapping is a private copy of the file's bytes: writes to a
        # MAP_SHARED mapping do not reach the file.
        here = k.host.lseek(handle, 0, os.SEEK_CUR)
        if here < 0:
            return -errno.EACCES
        pos = k.host.lseek(handle, offset, os.SEEK_SET)
        if pos < 0:
            return pos
        got = k.host.read(handle, length)
        k.host.lseek(handle, here, os.SEEK_SET)
        if isinstance(got, int):
            return got
        data = got
    if flags & (_MAP_FIXED | _MAP_FIXED_NOREPLACE):
        if addr + size > USER_TOP:
            return -errno.ENOMEM
        if flags & _MAP_FIXED_NOREPLACE and not k.mem.is_free(addr, addr + size):
            return -errno.EEXIST
        start = addr
    else:
        found = None
        if addr and addr + size <= MMAP_TOP and k.mem.is_free(addr, addr + size):
            found = addr
        if found is None:
            found = k.mem.find_free(size, MMAP_TOP, bottom=max(page_up(k.state.brk), PAGE))
        if found is None:
            return -errno.ENOMEM
        start = found
    k.mem.map(start, size, prot, "[anon]" if anonymous else "[file]")
    if data:
        k.mem.poke(start, data)
    return start


@syscall(192)  # mmap2
def _mmap2(k: Linux, addr: int, length: int, prot: int, flags: int, fd: int, pgoff: int) -> int:
    return _mmap(k, addr, length, prot, flags, fd, pgoff * PAGE)


@syscall(90)  # old_mmap: one pointer to six arguments
def _old_mmap(k: Linux, args: int, *_: int) -> int:
    a = struct.unpack("<6I", k.mem.read(args, 24))
    if a[5] & (PAGE - 1):
        return -errno.EINVAL
    return _mmap(k, *a)


@syscall(91)  # munmap
def _munmap(k: Linux, addr: int, length: int, *_: int) -> int:
    if addr & (PAGE - 1) or length == 0 or addr + length > USER_TOP:
        return -errno.EINVAL
    k.mem.unmap(addr, length)
    return 0


@syscall(125)  # mprotect
def _mprotect(k: Linux, addr: int, length: int, prot: int, *_: int) -> int:
    if addr & (PAGE - 1):
        return -errno.EINVAL
    if length == 0:
        return 0
    if addr + page_up(length) > USER_TOP:
        return -errno.ENOMEM
    if not k.mem.is_mapped(addr, page_up(length)):
        return -errno.ENOMEM
    k.mem.protect(addr, length, prot & (PROT_READ | PROT_WRITE | PROT_EXEC))
    return 0


@syscall(163)  # mremap
def _mremap(
    k: Linux, old: int, old_size: int, new_size: int, flags: int, new_addr: int, *_: int
) -> int:
    if old & (PAGE - 1) or new_size == 0 or flags & ~(_MREMAP_MAYMOVE | _MREMAP_FIXED):
        return -errno.EINVAL
    old_size, new_size = page_up(old_size), page_up(new_size)
    if old + old_size > USER_TOP or new_size > USER_TOP:
        return -errno.EINVAL
    region = k.mem.region_at(old)
    if region is None or not k.mem.is_mapped(old, old_size):
        return -errno.EFAULT
    if flags & _MREMAP_FIXED:
        return -errno.EINVAL  # not used by glibc's malloc; refuse rather than guess
    if new_size <= old_size:
        if new_size < old_size:
            k.mem.unmap(old + new_size, old_size - new_size)
        return old
    if k.mem.is_free(old + old_size, old + new_size) and old + new_size <= MMAP_TOP:
        k.mem.map(old + old_size, new_size - old_size, region.perms, region.name)
        return old
    if not flags & _MREMAP_MAYMOVE:
        return -errno.ENOMEM
    target = k.mem.find_free(new_size, MMAP_TOP, bottom=max(page_up(k.state.brk), PAGE))
    if target is None:
        return -errno.ENOMEM
    contents = bytes(k.mem.view(old, old_size))
    k.mem.map(target, new_size, region.perms, region.name)
    k.mem.poke(target, contents)
    k.mem.unmap(old, old_size)
    return target


@syscall(219)  # madvise
def _madvise(k: Linux, addr: int, length: int, advice: int, *_: int) -> int:
    if addr & (PAGE - 1):
        return -errno.EINVAL
    if advice == 4 and length:  # MADV_DONTNEED: anonymous private pages read as zero
        lo, hi = addr, page_up(addr + length)
        if hi > USER_TOP or not k.mem.is_mapped(lo, hi - lo):
            return -errno.ENOMEM
        k.mem.poke(lo, bytes(hi - lo))
    return 0


# ---------------------------------------------------------------------------
# Threads, TLS, futexes, signals
# ---------------------------------------------------------------------------


@syscall(243)  # set_thread_area
def _set_thread_area(k: Linux, u_info: int, *_: int) -> int:
    entry, base, limit, bits = struct.unpack("<iIII", k.mem.read(u_info, 16))
    tls_range = range(TLS_FIRST_ENTRY, TLS_FIRST_ENTRY + TLS_ENTRIES)
    if entry == -1:
        free = [i for i in tls_range if i not in k.state.tls]
        if not free:
            return -errno.ESRCH
        entry = free[0]
        k.mem.write(u_info, struct.pack("<i", entry))
    if entry not in tls_range:
        return -errno.EINVAL
    seg_32bit = bits & 1
    contents = (bits >> 1) & 3
    read_exec_only = (bits >> 3) & 1
    limit_in_pages = (bits >> 4) & 1
    seg_not_present = (bits >> 5) & 1
    useable = (bits >> 6) & 1
    if base == 0 and limit == 0 and read_exec_only and seg_not_present:
        k.state.tls.pop(entry, None)
        k._clear_tls(entry)
        return 0
    access = (
        0x10
        | 0x60
        | ((seg_not_present ^ 1) << 7)
        | ((read_exec_only ^ 1) << 1)
        | (contents << 2)
        | 1
    )
    flags = (useable) | (seg_32bit << 2) | (limit_in_pages << 3)
    k.state.tls[entry] = struct.pack("<iIII", entry, base, limit, bits)
    k._set_tls(entry, base, limit, access, flags)
    return 0


@syscall(244)  # get_thread_area
def _get_thread_area(k: Linux, u_info: int, *_: int) -> int:
    (entry,) = struct.unpack("<i", k.mem.read(u_info, 4))
    desc = k.state.tls.get(entry)
    if desc is None:
        return -errno.EINVAL
    k.mem.write(u_info, desc)
    return 0


@syscall(240)  # futex (time32)
@syscall(422)  # futex_time64
def _futex(k: Linux, uaddr: int, op: int, val: int, timeout: int, *_: int) -> int:
    cmd = op & 0x7F
    if cmd in (0, 9):  # FUTEX_WAIT, FUTEX_WAIT_BITSET
        (current,) = struct.unpack("<I", k.mem.read(uaddr, 4))
        if current != val:
            return -errno.EAGAIN
        # One thread: nobody can wake us.  With a timeout, time passes;
        # without one the program would hang forever on Linux.
        return -errno.ETIMEDOUT if timeout else -errno.EDEADLK
    if cmd in (1, 10):  # FUTEX_WAKE, FUTEX_WAKE_BITSET
        return 0
    return -errno.ENOSYS


@syscall(174)  # rt_sigaction
def _rt_sigaction(k: Linux, sig: int, act: int, oact: int, size: int, *_: int) -> int:
    if not 1 <= sig <= 64 or size != 8:
        return -errno.EINVAL
    if act and sig in (9, 19):  # SIGKILL, SIGSTOP
        return -errno.EINVAL
    if oact:
        k.mem.write(oact, k.state.sigactions.get(sig, bytes(20)))
    if act:
        k.state.sigactions[sig] = k.mem.read(act, 20)
    return 0


@syscall(175)  # rt_sigprocmask
def _rt_sigprocmask(k: Linux, how: int, nset: int, oset: int, size: int, *_: int) -> int:
    if size != 8:
        return -errno.EINVAL
    old = k.state.sigmask
    if nset:
        (new,) = struct.unpack("<Q", k.mem.read(nset, 8))
        if how == 0:  # SIG_BLOCK
            k.state.sigmask = old | new
        elif how == 1:  # SIG_UNBLOCK
            k.state.sigmask = old & ~new
        elif how == 2:  # SIG_SETMASK
            k.state.sigmask = new
        else:
            return -errno.EINVAL
        k.state.sigmask &= ~((1 << 8) | (1 << 18))  # SIGKILL, SIGSTOP cannot be blocked
    if oset:
        k.mem.write(oset, struct.pack("<Q", old))
    return 0


@syscall(186)  # sigaltstack
def _sigaltstack(k: Linux, ss: int, old: int, *_: int) -> int:
    if old:
        k.mem.write(old, struct.pack("<IiI", 0, 2, 0))  # SS_DISABLE
    return 0


@syscall(158)  # sched_yield
def _sched_yield(k: Linux, *_: int) -> int:
    return 0


@syscall(242)  # sched_getaffinity
def _sched_getaffinity(k: Linux, pid: int, size: int, mask: int, *_: int) -> int:
    if size < 4:
        return -errno.EINVAL
    k.mem.write(mask, struct.pack("<I", 1))
    return 4


# ---------------------------------------------------------------------------
# Time and randomness
# ---------------------------------------------------------------------------


@syscall(13)  # time
def _time(k: Linux, tloc: int, *_: int) -> int:
    now = (k.epoch_ns + k.virtual_ns()) // 1_000_000_000
    if tloc:
        k.mem.write(tloc, struct.pack("<I", now & 0xFFFFFFFF))
    return now & 0xFFFFFFFF


@syscall(78)  # gettimeofday
def _gettimeofday(k: Linux, tv: int, tz: int, *_: int) -> int:
    ns = k.epoch_ns + k.virtual_ns()
    if tv:
        k.mem.write(tv, struct.pack("<II", (ns // 10**9) & 0xFFFFFFFF, (ns % 10**9) // 1000))
    if tz:
        k.mem.write(tz, struct.pack("<ii", 0, 0))
    return 0


@syscall(265)  # clock_gettime (32-bit time_t)
def _clock_gettime(k: Linux, clock: int, tp: int, *_: int) -> int:
    ns = k._clock_ns(clock)
    if ns is None:
        return -errno.EINVAL
    k.mem.write(tp, struct.pack("<II", *_ts32(ns)))
    return 0


@syscall(403)  # clock_gettime64
def _clock_gettime64(k: Linux, clock: int, tp: int, *_: int) -> int:
    ns = k._clock_ns(clock)
    if ns is None:
        return -errno.EINVAL
    k.mem.write(tp, struct.pack("<qq", ns // 10**9, ns % 10**9))
    return 0


@syscall(266)  # clock_getres
@syscall(406)  # clock_getres_time64
def _clock_getres(k: Linux, clock: int, res: int, *_: int) -> int:
    if k._clock_ns(clock) is None:
        return -errno.EINVAL
    if res:
        k.mem.write(res, struct.pack("<II", 0, NS_PER_INSN))
    return 0


def _sleep(k: Linux, ns: int) -> int:
    if ns < 0:
        return -errno.EINVAL
    k.state.sleep_ns += ns
    return 0


@syscall(162)  # nanosleep
def _nanosleep(k: Linux, req: int, rem: int, *_: int) -> int:
    sec, nsec = struct.unpack("<iI", k.mem.read(req, 8))
    if nsec >= 10**9 or sec < 0:
        return -errno.EINVAL
    return _sleep(k, sec * 10**9 + nsec)


def _clock_nanosleep(k: Linux, clock: int, flags: int, sec: int, nsec: int) -> int:
    now = k._clock_ns(clock)
    if now is None or clock in (2, 3):
        return -errno.EINVAL
    if nsec >= 10**9 or sec < 0:
        return -errno.EINVAL
    target = sec * 10**9 + nsec
    if flags & 1:  # TIMER_ABSTIME
        return _sleep(k, max(target - now, 0))
    return _sleep(k, target)


@syscall(267)  # clock_nanosleep
def _clock_nanosleep32(k: Linux, clock: int, flags: int, req: int, rem: int, *_: int) -> int:
    sec, nsec = struct.unpack("<iI", k.mem.read(req, 8))
    return _clock_nanosleep(k, clock, flags, sec, nsec)


@syscall(407)  # clock_nanosleep_time64
def _clock_nanosleep64(k: Linux, clock: int, flags: int, req: int, rem: int, *_: int) -> int:
    sec, nsec = struct.unpack("<qq", k.mem.read(req, 16))
    return _clock_nanosleep(k, clock, flags, sec, nsec)


@syscall(355)  # getrandom
def _getrandom(k: Linux, buf: int, count: int, flags: int, *_: int) -> int:
    if flags & ~0x7:
        return -errno.EINVAL
    count = min(count, 33554431)
    if not k.mem.is_mapped(buf, count, PROT_WRITE):
        return -errno.EFAULT
    k.mem.write(buf, k.host.random_bytes(count))
    return count
