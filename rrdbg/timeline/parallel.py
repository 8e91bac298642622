"""Reverse-continue over several intervals of history at once: the schedule.

Role: the pure part of a parallel reverse-continue (no machine, no threads
of its own; ``default_jobs`` reads RRDBG_JOBS).  History is cut at the
icounts the search can restore (checkpoints and snapshots) into intervals,
newest first.  Each of ``jobs`` executors (the timeline itself and its
replicas, see Timeline) takes an interval, replays it with every breakpoint
and watchpoint noted, and reports its *last* hit or none.  The answer is
the last hit of the newest interval that has one, and it is known as soon
as that interval and every newer one are done: older intervals are then
abandoned.

A request and a result are plain data (two icounts in, an optional stop
out), so an executor could as well be a process restoring a qcow2 snapshot,
on this host or another.

Invariants (tests/timeline/test_parallel.py):
- the intervals cover [the last point at or before ``floor``, ``now``)
  exactly, without overlap;
- whatever the order executors finish in, the answer is the one the
  sequential search (newest interval first) gives;
- an interval older than one with a known hit is never started, and a
  running one is told to stop.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from rrdbg.errors import RrdbgError

#: At most this many executors by default (each is a whole machine).
MAX_JOBS = 8

#: Intervals shorter than this are merged into the next older one: each
#: costs a restore, and a worker's restore of a far state costs far more
#: than replaying a few million instructions.
MIN_INTERVAL = 1 << 22

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Interval:
    """Instructions [start, end) of history, scanned from a state at start."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


def jobs_from(setting: str | None, cpus: int) -> int:
    """The executors to use: ``setting`` (RRDBG_JOBS) if given, else one per
    CPU up to MAX_JOBS."""
    if setting is None or not setting.strip():
        return max(1, min(cpus, MAX_JOBS))
    try:
        jobs = int(setting)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise RrdbgError(f"RRDBG_JOBS must be a positive whole number, not {setting!r}")
    return jobs


def default_jobs() -> int:
    """The executors for a new session: RRDBG_JOBS, else one per CPU this
    process may run on (up to MAX_JOBS)."""
    return jobs_from(os.environ.get("RRDBG_JOBS"), len(os.sched_getaffinity(0)))


def intervals(points: Iterable[int], floor: int, now: int) -> list[Interval]:
    """History from the last restorable point at or before ``floor`` to
    ``now``, cut at the restorable ``points``; newest first.  A point closer
    than MIN_INTERVAL to the cut before is skipped, except the newest: a
    hit just before ``now`` is found as fast as by one executor (0 is
    always a point: every history can be replayed from its start)."""
    pts = sorted({p for p in points if 0 <= p < now} | {0})
    first = max(bisect.bisect_right(pts, floor) - 1, 0)
    cuts: list[int] = []
    for p in pts[first:]:
        if not cuts or p - cuts[-1] >= MIN_INTERVAL or p == pts[-1]:
            cuts.append(p)
    bounds = [*cuts, now]
    return [Interval(bounds[i], bounds[i + 1]) for i in reversed(range(len(cuts)))]


def plan(spans: Sequence[Interval], jobs: int) -> list[list[int]]:
    """Each executor's intervals (indexes into ``spans``, newest first): runs
    of adjacent intervals of about equal length, the newest run to the
    first executor.  With no hit, each then replays about 1/jobs of the
    history; a hit in the newest interval is found as fast as alone."""
    jobs = max(1, min(jobs, len(spans)))
    total = sum(s.length for s in spans)
    groups: list[list[int]] = [[] for _ in range(jobs)]
    done = 0
    g = 0
    for i, span in enumerate(spans):
        # Move to the next group once this one has its share, keeping at
        # least one interval for each of the groups still to fill.
        left = len(spans) - i
        if groups[g] and g < jobs - 1 and (done >= total * (g + 1) / jobs or left <= jobs - 1 - g):
            g += 1
        groups[g].append(i)
        done += span.length
    return groups


class Board(Generic[T]):
    """The search's shared state: who scans what, and what was found.

    Executors call ``take`` for an interval, ``stop_wanted`` while they
    scan it, then ``finish`` with its last hit (or None) or ``drop`` when
    they stopped early.  The caller waits with ``wait`` until the answer is
    settled; executors still scanning intervals older than the answer stop
    at their next poll.  All methods are thread-safe."""

    def __init__(self, spans: Sequence[Interval], jobs: int) -> None:
        self.spans = list(spans)
        self._queues = plan(self.spans, jobs)
        #: Executors the intervals are planned for.
        self.jobs = len(self._queues)
        self._cond = threading.Condition()
        self._hits: dict[int, T | None] = {}
        self._started: set[int] = set()
        self._running: set[int] = set()
        #: The newest interval known to have a hit.
        self._newest_hit = len(self.spans)
        #: The first error an executor met, and the interval it was scanning
        #: (-1: outside any).
        self.failed: BaseException | None = None
        self.failed_at = -1
        self.interrupted = False

    def take(self, executor: int) -> int | None:
        """The next interval for ``executor``: its own, newest first, then
        the oldest one not started of the executor with most left."""
        with self._cond:
            if self._over():
                return None
            mine = self._queues[executor % len(self._queues)]
            for q in [mine, *sorted(self._queues, key=self._left, reverse=True)]:
                useful = [i for i in q if i < self._newest_hit and i not in self._started]
                if useful:
                    i = useful[0] if q is mine else useful[-1]
                    self._started.add(i)
                    self._running.add(i)
                    return i
            return None

    def _left(self, queue: list[int]) -> int:
        return sum(self.spans[i].length for i in queue if i not in self._started)

    def stop_wanted(self, index: int) -> bool:
        """Whether scanning interval ``index`` has become useless (a newer
        interval has a hit) or the search is over."""
        return index > self._newest_hit or self.failed is not None or self.interrupted

    def finish(self, index: int, hit: T | None) -> None:
        with self._cond:
            self._hits[index] = hit
            self._running.discard(index)
            if hit is not None:
                self._newest_hit = min(self._newest_hit, index)
            self._cond.notify_all()

    def drop(self, index: int) -> None:
        """An interval left unfinished (useless, or the search was stopped)."""
        with self._cond:
            self._running.discard(index)
            self._cond.notify_all()

    def fail(self, exc: BaseException, index: int = -1) -> None:
        """An executor's error while scanning ``index`` (-1: outside any);
        an interval older than one with a hit does not matter."""
        with self._cond:
            self._running.discard(index)
            if self.failed is None and not (0 <= self._newest_hit < index):
                self.failed, self.failed_at = exc, index
            self._cond.notify_all()

    def interrupt(self) -> None:
        with self._cond:
            self.interrupted = True
            self._cond.notify_all()

    def _settled(self) -> bool:
        return all(i in self._hits for i in range(min(self._newest_hit + 1, len(self.spans))))

    def _over(self) -> bool:
        return self.failed is not None or self.interrupted or self._settled()

    def wait(self, poll: float, interrupted: Callable[[], bool]) -> None:
        """Until the answer is settled, an executor failed, or ``interrupted``
        (polled every ``poll`` seconds) says so; also when no executor is
        left scanning (they all stopped)."""
        with self._cond:
            while not self._over() and self._running:
                if interrupted():
                    self.interrupted = True
                    break
                self._cond.wait(poll)

    @property
    def settled(self) -> bool:
        """True when the answer cannot change any more."""
        with self._cond:
            return self._settled()

    @property
    def answer(self) -> tuple[int, T] | None:
        """(interval, hit) of the newest interval with a hit once every newer
        one is done; None while unsettled or when no interval has one."""
        with self._cond:
            for i in range(len(self.spans)):
                if i not in self._hits:
                    return None
                hit = self._hits[i]
                if hit is not None:
                    return i, hit
            return None

    def searched_back_to(self) -> int:
        """The icount down to which every newer interval is done without a hit."""
        with self._cond:
            at = self.spans[0].end if self.spans else 0
            for i, span in enumerate(self.spans):
                if i not in self._hits or self._hits[i] is not None:
                    break
                at = span.start
            return at
