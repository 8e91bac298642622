"""Signals as Linux delivers them on i386: state, frames and sigreturn.

Role: the kernel objects of signal handling for one task: dispositions
(``struct sigaction``), the blocked mask, the pending queue (one entry per
standard signal, every instance of a real-time one, each with its 128-byte
siginfo), the alternate stack and the timers that raise signals.  ``deliver``
builds the i386 ``sigframe`` or ``rt_sigframe`` (siginfo, ucontext, the
``fpstate`` with the x87/SSE registers) as ``arch/x86/kernel/signal_32.c``
does, and ``sigreturn`` takes it down again.

Invariants: everything here is state a snapshot saves (``to_json``); nothing
reads the host.  A signal is taken only between instructions, where the
machine asks for it; delivering one counts as one instruction (the kernel's
entry), so the state before delivery and the handler's first instruction
are two icounts and stepping backwards out of a handler lands on the
interrupted instruction.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Protocol

# Dispositions and flags (uapi/asm-generic/signal-defs.h, asm/signal.h).
SIG_DFL, SIG_IGN = 0, 1
SA_SIGINFO = 0x4
SA_RESTORER = 0x04000000
SA_ONSTACK = 0x08000000
SA_RESTART = 0x10000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000
SS_ONSTACK, SS_DISABLE, SS_AUTODISARM = 1, 2, 1 << 31
MINSIGSTKSZ = 2048

SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE = 1, 2, 3, 4, 5, 6, 7, 8
SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM = 9, 10, 11, 12, 13, 14, 15
SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG = 17, 18, 19, 20, 21, 22, 23
SIGVTALRM, SIGPROF, SIGWINCH, SIGSYS = 26, 27, 28, 31
NSIG = 64

#: Default action "ignore" (and "continue", which is ignoring for one task).
DEFAULT_IGNORE = frozenset({SIGCHLD, SIGCONT, SIGURG, SIGWINCH})
#: Default action "stop": nobody here could continue the process, so these are
#: taken as ignored (documented in docs/machine.md).
DEFAULT_STOP = frozenset({SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU})
#: Synchronous signals are dequeued first (kernel next_signal).
SYNCHRONOUS = (SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGSYS)
UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))
_MASK64 = (1 << 64) - 1

# siginfo si_code values.
SI_USER, SI_KERNEL, SI_TIMER, SI_TKILL = 0, 0x80, -2, -6

# Frame layouts (arch/x86/include/asm/sigframe.h; linux-abi.md 2.4).
SIGCONTEXT_SIZE = 88
FPSTATE_SIZE = 624  # 112-byte FSAVE header + 512-byte FXSAVE image
_SIGFRAME_SIZE = 732
_RT_SIGFRAME_SIZE = 268
_RETCODE = bytes.fromhex("58b877000000cd80")  # popl %eax; movl $119,%eax; int $0x80
_RT_RETCODE = bytes.fromhex("b8ad000000cd8000")  # movl $173,%eax; int $0x80
#: EFLAGS bits sigreturn takes from the frame (FIX_EFLAGS).
FIX_EFLAGS = 0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000
_EFLAGS_CLEAR_ON_ENTRY = 0x400 | 0x100 | 0x10000  # DF, TF, RF

#: sigcontext register order after the four segment words (gs, fs, es, ds).
_SC_REGS = ("edi", "esi", "ebp", "esp", "ebx", "edx", "ecx", "eax")


class CpuAccess(Protocol):
    """What delivery needs from the CPU (the machine provides it)."""

    def get_regs(self) -> dict[str, int]:
        """eax..edi, esp, ebp, eip, eflags, cs, ss, ds, es, fs, gs."""

    def set_regs(self, regs: dict[str, int]) -> None: ...

    def fpu_save(self) -> bytes:
        """The 512-byte FXSAVE image of the x87/SSE state."""

    def fpu_restore(self, image: bytes) -> None: ...

    def fpu_reset(self) -> None:
        """FNINIT state and MXCSR 0x1F80, as on handler entry."""


class Memory(Protocol):
    def read(self, addr: int, size: int) -> bytes: ...

    def write(self, addr: int, data: bytes) -> None: ...


def bit(sig: int) -> int:
    return 1 << (sig - 1)


@dataclass(frozen=True, slots=True)
class SigAction:
    """A kernel ``struct sigaction`` (rt_sigaction's 20-byte layout)."""

    handler: int = SIG_DFL
    flags: int = 0
    restorer: int = 0
    mask: int = 0

    @classmethod
    def decode(cls, raw: bytes) -> SigAction:
        handler, flags, restorer, mask = struct.unpack("<IIIQ", raw[:20])
        return cls(handler, flags, restorer, mask)

    def encode(self) -> bytes:
        return struct.pack("<IIIQ", self.handler, self.flags, self.restorer, self.mask & _MASK64)


def siginfo(sig: int, code: int, *words: int) -> bytes:
    """A 128-byte siginfo: signo, errno 0, code, then the union's words."""
    head = struct.pack("<iii", sig, 0, code)
    body = b"".join(struct.pack("<I", w & 0xFFFFFFFF) for w in words)
    return (head + body).ljust(128, b"\0")


@dataclass(slots=True)
class Timer:
    """An interval timer or POSIX timer on virtual time.

    ``clock`` "real": ``deadline`` is in virtual nanoseconds (sleeps count);
    "cpu": in instructions the process ran (1 ns each).  ``deadline`` 0 is
    disarmed.  ``notify`` is SIGEV_SIGNAL (0) or SIGEV_NONE (1)."""

    clock: str
    signo: int
    deadline: int = 0
    interval: int = 0
    value: int = 0
    notify: int = 0
    overrun: int = 0
    #: The expiry's siginfo is still queued (later expiries only count overruns).
    queued: bool = False

    def to_json(self) -> list[Any]:
        return [
            self.clock,
            self.signo,
            self.deadline,
            self.interval,
            self.value,
            self.notify,
            self.overrun,
            self.queued,
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> Timer:
        clock, signo, deadline, interval, value, notify, overrun, queued = data
        return cls(
            str(clock),
            int(signo),
            int(deadline),
            int(interval),
            int(value),
            int(notify),
            int(overrun),
            bool(queued),
        )


#: Timer ids of the three interval timers (POSIX timers count from 0).
ITIMER_IDS = {0: -1, 1: -2, 2: -3}  # REAL, VIRTUAL, PROF


@dataclass(slots=True)
class SignalState:
    """Per-task signal state (saved in snapshots; the process's timers are
    saved beside it, under the same key, by LinuxState)."""

    #: Pending signals in arrival order: (signal, siginfo); a fault's entry
    #: has its trapno, error code and cr2 after the 128 bytes of siginfo.
    queue: list[tuple[int, bytes]] = field(default_factory=list)
    #: sigaltstack: (ss_sp, ss_flags, ss_size).
    altstack: tuple[int, int, int] = (0, SS_DISABLE, 0)
    #: The mask to restore after the handler of a sigsuspend/pselect (else None).
    saved_mask: int | None = None
    #: The syscall a signal just interrupted (Linux's -ERESTARTSYS), 0 if
    #: none: it returns EINTR if a handler without SA_RESTART runs, and is
    #: made again when one with SA_RESTART runs or no handler does.
    restart: int = 0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "queue": [[s, i.hex()] for s, i in self.queue],
            "altstack": list(self.altstack),
            "saved_mask": self.saved_mask,
        }
        if self.restart:
            data["restart"] = self.restart
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SignalState:
        if not data:
            return cls()
        sp, flags, size = data["altstack"]
        saved = data.get("saved_mask")
        return cls(
            queue=[(int(s), bytes.fromhex(i)) for s, i in data["queue"]],
            altstack=(int(sp), int(flags), int(size)),
            saved_mask=None if saved is None else int(saved),
            restart=int(data.get("restart", 0)),
        )

    def pending_mask(self) -> int:
        mask = 0
        for sig, _ in self.queue:
            mask |= bit(sig)
        return mask

    def enqueue(self, sig: int, info: bytes) -> bool:
        """Queue ``sig``; a standard signal already pending is not queued twice."""
        if sig < 32 and any(s == sig for s, _ in self.queue):
            return False
        self.queue.append((sig, info))
        return True

    def take(self, blocked: int) -> tuple[int, bytes] | None:
        """Dequeue the signal Linux takes next: synchronous first, then the
        lowest number; real-time instances in arrival order."""
        ready = [s for s, _ in self.queue if not bit(s) & blocked]
        if not ready:
            return None
        sync = [s for s in ready if s in SYNCHRONOUS]
        sig = min(sync) if sync else min(ready)
        for i, (s, info) in enumerate(self.queue):
            if s == sig:
                del self.queue[i]
                return s, info
        raise AssertionError("unreachable")

    def take_signal(self, sig: int) -> bytes | None:
        for i, (s, info) in enumerate(self.queue):
            if s == sig:
                del self.queue[i]
                return info
        return None

    def discard(self, sig: int) -> None:
        self.queue = [(s, i) for s, i in self.queue if s != sig]

    def on_altstack(self, esp: int) -> bool:
        sp, flags, size = self.altstack
        return not flags & SS_DISABLE and sp < esp <= sp + size


def _sigcontext(
    regs: dict[str, int], fpstate: int, mask: int, trapno: int, err: int, cr2: int
) -> bytes:
    return struct.pack(
        "<4I8I2I3I2I3I",
        regs["gs"] & 0xFFFF,
        regs["fs"] & 0xFFFF,
        regs["es"] & 0xFFFF,
        regs["ds"] & 0xFFFF,
        *(regs[r] for r in _SC_REGS),
        trapno,
        err,
        regs["eip"],
        regs["cs"] & 0xFFFF,
        regs["eflags"],
        regs["esp"],  # esp_at_signal
        regs["ss"] & 0xFFFF,
        fpstate,
        mask & 0xFFFFFFFF,
        cr2,
    )


def _fpstate(fxsave: bytes) -> bytes:
    """The i386 ``_fpstate_32``: an FSAVE-format header (from the FXSAVE
    image), magic 0 ("FXSR data follows"), then the FXSAVE image itself."""
    fcw, fsw, ftw_abridged, _fop, fip, fcs, fdp, fds = struct.unpack_from("<HHBxHIHxxIHxx", fxsave)
    top = (fsw >> 11) & 7
    tag = 0
    for phys in range(8):
        if not ftw_abridged & (1 << phys):
            tag |= 3 << (2 * phys)  # empty
        # valid/zero/special are not told apart here: 0 (valid) for all used
    header = struct.pack("<7I", fcw, fsw, tag, fip, fcs, fdp, fds)
    st = b"".join(fxsave[32 + 16 * i : 32 + 16 * i + 10] for i in range(8))
    del top
    return header + st + struct.pack("<HH", fsw, 0) + fxsave


def frame_layout(esp: int, rt: bool, altstack_top: int | None) -> tuple[int, int]:
    """(frame, fpstate) addresses as ``get_sigframe`` places them."""
    sp = esp if altstack_top is None else altstack_top
    sp = (sp - 512) & ~63  # the FXSAVE image, 64-byte aligned
    sp -= 112  # the FSAVE header before it
    fpstate = sp
    size = _RT_SIGFRAME_SIZE if rt else _SIGFRAME_SIZE
    sp = ((sp - size + 4) & ~15) - 4
    return sp, fpstate


@dataclass(frozen=True, slots=True)
class Entry:
    """A handler's entry: where its frame went and what it starts with."""

    frame: int
    regs: dict[str, int]


def build_frame(
    mem: Memory,
    cpu: CpuAccess,
    sig: int,
    info: bytes,
    action: SigAction,
    saved_mask: int,
    state: SignalState,
    *,
    trapno: int = 0,
    err: int = 0,
    cr2: int = 0,
) -> Entry:
    """Write the signal frame for ``sig`` and return the handler's registers.

    Raises GuestMemoryError if the frame cannot be written (the caller then
    kills the process with SIGSEGV, as ``force_sigsegv`` does)."""
    regs = cpu.get_regs()
    rt = bool(action.flags & SA_SIGINFO)
    alt_top = None
    sp, ss_flags, ss_size = state.altstack
    if (
        action.flags & SA_ONSTACK
        and not ss_flags & SS_DISABLE
        and not state.on_altstack(regs["esp"])
    ):
        alt_top = sp + ss_size
    frame, fpstate = frame_layout(regs["esp"], rt, alt_top)
    mem.write(fpstate, _fpstate(cpu.fpu_save()))
    sc = _sigcontext(regs, fpstate, saved_mask, trapno, err, cr2)
    if rt:
        restorer = action.restorer if action.flags & SA_RESTORER else frame + 260
        on_alt = state.on_altstack(regs["esp"])
        uc_stack = struct.pack(
            "<IiI", sp, (SS_ONSTACK if on_alt else 0) | (ss_flags & SS_DISABLE), ss_size
        )
        ucontext = (
            struct.pack("<II", 0, 0) + uc_stack + sc + struct.pack("<Q", saved_mask & _MASK64)
        )
        data = (
            struct.pack("<IIII", restorer, sig, frame + 16, frame + 144)
            + info
            + ucontext
            + _RT_RETCODE
        )
        assert len(data) == _RT_SIGFRAME_SIZE
    else:
        restorer = action.restorer if action.flags & SA_RESTORER else frame + 724
        data = (
            struct.pack("<II", restorer, sig)
            + sc
            + bytes(FPSTATE_SIZE)
            + struct.pack("<I", (saved_mask >> 32) & 0xFFFFFFFF)
            + _RETCODE
        )
        assert len(data) == _SIGFRAME_SIZE
    mem.write(frame, data)
    entry = dict(regs)
    entry.update(
        esp=frame,
        eip=action.handler,
        eax=sig,
        edx=frame + 16 if rt else 0,
        ecx=frame + 144 if rt else 0,
        eflags=regs["eflags"] & ~_EFLAGS_CLEAR_ON_ENTRY,
    )
    return Entry(frame, entry)


@dataclass(frozen=True, slots=True)
class Restored:
    """What a sigreturn brings back."""

    regs: dict[str, int]
    mask: int
    fxsave: bytes | None
    altstack: tuple[int, int, int] | None


def read_frame(mem: Memory, esp: int, current: dict[str, int], rt: bool) -> Restored:
    """Take down the frame a handler returned through: ``sigreturn`` finds
    it at esp - 8 (the restorer popped ``sig``), ``rt_sigreturn`` at esp - 4."""
    if rt:
        frame = (esp - 4) & 0xFFFFFFFF
        uc = frame + 144
        sc = mem.read(uc + 20, SIGCONTEXT_SIZE)
        (mask,) = struct.unpack("<Q", mem.read(uc + 108, 8))
        ss_sp, ss_flags, ss_size = struct.unpack("<IiI", mem.read(uc + 8, 12))
        altstack: tuple[int, int, int] | None = (ss_sp, ss_flags & SS_DISABLE, ss_size)
    else:
        frame = (esp - 8) & 0xFFFFFFFF
        sc = mem.read(frame + 8, SIGCONTEXT_SIZE)
        (high,) = struct.unpack("<I", mem.read(frame + 720, 4))
        mask = struct.unpack_from("<I", sc, 80)[0] | (high << 32)
        altstack = None
    words = struct.unpack("<22I", sc)
    regs = dict(current)
    regs.update(
        gs=words[0] & 0xFFFF,
        fs=words[1] & 0xFFFF,
        es=words[2] & 0xFFFF,
        ds=words[3] & 0xFFFF,
        **{name: words[4 + i] for i, name in enumerate(_SC_REGS)},
    )
    regs["eip"] = words[14]
    regs["eflags"] = (current["eflags"] & ~FIX_EFLAGS) | (words[16] & FIX_EFLAGS)
    fpstate = words[19]
    fxsave = mem.read(fpstate + 112, 512) if fpstate else None
    return Restored(regs, mask & ~UNBLOCKABLE & _MASK64, fxsave, altstack)
