"""File metadata, links and the working directory: chmod, chown, utimes,
truncate, link, symlink, chdir, statfs, umask applied to creations.

Handlers register themselves with ``@syscall(nr)`` (kernel.py); they get the
``Linux`` object and the six syscall arguments and return the result
(a negative errno for failures).  Effects on the host go through
``Host.fs_call`` (one recorded event each; a replay touches nothing).
"""

from __future__ import annotations

import errno
import struct

from rrdbg.machine.linux.kernel import (
    _AT_EMPTY_PATH,
    _AT_FDCWD,
    _AT_SYMLINK_NOFOLLOW,
    Linux,
    _signed,
    _u32,
    syscall,
)

_AT_SYMLINK_FOLLOW = 0x400
_UTIME_NOW = (1 << 30) - 1
_UTIME_OMIT = (1 << 30) - 2


def _fs(k: Linux, op: str, *args: int | bytes) -> int:
    result = k.host.fs_call(op, args)
    return result if isinstance(result, int) else -errno.EIO


# -- the working directory ------------------------------------------------------


def _chdir_to(k: Linux, path: bytes | int) -> int:
    if isinstance(path, int):
        return path
    if not path:
        return -errno.ENOENT
    canonical = k.host.fs_call("realdir", (path,))
    if isinstance(canonical, int):
        return canonical
    k.set_cwd(canonical)
    return 0


@syscall(12)  # chdir
def _chdir(k: Linux, path: int, *_: int) -> int:
    return _chdir_to(k, k._at(path))


@syscall(133)  # fchdir
def _fchdir(k: Linux, fd: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    f = k.fdt.files.get(handle)
    if f is None or not f.path:
        return -errno.ENOTDIR
    return _chdir_to(k, f.path)


# -- modes and owners ---------------------------------------------------------


@syscall(15)  # chmod
def _chmod(k: Linux, path: int, mode: int, *_: int) -> int:
    resolved = k._at(path)
    return resolved if isinstance(resolved, int) else _fs(k, "chmod", resolved, mode & 0o7777, 1)


@syscall(94)  # fchmod
def _fchmod(k: Linux, fd: int, mode: int, *_: int) -> int:
    handle = k._handle(fd)
    return -errno.EBADF if handle is None else _fs(k, "fchmod", handle, mode & 0o7777)


@syscall(306)  # fchmodat
@syscall(452)  # fchmodat2
def _fchmodat(k: Linux, dirfd: int, path: int, mode: int, flags: int = 0, *_: int) -> int:
    resolved = k._at(path, dirfd)
    if isinstance(resolved, int):
        return resolved
    follow = 0 if flags & _AT_SYMLINK_NOFOLLOW else 1
    return _fs(k, "chmod", resolved, mode & 0o7777, follow)


def _id(value: int, bits: int) -> int:
    """A uid/gid argument: all ones means "leave it" (-1)."""
    return -1 if value == (1 << bits) - 1 else value


def _chown(k: Linux, path: bytes | int, uid: int, gid: int, follow: int) -> int:
    if isinstance(path, int):
        return path
    return _fs(k, "chown", path, uid, gid, follow)


@syscall(182)  # chown (16-bit ids)
def _chown16(k: Linux, path: int, uid: int, gid: int, *_: int) -> int:
    return _chown(k, k._at(path), _id(uid & 0xFFFF, 16), _id(gid & 0xFFFF, 16), 1)


@syscall(16)  # lchown (16-bit ids)
def _lchown16(k: Linux, path: int, uid: int, gid: int, *_: int) -> int:
    return _chown(k, k._at(path), _id(uid & 0xFFFF, 16), _id(gid & 0xFFFF, 16), 0)


@syscall(212)  # chown32
def _chown32(k: Linux, path: int, uid: int, gid: int, *_: int) -> int:
    return _chown(k, k._at(path), _id(uid, 32), _id(gid, 32), 1)


@syscall(198)  # lchown32
def _lchown32(k: Linux, path: int, uid: int, gid: int, *_: int) -> int:
    return _chown(k, k._at(path), _id(uid, 32), _id(gid, 32), 0)


@syscall(298)  # fchownat
def _fchownat(k: Linux, dirfd: int, path: int, uid: int, gid: int, flags: int, *_: int) -> int:
    if flags & _AT_EMPTY_PATH and not k._path(path):
        return _fchown(k, dirfd, uid, gid, 0, 0, 0)
    follow = 0 if flags & _AT_SYMLINK_NOFOLLOW else 1
    return _chown(k, k._at(path, dirfd), _id(uid, 32), _id(gid, 32), follow)


@syscall(95)  # fchown (16-bit ids)
def _fchown16(k: Linux, fd: int, uid: int, gid: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    return _fs(k, "fchown", handle, _id(uid & 0xFFFF, 16), _id(gid & 0xFFFF, 16))


@syscall(207)  # fchown32
def _fchown(k: Linux, fd: int, uid: int, gid: int, *_: int) -> int:
    handle = k._handle(fd)
    return -errno.EBADF if handle is None else _fs(k, "fchown", handle, _id(uid, 32), _id(gid, 32))


# -- times ----------------------------------------------------------------------


def _ns(sec: int, nsec: int) -> int | None:
    """A timespec as host.fs_call's utimens wants it: -1 now, -2 unchanged."""
    if nsec == _UTIME_NOW:
        return -1
    if nsec == _UTIME_OMIT:
        return -2
    if not 0 <= nsec < 10**9:
        return None
    return sec * 10**9 + nsec


def _utimens(k: Linux, dirfd: int, path: int, times: int, flags: int, fmt: str) -> int:
    size = struct.calcsize(fmt)
    if times:
        raw = k.mem.read(times, 2 * size)
        atime = _ns(*struct.unpack_from(fmt, raw, 0))
        mtime = _ns(*struct.unpack_from(fmt, raw, size))
        if atime is None or mtime is None:
            return -errno.EINVAL
    else:
        atime = mtime = -1
    if not path:  # utimensat(fd, NULL, ...): the file fd refers to (futimens)
        handle = k._handle(dirfd)
        return -errno.EBADF if handle is None else _fs(k, "futimens", handle, atime, mtime)
    resolved = k._at(path, dirfd)
    if isinstance(resolved, int):
        return resolved
    follow = 0 if flags & _AT_SYMLINK_NOFOLLOW else 1
    return _fs(k, "utimens", resolved, atime, mtime, follow)


@syscall(320)  # utimensat
def _utimensat(k: Linux, dirfd: int, path: int, times: int, flags: int, *_: int) -> int:
    return _utimensat_common(k, dirfd, path, times, flags, "<iI")


@syscall(412)  # utimensat_time64
def _utimensat64(k: Linux, dirfd: int, path: int, times: int, flags: int, *_: int) -> int:
    return _utimensat_common(k, dirfd, path, times, flags, "<qq")


def _utimensat_common(k: Linux, dirfd: int, path: int, times: int, flags: int, fmt: str) -> int:
    if flags & ~(_AT_SYMLINK_NOFOLLOW | _AT_EMPTY_PATH):
        return -errno.EINVAL
    if path and flags & _AT_EMPTY_PATH and not k._path(path):
        path = 0
    return _utimens(k, dirfd, path, times, flags, fmt)


def _timeval_pair(k: Linux, times: int) -> tuple[int, int] | None:
    sec_a, usec_a, sec_m, usec_m = struct.unpack("<iIiI", k.mem.read(times, 16))
    if usec_a >= 10**6 or usec_m >= 10**6:
        return None
    return sec_a * 10**9 + usec_a * 1000, sec_m * 10**9 + usec_m * 1000


@syscall(271)  # utimes
def _utimes(k: Linux, path: int, times: int, *_: int) -> int:
    return _futimesat(k, _u32(_AT_FDCWD), path, times, 0, 0, 0)


@syscall(299)  # futimesat
def _futimesat(k: Linux, dirfd: int, path: int, times: int, *_: int) -> int:
    resolved = k._at(path, dirfd)
    if isinstance(resolved, int):
        return resolved
    pair = (-1, -1) if not times else _timeval_pair(k, times)
    if pair is None:
        return -errno.EINVAL
    return _fs(k, "utimens", resolved, pair[0], pair[1], 1)


@syscall(30)  # utime
def _utime(k: Linux, path: int, times: int, *_: int) -> int:
    resolved = k._at(path)
    if isinstance(resolved, int):
        return resolved
    if times:
        atime, mtime = struct.unpack("<iI", k.mem.read(times, 8))
        return _fs(k, "utimens", resolved, atime * 10**9, mtime * 10**9, 1)
    return _fs(k, "utimens", resolved, -1, -1, 1)


# -- sizes ------------------------------------------------------------------------


@syscall(92)  # truncate
def _truncate(k: Linux, path: int, length: int, *_: int) -> int:
    resolved = k._at(path)
    if isinstance(resolved, int):
        return resolved
    return _fs(k, "truncate", resolved, _signed(length)) if _signed(length) >= 0 else -errno.EINVAL


@syscall(193)  # truncate64
def _truncate64(k: Linux, path: int, lo: int, hi: int, *_: int) -> int:
    resolved = k._at(path)
    if isinstance(resolved, int):
        return resolved
    length = _s64(lo, hi)
    return _fs(k, "truncate", resolved, length) if length >= 0 else -errno.EINVAL


@syscall(93)  # ftruncate
def _ftruncate(k: Linux, fd: int, length: int, *_: int) -> int:
    return _ftruncate_to(k, fd, _signed(length))


@syscall(194)  # ftruncate64
def _ftruncate64(k: Linux, fd: int, lo: int, hi: int, *_: int) -> int:
    return _ftruncate_to(k, fd, _s64(lo, hi))


def _ftruncate_to(k: Linux, fd: int, length: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    if length < 0:
        return -errno.EINVAL
    return _fs(k, "ftruncate", handle, length)


def _s64(lo: int, hi: int) -> int:
    value = (hi << 32) | lo
    return value - (1 << 64) if value & (1 << 63) else value


# -- links ------------------------------------------------------------------------


@syscall(9)  # link
def _link(k: Linux, old: int, new: int, *_: int) -> int:
    return _linkat(k, _u32(_AT_FDCWD), old, _u32(_AT_FDCWD), new, 0, 0)


@syscall(303)  # linkat
def _linkat(k: Linux, olddir: int, old: int, newdir: int, new: int, flags: int, *_: int) -> int:
    if flags & ~(_AT_SYMLINK_FOLLOW | _AT_EMPTY_PATH):
        return -errno.EINVAL
    source, target = k._at(old, olddir), k._at(new, newdir)
    if isinstance(source, int):
        return source
    if isinstance(target, int):
        return target
    return _fs(k, "link", source, target, 1 if flags & _AT_SYMLINK_FOLLOW else 0)


@syscall(83)  # symlink
def _symlink(k: Linux, target: int, path: int, *_: int) -> int:
    return _symlinkat(k, target, _u32(_AT_FDCWD), path, 0, 0, 0)


@syscall(304)  # symlinkat
def _symlinkat(k: Linux, target: int, dirfd: int, path: int, *_: int) -> int:
    contents = k._path(target)  # stored as given, never resolved
    resolved = k._at(path, dirfd)
    if isinstance(resolved, int):
        return resolved
    if not contents:
        return -errno.ENOENT
    return _fs(k, "symlink", contents, resolved)


# -- file systems ----------------------------------------------------------------


def _statfs_reply(k: Linux, raw: int | bytes, buf: int, size: int | None) -> int:
    if isinstance(raw, int):
        return raw
    f_type, bsize, blocks, bfree, bavail, files, ffree, fsid0, fsid1, namelen, frsize, flags = (
        struct.unpack("<12Q", raw)
    )
    if size is None:  # struct statfs: 32-bit counts
        if max(blocks, files) >= 1 << 32:
            return -errno.EOVERFLOW
        out = struct.pack(
            "<7I2I3I4I",
            f_type, bsize, blocks, bfree, bavail, files, ffree,
            fsid0, fsid1, namelen, frsize, flags, 0, 0, 0, 0,
        )  # fmt: skip
    else:  # struct statfs64 (84 bytes on i386)
        if size != 84:
            return -errno.EINVAL
        out = struct.pack(
            "<2I5Q2I3I4I",
            f_type, bsize, blocks, bfree, bavail, files, ffree,
            fsid0, fsid1, namelen, frsize, flags, 0, 0, 0, 0,
        )  # fmt: skip
    k._write_result(buf, out)
    return 0


@syscall(99)  # statfs
def _statfs(k: Linux, path: int, buf: int, *_: int) -> int:
    resolved = k._at(path)
    if isinstance(resolved, int):
        return resolved
    return _statfs_reply(k, k.host.fs_call("statfs", (resolved,)), buf, None)


@syscall(268)  # statfs64
def _statfs64(k: Linux, path: int, size: int, buf: int, *_: int) -> int:
    resolved = k._at(path)
    if isinstance(resolved, int):
        return resolved
    return _statfs_reply(k, k.host.fs_call("statfs", (resolved,)), buf, size)


@syscall(100)  # fstatfs
def _fstatfs(k: Linux, fd: int, buf: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    return _statfs_reply(k, k.host.fs_call("fstatfs", (handle,)), buf, None)


@syscall(269)  # fstatfs64
def _fstatfs64(k: Linux, fd: int, size: int, buf: int, *_: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    return _statfs_reply(k, k.host.fs_call("fstatfs", (handle,)), buf, size)


# -- extended attributes --------------------------------------------------------


def _xattr_target(k: Linux, how: str, where: int) -> int | bytes | None:
    """(path / link path / fd) -> what fs_call takes; None for a bad fd."""
    if how == "f":
        return k._handle(where)
    resolved = k._at(where)
    return resolved if isinstance(resolved, bytes) else None


def _sized(k: Linux, value: int | bytes, buf: int, size: int) -> int:
    if isinstance(value, int):
        return value
    if size == 0:
        return len(value)
    if len(value) > size:
        return -errno.ERANGE
    k._write_result(buf, value)
    return len(value)


def _getxattr(k: Linux, how: str, where: int, name: int, buf: int, size: int) -> int:
    target = _xattr_target(k, how, where)
    if target is None:
        return -errno.EBADF if how == "f" else -errno.ENOENT
    value = k.host.fs_call("getxattr", (target, k._path(name), 0 if how == "l" else 1))
    return _sized(k, value, buf, size)


@syscall(229)  # getxattr
def _getxattr_p(k: Linux, path: int, name: int, buf: int, size: int, *_: int) -> int:
    return _getxattr(k, "p", path, name, buf, size)


@syscall(230)  # lgetxattr
def _getxattr_l(k: Linux, path: int, name: int, buf: int, size: int, *_: int) -> int:
    return _getxattr(k, "l", path, name, buf, size)


@syscall(231)  # fgetxattr
def _getxattr_f(k: Linux, fd: int, name: int, buf: int, size: int, *_: int) -> int:
    return _getxattr(k, "f", fd, name, buf, size)


def _listxattr(k: Linux, how: str, where: int, buf: int, size: int) -> int:
    target = _xattr_target(k, how, where)
    if target is None:
        return -errno.EBADF if how == "f" else -errno.ENOENT
    return _sized(k, k.host.fs_call("listxattr", (target, 0 if how == "l" else 1)), buf, size)


@syscall(232)  # listxattr
def _listxattr_p(k: Linux, path: int, buf: int, size: int, *_: int) -> int:
    return _listxattr(k, "p", path, buf, size)


@syscall(233)  # llistxattr
def _listxattr_l(k: Linux, path: int, buf: int, size: int, *_: int) -> int:
    return _listxattr(k, "l", path, buf, size)


@syscall(234)  # flistxattr
def _listxattr_f(k: Linux, fd: int, buf: int, size: int, *_: int) -> int:
    return _listxattr(k, "f", fd, buf, size)


def _setxattr(k: Linux, how: str, where: int, name: int, value: int, size: int, flags: int) -> int:
    target = _xattr_target(k, how, where)
    if target is None:
        return -errno.EBADF if how == "f" else -errno.ENOENT
    data = k.mem.read(value, min(size, 1 << 16)) if size else b""
    args = (target, k._path(name), data, flags, 0 if how == "l" else 1)
    return _fs(k, "setxattr", *args)


@syscall(226)  # setxattr
def _setxattr_p(k: Linux, path: int, name: int, value: int, size: int, flags: int, *_: int) -> int:
    return _setxattr(k, "p", path, name, value, size, flags)


@syscall(227)  # lsetxattr
def _setxattr_l(k: Linux, path: int, name: int, value: int, size: int, flags: int, *_: int) -> int:
    return _setxattr(k, "l", path, name, value, size, flags)


@syscall(228)  # fsetxattr
def _setxattr_f(k: Linux, fd: int, name: int, value: int, size: int, flags: int, *_: int) -> int:
    return _setxattr(k, "f", fd, name, value, size, flags)


def _removexattr(k: Linux, how: str, where: int, name: int) -> int:
    target = _xattr_target(k, how, where)
    if target is None:
        return -errno.EBADF if how == "f" else -errno.ENOENT
    return _fs(k, "removexattr", target, k._path(name), 0 if how == "l" else 1)


@syscall(235)  # removexattr
def _removexattr_p(k: Linux, path: int, name: int, *_: int) -> int:
    return _removexattr(k, "p", path, name)


@syscall(236)  # lremovexattr
def _removexattr_l(k: Linux, path: int, name: int, *_: int) -> int:
    return _removexattr(k, "l", path, name)


@syscall(237)  # fremovexattr
def _removexattr_f(k: Linux, fd: int, name: int, *_: int) -> int:
    return _removexattr(k, "f", fd, name)
