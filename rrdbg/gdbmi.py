"""A small gdb/MI (``--interpreter=mi3``) client: a record parser and a driver.

Role: what the pytest plugin's gdb fixture and the IDE tests use to drive a
real gdb the way IDE adapters do (VS Code Native Debug, cppdbg, ...).  Written
here rather than taken from pygdbmi: the MI output grammar is small, and a
driver that matches each command's result record by its token and waits for
``*stopped`` explicitly (no timeouts guessing when output ends, pygdbmi #66,
#33) is what tests need.

- ``parse_record(line)`` is pure: one line of MI output to a ``MiRecord``
  (result, async exec/status/notify, console/target/log stream, or the
  ``(gdb)`` prompt).  Values are ``str``, ``dict`` (tuples) and ``list``
  (lists; a list of ``name=value`` results becomes a list of one-key dicts).
- ``Gdb`` runs ``gdb --interpreter=mi3 -nx -q`` as a subprocess; a reader
  thread parses its output into a queue.  Every command carries a token;
  ``command()`` returns its ``^done``/``^running``/``^connected`` record or
  raises ``GdbError`` with gdb's message; ``wait_stopped()`` returns the next
  ``*stopped`` record.  Helpers mirror the debugger verbs (``break_at``,
  ``cont``, ``reverse_cont``, ``stepi``, ``reverse_stepi``, ``eval``, ...).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rrdbg.errors import RrdbgError

#: How long a single gdb operation may take before the driver gives up.
DEFAULT_TIMEOUT = 60.0
#: What gdb says when a replay target reaches either end of its history.
NO_HISTORY = "No more reverse-execution history."

_KINDS = {
    "^": "result",
    "*": "exec",
    "+": "status",
    "=": "notify",
    "~": "console",
    "@": "target",
    "&": "log",
}


class MiParseError(RrdbgError):
    """A line that is not gdb/MI output."""


class GdbError(RrdbgError):
    """gdb answered a command with ``^error`` (the message is gdb's), or went away."""


@dataclass(frozen=True, slots=True)
class MiRecord:
    """One line of MI output."""

    #: result, exec, status, notify, console, target, log or prompt.
    kind: str
    #: The command token (result and async records), else None.
    token: int | None = None
    #: done/running/connected/error/exit, stopped/running, breakpoint-modified ...
    cls: str = ""
    results: dict[str, Any] = field(default_factory=dict)
    #: The text of a stream record.
    text: str = ""


def parse_record(line: str) -> MiRecord:
    """Parse one line of gdb/MI output (without its newline)."""
    line = line.rstrip("\r\n")
    if line.strip() == "(gdb)":
        return MiRecord("prompt")
    i = 0
    while i < len(line) and line[i].isdigit():
        i += 1
    token = int(line[:i]) if i else None
    if i >= len(line) or line[i] not in _KINDS:
        raise MiParseError(f"not a gdb/MI record: {line[:80]!r}")
    kind = _KINDS[line[i]]
    parser = _Parser(line, i + 1)
    if kind in ("console", "target", "log"):
        if token is not None:
            raise MiParseError(f"not a gdb/MI record (a stream has no token): {line[:80]!r}")
        text = parser.cstring()
        parser.end()
        return MiRecord(kind, text=text)
    cls = parser.word()
    results: dict[str, Any] = {}
    while parser.more():
        parser.expect(",")
        name, value = parser.result()
        results[name] = value
    return MiRecord(kind, token, cls, results)


class _Parser:
    """Recursive descent over the MI value grammar (tuples, lists, c-strings)."""

    def __init__(self, text: str, pos: int) -> None:
        self.text = text
        self.pos = pos

    def more(self) -> bool:
        return self.pos < len(self.text)

    def end(self) -> None:
        if self.more():
            self.fail("trailing characters")

    def fail(self, why: str) -> None:
        raise MiParseError(f"bad gdb/MI output ({why} at column {self.pos}): {self.text[:80]!r}")

    def expect(self, char: str) -> None:
        if self.text[self.pos : self.pos + 1] != char:
            self.fail(f"expected {char!r}")
        self.pos += 1

    def word(self) -> str:
        start = self.pos
        while self.more() and (self.text[self.pos].isalnum() or self.text[self.pos] in "-_"):
            self.pos += 1
        if start == self.pos:
            self.fail("expected a name")
        return self.text[start : self.pos]

    def result(self) -> tuple[str, Any]:
        name = self.word()
        self.expect("=")
        return name, self.value()

    def value(self) -> Any:
        c = self.text[self.pos : self.pos + 1]
        if c == '"':
            return self.cstring()
        if c == "{":
            self.pos += 1
            out: dict[str, Any] = {}
            if self.text[self.pos : self.pos + 1] == "}":
                self.pos += 1
                return out
            while True:
                name, value = self.result()
                out[name] = value
                if self.text[self.pos : self.pos + 1] == "}":
                    self.pos += 1
                    return out
                self.expect(",")
        if c == "[":
            self.pos += 1
            items: list[Any] = []
            if self.text[self.pos : self.pos + 1] == "]":
                self.pos += 1
                return items
            while True:
                if self.text[self.pos : self.pos + 1] in ('"', "{", "["):
                    items.append(self.value())
                else:
                    name, value = self.result()
                    items.append({name: value})
                if self.text[self.pos : self.pos + 1] == "]":
                    self.pos += 1
                    return items
                self.expect(",")
        self.fail("expected a value")
        raise AssertionError  # unreachable

    def cstring(self) -> str:
        self.expect('"')
        out: list[str] = []
        text = self.text
        while True:
            if not self.more():
                self.fail("unterminated string")
            c = text[self.pos]
            self.pos += 1
            if c == '"':
                return "".join(out)
            if c != "\\":
                out.append(c)
                continue
            if not self.more():
                self.fail("unterminated escape")
            e = text[self.pos]
            self.pos += 1
            simple = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a"}
            simple |= {"b": "\b", "f": "\f", "v": "\v", "e": "\x1b"}
            if e in simple:
                out.append(simple[e])
            elif e in "01234567":
                digits = e
                while len(digits) < 3 and self.more() and text[self.pos] in "01234567":
                    digits += text[self.pos]
                    self.pos += 1
                out.append(chr(int(digits, 8)))
            else:
                out.append(e)


def quote(text: str) -> str:
    """``text`` as an MI c-string argument."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@dataclass(frozen=True, slots=True)
class Stop:
    """A ``*stopped`` record, with the fields tests look at first."""

    #: breakpoint-hit, end-stepping-range, function-finished, no-history,
    #: watchpoint-trigger, signal-received, exited-normally, exited, ...
    reason: str
    #: The ``frame`` tuple (func, addr, file, line, ...) or {} after an exit.
    frame: dict[str, Any]
    results: dict[str, Any]

    @property
    def func(self) -> str:
        return str(self.frame.get("func", ""))

    @property
    def line(self) -> int | None:
        line = self.frame.get("line")
        return int(line) if line is not None else None

    @property
    def pc(self) -> int:
        return int(self.frame.get("addr", "0"), 16)


class Gdb:
    """A gdb process driven through MI (see the module docstring)."""

    def __init__(
        self,
        program: str | None = None,
        *,
        gdb: str = "gdb",
        args: Sequence[str] = (),
        timeout: float = DEFAULT_TIMEOUT,
        cwd: str | None = None,
    ) -> None:
        argv = [gdb, "--interpreter=mi3", "-nx", "-q", *args]
        if program is not None:
            argv.append(program)
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**os.environ, "LC_ALL": "C"},
                text=True,
                bufsize=1,
                cwd=cwd,
            )
        except OSError as exc:
            raise GdbError(f"cannot start {gdb}: {exc.strerror}") from None
        self.timeout = timeout
        self._token = 0
        self._queue: queue.Queue[MiRecord | None] = queue.Queue()
        #: Every record read so far, in order (console output included).
        self.transcript: list[MiRecord] = []
        self._pending: list[MiRecord] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.command("-gdb-set pagination off")
        self.command("-gdb-set confirm off")

    # -- plumbing --------------------------------------------------------
    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                record = parse_record(line)
            except MiParseError:
                # The debuggee's own output (a local run) is not MI: keep it.
                record = MiRecord("target", text=line)
            self._queue.put(record)
        self._queue.put(None)

    def _next(self, timeout: float) -> MiRecord:
        try:
            record = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise GdbError(f"gdb did not answer within {timeout:g} s") from None
        if record is None:
            self._queue.put(None)  # stays closed for later readers
            raise GdbError(f"gdb exited (status {self.proc.wait()})")
        self.transcript.append(record)
        return record

    def command(self, text: str, *, timeout: float | None = None) -> MiRecord:
        """Send an MI command; its result record (``^error`` raises GdbError).
        Async records that arrive meanwhile are kept for ``wait_stopped``."""
        self._token += 1
        token = self._token
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(f"{token}{text}\n")
            self.proc.stdin.flush()
        except OSError:
            raise GdbError("gdb exited") from None
        limit = self.timeout if timeout is None else timeout
        while True:
            record = self._next(limit)
            if record.kind == "result" and record.token == token:
                if record.cls == "error":
                    raise GdbError(str(record.results.get("msg", "gdb error")))
                return record
            if record.kind in ("exec", "notify", "status"):
                self._pending.append(record)

    def wait_stopped(self, *, timeout: float | None = None) -> Stop:
        """The next ``*stopped`` record (one that came already, or wait)."""
        limit = self.timeout if timeout is None else timeout
        while True:
            while self._pending:
                record = self._pending.pop(0)
                if record.kind == "exec" and record.cls == "stopped":
                    r = record.results
                    reason = str(r.get("reason", ""))
                    if not reason and self._said_no_history(record):
                        # gdb 13 gives this stop no reason in MI and says it
                        # only on the console stream ("No more ...").
                        reason = "no-history"
                    return Stop(reason, dict(r.get("frame", {})), r)
            record = self._next(limit)
            if record.kind in ("exec", "notify", "status"):
                self._pending.append(record)

    def _said_no_history(self, stopped: MiRecord) -> bool:
        """Whether the console said "No more reverse-execution history." since
        the last ``*running`` before ``stopped``."""
        i = len(self.transcript) - 1
        while i >= 0 and self.transcript[i] is not stopped:
            i -= 1
        for record in reversed(self.transcript[:i]):
            if record.kind == "exec" and record.cls == "running":
                return False
            if record.kind == "console" and NO_HISTORY in record.text:
                return True
        return False

    def console(self, text: str) -> str:
        """Run a CLI command (as IDE consoles do with ``-exec``); its console output."""
        start = len(self.transcript)
        self.command(f"-interpreter-exec console {quote(text)}")
        # A monitor command's output comes as the target's ("@") stream.
        return "".join(r.text for r in self.transcript[start:] if r.kind in ("console", "target"))

    def resume(self, command: str) -> Stop:
        """An ``-exec-*`` command and the stop it leads to."""
        # A stop reported before this command (the one after connecting, say)
        # is not this command's.
        self._pending = [r for r in self._pending if not (r.kind == "exec" and r.cls == "stopped")]
        self.command(command)
        return self.wait_stopped()

    def close(self) -> None:
        """Detach (if connected) and end gdb."""
        if self.proc.poll() is None:
            with contextlib.suppress(GdbError):  # it may exit before answering
                self.command("-gdb-exit", timeout=10)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Gdb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the verbs ---------------------------------------------------------
    def connect(self, address: str) -> None:
        """``-target-select remote ADDRESS`` (as Native Debug and cppdbg attach);
        then, for a program that names its sources relative to its build
        directory (rrdbg's bundled guests), tell gdb where they are."""
        self.command(f"-target-select remote {address}")
        try:
            info = self.monitor("info rrdbg")
        except GdbError:
            return  # not rrdbg
        found = re.search(r"^sources: (.+)$", info, re.MULTILINE)
        if found is not None:
            self.command(f"-environment-directory {quote(found.group(1))}")

    def break_at(self, location: str) -> int:
        """A breakpoint at a function, ``file:line`` or ``*address``; its number."""
        record = self.command(f"-break-insert {location}")
        return int(record.results["bkpt"]["number"])

    def watch(self, expression: str, kind: str = "write") -> int:
        """A watchpoint (write, read or access); its number."""
        flag = {"write": "", "read": "-r ", "access": "-a "}[kind]
        record = self.command(f"-break-watch {flag}{expression}")
        for key in ("wpt", "hw-rwpt", "hw-awpt"):
            if key in record.results:
                return int(record.results[key]["number"])
        raise GdbError(f"no watchpoint number in {record.results}")

    def delete(self, *numbers: int) -> None:
        """Delete breakpoints (all of them with no argument)."""
        if numbers:
            self.command("-break-delete " + " ".join(str(n) for n in numbers))
        else:
            self.console("delete")

    def cont(self) -> Stop:
        return self.resume("-exec-continue")

    def reverse_cont(self) -> Stop:
        return self.resume("-exec-continue --reverse")

    def step(self) -> Stop:
        return self.resume("-exec-step")

    def reverse_step(self) -> Stop:
        return self.resume("-exec-step --reverse")

    def next(self) -> Stop:
        return self.resume("-exec-next")

    def reverse_next(self) -> Stop:
        return self.resume("-exec-next --reverse")

    def stepi(self) -> Stop:
        return self.resume("-exec-step-instruction")

    def reverse_stepi(self) -> Stop:
        return self.resume("-exec-step-instruction --reverse")

    def finish(self) -> Stop:
        return self.resume("-exec-finish")

    def reverse_finish(self) -> Stop:
        return self.resume("-exec-finish --reverse")

    def eval(self, expression: str) -> str:
        """``-data-evaluate-expression``: the value as gdb prints it."""
        record = self.command(f"-data-evaluate-expression {quote(expression)}")
        return str(record.results["value"])

    def monitor(self, command: str) -> str:
        """A ``monitor`` command's output; rrdbg's ``rrdbg: error:`` line (a
        failed command, which the protocol reports as console text) raises
        GdbError."""
        out = self.console(f"monitor {command}")
        for line in out.splitlines():
            if line.startswith("rrdbg: error: "):
                raise GdbError(line[len("rrdbg: error: ") :])
        return out

    def when(self) -> int:
        """The current instruction count (``monitor when``)."""
        return parse_when(self.monitor("when"))

    def seek(self, icount: int) -> None:
        """Go to an instruction count (``monitor replay_seek``), and make gdb
        read the registers there again."""
        self.monitor(f"replay_seek {icount}")
        self.console("maintenance flush register-cache")


def parse_when(text: str) -> int:
    """The icount in ``monitor when``'s answer (``Current icount: N``)."""
    match = re.search(r"Current icount: (\d+)", text)
    if match is None:
        raise RrdbgError(f"not an answer of 'monitor when': {text.strip()!r}")
    return int(match.group(1))
