"""Machine state through a qcow2 snapshot: save, load elsewhere, same digest; sharing."""

from __future__ import annotations

from pathlib import Path

import pytest

from rrdbg.errors import SnapshotFormatError
from rrdbg.machine.host import SeededHost
from rrdbg.machine.machine import LinuxMachine
from rrdbg.snapshot.qcow2 import Qcow2Image
from rrdbg.snapshot.vmstate import HEADER_CLUSTERS, SnapshotStore, VmHeader
from tests.conftest import guest


def machine(name: str, sink: int, *args: str) -> LinuxMachine:
    host = SeededHost(4, stdout_fd=sink, stderr_fd=sink)
    return LinuxMachine(guest(name), [name, *args], host)


@pytest.mark.parametrize(("name", "k"), [("malloc", 3_000_000), ("smc", 5_000), ("tls", 5_000)])
def test_save_load_round_trip_then_same_end(
    name: str, k: int, tmp_path: Path, devnull: int
) -> None:
    ref = machine(name, devnull)
    ref.run_to_end()
    a = machine(name, devnull)
    a.run(k)
    with Qcow2Image.create(str(tmp_path / "i.qcow2"), sync=False) as image:
        store = SnapshotStore(image)
        info = store.save(a, "s", b"cursor-bytes")
        assert info.icount == k
        b = machine(name, devnull)
        b.run(k // 3)  # a different state to overwrite, memory map included
        assert SnapshotStore(image).load(b, info) == b"cursor-bytes"
    assert b.icount == k
    assert b.digest() == a.digest()
    b.run_to_end()
    assert b.digest() == ref.digest()


def test_unchanged_chunks_are_shared(tmp_path: Path, devnull: int) -> None:
    m = machine("compute", devnull, "3")
    with Qcow2Image.create(str(tmp_path / "i.qcow2"), sync=False) as image:
        store = SnapshotStore(image)
        first = store.save(m, "a", b"")
        m.run(m.icount + 10_000)
        second = store.save(m, "b", b"")
        one = image.snapshot_clusters(first)
        two = image.snapshot_clusters(second)
        memory = [i for i in two if i >= HEADER_CLUSTERS]
        shared = [i for i in memory if one.get(i) == two[i]]
        # 10k instructions rewrite the table being computed and the stack,
        # not the program text or the libc data.
        assert len(shared) >= len(memory) // 2
        assert all(image.refcount(two[i]) == 2 for i in shared)
        changed = len(memory) - len(shared)
        assert store.last_new_bytes <= (changed + 1) * image.cluster_size


def test_corrupt_vmstate_header_is_a_format_error(tmp_path: Path, devnull: int) -> None:
    with pytest.raises(SnapshotFormatError, match="bad magic"):
        VmHeader.decode(b"NOTVMST!" + bytes(100), "x")
    m = machine("hello", devnull)
    header = VmHeader(0, b"", (), {}, m.linux.state.to_json(), m.engine.context_bytes(), {})
    data = header.encode()
    for cut in (10, 20, len(data) - 1):
        with pytest.raises(SnapshotFormatError):
            VmHeader.decode(data[:cut], "x")
    assert VmHeader.decode(data, "x") == header


def test_a_flipped_bit_anywhere_in_a_snapshot_is_caught_on_load(
    tmp_path: Path, devnull: int
) -> None:
    # Version 2 vmstates carry a CRC-32C of the header and of every memory
    # chunk: a damaged snapshot is refused, and the machine is left as it was.
    m = machine("hello", devnull)
    m.run(5000)
    image = Qcow2Image.create(str(tmp_path / "s.qcow2"))
    store = SnapshotStore(image)
    info = store.save(m, "s", b"\0" * 12)
    clusters = image.snapshot_clusters(info)
    m.run(9000)
    before = m.digest()
    for index in (0, HEADER_CLUSTERS, max(clusters)):
        offset = clusters[index] + 100
        with open(image.path, "r+b") as f:
            f.seek(offset)
            byte = f.read(1)[0]
            f.seek(offset)
            f.write(bytes([byte ^ 0x10]))
        fresh = Qcow2Image.open(image.path, writable=False)
        with pytest.raises(SnapshotFormatError, match="damaged"):
            SnapshotStore(fresh).load(m, fresh.find("s"))  # type: ignore[arg-type]
        assert m.digest() == before
        fresh.close()
        with open(image.path, "r+b") as f:
            f.seek(offset)
            f.write(bytes([byte]))
