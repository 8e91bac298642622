"""rrdbg.rsp and rrdbg.target.i386 import only the stdlib and rrdbg.errors (and rsp itself)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RSP = sorted((ROOT / "rrdbg" / "rsp").glob("*.py"))
I386 = ROOT / "rrdbg" / "target" / "i386.py"
# Standard-library modules that would still be I/O or concurrency in disguise.
FORBIDDEN_STDLIB = {"socket", "asyncio", "selectors", "threading", "subprocess", "os", "io"}


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports"
            modules.add(node.module or "")
    return modules


def check(path: Path, allowed_prefixes: tuple[str, ...]) -> None:
    for module in imported_modules(path):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            assert top not in FORBIDDEN_STDLIB, f"{path.name} imports {module}"
        else:
            assert module.startswith(allowed_prefixes), f"{path.name} imports {module}"


@pytest.mark.parametrize("path", RSP, ids=[p.name for p in RSP])
def test_rsp_imports(path: Path) -> None:
    check(path, ("rrdbg.errors", "rrdbg.rsp"))


def test_i386_imports() -> None:
    check(I386, ("rrdbg.errors",))
