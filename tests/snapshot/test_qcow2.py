"""Tests for rrdbg.snapshot.qcow2: struct layouts, round trips, qemu-img interop, bad input.

The interop tests run the real ``qemu-img`` (and ``qemu-io`` for guest-disk data) and
are skipped when it is not installed.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import subprocess
import tempfile
import time
import typing
from collections import Counter
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from rrdbg.errors import SnapshotFormatError
from rrdbg.snapshot.qcow2 import (
    BeStruct,
    Header,
    HeaderExtension,
    HeaderTail,
    Qcow2Image,
    SnapshotEntryFixed,
    SnapshotExtraData,
    SnapshotInfo,
    size_to_l1,
)

QEMU_IMG = shutil.which("qemu-img")
QEMU_IO = shutil.which("qemu-io")
needs_qemu_img = pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img not installed")
needs_qemu_io = pytest.mark.skipif(
    QEMU_IMG is None or QEMU_IO is None, reason="qemu-img/qemu-io not installed"
)

KiB = 1024
MiB = 1024 * KiB


# -- helpers ----------------------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=60)


def qemu_check(path: Path) -> subprocess.CompletedProcess[str]:
    assert QEMU_IMG is not None
    return run(QEMU_IMG, "check", "-f", "qcow2", str(path))


def assert_qemu_clean(path: Path) -> None:
    """``qemu-img check``: exit 0, no errors, no leaks."""
    proc = qemu_check(path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "No errors were found on the image." in proc.stdout, output
    assert "Leaked" not in output, output


def qemu_list(path: Path) -> dict[str, str]:
    """``qemu-img snapshot -l``: tag -> the ICOUNT column (last column, '' when blank)."""
    assert QEMU_IMG is not None
    proc = run(QEMU_IMG, "snapshot", "-l", str(path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Snapshot list:"
    assert "ICOUNT" in lines[1]
    rows = {}
    for line in lines[2:]:
        parts = line.split()  # tags in these tests have no spaces
        last = parts[-1]  # ICOUNT, or VM CLOCK (hh:mm:ss.mmm) when ICOUNT is blank
        rows[parts[1]] = "" if ":" in last or last == "--" else last
    return rows


def qemu_info_snapshots(path: Path) -> list[dict[str, Any]]:
    assert QEMU_IMG is not None
    proc = run(QEMU_IMG, "info", "--output=json", "-f", "qcow2", str(path))
    assert proc.returncode == 0, proc.stderr
    info: dict[str, Any] = json.loads(proc.stdout)
    snapshots: list[dict[str, Any]] = info.get("snapshots", [])
    return snapshots


def qemu_io(path: Path, command: str) -> subprocess.CompletedProcess[str]:
    assert QEMU_IO is not None
    return run(QEMU_IO, "-f", "qcow2", "-c", command, str(path))


def pattern(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def split_clusters(blob: bytes, cs: int) -> dict[int, bytes | int]:
    """A vmstate blob as a cluster map, all-zero clusters left out as holes."""
    out: dict[int, bytes | int] = {}
    for i in range(0, len(blob), cs):
        chunk = blob[i : i + cs]
        if chunk.strip(b"\0"):
            out[i // cs] = chunk
    return out


def patch(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(data)


def read_header(path: Path) -> Header:
    return Header.unpack_from(path.read_bytes()[:104])


def open_error(path: Path) -> str:
    """Open ``path``; it must fail with SnapshotFormatError. Returns the message."""
    with pytest.raises(SnapshotFormatError) as info:
        Qcow2Image.open(path, writable=False).close()
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


@pytest.fixture
def image(tmp_path: Path) -> Iterator[Qcow2Image]:
    with Qcow2Image.create(tmp_path / "img.qcow2", sync=False) as img:
        yield img


# -- declarative structs --------------------------------------------------------------------


def test_struct_sizes() -> None:
    assert Header.struct_size() == 104
    assert HeaderTail.struct_size() == 8
    assert HeaderExtension.struct_size() == 8
    assert SnapshotEntryFixed.struct_size() == 40
    assert SnapshotExtraData.struct_size() == 24


def _distinct_values(cls: type[BeStruct]) -> dict[str, Any]:
    """Field values whose big-endian bytes identify the field: field k is k+1 in each byte."""
    hints = typing.get_type_hints(cls, include_extras=True)
    values: dict[str, Any] = {}
    for k, f in enumerate(fields(cls)):  # type: ignore[arg-type]
        code = hints[f.name].__metadata__[0].code
        width = {"B": 1, "H": 2, "I": 4, "Q": 8}.get(code) or int(code[:-1])
        raw = bytes([k + 1]) * width
        values[f.name] = raw if code.endswith("s") else int.from_bytes(raw, "big")
    return values


# (field, first byte, width) from qcow2.md §1 and §4.
HEADER_LAYOUT = [
    ("magic", 0, 4),
    ("version", 4, 4),
    ("backing_file_offset", 8, 8),
    ("backing_file_size", 16, 4),
    ("cluster_bits", 20, 4),
    ("size", 24, 8),
    ("crypt_method", 32, 4),
    ("l1_size", 36, 4),
    ("l1_table_offset", 40, 8),
    ("refcount_table_offset", 48, 8),
    ("refcount_table_clusters", 56, 4),
    ("nb_snapshots", 60, 4),
    ("snapshots_offset", 64, 8),
    ("incompatible_features", 72, 8),
    ("compatible_features", 80, 8),
    ("autoclear_features", 88, 8),
    ("refcount_order", 96, 4),
    ("header_length", 100, 4),
]
ENTRY_LAYOUT = [
    ("l1_table_offset", 0, 8),
    ("l1_size", 8, 4),
    ("id_str_size", 12, 2),
    ("name_size", 14, 2),
    ("date_sec", 16, 4),
    ("date_nsec", 20, 4),
    ("vm_clock_nsec", 24, 8),
    ("vm_state_size", 32, 4),
    ("extra_data_size", 36, 4),
]
EXTRA_LAYOUT = [("vm_state_size_large", 40, 8), ("disk_size", 48, 8), ("icount", 56, 8)]


@pytest.mark.parametrize(
    ("cls", "layout", "base"),
    [
        (Header, HEADER_LAYOUT, 0),
        (SnapshotEntryFixed, ENTRY_LAYOUT, 0),
        (SnapshotExtraData, EXTRA_LAYOUT, 40),  # offsets within the snapshot entry
    ],
)
def test_field_offsets_match_the_spec(
    cls: type[BeStruct], layout: list[tuple[str, int, int]], base: int
) -> None:
    values = _distinct_values(cls)
    packed = cls(**values).pack()
    assert [f.name for f in fields(cls)] == [name for name, _, _ in layout]  # type: ignore[arg-type]
    for name, start, width in layout:
        field_bytes = packed[start - base : start - base + width]
        expected = values[name]
        if isinstance(expected, int):
            expected = expected.to_bytes(width, "big")
        assert field_bytes == expected, name


def _struct_strategy(cls: type[BeStruct]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        code = hints[f.name].__metadata__[0].code
        if code.endswith("s"):
            n = int(code[:-1])
            kwargs[f.name] = st.binary(min_size=n, max_size=n)
        else:
            bits = {"B": 8, "H": 16, "I": 32, "Q": 64}[code]
            kwargs[f.name] = st.integers(0, (1 << bits) - 1)
    return st.builds(cls, **kwargs)


@pytest.mark.parametrize(
    "cls", [Header, HeaderTail, HeaderExtension, SnapshotEntryFixed, SnapshotExtraData]
)
@given(data=st.data())
def test_struct_round_trip(cls: type[BeStruct], data: st.DataObject) -> None:
    value = data.draw(_struct_strategy(cls))
    packed = value.pack()
    assert len(packed) == cls.struct_size()
    assert cls.unpack_from(b"xx" + packed, 2) == value


def test_struct_errors_are_snapshot_format_errors() -> None:
    with pytest.raises(SnapshotFormatError, match="SnapshotExtraData"):
        SnapshotExtraData(vm_state_size_large=-1, disk_size=0, icount=0).pack()
    with pytest.raises(SnapshotFormatError, match="short header"):
        Header.unpack_from(b"QFI\xfb", where="short header")


def test_size_to_l1() -> None:
    assert size_to_l1(0, 16) == 0
    assert size_to_l1(1, 16) == 1
    assert size_to_l1(512 * MiB, 16) == 1
    assert size_to_l1(512 * MiB + 1, 16) == 2
    assert size_to_l1(128 * MiB, 16) == 1
    assert size_to_l1(32 * KiB, 9) == 1  # 64 entries x 512 bytes
    assert size_to_l1(32 * KiB + 512, 9) == 2


# The 69-byte entry observed with QEMU 7.2 (qcow2.md §4).
REAL_ENTRY = bytes.fromhex(
    "0000000000100000 00000002 0001 0004 6b0727fe 2437a6f8 0000000000000000 000a8a13 00000018"
    "00000000000a8a13 0000000008000000 0000000000000000 31 696e6974".replace(" ", "")
)


def test_real_qemu_entry_parses(tmp_path: Path) -> None:
    assert len(REAL_ENTRY) == 69
    path = tmp_path / "real.qcow2"
    Qcow2Image.create(path, virtual_size=128 * MiB, sync=False).close()
    # Graft the entry onto the image: an L1 of 2 entries at 0x100000 and the table at
    # 0x110000, as QEMU had them.  (Refcounts are not checked on open.)
    patch(path, 0x100000, bytes(16))
    patch(path, 0x110000, REAL_ENTRY + bytes(3))
    patch(path, 60, (1).to_bytes(4, "big") + (0x110000).to_bytes(8, "big"))
    with Qcow2Image.open(path, writable=False) as img:
        [info] = img.snapshots()
    assert info == SnapshotInfo(
        id="1",
        name="init",
        icount=0,
        vm_state_size=690707,
        date_sec=0x6B0727FE,
        date_nsec=0x2437A6F8,
        vm_clock_nsec=0,
        disk_size=128 * MiB,
        l1_table_offset=0x100000,
        l1_size=2,
        extra=REAL_ENTRY[40:64],
    )


# -- create / add / read round trips --------------------------------------------------------


def test_create_layout_matches_qemu_img(tmp_path: Path) -> None:
    path = tmp_path / "new.qcow2"
    Qcow2Image.create(path, virtual_size=128 * MiB, sync=False).close()
    data = path.read_bytes()
    h = read_header(path)
    assert (h.version, h.cluster_bits, h.size, h.refcount_order, h.header_length) == (
        3,
        16,
        128 * MiB,
        4,
        112,
    )
    assert (h.l1_size, h.l1_table_offset, h.refcount_table_offset) == (1, 0x30000, 0x10000)
    assert data[104] == 0  # compression type
    assert data[0x10000:0x10008] == (0x20000).to_bytes(8, "big")
    assert data[0x20000:0x20008] == bytes.fromhex("0001000100010001")
    assert len(data) == 0x30000 + 8
    with pytest.raises(SnapshotFormatError, match="exists"):
        Qcow2Image.create(path)


def test_create_size_zero_has_no_l1(tmp_path: Path) -> None:
    path = tmp_path / "zero.qcow2"
    with Qcow2Image.create(path, sync=False) as img:
        assert img.virtual_size == 0
        assert img.vm_state_offset == 0
    h = read_header(path)
    assert (h.l1_size, h.l1_table_offset) == (0, 0)
    assert path.stat().st_size == 3 * 64 * KiB


def test_add_share_reopen_read(tmp_path: Path) -> None:
    path = tmp_path / "img.qcow2"
    with Qcow2Image.create(path, sync=False) as img:
        cs = img.cluster_size
        blob1 = pattern(1, 3 * cs + 100)
        info1, map1 = img.add_snapshot("first", 1000, len(blob1), split_clusters(blob1, cs))
        assert sorted(map1) == [0, 1, 2, 3]
        # Clusters 0 and 2 shared, 1 new, 3 a hole, 4 new and short.
        blob2 = blob1[:cs] + pattern(2, cs) + blob1[2 * cs : 3 * cs] + bytes(cs) + b"tail"
        clusters2: dict[int, bytes | int] = {0: map1[0], 1: blob2[cs : 2 * cs], 2: map1[2]}
        clusters2[4] = b"tail"
        info2, map2 = img.add_snapshot("second", 2000, len(blob2), clusters2, vm_clock_nsec=5)
        assert map2[0] == map1[0]
        assert map2[2] == map1[2]
        assert 3 not in map2
        clusters3: dict[int, bytes | int] = {0: map2[0], 1: map2[1]}
        info3, _ = img.add_snapshot(
            "third", 3000, 2 * cs, clusters3, date_ns=1_500_000_000_000_000_123
        )
        assert (info1.id, info2.id, info3.id) == ("1", "2", "3")
    with Qcow2Image.open(path, writable=False) as img:
        assert [s.name for s in img.snapshots()] == ["first", "second", "third"]
        assert img.snapshots() == [info1, info2, info3]
        assert img.read_vmstate(info1) == blob1
        assert img.read_vmstate(info2) == blob2
        assert img.read_vmstate(info3) == blob2[: 2 * cs]
        assert img.snapshot_clusters(info2) == map2
        assert info2.vm_clock_nsec == 5
        assert (info3.date_sec, info3.date_nsec) == (1_500_000_000, 123)
        assert img.read_cluster(map1[3]) == blob1[3 * cs :].ljust(cs, b"\0")
        assert img.refcount(map1[0]) == 3
        assert img.refcount(map1[1]) == 1
        assert img.refcount(map1[2]) == 2
        assert img.refcount(map2[1]) == 2
        assert img.find("second") == info2
        assert img.find("2") == info2
        assert img.find("nope") is None
    if QEMU_IMG:
        assert_qemu_clean(path)
        assert qemu_list(path) == {"first": "1000", "second": "2000", "third": "3000"}


def test_delete_releases_clusters(image: Qcow2Image) -> None:
    cs = image.cluster_size
    a, map_a = image.add_snapshot("a", 1, 2 * cs, {0: b"a0", 1: b"a1"})
    b, _ = image.add_snapshot("b", 2, 2 * cs, {0: map_a[0], 1: b"b1"})
    image.delete_snapshot("a")
    assert image.snapshots() == [b]
    assert image.refcount(map_a[0]) == 1
    assert image.refcount(map_a[1]) == 0
    with pytest.raises(SnapshotFormatError, match="not a vmstate cluster"):
        image.add_snapshot("c", 3, cs, {0: map_a[1]})
    with pytest.raises(SnapshotFormatError, match="not in this image"):
        image.read_vmstate(a)
    with pytest.raises(SnapshotFormatError, match="no snapshot"):
        image.delete_snapshot("a")
    c, _ = image.add_snapshot("c", 3, cs, {0: map_a[0]})
    assert c.id == "3"  # max id + 1, ids are never reused while "b" (2) exists
    assert image.read_vmstate(c) == b"a0".ljust(cs, b"\0")
    image.delete_snapshot("2")  # by id
    image.delete_snapshot("c")
    assert image.snapshots() == []
    assert image.refcount(map_a[0]) == 0
    assert read_header(Path(image.path)).snapshots_offset == 0
    if QEMU_IMG:
        assert_qemu_clean(Path(image.path))


def test_add_snapshot_argument_errors(image: Qcow2Image) -> None:
    cs = image.cluster_size
    image.add_snapshot("x", 0, cs, {0: b"1"})
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "x"}, "already exists"),
        ({"name": ""}, "name"),
        ({"name": "a\0b"}, "name"),
        ({"name": "\ud800"}, "name"),
        ({"icount": -1}, "icount"),
        ({"icount": 1 << 63}, "icount"),
        ({"vm_state_size": -1}, "vm_state_size"),
        ({"clusters": {1: b"x"}}, "index 1 outside"),
        ({"clusters": {0: bytes(cs + 1)}}, "exceed the cluster size"),
        ({"clusters": {0: 0}}, "not a vmstate cluster"),
        ({"clusters": {0: 12345}}, "not a vmstate cluster"),
        ({"vm_clock_nsec": 1 << 64}, "vm_clock_nsec"),
        ({"date_ns": (1 << 32) * 10**9}, "date"),
    ]
    for override, message in cases:
        kwargs: dict[str, Any] = {
            "name": "y",
            "icount": 5,
            "vm_state_size": cs,
            "clusters": {0: b"ok"},
        }
        kwargs.update(override)
        with pytest.raises(SnapshotFormatError, match=message):
            image.add_snapshot(**kwargs)
    assert [s.name for s in image.snapshots()] == ["x"]
    if QEMU_IMG:
        assert_qemu_clean(Path(image.path))


def test_read_only_and_closed(tmp_path: Path) -> None:
    path = tmp_path / "ro.qcow2"
    Qcow2Image.create(path, sync=False).close()
    with Qcow2Image.open(path, writable=False) as img:
        with pytest.raises(SnapshotFormatError, match="read-only"):
            img.add_snapshot("a", 0, 0, {})
        assert not img.writable
    img.close()  # idempotent
    with pytest.raises(SnapshotFormatError, match="closed"):
        img.snapshots()


def test_vm_state_size_large_and_icount_none(tmp_path: Path) -> None:
    """vm_state_size >= 4 GiB: u32 field 0, the 64-bit one holds it; holes cost nothing."""
    path = tmp_path / "big.qcow2"
    with Qcow2Image.create(path, sync=False) as img:
        size = 5 * 1024 * MiB + 3
        info, mapping = img.add_snapshot("big", 7, size, {0: b"head", 81920: b"tail"})
        assert info.vm_state_size == size
        assert info.l1_size == 11  # (5 GiB + 3) / 512 MiB per L2 table, rounded up
    data = path.read_bytes()
    table = read_header(path).snapshots_offset
    entry = SnapshotEntryFixed.unpack_from(data, table)
    assert entry.vm_state_size == 0
    assert entry.extra_data_size == 24
    assert int.from_bytes(data[table + 40 : table + 48], "big") == size
    assert int.from_bytes(data[table + 56 : table + 64], "big") == 7
    with Qcow2Image.open(path, writable=False) as img:
        assert img.snapshot_clusters(img.snapshots()[0]) == mapping
    # icount -1 reads as None.
    patch(path, table + 56, b"\xff" * 8)
    with Qcow2Image.open(path, writable=False) as img:
        assert img.snapshots()[0].icount is None
    if QEMU_IMG:
        assert_qemu_clean(path)
        assert qemu_list(path) == {"big": ""}


def test_many_clusters_is_fast(tmp_path: Path) -> None:
    with Qcow2Image.create(tmp_path / "fast.qcow2", sync=False) as img:
        cs = img.cluster_size
        clusters: dict[int, bytes | int] = {i: bytes([i % 251]) * 64 for i in range(400)}
        started = time.perf_counter()
        _, first = img.add_snapshot("a", 1, 400 * cs, clusters)
        shared: dict[int, bytes | int] = dict(first.items())
        shared.update(dict.fromkeys(range(0, 400, 10), b"new"))
        img.add_snapshot("b", 2, 400 * cs, shared)
        elapsed = time.perf_counter() - started
    assert elapsed < 2.0, elapsed  # typically ~50 ms, dominated by writing 25 MiB


def test_refcount_blocks_grow_and_table_full(tmp_path: Path) -> None:
    """512-byte clusters: a refcount block covers 256 clusters, the table 64 blocks (8 MiB)."""
    path = tmp_path / "small.qcow2"
    with Qcow2Image.create(path, cluster_bits=9, sync=False) as img:
        cs = img.cluster_size
        blob = pattern(3, 700 * cs - 17)  # > 10 L2 tables (64 entries each), 3+ refblocks
        info, mapping = img.add_snapshot("a", 1, len(blob), split_clusters(blob, cs))
        assert len(mapping) == 700
        half: dict[int, bytes | int] = {i: h for i, h in mapping.items() if i % 2}
        info2, _ = img.add_snapshot("b", 2, len(blob), half)
        assert img.read_vmstate(info) == blob
        too_many: dict[int, bytes | int] = dict.fromkeys(range(17000), b"x")
        with pytest.raises(SnapshotFormatError, match="refcount table full"):
            img.add_snapshot("huge", 3, 17000 * cs, too_many)
        # The failed attempt left the image usable.
        assert [s.name for s in img.snapshots()] == ["a", "b"]
        img.add_snapshot("c", 3, cs, {0: b"c"})
        odd_only = b"".join(blob[i * cs : (i + 1) * cs] if i % 2 else bytes(cs) for i in range(700))
        assert img.read_vmstate(info2) == odd_only[: len(blob)]
    if QEMU_IMG:
        proc = qemu_check(path)
        # The failed attempt wrote clusters it never referenced: leaks (exit 3), nothing worse.
        assert proc.returncode in {0, 3}, proc.stdout + proc.stderr
        assert "ERROR" not in proc.stdout + proc.stderr


# -- allocation: free clusters are reused ---------------------------------------------------


def cluster_usage(img: Qcow2Image) -> tuple[int, int]:
    """(clusters in use, clusters with refcount 0) inside the file."""
    cs = img.cluster_size
    n = -(-Path(img.path).stat().st_size // cs)
    used = sum(1 for c in range(n) if img.refcount(c * cs))
    return used, n - used


def l2_offset(img: Qcow2Image, info: SnapshotInfo) -> int:
    """The first vmstate L2 table of a snapshot of an image whose virtual size is 0."""
    return int.from_bytes(img.read_cluster(info.l1_table_offset)[:8], "big")


def test_freed_clusters_are_reused_by_a_later_operation_only(image: Qcow2Image) -> None:
    path = Path(image.path)
    cs = image.cluster_size
    _, map1 = image.add_snapshot("s1", 1, 2 * cs, {0: b"a", 1: b"b"})
    table1 = read_header(path).snapshots_offset
    # The add that frees table 1 (after its commit) must not write into it.
    s2, map2 = image.add_snapshot("s2", 2, 2 * cs, {0: map1[0], 1: b"c"})
    table2 = read_header(path).snapshots_offset
    written2 = {map2[1], s2.l1_table_offset, l2_offset(image, s2), table2}
    assert table1 not in written2
    assert image.refcount(table1) == 0
    # The next add reuses it, lowest free cluster first: its one new data cluster.
    clusters = -(-path.stat().st_size // cs)
    _, map3 = image.add_snapshot("s3", 3, 2 * cs, {0: map2[0], 1: b"d"})
    assert map3[1] == table1
    assert -(-path.stat().st_size // cs) == clusters + 3  # L2, L1, table appended
    # A delete likewise commits its new table elsewhere than the clusters it frees.
    s2_own = {map2[1], s2.l1_table_offset, l2_offset(image, s2)}
    table3 = read_header(path).snapshots_offset
    image.delete_snapshot("s2")
    assert read_header(path).snapshots_offset not in s2_own | {table3}
    assert all(image.refcount(offset) == 0 for offset in s2_own | {table3})
    _, map4 = image.add_snapshot("s4", 4, 4 * cs, {0: b"e", 1: b"f", 2: b"g", 3: b"h"})
    freed = sorted(s2_own | {table3})
    assert sorted(map4.values()) == freed  # data is allocated first: the 4 free clusters
    for name, blob in {"s1": b"b", "s3": b"d", "s4": b"h"}.items():
        info = image.find(name)
        assert info is not None
        assert image.read_vmstate(info)[-cs:] == blob.ljust(cs, b"\0")
    assert cluster_usage(image)[1] == 1  # table 4, freed by the last add
    if QEMU_IMG:
        assert_qemu_clean(path)


def test_file_size_stays_bounded_over_many_snapshots(tmp_path: Path) -> None:
    """300 snapshots: each add rewrites the table, but the old one's clusters are reused.

    512-byte clusters make the table (72-80 bytes an entry) span many clusters, so an
    append-only allocator leaves ~6800 dead table clusters: 5x the ~1300 live ones.
    """
    path = tmp_path / "many.qcow2"
    rng = random.Random(7)
    with Qcow2Image.create(path, cluster_bits=9, sync=False) as img:
        cs = img.cluster_size
        previous: dict[int, int] = {}
        blobs: dict[str, bytearray] = {}
        blob = bytearray()
        for k in range(300):
            clusters: dict[int, bytes | int] = dict(previous)
            changed = [0, rng.randrange(1, 8)] if k else list(range(8))
            blob = bytearray(blob or bytes(8 * cs))
            for index in changed:
                chunk = rng.randbytes(cs)
                clusters[index] = chunk
                blob[index * cs : (index + 1) * cs] = chunk
            info, previous = img.add_snapshot(f"ic-{k}", k, 8 * cs, clusters)
            blobs[info.name] = blob
        used, free = cluster_usage(img)
        table_clusters = -(-sum(len(s.name) + len(s.id) + 64 for s in img.snapshots()) // cs)
        assert path.stat().st_size < 2 * used * cs, (used, free)
        # Free space is a few tables' worth (the old table stays live until the commit,
        # a grown table does not fit the old one's clusters): not one per rewrite.
        assert free <= 4 * table_clusters, (used, free, table_clusters)
        for info in img.snapshots()[::37]:
            assert img.read_vmstate(info) == blobs[info.name]
    if QEMU_IMG:
        assert_qemu_clean(path)


def test_rolling_window_of_snapshots_stops_the_file_growing(tmp_path: Path) -> None:
    """Keep the last 20 snapshots while adding 200: freed L1/L2/data/tables get reused."""
    path = tmp_path / "window.qcow2"
    with Qcow2Image.create(path, cluster_bits=12, sync=False) as img:
        cs = img.cluster_size
        expected: dict[str, bytes] = {}
        sizes: list[int] = []
        for k in range(200):
            blob = pattern(k, 3 * cs)
            info, _ = img.add_snapshot(f"s{k}", k, len(blob), split_clusters(blob, cs))
            expected[info.name] = blob
            if k >= 20:
                img.delete_snapshot(f"s{k - 20}")
                del expected[f"s{k - 20}"]
            sizes.append(path.stat().st_size)
        # 20 snapshots x (3 data + L2 + L1) clusters plus the table: the steady state
        # is reached after one window; from then on the file stays within a few clusters.
        assert max(sizes[40:]) <= sizes[39] + 4 * cs, (sizes[39], max(sizes[40:]))
        assert max(sizes) < 2 * 20 * 5 * cs
        for info in img.snapshots():
            assert img.read_vmstate(info) == expected[info.name]
    if QEMU_IMG:
        assert_qemu_clean(path)


def test_delete_truncates_free_clusters_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "trunc.qcow2"
    with Qcow2Image.create(path, cluster_bits=12, sync=False) as img:
        cs = img.cluster_size
        _, map_a = img.add_snapshot("a", 1, 3 * cs, {0: b"a", 1: b"b", 2: b"c"})
        size_a = path.stat().st_size
        img.add_snapshot("b", 2, 5 * cs, {0: map_a[0], 4: b"e"})
        assert path.stat().st_size > size_a
        img.delete_snapshot("b")  # its clusters and table 2 were the end of the file
        assert path.stat().st_size == -(-size_a // cs) * cs  # new table in table 1's place
        if QEMU_IMG:
            assert_qemu_clean(path)
        img.delete_snapshot("a")
        assert path.stat().st_size == 3 * cs  # header, refcount table, refcount block
        info, _ = img.add_snapshot("c", 3, cs, {0: b"c"})
        assert img.read_vmstate(info) == b"c".ljust(cs, b"\0")
    if QEMU_IMG:
        assert_qemu_clean(path)


def test_metadata_with_refcount_zero_is_never_reused(valid: Path) -> None:
    """Corrupt refcounts must not turn live metadata into free space to overwrite."""
    table = read_header(valid).snapshots_offset
    refblock = int.from_bytes(valid.read_bytes()[4096:4104], "big")
    patch(valid, refblock + 2 * (table // 4096), bytes(2))
    before = valid.read_bytes()
    with Qcow2Image.open(valid, writable=True, sync=False) as img:
        with pytest.raises(SnapshotFormatError, match=r"snapshot table .* refcount is 0"):
            img.add_snapshot("three", 3, 4096, {0: b"x"})
        assert [s.name for s in img.snapshots()] == ["one", "two"]
    assert valid.read_bytes() == before


# -- crash safety ---------------------------------------------------------------------------


def only_copied_flag_errors(output: str) -> bool:
    """Check output whose only errors are COPIED-flag mismatches (no refcount < references)."""
    errors = [line for line in output.splitlines() if "ERROR" in line]
    return all("OFLAG_COPIED" in line for line in errors)


@pytest.mark.parametrize("operation", ["add", "delete"])
@pytest.mark.parametrize("kind", ["rrdbg", "orphan-with-disk"])
def test_crash_at_any_write_leaves_a_consistent_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str, kind: str
) -> None:
    """Stop an operation at every write in turn: the file must stay readable and leak-only.

    With guest-disk data (an orphan image after qemu-io), the first snapshot takes the
    disk clusters' refcounts from 1 to 2 (the last deletion back to 1).  A crash between
    that refcount write and the COPIED-flag write of the active tables leaves flags that
    ``qemu-img check`` reports (exit 2, "OFLAG_COPIED"), as a crash inside QEMU's own
    snapshot code would; no data is at risk and ``qemu-img check -r leaks`` repairs it.
    """
    base = tmp_path / "base.qcow2"
    expected: dict[str, bytes] = {}
    if kind == "orphan-with-disk":
        if QEMU_IMG is None or QEMU_IO is None:
            pytest.skip("qemu-img/qemu-io not installed")
        args = ("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", str(base), "1M")
        assert run(QEMU_IMG, *args).returncode == 0
        assert qemu_io(base, "write -P 0xab 0 64k").returncode == 0
        names = ["a"] if operation == "delete" else []
    else:
        Qcow2Image.create(base, virtual_size=1 * MiB, cluster_bits=12, sync=False).close()
        names = ["a", "b"]
    with Qcow2Image.open(base, writable=True, sync=False) as img:
        cs = img.cluster_size
        # "b" spans two L2 tables at 4 KiB clusters.
        for k, name in enumerate(names):
            blob = pattern(10 + k, 600 * cs if k else 3 * cs + 5)
            _, share_from = img.add_snapshot(name, k, len(blob), split_clusters(blob, cs))
            expected[name] = blob
    real_pwrite = Qcow2Image._pwrite
    seen_copied_window = False
    for crash_after in range(100):
        work = tmp_path / f"crash{crash_after}.qcow2"
        shutil.copyfile(base, work)
        writes = 0

        def failing_pwrite(
            self: Qcow2Image, offset: int, data: bytes, crash_after: int = crash_after
        ) -> None:
            nonlocal writes
            writes += 1
            if writes > crash_after:
                raise SnapshotFormatError("injected crash")
            real_pwrite(self, offset, data)

        completed = True
        with Qcow2Image.open(work, writable=True, sync=False) as img:
            with monkeypatch.context() as m:
                m.setattr(Qcow2Image, "_pwrite", failing_pwrite)
                try:
                    if operation == "delete":
                        img.delete_snapshot("a")
                    elif names:
                        img.add_snapshot("c", 3, 2 * cs, {0: share_from[0], 1: b"c"})
                    else:
                        img.add_snapshot("c", 3, 2 * cs, {1: b"c"})
                except SnapshotFormatError:
                    completed = False
            after_crash = tmp_path / f"crash{crash_after}-state.qcow2"
            shutil.copyfile(work, after_crash)
            # The same object recovers from the failure and goes on.
            img.add_snapshot("d", 4, cs, {0: b"d"})
        for path in (after_crash, work):
            with Qcow2Image.open(path, writable=False) as img:
                assert {s.name for s in img.snapshots()} - {"c", "d"} <= set(names)
                for info in img.snapshots():
                    if info.name in expected:
                        assert img.read_vmstate(info) == expected[info.name]
            if QEMU_IMG:
                proc = qemu_check(path)
                output = proc.stdout + proc.stderr
                if kind == "orphan-with-disk" and proc.returncode == 2:
                    assert only_copied_flag_errors(output), output
                    seen_copied_window = True
                else:
                    assert proc.returncode in {0, 3}, output
                    assert "ERROR" not in output
            if kind == "orphan-with-disk":
                assert qemu_io(path, "read -P 0xab 0 64k").returncode == 0
        if completed:
            if QEMU_IMG:
                assert_qemu_clean(work)
            # add: data, L2, L1, table, refcounts, header, release; delete: no data/L2/L1.
            assert crash_after >= (7 if operation == "add" else 4)
            break
    else:
        pytest.fail("the operation never completed")
    assert seen_copied_window == (kind == "orphan-with-disk")


def test_crash_with_a_torn_write_into_reused_clusters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tear each write of an add that reuses a deleted snapshot's clusters, in turn.

    Half of the failing write reaches the file (except the one-sector header).  The
    clusters were freed by an earlier, committed operation, so whatever lands in them
    harms no snapshot; until a refcount block is written they even stay free, and the
    image is exactly as clean as before.
    """
    base = tmp_path / "base.qcow2"
    with Qcow2Image.create(base, virtual_size=1 * MiB, cluster_bits=12, sync=False) as img:
        cs = img.cluster_size
        blobs = {name: pattern(20 + k, (3 + k) * cs - 7) for k, name in enumerate("abc")}
        maps: dict[str, dict[int, int]] = {}
        for k, (name, blob) in enumerate(blobs.items()):
            _, maps[name] = img.add_snapshot(name, k, len(blob), split_clusters(blob, cs))
        img.delete_snapshot("b")
        del blobs["b"]
        n = -(-base.stat().st_size // cs)
        free_before = {c * cs for c in range(n) if img.refcount(c * cs) == 0}
        refcount_table = read_header(base).refcount_table_offset
        refblocks = {int.from_bytes(img.read_cluster(refcount_table)[:8], "big")}
    assert set(maps["b"].values()) <= free_before
    new_blob = pattern(99, 4 * cs)
    real_pwrite = Qcow2Image._pwrite
    torn_in_reused = 0
    for crash_after in range(60):
        work = tmp_path / f"torn{crash_after}.qcow2"
        shutil.copyfile(base, work)
        done: list[int] = []  # offsets of the whole writes before the torn one
        failed: list[int] = []

        def torn_pwrite(
            self: Qcow2Image,
            offset: int,
            data: bytes,
            crash_after: int = crash_after,
            done: list[int] = done,
            failed: list[int] = failed,
        ) -> None:
            if len(done) < crash_after:
                real_pwrite(self, offset, data)
                done.append(offset)
                return
            failed.append(offset)
            if offset:
                real_pwrite(self, offset, bytes(data)[: len(data) // 2])
            raise SnapshotFormatError("injected crash")

        with Qcow2Image.open(work, writable=True, sync=False) as img:
            with monkeypatch.context() as m:
                m.setattr(Qcow2Image, "_pwrite", torn_pwrite)
                with contextlib.suppress(SnapshotFormatError):
                    img.add_snapshot("d", 9, len(new_blob), split_clusters(new_blob, cs))
            state = tmp_path / f"torn{crash_after}-state.qcow2"
            shutil.copyfile(work, state)
            img.add_snapshot("e", 10, cs, {0: b"e"})  # recovers, reusing what is free
        if failed and failed[0] - failed[0] % cs in free_before:
            torn_in_reused += 1
        for path in (state, work):
            with Qcow2Image.open(path, writable=False) as img:
                names = {s.name for s in img.snapshots()}
                assert {"a", "c"} <= names <= {"a", "c", "d", "e"}
                for info in img.snapshots():
                    if info.name in blobs:
                        assert img.read_vmstate(info) == blobs[info.name]
                    elif info.name == "d":
                        assert img.read_vmstate(info) == new_blob
            if QEMU_IMG:
                proc = qemu_check(path)
                output = proc.stdout + proc.stderr
                assert proc.returncode in {0, 3}, output
                assert "ERROR" not in output
        if QEMU_IMG and not any(o - o % cs in refblocks for o in done + failed):
            assert_qemu_clean(state)  # no refcount written yet: nothing even leaked
        if not failed:
            if QEMU_IMG:
                assert_qemu_clean(work)
            break
    else:
        pytest.fail("the operation never completed")
    assert torn_in_reused >= 3  # data, L2 and L1 all went into freed clusters


# -- qemu-img interop -----------------------------------------------------------------------


@needs_qemu_img
@pytest.mark.parametrize(
    ("cluster_bits", "virtual_size", "count"),
    [(16, 0, 1), (16, 0, 4), (16, 128 * MiB, 3), (12, 0, 5), (9, 0, 3), (21, 0, 2)],
)
def test_qemu_img_accepts_rrdbg_images(
    tmp_path: Path, cluster_bits: int, virtual_size: int, count: int
) -> None:
    path = tmp_path / "rr.qcow2"
    blobs: dict[str, bytes] = {}
    with Qcow2Image.create(path, virtual_size=virtual_size, cluster_bits=cluster_bits) as img:
        cs = img.cluster_size
        previous: dict[int, int] = {}
        for k in range(count):
            # Sizes that are not cluster multiples; every other cluster shared when possible.
            size = (k + 2) * cs + 37 * k + 1
            if cluster_bits <= 12 and k == count - 1:
                size = (cs // 8 + 5) * cs + 3  # more than one L2 table's worth
            blob = bytearray(pattern(100 + k, size))
            clusters = split_clusters(bytes(blob), cs)
            for index, host in previous.items():
                if index % 2 == 0 and index < -(-size // cs):
                    clusters[index] = host
                    blob[index * cs : (index + 1) * cs] = img.read_cluster(host)
            blob = blob[:size]
            info, previous = img.add_snapshot(f"ic-{k * 1000}", k * 1000, size, clusters)
            blobs[info.name] = bytes(blob)
            assert img.read_vmstate(info) == blob
    assert_qemu_clean(path)
    assert qemu_list(path) == {name: name[3:] for name in blobs}
    snapshots = qemu_info_snapshots(path)
    assert [(s["name"], s["icount"], s["vm-state-size"]) for s in snapshots] == [
        (name, int(name[3:]), len(blob)) for name, blob in blobs.items()
    ]
    with Qcow2Image.open(path, writable=False) as img:
        for info in img.snapshots():
            assert img.read_vmstate(info) == blobs[info.name]


@needs_qemu_img
def test_after_qemu_img_deletes_a_snapshot(tmp_path: Path) -> None:
    assert QEMU_IMG is not None
    path = tmp_path / "del.qcow2"
    with Qcow2Image.create(path, cluster_bits=12) as img:
        cs = img.cluster_size
        blobs = {name: pattern(k, 5 * cs + k) for k, name in enumerate(["s0", "s1", "s2"])}
        maps: dict[str, dict[int, int]] = {}
        for k, (name, blob) in enumerate(blobs.items()):
            clusters = split_clusters(blob, cs)
            if k:  # share cluster 1 with the previous snapshot
                clusters[1] = maps[f"s{k - 1}"][1]
                blobs[name] = blob[:cs] + blobs[f"s{k - 1}"][cs : 2 * cs] + blob[2 * cs :]
            _, maps[name] = img.add_snapshot(name, 10 * k, len(blob), clusters)
    assert run(QEMU_IMG, "snapshot", "-d", "s1", str(path)).returncode == 0
    assert_qemu_clean(path)
    with Qcow2Image.open(path, writable=True) as img:
        assert [s.name for s in img.snapshots()] == ["s0", "s2"]
        for info in img.snapshots():
            assert img.read_vmstate(info) == blobs[info.name]
        assert img.refcount(maps["s0"][1]) == 2  # s0 and s1 held it; s1 is gone, s2 too
        s2 = img.find("s2")
        assert s2 is not None
        info, _ = img.add_snapshot("s3", 30, 2 * cs, {0: img.snapshot_clusters(s2)[0]})
        assert info.id == "4"
    assert_qemu_clean(path)
    assert qemu_list(path) == {"s0": "0", "s2": "20", "s3": "30"}


@needs_qemu_img
@pytest.mark.parametrize("size", ["1M", "128M"])
def test_orphan_image_from_qemu_img(tmp_path: Path, size: str) -> None:
    assert QEMU_IMG is not None
    path = tmp_path / "orphan.qcow2"
    assert run(QEMU_IMG, "create", "-q", "-f", "qcow2", str(path), size).returncode == 0
    with_disk = QEMU_IO is not None
    if with_disk:
        proc = qemu_io(path, "write -P 0xab 0 64k")
        assert proc.returncode == 0, proc.stderr
        # A qemu-made internal snapshot shares the disk's L2 table and data first.
        assert run(QEMU_IMG, "snapshot", "-c", "qemu-snap", str(path)).returncode == 0
    with Qcow2Image.open(path, writable=True) as img:
        cs = img.cluster_size
        assert img.vm_state_offset == 512 * MiB
        blob1 = pattern(1, 4 * cs + 11)
        info1, map1 = img.add_snapshot("rr-1", 11, len(blob1), split_clusters(blob1, cs))
        clusters2: dict[int, bytes | int] = {0: map1[0], 1: b"two"}
        info2, _ = img.add_snapshot("rr-2", 22, 2 * cs, clusters2)
        assert info1.disk_size == img.virtual_size
        assert info1.l1_size == 2
        assert img.read_vmstate(info2) == blob1[:cs] + b"two".ljust(cs, b"\0")
    assert_qemu_clean(path)
    listed = qemu_list(path)
    assert listed["rr-1"] == "11"
    assert listed["rr-2"] == "22"
    if with_disk:
        proc = qemu_io(path, "read -P 0xab 0 64k")
        assert proc.returncode == 0, proc.stdout
        assert "failed" not in proc.stdout
        # Deleting in either tool keeps refcounts and COPIED flags exact.
        assert run(QEMU_IMG, "snapshot", "-d", "qemu-snap", str(path)).returncode == 0
        assert_qemu_clean(path)
    with Qcow2Image.open(path, writable=True) as img:
        img.delete_snapshot("rr-1")
        rr2 = img.find("rr-2")
        assert rr2 is not None
        assert img.read_vmstate(rr2) == blob1[:cs] + b"two".ljust(cs, b"\0")
        img.delete_snapshot("rr-2")
    assert_qemu_clean(path)
    if with_disk:
        assert qemu_io(path, "read -P 0xab 0 64k").returncode == 0
        # The disk is still writable in place by QEMU (COPIED flags restored).
        assert qemu_io(path, "write -P 0xcd 0 4k").returncode == 0
        assert_qemu_clean(path)


@needs_qemu_img
def test_qemu_img_apply_and_create_on_rrdbg_image(tmp_path: Path) -> None:
    """After ``snapshot -a`` the active L1 maps our vmstate; ``-c`` copies it again."""
    assert QEMU_IMG is not None
    path = tmp_path / "apply.qcow2"
    with Qcow2Image.create(path, virtual_size=1 * MiB) as img:
        cs = img.cluster_size
        _, map1 = img.add_snapshot("s1", 1, 3 * cs, {0: b"a", 2: b"c"})
    assert run(QEMU_IMG, "snapshot", "-a", "s1", str(path)).returncode == 0
    assert run(QEMU_IMG, "snapshot", "-c", "qs", str(path)).returncode == 0
    assert_qemu_clean(path)
    with Qcow2Image.open(path, writable=True) as img:
        s1 = img.find("s1")
        assert s1 is not None
        assert img.refcount(map1[0]) == 3  # s1, the active L1, and qs (copied from it)
        s2, _ = img.add_snapshot("s2", 2, 3 * cs, {0: map1[0], 1: b"b"})
        img.delete_snapshot("s1")
        assert img.read_vmstate(s2) == b"a".ljust(cs, b"\0") + b"b".ljust(cs, b"\0") + bytes(cs)
    assert_qemu_clean(path)
    assert run(QEMU_IMG, "snapshot", "-d", "qs", str(path)).returncode == 0
    with Qcow2Image.open(path, writable=True) as img:
        img.delete_snapshot("s2")
        assert img.snapshots() == []
    assert_qemu_clean(path)


# -- stateful: random adds, shares, holes and deletes --------------------------------------


class ImageMachine(RuleBasedStateMachine):
    """The image against a model: name -> expected vmstate, and who shares which cluster."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="rrdbg-qcow2-"))
        self.path = self.tmp / "img.qcow2"
        self.expected: dict[str, bytes] = {}
        self.maps: dict[str, dict[int, int]] = {}
        self.counter = 0

    @initialize(cluster_bits=st.sampled_from([9, 12]), virtual_size=st.sampled_from([0, 64 * KiB]))
    def create(self, cluster_bits: int, virtual_size: int) -> None:
        self.img = Qcow2Image.create(
            self.path, virtual_size=virtual_size, cluster_bits=cluster_bits, sync=False
        )

    @rule(data=st.data())
    def add(self, data: st.DataObject) -> None:
        cs = self.img.cluster_size
        size = data.draw(st.integers(0, 80 * cs), label="vm_state_size")
        n = -(-size // cs)
        live = [(name, i, h) for name, m in self.maps.items() for i, h in m.items()]
        clusters: dict[int, bytes | int] = {}
        blob = bytearray(n * cs)
        for index in data.draw(st.sets(st.integers(0, max(0, n - 1)), max_size=6)) if n else ():
            choice = data.draw(st.sampled_from(["new", "share"] if live else ["new"]))
            if choice == "share":
                name, i, host = data.draw(st.sampled_from(live))
                clusters[index] = host
                blob[index * cs : (index + 1) * cs] = self.expected[name][i * cs : (i + 1) * cs]
            else:
                chunk = data.draw(st.binary(min_size=1, max_size=cs))
                clusters[index] = chunk
                blob[index * cs : index * cs + len(chunk)] = chunk
        self.counter += 1
        name = f"s{self.counter}"
        info, mapping = self.img.add_snapshot(name, self.counter, size, clusters)
        assert info.icount == self.counter
        assert set(mapping) == set(clusters)
        # Whole clusters, including bytes past vm_state_size that a sharer will see.
        self.expected[name] = bytes(blob)
        self.maps[name] = mapping

    @precondition(lambda self: bool(self.expected))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.expected)))
        self.img.delete_snapshot(name)
        del self.expected[name]
        del self.maps[name]

    @precondition(lambda self: bool(self.expected))
    @rule(data=st.data())
    def delete_then_add(self, data: st.DataObject) -> None:
        """The add right after a delete reuses the clusters it freed."""
        end = Path(self.img.path).stat().st_size
        self.delete(data)
        self.add(data)
        name = f"s{self.counter}"
        if any(host < end for host in self.maps[name].values()):
            event("reused freed clusters")

    @rule()
    def qemu_img_check(self) -> None:
        if QEMU_IMG:
            assert_qemu_clean(self.path)

    @rule()
    def reopen(self) -> None:
        self.img.close()
        self.img = Qcow2Image.open(self.path, writable=True, sync=False)

    @invariant()
    def snapshots_read_back(self) -> None:
        if not hasattr(self, "img"):
            return
        infos = {s.name: s for s in self.img.snapshots()}
        assert set(infos) == set(self.expected)
        for name, info in infos.items():
            assert self.img.read_vmstate(info) == self.expected[name][: info.vm_state_size]
            assert self.img.snapshot_clusters(info) == self.maps[name]
        users = Counter(h for m in self.maps.values() for h in m.values())
        for host, count in users.items():
            assert self.img.refcount(host) == count

    def teardown(self) -> None:
        if hasattr(self, "img"):
            self.img.close()
            if QEMU_IMG:
                assert_qemu_clean(self.path)
        shutil.rmtree(self.tmp, ignore_errors=True)


ImageMachine.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestImageMachine = ImageMachine.TestCase


# -- bad input ------------------------------------------------------------------------------


@pytest.fixture
def valid(tmp_path: Path) -> Path:
    """An image with two snapshots, the table last in the file."""
    path = tmp_path / "img.qcow2"
    with Qcow2Image.create(path, virtual_size=1 * MiB, cluster_bits=12, sync=False) as img:
        img.add_snapshot("one", 1, 5000, {0: b"1", 1: b"2"})
        img.add_snapshot("two", 2, 100, {0: b"3"})
    return path


def test_bad_truncated_header(valid: Path) -> None:
    valid.write_bytes(valid.read_bytes()[:50])
    assert "header truncated" in open_error(valid)


def test_bad_magic(valid: Path) -> None:
    patch(valid, 0, b"QFI\x00")
    assert "magic" in open_error(valid)


def test_bad_version_2(valid: Path) -> None:
    patch(valid, 4, (2).to_bytes(4, "big"))
    message = open_error(valid)
    assert "version 2" in message
    assert "compat=1.1" in message


def test_bad_version_4(valid: Path) -> None:
    patch(valid, 4, (4).to_bytes(4, "big"))
    assert "version 4" in open_error(valid)


@pytest.mark.parametrize(
    ("bit", "words"),
    [(0, "dirty"), (1, "corrupt"), (2, "external data"), (4, "extended L2"), (40, "unknown")],
)
def test_bad_incompatible_features(valid: Path, bit: int, words: str) -> None:
    patch(valid, 72, (1 << bit).to_bytes(8, "big"))
    message = open_error(valid)
    assert "incompatible_features" in message
    assert words in message


def test_bad_compression_type(valid: Path) -> None:
    patch(valid, 104, b"\x01")  # zstd without incompatible bit 3
    assert "compression_type" in open_error(valid)


def test_bad_refcount_order(valid: Path) -> None:
    patch(valid, 96, (5).to_bytes(4, "big"))
    message = open_error(valid)
    assert "refcount_order 5" in message
    assert "32-bit" in message


@pytest.mark.parametrize("bits", [8, 22, 0xFFFFFFFF])
def test_bad_cluster_bits(valid: Path, bits: int) -> None:
    patch(valid, 20, bits.to_bytes(4, "big"))
    assert "cluster_bits" in open_error(valid)


def test_bad_backing_file_and_crypt(valid: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.qcow2"
    shutil.copyfile(valid, other)
    patch(valid, 8, (0x200).to_bytes(8, "big"))
    assert "backing" in open_error(valid)
    patch(other, 32, (1).to_bytes(4, "big"))
    assert "crypt_method" in open_error(other)


def test_bad_snapshot_table_past_eof(valid: Path) -> None:
    past_end = (valid.stat().st_size + 0x10000) & ~0xFFF
    patch(valid, 64, past_end.to_bytes(8, "big"))
    assert "snapshots_offset" in open_error(valid)


def test_bad_snapshot_table_unaligned(valid: Path) -> None:
    offset = read_header(valid).snapshots_offset
    patch(valid, 64, (offset + 8).to_bytes(8, "big"))
    assert "snapshots_offset" in open_error(valid)


def test_bad_too_many_snapshots(valid: Path) -> None:
    patch(valid, 60, (65537).to_bytes(4, "big"))
    assert "nb_snapshots 65537" in open_error(valid)


def test_bad_entry_name_past_table(valid: Path) -> None:
    table = read_header(valid).snapshots_offset
    second = table + 72  # entry 0: 40 + 24 + "1" + "one" = 68, padded to 72
    patch(valid, second + 14, (0xFFFF).to_bytes(2, "big"))
    message = open_error(valid)
    assert f"snapshot table entry 1 at offset {second:#x}: name runs past the table" in message


def test_bad_entry_extra_data_too_large(valid: Path) -> None:
    table = read_header(valid).snapshots_offset
    patch(valid, table + 36, (2000).to_bytes(4, "big"))
    assert "extra_data_size 2000" in open_error(valid)


def test_bad_entry_l1_past_eof(valid: Path) -> None:
    table = read_header(valid).snapshots_offset
    patch(valid, table + 8, (0x100000).to_bytes(4, "big"))
    assert "L1 table" in open_error(valid)


def test_bad_l1_too_small(valid: Path) -> None:
    patch(valid, 24, (1 << 40).to_bytes(8, "big"))  # virtual size no longer fits the L1
    assert "l1_size" in open_error(valid)


def test_bad_refcount_table_entry(valid: Path) -> None:
    patch(valid, 4096 + 8, (0x1A00).to_bytes(8, "big"))
    assert "refcount table entry 1" in open_error(valid)


def test_missing_file(tmp_path: Path) -> None:
    assert "cannot open" in open_error(tmp_path / "absent.qcow2")


def test_compressed_vmstate_refused(valid: Path) -> None:
    with Qcow2Image.open(valid, writable=False) as img:
        info = img.find("one")
        assert info is not None
        l1_offset = info.l1_table_offset + 8 * size_to_l1(img.virtual_size, img.cluster_bits)
    l2_offset = int.from_bytes(valid.read_bytes()[l1_offset : l1_offset + 8], "big")
    patch(valid, l2_offset, ((1 << 62) | 0x1234).to_bytes(8, "big"))
    with Qcow2Image.open(valid, writable=False) as img:
        info = img.find("one")
        assert info is not None
        with pytest.raises(SnapshotFormatError, match="compressed vmstate not supported"):
            img.read_vmstate(info)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flips=st.lists(
        st.tuples(st.integers(0, 16 * 4096 - 1), st.integers(1, 255)), min_size=1, max_size=8
    ),
    seed=st.integers(0, 3),
)
def test_fuzz_flipped_bytes_only_raise_snapshot_format_error(
    flips: list[tuple[int, int]], seed: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.qcow2"
        with Qcow2Image.create(path, virtual_size=1 * MiB, cluster_bits=12, sync=False) as img:
            img.add_snapshot("one", 1, 5000, {0: b"1", 1: b"2"})
            img.add_snapshot("two", 2, 100, {0: b"3"})
        data = bytearray(path.read_bytes())
        # Seed 0 flips in the header area, others anywhere in the first clusters.
        for offset, xor in flips:
            where = offset % 112 if seed == 0 else offset
            if where < len(data):
                data[where] ^= xor
        path.write_bytes(bytes(data))
        message = ""
        try:
            with Qcow2Image.open(path, writable=True, sync=False) as img:
                for info in img.snapshots():
                    img.snapshot_clusters(info)
                    if info.vm_state_size <= 16 * MiB:
                        img.read_vmstate(info)
                img.add_snapshot("three", 3, 4096, {0: b"x"})
                img.delete_snapshot("three")
        except SnapshotFormatError as exc:
            message = str(exc)
        event("rejected" if message else "accepted")
        assert not message or str(path) in message
