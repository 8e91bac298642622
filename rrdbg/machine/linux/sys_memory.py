"""Memory: brk, mmap, munmap, mprotect, mremap, madvise.

Handlers register themselves with ``@syscall(nr)`` (kernel.py); they get the
``Linux`` object and the six syscall arguments and return the result
(a negative errno for failures).
"""

from __future__ import annotations

import errno
import struct

from rrdbg.machine.linux.kernel import (
    _MAP_ANONYMOUS,
    _MAP_FIXED,
    _MAP_FIXED_NOREPLACE,
    _MAP_PRIVATE,
    _MAP_SHARED,
    _MREMAP_FIXED,
    _MREMAP_MAYMOVE,
    MMAP_TOP,
    USER_TOP,
    Linux,
    syscall,
)
from rrdbg.machine.memory import PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, page_up


@syscall(45)  # brk
def _brk(k: Linux, addr: int, *_: int) -> int:
    st = k.state
    if addr < st.brk_start:
        return st.brk
    old_top, new_top = page_up(st.brk), page_up(addr)
    if new_top > old_top:
        if new_top > MMAP_TOP or not k.mem.is_free(old_top, new_top):
            return st.brk
        k.mem.map(old_top, new_top - old_top, PROT_READ | PROT_WRITE, "[heap]")
    elif new_top < old_top:
        k.mem.unmap(new_top, old_top - new_top)
    st.brk = addr
    return addr


def _mmap(k: Linux, addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
    if length == 0 or addr & (PAGE - 1):
        return -errno.EINVAL
    size = page_up(length)
    if size == 0 or size > 0xFFFFF000:
        return -errno.ENOMEM
    if not flags & (_MAP_SHARED | _MAP_PRIVATE):
        return -errno.EINVAL
    prot &= PROT_READ | PROT_WRITE | PROT_EXEC
    data = b""
    name = "[anon]"
    anonymous = bool(flags & _MAP_ANONYMOUS)
    if not anonymous:
        handle = k._handle(fd)
        if handle is None:
            return -errno.EBADF
        # A file mapping is a private copy of the file's bytes: writes to a
        # MAP_SHARED mapping do not reach the file.
        if offset >= 1 << 44:
            return -errno.EOVERFLOW
        got = k.host.map_file(handle, offset, length)
        if isinstance(got, int):
            return got
        data = got
        name = k.file_path(fd)
    if flags & (_MAP_FIXED | _MAP_FIXED_NOREPLACE):
        if addr + size > USER_TOP:
            return -errno.ENOMEM
        if flags & _MAP_FIXED_NOREPLACE and not k.mem.is_free(addr, addr + size):
            return -errno.EEXIST
        start = addr
    else:
        found = None
        if addr and addr + size <= MMAP_TOP and k.mem.is_free(addr, addr + size):
            found = addr
        if found is None:
            found = k.mem.find_free(size, MMAP_TOP, bottom=max(page_up(k.state.brk), PAGE))
        if found is None:
            return -errno.ENOMEM
        start = found
    k.mem.map(start, size, prot, name)
    if data:
        k.mem.poke(start, data)
    return start


@syscall(192)  # mmap2
def _mmap2(k: Linux, addr: int, length: int, prot: int, flags: int, fd: int, pgoff: int) -> int:
    return _mmap(k, addr, length, prot, flags, fd, pgoff * PAGE)


@syscall(90)  # old_mmap: one pointer to six arguments
def _old_mmap(k: Linux, args: int, *_: int) -> int:
    a = struct.unpack("<6I", k.mem.read(args, 24))
    if a[5] & (PAGE - 1):
        return -errno.EINVAL
    return _mmap(k, *a)


@syscall(91)  # munmap
def _munmap(k: Linux, addr: int, length: int, *_: int) -> int:
    if addr & (PAGE - 1) or length == 0 or addr + length > USER_TOP:
        return -errno.EINVAL
    k.mem.unmap(addr, length)
    return 0


@syscall(125)  # mprotect
def _mprotect(k: Linux, addr: int, length: int, prot: int, *_: int) -> int:
    if addr & (PAGE - 1):
        return -errno.EINVAL
    if length == 0:
        return 0
    if addr + page_up(length) > USER_TOP:
        return -errno.ENOMEM
    if not k.mem.is_mapped(addr, page_up(length)):
        return -errno.ENOMEM
    k.mem.protect(addr, length, prot & (PROT_READ | PROT_WRITE | PROT_EXEC))
    return 0


@syscall(163)  # mremap
def _mremap(
    k: Linux, old: int, old_size: int, new_size: int, flags: int, new_addr: int, *_: int
) -> int:
    if old & (PAGE - 1) or new_size == 0 or flags & ~(_MREMAP_MAYMOVE | _MREMAP_FIXED):
        return -errno.EINVAL
    old_size, new_size = page_up(old_size), page_up(new_size)
    if old + old_size > USER_TOP or new_size > USER_TOP:
        return -errno.EINVAL
    region = k.mem.region_at(old)
    if region is None or not k.mem.is_mapped(old, old_size):
        return -errno.EFAULT
    if flags & _MREMAP_FIXED:
        return -errno.EINVAL  # not used by glibc's malloc; refuse rather than guess
    if new_size <= old_size:
        if new_size < old_size:
            k.mem.unmap(old + new_size, old_size - new_size)
        return old
    if k.mem.is_free(old + old_size, old + new_size) and old + new_size <= MMAP_TOP:
        k.mem.map(old + old_size, new_size - old_size, region.perms, region.name)
        return old
    if not flags & _MREMAP_MAYMOVE:
        return -errno.ENOMEM
    target = k.mem.find_free(new_size, MMAP_TOP, bottom=max(page_up(k.state.brk), PAGE))
    if target is None:
        return -errno.ENOMEM
    contents = bytes(k.mem.view(old, old_size))
    k.mem.map(target, new_size, region.perms, region.name)
    k.mem.poke(target, contents)
    k.mem.unmap(old, old_size)
    return target


@syscall(219)  # madvise
def _madvise(k: Linux, addr: int, length: int, advice: int, *_: int) -> int:
    if addr & (PAGE - 1):
        return -errno.EINVAL
    if advice == 4 and length:  # MADV_DONTNEED: anonymous private pages read as zero
        lo, hi = addr, page_up(addr + length)
        if hi > USER_TOP or not k.mem.is_mapped(lo, hi - lo):
            return -errno.ENOMEM
        k.mem.poke(lo, bytes(hi - lo))
    return 0


@syscall(218)  # mincore: every mapped page is resident (nothing is swapped)
def _mincore(k: Linux, addr: int, length: int, vec: int, *_: int) -> int:
    if addr & (PAGE - 1):
        return -errno.EINVAL
    pages = page_up(length) // PAGE
    if addr + pages * PAGE > USER_TOP or not k.mem.is_mapped(addr, pages * PAGE):
        return -errno.ENOMEM
    k.mem.write(vec, b"\x01" * pages)
    return 0
