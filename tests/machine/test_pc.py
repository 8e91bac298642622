"""The bare-metal PC machine's parts: devices, the Multiboot loader, the CLI."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from rrdbg.errors import LoaderError, RrdbgError
from rrdbg.machine.host import SeededHost
from rrdbg.machine.loader import read_kernel
from rrdbg.machine.pc import CmosRtc, PcMachine, Pic8259, Pit8254, Uart16550
from tests.conftest import GUESTS


def test_pic_init_mask_priority_and_eoi() -> None:
    pic = Pic8259()
    for value in (0x11, 0x20, 0x04, 0x01):  # ICW1..ICW4
        pic.write(0 if value == 0x11 else 1, value)
    assert pic.base == 0x20
    pic.write(1, 0xFC)  # IRQ0 and IRQ1 open
    pic.irr = 0b111
    assert pic.pending() == 0
    pic.irr &= ~1
    pic.isr |= 1
    assert pic.pending() is None  # IRQ0 in service blocks lower priorities
    pic.write(0, 0x20)  # EOI
    assert pic.isr == 0
    assert pic.pending() == 1
    pic.write(0, 0x0B)  # OCW3: read ISR
    pic.isr = 0x40
    assert pic.read(0) == 0x40


def test_pit_period_in_virtual_nanoseconds() -> None:
    pit = Pit8254()
    pit.write(0x43, 0x34, 0)
    pit.write(0x40, 1193 & 0xFF, 0)
    pit.write(0x40, 1193 >> 8, 100)
    assert pit.period_ns == 999_847  # 1193 / 1.193182 MHz
    assert not pit.due(100 + 999_846)
    assert pit.due(100 + 999_847)
    assert pit.next_ns == 100 + 2 * 999_847


def test_uart_transmit_receive_and_divisor() -> None:
    out: list[bytes] = []
    uart = Uart16550(out.append)
    uart.write(0, ord("x"))
    assert out == [b"x"]
    assert uart.read(5) & 0x61 == 0x60  # transmitter empty, no data
    uart.rx += b"ab"
    assert uart.read(5) & 1
    uart.write(1, 1)
    assert uart.read(2) == 0xC4  # receive interrupt pending
    assert bytes([uart.read(0), uart.read(0)]) == b"ab"
    assert uart.read(2) == 0xC1
    uart.write(3, 0x80)  # DLAB
    uart.write(0, 3)
    uart.write(1, 0)
    uart.write(3, 0x03)
    assert uart.divisor == 3


def test_rtc_bcd_time_from_the_host_epoch() -> None:
    rtc = CmosRtc(epoch_ns=1_700_000_000 * 10**9, now_ns=lambda: 0)  # 2023-11-14 22:13:20

    def reg(i: int) -> int:
        rtc.index = i
        return rtc.read()

    assert (reg(0x09), reg(0x08), reg(0x07)) == (0x23, 0x11, 0x14)
    assert (reg(0x04), reg(0x02), reg(0x00)) == (0x22, 0x13, 0x20)
    assert reg(0x32) == 0x20
    assert reg(0x0B) == 0x02


def _ticks(sink: int) -> tuple[int, list[int]]:
    m = PcMachine(str(GUESTS / "k_ticks"), SeededHost(1, stdout_fd=sink, stderr_fd=sink))
    deliveries: list[int] = []
    original = m._deliver_irq

    def spy() -> None:
        deliveries.append(m.icount)
        original()

    m._deliver_irq = spy  # type: ignore[method-assign]
    result = m.run_to_end()
    assert result.status == 1
    return result.icount, deliveries


def test_timer_interrupts_land_at_the_same_icounts_every_run(devnull: int) -> None:
    first = _ticks(devnull)
    assert len(first[1]) >= 50
    assert _ticks(devnull) == first


def _multiboot_elf(tmp_path: Path, header: bytes) -> str:
    image = bytearray((GUESTS / "k_hello").read_bytes())
    offset = image.index(struct.pack("<I", 0x1BADB002))
    image[offset : offset + len(header)] = header
    path = tmp_path / "kernel"
    path.write_bytes(bytes(image))
    return str(path)


def test_loader_refuses_what_it_cannot_boot(tmp_path: Path) -> None:
    with pytest.raises(LoaderError, match="no Multiboot header"):
        read_kernel(str(GUESTS / "hello"))
    flags = 1 << 16
    aout = struct.pack("<III", 0x1BADB002, flags, (-(0x1BADB002 + flags)) & 0xFFFFFFFF)
    with pytest.raises(LoaderError, match=r"a\.out"):
        read_kernel(_multiboot_elf(tmp_path, aout))
    flags = 1 << 2  # video mode: a requirement rrdbg does not meet
    video = struct.pack("<III", 0x1BADB002, flags, (-(0x1BADB002 + flags)) & 0xFFFFFFFF)
    with pytest.raises(LoaderError, match="requires features"):
        read_kernel(_multiboot_elf(tmp_path, video))
    with pytest.raises(LoaderError, match="no such file"):
        read_kernel(str(tmp_path / "missing"))


def test_ram_size_is_checked(devnull: int) -> None:
    host = SeededHost(1, stdout_fd=devnull)
    with pytest.raises(RrdbgError, match="outside"):
        PcMachine(str(GUESTS / "k_hello"), host, ram_mb=1)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--machine", "pc", str(GUESTS / "hello")], "no Multiboot header"),
        (["run", "--machine", "pc", str(GUESTS / "k_hello"), "x"], "no guest arguments"),
        (["run", "--machine", "pc", "-m", "1", str(GUESTS / "k_hello")], "outside"),
        (["run", "--append", "x", str(GUESTS / "hello")], "--machine pc"),
        (
            ["run", "--machine", "pc", "--stdin", "/nonexistent/in", str(GUESTS / "k_hello")],
            "--stdin",
        ),
        (
            ["record", "--machine", "pc", "-o", "/nonexistent/x.rr", str(GUESTS / "hello")],
            "Multiboot",
        ),
    ],
)
def test_cli_bad_input_is_one_line(args: list[str], needle: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rrdbg", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0]


def test_a_checkpoint_restored_into_a_fresh_machine_runs_on_identically(tmp_path: Path) -> None:
    """Devices, virtual time and memory are all in the state: k_ticks stopped
    half-way (a timer programmed, ticks counted, the CPU halting), restored
    into a fresh machine, ends exactly as the uninterrupted run."""
    from rrdbg.timeline.checkpoint import capture, restore

    out1, out2, ref = tmp_path / "1", tmp_path / "2", tmp_path / "ref"
    fds = [os.open(p, os.O_WRONLY | os.O_CREAT) for p in (out1, out2, ref)]
    kernel = str(GUESTS / "k_ticks")
    reference = PcMachine(kernel, SeededHost(1, stdout_fd=fds[2]))
    full = reference.run_to_end()
    first = PcMachine(kernel, SeededHost(1, stdout_fd=fds[0]))
    first.run_to_end(max_icount=full.icount // 2)
    first.ended = None
    checkpoint = capture(first)
    fresh = PcMachine(kernel, SeededHost(1, stdout_fd=fds[1]))
    restore(fresh, checkpoint)
    assert fresh.digest() == first.digest()
    result = fresh.run_to_end()
    for fd in fds:
        os.close(fd)
    assert (result.icount, result.status) == (full.icount, full.status)
    assert fresh.digest() == reference.digest()
    assert out1.read_bytes() + out2.read_bytes() == ref.read_bytes()


def test_rdtsc_counts_instructions(tmp_path: Path) -> None:
    """At ring 0 Unicorn would return the host's TSC; rrdbg's is the virtual
    clock, exact: the first value read is the number of instructions before
    the rdtsc, and every run prints the same."""
    outputs = []
    for i in range(2):
        out = tmp_path / f"out{i}"
        fd = os.open(out, os.O_WRONLY | os.O_CREAT)
        m = PcMachine(str(GUESTS / "k_tsc"), SeededHost(1, stdout_fd=fd))
        result = m.run_to_end()
        os.close(fd)
        assert result.status == 1
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    first = int(outputs[0].split(b"first ")[1].split()[0])
    fd = os.open(os.devnull, os.O_WRONLY)
    m = PcMachine(str(GUESTS / "k_tsc"), SeededHost(1, stdout_fd=fd))
    m.run_to_end(max_icount=first)
    os.close(fd)
    assert m.icount == first
    assert m.memory.view(m.cpu.eip, 2).tobytes() == b"\x0f\x31"  # the rdtsc, not yet run


def test_port_in_hook_values_and_errors() -> None:
    """The raw ``in`` hook: the value reaches the guest register, sized; an
    exception inside stops the engine and comes out of ``start``."""
    from unicorn import x86_const as x86

    from rrdbg.machine.engine import Engine
    from rrdbg.machine.memory import PROT_EXEC, PROT_READ, PROT_WRITE, GuestMemory

    engine = Engine()
    memory = GuestMemory(engine)
    memory.map(0, 0x2000, PROT_READ | PROT_WRITE | PROT_EXEC)
    # in al, 0x60; mov bl, al; in eax, dx; hlt
    memory.poke(0x1000, b"\xe4\x60\x88\xc3\xed\xf4")
    seen: list[tuple[int, int]] = []

    def port_in(port: int, size: int) -> int:
        seen.append((port, size))
        if port == 0x1234:
            raise RuntimeError("device on fire")
        return 0xABCDEF12

    engine.hook_port_in(port_in)
    engine.reg_write(x86.UC_X86_REG_EDX, 0x1234)
    with pytest.raises(RuntimeError, match="device on fire"):
        engine.start(0x1000)
    assert seen == [(0x60, 1), (0x1234, 4)]
    assert engine.reg_read(x86.UC_X86_REG_EBX) & 0xFF == 0x12
