"""The events of one run, in memory: what the guest observed, and when.

Role: the timeline's copy of the replay log.  A replayed recording loads it
whole from ``log.rrlog``; a live session appends to it (and, when saving, to a
``LogWriter``) as the guest runs.  It is the ``EventSource`` the replaying host
reads and the ``EventSink`` the recording host writes.

Invariant: events are in icount order, and the events a machine stopped at
icount ``n`` has consumed are exactly those with icount <= n.  (An event is
logged at the count *after* the instruction that caused it retired, and a
machine stops only between instructions, so no event is ever "half
consumed".)  That is why restoring a checkpoint needs no log cursor:
``rewind(n)`` finds the place by bisection.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from rrdbg.record.events import DEBUG_KINDS
from rrdbg.record.log import Cursor, LogReader, LogWriter


class History:
    """An append-only list of (icount, kind, payload) with a read position."""

    def __init__(self, writer: LogWriter | None = None) -> None:
        self.icounts: list[int] = []
        self.kinds: list[int] = []
        self.payloads: list[bytes] = []
        #: The next event a replaying host will read.
        self.index = 0
        self.writer = writer
        #: Indexes of debugger writes (applied by the timeline, not the host).
        self._debug: list[int] = []
        #: Where each event is in the log file (when there is one), and where
        #: the next one will be: what a qcow2 snapshot stores as its cursor.
        self.cursors: list[Cursor] = []
        self.end_cursor: Cursor | None = None

    @classmethod
    def load(cls, reader: LogReader) -> History:
        """All events of a log except its END record."""
        history = cls()
        for event in reader:
            if event.kind == 0:
                history.end_cursor = event.cursor
                break
            history._add(event.icount, event.kind, bytes(event.payload))
            history.cursors.append(event.cursor)
        else:
            history.end_cursor = reader.position
        return history

    def view(self) -> History:
        """Another reader of the same events, at the start (for a replica of
        the timeline: the lists are shared, not copied; only the live
        frontier appends to them, and replicas serve finished history)."""
        other = History()
        other.icounts, other.kinds, other.payloads = self.icounts, self.kinds, self.payloads
        other._debug, other.cursors, other.end_cursor = self._debug, self.cursors, self.end_cursor
        return other

    def __len__(self) -> int:
        return len(self.icounts)

    def memory_bytes(self) -> int:
        """About what the history takes in memory: its payloads plus some
        200 bytes of Python objects per event."""
        return sum(map(len, self.payloads)) + 200 * len(self.icounts)

    def _add(self, icount: int, kind: int, payload: bytes) -> None:
        if kind in DEBUG_KINDS:
            self._debug.append(len(self.icounts))
        self.icounts.append(icount)
        self.kinds.append(kind)
        self.payloads.append(payload)

    # -- EventSource (the replaying host) ---------------------------------
    def peek(self) -> tuple[int, int, bytes] | None:
        i = self.index
        if i >= len(self.icounts):
            return None
        return self.icounts[i], self.kinds[i], self.payloads[i]

    def advance(self) -> None:
        self.index += 1

    @property
    def exhausted(self) -> bool:
        """True when every recorded event has been consumed: the live frontier."""
        return self.index >= len(self.icounts)

    # -- EventSink (the recording host) -----------------------------------
    def append(self, icount: int, kind: int, payload: bytes) -> None:
        """Record a new event at the frontier (the read position moves past it)."""
        if self.icounts and icount < self.icounts[-1]:
            raise ValueError(f"event at icount {icount} after one at {self.icounts[-1]}")
        if self.writer is not None:
            self.cursors.append(self.writer.position)
        self._add(icount, kind, bytes(payload))
        self.index = len(self.icounts)
        if self.writer is not None:
            self.writer.append(icount, kind, payload)
            self.end_cursor = self.writer.position

    # -- positioning -------------------------------------------------------
    def rewind(self, icount: int) -> None:
        """Set the read position to a machine stopped at ``icount``."""
        self.index = bisect.bisect_right(self.icounts, icount)

    def cursor_for(self, icount: int) -> Cursor | None:
        """The log cursor a snapshot taken at ``icount`` must store."""
        i = bisect.bisect_right(self.icounts, icount)
        if i < len(self.cursors):
            return self.cursors[i]
        return self.end_cursor if i == len(self.icounts) else None

    @property
    def last_icount(self) -> int:
        return self.icounts[-1] if self.icounts else 0

    def next_debug_write(self) -> tuple[int, int, bytes] | None:
        """The first debugger write not yet consumed: (icount, kind, payload)."""
        j = bisect.bisect_left(self._debug, self.index)
        if j >= len(self._debug):
            return None
        i = self._debug[j]
        return self.icounts[i], self.kinds[i], self.payloads[i]

    def debug_writes(self) -> Iterator[int]:
        """Icounts of all debugger writes."""
        return (self.icounts[i] for i in self._debug)
