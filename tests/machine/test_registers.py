"""gdb's register access by name (rrdbg/machine/registers.py)."""

from __future__ import annotations

import os

from rrdbg.machine.host import LiveHost
from rrdbg.machine.machine import LinuxMachine
from rrdbg.machine.registers import read_register, write_register
from tests.conftest import guest


def _x87(value: int) -> bytes:
    # An 80-bit value gdb sends: mantissa (explicit integer bit), exponent.
    return ((1 << 63) | value).to_bytes(8, "little") + (0x3FFF).to_bytes(2, "little")


def test_writing_fstat_keeps_the_stack_values_in_their_places() -> None:
    """st0..st7 are stack-relative, as in Linux's ptrace (FXSAVE order): a
    write of fstat that moves TOP leaves every st(i) as it was, whichever
    order gdb writes them in (record full restores st registers and fstat
    one at a time when it goes back over an fld)."""
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        m = LinuxMachine(guest("hello"), ["hello"], LiveHost(stdout_fd=sink, stderr_fd=sink))
        e = m.engine
        for i in range(8):
            write_register(e, f"st{i}", _x87(i + 1))
        tag = read_register(e, "ftag")
        for top in (6, 1, 0):
            fstat = read_register(e, "fstat")
            status = (int.from_bytes(fstat, "little") & ~(7 << 11)) | (top << 11)
            write_register(e, "fstat", status.to_bytes(4, "little"))
            assert (int.from_bytes(read_register(e, "fstat"), "little") >> 11) & 7 == top
            assert [read_register(e, f"st{i}") for i in range(8)] == [_x87(i + 1) for i in range(8)]
            assert read_register(e, "ftag") == tag  # tags belong to physical registers
    finally:
        os.close(sink)


def test_a_new_process_starts_with_an_empty_x87_stack() -> None:
    """FNINIT state, as Linux gives a new process: control word 0x37f, every
    register empty (tag word 0xffff), MXCSR 0x1f80."""
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        m = LinuxMachine(guest("hello"), ["hello"], LiveHost(stdout_fd=sink, stderr_fd=sink))
        names = ("fctrl", "ftag", "fstat", "mxcsr")
        regs = {n: int.from_bytes(read_register(m.engine, n), "little") for n in names}
        assert regs == {"fctrl": 0x37F, "ftag": 0xFFFF, "fstat": 0, "mxcsr": 0x1F80}
    finally:
        os.close(sink)
