"""The recordings a user made with the CLI: the most recent one, and a list.

Role: what ``rrdbg gdb`` opens by default (like ``rr replay``) and what
``rrdbg ls`` lists (like ``rr ls``).  Recordings stay where the user put them
(``./PROGRAM.rr`` by default); this module only remembers their paths, in
``$RRDBG_STATE_DIR`` (default ``$XDG_STATE_HOME/rrdbg``, i.e.
``~/.local/state/rrdbg``): ``latest`` holds the most recent recording's
absolute path, ``recordings`` one absolute path per line, oldest first.

Invariants: remembering never fails a recording (an unwritable state
directory only loses the convenience); paths that no longer hold a
recording are skipped when read.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from rrdbg.errors import RrdbgError

LATEST = "latest"
LIST = "recordings"
#: Entries kept in the list (the oldest are dropped).
MAX_ENTRIES = 1000


def state_dir() -> Path:
    explicit = os.environ.get("RRDBG_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "rrdbg"


def is_recording(path: Path) -> bool:
    from rrdbg.record.recording import LOG_NAME

    return (path / LOG_NAME).is_file()


def remember(directory: str | os.PathLike[str]) -> None:
    """Make ``directory`` the most recent recording and add it to the list."""
    path = str(Path(directory).resolve())
    with contextlib.suppress(OSError):
        state = state_dir()
        state.mkdir(parents=True, exist_ok=True)
        entries = [p for p in _read_list(state) if p != path][-(MAX_ENTRIES - 1) :]
        entries.append(path)
        _write(state / LIST, "".join(f"{p}\n" for p in entries))
        _write(state / LATEST, path + "\n")


def latest() -> Path:
    """The most recent recording; a one-line error if there is none."""
    try:
        text = (state_dir() / LATEST).read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    if text and is_recording(Path(text)):
        return Path(text)
    # The latest one was deleted: fall back to the newest that is left.
    for path in reversed(known()):
        return path
    raise RrdbgError("no recording yet: make one with 'rrdbg record PROGRAM'")


def known() -> list[Path]:
    """The remembered recordings that still exist, oldest first."""
    return [Path(p) for p in _read_list(state_dir()) if is_recording(Path(p))]


def fresh_name(program: str) -> str:
    """``./PROGRAM.rr``, or ``./PROGRAM-N.rr`` with the first free N >= 2."""
    base = os.path.basename(program.rstrip("/")) or "program"
    candidate = f"{base}.rr"
    n = 2
    while os.path.lexists(candidate):
        candidate = f"{base}-{n}.rr"
        n += 1
    return candidate


def _read_list(state: Path) -> list[str]:
    try:
        text = (state / LIST).read_text(encoding="utf-8")
    except OSError:
        return []
    return [line for line in text.splitlines() if line]


def _write(path: Path, text: str) -> None:
    """Replace a state file atomically (two rrdbg commands may run at once)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
