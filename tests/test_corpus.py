"""The corpus of real i386 programs (tools/corpus.py, docs/corpus.md): Debian
bookworm i386 packages and small C programs, run natively, under ``rrdbg run``
and as ``rrdbg record`` + ``rrdbg replay``, compared on stdout, exit status
and the files left behind.

Needs apt-get and the Debian mirror the first time (the packages are cached in
~/.cache/rrdbg-corpus or $RRDBG_CORPUS_CACHE); where the mirror cannot be
reached the test is skipped with the reason "corpus: Debian package mirror
unreachable: ...", which ``-ra`` shows.  Deselect it with ``-m 'not slow'``.

Asserted: every invocation not in corpus.KNOWN_FAILURES matches the native
run in both rrdbg modes; every invocation is deterministic natively.  The
table is printed (see it with -s) and attached to a failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tools" / "corpus.py"
EXIT_SETUP = 2
EXIT_UNREACHABLE = 3
UNREACHABLE_PREFIX = "corpus: Debian package mirror unreachable: "


def _describe(o: dict[str, Any]) -> str:
    diffs = list(dict.fromkeys(o["run_diff"] + o["rr_diff"]))
    diag = " / ".join(o["diagnostics"]) or "no rrdbg diagnostic"
    return f"  {o['name']}: {'; '.join(diffs)} [{diag}]"


@pytest.mark.slow
def test_corpus(tmp_path: Path) -> None:
    results = tmp_path / "corpus.json"
    proc = subprocess.run(
        [sys.executable, str(CORPUS), "--json", str(results)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode == EXIT_UNREACHABLE:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(UNREACHABLE_PREFIX)]
        detail = lines[-1][len(UNREACHABLE_PREFIX) :] if lines else proc.stderr.strip()
        pytest.skip(f"{UNREACHABLE_PREFIX}{detail}")
    report = proc.stdout
    print(report)
    if proc.returncode == EXIT_SETUP or not results.exists():
        pytest.fail(f"corpus setup failed (status {proc.returncode}):\n{proc.stderr[-3000:]}")
    outcomes: list[dict[str, Any]] = json.loads(results.read_text())["outcomes"]

    nondeterministic = [o for o in outcomes if o["native_nondeterministic"]]
    unexpected = [
        o
        for o in outcomes
        if o["expect"] == "work"
        and o["known_failure"] is None
        and not o["skipped"]
        and not o["native_nondeterministic"]
        and not o["works"]
    ]
    problems: list[str] = []
    if nondeterministic:
        problems.append("invocations not deterministic natively (a corpus bug):")
        problems += [f"  {o['name']}: {o['native_nondeterministic']}" for o in nondeterministic]
    if unexpected:
        problems.append("invocations expected to work that do not:")
        problems += [_describe(o) for o in unexpected]
    assert not problems, "\n".join([*problems, "", report])
    assert proc.returncode == 0, f"corpus.py exited {proc.returncode}\n{report}"
