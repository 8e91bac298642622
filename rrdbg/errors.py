"""The exception hierarchy: every error rrdbg raises derives from RrdbgError.

Third-party exceptions (UcError, ELFError, struct.error, OSError from the host)
are converted at one wrapper per dependency, so callers only ever catch these.
"""

from __future__ import annotations


class RrdbgError(Exception):
    """Root of all rrdbg errors. The message is one line meant for a user."""


class LoaderError(RrdbgError):
    """The program file cannot be loaded (missing, not ELF, wrong kind)."""


class EmulatorError(RrdbgError):
    """Unicorn refused an operation that rrdbg expected to succeed (a bug or a limit)."""


class GuestMemoryError(RrdbgError):
    """A guest address range is not mapped or not accessible."""

    def __init__(self, message: str, address: int) -> None:
        super().__init__(message)
        self.address = address


class SnapshotFormatError(RrdbgError):
    """A qcow2 image or a vmstate blob is malformed or uses unsupported features."""


class LogFormatError(RrdbgError):
    """A replay log is malformed, truncated in its header, or from another version."""


class ReplayDivergence(RrdbgError):
    """Replay asked the host for something the recording did not answer."""


class ProtocolError(RrdbgError):
    """A GDB remote-protocol violation: bytes or a packet that cannot be accepted."""


class RemoteProtocolError(ProtocolError):
    """The client sent something malformed (a bad packet, a bad argument)."""


class LocalProtocolError(ProtocolError):
    """rrdbg tried to send something the protocol does not allow (a bug)."""


class TargetError(RrdbgError):
    """A debugger request the target refuses; ``errno`` becomes an ``Exx`` reply."""

    def __init__(self, message: str, errno: int = 1) -> None:
        super().__init__(message)
        self.errno = errno
