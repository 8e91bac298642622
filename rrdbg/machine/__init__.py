"""The emulated i386 machine: Unicorn CPU with exact icount, memory, loader, Linux syscalls.

Must not import trio, sockets or anything from the server, record or timeline
layers: the machine reports facts and stops; it never calls up.
"""

from __future__ import annotations
