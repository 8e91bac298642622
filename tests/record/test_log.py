"""The replay log container: round trips, damage of every kind, SIGKILL, cursors."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrdbg.errors import LogFormatError
from rrdbg.record.log import (
    CHUNK_MAGIC,
    KIND_END,
    MAGIC,
    Cursor,
    Event,
    LogHeader,
    LogReader,
    LogWriter,
    crc32c,
)

Triple = tuple[int, int, bytes]  # (icount, kind, payload)


def make_header(**changes: object) -> LogHeader:
    fields: dict[str, object] = {
        "rrdbg_version": "0.1.0",
        "unicorn_version": "2.1.1",
        "cpu_model": "UC_CPU_X86_PENTIUM3",
        "program_path": "/opt/guests/hello",
        "program_size": 123456,
        "program_sha256": bytes(range(32)),
        "argv": (b"hello", b"world"),
        "snapshot_image": "snapshots.qcow2",
        "snapshot_interval": 100_000_000,
        "created_ns": 1_700_000_000_123_456_789,
        "extra": {"snapshot_name": "init"},
    }
    fields.update(changes)
    return LogHeader(**fields)  # type: ignore[arg-type]


def write_log(
    path: Path,
    events: Sequence[Triple],
    *,
    chunk_bytes: int = 64,
    end: tuple[int, bytes] | None = None,
    header: LogHeader | None = None,
) -> list[Cursor]:
    """Write ``events`` (and END if given); returns the writer's position before each."""
    positions = []
    with LogWriter.create(path, header or make_header(), chunk_bytes=chunk_bytes) as w:
        for icount, kind, payload in events:
            positions.append(w.position)
            w.append(icount, kind, payload)
        if end is not None:
            positions.append(w.position)
            w.close(*end)
            positions.append(w.position)  # the end of the log
    return positions


def read_all(path: Path) -> tuple[list[Event], LogReader]:
    reader = LogReader.open(path)
    events = list(reader)
    reader.close()
    return events, reader


def triples(events: Sequence[Event]) -> list[Triple]:
    return [(e.icount, e.kind, e.payload) for e in events]


def sample_events(n: int = 40) -> list[Triple]:
    out = []
    icount = 0
    for i in range(n):
        icount += (i * 7919) % 5 * (1 if i % 3 else 1000)
        out.append((icount, 1 + (i * 31) % 255, bytes([i]) * ((i * 13) % 23)))
    return out


@pytest.fixture
def tmp_log(tmp_path: Path) -> Path:
    return tmp_path / "log.rrlog"


# -- strategies ---------------------------------------------------------------

deltas = st.one_of(st.just(0), st.integers(0, 200), st.integers(0, 1 << 40))
payloads = st.one_of(st.binary(max_size=40), st.binary(min_size=100, max_size=1500))
event_lists = st.tuples(
    st.integers(0, 1 << 62),
    st.lists(st.tuples(deltas, st.integers(1, 255), payloads), max_size=50),
).map(lambda t: _absolute(t[0], t[1]))


def _absolute(start: int, rel: list[tuple[int, int, bytes]]) -> list[Triple]:
    out = []
    icount = start
    for delta, kind, payload in rel:
        icount += delta
        out.append((icount, kind, payload))
    return out


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def fresh(directory: Path) -> Path:
    """A path that does not exist yet (hypothesis examples share one directory)."""
    path = directory / f"log-{time.perf_counter_ns()}.rrlog"
    assert not path.exists()
    return path


# -- CRC ------------------------------------------------------------------------


def _crc32c_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def test_crc32c_known_vectors() -> None:
    # RFC 3720 (iSCSI) B.4 and the usual check value.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_crc32c_matches_bitwise_and_chains(a: bytes, b: bytes) -> None:
    assert crc32c(a + b) == _crc32c_bitwise(a + b)
    assert crc32c(b, crc32c(a)) == crc32c(a + b)
    assert crc32c(bytearray(a)) == crc32c(memoryview(a)) == crc32c(a)


# -- round trips ----------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=event_lists,
    chunk_bytes=st.one_of(st.integers(1, 64), st.integers(64, 4096)),
    end_payload=st.binary(max_size=64),
    end_delta=st.integers(0, 1000),
)
def test_round_trip(
    scratch: Path, events: list[Triple], chunk_bytes: int, end_payload: bytes, end_delta: int
) -> None:
    path = fresh(scratch)
    end_icount = (events[-1][0] if events else 0) + end_delta
    positions = write_log(path, events, chunk_bytes=chunk_bytes, end=(end_icount, end_payload))
    read, reader = read_all(path)
    assert triples(read) == [*events, (end_icount, KIND_END, end_payload)]
    # The writer's positions are the reader's cursors.
    assert [e.cursor for e in read] == positions[:-1]
    assert positions[-1] == Cursor(path.stat().st_size, 0)
    assert reader.clean_end
    assert reader.truncated_at is None
    assert reader.end_event is not None
    assert reader.end_event.payload == end_payload
    with LogReader.open(path) as again:
        summary = again.summary()
        assert again.header == make_header()
    assert summary.clean_end
    assert summary.events == len(events) + 1
    assert summary.end_icount == end_icount
    assert summary.end_payload == end_payload
    assert summary.file_bytes == summary.readable_bytes == path.stat().st_size
    assert summary.trailing_bytes == 0
    assert summary.chunks == len({e.cursor.chunk_offset for e in read})
    expected_kinds: dict[int, int] = {KIND_END: 1}
    for _, kind, _ in events:
        expected_kinds[kind] = expected_kinds.get(kind, 0) + 1
    assert summary.events_by_kind == expected_kinds


def test_exact_bytes_of_a_small_log(tmp_log: Path) -> None:
    """The chunk layout of docs/replay-log.md, byte by byte."""
    header = make_header()
    with LogWriter.create(tmp_log, header) as w:
        w.append(5, 1, b"ab")
        w.append(5, 2)
        w.append(300, 3, b"x")
        w.close(300)
    data = tmp_log.read_bytes()
    tlv = header.to_bytes()
    preamble = MAGIC + struct.pack("<HHI", 1, 0, len(tlv) + 4)
    assert data.startswith(preamble + tlv + struct.pack("<I", crc32c(preamble + tlv)))
    chunk = data[len(preamble) + len(tlv) + 4 :]
    payload = bytes.fromhex(
        "00 01 02 6162"  # delta 0 (first event), kind 1, length 2, b"ab"
        " 00 02 00"  # delta 0, kind 2, length 0
        " a7 02 03 01 78"  # delta 295 (LEB128 a7 02), kind 3, length 1, b"x"
        " 00 00 00"  # END: delta 0, kind 0, length 0
    )
    fields = struct.pack("<I", len(payload)), struct.pack("<QI", 5, 4)
    crc = crc32c(fields[0] + fields[1] + payload)
    assert chunk == CHUNK_MAGIC + fields[0] + struct.pack("<I", crc) + fields[1] + payload
    # The header TLV: tag 1 (rrdbg_version) comes first.
    assert tlv[:6] == struct.pack("<HI", 1, 5)
    assert tlv[6:11] == b"0.1.0"


def test_big_payloads_and_icount_limits(tmp_log: Path) -> None:
    top = (1 << 64) - 1
    events = [(0, 1, b""), (1 << 63, 2, os.urandom(200_000)), (top, 255, b"z" * 127)]
    write_log(tmp_log, events, chunk_bytes=1000, end=(top, b"E" * 300))
    read, reader = read_all(tmp_log)
    assert triples(read) == [*events, (top, 0, b"E" * 300)]
    assert reader.clean_end


def test_peek_next_and_position(tmp_log: Path) -> None:
    events = sample_events(10)
    positions = write_log(tmp_log, events, chunk_bytes=20, end=(events[-1][0], b"end"))
    with LogReader.open(tmp_log) as r:
        first = r.peek()
        assert first is not None
        assert r.peek() is first
        assert r.position == positions[0] == first.cursor
        assert r.next() is first
        assert r.position == positions[1]
        rest = [r.next() for _ in range(10)]
        assert [e.kind if e else None for e in rest][-1] == KIND_END
        assert r.next() is None
        assert r.peek() is None
        assert r.clean_end
        assert r.position == Cursor(tmp_log.stat().st_size, 0)
        with pytest.raises(StopIteration):
            next(r)


# -- the writer ---------------------------------------------------------------------


def test_writer_refuses_an_existing_file(tmp_log: Path) -> None:
    tmp_log.write_bytes(b"precious")
    with pytest.raises(LogFormatError, match=str(tmp_log)):
        LogWriter.create(tmp_log, make_header())
    assert tmp_log.read_bytes() == b"precious"
    write_log(tmp_log.with_suffix(".2"), [], end=(0, b""))
    with pytest.raises(LogFormatError, match="already exists"):
        LogWriter.create(tmp_log.with_suffix(".2"), make_header())


def test_writer_cannot_create_in_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(LogFormatError, match="cannot create"):
        LogWriter.create(tmp_path / "missing" / "log", make_header())


def test_writer_checks_its_arguments(tmp_log: Path) -> None:
    with LogWriter.create(tmp_log, make_header()) as w:
        for kind in (0, 256, -1):
            with pytest.raises(ValueError, match="kind"):
                w.append(1, kind)
        w.append(10, 1)
        with pytest.raises(ValueError, match="below"):
            w.append(9, 1)
        with pytest.raises(ValueError, match="below"):
            w.close(9)
        with pytest.raises(ValueError, match="64 bits"):
            w.append(1 << 64, 1)
        w.close(10)
        assert w.closed
        with pytest.raises(ValueError, match="closed"):
            w.append(11, 1)
        with pytest.raises(ValueError, match="closed"):
            w.flush()
    with pytest.raises(ValueError, match="chunk_bytes"):
        LogWriter.create(tmp_log.with_suffix(".x"), make_header(), chunk_bytes=0)
    assert not tmp_log.with_suffix(".x").exists()


def test_writer_stats_and_flush(tmp_log: Path) -> None:
    w = LogWriter.create(tmp_log, make_header(), chunk_bytes=1000)
    start = w.bytes_written
    assert start == tmp_log.stat().st_size
    assert w.position == Cursor(start, 0)
    w.flush()  # nothing buffered: nothing written
    assert (w.chunks_written, w.bytes_written) == (0, start)
    w.append(1, 1, b"abc")
    w.append(2, 1, b"abc")
    assert (w.events_written, w.events_buffered, w.position) == (0, 2, Cursor(start, 2))
    assert tmp_log.stat().st_size == start
    w.flush()
    assert (w.events_written, w.events_buffered, w.chunks_written) == (2, 0, 1)
    assert w.bytes_written == tmp_log.stat().st_size == start + 24 + 2 * 6
    assert w.position == Cursor(w.bytes_written, 0)
    w.append(3, 7, b"x" * 1000)  # reaches chunk_bytes: written at once
    assert (w.events_written, w.chunks_written) == (3, 2)
    w.close(3, b"bye")
    assert (w.events_written, w.chunks_written) == (4, 3)
    assert w.bytes_written == tmp_log.stat().st_size
    with pytest.raises(ValueError, match="closed"):
        w.close(3)


def test_one_event_per_chunk_when_chunk_bytes_is_1(tmp_log: Path) -> None:
    events = sample_events(12)
    write_log(tmp_log, events, chunk_bytes=1, end=(events[-1][0], b""))
    with LogReader.open(tmp_log) as r:
        assert r.summary().chunks == 13


@pytest.mark.parametrize("how", ["no-close", "exception"])
def test_leaving_the_with_block_without_close(tmp_log: Path, how: str) -> None:
    events = sample_events(30)

    def record() -> None:
        with LogWriter.create(tmp_log, make_header(), chunk_bytes=100) as w:
            for e in events:
                w.append(*e)
            assert w.events_buffered > 0
            if how == "exception":
                raise RuntimeError("recorder failed")

    if how == "exception":
        with pytest.raises(RuntimeError):
            record()
    else:
        record()
    read, reader = read_all(tmp_log)
    assert triples(read) == events
    assert not reader.clean_end
    assert reader.truncated_at == tmp_log.stat().st_size


# -- truncation and damage ----------------------------------------------------------


def _layout(path: Path) -> tuple[int, list[tuple[int, int]], list[Event]]:
    """(offset of the first chunk, [(chunk offset, chunk end)], events) of a sound log."""
    with LogReader.open(path) as r:
        events = list(r)
        first = r.first_chunk_offset
    offsets = sorted({e.cursor.chunk_offset for e in events})
    ends = [*offsets[1:], path.stat().st_size]
    return first, list(zip(offsets, ends, strict=True)), events


def test_truncation_at_every_offset(tmp_path: Path) -> None:
    full = tmp_path / "full.rrlog"
    write_log(full, sample_events(40), chunk_bytes=48, end=(10**6, b"the end"))
    data = full.read_bytes()
    first, chunks, events = _layout(full)
    assert len(chunks) >= 8
    cut_path = tmp_path / "cut.rrlog"
    for cut in range(len(data)):
        cut_path.write_bytes(data[:cut])
        if cut < first:
            with pytest.raises(LogFormatError, match=str(cut_path)):
                LogReader.open(cut_path)
            continue
        read, reader = read_all(cut_path)
        complete = {off for off, end in chunks if end <= cut}
        assert read == [e for e in events if e.cursor.chunk_offset in complete], cut
        assert not reader.clean_end
        assert reader.truncated_at == min(off for off, end in chunks if end > cut)
        with LogReader.open(cut_path) as again:
            summary = again.summary()
        assert summary.events == len(read)
        assert summary.truncated_at == reader.truncated_at
        assert summary.readable_bytes == reader.truncated_at
        assert summary.end_icount is None


def test_a_flipped_byte_ends_the_readable_log_at_its_chunk(tmp_path: Path) -> None:
    full = tmp_path / "full.rrlog"
    write_log(full, sample_events(30), chunk_bytes=48, end=(10**6, b"the end"))
    data = full.read_bytes()
    first, chunks, events = _layout(full)
    bad = tmp_path / "bad.rrlog"
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 1 << (pos % 8)
        bad.write_bytes(damaged)
        if pos < first:
            with pytest.raises(LogFormatError, match=str(bad)):
                LogReader.open(bad)
            continue
        hit = next(off for off, end in chunks if off <= pos < end)
        read, reader = read_all(bad)
        assert read == [e for e in events if e.cursor.chunk_offset < hit], pos
        assert (reader.clean_end, reader.truncated_at) == (False, hit)


def test_bytes_after_end_are_ignored(tmp_log: Path) -> None:
    events = sample_events(5)
    write_log(tmp_log, events, end=(events[-1][0], b"end"))
    size = tmp_log.stat().st_size
    with tmp_log.open("ab") as f:
        f.write(b"RRCK garbage after the end")
    read, reader = read_all(tmp_log)
    assert triples(read)[:-1] == events
    assert reader.clean_end
    with LogReader.open(tmp_log) as r:
        s = r.summary()
    assert (s.readable_bytes, s.trailing_bytes, s.truncated_at) == (size, 26, None)


def test_chunk_valid_crc_but_bad_encoding_is_rejected(tmp_path: Path) -> None:
    """Structure is checked after the CRC: a hand-made chunk with a sound CRC."""
    base = tmp_path / "base.rrlog"
    write_log(base, [(1, 1, b"a")], chunk_bytes=1)
    good = base.read_bytes()

    def with_chunk(payload: bytes, first: int, count: int, name: str) -> Path:
        fields = struct.pack("<I", len(payload)), struct.pack("<QI", first, count)
        crc = crc32c(fields[0] + fields[1] + payload)
        path = tmp_path / name
        path.write_bytes(
            good + CHUNK_MAGIC + fields[0] + struct.pack("<I", crc) + fields[1] + payload
        )
        return path

    cases = {
        "count-too-high": (b"\x00\x01\x00", 5, 2),
        "count-zero": (b"", 5, 0),
        "trailing-bytes": (b"\x00\x01\x00\x00", 5, 1),
        "first-delta-not-zero": (b"\x01\x01\x00", 5, 1),
        "icount-goes-back": (b"\x00\x01\x00", 0, 1),
        "end-not-last": (b"\x00\x00\x00\x00\x01\x00", 5, 2),
        "payload-past-end": (b"\x00\x01\x05ab", 5, 1),
        "varint-too-long": (b"\x00\x01\x00" + b"\xff" * 11 + b"\x01", 5, 2),
        "icount-overflow": (b"\x00\x01\x00\x02\x01\x00", (1 << 64) - 1, 2),
    }
    for name, (payload, first, count) in cases.items():
        path = with_chunk(payload, first, count, name)
        read, reader = read_all(path)
        assert triples(read) == [(1, 1, b"a")], name
        assert reader.truncated_at == len(good), name
    ok = with_chunk(b"\x00\x01\x00\x80\x01\x02\x00", 5, 2, "ok")  # delta 128: two-byte varint
    read, _ = read_all(ok)
    assert triples(read) == [(1, 1, b"a"), (5, 1, b""), (133, 2, b"")]


@settings(max_examples=500, deadline=None)
@given(
    data=st.data(),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
    tail=st.binary(max_size=40),
)
def test_any_damage_gives_a_prefix_or_log_format_error(
    scratch: Path,
    data: st.DataObject,
    flips: list[tuple[int, int]],
    cut: int | None,
    tail: bytes,
) -> None:
    events = sample_events(20)
    original = fresh(scratch)
    write_log(original, events, chunk_bytes=40, end=(10**6, b"end"))
    raw = bytearray(original.read_bytes())
    for pos, mask in flips:
        raw[pos % len(raw)] ^= mask
    if cut is not None:
        del raw[cut % (len(raw) + 1) :]
    raw += tail
    damaged = fresh(scratch)
    damaged.write_bytes(raw)
    expected = [*events, (10**6, KIND_END, b"end")]
    try:
        reader = LogReader.open(damaged)
    except LogFormatError as exc:
        error = str(exc)
        assert error.startswith(f"{damaged}: ")
        return
    with reader as r:
        read = list(r)
        assert triples(read) == expected[: len(read)]
        assert r.clean_end == (len(read) == len(expected))
        assert r.clean_end or r.truncated_at is not None
        summary = r.summary()
        assert summary.events == len(read)
        if read:
            i = data.draw(st.integers(0, len(read) - 1))
            r.seek(read[i].cursor)
            assert list(r) == read[i:]
        blob = data.draw(st.binary(min_size=12, max_size=12))
        try:
            r.seek(Cursor.from_bytes(blob))
        except LogFormatError:
            pass
        else:
            assert all(e in read for e in r)


# -- SIGKILL ---------------------------------------------------------------------------

_RECORDER = """
import sys
from rrdbg.record.log import LogHeader, LogWriter

header = LogHeader("0", "0", "cpu", "/p", 0, bytes(32), (), "img", 1, 0)
writer = LogWriter.create(sys.argv[1], header, chunk_bytes=64)
i = 0
while True:
    writer.append(i // 3, 1 + i % 255, i.to_bytes(4, "little") * (i % 7))
    i += 1
    if i % 100 == 0:
        writer.flush()
        print(i, flush=True)
"""


def _recorded(i: int) -> Triple:
    return (i // 3, 1 + i % 255, i.to_bytes(4, "little") * (i % 7))


def test_sigkilled_recorder_leaves_every_completed_chunk(tmp_log: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _RECORDER, str(tmp_log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    flushed = 0
    try:
        while flushed < 5000:
            line = proc.stdout.readline()
            assert line, proc.stderr.read().decode() if proc.stderr else ""
            flushed = int(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    read, reader = read_all(tmp_log)
    assert len(read) >= flushed
    assert triples(read) == [_recorded(i) for i in range(len(read))]
    assert not reader.clean_end
    assert reader.truncated_at is not None
    with LogReader.open(tmp_log) as r:
        summary = r.summary()
    assert summary.events == len(read)
    assert summary.readable_bytes == reader.truncated_at


# -- header ----------------------------------------------------------------------------


def test_header_round_trip_with_odd_strings_and_bytes(tmp_log: Path) -> None:
    header = make_header(
        program_path="/home/zoë/プログラム/" + os.fsdecode(b"raw\xff\xfe"),
        argv=(b"", b"\x00\xff\x80 arg", "ünïcode".encode(), bytes(range(256))),
        snapshot_image="/abs/imäge.qcow2",
        extra={"": "", "clé": "valeur\x00with nul", "k": "ü" * 1000},
        created_ns=-5,
        program_size=0,
    )
    write_log(tmp_log, [], header=header, end=(0, b""))
    with LogReader.open(tmp_log) as r:
        assert r.header == header
        assert os.fsencode(r.header.program_path).endswith(b"raw\xff\xfe")
        assert r.flags == 0


@settings(max_examples=100, deadline=None)
@given(
    strings=st.lists(st.text(max_size=30), min_size=5, max_size=5),
    argv=st.lists(st.binary(max_size=30), max_size=6),
    ints=st.tuples(st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 64) - 1)),
    created=st.integers(-(1 << 63), (1 << 63) - 1),
    sha=st.binary(min_size=32, max_size=32),
    extra=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5),
)
def test_header_round_trip_hypothesis(
    scratch: Path,
    strings: list[str],
    argv: list[bytes],
    ints: tuple[int, int],
    created: int,
    sha: bytes,
    extra: dict[str, str],
) -> None:
    header = LogHeader(
        rrdbg_version=strings[0],
        unicorn_version=strings[1],
        cpu_model=strings[2],
        program_path=strings[3],
        program_size=ints[0],
        program_sha256=sha,
        argv=tuple(argv),
        snapshot_image=strings[4],
        snapshot_interval=ints[1],
        created_ns=created,
        extra=extra,
    )
    assert LogHeader.from_bytes(header.to_bytes()) == header
    path = fresh(scratch)
    write_log(path, [(1, 2, b"x")], header=header, end=(1, b""))
    with LogReader.open(path) as r:
        assert r.header == header


def test_header_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        make_header(program_sha256=b"short")
    with pytest.raises(ValueError, match="program_size"):
        make_header(program_size=-1)
    with pytest.raises(ValueError, match="snapshot_interval"):
        make_header(snapshot_interval=1 << 64)
    with pytest.raises(ValueError, match="created_ns"):
        make_header(created_ns=1 << 63)
    with pytest.raises(ValueError, match="surrogate"):
        make_header(cpu_model="\ud800")


def test_header_copies_its_mutable_inputs() -> None:
    extra = {"a": "b"}
    header = make_header(extra=extra, argv=[b"x"])
    extra["a"] = "changed"
    assert header.extra == {"a": "b"}
    assert header.argv == (b"x",)


def _raw_log(tlv: bytes, *, version: int = 1, flags: int = 0) -> bytes:
    preamble = MAGIC + struct.pack("<HHI", version, flags, len(tlv) + 4)
    return preamble + tlv + struct.pack("<I", crc32c(preamble + tlv))


def test_open_rejects_bad_preambles(tmp_log: Path) -> None:
    good = _raw_log(make_header().to_bytes())
    cases: list[tuple[bytes, str]] = [
        (b"", "truncated at offset 0"),
        (b"RRDBG", "truncated at offset 5"),
        (b"ELF\x7f" + good[4:], "not an rrdbg replay log"),
        (b"#!/bin/sh\necho hi\n", "not an rrdbg replay log"),
        (good[:14], "truncated at offset 14"),
        (_raw_log(make_header().to_bytes(), version=2), "format version 2, this rrdbg reads 1"),
        (good[:8] + struct.pack("<H", 0) + good[10:], "format version 0, this rrdbg reads 1"),
        (good[:-1], f"truncated at offset {len(good) - 1}"),
        (good[:12] + struct.pack("<I", 2) + good[16:], "header at offset 12"),
        (good[:20] + bytes([good[20] ^ 4]) + good[21:], "CRC mismatch .*offset 16"),
        (good[:-1] + bytes([good[-1] ^ 1]), "CRC mismatch"),
        (_raw_log(make_header().to_bytes(), flags=0x0100), "flags 0x0100"),
        (_raw_log(make_header().to_bytes()[:-3]), "malformed replay log header"),
        (_raw_log(b""), "header field 1 is missing"),
        (_raw_log(make_header().to_bytes() * 2), "duplicate"),
        (_raw_log(struct.pack("<HI", 5, 3) + b"abc"), "has length 3"),
    ]
    for blob, message in cases:
        tmp_log.write_bytes(blob)
        with pytest.raises(LogFormatError, match=message) as info:
            LogReader.open(tmp_log)
        assert str(info.value).startswith(f"{tmp_log}: "), message
    with pytest.raises(LogFormatError, match="cannot open"):
        LogReader.open(tmp_log.with_suffix(".missing"))


def test_open_accepts_compatible_flags_and_unknown_tags(tmp_log: Path) -> None:
    tlv = struct.pack("<HI", 999, 2) + b"zz" + make_header().to_bytes()
    tmp_log.write_bytes(_raw_log(tlv, flags=0x0001))
    with LogReader.open(tmp_log) as r:
        assert r.header == make_header()
        assert r.flags == 1
        assert r.next() is None
        assert (r.clean_end, r.truncated_at) == (False, len(tmp_log.read_bytes()))


# -- seek and cursors ------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    events=event_lists.filter(bool),
    chunk_bytes=st.integers(1, 300),
    data=st.data(),
)
def test_seek_returns_the_same_events(
    scratch: Path, events: list[Triple], chunk_bytes: int, data: st.DataObject
) -> None:
    path = fresh(scratch)
    write_log(path, events, chunk_bytes=chunk_bytes, end=(events[-1][0], b"end"))
    with LogReader.open(path) as r:
        # Part-way through, remember cursors; then jump around.
        stop = data.draw(st.integers(0, len(events)))
        seen: list[Event] = []
        while len(seen) < stop and (event := r.next()) is not None:
            seen.append(event)
        all_events = seen + list(r)
        assert triples(all_events) == [*events, (events[-1][0], KIND_END, b"end")]
        for _ in range(5):
            i = data.draw(st.integers(0, len(all_events) - 1))
            cursor = Cursor.from_bytes(all_events[i].cursor.to_bytes())
            r.seek(cursor)
            assert r.position == cursor
            k = data.draw(st.integers(0, len(all_events) - i))
            assert [r.next() for _ in range(k)] == all_events[i : i + k]
        end = Cursor(path.stat().st_size, 0)
        r.seek(end)
        assert r.next() is None
        assert r.position == end
        r.rewind()
        assert list(r) == all_events
    with LogReader.open(path) as cold:  # straight to the last event of a fresh reader
        cold.seek(all_events[-1].cursor)
        assert cold.next() == all_events[-1]
        assert cold.clean_end


def test_seek_accepts_the_end_of_a_chunk_and_rejects_bogus_cursors(tmp_log: Path) -> None:
    events = sample_events(20)
    write_log(tmp_log, events, chunk_bytes=40, end=(10**6, b""))
    with LogReader.open(tmp_log) as r:
        read = list(r)
        by_chunk: dict[int, list[Event]] = {}
        for e in read:
            by_chunk.setdefault(e.cursor.chunk_offset, []).append(e)
        offsets = sorted(by_chunk)
        # (chunk, count) is the place just before the next chunk's first event.
        r.seek(Cursor(offsets[0], len(by_chunk[offsets[0]])))
        assert r.next() == by_chunk[offsets[1]][0]
        size = tmp_log.stat().st_size
        for bogus in [
            Cursor(offsets[0] + 1, 0),
            Cursor(offsets[0], len(by_chunk[offsets[0]]) + 1),
            Cursor(size + 100, 0),
            Cursor(size, 1),
            Cursor(0, 0),
        ]:
            with pytest.raises(LogFormatError, match="no event at"):
                r.seek(bogus)
        with pytest.raises(LogFormatError, match="12 bytes"):
            Cursor.from_bytes(b"short")
    assert Cursor(1, 2).to_bytes() == struct.pack("<QI", 1, 2)
    assert len(Cursor(1 << 63, 7).to_bytes()) == Cursor.SIZE
    assert Cursor(1, 5) < Cursor(2, 0)


def test_seek_beyond_a_damaged_chunk_is_refused(tmp_log: Path) -> None:
    events = sample_events(30)
    write_log(tmp_log, events, chunk_bytes=40, end=(10**6, b""))
    _, chunks, read = _layout(tmp_log)
    data = bytearray(tmp_log.read_bytes())
    damaged_offset = chunks[3][0]
    data[damaged_offset + 30] ^= 0x40
    tmp_log.unlink()
    tmp_log.write_bytes(data)
    with LogReader.open(tmp_log) as r:
        with pytest.raises(LogFormatError, match="no event at"):
            r.seek(read[-1].cursor)
        assert r.truncated_at == damaged_offset
        r.seek(Cursor(damaged_offset, 0))  # the end of the readable log
        assert r.next() is None
        r.seek(read[0].cursor)
        assert len(list(r)) == sum(1 for e in read if e.cursor.chunk_offset < damaged_offset)


def test_writer_positions_are_seekable_after_a_flush(tmp_log: Path) -> None:
    """A snapshot's cursor taken just before a flush names the right place."""
    with LogWriter.create(tmp_log, make_header(), chunk_bytes=10_000) as w:
        w.append(1, 1, b"a")
        w.append(2, 1, b"b")
        saved = w.position  # (chunk, 2): after the flush, the chunk has 2 events
        w.flush()
        w.append(3, 1, b"c")
        w.close(3)
    with LogReader.open(tmp_log) as r:
        r.seek(saved)
        nxt = r.next()
        assert nxt is not None
        assert (nxt.icount, nxt.payload) == (3, b"c")


@given(data=st.binary(max_size=5000), seed=st.integers(0, 0xFFFFFFFF))
def test_native_crc32c_matches_python(data: bytes, seed: int) -> None:
    from rrdbg.record.log import py_crc32c

    native = pytest.importorskip("rrdbg.record._crc32c")
    assert native.crc32c(data, seed) == py_crc32c(data, seed)
    assert native.crc32c(b"123456789") == 0xE3069283
