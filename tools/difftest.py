"""Differential testing of rrdbg's CPU against the host's (issue 19).

Each test case is one instruction (from a template with random registers
and immediates) between a prologue and an epilogue, assembled once for a
fixed address: the prologue loads a random state (general registers,
EFLAGS, the x87/MMX/SSE state with FXRSTOR, 256 bytes of memory), the
epilogue stores the state after it (FXSAVE included).  The same bytes run
natively, in a 32-bit helper (tools/difftest_native.c), and in rrdbg's
Linux machine (its Unicorn CPU, set up as for any program); the two end
states are compared register by register, with the EFLAGS bits the
architecture leaves undefined for that instruction masked, and faults
compared by signal.

Usage: python tools/difftest.py [--class NAME ...] [--count N] [--seed S]
[--insn TEXT] [--cpu MODEL] prints a table of mismatches grouped by
instruction and class.
"""

from __future__ import annotations

import argparse
import collections
import math
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CODE = 0x20000000
DATA = 0x20100000
IN_SIZE = 0x400
OUT_SIZE = 0x400
IN_FX, IN_GPR, IN_FLAGS, IN_MEM = DATA, DATA + 0x200, DATA + 0x220, DATA + 0x300
OUT = DATA + IN_SIZE
OUT_FX, OUT_GPR, OUT_FLAGS, OUT_MEM = OUT, OUT + 0x200, OUT + 0x220, OUT + 0x300
SAVE = DATA + 0x800
DEFAULT_MXCSR = DATA + 0x840
STACK_TOP = DATA + 0x3FF0
#: Where the blob returns to in the emulator (an exit address).
SENTINEL = CODE + 0xFFF0
GPRS = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")

# EFLAGS bits.
CF, PF, AF, ZF, SF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x800
ARITH = CF | PF | AF | ZF | SF | OF

R32 = ("eax", "ecx", "edx", "ebx", "ebp", "esi", "edi")
R16 = ("ax", "cx", "dx", "bx", "bp", "si", "di")
R8 = ("al", "cl", "dl", "bl", "ah", "ch", "dh", "bh")
MM = tuple(f"mm{i}" for i in range(8))
XMM = tuple(f"xmm{i}" for i in range(8))
MEM32 = f"dword ptr [{IN_MEM + 0x40:#x}]"
MEM64 = f"qword ptr [{IN_MEM + 0x40:#x}]"
MEM16 = f"word ptr [{IN_MEM + 0x40:#x}]"
MEM80 = f"tbyte ptr [{IN_MEM + 0x40:#x}]"
MEM128 = f"xmmword ptr [{IN_MEM + 0x40:#x}]"


@dataclass(frozen=True)
class Template:
    """An instruction form: ``text`` with {r32}, {r8}, {imm8}, ... slots;
    ``undefined`` the EFLAGS bits the architecture leaves undefined."""

    klass: str
    text: str
    undefined: int = 0


def _t(klass: str, texts: Iterable[str], undefined: int = 0) -> list[Template]:
    return [Template(klass, t, undefined) for t in texts]


TEMPLATES: list[Template] = [
    *_t(
        "int",
        [
            f"{op} {{r32}}, {{r32b}}"
            for op in ("add", "adc", "sub", "sbb", "cmp", "xchg", "cmovz", "cmovl", "cmova")
        ]
        + [f"{op} {{r8}}, {{r8b}}" for op in ("add", "adc", "sub", "sbb", "cmp")]
        + [f"{op} {{r32}}, {{imm32}}" for op in ("add", "adc", "sub", "sbb", "cmp")]
        + [f"{op} {{r32}}" for op in ("inc", "dec", "neg", "not", "bswap")]
        + ["xadd {r32}, {r32b}", "cmpxchg {r32}, {r32b}", "movsx {r32}, {r8}", "movzx {r32}, {r16}"]
        + ["cdq", "cwde", "cbw", "lahf", "sahf", "cmc", "stc", "clc"]
        + [f"set{cc} {{r8}}" for cc in ("o", "b", "z", "be", "s", "p", "l", "le")],
    ),
    *_t("int", [f"{op} {{r32}}, {{r32b}}" for op in ("and", "or", "xor", "test")], AF),
    *_t(
        "int",
        [
            "mul {r32}",
            "imul {r32}",
            "mul {r8}",
            "imul {r8}",
            "imul {r32}, {r32b}",
            "imul {r32}, {r32b}, {imm32}",
            "imul {r16}, {r16b}",
        ],
        SF | ZF | AF | PF,
    ),
    *_t("int", ["div {r32}", "idiv {r32}", "div {r8}", "idiv {r8}"], ARITH),
    *_t("int", ["bsf {r32}, {r32b}", "bsr {r32}, {r32b}"], CF | OF | SF | AF | PF),
    *_t(
        "int",
        [f"{op} {{r32}}, {{r32b}}" for op in ("bt", "bts", "btr", "btc")]
        + [f"{op} {{r32}}, {{imm8}}" for op in ("bt", "bts", "btr", "btc")],
        OF | SF | AF | PF,
    ),
    # Shifts and rotates: AF (and OF unless the count is 1) undefined;
    # the masks below are for counts that may be anything.
    *_t(
        "int",
        [f"{op} {{r32}}, {c}" for op in ("shl", "shr", "sar") for c in ("cl", "{imm8}")],
        AF | OF,
    ),
    *_t(
        "int",
        [f"{op} {{r32}}, {c}" for op in ("rol", "ror", "rcl", "rcr") for c in ("cl", "{imm8}")],
        OF,
    ),
    *_t(
        "int",
        [f"{op} {{r32}}, {{r32b}}, {c}" for op in ("shld", "shrd") for c in ("cl", "{imm8}")],
        ARITH,
    ),
    *_t("int", ["daa", "das"], OF),
    *_t("int", ["aaa", "aas"], OF | SF | ZF | PF),
    *_t("int", ["aam {imm8nz}", "aad {imm8}"], CF | OF | AF),
    *_t("bmi", ["popcnt {r32}, {r32b}"]),
    *_t("bmi", ["lzcnt {r32}, {r32b}", "tzcnt {r32}, {r32b}"], OF | SF | AF | PF),
    *_t("bmi", ["andn {r32}, {r32b}, {r32c}"], AF | PF),
    *_t("bmi", ["bextr {r32}, {r32b}, {r32c}"], AF | PF | SF),  # SF undefined for BEXTR
    *_t("bmi", ["blsi {r32}, {r32b}", "blsr {r32}, {r32b}", "blsmsk {r32}, {r32b}"], AF | PF),
    *_t("bmi", ["bzhi {r32}, {r32b}, {r32c}"], AF | PF),
    *_t("bmi", [f"{op} {{r32}}, {{r32b}}, {{r32c}}" for op in ("pdep", "pext", "sarx", "shlx")]),
    *_t("bmi", ["rorx {r32}, {r32b}, {imm8}", "movbe {r32}, " + MEM32, "crc32 {r32}, {r32b}"]),
    *_t("bmi", ["adcx {r32}, {r32b}", "adox {r32}, {r32b}"]),
    *_t(
        "x87",
        [
            f"{op} st(0), st({{st}})"
            for op in ("fadd", "fsub", "fsubr", "fmul", "fdiv", "fdivr", "fxch")
        ]
        + [f"{op} st({{st}}), st(0)" for op in ("faddp", "fmulp", "fsubp", "fdivp")]
        + [
            "fsqrt",
            "fabs",
            "fchs",
            "frndint",
            "fscale",
            "fxtract",
            "fprem",
            "fprem1",
            "ftst",
            "fxam",
            "fld1",
            "fldz",
            "fldpi",
            "fldl2e",
            "fsin",
            "fcos",
            "fptan",
            "fpatan",
            "f2xm1",
            "fyl2x",
            "fincstp",
            "fdecstp",
            "fld st({st})",
            "fst st({st})",
            "fstp st({st})",
            "ffree st({st})",
            f"fld {MEM32}",
            f"fst {MEM32}",
            f"fist {MEM32}",
            f"fistp {MEM64}",
            f"fisttp {MEM32}",
            f"fild {MEM32}",
            "fucom st({st})",
            "fcom st({st})",
            "fcomp st({st})",
            "fcompp",
            "fucompp",
            "fldl2t",
            "fldlg2",
            "fldln2",
            "fsincos",
            "fyl2xp1",
            f"fld {MEM64}",
            f"fld {MEM80}",
            f"fst {MEM64}",
            f"fstp {MEM80}",
            f"fist {MEM16}",
            f"fisttp {MEM64}",
            f"fild {MEM16}",
            f"fild {MEM64}",
            f"fiadd {MEM32}",
            f"ficom {MEM16}",
        ]
        # memory operands: single and double precision, FSUBR/FDIVR reversed
        + [
            f"{op} {mem}"
            for op in ("fadd", "fsub", "fsubr", "fmul", "fdiv", "fdivr", "fcom", "fcomp")
            for mem in (MEM32, MEM64)
        ],
    ),
    *_t("x87", ["fcomi st(0), st({st})", "fucomi st(0), st({st})"], AF | SF | OF),
    *_t("x87", [f"{op} st(0), st({{st}})" for op in ("fcmovb", "fcmove", "fcmovnbe", "fcmovu")]),
    *_t(
        "mmx",
        [
            f"{op} {{mm}}, {{mmb}}"
            for op in (
                "paddb",
                "paddsw",
                "paddusb",
                "psubw",
                "pmullw",
                "pmulhw",
                "pmaddwd",
                "pand",
                "pandn",
                "pxor",
                "pcmpeqb",
                "pcmpgtw",
                "packsswb",
                "packuswb",
                "punpcklbw",
                "punpckhdq",
                "psllw",
                "psrad",
                "psrlq",
                "movq",
            )
        ]
        + ["psllw {mm}, {imm8}", "psrad {mm}, {imm8}", "movd {r32}, {mm}", "movd {mm}, {r32}"],
    ),
    *_t(
        "sse",
        [
            f"{op} {{xmm}}, {{xmmb}}"
            for op in (
                "addps",
                "subps",
                "mulps",
                "divps",
                "sqrtps",
                "minps",
                "maxps",
                "addss",
                "mulss",
                "divss",
                "sqrtss",
                "minss",
                "maxss",
                "andps",
                "orps",
                "xorps",
                "unpcklps",
                "movhlps",
                "movlhps",
                "rcpps",
                "rsqrtps",
            )
        ]
        + [f"cmpps {{xmm}}, {{xmmb}}, {p}" for p in range(8)]
        + ["shufps {xmm}, {xmmb}, {imm8}", "cvtsi2ss {xmm}, {r32}", "cvttss2si {r32}, {xmm}"]
        + ["cvtss2si {r32}, {xmm}", "movmskps {r32}, {xmm}", f"movups {MEM128}, {{xmm}}"],
    ),
    *_t("sse", ["comiss {xmm}, {xmmb}", "ucomiss {xmm}, {xmmb}"], AF | SF | OF),
    *_t(
        "sse2",
        [
            f"{op} {{xmm}}, {{xmmb}}"
            for op in (
                "addpd",
                "mulpd",
                "divpd",
                "sqrtpd",
                "minpd",
                "maxsd",
                "cvtps2pd",
                "cvtpd2ps",
                "cvtdq2ps",
                "cvtps2dq",
                "cvttps2dq",
                "cvtpd2dq",
                "paddq",
                "pmuludq",
                "psubusw",
                "pavgb",
                "psadbw",
                "pmaxsw",
                "pminub",
                "pcmpeqd",
                "punpcklqdq",
                "packssdw",
                "pmulhuw",
            )
        ]
        + ["pshufd {xmm}, {xmmb}, {imm8}", "psrldq {xmm}, {imm8}", "pslldq {xmm}, {imm8}"]
        + ["pextrw {r32}, {xmm}, {imm8}", "pinsrw {xmm}, {r32}, {imm8}", "pmovmskb {r32}, {xmm}"]
        + ["cvttsd2si {r32}, {xmm}", "cvtsd2si {r32}, {xmm}", "cvtsi2sd {xmm}, {r32}"],
    ),
    *_t(
        "sse3",
        [
            f"{op} {{xmm}}, {{xmmb}}"
            for op in ("addsubps", "addsubpd", "haddps", "hsubpd", "movshdup", "movddup")
        ],
    ),
    *_t(
        "ssse3",
        [
            f"{op} {{xmm}}, {{xmmb}}"
            for op in (
                "pabsb",
                "pabsd",
                "pshufb",
                "phaddw",
                "phaddsw",
                "phsubd",
                "pmaddubsw",
                "pmulhrsw",
                "psignb",
                "psignd",
            )
        ]
        + ["palignr {xmm}, {xmmb}, {imm8}", "pabsw {mm}, {mmb}", "pshufb {mm}, {mmb}"],
    ),
    *_t(
        "sse4.1",
        [
            f"{op} {{xmm}}, {{xmmb}}"
            for op in (
                "pminsd",
                "pmaxud",
                "pmulld",
                "pmuldq",
                "pcmpeqq",
                "packusdw",
                "pmovzxbw",
                "pmovsxwd",
                "phminposuw",
            )
        ]
        + [
            f"{op} {{xmm}}, {{xmmb}}, {{imm8}}"
            for op in ("blendps", "blendpd", "pblendw", "dpps", "dppd", "mpsadbw")
        ]
        + [
            f"{op} {{xmm}}, {{xmmb}}, {{imm4}}"
            for op in ("roundps", "roundpd", "roundss", "roundsd")
        ]
        + ["insertps {xmm}, {xmmb}, {imm8}", "pextrd {r32}, {xmm}, {imm2}"]
        + ["pinsrb {xmm}, {r32}, {imm4}", "extractps {r32}, {xmm}, {imm2}"],
    ),
    *_t("sse4.1", ["ptest {xmm}, {xmmb}"], AF | SF | OF | PF),
    *_t("sse4.2", ["pcmpgtq {xmm}, {xmmb}", "crc32 {r32}, {r8}"]),
    *_t(
        "sse4.2",
        [
            f"{op} {{xmm}}, {{xmmb}}, {{imm8}}"
            for op in ("pcmpistri", "pcmpistrm", "pcmpestri", "pcmpestrm")
        ],
        AF | PF,
    ),
    *_t(
        "aes",
        [f"{op} {{xmm}}, {{xmmb}}" for op in ("aesenc", "aesenclast", "aesdec", "aesdeclast")]
        + ["aesimc {xmm}, {xmmb}", "aeskeygenassist {xmm}, {xmmb}, {imm8}"]
        + ["pclmulqdq {xmm}, {xmmb}, {imm8}"],
    ),
]

CLASSES = sorted({t.klass for t in TEMPLATES})

# -- random values --------------------------------------------------------------

_F32_EDGE = (
    0x00000000,
    0x80000000,
    0x3F800000,
    0xBF800000,
    0x7F800000,
    0xFF800000,
    0x7FC00000,
    0xFFC00000,
    0x7FA00000,  # a signalling NaN
    0xFFF00000,
    0x00000001,  # the smallest denormal
    0x807FFFFF,
    0x7F7FFFFF,
    0x4F000000,  # 2^31: conversions overflow
    0xCF000000,
)
_F64_EDGE = (
    0x0000000000000000,
    0x8000000000000000,
    0x3FF0000000000000,
    0x7FF0000000000000,
    0xFFF0000000000000,
    0x7FF8000000000000,
    0xFFF8000000000000,
    0x7FF4000000000000,
    0x0000000000000001,
    0x41E0000000000000,  # 2^31
    0xC1E0000000000000,
)
_INT_EDGE = (0, 1, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 0xFF, 0x80, 0x7F, 0xFFFF, 0x8000, 31, 32)


def _u32(rng: random.Random) -> int:
    pick = rng.random()
    if pick < 0.3:
        return rng.choice(_INT_EDGE)
    if pick < 0.45:
        return rng.choice(_F32_EDGE)
    if pick < 0.6:
        return rng.getrandbits(8) * rng.choice((1, 0x01010101, 0x00010001))
    return rng.getrandbits(32)


def _vector(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.35:
        return b"".join(
            struct.pack("<I", rng.choice((*_F32_EDGE, rng.getrandbits(32)))) for _ in range(4)
        )
    if kind < 0.6:
        return b"".join(
            struct.pack("<Q", rng.choice((*_F64_EDGE, rng.getrandbits(64)))) for _ in range(2)
        )
    return b"".join(struct.pack("<I", _u32(rng)) for _ in range(4))


def _st(rng: random.Random) -> bytes:
    """An 80-bit x87 register: edge values and random normals."""
    kind = rng.randrange(10)
    sign = rng.getrandbits(1) << 15
    if kind == 0:
        return struct.pack("<QH", 0, sign)  # zero
    if kind == 1:
        return struct.pack("<QH", 1 << 63, sign | 0x7FFF)  # infinity
    if kind == 2:
        return struct.pack("<QH", 0xC000000000000000, sign | 0x7FFF)  # quiet NaN
    if kind == 3:
        return struct.pack("<QH", 0xA000000000000000, sign | 0x7FFF)  # signalling NaN
    if kind == 4:
        return struct.pack("<QH", rng.getrandbits(62), sign)  # denormal
    exponent = rng.choice((0x3FFF, 0x3FFE, 0x401D, 0x403E, rng.randrange(1, 0x7FFF)))
    return struct.pack("<QH", (1 << 63) | rng.getrandbits(63), sign | exponent)


def random_state(rng: random.Random) -> bytes:
    """IN_SIZE bytes: an FXSAVE image, the general registers, EFLAGS, memory."""
    rc = rng.randrange(4)
    pc = rng.choice((0, 2, 3))
    fcw = 0x3F | (pc << 8) | (rc << 10) | 0x40
    top = rng.randrange(8)
    tags = rng.getrandbits(8)
    fsw = top << 11
    mxcsr = (
        0x1F80 | (rng.randrange(4) << 13) | (rng.getrandbits(1) << 15) | (rng.getrandbits(1) << 6)
    )
    fx = bytearray(512)
    struct.pack_into("<HHBxH", fx, 0, fcw, fsw, tags, 0)
    struct.pack_into("<II", fx, 24, mxcsr, 0xFFFF)
    for i in range(8):
        fx[32 + 16 * i : 32 + 16 * i + 10] = _st(rng)
    for i in range(8):
        fx[160 + 16 * i : 176 + 16 * i] = _vector(rng)
    gprs = [_u32(rng) for _ in GPRS]
    flags = 0x202 | (rng.getrandbits(16) & ARITH)
    mem = b"".join(_vector(rng) for _ in range(16))
    state = bytes(fx) + struct.pack("<8I", *gprs) + struct.pack("<I", flags) + bytes(0xDC) + mem
    assert len(state) == IN_SIZE
    return state


def instantiate(template: Template, rng: random.Random) -> str:
    """The template's text with its slots filled."""
    r32 = rng.sample(R32, 3)
    r8 = rng.sample(R8, 2)
    r16 = rng.sample(R16, 2)
    mm = rng.sample(MM, 2)
    xmm = rng.sample(XMM, 2)
    return template.text.format(
        r32=r32[0],
        r32b=r32[1],
        r32c=r32[2],
        r8=r8[0],
        r8b=r8[1],
        r16=r16[0],
        r16b=r16[1],
        mm=mm[0],
        mmb=mm[1],
        xmm=xmm[0],
        xmmb=xmm[1],
        st=rng.randrange(8),
        imm8=rng.choice((0, 1, 7, 8, 15, 16, 31, 32, 63, rng.randrange(256))),
        imm8nz=rng.randrange(1, 256),
        imm4=rng.randrange(16),
        imm2=rng.randrange(4),
        imm32=hex(_u32(rng)),
    )


# -- the blob -------------------------------------------------------------------


def _blob_source(label: str, insn: str) -> str:
    save = "\n".join(
        f"    mov [{SAVE + 4 * i:#x}], {r}"
        for i, r in enumerate(("ebx", "esi", "edi", "ebp", "esp"))
    )
    load = "\n".join(
        f"    mov {r}, [{IN_GPR + 4 * i:#x}]" for i, r in enumerate(GPRS) if r != "esp"
    )
    store = "\n".join(
        f"    mov [{OUT_GPR + 4 * i:#x}], {r}" for i, r in enumerate(GPRS) if r != "esp"
    )
    restore = "\n".join(
        f"    mov {r}, [{SAVE + 4 * i:#x}]"
        for i, r in enumerate(("ebx", "esi", "edi", "ebp", "esp"))
    )
    return f"""
{label}_start:
{save}
    fxrstor [{IN_FX:#x}]
    push dword ptr [{IN_FLAGS:#x}]
    popfd
{load}
{label}_insn:
    {insn}
{label}_after:
{store}
    pushfd
    pop dword ptr [{OUT_FLAGS:#x}]
    fxsave [{OUT_FX:#x}]
    cld
    mov esi, {IN_MEM:#x}
    mov edi, {OUT_MEM:#x}
    mov ecx, 64
    rep movsd
    fninit
    ldmxcsr [{DEFAULT_MXCSR:#x}]
    emms
{restore}
    ret
{label}_end:
"""


@dataclass(frozen=True)
class Case:
    template: Template
    insn: str
    blob: bytes
    state: bytes
    #: Where the instruction's state is complete (the epilogue's start),
    #: as an offset in the blob: where gdb's view is read.
    after: int = 0


Blob = tuple[bytes, int]


def assemble(items: Sequence[tuple[Template, str]], work: Path) -> list[Blob | None]:
    """The blob of each instruction and its epilogue's offset (None: the
    assembler refused it)."""
    # One file for all (one assembler run); if the assembler refuses one,
    # each is assembled on its own.
    source = [".intel_syntax noprefix", ".text"]
    for i, (_t, insn) in enumerate(items):
        source.append(_blob_source(f"c{i}", insn))
    blobs = _assemble_text("\n".join(source), work, len(items))
    if blobs is not None:
        return list(blobs)
    out: list[Blob | None] = []
    for _t, insn in items:
        one = _assemble_text(
            "\n".join([".intel_syntax noprefix", ".text", _blob_source("c0", insn)]), work, 1
        )
        out.append(one[0] if one else None)
    return out


def _assemble_text(text: str, work: Path, count: int) -> list[Blob] | None:
    src, obj = work / "cases.s", work / "cases.o"
    src.write_text(text + "\n")
    done = subprocess.run(
        ["gcc", "-m32", "-c", "-o", str(obj), str(src)], capture_output=True, check=False
    )
    if done.returncode != 0:
        return None
    from elftools.elf.elffile import ELFFile

    with open(obj, "rb") as f:
        elf = ELFFile(f)
        text_data = elf.get_section_by_name(".text").data()  # type: ignore[union-attr]
        symtab = elf.get_section_by_name(".symtab")
        syms = {s.name: s["st_value"] for s in symtab.iter_symbols()}  # type: ignore[union-attr]
    return [
        (
            text_data[syms[f"c{i}_start"] : syms[f"c{i}_end"]],
            syms[f"c{i}_after"] - syms[f"c{i}_start"],
        )
        for i in range(count)
    ]


# -- running ----------------------------------------------------------------------


def build_native(work: Path) -> Path:
    exe = work / "difftest_native"
    subprocess.run(
        ["gcc", "-m32", "-O1", "-o", str(exe), str(ROOT / "tools" / "difftest_native.c")],
        check=True,
    )
    return exe


def run_native(exe: Path, cases: Sequence[Case]) -> list[tuple[int, bytes]]:
    data = b"".join(struct.pack("<I", len(c.blob)) + c.blob + c.state for c in cases)
    done = subprocess.run([str(exe)], input=data, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"difftest_native failed: {done.stderr.decode(errors='replace')}")
    out = done.stdout
    size = 4 + OUT_SIZE
    if len(out) != size * len(cases):
        raise RuntimeError("difftest_native: short output")
    return [
        (struct.unpack_from("<i", out, k * size)[0], out[k * size + 4 : (k + 1) * size])
        for k in range(len(cases))
    ]


class Emulated:
    """rrdbg's Linux machine, reused for every case: the blob and state are
    written into pages mapped for the test, and the CPU runs it from its
    start to the sentinel return address."""

    def __init__(self, model: str = "qemu64") -> None:
        from rrdbg.machine.host import SeededHost
        from rrdbg.machine.machine import LinuxMachine
        from rrdbg.machine.memory import PROT_EXEC, PROT_READ, PROT_WRITE

        hello = str(ROOT / "tests" / "guests" / "bin" / "hello")
        self.m = LinuxMachine(hello, ["hello"], SeededHost(), cpu_model=model)
        mem = self.m.memory
        mem.map(CODE, 0x10000, PROT_READ | PROT_WRITE | PROT_EXEC, "difftest code")
        mem.map(DATA, 0x4000, PROT_READ | PROT_WRITE, "difftest data")

    def run(self, case: Case) -> Emulation:
        """The signal (0: none), the output state, and the registers as gdb
        reads them from rrdbg just after the instruction."""
        from unicorn import x86_const as x86

        from rrdbg.machine.cpu import StopReason
        from rrdbg.machine.registers import read_registers

        m = self.m
        mem = m.memory
        mem.load_raw(CODE, case.blob)
        mem.load_raw(DATA, case.state + bytes(OUT_SIZE))
        mem.load_raw(DEFAULT_MXCSR, struct.pack("<I", 0x1F80))
        mem.load_raw(STACK_TOP, struct.pack("<I", SENTINEL))
        m.cpu.invalidate_code(CODE, CODE + len(case.blob))  # (new code at the same place)
        m.engine.reg_write(x86.UC_X86_REG_ESP, STACK_TOP)
        m.cpu.eip = CODE
        view: dict[str, bytes] = {}
        for exit_at in (CODE + case.after, SENTINEL):
            m.cpu.set_exit_addresses({exit_at})
            stop = m.cpu.run(m.cpu.counter.total + 10_000)
            if stop.reason is StopReason.FAULT and stop.fault is not None:
                # (No handler runs it: clear the exception in progress, or
                # the next one would be a double fault; Cpu.forget_exception.)
                m.cpu.forget_exception()
                return stop.fault.signal, bytes(OUT_SIZE), {}
            if stop.reason is not StopReason.EXIT or m.cpu.eip != exit_at:
                raise RuntimeError(f"{case.insn}: the emulated run stopped with {stop.reason}")
            view = view or read_registers(m.engine)
        return 0, mem.read(OUT, OUT_SIZE), view


# -- comparing --------------------------------------------------------------------


Emulation = tuple[int, bytes, dict[str, bytes]]
#: Registers gdb shows that the comparison of gdb's view covers (the x87
#: instruction and operand pointers are the emulator's business: not yet).
GDB_COMPARED = (
    *(r for r in GPRS if r != "esp"),
    "eflags",
    "fctrl",
    "fstat",
    "ftag",
    *(f"st{i}" for i in range(8)),
    *(f"xmm{i}" for i in range(8)),
    "mxcsr",
)


def gdb_view(out: bytes) -> dict[str, bytes]:
    """The registers gdb would show for an output state, as Linux's ptrace
    gives them: the full x87 tag word rebuilt from FXSAVE's abridged one
    and the registers' contents."""
    fx = out[:512]
    fcw, fsw, abridged = struct.unpack_from("<HHB", fx, 0)
    top = (fsw >> 11) & 7
    tag = 0
    for phys in range(8):
        slot = (phys - top) & 7  # (FXSAVE keeps ST(i) order)
        mant, exp = struct.unpack_from("<QH", fx, 32 + 16 * slot)
        exp &= 0x7FFF
        if not abridged >> phys & 1:
            t = 3
        elif exp == 0x7FFF:
            t = 2
        elif exp == 0:
            t = 1 if mant == 0 else 2
        else:
            t = 0 if mant >> 63 else 2
        tag |= t << (2 * phys)
    view = {
        name: value.to_bytes(4, "little")
        for name, value in zip(GPRS, struct.unpack_from("<8I", out, 0x200), strict=True)
    }
    view["eflags"] = out[0x220:0x224]
    view["fctrl"], view["fstat"] = fcw.to_bytes(4, "little"), fsw.to_bytes(4, "little")
    view["ftag"] = tag.to_bytes(4, "little")
    for i in range(8):
        view[f"st{i}"] = fx[32 + 16 * i : 42 + 16 * i]
        view[f"xmm{i}"] = fx[160 + 16 * i : 176 + 16 * i]
    view["mxcsr"] = fx[24:28]
    return view


#: Instructions whose result the architecture defines only to within a bound:
#: RCP and RSQRT give 12-bit approximations (relative error at most
#: 1.5 * 2^-12, Intel SDM), and each vendor and generation has its own.
#: rrdbg's are exact (rounded to nearest), so a lane matches if the host's
#: value is within the bound of rrdbg's; zeros, infinities and NaNs must be
#: the same bits.
APPROXIMATE = frozenset({"rcpps", "rcpss", "rsqrtps", "rsqrtss"})
APPROXIMATION_BOUND = 1.5 * 2.0**-12


def within_approximation(native: bytes, emulated: bytes) -> bool:
    """Whether every single-precision lane of the host's result is within
    the architectural bound of rrdbg's (both 16-byte registers)."""
    for k in range(0, 16, 4):
        if native[k : k + 4] == emulated[k : k + 4]:
            continue
        ((n,), (e,)) = (
            struct.unpack("<f", native[k : k + 4]),
            struct.unpack("<f", emulated[k : k + 4]),
        )
        if not (math.isfinite(n) and math.isfinite(e)) or e == 0.0:
            return False
        if abs(n - e) > APPROXIMATION_BOUND * abs(e) * (1 + 2.0**-20):
            return False
    return True


def differences(case: Case, native: tuple[int, bytes], emulated: Emulation) -> list[str]:
    """What differs, by register name (empty: the same).  Where the CPU's
    state is the same, gdb's view of it from rrdbg is compared too."""
    sig_n, out_n = native
    sig_e, out_e, view_e = emulated
    if sig_n or sig_e:
        return [] if sig_n == sig_e else [f"signal {sig_n} natively, {sig_e} emulated"]
    diffs: list[str] = []
    fx_n, fx_e = out_n[:512], out_e[:512]
    fields = {
        "fcw": (0, 2),
        "fsw": (2, 2),
        "ftw(abridged)": (4, 1),
        "mxcsr": (24, 4),
    }
    for name, (off, size) in fields.items():
        if fx_n[off : off + size] != fx_e[off : off + size]:
            a, b = fx_n[off : off + size][::-1], fx_e[off : off + size][::-1]
            diffs.append(f"{name} {a.hex()} != {b.hex()}")
    for i in range(8):
        a, b = fx_n[32 + 16 * i : 42 + 16 * i], fx_e[32 + 16 * i : 42 + 16 * i]
        if a != b:
            diffs.append(f"st/mm{i} {a[::-1].hex()} != {b[::-1].hex()}")
    approximate = case.insn.split()[0] in APPROXIMATE
    for i in range(8):
        a, b = fx_n[160 + 16 * i : 176 + 16 * i], fx_e[160 + 16 * i : 176 + 16 * i]
        if a != b and not (approximate and within_approximation(a, b)):
            diffs.append(f"xmm{i} {a[::-1].hex()} != {b[::-1].hex()}")
    gpr_n = struct.unpack_from("<8I", out_n, 0x200)
    gpr_e = struct.unpack_from("<8I", out_e, 0x200)
    for name, a, b in zip(GPRS, gpr_n, gpr_e, strict=True):
        if name != "esp" and a != b:
            diffs.append(f"{name} {a:08x} != {b:08x}")
    mask = ~case.template.undefined & 0xFFFFFFFF
    f_n = struct.unpack_from("<I", out_n, 0x220)[0] & mask
    f_e = struct.unpack_from("<I", out_e, 0x220)[0] & mask
    if f_n != f_e:
        diffs.append(f"eflags {f_n:08x} != {f_e:08x} (undefined bits masked)")
    if out_n[0x300:0x400] != out_e[0x300:0x400]:
        first = next(i for i in range(0x100) if out_n[0x300 + i] != out_e[0x300 + i])
        last = max(i for i in range(0x100) if out_n[0x300 + i] != out_e[0x300 + i])
        a, b = out_n[0x300 + first : 0x301 + last], out_e[0x300 + first : 0x301 + last]
        diffs.append(f"memory at {IN_MEM + first:#x}: {a.hex()} != {b.hex()}")
    if not diffs:
        view_n = gdb_view(out_n)
        for name in GDB_COMPARED:
            a, b = view_n[name], view_e[name]
            if name == "eflags":
                a, b = ((int.from_bytes(x, "little") & mask).to_bytes(4, "little") for x in (a, b))
            if a != b and not (
                approximate and name.startswith("xmm") and within_approximation(a, b)
            ):
                diffs.append(f"gdb's {name} {a[::-1].hex()} != {b[::-1].hex()}")
    return diffs


def make_cases(
    classes: Sequence[str], count: int, seed: int, work: Path, insn: str | None = None
) -> list[Case]:
    """``count`` cases of the templates of ``classes`` (or of one instruction
    ``insn``, its flags all compared), from random ``seed``."""
    rng = random.Random(seed)
    pool = [Template("custom", insn)] if insn else [t for t in TEMPLATES if t.klass in classes]
    items = [(t, instantiate(t, rng)) for t in (rng.choice(pool) for _ in range(count))]
    blobs = assemble(items, work)
    return [
        Case(t, insn, blob[0], random_state(rng), blob[1])
        for (t, insn), blob in zip(items, blobs, strict=True)
        if blob is not None
    ]


#: Differences that stay, by mnemonic, with the reason (docs/machine.md):
#: they are counted apart and do not fail a run.
_HOST_DOUBLE = (
    "rrdbg's Unicorn, like QEMU 5.0, computes it through the host's double precision "
    "(53-bit significands, not 64, and double's exponent range): its value differs in "
    "the last bits, or wholly outside double's range or for an operand it should "
    "refuse, and so do its flags; its stack faults match"
)
KNOWN: dict[str, str] = dict.fromkeys(
    (
        "f2xm1", "fyl2x", "fyl2xp1", "fpatan", "fptan", "fsin", "fcos", "fsincos",
    ),
    _HOST_DOUBLE,
)  # fmt: skip


#: FSW bits a KNOWN instruction may leave differently: the exception flags
#: (IE, DE, ZE, OE, UE, PE), ES and B, and the condition codes C0-C3; not
#: TOP or SF (its stack faults must match).
KNOWN_FSW_BITS = 0x4700 | 0x3F | 0x80 | 0x8000
PARTIAL_REMAINDER = (
    "FPREM's partial step (exponents 64 or more apart) leaves them 32 to 63 "
    "apart, an implementation-dependent choice; rrdbg follows AMD"
)


def documented(case: Case, diffs: Sequence[str], native: tuple[int, bytes]) -> str | None:
    """The documented reason for a mismatch (None: unexplained).  A KNOWN
    instruction may differ only in ST0-7's values and KNOWN_FSW_BITS."""
    mnemonic = case.insn.split()[0]
    sig, out = native
    if mnemonic in ("fprem", "fprem1") and not sig and struct.unpack_from("<H", out, 2)[0] & 0x400:
        return PARTIAL_REMAINDER
    if mnemonic not in KNOWN:
        return None
    for diff in diffs:
        fsw = re.fullmatch(r"fsw ([0-9a-f]{4}) != ([0-9a-f]{4})", diff)
        if diff.startswith("st/mm"):
            continue
        if fsw and not (int(fsw[1], 16) ^ int(fsw[2], 16)) & ~KNOWN_FSW_BITS:
            continue
        return None
    return KNOWN[mnemonic]


#: A mismatch: the case, what differs, and the documented reason if any.
Mismatch = tuple[Case, list[str], str | None]


def compare(
    cases: Sequence[Case], work: Path, model: str = "qemu64"
) -> dict[tuple[str, str], list[Mismatch]]:
    """Mismatches by (class, mnemonic), the emulated CPU being ``model``."""
    native = run_native(build_native(work), cases)
    emulated = Emulated(model)
    found: dict[tuple[str, str], list[Mismatch]] = collections.defaultdict(list)
    for case, nat in zip(cases, native, strict=True):
        diffs = differences(case, nat, emulated.run(case))
        if diffs:
            key = (case.template.klass, case.insn.split()[0])
            found[key].append((case, diffs, documented(case, diffs, nat)))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--class", dest="classes", action="append", choices=CLASSES)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--insn", help="one instruction (Intel syntax) instead of the classes")
    from rrdbg.machine.engine import CPU_MODEL_NAME

    parser.add_argument(
        "--cpu",
        default=CPU_MODEL_NAME,
        help="the emulated CPU model (rrdbg --cpu; rrdbg's default)",
    )
    ns = parser.parse_args()
    if shutil.which("gcc") is None:
        print("difftest: gcc (with -m32) is needed", file=sys.stderr)
        return 2
    classes = ["custom"] if ns.insn else ns.classes or CLASSES
    with tempfile.TemporaryDirectory(prefix="rrdbg-difftest-") as tmp:
        work = Path(tmp)
        cases = make_cases(classes, ns.count, ns.seed, work, ns.insn)
        if not cases:
            print("difftest: the assembler refused every case", file=sys.stderr)
            return 2
        found = compare(cases, work, ns.cpu)
    per_class = collections.Counter(c.template.klass for c in cases)
    bad_class = collections.Counter(k for (k, _m), v in found.items() for m in v if m[2] is None)
    doc_class = collections.Counter(k for (k, _m), v in found.items() for m in v if m[2])
    print(f"{len(cases)} cases (seed {ns.seed}, CPU model {ns.cpu}); mismatches by class:")
    for klass in classes:
        known = f"  (+{doc_class[klass]} documented)" if doc_class[klass] else ""
        print(f"  {klass:<8} {bad_class[klass]:>6} of {per_class[klass]}{known}")
    rows = []
    for (klass, mnemonic), items in found.items():
        for doc in (False, True):
            group = [m for m in items if bool(m[2]) == doc]
            if group:
                rows.append((klass, f"{mnemonic} (doc)" if doc else mnemonic, group))
    for klass, label, group in sorted(rows, key=lambda r: -len(r[2])):
        case, diffs, _reason = group[0]
        print(f"{klass:<8} {label:<12} {len(group):>5}  e.g. {case.insn}: " + "; ".join(diffs[:3]))
    for reason in sorted({m[2] for v in found.values() for m in v if m[2]}):
        print(f"(doc): {reason}")
    return 1 if bad_class else 0


if __name__ == "__main__":
    raise SystemExit(main())
