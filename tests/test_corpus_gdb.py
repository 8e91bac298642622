"""gdb sessions on two programs of the corpus (tools/corpus.py), as a user
debugs a program nobody here wrote: Debian's stripped, statically linked
busybox and dynamically linked coreutils ``sort`` with its libc, each
recorded and then taken backwards to a watchpoint with gdb 13.

Needs the corpus's Debian packages (fetched and cached by tools/corpus.py
the first time); skipped with the corpus's "Debian package mirror
unreachable" reason where they cannot be had.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from elftools.elf.elffile import ELFFile

from rrdbg.api import Recording
from tests.server.gdbrun import gdb_batch, needs_gdb, rrdbg_server

pytestmark = [needs_gdb, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
NAMES = b"pear\napple\nfig\nbanana\n"


def _corpus() -> ModuleType:
    spec = importlib.util.spec_from_file_location("corpus", ROOT / "tools" / "corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["corpus"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sysroot() -> Path:
    corpus = _corpus()
    cache = corpus.Cache(corpus.default_cache())
    try:
        corpus.fetch(cache, refresh=False)
    except corpus.Unreachable as exc:
        pytest.skip(f"{corpus.UNREACHABLE_PREFIX}{exc}")
    return Path(cache.sysroot)


def _record(tmp_path: Path, name: str, argv: list[str], sysroot: Path | None = None) -> Path:
    (tmp_path / "names.txt").write_bytes(NAMES)
    out = tmp_path / name
    extra = ["--sysroot", str(sysroot)] if sysroot is not None else []
    proc = subprocess.run(
        [sys.executable, "-m", "rrdbg", "record", *extra, "-o", str(out), *argv],
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"apple\nbanana\nfig\npear\n"
    return out


def _session(recording: Path, program: Path, commands: list[str]) -> str:
    with rrdbg_server(["replay", "--gdb", "127.0.0.1:0", str(recording)]) as server:
        return gdb_batch(str(program), commands, port=server.port)


def test_stripped_static_busybox_back_to_the_last_write_of_a_global(
    sysroot: Path, tmp_path: Path
) -> None:
    """No symbols at all: a word of .data/.bss that the run changed, watched
    from the end of the program, is found written backwards; rrdbg's own
    last-write search (a different mechanism) agrees on the instruction."""
    busybox = sysroot / "bin" / "busybox"
    with busybox.open("rb") as f:
        elf = ELFFile(f)
        assert elf.get_section_by_name(".symtab") is None  # stripped
        data, bss = elf.get_section_by_name(".data"), elf.get_section_by_name(".bss")
        assert data is not None and bss is not None
        lo, hi = data["sh_addr"], bss["sh_addr"] + bss["sh_size"]
    recording = _record(tmp_path, "bb.rr", [str(busybox), "sort", "names.txt"])
    with Recording(recording) as r:
        before = r.read_memory(lo, hi - lo)
        r.seek(r.end)
        after = r.read_memory(lo, hi - lo)
        changed = next(
            lo + i for i in range(0, hi - lo, 4) if before[i : i + 4] != after[i : i + 4]
        )
        write = r.last_write(changed)
        assert write is not None
        final = r.read_int(changed, signed=True)
    text = _session(
        recording,
        busybox,
        [
            "continue",
            f"watch *(int*){changed:#x}",
            "reverse-continue",
            "monitor when",
            "x/i $pc",
        ],
    )
    assert "No more reverse-execution history." in text, text
    assert re.search(rf"Old value = {final}\nNew value = -?\d+\n", text), text
    assert f"Current icount: {write.icount}" in text, text
    assert f"=> {write.pc:#x}:" in text, text


def test_dynamic_sort_from_a_libc_breakpoint_back_to_who_filled_the_buffer(
    sysroot: Path, tmp_path: Path
) -> None:
    """A breakpoint on libc's write, the buffer it is given watched, and
    reverse-continue to the libc code that put the first byte there."""
    sort = sysroot / "usr" / "bin" / "sort"
    recording = _record(tmp_path, "sort.rr", [str(sort), "names.txt"], sysroot)
    # The libraries come from the recording (vFile), not from the sysroot.
    text = _session(
        recording,
        sort,
        [
            "break write",
            "continue",
            "info sharedlibrary",
            "print (char *)(*(char **)($esp + 8))",
            "watch -l *(char *)(*(char **)($esp + 8))",
            "reverse-continue",
            "bt",
        ],
    )
    assert re.search(r"Breakpoint 1, 0x[0-9a-f]+ in write \(\) from .*libc\.so\.6", text), text
    assert re.search(r"0x[0-9a-f]+ +0x[0-9a-f]+ +Yes \(\*\) +\S*libc\.so\.6", text), text
    assert '"apple\\nbanana\\nfig\\npear\\n"' in text, text
    assert "Old value = 97 'a'" in text, text
    # Stopped in libc's stdio, called from sort's own code through fwrite.
    frames = re.findall(r"^#\d+ +0x[0-9a-f]+ in (\S+) \(\)", text, re.MULTILINE)
    assert frames and "fwrite" in " ".join(frames), text


def _record_pipeline(tmp_path: Path, sysroot: Path) -> Path:
    (tmp_path / "names.txt").write_bytes(NAMES)
    out = tmp_path / "pipeline.rr"
    dash = sysroot / "bin" / "dash"
    record = [sys.executable, "-m", "rrdbg", "record", "--sysroot", str(sysroot), "-o", str(out)]
    proc = subprocess.run(
        [*record, str(dash), "-c", "sort names.txt | head -n 2"],
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (0, b"apple\nbanana\n"), proc.stderr
    return out


def test_a_shell_pipeline_followed_into_its_first_command(sysroot: Path, tmp_path: Path) -> None:
    """``set follow-fork-mode child``: gdb leaves the shell at its first fork,
    follows the child through its exec of sort (symbols of the new program
    and its libc from the recording), stops in sort's write and steps back
    into libc's caller, goes back over the exec into dash (gdb loads it
    again) and on to the fork; the shell and head run on unobserved."""
    recording = _record_pipeline(tmp_path, sysroot)
    text = _session(
        recording,
        sysroot / "bin" / "dash",
        [
            "set follow-fork-mode child",
            "set breakpoint pending on",
            "catch exec",
            "continue",
            "info inferiors",
            "break write",
            "continue",
            "print (char *)(*(char **)($esp + 8))",
            "reverse-stepi",
            "bt 1",
            "reverse-continue",
            "info inferiors",
            "reverse-continue",
            "bt 2",
        ],
    )
    assert re.search(r"\[Attaching after .*\d+ fork to child .*\d+\]", text), text
    assert re.search(r"hit Catchpoint 1 \(exec'd \S*/usr/bin/sort\)", text), text
    assert re.search(r"^\* 2 +process \d+ .*/usr/bin/sort", text, re.MULTILINE), text
    assert re.search(r"hit Breakpoint 2(\.\d+)?, 0x[0-9a-f]+ in write \(\)", text), text
    assert '"apple\\nbanana\\nfig\\npear\\n"' in text, text
    # One instruction back: the call into write, in libc's stdio.
    assert re.search(r"^#0 +0x[0-9a-f]+ in _IO_\w+ \(\) from \S*libc\.so\.6", text, re.M), text
    # Back over the exec: an exec event naming dash, the program before
    # (gdb loads it again); then back to the fork, where the child's history
    # begins, in libc's fork.
    assert re.search(r"hit Catchpoint 1 \(exec'd \S*/bin/dash\)", text), text
    assert re.search(r"^\* 2 +process \d+ .*/bin/dash", text, re.MULTILINE), text
    assert "No more reverse-execution history." in text, text
    assert re.search(r"^#1 +0x[0-9a-f]+ in _?_?[Ff]ork\b", text, re.M), text


def test_a_shell_pipeline_with_the_parent_followed(sysroot: Path, tmp_path: Path) -> None:
    """The default (follow the parent, detach the child): a fork catchpoint
    names each child; the shell waits for both and exits with status 0."""
    recording = _record_pipeline(tmp_path, sysroot)
    text = _session(
        recording,
        sysroot / "bin" / "dash",
        ["catch fork", "continue", "continue", "info inferiors", "continue"],
    )
    forks = re.findall(r"Catchpoint 1 \(forked process (\d+)\)", text)
    assert len(forks) == 2 and forks[0] != forks[1], text
    assert re.search(r"\[Detaching after fork from child process \d+\]", text), text
    assert re.search(r"^\* 1 +process \d+ ", text, re.MULTILINE), text


def test_a_shell_pipeline_with_every_process_held(sysroot: Path, tmp_path: Path) -> None:
    """``set detach-on-fork off``: gdb holds the shell and both children;
    each child's exec is reported (gdb reads sort's and head's symbols),
    ``break write`` stops in sort with its whole output, sort's end is
    inferior 2's exit, then head stops in its own write with the first two
    lines and steps back into libc's caller."""
    recording = _record_pipeline(tmp_path, sysroot)
    text = _session(
        recording,
        sysroot / "bin" / "dash",
        [
            "set detach-on-fork off",
            "set breakpoint pending on",
            "break write",
            "continue",
            "info inferiors",
            "print (char *)(*(char **)($esp + 8))",
            "continue",
            "inferior 3",
            "continue",
            "print (char *)(*(char **)($esp + 8))",
            "reverse-stepi",
            "bt 1",
        ],
    )
    assert re.search(r"process \d+ is executing new program: \S*/usr/bin/sort", text), text
    assert re.search(r"Thread 2\.1 \"sort\" hit Breakpoint 1\.\d+, 0x[0-9a-f]+ in write", text), (
        text
    )
    assert re.search(r"^\* 2 +process \d+ .*/usr/bin/sort", text, re.MULTILINE), text
    assert re.search(r"^  3 +process \d+ ", text, re.MULTILINE), text
    assert '"apple\\nbanana\\nfig\\npear\\n"' in text, text
    assert re.search(r"\[Inferior 2 \(process \d+\) exited normally\]", text), text
    assert re.search(r"Thread 3\.1 \"head\" hit Breakpoint 1\.\d+, 0x[0-9a-f]+ in write", text), (
        text
    )
    assert '"apple\\nbanana\\n"' in text, text
    assert re.search(r"^#0 +0x[0-9a-f]+ in _IO_\w+ \(\) from \S*libc\.so\.6", text, re.M), text
