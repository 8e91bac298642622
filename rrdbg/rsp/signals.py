"""gdb's signal numbers (``enum gdb_signal``) and Linux i386's.

Role: the protocol speaks gdb's target-independent numbers (stop replies
``T``/``X``, ``C``/``S``/``vCont;C`` and ``QPassSignals``); the machine speaks
Linux's.  They agree for the classic signals and differ for the rest
(SIGUSR1 is 10 on Linux, 30 for gdb).  Pure tables, no I/O.
"""

from __future__ import annotations

from typing import Final

#: Linux number -> gdb number where they differ (gdb's signals.def).
_DIFFERENT: Final = {
    7: 10,  # SIGBUS
    10: 30,  # SIGUSR1
    12: 31,  # SIGUSR2
    16: 143,  # SIGSTKFLT: gdb has no name, "unknown"
    17: 20,  # SIGCHLD
    18: 19,  # SIGCONT
    19: 17,  # SIGSTOP
    20: 18,  # SIGTSTP
    23: 16,  # SIGURG
    29: 23,  # SIGIO
    30: 32,  # SIGPWR
    31: 12,  # SIGSYS
    32: 77,  # SIG32
    64: 78,  # SIG64
}
_BACK: Final = {g: s for s, g in _DIFFERENT.items()}


def to_gdb(linux: int) -> int:
    """gdb's number for a Linux signal."""
    if linux in _DIFFERENT:
        return _DIFFERENT[linux]
    if 33 <= linux <= 63:
        return linux + 12  # SIG33..SIG63 are 45..75
    return linux


def from_gdb(gdb: int) -> int | None:
    """The Linux signal for one of gdb's numbers (None: none on Linux)."""
    if gdb in _BACK:
        return _BACK[gdb]
    if 45 <= gdb <= 75:
        return gdb - 12
    if 0 < gdb < 32 and to_gdb(gdb) == gdb:
        return gdb  # the classic signals: the same number
    return None  # gdb's SIGEMT, SIGLOST, ...: nothing on Linux
