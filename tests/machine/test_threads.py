"""Threads: pthread programs run as natively, scheduled deterministically.

The truth is a native run of the same static binary (tests/guests/threads.c):
joins, mutexes, condition variables, barriers, TLS, detached threads with
semaphores, thread-directed signals, sleeps, thread exit and many threads.
The racy mode has no native truth; what matters there is that the outcome
depends only on the recorded inputs and the quantum.
"""

from __future__ import annotations

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

THREADS = guest("threads")
MODES = [
    "proc",
    "sigwait",
    "poll",
    "sigqueue",
    "join",
    "mutex",
    "cond",
    "barrier",
    "tls",
    "detach",
    "signal",
    "sleep",
    "exit",
    "many",
    "pipe",
]


def _run(cmd: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, check=False, capture_output=True, timeout=300, env={"LANG": "C"})


def _rrdbg(*args: str) -> list[str]:
    return [sys.executable, "-m", "rrdbg", *args]


@pytest.mark.skipif(not can_run_i386_natively(), reason="cannot run i386 binaries natively")
@pytest.mark.parametrize("mode", MODES)
def test_same_as_native(mode: str) -> None:
    native = _run([THREADS, mode])
    emulated = _run([*_rrdbg("run"), THREADS, mode])
    assert native.returncode == 0, native.stdout
    assert (emulated.stdout, emulated.returncode) == (native.stdout, 0)
    assert emulated.stderr == b""


def test_a_race_is_decided_by_the_quantum_alone(tmp_path: Path) -> None:
    """Unlocked increments from two threads lose updates at the switches:
    the same count in every run, record and replay with one quantum, and
    another (still fixed) with another quantum."""
    outputs = {}
    for quantum in ("1000000", "12347"):
        runs = {_run([*_rrdbg("run", "--quantum", quantum), THREADS, "race"]).stdout for _ in "ab"}
        directory = tmp_path / f"q{quantum}.rr"
        rec = _run([*_rrdbg("record", "-o", str(directory), "--quantum", quantum), THREADS, "race"])
        rep = _run([*_rrdbg("replay", str(directory))])
        assert rec.returncode == rep.returncode == 0, rep.stderr
        runs |= {rec.stdout, rep.stdout}
        assert len(runs) == 1, runs
        (outputs[quantum],) = runs
    assert outputs["1000000"] != outputs["12347"]
    assert all(o.startswith(b"race shared=") for o in outputs.values())
    # Updates are lost at switches that fall between a load and its store.
    assert all(1_000_000 <= int(o.split(b"=")[1]) < 2_000_000 for o in outputs.values())


def test_every_thread_waiting_forever_ends_the_program_with_one_line() -> None:
    """A deadlock hangs natively; rrdbg knows nobody can wake anyone."""
    done = _run([*_rrdbg("run"), THREADS, "deadlock"])
    assert done.stdout == b"deadlock: both hold one lock\n"
    assert done.returncode == 137
    lines = done.stderr.decode().splitlines()
    assert lines[0] == (
        "rrdbg: every thread of the program waits for something that can never happen; ending it"
    )


def _machine(args: list[str], quantum: int, sink: int) -> LinuxMachine:
    host = LiveHost(stdout_fd=sink, stderr_fd=sink, environ={})
    return LinuxMachine(THREADS, [THREADS, *args], host, quantum=quantum)


def test_checkpoints_and_snapshots_hold_every_thread(tmp_path: Path, devnull: int) -> None:
    """Stopped while several threads exist (some blocked), a checkpoint and
    a qcow2 snapshot put back every task: the run from there reaches the
    same end state as the run that never stopped."""
    whole = _machine(["all"], 5000, devnull)
    end = whole.run_to_end()
    machine = _machine(["all"], 5000, devnull)
    seen = 0
    for i in range(1, 40):
        machine.run(end.icount * i // 40)
        seen = max(seen, len(machine.linux.state.others))
        if len(machine.linux.state.others) >= 2 and i > 20:
            break
    assert seen >= 2 and machine.linux.state.others
    point = capture(machine)
    image = Qcow2Image.create(str(tmp_path / "snap.qcow2"), sync=False)
    store = SnapshotStore(image)
    info = store.save(machine, "mid", b"")
    tasks = sorted(machine.linux.state.others)
    # Stopping changes nothing: the same end as the run that never stopped
    # (digests differ between the two live machines: AT_RANDOM).
    assert machine.run_to_end() == end
    digest = machine.digest()
    restore(machine, point)
    assert sorted(machine.linux.state.others) == tasks
    assert machine.run_to_end() == end and machine.digest() == digest
    again = _machine(["all"], 5000, devnull)
    store.load(again, info)
    assert sorted(again.linux.state.others) == tasks
    assert again.run_to_end() == end and again.digest() == digest
    image.close()


def test_the_quantum_option_says_the_default() -> None:
    from rrdbg.machine.linux.process import DEFAULT_QUANTUM

    shown = _run([*_rrdbg("run", "--help")])
    assert f"(default {DEFAULT_QUANTUM};" in " ".join(shown.stdout.decode().split())


@pytest.mark.skipif(not can_run_i386_natively(), reason="cannot run i386 binaries natively")
def test_the_cpus_a_program_may_use_are_the_hosts_and_replays_keep_them(tmp_path: Path) -> None:
    """Thread pools (pigz, xz -T0, sort) size themselves by sched_getaffinity:
    as natively; a recording keeps the number for its replays."""
    native = _run([THREADS, "cpus"])
    assert _run([*_rrdbg("run"), THREADS, "cpus"]).stdout == native.stdout
    one = _run(
        ["taskset", "-c", "0", *_rrdbg("record", "-o", str(tmp_path / "one.rr")), THREADS, "cpus"]
    )
    assert one.stdout == b"cpus 1\n"
    assert _run([*_rrdbg("replay", str(tmp_path / "one.rr"))]).stdout == b"cpus 1\n"


def test_a_debugger_writes_the_registers_of_a_thread_that_is_not_running(devnull: int) -> None:
    """A register write for a thread that is switched out goes into its
    saved context: seen while it waits, in place when it is switched in;
    the running thread's registers do not change."""
    from rrdbg.machine.registers import read_register

    m = _machine(["race", "3000"], 2000, devnull)
    while len(m.threads()) < 3:
        m.run(m.icount + 1000)
    others = [tid for tid, _ in m.threads() if tid != m.current_tid]
    other = others[-1]
    mine = read_register(m.engine, "esi")
    m.write_thread_register(m.pid, other, "esi", (0x5EED).to_bytes(4, "little"))
    assert read_register(m.engine, "esi") == mine
    with m.viewing(other):
        assert read_register(m.engine, "esi") == (0x5EED).to_bytes(4, "little")
    m.run_until_thread = other
    while m.running_tid != other:
        m.run(m.icount + 100_000)
    assert read_register(m.engine, "esi") == (0x5EED).to_bytes(4, "little")


@pytest.mark.skipif(not can_run_i386_natively(), reason="cannot run i386 binaries natively")
def test_proc_files_describe_the_guest_in_record_and_replay(tmp_path: Path) -> None:
    """/proc/self/{comm,status,cmdline,stat,maps} and a thread's comm (set
    and read by pthread_setname_np/getname_np through
    /proc/self/task/TID/comm) are the guest's, as natively, and a replay
    gives the same bytes; another pid's directory is not there."""
    native = _run([THREADS, "proc"])
    assert native.returncode == 0, native.stdout
    assert b"worker name: worker-1\ncomm: main-thread\n" in native.stdout
    rec = _run([*_rrdbg("record", "-o", str(tmp_path / "proc.rr")), THREADS, "proc"])
    rep = _run([*_rrdbg("replay", str(tmp_path / "proc.rr"))])
    assert (rec.stdout, rec.returncode) == (native.stdout, 0), rec.stderr
    assert (rep.stdout, rep.returncode) == (native.stdout, 0), rep.stderr
