"""Expected serial output of the pc machine's test kernels (tests/guests/kernels/).

The one place for both sides of the differential check: test_qemu_reference.py
runs every case under ``qemu-system-i386`` (:func:`qemu_argv`), and the rrdbg
side runs the same cases under ``rrdbg run --machine pc`` and compares.

What must match: every line except those starting with ``raw `` (only
``k_hello`` prints them: the Multiboot flags, the full command line, which
starts with the kernel's path, mem_lower/mem_upper, the memory map entries and
the boot loader name -- firmware and loader details).  :func:`comparable`
drops them.  ``stdout`` below is QEMU 7.2's exact output with ``-m 32`` and the
kernel given as a bare file name from ``tests/guests/bin`` (so the command
line is ``"k_hello answer=42 greeting=hello"``); its raw lines document
QEMU's values.

The kernels end the run through isa-debug-exit: writing byte ``v`` to port
0xf4 makes QEMU exit with status ``(v << 1) | 1``.  ``k_unhandled`` never gets
there: QEMU triple-faults, and with ``-no-reboot`` exits with status 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

KERNELS = Path(__file__).parents[2] / "guests" / "bin"


def serial(text: str) -> bytes:
    """The bytes a kernel sends for ``text``: its serial_putc turns "\\n" into "\\r\\n"."""
    return text.replace("\n", "\r\n").encode()


@dataclass(frozen=True)
class KernelCase:
    kernel: str
    stdout: bytes
    """QEMU's exact serial output; compare through :func:`comparable`."""
    stdin: bytes = b""
    append: str | None = None
    """The command line arguments (QEMU ``-append``, rrdbg ``--append``)."""
    exit_code: int | None = 0
    """The byte written to isa-debug-exit, or None when the kernel never
    writes one (k_unhandled: the run ends in a triple fault)."""

    @property
    def qemu_status(self) -> int:
        """QEMU's exit status: isa-debug-exit's (v << 1) | 1, or 0 for the
        shutdown after a triple fault with -no-reboot."""
        return 0 if self.exit_code is None else (self.exit_code << 1) | 1


def comparable(output: bytes) -> bytes:
    """``output`` without the machine-dependent ``raw `` lines."""
    return b"".join(
        line for line in output.splitlines(keepends=True) if not line.startswith(b"raw ")
    )


def qemu_argv(case: KernelCase, kernel: str | None = None, memory_mib: int = 32) -> list[str]:
    """The reference QEMU command line; ``kernel`` defaults to the bare name,
    which needs ``cwd=KERNELS``."""
    argv = [
        "qemu-system-i386",
        "-kernel",
        kernel or case.kernel,
        "-serial",
        "stdio",
        "-display",
        "none",
        "-no-reboot",
        "-m",
        str(memory_mib),
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ]
    if case.append is not None:
        argv += ["-append", case.append]
    return argv


CASES: dict[str, KernelCase] = {
    "k_hello": KernelCase(
        "k_hello",
        append="answer=42 greeting=hello",
        stdout=serial(
            "k_hello: multiboot magic yes\n"
            "raw flags=0x0000024f\n"
            "flags: memory yes, cmdline yes, mmap yes\n"
            'raw cmdline="k_hello answer=42 greeting=hello"\n'
            'cmdline arguments: "answer=42 greeting=hello"\n'
            "raw mem_lower=639 mem_upper=31616\n"
            "mem_lower between 512 and 640 KiB: yes\n"
            "mem_upper at least 15 MiB: yes\n"
            "raw mmap addr=0x0000000000000000 len=0x000000000009fc00 type=1\n"
            "raw mmap addr=0x000000000009fc00 len=0x0000000000000400 type=2\n"
            "raw mmap addr=0x00000000000f0000 len=0x0000000000010000 type=2\n"
            "raw mmap addr=0x0000000000100000 len=0x0000000001ee0000 type=1\n"
            "raw mmap addr=0x0000000001fe0000 len=0x0000000000020000 type=2\n"
            "raw mmap addr=0x00000000fffc0000 len=0x0000000000040000 type=2\n"
            "mmap: available RAM at 0: yes\n"
            "mmap: kernel image in available RAM: yes\n"
            'raw boot_loader_name="qemu"\n'
            "k_hello: done\n"
        ),
    ),
    "k_echo": KernelCase(
        "k_echo",
        stdin=b"hello world.",
        stdout=serial("k_echo: type text ending in '.'\nHELLO WORLD.\nk_echo: 12 bytes\n"),
    ),
    # Newlines are echoed as "\r\n" like all output; bytes after the '.' are
    # never read.
    "k_echo-lines": KernelCase(
        "k_echo",
        stdin=b"first line\nSecond, 2nd!\n.and not this",
        stdout=serial(
            "k_echo: type text ending in '.'\nFIRST LINE\nSECOND, 2ND!\n.\nk_echo: 25 bytes\n"
        ),
    ),
    "k_ticks": KernelCase(
        "k_ticks",
        stdout=serial(
            "k_ticks: PIT channel 0 at 1000 Hz, waiting for 50 ticks\n"
            + "".join(f"tick {n}\n" for n in range(10, 51, 10))
            + "k_ticks: done\n"
        ),
    ),
    # Ticks interrupting ordinary code, and ticks held back by cli and taken
    # at the exact instruction after sti's shadow and after popf.
    "k_busy": KernelCase(
        "k_busy",
        stdout=serial(
            "k_busy: sum 4292870144\n"
            "k_busy: ticks during the sum: yes\n"
            "k_busy: after sti: taken at sti_done\n"
            "k_busy: after popf: taken at popf_done\n"
        ),
    ),
    "k_exceptions": KernelCase(
        "k_exceptions",
        stdout=serial(
            "k_exceptions: IDT installed\n"
            "#DE vector 0: handled yes, eip at the instruction yes\n"
            "#BP vector 3: handled yes, eip after it yes\n"
            "#UD vector 6: handled yes, eip at the instruction yes\n"
            "#GP vector 13 error code 0x18: handled yes, eip at the instruction yes\n"
            "int 0x80 vector 128: handled yes, eip after it yes\n"
            "int 0x80: eax 0x1234 -> 0x2469 yes\n"
            "#NP vector 11 error code 0x40a: handled yes, eip at the instruction yes\n"
            "#PF vector 14 error code 0x2 cr2 0x00800000: handled yes, eip at the instruction yes\n"
            "k_exceptions: done\n"
        ),
    ),
    "k_rtc": KernelCase(
        "k_rtc",
        stdout=serial(
            "k_rtc: status B 0x02 (24-hour, BCD)\n"
            "k_rtc: status D 0x80 (valid RAM and time)\n"
            "k_rtc: date and time fields valid: yes\n"
            "k_rtc: year 2020 or later: yes\n"
        ),
    ),
    "k_selfmod": KernelCase(
        "k_selfmod",
        stdout=serial(
            "k_selfmod: GDT in .rodata loaded, data descriptor accessed bit set yes\n"
            "k_selfmod: patched yes, answer 0x11111111 then 0x22222222: yes\n"
        ),
    ),
    # The CPU a kernel starts on: ring 0, CR0 = PE|ET, the FPU in its FNINIT
    # state (all x87 registers empty), extended precision, MXCSR flags.
    "k_fpu": KernelCase(
        "k_fpu",
        stdout=serial(
            "k_fpu: cpl 0 cr0 mp 0 em 0 ts 0 et 1 ne 0\n"
            "k_fpu: at entry fcw 037f fsw 0000 ftw ffff\n"
            "k_fpu: 1/3 3fd5555555555555 fsw 0020 ftw ffff\n"
            "k_fpu: mxcsr 00001f80 after divss 00001fa0\n"
        ),
    ),
    "k_unhandled": KernelCase(
        "k_unhandled",
        stdout=serial("k_unhandled: ud2 with an empty IDT\n"),
        exit_code=None,
    ),
}
