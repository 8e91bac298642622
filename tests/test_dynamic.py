"""Dynamically linked programs: run as natively, recorded with every mapped
file, replayed and debugged (libraries included) where the libraries are gone.

``dynamic`` is built as ``gcc -m32 -g prog.c`` builds (PIE) and needs its own
``libguest.so`` from ``/opt/rrdbg-test/lib``: natively through
LD_LIBRARY_PATH, under rrdbg through ``--sysroot``, which is deleted after
recording so only the recording holds the library.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rrdbg.machine.linux.solib import libraries_svr4
from rrdbg.record.files import FILES_NAME, PATHS_NAME
from tests.conftest import can_run_i386_natively, guest
from tests.server.gdbrun import gdb_batch, needs_gdb, rrdbg_server

LD_SO = Path("/lib/ld-linux.so.2")
needs_libc = pytest.mark.skipif(
    not LD_SO.exists() or not can_run_i386_natively(),
    reason="no i386 dynamic loader (apt-get install libc6-i386) or no native i386",
)
pytestmark = needs_libc
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C"}


def rrdbg(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "rrdbg", *args],
        capture_output=True,
        env=ENV,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def sysroot(tmp_path: Path) -> Path:
    root = tmp_path / "sysroot"
    lib = root / "opt" / "rrdbg-test" / "lib"
    lib.mkdir(parents=True)
    shutil.copy(guest("libguest.so"), lib / "libguest.so")
    return root


def test_gcc_default_build_runs_as_natively(tmp_path: Path) -> None:
    native = subprocess.run([guest("hello-dynamic")], capture_output=True, env=ENV, check=False)
    ours = rrdbg("run", guest("hello-dynamic"))
    assert (ours.returncode, ours.stdout, ours.stderr) == (native.returncode, native.stdout, b"")


def test_own_library_through_sysroot_as_natively(tmp_path: Path) -> None:
    native = subprocess.run(
        [guest("dynamic"), "7"],
        capture_output=True,
        env={**ENV, "LD_LIBRARY_PATH": str(Path(guest("libguest.so")).parent)},
        check=False,
    )
    assert native.stdout.startswith(b"total=")
    ours = rrdbg("run", "--sysroot", str(sysroot(tmp_path)), guest("dynamic"), "7")
    assert (ours.returncode, ours.stdout, ours.stderr) == (native.returncode, native.stdout, b"")
    # Without the library, ld.so says so and exits 127, as natively.
    missing = rrdbg("run", guest("dynamic"))
    assert missing.returncode == 127
    assert b"libguest.so: cannot open shared object file" in missing.stderr


def test_recording_keeps_the_libraries_and_replays_without_them(tmp_path: Path) -> None:
    root = sysroot(tmp_path)
    out = tmp_path / "d.rr"
    recorded = rrdbg("record", "-o", str(out), "--sysroot", str(root), guest("dynamic"), "4")
    assert recorded.stdout.startswith(b"total="), recorded.stderr
    shutil.rmtree(root)
    listing = (out / FILES_NAME / PATHS_NAME).read_text().split()
    paths = {bytes.fromhex(h).decode() for h in listing[1::2]}
    assert {"/lib/ld-linux.so.2", "/opt/rrdbg-test/lib/libguest.so"} <= paths
    replayed = rrdbg("replay", str(out))
    assert (replayed.returncode, replayed.stdout) == (recorded.returncode, recorded.stdout)
    # The log holds references, not the libraries' bytes.
    assert (out / "log.rrlog").stat().st_size < 64 << 10
    # A damaged kept library is named, not trusted.
    kept = next(p for p in (out / FILES_NAME).iterdir() if p.stat().st_size > 1 << 20)
    data = bytearray(kept.read_bytes())
    data[len(data) // 2] ^= 0x55
    kept.write_bytes(bytes(data))
    damaged = rrdbg("replay", str(out))
    assert damaged.returncode != 0
    assert damaged.stderr.decode().count("\n") == 1
    assert "was changed" in damaged.stderr.decode()


def test_missing_dynamic_loader_is_one_line(tmp_path: Path) -> None:
    image = Path(guest("hello-dynamic")).read_bytes()
    assert image.count(b"/lib/ld-linux.so.2\0") == 1
    bad = tmp_path / "badinterp"
    bad.write_bytes(image.replace(b"/lib/ld-linux.so.2\0", b"/lib/ld-linux.so.9\0"))
    bad.chmod(0o755)
    for cmd in (["run"], ["record", "-o", str(tmp_path / "x.rr")]):
        res = rrdbg(*cmd, str(bad))
        assert res.returncode == 2
        assert res.stderr.decode().count("\n") == 1
        assert "dynamic loader /lib/ld-linux.so.9 cannot be opened" in res.stderr.decode()
    assert not (tmp_path / "x.rr").exists()
    bad_root = rrdbg("run", "--sysroot", str(tmp_path / "none"), guest("hello-dynamic"))
    assert bad_root.returncode == 2
    assert b"--sysroot" in bad_root.stderr


@needs_gdb
def test_gdb_breaks_in_libc_and_the_library_and_watches_backwards(tmp_path: Path) -> None:
    root = sysroot(tmp_path)
    out = tmp_path / "d.rr"
    rrdbg("record", "-o", str(out), "--sysroot", str(root), guest("dynamic"), "3")
    shutil.rmtree(root)  # libguest.so now exists only in the recording
    with rrdbg_server(["replay", "--gdb", "127.0.0.1:0", str(out)]) as server:
        text = gdb_batch(
            guest("dynamic"),
            [
                "break guest_sum",
                "break malloc",
                "continue",
                "bt 2",
                "info sharedlibrary",
                "delete",
                "break write",
                "continue",
                "bt 3",
                "delete",
                "watch watched",
                "reverse-continue",
                "bt 1",
                "print watched",
            ],
            port=server.port,
        )
    assert "Breakpoint 2, " in text and "in malloc ()" in text, text
    assert "main (argc=2" in text, text
    assert "target:/opt/rrdbg-test/lib/libguest.so" in text, text
    assert "libc.so.6" in text, text
    assert "in write ()" in text, text
    # Backwards from the write: the last assignment of `watched` (round 3).
    assert "Hardware watchpoint" in text and "Old value = " in text, text
    assert "in main (argc=2" in text and "watched = guest_sum(a, 16) + r;" in text, text
    assert "$1 = 763" in text, text  # round 3 of `dynamic 3`


def test_library_list_walks_the_link_maps() -> None:
    # dynamic section: DT_DEBUG -> r_debug at 0x100; link maps at 0x200..
    memory = bytearray(0x1000)

    def put(addr: int, *words: int) -> None:
        for i, w in enumerate(words):
            memory[addr + 4 * i : addr + 4 * i + 4] = w.to_bytes(4, "little")

    put(0x40, 1, 5, 21, 0x100, 0, 0)  # DT_NEEDED, DT_DEBUG, DT_NULL
    put(0x100, 1, 0x200)  # r_version, r_map
    put(0x200, 0, 0x300, 0x44, 0x220, 0)  # the program: no name
    put(0x220, 0xB000, 0x310, 0x88, 0x240, 0x200)
    put(0x240, 0xC000, 0x320, 0x99, 0, 0x220)
    memory[0x300:0x301] = b"\0"
    memory[0x310:0x320] = b"/lib/a&b.so\0"
    memory[0x320:0x330] = b"/lib/c.so\0"

    def read(addr: int, n: int) -> bytes:
        if addr + n > len(memory):
            from rrdbg.errors import GuestMemoryError

            raise GuestMemoryError("out", addr)
        return bytes(memory[addr : addr + n])

    doc = libraries_svr4(read, 0x40)
    assert doc == (
        b'<library-list-svr4 version="1.0" main-lm="0x200">'
        b'<library name="/lib/a&amp;b.so" lm="0x220" l_addr="0xb000" l_ld="0x88" lmid="0x0"/>'
        b'<library name="/lib/c.so" lm="0x240" l_addr="0xc000" l_ld="0x99" lmid="0x0"/>'
        b"</library-list-svr4>"
    )
    # gdb's incremental form: only what follows `prev`.
    assert libraries_svr4(read, 0x40, "start=240;prev=220") == (
        b'<library-list-svr4 version="1.0">'
        b'<library name="/lib/c.so" lm="0x240" l_addr="0xc000" l_ld="0x99" lmid="0x0"/>'
        b"</library-list-svr4>"
    )
    # Before ld.so fills DT_DEBUG: an empty list.  A cycle ends the walk.
    put(0x4C, 0)
    assert libraries_svr4(read, 0x40) == b'<library-list-svr4 version="1.0"/>'
    put(0x4C, 0x100)
    put(0x240, 0xC000, 0x320, 0x99, 0x200, 0x220)
    assert libraries_svr4(read, 0x40).count(b"<library ") == 2


def test_old_recordings_map_files_with_lseek_and_read() -> None:
    from rrdbg.record.events import Kind, Value, args_crc, encode_payload
    from rrdbg.record.hosts import ReplayHost

    events: list[tuple[Kind, tuple[int, ...], Value]] = [
        (Kind.LSEEK, (5, 0, os.SEEK_CUR), 10),
        (Kind.LSEEK, (5, 4096, os.SEEK_SET), 4096),
        (Kind.READ, (5, 100), b"x" * 100),
        (Kind.LSEEK, (5, 10, os.SEEK_SET), 10),
    ]

    class Source:
        def __init__(self) -> None:
            self.items = [(7, int(k), encode_payload(args_crc(a), v)) for k, a, v in events]

        def peek(self) -> tuple[int, int, bytes] | None:
            return self.items[0] if self.items else None

        def advance(self) -> None:
            self.items.pop(0)

    source = Source()
    host = ReplayHost(source, quiet=True)
    host.icount = lambda: 7
    assert host.map_file(5, 4096, 100) == b"x" * 100
    assert source.items == []
