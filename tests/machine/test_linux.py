"""The syscall layer never crashes the machine, whatever the arguments."""

from __future__ import annotations

import errno
import io
import os
import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrdbg.machine.host import SeededHost
from rrdbg.machine.linux import ProcessExit
from rrdbg.machine.machine import LinuxMachine
from rrdbg.machine.syscall_names import SYSCALL_NAMES
from tests.conftest import guest

# Syscalls whose random arguments could touch the host's files or end the
# process are left to targeted tests.
UNSAFE = {1, 5, 10, 252, 295, 301, 37, 238, 270, 6, 63, 330}
# ... and those that create, change or remove files by a (random) path.
UNSAFE |= {9, 15, 16, 30, 38, 39, 40, 83, 92, 182, 193, 198, 212, 271, 296, 298, 299}
UNSAFE |= {302, 303, 304, 306, 320, 353, 412, 452, 226, 227, 235, 236}
# ... and those that make threads or make this one wait (tests/machine/test_futex.py),
# or make processes (tests/machine/test_processes.py).
UNSAFE |= {120, 435, 240, 422, 158, 2, 190, 11, 358}
word = st.one_of(
    st.sampled_from([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x1000, 0xBFFFF000, 0x08048000]),
    st.integers(0, 0xFFFFFFFF),
)


@pytest.fixture(scope="module")
def machine() -> Iterator[LinuxMachine]:
    sink = os.open(os.devnull, os.O_RDWR)
    host = SeededHost(stdin_path=os.devnull, stdout_fd=sink, stderr_fd=sink)
    m = LinuxMachine(guest("hello"), ["hello"], host, warn=io.StringIO())
    m.run(2000)
    yield m
    os.close(sink)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    nr=st.sampled_from([*sorted(set(SYSCALL_NAMES) - UNSAFE), 0x7FFF, 999]),
    args=st.lists(word, min_size=6, max_size=6),
)
def test_random_syscalls_return_a_result(machine: LinuxMachine, nr: int, args: list[int]) -> None:
    try:
        result = machine.linux.dispatch(nr, args)
    except ProcessExit:
        return  # a signal the process sent itself (e.g. SIGPIPE): a legal outcome
    assert isinstance(result, int)
    assert -4095 <= result <= 0xFFFFFFFF


def test_bad_pointer_gives_efault(machine: LinuxMachine) -> None:
    assert machine.linux.dispatch(4, [1, 0x10, 5, 0, 0, 0]) == -errno.EFAULT  # write
    assert machine.linux.dispatch(122, [0x10, 0, 0, 0, 0, 0]) == -errno.EFAULT  # uname


def test_unknown_syscall_is_enosys_and_reported_once() -> None:
    warn = io.StringIO()
    sink = os.open(os.devnull, os.O_RDWR)
    m = LinuxMachine(guest("hello"), ["hello"], SeededHost(stdout_fd=sink), warn=warn)
    for _ in range(3):
        assert m.linux.dispatch(400, [0] * 6) == -errno.ENOSYS
    os.close(sink)
    assert warn.getvalue().count("\n") == 1
    assert "(400)" in warn.getvalue()


def test_brk_grows_and_shrinks(machine: LinuxMachine) -> None:
    k = machine.linux
    start = k.dispatch(45, [0] * 6)
    assert k.dispatch(45, [start + 0x5000, 0, 0, 0, 0, 0]) == start + 0x5000
    assert machine.memory.is_mapped(start, 0x5000)
    assert k.dispatch(45, [start, 0, 0, 0, 0, 0]) == start
    assert k.dispatch(45, [1, 0, 0, 0, 0, 0]) == start  # below the start: refused


def test_mmap_munmap_mremap_roundtrip(machine: LinuxMachine) -> None:
    k = machine.linux
    addr = k.dispatch(192, [0, 0x3000, 3, 0x22, 0xFFFFFFFF, 0])  # anonymous RW
    assert addr & 0xFFF == 0
    machine.memory.write(addr, b"abc")
    moved = k.dispatch(163, [addr, 0x3000, 0x100000, 1, 0, 0])  # MREMAP_MAYMOVE
    assert machine.memory.read(moved, 3) == b"abc"
    assert k.dispatch(91, [moved, 0x100000, 0, 0, 0, 0]) == 0
    assert not machine.memory.is_mapped(moved, 1)


def test_clock_gettime64_is_virtual(machine: LinuxMachine) -> None:
    k = machine.linux
    buf = k.dispatch(192, [0, 0x1000, 3, 0x22, 0xFFFFFFFF, 0])
    assert k.dispatch(403, [1, buf, 0, 0, 0, 0]) == 0
    sec, nsec = struct.unpack("<qq", machine.memory.read(buf, 16))
    assert sec * 10**9 + nsec == 10**9 + machine.cpu.counter.total + k.sys.sleep_ns


@pytest.mark.parametrize(
    ("nr", "args"),
    [
        (91, [0xFFFFF000, 0x1000]),  # munmap the GDT
        (125, [0xFFFFF000, 0x1000, 7]),  # mprotect it writable
        (192, [0xFFFFF000, 0x1000, 3, 0x32, 0xFFFFFFFF, 0]),  # MAP_FIXED over it
        (163, [0xFFFFF000, 0x1000, 0x2000, 1, 0]),  # mremap it
        (219, [0xFFFFF000, 0x1000, 4]),  # MADV_DONTNEED it
    ],
)
def test_kernel_pages_are_out_of_reach(machine: LinuxMachine, nr: int, args: list[int]) -> None:
    gdt = machine.memory.view(0xFFFFF000, 0x1000).tobytes()
    result = machine.linux.dispatch(nr, [*args, 0, 0, 0, 0, 0, 0][:6])
    assert result in (-errno.EINVAL, -errno.ENOMEM)
    region = machine.memory.region_at(0xFFFFF000)
    assert region is not None
    assert region.perms == 1
    assert machine.memory.view(0xFFFFF000, 0x1000).tobytes() == gdt


def test_prctl_umask_and_process_groups(machine: LinuxMachine) -> None:
    k = machine.linux
    buf = k.dispatch(192, [0, 0x1000, 3, 0x22, 0xFFFFFFFF, 0])
    machine.memory.write(buf, b"a-very-long-thread-name\0")
    assert k.dispatch(172, [15, buf, 0, 0, 0, 0]) == 0  # PR_SET_NAME keeps 15 bytes
    assert k.dispatch(172, [16, buf + 64, 0, 0, 0, 0]) == 0  # PR_GET_NAME
    assert machine.memory.read(buf + 64, 16) == b"a-very-long-thr\0"
    assert k.dispatch(172, [4, 0, 0, 0, 0, 0]) == 0  # PR_SET_DUMPABLE 0
    assert k.dispatch(172, [3, 0, 0, 0, 0, 0]) == 0
    assert k.dispatch(172, [4, 7, 0, 0, 0, 0]) == -errno.EINVAL
    assert k.dispatch(172, [9999, 0, 0, 0, 0, 0]) == -errno.EINVAL
    old = k.dispatch(60, [0o077, 0, 0, 0, 0, 0])
    assert k.dispatch(60, [old, 0, 0, 0, 0, 0]) == 0o077
    pid = k.dispatch(20, [0] * 6)
    assert k.dispatch(65, [0] * 6) == pid
    assert k.dispatch(132, [0] * 6) == pid
    assert k.dispatch(147, [pid, 0, 0, 0, 0, 0]) == pid
    assert k.dispatch(132, [pid + 1, 0, 0, 0, 0, 0]) == -errno.ESRCH
    # The new fields survive a snapshot of the kernel state.
    from rrdbg.machine.linux import LinuxState

    again = LinuxState.from_json(k.state.to_json())
    assert (again.task.comm, again.dumpable, again.umask) == (b"a-very-long-thr", 0, old)


def test_the_kernel_objects_round_trip_through_a_snapshot_in_the_old_layout() -> None:
    """LinuxState keeps the JSON keys of the one-object state it replaced
    (snapshots written before read now, and the other way round), with the
    task's and the fd table's parts where they belong."""
    from rrdbg.machine.linux import FdTable, FileKind, LinuxState, OpenFile, Task
    from rrdbg.machine.linux.signals import SignalState, Timer

    state = LinuxState(
        brk=0x9000,
        fdt=FdTable.with_console(),
        timers={-1: Timer("real", 14, 5000, 100, 0, 0, 0, False)},
        task=Task(sigmask=0x4000, signals=SignalState(restart=3), tls={6: b"\1" * 16}),
    )
    fd = state.fdt.install(OpenFile(7, 0o200000, path=b"/tmp"), cloexec=True)
    assert fd == 3 and state.fdt.file(3) is not None
    assert [state.fdt.files[h].kind for h in (0, 7)] == [FileKind.CONSOLE, FileKind.DIRECTORY]
    data = state.to_json()
    assert {"fds", "fd_flags", "files", "sigmask", "tls", "tid_address", "comm"} <= set(data)
    assert data["signals"]["timers"][0][0] == -1 and data["signals"]["restart"] == 3
    again = LinuxState.from_json(data)
    assert again == state
    # A descriptor of a shared file closes the host handle with its last one.
    dup = state.fdt.dup(3)
    assert state.fdt.close(3) is None and state.fdt.close(dup) == 7
    assert 7 not in state.fdt.files


def test_dev_fd_and_dev_stdin_name_the_programs_own_descriptors(machine: LinuxMachine) -> None:
    """bash's process substitution passes /dev/fd/63; `cmd < f | cat
    /dev/stdin`: the guest's descriptors, never rrdbg's own."""
    k = machine.linux
    buf = k.dispatch(192, [0, 0x1000, 3, 0x22, 0xFFFFFFFF, 0])
    assert k.dispatch(331, [buf, 0, 0, 0, 0, 0]) == 0  # pipe2
    read_end, write_end = struct.unpack("<ii", machine.memory.read(buf, 8))
    assert k.dispatch(4, [write_end, buf + 0x100, 0, 0, 0, 0]) == 0
    machine.memory.write(buf + 0x100, b"through the pipe")
    assert k.dispatch(4, [write_end, buf + 0x100, 16, 0, 0, 0]) == 16
    for name in (b"/dev/fd/%d" % read_end, b"/proc/self/fd/%d" % read_end):
        machine.memory.write(buf + 0x200, name + b"\0")
        fd = k.dispatch(5, [buf + 0x200, 0, 0, 0, 0, 0])
        assert fd >= 0 and k.fdt.handle(fd) == k.fdt.handle(read_end)
        k.dispatch(6, [fd, 0, 0, 0, 0, 0])
    assert k.dispatch(63, [read_end, 0, 0, 0, 0, 0]) == 0  # dup2(read end, 0)
    machine.memory.write(buf + 0x200, b"/dev/stdin\0")
    fd = k.dispatch(5, [buf + 0x200, 0, 0, 0, 0, 0])
    assert k.dispatch(3, [fd, buf + 0x300, 64, 0, 0, 0]) == 16
    assert machine.memory.read(buf + 0x300, 16) == b"through the pipe"
    machine.memory.write(buf + 0x200, b"/dev/fd/999\0")
    assert k.dispatch(5, [buf + 0x200, 0, 0, 0, 0, 0]) == -errno.ENOENT
