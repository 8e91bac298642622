"""Processes: fork, exec, wait and pipes between processes, as natively.

The truth is a native run of the same static binary (tests/guests/procs.c):
fork and exit statuses, a pipeline through dup2, more data than a pipe
holds in both directions, execve of itself with argv, envp and O_CLOEXEC,
vfork, posix_spawn, SIGCHLD, kill between processes, process groups and
sessions, waitid, an orphan, twenty children.  The racy mode (two writers,
one pipe) has no native truth: its outcome depends only on the quantum.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rrdbg.machine.host import LiveHost
from rrdbg.machine.machine import LinuxMachine
from rrdbg.snapshot.qcow2 import Qcow2Image
from rrdbg.snapshot.vmstate import SnapshotStore
from rrdbg.timeline.checkpoint import capture, restore
from tests.conftest import can_run_i386_natively, guest

PROCS = guest("procs")
MODES = [
    "fork",
    "pipe",
    "bigpipe",
    "exec",
    "vfork",
    "spawn",
    "sigchld",
    "kill",
    "pgrp",
    "waitid",
    "orphan",
    "many",
    "forkhold 4 3",
]


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        cmd, check=False, capture_output=True, timeout=300, env={"LANG": "C"}, cwd=cwd
    )


def _rrdbg(*args: str) -> list[str]:
    return [sys.executable, "-m", "rrdbg", *args]


@pytest.mark.skipif(not can_run_i386_natively(), reason="cannot run i386 binaries natively")
@pytest.mark.parametrize("mode", MODES)
def test_same_as_native(mode: str) -> None:
    native = _run([PROCS, *mode.split()])
    emulated = _run([*_rrdbg("run"), PROCS, *mode.split()])
    assert native.returncode == 0, native.stdout
    assert (emulated.stdout, emulated.returncode) == (native.stdout, 0)
    assert emulated.stderr == b""


@pytest.mark.skipif(not can_run_i386_natively(), reason="cannot run i386 binaries natively")
def test_every_mode_in_one_tree_records_and_replays(tmp_path: Path) -> None:
    """All the modes, each in a child: the whole tree in one recording, and
    a replay gives every process's output and the status without the host."""
    native = _run([PROCS, "all"])
    assert native.returncode == 0, native.stdout
    rec = _run([*_rrdbg("record", "-o", str(tmp_path / "all.rr")), PROCS, "all"])
    rep = _run([*_rrdbg("replay", str(tmp_path / "all.rr"))])
    assert (rec.stdout, rec.returncode) == (native.stdout, 0), rec.stderr
    assert (rep.stdout, rep.returncode) == (native.stdout, 0), rep.stderr


def test_a_race_between_processes_is_decided_by_the_quantum_alone(tmp_path: Path) -> None:
    """Two processes write into one pipe: the interleaving is the same in
    every run, record and replay with one quantum, another with another."""
    outputs = {}
    for quantum in ("5000000", "20000"):
        runs = {_run([*_rrdbg("run", "--quantum", quantum), PROCS, "race"]).stdout for _ in "ab"}
        directory = tmp_path / f"q{quantum}.rr"
        rec = _run([*_rrdbg("record", "-o", str(directory), "--quantum", quantum), PROCS, "race"])
        rep = _run([*_rrdbg("replay", str(directory))])
        assert rec.returncode == rep.returncode == 0, rep.stderr
        runs |= {rec.stdout, rep.stdout}
        assert len(runs) == 1, runs
        (outputs[quantum],) = runs
    assert outputs["5000000"] != outputs["20000"]
    for out in outputs.values():
        letters = out.removeprefix(b"race: ").strip()
        assert sorted(letters) == sorted(b"A" * 40 + b"B" * 40)


def test_exec_of_a_64_bit_program_fails_with_one_line(devnull: int) -> None:
    """The host's own programs are x86-64: execve returns ENOEXEC (as an
    i386 kernel would) and rrdbg says why, once, and nothing changes."""
    from rrdbg.machine.linux.sys_process import exec_program

    machine = _machine(["fork"], 20000, devnull)
    k = machine.linux
    warned: list[str] = []
    k.warn_once = lambda key, text: warned.append(text)  # type: ignore[method-assign]
    assert exec_program(k, sys.executable.encode(), [b"python"], []) == -8  # ENOEXEC
    assert len(warned) == 1 and "64-bit ELF" in warned[0]
    assert k.exec_request is None


def _machine(args: list[str], quantum: int, sink: int) -> LinuxMachine:
    host = LiveHost(stdout_fd=sink, stderr_fd=sink, environ={})
    return LinuxMachine(PROCS, [PROCS, *args], host, quantum=quantum)


def test_checkpoints_and_snapshots_hold_every_process(tmp_path: Path) -> None:
    """In a recording of the whole tree, positions where several processes
    exist (some blocked on pipes or in wait) are reached again exactly:
    going back to one by an in-memory checkpoint, and by the recording's
    qcow2 snapshots in a fresh session, gives the same machine state, and
    running on from there reaches the recorded end."""
    from rrdbg.api import Recording
    from tests.conftest import record_quietly

    directory = tmp_path / "all.rr"
    record_quietly(PROCS, ["all"], directory, quantum=20000, interval=5_000_000)
    with Recording(directory) as r:
        machine = r._t.machine
        assert isinstance(machine, LinuxMachine)
        points: list[tuple[int, list[int], int, str]] = []
        for i in range(1, 60):
            r.seek(r.end * i // 60)
            if len(machine.procs) >= 3:
                points.append(
                    (r.icount, sorted(machine.procs), machine.running_tid, machine.digest())
                )
        assert len(points) >= 3
        r.seek(r.end)
        end_digest = machine.digest()
        for icount, pids, running, digest in reversed(points):
            r.seek(icount)
            assert (sorted(machine.procs), machine.running_tid, machine.digest()) == (
                pids,
                running,
                digest,
            )
    with Recording(directory) as again:
        icount, pids, running, digest = points[len(points) // 2]
        again.seek(icount)
        m = again._t.machine
        assert isinstance(m, LinuxMachine)
        assert (sorted(m.procs), m.running_tid, m.digest()) == (pids, running, digest)
        again.seek(again.end)
        assert m.digest() == end_digest


def test_a_machine_state_with_processes_survives_a_qcow2_snapshot(tmp_path: Path) -> None:
    """Saved while three processes exist and loaded into a new machine, a
    snapshot gives the same state (every address space, every task)."""
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        machine = _machine(["many"], 20000, fd)
        while len(machine.procs) < 3:
            machine.run(machine.icount + 5000)
        image = Qcow2Image.create(str(tmp_path / "snap.qcow2"), sync=False)
        store = SnapshotStore(image)
        info = store.save(machine, "mid", b"")
        point = capture(machine)
        again = _machine(["many"], 20000, fd)
        SnapshotStore(image).load(again, info)
        assert sorted(again.procs) == sorted(machine.procs)
        assert again.running_tid == machine.running_tid
        assert again.digest() == machine.digest()
        fresh = _machine(["many"], 20000, fd)
        restore(fresh, point)
        assert fresh.digest() == machine.digest()
        image.close()
    finally:
        os.close(fd)


def test_the_debugger_sees_the_first_process(devnull: int) -> None:
    """While a child runs, the debugger's view stays on the first process:
    its pid, its threads, its registers; stepping back from the child's
    slice goes to the first process's own last instruction."""
    machine = _machine(["many"], 20000, devnull)
    root = machine.pid
    while machine.running_tid == root:
        machine.run(machine.icount + 1000)
    assert machine.pid == root and machine.current_tid == root
    assert [tid for tid, _ in machine.threads()] == [root]
    ran_until = machine.thread_ran_until(root)
    assert ran_until is not None and 0 < ran_until <= machine.icount
    assert machine.debuggee is not machine.procs[machine.running_tid]


def test_forked_processes_share_unchanged_pages(devnull: int) -> None:
    """After fork, parent and children map one copy of the parent's pages
    (the host copies a page only when a side writes it); each child's
    writes stay its own and the parent's pages stay the parent's (the guest
    checks both and exits 1 otherwise)."""
    from tests.machine.test_memory import _host_file_ranges

    machine = _machine(["forkhold", "4", "3"], 20000, devnull)
    while len(machine.procs) < 4 and not machine.finished:
        machine.run(machine.icount + 1000)
    assert len(machine.procs) == 4
    for proc in machine.procs.values():
        shared = sum(hi - lo for lo, hi in _host_file_ranges(proc.memory))
        assert shared >= 4 << 20  # at least the 4 MiB the parent touched
    result = machine.run_to_end()
    assert result.exit is not None and result.exit.code == 0


@pytest.mark.parametrize("mode", ["run", "record"])
def test_a_console_read_blocks_only_its_process(mode: str, tmp_path: Path) -> None:
    """A child waits for stdin (a pipe nobody writes to yet) while its
    parent works: the parent's line comes out before any input is given
    (the whole machine waiting in the child's read would never print it),
    and a replay gives the same output without the input."""
    directory = tmp_path / "stdin.rr"
    args = ["record", "-o", str(directory)] if mode == "record" else ["run"]
    proc = subprocess.Popen(
        [*_rrdbg(*args), PROCS, "stdinwait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={"LANG": "C"},
    )
    assert proc.stdin is not None and proc.stdout is not None
    first = proc.stdout.readline()  # (hangs, and times out, if the parent cannot run)
    assert first == b"parent done: 1199980\n"
    proc.stdin.write(b"late input\n")
    proc.stdin.close()
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 0
    assert rest == b"child read: late input\nchild: exited 0\n"
    if mode == "record":
        rep = _run([*_rrdbg("replay", str(directory))])
        assert (rep.stdout, rep.returncode) == (first + rest, 0), rep.stderr
