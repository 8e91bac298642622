"""kill -9 of the recorder at a few random moments (tools/kill_recorder.py
runs many): every recording replays, its output a prefix of the recorded
output, at least as far as its last snapshot."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "kill_recorder.py"
_spec = importlib.util.spec_from_file_location("kill_recorder", TOOL)
assert _spec is not None and _spec.loader is not None
kill_recorder = importlib.util.module_from_spec(_spec)
sys.modules["kill_recorder"] = kill_recorder  # dataclasses look their module up
_spec.loader.exec_module(kill_recorder)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "args"), kill_recorder.CASES)
def test_a_killed_recorder_leaves_a_recording_that_replays(
    name: str, args: list[str], tmp_path: Path
) -> None:
    rng = random.Random(name)
    for delay in sorted(rng.uniform(0.4, 1.2) for _ in range(3)):
        outcome = kill_recorder.kill_once(str(kill_recorder.GUESTS / name), args, delay, tmp_path)
        assert outcome.problems() == [], (delay, outcome)
