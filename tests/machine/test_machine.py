"""Determinism by construction, and the machine's stop/fault reporting."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from rrdbg.machine.cpu import SIGSEGV, StopReason
from rrdbg.machine.host import SeededHost
from rrdbg.machine.machine import LinuxMachine
from tests.conftest import guest

PACKAGE = Path(__file__).resolve().parents[2] / "rrdbg"


@pytest.mark.parametrize("name", ["time_random", "malloc", "args"])
def test_same_program_and_inputs_give_same_count_and_state(name: str, devnull: int) -> None:
    runs = []
    for _ in range(2):
        host = SeededHost(11, environ={"X": "y"}, stdout_fd=devnull, stderr_fd=devnull)
        m = LinuxMachine(guest(name), [name], host)
        result = m.run_to_end()
        runs.append((result.icount, result.exit, m.digest()))
    assert runs[0] == runs[1]


def test_different_random_input_changes_state(devnull: int) -> None:
    digests = set()
    for seed in (1, 2):
        host = SeededHost(seed, stdout_fd=devnull, stderr_fd=devnull)
        m = LinuxMachine(guest("time_random"), ["time_random"], host)
        m.run_to_end()
        digests.add(m.digest())
    assert len(digests) == 2


def test_virtual_time_follows_icount_not_the_host(devnull: int) -> None:
    # Two runs with the same epoch print the same "raw" clock values.
    outputs = []
    for _ in range(2):
        r, w = os.pipe()
        host = SeededHost(5, stdout_fd=w, stderr_fd=devnull)
        m = LinuxMachine(guest("time_random"), ["time_random", "show"], host)
        m.run_to_end()
        os.close(w)
        with os.fdopen(r, "rb") as f:
            outputs.append(f.read())
    assert outputs[0] == outputs[1]
    assert b"raw monotonic delta ns=" in outputs[0]


def test_fault_leaves_machine_inspectable(devnull: int) -> None:
    m = LinuxMachine(guest("fault_segv"), ["fault_segv"], SeededHost(stdout_fd=devnull))
    stop = m.run()
    while stop.reason is not StopReason.FAULT:
        stop = m.run()
    assert stop.fault is not None
    assert stop.fault.signal == SIGSEGV
    assert stop.fault.address == 0x10
    assert m.registers()["eip"] == stop.fault.eip
    assert m.exit is not None
    assert m.exit.shell_status == 139


def _symbol(path: str, name: str) -> int:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with open(path, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        symbols = symtab.get_symbol_by_name(name)
        assert symbols
        return int(symbols[0]["st_value"])


def test_exit_address_stops_before_the_instruction(devnull: int) -> None:
    main = _symbol(guest("hello"), "main")
    m = LinuxMachine(guest("hello"), ["hello"], SeededHost(stdout_fd=devnull))
    m.cpu.add_exit(main)
    stop = m.run()
    assert stop.reason is StopReason.EXIT
    assert m.registers()["eip"] == main
    ref = LinuxMachine(guest("hello"), ["hello"], SeededHost(stdout_fd=devnull))
    ref.run(stop.icount)
    assert ref.digest() == m.digest()
    m.cpu.remove_exit(main)
    assert m.run_to_end().icount == ref.run_to_end().icount
    assert m.digest() == ref.digest()


LAYER_FORBIDDEN = {
    "machine": {"trio", "socket", "argparse", "rrdbg.cli", "rrdbg.server", "rrdbg.timeline"},
    "rsp": {"trio", "socket", "unicorn", "capstone", "rrdbg.machine", "rrdbg.target"},
    "target": {"trio", "socket", "unicorn", "rrdbg.machine", "rrdbg.timeline", "rrdbg.server"},
    "timeline": {"trio", "socket", "argparse", "unicorn", "rrdbg.server", "rrdbg.cli"},
    "record": {"trio", "socket", "rrdbg.server", "rrdbg.timeline"},
    "snapshot": {"trio", "socket", "unicorn", "rrdbg.server", "rrdbg.timeline"},
}


@pytest.mark.parametrize("layer", sorted(LAYER_FORBIDDEN))
def test_layer_imports(layer: str) -> None:
    for path in (PACKAGE / layer).glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = {name, name.split(".")[0]}
                assert not top & LAYER_FORBIDDEN[layer], f"{path.name} imports {name}"


def test_only_engine_and_cpu_level_modules_import_unicorn() -> None:
    allowed = {"engine.py", "cpu.py", "machine.py", "registers.py", "pc.py"}
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if "import unicorn" in text or "from unicorn" in text:
            assert path.name in allowed, path


#: The modules on top: what they may import at module level (the rest of
#: rrdbg only inside functions, so that importing them loads no emulator).
TOP_MODULE_ALLOWED = {
    "gdbmi.py": {"rrdbg.errors"},
    "pytest_plugin.py": {"rrdbg.errors", "rrdbg.forkserver"},
    "forkserver.py": {"rrdbg.errors"},
    "api.py": {"rrdbg.errors"},
    "__init__.py": {"rrdbg.errors"},
}


@pytest.mark.parametrize("module", sorted(TOP_MODULE_ALLOWED))
def test_top_modules_import_no_emulator_at_import_time(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text())
    for node in tree.body:  # module level only; TYPE_CHECKING blocks are not run
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rrdbg"):
            assert node.module in TOP_MODULE_ALLOWED[module], f"{module} imports {node.module}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert not alias.name.startswith(("rrdbg.", "unicorn", "capstone")), alias.name
