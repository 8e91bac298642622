"""In-memory checkpoints of a machine (Linux process or bare-metal PC).

Role: the fast, volatile counterpart of the qcow2 snapshots
(``snapshot/vmstate.py``): everything needed to put the machine back at an
icount (CPU context, memory map and contents, syscall-layer state).  The
history position is not stored: ``History.rewind(icount)`` recomputes it.

Memory is kept in 64 KiB chunks.  All-zero chunks are not stored, and a chunk
equal to the same chunk of the checkpoint taken just before shares its
``bytes`` object, so a series of checkpoints of a program that changes little
costs little more than one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rrdbg.machine.base import Machine
from rrdbg.machine.memory import PROT_EXEC

CHUNK = 1 << 16
_ZERO = bytes(CHUNK)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    icount: int
    context: bytes
    regions: tuple[tuple[int, int, int, str], ...]
    chunks: dict[int, bytes]
    #: The machine's ``save_state`` (syscall layer, devices, virtual time).
    state: dict[str, Any]

    @property
    def memory_bytes(self) -> int:
        return len(self.chunks) * CHUNK


def capture(machine: Machine, previous: Checkpoint | None = None) -> Checkpoint:
    """The machine's state now (it must be stopped between instructions)."""
    mem = machine.state_memory
    parts: dict[int, list[tuple[int, int]]] = {}
    for r in mem.regions():
        for c in range(r.start // CHUNK, (r.end - 1) // CHUNK + 1):
            base = c * CHUNK
            parts.setdefault(c, []).append((max(r.start, base), min(r.end, base + CHUNK)))
    old = previous.chunks if previous is not None else {}
    chunks: dict[int, bytes] = {}
    for c, spans in parts.items():
        base = c * CHUNK
        if spans == [(base, base + CHUNK)]:
            data = mem.view(base, CHUNK).tobytes()
        else:  # a region edge inside the chunk: unmapped parts read as zero
            buf = bytearray(CHUNK)
            for lo, hi in spans:
                buf[lo - base : hi - base] = mem.view(lo, hi - lo)
            data = bytes(buf)
        if data == _ZERO:
            continue
        prev = old.get(c)
        chunks[c] = prev if prev is not None and prev == data else data
    return Checkpoint(
        icount=machine.icount,
        context=machine.engine.context_bytes(),
        regions=tuple((r.start, r.end, r.perms, r.name) for r in mem.regions()),
        chunks=chunks,
        state=machine.save_state(),
    )


def restore(machine: Machine, checkpoint: Checkpoint) -> None:
    """Put the machine back in the checkpoint's state.

    With the same memory map as now (the usual case), only chunks whose
    contents differ are written and, if no executable byte changed, the
    block counts and translations are kept: a restore then costs about a
    memory comparison instead of a re-translation of the program.
    """
    mem = machine.state_memory
    regions = tuple((r.start, r.end, r.perms, r.name) for r in mem.regions())
    same_map = regions == checkpoint.regions
    code_kept = same_map
    code_before: list[tuple[int, int, bytes]] = []
    if not same_map:
        # Code usually survives a change of the memory map (the heap grew):
        # compare it afterwards to keep the decoded blocks.
        code_before = [
            (start, end, mem.view(start, end - start).tobytes())
            for start, end, perms, _n in regions
            if perms & PROT_EXEC
        ]
        mem.unmap_all()
        for start, end, perms, name in checkpoint.regions:
            mem.map(start, end - start, perms, name)
    for start, end, perms, _name in checkpoint.regions:
        for c in range(start // CHUNK, (end - 1) // CHUNK + 1):
            base = c * CHUNK
            lo, hi = max(base, start), min(base + CHUNK, end)
            data = checkpoint.chunks.get(c)
            if data is None and not same_map:
                continue  # freshly mapped memory reads as zero already
            want = (_ZERO if data is None else data)[lo - base : hi - base]
            if same_map:
                if mem.view(lo, hi - lo).tobytes() == want:
                    continue
                if perms & PROT_EXEC:
                    code_kept = False
            mem.load_raw(lo, want)
    if not same_map:
        code_after = [
            (start, end, mem.view(start, end - start).tobytes())
            for start, end, perms, _n in checkpoint.regions
            if perms & PROT_EXEC
        ]
        code_kept = code_after == code_before
    machine.load_state(checkpoint.icount, checkpoint.context, checkpoint.state, keep_code=code_kept)
