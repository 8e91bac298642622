"""The dynamic linker's library list, as gdbserver reports it to gdb.

Role: walk glibc's ``struct r_debug`` (found through the program's
``DT_DEBUG`` entry, which ld.so fills in) and its ``struct link_map`` chain
in guest memory, and write the ``qXfer:libraries-svr4:read`` document
gdbserver writes: the first entry is the program (``main-lm``), each other
named entry a ``<library>`` with its link map, load bias and dynamic section.

Invariant: reads only guest memory; an unreadable or cyclic chain ends the
list where it breaks (the loader may be half-way through an update).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from html import escape

from rrdbg.errors import GuestMemoryError

_DT_NULL, _DT_DEBUG = 0, 21
#: More link maps than any process has: the walk stops there (a corrupt list).
_MAX_MAPS = 4096

Reader = Callable[[int, int], bytes]


def r_debug_address(read: Reader, dynamic: int) -> int:
    """``r_debug``'s address from the program's dynamic section (0: not yet)."""
    for i in range(4096):
        tag, value = struct.unpack("<iI", read(dynamic + 8 * i, 8))
        if tag == _DT_NULL:
            return 0
        if tag == _DT_DEBUG:
            return int(value)
    return 0


def _name(read: Reader, address: int) -> bytes:
    out = b""
    while len(out) < 4096:
        try:
            chunk = read(address + len(out), 64)
        except GuestMemoryError:
            chunk = read(address + len(out), 1)  # the string ends near a page end
        end = chunk.find(b"\0")
        if end >= 0:
            return out + chunk[:end]
        out += chunk
    return out


def libraries_svr4(read: Reader, dynamic: int, annex: str = "") -> bytes:
    """The ``library-list-svr4`` document; ``annex`` may hold gdb's
    ``start=ADDR;prev=ADDR`` (continue an earlier walk from ``start``)."""
    params = {}
    for item in annex.split(";"):
        key, _, value = item.partition("=")
        if key in ("start", "prev") and value:
            params[key] = int(value, 16)
    try:
        lm = params.get("start")
        if lm is None:
            r_debug = r_debug_address(read, dynamic) if dynamic else 0
            lm = struct.unpack("<I", read(r_debug + 4, 4))[0] if r_debug else 0
    except GuestMemoryError:
        lm = 0
    prev = params.get("prev", 0)
    head = b'<library-list-svr4 version="1.0"'
    body = []
    seen: set[int] = set()
    while lm and lm not in seen and len(seen) < _MAX_MAPS:
        seen.add(lm)
        try:
            l_addr, l_name, l_ld, l_next, l_prev = struct.unpack("<5I", read(lm, 20))
            name = _name(read, l_name) if l_name else b""
        except GuestMemoryError:
            break
        if l_prev != prev:
            break  # the chain is being changed under us: stop where it is consistent
        if prev == 0:
            head += b' main-lm="0x%x"' % lm
        elif name:
            # (html.escape: xml.sax.saxutils would import urllib and http.)
            attr = b'"%s"' % escape(name.decode("utf-8", "surrogateescape")).encode(
                "utf-8", "surrogateescape"
            )
            body.append(
                b'<library name=%s lm="0x%x" l_addr="0x%x" l_ld="0x%x" lmid="0x0"/>'
                % (attr, lm, l_addr, l_ld)
            )
        prev, lm = lm, l_next
    if not body:
        return head + b"/>"
    return head + b">" + b"".join(body) + b"</library-list-svr4>"
