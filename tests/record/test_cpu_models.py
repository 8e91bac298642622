"""A recording keeps its CPU model and replays with it (issue 19).

New recordings use engine.CPU_MODEL_NAME; a recording made with another
model the engine knows replays with that one (glibc picks its routines by
CPUID, so the model is part of the instruction count), and a snapshot of
one model is never loaded into a machine of another.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rrdbg.errors import EmulatorError, SnapshotFormatError
from rrdbg.machine.engine import CPU_MODEL_NAME
from rrdbg.machine.host import SeededHost
from rrdbg.machine.machine import LinuxMachine
from rrdbg.record.log import LogReader
from rrdbg.timeline.timeline import Timeline
from tests.conftest import guest, record_quietly

DEBUGME = guest("debugme")
OTHER = "haswell" if CPU_MODEL_NAME != "haswell" else "qemu64"


@pytest.fixture(scope="module")
def other_rr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("models") / "debugme.rr"
    record_quietly(DEBUGME, [], directory, cpu_model=OTHER)
    return directory


def _rrdbg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rrdbg", *args], capture_output=True, text=True, check=False
    )


def test_the_recording_keeps_its_model_and_replays_with_it(other_rr: Path) -> None:
    with LogReader.open(str(other_rr / "log.rrlog")) as reader:
        assert reader.header.cpu_model == OTHER
    assert f"CPU model {OTHER}" in _rrdbg("info", str(other_rr)).stdout
    done = _rrdbg("replay", str(other_rr))
    assert (done.returncode, done.stdout) == (7, "total=55 counter=15\n"), done.stderr
    t = Timeline.replay(str(other_rr), quiet=True)
    assert t.machine.engine.model == OTHER
    assert t.history_end is not None
    t.seek(t.history_end)
    end = t.machine.digest()
    t.seek(t.history_end // 2)
    t.seek(t.history_end)
    assert t.machine.digest() == end
    assert t.store is not None and t.disk
    t.store.load(t.machine, t.disk[0])  # its own model's snapshot
    assert t.machine.icount == 0


def test_a_snapshot_is_only_loaded_into_its_model(other_rr: Path) -> None:
    t = Timeline.replay(str(other_rr), quiet=True)
    assert t.store is not None
    theirs = LinuxMachine(DEBUGME, ["debugme"], SeededHost(), cpu_model=CPU_MODEL_NAME)
    with pytest.raises(SnapshotFormatError, match="CPU model"):
        t.store.load(theirs, t.disk[0])


def test_an_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(EmulatorError, match=r"unknown CPU model 'pentium9' \(known: qemu64, "):
        LinuxMachine(DEBUGME, ["debugme"], SeededHost(), cpu_model="pentium9")


def test_the_command_line_chooses_the_model(tmp_path: Path) -> None:
    run = _rrdbg("run", "--cpu", OTHER, "--icount", DEBUGME)
    assert run.returncode == 7 and run.stdout == "total=55 counter=15\n"
    rec = tmp_path / "d.rr"
    assert _rrdbg("record", "--cpu", OTHER, "-o", str(rec), DEBUGME).returncode == 7
    assert f"CPU model {OTHER}" in _rrdbg("info", str(rec)).stdout
    instructions = re.search(r"instructions: (\d+)", _rrdbg("info", str(rec)).stdout)
    assert instructions is not None
    assert run.stderr.strip() == f"rrdbg: {int(instructions.group(1))} instructions"
    bad = _rrdbg("run", "--cpu", "pentium9", DEBUGME)
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr.startswith("rrdbg: unknown CPU model 'pentium9' (known: qemu64, ")
    assert bad.stderr.count("\n") == 1
