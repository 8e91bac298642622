"""A bare-metal i386 PC for Multiboot (v1) kernels.

Role: the machine behind ``--machine pc`` (run, record, replay, gdb).  The
kernel is loaded at its physical addresses and entered in 32-bit protected
mode as the Multiboot specification and QEMU's ``-kernel`` do: EAX =
0x2BADB002, EBX = the physical address of the Multiboot information (memory
sizes, memory map, command line), CS a flat 32-bit ring-0 code segment
(selector 0x08, as QEMU's option ROM leaves it), interrupts disabled, paging
off.

Devices: COM1 (16550: transmit, receive with IRQ4, line status), the 8259
PIC pair, 8254 PIT channel 0 (IRQ0 in virtual time: 1 instruction = 1 ns),
the CMOS RTC, and QEMU's isa-debug-exit at 0xF4.  Exceptions, ``int n`` and
IRQs are delivered through the guest's IDT by this module (Unicorn only
reports them).

Invariants (docs/machine.md explains them):
- interrupts are taken at the first instruction boundary where one is
  deliverable; ``out``/``sti`` are emulated and ``popf``/``iret`` stopped
  at by bounded code hooks, so that boundary never depends on where runs
  were cut;
- every ``run`` stop is settled (deliverable interrupts delivered, a
  halted CPU woken or the run ended): one state per icount;
- the guest sees the host only through ``Host`` (serial output is
  ``write(1, ...)``, input ``read(0, ...)`` when the CPU halts, the RTC's
  epoch ``realtime_epoch_ns``), and host events are stamped with the
  icount after the instruction that made them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from unicorn import unicorn_const as ucc
from unicorn import x86_const as x86

from rrdbg.errors import EmulatorError, GuestMemoryError, RrdbgError
from rrdbg.machine import icount as ic
from rrdbg.machine.cpu import (
    _EXCEPTION_SIGNALS,
    _NO_EXCEPTION,
    SIGILL,
    SIGSEGV,
    Cpu,
    Fault,
    Stop,
    StopReason,
    _descriptor,
    _old_exception_offset,
)
from rrdbg.machine.engine import CPU_MODEL_NAME, Engine
from rrdbg.machine.host import Host
from rrdbg.machine.linux import ExitStatus
from rrdbg.machine.loader import MULTIBOOT_BOOTLOADER_MAGIC, Kernel, Symbols, read_kernel
from rrdbg.machine.memory import (
    PAGE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    GuestMemory,
    page_down,
    page_up,
)
from rrdbg.machine.registers import read_registers

DEFAULT_RAM_MB = 32
#: Conventional memory ends at the EBDA, as on QEMU's PC (639 KiB).
_LOW_END = 0x9FC00
_HIGH_START = 0x100000
#: Our boot GDT lives in the EBDA, which the memory map marks reserved.
_GDT_BASE = 0x9FC00
_KERNEL_CS = 0x08
_KERNEL_DS = 0x10
#: The Multiboot information, its memory map and the command line.
_MBI_BASE = 0x9000
_MMAP_BASE = 0x9100
_CMDLINE_BASE = 0x9400
_CMDLINE_MAX = 0x9FC00 - _CMDLINE_BASE
#: QEMU's PC keeps the top 128 KiB of RAM for its firmware tables.
_TOP_RESERVED = 128 << 10
_MBI_MEMORY = 1 << 0
_MBI_CMDLINE = 1 << 2
_MBI_MMAP = 1 << 6

#: Exceptions that push an error code: #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP.
_ERROR_CODE_VECTORS = frozenset({8, 10, 11, 12, 13, 14, 17, 21})
#: int3 is one byte, into one; int n two.
_INT_LENGTHS = {3: 1, 4: 1}

#: System registers that are part of the machine state (digest).
_SYSTEM_REGS = (
    x86.UC_X86_REG_CR0,
    x86.UC_X86_REG_CR2,
    x86.UC_X86_REG_CR3,
    x86.UC_X86_REG_CR4,
    x86.UC_X86_REG_GDTR,
    x86.UC_X86_REG_IDTR,
)

_IO_MNEMONICS = frozenset({"in", "out", "insb", "insw", "insd", "outsb", "outsw", "outsd"})

COM1 = 0x3F8
DEBUG_EXIT_PORT = 0xF4
#: Ports whose writes move the timer deadline or end the run: the CPU
#: always stops right after such an out, at its exact icount.
_STOPPING_PORTS = frozenset({0x40, 0x43, DEBUG_EXIT_PORT})
#: Ports whose writes may make an interrupt deliverable (PICs, UART IER).
_IRQ_PORTS = frozenset({0x20, 0x21, 0xA0, 0xA1, COM1 + 1}) | _STOPPING_PORTS
#: Opcodes of the instructions that can make an interrupt deliverable:
#: out imm8/dx (E6 E7 EE EF), sti (FB), popf (9D), iret (CF).
_GATE_OPCODES = b"\xe6\xe7\xee\xef\xfb\x9d\xcf"
_IF = 0x200
#: Instructions per call into the emulator in run_to_end (a few milliseconds).
RUN_SLICE = 1 << 24


@dataclass(frozen=True, slots=True)
class PcResult:
    """How a bare-metal run ended."""

    icount: int
    #: The process-like exit status: isa-debug-exit's ``(v << 1) | 1``, or
    #: None when the CPU halted for good or faulted.
    status: int | None
    reason: str


class Uart16550:
    """COM1: enough of a 16550 for polled and interrupt-driven serial I/O."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self.emit = emit
        self.rx: bytearray = bytearray()
        self.ier = 0
        self.lcr = 0
        self.mcr = 0
        self.scratch = 0
        self.divisor = 12  # 9600 baud

    # Line status: transmitter always empty (output is instantaneous).
    def _lsr(self) -> int:
        return 0x60 | (0x01 if self.rx else 0)

    def read(self, offset: int) -> int:
        dlab = self.lcr & 0x80
        if offset == 0:
            if dlab:
                return self.divisor & 0xFF
            if self.rx:
                return self.rx.pop(0)
            return 0
        if offset == 1:
            return (self.divisor >> 8) & 0xFF if dlab else self.ier
        if offset == 2:  # IIR: received data available, else no interrupt pending
            return 0xC4 if self.rx and self.ier & 1 else 0xC1
        if offset == 3:
            return self.lcr
        if offset == 4:
            return self.mcr
        if offset == 5:
            return self._lsr()
        if offset == 6:
            return 0xB0  # CTS, DSR, DCD: a cable is plugged in
        return self.scratch

    def write(self, offset: int, value: int) -> None:
        dlab = self.lcr & 0x80
        if offset == 0:
            if dlab:
                self.divisor = (self.divisor & 0xFF00) | value
            else:
                self.emit(bytes([value]))
        elif offset == 1:
            if dlab:
                self.divisor = (self.divisor & 0xFF) | (value << 8)
            else:
                self.ier = value & 0x0F
        elif offset == 3:
            self.lcr = value
        elif offset == 4:
            self.mcr = value
        elif offset == 7:
            self.scratch = value
        # FCR (2): FIFOs are always on and never overflow here.


class Pic8259:
    """One 8259A: the init sequence, mask, request and in-service registers,
    non-specific EOI.  (Edge-triggered, fully nested: what PC kernels use.)"""

    def __init__(self) -> None:
        self.base = 0x08
        self.imr = 0xFF
        self.irr = 0
        self.isr = 0
        self.init_step = 0
        self.icw4 = False
        self.read_isr = False

    def write(self, port_offset: int, value: int) -> None:
        if port_offset == 0:
            if value & 0x10:  # ICW1
                self.init_step, self.icw4 = 1, bool(value & 1)
                self.imr = self.isr = self.irr = 0
            elif value & 0x08:  # OCW3
                if value & 0x02:
                    self.read_isr = bool(value & 1)
            elif value & 0x20:  # OCW2: EOI (specific or not)
                if value & 0x40:
                    self.isr &= ~(1 << (value & 7))
                elif self.isr:
                    self.isr &= self.isr - 1  # the highest priority (lowest bit)
            return
        if self.init_step == 1:
            self.base = value & 0xF8
            self.init_step = 2
        elif self.init_step == 2:
            self.init_step = 3 if self.icw4 else 0
        elif self.init_step == 3:
            self.init_step = 0
        else:
            self.imr = value

    def read(self, port_offset: int) -> int:
        if port_offset == 1:
            return self.imr
        return self.isr if self.read_isr else self.irr

    def pending(self) -> int | None:
        """The IRQ line (0-7) to deliver next, if any."""
        ready = self.irr & ~self.imr
        for irq in range(8):
            if self.isr & (1 << irq):
                return None  # a higher or equal priority one is in service
            if ready & (1 << irq):
                return irq
        return None


class Pit8254:
    """Channel 0 of the 8254 (IRQ0), in virtual time: 1 instruction = 1 ns."""

    FREQUENCY = 1_193_182

    def __init__(self) -> None:
        self.reload = 0
        self.period_ns = 0
        self.next_ns: int | None = None
        self.pending_bytes: list[int] = []
        self.access = 3

    def write(self, port: int, value: int, now_ns: int) -> None:
        if port == 0x43:
            if (value >> 6) == 0:  # channel 0
                self.access = (value >> 4) & 3
                self.pending_bytes = []
            return
        if port != 0x40:
            return
        self.pending_bytes.append(value)
        need = 2 if self.access == 3 else 1
        if len(self.pending_bytes) < need:
            return
        reload = self.pending_bytes[0] | (self.pending_bytes[1] << 8 if need == 2 else 0)
        if self.access == 2:
            reload = value << 8
        self.pending_bytes = []
        self.reload = reload or 0x10000
        self.period_ns = max(1, round(self.reload * 1_000_000_000 / self.FREQUENCY))
        self.next_ns = now_ns + self.period_ns

    def due(self, now_ns: int) -> bool:
        """Whether the next tick is due; moves the deadline on if so."""
        if self.next_ns is None or now_ns < self.next_ns:
            return False
        while self.next_ns <= now_ns:
            self.next_ns += self.period_ns
        return True


class CmosRtc:
    """The MC146818 RTC at 0x70/0x71: time of day in BCD, 24-hour mode.

    The time is the host's at boot (host input, so recorded) plus the
    machine's virtual time."""

    def __init__(self, epoch_ns: int, now_ns: Callable[[], int]) -> None:
        self.epoch_ns = epoch_ns
        self.now_ns = now_ns
        self.index = 0
        self.ram = bytearray(128)
        self.ram[0x0A] = 0x26
        self.ram[0x0B] = 0x02
        self.ram[0x0D] = 0x80

    def read(self) -> int:
        i = self.index
        if i in _RTC_FIELDS:
            t = time.gmtime((self.epoch_ns + self.now_ns()) // 1_000_000_000)
            value = {
                0x00: t.tm_sec,
                0x02: t.tm_min,
                0x04: t.tm_hour,
                0x06: (t.tm_wday + 1) % 7 + 1,  # 1 = Sunday
                0x07: t.tm_mday,
                0x08: t.tm_mon,
                0x09: t.tm_year % 100,
                0x32: t.tm_year // 100,
            }[i]
            return ((value // 10) << 4) | (value % 10)
        if i == 0x0C:
            return 0
        return self.ram[i]

    def write(self, value: int) -> None:
        if self.index not in _RTC_FIELDS and self.index not in (0x0A, 0x0C, 0x0D):
            self.ram[self.index] = value


_RTC_FIELDS = frozenset({0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32})


class PcCpu(Cpu):
    """The CPU at ring 0 with a flat GDT, port I/O hooks and no Linux layer."""

    # A kernel may turn on paging, which the virtual TLB would ignore.
    virtual_tlb = False
    io_faults = False

    def _setup_gdt(self) -> None:
        gdt = bytes(8) + _descriptor(0, 0xFFFFF, 0x9A, 0xC) + _descriptor(0, 0xFFFFF, 0x92, 0xC)
        self.memory.poke(_GDT_BASE, gdt)
        e = self.engine
        e.reg_write_any(x86.UC_X86_REG_GDTR, (0, _GDT_BASE, len(gdt) - 1, 0))
        e.reg_write(x86.UC_X86_REG_CS, _KERNEL_CS)
        for reg in (
            x86.UC_X86_REG_DS,
            x86.UC_X86_REG_ES,
            x86.UC_X86_REG_FS,
            x86.UC_X86_REG_GS,
            x86.UC_X86_REG_SS,
        ):
            e.reg_write(reg, _KERNEL_DS)

    def _install_hooks(self) -> None:
        super()._install_hooks()
        self._emulated = set()
        self._watchers = {}
        # What QEMU's Multiboot loader hands a kernel (tests/guests/kernels/
        # k_fpu.c checks it against qemu-system-i386): protected mode with
        # ET set (CR0 = PE|ET, so x87 errors would be reported through
        # IRQ 13, which this machine does not model), no CR4.TSD at ring 0,
        # and the FPU in its FNINIT state: every x87 register empty (Unicorn's
        # reset leaves them tagged valid), control words 0x037F and 0x1F80.
        self.engine.reg_write(x86.UC_X86_REG_CR0, 0x11)
        self.engine.reg_write(x86.UC_X86_REG_CR4, 0)
        self.engine.reg_write(x86.UC_X86_REG_FPTAG, 0xFFFF)
        self.engine.reg_write(x86.UC_X86_REG_EFLAGS, 0x2)
        self.on_port_in: Callable[[int, int], int] = lambda _p, _s: 0xFFFFFFFF
        self.on_port_out: Callable[[int, int, int], None] = lambda _p, _s, _v: None
        self.engine.hook_port_in(self._hook_in)
        self.engine.hook_add(ucc.UC_HOOK_INSN, self._hook_out, aux1=x86.UC_X86_INS_OUT)

    def _hook_in(self, port: int, size: int) -> int:
        self.io_icount = self._io_position()
        try:
            return self.on_port_in(port, size) & ((1 << (8 * size)) - 1)
        finally:
            self.io_icount = None

    def _hook_out(self, _uc: object, port: int, size: int, value: int, _d: object) -> None:
        self.io_icount = self._io_position()
        try:
            self.on_port_out(port, size, value & ((1 << (8 * size)) - 1))
        finally:
            self.io_icount = None

    def trap_rdtsc(self, address: int, tsc: Callable[[int], int]) -> None:
        """Emulate ``rdtsc``/``rdtscp`` at ``address`` from the exact count:
        at ring 0 Unicorn 2.1.1 would return the host's TSC (and cannot hook
        the instruction; CR4.TSD only traps CPL > 0).  A bounded code hook
        runs just before it: it sets EDX:EAX, retires the instruction and
        jumps past it.  A false match (the bytes inside another instruction)
        is left alone: the hook checks the decoded length."""

        def hook(_uc: object, pc: int, size: int, _d: object) -> None:
            code = self.memory.view(pc, size).tobytes()
            if code not in (b"\x0f\x31", b"\x0f\x01\xf9"):
                return
            count = self.count_at(pc)
            self._notify_watchers(pc, count)
            value = tsc(count) & 0xFFFFFFFFFFFFFFFF
            e = self.engine
            e.reg_write(x86.UC_X86_REG_EAX, value & 0xFFFFFFFF)
            e.reg_write(x86.UC_X86_REG_EDX, value >> 32)
            if size == 3:
                e.reg_write(x86.UC_X86_REG_ECX, 0)  # IA32_TSC_AUX: cpu 0
            self.retire(count, pc + size)

        self._emulated.add(address)
        self.engine.hook_add(ucc.UC_HOOK_CODE, hook, begin=address, end=address)

    # -- code watches at instructions rrdbg emulates ---------------------------
    #: Addresses whose instruction a hook of ours may emulate and skip.
    _emulated: set[int]
    #: Code watches at those addresses, called by our hook (handle, callback).
    _watchers: dict[int, list[tuple[int, Callable[[int], None]]]]
    _next_watch = -1

    def watch_code(self, address: int, callback: Callable[[int], None]) -> int:
        """As ``Cpu.watch_code``; at an instruction that an rdtsc or gate hook
        may emulate, that hook calls ``callback`` first (a separate Unicorn
        hook would run after the emulation, with the count past it)."""
        if address not in self._emulated:
            return super().watch_code(address, callback)
        handle = self._next_watch
        self._next_watch -= 1
        self._watchers.setdefault(address, []).append((handle, callback))
        return handle

    def unwatch(self, handle: int) -> None:
        if handle >= 0:
            super().unwatch(handle)
            return
        for watchers in self._watchers.values():
            watchers[:] = [(h, cb) for h, cb in watchers if h != handle]

    def _notify_watchers(self, pc: int, count: int) -> None:
        for _handle, callback in self._watchers.get(pc, ()):
            callback(count)

    #: Set by the machine: called before a possible gate instruction runs,
    #: with its address, bytes and exact count.
    on_gate: Callable[[int, bytes, int], None] = staticmethod(lambda _pc, _code, _k: None)
    #: The count at which the gate hooks stay quiet (the machine is stepping
    #: over the gate instruction there).
    skip_gate_at = -1

    def trap_gate(self, address: int) -> None:
        """A bounded code hook just before the instruction at ``address`` (if
        one starts there): out, sti, popf or iret, found by a byte scan."""
        if address in self._emulated:
            return
        self._emulated.add(address)
        self.engine.hook_add(ucc.UC_HOOK_CODE, self._hook_gate, begin=address, end=address)

    def _hook_gate(self, _uc: object, pc: int, size: int, _d: object) -> None:
        count = self.count_at(pc)
        self._notify_watchers(pc, count)
        if count != self.skip_gate_at:
            self.on_gate(pc, self.memory.view(pc, size).tobytes(), count)

    def retire(self, count: int, next_eip: int) -> None:
        """From a code hook: the instruction at ``count`` was emulated here;
        execution goes on at ``next_eip`` (Unicorn restarts there)."""
        c = self.counter
        c.total = count + 1
        c.last_addr = c.last_size = c.last_icount = 0
        self.eip = next_eip

    def stop_here(self, count: int) -> None:
        """From a code hook: end the run now, exactly, with ``count`` retired
        (a code hook's stop takes effect before the next instruction)."""
        self._pending = Stop(StopReason.GATE, count)
        self.engine.stop()

    #: Inside a port I/O hook: the exact icount of the in/out instruction.
    io_icount: int | None = None
    _io_key: tuple[int, int] = (-1, -1)
    _io_nth = 0

    def _io_position(self) -> int:
        """The exact count before the in/out instruction now running.

        Unicorn does not sync EIP for port I/O, and the block's count was
        added when it was entered, so the position comes from the block:
        the k-th I/O instruction in it, k counting the hooks since the block
        was entered.  (Block boundaries differ between a run that stopped
        for a snapshot and one that did not; device time must not.)"""
        c = self.counter
        key = (c.total, c.last_addr)
        if key == self._io_key:
            self._io_nth += 1
        else:
            self._io_key, self._io_nth = key, 0
        block = (c.last_addr, c.last_size)
        indexes = self._io_insns.get(block)
        if indexes is None:
            code = self.memory.view(c.last_addr, c.last_size).tobytes()
            indexes = [
                i
                for i, (_a, _s, mnemonic, _o) in enumerate(self._md.disasm_lite(code, c.last_addr))
                if mnemonic.split()[-1] in _IO_MNEMONICS
            ]
            self._io_insns[block] = indexes
        if not indexes:
            return c.total
        return c.total - c.last_icount + indexes[min(self._io_nth, len(indexes) - 1)]

    def _hook_intr(self, intno: int) -> None:
        """Deliver an exception or ``int n`` through the guest's IDT.

        Unicorn hands every interrupt to this hook instead of delivering
        it, so the delivery is done here as the CPU does it at ring 0: check
        the gate (a missing or not-present one is #GP / #NP with the IDT
        error code), push EFLAGS, CS, EIP (and the error code for the
        exceptions that have one), clear IF for interrupt gates, jump.
        Faults return to the faulting instruction, which did not retire;
        ``int n``, ``int3`` and ``into`` return after themselves.
        """
        eip = self.eip
        software = _software_interrupt(self.engine)
        # An int ended its block and retired; a fault did not.
        count = self.counter.total if software else self.count_at(eip)
        error = _error_code(self.engine) if intno in _ERROR_CODE_VECTORS and not software else None
        if not self.raise_exception(intno, eip, error, count, software=software):
            self.engine.stop()
            return
        # The exception was handled here, not by QEMU: forget it, or the next
        # one would become a double fault (see docs/machine.md, rdtsc).
        self.engine.patch_context(_old_exception_offset(), _NO_EXCEPTION)

    def raise_exception(
        self, intno: int, eip: int, error: int | None, count: int, *, software: bool = False
    ) -> bool:
        """Deliver ``intno`` (returning to ``eip``; ``count`` instructions have
        retired) through the IDT; False, with a pending FAULT stop, when even a
        double fault cannot be delivered (QEMU's triple fault)."""
        vector = intno
        for _attempt in range(3):
            problem = self._deliver(vector, eip, error)
            if problem is None:
                break
            # The gate itself is bad: a new exception, raised by the int or
            # faulting instruction (which then does not retire).
            if software:
                eip -= _INT_LENGTHS.get(intno, 2)
                count -= 1
                software = False
            vector, error = problem
            if vector == 8 and _attempt == 2:
                break
        else:
            problem = (8, 0)
        if problem is not None:
            self._pending = Stop(
                StopReason.FAULT,
                count,
                Fault(
                    _EXCEPTION_SIGNALS.get(intno, SIGSEGV),
                    eip,
                    None,
                    f"triple fault (x86 exception {intno} could not be delivered)",
                ),
            )
            return False
        c = self.counter
        c.total = count
        c.last_addr = c.last_size = c.last_icount = 0
        self.set_icount(count)
        return True

    def _deliver(self, vector: int, eip: int, error: int | None) -> tuple[int, int] | None:
        """Push the frame and jump; or the (vector, error code) the gate raises."""
        e = self.engine
        _sel, base, limit, _flags = e.reg_read_any(x86.UC_X86_REG_IDTR)
        if 8 * vector + 7 > limit:
            return (13, 8 * vector + 2)
        gate = self.memory.view(base + 8 * vector, 8).tobytes()
        low, selector, _zero, attrs, high = struct.unpack("<HHBBH", gate)
        kind = attrs & 0x1F
        if not attrs & 0x80:
            return (11, 8 * vector + 2)
        if kind not in (0x0E, 0x0F):  # only 32-bit interrupt and trap gates
            return (13, 8 * vector + 2)
        eflags = e.reg_read(x86.UC_X86_REG_EFLAGS)
        cs = e.reg_read(x86.UC_X86_REG_CS)
        esp = e.reg_read(x86.UC_X86_REG_ESP)
        frame = [eflags, cs, eip] + ([error] if error is not None else [])
        for value in frame:
            esp = (esp - 4) & 0xFFFFFFFF
            self.memory.poke(esp, struct.pack("<I", value & 0xFFFFFFFF))
        e.reg_write(x86.UC_X86_REG_ESP, esp)
        # TF, NT, RF and VM always clear; IF only through interrupt gates.
        mask = 0x100 | 0x4000 | 0x10000 | 0x20000 | (0x200 if kind == 0x0E else 0)
        e.reg_write(x86.UC_X86_REG_EFLAGS, eflags & ~mask)
        e.reg_write(x86.UC_X86_REG_CS, selector)
        self.eip = low | (high << 16)
        return None

    def start(self, eip: int, ram_end: int) -> None:
        self._io_insns: dict[tuple[int, int], list[int]] = {}
        self.eip = eip
        self._started = True
        self._ram_end = ram_end
        #: Pages of protected code the guest wrote to, to unprotect after the run.
        self.code_written: list[int] = []

    _ram_end = 0

    def _hook_bad_access(
        self, uc: object, access: int, address: int, size: int, value: int, kind: str
    ) -> bool:
        if kind == "write" and address < self._ram_end:
            # Kernel code is kept read-only so that its decoded blocks can be
            # cached, but ring 0 may write anywhere.  Changing the mapping
            # from inside the hook is unsafe (the CPU itself may be setting a
            # descriptor's accessed bit), so the write faults, the run stops
            # at its instruction (not retired), and PcMachine makes the page
            # writable and runs the instruction again.
            for page in {address & ~(PAGE - 1), (address + size - 1) & ~(PAGE - 1)}:
                self.code_written.append(page)
        return super()._hook_bad_access(uc, access, address, size, value, kind)


class PcMachine:
    """One Multiboot kernel on a bare-metal PC."""

    def __init__(
        self,
        kernel_path: str,
        host: Host,
        *,
        ram_mb: int = DEFAULT_RAM_MB,
        cmdline: str = "",
        native: bool | None = None,
        kernel_name: str | None = None,
        exe_path: str | None = None,
        cpu_model: str = CPU_MODEL_NAME,
    ) -> None:
        """``kernel_name`` is what the command line calls the kernel (by default
        the path as given; a replay passes the recorded one); ``exe_path`` the
        kernel file's recorded path when loading a recording's kept copy;
        ``cpu_model`` a name in engine.CPU_MODELS."""
        if not 2 <= ram_mb <= 3072:
            raise RrdbgError(f"RAM size {ram_mb} MB is outside 2..3072")
        self.kernel: Kernel = read_kernel(kernel_path)
        self.kernel_exe_path = exe_path or os.path.abspath(kernel_path)
        self.ram = ram_mb << 20
        if self.kernel.end > self.ram:
            raise RrdbgError(
                f"{kernel_path}: loads up to {self.kernel.end:#x}, beyond {ram_mb} MB of RAM"
            )
        self.host = host
        self.engine = Engine(cpu_model)
        #: The emulated CPU model.
        self.cpu_model = cpu_model
        self.memory = GuestMemory(self.engine)
        # Real PCs have RAM that any ring-0 code may execute and write.
        self.memory.map(0, self.ram, PROT_READ | PROT_WRITE | PROT_EXEC, "[ram]")
        self.cpu = PcCpu(self.memory, self.engine, native=native)
        self.uart = Uart16550(self._emit)
        self.pics = (Pic8259(), Pic8259())
        self.pit = Pit8254()
        #: Virtual nanoseconds the CPU spent halted (time = icount + warp).
        self.warp_ns = 0
        self.rtc = CmosRtc(host.realtime_epoch_ns(), self.now_ns)
        self.input_done = False
        self.status: int | None = None
        self.ended: str | None = None
        #: How the machine ended (None: it runs): like a process's exit.
        self.exit: ExitStatus | None = None
        #: The unhandled fault that ended it, if one did.
        self.fault: Fault | None = None
        #: The CPU executed hlt and waits for an interrupt.
        self.halted = False
        #: No interrupt before this icount (the instruction after an sti).
        self.inhibit_until = 0
        #: The UART's interrupt line (IRQ4) as last seen.
        self.uart_line = False
        self._step_gate = False
        #: Interrupts delivered by this machine object (not machine state).
        self.deliveries = 0
        self.cpu.on_port_in = self._port_in
        self.cpu.on_port_out = self._port_out
        self.cpu.on_gate = self._on_gate
        for seg in self.kernel.segments:
            self.memory.poke(seg.vaddr, seg.data)
        for seg in self.kernel.segments:
            if seg.perms & PROT_EXEC:
                for pattern in (b"\x0f\x31", b"\x0f\x01\xf9"):
                    start = seg.data.find(pattern)
                    while start >= 0:
                        self.cpu.trap_rdtsc(seg.vaddr + start, self._tsc)
                        start = seg.data.find(pattern, start + 1)
        self._trap_gates()
        for seg in self.kernel.segments:
            if seg.perms & PROT_EXEC and not seg.perms & PROT_WRITE:
                # Read-only code: its blocks are decoded once and cached
                # (PcCpu._hook_bad_access undoes this if the kernel writes it).
                lo, hi = page_down(seg.vaddr), page_up(seg.vaddr + seg.memsz)
                self.memory.protect(lo, hi - lo, PROT_READ | PROT_EXEC)
        ebx = self._boot_information(kernel_name or kernel_path, cmdline)
        e = self.engine
        e.reg_write(x86.UC_X86_REG_EAX, MULTIBOOT_BOOTLOADER_MAGIC)
        e.reg_write(x86.UC_X86_REG_EBX, ebx)
        for reg in (x86.UC_X86_REG_ECX, x86.UC_X86_REG_EDX, x86.UC_X86_REG_ESI):
            e.reg_write(reg, 0)
        self.cpu.start(self.kernel.entry, self.ram)

    def _boot_information(self, kernel_name: str, cmdline: str) -> int:
        # QEMU passes "KERNEL-PATH APPEND" (with the space even when APPEND is
        # empty); kernels that print their command line print the same.
        raw = f"{kernel_name} {cmdline}".encode()
        if len(raw) >= _CMDLINE_MAX:
            raise RrdbgError("the kernel command line is too long")
        mem = self.memory
        mem.poke(_CMDLINE_BASE, raw + b"\0")
        # The memory map QEMU's PC gives (types: 1 available, 2 reserved).
        high_end = self.ram - _TOP_RESERVED
        ranges = [
            (0, _LOW_END, 1),
            (_LOW_END, 0xA0000 - _LOW_END, 2),
            (0xF0000, 0x10000, 2),
            (_HIGH_START, high_end - _HIGH_START, 1),
            (high_end, _TOP_RESERVED, 2),
            (0xFFFC0000, 0x40000, 2),
        ]
        mmap = b"".join(struct.pack("<IQQI", 20, base, size, kind) for base, size, kind in ranges)
        mem.poke(_MMAP_BASE, mmap)
        flags = _MBI_MEMORY | _MBI_CMDLINE | _MBI_MMAP
        mbi = bytearray(52)
        struct.pack_into(
            "<IIII", mbi, 0, flags, _LOW_END // 1024, (high_end - _HIGH_START) // 1024, 0
        )
        struct.pack_into("<I", mbi, 16, _CMDLINE_BASE)
        struct.pack_into("<II", mbi, 44, len(mmap), _MMAP_BASE)
        mem.poke(_MBI_BASE, bytes(mbi))
        return _MBI_BASE

    # -- devices ---------------------------------------------------------
    def _emit(self, data: bytes) -> None:
        self.host.write(1, data)

    def virtual_ns(self) -> int:
        return self.now_ns()

    def _tsc(self, count: int) -> int:
        """The time-stamp counter: virtual nanoseconds (a 1 GHz TSC)."""
        return count + self.warp_ns

    def event_icount(self) -> int:
        """The icount a host event made now is stamped with: as for the Linux
        machine's system calls, the count once the instruction that made it
        has retired (an in/out at count k: k + 1), so that a machine stopped
        at icount n has made exactly the events stamped <= n.  Between
        instructions (serial input read by a waking hlt): the icount."""
        io = self.cpu.io_icount
        return io + 1 if io is not None else self.cpu.icount

    def _position(self) -> int:
        """The count of the instruction running now (in a hook), or the icount."""
        io = self.cpu.io_icount
        return io if io is not None else self.cpu.icount

    def now_ns(self) -> int:
        """Virtual time: one nanosecond per instruction, plus halted time."""
        return self._position() + self.warp_ns

    def _port_in(self, port: int, size: int) -> int:
        if COM1 <= port < COM1 + 8:
            return self.uart.read(port - COM1)
        if port in (0x20, 0x21):
            return self.pics[0].read(port - 0x20)
        if port in (0xA0, 0xA1):
            return self.pics[1].read(port - 0xA0)
        if port == 0x71:
            return self.rtc.read()
        if port == 0x70:
            return self.rtc.index
        return 0xFFFFFFFF  # no device: the bus floats high

    def _port_out(self, port: int, size: int, value: int) -> None:
        if COM1 <= port < COM1 + 8:
            self.uart.write(port - COM1, value & 0xFF)
        elif port in (0x20, 0x21):
            self.pics[0].write(port - 0x20, value & 0xFF)
        elif port in (0xA0, 0xA1):
            self.pics[1].write(port - 0xA0, value & 0xFF)
        elif port in (0x40, 0x43):
            self.pit.write(port, value & 0xFF, self.now_ns())
        elif port == 0x70:
            self.rtc.index = value & 0x7F
        elif port == 0x71:
            self.rtc.write(value & 0xFF)
        elif port == DEBUG_EXIT_PORT:
            v = value & 0xFF
            self._end(f"isa-debug-exit wrote {v:#x}", status=(v << 1) | 1)
        if self.cpu.io_icount != self._gate_at and port in _IRQ_PORTS:
            # An out the gate scan did not see (code made at run time): the
            # best left is to stop at the end of its block.
            self.cpu.request_stop()

    # -- gates: exact stops where an interrupt may become deliverable ---------
    def _trap_gates(self) -> None:
        for seg in self.kernel.segments:
            if not seg.perms & PROT_EXEC:
                continue
            data = seg.data
            for i, byte in enumerate(data):
                if byte in _GATE_OPCODES:
                    self.cpu.trap_gate(seg.vaddr + i)
                    if i and data[i - 1] == 0x66:  # operand-size prefix: starts there
                        self.cpu.trap_gate(seg.vaddr + i - 1)

    #: The count of the out instruction being emulated by ``_on_gate``.
    _gate_at = -1

    def _on_gate(self, pc: int, code: bytes, count: int) -> None:
        """Just before an out, sti, popf or iret at ``count``.

        Interrupts are taken at the first instruction boundary where one is
        deliverable, and that can only change at a timer deadline (a run
        limit), at a hlt (the CPU stops), or after these instructions.  So
        ``out`` and ``sti`` are emulated here (exactly, without leaving the
        block machinery) and the run stops right after them when something
        became deliverable; ``popf`` and ``iret`` stop the run before
        themselves when an interrupt waits for EFLAGS.IF, and the machine
        steps them.  The result does not depend on where runs are cut."""
        prefixed = code[:1] == b"\x66"
        body = code[1:] if prefixed else code
        if not body:
            return
        op = body[0]
        e = self.engine
        eflags = e.reg_read(x86.UC_X86_REG_EFLAGS)
        if (e.reg_read(x86.UC_X86_REG_CS) & 3) > (eflags >> 12) & 3:
            return  # not allowed at this privilege: the CPU raises #GP itself
        cpu = self.cpu
        if op in (0xE6, 0xE7, 0xEE, 0xEF) and len(body) == (2 if op < 0xEE else 1):
            port = body[1] if op < 0xEE else e.reg_read(x86.UC_X86_REG_EDX) & 0xFFFF
            size = 1 if op in (0xE6, 0xEE) else 2 if prefixed else 4
            value = e.reg_read(x86.UC_X86_REG_EAX) & ((1 << (8 * size)) - 1)
            cpu.io_icount = self._gate_at = count
            try:
                self._port_out(port, size, value)
            finally:
                cpu.io_icount = None
                self._gate_at = -1
            cpu.retire(count, pc + len(code))
            if (
                self.exit is not None
                or port in _STOPPING_PORTS
                or (eflags & _IF and self._irq_waiting(count + 1))
            ):
                cpu.stop_here(count + 1)
        elif code == b"\xfb":
            if eflags & _IF:
                return  # already set: no change, no interrupt shadow
            e.reg_write(x86.UC_X86_REG_EFLAGS, eflags | _IF)
            cpu.retire(count, pc + 1)
            # Interrupts are recognised only after the next instruction.
            self.inhibit_until = count + 2
            if self._irq_waiting(count + 1):
                cpu.stop_here(count + 1)
        elif (
            op in (0x9D, 0xCF) and len(body) == 1 and not eflags & _IF and self._irq_waiting(count)
        ):
            self._step_gate = True
            cpu.stop_here(count)

    # -- running -----------------------------------------------------------
    @property
    def icount(self) -> int:
        return self.cpu.icount

    def result(self) -> PcResult:
        return PcResult(self.icount, self.status, self.ended or "")

    def run(self, limit: int = ic.NO_LIMIT, *, exact: bool = True) -> Stop:
        """Run until ``limit``, an exit address (breakpoint), a stop request
        or the end of the machine; interrupts, halts and faults the guest
        handles are dealt with on the way.

        Every stop leaves the machine *settled*: the interrupts deliverable
        at that icount have been delivered and a halted CPU woken if
        anything can wake it (or the machine ended), so the state at an
        icount is the same however the run got there.  Returns LIMIT,
        EXIT, REQUEST, FAULT (the machine ended on an unhandled fault;
        ``exit`` says with which signal) or END (``exit``, ``ended``)."""
        if self.exit is not None:
            raise EmulatorError(f"the machine has stopped ({self.ended})")
        cpu = self.cpu
        self._settle()
        # A gate stop that ended the last run exactly at its limit fires again.
        step = self._step_gate = False
        while self.exit is None:
            now = self.icount
            if now >= limit:
                return Stop(StopReason.LIMIT, now)
            bound = limit
            deadline = self.pit.next_ns
            if deadline is not None:
                bound = min(bound, max(now + 1, deadline - self.warp_ns))
            if self.inhibit_until > now:
                bound = min(bound, self.inhibit_until)
            if step:
                bound = now + 1
                cpu.skip_gate_at = now
            try:
                stop = cpu.run(bound, exact=exact or bound != limit)
            finally:
                cpu.skip_gate_at = -1
            step = False
            reason = stop.reason
            if reason is StopReason.GATE:
                step, self._step_gate = self._step_gate, False
                self._settle()
            elif reason is StopReason.LIMIT:
                self._settle()
            elif reason is StopReason.REQUEST:
                self._settle()
                if self.exit is None:
                    return Stop(StopReason.REQUEST, self.icount)
            elif reason is StopReason.EXIT:
                # A breakpoint where an interrupt became deliverable (after a
                # gate, at a deadline): the state here is after its delivery.
                delivered = self.deliveries
                self._settle()
                if self.deliveries == delivered and self.exit is None:
                    return stop
            else:
                assert stop.fault is not None
                self._fault(stop.fault, stop.icount)
        if self.fault is not None:
            return Stop(StopReason.FAULT, self.icount, self.fault)
        return Stop(StopReason.END, self.icount)

    def _fault(self, fault: Fault, icount: int) -> None:
        """A FAULT stop from the CPU: handle it as the PC would, or end."""
        cpu = self.cpu
        if cpu.code_written:
            self._unprotect_written_code()
            return  # the write that faulted runs again
        if fault.what == "invalid instruction":
            # Unicorn ends the run on an undefined opcode instead of
            # raising #UD: deliver it now, at the instruction.
            if cpu.raise_exception(6, fault.eip, None, icount):
                self._settle()
                return
            why = f"triple fault (#UD at eip={fault.eip:#010x} not handled)"
            self._end(why, signal=SIGILL, fault=Fault(SIGILL, fault.eip, None, why))
            return
        if fault.what == "privileged instruction" and self._after_hlt():
            self.halted = True
            self._settle()
            return
        self._end(f"{fault.what} at eip={fault.eip:#010x}", signal=fault.signal, fault=fault)

    def run_to_end(self, *, max_icount: int | None = None) -> PcResult:
        """Run until isa-debug-exit, a halt nothing can end, or a triple fault
        (or until ``max_icount``: the reason then says "stopped after")."""
        while self.exit is None:
            limit = self.icount + RUN_SLICE
            if max_icount is not None:
                if self.icount >= max_icount:
                    return PcResult(self.icount, None, f"stopped after {max_icount} instructions")
                limit = min(limit, max_icount)
            self.run(limit, exact=limit == max_icount)
        return self.result()

    def _end(
        self,
        reason: str,
        *,
        status: int | None = None,
        signal: int | None = None,
        fault: Fault | None = None,
    ) -> None:
        self.ended = reason
        self.status = status
        if signal is not None:
            self.exit = ExitStatus(signal=signal)
        else:
            self.exit = ExitStatus(code=status if status is not None else 0)
        self.fault = fault

    # -- interrupts ------------------------------------------------------------
    def _update_irqs(self, icount: int | None = None) -> None:
        """Raise the request lines that are up at ``icount`` (default: now)."""
        now = (self.icount if icount is None else icount) + self.warp_ns
        master = self.pics[0]
        if self.pit.due(now):
            master.irr |= 1 << 0
        # The UART holds its line up while received data waits; the 8259
        # (edge-triggered, as PCs program it) requests on the rising edge.
        line = bool(self.uart.ier & 1 and self.uart.rx)
        if line and not self.uart_line:
            master.irr |= 1 << 4
        self.uart_line = line

    def _next_irq(self) -> int | None:
        """The vector the PICs would hand the CPU now, if any."""
        master, slave = self.pics
        irq = master.pending()
        if irq is None:
            return None
        if irq == 2:
            sub = slave.pending()
            return None if sub is None else slave.base + sub
        return master.base + irq

    def _irq_waiting(self, icount: int) -> bool:
        """Whether an interrupt would be delivered at ``icount`` if EFLAGS.IF allowed."""
        self._update_irqs(icount)
        return self._next_irq() is not None

    def _could_take(self, irq: int) -> bool:
        """Whether a new request on master line ``irq`` could be delivered."""
        master = self.pics[0]
        mask = (1 << (irq + 1)) - 1  # in service at this or a higher priority
        return not master.imr & (1 << irq) and not master.isr & mask

    def _deliver_irq(self) -> None:
        """Hand the next interrupt to the CPU (the caller checked it exists)."""
        master, slave = self.pics
        irq = master.pending()
        assert irq is not None
        if irq == 2:
            sub = slave.pending()
            assert sub is not None
            slave.irr &= ~(1 << sub)
            slave.isr |= 1 << sub
            vector = slave.base + sub
        else:
            vector = master.base + irq
        master.irr &= ~(1 << irq)
        master.isr |= 1 << irq
        cpu = self.cpu
        self.deliveries += 1
        if not cpu.raise_exception(vector, cpu.eip, None, self.icount):
            why = f"triple fault (IRQ vector {vector} could not be delivered)"
            self._end(why, signal=SIGSEGV, fault=Fault(SIGSEGV, cpu.eip, None, why))

    def _settle(self) -> None:
        """Between instructions: deliver what is deliverable, wake a halted CPU.

        A hlt waits for an interrupt: serial input (read from the host now,
        a recorded event), or the next timer tick (virtual time jumps there:
        nothing runs in between).  With nothing that could wake it, or with
        interrupts disabled, the machine has ended."""
        while self.exit is None:
            self._update_irqs()
            enabled = self.engine.reg_read(x86.UC_X86_REG_EFLAGS) & _IF
            if self.halted:
                if not enabled:
                    self._end("hlt with interrupts disabled: the CPU stopped for good")
                    return
                if self._next_irq() is not None:
                    self.halted = False
                    self._deliver_irq()
                    continue
                if self.uart.ier & 1 and not self.input_done and self._could_take(4):
                    data = self.host.read(0, 4096)
                    if isinstance(data, bytes) and data:
                        self.uart.rx += data
                        continue
                    self.input_done = True
                deadline = self.pit.next_ns
                if deadline is not None and self._could_take(0):
                    # Nothing runs until the next tick: jump virtual time there.
                    self.warp_ns += max(0, deadline - self.now_ns())
                    continue
                self._end("hlt with nothing left to wake the CPU")
                return
            if self.icount < self.inhibit_until or not enabled or self._next_irq() is None:
                return
            self._deliver_irq()

    # -- what a timeline asks (DebuggableMachine) -----------------------------
    @property
    def program_path(self) -> str:
        return self.kernel.path

    @property
    def exe_path(self) -> str:
        return self.kernel_exe_path

    # -- one CPU: one thread, as QEMU's gdbstub shows a one-CPU machine -------
    pid = 1
    current_tid = 1
    running_tid = 1
    multitask = False

    @property
    def debuggee(self) -> PcMachine:
        return self

    def threads(self) -> list[tuple[int, str]]:
        return [(1, os.path.basename(self.exe_path)[:15])]

    def thread_ran_until(self, tid: int) -> int | None:
        return None

    def viewing(self, tid: int) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    @property
    def program_image(self) -> bytes:
        return self.kernel.image

    @property
    def current_exe(self) -> str:
        return self.exe_path

    @property
    def current_image(self) -> bytes:
        return self.kernel.image

    def waits_on_host(self) -> bool:
        # Only a hlt waits: for serial input, when nothing else can wake it.
        try:
            return self.memory.read(self.cpu.eip, 1, perms=0) == b"\xf4"
        except GuestMemoryError:
            return False

    def write_origin(self) -> tuple[int, int, str]:
        # The machine writes guest memory only to push an interrupt frame.
        return self.cpu.icount, self.cpu.eip, "interrupt entry"

    def end_status(self) -> tuple[int | None, int | None]:
        signal = self.exit.signal if self.exit is not None else None
        return self.status, signal

    def symbols(self) -> Symbols:
        return Symbols.read(self.kernel)

    def auxv(self) -> bytes | None:
        return None

    def signal_info(self, signal: int) -> bytes | None:
        return None

    def libraries(self, annex: str = "") -> bytes | None:
        return None

    # -- state (checkpoints, snapshots) -------------------------------------
    @property
    def state_memory(self) -> GuestMemory:
        return self.memory

    def save_state(self) -> dict[str, Any]:
        """Devices, virtual time and how the run ended, JSON-able."""
        u = self.uart
        return {
            "uart": [u.rx.hex(), u.ier, u.lcr, u.mcr, u.scratch, u.divisor],
            "pics": [
                [p.base, p.imr, p.irr, p.isr, p.init_step, p.icw4, p.read_isr] for p in self.pics
            ],
            "pit": [
                self.pit.reload,
                self.pit.period_ns,
                self.pit.next_ns,
                list(self.pit.pending_bytes),
                self.pit.access,
            ],
            "rtc": [self.rtc.index, self.rtc.ram.hex(), self.rtc.epoch_ns],
            "warp_ns": self.warp_ns,
            "input_done": self.input_done,
            "status": self.status,
            "ended": self.ended,
            "exit": None if self.exit is None else [self.exit.code, self.exit.signal],
            "halted": self.halted,
            "inhibit_until": self.inhibit_until,
            "uart_line": self.uart_line,
        }

    def load_state(
        self, icount: int, cpu_context: bytes, state: dict[str, Any], *, keep_code: bool
    ) -> None:
        try:
            rx, ier, lcr, mcr, scratch, divisor = state["uart"]
            u = self.uart
            u.rx, u.ier, u.lcr, u.mcr, u.scratch, u.divisor = (
                bytearray.fromhex(rx),
                ier,
                lcr,
                mcr,
                scratch,
                divisor,
            )
            for pic, saved in zip(self.pics, state["pics"], strict=True):
                (pic.base, pic.imr, pic.irr, pic.isr, pic.init_step, pic.icw4, pic.read_isr) = saved
            pit = self.pit
            pit.reload, pit.period_ns, pit.next_ns, pit_bytes, pit.access = state["pit"]
            pit.pending_bytes = list(pit_bytes)
            self.rtc.index, ram, self.rtc.epoch_ns = state["rtc"]
            self.rtc.ram = bytearray.fromhex(ram)
            self.warp_ns = state["warp_ns"]
            self.input_done = state["input_done"]
            self.status = state["status"]
            self.ended = state["ended"]
            code_signal = state.get("exit")
            self.exit = None if code_signal is None else ExitStatus(*code_signal)
            self.fault = None
            self.halted = bool(state.get("halted", False))
            self.inhibit_until = int(state.get("inhibit_until", 0))
            self.uart_line = bool(state.get("uart_line", False))
        except (KeyError, TypeError, ValueError) as exc:
            raise RrdbgError(f"bad PC machine state ({exc})") from None
        self.engine.restore_context_bytes(cpu_context)
        if not keep_code:
            self.cpu.flush_code()
        self.cpu.set_icount(icount)

    def digest(self) -> str:
        """SHA-256 over the registers, memory, and devices."""
        h = hashlib.sha256()
        h.update(struct.pack("<Q", self.icount))
        # Register values, not Unicorn's context blob: that also holds host
        # pointers, which differ from one emulator instance to the next.
        for name, value in read_registers(self.engine).items():
            h.update(name.encode() + value)
        for reg in _SYSTEM_REGS:
            h.update(repr(self.engine.reg_read_any(reg)).encode())
        for r in self.memory.regions():
            h.update(struct.pack("<QQI", r.start, r.end, r.perms))
            h.update(self.memory.view(r.start, r.size))
        h.update(json.dumps(self.save_state(), sort_keys=True).encode())
        return h.hexdigest()

    def _unprotect_written_code(self) -> None:
        written, self.cpu.code_written = self.cpu.code_written, []
        for page in sorted(set(written)):
            self.memory.protect(page, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC)

    def _after_hlt(self) -> bool:
        eip = self.cpu.eip
        return eip > 0 and self.memory.view(eip - 1, 1).tobytes() == b"\xf4"


# -- QEMU's pending-exception details, found in a saved context ----------------

_exception_fields: list[int] = []


def _exception_offsets() -> tuple[int, int]:
    """Offsets of ``env->error_code`` and ``env->exception_is_int`` in a saved
    Unicorn context, found once per process by experiment (as cpu.py finds
    ``old_exception``): #GP(0x18), #GP(0x20) and ``int $0x80`` on a scratch
    CPU, and the one field that took the values the CPU must have given."""
    if _exception_fields:
        return _exception_fields[0], _exception_fields[1]
    contexts: list[bytes] = []
    for code in (
        b"\x66\xb9\x18\x00\x8e\xd9",  # mov $0x18, %cx; mov %cx, %ds: #GP(0x18)
        b"\x66\xba\x20\x00\x8e\xda",  # mov $0x20, %dx; mov %dx, %ds: #GP(0x20)
        b"\xcd\x80",  # int $0x80
    ):
        engine = Engine()
        memory = GuestMemory(engine)
        memory.map(0, 0x10000, PROT_READ | PROT_WRITE | PROT_EXEC)
        gdt = bytes(8) + _descriptor(0, 0xFFFFF, 0x9A, 0xC) + _descriptor(0, 0xFFFFF, 0x92, 0xC)
        memory.poke(0x800, gdt)
        engine.reg_write_any(x86.UC_X86_REG_GDTR, (0, 0x800, len(gdt) - 1, 0))
        engine.reg_write(x86.UC_X86_REG_CS, 0x08)
        engine.reg_write(x86.UC_X86_REG_SS, 0x10)
        engine.reg_write(x86.UC_X86_REG_ESP, 0x8000)
        memory.poke(0x1000, code)
        seen: list[bytes] = []

        def on_intr(
            _uc: object, _intno: int, _ud: object, seen: list[bytes] = seen, e: Engine = engine
        ) -> None:
            seen.append(e.context_bytes())
            e.stop()

        engine.hook_add(ucc.UC_HOOK_INTR, on_intr)
        engine.start(0x1000)
        contexts.append(seen[0] if seen else b"")
    gp18, gp20, int80 = contexts
    size = min(len(gp18), len(gp20), len(int80))

    def field(ctx: bytes, i: int) -> int:
        return int(struct.unpack_from("<i", ctx, i)[0])

    errors = [i for i in range(0, size - 3, 4) if field(gp18, i) == 0x18 and field(gp20, i) == 0x20]
    is_int = [
        i
        for i in range(0, size - 3, 4)
        if field(int80, i) == 1
        and field(gp18, i) == 0
        and field(gp20, i) == 0
        and errors
        and errors[0] < i < errors[0] + 16
    ]
    if len(errors) != 1 or len(is_int) != 1:
        raise EmulatorError("cannot locate QEMU's exception fields in this Unicorn build")
    _exception_fields.extend([errors[0], is_int[0]])
    return errors[0], is_int[0]


def _error_code(engine: Engine) -> int:
    offset = _exception_offsets()[0]
    return int(struct.unpack_from("<I", engine.context_bytes(), offset)[0])


def _software_interrupt(engine: Engine) -> bool:
    offset = _exception_offsets()[1]
    return bool(struct.unpack_from("<i", engine.context_bytes(), offset)[0])
