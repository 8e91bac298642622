"""Process identity: ids, kill, uname, limits, prctl, process groups
(exit and the thread calls are sys_threads.py).

Handlers register themselves with ``@syscall(nr)`` (kernel.py); they get the
``Linux`` object and the six syscall arguments and return the result
(a negative errno for failures).
"""

from __future__ import annotations

import errno
import os
import struct

from rrdbg.machine.linux.kernel import (
    _RLIM_INFINITY64,
    _UTSNAME,
    ExitStatus,
    Linux,
    ProcessExit,
    _signed,
    syscall,
)


@syscall(20)  # getpid
def _getpid(k: Linux, *_: int) -> int:
    return k.ids.pid


@syscall(64)  # getppid
def _getppid(k: Linux, *_: int) -> int:
    return k.ids.ppid


@syscall(24)  # getuid
@syscall(199)  # getuid32
def _getuid(k: Linux, *_: int) -> int:
    return k.ids.uid


@syscall(49)  # geteuid
@syscall(201)  # geteuid32
def _geteuid(k: Linux, *_: int) -> int:
    return k.ids.euid


@syscall(47)  # getgid
@syscall(200)  # getgid32
def _getgid(k: Linux, *_: int) -> int:
    return k.ids.gid


@syscall(50)  # getegid
@syscall(202)  # getegid32
def _getegid(k: Linux, *_: int) -> int:
    return k.ids.egid


@syscall(37)  # kill
def _kill(k: Linux, pid: int, sig: int, *_: int) -> int:
    if _signed(pid) not in (0, -1, k.ids.pid):
        return -errno.ESRCH
    return k.kill_self(sig)


@syscall(122)  # uname
def _uname(k: Linux, buf: int, *_: int) -> int:
    k._write_result(buf, b"".join(f.ljust(65, b"\0") for f in _UTSNAME))
    return 0


@syscall(386)  # rseq
def _rseq(k: Linux, *_: int) -> int:
    # Restartable sequences: glibc registers one per thread and copes with
    # ENOSYS silently (it then never relies on the CPU number or on being
    # restarted after a preemption).
    return -errno.ENOSYS


@syscall(340)  # prlimit64
def _prlimit64(k: Linux, pid: int, resource: int, new: int, old: int, *_: int) -> int:
    if pid not in (0, k.ids.pid):
        return -errno.ESRCH
    if old:
        k._write_result(old, struct.pack("<QQ", *_rlimit(resource)))
    return 0


@syscall(191)  # ugetrlimit
@syscall(76)  # getrlimit
def _ugetrlimit(k: Linux, resource: int, buf: int, *_: int) -> int:
    soft, hard = (min(v, 0xFFFFFFFF) for v in _rlimit(resource))
    k._write_result(buf, struct.pack("<II", soft, hard))
    return 0


def _rlimit(resource: int) -> tuple[int, int]:
    if resource == 3:  # RLIMIT_STACK
        return 8 << 20, _RLIM_INFINITY64
    if resource == 7:  # RLIMIT_NOFILE
        return 1024, 4096
    return _RLIM_INFINITY64, _RLIM_INFINITY64


# -- prctl and process groups -------------------------------------------------

_PR_SET_PDEATHSIG = 1
_PR_GET_PDEATHSIG = 2
_PR_GET_DUMPABLE = 3
_PR_SET_DUMPABLE = 4
_PR_SET_NAME = 15
_PR_GET_NAME = 16


@syscall(172)  # prctl
def _prctl(k: Linux, option: int, arg2: int, *_: int) -> int:
    if option == _PR_SET_NAME:
        k.state.task.comm = k.mem.read(arg2, 16).split(b"\0", 1)[0][:15]
        return 0
    if option == _PR_GET_NAME:
        name = k.state.task.comm or os.path.basename(k.exe_path)[:15]
        k.mem.write(arg2, name + bytes(16 - len(name)))
        return 0
    if option == _PR_GET_DUMPABLE:
        return k.state.dumpable
    if option == _PR_SET_DUMPABLE:
        if arg2 not in (0, 1):
            return -errno.EINVAL
        k.state.dumpable = arg2
        return 0
    if option == _PR_SET_PDEATHSIG:
        return 0 if 0 <= arg2 <= 64 else -errno.EINVAL
    if option == _PR_GET_PDEATHSIG:
        k.mem.write(arg2, bytes(4))
        return 0
    return -errno.EINVAL  # what Linux says of an option it does not know


@syscall(60)  # umask
def _umask(k: Linux, mask: int, *_: int) -> int:
    old, k.state.umask = k.state.umask, mask & 0o777
    return old


@syscall(65)  # getpgrp
def _getpgrp(k: Linux, *_: int) -> int:
    return k.ids.pid


@syscall(132)  # getpgid
@syscall(147)  # getsid
def _getpgid(k: Linux, pid: int, *_: int) -> int:
    if pid not in (0, k.ids.pid):
        return -errno.ESRCH
    return k.ids.pid


# -- processes: not yet ---------------------------------------------------------


def no_processes(k: Linux, what: str) -> int:
    """fork, clone and execve are the next step; until then a program that
    needs them ends here, with one line saying so and status 128 + SIGKILL,
    never carrying on as if the call had failed harmlessly."""
    k.warn_once("processes", f"the program calls {what}: new processes are not supported yet")
    raise ProcessExit(ExitStatus(signal=9))


@syscall(2)  # fork
def _fork(k: Linux, *_: int) -> int:
    return no_processes(k, "fork")


@syscall(190)  # vfork
def _vfork(k: Linux, *_: int) -> int:
    return no_processes(k, "vfork")


@syscall(11)  # execve
@syscall(358)  # execveat
def _execve(k: Linux, *_: int) -> int:
    return no_processes(k, "execve")
