"""Timelines over PC machine recordings: every way to an icount gives the
same state (qcow2 snapshots, in-memory checkpoints, a plain run from 0), with
serial input, hlt wake-ups and timer interrupts in between; and the monitor
commands on a kernel."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rrdbg.record.recording import PcOptions, record_pc
from rrdbg.target.interface import Direction, StopKind
from rrdbg.timeline.timeline import Timeline
from tests.conftest import guest
from tests.timeline.test_timeline import symbols


def _never() -> bool:
    return False


@pytest.fixture
def sink() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_WRONLY)
    yield fd
    os.close(fd)


def _record(tmp_path: Path, kernel: str, sink: int, stdin: bytes = b"") -> Path:
    directory = tmp_path / f"{kernel}.rr"
    source = tmp_path / "input"
    source.write_bytes(stdin)
    saved = os.dup(1)
    os.dup2(sink, 1)
    try:
        record_pc(guest(kernel), str(directory), PcOptions(2), interval=997, stdin=str(source))
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return directory


@pytest.mark.parametrize(("kernel", "stdin"), [("k_echo", b"abc\ndef."), ("k_ticks", b"")])
def test_every_way_to_an_icount_gives_one_state(
    tmp_path: Path, sink: int, kernel: str, stdin: bytes
) -> None:
    """Snapshots every 997 instructions (they land next to input reads and
    interrupt deliveries); seeks from them, from checkpoints and from 0
    agree at every probed icount, and the whole run replays to its end."""
    directory = _record(tmp_path, kernel, sink, stdin)
    plain = Timeline.replay(str(directory), stdout_fd=sink, stderr_fd=sink)
    plain.disk = []  # no snapshots: one forward run
    snapped = Timeline.replay(str(directory), stdout_fd=sink, stderr_fd=sink)
    assert len(snapped.disk) > 10
    end = plain.history_end
    assert end is not None
    probes = sorted({*range(0, end, 331), *(s.icount or 0 for s in snapped.disk), end})
    digests = {}
    for k in probes:
        plain.seek(k)
        digests[k] = plain.machine.digest()
    for k in reversed(probes):  # backwards: snapshots and checkpoints each time
        snapped.seek(k)
        assert snapped.machine.digest() == digests[k], k
    stop = snapped.resume(step=False, direction=Direction.FORWARD, interrupted=_never)
    assert stop.kind is StopKind.HISTORY_END and snapped.icount == end


def test_monitor_on_a_kernel(tmp_path: Path, sink: int) -> None:
    directory = _record(tmp_path, "k_ticks", sink)
    t = Timeline.replay(str(directory), stdout_fd=sink, stderr_fd=sink)
    t.resume(step=False, direction=Direction.FORWARD, interrupted=_never)
    text, _ = t.monitor("info replay", _never)
    assert text == f"Replaying execution '{directory}': instruction count = {t.icount}\n"
    ticks = symbols(guest("k_ticks"))["ticks"]
    text, _ = t.monitor(f"last-write {ticks:#x} 4", _never)
    # The tick counter is written by the handler's code.
    assert "<timer_irq+" in text, text
    t.seek(t.icount // 2)
    text, _ = t.monitor("info checkpoints", _never)
    assert "snapshots in" in text and "icount 997" in text
