"""rrdbg: a record/replay reverse debugger for emulated i386 programs.

The public Python API (docs/python-api.md)::

    import rrdbg
    rrdbg.record_program("prog", "arg", output="prog.rr")
    with rrdbg.Recording("prog.rr") as r:
        r.run_to("main")
        print(r.icount, hex(r.pc), r.last_write("counter"))

Names are imported on first use, so ``import rrdbg`` (and the pytest plugin)
does not load the emulator.  (``rrdbg.record`` is the recording package;
the function is ``record_program``.)  Layering: ``errors`` <- ``machine`` <-
``record``/``snapshot`` <- ``timeline`` <- ``target``/``rsp`` <- ``server``
<- ``cli``; ``api`` and ``pytest_plugin`` sit on top (docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rrdbg.errors import RrdbgError as RrdbgError

if TYPE_CHECKING:
    from rrdbg.api import Recording as Recording
    from rrdbg.api import RecordResult as RecordResult
    from rrdbg.api import Stop as Stop
    from rrdbg.api import Write as Write
    from rrdbg.api import record_program as record_program
    from rrdbg.gdbmi import Gdb as Gdb

__version__ = "0.1.0"
__all__ = ["Gdb", "RecordResult", "Recording", "RrdbgError", "Stop", "Write", "record_program"]

_LAZY = {
    "RecordResult": "rrdbg.api",
    "Recording": "rrdbg.api",
    "Stop": "rrdbg.api",
    "Write": "rrdbg.api",
    "record_program": "rrdbg.api",
    "Gdb": "rrdbg.gdbmi",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rrdbg' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
