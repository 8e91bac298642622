"""Linux i386 system calls for a single-threaded static program (``int 0x80``).

Role: turn a syscall (number in EAX, arguments in EBX, ECX, EDX, ESI, EDI,
EBP) into effects on guest memory and a result in EAX.  Anything the call
observes from outside the machine goes through the ``Host``; the rest is
kernel state kept here, so the same inputs always give the same results.

Layout (after gVisor's sentry and Qiling's posix syscalls):

- ``kernel.py``: the kernel objects (``Linux``: the process's memory map,
  brk, fd table, signal state, TLS, virtual clocks; ``LinuxState``, its
  serialisable part) and the syscall table with its ``@syscall`` decorator;
- ``sys_*.py``: the handlers, one module per area (process and identity,
  files, memory, threads and signals, time), each registering itself.
"""

from __future__ import annotations

from rrdbg.machine.linux import sys_files, sys_memory, sys_process, sys_signals, sys_time
from rrdbg.machine.linux.kernel import ExitStatus, Linux, LinuxState, OpenFile, ProcessExit

__all__ = ["ExitStatus", "Linux", "LinuxState", "OpenFile", "ProcessExit"]
# The handler modules register themselves on import.
_AREAS = (sys_files, sys_memory, sys_process, sys_signals, sys_time)
