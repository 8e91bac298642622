"""The i386 CPU: Unicorn plus an always-exact instruction count.

Role: run guest code and stop at exact instruction counts.  The count
(``icount``) is the number of guest instructions retired since the machine
was created; a faulting instruction is not retired, ``int 0x80`` is.

Theory of operation (facts in docs/machine.md):
- One native UC_HOOK_BLOCK adds each block's instruction count (decoded once
  with capstone) to ``counter.total`` as the block is entered.
- After a stop that did not come from the block hook, the PC may lie inside
  the last block entered: the exact count is then ``total - icount(last) +
  instructions in [last.addr, pc)``.
- ``run(limit)`` never retires more than ``limit`` instructions: the hook stops
  before the block that would overshoot, and a temporary exit placed inside
  that block finishes the job exactly.  Unicorn's own ``count=`` is never used.

The guest runs at CPL 3 with Linux's flat user segments, so privileged
instructions fault as they do on Linux.  Hooks only record facts and stop;
the caller of ``run()`` decides what happens next.
"""

from __future__ import annotations

import enum
import signal as signal_mod
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from unicorn import unicorn_const as ucc
from unicorn import x86_const as x86

from rrdbg.errors import EmulatorError
from rrdbg.machine import icount as ic
from rrdbg.machine.engine import TCG_BUFFER_BYTES, Engine
from rrdbg.machine.memory import PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, GuestMemory

# Linux i386 GDT layout: TLS slots 6..8, user code 14, user data 15.
GDT_ADDRESS = 0xFFFFF000
GDT_ENTRIES = 32
TLS_FIRST_ENTRY = 6
TLS_ENTRIES = 3
USER_CS = (14 << 3) | 3  # 0x73
USER_DS = (15 << 3) | 3  # 0x7b
KERNEL_CS = 12 << 3  # 0x60
KERNEL_DS = 13 << 3  # 0x68
#: A page holding the one-instruction "kernel" that drops to user mode.
BOOT_STUB = 0xFFFFE000

SIGTRAP = 5
SIGILL = 4
SIGBUS = 7
SIGFPE = 8
SIGSEGV = 11


_PREFIXES = frozenset(b"\x66\x67\xf2\xf3\x26\x2e\x36\x3e\x64\x65\xf0")


def _is_port_io(code: bytes) -> bool:
    """Whether ``code`` starts with in/out/ins/outs (same test as _icount.c)."""
    i = 0
    while i < len(code) and code[i] in _PREFIXES:
        i += 1
    if i >= len(code):
        return False
    op = code[i]
    return 0xE4 <= op <= 0xE7 or 0xEC <= op <= 0xEF or 0x6C <= op <= 0x6F


def signal_name(signo: int) -> str:
    """SIGSEGV etc. (Linux numbers are the same on i386 and x86-64 hosts)."""
    try:
        return signal_mod.Signals(signo).name
    except ValueError:
        return f"signal {signo}"


# x86 exception vector -> the signal Linux delivers for it.
_EXCEPTION_SIGNALS = {
    0: SIGFPE,  # divide error
    1: SIGTRAP,
    3: SIGTRAP,  # int3
    4: SIGSEGV,  # into
    5: SIGSEGV,  # bound
    6: SIGILL,  # invalid opcode
    7: SIGFPE,  # device not available (no FPU)
    10: SIGSEGV,
    11: SIGBUS,  # segment not present
    12: SIGBUS,  # stack segment
    13: SIGSEGV,  # general protection
    14: SIGSEGV,  # page fault
    16: SIGFPE,  # x87 error
    17: SIGBUS,  # alignment check
    19: SIGFPE,  # SIMD floating point
}
#: Gates Linux lets user code reach with `int`: int3, into and the system call.
_USER_GATES = frozenset({3, 4, 0x80})
_EXCEPTION_NAMES = {
    0: "divide error",
    1: "debug trap",
    3: "breakpoint trap",
    4: "overflow trap",
    5: "bound range exceeded",
    6: "invalid opcode",
    7: "device not available",
    13: "general protection",
    16: "x87 floating-point error",
    17: "alignment check",
    19: "SIMD floating-point error",
}
SYSCALL_VECTOR = 0x80
#: Flush the code buffer once the translations made since the last flush may
#: fill half of it (engine.TCG_BUFFER_BYTES).
_CODE_FLUSH_BYTES = TCG_BUFFER_BYTES // 2
_HOST_BYTES_PER_BLOCK = 2048
_VECTOR_GP = 13
_MAX_INSN_LENGTH = 15
#: A trap that springs sooner than this after it was set marks a hot page...
HOT_TRAP = 1 << 16
#: ... whose hooks ``rearm_watches`` then keeps for this many instructions,
#: twice as long each time the page proves hot again, up to the maximum
#: (re-arming costs two flushes of the translations).
KEEP_HOT_HOOKS = 1 << 22
KEEP_HOT_HOOKS_MAX = 1 << 30
_CR4_TSD = 1 << 2
_CR0_LINUX = 0x1 | 0x2 | 0x10 | 0x20  # PE, MP, ET, NE
_CR4_LINUX = _CR4_TSD | (1 << 9) | (1 << 10)  # TSD, OSFXSR, OSXMMEXCPT


class StopReason(enum.Enum):
    """Why ``Cpu.run`` returned."""

    #: The requested instruction count was reached exactly.
    LIMIT = "limit"
    #: An exit address (breakpoint) was reached; the instruction there has not run.
    EXIT = "exit"
    #: A syscall handler asked to stop (``exit``, a stop request, ...).
    SYSCALL = "syscall"
    #: The guest faulted; ``fault`` says how.  The faulting instruction did not retire.
    FAULT = "fault"
    #: A hook called ``request_stop``: the run ended at the next block boundary.
    REQUEST = "request"
    #: The machine ended (``machine.exit`` says how); not used by ``Cpu`` itself.
    END = "end"
    #: (PC) A hook stopped the CPU exactly at an instruction that may change
    #: which interrupts can be taken; the machine decides what comes next.
    GATE = "gate"
    #: (Linux) A signal is about to be delivered (``signal``); not yet.  The
    #: next run delivers it.  Only when the machine was asked to report it.
    SIGNAL = "signal"
    #: (Linux) The thread the machine was asked to wait for
    #: (``run_until_thread``) has just been switched in.
    SWITCH = "switch"
    #: (Linux) The followed process forked, vforked or exec'd, or its vfork
    #: child exec'd or ended (``LinuxMachine.event`` says which); only when
    #: the machine was asked to report them (``process_events``).
    PROCESS = "process"


@dataclass(frozen=True, slots=True)
class Fault:
    """A guest fault, as Linux would report it to the process."""

    signal: int
    eip: int
    address: int | None
    what: str

    def describe(self) -> str:
        text = f"guest {signal_name(self.signal)} at eip={self.eip:#010x}"
        if self.address is not None:
            text += f" accessing {self.address:#010x}"
        if self.what:
            text += f" ({self.what})"
        return text


@dataclass(frozen=True, slots=True)
class Stop:
    """The outcome of ``Cpu.run``: why it stopped and the exact count then."""

    reason: StopReason
    icount: int
    fault: Fault | None = None
    signal: int | None = None


def _descriptor(base: int, limit: int, access: int, flags: int) -> bytes:
    """An 8-byte GDT descriptor (limit in pages when flags has G set)."""
    value = (
        (limit & 0xFFFF)
        | ((base & 0xFFFFFF) << 16)
        | ((access & 0xFF) << 40)
        | (((limit >> 16) & 0xF) << 48)
        | ((flags & 0xF) << 52)
        | (((base >> 24) & 0xFF) << 56)
    )
    return struct.pack("<Q", value)


#: Present, DPL 3, code/data, accessed (so loading never writes the GDT).
USER_CODE_ACCESS = 0xFB
USER_DATA_ACCESS = 0xF3
KERNEL_CODE_ACCESS = 0x9B
KERNEL_DATA_ACCESS = 0x93
FLAGS_32BIT_PAGES = 0xC


def install_gdt(engine: Engine, memory: GuestMemory) -> None:
    """Map a Linux-style GDT and load flat CPL-0 code/stack segments."""
    memory.map(GDT_ADDRESS, PAGE, PROT_READ, "[gdt]")
    gdt = bytearray(GDT_ENTRIES * 8)
    gdt[12 * 8 : 13 * 8] = _descriptor(0, 0xFFFFF, KERNEL_CODE_ACCESS, FLAGS_32BIT_PAGES)
    gdt[13 * 8 : 14 * 8] = _descriptor(0, 0xFFFFF, KERNEL_DATA_ACCESS, FLAGS_32BIT_PAGES)
    gdt[14 * 8 : 15 * 8] = _descriptor(0, 0xFFFFF, USER_CODE_ACCESS, FLAGS_32BIT_PAGES)
    gdt[15 * 8 : 16 * 8] = _descriptor(0, 0xFFFFF, USER_DATA_ACCESS, FLAGS_32BIT_PAGES)
    memory.poke(GDT_ADDRESS, bytes(gdt))
    engine.reg_write_any(x86.UC_X86_REG_GDTR, (0, GDT_ADDRESS, GDT_ENTRIES * 8 - 1, 0))
    for reg, sel in (
        (x86.UC_X86_REG_CS, KERNEL_CS),
        (x86.UC_X86_REG_SS, KERNEL_DS),
        (x86.UC_X86_REG_DS, USER_DS),
        (x86.UC_X86_REG_ES, USER_DS),
        (x86.UC_X86_REG_FS, 0),
        (x86.UC_X86_REG_GS, 0),
    ):
        engine.reg_write(reg, sel)


_NO_EXCEPTION = struct.pack("<i", -1)
_old_exception_cache: list[int] = []


def _old_exception_offset() -> int:
    """Where QEMU's ``env->old_exception`` sits in a saved Unicorn context.

    Found once per process by experiment: a scratch CPU takes a #GP from
    ``rdtsc`` (CR4.TSD) and the one 4-byte field that went from -1 to 13 is
    it.  Anything but exactly one candidate means the emulator is not the
    one rrdbg was built for.
    """
    if _old_exception_cache:
        return _old_exception_cache[0]
    engine = Engine()
    memory = GuestMemory(engine)
    memory.map(0x1000, PAGE, PROT_READ | PROT_EXEC)
    memory.poke(0x1000, b"\x90\x0f\x31")  # nop; rdtsc
    memory.map(0x3000, PAGE, PROT_READ | PROT_WRITE)
    clean = engine.context_bytes()
    seen: list[bytes] = []

    def on_intr(_uc: object, intno: int, _ud: object) -> None:
        if intno == _VECTOR_GP:
            seen.append(engine.context_bytes())
        engine.stop()

    engine.reg_write(x86.UC_X86_REG_CR4, _CR4_LINUX)
    engine.hook_add(ucc.UC_HOOK_INTR, on_intr)
    engine.reg_write(x86.UC_X86_REG_EIP, 0x1000)
    engine.reg_write(x86.UC_X86_REG_ESP, 0x3F00)
    # CR4.TSD only faults at CPL > 0: drop to CPL 3 with the same iret trick.
    install_gdt(engine, memory)
    memory.map(0x5000, PAGE, PROT_READ | PROT_EXEC)
    memory.poke(0x5000, b"\xcf")
    memory.poke(0x3F00, struct.pack("<5I", 0x1000, USER_CS, 0x202, 0x3E00, USER_DS))
    engine.start(0x5000)
    dirty = seen[0] if seen else b""
    neg, gp = _NO_EXCEPTION, struct.pack("<i", _VECTOR_GP)
    found = [
        i
        for i in range(0, min(len(clean), len(dirty)) - 3, 4)
        if clean[i : i + 4] == neg and dirty[i : i + 4] == gp
    ]
    if len(found) != 1:
        raise EmulatorError("cannot locate the pending-exception state in this Unicorn build")
    _old_exception_cache.append(found[0])
    return found[0]


class Cpu:
    """Unicorn i386 CPU at CPL 3 with an exact instruction count."""

    #: Translate addresses with the page-permission TLB hook, which makes
    #: memory faults exact (icount.Pages).  Only for guests that do not page:
    #: the virtual TLB ignores the emulated CPU's page tables.
    virtual_tlb = True
    #: Whether port I/O faults (#GP), as it does for Linux user code.
    io_faults = True

    def __init__(self, memory: GuestMemory, engine: Engine, *, native: bool | None = None) -> None:
        self.engine = engine
        self.memory = memory
        self.counter, self.native, self.block_hook = ic.make_counter(engine, native)
        self.counter.set_io_check(self.io_faults)
        self.pages: ic.Pages | None = None
        if self.virtual_tlb:
            self.pages = ic.make_pages(engine, self.native)
            for r in memory.regions():
                self.pages.set_perms(r.start, r.end, r.perms)
        # Set while a faulting instruction is run again to learn its address:
        # hooks that report to the debugger must not see that second run.
        self._probing = False
        # Memory watches (see "Page traps"): what each watches, the hooks
        # while watching precisely, the pages trapped otherwise.
        self._watch_specs: dict[int, tuple[bool, int, int, Callable[[int, int], None]]] = {}
        self._watch_hooks: dict[int, ic.MemoryWatch] = {}
        self._trapped: list[tuple[int, int]] = []
        self._watching_precisely = False
        self._armed_at = self._trapped_at = 0
        self._hooks_deleted = False
        self._keep_hot = KEEP_HOT_HOOKS
        self._capstone: Any = None
        #: The native counter's own prefix decoder (None: Python decodes).
        self._count_prefix: Callable[[int, int], int] | None = None
        self._exits: set[int] = set()
        #: Port I/O instructions seen in the guest's code (see _learn_block).
        self._io_exits: set[int] = set()
        self._temp_exit: int | None = None
        self._active_exits: set[int] = set()
        # Executable ranges whose code changed while the program ran.
        self._changed_code: list[tuple[int, int]] = []
        self._started = False
        self._pending: Stop | None = None
        self._fault_access: tuple[str, int] | None = None
        #: Called on ``int 0x80``; returns True to stop the CPU after the syscall.
        self.on_syscall: Callable[[], bool] = lambda: True
        #: Called on ``rdtsc`` with the exact count; returns the 64-bit TSC.
        self.on_rdtsc: Callable[[int], int] = lambda n: n
        memory.on_code_change = self.invalidate_code
        memory.on_perms_change = self._perms_changed
        if self.native and ic.attach_native_decoder(self.counter, memory.host_base, engine):
            self._count_prefix = getattr(self.counter, "count_prefix", None)
        self._setup_gdt()
        self._install_hooks()
        engine.enable_exits()

    # -- setup ---------------------------------------------------------
    def _setup_gdt(self) -> None:
        install_gdt(self.engine, self.memory)

    def reset_gdt(self) -> None:
        """The GDT again, after the whole address space was unmapped."""
        self._setup_gdt()

    def enter_user_mode(self, eip: int, esp: int) -> None:
        """Start the process at CPL 3 the way a kernel does: with ``iret``.

        Unicorn cannot load a ring-3 SS directly, so a one-instruction stub
        runs at CPL 0 and is then removed; the count starts at 0 after it.
        """
        frame = struct.pack("<5I", eip, USER_CS, 0x202, esp, USER_DS)
        self.memory.map(BOOT_STUB, PAGE, PROT_READ | PROT_EXEC, "[boot]")
        self.memory.poke(BOOT_STUB, b"\xcf")  # iret
        self.memory.poke(BOOT_STUB + 0x100, frame)
        self.engine.reg_write(x86.UC_X86_REG_ESP, BOOT_STUB + 0x100)
        self.eip = BOOT_STUB
        self._temp_exit = eip
        self._sync_exits()
        try:
            stop = self._run(ic.NO_LIMIT)
        finally:
            self._temp_exit = None
            self._sync_exits()
        if self.eip != eip or stop.reason is not StopReason.EXIT:
            raise EmulatorError(f"could not enter user mode (stopped at {self.eip:#x})")
        self.memory.unmap(BOOT_STUB, PAGE)
        self.counter.total = 0
        self._icount = 0
        self._started = True

    def adopt(self, icount: int) -> None:
        """Start running from a context restored into the engine (a forked
        process: in user mode already) at count ``icount``."""
        self.count_from(icount)
        self._started = True

    def count_from(self, icount: int) -> None:
        """Go on counting from ``icount`` (another CPU ran meanwhile: the
        count is the machine's)."""
        self.counter.limit = ic.NO_LIMIT
        self.counter.total = icount
        self._icount = icount

    def set_gdt_entry(self, index: int, base: int, limit: int, access: int, flags: int) -> None:
        """Install a descriptor (set_thread_area, thread switches).  Straight
        into the GDT's page, which is always mapped and never code: the CPU
        reads descriptors from memory at each segment load."""
        self.memory.load_raw(GDT_ADDRESS + 8 * index, _descriptor(base, limit, access, flags))

    def clear_gdt_entry(self, index: int) -> None:
        self.memory.load_raw(GDT_ADDRESS + 8 * index, bytes(8))

    def gdt_entry(self, index: int) -> tuple[int, int, int, int] | None:
        """The descriptor at ``index`` as (base, limit, access, flags); None
        if empty.  (The inverse of ``set_gdt_entry``.)"""
        raw = self.memory.view(GDT_ADDRESS + 8 * index, 8).tobytes()
        if raw == bytes(8):
            return None
        lo, hi = struct.unpack("<II", raw)
        base = (lo >> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF000000)
        limit = (lo & 0xFFFF) | (hi & 0xF0000)
        return base, limit, (hi >> 8) & 0xFF, (hi >> 20) & 0xF

    def _install_hooks(self) -> None:
        e = self.engine
        e.hook_intr(self._hook_intr)
        e.hook_add(ucc.UC_HOOK_MEM_READ_UNMAPPED, self._hook_bad_access, user_data="read")
        e.hook_add(ucc.UC_HOOK_MEM_WRITE_UNMAPPED, self._hook_bad_access, user_data="write")
        e.hook_add(ucc.UC_HOOK_MEM_FETCH_UNMAPPED, self._hook_bad_access, user_data="fetch")
        e.hook_add(ucc.UC_HOOK_MEM_READ_PROT, self._hook_bad_access, user_data="read")
        e.hook_add(ucc.UC_HOOK_MEM_WRITE_PROT, self._hook_bad_access, user_data="write")
        e.hook_add(ucc.UC_HOOK_MEM_FETCH_PROT, self._hook_bad_access, user_data="fetch")
        # CR0/CR4 as Linux sets them for user code: x87 with native error
        # reporting, SSE enabled (OSFXSR/OSXMMEXCPT).  Plus CR4.TSD: Unicorn
        # 2.1.1 cannot hook rdtsc, and unhooked it returns the host's TSC;
        # with TSD, rdtsc at CPL 3 raises #GP, which _hook_intr emulates.
        e.reg_write(x86.UC_X86_REG_CR0, _CR0_LINUX)
        e.reg_write(x86.UC_X86_REG_CR4, _CR4_LINUX)
        # A new Linux process starts with FNINIT's x87 state and all SSE
        # exceptions masked; Unicorn resets both control words to 0 (single
        # precision, exceptions unmasked).
        e.reg_write(x86.UC_X86_REG_FPCW, 0x037F)
        e.reg_write(x86.UC_X86_REG_MXCSR, 0x1F80)

    # -- hooks (record facts, maybe stop, return) ------------------------
    def _hook_intr(self, intno: int) -> None:
        if intno == SYSCALL_VECTOR:
            if self.on_syscall():
                self._pending = Stop(StopReason.SYSCALL, self.counter.total)
                self.engine.stop()
            return
        eip = self.eip
        if intno == _VECTOR_GP and self._emulate_tsc(eip):
            return
        soft = self._software_interrupt(eip, intno)
        if soft is not None and intno not in _USER_GATES:
            # `int $n` through a gate user code may not use: Linux's #GP,
            # SIGSEGV at the int instruction, which does not retire.
            count = self.count_at(soft)
            fault = Fault(SIGSEGV, soft, None, f"int {intno:#x}: general protection")
            self._pending = Stop(StopReason.FAULT, count, fault)
        else:
            # Exceptions (EIP at the instruction, not retired) and the traps
            # int3/into (EIP after it, retired) are reported where they are.
            signal = _EXCEPTION_SIGNALS.get(intno, SIGSEGV)
            what = _EXCEPTION_NAMES.get(intno, f"x86 exception {intno}")
            self._pending = Stop(
                StopReason.FAULT, self.count_at(eip), Fault(signal, eip, None, what)
            )
        self.engine.stop()

    def _software_interrupt(self, eip: int, intno: int) -> int | None:
        """The address of the ``int``/``int3``/``into`` that raised ``intno``
        with EIP after it, or None for an exception raised by the instruction
        at EIP.  Such an instruction always ends its block, so it is the last
        instruction of the block last entered and EIP is that block's end."""
        c = self.counter
        if not c.last_size or eip != c.last_addr + c.last_size:
            return None
        last = self._decode(c.last_addr, c.last_size)[-1]
        code = self.memory.view(last, eip - last).tobytes()
        if code == bytes((0xCD, intno)) or (intno == 3 and code == b"\xcc"):
            return last
        if intno == 4 and code == b"\xce":
            return last
        return None

    def _hook_bad_access(
        self, _uc: object, _access: int, address: int, _size: int, _value: int, kind: str
    ) -> bool:
        self._fault_access = (kind, address)
        return False

    def _emulate_tsc(self, eip: int) -> bool:
        """Emulate rdtsc/rdtscp that raised #GP (CR4.TSD); False if it was not one."""
        mem = self.memory
        code = b"".join(bytes(mem.view(a, 1)) for a in range(eip, eip + 3) if mem.is_mapped(a, 1))
        if code[:2] == b"\x0f\x31":
            length = 2
        elif code == b"\x0f\x01\xf9":
            length = 3
            self.engine.reg_write(x86.UC_X86_REG_ECX, 0)  # IA32_TSC_AUX: cpu 0
        else:
            return False
        # The fault cut the block short: make the count exact, retire the
        # instruction, and let the next block start afresh (the fault fixup
        # of docs/machine.md).
        before = self.count_at(eip)
        tsc = self.on_rdtsc(before) & 0xFFFFFFFFFFFFFFFF
        c = self.counter
        c.total = before + 1
        c.last_addr = c.last_size = c.last_icount = 0
        self.engine.reg_write(x86.UC_X86_REG_EAX, tsc & 0xFFFFFFFF)
        self.engine.reg_write(x86.UC_X86_REG_EDX, tsc >> 32)
        self.eip = eip + length
        # The #GP we caught was never "delivered", so QEMU still remembers it
        # as the exception in progress, and the next #GP would become a double
        # fault.  Forget it, as a completed delivery would.
        self.engine.patch_context(_old_exception_offset(), _NO_EXCEPTION)
        return True

    def forget_exception(self) -> None:
        """After a fault the program's handler takes: QEMU still remembers
        the exception as in progress (Unicorn stopped before delivering it),
        and the next one would become a double fault.  Forget it, as a
        completed delivery would."""
        self.engine.patch_context(_old_exception_offset(), _NO_EXCEPTION)

    # -- counting ------------------------------------------------------
    @property
    def eip(self) -> int:
        return self.engine.reg_read(x86.UC_X86_REG_EIP)

    @eip.setter
    def eip(self, value: int) -> None:
        self.engine.reg_write(x86.UC_X86_REG_EIP, value)

    @property
    def icount(self) -> int:
        """Exact number of instructions retired (valid whenever the CPU is stopped)."""
        return self._icount

    def count_at(self, pc: int) -> int:
        """Exact count when execution is at ``pc`` inside the block last entered."""
        c = self.counter
        la = c.last_addr
        if la <= pc < la + c.last_size:
            return c.total - c.last_icount + self._ninsn(la, pc)
        return c.total

    def _decode(self, addr: int, size: int) -> list[int]:
        """Start addresses of the instructions of the block [addr, addr+size).

        A block that ends in an instruction Unicorn found invalid while
        translating covers only part of that instruction; it still counts as
        one (it will fault, and the fault's count correction removes it).
        """
        code = self.memory.view(addr, size).tobytes()
        out = []
        end = addr
        for insn_addr, insn_size, _m, _o in self._md.disasm_lite(code, addr):
            out.append(insn_addr)
            end = insn_addr + insn_size
        if end < addr + size:
            if addr + size - end > _MAX_INSN_LENGTH:
                raise EmulatorError(f"cannot decode guest code at {end:#x}")
            out.append(end)
        return out

    @property
    def _md(self) -> Any:
        """capstone's Python decoder, imported on first use: most runs decode
        natively only (importing capstone costs about 25 ms)."""
        if self._capstone is None:
            import capstone

            self._capstone = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_32)
            self._capstone.detail = False
        return self._capstone

    def _ninsn(self, addr: int, pc: int) -> int:
        if pc <= addr:
            return 0
        if self._count_prefix is not None and self.memory.is_mapped(addr, pc - addr):
            return self._count_prefix(addr, pc)
        return len(self._decode_prefix(addr, pc))

    def _decode_prefix(self, addr: int, pc: int) -> list[int]:
        code = self.memory.view(addr, pc - addr).tobytes()
        return [i[0] for i in self._md.disasm_lite(code, addr) if i[0] < pc]

    def _learn_block(self, addr: int, size: int) -> None:
        insns = self._decode(addr, size) if size else []
        n = len(insns)
        self.counter.learned += 1
        view = self.memory.view
        io = [
            a for a in insns if self.io_faults and _is_port_io(view(a, _MAX_INSN_LENGTH).tobytes())
        ]
        if io:
            # Port I/O, which Unicorn allows at any privilege level, is #GP for
            # Linux user code: stop before it (an exit) and report the fault.
            # Not cached, so that a machine seeded with this block's count
            # still comes here and places the exit.
            self._io_exits.update(io)
            self._sync_exits()
            self.counter.pass_once(addr, size, n)
            return
        # Code in writable memory can change under the same (addr, size): count
        # such blocks every time instead of caching them (unicorn.md G12).
        # The native hook applies the same rule to the first and last page.
        cacheable = all(
            (r := self.memory.region_at(a)) is not None
            and r.perms & PROT_EXEC
            and not r.perms & PROT_WRITE
            for a in (addr, addr + max(size, 1) - 1)
        )
        if not (cacheable and self.counter.set_entry(addr, size, n)):
            self.counter.pass_once(addr, size, n)

    def _perms_changed(self, lo: int, hi: int, perms: int) -> None:
        # Same rule as _learn_block: only code that cannot be written is cached.
        self.counter.set_cacheable(lo, hi, bool(perms & PROT_EXEC) and not perms & PROT_WRITE)
        if self.pages is not None:
            # The TLB caches the hook's answers, but needs no flush here:
            # every change of the map unmaps and maps Unicorn regions, and
            # Unicorn flushes the pages it unmaps and the whole TLB on a map.
            self.pages.set_perms(lo, hi, perms)

    def known_blocks(self) -> bytes:
        """The cached block counts, to seed another machine running the same code.

        Blocks in memory whose code changed after the program started are
        left out: another machine would meet the original code there first.
        """
        records = self.counter.entries()
        if not self._changed_code:
            return records
        keep = [
            rec
            for rec in (records[i : i + 12] for i in range(0, len(records), 12))
            if not any(
                lo <= (addr := int.from_bytes(rec[:4], "little")) + 0x8000 and addr < hi
                for lo, hi in self._changed_code
            )
        ]
        return b"".join(keep)

    def seed_blocks(self, records: bytes) -> int:
        """Pre-learn blocks from ``known_blocks`` output; returns how many were taken.

        Only blocks whose pages are executable and not writable *now* are
        taken, and the hook still checks each block's size, so a stale seed
        costs a re-decode, never a wrong count... as long as the code bytes
        at those addresses are the ones the seed was learned from: callers
        seed only machines loaded from the same program file.
        """
        taken = 0
        for addr, size, n in struct.iter_unpack("<III", records[: len(records) // 12 * 12]):
            region = self.memory.region_at(addr)
            last = self.memory.region_at(addr + max(size, 1) - 1)
            if all(
                r is not None and r.perms & PROT_EXEC and not r.perms & PROT_WRITE
                for r in (region, last)
            ) and self.counter.set_entry(addr, size, n):
                taken += 1
        return taken

    def flush_code(self) -> None:
        """Drop the translations and cached counts of all executable memory.

        Used instead of Unicorn's TB flush, which in 2.1.1 touches its whole
        1 GiB code buffer (1 GiB of resident memory per engine).
        """
        self.counter.forget_all()
        self._drop_all_translations()
        self._forget_io_exits(0, 1 << 32)

    # -- the code buffer ---------------------------------------------------
    #: Translations made since the last flush of Unicorn's code buffer: an
    #: estimate in bytes of host code (no Unicorn call reports it).
    _code_estimate = 0

    def _drop_all_translations(self) -> None:
        """Drop every translation (outside a run).  Re-translating the whole
        working set costs code-buffer space that QEMU never reclaims: count
        it, and start the buffer afresh when it may be half full."""
        self._forget_deleted_hooks()
        self._code_estimate += self._working_set_bytes()
        if self._code_estimate >= _CODE_FLUSH_BYTES:
            self.flush_translations()
            return
        for r in self.memory.regions():
            if r.perms & PROT_EXEC:
                self.engine.remove_cache(r.start, r.end)

    def _forget_deleted_hooks(self) -> None:
        """Unicorn frees a deleted hook only when a run ends; until then its
        translator still sees it, and code translated after removing the
        last memory hook would keep the slow memory path for good.  So end
        an empty run first: the block hook refuses the first block."""
        if not self._hooks_deleted:
            return
        self._hooks_deleted = False
        c = self.counter
        saved = (c.total, c.last_addr, c.last_size, c.last_icount, c.limit, c.stop_reason)
        eip = self.eip
        c.limit = c.total
        try:
            self.engine.start(eip)
        finally:
            c.total, c.last_addr, c.last_size, c.last_icount, c.limit, c.stop_reason = saved
            self.eip = eip
            if self.pages is not None:
                self.pages.take_fault()

    def flush_translations(self) -> None:
        """Empty Unicorn's code buffer (outside a run; the block counts stay)."""
        self.engine.flush_tb()
        self._code_estimate = 0

    def maybe_flush_translations(self) -> None:
        """At a safe point (before a run): flush if the estimate says the
        buffer may be half full."""
        if self._code_estimate >= _CODE_FLUSH_BYTES:
            self.flush_translations()

    def _working_set_bytes(self) -> int:
        # Blocks decoded so far, at a generous 2 KiB of host code each.
        return max(self.counter.learned, 64) * _HOST_BYTES_PER_BLOCK

    def invalidate_code(self, lo: int, hi: int) -> None:
        if self._started:
            self._changed_code.append((lo, hi))
        self._drop_code(lo, hi)

    def _drop_code(self, lo: int, hi: int) -> None:
        """Forget translations and cached counts for [lo, hi) after it changed."""
        self.counter.forget(max(lo - PAGE, 0), hi)
        self._remove_cache(max(lo - PAGE, 0), hi)
        self._forget_io_exits(max(lo - _MAX_INSN_LENGTH, 0), hi)

    def _forget_io_exits(self, lo: int, hi: int) -> None:
        """Drop the port I/O exits in [lo, hi): that code changed (or is
        about to be replaced), and is looked at again when it is decoded."""
        stale = {a for a in self._io_exits if lo <= a < hi}
        if stale:
            self._io_exits -= stale
            self._sync_exits()

    def _remove_cache(self, lo: int, hi: int) -> None:
        """Drop the translations of [lo, hi), one mapped region at a time.

        Unicorn turns the range's start into a RAM offset and drops that
        many bytes from there: a range starting in unmapped memory drops
        nothing, and one crossing into another region (another RAM block)
        drops the wrong bytes.
        """
        for r in self.memory.overlapping(lo, hi):
            self.engine.remove_cache(max(lo, r.start), min(hi, r.end))
        # The blocks there will be translated again (flushed at the next run
        # start if that adds up: this may be inside a hook).
        self._code_estimate += min(hi - lo, 1 << 20) * 4 + _HOST_BYTES_PER_BLOCK

    # -- exits (breakpoints) ---------------------------------------------
    def add_exit(self, addr: int) -> None:
        """Stop before executing the instruction at ``addr``."""
        self._exits.add(addr)
        self._sync_exits()

    def remove_exit(self, addr: int) -> None:
        self._exits.discard(addr)
        self._sync_exits()

    def set_exit_addresses(self, addrs: set[int]) -> None:
        """Make ``addrs`` the exit addresses; only changed ones are re-translated."""
        self._exits = set(addrs)
        self._sync_exits()

    def _sync_exits(self) -> None:
        exits = self._exits | self._io_exits
        if self._temp_exit is not None:
            exits.add(self._temp_exit)
        if exits == self._active_exits:
            return
        self.engine.set_exits(sorted(exits))
        # Translations must follow: a block translated before an exit was
        # added runs straight through it (unicorn.md G3), and the stub block
        # Unicorn translates *at* an exit keeps halting after the exit is
        # gone.
        for addr in exits - self._active_exits:
            self._remove_cache(max(addr - 1, 0), addr + 1)
        for addr in self._active_exits - exits:
            self._remove_cache(addr, addr + 1)
        self._active_exits = exits

    # -- running -------------------------------------------------------
    _icount = 0

    def run(self, limit: int = ic.NO_LIMIT, *, exact: bool = True) -> Stop:
        """Run until a stop, retiring at most ``limit - icount`` more instructions.

        Returns at the first of: the count reaching ``limit`` exactly, an exit
        address, a syscall handler asking to stop, a guest fault.  With
        ``exact=False`` a LIMIT stop may come early, at the start of the block
        that would cross ``limit``, provided some instructions ran (the count
        is still exact; this saves the temporary exit when any nearby stopping
        point will do).
        """
        if limit < self._icount:
            raise EmulatorError(f"cannot run backwards to {limit} from {self._icount}")
        self.maybe_flush_translations()
        c = self.counter
        c.limit = ic.NO_LIMIT  # the native counter keeps total <= limit
        c.total = self._icount
        self._stop_requested = False
        c.last_addr = c.last_size = c.last_icount = 0
        try:
            return self._run(limit, exact)
        finally:
            if self._temp_exit is not None:
                self._temp_exit = None
                self._sync_exits()

    def _run(self, limit: int, exact: bool = True) -> Stop:
        c = self.counter
        start = c.total
        while True:
            if c.total >= limit:
                self._icount = c.total
                return Stop(StopReason.LIMIT, c.total)
            c.limit = limit
            c.stop_reason = ic.STOP_NONE
            self._pending = None
            self._fault_access = None
            if self.pages is not None:
                self.pages.take_fault()  # a refusal QEMU only probed with
            status = self.engine.start(self.eip)
            reason = c.stop_reason
            if reason in (ic.STOP_UNKNOWN, ic.STOP_LIMIT):
                # The block hook refused the block at stop_addr, which has not
                # run.  Unicorn normally leaves EIP there, but not when any
                # UC_HOOK_CODE exists (it then trusts the code hook to have
                # synced the PC, which never ran): set it ourselves.
                self.eip = c.stop_addr
            if reason == ic.STOP_UNKNOWN:
                self._learn_block(c.stop_addr, c.stop_size)
                continue
            if reason == ic.STOP_LIMIT and self._stop_requested:
                self._icount = c.total
                return Stop(StopReason.REQUEST, c.total)
            if reason == ic.STOP_LIMIT:
                # Inexact runs may stop early at a block start, but only if
                # that is progress; otherwise the caller would loop forever.
                if c.total < limit and (exact or c.total == start):
                    self._place_temp_exit(c.stop_addr, c.stop_size, limit - c.total)
                    continue
                self._icount = c.total
                return Stop(StopReason.LIMIT, c.total)
            if self._pending is not None:
                stop = self._pending
                self._icount = stop.icount
                if stop.reason is StopReason.FAULT:
                    # Linux delivers the signal with EIP at the faulting insn.
                    assert stop.fault is not None
                    self.eip = stop.fault.eip
                return stop
            eip = self.eip
            count = self.count_at(eip)
            self._icount = count
            c.total = count
            if status != ucc.UC_ERR_OK and count >= limit:
                # Unicorn fetches and translates the next block before its
                # block hook can refuse it: a jump to code that cannot be
                # fetched faults as soon as the jump retires.  That fault
                # belongs to the next instruction, past the limit: it is
                # raised again when the run goes on.
                if self.pages is not None:
                    self.pages.take_fault()
                return Stop(StopReason.LIMIT, count)
            refused = self.pages.take_fault() if self.pages is not None else None
            if status == ucc.UC_ERR_EXCEPTION and refused is not None and refused[2]:
                self._spring_trap(count)
                continue
            if status != ucc.UC_ERR_OK:
                fault = self._fault_from_status(status, eip, refused)
                # Learning the exact address may have run code: the count
                # must be the one at the fault.
                self._icount = c.total = count
                return Stop(StopReason.FAULT, count, fault)
            if eip == self._temp_exit and count == limit:
                return Stop(StopReason.LIMIT, count)
            if eip in self._exits or eip == self._temp_exit:
                return Stop(StopReason.EXIT, count)
            if eip in self._io_exits and count >= limit:
                return Stop(StopReason.LIMIT, count)
            if eip in self._io_exits:
                if not _is_port_io(self.memory.view(eip, _MAX_INSN_LENGTH).tobytes()):
                    # The code there changed without us hearing of it: no
                    # fault, and the exit goes.
                    self._forget_io_exits(eip, eip + 1)
                    continue
                fault = Fault(SIGSEGV, eip, None, "port I/O: general protection")
                return Stop(StopReason.FAULT, count, fault)
            # A clean stop we did not ask for: a privileged instruction such as
            # hlt that Unicorn ends emulation on.  Linux raises #GP for it.
            return Stop(
                StopReason.FAULT,
                count,
                Fault(SIGSEGV, eip, None, "privileged instruction"),
            )

    _stop_requested = False
    #: Handles of memory watches (apart from Unicorn's hook handles).
    _next_watch_handle = 1 << 60

    # -- memory watches ----------------------------------------------------
    # Page traps.  Any Unicorn memory hook sends every guest load and store
    # through Unicorn's slow path (the translator stops inlining the TLB
    # lookup), which costs 4-7x on code that runs from the TLB.  So a watch
    # starts as a trap instead: the TLB fill hook withholds the watched kind
    # of access on the watched pages, and the first such access stops the
    # engine exactly before its instruction (as a page fault does).  From
    # there the watches become memory hooks, with the exact range checked
    # natively, until ``rearm_watches``: a watch on a quiet page costs
    # nothing until that page is touched.  Without the virtual TLB (the PC)
    # watches are hooks from the start.

    def watch_memory(
        self, *, write: bool, address: int, length: int, callback: Callable[[int, int], None]
    ) -> int:
        """Call ``callback(address, size)`` on guest reads (or writes) that
        overlap [address, address + length); returns a handle for ``unwatch``.
        Python is called only for those accesses.  The callback runs in the
        middle of an instruction: it may only record and ``request_stop``.
        Call ``retranslate`` after adding or removing watches."""
        if length <= 0:
            raise EmulatorError(f"empty watch at {address:#x}")

        def hit(addr: int, size: int) -> None:
            if not self._probing:
                try:
                    callback(addr, size)
                except BaseException as exc:  # re-raised by the engine's start()
                    self.engine.fail_from_hook(exc)
                    self.request_stop()

        self._next_watch_handle += 1
        handle = self._next_watch_handle
        self._watch_specs[handle] = (write, address, address + length, hit)
        if self.pages is None or self._watching_precisely:
            self._hook_watch(handle)
        else:
            self._set_traps()
        return handle

    def block_end(self) -> int:
        """In a memory hook: the count after the whole block being run.  The
        accessing instruction is one of [count_at(eip), block_end()): Unicorn
        brings EIP up to date before a memory hook only for plain loads and
        stores (an SSE movq or an x87 store reports its block's start)."""
        return self.counter.total

    def unwatch(self, handle: int) -> None:
        if handle not in self._watch_specs:
            self.engine.hook_del(handle)
            return
        del self._watch_specs[handle]
        watch = self._watch_hooks.pop(handle, None)
        if watch is not None:
            watch.remove()
            self._hooks_deleted = True
        if not self._watch_specs:
            self._watching_precisely = False
            self._keep_hot = KEEP_HOT_HOOKS
        if self.pages is not None and not self._watching_precisely:
            self._set_traps()

    def rearm_watches(self) -> bool:
        """Turn memory watches back into page traps (call between runs; True
        if re-armed): a page touched once in a while costs nothing between
        touches.  A hot page, whose trap sprang soon after it was set, keeps
        its hooks (and the translations made with them) for KEEP_HOT_HOOKS
        instructions first."""
        if not self._watching_precisely or self.pages is None:
            return False
        hot = self._trapped_at - self._armed_at < HOT_TRAP
        # (Going back in time, a hot page stays hot: keep them.)
        if hot and self._icount - self._trapped_at < self._keep_hot:
            return False
        self._watching_precisely = False
        for watch in self._watch_hooks.values():
            watch.remove()
        self._watch_hooks.clear()
        self._hooks_deleted = True
        self._drop_all_translations()
        self._set_traps()
        return True

    @property
    def watching_precisely(self) -> bool:
        """Whether the memory watches are hooks now (not page traps)."""
        return self._watching_precisely or (self.pages is None and bool(self._watch_specs))

    def _hook_watch(self, handle: int) -> None:
        write, lo, hi, hit = self._watch_specs[handle]
        self._watch_hooks[handle] = ic.MemoryWatch(
            self.engine, self.native, write=write, lo=lo, hi=hi, callback=hit
        )

    def _set_traps(self) -> None:
        """Page traps for every watch (none while watching precisely)."""
        pages = self.pages
        assert pages is not None
        for lo, hi in self._trapped:
            pages.set_traps(lo, hi, 0)
        self._trapped = []
        if not self._watching_precisely:
            for _write, lo, hi, _hit in self._watch_specs.values():
                first, last = lo & ~(PAGE - 1), (hi + PAGE - 1) & ~(PAGE - 1)
                for page in range(first, last, PAGE):
                    # (Read and write watches may share a page.)
                    pages.set_traps(page, page + PAGE, self._trap_bits(page))
                    self._trapped.append((page, page + PAGE))
            self._armed_at = self._icount
        self.engine.flush_tlb()

    def _trap_bits(self, page: int) -> int:
        bits = 0
        for write, lo, hi, _hit in self._watch_specs.values():
            if lo < page + PAGE and hi > page:
                bits |= PROT_WRITE if write else PROT_READ
        return bits

    def _spring_trap(self, count: int) -> None:
        """A trap stopped the engine before an access to a watched page: watch
        with hooks from this instruction on (it runs again, hooked)."""
        self._watching_precisely = True
        if count - self._armed_at < HOT_TRAP:
            self._keep_hot = min(self._keep_hot * 2, KEEP_HOT_HOOKS_MAX)
        else:
            self._keep_hot = KEEP_HOT_HOOKS
        self._trapped_at = count
        self._set_traps()
        for handle in self._watch_specs:
            self._hook_watch(handle)
        self._drop_all_translations()

    def watch_code(self, address: int, callback: Callable[[int], None]) -> int:
        """Call ``callback(icount)`` each time the instruction at ``address`` is
        about to run, with the exact count then; without stopping (a breakpoint
        that only counts).  Returns a handle for ``unwatch``; call
        ``retranslate`` after adding or removing code watches."""

        def hook(_uc: object, pc: int, _size: int, _d: object) -> None:
            if not self._probing:
                callback(self.count_at(pc))

        return self.engine.hook_add(ucc.UC_HOOK_CODE, hook, begin=address, end=address)

    def request_stop(self) -> None:
        """From a hook: end the run before the next block (memory hooks must not
        call ``emu_stop``, unicorn.md G4; the rest of this block still runs)."""
        self._stop_requested = True
        c = self.counter
        c.limit = c.total

    def retranslate(self) -> None:
        """Drop Unicorn's translations (not the block counts): needed after adding
        or removing memory hooks, which Unicorn compiles into each block."""
        self._drop_all_translations()

    def _place_temp_exit(self, pc: int, size: int, remaining: int) -> None:
        insns = self._decode(pc, size)
        self._temp_exit = insns[remaining]
        self._sync_exits()

    def _fault_from_status(
        self, status: int, eip: int, refused: tuple[int, int, bool] | None
    ) -> Fault:
        if status == ucc.UC_ERR_EXCEPTION and refused is not None:
            # The TLB hook refused a data access: EIP and the registers are
            # exactly those before the faulting instruction.
            kind = "write" if refused[0] == ic.MEM_WRITE else "read"
            address = self._exact_access(eip, kind, refused[1] & ~(PAGE - 1))
            return Fault(SIGSEGV, eip, address, self._access_text(kind, address))
        access = self._fault_access
        if status == ucc.UC_ERR_INSN_INVALID:
            return Fault(SIGILL, eip, None, "invalid instruction")
        if access is not None:
            kind, addr = access
            return Fault(SIGSEGV, eip, addr, f"{kind} of unmapped or protected memory")
        if status in (ucc.UC_ERR_FETCH_UNMAPPED, ucc.UC_ERR_FETCH_PROT):
            return Fault(SIGSEGV, eip, eip, "instruction fetch")
        return Fault(SIGSEGV, eip, None, self.engine.strerror(status))

    def _access_text(self, kind: str, address: int) -> str:
        region = self.memory.region_at(address)
        if region is None:
            return f"{kind} of unmapped memory"
        if kind == "write" and region.perms & PROT_READ:
            return "write to read-only memory"
        return f"{kind} of protected memory"

    def _exact_access(self, eip: int, kind: str, page: int) -> int:
        """The address Linux would report for the refused access to ``page``
        by the instruction at ``eip`` (CR2: the first byte it could not
        access there).

        The TLB hook only learns the page.  Unicorn's own memory checks,
        which the virtual TLB bypasses, report the address: run the
        instruction once more without the virtual TLB (it faults again, at a
        block start, where even those checks leave EIP exact), then put the
        CPU context, count, TLB and any bytes that second run stored back.
        An access that starts below the page (a store crossing into it,
        which Unicorn then performs byte by byte) is reported at the page's
        first byte, as the CPU does.
        """
        if self.pages is None:
            return page
        insns = self._decode(eip, _MAX_INSN_LENGTH)
        c = self.counter
        saved = (c.total, c.last_addr, c.last_size, c.last_icount, c.limit)
        context = self.engine.context_bytes()
        # The two pages a crossing access can have touched before faulting.
        spans = [
            (lo, bytes(self.memory.view(lo, PAGE)))
            for lo in (page - PAGE, page)
            if lo >= 0 and self.memory.is_mapped(lo, PAGE)
        ]
        temp_exit = self._temp_exit
        self._temp_exit = insns[1] if len(insns) > 1 else None
        self._sync_exits()
        self._fault_access = None
        self._probing = True
        self.engine.set_virtual_tlb(False)
        try:
            for _ in range(3):  # the block may have to be learned first
                # One instruction at most, even if it did not fault again.
                c.limit = saved[0] + 1
                c.stop_reason = ic.STOP_NONE
                self.engine.start(eip)
                if c.stop_reason != ic.STOP_UNKNOWN:
                    break
                self._learn_block(c.stop_addr, c.stop_size)
        finally:
            self.engine.set_virtual_tlb(True)
            self.engine.flush_tlb()
            self.engine.restore_context_bytes(context)
            c.total, c.last_addr, c.last_size, c.last_icount, c.limit = saved
            self._probing = False
            self._temp_exit = temp_exit
            self._sync_exits()
            self.pages.take_fault()
        crossed = False
        for lo, before in spans:
            if bytes(self.memory.view(lo, PAGE)) != before:
                crossed = crossed or lo < page
                self.memory.load_raw(lo, before)
                region = self.memory.region_at(lo)
                if region is not None and region.perms & PROT_EXEC:
                    self._drop_code(lo, lo + PAGE)
        access = self._fault_access
        self._fault_access = None
        if crossed or access is None or access[0] != kind:
            return page
        address = access[1]
        return address if page <= address < page + PAGE else page

    def set_icount(self, value: int) -> None:
        """Set the count (used when restoring machine state)."""
        self._icount = value
