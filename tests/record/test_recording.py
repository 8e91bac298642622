"""Record and replay end to end: identical output without inputs, snapshots, bad input."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrdbg.errors import RrdbgError
from rrdbg.record.files import FILES_NAME
from rrdbg.record.recording import (
    IMAGE_NAME,
    LOG_NAME,
    IncompleteReplay,
    describe,
    open_recording,
    record,
)
from tests.conftest import guest


def rrdbg(
    *args: str,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "rrdbg", *args],
        check=False,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_inputs_replay_byte_identically_without_stdin_later(tmp_path: Path) -> None:
    rec = tmp_path / "inputs.rr"
    data = b"some input\n" * 500
    recorded = rrdbg("record", "-o", str(rec), guest("inputs"), stdin=data)
    assert recorded.returncode == len(data) % 7, recorded.stderr
    assert b"stdin: 5500 bytes" in recorded.stdout
    time.sleep(1.1)  # the clock has moved on; replay must not notice
    # stdin closed entirely, not just empty
    replayed = subprocess.run(
        [sys.executable, "-m", "rrdbg", "replay", str(rec)],
        check=False,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        pass_fds=(),
        preexec_fn=lambda: os.close(0),
    )
    assert replayed.returncode == recorded.returncode, replayed.stderr
    assert replayed.stdout == recorded.stdout
    assert replayed.stderr == recorded.stderr
    quiet = rrdbg("replay", "--quiet", str(rec))
    assert (quiet.returncode, quiet.stdout) == (recorded.returncode, b"")


def test_default_directory_picks_a_fresh_name_and_is_remembered(tmp_path: Path) -> None:
    shutil.copy(guest("hello"), tmp_path / "hello")
    env = {**os.environ, "RRDBG_STATE_DIR": str(tmp_path / "state")}
    first = rrdbg("record", "./hello", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stderr == b""
    rec = tmp_path / "hello.rr"
    assert (rec / LOG_NAME).exists()
    assert (rec / IMAGE_NAME).exists()
    before = (rec / LOG_NAME).read_bytes()
    again = rrdbg("record", "./hello", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stderr == b"rrdbg: hello.rr exists: recording to hello-2.rr\n"
    assert (rec / LOG_NAME).read_bytes() == before  # never overwritten
    assert (tmp_path / "hello-2.rr" / LOG_NAME).exists()
    listing = rrdbg("ls", cwd=tmp_path, env=env).stdout.decode()
    lines = listing.splitlines()
    assert len(lines) == 3 and lines[0].split()[:2] == ["RECORDING", "PROGRAM"]
    assert lines[1].startswith("  ") and str(rec) in lines[1] and "exit 0" in lines[1]
    assert lines[2].startswith("* ") and str(tmp_path / "hello-2.rr") in lines[2]
    # --force without -o replaces PROGRAM.rr itself.
    forced = rrdbg("record", "--force", "./hello", cwd=tmp_path, env=env)
    assert forced.returncode == 0, forced.stderr
    assert not (tmp_path / "hello-3.rr").exists()
    newest = rrdbg("ls", cwd=tmp_path, env=env).stdout.decode().splitlines()[-1]
    assert newest.startswith("* ") and f"{rec} " in newest
    # ls DIR lists what is in a directory, recorded here or not.
    in_dir = rrdbg("ls", str(tmp_path), env={**env, "RRDBG_STATE_DIR": str(tmp_path / "s2")})
    assert in_dir.stdout.decode().count("hello") >= 4


def test_info(tmp_path: Path) -> None:
    rec = tmp_path / "c.rr"
    r = rrdbg("record", "-o", str(rec), "--snapshot-interval", "2000000", guest("compute"), "10")
    assert r.returncode == 0, r.stderr
    info = rrdbg("info", str(rec))
    assert info.returncode == 0, info.stderr
    text = info.stdout.decode()
    assert "compute" in text
    assert "ends cleanly" in text
    assert "exit code 0" in text
    assert "init" in text
    d = describe(str(rec))
    assert d.clean_end
    assert d.end is not None
    icounts = [s.icount or 0 for s in d.snapshots]
    assert icounts[0] == 0
    assert len(icounts) >= 3
    assert icounts == sorted(icounts)


@pytest.mark.parametrize(
    ("name", "args", "interval"),
    [("compute", ["8"], 1_000_000), ("malloc", [], 40_000_000), ("inputs", [], 5_000)],
)
def test_restoring_a_snapshot_reaches_the_recorded_end(
    name: str, args: list[str], interval: int, tmp_path: Path
) -> None:
    rec = tmp_path / "r.rr"
    stats = record(
        guest(name), args, str(rec), interval=interval, stdin=os.devnull, environ={"A": "b"}
    )
    snaps = stats.snapshots
    assert len(snaps) >= 3
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        for snap in (snaps[0], snaps[len(snaps) // 2], snaps[-1]):
            with open_recording(
                str(rec), snapshot=snap.name, stdout_fd=sink, stderr_fd=sink
            ) as replay:
                assert replay.machine.icount == snap.icount
                result = replay.run_to_end()  # verifies icount + digest
                assert result.icount == stats.result.icount
    finally:
        os.close(sink)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stdin=st.binary(max_size=3000),
    env=st.dictionaries(st.sampled_from(["HOME", "X", "LANG"]), st.text("abc/é", max_size=20)),
)
def test_any_inputs_replay_to_the_same_final_digest(
    stdin: bytes, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = tmp_path_factory.mktemp("prop")
    (base / "in").write_bytes(stdin)
    stats = record(guest("inputs"), [], str(base / "r.rr"), stdin=str(base / "in"), environ=env)
    assert stats.result.exit.code == len(stdin) % 7
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        with open_recording(str(base / "r.rr"), stdout_fd=sink, stderr_fd=sink) as replay:
            result = replay.run_to_end()
    finally:
        os.close(sink)
    assert result.icount == stats.result.icount


def test_killed_recorder_leaves_a_replayable_prefix(tmp_path: Path) -> None:
    rec = tmp_path / "k.rr"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rrdbg", "record", "-o", str(rec), guest("stdin_echo")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"first line\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == b"FIRST LINE\n"
    proc.stdin.write(b"second line\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == b"SECOND LINE\n"
    # Let the guest reach its next read (where the recorder flushes the log),
    # as a user would before giving up on it.
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    info = rrdbg("info", str(rec))
    assert info.returncode == 0, info.stderr
    assert b"INCOMPLETE" in info.stdout
    replay = rrdbg("replay", str(rec))
    assert replay.stdout == b"FIRST LINE\nSECOND LINE\n"
    assert replay.returncode == 1
    lines = replay.stderr.decode().splitlines()
    assert len(lines) == 1
    assert "ends at icount" in lines[0]


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.95])
def test_incomplete_replay_in_process(keep: float, tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(os.urandom(30_000))
    rec = tmp_path / "r.rr"
    record(guest("stdin_echo"), [], str(rec), stdin=str(tmp_path / "in"), environ={})
    log = rec / LOG_NAME
    data = log.read_bytes()
    log.write_bytes(data[: int(len(data) * keep)])
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        with (
            pytest.raises(IncompleteReplay, match="ends at icount"),
            open_recording(str(rec), stdout_fd=sink) as replay,
        ):
            replay.run_to_end()
    finally:
        os.close(sink)


def test_bad_recordings_give_one_line(tmp_path: Path) -> None:
    rec = tmp_path / "r.rr"
    record(guest("hello"), [], str(rec), environ={})
    # missing directory
    r = rrdbg("replay", str(tmp_path / "nope"))
    assert r.returncode == 2 and r.stderr.count(b"\n") == 1 and b"Traceback" not in r.stderr
    # not a recording
    (tmp_path / "empty").mkdir()
    r = rrdbg("info", str(tmp_path / "empty"))
    assert r.returncode == 2 and b"not a recording" in r.stderr
    # foreign log
    bad = tmp_path / "bad.rr"
    bad.mkdir()
    (bad / LOG_NAME).write_bytes(b"hello world, not a log")
    r = rrdbg("replay", str(bad))
    assert r.returncode == 2 and b"not an rrdbg replay log" in r.stderr
    # corrupted image header
    broken = tmp_path / "broken.rr"
    shutil.copytree(rec, broken)
    image = broken / IMAGE_NAME
    image.write_bytes(b"XXXX" + image.read_bytes()[4:])
    r = rrdbg("info", str(broken))
    assert r.returncode == 2 and r.stderr.count(b"\n") == 1 and IMAGE_NAME.encode() in r.stderr


def test_recording_keeps_the_program_through_rebuilds_moves_and_deletion(
    tmp_path: Path,
) -> None:
    prog = tmp_path / "prog"
    shutil.copy(guest("hello"), prog)
    rec = tmp_path / "r.rr"
    record(str(prog), [], str(rec), environ={})
    (kept,) = (rec / FILES_NAME).iterdir()
    assert kept.read_bytes() == prog.read_bytes()
    assert kept.stat().st_nlink == 2  # a hard link: same file system
    # "Fix and rebuild": the linker writes a new file under the same name.
    prog.unlink()
    shutil.copy(guest("exitcode"), prog)
    r = rrdbg("replay", str(rec))
    assert r.returncode == 0 and r.stdout.startswith(b"Hello"), r.stderr
    prog.unlink()
    moved = tmp_path / "elsewhere.rr"
    rec.rename(moved)
    r = rrdbg("replay", str(moved))
    assert r.returncode == 0, r.stderr
    info = rrdbg("info", str(moved))
    assert b"kept in the recording" in info.stdout, info.stdout


def test_a_program_named_by_a_symbolic_link_is_kept(tmp_path: Path) -> None:
    """/bin/sh -> dash: the recording keeps the file the link names (a hard
    link to the link itself would dangle in the recording)."""
    prog = tmp_path / "prog"
    shutil.copy(guest("hello"), prog)
    (tmp_path / "link").symlink_to("prog")
    rec = tmp_path / "r.rr"
    record(str(tmp_path / "link"), [], str(rec), environ={})
    (kept,) = (rec / FILES_NAME).iterdir()
    assert not kept.is_symlink() and kept.read_bytes() == prog.read_bytes()
    r = rrdbg("replay", str(rec))
    assert r.returncode == 0 and r.stdout.startswith(b"Hello"), r.stderr


def test_a_program_written_in_place_through_the_hard_link_is_reported(tmp_path: Path) -> None:
    prog = tmp_path / "prog"
    shutil.copy(guest("hello"), prog)
    rec = tmp_path / "r.rr"
    record(str(prog), [], str(rec), environ={})
    with prog.open("r+b") as f:  # e.g. `cp new prog` writes the same inode
        f.write(b"\x7fELF\0")
    with pytest.raises(RrdbgError, match="changed in place"):
        open_recording(str(rec))


def test_the_program_is_copied_when_it_cannot_be_linked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(*_args: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    rec = tmp_path / "r.rr"
    record(guest("hello"), [], str(rec), environ={})
    (kept,) = (rec / FILES_NAME).iterdir()
    assert kept.stat().st_nlink == 1
    assert kept.read_bytes() == Path(guest("hello")).read_bytes()
    with open_recording(str(rec), quiet=True) as replay:
        assert replay.run_to_end().exit.code == 0


def test_a_recording_without_kept_files_uses_the_recorded_path(tmp_path: Path) -> None:
    # Recordings made before rrdbg kept files name the program only.
    prog = tmp_path / "prog"
    shutil.copy(guest("hello"), prog)
    rec = tmp_path / "r.rr"
    record(str(prog), [], str(rec), environ={})
    shutil.rmtree(rec / FILES_NAME)
    prog.unlink()
    shutil.copy(guest("exitcode"), prog)
    with pytest.raises(RrdbgError, match="has changed"):
        open_recording(str(rec))
    prog.unlink()
    r = rrdbg("replay", str(rec))
    assert r.returncode == 2 and b"is missing" in r.stderr


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img not installed")
def test_orphan_image_flow_and_qemu_img_sees_the_snapshots(tmp_path: Path) -> None:
    orphan = tmp_path / "empty.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(orphan), "1M"], check=True)
    rec = tmp_path / "o.rr"
    r = rrdbg(
        "record",
        "-o",
        str(rec),
        "--image",
        str(orphan),
        "--snapshot-interval",
        "1000000",
        guest("compute"),
        "5",
    )
    assert r.returncode == 0, r.stderr
    assert not (rec / IMAGE_NAME).exists()
    check = subprocess.run(
        ["qemu-img", "check", str(orphan)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    listing = subprocess.run(
        ["qemu-img", "snapshot", "-l", str(orphan)], capture_output=True, text=True, check=True
    ).stdout
    d = describe(str(rec))
    for snap in d.snapshots:
        assert snap.name in listing
        assert str(snap.icount) in listing
    replay = rrdbg("replay", "--quiet", str(rec))
    assert replay.returncode == 0, replay.stderr


def test_record_bad_input_creates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "x.rr"
    missing = rrdbg("record", "-o", str(out), str(tmp_path / "no-such-program"))
    assert missing.returncode == 2
    assert missing.stderr.decode().count("\n") == 1
    assert not out.exists()
    no_loader = tmp_path / "no-loader"
    no_loader.write_bytes(
        Path(guest("hello-dynamic")).read_bytes().replace(b"ld-linux.so.2\0", b"ld-linux.so.0\0")
    )
    dynamic = rrdbg("record", "-o", str(out), str(no_loader))
    assert dynamic.returncode == 2
    assert b"dynamic loader /lib/ld-linux.so.0 cannot be opened" in dynamic.stderr
    assert not out.exists()
    (tmp_path / "notqcow").write_bytes(b"\0" * 4096)
    bad_image = rrdbg(
        "record", "-o", str(out), "--image", str(tmp_path / "notqcow"), guest("hello")
    )
    assert bad_image.returncode == 2
    assert b"notqcow" in bad_image.stderr
    assert bad_image.stderr.count(b"\n") == 1
    zero = rrdbg("record", "-o", str(out), "--snapshot-interval", "0", guest("hello"))
    assert zero.returncode == 2
    assert b"must be positive" in zero.stderr


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img not installed")
def test_existing_snapshot_name_in_image_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "img.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "1M"], check=True)
    first = rrdbg("record", "-o", str(tmp_path / "a.rr"), "--image", str(image), guest("hello"))
    assert first.returncode == 0, first.stderr
    before = image.read_bytes()
    second = rrdbg("record", "-o", str(tmp_path / "b.rr"), "--image", str(image), guest("hello"))
    assert second.returncode == 2
    assert b"already has a snapshot named 'init'" in second.stderr
    assert image.read_bytes() == before
    assert not (tmp_path / "b.rr").exists()
    third = rrdbg(
        "record",
        "-o",
        str(tmp_path / "c.rr"),
        "--image",
        str(image),
        "--snapshot",
        "second",
        guest("hello"),
    )
    assert third.returncode == 0, third.stderr
    for rec in ("a.rr", "c.rr"):
        replay = rrdbg("replay", "--quiet", str(tmp_path / rec))
        assert replay.returncode == 0, replay.stderr


@pytest.mark.parametrize(("name", "args"), [("stdio_mix", []), ("fault_segv", []), ("abort", [])])
def test_record_behaves_like_run(name: str, args: list[str], tmp_path: Path) -> None:
    run = rrdbg("run", guest(name), *args)
    rec = rrdbg("record", "-o", str(tmp_path / "r.rr"), guest(name), *args)
    assert (rec.returncode, rec.stdout, rec.stderr) == (run.returncode, run.stdout, run.stderr)
    replay = rrdbg("replay", str(tmp_path / "r.rr"))
    assert (replay.returncode, replay.stdout, replay.stderr) == (
        run.returncode,
        run.stdout,
        run.stderr,
    )


def test_block_cache_speeds_replay_and_a_damaged_one_is_ignored(tmp_path: Path) -> None:
    from rrdbg.record.recording import BLOCKS_NAME

    rec = tmp_path / "r.rr"
    record(guest("compute"), ["3"], str(rec), environ={})
    cache = rec / BLOCKS_NAME
    assert cache.stat().st_size > 100
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        with open_recording(str(rec), stdout_fd=sink) as replay:
            learned_before = replay.machine.cpu.counter.learned
            replay.run_to_end()
            seeded_learning = replay.machine.cpu.counter.learned - learned_before
        data = bytearray(cache.read_bytes())
        data[-1] ^= 0xFF
        cache.write_bytes(bytes(data))
        with open_recording(str(rec), stdout_fd=sink) as replay:
            learned_before = replay.machine.cpu.counter.learned
            replay.run_to_end()  # still exact: the cache is only a hint
            cold_learning = replay.machine.cpu.counter.learned - learned_before
        cache.unlink()
        with open_recording(str(rec), stdout_fd=sink) as replay:
            replay.run_to_end()
    finally:
        os.close(sink)
    assert seeded_learning < cold_learning // 10


@pytest.mark.parametrize("program", ["dirs", "fsops"])
def test_directory_work_replays_without_touching_the_host(tmp_path: Path, program: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    rec = tmp_path / "d.rr"
    first = rrdbg("record", "-o", str(rec), guest(program), str(work))
    assert first.returncode == 0, first.stderr
    shutil.rmtree(work)  # the directory the program listed and changed is gone
    replay = rrdbg("replay", str(rec))
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout == first.stdout
    assert not work.exists()  # mkdir and friends were not done again
