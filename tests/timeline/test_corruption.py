"""Any single-bit flip or truncation of a recording's image or log either
leaves every state the same or is refused: never a different history.

Hypothesis flips one bit (or cuts the file) anywhere in ``snapshots.qcow2`` (vmstate headers,
memory chunks, L1/L2 tables, the qcow2 header and snapshot table) or in
``log.rrlog``, then opens the copy as gdb's replay server would and visits
icounts across the run, restoring snapshots on the way: each state must
have the digest the clean recording gives there, or the visit must fail
with an ``RrdbgError`` (one line for the user).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrdbg.errors import RrdbgError
from rrdbg.timeline import policy
from rrdbg.timeline.timeline import Timeline
from tests.conftest import guest, record_quietly

EXAMPLES = int(os.environ.get("RRDBG_CORRUPTION_EXAMPLES", "40"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, str]]:
    directory = tmp_path_factory.mktemp("clean") / "compute.rr"
    record_quietly(guest("compute"), ["12"], directory, interval=1_000_000)
    sink = os.open(os.devnull, os.O_WRONLY)
    t = Timeline.replay(str(directory), stdout_fd=sink, stderr_fd=sink)
    assert t.history_end is not None and len(t.disk) >= 4
    visits = [t.history_end * k // 7 for k in (6, 2, 5, 1, 7)]
    digests = {}
    for icount in visits:
        t.seek(icount)
        digests[icount] = t.machine.digest()
    t.close()
    os.close(sink)
    return directory, digests


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    which=st.sampled_from(["snapshots.qcow2", "log.rrlog"]),
    where=st.floats(0, 1),
    bit=st.integers(-1, 7),  # -1: cut the file there instead
)
def test_a_flipped_bit_never_gives_a_different_history(
    clean: tuple[Path, dict[int, str]],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    which: str,
    where: float,
    bit: int,
) -> None:
    source, digests = clean
    copy = tmp_path_factory.mktemp("flip") / "r.rr"
    shutil.copytree(source, copy)
    path = copy / which
    data = bytearray(path.read_bytes())
    offset = min(int(where * len(data)), len(data) - 1)
    if bit < 0:
        del data[offset:]
    else:
        data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))
    # Far snapshots only: every visit restores one from the image.
    monkeypatch.setattr(policy, "NEAR", 1)
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        t = Timeline.replay(str(copy), stdout_fd=sink, stderr_fd=sink)
    except RrdbgError:
        os.close(sink)
        return  # refused as a whole: fine
    try:
        for icount, digest in digests.items():
            try:
                t.seek(icount)
            except RrdbgError:
                continue  # refused (e.g. past a damaged log's end): fine
            assert t.machine.digest() == digest, (which, offset, bit, icount)
    finally:
        t.close()
        os.close(sink)
