"""qcow2 v3 images whose internal snapshots hold rrdbg checkpoints.

Role: the only module that reads or writes qcow2 bytes.  A checkpoint is an
internal snapshot in the way QEMU's record/replay ``rrsnapshot`` stores one:
the VM state (an opaque blob to this module) lives at the virtual offset just
past the virtual disk, ``size_to_l1(disk_size) << (cluster_bits + l2_bits)``
(QEMU's ``qcow2_vm_state_offset``), and the instruction count is the snapshot
table entry's ``icount`` (entry bytes 56-63).  Byte-level facts:
docs/snapshot-format.md and /work/shared/reference/qcow2.md.

Theory of operation:
- Every on-disk structure is a declarative big-endian ``BeStruct`` (a frozen
  dataclass whose fields carry their ``struct`` codes), so layouts read like
  the specification.  ``_converted`` is the one place where ``struct.error``
  becomes ``SnapshotFormatError``; ``_io`` is the one place for ``OSError``.
- The refcount table and all refcount blocks are held in memory.  An operation
  collects refcount changes as ``{cluster index: delta}``, checks them all
  (no overflow, no underflow, a block covers every cluster) before the first
  byte is written, and then writes each touched refcount block once.
- Allocation takes the lowest free clusters (refcount 0) inside the file first,
  from an in-memory free-cluster index built lazily from the cached refcount
  blocks, and appends at the end of the file only when no free run is long
  enough.  Clusters an operation frees (all after its header commit) enter the
  index when the operation ends, so only a later operation reuses them: the
  committed header never references a cluster being overwritten.
  ``delete_snapshot`` truncates free clusters off the end of the file.
- Write order of ``add_snapshot``: data clusters, L2 tables, L1 table, new
  snapshot table, refcount increments, COPIED flags of the active tables,
  header (the commit point), then the old snapshot table's release.  A crash
  before the header write leaks clusters (or leaves them free) but never
  corrupts; ``delete_snapshot`` likewise commits with the header and frees
  afterwards.
- The active L1 (the virtual disk) is never rewritten except for the COPIED
  bits (bit 63) of its L1/L2 entries, which QEMU keeps equal to "refcount is
  exactly 1" (``qcow2_update_snapshot_refcount``) and ``qemu-img check``
  verifies.  The disk's contents never change.

Invariants: after every public method returns, refcounts are exact (``qemu-img
check`` reports no errors and no leaks); every error raised is a
``SnapshotFormatError`` whose message names the file and the field or offset.
Imports nothing from rrdbg but ``rrdbg.errors``.
"""

from __future__ import annotations

import heapq
import inspect
import os
import re
import struct
import time
import typing
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Annotated, ClassVar, Self

from rrdbg.errors import SnapshotFormatError

__all__ = [
    "Header",
    "HeaderExtension",
    "HeaderTail",
    "Qcow2Image",
    "SnapshotEntryFixed",
    "SnapshotExtraData",
    "SnapshotInfo",
    "size_to_l1",
]

# -- declarative big-endian structs ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Code:
    """The ``struct`` format code of one field, carried as ``Annotated`` metadata."""

    code: str


def raw(size: int) -> _Code:
    """A fixed-size byte string field: ``name: Annotated[bytes, raw(4)]``."""
    return _Code(f"{size}s")


U8 = Annotated[int, _Code("B")]
U16 = Annotated[int, _Code("H")]
U32 = Annotated[int, _Code("I")]
U64 = Annotated[int, _Code("Q")]


@contextmanager
def _converted(where: str) -> Iterator[None]:
    """The one place where ``struct.error`` becomes ``SnapshotFormatError``."""
    try:
        yield
    except struct.error as exc:
        raise SnapshotFormatError(f"{where}: {exc}") from None


class BeStruct:
    """Base of the big-endian structs: the subclass's fields, in order, are the layout.

    Subclasses are ``@dataclass(frozen=True, slots=True)`` classes whose every
    field is annotated with a ``_Code`` (``U32``, ``Annotated[bytes, raw(4)]``);
    one ``struct.Struct`` is compiled from them when the class is created.
    """

    __slots__ = ()
    _struct: ClassVar[struct.Struct]
    _names: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        hints = typing.get_type_hints(cls, include_extras=True)
        codes: list[str] = []
        names: list[str] = []
        for name in inspect.get_annotations(cls):
            metadata = getattr(hints[name], "__metadata__", ())
            code = next((m for m in metadata if isinstance(m, _Code)), None)
            if code is None:
                raise TypeError(f"{cls.__name__}.{name} has no struct code")
            codes.append(code.code)
            names.append(name)
        cls._struct = struct.Struct(">" + "".join(codes))
        cls._names = tuple(names)

    @classmethod
    def struct_size(cls) -> int:
        """The packed size in bytes."""
        return cls._struct.size

    @classmethod
    def unpack_from(cls, buf: bytes | bytearray, offset: int = 0, *, where: str = "") -> Self:
        """Decode ``cls.struct_size()`` bytes of ``buf`` at ``offset``.

        Raises:
            SnapshotFormatError: ``buf`` is too short (``where`` prefixes the message).
        """
        with _converted(where or cls.__name__):
            values = cls._struct.unpack_from(buf, offset)
        make: Callable[..., Self] = cls
        return make(*values)

    def pack(self) -> bytes:
        """Encode; a value that does not fit its field raises ``SnapshotFormatError``."""
        with _converted(f"{type(self).__name__}: cannot encode"):
            return self._struct.pack(*(getattr(self, name) for name in self._names))


def _unpack_u64s(data: bytes, where: str) -> tuple[int, ...]:
    """A big-endian u64 array (L1 and L2 tables, the refcount table)."""
    with _converted(where):
        return struct.unpack(f">{len(data) // 8}Q", data)


def _pack_u64s(values: list[int], where: str) -> bytes:
    with _converted(where):
        return struct.pack(f">{len(values)}Q", *values)


@dataclass(frozen=True, slots=True)
class Header(BeStruct):
    """The qcow2 header, bytes 0-103 (qcow2.md §1)."""

    magic: Annotated[bytes, raw(4)]
    version: U32
    backing_file_offset: U64
    backing_file_size: U32
    cluster_bits: U32
    size: U64
    crypt_method: U32
    l1_size: U32
    l1_table_offset: U64
    refcount_table_offset: U64
    refcount_table_clusters: U32
    nb_snapshots: U32
    snapshots_offset: U64
    incompatible_features: U64
    compatible_features: U64
    autoclear_features: U64
    refcount_order: U32
    header_length: U32


@dataclass(frozen=True, slots=True)
class HeaderTail(BeStruct):
    """Header bytes 104-111, present when ``header_length >= 112``."""

    compression_type: U8
    padding: Annotated[bytes, raw(7)]


@dataclass(frozen=True, slots=True)
class HeaderExtension(BeStruct):
    """The 8-byte head of a header extension; ``length`` data bytes follow, padded to 8."""

    type: U32
    length: U32


@dataclass(frozen=True, slots=True)
class SnapshotEntryFixed(BeStruct):
    """Snapshot table entry bytes 0-39 (qcow2.md §4)."""

    l1_table_offset: U64
    l1_size: U32
    id_str_size: U16
    name_size: U16
    date_sec: U32
    date_nsec: U32
    vm_clock_nsec: U64
    vm_state_size: U32
    extra_data_size: U32


@dataclass(frozen=True, slots=True)
class SnapshotExtraData(BeStruct):
    """The extra data QEMU writes (24 bytes): entry bytes 40-63."""

    vm_state_size_large: U64
    disk_size: U64
    icount: U64


# -- format constants ----------------------------------------------------------------------

MAGIC = b"QFI\xfb"
VERSION = 3
HEADER_LENGTH = 112  # what qemu-img 7.2 writes: 104 bytes + compression type + padding
REFCOUNT_ORDER = 4  # 16-bit refcounts, the only width rrdbg handles
MIN_CLUSTER_BITS = 9
MAX_CLUSTER_BITS = 21
OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00  # bits 9-55 of L1 and L2 entries
REFTABLE_OFFSET_MASK = 0xFFFF_FFFF_FFFF_FE00
OFLAG_COPIED = 1 << 63
OFLAG_COMPRESSED = 1 << 62
OFLAG_ZERO = 1
ICOUNT_NONE = (1 << 64) - 1  # -1: icount disabled
MAX_SNAPSHOTS = 65536  # QCOW_MAX_SNAPSHOTS
MAX_SNAPSHOTS_SIZE = 64 << 20  # QCOW_MAX_SNAPSHOTS_SIZE
MAX_EXTRA_DATA = 1024  # QCOW_MAX_SNAPSHOT_EXTRA_DATA
MAX_L1_BYTES = 32 << 20  # QCOW_MAX_L1_SIZE
MAX_REFTABLE_BYTES = 8 << 20  # QCOW_MAX_REFTABLE_SIZE
EXT_END = 0
EXT_EXTERNAL_DATA_FILE = 0x44415441

INCOMPAT_DIRTY = 1 << 0
INCOMPAT_CORRUPT = 1 << 1
INCOMPAT_DATA_FILE = 1 << 2
INCOMPAT_COMPRESSION = 1 << 3
INCOMPAT_EXTL2 = 1 << 4
_INCOMPAT_REFUSED = {
    INCOMPAT_DIRTY: "bit 0 (dirty): not closed cleanly; run 'qemu-img check -r all'",
    INCOMPAT_CORRUPT: "bit 1 (corrupt): marked corrupt; run 'qemu-img check -r all'",
    INCOMPAT_DATA_FILE: "bit 2 (external data file) is not supported",
    INCOMPAT_EXTL2: "bit 4 (extended L2 entries) is not supported",
}
_AUTOCLEAR_KNOWN = 0b11  # bitmaps, raw external data


def size_to_l1(size: int, cluster_bits: int) -> int:
    """L1 entries needed to map ``size`` virtual bytes: QEMU's ``size_to_l1``."""
    shift = cluster_bits + (cluster_bits - 3)
    return (size + (1 << shift) - 1) >> shift


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One entry of the snapshot table, decoded.

    ``vm_state_size`` is ``vm_state_size_large`` when the extra data holds it;
    ``disk_size`` defaults to the image's current size when absent; ``icount``
    is None when it is -1 or absent.  ``extra`` is the raw extra data, kept
    verbatim when the table is rewritten.
    """

    id: str
    name: str
    icount: int | None
    vm_state_size: int
    date_sec: int
    date_nsec: int
    vm_clock_nsec: int
    disk_size: int
    l1_table_offset: int
    l1_size: int
    extra: bytes


@dataclass(frozen=True, slots=True)
class _Entry:
    """A table entry as decoded, plus its bytes (without padding) to rewrite it verbatim."""

    info: SnapshotInfo
    raw: bytes


def _encode_entry(fixed: SnapshotEntryFixed, extra: bytes, id_str: bytes, name: bytes) -> bytes:
    return fixed.pack() + extra + id_str + name


def _padded(entry_raw: bytes) -> bytes:
    return entry_raw + bytes(-len(entry_raw) % 8)


class Qcow2Image:
    """An open qcow2 v3 image: list, read, add and delete internal snapshots.

    Use ``Qcow2Image.create()`` or ``Qcow2Image.open()``; the object is a context
    manager and must be closed.  Not thread-safe; one writer per file (no locks
    are taken: do not write while QEMU has the image open).
    """

    # In-memory state, all (re)built from the file by _load().
    _header: Header
    _file_size: int
    _cb: int  # cluster_bits
    _cs: int  # cluster size
    _l2_entries: int
    _reftable_offset: int
    _reftable_capacity: int
    _reftable: dict[int, int]  # refcount table index -> refcount block offset
    _rc_blocks: dict[int, bytearray]  # refcount table index -> block contents
    _rc_per_block: int
    _unwritten_blocks: set[int]  # new blocks not yet on disk nor in the table
    _next_free: int  # first cluster index past everything allocated
    # Free-cluster index (see _free_clusters): clusters below _next_free, covered by a
    # refcount block, with refcount 0 and not allocated by the operation in progress.
    # None until the first allocation needs it.  _free_heap holds every member of
    # _free (and possibly stale extra entries) for lowest-first allocation.
    _free: set[int] | None
    _free_heap: list[int]
    _entries: list[_Entry]
    _table_size: int  # bytes of the current snapshot table
    # Host offsets add_snapshot may share: every snapshot's vmstate clusters, computed
    # lazily, then kept up to date (added on add, dropped when freed).
    _vm_data: set[int] | None

    def __init__(self, path: str, fd: int, *, writable: bool, sync: bool) -> None:
        """Private: use ``create()`` or ``open()``."""
        self._path = path
        self._fd: int | None = fd
        self._writable = writable
        self._sync = sync
        self._load()

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        virtual_size: int = 0,
        cluster_bits: int = 16,
        sync: bool = True,
    ) -> Qcow2Image:
        """Create a new image laid out like ``qemu-img create -f qcow2``, opened writable.

        Layout: header (cluster 0), refcount table (cluster 1), refcount block
        (cluster 2), active L1 with ``size_to_l1(virtual_size)`` zero entries
        (cluster 3; absent, with ``l1_table_offset`` 0, when that is 0 entries, as
        qemu-img does for size 0).

        Args:
            path: the file to create; it must not exist.
            virtual_size: the virtual disk size in bytes, a multiple of 512.
            cluster_bits: log2 of the cluster size, 9..21.
            sync: fsync around each commit point (crash safety against power loss).

        Raises:
            SnapshotFormatError: the file exists, cannot be written, or an argument is invalid.
        """
        name = os.fspath(path)
        if not MIN_CLUSTER_BITS <= cluster_bits <= MAX_CLUSTER_BITS:
            raise SnapshotFormatError(
                f"{name}: cluster_bits {cluster_bits} outside"
                f" {MIN_CLUSTER_BITS}..{MAX_CLUSTER_BITS}"
            )
        if virtual_size < 0 or virtual_size % 512:
            raise SnapshotFormatError(
                f"{name}: virtual size {virtual_size} is not a non-negative multiple of 512"
            )
        cs = 1 << cluster_bits
        l1_size = size_to_l1(virtual_size, cluster_bits)
        if l1_size * 8 > MAX_L1_BYTES:
            raise SnapshotFormatError(f"{name}: virtual size {virtual_size} is too large")
        header = Header(
            magic=MAGIC,
            version=VERSION,
            backing_file_offset=0,
            backing_file_size=0,
            cluster_bits=cluster_bits,
            size=virtual_size,
            crypt_method=0,
            l1_size=l1_size,
            l1_table_offset=3 * cs if l1_size else 0,
            refcount_table_offset=cs,
            refcount_table_clusters=1,
            nb_snapshots=0,
            snapshots_offset=0,
            incompatible_features=0,
            compatible_features=0,
            autoclear_features=0,
            refcount_order=REFCOUNT_ORDER,
            header_length=HEADER_LENGTH,
        )
        tail = HeaderTail(compression_type=0, padding=bytes(7))
        used = 4 if l1_size else 3
        image = bytearray(3 * cs + l1_size * 8)
        image[: HEADER_LENGTH + 8] = (header.pack() + tail.pack()).ljust(HEADER_LENGTH + 8, b"\0")
        image[cs : cs + 8] = (2 * cs).to_bytes(8, "big")
        image[2 * cs : 2 * cs + 2 * used] = b"\x00\x01" * used
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise SnapshotFormatError(f"{name}: cannot create: the file exists") from None
        except OSError as exc:
            raise SnapshotFormatError(f"{name}: cannot create: {exc.strerror}") from None
        try:
            with _io(name, "write the new image"):
                view = memoryview(image)
                while view:
                    view = view[os.write(fd, view) :]
                if sync:
                    os.fsync(fd)
            return cls(name, fd, writable=True, sync=sync)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, writable: bool, sync: bool = True) -> Qcow2Image:
        """Open and validate an existing qcow2 v3 image (rrdbg's, or any qemu-img made).

        Raises:
            SnapshotFormatError: the file cannot be opened, is not qcow2 v3, uses an
                unsupported feature, or its header or snapshot table is malformed.
        """
        name = os.fspath(path)
        try:
            fd = os.open(name, os.O_RDWR if writable else os.O_RDONLY)
        except OSError as exc:
            raise SnapshotFormatError(f"{name}: cannot open: {exc.strerror}") from None
        try:
            return cls(name, fd, writable=writable, sync=sync)
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- properties ------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._path

    @property
    def writable(self) -> bool:
        return self._writable

    @property
    def cluster_bits(self) -> int:
        return self._cb

    @property
    def cluster_size(self) -> int:
        return self._cs

    @property
    def virtual_size(self) -> int:
        """The virtual disk size (header ``size``); new snapshots record it as disk_size."""
        return self._header.size

    @property
    def vm_state_offset(self) -> int:
        """Virtual offset of vmstate cluster 0 for the current size (``qcow2_vm_state_offset``)."""
        return size_to_l1(self._header.size, self._cb) << (2 * self._cb - 3)

    # -- snapshots: reading ----------------------------------------------------------------

    def snapshots(self) -> list[SnapshotInfo]:
        """All snapshots, in table order."""
        self._require_fd()
        return [entry.info for entry in self._entries]

    def find(self, name_or_id: str) -> SnapshotInfo | None:
        """The snapshot with this id, else with this name (QEMU's lookup order)."""
        self._require_fd()
        entry = self._find_entry(name_or_id)
        return entry.info if entry else None

    def snapshot_clusters(self, info: SnapshotInfo) -> dict[int, int]:
        """``{vmstate cluster index: host offset}`` of a snapshot's allocated vmstate clusters.

        Zero-flagged and unallocated entries are absent (they read as zeros).

        Raises:
            SnapshotFormatError: ``info`` is not a snapshot of this image, a table is
                malformed, or the vmstate uses compressed clusters.
        """
        self._entry_for(info)
        return self._vm_map(info, strict=True)

    def read_cluster(self, host_offset: int) -> bytes:
        """One host cluster (zero-padded past the end of the file).

        Raises:
            SnapshotFormatError: the offset is not an allocated cluster of this image.
        """
        self._check_cluster_offset(host_offset, "read_cluster offset")
        if self._refcount(host_offset >> self._cb) == 0:
            raise self._fail(f"cluster at offset {host_offset:#x} is not allocated (refcount 0)")
        return self._pread(host_offset, self._cs, exact=False).ljust(self._cs, b"\0")

    def read_vmstate(self, info: SnapshotInfo) -> bytes:
        """The first ``vm_state_size`` bytes of a snapshot's vmstate (zeros where unallocated).

        Raises:
            SnapshotFormatError: as ``snapshot_clusters``, or ``vm_state_size`` exceeds
                what the snapshot's L1 table can map.
        """
        self._entry_for(info)
        vm_index = size_to_l1(info.disk_size, self._cb)
        mapped = max(0, info.l1_size - vm_index) * self._l2_entries * self._cs
        if info.vm_state_size > mapped:
            raise self._fail(
                f"snapshot {info.id}: vm_state_size {info.vm_state_size} exceeds"
                f" the {mapped} bytes its L1 table (l1_size {info.l1_size}) maps"
            )
        out = bytearray(info.vm_state_size)
        cs = self._cs
        for index, host in sorted(self._vm_map(info, strict=True).items()):
            start = index * cs
            chunk = self._pread(host, min(cs, len(out) - start), exact=False)
            out[start : start + len(chunk)] = chunk
        return bytes(out)

    def refcount(self, host_offset: int) -> int:
        """The refcount of the host cluster containing ``host_offset``."""
        if host_offset < 0:
            raise self._fail(f"negative offset {host_offset}")
        return self._refcount(host_offset >> self._cb)

    # -- snapshots: writing ----------------------------------------------------------------

    def add_snapshot(
        self,
        name: str,
        icount: int,
        vm_state_size: int,
        clusters: Mapping[int, bytes | int],
        *,
        vm_clock_nsec: int = 0,
        date_ns: int | None = None,
    ) -> tuple[SnapshotInfo, dict[int, int]]:
        """Write a new internal snapshot and commit it.

        Args:
            name: unique, non-empty, no NUL, at most 65535 UTF-8 bytes.
            icount: the instruction count, 0 <= icount < 2**63 (entry bytes 56-63).
            vm_state_size: the vmstate length in bytes.
            clusters: vmstate cluster index -> ``bytes`` (at most one cluster, zero
                padded, written to a new cluster) or ``int`` (host offset of a vmstate
                cluster of an existing snapshot, shared: refcount + 1).  Indices must
                be below ``ceil(vm_state_size / cluster_size)``; absent ones read as zeros.
            vm_clock_nsec: the VM clock shown by ``qemu-img snapshot -l``.
            date_ns: creation time in ns since the epoch (default: now).

        Returns:
            The new snapshot and its ``{vmstate index: host offset}`` map.

        Raises:
            SnapshotFormatError: read-only image, invalid argument, duplicate name, a
                shared offset that is not a vmstate cluster, a full refcount table or an
                I/O error (the image is then left consistent, possibly with leaks).
        """
        self._require_writable()
        name_b = self._check_new_name(name)
        cs, cb = self._cs, self._cb
        self._check_range("icount", icount, 1 << 63)
        self._check_range("vm_state_size", vm_state_size, 1 << 64)
        self._check_range("vm_clock_nsec", vm_clock_nsec, 1 << 64)
        if date_ns is None:
            date_ns = time.time_ns()
        date_sec, date_nsec = divmod(date_ns, 1_000_000_000)
        self._check_range("date_ns", date_sec, 1 << 32)
        n_vm = _ceil_div(vm_state_size, cs)
        disk_size = self._header.size
        vm_index = size_to_l1(disk_size, cb)
        l1_size = vm_index + _ceil_div(n_vm, self._l2_entries)
        if l1_size * 8 > MAX_L1_BYTES:
            raise self._fail(
                f"vm_state_size {vm_state_size} needs an L1 of {l1_size} entries,"
                f" over QEMU's limit of {MAX_L1_BYTES // 8}"
            )
        new_data: dict[int, bytes] = {}
        shared: dict[int, int] = {}
        known = (
            self._vm_data_clusters()
            if any(isinstance(v, int) for v in clusters.values())
            else set()
        )
        for index, value in clusters.items():
            if not 0 <= index < n_vm:
                raise self._fail(
                    f"vmstate cluster index {index} outside 0..{n_vm - 1}"
                    f" (vm_state_size {vm_state_size})"
                )
            if isinstance(value, int):
                if value not in known or self._refcount(value >> cb) == 0:
                    raise self._fail(
                        f"cluster index {index}: offset {value:#x} is not a"
                        " vmstate cluster of an existing snapshot"
                    )
                shared[index] = value
            else:
                if len(value) > cs:
                    raise self._fail(
                        f"cluster index {index}: {len(value)} bytes exceed the cluster size {cs}"
                    )
                new_data[index] = bytes(value)
        new_id = self._next_id()
        entry_size = _ceil_div(40 + 24 + len(new_id) + len(name_b), 8) * 8
        if (
            len(self._entries) >= MAX_SNAPSHOTS
            or self._table_size + entry_size > MAX_SNAPSHOTS_SIZE
        ):
            raise self._fail("nb_snapshots: the snapshot table is full (QEMU's limits)")
        # The disk range of the L1 is the active L1's, shared as QEMU does.
        disk_l1, deltas = self._share_active_disk(vm_index)
        for host in shared.values():
            deltas[host >> cb] += 1
        self._check_refcount_deltas(deltas)

        with self._transaction():
            mapping = dict(shared)
            runs: list[tuple[int, list[bytes]]] = []
            for index in sorted(new_data):
                host = self._alloc(1, deltas)
                mapping[index] = host
                if runs and runs[-1][0] + len(runs[-1][1]) * cs == host:
                    runs[-1][1].append(new_data[index])
                else:
                    runs.append((host, [new_data[index]]))
            for start, chunks in runs:
                self._write_data_run(start, chunks)

            l1 = disk_l1 + [0] * (l1_size - vm_index)
            by_table: dict[int, dict[int, int]] = defaultdict(dict)
            for index, host in mapping.items():
                by_table[index // self._l2_entries][index % self._l2_entries] = host
            for table, slots in sorted(by_table.items()):
                l2 = [0] * self._l2_entries
                for slot, host in slots.items():
                    l2[slot] = host
                l2_offset = self._alloc(1, deltas)
                self._pwrite(l2_offset, _pack_u64s(l2, f"{self._path}: L2 table"))
                l1[vm_index + table] = l2_offset
            l1_offset = 0
            if l1_size:
                l1_offset = self._alloc(_ceil_div(l1_size * 8, cs), deltas)
                self._pwrite(l1_offset, _pack_u64s(l1, f"{self._path}: L1 table"))

            extra = SnapshotExtraData(
                vm_state_size_large=vm_state_size, disk_size=disk_size, icount=icount
            ).pack()
            id_b = new_id.encode()
            fixed = SnapshotEntryFixed(
                l1_table_offset=l1_offset,
                l1_size=l1_size,
                id_str_size=len(id_b),
                name_size=len(name_b),
                date_sec=date_sec,
                date_nsec=date_nsec,
                vm_clock_nsec=vm_clock_nsec,
                vm_state_size=vm_state_size if vm_state_size < 1 << 32 else 0,
                extra_data_size=len(extra),
            )
            info = SnapshotInfo(
                id=new_id,
                name=name,
                icount=icount,
                vm_state_size=vm_state_size,
                date_sec=date_sec,
                date_nsec=date_nsec,
                vm_clock_nsec=vm_clock_nsec,
                disk_size=disk_size,
                l1_table_offset=l1_offset,
                l1_size=l1_size,
                extra=extra,
            )
            entries = [*self._entries, _Entry(info, _encode_entry(fixed, extra, id_b, name_b))]
            self._commit_table(entries, deltas)
        if self._vm_data is not None:
            self._vm_data.update(mapping.values())
        return info, mapping

    def delete_snapshot(self, name_or_id: str) -> None:
        """Delete a snapshot (id first, then name, as QEMU) and release its clusters.

        Raises:
            SnapshotFormatError: read-only image, no such snapshot, malformed tables
                (checked before anything is written), or an I/O error.
        """
        self._require_writable()
        entry = self._find_entry(name_or_id)
        if entry is None:
            raise self._fail(f"no snapshot with id or name {name_or_id!r}")
        releases = self._snapshot_references(entry.info)
        with self._transaction():
            remaining = [e for e in self._entries if e is not entry]
            self._commit_table(remaining, defaultdict(int), releases=releases)
            self._trim_free_tail()
        if self._vm_data is not None:
            freed = {c << self._cb for c in releases if self._refcount(c) == 0}
            self._vm_data -= freed

    # -- internals: loading ----------------------------------------------------------------

    def _load(self) -> None:
        """Read and validate the header, refcounts and snapshot table into memory."""
        self._file_size = self._fstat_size()
        self._header = self._read_header()
        self._read_refcounts()
        self._entries, self._table_size = self._read_snapshot_table()
        self._vm_data = None
        self._free = None
        self._free_heap = []

    def _fail(self, message: str) -> SnapshotFormatError:
        """An error about this file: the message is prefixed with its path."""
        return SnapshotFormatError(f"{self._path}: {message}")

    def _read_header(self) -> Header:
        size = self._file_size
        if size < Header.struct_size():
            raise self._fail(f"header truncated: the file has {size} bytes, the header needs 104")
        data = self._pread(0, min(size, 1 << MAX_CLUSTER_BITS), exact=True)
        h = Header.unpack_from(data, where=f"{self._path}: header")
        if h.magic != MAGIC:
            raise self._fail(f"magic {h.magic!r} at offset 0 is not qcow2 ({MAGIC!r})")
        if h.version == 2:
            raise self._fail(
                "version 2 (compat=0.10) is not supported; convert with"
                " 'qemu-img amend -f qcow2 -o compat=1.1'"
            )
        if h.version != VERSION:
            raise self._fail(f"version {h.version} is not supported (only 3)")
        if not MIN_CLUSTER_BITS <= h.cluster_bits <= MAX_CLUSTER_BITS:
            raise self._fail(
                f"cluster_bits {h.cluster_bits} outside {MIN_CLUSTER_BITS}..{MAX_CLUSTER_BITS}"
            )
        self._cb = cb = h.cluster_bits
        self._cs = cs = 1 << cb
        self._l2_entries = cs // 8
        if not Header.struct_size() <= h.header_length <= min(cs, size) or h.header_length % 8:
            raise self._fail(
                f"header_length {h.header_length} must be a multiple of 8 in 104..{min(cs, size)}"
            )
        if h.backing_file_offset or h.backing_file_size:
            raise self._fail(
                f"backing_file_offset {h.backing_file_offset:#x}: backing files are not supported"
            )
        if h.crypt_method:
            raise self._fail(f"crypt_method {h.crypt_method}: encrypted images are not supported")
        for bit, why in _INCOMPAT_REFUSED.items():
            if h.incompatible_features & bit:
                raise self._fail(f"incompatible_features {why}")
        unknown = h.incompatible_features & ~((INCOMPAT_EXTL2 << 1) - 1)
        if unknown:
            raise self._fail(f"incompatible_features has unknown bits {unknown:#x}")
        compression = 0
        if h.header_length > Header.struct_size():
            compression = HeaderTail.unpack_from(data, Header.struct_size()).compression_type
        if compression not in {0, 1} or (
            compression != 0 and not h.incompatible_features & INCOMPAT_COMPRESSION
        ):
            raise self._fail(
                f"compression_type {compression} at offset 104 does not match"
                " incompatible_features bit 3"
            )
        if h.refcount_order != REFCOUNT_ORDER:
            bits = f" ({1 << h.refcount_order}-bit refcounts)" if h.refcount_order <= 6 else ""
            raise self._fail(
                f"refcount_order {h.refcount_order}{bits} is not supported; rrdbg needs 4"
                " (16-bit refcounts, qemu-img's default)"
            )
        if self._writable and h.autoclear_features & ~_AUTOCLEAR_KNOWN:
            raise self._fail(
                f"autoclear_features {h.autoclear_features:#x} has unknown bits; cannot write"
            )
        self._check_extensions(data, h.header_length)
        if h.refcount_table_clusters == 0 or h.refcount_table_clusters * cs > MAX_REFTABLE_BYTES:
            raise self._fail(f"refcount_table_clusters {h.refcount_table_clusters} out of range")
        self._check_table(
            "refcount_table_offset", h.refcount_table_offset, h.refcount_table_clusters * cs
        )
        if h.l1_size * 8 > MAX_L1_BYTES:
            raise self._fail(f"l1_size {h.l1_size} exceeds QEMU's limit {MAX_L1_BYTES // 8}")
        if h.l1_size < size_to_l1(h.size, cb):
            raise self._fail(
                f"l1_size {h.l1_size} cannot map the virtual size {h.size}"
                f" (needs {size_to_l1(h.size, cb)})"
            )
        if h.l1_size:
            self._check_table("l1_table_offset", h.l1_table_offset, h.l1_size * 8)
        if h.nb_snapshots > MAX_SNAPSHOTS:
            raise self._fail(f"nb_snapshots {h.nb_snapshots} exceeds {MAX_SNAPSHOTS}")
        if h.nb_snapshots:
            self._check_table("snapshots_offset", h.snapshots_offset, 40)
        return h

    def _check_extensions(self, data: bytes, start: int) -> None:
        """Walk the header extensions for bounds only; none changes what rrdbg does."""
        pos = start
        end = min(len(data), self._cs)
        while pos + HeaderExtension.struct_size() <= end:
            ext = HeaderExtension.unpack_from(data, pos)
            if ext.type == EXT_END:
                return
            if ext.type == EXT_EXTERNAL_DATA_FILE:
                raise self._fail(f"header extension at {pos:#x}: external data files unsupported")
            if pos + 8 + ext.length > end:
                raise self._fail(
                    f"header extension {ext.type:#x} at offset {pos:#x}: length {ext.length}"
                    " runs past the header cluster"
                )
            pos += 8 + ext.length + (-ext.length % 8)

    def _check_table(self, field: str, offset: int, nbytes: int) -> None:
        """A metadata table must be cluster aligned, non-zero and inside the file."""
        if offset == 0 or offset % self._cs:
            raise self._fail(f"{field} {offset:#x} is not a non-zero multiple of the cluster size")
        if offset + nbytes > self._file_size:
            raise self._fail(
                f"{field} {offset:#x}: the table ({nbytes} bytes) runs past the end of the"
                f" file ({self._file_size:#x})"
            )

    def _read_refcounts(self) -> None:
        h = self._header
        cb = self._cb
        raw_table = self._pread(h.refcount_table_offset, h.refcount_table_clusters * self._cs)
        table = _unpack_u64s(raw_table, f"{self._path}: refcount table")
        self._reftable_capacity = len(table)
        self._reftable_offset = h.refcount_table_offset
        self._rc_per_block = self._cs * 8 // 16
        # Refcount table index -> block offset, and the blocks themselves.
        self._reftable = {}
        self._rc_blocks = {}
        self._unwritten_blocks = set()
        seen: dict[int, int] = {}
        last_used = -1
        for index, entry in enumerate(table):
            offset = entry & REFTABLE_OFFSET_MASK
            if not offset:
                continue
            where = (
                f"refcount table entry {index} at offset {h.refcount_table_offset + 8 * index:#x}"
            )
            if offset % self._cs or offset >= self._file_size:
                raise self._fail(f"{where}: refcount block {offset:#x} unaligned or past the end")
            if offset in seen:
                raise self._fail(
                    f"{where}: refcount block {offset:#x} also in entry {seen[offset]}"
                )
            seen[offset] = index
            self._reftable[index] = offset
            block = bytearray(self._pread(offset, self._cs, exact=False).ljust(self._cs, b"\0"))
            self._rc_blocks[index] = block
            used = len(block.rstrip(b"\0"))
            if used:
                last_used = index * self._rc_per_block + (used - 1) // 2
        self._next_free = max(_ceil_div(self._file_size, self._cs), last_used + 1)
        for index, offset in self._reftable.items():
            if self._refcount(offset >> cb) == 0:
                raise self._fail(
                    f"refcount table entry {index}: refcount block {offset:#x} has refcount 0"
                )

    def _read_snapshot_table(self) -> tuple[list[_Entry], int]:
        h = self._header
        if h.nb_snapshots == 0:
            return [], 0
        start = h.snapshots_offset
        limit = min(self._file_size, start + MAX_SNAPSHOTS_SIZE)
        bound = (
            f"the file ends at {limit:#x}"
            if limit == self._file_size
            else f"QEMU's 64 MiB table limit ends at {limit:#x}"
        )
        buf = b""
        buf_start = start

        def need(pos: int, n: int, what: str, index: int, entry_at: int) -> bytes:
            nonlocal buf, buf_start
            if pos + n > limit:
                raise self._fail(
                    f"snapshot table entry {index} at offset {entry_at:#x}: {what} runs past"
                    f" the table ({bound})"
                )
            if pos + n > buf_start + len(buf):
                buf_start = pos
                buf = self._pread(pos, min(limit - pos, max(n, 1 << 20)))
            return buf[pos - buf_start : pos - buf_start + n]

        entries: list[_Entry] = []
        pos = start
        for index in range(h.nb_snapshots):
            at = pos
            where = f"{self._path}: snapshot table entry {index} at offset {at:#x}"
            head = need(pos, SnapshotEntryFixed.struct_size(), "fixed part", index, at)
            fixed = SnapshotEntryFixed.unpack_from(head, where=where)
            pos += len(head)
            if fixed.extra_data_size > MAX_EXTRA_DATA:
                raise SnapshotFormatError(
                    f"{where}: extra_data_size {fixed.extra_data_size} exceeds {MAX_EXTRA_DATA}"
                )
            extra = need(pos, fixed.extra_data_size, "extra data", index, at)
            pos += len(extra)
            id_b = need(pos, fixed.id_str_size, "id string", index, at)
            pos += len(id_b)
            name_b = need(pos, fixed.name_size, "name", index, at)
            pos += len(name_b)
            entry_raw = head + extra + id_b + name_b
            pos += -pos % 8
            if fixed.l1_size * 8 > MAX_L1_BYTES:
                raise SnapshotFormatError(f"{where}: l1_size {fixed.l1_size} exceeds QEMU's limit")
            if fixed.l1_table_offset % self._cs:
                raise SnapshotFormatError(
                    f"{where}: l1_table_offset {fixed.l1_table_offset:#x} is not cluster aligned"
                )
            if fixed.l1_size and fixed.l1_table_offset + fixed.l1_size * 8 > self._file_size:
                raise SnapshotFormatError(
                    f"{where}: L1 table at {fixed.l1_table_offset:#x} ({fixed.l1_size} entries)"
                    " runs past the end of the file"
                )
            padded_extra = extra.ljust(SnapshotExtraData.struct_size(), b"\0")
            ext = SnapshotExtraData.unpack_from(padded_extra, where=where)
            vm_state_size = ext.vm_state_size_large if len(extra) >= 8 else fixed.vm_state_size
            disk_size = ext.disk_size if len(extra) >= 16 else h.size
            icount = ext.icount if len(extra) >= 24 and ext.icount != ICOUNT_NONE else None
            info = SnapshotInfo(
                id=id_b.decode("utf-8", errors="replace"),
                name=name_b.decode("utf-8", errors="replace"),
                icount=icount,
                vm_state_size=vm_state_size,
                date_sec=fixed.date_sec,
                date_nsec=fixed.date_nsec,
                vm_clock_nsec=fixed.vm_clock_nsec,
                disk_size=disk_size,
                l1_table_offset=fixed.l1_table_offset,
                l1_size=fixed.l1_size,
                extra=extra,
            )
            entries.append(_Entry(info, entry_raw))
        return entries, pos - start

    # -- internals: I/O --------------------------------------------------------------------

    def _require_fd(self) -> int:
        if self._fd is None:
            raise self._fail("the image is closed")
        return self._fd

    def _fstat_size(self) -> int:
        with _io(self._path, "stat"):
            return os.fstat(self._require_fd()).st_size

    def _pread(self, offset: int, n: int, *, exact: bool = True) -> bytes:
        fd = self._require_fd()
        parts: list[bytes] = []
        got = 0
        with _io(self._path, f"read {n} bytes at offset {offset:#x}"):
            while got < n:
                chunk = os.pread(fd, n - got, offset + got)
                if not chunk:
                    break
                parts.append(chunk)
                got += len(chunk)
        if exact and got < n:
            raise self._fail(f"short read at offset {offset:#x}: {got} of {n} bytes")
        return b"".join(parts)

    def _pwrite(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        fd = self._require_fd()
        view = memoryview(data)
        with _io(self._path, f"write {len(view)} bytes at offset {offset:#x}"):
            while view:
                written = os.pwrite(fd, view, offset)
                view = view[written:]
                offset += written
        self._file_size = max(self._file_size, offset)

    def _write_data_run(self, start: int, chunks: list[bytes]) -> None:
        """Write consecutive data clusters in writes of at most 4 MiB."""
        per_write = max(1, (4 << 20) // self._cs)
        for i in range(0, len(chunks), per_write):
            group = chunks[i : i + per_write]
            data = b"".join(c.ljust(self._cs, b"\0") for c in group)
            self._pwrite(start + i * self._cs, data)

    def _barrier(self) -> None:
        if self._sync:
            with _io(self._path, "fsync"):
                os.fsync(self._require_fd())

    def _read_u64s(self, offset: int, count: int, what: str, *, skip: int = 0) -> tuple[int, ...]:
        """Entries ``skip .. skip + count - 1`` of the L1/L2 table at ``offset``."""
        start = offset + 8 * skip
        if offset % self._cs or offset == 0 or start + 8 * count > self._file_size:
            raise self._fail(
                f"{what} at offset {offset:#x} is unaligned, zero or runs past the end of the file"
            )
        return _unpack_u64s(self._pread(start, 8 * count), f"{self._path}: {what}")

    def _check_cluster_offset(self, offset: int, what: str) -> None:
        if offset <= 0 or offset % self._cs or offset >= self._file_size:
            raise self._fail(f"{what} {offset:#x} is not a cluster inside the file")

    # -- internals: refcounts and allocation -----------------------------------------------

    def _refcount(self, cluster: int) -> int:
        table_index, block_index = divmod(cluster, self._rc_per_block)
        block = self._rc_blocks.get(table_index)
        if block is None:
            return 0
        return int.from_bytes(block[2 * block_index : 2 * block_index + 2], "big")

    def _check_refcount_deltas(self, deltas: Mapping[int, int]) -> None:
        """Raise before anything is written if applying ``deltas`` would be invalid."""
        for cluster, delta in deltas.items():
            if delta == 0:
                continue
            if cluster // self._rc_per_block not in self._rc_blocks:
                raise self._fail(
                    f"cluster at offset {cluster << self._cb:#x} has no refcount block"
                )
            value = self._refcount(cluster) + delta
            if not 0 <= value <= 0xFFFF:
                raise self._fail(
                    f"refcount of cluster at offset {cluster << self._cb:#x} would become"
                    f" {value} (16-bit refcounts; corrupt image or too much sharing)"
                )

    def _apply_refcounts(self, deltas: Mapping[int, int]) -> None:
        """Apply checked deltas: write each touched refcount block once, then new table entries."""
        self._check_refcount_deltas(deltas)
        spans: dict[int, tuple[int, int]] = {}
        for cluster, delta in deltas.items():
            if delta == 0:
                continue
            table_index, i = divmod(cluster, self._rc_per_block)
            block = self._rc_blocks[table_index]
            value = int.from_bytes(block[2 * i : 2 * i + 2], "big") + delta
            block[2 * i : 2 * i + 2] = value.to_bytes(2, "big")
            lo, hi = spans.get(table_index, (i, i))
            spans[table_index] = (min(lo, i), max(hi, i))
        for table_index in self._unwritten_blocks:
            spans[table_index] = (0, self._rc_per_block - 1)
        for table_index, (lo, hi) in sorted(spans.items()):
            block_offset = self._reftable[table_index]
            block = self._rc_blocks[table_index]
            self._pwrite(block_offset + 2 * lo, block[2 * lo : 2 * hi + 2])
        # A refcount block is on disk before the refcount table points at it.
        if self._unwritten_blocks:
            self._barrier()
        for table_index in sorted(self._unwritten_blocks):
            entry = self._reftable[table_index].to_bytes(8, "big")
            self._pwrite(self._reftable_offset + 8 * table_index, entry)
        self._unwritten_blocks.clear()

    def _alloc(self, n: int, deltas: defaultdict[int, int]) -> int:
        """``n`` contiguous clusters for new data or metadata (refcount +1 into ``deltas``).

        The lowest run of ``n`` free clusters inside the file if there is one, else
        clusters at the end: starting in the free clusters the file ends with, if
        any, when existing refcount blocks cover the range.  Refcount blocks an
        appended range needs are created first (in memory; written by
        ``_apply_refcounts``), each placed at the current end and counted itself.
        """
        start = self._take_free(n)
        if start is None:
            start = self._extend_free_tail(n)
        if start is None:
            start = self._append(n, deltas)
        for cluster in range(start, start + n):
            deltas[cluster] += 1
        return start << self._cb

    def _append(self, n: int, deltas: defaultdict[int, int]) -> int:
        """The first of ``n`` new clusters at the end of the file (their deltas not counted)."""
        per = self._rc_per_block
        while True:
            start = self._next_free
            missing = next(
                (
                    ti
                    for ti in range(start // per, (start + n - 1) // per + 1)
                    if ti not in self._rc_blocks
                ),
                None,
            )
            if missing is None:
                break
            if missing >= self._reftable_capacity:
                raise self._fail(
                    f"refcount table full ({self._reftable_capacity} entries at offset"
                    f" {self._reftable_offset:#x}); growing it is not supported"
                )
            # The new block lives at `start`, which is covered by itself or by a block
            # that exists (every table index below `missing` in the range does).
            self._rc_blocks[missing] = bytearray(self._cs)
            self._reftable[missing] = start << self._cb
            self._unwritten_blocks.add(missing)
            deltas[start] += 1
            self._next_free = start + 1
        self._next_free = start + n
        return start

    def _extend_free_tail(self, n: int) -> int | None:
        """Start a run of ``n`` in the free clusters that end the file; None if none fit."""
        free = self._free_clusters()
        start = self._next_free
        while start - 1 in free and self._next_free - start < n:
            start -= 1
        per = self._rc_per_block
        if start == self._next_free or any(
            ti not in self._rc_blocks for ti in range(start // per, (start + n - 1) // per + 1)
        ):
            return None
        free.difference_update(range(start, self._next_free))
        self._next_free = start + n
        return start

    def _take_free(self, n: int) -> int | None:
        """Remove the lowest run of ``n`` free clusters from the index; None if there is none.

        One cluster (data, L2 tables): the heap's minimum, amortised O(log F).  A run
        (L1 and snapshot tables): a scan of the sorted index, O(F log F) for F free
        clusters; F stays small because adds consume free clusters first and
        ``delete_snapshot`` truncates the free end of the file.
        """
        free = self._free_clusters()
        if not free:
            return None
        if len(self._free_heap) > 2 * len(free) + 64:
            self._free_heap = sorted(free)  # drop stale entries (a sorted list is a heap)
        if n == 1:
            heap = self._free_heap
            while heap:
                cluster = heapq.heappop(heap)
                if cluster in free:
                    free.remove(cluster)
                    return cluster
            return None
        run_start = run_end = -2
        for cluster in sorted(free):
            if cluster != run_end:
                run_start = cluster
            run_end = cluster + 1
            if run_end - run_start == n:
                free.difference_update(range(run_start, run_end))
                return run_start
        return None

    def _free_clusters(self) -> set[int]:
        """The free-cluster index, built on first use from the cached refcount blocks.

        Free: refcount 0, below ``_next_free`` and covered by a refcount block (a
        cluster no block covers would need a new block; appending handles that).
        As a guard against corrupt refcounts, a cluster that header-level metadata
        uses (header, refcount table, active L1, snapshot table, snapshot L1 tables)
        must not be free: reusing it would destroy live data.

        Raises:
            SnapshotFormatError: such a metadata cluster has refcount 0.
        """
        if self._free is not None:
            return self._free
        free: set[int] = set()
        per = self._rc_per_block
        for table_index, block in self._rc_blocks.items():
            base = table_index * per
            limit = 2 * min(per, self._next_free - base)
            pos = 0
            while pos < limit:
                found = block.find(b"\0\0", pos, limit)
                if found < 0:
                    break
                if found % 2:  # straddles two entries: not a zero refcount
                    pos = found + 1
                    continue
                free.add(base + found // 2)
                pos = found + 2
        if free:
            self._check_metadata_not_free(free)
        self._free = free
        self._free_heap = sorted(free)
        return free

    def _check_metadata_not_free(self, free: set[int]) -> None:
        h, cb = self._header, self._cb
        ranges = [
            (0, 1, "header"),
            (h.refcount_table_offset, 8 * self._reftable_capacity, "refcount table"),
        ]
        if h.l1_size:
            ranges.append((h.l1_table_offset, 8 * h.l1_size, "active L1 table"))
        if h.nb_snapshots:
            ranges.append((h.snapshots_offset, self._table_size, "snapshot table"))
        for entry in self._entries:
            if entry.info.l1_size:
                what = f"snapshot {entry.info.id} L1 table"
                ranges.append((entry.info.l1_table_offset, 8 * entry.info.l1_size, what))
        for offset, nbytes, what in ranges:
            for cluster in range(offset >> cb, ((offset + max(nbytes, 1) - 1) >> cb) + 1):
                if cluster in free:
                    raise self._fail(
                        f"{what} at offset {offset:#x} uses cluster {cluster << cb:#x}, whose"
                        " refcount is 0 (corrupt refcounts; run 'qemu-img check -r all')"
                    )

    def _release_to_index(self, clusters: typing.Iterable[int]) -> None:
        """Enter clusters the operation just freed into the index: its last step.

        Called after the header commit that made them unreferenced, so no allocation
        of the same operation can reuse them; the next operation may.
        """
        if self._free is None:
            return  # built from the refcount blocks, which already show them free
        for cluster in clusters:
            if (
                cluster < self._next_free
                and cluster not in self._free
                and self._refcount(cluster) == 0
            ):
                self._free.add(cluster)
                heapq.heappush(self._free_heap, cluster)

    def _trim_free_tail(self) -> None:
        """Truncate free clusters off the end of the file (after the commit and release).

        The release is made durable first, so a crash leaves either the longer file
        (its tail free, reused later) or the shorter one: never a refcount past the end.
        """
        free = self._free_clusters()
        end = self._next_free
        while end - 1 in free:
            end -= 1
        if end == self._next_free:
            return
        free.difference_update(range(end, self._next_free))
        self._next_free = end
        if end << self._cb < self._file_size:
            self._barrier()
            with _io(self._path, f"truncate to {end << self._cb:#x} bytes"):
                os.ftruncate(self._require_fd(), end << self._cb)
            self._file_size = end << self._cb

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """On any failure, drop in-memory state and reread the (consistent) file."""
        try:
            yield
        except BaseException:
            if self._fd is not None:
                self._load()
            raise

    def _commit_table(
        self,
        entries: list[_Entry],
        deltas: defaultdict[int, int],
        *,
        releases: Mapping[int, int] | None = None,
    ) -> None:
        """Write ``entries`` as a new table, commit it in the header, then free the old one.

        ``deltas`` (increments for everything written so far) is applied before the
        header write; ``releases`` (clusters to decrement, with multiplicity) after it.
        """
        cs, cb = self._cs, self._cb
        table = b"".join(_padded(e.raw) for e in entries)
        if len(table) > MAX_SNAPSHOTS_SIZE or len(entries) > MAX_SNAPSHOTS:
            raise self._fail("the snapshot table would exceed QEMU's limits")
        new_offset = 0
        if entries:
            new_offset = self._alloc(_ceil_div(len(table), cs), deltas)
            self._pwrite(new_offset, table)
        old = self._header
        after: defaultdict[int, int] = defaultdict(int)
        if old.nb_snapshots:
            first = old.snapshots_offset >> cb
            for cluster in range(first, first + _ceil_div(self._table_size, cs)):
                after[cluster] -= 1
        for cluster, count in (releases or {}).items():
            after[cluster] -= count
        # Check the releases against the refcounts as they will be after `deltas`.
        combined = defaultdict(int, deltas)
        for cluster, delta in after.items():
            combined[cluster] += delta
        self._check_refcount_deltas(combined)
        self._apply_refcounts(deltas)
        self._sync_copied_flags()
        header = replace(old, nb_snapshots=len(entries), snapshots_offset=new_offset)
        self._barrier()
        self._pwrite(0, header.pack())  # the commit point
        self._barrier()
        self._header = header
        self._entries = entries
        self._table_size = len(table)
        self._apply_refcounts(after)
        self._sync_copied_flags()
        # Only now, with the operation over, may the freed clusters be reused.
        self._release_to_index(after)

    def _sync_copied_flags(self) -> None:
        """Set bit 63 of active L1/L2 entries iff the cluster's refcount is 1 (as QEMU does).

        Only entries whose flag is wrong are rewritten, one write per table; for
        rrdbg's own images (an all-zero active L1) this reads nothing.
        """
        h = self._header
        if not h.l1_size:
            return
        l1 = list(self._read_u64s(h.l1_table_offset, h.l1_size, "active L1 table"))
        l1_changed = False
        for i, entry in enumerate(l1):
            l2_offset = entry & OFFSET_MASK
            if not l2_offset:
                continue
            l2 = list(self._read_u64s(l2_offset, self._l2_entries, f"active L1[{i}] L2 table"))
            l2_changed = False
            for j, l2_entry in enumerate(l2):
                data = l2_entry & OFFSET_MASK
                if not data or l2_entry & OFLAG_COMPRESSED:
                    continue
                want = OFLAG_COPIED if self._refcount(data >> self._cb) == 1 else 0
                if l2_entry & OFLAG_COPIED != want:
                    l2[j] = (l2_entry & ~OFLAG_COPIED) | want
                    l2_changed = True
            if l2_changed:
                self._pwrite(l2_offset, _pack_u64s(l2, f"{self._path}: L2 table"))
            want = OFLAG_COPIED if self._refcount(l2_offset >> self._cb) == 1 else 0
            if entry & OFLAG_COPIED != want:
                l1[i] = (entry & ~OFLAG_COPIED) | want
                l1_changed = True
        if l1_changed:
            self._pwrite(h.l1_table_offset, _pack_u64s(l1, f"{self._path}: L1 table"))

    # -- internals: tables -----------------------------------------------------------------

    def _l2_references(self, l2: tuple[int, ...], where: str, out: defaultdict[int, int]) -> None:
        """Count the host clusters an L2 table references (once per entry, as QEMU)."""
        cb = self._cb
        shift = 62 - (cb - 8)
        for j, entry in enumerate(l2):
            if entry & OFLAG_COMPRESSED:
                coffset = entry & ((1 << shift) - 1)
                sectors = ((entry >> shift) & ((1 << (cb - 8)) - 1)) + 1
                csize = sectors * 512 - (coffset & 511)
                for cluster in range(coffset >> cb, ((coffset + csize - 1) >> cb) + 1):
                    out[cluster] += 1
                continue
            data = entry & OFFSET_MASK
            if not data:
                continue
            if data % self._cs:
                raise self._fail(f"{where} entry {j}: data offset {data:#x} is not cluster aligned")
            out[data >> cb] += 1

    def _share_active_disk(self, vm_index: int) -> tuple[list[int], defaultdict[int, int]]:
        """The snapshot L1's disk part (a copy of the active L1) and the refcount increments.

        Every L2 table of the active L1 below ``vm_index`` gains a reference, and so
        does every cluster those tables reference: QEMU's
        ``qcow2_update_snapshot_refcount(active L1, +1)``.
        """
        h = self._header
        deltas: defaultdict[int, int] = defaultdict(int)
        count = min(vm_index, h.l1_size)
        l1 = [0] * vm_index
        if count:
            active = self._read_u64s(h.l1_table_offset, count, "active L1 table")
            for i, entry in enumerate(active):
                l2_offset = entry & OFFSET_MASK
                if not l2_offset:
                    continue
                where = f"active L1[{i}] L2 table"
                l2 = self._read_u64s(l2_offset, self._l2_entries, where)
                self._l2_references(l2, where, deltas)
                deltas[l2_offset >> self._cb] += 1
                l1[i] = l2_offset
        return l1, deltas

    def _snapshot_references(self, info: SnapshotInfo) -> defaultdict[int, int]:
        """Every reference a snapshot holds: its L1 clusters, L2 tables and their clusters."""
        refs: defaultdict[int, int] = defaultdict(int)
        if not info.l1_size:
            return refs
        where = f"snapshot {info.id} L1 table"
        l1 = self._read_u64s(info.l1_table_offset, info.l1_size, where)
        first = info.l1_table_offset >> self._cb
        for cluster in range(first, first + _ceil_div(info.l1_size * 8, self._cs)):
            refs[cluster] += 1
        for i, entry in enumerate(l1):
            l2_offset = entry & OFFSET_MASK
            if not l2_offset:
                continue
            where = f"snapshot {info.id} L1[{i}] L2 table"
            self._l2_references(self._read_u64s(l2_offset, self._l2_entries, where), where, refs)
            refs[l2_offset >> self._cb] += 1
        return refs

    def _vm_map(self, info: SnapshotInfo, *, strict: bool) -> dict[int, int]:
        """``{vmstate index: host offset}``; compressed entries raise if ``strict``, else skip."""
        n_vm = _ceil_div(info.vm_state_size, self._cs)
        vm_index = size_to_l1(info.disk_size, self._cb)
        stop = min(info.l1_size, vm_index + _ceil_div(n_vm, self._l2_entries))
        out: dict[int, int] = {}
        if stop <= vm_index:
            return out
        l1 = self._read_u64s(
            info.l1_table_offset, stop - vm_index, f"snapshot {info.id} L1 table", skip=vm_index
        )
        for k, entry in enumerate(l1):
            l2_offset = entry & OFFSET_MASK
            if not l2_offset:
                continue
            where = f"snapshot {info.id} L1[{vm_index + k}] L2 table"
            l2 = self._read_u64s(l2_offset, self._l2_entries, where)
            base = k * self._l2_entries
            for j, l2_entry in enumerate(l2[: n_vm - base]):
                if l2_entry & OFLAG_COMPRESSED:
                    if strict:
                        raise self._fail(
                            f"snapshot {info.id}: {where} entry {j}: compressed vmstate not"
                            " supported"
                        )
                    continue
                data = l2_entry & OFFSET_MASK
                if not data or l2_entry & OFLAG_ZERO:
                    continue
                if data % self._cs:
                    raise self._fail(f"{where} entry {j}: data offset {data:#x} is not aligned")
                out[base + j] = data
        return out

    def _vm_data_clusters(self) -> set[int]:
        """Host offsets of every vmstate cluster of every snapshot (computed once, then kept)."""
        if self._vm_data is None:
            found: set[int] = set()
            for entry in self._entries:
                found.update(self._vm_map(entry.info, strict=False).values())
            self._vm_data = found
        return self._vm_data

    # -- internals: validation helpers -----------------------------------------------------

    def _require_writable(self) -> None:
        self._require_fd()
        if not self._writable:
            raise self._fail("opened read-only")

    def _check_range(self, what: str, value: int, limit: int) -> None:
        if not 0 <= value < limit:
            raise self._fail(f"{what} {value} outside 0..{limit - 1}")

    def _check_new_name(self, name: str) -> bytes:
        try:
            encoded = name.encode("utf-8")
        except UnicodeEncodeError:
            encoded = b""
        if not 0 < len(encoded) <= 0xFFFF or "\0" in name:
            raise self._fail(f"snapshot name {name!r} must be 1..65535 UTF-8 bytes without NUL")
        if any(e.info.name == name for e in self._entries):
            raise self._fail(f"a snapshot named {name!r} already exists")
        return encoded

    def _next_id(self) -> str:
        """max(numeric ids) + 1, as QEMU's ``find_new_snapshot_id`` (strtoul prefix)."""
        highest = 0
        for entry in self._entries:
            match = re.match(r"\s*\+?(\d+)", entry.info.id)
            if match:
                highest = max(highest, int(match.group(1)))
        return str(highest + 1)

    def _find_entry(self, name_or_id: str) -> _Entry | None:
        for entry in self._entries:
            if entry.info.id == name_or_id:
                return entry
        for entry in self._entries:
            if entry.info.name == name_or_id:
                return entry
        return None

    def _entry_for(self, info: SnapshotInfo) -> _Entry:
        self._require_fd()
        for entry in self._entries:
            if entry.info == info:
                return entry
        raise self._fail(f"snapshot {info.name!r} (id {info.id}) is not in this image")


@contextmanager
def _io(path: str, action: str) -> Iterator[None]:
    """The one place where ``OSError`` becomes ``SnapshotFormatError``."""
    try:
        yield
    except OSError as exc:
        raise SnapshotFormatError(f"{path}: cannot {action}: {exc.strerror or exc}") from None
