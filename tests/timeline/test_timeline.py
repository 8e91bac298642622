"""The timeline: forward runs with breakpoints and watchpoints, seeks, live
recording with debugger writes, and replays of recordings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from rrdbg.machine.host import LiveHost, SeededHost
from rrdbg.machine.machine import LinuxMachine
from rrdbg.record.recording import new_recording, open_recording, record
from rrdbg.snapshot.qcow2 import Qcow2Image
from rrdbg.snapshot.vmstate import SnapshotStore
from rrdbg.target.interface import Direction, StopEvent, StopKind, WatchKind
from rrdbg.timeline.timeline import Timeline
from tests.conftest import guest, record_quietly

DEBUGME = guest("debugme")
FORWARD = Direction.FORWARD


def _never() -> bool:
    return False


def symbols(path: str) -> dict[str, int]:
    with open(path, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: s["st_value"] for s in symtab.iter_symbols()}  # type: ignore[union-attr]


SYMS = symbols(DEBUGME)


@pytest.fixture
def sink() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_WRONLY)
    yield fd
    os.close(fd)


def live(args: list[str], sink: int) -> Timeline:
    return Timeline.live_run(
        DEBUGME, args, LiveHost(stdout_fd=sink), stdout_fd=sink, stderr_fd=sink
    )


def cont(t: Timeline) -> StopEvent:
    return t.resume(step=False, direction=FORWARD, interrupted=_never)


def past_the_end(t: Timeline, stop: StopEvent) -> StopEvent:
    """A live run stops first at its last state (gdb keeps the process and
    can go back); the next resume lets the program end."""
    assert stop.kind is StopKind.HISTORY_END, stop
    assert "the end of the program" in stop.note
    assert t.machine.exit is None
    return cont(t)


def step(t: Timeline) -> StopEvent:
    return t.resume(step=True, direction=FORWARD, interrupted=_never)


def u32(t: Timeline, addr: int) -> int:
    return int.from_bytes(t.read_memory(addr, 4), "little")


def test_breakpoint_step_and_exit(sink: int) -> None:
    t = live([], sink)
    t.insert_breakpoint(SYMS["bump"], hardware=False)
    hits = []
    while (stop := cont(t)).kind is StopKind.BREAKPOINT:
        assert t.machine.cpu.eip == SYMS["bump"]
        hits.append(stop.icount)
    assert len(hits) == 5
    assert hits == sorted(hits)
    # The last state before the exit: reverse commands still work there.
    assert stop.kind is StopKind.HISTORY_END
    assert "the next instruction exits with status 7" in stop.note
    last = stop.icount
    assert t.read_memory(t.machine.cpu.eip, 2) == b"\xcd\x80"  # int $0x80: exit_group
    assert t.resume(step=True, direction=Direction.BACKWARD, interrupted=_never).icount == last - 1
    # Forward again from before the end: the same stop, not the exit.
    again = cont(t)
    assert (again.kind, again.icount) == (StopKind.HISTORY_END, last)
    stop = cont(t)
    assert stop.kind is StopKind.EXITED
    assert stop.exit_code == 7


def test_step_moves_one_instruction_even_from_a_breakpoint(sink: int) -> None:
    t = live([], sink)
    t.insert_breakpoint(SYMS["square"], hardware=True)
    first = cont(t)
    assert first.kind is StopKind.BREAKPOINT
    assert first.hardware
    stop = step(t)
    assert stop.kind is StopKind.STEP
    assert stop.icount == first.icount + 1


def test_write_watchpoint_stops_just_after_the_writing_instruction(sink: int) -> None:
    t = live([], sink)
    addr = SYMS["counter"]
    t.insert_watchpoint(WatchKind.WRITE, addr, 4)
    start = t.icount
    stop = cont(t)
    assert stop.kind is StopKind.WATCHPOINT
    assert stop.watch == (WatchKind.WRITE, addr)
    assert u32(t, addr) == 1  # the first bump(1)
    k = stop.icount - 1
    t.watchpoints.clear()
    t.seek(k)
    assert u32(t, addr) == 0  # before the write ...
    t.seek(start)
    assert u32(t, addr) == 0
    t.seek(k + 1)
    assert u32(t, addr) == 1  # ... and after it


def test_read_and_access_watchpoints(sink: int) -> None:
    t = live([], sink)
    addr = SYMS["counter"]
    t.insert_watchpoint(WatchKind.READ, addr, 4)
    stop = cont(t)
    assert stop.kind is StopKind.WATCHPOINT
    assert stop.watch == (WatchKind.READ, addr)
    t.remove_watchpoint(WatchKind.READ, addr, 4)
    t.insert_watchpoint(WatchKind.ACCESS, addr, 4)
    again = cont(t)
    assert again.kind is StopKind.WATCHPOINT
    assert again.icount > stop.icount


def test_seek_back_reaches_the_same_state_as_going_forward(sink: int, tmp_path: Path) -> None:
    directory = tmp_path / "r.rr"
    record(DEBUGME, [], str(directory), environ={})
    t = Timeline.replay(str(directory), stdout_fd=sink, stderr_fd=sink)
    t.insert_breakpoint(SYMS["bump"], hardware=False)
    for _ in range(3):
        cont(t)
    t.breakpoints.clear()
    t.take_checkpoint()
    for target in (t.icount - 1234, t.icount - 1, 17, 0):
        t.seek(target)  # back: restores a checkpoint and replays
        fresh = Timeline.replay(str(directory), stdout_fd=sink, stderr_fd=sink)
        fresh.seek(target)  # forward only
        assert t.icount == fresh.icount == target
        assert t.machine.digest() == fresh.machine.digest()
    plain = LinuxMachine(DEBUGME, [DEBUGME], SeededHost(1, stdout_fd=sink, stderr_fd=sink))
    plain.run(1000)  # other host answers, same code: the count agrees
    t.seek(1000)
    assert t.machine.cpu.eip == plain.cpu.eip


def test_interrupt_stops_a_spinning_guest(sink: int) -> None:
    t = live(["spin"], sink)
    calls = []

    def interrupted() -> bool:
        calls.append(1)
        return len(calls) > 3

    stop = t.resume(step=False, direction=FORWARD, interrupted=interrupted)
    assert stop.kind is StopKind.INTERRUPT
    assert stop.signal == 2


def test_fault_is_a_signal_stop_then_the_process_dies(sink: int) -> None:
    t = live(["segv"], sink)
    stop = cont(t)
    assert stop.kind is StopKind.SIGNAL
    assert stop.signal == 11
    assert t.read_memory(SYMS["counter"], 4) == (15).to_bytes(4, "little")  # still inspectable
    after = cont(t)
    assert after.kind is StopKind.EXITED
    assert after.signal == 11


def test_live_debugger_writes_are_recorded_and_replayed(tmp_path: Path, sink: int) -> None:
    directory = tmp_path / "rec.rr"
    rec = new_recording(DEBUGME, [], str(directory))
    t = Timeline.live_run(
        DEBUGME, [], LiveHost(stdout_fd=sink), writer=rec.writer, stdout_fd=sink, stderr_fd=sink
    )
    rec.qcow.close()
    t.insert_breakpoint(SYMS["square"], hardware=False)
    cont(t)
    # counter is 1 now; make it 100: the program's output changes accordingly.
    t.write_memory(SYMS["counter"], (100).to_bytes(4, "little"))
    t.breakpoints.clear()
    stop = past_the_end(t, cont(t))
    assert stop.kind is StopKind.EXITED
    t.close()
    out = tmp_path / "out"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT)
    with open_recording(str(directory), stdout_fd=fd) as replay:
        replay.run_to_end()  # checks the final digest
    os.close(fd)
    assert out.read_bytes() == b"total=55 counter=114\n"


def test_writes_in_the_past_are_undone(sink: int, tmp_path: Path) -> None:
    directory = tmp_path / "r.rr"
    record(DEBUGME, [], str(directory), environ={})
    t = Timeline.replay(str(directory), stdout_fd=sink, stderr_fd=sink)
    t.insert_breakpoint(SYMS["square"], hardware=False)
    cont(t)
    t.write_memory(SYMS["counter"], (100).to_bytes(4, "little"))
    assert u32(t, SYMS["counter"]) == 100
    stop = cont(t)
    assert "undone" in stop.note
    assert u32(t, SYMS["counter"]) == 3  # the recorded run: 1 + 2


def test_replay_ends_just_before_the_exit_syscall(tmp_path: Path) -> None:
    directory = tmp_path / "r.rr"
    stats = record(DEBUGME, [], str(directory), environ={})
    out = tmp_path / "out"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT)
    t = Timeline.replay(str(directory), stdout_fd=fd, stderr_fd=fd)
    stop = cont(t)
    assert stop.kind is StopKind.HISTORY_END
    assert stop.icount == stats.result.icount - 1
    assert t.read_memory(t.machine.cpu.eip, 2) == b"\xcd\x80"  # int 0x80: exit_group
    again = cont(t)
    assert again.kind is StopKind.HISTORY_END
    # Going over the same history again prints nothing new.
    t.seek(0)
    cont(t)
    os.close(fd)
    assert out.read_bytes() == b"total=55 counter=15\n"


def test_qcow2_snapshots_serve_as_far_checkpoints(tmp_path: Path, sink: int) -> None:
    directory = tmp_path / "dense.rr"
    stats = record_quietly(DEBUGME, [], directory, interval=3000)
    assert len(stats.snapshots) > 3
    t = Timeline.replay(str(directory), stdout_fd=sink, stderr_fd=sink)
    assert [s.icount for s in t.disk] == [s.icount for s in stats.snapshots]
    cont(t)  # to the end of history
    t.checkpoints = t.checkpoints[:1]  # only icount 0 in memory
    for target in (stats.snapshots[-1].icount or 0, (stats.snapshots[2].icount or 0) + 7):
        t.seek(target)
        assert any(c.icount <= target and c.icount > 0 for c in t.checkpoints)  # loaded
        fresh = Timeline.replay(str(directory), stdout_fd=sink, stderr_fd=sink)
        fresh.disk = []
        fresh.seek(target)
        assert t.machine.digest() == fresh.machine.digest()


def test_live_reverse_then_forward_goes_live_again(sink: int) -> None:
    out_r, out_w = os.pipe()
    t = Timeline.live_run(DEBUGME, [], LiveHost(stdout_fd=out_w), stdout_fd=out_w, stderr_fd=sink)
    t.insert_breakpoint(SYMS["bump"], hardware=False)
    hits = [cont(t).icount for _ in range(3)]
    back = t.resume(step=False, direction=Direction.BACKWARD, interrupted=_never)
    assert back.icount == hits[1]
    # A little in the past (no event in between): writes are not part of the run.
    t.write_memory(SYMS["counter"], (1000).to_bytes(4, "little"))
    assert t.dirty
    t.breakpoints.clear()
    stop = cont(t)
    assert "undone" in stop.note
    stop = past_the_end(t, stop)
    assert stop.kind is StopKind.EXITED
    assert stop.exit_code == 7
    os.close(out_w)
    assert os.read(out_r, 4096) == b"total=55 counter=15\n"  # printed once, live
    os.close(out_r)


def test_live_recording_keeps_its_checkpoints_as_snapshots(tmp_path: Path, sink: int) -> None:
    directory = tmp_path / "live.rr"
    rec = new_recording(DEBUGME, [], str(directory))
    t = Timeline.live_run(
        DEBUGME, [], LiveHost(stdout_fd=sink), writer=rec.writer, stdout_fd=sink, stderr_fd=sink
    )
    SnapshotStore(rec.qcow).save(t.machine, "init", rec.writer.position.to_bytes())
    t.attach_image(rec.qcow)
    t.insert_breakpoint(SYMS["square"], hardware=False)
    cont(t)
    t.take_checkpoint()  # as reverse steps and long runs do
    at = t.icount
    t.breakpoints.clear()
    assert past_the_end(t, cont(t)).kind is StopKind.EXITED
    t.close()
    rec.qcow.close()
    with Qcow2Image.open(str(directory / "snapshots.qcow2"), writable=False) as image:
        names = {s.name: s.icount for s in image.snapshots()}
    assert names["init"] == 0
    assert names[f"init-{at}"] == at
    out = tmp_path / "out"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT)
    with open_recording(
        str(directory), stdout_fd=fd, snapshot=f"init-{at}"
    ) as replay:  # from the middle
        assert replay.machine.icount == at
        replay.run_to_end()  # checks the final digest
    os.close(fd)


def test_a_discarded_signal_restarts_the_read_the_same_way_however_reached(
    tmp_path: Path, sink: int
) -> None:
    """sigread's restarted read with every second timer signal discarded (gdb's
    ``signal 0``): no handler runs, so the read is made again at once; the
    state at that icount (eip back on the int $0x80) is the same whether a
    forward step or a seek reaches it."""
    program = guest("sigread")
    directory = tmp_path / "sigread.rr"
    rec = new_recording(program, [], str(directory))
    t = Timeline.live_run(
        program, [], LiveHost(stdout_fd=sink), writer=rec.writer, stdout_fd=sink, stderr_fd=sink
    )
    rec.qcow.close()
    discarded: list[int] = []
    for n in range(200):
        stop = cont(t)
        if stop.kind is StopKind.SIGNAL:
            if n % 2:
                discarded.append(stop.icount)
            t.deliver_on_resume(None if n % 2 else stop.signal)
        elif stop.kind is StopKind.HISTORY_END:
            break
    t.close()
    assert discarded
    r = Timeline.replay(str(directory), stdout_fd=sink, stderr_fd=sink)
    for at in discarded:
        r.seek(at)
        regs = r.read_registers()
        eip = int.from_bytes(regs["eip"], "little")
        # Back on the read's int $0x80 with its number in EAX: made again.
        assert r.read_memory(eip, 2) == b"\xcd\x80", at
        assert int.from_bytes(regs["eax"], "little") in (3, 145), at  # read, readv
        # Running from the int $0x80 that was cut short to a breakpoint on it
        # (hit again at this icount) gives that state.
        r.seek(at - 1)
        r.insert_breakpoint(eip, hardware=False)
        stop = cont(r)
        r.remove_breakpoint(eip, hardware=False)
        assert (stop.kind, stop.icount) == (StopKind.BREAKPOINT, at), stop
        assert r.read_registers() == regs, at
