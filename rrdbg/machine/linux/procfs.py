"""/proc for the guest: the files about processes come from the emulated kernel.

Role: ``proc_file(k, path)`` gives the contents of a /proc file that
describes a process or thread of the machine (``/proc/self``, ``/proc/PID``,
``/proc/thread-self``, their ``task/TID`` entries): ``cmdline``, ``comm``,
``stat``, ``status``, ``maps``.  The kernel serves them as read-only files
made from its own state, so a program never reads rrdbg's Python process
through them.  Other names under a process's directory, and the directories
of host processes, are ENOENT; files about the whole machine (cpuinfo,
meminfo, ...) are not ours (None) and come from the host, recorded.

Invariant: the contents are a function of the machine state alone, so a
replay produces the same bytes (the recording also keeps them).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from rrdbg.errors import GuestMemoryError
from rrdbg.machine.linux.kernel import NS_PER_INSN, USER_TOP
from rrdbg.machine.linux.signals import SIG_DFL, SIG_IGN, bit
from rrdbg.machine.linux.task import Task
from rrdbg.machine.memory import perms_text

if TYPE_CHECKING:
    from rrdbg.machine.linux.kernel import Linux

#: Clock ticks per second for /proc's times (USER_HZ).
_HZ = 100
#: Names under /proc/PID and /proc/PID/task/TID served from here; the fd
#: and exe entries are the kernel's own (own_fd, own_exe).
_PROCESS_FILES = {b"cmdline", b"comm", b"stat", b"status", b"maps"}
_THREAD_FILES = {b"comm", b"stat", b"status"}
#: Names under /proc/PID that describe the machine more than the process
#: (the mounts, the limits, the cgroup): the host's, read as its
#: /proc/self's (recorded).
_HOST_FILES = {b"mounts", b"mountinfo", b"mountstats", b"cgroup", b"limits"}


def normal(k: Linux, path: bytes) -> bytes:
    """A /proc path with ``//``, ``.`` and ``..`` resolved by name (what
    the program means: /proc holds no links to other directories but self
    and thread-self, and ``..`` of a process's directory is /proc); other
    paths (and every path in a replay of a recording made before) as the
    program gave them."""
    if not path.startswith(b"/") or not k.sys.kernel_proc:
        return path
    parts: list[bytes] = []
    for part in path.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    if not parts or parts[0] != b"proc":
        return path
    return b"/" + b"/".join(parts)


def _split(k: Linux, path: bytes) -> tuple[Linux, list[bytes], int] | int | None:
    """(the process, the names after its directory, the thread for
    /proc/thread-self) of a /proc path about a process of the machine;
    -ENOENT for a pid that is not one; None for a path about no process."""
    if not path.startswith(b"/proc/") or not k.sys.kernel_proc:
        return None
    parts = [p for p in path[len(b"/proc/") :].split(b"/") if p not in (b"", b".")]
    if not parts:
        return None
    head, rest = parts[0], parts[1:]
    if head == b"self":
        return k, rest, 0
    if head == b"thread-self":
        return k, rest, k.state.task.tid
    if head.isdigit():
        found = k.sys.procs.get(int(head))
        return -errno.ENOENT if found is None else (found, rest, 0)
    return None  # about the machine: the host's, recorded


_DT_DIR, _DT_REG, _DT_LNK = 4, 8, 10
#: A process's directory: (name, d_type).
_PROCESS_DIR = [
    (b"cgroup", _DT_REG),
    (b"cmdline", _DT_REG),
    (b"comm", _DT_REG),
    (b"cwd", _DT_LNK),
    (b"exe", _DT_LNK),
    (b"fd", _DT_DIR),
    (b"limits", _DT_REG),
    (b"maps", _DT_REG),
    (b"mountinfo", _DT_REG),
    (b"mounts", _DT_REG),
    (b"root", _DT_LNK),
    (b"stat", _DT_REG),
    (b"status", _DT_REG),
    (b"task", _DT_DIR),
]
_THREAD_DIR = [(b"comm", _DT_REG), (b"stat", _DT_REG), (b"status", _DT_REG)]


class Listing(list[tuple[bytes, int]]):
    """A /proc directory's entries: (name, d_type)."""

    def packed(self) -> bytes:
        """As ``fs_call("procdir")`` takes them: d_type, name, NUL each."""
        return b"".join(bytes([kind]) + name + b"\0" for name, kind in self)


def proc_file(k: Linux, path: bytes) -> bytes | Listing | int | None:
    """The contents of /proc file ``path`` (absolute, as the program gave
    it), the entries of a /proc directory about processes (a ``Listing``),
    -errno, or None when it is not about a process."""
    if path.rstrip(b"/") == b"/proc" and k.sys.kernel_proc:
        # The machine's processes (the host adds its entries that are not pids).
        pids = [(b"%d" % pid, _DT_DIR) for pid in sorted(k.sys.procs)]
        return Listing([(b"self", _DT_LNK), (b"thread-self", _DT_LNK), *pids])
    split = _split(k, path)
    if split is None or isinstance(split, int):
        return split
    owner, rest, tid = split
    if not rest and not tid:
        return Listing(_PROCESS_DIR)
    if rest == [b"fd"] and owner is k:
        # With the descriptor this open is about to give (Linux lists the
        # directory when it is read, with its own descriptor in it).
        fds = set(owner.fdt.fds)
        coming = owner.fdt.lowest_free()
        if coming >= 0:
            fds.add(coming)
        return Listing([(b"%d" % fd, _DT_LNK) for fd in sorted(fds)])
    if rest == [b"task"]:
        live = [t.tid for t in owner.state.tasks() if not t.exited]
        return Listing([(b"%d" % t, _DT_DIR) for t in live])
    if (not rest and tid) or (len(rest) == 2 and rest[0] == b"task" and rest[1].isdigit()):
        return Listing(_THREAD_DIR) if _task(owner, tid or int(rest[1])) else -errno.ENOENT
    if len(rest) == 1 and rest[0] in _HOST_FILES:
        return None  # host_path gives the host's file
    if rest and rest[0] in (b"fd", b"exe"):
        # The calling process's program and descriptors are the kernel's
        # own (own_exe, own_fd); the fd directory and other processes' are
        # not offered.
        own = rest == [b"exe"] or (len(rest) == 2 and rest[1].isdigit())
        named = k.own_fd(path) is not None or k.own_exe(path) != path
        return None if owner is k and own and named else -errno.ENOENT
    if len(rest) == 3 and rest[0] == b"task" and rest[1].isdigit():
        tid, rest = int(rest[1]), rest[2:]
    if tid:
        task = _task(owner, tid)
        if task is None or len(rest) != 1 or rest[0] not in _THREAD_FILES:
            return -errno.ENOENT
        return _render(k, owner, task, rest[0], thread=True)
    if len(rest) != 1 or rest[0] not in _PROCESS_FILES:
        return -errno.ENOENT
    return _render(k, owner, _leader(owner), rest[0], thread=False)


def proc_link(k: Linux, path: bytes) -> bytes | int | None:
    """readlink of a /proc link about a process of the machine (``exe``,
    ``cwd``, ``root``, ``fd/N``): its target, -errno, or None when ``path``
    is not about a process (the host's link, recorded)."""
    split = _split(k, path)
    if split is None or isinstance(split, int):
        return split
    owner, rest, tid = split
    if not rest:
        # /proc/self and /proc/thread-self are the links; a pid's is a directory.
        head = path[len(b"/proc/") :].split(b"/", 1)[0]
        if head == b"self":
            return b"%d" % owner.pid
        if head == b"thread-self":
            return b"%d/task/%d" % (owner.pid, tid)
        return -errno.EINVAL
    if rest == [b"exe"]:
        return owner.exe_path
    if rest == [b"root"]:
        return b"/"
    if rest == [b"cwd"]:
        return owner.state.cwd or owner.host.getcwd()
    if len(rest) == 2 and rest[0] == b"fd" and rest[1].isdigit():
        f = owner.fdt.file(int(rest[1]))
        if f is None:
            return -errno.ENOENT
        if not f.path:  # the console rrdbg was given: what the host's is
            return owner.host.readlink(b"/proc/self/fd/%d" % f.handle)
        if f.path.startswith(b"/") or f.path.startswith(b"pipe:"):
            return f.path
        base = owner.state.cwd or owner.host.getcwd()
        return base.rstrip(b"/") + b"/" + f.path
    names = {name for name, _ in _PROCESS_DIR}
    known = (len(rest) == 1 and rest[0] in names) or rest[:1] == [b"task"] or rest == [b"fd"]
    if known or (len(rest) == 2 and rest[0] == b"fd"):
        return -errno.EINVAL if known else -errno.ENOENT  # not a link / no such fd
    return -errno.ENOENT


def host_path(k: Linux, path: bytes) -> bytes:
    """The host path for a /proc file about the machine asked through a
    process of the machine (``/proc/PID/mounts``): the host's /proc/self's."""
    split = _split(k, path)
    if split is None or isinstance(split, int):
        return path
    _owner, rest, _tid = split
    return b"/proc/self/" + rest[0] if len(rest) == 1 and rest[0] in _HOST_FILES else path


def comm_target(k: Linux, path: bytes) -> Task | None:
    """The task whose name a write to ``path`` sets (``/proc/self/comm``,
    ``/proc/self/task/TID/comm``: pthread_setname_np for another thread),
    or None."""
    split = _split(k, path)
    if split is None or isinstance(split, int) or not path.endswith(b"/comm"):
        return None
    owner, rest, tid = split
    if tid and rest == [b"comm"]:
        return _task(owner, tid)
    if rest == [b"comm"]:
        return _leader(owner)
    if len(rest) == 3 and rest[0] == b"task" and rest[1].isdigit():
        return _task(owner, int(rest[1]))
    return None


def _task(owner: Linux, tid: int) -> Task | None:
    return next((t for t in owner.state.tasks() if t.tid == tid and not t.exited), None)


def _leader(owner: Linux) -> Task:
    """The thread group leader (the first thread), or the first one left."""
    tasks = owner.state.tasks()
    return next((t for t in tasks if t.tid == owner.pid), tasks[0])


def _name(owner: Linux, task: Task) -> bytes:
    return task.comm or owner.exe_path.rsplit(b"/", 1)[-1][:15]


def _state(k: Linux, owner: Linux, task: Task) -> tuple[str, str]:
    if task is k.state.task:
        return "R", "running"
    return ("S", "sleeping") if task.wait is not None else ("R", "running")


def _sizes(owner: Linux) -> tuple[int, int, int]:
    """(mapped bytes, stack bytes, data bytes) of the user address space."""
    total = stack = data = 0
    for r in owner.mem.regions():
        if r.start >= USER_TOP:
            continue
        total += r.size
        if r.name == "[stack]":
            stack += r.size
        elif r.perms & 2 and r.name in ("", "[heap]"):
            data += r.size
    return total, stack, data


def _ticks(ns: int) -> int:
    return ns * _HZ // 10**9


def _render(k: Linux, owner: Linux, task: Task, name: bytes, *, thread: bool) -> bytes:
    if name == b"comm":
        return _name(owner, task) + b"\n"
    if name == b"cmdline":
        st = owner.state
        if not st.arg_start or st.arg_end <= st.arg_start:
            return b""
        try:
            return owner.mem.read(st.arg_start, st.arg_end - st.arg_start, 0)
        except GuestMemoryError:  # the program unmapped its stack: nothing to show
            return b""
    if name == b"maps":
        return _maps(owner)
    if name == b"stat":
        return _stat(k, owner, task, thread)
    return _status(k, owner, task, thread)


def _maps(owner: Linux) -> bytes:
    # Adjacent regions alike are one mapping, as Linux merges its VMAs
    # (the heap grown by brk in steps).
    merged: list[tuple[int, int, int, str]] = []  # start, end, perms, name
    for r in owner.mem.regions():
        if r.start >= USER_TOP:
            continue  # the GDT's page is rrdbg's, not the program's
        if merged and merged[-1][1] == r.start and merged[-1][2:] == (r.perms, r.name):
            merged[-1] = (merged[-1][0], r.end, r.perms, r.name)
        else:
            merged.append((r.start, r.end, r.perms, r.name))
    lines = []
    for start, end, perms, name in merged:
        head = f"{start:08x}-{end:08x} {perms_text(perms)}p 00000000 00:00 0"
        lines.append(f"{head:<72} {name}" if name else head)
    return "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")


def _stat(k: Linux, owner: Linux, task: Task, thread: bool) -> bytes:
    state, _ = _state(k, owner, task)
    total, _stack, _data = _sizes(owner)
    threads = len([t for t in owner.state.tasks() if not t.exited])
    cpu = _ticks(k._icount() * NS_PER_INSN)  # CPU time is counted machine-wide
    start = _ticks(owner.state.born * NS_PER_INSN)
    fields = [
        task.tid if thread else owner.pid,
        state,
        owner.ppid,
        owner.pgid,
        owner.sid,
        0,  # tty_nr
        -1,  # tpgid
        0x400000,  # flags
        0,
        0,
        0,
        0,  # minflt cminflt majflt cmajflt
        cpu,
        0,
        0,
        0,  # utime stime cutime cstime
        20,
        0,  # priority nice
        threads,
        0,  # itrealvalue
        start,
        total,  # vsize
        total // 4096,  # rss (pages)
        0xFFFFFFFF,  # rsslim
        *(
            [0] * 10
        ),  # startcode endcode startstack kstkesp kstkeip signal blocked sigignore sigcatch wchan
        0,
        0,  # nswap cnswap
        owner.state.exit_signal,
        0,
        0,
        0,
        0,
        0,
        0,  # processor rt_priority policy blkio guest_time cguest_time
        0,
        0,
        0,
        owner.state.arg_start,
        owner.state.arg_end,
        0,
        0,
        0,
    ]
    name = _name(owner, task).decode("utf-8", "replace")
    return f"{fields[0]} ({name}) {' '.join(str(f) for f in fields[1:])}\n".encode()


def _status(k: Linux, owner: Linux, task: Task, thread: bool) -> bytes:
    state, word = _state(k, owner, task)
    total, stack, data = _sizes(owner)
    ids = owner.ids
    ignored = caught = 0
    for sig in range(1, 65):
        handler = owner.action(sig).handler
        if handler == SIG_IGN:
            ignored |= bit(sig)
        elif handler != SIG_DFL:
            caught |= bit(sig)
    shared = 0
    for sig, _ in owner.state.shared:
        shared |= bit(sig)
    threads = len([t for t in owner.state.tasks() if not t.exited])
    cpus = max(k.sys.cpus, 1)
    rows = [
        ("Name", _name(owner, task).decode("utf-8", "replace")),
        ("Umask", f"{owner.state.umask:04o}"),
        ("State", f"{state} ({word})"),
        ("Tgid", owner.pid),
        ("Ngid", 0),
        ("Pid", task.tid if thread else owner.pid),
        ("PPid", owner.ppid),
        ("TracerPid", 0),
        ("Uid", f"{ids.uid}\t{ids.euid}\t{ids.euid}\t{ids.euid}"),
        ("Gid", f"{ids.gid}\t{ids.egid}\t{ids.egid}\t{ids.egid}"),
        ("FDSize", 256),
        ("Groups", ""),
        ("VmPeak", f"{total // 1024:8} kB"),
        ("VmSize", f"{total // 1024:8} kB"),
        ("VmHWM", f"{total // 1024:8} kB"),
        ("VmRSS", f"{total // 1024:8} kB"),
        ("VmData", f"{data // 1024:8} kB"),
        ("VmStk", f"{stack // 1024:8} kB"),
        ("Threads", threads),
        ("SigQ", f"{len(task.signals.queue)}/7936"),
        ("SigPnd", f"{task.signals.pending_mask():016x}"),
        ("ShdPnd", f"{shared:016x}"),
        ("SigBlk", f"{task.sigmask:016x}"),
        ("SigIgn", f"{ignored:016x}"),
        ("SigCgt", f"{caught:016x}"),
        ("Cpus_allowed", f"{(1 << cpus) - 1:x}"),
        ("Cpus_allowed_list", "0" if cpus == 1 else f"0-{cpus - 1}"),
        ("voluntary_ctxt_switches", 0),
        ("nonvoluntary_ctxt_switches", 0),
    ]
    return "".join(f"{key}:\t{value}\n" for key, value in rows).encode()
