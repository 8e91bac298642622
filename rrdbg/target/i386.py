"""The i386 register file as gdb 13 numbers it, and the target description that says so.

Role: one table (``_FEATURES``) from which the register numbers and sizes used by
``g``/``G``/``p``/``P`` *and* the ``target.xml`` served through
``qXfer:features:read`` are both derived, so the two cannot disagree.

Layout (gdb's own i386 numbering; tests/target/test_i386.py checks it against gdb):

======  =========================================================  ==========
number  registers                                                  size
======  =========================================================  ==========
0-15    eax ecx edx ebx esp ebp esi edi eip eflags cs ss ds es fs gs  4 bytes
16-23   st0-st7 (i387 80-bit extended)                             10 bytes
24-31   fctrl fstat ftag fiseg fioff foseg fooff fop               4 bytes
32-39   xmm0-xmm7                                                  16 bytes
40      mxcsr                                                      4 bytes
41      orig_eax (org.gnu.gdb.i386.linux)                          4 bytes
======  =========================================================  ==========

``orig_eax`` is included because gdb's GNU/Linux i386 ABI stops initialising
(no signal-frame unwinder, no syscall support) when a target description lacks
the ``org.gnu.gdb.i386.linux`` feature, and every guest rrdbg runs is a Linux
program.

Invariants: ``REGISTERS[n].number == n``; every value is little-endian.
Must not import Unicorn or anything from rrdbg.machine: this module is pure data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from rrdbg.errors import LocalProtocolError, RemoteProtocolError


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """One raw register: its gdb name, gdb register number and size in bytes."""

    name: str
    number: int
    size: int


@dataclass(frozen=True, slots=True)
class _XmlRegister:
    name: str
    bits: int
    type: str
    group: str | None = None


def _gprs() -> tuple[_XmlRegister, ...]:
    types = {"esp": "data_ptr", "ebp": "data_ptr", "eip": "code_ptr", "eflags": "i386_eflags"}
    names = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip", "eflags")
    segments = ("cs", "ss", "ds", "es", "fs", "gs")
    return (
        *(_XmlRegister(n, 32, types.get(n, "int32")) for n in names),
        *(_XmlRegister(n, 32, "int32") for n in segments),
    )


def _fpu() -> tuple[_XmlRegister, ...]:
    control = ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")
    return (
        *(_XmlRegister(f"st{i}", 80, "i387_ext") for i in range(8)),
        *(_XmlRegister(n, 32, "int", "float") for n in control),
    )


# (feature name, registers in number order).  The feature names are the ones
# gdb's i386 architecture looks up; their order fixes the register numbers.
_FEATURES: Final[tuple[tuple[str, tuple[_XmlRegister, ...]], ...]] = (
    ("org.gnu.gdb.i386.core", _gprs() + _fpu()),
    (
        "org.gnu.gdb.i386.sse",
        (
            *(_XmlRegister(f"xmm{i}", 128, "vec128") for i in range(8)),
            _XmlRegister("mxcsr", 32, "i386_mxcsr", "vector"),
        ),
    ),
    ("org.gnu.gdb.i386.linux", (_XmlRegister("orig_eax", 32, "int"),)),
)

REGISTERS: Final[tuple[RegisterSpec, ...]] = tuple(
    RegisterSpec(reg.name, number, reg.bits // 8)
    for number, reg in enumerate(reg for _, regs in _FEATURES for reg in regs)
)
REGISTER_BY_NAME: Final[Mapping[str, RegisterSpec]] = MappingProxyType(
    {spec.name: spec for spec in REGISTERS}
)
#: Bytes in a ``g`` reply / ``G`` request (before hex encoding).
REGISTERS_SIZE: Final[int] = sum(spec.size for spec in REGISTERS)

# Types each feature needs, written once.  The flags mirror the bits gdb's own
# i386 features name, so ``info registers eflags`` prints ``[ ZF PF ]`` etc.
_CORE_TYPES = """\
    <flags id="i386_eflags" size="4">
      <field name="CF" start="0" end="0"/>
      <field name="" start="1" end="1"/>
      <field name="PF" start="2" end="2"/>
      <field name="AF" start="4" end="4"/>
      <field name="ZF" start="6" end="6"/>
      <field name="SF" start="7" end="7"/>
      <field name="TF" start="8" end="8"/>
      <field name="IF" start="9" end="9"/>
      <field name="DF" start="10" end="10"/>
      <field name="OF" start="11" end="11"/>
      <field name="NT" start="14" end="14"/>
      <field name="RF" start="16" end="16"/>
      <field name="VM" start="17" end="17"/>
      <field name="AC" start="18" end="18"/>
      <field name="VIF" start="19" end="19"/>
      <field name="VIP" start="20" end="20"/>
      <field name="ID" start="21" end="21"/>
    </flags>
"""
_SSE_TYPES = """\
    <vector id="v8bf16" type="bfloat16" count="8"/>
    <vector id="v4f" type="ieee_single" count="4"/>
    <vector id="v2d" type="ieee_double" count="2"/>
    <vector id="v16i8" type="int8" count="16"/>
    <vector id="v8i16" type="int16" count="8"/>
    <vector id="v4i32" type="int32" count="4"/>
    <vector id="v2i64" type="int64" count="2"/>
    <union id="vec128">
      <field name="v8_bfloat16" type="v8bf16"/>
      <field name="v4_float" type="v4f"/>
      <field name="v2_double" type="v2d"/>
      <field name="v16_int8" type="v16i8"/>
      <field name="v8_int16" type="v8i16"/>
      <field name="v4_int32" type="v4i32"/>
      <field name="v2_int64" type="v2i64"/>
      <field name="uint128" type="uint128"/>
    </union>
    <flags id="i386_mxcsr" size="4">
      <field name="IE" start="0" end="0"/>
      <field name="DE" start="1" end="1"/>
      <field name="ZE" start="2" end="2"/>
      <field name="OE" start="3" end="3"/>
      <field name="UE" start="4" end="4"/>
      <field name="PE" start="5" end="5"/>
      <field name="DAZ" start="6" end="6"/>
      <field name="IM" start="7" end="7"/>
      <field name="DM" start="8" end="8"/>
      <field name="ZM" start="9" end="9"/>
      <field name="OM" start="10" end="10"/>
      <field name="UM" start="11" end="11"/>
      <field name="PM" start="12" end="12"/>
      <field name="FZ" start="15" end="15"/>
    </flags>
"""
_FEATURE_TYPES: Final[Mapping[str, str]] = {
    "org.gnu.gdb.i386.core": _CORE_TYPES,
    "org.gnu.gdb.i386.sse": _SSE_TYPES,
}


def _build_target_xml() -> bytes:
    lines = [
        '<?xml version="1.0"?>',
        '<!DOCTYPE target SYSTEM "gdb-target.dtd">',
        "<target>",
        "  <architecture>i386</architecture>",
        "  <osabi>GNU/Linux</osabi>",
    ]
    number = 0
    for feature, regs in _FEATURES:
        lines.append(f'  <feature name="{feature}">')
        types = _FEATURE_TYPES.get(feature)
        if types:
            lines.append(types.rstrip("\n"))
        for reg in regs:
            group = f' group="{reg.group}"' if reg.group else ""
            lines.append(
                f'    <reg name="{reg.name}" bitsize="{reg.bits}" type="{reg.type}"'
                f' regnum="{number}"{group}/>'
            )
            number += 1
        lines.append("  </feature>")
    lines.append("</target>")
    return ("\n".join(lines) + "\n").encode("ascii")


#: The single self-contained description served as ``target.xml``.
TARGET_XML: Final[bytes] = _build_target_xml()


def encode_registers(values: Mapping[str, bytes]) -> bytes:
    """The raw bytes of a ``g`` reply: every register in number order.

    Args:
        values: register name -> exactly ``spec.size`` little-endian bytes, for
            every register in ``REGISTERS``.

    Raises:
        LocalProtocolError: a register is missing, unknown or has the wrong size
            (the caller built the mapping wrongly).
    """
    unknown = set(values) - REGISTER_BY_NAME.keys()
    if unknown:
        raise LocalProtocolError(f"unknown i386 registers: {', '.join(sorted(unknown))}")
    out = bytearray()
    for spec in REGISTERS:
        value = values.get(spec.name)
        if value is None:
            raise LocalProtocolError(f"register {spec.name} missing from the g reply")
        if len(value) != spec.size:
            raise LocalProtocolError(f"register {spec.name} is {spec.size} bytes, got {len(value)}")
        out += value
    return bytes(out)


def decode_registers(data: bytes) -> dict[str, bytes]:
    """Split the raw bytes of a ``G`` request into register name -> value bytes.

    Raises:
        RemoteProtocolError: ``data`` is not exactly ``REGISTERS_SIZE`` bytes.
    """
    if len(data) != REGISTERS_SIZE:
        raise RemoteProtocolError(
            f"G packet carries {len(data)} register bytes, expected {REGISTERS_SIZE}"
        )
    values: dict[str, bytes] = {}
    offset = 0
    for spec in REGISTERS:
        values[spec.name] = data[offset : offset + spec.size]
        offset += spec.size
    return values
