"""Futexes and clone at the syscall level, each operation against the
semantics of futex(2) and clone(2), with waiting threads made by hand (the
pthread programs in test_threads.py cover what glibc uses end to end).
"""

from __future__ import annotations

import errno
import io
import os
import struct
from collections.abc import Iterator

import pytest

from rrdbg.machine.host import SeededHost
from rrdbg.machine.linux import Task
from rrdbg.machine.linux.futex import FUTEX_OWNER_DIED, FUTEX_WAITERS
from rrdbg.machine.linux.kernel import BLOCKED, MONOTONIC_BASE_NS, Linux
from rrdbg.machine.linux.task import Wait
from rrdbg.machine.machine import LinuxMachine
from tests.conftest import guest

FUTEX = 240
WAIT, WAKE, REQUEUE, CMP_REQUEUE, WAKE_OP = 0, 1, 3, 4, 5
LOCK_PI, UNLOCK_PI, TRYLOCK_PI, WAIT_BITSET, WAKE_BITSET = 6, 7, 8, 9, 10
PRIVATE = 128


@pytest.fixture
def k() -> Iterator[Linux]:
    sink = os.open(os.devnull, os.O_RDWR)
    host = SeededHost(stdin_path=os.devnull, stdout_fd=sink, stderr_fd=sink)
    m = LinuxMachine(guest("hello"), ["hello"], host, warn=io.StringIO())
    m.run(2000)
    yield m.linux
    os.close(sink)


def _scratch(k: Linux) -> int:
    """A writable word area (the top of the stack, below ESP)."""
    assert k.cpu is not None
    return (k.cpu.get_regs()["esp"] - 0x1000) & ~0xFFF


def _waiter(
    k: Linux, tid: int, address: int, bitset: int = 0xFFFFFFFF, kind: str = "futex"
) -> Task:
    """A thread blocked in FUTEX_WAIT on ``address`` (as if it had called it)."""
    t = Task(tid=tid, wait=Wait(kind, address, bitset, order=k.state.wait_order))
    k.state.wait_order += 1
    k.state.others[tid] = t
    return t


def _futex(k: Linux, *args: int) -> int:
    return k.dispatch(FUTEX, [*args, 0, 0, 0, 0, 0, 0][:6])


def _set(k: Linux, address: int, value: int) -> None:
    k.mem.write(address, struct.pack("<I", value))


def _get(k: Linux, address: int) -> int:
    return int(struct.unpack("<I", k.mem.read(address, 4))[0])


def test_wait_compares_the_word_then_blocks(k: Linux) -> None:
    a = _scratch(k)
    _set(k, a, 5)
    assert _futex(k, a, WAIT | PRIVATE, 4) == -errno.EAGAIN
    assert _futex(k, a + 1, WAIT, 5) == -errno.EINVAL  # not aligned
    assert _futex(k, a, WAIT, 5) == BLOCKED
    assert k.state.task.wait == Wait("futex", a, 0xFFFFFFFF, 0, -errno.ETIMEDOUT, 0, nr=FUTEX)


def test_wake_is_first_come_first_served_and_counts(k: Linux) -> None:
    a = _scratch(k)
    first, second, third = (_waiter(k, tid, a) for tid in (300, 200, 400))
    other = _waiter(k, 500, a + 4)
    assert _futex(k, a, WAKE | PRIVATE, 2) == 2
    assert (first.wait, second.wait, first.result) == (None, None, 0)
    assert third.wait is not None and other.wait is not None
    assert _futex(k, a, WAKE, 0x7FFFFFFF) == 1 and third.wait is None
    assert _futex(k, a, WAKE, 1) == 0


def test_bitsets_select_waiters(k: Linux) -> None:
    a = _scratch(k)
    low = _waiter(k, 300, a, bitset=0b01)
    high = _waiter(k, 301, a, bitset=0b10)
    assert _futex(k, a, WAKE_BITSET, 10, 0, 0, 0b10) == 1
    assert high.wait is None and low.wait is not None
    assert _futex(k, a, WAKE_BITSET, 10, 0, 0, 0) == -errno.EINVAL
    assert _futex(k, a, WAIT_BITSET, 0, 0, 0, 0) == -errno.EINVAL


def test_requeue_wakes_some_and_moves_the_rest_in_order(k: Linux) -> None:
    a, b = _scratch(k), _scratch(k) + 8
    ws = [_waiter(k, 300 + i, a) for i in range(4)]
    _set(k, a, 7)
    assert _futex(k, a, CMP_REQUEUE, 1, 2, b, 6) == -errno.EAGAIN  # *a != 6
    assert _futex(k, a, CMP_REQUEUE, 1, 2, b, 7) == 3
    assert ws[0].wait is None
    assert [w.wait.address for w in ws[1:] if w.wait] == [b, b, a]
    # Moved waiters keep their order on the new word.
    assert _futex(k, b, WAKE, 1) == 1 and ws[1].wait is None and ws[2].wait is not None
    assert _futex(k, a, REQUEUE, 0, 5, b) == 1 and ws[3].wait is not None
    assert ws[3].wait.address == b


def test_wake_op_updates_the_second_word_and_compares_its_old_value(k: Linux) -> None:
    a, b = _scratch(k), _scratch(k) + 8
    on_a, on_b = _waiter(k, 300, a), _waiter(k, 301, b)
    _set(k, b, 3)
    # op ADD 2, compare old > 1: b becomes 5, both woken.
    encoded = (1 << 28) | (4 << 24) | (2 << 12) | 1
    assert _futex(k, a, WAKE_OP, 1, 1, b, encoded) == 2
    assert _get(k, b) == 5 and on_a.wait is None and on_b.wait is None
    # op SET 1 << 4 (OPARG_SHIFT), compare old == 0: false, only a's waiter.
    again = _waiter(k, 302, b)
    encoded = ((0 | 8) << 28) | (0 << 24) | (4 << 12) | 0
    assert _futex(k, a, WAKE_OP, 1, 1, b, encoded) == 0
    assert _get(k, b) == 16 and again.wait is not None


def test_priority_inheritance_locks_hand_over_to_the_first_waiter(k: Linux) -> None:
    a = _scratch(k)
    me = k.state.task.tid
    _set(k, a, 0)
    assert _futex(k, a, LOCK_PI) == 0 and _get(k, a) == me
    assert _futex(k, a, LOCK_PI) == -errno.EDEADLK
    # Another thread owns it: try fails, lock waits with FUTEX_WAITERS set.
    k.state.others[777] = Task(tid=777)
    _set(k, a, 777)
    assert _futex(k, a, TRYLOCK_PI) == -errno.EAGAIN
    assert _futex(k, a, LOCK_PI) == BLOCKED
    assert _get(k, a) == 777 | FUTEX_WAITERS and k.state.task.wait is not None
    k.state.task.wait = None
    # Unlocking a lock one does not own: EPERM; the owner's unlock hands it on.
    assert _futex(k, a, UNLOCK_PI) == -errno.EPERM
    _set(k, a, me | FUTEX_WAITERS)
    heir = _waiter(k, 900, a, kind="pi")
    _waiter(k, 901, a, kind="pi")
    assert _futex(k, a, UNLOCK_PI) == 0
    assert heir.wait is None and heir.result == 0
    assert _get(k, a) == 900 | FUTEX_WAITERS  # one more waits
    # A lock whose owner is gone is taken with FUTEX_OWNER_DIED.
    _set(k, a, 4242)
    assert _futex(k, a, LOCK_PI) == 0 and _get(k, a) == me | FUTEX_OWNER_DIED


def test_timeouts_are_virtual_time_deadlines(k: Linux) -> None:
    a, ts = _scratch(k), _scratch(k) + 64
    _set(k, a, 0)
    k.mem.write(ts, struct.pack("<iI", 0, 5000))
    now = k.virtual_ns()
    assert _futex(k, a, WAIT, 0, ts) == BLOCKED
    wait = k.state.task.wait
    assert wait is not None and wait.deadline == now + 5000 and wait.timeout == -errno.ETIMEDOUT
    k.state.task.wait = None
    # WAIT_BITSET is absolute on CLOCK_MONOTONIC; a deadline passed: ETIMEDOUT now.
    k.mem.write(ts, struct.pack("<iI", 0, 0))
    assert _futex(k, a, WAIT_BITSET, 0, ts, 0, 0xFFFFFFFF) == -errno.ETIMEDOUT
    later = MONOTONIC_BASE_NS + now + 10**9
    k.mem.write(ts, struct.pack("<iI", later // 10**9, later % 10**9))
    assert _futex(k, a, WAIT_BITSET, 0, ts, 0, 0xFFFFFFFF) == BLOCKED
    assert k.state.task.wait is not None and k.state.task.wait.deadline == later - MONOTONIC_BASE_NS


def test_clone_makes_a_thread_and_refuses_bad_flag_sets(k: Linux) -> None:
    area = _scratch(k)
    thread = 0x3D0F00  # glibc's pthread_create flags
    parent_tid, child_tid = area, area + 4
    assert k.dispatch(120, [0x10000 | 0x100, 0, 0, 0, 0, 0]) == -errno.EINVAL  # THREAD w/o SIGHAND
    assert k.dispatch(120, [0x800, 0, 0, 0, 0, 0]) == -errno.EINVAL  # SIGHAND without VM
    tid = k.dispatch(120, [thread & ~0x80000, 0xB0000000, parent_tid, 0, child_tid, 0])
    assert tid > k.state.task.tid and tid in k.state.others
    child = k.state.others[tid]
    assert _get(k, parent_tid) == tid and child.tid_address == child_tid
    assert child.sigmask == k.state.task.sigmask and k.new_threads == [(child, 0xB0000000)]
    assert k.dispatch(224, [0] * 6) == k.state.task.tid  # gettid: the caller's
