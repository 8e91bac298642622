"""rrdbg: a record/replay reverse debugger for emulated i386 programs.

Layering (each layer imports only the ones before it):
``errors`` <- ``machine`` (Unicorn CPU, memory, ELF loader, Linux syscalls)
<- ``cli``.  Later layers (record, snapshot, timeline, rsp, target, server)
stack on the machine without the machine ever calling them.
"""

from __future__ import annotations

from rrdbg.errors import RrdbgError as RrdbgError

__version__ = "0.1.0"
