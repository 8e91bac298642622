"""docs/rsp.md's generated sections match the packet table and the reply encoder."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from rrdbg.rsp import PACKETS

ROOT = Path(__file__).resolve().parents[2]


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_packet_docs", ROOT / "tools" / "gen_packet_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_doc_is_up_to_date() -> None:
    tool = load_tool()
    text = (ROOT / "docs" / "rsp.md").read_text()
    assert tool.render(text) == text, "run: python tools/gen_packet_docs.py"


def test_stale_doc_is_detected() -> None:
    tool = load_tool()
    text = (ROOT / "docs" / "rsp.md").read_text()
    stale = text.replace("| `qTStatus` |", "| `qTStatusX` |")
    assert stale != text
    assert tool.render(stale) == text


def test_every_packet_is_in_the_doc() -> None:
    text = (ROOT / "docs" / "rsp.md").read_text()
    for spec in PACKETS:
        assert f"`{spec.syntax.split(', ')[0]}`" in text, spec.syntax
