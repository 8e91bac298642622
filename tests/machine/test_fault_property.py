"""Faults are exact wherever they sit in a block: a property test.

Hypothesis writes straight-line i386 code (register and memory arithmetic,
pushes and pops, some block-ending ``jmp +0``), puts one faulting instruction
of some kind at a random position, and runs it twice:

- on rrdbg's CPU (block hook, virtual TLB, exits), the way every run goes;
- on a reference: a bare Unicorn engine with no rrdbg hooks, single-stepped
  with Unicorn's own ``count=1``, so that every instruction is its own step
  and the state before each one is known exactly.

The reference says which instruction faults and what the machine looks like
just before it; rrdbg must report the same pc, signal and instruction count,
and leave the same registers (flags included) and memory.  ``int3`` is a
trap: both then show the state just after it.
"""

from __future__ import annotations

import os
import struct

import capstone
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unicorn import Uc, UcError
from unicorn import unicorn_const as ucc
from unicorn import x86_const as x86

from rrdbg.machine.cpu import (
    SIGFPE,
    SIGILL,
    SIGSEGV,
    SIGTRAP,
    USER_CS,
    USER_DS,
    Cpu,
    StopReason,
    install_gdt,
)
from rrdbg.machine.engine import Engine
from rrdbg.machine.machine import STATE_REGS
from rrdbg.machine.memory import PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, GuestMemory

CODE = 0x00100000
DATA = 0x00200000  # read-write, EBP points here throughout
RODATA = 0x00300000  # read-only
STACK = 0x00400000  # one read-write page, ESP starts in its middle
UNMAPPED = 0x12345678

#: The general registers, EIP and EFLAGS, from the machine's own list.
REGS = tuple(
    (name, reg) for name, reg in STATE_REGS if name not in ("cs", "ss", "ds", "es", "fs", "gs")
)
_RF = 1 << 16
# The registers ordinary instructions may change (not ESP, not EBP).
_R = [0, 1, 2, 3, 6, 7]


def _modrm(mod: int, reg: int, rm: int) -> int:
    return (mod << 6) | (reg << 3) | rm


def _ordinary(draw: st.DrawFn) -> bytes:
    """One instruction that never faults here."""
    r1, r2 = draw(st.sampled_from(_R)), draw(st.sampled_from(_R))
    imm = draw(st.integers(0, 0xFFFFFFFF))
    disp = draw(st.integers(0, 31)) * 4  # a positive disp8
    op = draw(st.sampled_from(range(14)))
    if op == 0:  # add/or/adc/sbb/and/sub/xor/cmp r1, r2
        return bytes((draw(st.sampled_from([0x01, 0x09, 0x11, 0x19, 0x21, 0x29, 0x31, 0x39])),))
    if op == 1:  # mov r1, imm32
        return bytes((0xB8 + r1,)) + struct.pack("<I", imm)
    if op == 2:  # inc / dec r1
        return bytes((draw(st.sampled_from([0x40, 0x48])) + r1,))
    if op == 3:  # shl/shr/sar r1, imm8
        return bytes((0xC1, _modrm(3, draw(st.sampled_from([4, 5, 7])), r1), imm & 31))
    if op == 4:  # mov r1, [ebp+disp]
        return bytes((0x8B, _modrm(1, r1, 5), disp))
    if op == 5:  # mov [ebp+disp], r1
        return bytes((0x89, _modrm(1, r1, 5), disp))
    if op == 6:  # add [ebp+disp], r1 (read-modify-write)
        return bytes((0x01, _modrm(1, r1, 5), disp))
    if op == 7:  # lea r1, [r2+disp]
        return bytes((0x8D, _modrm(1, r1, r2 if r2 != 4 else 0), disp))
    if op == 8:  # push r1 / pop r1
        return bytes((draw(st.sampled_from([0x50, 0x58])) + r1,))
    if op == 9:  # imul r1, r2
        return bytes((0x0F, 0xAF, _modrm(3, r1, r2)))
    if op == 10:  # setcc r8 (al, cl, dl, bl)
        return bytes((0x0F, 0x90 + draw(st.integers(0, 15)), _modrm(3, 0, r1 & 3)))
    if op == 11:  # cmovcc r1, r2
        return bytes((0x0F, 0x40 + draw(st.integers(0, 15)), _modrm(3, r1, r2)))
    if op == 12:  # jmp +0: ends the block here
        return b"\xeb\x00"
    return b"\x90"  # nop


def _with_modrm(draw: st.DrawFn, code: bytes) -> bytes:
    """Ordinary ALU op with its register operands (op 0 above draws only the opcode)."""
    if len(code) == 1 and code[0] in (0x01, 0x09, 0x11, 0x19, 0x21, 0x29, 0x31, 0x39):
        return code + bytes((_modrm(3, draw(st.sampled_from(_R)), draw(st.sampled_from(_R))),))
    return code


#: Faulting instructions: (name, code, signal).  Some need a register set
#: up first; that set-up is part of the code and retires.
FAULTS: list[tuple[str, bytes, int]] = [
    ("read unmapped", b"\xa1" + struct.pack("<I", UNMAPPED), SIGSEGV),
    ("write unmapped", b"\x89\x0d" + struct.pack("<I", UNMAPPED), SIGSEGV),
    ("write read-only", b"\x89\x0d" + struct.pack("<I", RODATA + 8), SIGSEGV),
    ("rmw read-only", b"\x01\x05" + struct.pack("<I", RODATA + 8), SIGSEGV),
    ("push unmapped", b"\xbc" + struct.pack("<I", UNMAPPED) + b"\x50", SIGSEGV),
    ("divide error", b"\x31\xc9\xf7\xf1", SIGFPE),  # xor ecx,ecx; div ecx
    ("invalid opcode", b"\x0f\x0b", SIGILL),
    ("hlt", b"\xf4", SIGSEGV),
    ("cli", b"\xfa", SIGSEGV),
    ("int 0x21", b"\xcd\x21", SIGSEGV),
    ("in al, 0x60", b"\xe4\x60", SIGSEGV),
    ("jump to unmapped", b"\xb8" + struct.pack("<I", UNMAPPED) + b"\xff\xe0", SIGSEGV),
    ("call to data", b"\xb8" + struct.pack("<I", DATA) + b"\xff\xd0", SIGSEGV),
    ("int3", b"\xcc", SIGTRAP),
]


@st.composite
def programs(draw: st.DrawFn) -> tuple[bytes, int, bytes]:
    before = [_with_modrm(draw, _ordinary(draw)) for _ in range(draw(st.integers(0, 40)))]
    after = [_with_modrm(draw, _ordinary(draw)) for _ in range(draw(st.integers(0, 10)))]
    fault = draw(st.sampled_from(range(len(FAULTS))))
    data = draw(st.binary(min_size=256, max_size=256))
    code = b"".join(before) + FAULTS[fault][1] + b"".join(after) + b"\xf4"
    return code, fault, data


def _map_all(memory: GuestMemory, code: bytes, data: bytes) -> None:
    memory.map(CODE, PAGE, PROT_READ | PROT_EXEC)
    memory.poke(CODE, code)
    memory.map(DATA, PAGE, PROT_READ | PROT_WRITE)
    memory.poke(DATA, data)
    memory.map(RODATA, PAGE, PROT_READ)
    memory.poke(RODATA, data[::-1])
    memory.map(STACK, PAGE, PROT_READ | PROT_WRITE)


def _initial_registers(data: bytes) -> list[tuple[int, int]]:
    words = struct.unpack("<6I", data[:24])
    general = [r for _, r in REGS[:4]] + [r for _, r in REGS[6:8]]
    return [*zip(general, words, strict=True), (x86.UC_X86_REG_EBP, DATA)]


def _state(read: object, memory: GuestMemory) -> dict[str, object]:
    assert callable(read)
    out: dict[str, object] = {name: read(reg) for name, reg in REGS}
    out["eflags"] = int(out["eflags"]) & ~_RF  # type: ignore[call-overload]
    out["data"] = memory.view(DATA, PAGE).tobytes()
    out["stack"] = memory.view(STACK, PAGE).tobytes()
    return out


_FETCH_ERRORS = (ucc.UC_ERR_FETCH_UNMAPPED, ucc.UC_ERR_FETCH_PROT)
_PORT_IO = {"in", "out", "insb", "insw", "insd", "outsb", "outsw", "outsd"}


def reference(code: bytes, data: bytes) -> tuple[int, dict[str, object], int | None]:
    """Single-step on plain Unicorn: (instructions retired, state, fault vector
    or None for a memory fault) at the faulting instruction."""
    engine = Engine()  # only the wrapper: no rrdbg hooks on this engine
    memory = GuestMemory(engine)
    _map_all(memory, code, data)
    uc: Uc = engine.uc
    install_gdt(engine, memory)
    stub = 0x00500000
    memory.map(stub, PAGE, PROT_READ | PROT_EXEC | PROT_WRITE)
    memory.poke(stub, b"\xcf")  # iret to CPL 3
    memory.poke(stub + 0x100, struct.pack("<5I", CODE, USER_CS, 0x202, STACK + PAGE // 2, USER_DS))
    uc.reg_write(x86.UC_X86_REG_CR0, 0x33)
    uc.reg_write(x86.UC_X86_REG_CR4, 0x604)
    uc.reg_write(x86.UC_X86_REG_ESP, stub + 0x100)
    uc.emu_start(stub, 0, count=1)
    for reg, value in _initial_registers(data):
        uc.reg_write(reg, value)
    vector: list[int] = []

    def on_intr(_uc: Uc, intno: int, _d: object) -> None:
        vector.append(intno)
        uc.emu_stop()

    uc.hook_add(ucc.UC_HOOK_INTR, on_intr)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_32)
    for steps in range(len(code) + 1):
        before = _state(uc.reg_read, memory)
        pc = uc.reg_read(x86.UC_X86_REG_EIP)
        insn = next(md.disasm_lite(memory.view(pc, 15).tobytes(), pc), None)
        if insn is not None and insn[2].split()[-1] in _PORT_IO:
            # Unicorn skips the I/O permission check; Linux user code gets #GP.
            return steps, before, 13
        try:
            uc.emu_start(pc, 0, count=1)
        except UcError as exc:
            if exc.errno in _FETCH_ERRORS and uc.reg_read(x86.UC_X86_REG_EIP) != pc:
                # A jump or call that retired, to code that cannot be fetched.
                return steps + 1, _state(uc.reg_read, memory), None
            return steps, before, None
        if vector:
            if vector[0] == 3:  # a trap: it retired, EIP is after it
                return steps + 1, _state(uc.reg_read, memory), 3
            return steps, before, vector[0]
        if uc.reg_read(x86.UC_X86_REG_EIP) == pc:
            # A clean stop without progress: a privileged instruction.
            return steps, before, 13
    raise AssertionError("the reference never faulted")


def rrdbg_run(code: bytes, data: bytes, native: bool) -> tuple[int, int, dict[str, object]]:
    engine = Engine()
    memory = GuestMemory(engine)
    _map_all(memory, code, data)
    cpu = Cpu(memory, engine, native=native)
    cpu.enter_user_mode(CODE, STACK + PAGE // 2)
    for reg, value in _initial_registers(data):
        engine.reg_write(reg, value)
    stop = cpu.run()
    assert stop.reason is StopReason.FAULT and stop.fault is not None, stop
    assert stop.fault.eip == cpu.eip
    return stop.icount, stop.fault.signal, _state(engine.reg_read, memory)


EXAMPLES = int(os.environ.get("RRDBG_FAULT_EXAMPLES", "150"))


@pytest.mark.parametrize("native", [True, False])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs())
def test_fault_stops_where_single_stepping_does(
    native: bool, program: tuple[bytes, int, bytes]
) -> None:
    code, fault, data = program
    name, _code, signal = FAULTS[fault]
    steps, expected, _vector = reference(code, data)
    icount, got_signal, state = rrdbg_run(code, data, native)
    assert got_signal == signal, name
    assert icount == steps, name
    assert state == expected, name
