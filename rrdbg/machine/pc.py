"""A bare-metal i386 PC for Multiboot (v1) kernels (issue 6, first part).

Role: what ``rrdbg run --machine pc KERNEL`` runs.  The kernel is loaded at
its physical addresses and entered in 32-bit protected mode as the Multiboot
specification and QEMU's ``-kernel`` do: EAX = 0x2BADB002, EBX = the physical
address of the Multiboot information (memory sizes, memory map, command
line), CS a flat 32-bit ring-0 code segment (selector 0x08, as QEMU's option
ROM leaves it; the kernel should load its own GDT), interrupts disabled,
paging off.

Devices so far: COM1 (a 16550 UART at 0x3F8: transmit, receive, line status)
and QEMU's isa-debug-exit at 0xF4 (a write of v ends the run with status
``(v << 1) | 1``, as QEMU exits).  ``hlt`` with interrupts disabled ends the
run (nothing could wake the CPU).  Still to come (see the issue): the 8259
PIC, the 8254 PIT, the CMOS RTC, interrupt and exception delivery through the
guest's IDT, and record/replay of serial input.

Determinism: the guest sees the host only through ``Host`` (serial output is
``write(1, ...)``), like the Linux machine.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from unicorn import unicorn_const as ucc
from unicorn import x86_const as x86

from rrdbg.errors import EmulatorError, RrdbgError
from rrdbg.machine import icount as ic
from rrdbg.machine.cpu import (
    _NO_EXCEPTION,
    Cpu,
    Fault,
    Stop,
    StopReason,
    _descriptor,
    _old_exception_offset,
)
from rrdbg.machine.engine import Engine
from rrdbg.machine.host import Host
from rrdbg.machine.loader import MULTIBOOT_BOOTLOADER_MAGIC, Kernel, read_kernel
from rrdbg.machine.memory import (
    PAGE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    GuestMemory,
    page_down,
    page_up,
)

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

COM1 = 0x3F8
DEBUG_EXIT_PORT = 0xF4


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


class PcCpu(Cpu):
    """The CPU at ring 0 with a flat GDT, port I/O hooks and no Linux layer."""

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
        # Protected mode, FPU present and native; no CR4.TSD at ring 0.
        self.engine.reg_write(x86.UC_X86_REG_CR0, 0x11 | 0x20)
        self.engine.reg_write(x86.UC_X86_REG_CR4, 0)
        self.engine.reg_write(x86.UC_X86_REG_EFLAGS, 0x2)
        self.on_port_in: Callable[[int, int], int] = lambda _p, _s: 0xFFFFFFFF
        self.on_port_out: Callable[[int, int, int], None] = lambda _p, _s, _v: None
        self.engine.hook_add(ucc.UC_HOOK_INSN, self._hook_in, aux1=x86.UC_X86_INS_IN)
        self.engine.hook_add(ucc.UC_HOOK_INSN, self._hook_out, aux1=x86.UC_X86_INS_OUT)

    def _hook_in(self, _uc: object, port: int, size: int, _d: object) -> int:
        return self.on_port_in(port, size) & ((1 << (8 * size)) - 1)

    def _hook_out(self, _uc: object, port: int, size: int, value: int, _d: object) -> None:
        self.on_port_out(port, size, value & ((1 << (8 * size)) - 1))

    def _hook_intr(self, _uc: object, intno: int, _ud: object) -> None:
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
                Fault(0, eip, None, f"triple fault (x86 exception {intno} could not be delivered)"),
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
    ) -> None:
        if not 2 <= ram_mb <= 3072:
            raise RrdbgError(f"RAM size {ram_mb} MB is outside 2..3072")
        self.kernel: Kernel = read_kernel(kernel_path)
        self.ram = ram_mb << 20
        if self.kernel.end > self.ram:
            raise RrdbgError(
                f"{kernel_path}: loads up to {self.kernel.end:#x}, beyond {ram_mb} MB of RAM"
            )
        self.host = host
        self.engine = Engine()
        self.memory = GuestMemory(self.engine)
        # Real PCs have RAM that any ring-0 code may execute and write.
        self.memory.map(0, self.ram, PROT_READ | PROT_WRITE | PROT_EXEC, "[ram]")
        self.cpu = PcCpu(self.memory, self.engine, native=native)
        self.uart = Uart16550(self._emit)
        self.status: int | None = None
        self.ended: str | None = None
        self.cpu.on_port_in = self._port_in
        self.cpu.on_port_out = self._port_out
        for seg in self.kernel.segments:
            self.memory.poke(seg.vaddr, seg.data)
        for seg in self.kernel.segments:
            if seg.perms & PROT_EXEC and not seg.perms & PROT_WRITE:
                # Read-only code: its blocks are decoded once and cached
                # (PcCpu._hook_bad_access undoes this if the kernel writes it).
                lo, hi = page_down(seg.vaddr), page_up(seg.vaddr + seg.memsz)
                self.memory.protect(lo, hi - lo, PROT_READ | PROT_EXEC)
        ebx = self._boot_information(cmdline)
        e = self.engine
        e.reg_write(x86.UC_X86_REG_EAX, MULTIBOOT_BOOTLOADER_MAGIC)
        e.reg_write(x86.UC_X86_REG_EBX, ebx)
        for reg in (x86.UC_X86_REG_ECX, x86.UC_X86_REG_EDX, x86.UC_X86_REG_ESI):
            e.reg_write(reg, 0)
        self.cpu.start(self.kernel.entry, self.ram)

    def _boot_information(self, cmdline: str) -> int:
        # QEMU passes "KERNEL-PATH APPEND" (with the space even when APPEND is
        # empty); kernels that print their command line print the same.
        raw = f"{self.kernel.path} {cmdline}".encode()
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

    def _port_in(self, port: int, size: int) -> int:
        if COM1 <= port < COM1 + 8:
            return self.uart.read(port - COM1)
        return 0xFFFFFFFF  # no device: the bus floats high

    def _port_out(self, port: int, size: int, value: int) -> None:
        if COM1 <= port < COM1 + 8:
            self.uart.write(port - COM1, value & 0xFF)
        elif port == DEBUG_EXIT_PORT:
            self.status = ((value & 0xFF) << 1) | 1
            self.ended = f"isa-debug-exit wrote {value & 0xFF:#x}"
            self.cpu.request_stop()

    # -- running -----------------------------------------------------------
    @property
    def icount(self) -> int:
        return self.cpu.icount

    def run(self, limit: int = ic.NO_LIMIT) -> Stop:
        return self.cpu.run(limit, exact=False)

    def run_to_end(self, *, max_icount: int | None = None) -> PcResult:
        """Run until isa-debug-exit, a halt with interrupts off, or a fault."""
        slice_ = 1 << 24
        while self.ended is None:
            limit = self.icount + slice_
            if max_icount is not None:
                limit = min(limit, max_icount)
                if self.icount >= max_icount:
                    self.ended = f"stopped after {max_icount} instructions"
                    break
            stop = self.cpu.run(limit, exact=False)
            if self.ended is not None:
                break
            if stop.reason is StopReason.FAULT and self.cpu.code_written:
                self._unprotect_written_code()
                continue  # the write that faulted runs again
            if (
                stop.reason is StopReason.FAULT
                and stop.fault is not None
                and stop.fault.what == "invalid instruction"
            ):
                # Unicorn ends the run on an undefined opcode instead of
                # raising #UD: deliver it now, at the instruction.
                if self.cpu.raise_exception(6, stop.fault.eip, None, stop.icount):
                    continue
                self.ended = f"triple fault (#UD at eip={stop.fault.eip:#010x} not handled)"
                break
            if stop.reason is StopReason.FAULT:
                assert stop.fault is not None
                if stop.fault.what == "privileged instruction" and self._halted():
                    if self.engine.reg_read(x86.UC_X86_REG_EFLAGS) & 0x200:
                        self.ended = "hlt with interrupts enabled (no interrupts yet)"
                    else:
                        self.ended = "hlt with interrupts disabled: the CPU stopped for good"
                    break
                self.ended = f"{stop.fault.what} at eip={stop.fault.eip:#010x}"
                break
        return PcResult(self.icount, self.status, self.ended or "")

    def _unprotect_written_code(self) -> None:
        written, self.cpu.code_written = self.cpu.code_written, []
        for page in sorted(set(written)):
            self.memory.protect(page, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC)

    def _halted(self) -> bool:
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
