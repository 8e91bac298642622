"""The CPU on hand-written code: fixed CPUID model, virtual TSC, CPL-3 faults."""

from __future__ import annotations

import pytest
from unicorn import x86_const as x86

from rrdbg.machine.cpu import SIGSEGV, SIGTRAP, Cpu, StopReason
from rrdbg.machine.engine import CPU_MODEL_NAME, Engine, patch_level
from rrdbg.machine.memory import PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, GuestMemory

CODE = 0x08048000
STACK = 0x0B000000


def cpu_with(code: bytes, native: bool = True) -> Cpu:
    engine = Engine()
    memory = GuestMemory(engine)
    memory.map(CODE, PAGE, PROT_READ | PROT_EXEC)
    memory.poke(CODE, code)
    memory.map(STACK - PAGE, PAGE, PROT_READ | PROT_WRITE)
    cpu = Cpu(memory, engine, native=native)
    cpu.enter_user_mode(CODE, STACK)
    return cpu


INT80 = b"\xcd\x80"


@pytest.mark.parametrize("native", [True, False])
def test_cpuid_is_the_pinned_model(native: bool) -> None:
    cpu = cpu_with(b"\x31\xc0\x0f\xa2" + INT80, native)  # xor eax,eax; cpuid
    cpu.on_syscall = lambda: True
    assert cpu.run().reason is StopReason.SYSCALL
    read = cpu.engine.reg_read
    vendor = b"".join(
        read(r).to_bytes(4, "little")
        for r in (x86.UC_X86_REG_EBX, x86.UC_X86_REG_EDX, x86.UC_X86_REG_ECX)
    )
    # The default model: Skylake-Client with rrdbg's Unicorn, else QEMU64.
    expected = b"GenuineIntel" if CPU_MODEL_NAME == "skylake-client" else b"AuthenticAMD"
    assert vendor == expected
    assert cpu.icount == 3


@pytest.mark.skipif(not patch_level(), reason="needs rrdbg's Unicorn build")
def test_rdrand_is_neither_advertised_nor_executed() -> None:
    # RDRAND would return the host's random numbers, which a replay cannot
    # repeat: CPUID leaf 1 hides it and the instruction raises #UD (SIGILL).
    cpu = cpu_with(b"\xb8\x01\x00\x00\x00\x0f\xa2" + INT80 + b"\x0f\xc7\xf0" + INT80)
    cpu.on_syscall = lambda: True
    assert cpu.run().reason is StopReason.SYSCALL
    assert not cpu.engine.reg_read(x86.UC_X86_REG_ECX) & (1 << 30)
    stop = cpu.run()
    assert stop.reason is not StopReason.SYSCALL
    assert cpu.eip == CODE + 9  # at rdrand eax, not past it


@pytest.mark.parametrize("native", [True, False])
def test_rdtsc_counts_instructions_not_host_time(native: bool) -> None:
    # nop; nop; rdtsc; mov ebx,eax; rdtsc; int 0x80
    cpu = cpu_with(b"\x90\x90\x0f\x31\x89\xc3\x0f\x31" + INT80, native)
    cpu.on_syscall = lambda: True
    cpu.run()
    assert cpu.engine.reg_read(x86.UC_X86_REG_EBX) == 2  # instructions before the 1st rdtsc
    assert cpu.engine.reg_read(x86.UC_X86_REG_EAX) == 4
    assert cpu.engine.reg_read(x86.UC_X86_REG_EDX) == 0
    assert cpu.icount == 6


@pytest.mark.parametrize(
    ("code", "what"),
    [(b"\xf4", "hlt"), (b"\xfa", "cli"), (b"\x0f\x20\xc0", "mov eax,cr0"), (b"\x0f\x30", "wrmsr")],
)
def test_privileged_instructions_fault_at_cpl3(code: bytes, what: str) -> None:
    cpu = cpu_with(b"\x90" + code + INT80)
    stop = cpu.run()
    assert stop.reason is StopReason.FAULT, what
    assert stop.fault is not None
    assert stop.fault.signal == SIGSEGV
    assert stop.fault.eip == CODE + 1
    assert stop.icount == 1


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize(
    "io", [b"\xe4\x60", b"\xe6\x80", b"\xec", b"\x66\xef", b"\xf3\x6c", b"\x6e"]
)
def test_port_io_faults_at_cpl3_as_on_linux(native: bool, io: bytes) -> None:
    # Unicorn skips the I/O permission check; Linux user code gets #GP
    # (SIGSEGV) at the instruction, which does not retire.
    cpu = cpu_with(b"\xb0\x07\x40" + io + b"\x40" + INT80, native)  # mov al,7; inc eax; I/O
    cpu.on_syscall = lambda: True
    for _ in range(2):  # the second time the block is known (native: cached)
        stop = cpu.run()
        assert stop.reason is StopReason.FAULT
        assert stop.fault is not None and stop.fault.signal == SIGSEGV
        assert stop.fault.eip == CODE + 3 and stop.icount == 2
        assert cpu.engine.reg_read(x86.UC_X86_REG_EAX) & 0xFF == 8
        cpu.engine.reg_write(x86.UC_X86_REG_EAX, 7)
        cpu.eip = CODE + 2
        cpu.set_icount(1)


def test_int3_is_sigtrap_after_the_instruction() -> None:
    cpu = cpu_with(b"\x90\xcc\x90")
    stop = cpu.run()
    assert stop.fault is not None
    assert stop.fault.signal == SIGTRAP
    assert stop.icount == 2


@pytest.mark.parametrize("native", [True, False])
def test_exact_stops_inside_one_long_block(native: bool) -> None:
    cpu = cpu_with(b"\x40" * 50 + INT80, native)  # 50 x inc eax
    for k in (1, 2, 3, 10, 49, 50):
        assert cpu.run(k).reason is StopReason.LIMIT
        assert cpu.icount == k
        assert cpu.engine.reg_read(x86.UC_X86_REG_EAX) == k
        assert cpu.eip == CODE + k


def test_at_hwcap_is_cpuid_leaf_1_edx() -> None:
    from rrdbg.machine.machine import HWCAP

    cpu = cpu_with(b"\xb8\x01\x00\x00\x00\x0f\xa2" + INT80)  # mov eax,1; cpuid
    cpu.on_syscall = lambda: True
    cpu.run()
    assert cpu.engine.reg_read(x86.UC_X86_REG_EDX) == HWCAP


def test_inexact_limit_stops_at_a_block_start_at_or_before_the_limit() -> None:
    cpu = cpu_with(b"\x40" * 50 + INT80)
    stop = cpu.run(10, exact=False)
    assert stop.reason is StopReason.LIMIT
    # The 50-instruction block crosses 10 and nothing else ran: no progress
    # would loop forever, so the run goes exactly to 10 instead.
    assert stop.icount == cpu.icount == 10
    cpu2 = cpu_with(b"\x90\xeb\x00" + b"\x40" * 50 + INT80)  # nop; jmp next; 50 x inc
    assert cpu2.run(10, exact=False).icount == 2  # stops after the first block


@pytest.mark.parametrize("native", [True, False])
def test_a_page_made_read_only_faults_at_the_next_store(native: bool) -> None:
    # mov [DATA], eax; int 0x80 (mprotect read-only); inc eax; mov [DATA], eax
    data = STACK - 2 * PAGE
    store = b"\xa3" + data.to_bytes(4, "little")
    cpu = cpu_with(store + INT80 + b"\x40" + store + INT80, native)
    cpu.memory.map(data, PAGE, PROT_READ | PROT_WRITE)

    def mprotect() -> bool:
        cpu.memory.protect(data, PAGE, PROT_READ)
        return False

    cpu.on_syscall = mprotect
    stop = cpu.run()
    assert stop.reason is StopReason.FAULT and stop.fault is not None
    assert (stop.fault.eip, stop.icount, stop.fault.address) == (CODE + 8, 3, data)
    assert stop.fault.what == "write to read-only memory"
    assert cpu.engine.reg_read(x86.UC_X86_REG_EAX) == 1


@pytest.mark.parametrize("native", [True, False])
def test_a_store_crossing_into_an_unmapped_page_writes_nothing(native: bool) -> None:
    # mov ebx, 0x11223344; mov [edge-2], ebx: two bytes mapped, two not.
    edge = STACK - PAGE  # the stack page ends here... below it, nothing is mapped
    data = edge - PAGE
    cpu = cpu_with(b"\xbb\x44\x33\x22\x11\x89\x1d" + (edge - 2).to_bytes(4, "little"), native)
    cpu.memory.map(data, PAGE, PROT_READ | PROT_WRITE)
    cpu.memory.unmap(edge, PAGE)
    before = bytes(cpu.memory.view(data, PAGE))
    stop = cpu.run()
    assert stop.fault is not None and stop.fault.signal == SIGSEGV
    assert (stop.fault.eip, stop.icount) == (CODE + 5, 1)
    assert stop.fault.address == edge  # CR2: the first byte it could not write
    assert bytes(cpu.memory.view(data, PAGE)) == before


@pytest.mark.parametrize("native", [True, False])
def test_code_that_was_port_io_and_changed_does_not_fault(native: bool) -> None:
    # Writable code: nop; in al,dx; nop; int 0x80.  It faults, is rewritten
    # (the in becomes a nop), and then runs through.
    engine = Engine()
    memory = GuestMemory(engine)
    memory.map(CODE, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC)
    memory.poke(CODE, b"\x90\xec\x90" + INT80)
    memory.map(STACK - PAGE, PAGE, PROT_READ | PROT_WRITE)
    cpu = Cpu(memory, engine, native=native)
    cpu.enter_user_mode(CODE, STACK)
    cpu.on_syscall = lambda: True
    stop = cpu.run()
    assert stop.reason is StopReason.FAULT and (stop.fault and stop.fault.eip) == CODE + 1
    memory.poke(CODE + 1, b"\x90")
    cpu.eip = CODE
    cpu.set_icount(0)
    assert cpu.run().reason is StopReason.SYSCALL
    assert cpu.icount == 4


@pytest.mark.skipif(not patch_level(), reason="needs rrdbg's Unicorn build")
def test_pcmpestri_with_the_most_negative_length_does_not_crash() -> None:
    # Unicorn 2.1.1's PCMPESTRI took |INT32_MIN| as a negative length and
    # read far outside the registers: the host process died (SIGSEGV).  The
    # length saturates to 16: two empty-free strings, "equal any".
    code = (
        b"\xb8\x00\x00\x00\x80"  # mov eax, 0x80000000
        b"\x89\xc2"  # mov edx, eax
        b"\x66\x0f\x3a\x61\xc1\x00" + INT80  # pcmpestri xmm0, xmm1, 0
    )
    cpu = cpu_with(code)
    cpu.on_syscall = lambda: True
    assert cpu.run().reason is StopReason.SYSCALL
    assert cpu.engine.reg_read(x86.UC_X86_REG_ECX) == 0  # xmm0 = xmm1 = 0: a match at 0
