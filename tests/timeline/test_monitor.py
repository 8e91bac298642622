"""The timeline's monitor commands (QEMU's replay commands and rrdbg's own)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rrdbg.errors import RrdbgError, TargetError
from rrdbg.machine.host import LiveHost
from rrdbg.record.recording import describe, open_recording
from rrdbg.snapshot.qcow2 import Qcow2Image
from rrdbg.target.interface import Direction, StopKind
from rrdbg.timeline.timeline import MAX_NAMED, Timeline
from tests.conftest import guest, record_quietly
from tests.timeline.test_timeline import SYMS

DEBUGME = guest("debugme")
F, B = Direction.FORWARD, Direction.BACKWARD


def _never() -> bool:
    return False


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("mon") / "debugme.rr"
    record_quietly(DEBUGME, [], directory)
    return directory


@pytest.fixture
def timeline(recording: Path, tmp_path: Path) -> Timeline:
    copy = tmp_path / "copy.rr"
    shutil.copytree(recording, copy)
    sink = os.open(os.devnull, os.O_WRONLY)
    return Timeline.replay(str(copy), stdout_fd=sink, stderr_fd=sink)


def mon(t: Timeline, command: str) -> str:
    return t.monitor(command, _never)[0]


def rrdbg(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "rrdbg", *args], capture_output=True, check=False, timeout=60
    )


def test_info_replay_and_when(timeline: Timeline) -> None:
    assert mon(timeline, "info replay") == (
        f"Replaying execution '{timeline.name}': instruction count = 0\n"
    )
    timeline.seek(1234)
    assert mon(timeline, "when") == "Current icount: 1234\n"
    assert "replay_seek N" in mon(timeline, "help")


def test_replay_seek_moves_and_reports(timeline: Timeline) -> None:
    text, stop = timeline.monitor("replay_seek 9000", _never)
    assert timeline.icount == 9000
    assert stop is not None
    assert stop.icount == 9000
    assert "flush register-cache" in text
    assert timeline.last_stop.icount == 9000
    with pytest.raises(TargetError, match="beyond the end of history"):
        mon(timeline, "replay_seek 99999999")
    with pytest.raises(TargetError, match="bad icount"):
        mon(timeline, "replay_seek -5")
    with pytest.raises(TargetError, match="bad icount"):
        mon(timeline, "replay_seek lots")


def test_replay_break_both_directions(timeline: Timeline) -> None:
    mon(timeline, "replay_break 9500")
    stop = timeline.resume(step=False, direction=F, interrupted=_never)
    assert (stop.kind, stop.icount, stop.signal) == (StopKind.POSITION, 9500, 2)
    stop = timeline.resume(step=False, direction=F, interrupted=_never)  # one-shot
    assert stop.kind is StopKind.HISTORY_END
    mon(timeline, "replay_break 1000")
    stop = timeline.resume(step=False, direction=B, interrupted=_never)
    assert (stop.kind, stop.icount) == (StopKind.POSITION, 1000)
    mon(timeline, "replay_break 500")
    mon(timeline, "replay_delete_break")
    stop = timeline.resume(step=False, direction=B, interrupted=_never)
    assert stop.kind is StopKind.HISTORY_BEGIN


def test_last_write_by_an_instruction(timeline: Timeline) -> None:
    timeline.resume(step=False, direction=F, interrupted=_never)  # to the end
    end = timeline.icount
    text = mon(timeline, f"last-write {SYMS['counter']:#x} 4")
    assert text.startswith(f"last write to {SYMS['counter']:#x}+4 before icount {end}: icount ")
    assert "<bump+" in text
    k = int(text.split("icount ")[2].split(",")[0])
    assert timeline.icount == end  # the position did not change
    timeline.seek(k)
    before = timeline.read_memory(SYMS["counter"], 4)
    timeline.seek(k + 1)
    assert (before, timeline.read_memory(SYMS["counter"], 4)) == (
        (10).to_bytes(4, "little"),
        (15).to_bytes(4, "little"),
    )
    timeline.seek(100)
    assert mon(timeline, f"last-write {SYMS['counter']:#x} 4").startswith("no write")


def test_last_write_by_the_kernel(tmp_path: Path) -> None:
    """stdin_echo reads stdin into a buffer: the kernel's write is found."""
    directory = tmp_path / "echo.rr"
    data = tmp_path / "in.txt"
    data.write_bytes(b"hello world\n")
    fd = os.open(os.devnull, os.O_WRONLY)
    record_quietly(guest("stdin_echo"), [], directory, stdin=str(data))
    t = Timeline.replay(str(directory), stdout_fd=fd, stderr_fd=fd)
    t.resume(step=False, direction=F, interrupted=_never)
    # The first read's buffer: ECX of the first read(0, ...) syscall.
    replay = open_recording(str(directory), quiet=True)
    reads = [e for e in replay.reader if e.kind == 5]
    replay.close()
    first_read = reads[0].icount
    t.seek(first_read - 1)  # at the int 0x80 of that read
    buf = int.from_bytes(t.read_registers()["ecx"], "little")
    t.seek(first_read)  # just after it: the buffer holds what the kernel put there
    text = mon(t, f"last-write {buf:#x} 4")
    assert f"icount {first_read - 1}, pc " in text, text
    assert text.endswith("(system call)\n"), text


def test_a_checkpoint_stays_in_memory_unless_saved(timeline: Timeline) -> None:
    assert timeline.image is not None
    before = Path(timeline.image.path).read_bytes()
    timeline.seek(5000)
    assert "(in memory, for this session)" in mon(timeline, "checkpoint here")
    assert Path(timeline.image.path).read_bytes() == before  # the recording is untouched
    assert "here" in mon(timeline, "info checkpoints")
    timeline.seek(100)
    mon(timeline, "restart here")
    assert timeline.icount == 5000
    # A limit: at most MAX_NAMED of them, then --save is suggested.
    for i in range(MAX_NAMED - 1):
        mon(timeline, f"checkpoint c{i}")
    with pytest.raises(TargetError, match="--save"):
        mon(timeline, "checkpoint one-too-many")
    # Named checkpoints are never evicted, whatever the budget.
    timeline.budget = 1
    timeline.seek(11000)
    timeline.seek(3000)
    assert all(any(c is cp for c in timeline.checkpoints) for cp in timeline.named.values())


def test_checkpoint_save_is_a_qcow2_snapshot(timeline: Timeline) -> None:
    timeline.seek(10345)
    text = mon(timeline, "checkpoint --save before-loop")
    assert "checkpoint 'before-loop' at icount 10345" in text
    assert timeline.image is not None
    path = timeline.image.path
    with pytest.raises(TargetError, match="already exists"):
        mon(timeline, "checkpoint --save before-loop")
    listing = mon(timeline, "info checkpoints")
    assert "before-loop" in listing
    assert "in memory:" in listing
    with Qcow2Image.open(path, writable=False) as image:
        snap = image.find("before-loop")
        assert snap is not None
        assert snap.icount == 10345
    if shutil.which("qemu-img"):
        check = subprocess.run(["qemu-img", "check", path], capture_output=True, check=False)
        assert check.returncode == 0, check.stdout
        listed = subprocess.run(
            ["qemu-img", "snapshot", "-l", path], capture_output=True, text=True, check=True
        ).stdout
        assert "before-loop" in listed
        assert "10345" in listed
    # The snapshot restores to the same state.
    directory = Path(path).parent
    with open_recording(str(directory), quiet=True, snapshot="before-loop") as replay:
        assert replay.machine.icount == 10345
        assert replay.machine.digest() == timeline.machine.digest()


def test_unknown_and_malformed_commands(timeline: Timeline) -> None:
    for command in ("frobnicate", "replay_seek", "last-write", "last-write 0x10 0", "save"):
        with pytest.raises(TargetError):
            mon(timeline, command)
    with pytest.raises(TargetError, match="already"):
        mon(timeline, "save /tmp/x")  # not live


def test_live_save(tmp_path: Path) -> None:
    sink = os.open(os.devnull, os.O_WRONLY)
    t = Timeline.live_run(DEBUGME, [], LiveHost(stdout_fd=sink), stdout_fd=sink, stderr_fd=sink)
    t.resume(step=False, direction=F, interrupted=_never)  # runs to the exit
    out = tmp_path / "saved.rr"
    text = mon(t, f"save {out}")
    assert "complete" in text
    proc = rrdbg("replay", str(out))
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout == b"total=55 counter=15\n"


def test_live_save_before_the_end_stops_where_the_program_is(tmp_path: Path) -> None:
    sink = os.open(os.devnull, os.O_WRONLY)
    t = Timeline.live_run(DEBUGME, [], LiveHost(stdout_fd=sink), stdout_fd=sink, stderr_fd=sink)
    t.insert_breakpoint(SYMS["bump"], hardware=False)
    for _ in range(3):
        t.resume(step=False, direction=F, interrupted=_never)
    here = t.icount
    t.resume(step=True, direction=B, interrupted=_never)  # not at the frontier
    out = tmp_path / "saved.rr"
    text = mon(t, f"save {out}")
    assert f"stops at icount {here}" in text
    assert t.icount == here - 1  # saving did not move the session
    end = describe(str(out)).end
    assert end is not None and not end.finished and end.icount == here
    proc = rrdbg("replay", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count(b"\n") == 1 and b"had not finished" in proc.stderr
    info = rrdbg("info", str(out))
    assert f"instructions: {here} (the program had not finished".encode() in info.stdout
    # A replay of it goes everywhere up to there, and no further.
    r = Timeline.replay(str(out), stdout_fd=sink, stderr_fd=sink)
    stop = r.resume(step=False, direction=F, interrupted=_never)
    assert (stop.kind, r.icount) == (StopKind.HISTORY_END, here)
    assert r.machine.digest() == end.digest
    r.seek(here // 2)
    assert r.icount == here // 2
    os.close(sink)


def test_live_save_of_a_kernel_before_its_end_replays_to_there(tmp_path: Path) -> None:
    from rrdbg.record.recording import PcOptions, replay_pc

    sink = os.open(os.devnull, os.O_WRONLY)
    t = Timeline.live_run(
        guest("k_busy"),
        [],
        LiveHost(stdout_fd=sink),
        stdout_fd=sink,
        stderr_fd=sink,
        pc=PcOptions(2, "loop=35000"),
    )
    t.seek(20_000)  # runs live to there: a kernel in the middle of its loop
    out = tmp_path / "k.rr"
    assert "stops at icount 20000" in mon(t, f"save {out}")
    result = replay_pc(str(out), quiet=True)
    assert (result.icount, result.status) == (20_000, None)
    assert result.reason.startswith("the recording stops at icount 20000")
    proc = rrdbg("replay", "--quiet", str(out))
    assert proc.returncode == 0, proc.stderr
    os.close(sink)


def test_saving_after_stepping_back_from_the_exit_is_a_finished_recording(
    tmp_path: Path,
) -> None:
    sink = os.open(os.devnull, os.O_WRONLY)
    t = Timeline.live_run(DEBUGME, [], LiveHost(stdout_fd=sink), stdout_fd=sink, stderr_fd=sink)
    t.resume(step=False, direction=F, interrupted=_never)  # runs to the exit
    t.resume(step=True, direction=B, interrupted=_never)
    out = tmp_path / "saved.rr"
    assert "complete" in mon(t, f"save {out}")
    end = describe(str(out)).end
    assert end is not None and end.finished and end.exit_code == 7
    os.close(sink)


def test_seek_takes_icounts_and_names_restart_takes_ids(timeline: Timeline) -> None:
    timeline.seek(5000)
    mon(timeline, "checkpoint --save here")
    at = timeline.icount
    assert at == 5000
    mon(timeline, "seek 2")
    assert timeline.icount == 2  # an icount, never snapshot id 2
    mon(timeline, "seek here")
    assert timeline.icount == at
    mon(timeline, "seek 0")
    snap = next(s for s in timeline.disk if s.name == "here")
    mon(timeline, f"restart {snap.id}")
    assert timeline.icount == at


def test_a_live_session_saved_after_a_rebuild_keeps_the_program_it_ran(tmp_path: Path) -> None:
    prog = tmp_path / "prog"
    shutil.copy(DEBUGME, prog)
    sink = os.open(os.devnull, os.O_WRONLY)
    t = Timeline.live_run(str(prog), [], LiveHost(stdout_fd=sink), stdout_fd=sink, stderr_fd=sink)
    t.resume(step=False, direction=F, interrupted=_never)  # runs to the exit
    prog.unlink()  # rebuilt while the session goes on
    shutil.copy(guest("exitcode"), prog)
    out = tmp_path / "saved.rr"
    mon(t, f"save {out}")
    proc = rrdbg("replay", str(out))
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout == b"total=55 counter=15\n"
    os.close(sink)


@pytest.mark.parametrize(
    "target",
    [
        "/proc/self/x",  # mkdir fails: ENOENT/EPERM
        "/nonexistent-dir/deeper/x.rr",  # no parent: nothing is created
        "/proc",  # exists, a non-empty directory
        "/etc/hostname",  # exists, not a directory
        "/",
    ],
)
def test_hostile_save_targets_are_errors_and_create_nothing(target: str) -> None:
    sink = os.open(os.devnull, os.O_WRONLY)
    t = Timeline.live_run(DEBUGME, [], LiveHost(stdout_fd=sink), stdout_fd=sink, stderr_fd=sink)
    t.seek(100)
    with pytest.raises(RrdbgError):
        mon(t, f"save {target}")
    assert not Path("/nonexistent-dir").exists()
    assert mon(t, "when") == "Current icount: 100\n"  # the session goes on
    os.close(sink)


def test_saved_checkpoints_have_a_limit_too(
    timeline: Timeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rrdbg.timeline.timeline as tl

    monkeypatch.setattr(tl, "MAX_SAVED", 2)
    for i in range(2):
        timeline.seek(1000 * (i + 1))
        mon(timeline, f"checkpoint --save s{i}")
    timeline.seek(5000)
    with pytest.raises(TargetError, match="the limit"):
        mon(timeline, "checkpoint --save s2")
