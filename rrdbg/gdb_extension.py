"""rrdbg's gdb commands, in the style of rr's: load with ``source`` in gdb.

Role: give gdb real commands for moving in rrdbg's history instead of raw
``monitor`` lines, so that gdb evaluates arguments (``last-write p->next``),
errors are gdb errors, and gdb's caches are flushed after every move in time.
``rrdbg gdb`` loads this file; by hand: ``source $(rrdbg gdb --extension)``.

Commands (each checks that the current target is rrdbg):

- ``when``: the current instruction count (icount).
- ``seek ICOUNT|NAME``: go to an icount or a named checkpoint.
- ``checkpoint [NAME]``: keep this point (a named snapshot in the recording).
- ``restart NAME|ID``: go back (or forward) to a checkpoint.
- ``info checkpoints``: rrdbg's checkpoints (not gdb's fork-based ones).
- ``last-write EXPR``: the last instruction that wrote the object EXPR
  denotes (its address and size, as gdb evaluates it), and its source line.
- ``info rrdbg``: the session: recording, position, end of history.
- ``record`` (and ``record full``/``btrace``): refused with a note, as
  rrdbg records already; gdb's own recorder would single-step everything.

This file runs inside gdb's Python and imports nothing from rrdbg.
"""

from __future__ import annotations

import contextlib
import re

import gdb

_ERROR = "rrdbg: error: "


def _is_rrdbg() -> bool:
    """Whether the selected inferior is connected to an rrdbg server."""
    inferior = gdb.selected_inferior()
    connection = inferior.connection if inferior is not None else None
    if connection is None or connection.type not in ("remote", "extended-remote"):
        return False
    try:
        out = gdb.execute("monitor info rrdbg", to_string=True)
    except gdb.error:
        return False
    return out.startswith("rrdbg ")


def _monitor(command: str) -> str:
    """Run an rrdbg monitor command; its "rrdbg: error:" line becomes a gdb error."""
    if not _is_rrdbg():
        raise gdb.GdbError("not connected to rrdbg (target remote | rrdbg replay --gdb stdio DIR)")
    out = gdb.execute(f"monitor {command}", to_string=True)
    for line in out.splitlines():
        if line.startswith(_ERROR):
            raise gdb.GdbError(line[len(_ERROR) :])
    return out


def _moved() -> None:
    """After a move in time: drop what gdb cached and show where we are."""
    gdb.execute("maintenance flush register-cache", to_string=True)
    gdb.execute("maintenance flush dcache", to_string=True)
    gdb.execute("frame", to_string=False)


def _argument(arg: str, usage: str) -> str:
    words = gdb.string_to_argv(arg)
    if len(words) != 1:
        raise gdb.GdbError(f"usage: {usage}")
    return words[0]


class When(gdb.Command):
    """Print the current instruction count (icount) in rrdbg's history."""

    def __init__(self) -> None:
        super().__init__("when", gdb.COMMAND_STATUS)

    def invoke(self, arg: str, from_tty: bool) -> None:
        if arg.strip():
            raise gdb.GdbError("usage: when")
        gdb.write(_monitor("when"))


class Seek(gdb.Command):
    """Go to an instruction count or a named checkpoint: seek ICOUNT|NAME.

    ICOUNT may be any expression gdb can evaluate to a number."""

    def __init__(self) -> None:
        super().__init__("seek", gdb.COMMAND_RUNNING)

    def invoke(self, arg: str, from_tty: bool) -> None:
        where = arg.strip()
        if not where:
            raise gdb.GdbError("usage: seek ICOUNT|CHECKPOINT-NAME")
        target = where if _is_checkpoint(where) else str(int(gdb.parse_and_eval(where)))
        gdb.write(_monitor(f"seek {target}"))
        _moved()


def _is_checkpoint(name: str) -> bool:
    """Whether ``name`` is the name of one of the recording's checkpoints."""
    if not re.fullmatch(r"[^\s]+", name):
        return False
    listing = _monitor("info checkpoints")
    return re.search(rf"^\s*(?:\d+|-)\s+{re.escape(name)}\s", listing, re.MULTILINE) is not None


class Checkpoint(gdb.Command):
    """Keep this point in history as a named checkpoint: checkpoint [--save] [NAME].

    In a replay, a checkpoint lives in memory for this session (restart NAME
    comes back to it); --save adds it to the recording's image, for later
    sessions too.  In a live session recording to a directory (-o), it is a
    snapshot of that recording."""

    def __init__(self) -> None:
        super().__init__("checkpoint", gdb.COMMAND_RUNNING)

    def invoke(self, arg: str, from_tty: bool) -> None:
        words = gdb.string_to_argv(arg)
        if len([w for w in words if w != "--save"]) > 1 or len(words) > 2:
            raise gdb.GdbError("usage: checkpoint [--save] [NAME]")
        gdb.write(_monitor("checkpoint " + " ".join(words)))


class Restart(gdb.Command):
    """Go to a checkpoint: restart NAME|ID (see info checkpoints)."""

    def __init__(self) -> None:
        super().__init__("restart", gdb.COMMAND_RUNNING)

    def invoke(self, arg: str, from_tty: bool) -> None:
        name = _argument(arg, "restart NAME|ID")
        gdb.write(_monitor(f"restart {name}"))
        _moved()


class InfoCheckpoints(gdb.Command):
    """List rrdbg's checkpoints: named ones, and those kept in memory."""

    def __init__(self) -> None:
        super().__init__("info checkpoints", gdb.COMMAND_STATUS)

    def invoke(self, arg: str, from_tty: bool) -> None:
        gdb.write(_monitor("info checkpoints"))


class InfoRrdbg(gdb.Command):
    """Describe the rrdbg session: recording, position, end of history."""

    def __init__(self) -> None:
        super().__init__("info rrdbg", gdb.COMMAND_STATUS)

    def invoke(self, arg: str, from_tty: bool) -> None:
        gdb.write(_monitor("info rrdbg"))


class LastWrite(gdb.Command):
    """Find the last write to an object before now: last-write EXPR.

    gdb evaluates EXPR: an object (counter, st.limit, p->next, *p, a[3])
    gives its address and size; a number or pointer value gives an address,
    with an optional size after it: last-write 0x804c010 4."""

    def __init__(self) -> None:
        super().__init__("last-write", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg: str, from_tty: bool) -> None:
        text = arg.strip()
        if not text:
            raise gdb.GdbError("usage: last-write EXPR")
        sized = re.fullmatch(r"(.+?)\s+(\d+)", text)
        try:
            value, size = gdb.parse_and_eval(text), 0
        except gdb.error:
            if sized is None:
                raise
            value, size = gdb.parse_and_eval(sized.group(1)), int(sized.group(2))
        if size:
            address = int(value)
        elif value.address is not None and value.type.sizeof > 0:
            address, size = int(value.address), value.type.sizeof
        else:
            address, size = int(value), 1
        out = _monitor(f"last-write {address:#x} {size}")
        gdb.write(out)
        found = re.search(r"icount (\d+), pc (0x[0-9a-f]+)", out)
        if found is not None:
            line = gdb.find_pc_line(int(found.group(2), 16))
            if line.symtab is not None:
                gdb.write(f"  at {line.symtab.filename}:{line.line}\n")


class RefuseRecord(gdb.Command):
    """Refuse gdb's recorder on an rrdbg target (used by hook-record)."""

    def __init__(self) -> None:
        super().__init__("rrdbg-refuse-record", gdb.COMMAND_NONE)

    def invoke(self, arg: str, from_tty: bool) -> None:
        if _is_rrdbg():
            raise gdb.GdbError(
                "rrdbg records already: reverse-step, reverse-continue and the other "
                "reverse commands work as they are (gdb's recorder is not needed)"
            )


#: Connections (by number) already looked at for a source directory.
_configured: set[int] = set()


def _find_sources() -> None:
    """Once per connection to rrdbg: let gdb find sources named relative to
    the program's build directory wherever gdb runs (the "sources:" line of
    info rrdbg)."""
    inferior = gdb.selected_inferior()
    connection = inferior.connection if inferior is not None else None
    if connection is None or connection.num in _configured:
        return
    _configured.add(connection.num)
    if not _is_rrdbg():
        return
    found = re.search(r"^sources: (.+)$", _monitor("info rrdbg"), re.MULTILINE)
    if found is not None:
        gdb.execute(f"directory {found.group(1)}", to_string=True)


def _on_event(_event: object = None) -> None:
    with contextlib.suppress(gdb.error):
        _find_sources()


gdb.events.stop.connect(_on_event)
gdb.events.before_prompt.connect(_on_event)
When()
Seek()
Checkpoint()
Restart()
InfoCheckpoints()
InfoRrdbg()
LastWrite()
RefuseRecord()
for _hook in ("define hook-record", "define record hook-full", "define record hook-btrace"):
    gdb.execute(f"{_hook}\nrrdbg-refuse-record\nend", to_string=True)
