"""Futex wait queues: the kernel object threads sleep on.

A waiter is a task whose ``wait`` is a ``"futex"`` (or ``"pi"``) wait on an
address.  There is one address space today, so the key is the address
(private and shared futexes meet, as they do on Linux for anonymous
private memory).  Wake-ups are strictly FIFO (``Wait.order``), requeueing
keeps the order: that, and one task running at a time, is what makes
wake-ups deterministic.
"""

from __future__ import annotations

import struct

from rrdbg.errors import GuestMemoryError
from rrdbg.machine.linux.kernel import Linux
from rrdbg.machine.linux.task import Task

FUTEX_WAITERS = 0x80000000
FUTEX_OWNER_DIED = 0x40000000
FUTEX_TID_MASK = 0x3FFFFFFF
BITSET_MATCH_ANY = 0xFFFFFFFF


def waiters(k: Linux, address: int, kind: str = "futex") -> list[Task]:
    """The tasks waiting on ``address``, first come first."""
    found = [
        t
        for t in k.state.tasks()
        if t.wait is not None and t.wait.kind == kind and t.wait.address == address
    ]
    return sorted(found, key=lambda t: t.wait.order if t.wait is not None else 0)


def wake(k: Linux, address: int, count: int, bitset: int = BITSET_MATCH_ANY) -> int:
    """Wake up to ``count`` waiters on ``address`` whose bitset meets
    ``bitset``; returns how many were woken."""
    woken = 0
    for t in waiters(k, address):
        if woken >= count:
            break
        assert t.wait is not None
        if t.wait.bitset & bitset:
            k.wake(t, 0)
            woken += 1
    return woken


def requeue(k: Linux, address: int, to: int, wake_count: int, move_count: int) -> int:
    """Wake ``wake_count`` waiters, move up to ``move_count`` of the rest to
    ``to`` (in order); returns woken + moved."""
    woken = wake(k, address, wake_count)
    moved = 0
    for t in waiters(k, address):
        if moved >= move_count:
            break
        assert t.wait is not None
        # At the end of the other word's queue, as Linux appends them.
        t.wait.address = to
        t.wait.order = k.state.wait_order
        k.state.wait_order += 1
        moved += 1
    return woken + moved


def wake_op(k: Linux, address: int, count: int, address2: int, count2: int, encoded: int) -> int:
    """FUTEX_WAKE_OP: update the word at ``address2``, wake ``count`` on
    ``address`` and, if the old value met the comparison, ``count2`` on
    ``address2``."""
    op, cmp = (encoded >> 28) & 0xF, (encoded >> 24) & 0xF
    oparg, cmparg = _sext12((encoded >> 12) & 0xFFF), _sext12(encoded & 0xFFF)
    if op & 8:
        oparg = 1 << (oparg & 31)
        op &= 7
    old = _read(k, address2)
    new = {
        0: oparg,
        1: old + oparg,
        2: old | oparg,
        3: old & ~oparg,
        4: old ^ oparg,
    }.get(op)
    if new is None or cmp > 5:
        return -1
    _write(k, address2, new & 0xFFFFFFFF)
    signed_old = old - (1 << 32) if old & 0x80000000 else old
    met = (
        signed_old == cmparg,
        signed_old != cmparg,
        signed_old < cmparg,
        signed_old <= cmparg,
        signed_old > cmparg,
        signed_old >= cmparg,
    )[cmp]
    woken = wake(k, address, count)
    if met:
        woken += wake(k, address2, count2)
    return woken


def exit_robust_list(k: Linux, task: Task) -> None:
    """A dying thread's robust mutexes: each lock word it still owns gets
    FUTEX_OWNER_DIED (keeping FUTEX_WAITERS), and one waiter is woken."""
    head = task.robust_list
    if not head:
        return
    try:
        entry = _read(k, head)
        offset = _read(k, head + 4)
        pending = _read(k, head + 8)
    except GuestMemoryError:  # a bad list is ignored, as Linux does
        return
    offset = offset - (1 << 32) if offset & 0x80000000 else offset
    seen = 0
    entries = []
    while entry != head and entry and seen < 2048:
        entries.append(entry & ~1)
        try:
            entry = _read(k, entry & ~1)
        except GuestMemoryError:
            break
        seen += 1
    if pending:
        entries.append(pending & ~1)
    for e in entries:
        lock = (e + offset) & 0xFFFFFFFF
        try:
            word = _read(k, lock)
        except GuestMemoryError:
            continue
        if word & FUTEX_TID_MASK != task.tid:
            continue
        heirs = waiters(k, lock, "pi")
        try:
            if heirs:
                # A PI lock goes to its first waiter, marked as its owner died.
                more = FUTEX_WAITERS if len(heirs) > 1 else 0
                _write(k, lock, heirs[0].tid | FUTEX_OWNER_DIED | more)
            else:
                _write(k, lock, (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED)
        except GuestMemoryError:
            continue  # a lock word it cannot write: skipped, as Linux does
        if heirs:
            k.wake(heirs[0], 0)
        elif word & FUTEX_WAITERS:
            wake(k, lock, 1)


def _sext12(x: int) -> int:
    return x - 0x1000 if x & 0x800 else x


def _read(k: Linux, address: int) -> int:
    return int(struct.unpack("<I", k.mem.read(address, 4))[0])


def _write(k: Linux, address: int, value: int) -> None:
    k.mem.write(address, struct.pack("<I", value & 0xFFFFFFFF))
