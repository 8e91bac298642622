"""The loader's per-program cache of ELF headers: the same programs as a
fresh parse, and never a reason to fail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rrdbg.errors import LoaderError
from rrdbg.machine import loader
from rrdbg.machine.loader import parse_program, read_program
from tests.conftest import guest

BIN = Path(guest("hello")).parent
PROGRAMS = sorted(p.name for p in BIN.iterdir() if p.name != "SHA256SUMS")


def fresh(path: str, monkeypatch: pytest.MonkeyPatch) -> loader.Program:
    with monkeypatch.context() as m:
        m.setenv("RRDBG_CACHE_DIR", "off")
        return read_program(path)


def entries(folder: Path) -> list[Path]:
    return sorted((folder / "elf").glob("*.json"))


@pytest.mark.parametrize("name", [n for n in PROGRAMS if not n.startswith("k_")])
def test_a_cached_program_is_the_program_parsed_afresh(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RRDBG_CACHE_DIR", str(tmp_path))
    first = read_program(str(BIN / name))
    assert len(entries(tmp_path)) == 1
    again = read_program(str(BIN / name))  # from the cache
    assert first == again == fresh(str(BIN / name), monkeypatch)


def test_a_placed_program_uses_the_same_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RRDBG_CACHE_DIR", str(tmp_path))
    image = (BIN / "hello-static-pie").read_bytes()
    a = parse_program("pie", image, load_base=0x1000000)
    b = parse_program("pie", image)
    assert a.entry - 0x1000000 == b.entry - loader.PIE_BASE
    assert len(entries(tmp_path)) == 1


@pytest.mark.parametrize(
    "damage", [b"", b"{", b'{"version": 1}', b'{"version": 1, "headers": {"elfclass": 32}}', b"[]"]
)
def test_a_damaged_entry_is_read_again_and_replaced(
    damage: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RRDBG_CACHE_DIR", str(tmp_path))
    path = guest("hello")
    expected = read_program(path)
    (entry,) = entries(tmp_path)
    entry.write_bytes(damage)
    assert read_program(path) == expected
    assert entry.read_bytes() != damage


def test_an_unusable_cache_directory_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("RRDBG_CACHE_DIR", str(blocker))
    assert read_program(guest("hello")) == fresh(guest("hello"), monkeypatch)


def test_the_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("RRDBG_CACHE_DIR", "off")
    read_program(guest("hello"))
    assert not any(tmp_path.rglob("*.json"))
    monkeypatch.delenv("RRDBG_CACHE_DIR")
    assert loader.cache_directory() == tmp_path / ".cache" / "rrdbg"


def test_bad_files_are_refused_and_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RRDBG_CACHE_DIR", str(tmp_path))
    image = (BIN / "hello").read_bytes()
    for bad, reason in (
        (image[:60], "malformed ELF"),
        (image[:4] + b"\x02" + image[5:], "64-bit ELF"),
        (image[:18] + b"\x28\x00" + image[20:], "ELF for EM_ARM"),
    ):
        for _ in range(2):  # the second time from the cache where one was made
            with pytest.raises(LoaderError, match=reason):
                parse_program("bad", bad)
    # Only well-formed headers are kept (the 64-bit and ARM ones were read).
    assert all(os.path.getsize(e) < 4096 for e in entries(tmp_path))


@pytest.mark.parametrize(
    ("field", "value"),
    [("entry", "0x8049000"), ("phnum", None), ("little_endian", 1), ("machine", 3), ("extra", 1)],
)
def test_an_entry_of_the_wrong_shape_is_read_again(
    field: str, value: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("RRDBG_CACHE_DIR", str(tmp_path))
    path = guest("hello")
    expected = read_program(path)
    (entry,) = entries(tmp_path)
    raw = json.loads(entry.read_text())
    raw["headers"][field] = value
    entry.write_text(json.dumps(raw))
    assert read_program(path) == expected
    raw = json.loads(entry.read_text())
    raw["headers"]["segments"][0].append(0)  # seven fields
    entry.write_text(json.dumps(raw))
    assert read_program(path) == expected
    assert not list(tmp_path.rglob("*.tmp"))
