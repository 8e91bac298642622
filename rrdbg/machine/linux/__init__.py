"""Linux i386 system calls for one process (``int 0x80``).

Role: turn a syscall (number in EAX, arguments in EBX, ECX, EDX, ESI, EDI,
EBP) into effects on guest memory and a result in EAX.  Anything the call
observes from outside the machine goes through the ``Host``; the rest is
kernel state kept here, so the same inputs always give the same results.

Layout (after gVisor's sentry and Qiling's posix syscalls):

- ``kernel.py``: ``Linux``, the kernel side of the process (its memory
  map and brk, virtual clocks, signal dispositions and timers, working
  directory: ``LinuxState``, the part a snapshot saves) and the syscall
  table with its ``@syscall`` decorator;
- kernel objects: ``task.py`` (``Task``: a thread's id, signal mask, pending
  signals and altstack, TLS, clear-tid address), ``fdtable.py``
  (``FdTable`` of ``OpenFile``s: console, file, directory and pipe objects
  with their flags and reference counts), ``signals.py`` (signal state,
  frames, sigreturn, timers); ``solib.py``: the dynamic linker's library
  list for gdb;
- ``sys_*.py``: the handlers, one module per area, each registering itself:
  ``sys_files`` (fds, read/write, open, stat, directories, ioctl),
  ``sys_io`` (positioned and bulk I/O, sync, locks, poll/select),
  ``sys_meta`` (modes, owners, times, sizes, links, cwd, statfs),
  ``sys_memory``, ``sys_process`` (exit, ids, kill, limits, prctl),
  ``sys_signals`` (dispositions, masks, waits, sigreturn, timers),
  ``sys_time`` (clocks, sleeps, getrandom), ``sys_misc`` (sysinfo,
  rusage, credentials, scheduling, children, sockets).
"""

from __future__ import annotations

from rrdbg.machine.linux import (
    sys_files,
    sys_io,
    sys_memory,
    sys_meta,
    sys_misc,
    sys_process,
    sys_signals,
    sys_threads,
    sys_time,
)
from rrdbg.machine.linux.fdtable import FdTable, FileKind, OpenFile
from rrdbg.machine.linux.kernel import ExitStatus, Linux, LinuxState, ProcessExit
from rrdbg.machine.linux.task import Task

__all__ = [
    "ExitStatus",
    "FdTable",
    "FileKind",
    "Linux",
    "LinuxState",
    "OpenFile",
    "ProcessExit",
    "Task",
]
# The handler modules register themselves on import.
# fmt: off
_AREAS = (sys_files, sys_io, sys_memory, sys_meta, sys_misc, sys_process, sys_signals,
          sys_threads, sys_time)
# fmt: on
