"""The deterministic scheduler's policy: which task runs next, and how time
passes when none can.

Rules (docs/threads.md):

- one task runs at a time; it runs until it blocks, exits, yields or has
  retired ``Linux.quantum`` instructions since it was switched in;
- the next task is the first runnable one after the running one in tid
  order (round robin), the running one last;
- a task woken (futex wake, timeout, signal) becomes runnable and waits its
  turn: nobody is preempted by a wake-up;
- when no task can run, virtual time jumps to the earliest deadline (a
  timed wait or a timer); with none, every thread waits forever: the
  process is ended with one line, as a wait for a signal nothing can send
  is.

Everything here is a function of the machine's state, so the interleaving
of threads depends on nothing but the recorded inputs: a replay repeats it
without a recorded schedule.  The machine (machine.py) switches the CPU
context; this module only decides.
"""

from __future__ import annotations

import struct

from rrdbg.machine.linux.kernel import BLOCKED, ExitStatus, Linux, ProcessExit
from rrdbg.machine.linux.task import Task

_POLLIN = 1


def runnable(task: Task) -> bool:
    return task.wait is None


def pick_next(k: Linux) -> tuple[Task, Linux] | None:
    """The task to run next (and its process): the first runnable after the
    running one in tid order, across every process, the running one itself
    last; None if none can run."""
    current = k.state.task
    tasks = k.sys.tasks()
    after = [tk for tk in tasks if tk[0].tid > current.tid]
    after += [tk for tk in tasks if tk[0].tid < current.tid]
    for t, owner in after:
        if runnable(t):
            return t, owner
    if runnable(current) and k.sys.procs.get(k.pid) is k:
        return current, k
    return None


def expire_waits(k: Linux) -> None:
    """Wake every task whose wait's deadline has passed, with its timeout
    result (ETIMEDOUT for a futex, 0 for a sleep)."""
    now = k.virtual_ns()
    for t, owner in k.sys.tasks():
        w = t.wait
        if w is not None and w.deadline and w.deadline <= now and w.kind != "exited":
            owner.wake(t, w.timeout)


def expire_timers(k: Linux) -> None:
    """Fire the timers of every process whose deadline has passed."""
    for owner in k.sys.live():
        owner.expire_timers()


def next_timer_icount(k: Linux) -> int | None:
    """The icount at which the next armed timer of any process expires."""
    due = [at for owner in k.sys.live() if (at := owner.next_timer_icount()) is not None]
    return min(due) if due else None


def poll_host_waits(k: Linux, timeout_ms: int) -> bool:
    """Ask the host whether what the tasks waiting on it (a console read)
    wait for has come, waiting up to ``timeout_ms`` (-1: until it comes);
    wake those whose has (their read is made again).  False if none was
    woken (or no task waits on the host).  One recorded poll."""
    waiting = [
        (t, owner) for t, owner in k.sys.tasks() if t.wait is not None and t.wait.kind == "host"
    ]
    if not waiting:
        return False
    handles = sorted({t.wait.address for t, _ in waiting if t.wait is not None})
    records = b"".join(struct.pack("<ih", h, _POLLIN) for h in handles)
    ready = k.host.fs_call("poll", (records, timeout_ms))
    if isinstance(ready, int):
        woken = set(handles)  # an error: the reads say which
    else:
        count = len(ready) // 2
        revents = struct.unpack_from(f"<{count}h", ready)
        woken = {h for h, r in zip(handles, revents, strict=False) if r}
    for t, owner in waiting:
        if t.wait is not None and t.wait.address in woken:
            owner.wake(t, BLOCKED)
    return bool(woken)


def idle(k: Linux) -> None:
    """No task can run: let virtual time pass to the earliest deadline of a
    wait or a real-time timer, firing timers (their signals may interrupt
    waits) and waking timed-out waits, until a task can run."""
    while pick_next(k) is None:
        tasks = k.sys.tasks()
        deadlines = [t.wait.deadline for t, _ in tasks if t.wait is not None and t.wait.deadline]
        deadlines += [
            tm.deadline
            for owner in k.sys.live()
            for tm in owner.state.timers.values()
            if tm.deadline and tm.clock == "real"
        ]
        if any(t.wait is not None and t.wait.kind == "host" for t, _ in tasks):
            # A task waits for the console: wait for it for real, until the
            # earliest deadline at most (then time jumps there as below).
            until = (min(deadlines) - k.virtual_ns()) if deadlines else None
            ms = -1 if until is None else (max(until, 0) + 999_999) // 1_000_000
            if poll_host_waits(k, ms) or not deadlines:
                continue
        if not deadlines:
            live = [t for t, _ in tasks if not t.exited]
            if len(k.sys.procs) > 1:
                what = "every process of the program waits"
            elif len(live) > 1:
                what = "every thread of the program waits"
            else:
                what = "the program waits"
            if k.sys.root in k.sys.procs:
                k.warn_once("deadlock", f"{what} for something that can never happen; ending it")
            raise ProcessExit(ExitStatus(signal=9))
        gap = max(min(deadlines) - k.virtual_ns(), 0)
        k.sys.sleep_ns += gap
        expire_timers(k)
        expire_waits(k)
