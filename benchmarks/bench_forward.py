"""Forward speed on real Debian i386 programs: rrdbg against qemu-i386 and native.

Side by side in one run, the median wall time of --repeat runs of each
program natively (through the sysroot's dynamic loader), under qemu-i386
(``-L SYSROOT``), ``rrdbg run --sysroot`` and ``rrdbg record --sysroot``:

- ``sha256sum`` of 4 MiB of random bytes (memory-heavy, few syscalls);
- ``sort -n`` of 300,000 numbers (branchy code, two threads);
- ``busybox dd bs=512`` of the same 4 MiB (syscall-heavy: 16 k reads and writes);
- ``python3.11`` adding 300,000 floats (x87-heavy: Debian's i386 Python
  computes floats on the x87).

Needs the corpus sysroot (``python tools/corpus.py --fetch-only``, or any run
of tools/corpus.py) and qemu-i386 (Debian: qemu-user).  Goal (issue 18):
rrdbg run <= 1.5x qemu-i386 on long runs.

``--cpu-before`` adds ``rrdbg run`` on the CPU rrdbg had before its Unicorn
patches and CPU model (issue 19): the stock Unicorn 2.1.1 wheel's library
(downloaded once into ~/.cache/rrdbg-unicorn/stock, selected with
LIBUNICORN_PATH) with the qemu64 model, and this Unicorn with qemu64, so
the patches' cost and the model's are apart.

Usage: python benchmarks/bench_forward.py [--repeat N] [--sysroot DIR] [--cpu-before]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SYSROOT = (
    Path(os.environ.get("RRDBG_CORPUS_CACHE", Path.home() / ".cache" / "rrdbg-corpus")) / "sysroot"
)


FLOAT_LOOP = "x = 0.0\nfor i in range(300000):\n    x += i * 1.1 / 3.3 - (i % 7) * 0.25\nprint(x)"
MODE_ORDER = [
    "native", "qemu-i386", "stock Unicorn, qemu64", "rrdbg run, qemu64", "rrdbg run",
    "rrdbg record",
]  # fmt: skip


def stock_unicorn() -> Path:
    """A directory holding the stock Unicorn 2.1.1 wheel's libunicorn.so.2."""
    cache = Path(os.environ.get("RRDBG_UNICORN_CACHE", Path.home() / ".cache" / "rrdbg-unicorn"))
    stock = cache / "stock"
    if not (stock / "libunicorn.so.2").exists():
        stock.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary",
                 ":all:", "-d", tmp, "unicorn==2.1.1"],
                check=True, capture_output=True,
            )  # fmt: skip
            (wheel,) = Path(tmp).glob("unicorn-2.1.1-*.whl")
            with zipfile.ZipFile(wheel) as z:
                data = z.read("unicorn/lib/libunicorn.so.2")
            (stock / "libunicorn.so.2").write_bytes(data)
    return stock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sysroot", type=Path, default=DEFAULT_SYSROOT)
    parser.add_argument(
        "--cpu-before", action="store_true", help="also rrdbg run on the stock Unicorn and qemu64"
    )
    ns = parser.parse_args()
    s = ns.sysroot
    qemu = shutil.which("qemu-i386")
    if not (s / "usr" / "bin" / "sha256sum").exists() or qemu is None:
        print(
            f"needs the corpus sysroot at {s} (tools/corpus.py fetches it) and qemu-i386",
            file=sys.stderr,
        )
        return 2
    work = Path(tempfile.mkdtemp(prefix="rrdbg-bench-fwd-"))
    try:
        rng = random.Random(1)
        (work / "rand4m.bin").write_bytes(rng.randbytes(4 << 20))
        (work / "nums.txt").write_text("".join(f"{rng.randrange(10**9)}\n" for _ in range(300_000)))
        libs = f"{s}/lib/i386-linux-gnu:{s}/usr/lib/i386-linux-gnu"
        programs = {
            "sha256sum 4 MiB": ([f"{s}/usr/bin/sha256sum", "rand4m.bin"], False),
            "sort -n 300,000": ([f"{s}/usr/bin/sort", "-n", "nums.txt"], False),
            # x87-heavy: Debian's i386 Python does float arithmetic on the x87
            "python3 float loop": (
                [f"{s}/usr/bin/python3.11", "-c", FLOAT_LOOP],
                False,
            ),
            "busybox dd bs=512": (
                [f"{s}/bin/busybox", "dd", "if=rand4m.bin", "of=/dev/null", "bs=512"],
                True,
            ),
        }
        env = dict(os.environ, LC_ALL="C")
        envs = (
            {"stock Unicorn, qemu64": dict(env, LIBUNICORN_PATH=str(stock_unicorn()))}
            if (ns.cpu_before)
            else {}
        )
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(ns.repeat):
            for name, (argv, static) in programs.items():
                native = (
                    argv if static else [f"{s}/lib/ld-linux.so.2", "--library-path", libs, *argv]
                )
                rrdbg = [sys.executable, "-m", "rrdbg"]
                modes = {
                    "native": native,
                    "qemu-i386": [qemu, "-L", str(s), *argv],
                    "rrdbg run": [*rrdbg, "run", "--sysroot", str(s), *argv],
                    **(
                        {
                            "stock Unicorn, qemu64": [
                                *rrdbg,
                                "run",
                                "--cpu",
                                "qemu64",
                                "--sysroot",
                                str(s),
                                *argv,
                            ],
                            "rrdbg run, qemu64": [
                                *rrdbg,
                                "run",
                                "--cpu",
                                "qemu64",
                                "--sysroot",
                                str(s),
                                *argv,
                            ],
                        }
                        if ns.cpu_before
                        else {}
                    ),
                    "rrdbg record": [
                        *rrdbg,
                        "record",
                        "--force",
                        "-o",
                        str(work / "rec"),
                        "--sysroot",
                        str(s),
                        *argv,
                    ],
                }
                for mode, cmd in modes.items():
                    t0 = time.perf_counter()
                    done = subprocess.run(
                        cmd,
                        check=False,
                        cwd=work,
                        env=envs.get(mode, env),
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                    )
                    elapsed = time.perf_counter() - t0
                    if done.returncode != 0:
                        print(
                            f"{name} ({mode}) failed: {done.stderr.decode()[-300:]}",
                            file=sys.stderr,
                        )
                        return 1
                    times.setdefault((name, mode), []).append(elapsed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"medians of {ns.repeat} (wall seconds; ratios to qemu-i386 and to native)")
    for name in programs:
        qemu_s = statistics.median(times[(name, "qemu-i386")])
        native_s = statistics.median(times[(name, "native")])
        for mode in sorted({m for (n, m) in times if n == name}, key=MODE_ORDER.index):
            t = statistics.median(times[(name, mode)])
            print(
                f"  {name:<18} {mode:<22} {t:7.3f} s  x qemu {t / qemu_s:5.2f}  "
                f"x native {t / native_s:6.1f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
