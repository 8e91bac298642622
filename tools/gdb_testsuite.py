#!/usr/bin/env python3
"""Run tests of gdb's own testsuite against rrdbg, beside the native run.

    python tools/gdb_testsuite.py [--cache DIR] [--refresh] [--json FILE] [TEST.exp ...]

The default tests are DEFAULT_TESTS: the gdb.reverse tests that apply to a
remote target which records by itself (not the *-precsave ones, which save
gdb's own recorder's log; not insn-reverse, which needs that recorder; not
waitpid-reverse, which forks).
Steps:

1. source: the Debian source package of the gdb installed here (same
   version, so the tests expect this gdb's behaviour) is downloaded with
   ``apt-get source --download-only`` through a private apt configuration
   (deb-src lines for the host's Debian mirrors; nothing system-wide
   changes), and its gdb/testsuite is unpacked into the cache
   (~/.cache/rrdbg-gdb-testsuite, $RRDBG_GDB_TESTSUITE_CACHE or --cache).
   Unreachable mirror: one line "gdb-testsuite: Debian source mirror
   unreachable: ..." and status 3.
2. run: the tests run twice under DejaGnu's ``runtest``: natively on board
   ``unix/-m32`` (gdb's own ``record full`` does the reverse execution) and on
   board ``rrdbg/-m32`` (tests/dejagnu/rrdbg.exp: the program starts under
   ``rrdbg debug``, gdb connects with ``target remote``).
3. compare, test by test: every check that passes natively must pass
   against rrdbg (a known failure of gdb that passes against rrdbg, KPASS,
   counts as a pass), and nothing may fail, time out or be unresolved
   against rrdbg, except the checks in KNOWN and NATIVE_ONLY (each with its
   reason).

Exit status: 0 as expected, 1 a difference, 2 a setup error (no runtest, no
gdb, no gcc -m32), 3 the source mirror unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOARDS = ROOT / "tests" / "dejagnu"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402  (the host's Debian mirrors, found the same way)

EXIT_OK, EXIT_FAILED, EXIT_SETUP, EXIT_UNREACHABLE = 0, 1, 2, 3
UNREACHABLE_PREFIX = "gdb-testsuite: Debian source mirror unreachable: "
DEFAULT_TESTS = tuple(
    f"gdb.reverse/{name}.exp"
    for name in (
        "break-reverse", "consecutive-reverse", "finish-reverse", "finish-reverse-bkpt",
        "fstatat-reverse", "getrandom", "getresuid-reverse", "i386-reverse",
        "i386-sse-reverse", "i387-env-reverse", "i387-stack-reverse", "machinestate",
        "next-reverse-bkpt-over-sr", "pipe-reverse", "readv-reverse", "recvmsg-reverse",
        "sigall-reverse", "solib-reverse", "step-reverse", "time-reverse", "until-reverse",
        "watch-reverse",
    )
)  # fmt: skip
TEST_TIMEOUT = 2400.0

#: Checks every test makes natively only, with the reason.
NATIVE_ONLY: dict[str, str] = {
    "turn on process record": (
        "switches gdb's own recorder on; rrdbg records by itself (the board says gdb,use_precord 0)"
    ),
}

#: Checks that cannot pass against rrdbg, with the reason.
KNOWN: dict[tuple[str, str], str] = {
    ("gdb.reverse/sigall-reverse.exp", "continue to signal exit"): (
        "the check passes only if gdb's own recorder asks its question 'The next "
        "instruction is syscall exit_group ... Do you want to stop the program?' "
        "(gdb_test fails it when the question is not seen); rrdbg stops at the same "
        "state, before exit_group, with 'No more reverse-execution history.'"
    ),
}


class SetupError(Exception):
    pass


class Unreachable(Exception):
    pass


def log(message: str) -> None:
    print(f"gdb-testsuite: {message}", file=sys.stderr, flush=True)


def default_cache() -> Path:
    return corpus.cache_dir("RRDBG_GDB_TESTSUITE_CACHE", "rrdbg-gdb-testsuite")


def gdb_version() -> tuple[str, str]:
    """(Debian source version, upstream version) of the gdb on PATH."""
    gdb = shutil.which("gdb")
    if gdb is None:
        raise SetupError("gdb not found (tools/install.sh --dev installs it)")
    query = subprocess.run(
        ["dpkg-query", "-W", "-f", "${source:Version}", "gdb"],
        capture_output=True,
        text=True,
        check=False,
    )
    version = query.stdout.strip()
    if query.returncode != 0 or not version:
        raise SetupError("the gdb here is not Debian's package: its source version is unknown")
    upstream = version.split(":", 1)[-1].rsplit("-", 1)[0]
    return version, upstream


def fetch(cache: Path, *, refresh: bool) -> Path:
    """The testsuite directory of this gdb's source, downloaded once."""
    version, upstream = gdb_version()
    testsuite = cache / f"gdb-{upstream}" / "gdb" / "testsuite"
    stamp = cache / "source.stamp"
    if not refresh and testsuite.is_dir() and stamp.is_file() and stamp.read_text() == version:
        return testsuite
    if shutil.which("apt-get") is None:
        raise Unreachable("apt-get not found on this host")
    apt = cache / "apt"
    corpus.make_apt_dirs(apt)
    lines = []
    for uri, suites, signed_by in corpus.host_mirrors():
        keyring = signed_by if signed_by and Path(signed_by).exists() else None
        if keyring is None and Path(corpus.KEYRING).exists():
            keyring = corpus.KEYRING
        opts = f" [signed-by={keyring}]" if keyring else ""
        lines += [f"deb-src{opts} {uri} {suite} main" for suite in suites]
    (apt / "etc" / "sources.list").write_text("\n".join(lines) + "\n")
    options = corpus.apt_options(apt, architecture=None)
    log(f"apt-get update (deb-src, private config in {apt})")
    update = corpus.run_quiet(["apt-get", "-q", *options, "--error-on=any", "update"])
    if update.returncode != 0:
        errors = [ln for ln in update.stderr.splitlines() if ln.startswith(("E:", "W:", "Err"))]
        raise Unreachable(errors[0] if errors else corpus.last_line(update.stderr))
    download = cache / "download"
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir(parents=True)
    log(f"apt-get source --download-only gdb={version}")
    got = corpus.run_quiet(
        ["apt-get", "-q", *options, "source", "--download-only", f"gdb={version}"], cwd=download
    )
    if got.returncode != 0:
        raise Unreachable(f"apt-get source gdb={version}: {corpus.last_line(got.stderr)}")
    tarballs = sorted(download.glob(f"gdb_{upstream}.orig.tar.*"))
    if not tarballs:
        raise SetupError(f"apt-get source left no gdb_{upstream}.orig.tar.* in {download}")
    shutil.rmtree(cache / f"gdb-{upstream}", ignore_errors=True)
    prefix = f"gdb-{upstream}/gdb/testsuite/"
    log(f"unpacking {prefix} from {tarballs[0].name}")
    with tarfile.open(tarballs[0]) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(cache, members=members, filter="data")
    shutil.rmtree(download, ignore_errors=True)
    if not testsuite.is_dir():
        raise SetupError(f"no {prefix} in {tarballs[0].name}")
    stamp.write_text(version)
    return testsuite


@dataclass
class Outcome:
    board: str
    counts: dict[str, int]
    results: dict[str, str] = field(default_factory=dict)  # check name -> PASS/FAIL/...
    errors: list[str] = field(default_factory=list)


_RESULT = re.compile(r"^(PASS|FAIL|XFAIL|XPASS|KFAIL|KPASS|UNRESOLVED|UNTESTED|UNSUPPORTED): (.*)$")


def run_board(testsuite: Path, work: Path, board: str, tests: list[str]) -> dict[str, Outcome]:
    """One runtest of ``tests`` on ``board`` in its own directory: each
    test's checks, by name (a "(PRMS ...)" suffix left off)."""
    out = work / board.replace("/", "_")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    gdb = shutil.which("gdb")
    assert gdb is not None
    (out / "site.exp").write_text(
        "set host_triplet x86_64-pc-linux-gnu\n"
        "set target_alias x86_64-pc-linux-gnu\n"
        "set target_triplet x86_64-pc-linux-gnu\n"
        "set build_triplet x86_64-pc-linux-gnu\n"
        f"set srcdir {testsuite}\n"
        "set tool gdb\n"
        "set enable_libctf no\n"
        "source ${srcdir}/lib/append_gdb_boards_dir.exp\n"
        f"lappend boards_dir {BOARDS}\n"
    )
    env = dict(os.environ, RRDBG_PYTHON=sys.executable, PYTHONPATH=str(ROOT))
    data_dir = subprocess.run(
        [gdb, "-nx", "-batch", "-ex", "show data-directory"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    match = re.search(r'"(.*)"', data_dir)
    args = [
        "runtest", "--tool", "gdb", "--target_board", board,
        f"GDB={gdb}", *([f"GDB_DATA_DIRECTORY={match.group(1)}"] if match else []), *tests,
    ]  # fmt: skip
    outcomes = {test: Outcome(board, {}) for test in tests}
    try:
        subprocess.run(
            args, cwd=out, env=env, capture_output=True, timeout=TEST_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        for outcome in outcomes.values():
            outcome.errors.append(f"runtest did not end in {TEST_TIMEOUT:.0f} s")
        return outcomes
    summary = out / "gdb.sum"
    if not summary.exists():
        for outcome in outcomes.values():
            outcome.errors.append(f"runtest wrote no gdb.sum (see {out / 'gdb.log'})")
        return outcomes
    current: Outcome | None = None
    for line in summary.read_text(errors="replace").splitlines():
        running = re.match(r"^Running .*/testsuite/(\S+) \.\.\.$", line)
        if running:
            current = outcomes.get(running.group(1))
            continue
        if current is None:
            continue
        if line.startswith("ERROR: "):
            current.errors.append(line)
        m = _RESULT.match(line)
        if m:
            result, name = m.group(1), m.group(2)
            test = name.split(": ", 1)[0]
            name = name.split(": ", 1)[1] if ": " in name else name
            name = re.sub(r" \(PRMS [^)]*\)$", "", name)
            outcome = outcomes.get(test, current)
            # A name seen twice keeps its worst result.
            if outcome.results.get(name, "PASS") == "PASS":
                outcome.results[name] = result
    for outcome in outcomes.values():
        outcome.counts = dict(Counter(outcome.results.values()))
    return outcomes


def compare(test: str, native: Outcome, rrdbg: Outcome) -> list[str]:
    """The differences that matter, one line each."""
    problems = [f"{rrdbg.board}: {e}" for e in rrdbg.errors]
    problems += [f"{native.board}: {e}" for e in native.errors]
    for name, result in native.results.items():
        if result != "PASS" or (test, name) in KNOWN or name in NATIVE_ONLY:
            continue
        got = rrdbg.results.get(name)
        if got not in ("PASS", "KPASS"):
            problems.append(f"{name}: passes natively, {got or 'not run'} against rrdbg")
    for name, result in rrdbg.results.items():
        if result in ("FAIL", "UNRESOLVED") and (test, name) not in KNOWN:
            if name not in native.results:
                problems.append(f"{name}: {result} against rrdbg (not a native check)")
            elif native.results[name] != "PASS":
                problems.append(f"{name}: {result} against rrdbg ({native.results[name]} natively)")
    return list(dict.fromkeys(problems))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tests", nargs="*", metavar="TEST.exp", default=list(DEFAULT_TESTS))
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--refresh", action="store_true", help="download the source again")
    parser.add_argument("--json", type=Path, help="write the results here")
    ns = parser.parse_args(argv)
    cache = ns.cache or default_cache()
    try:
        for tool in ("runtest", "gcc"):
            if shutil.which(tool) is None:
                raise SetupError(f"{tool} not found (tools/install.sh --dev installs it)")
        testsuite = fetch(cache, refresh=ns.refresh)
    except Unreachable as exc:
        print(f"{UNREACHABLE_PREFIX}{exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except SetupError as exc:
        print(f"gdb-testsuite: {exc}", file=sys.stderr)
        return EXIT_SETUP
    work = cache / "runs"
    for test in ns.tests:
        if not (testsuite / test).is_file():
            print(f"gdb-testsuite: no test {test} in {testsuite}", file=sys.stderr)
            return EXIT_SETUP
    log(f"{len(ns.tests)} tests: native (record full)")
    natives = run_board(testsuite, work, "unix/-m32", ns.tests)
    log(f"{len(ns.tests)} tests: rrdbg")
    ours = run_board(testsuite, work, "rrdbg/-m32", ns.tests)
    report: dict[str, object] = {}
    failed = False
    print(f"{'test':44} {'native PASS':>11} {'rrdbg PASS':>10}  other results against rrdbg")
    for test in ns.tests:
        native, rrdbg = natives[test], ours[test]
        problems = compare(test, native, rrdbg)
        others = ", ".join(f"{n} {k}" for k, n in sorted(rrdbg.counts.items()) if k != "PASS")
        print(
            f"{test:44} {native.counts.get('PASS', 0):>11} {rrdbg.counts.get('PASS', 0):>10}"
            f"  {others}"
        )
        for line in problems:
            print(f"  DIFFERENT: {line}")
        failed = failed or bool(problems)
        report[test] = {"native": asdict(native), "rrdbg": asdict(rrdbg), "problems": problems}
    print("checks native only, in every test:")
    for name, why in NATIVE_ONLY.items():
        print(f"  {name!r}: {why}")
    known = [(t, name, why) for (t, name), why in KNOWN.items() if t in ns.tests]
    if known:
        print("known differences:")
        for t, name, why in known:
            print(f"  {t}: {name!r}: {why}")
    print("as expected" if not failed else "DIFFERENCES (above)")
    if ns.json:
        ns.json.write_text(json.dumps(report, indent=1))
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
