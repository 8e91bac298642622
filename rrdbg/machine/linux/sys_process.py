"""Processes: ids, kill between processes, uname, limits, prctl, process
groups and sessions; fork, vfork and clone of a process, execve, wait4 /
waitpid / waitid and the end of a process (exit and the thread calls are
sys_threads.py; process.py holds what processes share).

Handlers register themselves with ``@syscall(nr)`` (kernel.py); they get the
``Linux`` object and the six syscall arguments and return the result
(a negative errno for failures, ``BLOCKED`` when the task now waits).  What
needs the machine (a new address space and CPU for a child, a program
loaded by exec) is handed to it (``Linux.new_processes``,
``Linux.exec_request``) and done after the call.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import struct

from rrdbg.errors import LoaderError
from rrdbg.machine.linux.fdtable import FileKind
from rrdbg.machine.linux.kernel import (
    _AT_EMPTY_PATH,
    _AT_FDCWD,
    _RLIM_INFINITY64,
    _UTSNAME,
    BLOCKED,
    Linux,
    LinuxState,
    _signed,
    syscall,
)
from rrdbg.machine.linux.process import (
    CLD_EXITED,
    CLD_KILLED,
    SIGCHLD,
    ExecRequest,
    NewProcess,
    Zombie,
)
from rrdbg.machine.linux.signals import SI_USER, SIG_IGN, SigAction, SignalState, siginfo
from rrdbg.machine.linux.task import Task, Wait
from rrdbg.machine.loader import parse_program


@syscall(20)  # getpid
def _getpid(k: Linux, *_: int) -> int:
    return k.ids.pid


@syscall(64)  # getppid
def _getppid(k: Linux, *_: int) -> int:
    return k.ppid


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
    if not 0 <= sig <= 64:
        return -errno.EINVAL
    who = _signed(pid)
    if who > 0:
        target = k.sys.owner(who)
        if target is None:
            return 0 if who in k.sys.zombies else -errno.ESRCH
        targets = [target]
    elif who == -1:
        targets = [p for p in k.sys.live() if p is not k]  # Linux spares the caller
        if not targets:
            return -errno.ESRCH
    else:
        targets = k.sys.group(k.pgid if who == 0 else -who)
        if not targets:
            return -errno.ESRCH
    if sig:
        info = siginfo(sig, SI_USER, k.pid, k.ids.uid)
        for target in targets:
            if target is k:
                k.kill_self(sig)
            else:
                target.send(sig, info)
    return 0


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
    return k.pgid


def _process(k: Linux, pid: int) -> Linux | None:
    """The process ``pid`` names (0: the caller)."""
    return k if pid == 0 else k.sys.owner(_signed(pid))


@syscall(132)  # getpgid
def _getpgid(k: Linux, pid: int, *_: int) -> int:
    target = _process(k, pid)
    return -errno.ESRCH if target is None else target.pgid


@syscall(147)  # getsid
def _getsid(k: Linux, pid: int, *_: int) -> int:
    target = _process(k, pid)
    return -errno.ESRCH if target is None else target.sid


@syscall(57)  # setpgid
def _setpgid(k: Linux, pid: int, pgid: int, *_: int) -> int:
    if _signed(pgid) < 0:
        return -errno.EINVAL
    target = _process(k, pid)
    if target is None or (target is not k and target.state.ppid != k.pid):
        return -errno.ESRCH
    if target.sid != k.sid:
        return -errno.EPERM
    if target.state.sid == target.pid:
        return -errno.EPERM  # a session leader (setsid) stays in its group
    group = pgid or target.pid
    if group != target.pid and not any(p.sid == k.sid for p in k.sys.group(group)):
        return -errno.EPERM
    target.state.pgid = group
    return 0


@syscall(66)  # setsid
def _setsid(k: Linux, *_: int) -> int:
    if k.state.pgid == k.pid or (k.pid != k.sys.root and k.sys.group(k.pid)):
        return -errno.EPERM  # already a group leader
    k.state.pgid = k.state.sid = k.pid
    return k.pid


# -- new processes -------------------------------------------------------------

CLONE_VM = 0x100
CLONE_VFORK = 0x4000
CLONE_SETTLS = 0x80000
CLONE_PARENT_SETTID = 0x100000
CLONE_CHILD_CLEARTID = 0x200000
CLONE_CHILD_SETTID = 0x1000000


def new_process(
    k: Linux, flags: int, stack: int, parent_tid: int, tls: int, child_tid: int, exit_signal: int
) -> int:
    """fork, vfork and clone without CLONE_THREAD: a child process with a
    copy of the caller's address space (the machine copies it after the
    call), a copy of its fd table referring to the same open files, its
    signal dispositions, mask and alternate stack, and its calling thread
    only.  The parent gets the child's pid; the child returns 0 (ESP =
    ``stack`` if given).  A vfork parent waits until the child execs or
    ends.  With CLONE_VM (posix_spawn, vfork-like clones) the child runs
    on a copy too, and what it wrote goes back into the parent's memory
    when it execs or ends (``vm_parent``): the parent, suspended meanwhile,
    sees the child's writes (posix_spawn's error code) as if the memory
    had been shared."""
    if not 0 <= exit_signal <= 64:
        return -errno.EINVAL
    me = k.state.task
    pid = k.sys.new_pid()
    task = Task(
        tid=pid,
        sigmask=me.sigmask,
        signals=SignalState(altstack=me.signals.altstack),
        tls=dict(me.tls),
        comm=me.comm,
        tid_address=child_tid if flags & CLONE_CHILD_CLEARTID else 0,
    )
    if flags & CLONE_SETTLS:
        # (sys_threads imports this module: its TLS helper comes late.)
        from rrdbg.machine.linux.sys_threads import install_tls

        failed = install_tls(k, task, tls, allocate=False)
        if failed:
            return failed
    st = k.state
    child = LinuxState(
        brk_start=st.brk_start,
        brk=st.brk,
        fdt=st.fdt.fork(),
        sigactions=dict(st.sigactions),
        dumpable=st.dumpable,
        umask=st.umask,
        cwd=st.cwd,
        task=task,
        ppid=k.pid,
        pgid=k.pgid,
        sid=k.sid,
        exit_signal=exit_signal,
        vfork_parent=k.pid if flags & CLONE_VFORK else 0,
        vm_parent=k.pid if flags & CLONE_VM else 0,
        born=k._icount(),
        arg_start=st.arg_start,
        arg_end=st.arg_end,
    )
    if flags & CLONE_PARENT_SETTID:
        k.mem.write(parent_tid, struct.pack("<I", pid))
    ids = dataclasses.replace(k.ids, pid=pid, ppid=k.pid)
    settid = child_tid if flags & CLONE_CHILD_SETTID else 0
    k.new_processes.append(NewProcess(child, ids, stack, settid))
    k.need_signal_check = True
    if flags & CLONE_VFORK:
        return k.block(Wait("vfork", address=pid, timeout=pid))
    return pid


@syscall(2)  # fork
def _fork(k: Linux, *_: int) -> int:
    return new_process(k, 0, 0, 0, 0, 0, SIGCHLD)


@syscall(190)  # vfork
def _vfork(k: Linux, *_: int) -> int:
    return new_process(k, CLONE_VM | CLONE_VFORK, 0, 0, 0, 0, SIGCHLD)


# -- waiting for children ---------------------------------------------------------------

_WNOHANG = 1
_WEXITED = 4
_WNOWAIT = 0x01000000
_P_ALL, _P_PID, _P_PGID = 0, 1, 2


def _selected(k: Linux, who: int) -> list[int]:
    """The caller's children that wait4's pid argument selects."""
    out = []
    for pid in k.sys.children(k.pid):
        live = k.sys.procs.get(pid)
        pgid = live.pgid if live is not None else k.sys.zombies[pid].pgid
        same_group = pgid == (k.pgid if who == 0 else -who)
        if who in (-1, pid) or (who <= 0 and same_group):
            out.append(pid)
    return out


def _reap(k: Linux, who: int, options: int) -> Zombie | int:
    """The first selected child that has ended (reaped unless WNOWAIT); 0
    if none has yet and WNOHANG; -ECHILD with no such child; BLOCKED
    otherwise (the call is made again when a child ends)."""
    chosen = _selected(k, who)
    if not chosen:
        return -errno.ECHILD
    for pid in chosen:
        z = k.sys.zombies.get(pid)
        if z is not None:
            if not options & _WNOWAIT:
                del k.sys.zombies[pid]
            return z
    if options & _WNOHANG:
        return 0
    return k.block(Wait("child"))


@syscall(114)  # wait4
def _wait4(k: Linux, pid: int, status: int, options: int, rusage: int, *_: int) -> int:
    if options & ~(_WNOHANG | 2 | 8 | 0x20000000 | 0x40000000 | 0x80000000):
        return -errno.EINVAL
    got = _reap(k, _signed(pid), options & _WNOHANG)
    if isinstance(got, int):
        return got
    if status:
        k.mem.write(status, struct.pack("<i", got.wait_status))
    if rusage:
        k.mem.write(rusage, bytes(72))
    return got.pid


@syscall(7)  # waitpid
def _waitpid(k: Linux, pid: int, status: int, options: int, *_: int) -> int:
    return _wait4(k, pid, status, options, 0, 0, 0)


@syscall(284)  # waitid
def _waitid(
    k: Linux, idtype: int, ident: int, infop: int, options: int, rusage: int, *_: int
) -> int:
    if not options & _WEXITED or idtype not in (_P_ALL, _P_PID, _P_PGID):
        return -errno.EINVAL
    if idtype == _P_PID and _signed(ident) <= 0:
        return -errno.EINVAL
    who = -1 if idtype == _P_ALL else ident if idtype == _P_PID else -(ident or k.pgid)
    if who == -1 and idtype == _P_PGID:
        who = 0
    got = _reap(k, who, options & (_WNOHANG | _WNOWAIT))
    if isinstance(got, int):
        if got == 0 and infop:
            k.mem.write(infop, bytes(24))  # nobody ended: si_signo and si_pid are 0
        return got
    if infop:
        code, value = (CLD_KILLED, got.signal) if got.signal is not None else (CLD_EXITED, got.code)
        k.mem.write(infop, siginfo(SIGCHLD, code, got.pid, got.uid, value or 0))
    if rusage:
        k.mem.write(rusage, bytes(72))
    return 0


def process_ended(k: Linux, code: int | None, signal: int | None) -> None:
    """The kernel side of a process's end (every thread gone): its
    descriptors closed, its children given to init, its parent told
    (SIGCHLD, a zombie to wait for, a vfork parent resumed).  The machine
    drops its address space."""
    sys = k.sys
    for fd in sorted(k.fdt.fds):
        k._close_fd(fd)
    k.state.timers.clear()
    for t in k.state.tasks():
        t.wait, t.result = Wait("exited"), None
    del sys.procs[k.pid]
    for pid in sys.children(k.pid):
        if pid in sys.zombies:
            del sys.zombies[pid]  # init reaps them
        else:
            sys.procs[pid].state.ppid = 1
    if k.pid == sys.root:
        sys.root_code, sys.root_signal = code, signal
    _resume_vfork_parent(k)
    parent = sys.procs.get(k.state.ppid)
    if parent is None:
        return  # the host's process (or init) is the parent
    handler = parent.action(SIGCHLD)
    if handler.handler != SIG_IGN and not handler.flags & 2:  # SA_NOCLDWAIT
        sys.zombies[k.pid] = Zombie(k.pid, k.state.ppid, k.pgid, k.ids.uid, code, signal)
    if k.state.exit_signal:
        sig = k.state.exit_signal
        how, value = (CLD_KILLED, signal) if signal is not None else (CLD_EXITED, code)
        parent.send(sig, siginfo(sig, how, k.pid, k.ids.uid, value or 0))
    for t in parent.state.tasks():
        if t.wait is not None and t.wait.kind == "child":
            parent.wake(t, BLOCKED)


def _resume_vfork_parent(k: Linux) -> None:
    """The child of a vfork execs or ends: its parent's vfork returns."""
    parent = k.sys.procs.get(k.state.vfork_parent)
    k.state.vfork_parent = 0
    if parent is None:
        return
    for t in parent.state.tasks():
        if t.wait is not None and t.wait.kind == "vfork" and t.wait.address == k.pid:
            parent.wake(t, k.pid)


# -- execve -----------------------------------------------------------------------

#: How many #! interpreters may lead to the program (Linux's limit is 4 + 1).
_MAX_INTERPRETERS = 5
_ARG_MAX = 128 * 1024 * 4


def _strings(k: Linux, addr: int) -> list[bytes]:
    """A NULL-terminated array of string pointers (argv, envp)."""
    out: list[bytes] = []
    total = 0
    while addr:
        (ptr,) = struct.unpack("<I", k.mem.read(addr + 4 * len(out), 4))
        if not ptr:
            break
        out.append(k.mem.read_cstring(ptr, 128 * 1024))
        total += len(out[-1]) + 5
        if total > _ARG_MAX:
            raise _TooBig
    return out


class _TooBig(Exception):
    pass


def _read_executable(k: Linux, path: bytes) -> bytes | int:
    """The bytes of the file ``path`` names, if it may be executed."""
    handle = k.host.open(path, os.O_RDONLY, 0)
    if handle < 0:
        return handle
    try:
        st = k.host.fstat(handle)
        if isinstance(st, int):
            return st
        if st.mode & 0o170000 != 0o100000:
            return -errno.EACCES  # a directory, a device
        if k.host.access(path, os.X_OK) < 0:
            return -errno.EACCES
        return k.host.map_file(handle, 0, st.size) if st.size else b""
    finally:
        k.host.close(handle)


def exec_program(k: Linux, path: bytes, argv: list[bytes], envp: list[bytes]) -> int:
    """execve's checks: the file, its #! line, its ELF headers and dynamic
    loader; then the machine replaces the process's program after the call
    (``Linux.exec_request``).  A failure returns an errno and changes
    nothing, as on Linux."""
    if not path:
        return -errno.ENOENT
    given = path
    for _ in range(_MAX_INTERPRETERS):
        resolved = k._resolve(_AT_FDCWD, k.own_exe(path))
        if isinstance(resolved, int):
            return resolved
        image = _read_executable(k, resolved)
        if isinstance(image, int):
            return image
        if image[:2] != b"#!":
            break
        line = image[2:].split(b"\n", 1)[0][:254].strip(b" \t")
        if not line or (len(image) > 256 and b"\n" not in image[:256]):
            return -errno.ENOEXEC
        interp, _, arg = line.replace(b"\t", b" ").partition(b" ")
        arg = arg.strip(b" \t")
        argv = [interp, *([arg] if arg else []), path, *argv[1:]]
        path = interp
    else:
        return -errno.ELOOP
    name = os.fsdecode(resolved)
    try:
        program = parse_program(name, image)
    except LoaderError as exc:
        if image[:4] == b"\x7fELF":
            # Linux would run it; rrdbg cannot: say so once, not just ENOEXEC.
            k.warn_once(f"exec {name}", f"execve: {exc}")
        return -errno.ENOEXEC
    if program.interp is not None and k.host.access(os.fsencode(program.interp), os.R_OK) < 0:
        return -errno.ENOENT
    k.exec_request = ExecRequest(resolved, image, argv, envp, given)
    k.need_signal_check = True
    return 0


@syscall(11)  # execve
def _execve(k: Linux, path: int, argv: int, envp: int, *_: int) -> int:
    try:
        args, env = _strings(k, argv), _strings(k, envp)
    except _TooBig:
        return -errno.E2BIG
    return exec_program(k, k._path(path), args, env)


@syscall(358)  # execveat
def _execveat(k: Linux, dirfd: int, path: int, argv: int, envp: int, flags: int, *_: int) -> int:
    try:
        args, env = _strings(k, argv), _strings(k, envp)
    except _TooBig:
        return -errno.E2BIG
    name = k._path(path)
    if not name and flags & _AT_EMPTY_PATH:
        f = k.fdt.file(_signed(dirfd))
        if f is None:
            return -errno.EBADF
        if f.kind is not FileKind.FILE:
            return -errno.EACCES
        name = f.path
    elif not name.startswith(b"/") and _signed(dirfd) != _AT_FDCWD:
        resolved = k._resolve(dirfd, name)
        if isinstance(resolved, int):
            return resolved
        name = resolved
    return exec_program(k, name, args, env)


def exec_kernel_side(k: Linux, comm: bytes) -> None:
    """What execve changes in the kernel side of the process (the machine
    gives it the new address space): other threads end and the caller
    takes the pid; FD_CLOEXEC descriptors close; handled signals go back to
    their default action (ignored ones stay ignored); the alternate stack,
    POSIX timers, TLS, clear-tid address and robust list are gone; the mask,
    pending signals and interval timers stay; a vfork parent resumes."""
    st = k.state
    me = st.task
    st.others.clear()
    st.leader_code = None
    me.tid = k.pid
    for fd in st.fdt.close_on_exec():
        k._close_fd(fd)
    for sig, raw in list(st.sigactions.items()):
        if SigAction.decode(raw).handler == SIG_IGN:
            st.sigactions[sig] = SigAction(handler=SIG_IGN).encode()
        else:
            del st.sigactions[sig]
    me.signals.altstack = SignalState().altstack
    me.signals.saved_mask = None
    me.signals.restart = 0
    for number in [n for n in st.timers if n >= 0]:
        del st.timers[number]
    me.tls.clear()
    me.tid_address = me.robust_list = 0
    me.comm = comm
    st.dumpable = 1
    _resume_vfork_parent(k)
