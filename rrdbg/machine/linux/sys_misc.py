"""Identity, accounting and the rest: sysinfo, getrusage, times, process
groups and sessions, credentials, scheduling and priorities, children (there
are none yet) and sockets (not offered yet: clean errors).

Handlers register themselves with ``@syscall(nr)`` (kernel.py); they get the
``Linux`` object and the six syscall arguments and return the result
(a negative errno for failures).  Everything here is derived from the
machine's own state and virtual time, so it needs no host call.
"""

from __future__ import annotations

import errno
import struct

from rrdbg.machine.linux.kernel import MONOTONIC_BASE_NS, NS_PER_INSN, Linux, _signed, syscall

#: Memory the machine says it has (sysinfo): 1 GiB, a quarter of it free.
_TOTAL_RAM = 1 << 30
_CLK_TCK = 100


def _cpu_ns(k: Linux) -> int:
    return k._icount() * NS_PER_INSN


@syscall(116)  # sysinfo
def _sysinfo(k: Linux, info: int, *_: int) -> int:
    uptime = (MONOTONIC_BASE_NS + k.virtual_ns()) // 10**9
    data = struct.pack(
        "<i3I6IH2xII",
        uptime,
        0,
        0,
        0,  # loads: an idle machine
        _TOTAL_RAM,
        _TOTAL_RAM // 4,
        0,
        0,
        0,
        0,  # ram, free, shared, buffers, swap total, swap free
        1,  # procs
        0,
        0,  # high memory
    )
    k._write_result(info, data + struct.pack("<I", 1) + bytes(8))  # mem_unit, padding
    return 0


def _timeval(ns: int) -> bytes:
    return struct.pack("<ii", ns // 10**9, (ns % 10**9) // 1000)


@syscall(77)  # getrusage
def _getrusage(k: Linux, who: int, usage: int, *_: int) -> int:
    who = _signed(who)
    if who not in (0, -1, 1):  # SELF, CHILDREN, THREAD
        return -errno.EINVAL
    user = _cpu_ns(k) if who != -1 else 0
    # utime, stime, then 14 longs; maxrss in KiB from the mapped memory.
    maxrss = sum(r.end - r.start for r in k.mem.regions()) // 1024 if who != -1 else 0
    fields = [maxrss] + [0] * 13
    k._write_result(usage, _timeval(user) + _timeval(0) + struct.pack("<14i", *fields))
    return 0


@syscall(43)  # times
def _times(k: Linux, buf: int, *_: int) -> int:
    ticks = _cpu_ns(k) * _CLK_TCK // 10**9
    if buf:
        k._write_result(buf, struct.pack("<4I", ticks & 0xFFFFFFFF, 0, 0, 0))
    elapsed = (MONOTONIC_BASE_NS + k.virtual_ns()) * _CLK_TCK // 10**9
    return elapsed & 0x7FFFFFFF


# -- process groups and sessions: the process leads its own -------------------------


@syscall(57)  # setpgid
def _setpgid(k: Linux, pid: int, pgid: int, *_: int) -> int:
    if _signed(pgid) < 0:
        return -errno.EINVAL
    if pid not in (0, k.ids.pid):
        return -errno.ESRCH
    return 0 if pgid in (0, k.ids.pid) else -errno.EPERM


@syscall(66)  # setsid
def _setsid(k: Linux, *_: int) -> int:
    return -errno.EPERM  # already a process group leader, as a shell's child often is not


# -- children: none until processes come ---------------------------------------------


@syscall(7)  # waitpid
@syscall(114)  # wait4
@syscall(284)  # waitid
def _wait(k: Linux, *_: int) -> int:
    return -errno.ECHILD


# -- credentials: who the process is does not change ------------------------------


def _same_or_eperm(k: Linux, *wanted: int) -> int:
    ids = {k.ids.uid, k.ids.euid, k.ids.gid, k.ids.egid}
    for value in wanted:
        if _signed(value) != -1 and value not in ids:
            return -errno.EPERM
    return 0


@syscall(23)  # setuid (16-bit)
@syscall(46)  # setgid (16-bit)
@syscall(213)  # setuid32
@syscall(214)  # setgid32
def _setid(k: Linux, value: int, *_: int) -> int:
    return _same_or_eperm(k, value)


@syscall(208)  # setresuid32
@syscall(210)  # setresgid32
@syscall(203)  # setreuid32
@syscall(204)  # setregid32
def _setresid(k: Linux, a: int, b: int, c: int = 0xFFFFFFFF, *_: int) -> int:
    return _same_or_eperm(k, a, b, c)


@syscall(209)  # getresuid32
def _getresuid(k: Linux, ruid: int, euid: int, suid: int, *_: int) -> int:
    for addr, value in ((ruid, k.ids.uid), (euid, k.ids.euid), (suid, k.ids.euid)):
        k._write_result(addr, struct.pack("<I", value))
    return 0


@syscall(211)  # getresgid32
def _getresgid(k: Linux, rgid: int, egid: int, sgid: int, *_: int) -> int:
    for addr, value in ((rgid, k.ids.gid), (egid, k.ids.egid), (sgid, k.ids.egid)):
        k._write_result(addr, struct.pack("<I", value))
    return 0


@syscall(205)  # getgroups32
def _getgroups(k: Linux, size: int, groups: int, *_: int) -> int:
    if _signed(size) < 0:
        return -errno.EINVAL
    if size == 0:
        return 1
    k._write_result(groups, struct.pack("<I", k.ids.gid))
    return 1


@syscall(206)  # setgroups32
def _setgroups(k: Linux, *_: int) -> int:
    return -errno.EPERM


@syscall(184)  # capget
def _capget(k: Linux, header: int, data: int, *_: int) -> int:
    version, _pid = struct.unpack("<Ii", k.mem.read(header, 8))
    if version not in (0x19980330, 0x20071026, 0x20080522):
        k.mem.write(header, struct.pack("<I", 0x20080522))
        return -errno.EINVAL if data else 0
    if data:
        words = 1 if version == 0x19980330 else 2
        k._write_result(data, bytes(12 * words))  # no capabilities
    return 0


# -- scheduling and priorities -------------------------------------------------------


@syscall(96)  # getpriority
def _getpriority(k: Linux, which: int, who: int, *_: int) -> int:
    return 20 if which <= 2 else -errno.EINVAL  # nice 0, as the kernel encodes it


@syscall(97)  # setpriority
@syscall(34)  # nice
def _setpriority(k: Linux, *_: int) -> int:
    return 0


@syscall(155)  # sched_getparam
def _sched_getparam(k: Linux, pid: int, param: int, *_: int) -> int:
    k._write_result(param, bytes(4))
    return 0


@syscall(157)  # sched_getscheduler
def _sched_getscheduler(k: Linux, *_: int) -> int:
    return 0  # SCHED_OTHER


@syscall(136)  # personality
def _personality(k: Linux, persona: int, *_: int) -> int:
    return 0  # PER_LINUX (0xffffffff only asks)


@syscall(318)  # getcpu
def _getcpu(k: Linux, cpu: int, node: int, *_: int) -> int:
    for addr in (cpu, node):
        if addr:
            k._write_result(addr, bytes(4))
    return 0


@syscall(150)  # mlock
@syscall(151)  # munlock
@syscall(152)  # mlockall
@syscall(153)  # munlockall
def _mlock(k: Linux, *_: int) -> int:
    return 0  # nothing is ever swapped out here


# -- sockets: none yet ---------------------------------------------------------------

_SOCKET_CALLS = {1: "socket", 8: "socketpair"}


def _no_sockets(k: Linux) -> int:
    # Not reported: glibc tries nscd's socket on every user-name lookup and
    # goes on without it; a program that needs the network says so itself.
    return -errno.EAFNOSUPPORT


@syscall(102)  # socketcall: one multiplexer for the socket calls
def _socketcall(k: Linux, call: int, *_: int) -> int:
    if call in _SOCKET_CALLS:
        return _no_sockets(k)
    return -errno.ENOTSOCK if 1 <= call <= 20 else -errno.EINVAL


@syscall(359)  # socket
@syscall(360)  # socketpair
def _socket(k: Linux, *_: int) -> int:
    return _no_sockets(k)


@syscall(361)  # bind
@syscall(362)  # connect
@syscall(363)  # listen
@syscall(364)  # accept4
@syscall(365)  # getsockopt
@syscall(366)  # setsockopt
@syscall(367)  # getsockname
@syscall(368)  # getpeername
@syscall(369)  # sendto
@syscall(370)  # sendmsg
@syscall(371)  # recvfrom
@syscall(372)  # recvmsg
@syscall(373)  # shutdown
def _not_a_socket(k: Linux, *_: int) -> int:
    return -errno.ENOTSOCK
