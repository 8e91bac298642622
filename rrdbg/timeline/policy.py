"""Which in-memory checkpoints to keep: a pure policy, no I/O, no machine.

Role: reverse execution restores the nearest checkpoint at or before a
target icount and replays forward, so its cost is the distance to that
checkpoint.  Near the current position (where the user steps back and
forth) checkpoints should be dense; far away, sparse.  Like rr's thinning,
this keeps roughly logarithmic spacing: when the checkpoints use more
memory than the budget, the one whose removal opens the smallest gap
*relative to its distance from the current position* goes first.

Invariants (tests/timeline/test_policy.py):
- protected checkpoints (icount 0, the base of every replay) are never chosen;
- the choice only depends on the icounts, sizes, position and budget;
- after evicting the returned indexes the total fits the budget whenever
  the protected checkpoints alone fit it.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Default memory for in-memory checkpoints (their own bytes, shared chunks
#: counted once).
DEFAULT_BUDGET = 256 << 20
#: Replaying this many instructions costs about a millisecond at the pinned
#: Unicorn's speed: a reverse step never replays further than this from a
#: checkpoint the timeline placed for it (see Timeline.seek).
NEAR = 1 << 20
#: What one step back should cost at most: when replay is slower than
#: usual (a kernel polling a device port runs Python hooks all the time),
#: the timeline places its near checkpoints closer (near_distance).
STEP_BACK_SECONDS = 0.001
#: ... but not closer than this: a checkpoint costs memory and a capture.
NEAR_MIN = 1 << 12


def near_distance(instructions_per_second: float) -> int:
    """How far before a seek's target to leave a checkpoint (x2): NEAR at
    the usual replay speed, less when the measured speed is lower."""
    by_time = instructions_per_second * STEP_BACK_SECONDS * 2
    return max(int(min(NEAR, by_time)), min(NEAR, NEAR_MIN))


#: During forward runs, a checkpoint at least this often (in instructions),
#: stretched so that taking them costs at most 1/COST_RATIO of the run.
FORWARD_INTERVAL = 50_000_000
COST_RATIO = 50
#: ... and, when reverse-continue has several executors, at least this many
#: checkpoints per executor over a replay's whole history (intervals fine
#: enough to share out evenly), as long as they cost at most
#: 1/SHARE_COST_RATIO of the run.
INTERVALS_PER_JOB = 8
SHARE_COST_RATIO = 20


def evictions(
    icounts: Sequence[int],
    sizes: Sequence[int],
    protected: Sequence[bool],
    position: int,
    budget: int,
) -> list[int]:
    """Indexes (into the sorted ``icounts``) of checkpoints to drop so the rest
    fit in ``budget`` bytes; ``sizes[i]`` is what dropping ``i`` frees."""
    alive = list(range(len(icounts)))
    total = sum(sizes)
    out: list[int] = []
    while total > budget:
        best = -1
        best_score = 0.0
        for j, i in enumerate(alive):
            if protected[i]:
                continue
            before = icounts[alive[j - 1]] if j > 0 else 0
            after = icounts[alive[j + 1]] if j + 1 < len(alive) else max(position, icounts[i])
            gap = after - before
            distance = abs(icounts[i] - position)
            score = gap / (1 + distance)
            if best < 0 or score < best_score:
                best, best_score = i, score
        if best < 0:
            break  # only protected checkpoints are left
        alive.remove(best)
        out.append(best)
        total -= sizes[best]
    return sorted(out)
