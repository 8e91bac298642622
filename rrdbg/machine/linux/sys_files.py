"""Files and the console: read/write, open/close, fds, seek, stat, links, cwd, ioctl.

Handlers register themselves with ``@syscall(nr)`` (kernel.py); they get the
``Linux`` object and the six syscall arguments and return the result
(a negative errno for failures).
"""

from __future__ import annotations

import errno
import struct

from rrdbg.errors import GuestMemoryError
from rrdbg.machine.host import FileStat
from rrdbg.machine.linux import procfs
from rrdbg.machine.linux.fdtable import MAX_FDS, FileKind, OpenFile
from rrdbg.machine.linux.kernel import (
    _AT_EMPTY_PATH,
    _AT_FDCWD,
    _AT_SYMLINK_NOFOLLOW,
    _FIONBIO,
    _SIGPIPE,
    _TCGETS,
    _TCSETS,
    _TCSETSF,
    _TCSETSW,
    _TIOCGPGRP,
    _TIOCGWINSZ,
    ERESTARTSYS,
    O_NONBLOCK,
    ExitStatus,
    Linux,
    ProcessExit,
    _signed,
    _u32,
    syscall,
)
from rrdbg.machine.linux.signals import SI_USER, siginfo
from rrdbg.machine.linux.task import Wait
from rrdbg.machine.memory import PROT_WRITE


@syscall(3)  # read
def _read(k: Linux, fd: int, buf: int, count: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    count = min(count, 1 << 24)
    if not k.mem.is_mapped(buf, count, PROT_WRITE):
        return -errno.EFAULT
    if (waiting := k.host_wait(handle)) is not None:
        return waiting
    if not k.wait_to_read(handle):
        return -ERESTARTSYS
    data = k.host.read(handle, count)
    if isinstance(data, int):
        return _would_block(k, handle, data)
    k.mem.write(buf, data)
    _would_block(k, handle, len(data))  # (a read from a pipe may wake a writer)
    return len(data)


def _would_block(k: Linux, handle: int, result: int) -> int:
    """A pipe the process made is non-blocking on the host: -EAGAIN on a
    blocking fd means the process waits on itself.  With other threads, the
    thread blocks until another one reads, writes or closes a pipe, and
    then makes the call again; alone, it would wait forever on Linux: it is
    ended with one line instead of hanging."""
    f = k.fdt.files.get(handle)
    if result != -errno.EAGAIN or f is None or f.kind is not FileKind.PIPE:
        if f is not None and f.kind is FileKind.PIPE:
            k.pipe_event()
        return result
    if f.flags & 0o4000:  # O_NONBLOCK: the program asked for EAGAIN
        return result
    if k.multitask:
        return k.block(Wait("pipe"))
    k.warn_once(
        "pipe",
        "the program waits on a pipe only it could fill or empty (it would wait forever); "
        "ending it",
    )
    raise ProcessExit(ExitStatus(signal=9))


@syscall(42)  # pipe
def _pipe(k: Linux, fds: int, *_: int) -> int:
    return _pipe2(k, fds, 0, 0, 0, 0, 0)


@syscall(331)  # pipe2
def _pipe2(k: Linux, fds: int, flags: int, *_: int) -> int:
    if flags & ~(0o2000000 | 0o4000 | 0o40000):  # O_CLOEXEC, O_NONBLOCK, O_DIRECT
        return -errno.EINVAL
    if not k.mem.is_mapped(fds, 8, PROT_WRITE):
        return -errno.EFAULT
    made = k.host.pipe()
    if isinstance(made, int):
        return made
    ends = struct.unpack("<II", made)
    guest: list[int] = []
    for handle, mode in zip(ends, (0, 1), strict=True):
        end = OpenFile(handle, mode | (flags & 0o4000), path=b"pipe:[%d]" % ends[0])
        fd = k.fdt.install(end, cloexec=bool(flags & 0o2000000))
        if fd < 0:
            for done in guest:
                k._close_fd(done)
            for h in ends[len(guest) :]:
                k.host.close(h)
            return fd
        guest.append(fd)
    k.mem.write(fds, struct.pack("<ii", *guest))
    return 0


@syscall(4)  # write
def _write(k: Linux, fd: int, buf: int, count: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    return _write_data(k, handle, k.mem.read(buf, count))


def _write_data(k: Linux, handle: int, data: bytes) -> int:
    """write/writev.  A blocking write to one of the process's own pipes
    while other threads run waits until all of it is written, as Linux's
    does: the part written so far is kept in the task while it waits (a
    signal then ends the call with that count)."""
    f = k.fdt.files.get(handle)
    if f is not None and f.path.startswith(b"/proc/"):
        task = procfs.comm_target(k, f.path)
        if task is None:
            return -errno.EINVAL
        # A thread's name (pthread_setname_np for another thread): up to
        # 15 bytes, a trailing newline dropped, as Linux's comm_write does.
        task.comm = data.split(b"\n", 1)[0][:15]
        return len(data)
    task = k.state.task
    if f is None or f.kind is not FileKind.PIPE or f.flags & O_NONBLOCK or not k.multitask:
        return _would_block(k, handle, _written(k, k.host.write(handle, data)))
    done = task.pipe_done
    result = _written(k, k.host.write(handle, data[done:]))
    if result < 0 and result != -errno.EAGAIN:
        task.pipe_done = 0
        return done or result
    if result > 0:
        done += result
        k.pipe_event()
    if done >= len(data):
        task.pipe_done = 0
        return done
    task.pipe_done = done
    return k.block(Wait("pipe"))


def _written(k: Linux, result: int) -> int:
    """A write to a pipe nobody reads raises SIGPIPE first, as on Linux."""
    if result == -errno.EPIPE:
        # To the writing thread, as Linux's send_sig (SI_USER).
        k.send_to(k.state.task, _SIGPIPE, siginfo(_SIGPIPE, SI_USER, k.ids.pid, k.ids.uid))
    return result


@syscall(145)  # readv
def _readv(k: Linux, fd: int, iov: int, iovcnt: int, *_: int) -> int:
    total = 0
    for base, length in _iovecs(k, iov, iovcnt):
        if length == 0:
            continue
        got = _read(k, fd, base, length, 0, 0, 0) if total == 0 else _read_more(k, fd, base, length)
        if got < 0:
            return got if total == 0 else total
        total += got
        if got < length:
            break
    return total


def _read_more(k: Linux, fd: int, buf: int, count: int) -> int:
    """A later iovec's read: after some data, "nothing yet" ends the call."""
    handle = k._handle(fd)
    if handle is None or not k.mem.is_mapped(buf, count, PROT_WRITE):
        return -errno.EFAULT
    data = k.host.read(handle, count)
    if isinstance(data, int):
        return data
    k.mem.write(buf, data)
    return len(data)


@syscall(146)  # writev
def _writev(k: Linux, fd: int, iov: int, iovcnt: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    data = b"".join(k.mem.read(base, length) for base, length in _iovecs(k, iov, iovcnt))
    if not data:
        return 0
    return _write_data(k, handle, data)


def _iovecs(k: Linux, iov: int, iovcnt: int) -> list[tuple[int, int]]:
    if iovcnt > 1024:
        raise GuestMemoryError("too many iovecs", iov)
    raw = k.mem.read(iov, 8 * iovcnt)
    return [struct.unpack_from("<II", raw, 8 * i) for i in range(iovcnt)]


def _creation_mode(k: Linux, mode: int) -> int:
    """The mode a new file or directory asks the host for.  The umask is
    applied here once the program has changed it; until then the host's own
    (rrdbg's, normally the same 022) applies, as recordings always had it."""
    mode &= 0o7777
    if k.state.umask != 0o022:
        mode &= ~k.state.umask
    return mode


def _open(k: Linux, path: bytes | int, flags: int, mode: int) -> int:
    if isinstance(path, int):
        return path
    path = procfs.normal(k, path)  # (/proc paths only: "//proc/./self/maps" is /proc/self/maps)
    named = k.own_fd(path)
    if named is not None:
        # /dev/fd/N, /proc/self/fd/N, /dev/stdin ...: the process's own
        # descriptor (bash's process substitution, `cat /dev/stdin` after a
        # redirection), never rrdbg's.  A file or directory is opened again
        # by its path (a new offset, as Linux does); a pipe or the console is
        # the same open file.
        f = k.fdt.file(named)
        if f is None:
            return -errno.ENOENT
        if f.kind not in (FileKind.FILE, FileKind.DIRECTORY):
            return k.fdt.dup(named, cloexec=bool(flags & 0o2000000))
        path = f.path
    contents = procfs.proc_file(k, path)
    if isinstance(contents, int):
        return contents
    if contents is not None:
        # A /proc file about a process of the machine: the kernel's, never
        # rrdbg's own process's.  Read-only, except a thread's name (comm).
        if flags & 3 and procfs.comm_target(k, path) is None:
            return -errno.EISDIR if isinstance(contents, procfs.Listing) else -errno.EACCES
        if isinstance(contents, procfs.Listing):
            made = k.host.fs_call("procdir", (path, contents.packed()))
        else:
            if flags & 0o200000:  # O_DIRECTORY
                return -errno.ENOTDIR
            made = k.host.fs_call("procfile", (path, contents))
        return _install(k, -errno.EIO if isinstance(made, bytes) else made, flags, path)
    if flags & 0o100:  # O_CREAT
        mode = _creation_mode(k, mode)
    handle = k.host.open(procfs.host_path(k, k.own_exe(path)), flags, mode)
    return _install(k, handle, flags, path)


def _install(k: Linux, handle: int, flags: int, path: bytes) -> int:
    """A descriptor for the host file ``handle`` just opened (-errno passes
    through); the handle is closed again if no descriptor is left."""
    if handle < 0:
        return handle
    fd = k.fdt.install(OpenFile(handle, flags, path=path), cloexec=bool(flags & 0o2000000))
    if fd < 0:
        k.host.close(handle)
    return fd


@syscall(5)  # open
def _sys_open(k: Linux, path: int, flags: int, mode: int, *_: int) -> int:
    return _open(k, k._at(path), flags, mode)


@syscall(295)  # openat
def _openat(k: Linux, dirfd: int, path: int, flags: int, mode: int, *_: int) -> int:
    return _open(k, k._resolve(dirfd, k._path(path)), flags, mode)


@syscall(6)  # close
def _close(k: Linux, fd: int, *_: int) -> int:
    return k._close_fd(_signed(fd))


@syscall(41)  # dup
def _dup(k: Linux, fd: int, *_: int) -> int:
    return k.fdt.dup(_signed(fd))


@syscall(63)  # dup2
def _dup2(k: Linux, old: int, new: int, *_: int) -> int:
    return _dup3(k, old, new, 0, allow_same=True)


@syscall(330)  # dup3
def _sys_dup3(k: Linux, old: int, new: int, flags: int, *_: int) -> int:
    return _dup3(k, old, new, flags, allow_same=False)


def _dup3(k: Linux, old: int, new: int, flags: int, *, allow_same: bool) -> int:
    handle = k._handle(old)
    if handle is None or _signed(new) < 0 or new >= MAX_FDS:
        return -errno.EBADF
    if old == new:
        return new if allow_same else -errno.EINVAL
    released = k.fdt.dup_to(_signed(old), new, cloexec=bool(flags & 0o2000000))
    if released is not None:
        k.host.close(released)
        k.pipe_event()  # if that was a pipe's last end, its waiters see it
    return new


@syscall(55)  # fcntl
@syscall(221)  # fcntl64
def _fcntl(k: Linux, fd: int, cmd: int, arg: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    fd = _signed(fd)
    if cmd in (0, 1030):  # F_DUPFD, F_DUPFD_CLOEXEC
        if _signed(arg) < 0 or arg >= MAX_FDS:
            return -errno.EINVAL
        return k.fdt.dup(fd, minimum=arg, cloexec=cmd == 1030)
    if cmd == 1:  # F_GETFD
        return k.fdt.get_cloexec(fd)
    if cmd == 2:  # F_SETFD
        k.fdt.set_cloexec(fd, arg & 1)
        return 0
    if cmd == 3:  # F_GETFL
        return k.fdt.files[handle].flags
    if cmd == 4:  # F_SETFL: O_APPEND, O_NONBLOCK, ... are remembered
        f = k.fdt.files[handle]
        changeable = 0o2000 | 0o4000 | 0o20000 | 0o40000 | 0o1000000
        f.flags = (f.flags & ~changeable) | (arg & changeable)
        return 0
    if cmd in (5, 12, 36):  # F_GETLK, F_GETLK64, F_OFD_GETLK
        # One process: no lock of another process can be in the way.
        k.mem.write(arg, struct.pack("<h", 2))  # l_type = F_UNLCK
        return 0
    if cmd in (6, 7, 13, 14, 37, 38):  # F_SETLK(W)(64), F_OFD_SETLK(W)
        (l_type,) = struct.unpack("<h", k.mem.read(arg, 2))
        return 0 if l_type in (0, 1, 2) else -errno.EINVAL
    if cmd == 1032:  # F_GETPIPE_SZ
        return 65536
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
    resolved = k._at(path)
    return resolved if isinstance(resolved, int) else k.host.access(resolved, mode)


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
    path = procfs.normal(k, path)
    target = k.exe_path if k.own_exe(path) != path else procfs.proc_link(k, path)
    if target is None:
        target = k.host.readlink(path)
    if isinstance(target, int):
        return target
    data = target[:size]
    k._write_result(buf, data)
    return len(data)


@syscall(85)  # readlink
def _readlink(k: Linux, path: int, buf: int, size: int, *_: int) -> int:
    return _readlink_common(k, k._at(path), buf, size)


@syscall(305)  # readlinkat
def _readlinkat(k: Linux, dirfd: int, path: int, buf: int, size: int, *_: int) -> int:
    return _readlink_common(k, k._resolve(dirfd, k._path(path)), buf, size)


@syscall(183)  # getcwd
def _getcwd(k: Linux, buf: int, size: int, *_: int) -> int:
    cwd = (k.state.cwd or k.host.getcwd()) + b"\0"
    if len(cwd) > size:
        return -errno.ERANGE
    k._write_result(buf, cwd)
    return len(cwd)


@syscall(10)  # unlink
def _unlink(k: Linux, path: int, *_: int) -> int:
    resolved = k._at(path)
    return resolved if isinstance(resolved, int) else k.host.unlink(resolved)


@syscall(301)  # unlinkat
def _unlinkat(k: Linux, dirfd: int, path: int, flags: int, *_: int) -> int:
    if flags & ~_AT_REMOVEDIR:
        return -errno.EINVAL
    resolved = k._resolve(dirfd, k._path(path))
    if isinstance(resolved, int):
        return resolved
    if flags & _AT_REMOVEDIR:
        return k.host.rmdir(resolved)
    return k.host.unlink(resolved)


# -- directories --------------------------------------------------------------

_AT_REMOVEDIR = 0x200
_RENAME_NOREPLACE = 1


@syscall(220)  # getdents64
def _getdents64(k: Linux, fd: int, buf: int, count: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    data = k.host.getdents(handle, count)
    if isinstance(data, int):
        return data
    data = _compat_offsets(data)
    k.mem.write(buf, data)
    return len(data)


def _compat_offsets(data: bytes) -> bytes:
    """Directory offsets as a 32-bit process gets them.  A 64-bit host hands
    out 64-bit cookies (ext4: hash << 32 | minor hash), which the kernel
    gives a 32-bit task as 31-bit values (hash >> 1); a 32-bit libc refuses
    larger ones (readdir fails with EOVERFLOW).  Small offsets (tmpfs, ...)
    are kept as they are."""
    out = bytearray(data)
    pos = 0
    while pos + 19 <= len(out):
        (off,) = struct.unpack_from("<q", out, pos + 8)
        if not 0 <= off < 1 << 31:
            struct.pack_into("<q", out, pos + 8, ((off >> 33) & 0x7FFFFFFF) or 1)
        (reclen,) = struct.unpack_from("<H", out, pos + 16)
        if reclen == 0:
            break
        pos += reclen
    return bytes(out)


@syscall(141)  # getdents: the old 32-bit records
def _getdents(k: Linux, fd: int, buf: int, count: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    data = k.host.getdents(handle, count)
    if isinstance(data, int):
        return data
    out = _old_dirents(_compat_offsets(data))
    if isinstance(out, int):
        return out
    k.mem.write(buf, out)
    return len(out)


def _old_dirents(data: bytes) -> bytes | int:
    """``linux_dirent64`` records as i386 ``linux_dirent`` ones (u32 ino, u32
    off, u16 reclen, name, NUL, padding, type in the last byte)."""
    out = bytearray()
    pos = 0
    while pos + 19 <= len(data):
        ino, off, reclen, kind = struct.unpack_from("<QqHB", data, pos)
        if reclen == 0:
            break
        name = data[pos + 19 : pos + reclen].split(b"\0", 1)[0]
        if ino > 0xFFFFFFFF:
            return -errno.EOVERFLOW
        size = (10 + len(name) + 2 + 3) & ~3
        record = struct.pack("<IIH", ino, off & 0xFFFFFFFF, size) + name + b"\0"
        out += record + bytes(size - len(record) - 1) + bytes([kind])
        pos += reclen
    return bytes(out)


@syscall(39)  # mkdir
def _mkdir(k: Linux, path: int, mode: int, *_: int) -> int:
    resolved = k._at(path)
    return (
        resolved if isinstance(resolved, int) else k.host.mkdir(resolved, _creation_mode(k, mode))
    )


@syscall(296)  # mkdirat
def _mkdirat(k: Linux, dirfd: int, path: int, mode: int, *_: int) -> int:
    resolved = k._resolve(dirfd, k._path(path))
    if isinstance(resolved, int):
        return resolved
    return k.host.mkdir(resolved, _creation_mode(k, mode))


@syscall(40)  # rmdir
def _rmdir(k: Linux, path: int, *_: int) -> int:
    resolved = k._at(path)
    return resolved if isinstance(resolved, int) else k.host.rmdir(resolved)


@syscall(38)  # rename
def _rename(k: Linux, old: int, new: int, *_: int) -> int:
    source, target = k._at(old), k._at(new)
    if isinstance(source, int):
        return source
    if isinstance(target, int):
        return target
    return k.host.rename(source, target)


@syscall(302)  # renameat
def _renameat(k: Linux, olddir: int, old: int, newdir: int, new: int, *_: int) -> int:
    return _renameat2(k, olddir, old, newdir, new, 0, 0)


@syscall(353)  # renameat2
def _renameat2(k: Linux, olddir: int, old: int, newdir: int, new: int, flags: int, *_: int) -> int:
    if flags & ~_RENAME_NOREPLACE:
        return -errno.EINVAL
    source = k._resolve(olddir, k._path(old))
    target = k._resolve(newdir, k._path(new))
    if isinstance(source, int):
        return source
    if isinstance(target, int):
        return target
    if flags & _RENAME_NOREPLACE:
        exists = k.host.stat(target, False)
        if not isinstance(exists, int):
            return -errno.EEXIST
    return k.host.rename(source, target)


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
