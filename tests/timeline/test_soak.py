"""Random operations on one timeline keep its memory bounded (tools/soak.py
runs 5,000; this runs a few hundred).  Each re-translation used to take
new space in Unicorn's code buffer, which QEMU never reclaims: 1.35 MB per
seek + continue + reverse-continue, without end."""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rrdbg.timeline.timeline import Timeline
from tests.conftest import guest, record_quietly

TOOL = Path(__file__).resolve().parents[2] / "tools" / "soak.py"
_spec = importlib.util.spec_from_file_location("soak", TOOL)
assert _spec is not None and _spec.loader is not None
soak = importlib.util.module_from_spec(_spec)
sys.modules["soak"] = soak
_spec.loader.exec_module(soak)


@pytest.mark.slow
def test_random_operations_stay_within_the_memory_bound(tmp_path: Path) -> None:
    directory = tmp_path / "debugme.rr"
    record_quietly(guest("debugme"), [], directory)
    sink = os.open(os.devnull, os.O_WRONLY)
    t = Timeline.replay(str(directory), stdout_fd=sink, stderr_fd=sink)
    rng = random.Random(7)
    soak.soak(t, 150, rng, lambda _i: None)  # warm up: code buffer, checkpoints
    # Unicorn's first flush of a code buffer makes all of it resident (128
    # MiB, engine.TCG_BUFFER_BYTES), once per machine: the timeline's and
    # each replica's (jobs - 1 of them, made at the first parallel
    # reverse-continue).  Do that now, so that only growth is measured
    # whichever operation would have come first.
    for machine in [t.machine, *(r.machine for r in t._replicas_for(t.jobs - 1))]:
        machine.cpu.flush_translations()
    warm = soak.rss_bytes()
    peak = soak.soak(t, 900, rng, lambda _i: None)
    # Growth after warming up: checkpoints (bounded by their budget) only.
    # (This process ran other tests first: only growth means anything here.)
    assert peak - warm <= t.checkpoint_bytes() + (8 << 20), (warm, peak)
    os.close(sink)


@pytest.mark.slow
def test_a_fresh_process_stays_within_the_documented_bound(tmp_path: Path) -> None:
    directory = tmp_path / "debugme.rr"
    record_quietly(guest("debugme"), [], directory)
    proc = subprocess.run(
        [sys.executable, str(TOOL), str(directory), "--operations", "600"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "within the bound" in proc.stdout
