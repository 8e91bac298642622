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

from rrdbg.machine.linux.kernel import ExitStatus, Linux, ProcessExit
from rrdbg.machine.linux.task import Task


def runnable(task: Task) -> bool:
    return task.wait is None


def pick_next(k: Linux) -> Task | None:
    """The task to run next: the first runnable after the running one in
    tid order, the running one itself last; None if none can run."""
    current = k.state.task
    tasks = k.state.tasks()
    after = [t for t in tasks if t.tid > current.tid] + [t for t in tasks if t.tid < current.tid]
    for t in after:
        if runnable(t):
            return t
    return current if runnable(current) else None


def expire_waits(k: Linux) -> None:
    """Wake every task whose wait's deadline has passed, with its timeout
    result (ETIMEDOUT for a futex, 0 for a sleep)."""
    now = k.virtual_ns()
    for t in k.state.tasks():
        w = t.wait
        if w is not None and w.deadline and w.deadline <= now and w.kind != "exited":
            k.wake(t, w.timeout)


def idle(k: Linux) -> None:
    """No task can run: let virtual time pass to the earliest deadline of a
    wait or a real-time timer, firing timers (their signals may interrupt
    waits) and waking timed-out waits, until a task can run."""
    while pick_next(k) is None:
        deadlines = [
            t.wait.deadline
            for t in k.state.tasks()
            if t.wait is not None and t.wait.deadline and not t.exited
        ]
        deadlines += [
            tm.deadline for tm in k.state.timers.values() if tm.deadline and tm.clock == "real"
        ]
        if not deadlines:
            live = [t for t in k.state.tasks() if not t.exited]
            what = "the program waits" if len(live) == 1 else "every thread of the program waits"
            k.warn_once("deadlock", f"{what} for something that can never happen; ending it")
            raise ProcessExit(ExitStatus(signal=9))
        gap = max(min(deadlines) - k.virtual_ns(), 0)
        k.state.sleep_ns += gap
        k.expire_timers()
        expire_waits(k)
