"""Positioned and bulk I/O, syncing, locks, advice, and waiting on files:
pread/pwrite(v), sendfile, copy_file_range, fsync, flock, fadvise,
fallocate, poll/ppoll, select/pselect6.

Handlers register themselves with ``@syscall(nr)`` (kernel.py); they get the
``Linux`` object and the six syscall arguments and return the result
(a negative errno for failures).  Host effects go through the ``Host``
(recorded); waiting is on virtual time, as sleeps are.
"""

from __future__ import annotations

import errno
import struct

from rrdbg.machine.linux.fdtable import FileKind
from rrdbg.machine.linux.kernel import BLOCKED, Linux, _signed, syscall
from rrdbg.machine.linux.signals import UNBLOCKABLE
from rrdbg.machine.linux.sys_files import _iovecs, _written
from rrdbg.machine.linux.task import Wait
from rrdbg.machine.memory import PROT_WRITE

_MAX_IO = 1 << 24


def _s64(lo: int, hi: int) -> int:
    value = (hi << 32) | lo
    return value - (1 << 64) if value & (1 << 63) else value


def _pread(k: Linux, handle: int, count: int, offset: int) -> bytes | int:
    return k.host.fs_call("pread", (handle, min(count, _MAX_IO), offset))


def _pwrite(k: Linux, handle: int, data: bytes, offset: int) -> int:
    result = k.host.fs_call("pwrite", (handle, data, offset))
    return _written(k, result if isinstance(result, int) else -errno.EIO)


# -- pread/pwrite -----------------------------------------------------------------


def _positioned(k: Linux, fd: int, lo: int, hi: int) -> tuple[int, int] | int:
    """(host handle, offset) of a pread64/pwrite64, or its error."""
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    offset = _s64(lo, hi)
    return -errno.EINVAL if offset < 0 else (handle, offset)


@syscall(180)  # pread64
def _pread64(k: Linux, fd: int, buf: int, count: int, lo: int, hi: int, *_: int) -> int:
    where = _positioned(k, fd, lo, hi)
    if isinstance(where, int):
        return where
    handle, offset = where
    if not k.mem.is_mapped(buf, min(count, _MAX_IO), PROT_WRITE):
        return -errno.EFAULT
    data = _pread(k, handle, count, offset)
    if isinstance(data, int):
        return data
    k.mem.write(buf, data)
    return len(data)


@syscall(181)  # pwrite64
def _pwrite64(k: Linux, fd: int, buf: int, count: int, lo: int, hi: int, *_: int) -> int:
    where = _positioned(k, fd, lo, hi)
    if isinstance(where, int):
        return where
    handle, offset = where
    return _pwrite(k, handle, k.mem.read(buf, min(count, _MAX_IO)), offset)


def _preadv(k: Linux, fd: int, iov: int, iovcnt: int, offset: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    if offset < -1:
        return -errno.EINVAL
    vecs = _iovecs(k, iov, iovcnt)
    total = sum(n for _, n in vecs)
    for base, n in vecs:
        if n and not k.mem.is_mapped(base, n, PROT_WRITE):
            return -errno.EFAULT
    data = k.host.read(handle, total) if offset == -1 else _pread(k, handle, total, offset)
    if isinstance(data, int):
        return data
    done = 0
    for base, n in vecs:
        chunk = data[done : done + n]
        k.mem.write(base, chunk)
        done += len(chunk)
        if done >= len(data):
            break
    return len(data)


def _pwritev(k: Linux, fd: int, iov: int, iovcnt: int, offset: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    if offset < -1:
        return -errno.EINVAL
    data = b"".join(k.mem.read(base, n) for base, n in _iovecs(k, iov, iovcnt))
    if offset == -1:
        return _written(k, k.host.write(handle, data))
    return _pwrite(k, handle, data, offset)


@syscall(333)  # preadv
def _preadv_sys(k: Linux, fd: int, iov: int, iovcnt: int, lo: int, hi: int, *_: int) -> int:
    return _preadv(k, fd, iov, iovcnt, max(_s64(lo, hi), -2))


@syscall(334)  # pwritev
def _pwritev_sys(k: Linux, fd: int, iov: int, iovcnt: int, lo: int, hi: int, *_: int) -> int:
    return _pwritev(k, fd, iov, iovcnt, max(_s64(lo, hi), -2))


@syscall(378)  # preadv2 (flags ignored: they are hints)
def _preadv2(k: Linux, fd: int, iov: int, iovcnt: int, lo: int, hi: int, *_: int) -> int:
    return _preadv(k, fd, iov, iovcnt, _s64(lo, hi))


@syscall(379)  # pwritev2
def _pwritev2(k: Linux, fd: int, iov: int, iovcnt: int, lo: int, hi: int, *_: int) -> int:
    return _pwritev(k, fd, iov, iovcnt, _s64(lo, hi))


# -- copying between files ----------------------------------------------------------


def _copy(k: Linux, out_fd: int, in_fd: int, offset: int | None, count: int) -> tuple[int, int]:
    """Copy up to ``count`` bytes; (result, bytes read from ``offset``)."""
    src, dst = k._handle(in_fd), k._handle(out_fd)
    if src is None or dst is None:
        return -errno.EBADF, 0
    count = min(count, _MAX_IO)
    data = k.host.read(src, count) if offset is None else _pread(k, src, count, offset)
    if isinstance(data, int):
        return data, 0
    if not data:
        return 0, 0
    written = _written(k, k.host.write(dst, data))
    if written < 0:
        return written, 0
    if offset is None and written < len(data):
        k.host.lseek(src, written - len(data), 1)  # give back what was not written
    return written, written


@syscall(187)  # sendfile (32-bit offset)
def _sendfile(k: Linux, out_fd: int, in_fd: int, offp: int, count: int, *_: int) -> int:
    return _sendfile_common(k, out_fd, in_fd, offp, count, "<i")


@syscall(239)  # sendfile64
def _sendfile64(k: Linux, out_fd: int, in_fd: int, offp: int, count: int, *_: int) -> int:
    return _sendfile_common(k, out_fd, in_fd, offp, count, "<q")


def _sendfile_common(k: Linux, out_fd: int, in_fd: int, offp: int, count: int, fmt: str) -> int:
    offset = struct.unpack(fmt, k.mem.read(offp, struct.calcsize(fmt)))[0] if offp else None
    if offset is not None and offset < 0:
        return -errno.EINVAL
    result, moved = _copy(k, out_fd, in_fd, offset, count)
    if offp and offset is not None and result >= 0:
        k.mem.write(offp, struct.pack(fmt, offset + moved))
    return result


@syscall(377)  # copy_file_range
def _copy_file_range(
    k: Linux, fd_in: int, off_in: int, fd_out: int, off_out: int, length: int, flags: int
) -> int:
    if flags:
        return -errno.EINVAL
    src_off = struct.unpack("<q", k.mem.read(off_in, 8))[0] if off_in else None
    dst_off = struct.unpack("<q", k.mem.read(off_out, 8))[0] if off_out else None
    src, dst = k._handle(fd_in), k._handle(fd_out)
    if src is None or dst is None:
        return -errno.EBADF
    length = min(length, _MAX_IO)
    data = k.host.read(src, length) if src_off is None else _pread(k, src, length, src_off)
    if isinstance(data, int) or not data:
        return data if isinstance(data, int) else 0
    if dst_off is None:
        written = _written(k, k.host.write(dst, data))
    else:
        written = _pwrite(k, dst, data, dst_off)
    if written < 0:
        return written
    if src_off is None and written < len(data):
        k.host.lseek(src, written - len(data), 1)
    if off_in and src_off is not None:
        k.mem.write(off_in, struct.pack("<q", src_off + written))
    if off_out and dst_off is not None:
        k.mem.write(off_out, struct.pack("<q", dst_off + written))
    return written


# -- syncing, locks, advice ---------------------------------------------------------


def _on_handle(k: Linux, fd: int, op: str, *args: int) -> int:
    handle = k._handle(fd)
    if handle is None:
        return -errno.EBADF
    result = k.host.fs_call(op, (handle, *args))
    return result if isinstance(result, int) else -errno.EIO


@syscall(118)  # fsync
def _fsync(k: Linux, fd: int, *_: int) -> int:
    return _on_handle(k, fd, "fsync")


@syscall(148)  # fdatasync
def _fdatasync(k: Linux, fd: int, *_: int) -> int:
    return _on_handle(k, fd, "fdatasync")


@syscall(36)  # sync
def _sync(k: Linux, *_: int) -> int:
    return 0  # nothing of the host's to promise: files are written through


@syscall(344)  # syncfs
def _syncfs(k: Linux, fd: int, *_: int) -> int:
    return _on_handle(k, fd, "fsync")


@syscall(143)  # flock
def _flock(k: Linux, fd: int, operation: int, *_: int) -> int:
    if operation & ~(1 | 2 | 4 | 8) or not operation & 0b1011:
        return -errno.EINVAL
    return _on_handle(k, fd, "flock", operation)


@syscall(250)  # fadvise64 (offset 64-bit, len 32-bit)
def _fadvise64(k: Linux, fd: int, lo: int, hi: int, length: int, advice: int, *_: int) -> int:
    return _advise(k, fd, advice)


@syscall(272)  # fadvise64_64
def _fadvise64_64(k: Linux, fd: int, lo: int, hi: int, llo: int, lhi: int, advice: int) -> int:
    return _advise(k, fd, advice)


def _advise(k: Linux, fd: int, advice: int) -> int:
    # Advice changes nothing a program can observe.
    if k._handle(fd) is None:
        return -errno.EBADF
    return 0 if 0 <= advice <= 5 else -errno.EINVAL


@syscall(324)  # fallocate
def _fallocate(k: Linux, fd: int, mode: int, olo: int, ohi: int, llo: int, lhi: int) -> int:
    offset, length = _s64(olo, ohi), _s64(llo, lhi)
    if offset < 0 or length <= 0:
        return -errno.EINVAL
    return _on_handle(k, fd, "fallocate", mode, offset, length)


# -- waiting on files ---------------------------------------------------------------

_POLLIN, _POLLPRI, _POLLOUT, _POLLERR, _POLLHUP, _POLLNVAL = 1, 2, 4, 8, 0x10, 0x20


def _poll_handles(
    k: Linux, entries: list[tuple[int, int]], timeout_ns: int | None
) -> list[int] | int:
    """revents for (guest fd, events) pairs, waiting up to ``timeout_ns``
    (None: forever) of virtual time; -EINTR if a signal cut the wait."""
    records = b""
    own = True  # only the process's own pipes (and closed fds)
    for fd, events in entries:
        handle = k._handle(fd) if fd >= 0 else None
        records += struct.pack("<ih", -1 if handle is None else handle, events)
        f = None if handle is None else k.fdt.files.get(handle)
        own = own and (handle is None or (f is not None and f.kind is FileKind.PIPE))
    if own and k.multitask:
        return _poll_own(k, entries, records, timeout_ns)
    real = [t.deadline for t in k.state.timers.values() if t.deadline and t.clock == "real"]
    wait = timeout_ns
    if real:
        until_timer = max(min(real) - k.virtual_ns(), 0)
        wait = until_timer if wait is None else min(wait, until_timer)
    while True:
        result = k.host.fs_call(
            "poll", (records, -1 if wait is None else (wait + 999_999) // 10**6)
        )
        if isinstance(result, int):
            return result
        revents = [struct.unpack_from("<h", result, 2 * i)[0] & 0xFFFF for i in range(len(entries))]
        revents = [0 if fd < 0 else r for (fd, _), r in zip(entries, revents, strict=True)]
        if any(revents) or wait is None:
            return revents
        # Nothing ready: the wait's virtual time passes (timers may fire).
        left = k.sleep(wait)
        if left:
            return -errno.EINTR
        if timeout_ns is not None and wait >= timeout_ns:
            return revents
        timeout_ns = None if timeout_ns is None else timeout_ns - wait
        wait = timeout_ns
        if k.interrupting():
            return -errno.EINTR


def _poll_own(
    k: Linux, entries: list[tuple[int, int]], records: bytes, timeout_ns: int | None
) -> list[int] | int:
    """Polling only the process's own pipes (and files) while other threads
    run: nothing but those threads can make them ready, so the thread
    blocks (no host wait) until a pipe changes or the timeout passes, then
    polls again: the call is made again, its deadline kept in the task."""
    result = k.host.fs_call("poll", (records, 0))
    if isinstance(result, int):
        return result
    revents = [struct.unpack_from("<h", result, 2 * i)[0] & 0xFFFF for i in range(len(entries))]
    revents = [0 if fd < 0 else r for (fd, _), r in zip(entries, revents, strict=True)]
    task = k.state.task
    now = k.virtual_ns()
    deadline = task.poll_deadline or (0 if timeout_ns is None else now + timeout_ns)
    if any(revents) or timeout_ns == 0 or (deadline and deadline <= now):
        task.poll_deadline = 0
        return revents
    task.poll_deadline = deadline
    return k.block(Wait("poll", deadline=deadline, timeout=BLOCKED))


def _poll(k: Linux, fds: int, nfds: int, timeout_ns: int | None) -> int:
    if nfds > 1024:
        return -errno.EINVAL
    raw = k.mem.read(fds, 8 * nfds) if nfds else b""
    entries = [struct.unpack_from("<ih", raw, 8 * i) for i in range(nfds)]
    pairs = [(fd, events & 0xFFFF) for fd, events in entries]
    if not pairs:
        if timeout_ns is None:
            return k.pause()
        return k.sleep_for(timeout_ns)
    revents = _poll_handles(k, pairs, timeout_ns)
    if isinstance(revents, int):
        return revents
    count = 0
    for i, ((fd, events), got) in enumerate(zip(pairs, revents, strict=True)):
        ready = _POLLNVAL if fd >= 0 and k._handle(fd) is None else got
        ready &= events | _POLLERR | _POLLHUP | _POLLNVAL
        k.mem.write(fds + 8 * i + 6, struct.pack("<H", ready))
        count += bool(ready)
    return count


@syscall(168)  # poll
def _poll_sys(k: Linux, fds: int, nfds: int, timeout: int, *_: int) -> int:
    ms = _signed(timeout)
    return _poll(k, fds, nfds, None if ms < 0 else ms * 10**6)


def _with_mask(k: Linux, sigmask: int, size: int, wait: object) -> int:
    """ppoll/pselect6: wait with a temporary signal mask (as sigsuspend)."""
    assert callable(wait)
    if not sigmask:
        result: int = wait()
        return result
    if size != 8:
        return -errno.EINVAL
    (mask,) = struct.unpack("<Q", k.mem.read(sigmask, 8))
    st = k.state.task.signals
    # Made again after blocking (a thread waiting on its own pipes): the
    # mask from before the first call is kept in saved_mask meanwhile.
    old = st.saved_mask if st.saved_mask is not None else k.state.task.sigmask
    k.set_mask(mask & ~UNBLOCKABLE)
    result = wait()
    if result in (-errno.EINTR, BLOCKED):
        # EINTR: the handler's frame restores it; BLOCKED: the temporary
        # mask applies while the thread waits, as Linux's does.
        st.saved_mask = old
        k.need_signal_check = True
    else:
        st.saved_mask = None
        k.set_mask(old)
    return result


def _timespec(k: Linux, addr: int, fmt: str) -> int | None:
    if not addr:
        return None
    sec, nsec = struct.unpack(fmt, k.mem.read(addr, struct.calcsize(fmt)))
    if sec < 0 or not 0 <= nsec < 10**9:
        return -1
    return int(sec) * 10**9 + int(nsec)


@syscall(309)  # ppoll
def _ppoll(k: Linux, fds: int, nfds: int, tsp: int, sigmask: int, size: int, *_: int) -> int:
    timeout = _timespec(k, tsp, "<iI")
    if timeout == -1:
        return -errno.EINVAL
    return _with_mask(k, sigmask, size, lambda: _poll(k, fds, nfds, timeout))


@syscall(414)  # ppoll_time64
def _ppoll64(k: Linux, fds: int, nfds: int, tsp: int, sigmask: int, size: int, *_: int) -> int:
    timeout = _timespec(k, tsp, "<qq")
    if timeout == -1:
        return -errno.EINVAL
    return _with_mask(k, sigmask, size, lambda: _poll(k, fds, nfds, timeout))


def _select(k: Linux, n: int, sets: tuple[int, int, int], timeout_ns: int | None) -> int:
    if _signed(n) < 0 or n > 1024:
        return -errno.EINVAL
    words = (n + 31) // 32
    bits = [
        int.from_bytes(k.mem.read(addr, 4 * words), "little") if addr and words else 0
        for addr in sets
    ]
    wanted: dict[int, int] = {}
    for kind, events in zip(range(3), (_POLLIN, _POLLOUT, _POLLPRI), strict=True):
        for fd in range(n):
            if bits[kind] >> fd & 1:
                if k._handle(fd) is None:
                    return -errno.EBADF
                wanted[fd] = wanted.get(fd, 0) | events
    if not wanted:
        if timeout_ns is None:
            return k.pause()
        return k.sleep_for(timeout_ns)
    pairs = sorted(wanted.items())
    revents = _poll_handles(k, pairs, timeout_ns)
    if isinstance(revents, int):
        return revents
    out = [0, 0, 0]
    for (fd, _), r in zip(pairs, revents, strict=True):
        if r & (_POLLIN | _POLLHUP | _POLLERR) and bits[0] >> fd & 1:
            out[0] |= 1 << fd
        if r & (_POLLOUT | _POLLERR) and bits[1] >> fd & 1:
            out[1] |= 1 << fd
        if r & _POLLPRI and bits[2] >> fd & 1:
            out[2] |= 1 << fd
    for addr, value in zip(sets, out, strict=True):
        if addr and words:
            k.mem.write(addr, value.to_bytes(4 * words, "little"))
    return sum(bin(v).count("1") for v in out)


def _timeval(k: Linux, addr: int) -> int | None:
    if not addr:
        return None
    sec, usec = (int(v) for v in struct.unpack("<iI", k.mem.read(addr, 8)))
    if sec < 0 or usec >= 10**6:
        return -1
    return sec * 10**9 + usec * 1000


@syscall(142)  # _newselect
def _newselect(k: Linux, n: int, rd: int, wr: int, ex: int, tvp: int, *_: int) -> int:
    timeout = _timeval(k, tvp)
    if timeout == -1:
        return -errno.EINVAL
    result = _select(k, n, (rd, wr, ex), timeout)
    if tvp and result == 0:
        k.mem.write(tvp, bytes(8))  # the time left: none
    return result


@syscall(82)  # select (old: one pointer to the five arguments)
def _old_select(k: Linux, args: int, *_: int) -> int:
    n, rd, wr, ex, tvp = struct.unpack("<5I", k.mem.read(args, 20))
    return _newselect(k, n, rd, wr, ex, tvp, 0)


def _pselect(k: Linux, n: int, rd: int, wr: int, ex: int, tsp: int, sig: int, fmt: str) -> int:
    timeout = _timespec(k, tsp, fmt)
    if timeout == -1:
        return -errno.EINVAL
    sigmask, size = struct.unpack("<II", k.mem.read(sig, 8)) if sig else (0, 0)
    result = _with_mask(k, sigmask, size, lambda: _select(k, n, (rd, wr, ex), timeout))
    if tsp and result == 0:
        k.mem.write(tsp, bytes(struct.calcsize(fmt)))
    return result


@syscall(308)  # pselect6
def _pselect6(k: Linux, n: int, rd: int, wr: int, ex: int, tsp: int, sig: int) -> int:
    return _pselect(k, n, rd, wr, ex, tsp, sig, "<iI")


@syscall(413)  # pselect6_time64
def _pselect6_64(k: Linux, n: int, rd: int, wr: int, ex: int, tsp: int, sig: int) -> int:
    return _pselect(k, n, rd, wr, ex, tsp, sig, "<qq")
