"""The vmstate: a whole Linux machine as the VM-state area of a qcow2 snapshot.

Role: save a ``LinuxMachine`` (CPU context, memory map and contents,
syscall-layer state, replay-log cursor) as one internal snapshot of a
``Qcow2Image`` and load it back.  Layout, in clusters of the image:

- clusters 0 .. HEADER_CLUSTERS-1: the header: magic ``RRVMST01``, u32
  length of a UTF-8 JSON document, the document, u32 length of the Unicorn
  CPU context, the context bytes (all registers, segment caches, GDTR,
  x87/SSE state: Unicorn's own ``uc_context`` for the pinned version);
- cluster HEADER_CLUSTERS + s: guest memory chunk number ``c`` (guest bytes
  ``[c * cluster, (c + 1) * cluster)``), where slot ``s`` is given to ``c`` the
  first time the chunk is saved and never changes for this store.

Invariants: a chunk's vmstate offset is fixed for the life of a recording,
so a chunk unchanged since the previous snapshot is *shared* (the new
snapshot's L2 entry points at the old data cluster, refcount + 1) instead of
copied; all-zero chunks are not stored at all (they read as zero).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from rrdbg.errors import RrdbgError, SnapshotFormatError
from rrdbg.machine.base import Machine
from rrdbg.machine.engine import CPU_MODEL, cpu_model_id, is_this_unicorn, unicorn_version
from rrdbg.record.log import crc32c
from rrdbg.snapshot.qcow2 import Qcow2Image, SnapshotInfo

MAGIC = b"RRVMST01"
#: Version 2 adds integrity checks: a CRC-32C of every stored memory chunk
#: (the document's ``sums``) and one of the header itself (after the CPU
#: context).  Version 1 images are still read, without them.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
HEADER_CLUSTERS = 16


@dataclass(frozen=True, slots=True)
class VmHeader:
    icount: int
    cursor: bytes
    regions: tuple[tuple[int, int, int, str], ...]
    slots: dict[int, int]
    #: The machine's save_state(): the syscall layer of a Linux process, the
    #: devices and virtual time of a PC (JSON key "state"; "linux" in images
    #: written before the PC machine existed).
    state: dict[str, Any]
    cpu_context: bytes
    #: CRC-32C of each stored chunk (by chunk number); None in version 1.
    sums: dict[int, int] | None = None
    #: Unicorn's id of the CPU model (engine.CPU_MODELS) the state is of.
    cpu_model: int = CPU_MODEL

    def encode(self) -> bytes:
        doc = {
            "version": FORMAT_VERSION,
            "unicorn": unicorn_version(),
            "cpu_model": self.cpu_model,
            "icount": self.icount,
            "cursor": self.cursor.hex(),
            "regions": [list(r) for r in self.regions],
            "slots": [[c, s] for c, s in sorted(self.slots.items())],
            "sums": [[c, s] for c, s in sorted((self.sums or {}).items())],
            "state": self.state,
        }
        text = json.dumps(doc, separators=(",", ":")).encode()
        body = (
            MAGIC
            + struct.pack("<I", len(text))
            + text
            + struct.pack("<I", len(self.cpu_context))
            + self.cpu_context
        )
        return body + struct.pack("<I", crc32c(body))

    @classmethod
    def decode(cls, data: bytes, where: str) -> VmHeader:
        if data[:8] != MAGIC:
            raise SnapshotFormatError(f"{where}: not an rrdbg vmstate (bad magic)")
        try:
            (n,) = struct.unpack_from("<I", data, 8)
            doc = json.loads(data[12 : 12 + n].decode())
            (m,) = struct.unpack_from("<I", data, 12 + n)
            context = data[16 + n : 16 + n + m]
            if len(context) != m:
                raise SnapshotFormatError(f"{where}: vmstate CPU context is truncated")
            if doc["version"] not in READABLE_VERSIONS:
                raise SnapshotFormatError(
                    f"{where}: vmstate version {doc['version']}, this rrdbg reads "
                    f"{', '.join(map(str, READABLE_VERSIONS))}"
                )
            sums = None
            if doc["version"] >= 2:
                (stored,) = struct.unpack_from("<I", data, 16 + n + m)
                if crc32c(data[: 16 + n + m]) != stored:
                    raise SnapshotFormatError(f"{where}: damaged (vmstate header checksum)")
                sums = {int(c): int(s) for c, s in doc["sums"]}
            if not is_this_unicorn(doc["unicorn"]):
                raise SnapshotFormatError(
                    f"{where}: vmstate made with Unicorn {doc['unicorn']}; "
                    f"this rrdbg runs {unicorn_version()}"
                )
            return cls(
                icount=int(doc["icount"]),
                cursor=bytes.fromhex(doc["cursor"]),
                regions=tuple(
                    (int(a), int(b), int(p), str(name)) for a, b, p, name in doc["regions"]
                ),
                slots={int(c): int(s) for c, s in doc["slots"]},
                state=dict(doc["state"] if "state" in doc else doc["linux"]),
                cpu_context=context,
                sums=sums,
                cpu_model=int(doc["cpu_model"]),
            )
        except (struct.error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise SnapshotFormatError(f"{where}: malformed vmstate header ({exc})") from None


class SnapshotStore:
    """Incremental snapshots of one machine in one qcow2 image."""

    def __init__(self, image: Qcow2Image) -> None:
        self.image = image
        self.chunk = image.cluster_size
        self._zero = bytes(self.chunk)
        self._slots: dict[int, int] = {}
        # chunk -> (contents, host offset) as of the last snapshot saved or
        # loaded: what the next snapshot may share.
        self._prev: dict[int, tuple[bytes, int]] = {}
        #: Bytes of new data clusters written by the last save (benchmarks).
        self.last_new_bytes = 0
        #: CRC-32C of the chunks in ``_prev``.
        self._sums: dict[int, int] = {}

    def _chunks(self, machine: Machine) -> list[int]:
        out: set[int] = set()
        for r in machine.state_memory.regions():
            out.update(range(r.start // self.chunk, (r.end - 1) // self.chunk + 1))
        return sorted(out)

    def save(self, machine: Machine, name: str, cursor: bytes) -> SnapshotInfo:
        """Write the machine's current state as snapshot ``name``."""
        mem = machine.state_memory
        clusters: dict[int, bytes | int] = {}
        saved: dict[int, bytes] = {}
        sums: dict[int, int] = {}
        new_bytes = 0
        for c in self._chunks(machine):
            data = mem.view(c * self.chunk, self.chunk).tobytes()
            if data == self._zero:
                continue
            slot = self._slots.setdefault(c, len(self._slots))
            prev = self._prev.get(c)
            if prev is not None and prev[0] == data:
                clusters[HEADER_CLUSTERS + slot] = prev[1]
                sums[c] = self._sums[c]
            else:
                clusters[HEADER_CLUSTERS + slot] = data
                new_bytes += self.chunk
                sums[c] = crc32c(data)
            saved[c] = data
        header = VmHeader(
            icount=machine.icount,
            cursor=cursor,
            regions=tuple((r.start, r.end, r.perms, r.name) for r in mem.regions()),
            slots=dict(self._slots),
            state=machine.save_state(),
            cpu_context=machine.engine.context_bytes(),
            sums=sums,
            cpu_model=cpu_model_id(machine.engine.model),
        ).encode()
        if len(header) > HEADER_CLUSTERS * self.chunk:
            raise SnapshotFormatError("vmstate header does not fit its reserved clusters")
        for i in range(0, len(header), self.chunk):
            clusters[i // self.chunk] = header[i : i + self.chunk]
        size = (HEADER_CLUSTERS + len(self._slots)) * self.chunk
        info, offsets = self.image.add_snapshot(
            name,
            machine.icount,
            size,
            clusters,
            vm_clock_nsec=machine.virtual_ns(),
        )
        self._prev = {
            c: (data, offsets[HEADER_CLUSTERS + self._slots[c]]) for c, data in saved.items()
        }
        self._sums = sums
        self.last_new_bytes = new_bytes + len(header)
        return info

    def read_header(self, info: SnapshotInfo) -> tuple[VmHeader, dict[int, int]]:
        offsets = self.image.snapshot_clusters(info)
        head = b"".join(
            self.image.read_cluster(offsets[i]) if i in offsets else self._zero
            for i in range(HEADER_CLUSTERS)
        )
        where = f"{self.image.path}: snapshot {info.name!r}"
        return VmHeader.decode(head, where), offsets

    def load(self, machine: Machine, info: SnapshotInfo) -> bytes:
        """Put the machine in the state of snapshot ``info``; returns the log cursor."""
        header, offsets = self.read_header(info)
        if header.cpu_model != cpu_model_id(machine.engine.model):
            raise SnapshotFormatError(
                f"{self.image.path}: snapshot {info.name!r} is of CPU model id "
                f"{header.cpu_model}, this machine's is {machine.engine.model}"
            )
        # Read and check everything before the machine changes: a damaged
        # snapshot must leave the machine as it was (the caller falls back
        # to another one).
        chunks: dict[int, tuple[bytes, int]] = {}
        for c, slot in header.slots.items():
            off = offsets.get(HEADER_CLUSTERS + slot)
            if off is None:
                if header.sums is not None and c in header.sums:
                    raise SnapshotFormatError(
                        f"{self.image.path}: snapshot {info.name!r}: damaged (chunk {c} missing)"
                    )
                continue
            data = self.image.read_cluster(off)
            if header.sums is not None and crc32c(data) != header.sums.get(c):
                raise SnapshotFormatError(
                    f"{self.image.path}: snapshot {info.name!r}: damaged (memory chunk {c})"
                )
            chunks[c] = (data, off)
        mem = machine.state_memory
        mem.unmap_all()
        for start, end, perms, name in header.regions:
            mem.map(start, end - start, perms, name)
        prev: dict[int, tuple[bytes, int]] = {}
        for c, (data, off) in chunks.items():
            mem.load_raw(c * self.chunk, data)
            prev[c] = (data, off)
        try:
            machine.load_state(header.icount, header.cpu_context, header.state, keep_code=False)
        except (KeyError, TypeError, ValueError, RrdbgError) as exc:
            raise SnapshotFormatError(
                f"{self.image.path}: snapshot {info.name!r}: bad machine state ({exc})"
            ) from None
        self._slots = dict(header.slots)
        self._prev = prev
        self._sums = (
            dict(header.sums)
            if header.sums is not None
            else {c: crc32c(data) for c, (data, _off) in prev.items()}
        )
        return header.cursor
