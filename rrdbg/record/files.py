"""Files a recording keeps: the program and every file the guest mapped.

Role: a recording holds the bytes of each file the guest executed or mapped
(the program, the dynamic loader, its libraries, data files mapped with
``mmap``) as ``files/<sha256 hex>``, once per content, so a replay needs none
of them on the host and gdb can read the libraries' symbols from the
recording.  ``files/paths`` lists the paths the guest knew them by: one line
per (content, path) pair, ``<sha256 hex> <path as hex>``, appended as the
guest maps them (docs/replay-log.md, "Event kinds").

Invariant: a kept file's name is the SHA-256 of its bytes; a reader checks
it before trusting the bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

from rrdbg.errors import RrdbgError

FILES_NAME = "files"
PATHS_NAME = "paths"


def _sha256(path: str) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def kept_file(directory: Path, sha256: bytes) -> Path:
    """Where a recording keeps the file with this content (it may not exist:
    recordings made before rrdbg kept files)."""
    return directory / FILES_NAME / sha256.hex()


def keep_file(directory: Path, source: str, sha256: bytes, data: bytes | None = None) -> Path:
    """Keep ``source`` (whose content hashes to ``sha256``) in the recording:
    a hard link when the recording is on the same file system, else a copy.
    Files with the same content are kept once.  ``data`` is the content as
    the machine loaded it, written out instead if the file has changed since
    (a program rebuilt during a live session that is then saved)."""
    target = kept_file(directory, sha256)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    try:
        # (link() does not follow a symbolic link: /bin/sh -> dash.)
        os.link(os.path.realpath(source), partial)
    except OSError:
        with contextlib.suppress(OSError):
            shutil.copyfile(source, partial)
    # Check what was kept (the source may have changed since it was read).
    if not partial.exists() or _sha256(str(partial)) != sha256:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        if data is None:
            raise RrdbgError(f"{source} changed while it was being recorded")
        partial.write_bytes(data)
        partial.chmod(0o755)
    os.replace(partial, target)
    return target


def _write_atomically(target: Path, data: bytes) -> None:
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(data)
    os.replace(partial, target)


class KeptFiles:
    """The files a guest mapped, by content, in memory and (for a recording)
    in its directory.  ``directory`` None: in memory only (a live session
    recorded nowhere yet; ``save_to`` writes them into a saved recording)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._content: dict[bytes, bytes] = {}
        #: path -> content hash, the latest mapping of each path.
        self.paths: dict[bytes, bytes] = {}
        self._pairs: list[tuple[bytes, bytes]] = []
        if directory is not None:
            self._read_paths(directory / FILES_NAME / PATHS_NAME)

    def _read_paths(self, listing: Path) -> None:
        try:
            text = listing.read_bytes()
        except FileNotFoundError:
            return  # nothing mapped, or a recording made before rrdbg kept them
        except OSError as exc:
            raise RrdbgError(f"{listing}: cannot read: {exc.strerror}") from None
        for line in text.splitlines():
            try:
                sha_hex, path_hex = line.split(b" ")
                sha, path = bytes.fromhex(sha_hex.decode()), bytes.fromhex(path_hex.decode())
            except (ValueError, UnicodeDecodeError):
                continue  # a line cut by a killed recorder: the rest is still good
            if len(sha) == 32:
                self._remember(sha, path)

    def _remember(self, sha: bytes, path: bytes) -> bool:
        if (sha, path) in self._pairs:
            self.paths[path] = sha
            return False
        self._pairs.append((sha, path))
        self.paths[path] = sha
        return True

    def keep(self, path: bytes, data: bytes) -> bytes:
        """Keep ``data``, mapped from ``path``; returns its SHA-256."""
        sha = hashlib.sha256(data).digest()
        self._content.setdefault(sha, data)
        new = self._remember(sha, path)
        if self.directory is not None:
            files = self.directory / FILES_NAME
            files.mkdir(exist_ok=True)
            target = files / sha.hex()
            if not target.exists():
                _write_atomically(target, data)
            if new:
                with open(files / PATHS_NAME, "ab") as listing:
                    listing.write(sha.hex().encode() + b" " + path.hex().encode() + b"\n")
        return sha

    def load(self, sha: bytes) -> bytes:
        """The kept bytes with this hash; RrdbgError if they are missing or damaged."""
        data = self._content.get(sha)
        if data is not None:
            return data
        where = f"{FILES_NAME}/{sha.hex()}"
        if self.directory is None:
            raise RrdbgError(f"the mapped file {where} is not kept anywhere")
        try:
            data = (self.directory / FILES_NAME / sha.hex()).read_bytes()
        except OSError:
            raise RrdbgError(
                f"{self.directory}: the recording's copy of a mapped file ({where}) is missing"
            ) from None
        if hashlib.sha256(data).digest() != sha:
            raise RrdbgError(f"{self.directory}: the recording's copy {where} was changed")
        self._content[sha] = data
        return data

    def by_path(self, path: bytes) -> bytes | None:
        """The bytes the guest last mapped from ``path``, or None."""
        sha = self.paths.get(path)
        return None if sha is None else self.load(sha)

    def save_to(self, directory: Path) -> None:
        """Write every kept file and the path list into another recording."""
        other = KeptFiles(directory)
        for sha, path in self._pairs:
            other.keep(path, self.load(sha))
