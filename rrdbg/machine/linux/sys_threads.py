"""Threads: clone and clone3 (threads), TLS, thread ids, futexes, robust
lists, thread exit, yielding, thread-directed signals.

Handlers register themselves with ``@syscall(nr)`` (kernel.py); they get the
``Linux`` object and the six syscall arguments and return the result
(a negative errno for failures, ``BLOCKED`` when the task now waits).
New processes (clone without CLONE_THREAD, fork, vfork) are sys_process.py's.
"""

from __future__ import annotations

import errno
import struct

from rrdbg.errors import GuestMemoryError
from rrdbg.machine.cpu import TLS_ENTRIES, TLS_FIRST_ENTRY
from rrdbg.machine.linux import futex
from rrdbg.machine.linux.kernel import (
    MONOTONIC_BASE_NS,
    ExitStatus,
    Linux,
    ProcessExit,
    _signed,
    syscall,
)
from rrdbg.machine.linux.signals import SignalState
from rrdbg.machine.linux.sys_process import new_process
from rrdbg.machine.linux.task import Task, Wait, user_desc_bits

CLONE_VM = 0x100
CLONE_FS = 0x200
CLONE_FILES = 0x400
CLONE_SIGHAND = 0x800
CLONE_VFORK = 0x4000
CLONE_THREAD = 0x10000
CLONE_SETTLS = 0x80000
CLONE_PARENT_SETTID = 0x100000
CLONE_CHILD_CLEARTID = 0x200000
CLONE_CHILD_SETTID = 0x1000000
_THREAD = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD

# -- TLS ---------------------------------------------------------------------------


def install_tls(k: Linux, task: Task, u_info: int, *, allocate: bool) -> int:
    """set_thread_area for ``task``: store the descriptor in its TLS slots
    (the running task's also go into the GDT now); returns 0 or -errno."""
    entry, base, limit, bits = struct.unpack("<iIII", k.mem.read(u_info, 16))
    tls_range = range(TLS_FIRST_ENTRY, TLS_FIRST_ENTRY + TLS_ENTRIES)
    if entry == -1:
        free = [i for i in tls_range if i not in task.tls]
        if not free:
            return -errno.ESRCH
        entry = free[0]
        if allocate:
            k.mem.write(u_info, struct.pack("<i", entry))
    if entry not in tls_range:
        return -errno.EINVAL
    running = task is k.state.task
    read_exec_only = (bits >> 3) & 1
    seg_not_present = (bits >> 5) & 1
    if base == 0 and limit == 0 and read_exec_only and seg_not_present:
        task.tls.pop(entry, None)
        if running:
            k._clear_tls(entry)
        return 0
    task.tls[entry] = struct.pack("<iIII", entry, base, limit, bits)
    if running:
        k._set_tls(entry, base, limit, *user_desc_bits(bits))
    return 0


@syscall(243)  # set_thread_area
def _set_thread_area(k: Linux, u_info: int, *_: int) -> int:
    return install_tls(k, k.state.task, u_info, allocate=True)


@syscall(244)  # get_thread_area
def _get_thread_area(k: Linux, u_info: int, *_: int) -> int:
    (entry,) = struct.unpack("<i", k.mem.read(u_info, 4))
    desc = k.state.task.tls.get(entry)
    if desc is None:
        return -errno.EINVAL
    k.mem.write(u_info, desc)
    return 0


# -- creating threads ------------------------------------------------------------------


def _new_thread(
    k: Linux,
    flags: int,
    stack: int,
    parent_tid: int,
    tls: int,
    child_tid: int,
    exit_signal: int = 0,
) -> int:
    """A new thread of this process; the machine gives it the parent's
    registers with EAX = 0 (and ESP = ``stack`` if given) after the call.
    Anything but a thread is a new process (sys_process.new_process)."""
    if flags & CLONE_THREAD and not flags & CLONE_SIGHAND:
        return -errno.EINVAL
    if flags & CLONE_SIGHAND and not flags & CLONE_VM:
        return -errno.EINVAL
    if flags & _THREAD != _THREAD or flags & CLONE_VFORK:
        return new_process(k, flags, stack, parent_tid, tls, child_tid, exit_signal)
    parent = k.state.task
    tid = k.sys.new_pid()
    child = Task(
        tid=tid,
        sigmask=parent.sigmask,
        signals=SignalState(),
        tls=dict(parent.tls),
        comm=parent.comm,
    )
    if flags & CLONE_SETTLS:
        failed = install_tls(k, child, tls, allocate=False)
        if failed:
            return failed
    if flags & CLONE_PARENT_SETTID:
        k.mem.write(parent_tid, struct.pack("<I", tid))
    if flags & CLONE_CHILD_SETTID:
        k.mem.write(child_tid, struct.pack("<I", tid))
    if flags & CLONE_CHILD_CLEARTID:
        child.tid_address = child_tid
    k.state.others[tid] = child
    k.new_threads.append((child, stack))
    k.need_signal_check = True  # the machine builds its context now
    return tid


@syscall(120)  # clone: i386 order (flags, stack, parent_tid, tls, child_tid)
def _clone(
    k: Linux, flags: int, stack: int, parent_tid: int, tls: int, child_tid: int, *_: int
) -> int:
    return _new_thread(k, flags & ~0xFF, stack, parent_tid, tls, child_tid, flags & 0xFF)


@syscall(435)  # clone3(struct clone_args *, size)
def _clone3(k: Linux, args: int, size: int, *_: int) -> int:
    if size < 64 or size > 4096:
        return -errno.EINVAL
    (flags, _pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls) = struct.unpack(
        "<8Q", k.mem.read(args, 64)
    )
    if size > 64 and any(k.mem.read(args + 64, size - 64)):
        return -errno.EINVAL  # set_tid, cgroup: not for threads
    if flags >> 32 or exit_signal > 64 or (flags & CLONE_THREAD and exit_signal):
        return -errno.EINVAL
    top = (stack + stack_size) & 0xFFFFFFFF if stack else 0
    return _new_thread(k, flags, top, parent_tid, tls, child_tid, exit_signal)


# -- ids ---------------------------------------------------------------------------


@syscall(224)  # gettid
def _gettid(k: Linux, *_: int) -> int:
    return k.state.task.tid


@syscall(258)  # set_tid_address
def _set_tid_address(k: Linux, addr: int, *_: int) -> int:
    k.state.task.tid_address = addr
    return k.state.task.tid


@syscall(311)  # set_robust_list
def _set_robust_list(k: Linux, head: int, length: int, *_: int) -> int:
    if length != 12:
        return -errno.EINVAL
    k.state.task.robust_list = head
    return 0


@syscall(312)  # get_robust_list
def _get_robust_list(k: Linux, tid: int, head_ptr: int, len_ptr: int, *_: int) -> int:
    task = k.state.task if tid == 0 else k.state.find(tid)
    if task is None:
        return -errno.ESRCH
    k.mem.write(head_ptr, struct.pack("<I", task.robust_list))
    k.mem.write(len_ptr, struct.pack("<I", 12))
    return 0


# -- exit --------------------------------------------------------------------------


@syscall(1)  # exit: this thread
def _exit(k: Linux, code: int, *_: int) -> int:
    task = k.state.task
    if not k.state.others or all(t.exited for t in k.state.others.values()):
        status = k.state.leader_code if task.tid != k.ids.pid else None
        raise ProcessExit(ExitStatus(code=(code if status is None else status) & 0xFF))
    if task.tid == k.ids.pid:
        k.state.leader_code = code & 0xFF
    futex.exit_robust_list(k, task)
    if task.tid_address:
        try:
            k.mem.write(task.tid_address, bytes(4))
        except GuestMemoryError:  # Linux ignores a bad address here
            pass
        else:
            futex.wake(k, task.tid_address, 1)
    return k.block(Wait("exited"))


@syscall(252)  # exit_group
def _exit_group(k: Linux, code: int, *_: int) -> int:
    raise ProcessExit(ExitStatus(code=code & 0xFF))


# -- futexes -------------------------------------------------------------------------

_FUTEX_CMD = 0x7F
_FUTEX_CLOCK_REALTIME = 256


def _futex(
    k: Linux, uaddr: int, op: int, val: int, timeout: int, uaddr2: int, val3: int, ts: str
) -> int:
    cmd = op & _FUTEX_CMD
    if uaddr & 3:
        return -errno.EINVAL
    if cmd in (0, 9):  # FUTEX_WAIT, FUTEX_WAIT_BITSET
        bitset = futex.BITSET_MATCH_ANY if cmd == 0 else val3
        if not bitset:
            return -errno.EINVAL
        # WAIT's timeout is relative; WAIT_BITSET's absolute, on
        # CLOCK_MONOTONIC or (with the flag) CLOCK_REALTIME.
        deadline = _deadline(k, timeout, ts, cmd == 9, bool(op & _FUTEX_CLOCK_REALTIME))
        if deadline == -errno.EINVAL:
            return deadline
        if futex._read(k, uaddr) != val:
            return -errno.EAGAIN
        if deadline < 0:
            return deadline  # ETIMEDOUT
        return k.block(Wait("futex", uaddr, bitset, deadline, -errno.ETIMEDOUT))
    if cmd in (1, 10):  # FUTEX_WAKE, FUTEX_WAKE_BITSET
        bitset = futex.BITSET_MATCH_ANY if cmd == 1 else val3
        if not bitset:
            return -errno.EINVAL
        return futex.wake(k, uaddr, _count(val), bitset)
    if cmd in (3, 4):  # FUTEX_REQUEUE, FUTEX_CMP_REQUEUE
        if cmd == 4 and futex._read(k, uaddr) != val3:
            return -errno.EAGAIN
        if uaddr2 & 3:
            return -errno.EINVAL
        return futex.requeue(k, uaddr, uaddr2, _count(val), _count(timeout))
    if cmd == 5:  # FUTEX_WAKE_OP
        if uaddr2 & 3:
            return -errno.EINVAL
        woken = futex.wake_op(k, uaddr, _count(val), uaddr2, _count(timeout), val3)
        return -errno.ENOSYS if woken < 0 else woken
    if cmd in (6, 8, 13):  # FUTEX_LOCK_PI, FUTEX_TRYLOCK_PI, FUTEX_LOCK_PI2
        return _lock_pi(k, uaddr, cmd, op, timeout, ts)
    if cmd == 7:  # FUTEX_UNLOCK_PI
        return _unlock_pi(k, uaddr)
    return -errno.ENOSYS  # FUTEX_FD (removed), the requeue-PI pair


def _lock_pi(k: Linux, uaddr: int, cmd: int, op: int, timeout: int, ts: str) -> int:
    me = k.state.task.tid
    word = futex._read(k, uaddr)
    owner = word & futex.FUTEX_TID_MASK
    if owner == me:
        return -errno.EDEADLK
    if not owner or k.state.find(owner) is None:
        # Free, or its owner is gone: take it (a dead owner's is marked).
        died = futex.FUTEX_OWNER_DIED if owner else word & futex.FUTEX_OWNER_DIED
        futex._write(k, uaddr, me | died | (word & futex.FUTEX_WAITERS))
        return 0
    if cmd == 8:
        return -errno.EAGAIN
    # Absolute: LOCK_PI's on CLOCK_REALTIME, LOCK_PI2's as the flag says.
    realtime = cmd == 6 or bool(op & _FUTEX_CLOCK_REALTIME)
    deadline = _deadline(k, timeout, ts, True, realtime)
    if deadline < 0:
        return deadline
    futex._write(k, uaddr, word | futex.FUTEX_WAITERS)
    return k.block(Wait("pi", uaddr, deadline=deadline, timeout=-errno.ETIMEDOUT))


def _unlock_pi(k: Linux, uaddr: int) -> int:
    word = futex._read(k, uaddr)
    if word & futex.FUTEX_TID_MASK != k.state.task.tid:
        return -errno.EPERM
    queue = futex.waiters(k, uaddr, "pi")
    if not queue:
        futex._write(k, uaddr, 0)
        return 0
    heir = queue[0]
    more = futex.FUTEX_WAITERS if len(queue) > 1 else 0
    futex._write(k, uaddr, heir.tid | more)
    k.wake(heir, 0)
    return 0


def _deadline(k: Linux, timeout: int, ts: str, absolute: bool, realtime: bool) -> int:
    """A futex timeout as a virtual-time deadline: 0 for none, -EINVAL for a
    malformed timespec, -ETIMEDOUT for an absolute one already passed."""
    if not timeout:
        return 0
    span = _timespec(k, timeout, ts)
    if span is None:
        return -errno.EINVAL
    if not absolute:
        # A zero timeout has passed already (after the word's check).
        return k.virtual_ns() + span if span else -errno.ETIMEDOUT
    deadline = span - (k.epoch_ns if realtime else MONOTONIC_BASE_NS)
    return deadline if deadline > k.virtual_ns() else -errno.ETIMEDOUT


def _count(value: int) -> int:
    """A futex count argument: an int, negative meaning none."""
    return max(_signed(value & 0xFFFFFFFF), 0)


def _timespec(k: Linux, addr: int, fmt: str) -> int | None:
    sec, nsec = struct.unpack(fmt, k.mem.read(addr, struct.calcsize(fmt)))
    if sec < 0 or not 0 <= nsec < 10**9:
        return None
    return int(sec * 10**9 + nsec)


@syscall(240)  # futex (32-bit timespec)
def _futex32(k: Linux, uaddr: int, op: int, val: int, timeout: int, uaddr2: int, val3: int) -> int:
    return _futex(k, uaddr, op, val, timeout, uaddr2, val3, "<iI")


@syscall(422)  # futex_time64
def _futex64(k: Linux, uaddr: int, op: int, val: int, timeout: int, uaddr2: int, val3: int) -> int:
    return _futex(k, uaddr, op, val, timeout, uaddr2, val3, "<qq")


# -- scheduling ------------------------------------------------------------------------


@syscall(158)  # sched_yield
def _sched_yield(k: Linux, *_: int) -> int:
    if k.multitask:
        # The slice ends here: every other runnable thread gets a turn first.
        k.state.slice_end = 1
        k.need_signal_check = True
    return 0


def _cpu_mask(k: Linux) -> int:
    return (1 << max(1, min(k.cpus, 1024))) - 1


@syscall(242)  # sched_getaffinity
def _sched_getaffinity(k: Linux, pid: int, size: int, mask: int, *_: int) -> int:
    cpus = max(1, min(k.cpus, 1024))
    # Linux answers in whole longs covering its CPUs (nr_cpu_ids bits).
    need = (cpus + 31) // 32 * 4
    if size < need or size & 3:
        return -errno.EINVAL
    if pid and k.state.find(pid) is None:
        return -errno.ESRCH
    k.mem.write(mask, _cpu_mask(k).to_bytes(need, "little"))
    return need


@syscall(241)  # sched_setaffinity: accepted if it names a CPU there is
def _sched_setaffinity(k: Linux, pid: int, size: int, mask: int, *_: int) -> int:
    if pid and k.state.find(pid) is None:
        return -errno.ESRCH
    wanted = int.from_bytes(k.mem.read(mask, min(size, 128)), "little")
    return 0 if wanted & _cpu_mask(k) else -errno.EINVAL


# -- signals between threads ---------------------------------------------------------


@syscall(238)  # tkill
def _tkill(k: Linux, tid: int, sig: int, *_: int) -> int:
    task = k.state.find(_signed(tid))
    if task is None or task.exited:
        return -errno.ESRCH
    return k.tkill(task, sig)


@syscall(270)  # tgkill
def _tgkill(k: Linux, tgid: int, tid: int, sig: int, *_: int) -> int:
    task = k.state.find(_signed(tid))
    if _signed(tgid) != k.ids.pid or task is None or task.exited:
        return -errno.ESRCH
    return k.tkill(task, sig)
