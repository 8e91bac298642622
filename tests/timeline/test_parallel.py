"""Parallel reverse-continue: its schedule (rrdbg/timeline/parallel.py) and
the timeline's search with replicas.

Invariants of the schedule: intervals cover the history to search exactly;
whatever order executors take and finish intervals in, the answer is the
sequential search's (the last hit of the newest interval with one); nothing
older than a known hit is started.  Of the search: every stop, with any
number of jobs, is the one going forward shows (also checked by the stateful
test); an interrupt goes back to where it began; a replica's failure leaves
the search to the timeline alone; a live session's replicas replay its
history so far.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrdbg.errors import RrdbgError, TargetError
from rrdbg.machine.host import LiveHost
from rrdbg.target.interface import Direction, StopKind, WatchKind
from rrdbg.timeline import parallel, policy
from rrdbg.timeline.parallel import Board, Interval, intervals, jobs_from, plan
from rrdbg.timeline.timeline import Timeline
from tests.conftest import guest, record_quietly
from tests.timeline.test_timeline import FORWARD, _never, symbols

M = parallel.MIN_INTERVAL


def test_intervals_cut_at_points_newest_first() -> None:
    spans = intervals([0, 10 * M, 20 * M, 35 * M], 0, 40 * M)
    assert spans == [
        Interval(35 * M, 40 * M),
        Interval(20 * M, 35 * M),
        Interval(10 * M, 20 * M),
        Interval(0, 10 * M),
    ]


def test_intervals_start_at_the_last_point_at_or_before_the_floor() -> None:
    spans = intervals([0, 10 * M, 20 * M], 15 * M, 30 * M)
    assert spans[-1] == Interval(10 * M, 20 * M)
    assert intervals([0, 10 * M, 20 * M], 10 * M, 30 * M)[-1].start == 10 * M


def test_intervals_merge_close_points_but_keep_the_newest() -> None:
    # Points a few instructions apart (near checkpoints of reverse steps)
    # are not worth a restore each, except the one just before now.
    spans = intervals([0, 5, 10, 10 * M, 10 * M + 7, 20 * M - 3], 0, 20 * M)
    assert [s.start for s in spans] == [20 * M - 3, 10 * M, 0]


def test_intervals_ignore_points_at_or_after_now_and_always_have_zero() -> None:
    assert intervals([5 * M, 9 * M], 0, 7 * M) == [Interval(5 * M, 7 * M), Interval(0, 5 * M)]
    assert intervals([], 0, 3) == [Interval(0, 3)]


@given(
    st.lists(st.integers(0, 1 << 30), max_size=30),
    st.integers(0, 1 << 30),
    st.integers(1, 1 << 30),
)
def test_intervals_cover_exactly(points: list[int], floor: int, now: int) -> None:
    floor = min(floor, now - 1)
    spans = intervals(points, floor, now)
    assert spans[0].end == now
    assert spans[-1].start <= floor
    for newer, older in itertools.pairwise(spans):
        assert older.end == newer.start
    assert all(s.length > 0 for s in spans)
    assert all(s.start == 0 or s.start in points for s in spans)


@given(st.lists(st.integers(1, 100), min_size=1, max_size=20), st.integers(1, 6))
def test_plan_gives_runs_of_adjacent_intervals(lengths: list[int], jobs: int) -> None:
    bounds = [0]
    for n in lengths:
        bounds.append(bounds[-1] + n)
    spans = [Interval(bounds[i], bounds[i + 1]) for i in reversed(range(len(lengths)))]
    groups = plan(spans, jobs)
    assert len(groups) == min(jobs, len(spans))
    assert all(groups)
    assert [i for g in groups for i in g] == list(range(len(spans)))


def test_plan_balances_the_lengths() -> None:
    spans = [Interval(k * 10, k * 10 + 10) for k in reversed(range(8))]
    assert plan(spans, 2) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert plan(spans, 1) == [list(range(8))]


def _sequential(hits: list[int | None]) -> tuple[int, int] | None:
    for i, h in enumerate(hits):
        if h is not None:
            return i, h
    return None


@settings(max_examples=200)
@given(
    st.lists(st.one_of(st.none(), st.integers(0, 9)), min_size=1, max_size=12),
    st.integers(1, 4),
    st.randoms(use_true_random=False),
)
def test_board_answers_as_the_sequential_search(
    hits: list[int | None], jobs: int, rng: random.Random
) -> None:
    spans = [Interval(k, k + 1) for k in reversed(range(len(hits)))]
    board: Board[int] = Board(spans, jobs)
    running: dict[int, int] = {}  # executor -> interval
    scanned: set[int] = set()
    while True:
        idle = [e for e in range(jobs) if e not in running]
        for e in idle:
            i = board.take(e)
            if i is not None:
                assert i not in scanned
                assert i < min((j for j in scanned if hits[j] is not None), default=len(hits))
                running[e] = i
        if not running:
            break
        e = rng.choice(sorted(running))
        i = running.pop(e)
        if board.stop_wanted(i):
            board.drop(i)
            continue
        scanned.add(i)
        board.finish(i, hits[i])
    assert board.settled
    assert board.answer == _sequential(hits)


def test_board_stops_older_intervals_once_a_newer_one_hits() -> None:
    spans = [Interval(k, k + 1) for k in reversed(range(4))]
    board: Board[str] = Board(spans, 2)
    assert board.take(0) == 0
    assert board.take(1) == 2
    assert not board.stop_wanted(2)
    board.finish(0, "hit")
    assert board.stop_wanted(2)
    assert board.settled and board.answer == (0, "hit")
    assert board.take(0) is None  # nothing older is worth starting


def test_board_searched_back_to() -> None:
    spans = [Interval(20, 30), Interval(10, 20), Interval(0, 10)]
    board: Board[str] = Board(spans, 2)
    assert board.searched_back_to() == 30
    board.take(0)
    board.take(1)
    board.finish(2, None)
    assert board.searched_back_to() == 30
    board.finish(0, None)
    assert board.searched_back_to() == 20


def test_board_wait_returns_on_an_interrupt() -> None:
    spans = [Interval(10, 20), Interval(0, 10)]
    board: Board[str] = Board(spans, 2)
    board.take(0)
    board.take(1)
    flag = threading.Event()
    threading.Timer(0.05, flag.set).start()
    board.wait(0.01, flag.is_set)
    assert board.interrupted and board.take(0) is None


def test_board_wait_returns_once_settled_by_another_thread() -> None:
    spans = [Interval(10, 20), Interval(0, 10)]
    board: Board[str] = Board(spans, 2)
    board.take(0)
    board.take(1)
    board.finish(1, "old")
    threading.Timer(0.05, board.finish, (0, "new")).start()
    board.wait(10.0, lambda: False)
    assert board.answer == (0, "new")


def test_jobs_from() -> None:
    assert jobs_from(None, 2) == 2
    assert jobs_from("", 64) == parallel.MAX_JOBS
    assert jobs_from(" 3 ", 2) == 3
    assert jobs_from("1", 8) == 1
    for bad in ("0", "-2", "many", "2.5"):
        with pytest.raises(RrdbgError, match="RRDBG_JOBS"):
            jobs_from(bad, 2)


# -- the timeline's parallel search against its sequential one -------------------

COMPUTE = guest("compute")
CSYMS = symbols(COMPUTE)
BACKWARD = Direction.BACKWARD


@pytest.fixture(scope="module")
def compute_rr(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("parallel") / "compute.rr"
    record_quietly(COMPUTE, ["12"], directory)
    return str(directory)


@pytest.fixture
def fine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints every 2^20 instructions going forward and intervals of
    any length: a 6 M-instruction run has several to share out."""
    monkeypatch.setattr(policy, "FORWARD_INTERVAL", 1 << 20)
    monkeypatch.setattr(policy, "COST_RATIO", 0)
    monkeypatch.setattr(parallel, "MIN_INTERVAL", 1 << 16)
    monkeypatch.setattr(Timeline, "_poll_slice", 1 << 18)  # (checkpoints come between calls)


def _timeline(directory: str, jobs: int) -> Timeline:
    t = Timeline.replay(directory, quiet=True)
    t.jobs = jobs
    return t


def _forward_hits(directory: str, arm: Callable[[Timeline], None]) -> list[int]:
    t = _timeline(directory, 1)
    arm(t)
    hits = []
    while (stop := t.resume(step=False, direction=FORWARD, interrupted=_never)).kind in (
        StopKind.BREAKPOINT,
        StopKind.WATCHPOINT,
    ):
        # (Going forward, a watchpoint stops just after the access; going
        # back, at the instruction that made it.)
        hits.append(stop.icount - (stop.kind is StopKind.WATCHPOINT))
    t.close()
    return hits


def _backward_hits(t: Timeline) -> list[tuple[StopKind, int]]:
    assert t.history_end is not None
    t.seek(0)
    t.resume(step=False, direction=FORWARD, interrupted=_never)  # (checkpoints on the way)
    t.seek(t.history_end)
    out = []
    while True:
        stop = t.resume(step=False, direction=BACKWARD, interrupted=_never)
        out.append((stop.kind, stop.icount))
        assert t.icount == stop.icount
        if stop.kind is StopKind.HISTORY_BEGIN:
            return out


def _arm_watch(t: Timeline) -> None:
    t.insert_watchpoint(WatchKind.WRITE, CSYMS["table"] + 4 * 3, 4)
    t.insert_breakpoint(CSYMS["main"], hardware=False)


def _arm_rare(t: Timeline) -> None:
    t.insert_breakpoint(CSYMS["main"], hardware=False)
    t.insert_breakpoint(CSYMS["exit"], hardware=False)


@pytest.mark.parametrize("arm", [_arm_watch, _arm_rare], ids=["watch", "rare-breakpoints"])
def test_parallel_search_finds_what_going_forward_finds(
    compute_rr: str, fine: None, arm: Callable[[Timeline], None]
) -> None:
    forward = _forward_hits(compute_rr, arm)
    assert len(forward) >= 2
    seen: dict[int, list[tuple[StopKind, int]]] = {}
    for jobs in (1, 2, 3):
        t = _timeline(compute_rr, jobs)
        arm(t)
        seen[jobs] = _backward_hits(t)
        t.close()
    assert seen[2] == seen[1] == seen[3]
    assert [k for _, k in seen[1][:-1]] == sorted(forward, reverse=True)
    assert seen[1][-1] == (StopKind.HISTORY_BEGIN, 0)


def test_parallel_search_is_used_and_states_match(compute_rr: str, fine: None) -> None:
    t = _timeline(compute_rr, 2)
    t.insert_breakpoint(CSYMS["abort"], hardware=False)  # never reached
    used: list[object] = []
    search = t._search_parallel

    def spy(*args: Any) -> Any:
        used.append(result := search(*args))
        return result

    t._search_parallel = spy  # type: ignore[method-assign,assignment]
    t.resume(step=False, direction=FORWARD, interrupted=_never)
    t._periodic = 1 << 19  # (finer than the forward run's: replicas add some)
    end_digest = t.machine.digest()
    before = {c.icount for c in t.checkpoints}
    stop = t.resume(step=False, direction=BACKWARD, interrupted=_never)
    assert stop.kind is StopKind.HISTORY_BEGIN and t.icount == 0
    assert used and used[-1] is not None
    t._join_workers()
    # The replicas' checkpoints are kept: states of the same history.
    assert {c.icount for c in t.checkpoints} - before
    assert t.history_end is not None
    t.seek(t.history_end)
    assert t.machine.digest() == end_digest
    t.close()


def test_interrupted_parallel_search_goes_back_to_where_it_began(
    compute_rr: str, fine: None
) -> None:
    t = _timeline(compute_rr, 2)
    t.insert_breakpoint(CSYMS["abort"], hardware=False)
    t.resume(step=False, direction=FORWARD, interrupted=_never)
    now, digest = t.icount, t.machine.digest()
    polls = [0]

    def soon() -> bool:
        polls[0] += 1
        return polls[0] > 3

    stop = t.resume(step=False, direction=BACKWARD, interrupted=soon)
    assert stop.kind is StopKind.INTERRUPT and stop.icount == now
    assert t.icount == now and t.machine.digest() == digest
    t.close()


def test_a_failing_replica_leaves_the_search_to_the_timeline(
    compute_rr: str, fine: None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    expected = _forward_hits(compute_rr, _arm_rare)[0]
    run_plain = Timeline._run_plain
    failures = []

    def failing(self: Timeline, end: int, interrupted: Any) -> bool:
        if threading.current_thread().name.startswith("rrdbg-scan"):
            failures.append(end)
            raise RrdbgError("replica trouble")
        return run_plain(self, end, interrupted)

    monkeypatch.setattr(Timeline, "_run_plain", failing)
    t = _timeline(compute_rr, 2)
    t.insert_breakpoint(CSYMS["abort"], hardware=False)
    t.resume(step=False, direction=FORWARD, interrupted=_never)  # to the end
    t.remove_breakpoint(CSYMS["abort"], hardware=False)
    t.insert_breakpoint(CSYMS["main"], hardware=False)
    stop = t.resume(step=False, direction=BACKWARD, interrupted=_never)
    assert (stop.kind, stop.icount) == (StopKind.BREAKPOINT, expected)
    assert failures and t._workers is None  # (joined: the search went on alone)
    # Said once; alone for the rest of the session, until jobs is set again.
    assert "one interval at a time: replica trouble" in capfd.readouterr().err
    assert "this session: one at a time: replica trouble" in t.monitor("jobs", _never)[0]
    assert t._parallel_spans(t.icount, 0) == []
    t.monitor("jobs 2", _never)
    assert t._parallel_spans(t.icount, 0)
    t.close()


def test_monitor_jobs(compute_rr: str) -> None:
    t = _timeline(compute_rr, 2)
    assert "up to 2 intervals" in t.monitor("jobs", _never)[0]
    assert "one interval" in t.monitor("jobs 1", _never)[0]
    assert t.jobs == 1
    for bad in ("jobs 0", "jobs x", "jobs 65"):
        with pytest.raises(TargetError):
            t.monitor(bad, _never)
    t.close()


def test_rrdbg_jobs_setting(compute_rr: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RRDBG_JOBS", "3")
    assert _timeline(compute_rr, 3).jobs == 3
    t = Timeline.replay(compute_rr, quiet=True)
    assert t.jobs == 3
    t.close()
    monkeypatch.setenv("RRDBG_JOBS", "zero")
    with pytest.raises(RrdbgError, match="RRDBG_JOBS must be a positive whole number"):
        Timeline.replay(compute_rr, quiet=True)


def test_live_session_searches_with_replicas_of_its_history(fine: None) -> None:
    sink = os.open(os.devnull, os.O_WRONLY)
    seen: dict[int, list[int]] = {}
    for jobs in (1, 2):
        t = Timeline.live_run(
            COMPUTE, ["12"], LiveHost(stdout_fd=sink), stdout_fd=sink, stderr_fd=sink
        )
        t.jobs = jobs
        t.insert_breakpoint(CSYMS["abort"], hardware=False)
        stop = t.resume(step=False, direction=FORWARD, interrupted=_never)
        assert stop.kind is StopKind.HISTORY_END  # (the live end: the exit is next)
        t.remove_breakpoint(CSYMS["abort"], hardware=False)
        _arm_rare(t)
        seen[jobs] = []
        while (stop := t.resume(step=False, direction=BACKWARD, interrupted=_never)).kind in (
            StopKind.BREAKPOINT,
        ):
            seen[jobs].append(stop.icount)
        assert stop.kind is StopKind.HISTORY_BEGIN
        assert (t._replicas is not None) == (jobs > 1)
        # Forward again, live at the end: the program exits.
        t.remove_breakpoint(CSYMS["main"], hardware=False)
        t.remove_breakpoint(CSYMS["exit"], hardware=False)
        assert t.resume(step=False, direction=FORWARD, interrupted=_never).kind in (
            StopKind.HISTORY_END,
            StopKind.EXITED,
        )
        t.close()
    os.close(sink)
    assert seen[1] == seen[2] and len(seen[1]) == 2


def test_a_replica_restoring_further_back_still_cuts_at_the_interval(
    compute_rr: str, fine: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpoint evicted after the intervals were cut: the replica
    # restores an older one and must run to the interval's start before
    # noting anything (a block run across it could be named by its start).
    restore = Timeline._restore_at_or_before

    def from_the_start(self: Timeline, icount: int) -> None:
        if threading.current_thread().name.startswith("rrdbg-scan"):
            icount = 0
        restore(self, icount)

    monkeypatch.setattr(Timeline, "_restore_at_or_before", from_the_start)
    forward = _forward_hits(compute_rr, _arm_watch)
    t = _timeline(compute_rr, 2)
    _arm_watch(t)
    assert [k for _, k in _backward_hits(t)[:-1]] == sorted(forward, reverse=True)
    t.close()


def test_live_session_searches_alone_when_its_program_changed(
    fine: None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    program = tmp_path / "compute"
    shutil.copy(COMPUTE, program)
    sink = os.open(os.devnull, os.O_WRONLY)
    t = Timeline.live_run(
        str(program), ["12"], LiveHost(stdout_fd=sink), stdout_fd=sink, stderr_fd=sink
    )
    t.jobs = 2
    t.insert_breakpoint(CSYMS["abort"], hardware=False)
    t.resume(step=False, direction=FORWARD, interrupted=_never)
    program.write_bytes(b"rebuilt meanwhile")
    t.remove_breakpoint(CSYMS["abort"], hardware=False)
    t.insert_breakpoint(CSYMS["main"], hardware=False)
    stop = t.resume(step=False, direction=BACKWARD, interrupted=_never)
    assert stop.kind is StopKind.BREAKPOINT and t.machine.cpu.eip == CSYMS["main"]
    assert "changed since the session began" in capfd.readouterr().err
    t.close()
    os.close(sink)
