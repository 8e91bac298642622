"""Regenerate the generated sections of docs/rsp.md from rrdbg/rsp.

Usage: python tools/gen_packet_docs.py [--check]

The packet table comes from ``rrdbg.rsp.table.PACKETS`` and the reply examples
from ``rrdbg.rsp.replies.encode_reply``, so the documentation cannot drift from
the code.  Each section lives between ``<!-- BEGIN name -->`` and
``<!-- END name -->`` markers; everything else in the file is left alone.  With
``--check`` nothing is written and the exit status is 1 if the file is stale
(tests/rsp/test_docs.py runs this).
"""

from __future__ import annotations

import dataclasses
import enum
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrdbg.rsp import (  # noqa: E402 - the path must be set up first
    ALL,
    PACKETS,
    ConsoleOutput,
    Empty,
    ErrorReply,
    Exited,
    HexData,
    HwBreak,
    Ok,
    ReplayLog,
    Reply,
    StopReply,
    SwBreak,
    Terminated,
    Watch,
    WatchKind,
    XferChunk,
    encode_reply,
)
from rrdbg.rsp.connection import DEFAULT_CAPABILITIES, DEFAULT_PACKET_SIZE  # noqa: E402
from rrdbg.rsp.table import supported_features  # noqa: E402

DOC = ROOT / "docs" / "rsp.md"

REPLY_EXAMPLES: list[tuple[Reply, str]] = [
    (Ok(), "success"),
    (Empty(), "not supported (unknown packets, vMustReplyEmpty)"),
    (ErrorReply(0x0E), "failure; the value is an errno-like code"),
    (HexData(b"\x90\x90\xcc\xc3"), "memory, registers"),
    (XferChunk(b"<target>", last=False), "qXfer data, more follows"),
    (XferChunk(b"</target>", last=True), "qXfer data, last chunk"),
    (StopReply(5), "stopped (SIGTRAP) after a step or at a plain stop"),
    (StopReply(2), "stopped by an interrupt (SIGINT)"),
    (StopReply(5, reason=SwBreak()), "software breakpoint"),
    (StopReply(5, reason=HwBreak()), "hardware breakpoint"),
    (StopReply(5, reason=Watch(WatchKind.WRITE, 0x2000)), "write watchpoint at 0x2000"),
    (StopReply(5, reason=Watch(WatchKind.READ, 0x2000)), "read watchpoint"),
    (StopReply(5, reason=Watch(WatchKind.ACCESS, 0x2000)), "access watchpoint"),
    (StopReply(5, reason=ReplayLog(begin=True)), "reverse execution hit the start of history"),
    (StopReply(5, reason=ReplayLog(begin=False)), "forward replay hit the end of the recording"),
    (Exited(0), "the program exited with status 0"),
    (Terminated(11), "the program was killed by SIGSEGV"),
    (ConsoleOutput(b"hi\n"), "console output (before a stop reply or a qRcmd answer)"),
]


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def packet_table() -> str:
    rows = [
        "| Packet | Request | Capability | Stop reply | Advertises | Notes |",
        "|---|---|---|---|---|---|",
    ]
    for spec in PACKETS:
        rows.append(
            "| "
            + " | ".join(
                [
                    _code(spec.syntax.replace(", ", "`, `")),
                    _code(spec.request.__name__),
                    spec.capability.name if spec.capability else "",
                    "yes" if spec.stop_reply else "",
                    _code(spec.feature.decode() if spec.feature else ""),
                    spec.notes,
                ]
            )
            + " |"
        )
    default = supported_features(DEFAULT_CAPABILITIES, DEFAULT_PACKET_SIZE).decode()
    full = supported_features(ALL, DEFAULT_PACKET_SIZE).decode()
    rows += [
        "",
        "`qSupported` reply with the default capabilities (everything but `REVERSE`):",
        "",
        f"    {default}",
        "",
        "and with every capability:",
        "",
        f"    {full}",
    ]
    return "\n".join(rows)


def _value(name: str, value: object) -> str:
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, int) and name == "address":
        return hex(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _construct(value)
    return repr(value)


def _construct(value: object) -> str:
    """``value`` as a short constructor call: fields at their default are left out, the
    first field is positional unless it is a flag."""
    assert dataclasses.is_dataclass(value)
    assert not isinstance(value, type)
    args: list[str] = []
    for field in dataclasses.fields(value):
        current = getattr(value, field.name)
        if current == field.default:
            continue
        text = _value(field.name, current)
        keyword = bool(args) or isinstance(current, bool)
        args.append(f"{field.name}={text}" if keyword else text)
    return f"{type(value).__name__}({', '.join(args)})"


def reply_table() -> str:
    rows = ["| Reply | Payload | Meaning |", "|---|---|---|"]
    for reply, meaning in REPLY_EXAMPLES:
        payload = encode_reply(reply).decode("ascii")
        rows.append(f"| `{_construct(reply)}` | {_code(payload) or '(empty)'} | {meaning} |")
    return "\n".join(rows)


SECTIONS = {"packet-table": packet_table, "reply-table": reply_table}


def render(text: str) -> str:
    """``text`` with every generated section replaced by its current contents."""
    for name, make in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- BEGIN {name} [^\n]*-->\n)(?:.*?\n)?(<!-- END {name} -->)", re.DOTALL
        )
        if pattern.search(text) is None:
            raise SystemExit(f"{DOC}: markers for {name} not found")
        body = make()

        def replace(match: re.Match[str], body: str = body) -> str:
            return f"{match.group(1)}{body}\n{match.group(2)}"

        text = pattern.sub(replace, text)
    return text


def main(argv: list[str]) -> int:
    current = DOC.read_text()
    updated = render(current)
    if "--check" in argv:
        if updated != current:
            print(f"{DOC} is out of date: run python tools/gen_packet_docs.py", file=sys.stderr)
            return 1
        return 0
    if updated != current:
        DOC.write_text(updated)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
