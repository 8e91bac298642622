"""Every signal through gdb 13, forwards and backwards, on a live ``rrdbg
debug`` session: the sequence of gdb's own gdb.reverse/sigall-reverse.exp,
driven through one gdb/MI-less console session.

For each signal in turn: ``handle SIG stop print``, breakpoints on its
handler and on the next generator; ``continue`` must stop with "Program
received signal SIG..." before delivery, ``continue`` must reach the handler,
``signal 0`` must reach the next generator.  After the last one the program
runs to its end, which stops at the last state before the exit; then,
backwards for every signal, ``reverse-continue`` must reach its handler, the
next one the signal's delivery ("Program received signal", outside the
handler), the next one its generator.  Names Linux does not have (SIGEMT,
...) call their handlers directly, as the .exp's program does.

tests/test_gdb_testsuite.py runs the .exp itself under DejaGnu where gdb's
source can be downloaded; this is the same sequence and expectations for
machines without it (signals 32 and 33 are left out: glibc keeps them).
"""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import guest
from tests.server.gdbrun import GDB, needs_gdb

pytestmark = needs_gdb
SIGALL = guest("sigall")

ORDER = [
    "ABRT", "HUP", "QUIT", "ILL", "EMT", "FPE", "BUS", "SEGV", "SYS", "PIPE", "ALRM",
    "URG", "TSTP", "CONT", "CHLD", "TTIN", "TTOU", "IO", "XCPU", "XFSZ", "VTALRM",
    "PROF", "WINCH", "LOST", "USR1", "USR2", "PWR", "POLL", "WIND", "PHONE", "WAITING",
    "LWP", "DANGER", "GRANT", "RETRACT", "MSG", "SOUND", "SAK", "PRIO",
    *[str(n) for n in range(34, 64)],
    "TERM",
]  # fmt: skip
#: Signals Linux delivers (SIGPOLL is SIGIO, already in the list).
DELIVERED = {
    "ABRT", "HUP", "QUIT", "ILL", "FPE", "BUS", "SEGV", "SYS", "PIPE", "ALRM", "URG",
    "TSTP", "CONT", "CHLD", "TTIN", "TTOU", "IO", "XCPU", "XFSZ", "VTALRM", "PROF",
    "WINCH", "USR1", "USR2", "PWR", "TERM", *[str(n) for n in range(34, 64)],
}  # fmt: skip


def gdb_name(sig: str) -> str:
    return f"SIG{sig}"


def test_every_signal_forwards_then_backwards() -> None:
    assert GDB is not None
    marker = "@@@"
    script = ["set pagination off", "set confirm off", "break gen_ABRT", "continue"]
    steps: list[tuple[str, str]] = []  # (what, expected regex) per marker

    def expect(command: str, what: str, pattern: str) -> None:
        script.append(f"echo {marker}{len(steps)}\\n")
        script.append(command)
        steps.append((what, pattern))

    for this, nxt in zip(ORDER, [*ORDER[1:], None], strict=True):
        name = gdb_name(this)
        script.append(f"handle {name} stop print")
        script.append(f"break handle_{this}")
        if nxt is None:
            break
        script.append(f"break gen_{nxt}")
        if this in DELIVERED:
            expect("continue", f"get signal {this}", rf"Program received signal {name}\b")
        expect("continue", f"send signal {this}", rf"Breakpoint \d+, handle_{this} ")
        expect("signal 0", f"advance to {nxt}", rf"Breakpoint \d+, gen_{nxt} ")
    expect("continue", "get signal TERM", r"Program received signal SIGTERM\b")
    expect("continue", "send signal TERM", r"Breakpoint \d+, handle_TERM ")
    # The end of the program is a stop (the last state before exit_group),
    # so history stays for going back, as record full's does.
    expect("continue", "continue to signal exit", r"No more reverse-execution history")
    for sig in reversed(ORDER):
        expect(
            "reverse-continue", f"reverse to handler of {sig}", rf"Breakpoint \d+, handle_{sig} "
        )
        if sig in DELIVERED:
            # Going back, the delivery is a stop too (as with record full),
            # before the handler's frame exists.
            expect(
                "reverse-continue",
                f"reverse to signal event, {sig}",
                rf"Program received signal {gdb_name(sig)}\b",
            )
            expect("frame", f"reverse signal {sig} delivered", rf"!handle_{sig}")
        expect("reverse-continue", f"reverse to gen_{sig}", rf"Breakpoint \d+, gen_{sig} ")
    server = f"{sys.executable} -m rrdbg debug --gdb stdio {SIGALL}"
    argv = [GDB, "-nx", "-batch", "-ex", f"target remote | {server}"]
    for command in script:
        argv += ["-ex", command]
    proc = subprocess.run(
        [*argv, SIGALL],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    text = proc.stdout + proc.stderr
    parts = re.split(rf"{marker}(\d+)\n", text)
    outputs: dict[int, str] = {}
    for i in range(1, len(parts) - 1, 2):
        outputs[int(parts[i])] = parts[i + 1]
    failures = [
        f"{what}: {outputs.get(n, '<no output>')[-300:]!r}"
        for n, (what, pattern) in enumerate(steps)
        if not _matches(pattern, outputs.get(n))
    ]
    checks = len(steps)
    assert checks > 250
    assert not failures, f"{len(failures)} of {checks} checks failed:\n" + "\n".join(failures[:20])


def _matches(pattern: str, output: str | None) -> bool:
    """``!REGEX``: the output must not match (but must exist)."""
    if output is None:
        return False
    if pattern.startswith("!"):
        return re.search(pattern[1:], output) is None
    return re.search(pattern, output) is not None
