"""Threads, TLS, futexes and signals (dispositions and masks; delivery is
``Linux.kill_self``).

Handlers register themselves with ``@syscall(nr)`` (kernel.py); they get the
``Linux`` object and the six syscall arguments and return the result
(a negative errno for failures).
"""

from __future__ import annotations

import errno
import struct

from rrdbg.machine.cpu import TLS_ENTRIES, TLS_FIRST_ENTRY
from rrdbg.machine.linux.kernel import Linux, syscall


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
