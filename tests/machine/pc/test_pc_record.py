"""Recording and replaying bare-metal PC runs: serial input typed during the
recording replays identically, and interrupts land at the same icounts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rrdbg.errors import ReplayDivergence
from rrdbg.machine.pc import PcMachine
from rrdbg.record.recording import PcOptions, record_pc, replay_pc
from rrdbg.snapshot.qcow2 import Qcow2Image
from tests.machine.pc.expected import CASES, KERNELS, comparable


@pytest.fixture
def irq_log(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(icount, vector) of every interrupt the PC machine delivers."""
    log: list[tuple[int, int]] = []
    original = PcMachine._deliver_irq

    def spy(self: PcMachine) -> None:
        vector = self._next_irq()
        assert vector is not None
        log.append((self.icount, vector))
        original(self)

    monkeypatch.setattr(PcMachine, "_deliver_irq", spy)
    return log


def _quiet() -> tuple[int, int]:
    fd = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(fd, 1)
    return fd, saved


def _loud(fds: tuple[int, int]) -> None:
    fd, saved = fds
    os.dup2(saved, 1)
    os.close(saved)
    os.close(fd)


@pytest.mark.parametrize("name", ["k_echo", "k_echo-lines", "k_ticks", "k_rtc"])
def test_replay_reproduces_the_run_and_its_interrupts(
    name: str, tmp_path: Path, irq_log: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[name]
    typed = tmp_path / "typed"
    typed.write_bytes(case.stdin)
    directory = tmp_path / "run.rr"
    monkeypatch.chdir(KERNELS)
    fds = _quiet()
    try:
        recorded, snapshots = record_pc(
            case.kernel,
            str(directory),
            PcOptions(32, case.append or ""),
            stdin=str(typed),
            interval=7000,
        )
    finally:
        _loud(fds)
    recorded_irqs = list(irq_log)
    irq_log.clear()
    out = tmp_path / "out"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT)
    try:
        replayed = replay_pc(str(directory), stdout_fd=fd)  # no stdin at all
    finally:
        os.close(fd)
    assert (replayed.icount, replayed.status) == (recorded.icount, recorded.status)
    assert replayed.status == case.qemu_status
    assert irq_log == recorded_irqs
    if name != "k_rtc":
        assert len(recorded_irqs) > 0
    assert comparable(out.read_bytes()) == comparable(case.stdout)
    assert len(snapshots) > 1
    with Qcow2Image.open(str(directory / "snapshots.qcow2"), writable=False) as image:
        assert [s.icount for s in image.snapshots()] == [s.icount for s in snapshots]
    if shutil.which("qemu-img"):
        check = subprocess.run(
            ["qemu-img", "check", str(directory / "snapshots.qcow2")],
            capture_output=True,
            check=False,
        )
        assert check.returncode == 0


def test_a_changed_recording_diverges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES["k_echo"]
    typed = tmp_path / "typed"
    typed.write_bytes(case.stdin)
    monkeypatch.chdir(KERNELS)
    fds = _quiet()
    try:
        record_pc(case.kernel, str(tmp_path / "a.rr"), PcOptions(), stdin=str(typed))
    finally:
        _loud(fds)
    # Same log, other command line: the kernel sees other memory.
    log = (tmp_path / "a.rr" / "log.rrlog").read_bytes()
    assert b"cmdline" in log
    patched = tmp_path / "b.rr"
    shutil.copytree(tmp_path / "a.rr", patched)
    monkeypatch.setattr(PcOptions, "from_header", classmethod(lambda cls, h: cls(64, "")))
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        with pytest.raises(ReplayDivergence):
            replay_pc(str(patched), stdout_fd=fd)
    finally:
        os.close(fd)


def test_cli_record_and_replay(tmp_path: Path) -> None:
    directory = tmp_path / "ticks.rr"
    base = [sys.executable, "-m", "rrdbg"]
    rec = subprocess.run(
        [*base, "record", "--machine", "pc", "-o", str(directory), "k_ticks"],
        cwd=KERNELS,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert rec.returncode == CASES["k_ticks"].qemu_status, rec.stderr
    rep = subprocess.run(
        [*base, "replay", str(directory)], capture_output=True, timeout=120, check=False
    )
    assert rep.returncode == rec.returncode, rep.stderr
    assert rep.stdout == rec.stdout
    info = subprocess.run(
        [*base, "info", str(directory)], capture_output=True, text=True, timeout=60, check=True
    )
    assert "machine:     pc, 32 MB of RAM, command line ''" in info.stdout
    assert "(program ended: exit code 1)" in info.stdout


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")
def test_orphan_image_holds_the_pc_snapshots(tmp_path: Path) -> None:
    """QEMU's flow for a diskless machine: snapshots go into an image made by
    ``qemu-img create``; qemu-img lists them with their icounts, and a gdb
    timeline over the recording uses them as far checkpoints."""
    from rrdbg.timeline.timeline import Timeline

    image = tmp_path / "empty.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(image), "1M"], check=True)
    directory = tmp_path / "ticks.rr"
    rec = subprocess.run(
        [
            *(sys.executable, "-m", "rrdbg", "record", "--machine", "pc"),
            *("--image", str(image), "--snapshot-interval", "5000"),
            *("-o", str(directory), "k_ticks"),
        ],
        cwd=KERNELS,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert rec.returncode == CASES["k_ticks"].qemu_status, rec.stderr
    listing = subprocess.run(
        ["qemu-img", "snapshot", "-l", str(image)], capture_output=True, text=True, check=True
    ).stdout
    assert "init-5000" in listing and "init-25000" in listing
    subprocess.run(["qemu-img", "check", str(image)], capture_output=True, check=True)
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        t = Timeline.replay(str(directory), stdout_fd=sink, stderr_fd=sink)
        assert [s.icount for s in t.disk][:3] == [0, 5000, 10000]
        t.seek(27_000)  # from the snapshot at 25000
        assert t.icount == 27_000
    finally:
        os.close(sink)
