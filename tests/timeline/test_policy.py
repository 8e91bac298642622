"""The checkpoint-thinning policy: pure, so checked with properties."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from rrdbg.timeline.policy import NEAR, NEAR_MIN, STEP_BACK_SECONDS, evictions, near_distance


@st.composite
def checkpoint_sets(draw: st.DrawFn) -> tuple[list[int], list[int], list[bool], int, int]:
    icounts = sorted(draw(st.sets(st.integers(1, 10**9), max_size=40)))
    icounts = [0, *icounts]
    sizes = draw(st.lists(st.integers(0, 10**6), min_size=len(icounts), max_size=len(icounts)))
    protected = [i == 0 for i in icounts]
    position = draw(st.integers(0, 10**9))
    budget = draw(st.integers(0, sum(sizes) + 1))
    return icounts, sizes, protected, position, budget


@given(checkpoint_sets())
def test_evictions_fit_the_budget_and_spare_protected(
    case: tuple[list[int], list[int], list[bool], int, int],
) -> None:
    icounts, sizes, protected, position, budget = case
    drop = evictions(icounts, sizes, protected, position, budget)
    assert drop == sorted(set(drop))
    assert not any(protected[i] for i in drop)
    kept = sum(s for i, s in enumerate(sizes) if i not in drop)
    protected_size = sum(s for s, p in zip(sizes, protected, strict=True) if p)
    if protected_size <= budget:
        assert kept <= budget
    if sum(sizes) <= budget:
        assert drop == []  # nothing dropped needlessly
    # Each drop was made while over budget: at most all unprotected ones go.
    assert len(drop) <= sum(not p for p in protected)


def test_nothing_dropped_within_budget() -> None:
    assert evictions([0, 10, 20], [5, 5, 5], [True, False, False], 20, 15) == []


def test_density_stays_near_the_position() -> None:
    """Checkpoints every 1000 instructions, room for a quarter of them: the
    ones kept are dense near the position and sparse far from it."""
    icounts = list(range(0, 100_000, 1000))
    sizes = [1] * len(icounts)
    position = 99_000
    drop = set(evictions(icounts, sizes, [i == 0 for i in icounts], position, 25))
    kept = [k for i, k in enumerate(icounts) if i not in drop]
    assert kept[0] == 0
    near = [k for k in kept if k >= 90_000]
    far = [k for k in kept if 10_000 <= k < 50_000]
    assert len(near) >= 5
    assert len(far) <= len(near)
    gaps = [b - a for a, b in itertools.pairwise(kept)]
    assert max(gaps[-3:]) <= max(gaps[:3])  # gaps grow away from the position


@given(st.floats(0, 1e12), st.floats(0, 1e12))
def test_near_distance_follows_the_replay_speed_within_bounds(a: float, b: float) -> None:
    """Slower replay, closer checkpoints; never beyond NEAR nor under NEAR_MIN."""
    slow, fast = sorted((a, b))
    assert NEAR_MIN <= near_distance(slow) <= near_distance(fast) <= NEAR
    if NEAR_MIN / 2 <= slow * STEP_BACK_SECONDS <= NEAR / 2:
        # Replaying half the distance takes about STEP_BACK_SECONDS.
        assert abs(near_distance(slow) / 2 / slow - STEP_BACK_SECONDS) < 1e-6
    assert near_distance(float("inf")) == NEAR
