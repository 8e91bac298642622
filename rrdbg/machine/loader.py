"""ELF32 i386 loader (pyelftools) and the Linux initial process stack.

Role: check that a file is a program rrdbg can run, map its PT_LOAD segments
(and, for a dynamically linked program, those of its PT_INTERP loader, as
Linux's ``load_elf_binary`` does) and build the stack Linux gives a new i386
process: argc, argv, envp and the auxiliary vector (AT_PHDR, AT_PHNUM,
AT_PAGESZ, AT_BASE, AT_ENTRY, AT_RANDOM, AT_HWCAP, AT_UID..., AT_EXECFN).
This module is the one place where pyelftools' exceptions become
``LoaderError``.

Invariant: everything the new process observes from the host (arguments,
environment, AT_RANDOM bytes, ids, the dynamic loader's bytes) arrives
through the ``Host`` passed in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrdbg.errors import LoaderError
from rrdbg.machine.host import Host
from rrdbg.machine.memory import (
    PAGE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    GuestMemory,
    page_down,
    page_up,
)

#: Top of the user stack, as on a 3G/1G-split i386 kernel.
STACK_TOP = 0xC0000000
STACK_SIZE = 8 << 20
#: Where position-independent static executables (static-pie) are placed.
PIE_BASE = 0x56555000

AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE = 0, 3, 4, 5, 6, 7
AT_FLAGS, AT_ENTRY, AT_UID, AT_EUID, AT_GID, AT_EGID = 8, 9, 11, 12, 13, 14
AT_PLATFORM, AT_HWCAP, AT_CLKTCK, AT_SECURE, AT_RANDOM = 15, 16, 17, 23, 25
AT_HWCAP2, AT_EXECFN = 26, 31

_PF_X, _PF_W, _PF_R = 1, 2, 4


@dataclass(frozen=True, slots=True)
class Segment:
    vaddr: int
    memsz: int
    data: bytes
    perms: int


@dataclass(frozen=True, slots=True)
class Program:
    """A validated i386 executable (or dynamic loader), read fully into memory."""

    path: str
    entry: int
    phoff_vaddr: int
    phnum: int
    phentsize: int
    segments: tuple[Segment, ...]
    is_pie: bool
    image: bytes
    #: PT_INTERP: the dynamic loader the kernel starts instead (None: static).
    interp: str | None = None
    #: Where PT_DYNAMIC is once loaded (0: none); gdb's library list starts there.
    dynamic_vaddr: int = 0

    @property
    def brk_start(self) -> int:
        return page_up(max(s.vaddr + s.memsz for s in self.segments))


def _perms(flags: int) -> int:
    return (
        (PROT_READ if flags & _PF_R else 0)
        | (PROT_WRITE if flags & _PF_W else 0)
        | (PROT_EXEC if flags & _PF_X else 0)
    )


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise LoaderError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LoaderError(f"{path}: is a directory") from None
    except OSError as exc:
        raise LoaderError(f"{path}: cannot read: {exc.strerror}") from None


def read_program(path: str) -> Program:
    """Read and validate ``path``; raises LoaderError with a one-line reason."""
    return parse_program(path, _read_file(path))


def parse_program(path: str, image: bytes, load_base: int | None = None) -> Program:
    """Validate an executable's bytes; ``load_base`` places a position-
    independent one (default: where Linux puts a PIE program)."""
    if image[:4] != b"\x7fELF":
        raise LoaderError(f"{path}: not an ELF file")
    try:
        return _parse(path, image, load_base)
    except _elf_errors():
        raise LoaderError(f"{path}: malformed ELF file (truncated or corrupt headers)") from None


def load_span(program: Program) -> tuple[int, int]:
    """The page range [lo, hi) its segments cover."""
    lo = min(page_down(s.vaddr) for s in program.segments)
    hi = max(page_up(s.vaddr + s.memsz) for s in program.segments)
    return lo, hi


def _elf(image: bytes) -> Any:
    """pyelftools' view of an ELF file's bytes (imported when first needed:
    the import takes about 40 ms, and a run whose headers are cached needs
    none of it)."""
    import io

    from elftools.elf.elffile import ELFFile

    return ELFFile(io.BytesIO(image))


def _elf_errors(*more: type[BaseException]) -> tuple[type[BaseException], ...]:
    """What pyelftools raises for a malformed file (evaluated only when an
    exception is being matched)."""
    from elftools.common.exceptions import ELFError

    return (ELFError, struct.error, ValueError, KeyError, IndexError, *more)


@dataclass(frozen=True, slots=True)
class _Headers:
    """What the loader reads of an ELF file: its header and program headers,
    each as (p_type, p_offset, p_vaddr, p_filesz, p_memsz, p_flags)."""

    elfclass: int
    machine: str
    little_endian: bool
    etype: str
    entry: int
    phoff: int
    phnum: int
    phentsize: int
    segments: tuple[tuple[str | int, int, int, int, int, int], ...]


def _read_headers(image: bytes) -> _Headers:
    elf = _elf(image)
    segments = []
    if elf.elfclass == 32 and elf["e_machine"] == "EM_386" and elf.little_endian:
        for i in range(elf.num_segments()):
            h = elf.get_segment(i).header
            segments.append((h.p_type, h.p_offset, h.p_vaddr, h.p_filesz, h.p_memsz, h.p_flags))
    return _Headers(
        elf.elfclass,
        elf["e_machine"],
        elf.little_endian,
        elf["e_type"],
        elf["e_entry"],
        elf["e_phoff"],
        elf["e_phnum"],
        elf["e_phentsize"],
        tuple(segments),
    )


#: Bumped when ``_Headers`` changes: older cache entries are then not read.
_CACHE_VERSION = 1


def cache_directory() -> Path | None:
    """Where rrdbg keeps what it learns once per program: $RRDBG_CACHE_DIR,
    else $XDG_CACHE_HOME/rrdbg, else ~/.cache/rrdbg; RRDBG_CACHE_DIR=off
    (or an empty value) turns the cache off."""
    chosen = os.environ.get("RRDBG_CACHE_DIR")
    if chosen is not None:
        return None if chosen in ("", "off") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        home = os.path.expanduser("~")
        if home == "~":  # no home at all: no cache, rather than ./~
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "rrdbg"


def _headers(image: bytes) -> _Headers:
    """The headers of an image, from the per-program cache when there
    (keyed by the file's SHA-256: a changed file is a new entry).  The
    cache is an optimisation only: any problem with it reads the file."""
    folder = cache_directory()
    if folder is None:
        return _read_headers(image)
    entry = folder / "elf" / f"{hashlib.sha256(image).hexdigest()}.json"
    try:
        cached = _cached_headers(json.loads(entry.read_bytes()))
        if cached is not None:
            return cached
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass
    headers = _read_headers(image)
    record = {"version": _CACHE_VERSION, "headers": dataclasses.asdict(headers)}
    temp = entry.with_suffix(f".{os.getpid()}.tmp")
    try:
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_EXCL | O_NOFOLLOW: never write through a name someone else placed.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(record))
        os.replace(temp, entry)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
    return headers


def _cached_headers(raw: Any) -> _Headers | None:
    """A cache entry's headers if every field has its type (else None)."""
    if not isinstance(raw, dict) or raw.get("version") != _CACHE_VERSION:
        return None
    fields = raw["headers"]
    segments = fields.get("segments")
    if not isinstance(segments, list) or not all(
        isinstance(seg, list)
        and len(seg) == 6
        and isinstance(seg[0], str | int)
        and all(type(v) is int for v in seg[1:])
        for seg in segments
    ):
        return None
    fields["segments"] = tuple(tuple(seg) for seg in segments)
    headers = _Headers(**fields)
    kinds = {f.name: f.type for f in dataclasses.fields(_Headers)}
    for name, value in dataclasses.asdict(headers).items():
        wanted = {"int": int, "str": str, "bool": bool}.get(str(kinds[name]))
        if wanted is not None and type(value) is not wanted:
            return None
    return headers


def _parse(path: str, image: bytes, load_base: int | None = None) -> Program:
    elf = _headers(image)
    if elf.elfclass != 32:
        raise LoaderError(
            f"{path}: {elf.elfclass}-bit ELF; rrdbg runs 32-bit i386 programs "
            "(build one with gcc -m32 -static; Debian: apt-get install gcc-multilib)"
        )
    if elf.machine != "EM_386":
        raise LoaderError(f"{path}: ELF for {elf.machine}; rrdbg runs i386 programs")
    if not elf.little_endian:
        raise LoaderError(f"{path}: big-endian ELF; rrdbg runs i386 programs")
    etype = elf.etype
    if etype not in ("ET_EXEC", "ET_DYN"):
        raise LoaderError(f"{path}: not an executable ({etype})")
    headers = [_Segment(*seg) for seg in elf.segments]
    interp = None
    for h in headers:
        if h.p_type == "PT_INTERP":
            raw = image[h.p_offset : h.p_offset + h.p_filesz].split(b"\0", 1)[0]
            if not raw.startswith(b"/") or h.p_offset + h.p_filesz > len(image):
                raise LoaderError(f"{path}: malformed PT_INTERP (the dynamic loader's path)")
            interp = os.fsdecode(raw)
    if etype == "ET_DYN" and not any(h.p_type == "PT_LOAD" for h in headers):
        raise LoaderError(f"{path}: shared object without loadable segments")
    is_pie = etype == "ET_DYN"
    base = (PIE_BASE if is_pie else 0) if load_base is None else load_base
    segments = []
    phdr_vaddr = None
    dynamic = 0
    for h in headers:
        if h.p_type == "PT_PHDR":
            phdr_vaddr = base + h.p_vaddr
        if h.p_type == "PT_DYNAMIC":
            dynamic = base + h.p_vaddr
        if h.p_type != "PT_LOAD" or h.p_memsz == 0:
            continue
        if h.p_filesz > h.p_memsz or h.p_offset + h.p_filesz > len(image):
            raise LoaderError(f"{path}: PT_LOAD segment extends past the file")
        vaddr = base + h.p_vaddr
        if vaddr + h.p_memsz > STACK_TOP - STACK_SIZE or vaddr < PAGE:
            raise LoaderError(f"{path}: segment at {vaddr:#x} is outside the user address space")
        data = image[h.p_offset : h.p_offset + h.p_filesz]
        segments.append(Segment(vaddr, h.p_memsz, data, _perms(h.p_flags)))
    if not segments:
        raise LoaderError(f"{path}: no loadable segments")
    if phdr_vaddr is None:
        phoff = elf.phoff
        for h in headers:
            if h.p_type == "PT_LOAD" and h.p_offset <= phoff < h.p_offset + h.p_filesz:
                phdr_vaddr = base + h.p_vaddr + (phoff - h.p_offset)
                break
    return Program(
        path=path,
        entry=base + elf.entry,
        phoff_vaddr=phdr_vaddr or 0,
        phnum=elf.phnum,
        phentsize=elf.phentsize,
        segments=tuple(segments),
        is_pie=is_pie,
        image=image,
        interp=interp,
        dynamic_vaddr=dynamic,
    )


@dataclass(frozen=True, slots=True)
class _Segment:
    p_type: str | int  # pyelftools' name, or the number of a type it does not know
    p_offset: int
    p_vaddr: int
    p_filesz: int
    p_memsz: int
    p_flags: int


def map_program(program: Program, memory: GuestMemory, name: str | None = None) -> None:
    """Map the PT_LOAD segments (pages shared by two segments get both
    permissions), the regions named ``name`` (default: the program's path)."""
    page_perms: dict[int, int] = {}
    for seg in program.segments:
        for page in range(page_down(seg.vaddr), page_up(seg.vaddr + seg.memsz), PAGE):
            page_perms[page] = page_perms.get(page, 0) | seg.perms
    pages = sorted(page_perms)
    run_start = pages[0]
    for i, page in enumerate(pages):
        nxt = pages[i + 1] if i + 1 < len(pages) else None
        if nxt != page + PAGE or page_perms[nxt] != page_perms[page]:
            label = program.path if name is None else name
            memory.map(run_start, page + PAGE - run_start, page_perms[page], label)
            if nxt is not None:
                run_start = nxt
    for seg in program.segments:
        memory.poke(seg.vaddr, seg.data)


def build_stack(
    program: Program,
    memory: GuestMemory,
    host: Host,
    argv: list[bytes],
    hwcap: int,
    interp_base: int = 0,
    *,
    env: list[bytes] | None = None,
    execfn: bytes | None = None,
) -> int:
    """Map the stack and lay out argc/argv/envp/auxv; returns the initial
    ESP.  ``env``: the environment (default: the host's); ``execfn``: the
    path execve was given (AT_EXECFN; default argv[0])."""
    memory.map(STACK_TOP - STACK_SIZE, STACK_SIZE, PROT_READ | PROT_WRITE, "[stack]")
    if env is None:
        env = host.environment()
    ids = host.ids()
    # Strings are packed downward from the top, like the kernel does.
    pos = STACK_TOP - 4  # the kernel leaves a NULL word at the very top

    def push_string(s: bytes) -> int:
        nonlocal pos
        pos -= len(s) + 1
        memory.poke(pos, s + b"\0")
        return pos

    if execfn is None:
        execfn = argv[0] if argv else program.path.encode()
    execfn_addr = push_string(execfn)
    env_ptrs = [push_string(e) for e in reversed(env)][::-1]
    arg_ptrs = [push_string(a) for a in reversed(argv)][::-1]
    platform = push_string(b"i686")
    pos &= ~0xF
    pos -= 16
    random_addr = pos
    memory.poke(random_addr, host.random_bytes(16))
    auxv = [
        (AT_HWCAP, hwcap),
        (AT_PAGESZ, PAGE),
        (AT_CLKTCK, 100),
        (AT_PHDR, program.phoff_vaddr),
        (AT_PHENT, program.phentsize),
        (AT_PHNUM, program.phnum),
        (AT_BASE, interp_base),
        (AT_FLAGS, 0),
        (AT_ENTRY, program.entry),
        (AT_UID, ids.uid),
        (AT_EUID, ids.euid),
        (AT_GID, ids.gid),
        (AT_EGID, ids.egid),
        (AT_SECURE, 0),
        (AT_RANDOM, random_addr),
        (AT_HWCAP2, 0),
        (AT_EXECFN, execfn_addr),
        (AT_PLATFORM, platform),
        (AT_NULL, 0),
    ]
    words = [len(arg_ptrs), *arg_ptrs, 0, *env_ptrs, 0]
    for key, value in auxv:
        words += [key, value]
    size = 4 * len(words)
    esp = (pos - size) & ~0xF
    memory.poke(esp, struct.pack(f"<{len(words)}I", *words))
    return esp


class Symbols:
    """Function and object symbols of a program, to name code addresses."""

    def __init__(self, entries: list[tuple[int, int, str]]) -> None:
        self._entries = sorted(entries)
        self._starts = [e[0] for e in self._entries]

    @classmethod
    def read(cls, program: Program | Kernel) -> Symbols:
        """The program's (or kernel's) ``.symtab`` (empty when stripped or unreadable)."""
        entries: list[tuple[int, int, str]] = []
        try:
            elf = _elf(program.image)
            table = elf.get_section_by_name(".symtab")
            base = PIE_BASE if elf["e_type"] == "ET_DYN" else 0
            if table is not None:
                for sym in table.iter_symbols():
                    if sym["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT") and sym.name:
                        entries.append((base + sym["st_value"], sym["st_size"], sym.name))
        except _elf_errors():
            entries = []
        return cls(entries)

    def address(self, name: str) -> int | None:
        """The address of the function or object ``name`` (None: no such symbol)."""
        for start, _size, entry in self._entries:
            if entry == name:
                return start
        return None

    def lookup(self, name: str) -> tuple[int, int] | None:
        """(address, size) of the function or object ``name`` (None: no such symbol)."""
        for start, size, entry in self._entries:
            if entry == name:
                return start, size
        return None

    def describe(self, address: int) -> str:
        """``name+offset`` for an address inside a known symbol, else ""."""
        import bisect

        i = bisect.bisect_right(self._starts, address) - 1
        while i >= 0:
            start, size, name = self._entries[i]
            if start <= address < start + max(size, 1):
                return f"{name}+{address - start}" if address != start else name
            if start < address - 0x10000:
                break
            i -= 1
        return ""


class Lines:
    """The program's DWARF line table: which source line an address is on.

    File names are given as gdb shows them (the line table's directory and
    name, without the compilation directory), e.g. ``tests/guests/debugme.c``.
    A program without debug information has an empty table.
    """

    def __init__(self, rows: list[tuple[int, str | None, int]]) -> None:
        # (address, file, line); file None marks the end of a sequence.
        self._rows = sorted(rows, key=lambda r: r[0])
        self._addresses = [r[0] for r in self._rows]

    @classmethod
    def read(cls, program: Program | Kernel) -> Lines:
        return cls.read_image(program.image)

    @classmethod
    def read_image(cls, image: bytes) -> Lines:
        """The line table of an ELF file's bytes (empty if it has none)."""
        rows: list[tuple[int, str | None, int]] = []
        try:
            elf = _elf(image)
            if not elf.has_dwarf_info():
                return cls([])
            base = PIE_BASE if elf["e_type"] == "ET_DYN" else 0
            dwarf = elf.get_dwarf_info()
            for cu in dwarf.iter_CUs():
                program_lines = dwarf.line_program_for_CU(cu)
                if program_lines is None:
                    continue
                files = _line_files(program_lines, cu.get_top_DIE())
                for entry in program_lines.get_entries():
                    state = entry.state
                    if state is None:
                        continue
                    if state.end_sequence:
                        rows.append((base + state.address, None, 0))
                    else:
                        rows.append((base + state.address, files.get(state.file), state.line))
        except _elf_errors(AttributeError):
            return cls([])
        return cls(rows)

    def files(self) -> set[str]:
        """The source files the table names (as gdb shows them)."""
        return {f for _a, f, _l in self._rows if f is not None}

    def source_root(self, program_path: str) -> str | None:
        """Where the sources are, for a program whose debug information names
        them relative to the build directory (``-ffile-prefix-map=DIR=.``,
        as rrdbg's bundled guests are built): the nearest ancestor directory
        of the program holding one of them.  gdb would look for them relative
        to its own working directory instead (``directory`` fixes that)."""
        relative = sorted(f for f in self.files() if not os.path.isabs(f))
        if not relative:
            return None
        here = Path(os.path.abspath(program_path)).parent
        for ancestor in (here, *here.parents):
            if any((ancestor / f).is_file() for f in relative):
                return str(ancestor)
        return None

    def lookup(self, address: int) -> tuple[str, int] | None:
        """(file, line) of the code at ``address``, or None (no line information)."""
        import bisect

        i = bisect.bisect_right(self._addresses, address) - 1
        if i < 0:
            return None
        _address, file, line = self._rows[i]
        if file is None or line <= 0:
            return None
        return file, line


def _line_files(program_lines: Any, top: Any) -> dict[int, str]:
    """File number -> name as gdb shows it, for one line program (DWARF 2-5)."""
    header = program_lines.header
    version = header.version
    comp = top.attributes.get("DW_AT_comp_dir")
    comp_dir = comp.value.decode("utf-8", "replace") if comp is not None else ""
    dirs = [d.decode("utf-8", "replace") for d in header.include_directory]
    out: dict[int, str] = {}
    for i, fe in enumerate(header.file_entry):
        name = fe.name.decode("utf-8", "replace")
        if version >= 5:
            number, directory = i, dirs[fe.dir_index] if fe.dir_index < len(dirs) else ""
        else:
            number = i + 1
            directory = dirs[fe.dir_index - 1] if 0 < fe.dir_index <= len(dirs) else ""
        if not os.path.isabs(name) and directory not in ("", ".", comp_dir):
            name = os.path.join(directory, name)
        out[number] = name
    return out


# -- Multiboot (v1) kernels: the bare-metal PC machine -----------------------

MULTIBOOT_MAGIC = 0x1BADB002
#: What the boot loader puts in EAX for the kernel.
MULTIBOOT_BOOTLOADER_MAGIC = 0x2BADB002
#: The header must lie in the first 8 KiB, 4-byte aligned (Multiboot 1, 3.1).
_MULTIBOOT_SEARCH = 8192
_MB_MEMORY_INFO = 1 << 1
_MB_AOUT_KLUDGE = 1 << 16
#: Flag bits 0-15 are requirements; the loader must refuse unknown ones.
_MB_KNOWN_REQUIRED = (1 << 0) | (1 << 1)


@dataclass(frozen=True, slots=True)
class Kernel:
    """A Multiboot kernel: ELF segments to place at their physical addresses."""

    path: str
    entry: int
    flags: int
    segments: tuple[Segment, ...]
    image: bytes

    @property
    def end(self) -> int:
        return max(s.vaddr + s.memsz for s in self.segments)


def read_kernel(path: str) -> Kernel:
    """Read and validate a Multiboot v1 ELF kernel; LoaderError with a one-line reason."""
    image = _read_file(path)
    flags = _multiboot_flags(path, image)
    if flags & _MB_AOUT_KLUDGE:
        raise LoaderError(f"{path}: a.out-kludge Multiboot kernels are not supported (use ELF)")
    if flags & 0xFFFF & ~_MB_KNOWN_REQUIRED:
        raise LoaderError(f"{path}: Multiboot header requires features {flags & 0xFFFF:#x}")
    if image[:4] != b"\x7fELF":
        raise LoaderError(f"{path}: not an ELF file")
    try:
        return _parse_kernel(path, image, flags)
    except _elf_errors():
        raise LoaderError(f"{path}: malformed ELF file (truncated or corrupt headers)") from None


def _multiboot_flags(path: str, image: bytes) -> int:
    for offset in range(0, min(len(image), _MULTIBOOT_SEARCH) - 11, 4):
        magic, flags, checksum = struct.unpack_from("<III", image, offset)
        if magic == MULTIBOOT_MAGIC and (magic + flags + checksum) & 0xFFFFFFFF == 0:
            return int(flags)
    raise LoaderError(f"{path}: no Multiboot header in its first 8 KiB (not a Multiboot kernel)")


def _parse_kernel(path: str, image: bytes, flags: int) -> Kernel:
    elf = _elf(image)
    if elf.elfclass != 32 or elf["e_machine"] != "EM_386":
        raise LoaderError(f"{path}: not an ELF32 i386 kernel")
    segments = []
    for i in range(elf.num_segments()):
        h = elf.get_segment(i).header
        if h.p_type != "PT_LOAD" or h.p_memsz == 0:
            continue
        if h.p_filesz > h.p_memsz or h.p_offset + h.p_filesz > len(image):
            raise LoaderError(f"{path}: PT_LOAD segment extends past the file")
        data = image[h.p_offset : h.p_offset + h.p_filesz]
        segments.append(Segment(h.p_paddr, h.p_memsz, data, _perms(h.p_flags)))
    if not segments:
        raise LoaderError(f"{path}: no loadable segments")
    return Kernel(path, elf["e_entry"], flags, tuple(segments), image)
