"""The one wrapper around Unicorn: every call into the emulator goes through here.

Role: open a pinned i386 engine, and expose the small set of Unicorn calls
rrdbg uses with Unicorn's exceptions converted to ``EmulatorError``.  Guest
faults are not errors at this level: ``start()`` returns Unicorn's error code
so the CPU layer can turn it into a guest signal.

Invariants: the Unicorn version and CPU model are fixed (instruction counts,
and so recordings, depend on both); no other module imports ``unicorn``
except ``cpu``/``icount`` for constants.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import unicorn
from unicorn import unicorn_const as ucc
from unicorn import x86_const as x86
from unicorn.unicorn_py3 import unicorn as _ucmod

from rrdbg.errors import EmulatorError

#: The Unicorn release rrdbg is built and measured on (docs/machine.md).
PINNED_UNICORN = "2.1.1"
#: The CPU models a machine can emulate, by the names recordings keep.  glibc
#: picks its string routines from CPUID, so the model is part of what makes
#: an instruction count reproducible: a recording replays with its own.
CPU_MODELS: dict[str, int] = {
    "qemu64": x86.UC_CPU_X86_QEMU64,
    "nehalem": x86.UC_CPU_X86_NEHALEM,
    "westmere": x86.UC_CPU_X86_WESTMERE,
    "sandybridge": x86.UC_CPU_X86_SANDYBRIDGE,
    "haswell": x86.UC_CPU_X86_HASWELL,
    "skylake-client": x86.UC_CPU_X86_SKYLAKE_CLIENT,
}
_UCLIB = _ucmod.uclib
EMU_STOP_ADDRESS: int = ctypes.cast(_UCLIB.uc_emu_stop, ctypes.c_void_p).value or 0

#: Signature of a raw block hook (uc, address, size, user_data).
BLOCK_HOOK_CFUNC = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_void_p
)
#: Signature of a TLB fill hook (uc, vaddr, uc_mem_type, uc_tlb_entry *, user_data) -> found.
TLB_FILL_CFUNC = ctypes.CFUNCTYPE(
    ctypes.c_bool, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p
)
#: uc_ctl's encoding of "write" (UC_CTL_WRITE(type, nr)) and of one argument.
_CTL_WRITE = 1 << 30
_CTL_ONE_ARGUMENT = 1 << 26
#: Unicorn's buffer for translated code (its default is 1 GiB).  QEMU never
#: reclaims the space of dropped translations, only a whole flush does, so
#: without one this grows with every re-translation; rrdbg flushes it
#: itself well before it fills (Cpu.maybe_flush_translations): Unicorn
#: 2.1.1's own flush of a full buffer, in the middle of a run, leaves state
#: that later crashes it.  A flush also zeroes the whole buffer, which is
#: then resident: this is the bound on the memory of translated code.
TCG_BUFFER_BYTES = 128 << 20
#: Signature of an interrupt hook (uc, intno, user_data).
INTR_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
#: Signature of an x86 ``in`` instruction hook (uc, port, size, user_data) -> value.
PORT_IN_CFUNC = ctypes.CFUNCTYPE(
    ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_void_p
)


@functools.cache
def patch_level() -> int:
    """Which of rrdbg's CPU patches (third_party/unicorn) the Unicorn library
    carries: 0 for a stock library (it has no ``uc_rrdbg_patchlevel``).  The
    library is loaded once per process, so the answer is kept."""
    getter = getattr(_UCLIB, "uc_rrdbg_patchlevel", None)
    if getter is None:
        return 0
    getter.restype = ctypes.c_uint
    getter.argtypes = []
    return int(getter())


#: Models whose CPUID advertises RDRAND.  The stock library's RDRAND returns
#: the host's random numbers, which no hook sees and a replay cannot repeat;
#: rrdbg's build hides RDRAND (third_party/unicorn/0006-no-rdrand.patch).
RDRAND_MODELS = frozenset({"haswell", "skylake-client"})
#: The model new machines (and recordings) use: the most capable one whose
#: every advertised feature matches the host CPU in tools/difftest.py
#: (docs/machine.md); with a stock Unicorn, whose SSE, MMX and BMI differ and
#: whose RDRAND would not replay, the plain qemu64.
CPU_MODEL_NAME = "skylake-client" if patch_level() else "qemu64"
CPU_MODEL = CPU_MODELS[CPU_MODEL_NAME]


def cpu_model_id(name: str) -> int:
    """Unicorn's id of a model ``CPU_MODELS`` names (EmulatorError if none,
    or if this library cannot emulate it reproducibly)."""
    try:
        model = int(CPU_MODELS[name])
    except KeyError:
        known = ", ".join(CPU_MODELS)
        raise EmulatorError(f"unknown CPU model {name!r} (known: {known})") from None
    if name in RDRAND_MODELS and not patch_level():
        raise EmulatorError(
            f"CPU model {name} needs rrdbg's Unicorn build (tools/build_unicorn.sh): "
            "this stock Unicorn's RDRAND returns the host's random numbers, "
            "which a replay cannot repeat"
        )
    return model


def unicorn_version() -> str:
    """The Unicorn library's version, from ``uc_version``: ``2.1.1`` for the
    stock library, ``2.1.1+rrdbg.N`` for one built by tools/build_unicorn.sh
    with rrdbg's patches at level N (its CPU differs, so recordings and
    snapshots name it).

    Not the Python binding's ``__version__``: the 2.1.1 wheel's binding says
    ``2.1.0``."""
    combined = int(unicorn.uc_version()[2])
    base = f"{combined >> 24}.{(combined >> 16) & 0xFF}.{(combined >> 8) & 0xFF}"
    level = patch_level()
    return f"{base}+rrdbg.{level}" if level else base


def is_this_unicorn(recorded: str) -> bool:
    """Whether a recording's Unicorn version is this one.  Recordings made
    before rrdbg named the library's version carry the binding's label
    (those were all made with the stock library)."""
    if recorded == unicorn_version():
        return True
    return patch_level() == 0 and recorded == getattr(unicorn, "__version__", "")


@contextmanager
def converted() -> Iterator[None]:
    """Turn a ``UcError`` raised inside the block into an ``EmulatorError``."""
    try:
        yield
    except unicorn.UcError as exc:
        raise EmulatorError(f"emulator error: {exc}") from None


class Engine:
    """A Unicorn i386 (32-bit mode) engine with errors converted."""

    def __init__(self, model: str = CPU_MODEL_NAME) -> None:
        model_id = cpu_model_id(model)
        #: The CPU model's name (a key of CPU_MODELS).
        self.model = model
        with converted():
            self.uc = unicorn.Uc(ucc.UC_ARCH_X86, ucc.UC_MODE_32)
            # Before anything initialises the TCG context: the code buffer's
            # size bounds the memory translated code can take (see flush_tb).
            status = _UCLIB.uc_ctl(
                self.uc._uch,
                ucc.UC_CTL_TCG_BUFFER_SIZE | _CTL_WRITE | _CTL_ONE_ARGUMENT,
                ctypes.c_uint32(TCG_BUFFER_BYTES),
            )
            if status != ucc.UC_ERR_OK:
                raise EmulatorError(f"cannot size the code buffer: {self.strerror(status)}")
            self.uc.ctl_set_cpu_model(model_id)
        self._handle = self.uc._uch
        # ctypes callbacks must outlive their registration.
        self._keep: list[Any] = []
        self._reg_buf = (ctypes.c_uint64 * 2)()
        self._reg_ptr = ctypes.addressof(self._reg_buf)

    # -- execution -----------------------------------------------------
    def start(self, begin: int) -> int:
        """Run from ``begin`` until something stops the engine.

        Returns Unicorn's error code (0 = clean stop).  Exits are always
        enabled, so there is no "until" address.
        """
        status: int = _UCLIB.uc_emu_start(self._handle, begin, 0, 0, 0)
        exc = self.uc._hook_exception
        if exc is not None:
            # A Python hook raised: the binding stopped the engine for us.
            self.uc._hook_exception = None
            raise exc
        return status

    def stop(self) -> None:
        _UCLIB.uc_emu_stop(self._handle)

    def fail_from_hook(self, exc: BaseException) -> None:
        """Have ``start`` raise ``exc`` once the run ends (a hook's error; the
        caller arranges the stop, since a memory hook must not call
        ``emu_stop``, unicorn.md G4)."""
        self.uc._hook_exception = exc

    @staticmethod
    def strerror(status: int) -> str:
        text: bytes = _UCLIB.uc_strerror(status)
        return text.decode("ascii", "replace")

    # -- registers -----------------------------------------------------
    # reg_read/reg_write call the library directly: the binding's generic
    # path (register classes, ctypes objects per call) costs about 4 us a
    # call, and every syscall writes EAX.  Integer registers only (at most
    # 8 bytes; the buffer has room for 16): the others go through *_any.
    def reg_read(self, reg: int) -> int:
        buf = self._reg_buf
        buf[0] = buf[1] = 0
        status = _UCLIB.uc_reg_read(self._handle, reg, self._reg_ptr)
        if status != ucc.UC_ERR_OK:
            raise EmulatorError(f"cannot read register {reg}: {self.strerror(status)}")
        return int(buf[0])

    def reg_write(self, reg: int, value: int) -> None:
        buf = self._reg_buf
        buf[0] = value & 0xFFFFFFFFFFFFFFFF
        buf[1] = 0
        status = _UCLIB.uc_reg_write(self._handle, reg, self._reg_ptr)
        if status != ucc.UC_ERR_OK:
            raise EmulatorError(f"cannot write register {reg}: {self.strerror(status)}")

    def batch_reader(self, regs: Sequence[int]) -> Callable[[], list[int]]:
        """A fast reader of several 32-bit registers (used on every syscall)."""
        count = len(regs)
        ids = (ctypes.c_int * count)(*regs)
        vals = (ctypes.c_uint64 * count)()
        ptrs = (ctypes.c_void_p * count)(*(ctypes.addressof(vals) + 8 * i for i in range(count)))
        fn = _UCLIB.uc_reg_read_batch
        handle = self._handle

        def read() -> list[int]:
            status = fn(handle, ids, ptrs, count)
            if status != ucc.UC_ERR_OK:
                raise EmulatorError(f"cannot read registers: {self.strerror(status)}")
            return [v & 0xFFFFFFFF for v in vals]

        return read

    def raw_batch_reader(self, regs: Sequence[int], size: int = 16) -> Callable[[], bytes]:
        """A reader of several registers of any kind in one library call.

        Returns the concatenated raw values, ``size`` bytes per register
        (Unicorn writes each value at the start of its slot: 4 bytes for a
        32-bit register, mantissa + exponent for x87, 16 bytes for XMM).
        """
        count = len(regs)
        ids = (ctypes.c_int * count)(*regs)
        buf = ctypes.create_string_buffer(size * count)
        base = ctypes.addressof(buf)
        ptrs = (ctypes.c_void_p * count)(*(base + size * i for i in range(count)))
        fn = _UCLIB.uc_reg_read_batch
        handle = self._handle

        def read() -> bytes:
            ctypes.memset(base, 0, size * count)
            status = fn(handle, ids, ptrs, count)
            if status != ucc.UC_ERR_OK:
                raise EmulatorError(f"cannot read registers: {self.strerror(status)}")
            return buf.raw

        return read

    def reg_read_any(self, reg: int) -> Any:
        with converted():
            return self.uc.reg_read(reg)

    def reg_write_any(self, reg: int, value: Any) -> None:
        with converted():
            self.uc.reg_write(reg, value)

    def msr_write(self, msr: int, value: int) -> None:
        with converted():
            self.uc.msr_write(msr, value)

    # -- memory --------------------------------------------------------
    def mem_map_ptr(self, address: int, size: int, perms: int, ptr: int) -> None:
        with converted():
            self.uc.mem_map_ptr(address, size, perms, ptr)

    def mem_unmap(self, address: int, size: int) -> None:
        with converted():
            self.uc.mem_unmap(address, size)

    def mem_protect(self, address: int, size: int, perms: int) -> None:
        with converted():
            self.uc.mem_protect(address, size, perms)

    # -- CPU context ---------------------------------------------------
    _scratch_context: Any = None

    def _scratch(self) -> tuple[Any, int, int]:
        """One context buffer reused for every save and restore (a thread
        switch makes one of each: allocating a context each time cost more
        than copying it)."""
        if self._scratch_context is None:
            with converted():
                self._scratch_context = self.uc.context_save()
        ctx = self._scratch_context
        address = ctypes.cast(ctx.context, ctypes.c_void_p).value or 0
        return ctx.context, address, int(ctx.size)

    def context_bytes(self) -> bytes:
        """The raw CPU context (what ``uc_context_save`` stores)."""
        handle, address, size = self._scratch()
        status = _UCLIB.uc_context_save(self._handle, handle)
        if status != ucc.UC_ERR_OK:
            raise EmulatorError(f"cannot save the CPU context: {self.strerror(status)}")
        return ctypes.string_at(address, size)

    def restore_context_bytes(self, blob: bytes) -> None:
        """Load a CPU context saved with ``context_bytes`` (same Unicorn build)."""
        handle, address, size = self._scratch()
        if len(blob) != size:
            raise EmulatorError(f"CPU context is {len(blob)} bytes, this Unicorn uses {size}")
        ctypes.memmove(address, blob, size)
        status = _UCLIB.uc_context_restore(self._handle, handle)
        if status != ucc.UC_ERR_OK:
            raise EmulatorError(f"cannot restore the CPU context: {self.strerror(status)}")

    def _context(self, blob: bytes) -> Any:
        ctx = self.uc.context_save()
        if len(blob) != ctx.size:
            raise EmulatorError(f"CPU context is {len(blob)} bytes, this Unicorn uses {ctx.size}")
        address = ctypes.cast(ctx.context, ctypes.c_void_p).value or 0
        ctypes.memmove(address, blob, len(blob))
        return ctx

    def context_read(self, blob: bytes, regs: Sequence[int]) -> list[Any]:
        """Registers of a saved context (another thread's), as ``reg_read_any``
        gives them (EFLAGS computed, not the lazy flag state)."""
        with converted():
            ctx = self._context(blob)
            return [ctx.reg_read(r) for r in regs]

    def context_write(self, blob: bytes, values: Sequence[tuple[int, Any]]) -> bytes:
        """A copy of a saved context with some registers changed."""
        with converted():
            ctx = self._context(blob)
            for reg, value in values:
                ctx.reg_write(reg, value)
            address = ctypes.cast(ctx.context, ctypes.c_void_p).value or 0
            return ctypes.string_at(address, ctx.size)

    def patch_context(self, offset: int, data: bytes) -> None:
        """Overwrite bytes of the live CPU state through a saved context.

        Used for the one piece of state Unicorn exposes no register for
        (the pending-exception marker, see cpu.py); ``offset`` must come from
        calibration against this very library.
        """
        with converted():
            ctx = self.uc.context_save()
            if not 0 <= offset <= ctx.size - len(data):
                raise EmulatorError(f"context offset {offset} out of range")
            address = ctypes.cast(ctx.context, ctypes.c_void_p).value or 0
            ctypes.memmove(address + offset, data, len(data))
            self.uc.context_restore(ctx)

    # -- control -------------------------------------------------------
    def set_exits(self, exits: Sequence[int]) -> None:
        with converted():
            self.uc.ctl_set_exits(list(exits))

    def enable_exits(self) -> None:
        with converted():
            self.uc.ctl_exits_enabled(True)
            self.uc.ctl_set_exits([])

    def set_virtual_tlb(self, on: bool = True) -> None:
        """Translate addresses with the TLB fill hook (identity) instead of
        the emulated CPU's page tables (UC_TLB_VIRTUAL / UC_TLB_CPU)."""
        with converted():
            self.uc.ctl_tlb_mode(ucc.UC_TLB_VIRTUAL if on else ucc.UC_TLB_CPU)

    def flush_tlb(self) -> None:
        """Drop every cached address translation (after permissions change)."""
        status = _UCLIB.uc_ctl(self._handle, ucc.UC_CTL_TLB_FLUSH | _CTL_WRITE)
        if status != ucc.UC_ERR_OK:
            raise EmulatorError(f"cannot flush the TLB: {self.strerror(status)}")

    def flush_tb(self) -> None:
        """Drop every translation and reuse the code buffer from its start
        (only outside a run)."""
        status = _UCLIB.uc_ctl(self._handle, ucc.UC_CTL_TB_FLUSH | _CTL_WRITE)
        if status != ucc.UC_ERR_OK:
            raise EmulatorError(f"cannot flush translations: {self.strerror(status)}")

    def remove_cache(self, lo: int, hi: int) -> None:
        with converted():
            self.uc.ctl_remove_cache(lo, hi)

    # -- hooks ---------------------------------------------------------
    def hook_block_raw(self, fn_address: int, user_data: int) -> int:
        """Register a native block hook by address (the only block hook: G11)."""
        return self._hook_raw(ucc.UC_HOOK_BLOCK, fn_address, user_data, "block hook")

    def hook_tlb_fill_raw(self, fn_address: int, user_data: int) -> int:
        """Register a native UC_HOOK_TLB_FILL callback (the binding has no wrapper)."""
        return self._hook_raw(ucc.UC_HOOK_TLB_FILL, fn_address, user_data, "TLB fill hook")

    def hook_mem_raw(
        self, *, write: bool, fn_address: int, user_data: int, begin: int, end: int
    ) -> int:
        """Register a native UC_HOOK_MEM_WRITE (or _READ) callback for accesses
        whose first byte lies in [begin, end]; remove it with ``hook_del_raw``."""
        kind = ucc.UC_HOOK_MEM_WRITE if write else ucc.UC_HOOK_MEM_READ
        return self._hook_raw(kind, fn_address, user_data, "memory hook", begin, end)

    def _hook_raw(
        self,
        kind: int,
        fn_address: int,
        user_data: int,
        what: str,
        begin: int = 1,
        end: int = 0,
    ) -> int:
        """``uc_hook_add`` of a C function (begin > end: for every address)."""
        handle = _ucmod.uc_hook_h()
        status = _UCLIB.uc_hook_add(
            self._handle,
            ctypes.byref(handle),
            kind,
            ctypes.c_void_p(fn_address),
            ctypes.c_void_p(user_data),
            ctypes.c_uint64(begin),
            ctypes.c_uint64(end),
        )
        if status != ucc.UC_ERR_OK:
            raise EmulatorError(f"cannot add {what}: {self.strerror(status)}")
        return int(handle.value)

    def hook_intr(self, callback: Callable[[int], None]) -> int:
        """``callback(intno)`` for every interrupt or exception, registered
        directly (the binding's wrapper costs microseconds on every syscall).
        An exception in it stops the engine and is raised by ``start``."""

        def trampoline(_uc: object, intno: int, _data: object) -> None:
            try:
                callback(intno)
            except BaseException as exc:  # re-raised by start()
                self.uc._hook_exception = exc
                _UCLIB.uc_emu_stop(self._handle)

        fn = INTR_CFUNC(trampoline)
        self.keep_alive(fn)
        return self._hook_raw(
            ucc.UC_HOOK_INTR, ctypes.cast(fn, ctypes.c_void_p).value or 0, 0, "interrupt hook"
        )

    def hook_port_in(self, callback: Callable[[int, int], int]) -> int:
        """``callback(port, size) -> value`` for every ``in`` instruction,
        registered directly (without the binding's per-call wrappers: a
        kernel polling a port calls it every few instructions).  An
        exception in it stops the engine and is raised by ``start``."""

        def trampoline(_uc: object, port: int, size: int, _data: object) -> int:
            try:
                return callback(port, size)
            except BaseException as exc:  # re-raised by start()
                self.uc._hook_exception = exc
                _UCLIB.uc_emu_stop(self._handle)
                return 0

        fn = PORT_IN_CFUNC(trampoline)
        self.keep_alive(fn)
        handle = _ucmod.uc_hook_h()
        status = _UCLIB.uc_hook_add(
            self._handle,
            ctypes.byref(handle),
            ucc.UC_HOOK_INSN,
            ctypes.cast(fn, ctypes.c_void_p),
            None,
            ctypes.c_uint64(1),
            ctypes.c_uint64(0),
            ctypes.c_int(x86.UC_X86_INS_IN),
        )
        if status != ucc.UC_ERR_OK:
            raise EmulatorError(f"cannot add port hook: {self.strerror(status)}")
        return int(handle.value)

    def hook_mem(self, *, write: bool, callback: Callable[..., Any], begin: int, end: int) -> int:
        """A Python UC_HOOK_MEM_WRITE (or _READ) for accesses whose first byte
        lies in [begin, end]; remove it with ``hook_del``."""
        kind = ucc.UC_HOOK_MEM_WRITE if write else ucc.UC_HOOK_MEM_READ
        return self.hook_add(kind, callback, begin=begin, end=end)

    def hook_add(self, htype: int, callback: Callable[..., Any], **kw: Any) -> int:
        with converted():
            handle: int = self.uc.hook_add(htype, callback, **kw)
        return handle

    def hook_del(self, handle: int) -> None:
        with converted():
            self.uc.hook_del(handle)

    def hook_del_raw(self, handle: int) -> None:
        """Remove a hook registered with one of the ``*_raw`` methods."""
        status = _UCLIB.uc_hook_del(self._handle, _ucmod.uc_hook_h(handle))
        if status != ucc.UC_ERR_OK:
            raise EmulatorError(f"cannot remove hook: {self.strerror(status)}")

    def keep_alive(self, obj: Any) -> None:
        self._keep.append(obj)
