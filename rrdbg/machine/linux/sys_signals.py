"""Signals: dispositions, masks, the alternate
stack, waiting for signals, sigreturn and the timers that send them (the
frames themselves are signals.py; the machine delivers).

Handlers register themselves with ``@syscall(nr)`` (kernel.py); they get the
``Linux`` object and the six syscall arguments and return the result
(a negative errno for failures).
"""

from __future__ import annotations

import errno
import struct

from rrdbg.errors import GuestMemoryError
from rrdbg.machine.linux.kernel import Linux, syscall
from rrdbg.machine.linux.signals import (
    ITIMER_IDS,
    MINSIGSTKSZ,
    NSIG,
    SA_NODEFER,
    SA_RESETHAND,
    SI_KERNEL,
    SIGALRM,
    SIGKILL,
    SIGPROF,
    SIGSEGV,
    SIGSTOP,
    SIGVTALRM,
    SS_AUTODISARM,
    SS_DISABLE,
    SS_ONSTACK,
    UNBLOCKABLE,
    SigAction,
    Timer,
    bit,
    read_frame,
    siginfo,
)
from rrdbg.machine.linux.task import Task, Wait

# -- dispositions and masks ---------------------------------------------------


def _valid(sig: int) -> bool:
    return 1 <= sig <= NSIG


@syscall(174)  # rt_sigaction
def _rt_sigaction(k: Linux, sig: int, act: int, oact: int, size: int, *_: int) -> int:
    if not _valid(sig) or size != 8:
        return -errno.EINVAL
    if act and sig in (SIGKILL, SIGSTOP):
        return -errno.EINVAL
    new = SigAction.decode(k.mem.read(act, 20)) if act else None
    if oact:
        k.mem.write(oact, k.action(sig).encode())
    if new is not None:
        _set_action(k, sig, new)
    return 0


def _set_action(k: Linux, sig: int, action: SigAction) -> None:
    k.set_action(sig, action)
    if k.ignored(sig):
        # POSIX: setting a pending signal to be ignored discards it.
        k.state.task.signals.discard(sig)


@syscall(67)  # sigaction: the old layout (handler, 32-bit mask, flags, restorer)
def _sigaction(k: Linux, sig: int, act: int, oact: int, *_: int) -> int:
    if not _valid(sig) or (act and sig in (SIGKILL, SIGSTOP)):
        return -errno.EINVAL
    new = None
    if act:
        handler, mask, flags, restorer = struct.unpack("<IIII", k.mem.read(act, 16))
        new = SigAction(handler, flags, restorer, mask)
    if oact:
        old = k.action(sig)
        k.mem.write(
            oact, struct.pack("<IIII", old.handler, old.mask & 0xFFFFFFFF, old.flags, old.restorer)
        )
    if new is not None:
        _set_action(k, sig, new)
    return 0


@syscall(48)  # signal: a one-shot handler that does not block itself
def _signal(k: Linux, sig: int, handler: int, *_: int) -> int:
    if not _valid(sig) or sig in (SIGKILL, SIGSTOP):
        return -errno.EINVAL
    old = k.action(sig)
    _set_action(k, sig, SigAction(handler, SA_RESETHAND | SA_NODEFER, 0, 0))
    return old.handler


def _change_mask(k: Linux, how: int, new: int | None) -> int:
    old = k.state.task.sigmask
    if new is None:
        return 0
    if how == 0:  # SIG_BLOCK
        k.set_mask(old | new)
    elif how == 1:  # SIG_UNBLOCK
        k.set_mask(old & ~new)
    elif how == 2:  # SIG_SETMASK
        k.set_mask(new)
    else:
        return -errno.EINVAL
    return 0


@syscall(175)  # rt_sigprocmask
def _rt_sigprocmask(k: Linux, how: int, nset: int, oset: int, size: int, *_: int) -> int:
    if size != 8:
        return -errno.EINVAL
    old = k.state.task.sigmask
    new = struct.unpack("<Q", k.mem.read(nset, 8))[0] if nset else None
    if nset and how not in (0, 1, 2):
        return -errno.EINVAL
    if oset:
        k.mem.write(oset, struct.pack("<Q", old))
    return _change_mask(k, how, new)


@syscall(126)  # sigprocmask: the old 32-bit mask
def _sigprocmask(k: Linux, how: int, nset: int, oset: int, *_: int) -> int:
    old = k.state.task.sigmask
    new = None
    if nset:
        (low,) = struct.unpack("<I", k.mem.read(nset, 4))
        if how not in (0, 1, 2):
            return -errno.EINVAL
        # SIG_SETMASK of the old call leaves the high half as it was.
        new = (old & ~0xFFFFFFFF) | low if how == 2 else low
    if oset:
        k.mem.write(oset, struct.pack("<I", old & 0xFFFFFFFF))
    return _change_mask(k, how, new)


@syscall(176)  # rt_sigpending
def _rt_sigpending(k: Linux, out: int, size: int, *_: int) -> int:
    if size > 8:
        return -errno.EINVAL
    pending = (k.state.task.signals.pending_mask() | _shared_mask(k)) & k.state.task.sigmask
    k.mem.write(out, struct.pack("<Q", pending)[:size])
    return 0


@syscall(73)  # sigpending
def _sigpending(k: Linux, out: int, *_: int) -> int:
    pending = (k.state.task.signals.pending_mask() | _shared_mask(k)) & k.state.task.sigmask
    k.mem.write(out, struct.pack("<I", pending & 0xFFFFFFFF))
    return 0


def _shared_mask(k: Linux) -> int:
    mask = 0
    for sig, _ in k.state.shared:
        mask |= bit(sig)
    return mask


@syscall(186)  # sigaltstack
def _sigaltstack(k: Linux, ss: int, old: int, *_: int) -> int:
    st = k.state.task.signals
    esp = k.cpu.get_regs()["esp"] if k.cpu is not None else 0
    on = st.on_altstack(esp)
    if ss:
        sp, flags, size = struct.unpack("<IiI", k.mem.read(ss, 12))
    if old:
        cur_sp, cur_flags, cur_size = st.altstack
        flags_out = SS_ONSTACK if on else cur_flags & (SS_DISABLE | SS_AUTODISARM)
        k.mem.write(old, struct.pack("<IiI", cur_sp, flags_out, cur_size))
    if ss:
        if on:
            return -errno.EPERM
        mode = flags & ~SS_AUTODISARM
        if mode not in (0, SS_ONSTACK, SS_DISABLE):
            return -errno.EINVAL
        if mode == SS_DISABLE:
            st.altstack = (0, SS_DISABLE, 0)
        else:
            if size < MINSIGSTKSZ:
                return -errno.ENOMEM
            st.altstack = (sp, flags & SS_AUTODISARM, size)
    return 0


@syscall(178)  # rt_sigqueueinfo
def _rt_sigqueueinfo(k: Linux, pid: int, sig: int, uinfo: int, *_: int) -> int:
    if pid != k.ids.pid:
        return -errno.ESRCH
    return _queue_info(k, sig, uinfo)


@syscall(335)  # rt_tgsigqueueinfo
def _rt_tgsigqueueinfo(k: Linux, tgid: int, tid: int, sig: int, uinfo: int, *_: int) -> int:
    task = k.state.find(_signed(tid))
    if _signed(tgid) != k.ids.pid or task is None or task.exited:
        return -errno.ESRCH
    return _queue_info(k, sig, uinfo, task)


def _queue_info(k: Linux, sig: int, uinfo: int, task: Task | None = None) -> int:
    """sigqueue (to the process, or to one thread: pthread_sigqueue): the
    caller's own siginfo (SI_QUEUE and its value), with the signal number
    the call names."""
    if not _valid(sig):
        return -errno.EINVAL
    info = bytearray(k.mem.read(uinfo, 128))
    struct.pack_into("<i", info, 0, sig)
    if task is None:
        k.send(sig, bytes(info))
    else:
        k.send_to(task, sig, bytes(info))
    return 0


# -- waiting for signals -------------------------------------------------------


@syscall(29)  # pause
def _pause(k: Linux, *_: int) -> int:
    return k.pause()


def _suspend(k: Linux, mask: int) -> int:
    st = k.state.task.signals
    st.saved_mask = k.state.task.sigmask
    k.set_mask(mask)
    result = k.pause()
    # The handler's frame saves the mask from before the call; with no
    # handler to run (the process dies) it does not matter.
    k.need_signal_check = True
    return result


@syscall(179)  # rt_sigsuspend
def _rt_sigsuspend(k: Linux, mask: int, size: int, *_: int) -> int:
    if size != 8:
        return -errno.EINVAL
    return _suspend(k, struct.unpack("<Q", k.mem.read(mask, 8))[0])


@syscall(72)  # sigsuspend (old: the mask is the third argument, by value)
def _sigsuspend(k: Linux, _a: int, _b: int, mask: int, *_: int) -> int:
    return _suspend(k, (k.state.task.sigmask & ~0xFFFFFFFF) | mask)


def _sigtimedwait(k: Linux, uset: int, uinfo: int, timeout: int | None, size: int) -> int:
    if size != 8:
        return -errno.EINVAL
    (wanted,) = struct.unpack("<Q", k.mem.read(uset, 8))
    wanted &= ~UNBLOCKABLE
    st = k.state.task.signals
    while True:
        if not st.pending_mask() & wanted:
            # The thread's own first, then one the process shares (timers'
            # signals that every thread blocks wait there).
            k.take_shared(wanted, one=True)
        for sig, _ in st.queue:
            if bit(sig) & wanted:
                info = st.take_signal(sig)
                assert info is not None
                if uinfo:
                    k.mem.write(uinfo, info[:128])
                return sig
        if k.interrupting():
            return -errno.EINTR  # another signal, for a handler
        if timeout == 0:
            return -errno.EAGAIN
        if k.multitask:
            # The thread waits; a wanted signal makes it call again (and
            # find it), the deadline gives EAGAIN.
            deadline = 0 if timeout is None else k.virtual_ns() + timeout
            return k.block(Wait("sigwait", bitset=wanted, deadline=deadline, timeout=-errno.EAGAIN))
        real = [t.deadline for t in k.state.timers.values() if t.deadline and t.clock == "real"]
        end = None if timeout is None else k.virtual_ns() + timeout
        if not real and end is None:
            k.wait_for_signal()  # ends the process: nothing can ever come
            continue
        until = min([*real, *([end] if end is not None else [])])
        k.sleep(max(until - k.virtual_ns(), 0))
        if (
            end is not None
            and k.virtual_ns() >= end
            and not (st.pending_mask() | _shared_mask(k)) & wanted
        ):
            return -errno.EAGAIN


@syscall(177)  # rt_sigtimedwait (32-bit timespec)
def _rt_sigtimedwait(k: Linux, uset: int, uinfo: int, uts: int, size: int, *_: int) -> int:
    timeout = None
    if uts:
        sec, nsec = struct.unpack("<iI", k.mem.read(uts, 8))
        if sec < 0 or nsec >= 10**9:
            return -errno.EINVAL
        timeout = sec * 10**9 + nsec
    return _sigtimedwait(k, uset, uinfo, timeout, size)


@syscall(421)  # rt_sigtimedwait_time64
def _rt_sigtimedwait64(k: Linux, uset: int, uinfo: int, uts: int, size: int, *_: int) -> int:
    timeout = None
    if uts:
        sec, nsec = struct.unpack("<qq", k.mem.read(uts, 16))
        if sec < 0 or not 0 <= nsec < 10**9:
            return -errno.EINVAL
        timeout = sec * 10**9 + nsec
    return _sigtimedwait(k, uset, uinfo, timeout, size)


# -- returning from handlers ---------------------------------------------------


def _sigreturn(k: Linux, rt: bool) -> int:
    if k.cpu is None:
        return -errno.ENOSYS
    regs = k.cpu.get_regs()
    try:
        restored = read_frame(k.mem, regs["esp"], regs, rt)
    except GuestMemoryError:
        # A frame the program destroyed: Linux kills it with SIGSEGV.
        k.state.task.signals.enqueue(SIGSEGV, siginfo(SIGSEGV, SI_KERNEL))
        k.set_action(SIGSEGV, SigAction())
        k.set_mask(k.state.task.sigmask & ~bit(SIGSEGV))
        k.need_signal_check = True
        return -errno.EFAULT
    k.sigreturn = restored
    k.set_mask(restored.mask)
    if restored.altstack is not None:
        sp, flags, size = restored.altstack
        if not k.state.task.signals.on_altstack(restored.regs["esp"]):
            k.state.task.signals.altstack = (sp, flags, size) if not flags else (0, SS_DISABLE, 0)
    k.need_signal_check = True
    return restored.regs["eax"]


@syscall(119)  # sigreturn
def _sigreturn_old(k: Linux, *_: int) -> int:
    return _sigreturn(k, rt=False)


@syscall(173)  # rt_sigreturn
def _rt_sigreturn(k: Linux, *_: int) -> int:
    return _sigreturn(k, rt=True)


# -- timers --------------------------------------------------------------------

_ITIMER_SIGNALS = {0: (SIGALRM, "real"), 1: (SIGVTALRM, "cpu"), 2: (SIGPROF, "cpu")}


def _read_timeval(raw: bytes, at: int) -> int | None:
    sec, usec = (int(v) for v in struct.unpack_from("<iI", raw, at))
    if sec < 0 or usec >= 10**6:
        return None
    return sec * 10**9 + usec * 1000


def _timeval(ns: int) -> bytes:
    # Like Linux: a remaining time is rounded up to whole microseconds.
    us = (ns + 999) // 1000
    return struct.pack("<iI", us // 10**6, us % 10**6)


def _itimer_value(k: Linux, which: int) -> bytes:
    t = k.state.timers.get(ITIMER_IDS[which])
    if t is None or not t.deadline:
        return bytes(16)
    return _timeval(t.interval) + _timeval(max(t.deadline - k.timer_now(t), 1))


@syscall(105)  # getitimer
def _getitimer(k: Linux, which: int, out: int, *_: int) -> int:
    if which not in ITIMER_IDS:
        return -errno.EINVAL
    k.mem.write(out, _itimer_value(k, which))
    return 0


@syscall(104)  # setitimer
def _setitimer(k: Linux, which: int, new: int, old: int, *_: int) -> int:
    # A new deadline: the machine stops after the call to run to it exactly.
    k.need_signal_check = k.exact_timers
    if which not in ITIMER_IDS:
        return -errno.EINVAL
    raw = k.mem.read(new, 16) if new else bytes(16)
    interval, value = _read_timeval(raw, 0), _read_timeval(raw, 8)
    if interval is None or value is None:
        return -errno.EINVAL
    if old:
        k.mem.write(old, _itimer_value(k, which))
    signo, clock = _ITIMER_SIGNALS[which]
    timer = Timer(clock, signo, interval=interval)
    if value:
        timer.deadline = k.timer_now(timer) + value
    k.state.timers[ITIMER_IDS[which]] = timer
    return 0


@syscall(27)  # alarm
def _alarm(k: Linux, seconds: int, *_: int) -> int:
    # A new deadline: the machine stops after the call to run to it exactly.
    k.need_signal_check = k.exact_timers
    timers = k.state.timers
    old = timers.get(ITIMER_IDS[0])
    left = 0
    if old is not None and old.deadline:
        ns = old.deadline - k.timer_now(old)
        # Rounded to the nearest second, at least 1 if any time was left.
        left = max(1, (ns + 500_000_000) // 10**9)
    timer = Timer("real", SIGALRM)
    if seconds:
        timer.deadline = k.virtual_ns() + seconds * 10**9
    timers[ITIMER_IDS[0]] = timer
    return left


_CLOCKS = {0: "real", 1: "real", 4: "real", 5: "real", 6: "real", 7: "real", 2: "cpu", 3: "cpu"}
_SIGEV_SIGNAL, _SIGEV_NONE, _SIGEV_THREAD, _SIGEV_THREAD_ID = 0, 1, 2, 4


@syscall(259)  # timer_create
def _timer_create(k: Linux, clock: int, sevp: int, out: int, *_: int) -> int:
    kind = _CLOCKS.get(clock)
    if kind is None:
        return -errno.EINVAL
    timers = k.state.timers
    number = next(n for n in range(len(timers) + 1) if n not in timers)
    if sevp:
        value, signo, notify, tid = struct.unpack("<IiiI", k.mem.read(sevp, 16))
        if notify == _SIGEV_THREAD_ID and tid != k.ids.pid:
            return -errno.EINVAL
        if notify not in (_SIGEV_SIGNAL, _SIGEV_NONE, _SIGEV_THREAD_ID):
            return -errno.EINVAL
        if notify != _SIGEV_NONE and not _valid(signo):
            return -errno.EINVAL
    else:
        value, signo, notify = number, SIGALRM, _SIGEV_SIGNAL
    k.mem.write(out, struct.pack("<i", number))
    timers[number] = Timer(kind, signo, value=value, notify=1 if notify == _SIGEV_NONE else 0)
    return 0


def _posix_timer(k: Linux, number: int) -> Timer | None:
    return k.state.timers.get(number) if number >= 0 else None


def _timespec(fmt: str, ns: int) -> bytes:
    return struct.pack(fmt, ns // 10**9, ns % 10**9)


def _timer_get(k: Linux, t: Timer, fmt: str) -> bytes:
    left = max(t.deadline - k.timer_now(t), 1) if t.deadline else 0
    return _timespec(fmt, t.interval) + _timespec(fmt, left)


def _timer_settime(k: Linux, number: int, flags: int, new: int, old: int, fmt: str) -> int:
    # A new deadline: the machine stops after the call to run to it exactly.
    k.need_signal_check = k.exact_timers
    t = _posix_timer(k, number)
    if t is None:
        return -errno.EINVAL
    size = struct.calcsize(fmt)
    raw = k.mem.read(new, 2 * size)
    isec, insec = struct.unpack_from(fmt, raw, 0)
    vsec, vnsec = struct.unpack_from(fmt, raw, size)
    if min(isec, vsec) < 0 or not (0 <= insec < 10**9 and 0 <= vnsec < 10**9):
        return -errno.EINVAL
    if old:
        k.mem.write(old, _timer_get(k, t, fmt))
    interval, value = isec * 10**9 + insec, vsec * 10**9 + vnsec
    now = k.timer_now(t)
    if flags & 1 and value:  # TIMER_ABSTIME: value is a time on the timer's clock
        clock_now = k.epoch_ns + k.virtual_ns() if t.clock == "real" else now
        value = max(value - (clock_now - now) - now, 1)
    t.interval = interval
    t.deadline = now + value if value else 0
    t.overrun = 0
    return 0


@syscall(260)  # timer_settime
def _timer_settime32(k: Linux, number: int, flags: int, new: int, old: int, *_: int) -> int:
    return _timer_settime(k, _signed(number), flags, new, old, "<iI")


@syscall(409)  # timer_settime64
def _timer_settime64(k: Linux, number: int, flags: int, new: int, old: int, *_: int) -> int:
    return _timer_settime(k, _signed(number), flags, new, old, "<qq")


@syscall(261)  # timer_gettime
def _timer_gettime32(k: Linux, number: int, out: int, *_: int) -> int:
    t = _posix_timer(k, _signed(number))
    if t is None:
        return -errno.EINVAL
    k.mem.write(out, _timer_get(k, t, "<iI"))
    return 0


@syscall(408)  # timer_gettime64
def _timer_gettime64(k: Linux, number: int, out: int, *_: int) -> int:
    t = _posix_timer(k, _signed(number))
    if t is None:
        return -errno.EINVAL
    k.mem.write(out, _timer_get(k, t, "<qq"))
    return 0


@syscall(262)  # timer_getoverrun
def _timer_getoverrun(k: Linux, number: int, *_: int) -> int:
    t = _posix_timer(k, _signed(number))
    return -errno.EINVAL if t is None else t.overrun


@syscall(263)  # timer_delete
def _timer_delete(k: Linux, number: int, *_: int) -> int:
    if _posix_timer(k, _signed(number)) is None:
        return -errno.EINVAL
    del k.state.timers[_signed(number)]
    return 0


def _signed(x: int) -> int:
    return x - (1 << 32) if x & 0x80000000 else x
