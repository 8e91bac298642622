"""Time and randomness: clocks, sleeps, getrandom (all virtual or recorded).

Handlers register themselves with ``@syscall(nr)`` (kernel.py); they get the
``Linux`` object and the six syscall arguments and return the result
(a negative errno for failures).
"""

from __future__ import annotations

import errno
import struct

from rrdbg.machine.linux.kernel import NS_PER_INSN, Linux, _ts32, syscall
from rrdbg.machine.memory import PROT_WRITE


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


def _sleep(k: Linux, ns: int, rem: int, rem_format: str | None) -> int:
    """Sleep ``ns``; a signal a handler takes cuts it short: -EINTR and the
    time left in ``rem`` (relative sleeps only: ``rem_format``)."""
    return k.sleep_for(ns, rem, rem_format or "")


@syscall(162)  # nanosleep
def _nanosleep(k: Linux, req: int, rem: int, *_: int) -> int:
    sec, nsec = struct.unpack("<iI", k.mem.read(req, 8))
    if nsec >= 10**9 or sec < 0:
        return -errno.EINVAL
    return _sleep(k, sec * 10**9 + nsec, rem, "<iI")


def _clock_nanosleep(
    k: Linux, clock: int, flags: int, sec: int, nsec: int, rem: int, fmt: str
) -> int:
    now = k._clock_ns(clock)
    if now is None or clock in (2, 3):
        return -errno.EINVAL
    if nsec >= 10**9 or sec < 0:
        return -errno.EINVAL
    target = sec * 10**9 + nsec
    if flags & 1:  # TIMER_ABSTIME: never writes rem
        return _sleep(k, max(target - now, 0), 0, None)
    return _sleep(k, target, rem, fmt)


@syscall(267)  # clock_nanosleep
def _clock_nanosleep32(k: Linux, clock: int, flags: int, req: int, rem: int, *_: int) -> int:
    sec, nsec = struct.unpack("<iI", k.mem.read(req, 8))
    return _clock_nanosleep(k, clock, flags, sec, nsec, rem, "<iI")


@syscall(407)  # clock_nanosleep_time64
def _clock_nanosleep64(k: Linux, clock: int, flags: int, req: int, rem: int, *_: int) -> int:
    sec, nsec = struct.unpack("<qq", k.mem.read(req, 16))
    return _clock_nanosleep(k, clock, flags, sec, nsec, rem, "<qq")


@syscall(355)  # getrandom
def _getrandom(k: Linux, buf: int, count: int, flags: int, *_: int) -> int:
    if flags & ~0x7:
        return -errno.EINVAL
    count = min(count, 33554431)
    if not k.mem.is_mapped(buf, count, PROT_WRITE):
        return -errno.EFAULT
    k.mem.write(buf, k.host.random_bytes(count))
    return count
