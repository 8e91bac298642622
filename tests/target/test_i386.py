"""The i386 register layout and target.xml, checked against real gdb 13 where available."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rrdbg.errors import LocalProtocolError, RemoteProtocolError
from rrdbg.target.i386 import (
    REGISTER_BY_NAME,
    REGISTERS,
    REGISTERS_SIZE,
    TARGET_XML,
    decode_registers,
    encode_registers,
)
from tests.conftest import guest

GDB = shutil.which("gdb")
needs_gdb = pytest.mark.skipif(GDB is None, reason="gdb is not installed")


def sample_values() -> dict[str, bytes]:
    return {
        spec.name: bytes((spec.number + i) & 0xFF for i in range(spec.size)) for spec in REGISTERS
    }


def test_layout() -> None:
    assert [spec.number for spec in REGISTERS] == list(range(len(REGISTERS)))
    names = [spec.name for spec in REGISTERS]
    assert names[:16] == [
        "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi",
        "eip", "eflags", "cs", "ss", "ds", "es", "fs", "gs",
    ]  # fmt: skip
    assert names[16:24] == [f"st{i}" for i in range(8)]
    assert names[24:32] == ["fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"]
    assert names[32:40] == [f"xmm{i}" for i in range(8)]
    assert names[40:] == ["mxcsr", "orig_eax"]
    assert REGISTER_BY_NAME["eip"].number == 8
    assert REGISTER_BY_NAME["st0"].size == 10
    assert REGISTER_BY_NAME["xmm7"].size == 16
    assert REGISTERS_SIZE == 16 * 4 + 8 * 10 + 8 * 4 + 8 * 16 + 4 + 4 == 312


def test_encode_decode_round_trip() -> None:
    values = sample_values()
    raw = encode_registers(values)
    assert len(raw) == REGISTERS_SIZE
    assert raw[32:36] == values["eip"]  # eip is register 8, at offset 8 * 4
    assert decode_registers(raw) == values


def test_encode_rejects_bad_mappings() -> None:
    values = sample_values()
    with pytest.raises(LocalProtocolError, match="eax"):
        encode_registers({**values, "eax": b"\x00"})
    with pytest.raises(LocalProtocolError, match="rax"):
        encode_registers({**values, "rax": b"\x00" * 8})
    del values["orig_eax"]
    with pytest.raises(LocalProtocolError, match="orig_eax"):
        encode_registers(values)


@pytest.mark.parametrize("size", [0, 64, REGISTERS_SIZE - 1, REGISTERS_SIZE + 1])
def test_decode_rejects_wrong_length(size: int) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_registers(bytes(size))


def test_xml_is_well_formed_and_matches_the_table() -> None:
    root = ET.fromstring(TARGET_XML)
    assert root.tag == "target"
    assert root.findtext("architecture") == "i386"
    features = [f.get("name") for f in root.findall("feature")]
    assert features == ["org.gnu.gdb.i386.core", "org.gnu.gdb.i386.sse", "org.gnu.gdb.i386.linux"]
    regs = root.findall("feature/reg")
    assert [
        (r.get("name"), int(r.get("regnum", -1)), int(r.get("bitsize", 0)) // 8) for r in regs
    ] == [(s.name, s.number, s.size) for s in REGISTERS]
    assert b"xi:include" not in TARGET_XML


def gdb_remote_registers(*commands: str, xml: bytes, tmp_path: Path) -> tuple[str, list[list[str]]]:
    """Run gdb with ``xml`` as its target description; return (all output, register rows)."""
    assert GDB is not None
    path = tmp_path / "target.xml"
    path.write_bytes(xml)
    args = [GDB, "-batch", "-nx", "-ex", "set architecture i386"]
    for command in (*commands, f"set tdesc filename {path}", "maint print remote-registers"):
        args += ["-ex", command]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    output = proc.stdout + proc.stderr
    # Raw registers have 8 columns: name, nr, rel, offset, size, type, remote nr, g offset.
    rows = [line.split() for line in proc.stdout.splitlines()]
    rows = [r for r in rows if len(r) == 8 and r[6].isdigit()]
    return output, rows


@needs_gdb
@pytest.mark.parametrize("with_program", [False, True], ids=["no-file", "static-linux-program"])
def test_gdb_accepts_the_description(tmp_path: Path, with_program: bool) -> None:
    commands = [f"file {guest('compute')}"] if with_program else []
    output, rows = gdb_remote_registers(*commands, xml=TARGET_XML, tmp_path=tmp_path)
    assert "warning" not in output.lower(), output
    layout = [
        (name, int(remote), int(offset), int(size))
        for name, _, _, _, size, _, remote, offset in rows
    ]
    expected = []
    offset = 0
    for spec in REGISTERS:
        expected.append((spec.name, spec.number, offset, spec.size))
        offset += spec.size
    assert layout == expected


@needs_gdb
def test_gdb_shows_the_declared_types(tmp_path: Path) -> None:
    path = tmp_path / "target.xml"
    path.write_bytes(TARGET_XML)
    proc = subprocess.run(
        [GDB or "gdb", "-batch", "-nx", "-ex", "set architecture i386",
         "-ex", f"set tdesc filename {path}",
         "-ex", "ptype $xmm0", "-ex", "ptype $eflags", "-ex", "ptype $mxcsr", "-ex", "ptype $st0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    out = proc.stdout
    assert "union vec128" in out and "v4_float" in out and "uint128" in out
    assert "type = flag i386_eflags {" in out and "bool ZF @6;" in out
    assert "type = flag i386_mxcsr {" in out and "bool DAZ @6;" in out
    assert "i387_ext" in out


@needs_gdb
def test_the_gdb_check_can_fail(tmp_path: Path) -> None:
    """A core feature with only the 16 GPR/segment registers is rejected: the check is honest."""
    crippled = re.sub(rb'\s*<reg name="(st\d|f\w+)"[^>]*/>', b"", TARGET_XML)
    assert crippled != TARGET_XML
    output, _ = gdb_remote_registers(xml=crippled, tmp_path=tmp_path)
    assert "Architecture rejected target-supplied description" in output
