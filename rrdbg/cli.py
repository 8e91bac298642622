"""The ``rrdbg`` command line.

Every failure a user can cause (bad arguments, bad program file, guest
faults) ends with one ``rrdbg: ...`` line on stderr and a non-zero status;
a traceback means a bug in rrdbg.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rrdbg import __version__
from rrdbg.errors import RrdbgError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"rrdbg: {message} (see 'rrdbg --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rrdbg",
        description="Record, replay and reverse-debug emulated i386 programs.",
    )
    parser.add_argument("--version", action="version", version=f"rrdbg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = sub.add_parser(
        "run",
        help="run a static i386 Linux program under emulation",
        description="Run a static ELF32 i386 Linux program under emulation, "
        "with its stdin/stdout/stderr and exit status passed through.",
    )
    run.add_argument("--stdin", metavar="FILE", help="read the guest's stdin from FILE")
    run.add_argument(
        "--icount",
        action="store_true",
        help="print the number of guest instructions executed to stderr at the end",
    )
    run.add_argument("program", metavar="PROGRAM", nargs="?")
    run.add_argument("args", metavar="ARG", nargs=argparse.REMAINDER)
    return parser


def _cmd_run(ns: argparse.Namespace) -> int:
    from rrdbg.machine.cpu import signal_name
    from rrdbg.machine.host import LiveHost
    from rrdbg.machine.machine import LinuxMachine

    try:
        host = LiveHost(stdin_path=ns.stdin)
    except OSError as exc:
        raise RrdbgError(f"cannot open --stdin file {ns.stdin}: {exc.strerror}") from None
    try:
        machine = LinuxMachine(ns.program, [ns.program, *ns.args], host)
        result = machine.run_to_end()
    finally:
        host.shutdown()
    if result.fault is not None:
        sys.stdout.flush()
        print(f"rrdbg: {result.fault.describe()}", file=sys.stderr)
    elif result.exit.signal is not None:
        print(f"rrdbg: guest killed by {signal_name(result.exit.signal)}", file=sys.stderr)
    if ns.icount:
        print(f"rrdbg: {result.icount} instructions", file=sys.stderr)
    return result.exit.shell_status


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if ns.command == "run" and ns.program is None:
        parser.error("the following arguments are required: PROGRAM")
    try:
        if ns.command == "run":
            return _cmd_run(ns)
    except RrdbgError as exc:
        print(f"rrdbg: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rrdbg: interrupted", file=sys.stderr)
        return 130
    raise AssertionError(ns.command)
