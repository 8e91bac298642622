#!/usr/bin/env python3
"""A corpus of real i386 programs, run natively, under ``rrdbg run`` and as
``rrdbg record`` + ``rrdbg replay``, with the results compared.

    python tools/corpus.py [--cache DIR] [--only CATEGORY] [-k SUBSTRING]
                           [--jobs N] [--json FILE] [--refresh] [--list]

Steps (each cached under the cache directory, default ~/.cache/rrdbg-corpus,
or $RRDBG_CORPUS_CACHE, or --cache):

1. fetch: a private apt configuration (its own sources list for Debian
   bookworm i386 with the host's mirror URIs, its own state, cache and
   preferences: nothing system-wide changes) is updated, the packages in
   PACKAGES are resolved with their recursive dependencies, downloaded with
   ``apt-get download`` and unpacked with ``dpkg-deb -x`` into one sysroot.
   A stamp with the package list makes later runs skip the step (and need no
   network).  When apt or the mirror cannot be reached the script prints one
   line "corpus: Debian package mirror unreachable: ..." and exits with
   status 3.
2. build: the C programs in tools/corpus/*.c are built with ``gcc -m32``
   (static, and some dynamic too).
3. inputs: deterministic input data (text, CSV, JSON, a directory tree with
   fixed mtimes, scripts for sqlite3, lua, python, perl, awk, sed, bc, jq,
   compressed files, a 1 MiB text with its .gz and a multi-block .xz for the
   threaded compressors, a tar archive, ext2 images).
4. run: every invocation runs in a fresh copy of the inputs, natively (twice,
   to catch a nondeterministic invocation), under ``rrdbg run``, and under
   ``rrdbg record`` followed by ``rrdbg replay``.  Compared: stdout bytes, the
   exit status and the files left in the working directory (names, kinds,
   sizes, content hashes, link targets; not times).

Output: a per-category table, "N of M work", and one line per failure with
what differed and rrdbg's own diagnostics (its stderr lines starting with
"rrdbg: ", e.g. "unsupported syscall NAME (NR) returns ENOSYS").

Exit status: 0 every expectation met (invocations not in KNOWN_FAILURES work
in both rrdbg modes), 1 an expectation failed,
2 a setup error (no gcc -m32, bad option), 3 the package mirror is
unreachable.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
C_SOURCES = Path(__file__).resolve().parent / "corpus"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SETUP = 2
EXIT_UNREACHABLE = 3

UNREACHABLE_PREFIX = "corpus: Debian package mirror unreachable: "

# The Debian i386 packages the corpus runs (their dependencies come along).
PACKAGES: tuple[str, ...] = (
    "libc6",
    "busybox-static",
    "bash-static",
    "zsh-static",
    "mksh",
    "sash",
    "e2fsck-static",
    "coreutils",
    "grep",
    "sed",
    "gawk",
    "gzip",
    "bzip2",
    "xz-utils",
    "sqlite3",
    "lua5.4",
    "bc",
    "jq",
    "python3.11",
    "perl-base",
    "pigz",
    "dash",
    "findutils",
    "make",
)

SUITE = "bookworm"
DEFAULT_MIRRORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("http://deb.debian.org/debian", ("bookworm", "bookworm-updates")),
    ("http://deb.debian.org/debian-security", ("bookworm-security",)),
)
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

# Fixed times: inputs' mtimes, mke2fs's clock.
FIXED_MTIME = 981173106  # 2001-02-03 04:05:06 UTC

RRDBG_TIMEOUT = 120.0
NATIVE_TIMEOUT = 60.0

WORK = "work"

# Invocations expected to fail today, with the reason.  The test asserts that
# every other invocation in an expected-to-work category matches the native
# run in both rrdbg modes.  Remove an entry once the emulator handles it (the
# report says "known failure now works" for such entries).
KNOWN_FAILURES: dict[str, str] = {}


# --------------------------------------------------------------------------
# Errors and small helpers


class SetupError(Exception):
    """A step before the runs cannot be done (exit status 2)."""


class Unreachable(Exception):
    """apt or the package mirror cannot be reached (exit status 3)."""


def log(message: str) -> None:
    print(f"corpus: {message}", file=sys.stderr, flush=True)


def run_quiet(
    argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"


# --------------------------------------------------------------------------
# Step 1: the private apt configuration and the sysroot


@dataclass(frozen=True)
class Cache:
    root: Path

    @property
    def apt(self) -> Path:
        return self.root / "apt"

    @property
    def debs(self) -> Path:
        return self.root / "debs"

    @property
    def sysroot(self) -> Path:
        return self.root / "sysroot"

    @property
    def sysroot_stamp(self) -> Path:
        return self.root / "sysroot.stamp"

    @property
    def cprogs(self) -> Path:
        return self.root / "cprogs"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    @property
    def work(self) -> Path:
        return self.root / "work"


def cache_dir(variable: str, name: str) -> Path:
    """$variable if set, else NAME under $XDG_CACHE_HOME or ~/.cache."""
    env = os.environ.get(variable)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / name


def default_cache() -> Path:
    return cache_dir("RRDBG_CORPUS_CACHE", "rrdbg-corpus")


def host_mirrors() -> list[tuple[str, tuple[str, ...], str | None]]:
    """(URI, bookworm suites, signed-by) from the host's apt sources; the
    Debian defaults when the host names none."""
    found: list[tuple[str, tuple[str, ...], str | None]] = []
    sources_d = Path("/etc/apt/sources.list.d")
    for path in sorted(sources_d.glob("*.sources")) if sources_d.is_dir() else []:
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            suites = tuple(s for s in fields.get("suites", "").split() if s.startswith(SUITE))
            if not suites:
                continue
            for uri in fields.get("uris", "").split():
                found.append((uri, suites, fields.get("signed-by")))
    lists = [Path("/etc/apt/sources.list")]
    if sources_d.is_dir():
        lists += sorted(sources_d.glob("*.list"))
    for path in lists:
        if not path.is_file():
            continue
        for raw in path.read_text(errors="replace").splitlines():
            line = raw.split("#", 1)[0].strip()
            match = re.match(r"deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)", line)
            if not match or not match.group(3).startswith(SUITE):
                continue
            signed = re.search(r"signed-by=(\S+)", match.group(1) or "")
            found.append((match.group(2), (match.group(3),), signed.group(1) if signed else None))
    if not found:
        found = [(uri, suites, None) for uri, suites in DEFAULT_MIRRORS]
    return found


def apt_options(apt: Path, *, architecture: str | None = "i386") -> list[str]:
    """apt-get options for a private configuration under ``apt`` (its own
    sources, state, cache and preferences: nothing system-wide is used)."""
    arch = ["-o", f"APT::Architecture={architecture}", "-o", f"APT::Architectures={architecture}"]
    return [
        *(arch if architecture else []),
        "-o", f"Dir::State={apt / 'state'}",
        "-o", f"Dir::State::status={apt / 'state' / 'status'}",
        "-o", f"Dir::Cache={apt / 'cache'}",
        "-o", f"Dir::Etc::SourceList={apt / 'etc' / 'sources.list'}",
        "-o", f"Dir::Etc::SourceParts={apt / 'etc' / 'sources.list.d'}",
        "-o", f"Dir::Etc::Preferences={apt / 'etc' / 'preferences'}",
        "-o", f"Dir::Etc::PreferencesParts={apt / 'etc' / 'preferences.d'}",
        "-o", f"Dir::Etc::Parts={apt / 'etc' / 'apt.conf.d'}",
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Sandbox::User=root" if os.geteuid() == 0 else "APT::Sandbox::User=_apt",
        "-o", "Acquire::Retries=2",
        "-o", "Acquire::http::Timeout=20",
    ]  # fmt: skip


def make_apt_dirs(apt: Path) -> None:
    """The directories and empty status file a private apt configuration needs."""
    for sub in ("etc/sources.list.d", "etc/preferences.d", "etc/apt.conf.d", "state/lists/partial",
                "cache/archives/partial"):  # fmt: skip
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "state" / "status").touch()


def write_apt_config(cache: Cache) -> str:
    apt = cache.apt
    make_apt_dirs(apt)
    lines = []
    for uri, suites, signed_by in host_mirrors():
        keyring = signed_by if signed_by and Path(signed_by).exists() else None
        if keyring is None and Path(KEYRING).exists():
            keyring = KEYRING
        opts = "arch=i386" + (f" signed-by={keyring}" if keyring else "")
        lines += [f"deb [{opts}] {uri} {suite} main" for suite in suites]
    text = "\n".join(lines) + "\n"
    (apt / "etc" / "sources.list").write_text(text)
    return text


def fetch(cache: Cache, *, refresh: bool) -> None:
    """Make the sysroot: skipped when the stamp says it holds PACKAGES."""
    stamp = json.dumps({"packages": sorted(PACKAGES), "suite": SUITE}, sort_keys=True)
    if (
        not refresh
        and cache.sysroot.is_dir()
        and cache.sysroot_stamp.is_file()
        and cache.sysroot_stamp.read_text() == stamp
    ):
        return
    for tool in ("apt-get", "apt-cache", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise Unreachable(f"{tool} not found on this host")
    sources = write_apt_config(cache)
    options = apt_options(cache.apt)
    log(f"apt-get update (private config in {cache.apt})")
    update = run_quiet(["apt-get", "-q", *options, "--error-on=any", "update"])
    if update.returncode != 0:
        errors = [ln for ln in update.stderr.splitlines() if ln.startswith(("E:", "W:", "Err"))]
        detail = errors[0] if errors else last_line(update.stderr + update.stdout)
        raise Unreachable(f"apt-get update failed: {detail} (sources: {sources.splitlines()[0]})")

    resolve = run_quiet(
        [
            "apt-cache", *options, "depends", "--recurse", "--no-recommends", "--no-suggests",
            "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *PACKAGES,
        ]
    )  # fmt: skip
    if resolve.returncode != 0:
        raise Unreachable(f"apt-cache depends failed: {last_line(resolve.stderr)}")
    names = sorted(
        {
            line.strip()
            for line in resolve.stdout.splitlines()
            if line and not line[0].isspace() and not line.startswith("<")
        }
    )
    missing = [p for p in PACKAGES if p not in names]
    if missing:
        raise SetupError(f"packages not in {SUITE} i386: {' '.join(missing)}")

    cache.debs.mkdir(parents=True, exist_ok=True)
    log(f"apt-get download: {len(names)} packages into {cache.debs}")
    download = run_quiet(["apt-get", "-q", *options, "download", *names], cwd=cache.debs)
    if download.returncode != 0:
        raise Unreachable(f"apt-get download failed: {last_line(download.stderr)}")

    versions = run_quiet(["apt-cache", *options, "policy", *names])
    wanted: dict[str, str] = {}
    current = ""
    for line in versions.stdout.splitlines():
        if line and not line[0].isspace():
            current = line.rstrip(":")
        elif line.strip().startswith("Candidate:"):
            wanted[current] = line.split(":", 1)[1].strip()
    debs = sorted(cache.debs.glob("*.deb"))
    chosen: list[Path] = []
    for name in names:
        version = wanted.get(name, "").replace(":", "%3a")
        exact = cache.debs / f"{name}_{version}_i386.deb"
        if exact.exists():
            chosen.append(exact)
            continue
        candidates = [d for d in debs if d.name.startswith(f"{name}_")]
        if not candidates:
            raise SetupError(f"apt-get download left no .deb for {name}")
        chosen.append(candidates[-1])

    staging = cache.root / "sysroot.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log(f"dpkg-deb -x: {len(chosen)} packages into {cache.sysroot}")
    for deb in chosen:
        result = run_quiet(["dpkg-deb", "-x", str(deb), str(staging)])
        if result.returncode != 0:
            raise SetupError(f"dpkg-deb -x {deb.name}: {last_line(result.stderr)}")
    # The dynamic loader finds libraries through the sysroot's own cache
    # (under rrdbg --sysroot, /etc/ld.so.cache resolves there first).
    (staging / "etc").mkdir(exist_ok=True)
    (staging / "etc" / "ld.so.conf").write_text("/lib/i386-linux-gnu\n/usr/lib/i386-linux-gnu\n")
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    if Path(ldconfig).exists():
        made = run_quiet([ldconfig, "-r", str(staging)])
        if made.returncode != 0:
            log(f"ldconfig -r failed (continuing): {last_line(made.stderr)}")
    shutil.rmtree(cache.sysroot, ignore_errors=True)
    staging.rename(cache.sysroot)
    cache.sysroot_stamp.write_text(stamp)


# --------------------------------------------------------------------------
# Step 2: the C programs


# name -> (source file, static?)
C_PROGRAMS: dict[str, tuple[str, bool]] = {
    "sig_kill": ("sig_kill.c", True),
    "sig_kill_dyn": ("sig_kill.c", False),
    "sig_alarm": ("sig_alarm.c", True),
    "sig_segv": ("sig_segv.c", True),
    "sig_segv_dyn": ("sig_segv.c", False),
    "sig_fpe": ("sig_fpe.c", True),
    "sig_altstack": ("sig_altstack.c", True),
    "sig_default": ("sig_default.c", True),
    "timer": ("timer.c", True),
    "timer_dyn": ("timer.c", False),
    "nanosleep_eintr": ("nanosleep_eintr.c", True),
    "dyn_misc": ("dyn_misc.c", False),
}
# The threaded programs, each static and dynamic (NAME_dyn): libpthread's
# code then comes from the program or from the sysroot's libc.so.6.
THREAD_PROGRAMS: tuple[str, ...] = (
    "threads",
    "pt_mutex_cond",
    "pt_barrier_rwlock",
    "pt_once_tls_key",
    "pt_cancel_timedwait",
    "pt_spin_atomic",
    "pt_robust_pi",
)
# Small cases of thread semantics (signals to blocked threads, restarts,
# pipes between threads, PI and robust locks, zero timeouts), static only.
THREAD_CASES: tuple[str, ...] = (
    "pt_sig_shared",
    "pt_sigwait_two",
    "pt_sigpipe_thread",
    "pt_alarm_pipe",
    "pt_read_restart",
    "pt_pi_signal",
    "pt_robust_pi_heir",
    "pt_zero_timeouts",
    "pt_ppoll_mask",
    "pt_dup2_pipe",
    "pt_timer_futex",
    "pt_pipe_big_write",
)
for _name in THREAD_CASES:
    C_PROGRAMS[_name] = (f"{_name}.c", True)
# Processes as C programs make them: fork and a pipe, popen and system,
# posix_spawnp, a pipeline built by hand, a SIGCHLD reaper; static and
# dynamic.
PROCESS_PROGRAMS: tuple[str, ...] = (
    "fork_wait",
    "pc_popen",
    "pc_spawn",
    "pc_pipeline",
    "pc_reaper",
)
for _name in (*THREAD_PROGRAMS, *PROCESS_PROGRAMS):
    C_PROGRAMS[_name] = (f"{_name}.c", True)
    C_PROGRAMS[f"{_name}_dyn"] = (f"{_name}.c", False)


def build_c_programs(cache: Cache) -> None:
    if shutil.which("gcc") is None:
        raise SetupError("gcc not found: the corpus's C programs need gcc -m32 (gcc-multilib)")
    cache.cprogs.mkdir(parents=True, exist_ok=True)
    version = run_quiet(["gcc", "--version"]).stdout.splitlines()[0]
    for name, (source, static) in C_PROGRAMS.items():
        src = C_SOURCES / source
        flags = ["-m32", "-O1", "-Wall", "-Wextra", "-fno-pie", "-no-pie"]
        flags += ["-static"] if static else []
        digest = hashlib.sha256(src.read_bytes() + repr((flags, version)).encode()).hexdigest()
        out = cache.cprogs / name
        stamp = cache.cprogs / f"{name}.stamp"
        if out.exists() and stamp.exists() and stamp.read_text() == digest:
            continue
        result = run_quiet(["gcc", *flags, "-o", str(out), str(src), "-lm", "-pthread"])
        if result.returncode != 0:
            raise SetupError(f"gcc -m32 {source} failed: {last_line(result.stderr)}")
        stamp.write_text(digest)


# --------------------------------------------------------------------------
# Step 3: deterministic inputs


class Lcg:
    """A fixed pseudo-random sequence (the inputs must never change)."""

    def __init__(self, seed: int) -> None:
        self.state = seed

    def next(self) -> int:
        self.state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        return self.state >> 8

    def below(self, n: int) -> int:
        return self.next() % n


SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "ba", "qu", "ex", "an", "or")
DEPTS = ("eng", "ops", "sales", "legal", "hr")


def word(rng: Lcg) -> str:
    return "".join(SYLLABLES[rng.below(len(SYLLABLES))] for _ in range(1 + rng.below(3)))


INPUT_SCRIPTS: dict[str, str] = {
    "pipeline.sh": """\
        # A shell script of the usual kind: coreutils in pipelines, command
        # substitution, a loop over files, a function with a status.
        set -e
        total=$(cat tree/dir*/file*.txt | wc -l)
        echo "lines under tree: $total"
        for f in $(find tree -name 'file1.txt' | sort); do
            printf '%s: %s\\n' "$(dirname "$f")" "$(head -n 1 "$f" | tr a-z A-Z)"
        done
        cut -d, -f3 data.csv | tail -n +2 | sort | uniq -c | sort -k1,1nr -k2 | head -n 3
        words=$(grep -c '^ka' words.txt || true)
        echo "ka words: $words"
        check() { test -s "$1" && return 0; return 4; }
        if check data.csv; then echo "data.csv is not empty"; fi
        check nothing.txt || echo "nothing.txt: status $?"
        sort -u words.txt | md5sum | cut -c1-12 > pipeline-out.txt
        cat pipeline-out.txt
        """,
    "Makefile.corpus": """\
        # make -j2: independent targets run two at a time; the final one
        # concatenates them in a fixed order.
        PARTS = out/a.txt out/b.txt out/c.txt out/d.txt
        all: summary.txt
        \tcat summary.txt
        out:
        \tmkdir -p out
        out/a.txt: words.txt | out
        \tsort words.txt | head -n 50 > $@
        out/b.txt: data.csv | out
        \tcut -d, -f2 data.csv | sort -r | head -n 20 > $@
        out/c.txt: numbers.txt | out
        \tsort -n numbers.txt | tail -n 5 > $@
        out/d.txt: out/a.txt out/c.txt
        \tcat out/a.txt out/c.txt | wc -l > $@
        summary.txt: $(PARTS)
        \tfor p in $(PARTS); do echo "$$p $$(wc -l < $$p)"; done > $@
        """,
    "script.sh": """\
        # POSIX shell, builtins only (no external commands, no subshells).
        fib() {
            a=0; b=1; i=0
            while [ "$i" -lt "$1" ]; do t=$((a + b)); a=$b; b=$t; i=$((i + 1)); done
            echo "fib($1) = $a"
        }
        for n in 1 5 10 20 30; do fib "$n"; done
        count=0
        while read -r line; do
            case "$line" in
                ka*) count=$((count + 1)) ;;
            esac
        done < words.txt
        echo "words starting with ka: $count"
        set -- alpha beta gamma
        echo "$# args, second is $2"
        printf '%s|%5d|%-4s|\\n' x 42 ab
        x=${HOME:-unset}; echo "HOME=$x"
        v="a.b.c.tar.gz"; echo "${v%%.*} ${v#*.} ${v%.gz}"
        echo done > shell-out.txt
        exit 3
        """,
    "script.bash": """\
        declare -A seen
        declare -a order
        while IFS=, read -r id name dept salary; do
            [[ $id == id ]] && continue
            if [[ -z ${seen[$dept]} ]]; then order+=("$dept"); seen[$dept]=0; fi
            seen[$dept]=$(( ${seen[$dept]} + salary ))
        done < data.csv
        for d in "${order[@]}"; do printf '%-6s %8d\\n' "$d" "${seen[$d]}"; done
        s="Hello, World"; echo "${s^^} ${s,,} ${#s} ${s:7:5} ${s/World/There}"
        arr=( {1..10} ); echo "sum: $(( ${arr[0]} + ${arr[9]} )), count ${#arr[@]}"
        printf -v padded '%08.3f' 3.14159; echo "$padded"
        mapfile -t lines < numbers.txt; echo "lines: ${#lines[@]} first ${lines[0]}"
        for ((i = 0; i < 3; i++)); do echo "i=$i"; done
        f() { local x=$1; return $(( x * 2 )); }; f 21; echo "f returned $?"
        echo bash-wrote > bash-out.txt
        """,
    "script.zsh": """\
        typeset -A h
        h=(one 1 two 2 three 3)
        for k in ${(ko)h}; do print -r -- "$k=${h[$k]}"; done
        float x=1.5; (( x = x * 4 )); print "x=$x"
        integer n=0; for w in ${(f)"$(<words.txt)"}; do (( n++ )); done; print "words: $n"
        a=(c b a); print ${(o)a}
        print -l ${(s:,:)${:-p,q,r}}
        printf '%x %o %e\\n' 255 8 12345.678
        """,
    "script.ksh": """\
        typeset -i n=0 total=0
        set -A nums 3 1 4 1 5 9 2 6
        for x in "${nums[@]}"; do (( total += x, n++ )); done
        print "n=$n total=$total max index ${#nums[@]}"
        typeset -u up=shout; typeset -L5 left=abcdefgh; print "$up [$left]"
        s=hello.world.txt; print "${s%%.*} ${s##*.} ${s/world/there}"
        [[ $s == *.txt && -f words.txt ]] && print "pattern and file tests ok"
        i=0
        while read -r w; do [[ $w == ka* ]] && (( i++ )); done < words.txt
        print "ka words: $i"
        print -r -- "$(( 7 ** 3 )) $(( 1 << 10 )) $(( -7 / 2 ))"
        exit 6
        """,
    "script.awk": """\
        BEGIN { FS = "," }
        NR > 1 { total[$3] += $4; n[$3]++; if ($4 > max) { max = $4; who = $2 } }
        END {
            for (d in total) keys[++k] = d
            asort(keys)
            for (i = 1; i <= k; i++)
                printf "%-6s %3d %10.2f\\n", keys[i], n[keys[i]], total[keys[i]] / n[keys[i]]
            print "max", max, who
            print length(total), substr("abcdef", 2, 3), toupper("x"), sprintf("%05.1f", 3.14159)
        }
        """,
    "script.sed": """\
        /^ka/d
        s/\\(ti\\)\\(.*\\)/[\\1]\\2/
        y/abc/ABC/
        $a\\
        -- end --
        """,
    "script.sql": """\
        CREATE TABLE emp(id INTEGER PRIMARY KEY, name TEXT, dept TEXT, salary INTEGER);
        .mode csv
        .import --skip 1 data.csv emp
        .mode list
        SELECT dept, count(*), sum(salary), round(avg(salary), 2)
            FROM emp GROUP BY dept ORDER BY dept;
        SELECT name FROM emp WHERE salary > 90000 ORDER BY salary DESC, name LIMIT 5;
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10)
            SELECT group_concat(x * x, ' ') FROM c;
        SELECT json_extract('{"a": [1, 2, {"b": 3}]}', '$.a[2].b');
        CREATE INDEX emp_dept ON emp(dept);
        SELECT count(*) FROM emp WHERE dept = 'ops';
        """,
    "script.lua": """\
        local t = {}
        for line in io.lines("words.txt") do t[line] = (t[line] or 0) + 1 end
        local keys = {}
        for k in pairs(t) do keys[#keys + 1] = k end
        table.sort(keys, function(a, b)
            if t[a] ~= t[b] then return t[a] > t[b] end
            return a < b
        end)
        for i = 1, 5 do print(keys[i], t[keys[i]]) end
        print(string.format("%.6f %d %s", math.pi, 7 // 2, tostring(2^53)))
        local co = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i * 10) end end)
        print(co(), co(), co())
        print(("hello"):rep(3, "-"), ("a,b,c"):gsub(",", ";"))
        local f = assert(io.open("lua-out.txt", "w")); f:write("from lua\\n"); f:close()
        os.exit(5)
        """,
    "script.py": """\
        import collections, hashlib, json, re, struct, sys, math, itertools, functools

        with open("data.json") as f:
            data = json.load(f)
        total = sum(item["price"] * item["qty"] for item in data["items"])
        print("items", len(data["items"]), "total", round(total, 2))
        words = open("words.txt").read().split()
        common = collections.Counter(words).most_common(3)
        print("common", common)
        print("sha256", hashlib.sha256(open("data.csv", "rb").read()).hexdigest()[:16])
        print("re", re.findall(r"\\b(ka\\w*)", " ".join(words[:50]))[:5])
        print("struct", struct.pack("<IhB", 1, -2, 3).hex())
        print("math", math.comb(30, 12), math.factorial(20), f"{math.e:.10f}")
        print("perm", list(itertools.permutations("abc", 2))[:4])
        print("reduce", functools.reduce(lambda a, b: a * b, range(1, 15)))
        with open("py-out.json", "w") as f:
            json.dump({"total": total, "n": len(words)}, f, sort_keys=True)
        sys.exit(4)
        """,
    "math.bc": """\
        scale = 40
        sqrt(2)
        4 * a(1)
        e(1)
        define f(n) { if (n <= 1) return 1; return n * f(n - 1); }
        f(30)
        2 ^ 100
        quit
        """,
    "filter.jq": """\
        .items | group_by(.kind)
        | map({kind: .[0].kind, count: length, value: (map(.price * .qty) | add)})
        | sort_by(.kind)
        """,
}


def xz_varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def xz_blocks(data: bytes, block_size: int) -> bytes:
    """An .xz stream of LZMA2 blocks of block_size bytes each (preset 1, a
    1 MiB dictionary, CRC32 checks), with both sizes in every block header as
    xz -T writes them: that is what lets xz -d -T2 decompress the blocks in
    threads (Python's lzma writes one block without sizes)."""
    import lzma
    import zlib

    def crc(b: bytes) -> bytes:
        return struct.pack("<I", zlib.crc32(b))

    flags = b"\x00\x01"  # check type CRC32
    out = bytearray(b"\xfd7zXZ\x00" + flags + crc(flags))
    records = []
    for start in range(0, len(data), block_size):
        chunk = data[start : start + block_size]
        lzma2 = [{"id": lzma.FILTER_LZMA2, "preset": 1}]
        packed = lzma.compress(chunk, format=lzma.FORMAT_RAW, filters=lzma2)
        # flags: both sizes present, one filter; LZMA2 (0x21), one property
        # byte: dictionary 1 MiB (16).
        body = b"\xc0" + xz_varint(len(packed)) + xz_varint(len(chunk)) + b"\x21\x01\x10"
        # The size byte: (header size with its CRC32) / 4 - 1.
        header = pad4(bytes([len(pad4(b"." + body)) // 4]) + body)
        header += crc(header)
        out += header + pad4(packed) + crc(chunk)
        records.append((len(header) + len(packed) + 4, len(chunk)))
    index = b"\x00" + xz_varint(len(records))
    index += b"".join(xz_varint(unpadded) + xz_varint(size) for unpadded, size in records)
    index = pad4(index)
    index += crc(index)
    backward = struct.pack("<I", len(index) // 4 - 1) + flags
    return bytes(out + index + crc(backward) + backward + b"YZ")


def write_inputs(cache: Cache) -> list[str]:
    """Generate the input directory afresh; returns notes (steps skipped)."""
    notes: list[str] = []
    inputs = cache.inputs
    shutil.rmtree(inputs, ignore_errors=True)
    inputs.mkdir(parents=True)
    rng = Lcg(20240601)

    words = [word(rng) for _ in range(2000)]
    (inputs / "words.txt").write_text("\n".join(words) + "\n")
    (inputs / "sorted.txt").write_text("\n".join(sorted(words)) + "\n")
    numbers = [str(rng.below(100000) - 20000) for _ in range(500)]
    (inputs / "numbers.txt").write_text("\n".join(numbers) + "\n")
    rows = ["id,name,dept,salary"]
    for i in range(1, 201):
        rows.append(
            f"{i},{word(rng).capitalize()},{DEPTS[rng.below(5)]},{30000 + rng.below(90000)}"
        )
    (inputs / "data.csv").write_text("\n".join(rows) + "\n")
    (inputs / "names.txt").write_text("\n".join(f"{i} {word(rng)}" for i in range(1, 41)) + "\n")
    (inputs / "depts.txt").write_text(
        "\n".join(f"{i} {DEPTS[i % 5]}" for i in range(1, 41, 2)) + "\n"
    )
    (inputs / "a.txt").write_text("".join(f"line {i}\n" for i in range(30)))
    (inputs / "b.txt").write_text(
        "".join(f"line {i}\n" if i % 7 else f"changed {i}\n" for i in range(32))
    )
    (inputs / "long.txt").write_text(" ".join(words[:400]) + "\n")
    (inputs / "mixed.txt").write_text("Hello World\n\tTabbed line\nUPPER lower 123\n\n" * 5)
    items = [
        {"name": word(rng), "kind": ("tool", "food", "book")[rng.below(3)],
         "price": rng.below(10000) / 100, "qty": 1 + rng.below(9)}
        for _ in range(25)
    ]  # fmt: skip
    (inputs / "data.json").write_text(
        json.dumps({"version": 3, "items": items, "tags": ["a", "b"]}, indent=2) + "\n"
    )
    data = bytes(rng.below(256) for _ in range(4096))
    (inputs / "data.bin").write_bytes(data)
    text_bytes = (inputs / "words.txt").read_bytes()
    import bz2
    import gzip
    import lzma

    (inputs / "sample.gz").write_bytes(gzip.compress(text_bytes, mtime=0))
    (inputs / "sample.bz2").write_bytes(bz2.compress(text_bytes))
    (inputs / "sample.xz").write_bytes(lzma.compress(text_bytes))
    # 1 MiB of short lines (140,000 of them: GNU sort sorts a buffer in
    # threads from 131,072 lines), for the threaded compressors and sort.
    big_rng = Lcg(77)
    lines: list[str] = []
    size = 0
    while size < 1 << 20:
        line = " ".join(word(big_rng) for _ in range(1 + big_rng.below(2)))
        lines.append(line)
        size += len(line) + 1
    big = ("\n".join(lines) + "\n").encode()
    (inputs / "big.txt").write_bytes(big)
    (inputs / "big.gz").write_bytes(gzip.compress(big, mtime=0))
    (inputs / "big.xz").write_bytes(xz_blocks(big, 262144))
    for name, body in INPUT_SCRIPTS.items():
        (inputs / name).write_text(textwrap.dedent(body))

    tree = inputs / "tree"
    for i in range(4):
        sub = tree / f"dir{i}" / "sub"
        sub.mkdir(parents=True)
        for j in range(3):
            (tree / f"dir{i}" / f"file{j}.txt").write_text(f"dir {i} file {j}\n" * (i + j + 1))
            (sub / f"deep{j}.dat").write_bytes(data[: 100 * (i + j + 1)])
    (tree / "top.txt").write_text("top of the tree\nka needle here\n")
    os.symlink("top.txt", tree / "link-to-top")

    with tarfile.open(inputs / "sample.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(tree.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(inputs)))
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if path.is_file() and not path.is_symlink():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)

    mke2fs = shutil.which("mke2fs") or ("/sbin/mke2fs" if Path("/sbin/mke2fs").exists() else None)
    if mke2fs is None:
        notes.append("mke2fs not found: the e2fsck invocations have no image")
    else:
        env = dict(os.environ, E2FSPROGS_FAKE_TIME=str(FIXED_MTIME))
        uuid = "0c0ffee0-1234-4321-8765-00000000cafe"
        for name in ("fs.ext2", "broken.ext2"):
            made = run_quiet(
                [mke2fs, "-q", "-F", "-t", "ext2", "-b", "1024", "-N", "64", "-U", uuid,
                 "-E", f"hash_seed={uuid},root_owner=0:0", "-L", "corpus", "-d", str(tree),
                 str(inputs / name), "512"],
                env=env,
            )  # fmt: skip
            if made.returncode != 0:
                notes.append(f"mke2fs failed: {last_line(made.stderr)}")
                break
        else:
            # Damage the copy: the superblock's free blocks and inodes counts.
            with (inputs / "broken.ext2").open("r+b") as f:
                f.seek(1024 + 12)
                f.write(struct.pack("<II", 3, 5))

    for path in sorted(inputs.rglob("*"), reverse=True):
        os.utime(path, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
    os.utime(inputs, (FIXED_MTIME, FIXED_MTIME))
    return notes


# --------------------------------------------------------------------------
# The invocations


@dataclass(frozen=True)
class Invocation:
    name: str  # unique, "category: short description"
    category: str
    argv: tuple[str, ...]  # argv[0]: a sysroot path (/usr/bin/sort) or @cprog
    stdin: str | None = None  # a file in the inputs
    expect: str = WORK
    needs: str | None = None  # an input file that must exist (else skipped)


INVOCATIONS: list[Invocation] = []


def add(
    category: str,
    label: str,
    *argv: str,
    stdin: str | None = None,
    expect: str = WORK,
    needs: str | None = None,
) -> None:
    INVOCATIONS.append(Invocation(f"{category}: {label}", category, argv, stdin, expect, needs))


def _define() -> None:
    bb = "/bin/busybox"
    c = "busybox"
    add(c, "echo", bb, "echo", "hello", "world")
    add(c, "ls -l tree", bb, "ls", "-l", "tree")
    add(c, "ls -lnR tree", bb, "ls", "-lnR", "tree")
    add(c, "sort -n", bb, "sort", "-n", "numbers.txt")
    add(c, "wc", bb, "wc", "words.txt", "data.csv")
    add(c, "md5sum", bb, "md5sum", "words.txt", "data.bin")
    add(c, "sha256sum", bb, "sha256sum", "data.csv")
    add(c, "awk sum", bb, "awk", "-F,", "NR>1 {s+=$4} END {print s, NR}", "data.csv")
    add(c, "sed -n s///p", bb, "sed", "-n", r"s/^\(ka[a-z]*\)$/KA:\1/p", "words.txt")
    add(c, "grep -c", bb, "grep", "-c", "ru", "words.txt")
    add(c, "find -type f", bb, "find", "tree", "-type", "f")
    add(c, "tar -tvf", bb, "tar", "-tvf", "sample.tar")
    add(c, "tar -xf", bb, "tar", "-xf", "sample.tar", "-C", "tree/dir0")
    add(c, "gzip -c", bb, "gzip", "-c", "words.txt")
    add(c, "zcat", bb, "zcat", "sample.gz")
    add(c, "bzcat", bb, "bzcat", "sample.bz2")
    add(c, "xzcat", bb, "xzcat", "sample.xz")
    add(c, "hexdump -C", bb, "hexdump", "-C", "data.bin")
    add(c, "cut -d, -f2", bb, "cut", "-d,", "-f2,4", "data.csv")
    add(c, "date -u -d @0", bb, "date", "-u", "-d", "@0")
    add(c, "cp -r", bb, "cp", "-r", "tree", "copy")
    add(c, "mkdir -p", bb, "mkdir", "-p", "a/b/c/d")
    add(c, "dd", bb, "dd", "if=data.bin", "of=out.bin", "bs=512", "count=3", "skip=1")
    add(c, "tr (stdin)", bb, "tr", "a-z", "A-Z", stdin="mixed.txt")
    add(c, "uniq -c", bb, "uniq", "-c", "sorted.txt")
    add(c, "ln -s", bb, "ln", "-s", "words.txt", "link")
    add(c, "rm -r", bb, "rm", "-r", "tree")
    add(c, "stat -c", bb, "stat", "-c", "%n %s %a %F", "words.txt", "tree", "tree/link-to-top")
    add(c, "diff (status 1)", bb, "diff", "a.txt", "b.txt")
    add(c, "env", bb, "env")
    add(c, "factor", bb, "factor", "1234567890", "999999937")
    add(c, "sh script", bb, "sh", "script.sh")
    add(c, "sh -c loop", bb, "sh", "-c", "i=0; while [ $i -lt 500 ]; do i=$((i+1)); done; echo $i")
    add(c, "false (status 1)", bb, "false")

    c = "shells"
    bash = "/bin/bash-static"
    add(c, "bash-static script", bash, "script.bash")
    add(c, "bash-static -c arithmetic", bash, "-c",
        "x=1; for i in {1..20}; do x=$(( (x * 31 + i) % 1000003 )); done; echo $x; "
        "exit 9")  # fmt: skip
    add(c, "bash-static -c here-string", bash, "-c", 'read -r a b <<< "one two"; echo "$b $a"')
    add(c, "bash-static --version", bash, "--version")
    add(c, "zsh-static script", "/bin/zsh-static", "-f", "script.zsh")
    add(c, "zsh-static -c", "/bin/zsh-static", "-f", "-c",
        'print -r -- ${(U)${:-hello}} $(( 2 ** 20 )) ${#${(z):-a b c}}')  # fmt: skip
    add(c, "mksh -c", "/bin/mksh", "-c", "typeset -i x=7; echo $((x << 3)) ${#PATH}")
    add(c, "mksh script", "/bin/mksh", "script.ksh")
    add(c, "sash -c -echo", "/bin/sash", "-c", "-echo hello from sash")
    add(c, "sash -c -mkdir", "/bin/sash", "-c", "-mkdir made-by-sash")

    c = "e2fsck"
    add(c, "e2fsck -fn clean", "/sbin/e2fsck.static", "-fn", "fs.ext2", needs="fs.ext2")
    add(c, "e2fsck -fy broken", "/sbin/e2fsck.static", "-fy", "broken.ext2", needs="broken.ext2")

    c = "coreutils"
    add(c, "sort -t, -k4n", "sort", "-t,", "-k4,4n", "-k1,1n", "data.csv")
    add(c, "sort -u (stdin)", "sort", "-u", stdin="words.txt")
    add(c, "uniq -c", "uniq", "-c", "sorted.txt")
    add(c, "wc", "wc", "words.txt", "data.csv", "long.txt")
    add(c, "tr -s -d", "tr", "-s", " a-z", " A-Z", stdin="long.txt")
    add(c, "cut -c", "cut", "-c1-8", "data.csv")
    add(c, "head -n", "head", "-n", "7", "words.txt")
    add(c, "tail -n", "tail", "-n", "7", "words.txt")
    add(c, "seq -w", "seq", "-w", "-s", ",", "1", "3", "100")
    add(c, "factor", "factor", "600851475143", "9007199254740993")
    add(c, "md5sum", "md5sum", "words.txt", "data.bin")
    add(c, "sha256sum", "sha256sum", "data.csv", "sample.tar")
    add(c, "base64", "base64", "data.bin")
    add(c, "od -A x -t x1z", "od", "-A", "x", "-t", "x1z", "-N", "256", "data.bin")
    add(c, "expr", "expr", "123456", "*", "789", "+", "1")
    add(c, "printf", "printf", "%05d|%-6s|%x|%.3f\\n", "42", "ab", "255", "3.14159")
    add(c, "cat -n", "cat", "-n", "a.txt", "mixed.txt")
    add(c, "cp -r", "cp", "-r", "tree", "copy")
    add(c, "mv", "mv", "words.txt", "renamed.txt")
    add(c, "rm -r", "rm", "-r", "tree")
    add(c, "mkdir -p", "mkdir", "-p", "x/y/z")
    add(c, "ln -s", "ln", "-s", "data.csv", "csv-link")
    add(c, "du -a", "du", "-a", "--apparent-size", "-b", "tree")
    add(c, "ls -la --time-style", "ls", "-la", "--time-style=+%Y-%m-%d", "tree", "tree/dir1")
    add(c, "tac", "tac", "a.txt")
    add(c, "nl", "nl", "-ba", "mixed.txt")
    add(c, "paste", "paste", "-d:", "a.txt", "b.txt")
    add(c, "join", "join", "names.txt", "depts.txt")
    add(c, "split", "split", "-l", "300", "-d", "words.txt", "part-")
    add(c, "fold", "fold", "-w", "30", "-s", "long.txt")
    add(c, "date -d @0 -u", "date", "-d", "@0", "-u", "+%Y-%m-%dT%H:%M:%S %A %j")
    add(c, "comm", "comm", "-3", "a.txt", "b.txt")
    add(c, "stat -c", "stat", "-c", "%n %s %F %a", "data.csv", "tree", "tree/link-to-top")
    add(c, "truncate", "truncate", "-s", "1000", "data.bin")
    add(c, "touch -d", "touch", "-d", "@0", "new-file")
    add(c, "numfmt", "numfmt", "--to=iec", "1024", "1048576", "123456789")
    add(c, "tsort", "tsort", stdin="names.txt")
    add(c, "basename/dirname", "basename", "/a/b/c.txt", ".txt")
    add(c, "env", "env")
    add(c, "false (status 1)", "false")

    c = "text tools"
    add(c, "grep -E -c", "grep", "-E", "-c", "^(ka|lo).*ti$", "words.txt")
    add(c, "grep -o -n", "grep", "-o", "-n", "ze[a-z]", "long.txt")
    add(c, "grep -r", "grep", "-r", "-l", "file 2", "tree")
    add(c, "grep -P", "grep", "-P", "-c", r"(\w)\1", "words.txt")
    add(c, "grep no match (status 1)", "grep", "zzzz", "words.txt")
    add(c, "sed -f", "sed", "-f", "script.sed", "words.txt")
    add(c, "sed -E", "sed", "-E", r"s/([0-9]+),([A-Za-z]+)/\2=\1/", "data.csv")
    add(c, "sed -i", "sed", "-i", "s/line/LINE/", "a.txt")
    add(c, "gawk -f", "gawk", "-f", "script.awk", "data.csv")
    add(c, "gawk math", "gawk", "BEGIN { printf \"%.10f %d %s\\n\", atan2(0, -1), 2^40, "
        "strftime(\"%Y\", 0, 1); exit 2 }")  # fmt: skip

    c = "compressors"
    add(c, "gzip -n -c", "gzip", "-n", "-c", "words.txt")
    add(c, "gzip -k (file)", "gzip", "-k", "-n", "data.csv")
    add(c, "gzip -dc", "gzip", "-dc", "sample.gz")
    add(c, "gzip -t", "gzip", "-t", "sample.gz")
    add(c, "bzip2 -c", "bzip2", "-c", "words.txt")
    add(c, "bzip2 -dc", "bzip2", "-dc", "sample.bz2")
    add(c, "xz -c -T1", "xz", "-c", "-T1", "words.txt")
    add(c, "xz -dc", "xz", "-dc", "sample.xz")
    add(c, "pigz -p 1 -n -c", "pigz", "-p", "1", "-n", "-c", "words.txt")

    c = "interpreters"
    py = "/usr/bin/python3.11"
    add(c, "sqlite3 script", "sqlite3", ":memory:", ".read script.sql")
    add(c, "sqlite3 file db (stdin)", "sqlite3", "-batch", "test.db", stdin="script.sql")
    add(c, "lua5.4 script", "lua5.4", "script.lua")
    add(
        c,
        "lua5.4 -e",
        "lua5.4",
        "-e",
        "local s = 0 for i = 1, 100000 do s = s + i % 7 end print(s)",
    )
    add(c, "bc -l", "bc", "-l", "-q", "math.bc")
    add(c, "jq filter", "jq", "-f", "filter.jq", "data.json")
    add(c, "jq -r", "jq", "-r", ".items[] | select(.qty > 5) | .name", "data.json")
    add(c, "python3 -c", py, "-c",
        "import sys; print(sum(i * i for i in range(1000)), sys.version_info[:2])")  # fmt: skip
    add(c, "python3 script", py, "script.py")
    add(c, "perl -e", "perl", "-e",
        'my %h; $h{$_ % 7}++ for 1..1000; '
        'print join(",", map {"$_=$h{$_}"} sort keys %h), "\\n"')  # fmt: skip
    add(c, "perl -lane", "perl", "-F,", "-lane",
        '$s += $F[3] if $. > 1; END { print $s }', "data.csv")  # fmt: skip

    c = "signals"
    for name in ("sig_kill", "sig_kill_dyn", "sig_alarm", "sig_segv", "sig_segv_dyn", "sig_fpe",
                 "sig_altstack", "timer", "timer_dyn", "nanosleep_eintr", "dyn_misc"):  # fmt: skip
        add(c, name, f"@{name}", *(("a b", "c") if name == "dyn_misc" else ()))
    for how in ("term", "abort", "segv", "kill", "exit"):
        add(c, f"sig_default {how}", "@sig_default", how)

    c = "threads"
    for name in THREAD_PROGRAMS:
        add(c, name, f"@{name}")
        add(c, f"{name}_dyn", f"@{name}_dyn")
    for name in THREAD_CASES:
        add(c, name, f"@{name}", *(("5000000",) if name == "pt_timer_futex" else ()))
    add(c, "pigz -n -c (default threads)", "pigz", "-n", "-c", "words.txt")
    add(c, "pigz -p 2 -c", "pigz", "-p", "2", "-c", "big.txt")
    add(c, "pigz -d -p 2 -c", "pigz", "-d", "-p", "2", "-c", "big.gz")
    add(c, "pigz -p 2 -k (file)", "pigz", "-p", "2", "-k", "big.txt")
    add(c, "xz -1 -T2 --block-size -c", "xz", "-1", "-T2", "--block-size=262144", "-c", "big.txt")
    add(c, "xz -d -T2 -c (5 blocks)", "xz", "-d", "-T2", "-c", "big.xz")
    add(c, "sort --parallel=2", "sort", "--parallel=2", "-S", "8M", "big.txt")

    c = "processes"
    sh = "/bin/sh"  # dash
    add(c, "busybox sh pipe", bb, "sh", "-c", "echo a | cat")
    add(c, "busybox sh $(...)", bb, "sh", "-c", 'x=$(echo hi); echo "got $x"')
    add(c, "busybox sh external", bb, "sh", "-c", "ls tree; echo status $?")
    add(c, "busybox sh 3-stage pipeline", bb, "sh", "-c",
        "seq 1 300 | sort -rn | head -n 4; echo status $?")  # fmt: skip
    add(c, "busybox sh background + wait", bb, "sh", "-c",
        "sleep 0.05 & echo started; wait $!; echo waited $?")  # fmt: skip
    add(c, "bash-static external", bash, "-c", "busybox echo child; echo status $?")
    add(c, "bash-static $(...)", bash, "-c", "echo $(echo sub) $(( 6 * 7 ))")
    add(c, "bash-static pipefail", bash, "-c",
        "set -o pipefail; false | true; echo pipefail $?; "
        "cat words.txt | tr a-z A-Z | sort | uniq | wc -l; echo ${PIPESTATUS[*]}")  # fmt: skip
    add(c, "bash-static process substitution", bash, "-c",
        "cat <(echo sub) <(seq 3); echo piped | cat /dev/stdin; "
        "wc -l < words.txt | cat /dev/fd/0; "
        "while read n; do echo n=$n; done < <(seq 2)")  # fmt: skip
    add(c, "zsh-static pipe", "/bin/zsh-static", "-f", "-c", "print a | read x; print $x")
    add(c, "dash script with coreutils", sh, "pipeline.sh")
    add(c, "sh -c xargs", sh, "-c", "find tree -type f -name '*.txt' | sort | xargs wc -c")
    add(c, "xargs -P2 -n1", sh, "-c",
        "seq 1 12 | xargs -P 2 -n 1 expr 100 + | sort -n | tr '\\n' ' '; echo")  # fmt: skip
    add(c, "find -exec (batched)", "find", "tree", "-name", "*.txt", "-exec", "wc", "-l", "{}", "+")
    add(c, "find -exec (one each)", "find", "tree", "-name", "file0.txt", "-exec", "cat", "{}", ";")
    add(c, "timeout (command ends)", sh, "-c", "timeout 5 sh -c 'echo inside; exit 3'; echo $?")
    add(c, "timeout (expires)", sh, "-c", "timeout 0.1 sleep 10; echo status $?")
    add(c, "make -j2", "make", "-j2", "-s", "-f", "Makefile.corpus")
    add(c, "env + nice + nohup", sh, "-c",
        "env X=1 sh -c 'echo X=$X'; nice -n 5 sh -c 'echo niced'; "
        "nohup echo nohup 2>/dev/null")  # fmt: skip
    add(c, "gawk getline from command", "gawk", 'BEGIN { "echo hi" | getline x; print x }')
    add(c, "gawk system + print | cmd", "gawk",
        'BEGIN { system("echo sys"); print "b\\na" | "sort"; close("sort"); '
        'print "end" }')  # fmt: skip
    add(c, "perl backticks", "perl", "-e", 'my $x = `echo hi`; print "got $x"')
    add(c, "perl system", "perl", "-e", 'system("echo", "from perl"); print $? >> 8, "\\n"')
    add(c, "python3 subprocess", py, "-c",
        "import subprocess; "
        "print(subprocess.run(['echo', 'hi'], capture_output=True).stdout)")  # fmt: skip
    add(c, "python3 subprocess shell pipe", py, "-c",
        "import subprocess; r = subprocess.run('echo hi | tr a-z A-Z; exit 4', shell=True, "
        "capture_output=True); print(r.stdout, r.returncode)")  # fmt: skip
    add(c, "python3 os.fork", py, "-c",
        "import os; pid = os.fork(); pid == 0 and os._exit(5); "
        "print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))")  # fmt: skip
    for name in PROCESS_PROGRAMS:
        add(c, name, f"@{name}")
        add(c, f"{name}_dyn", f"@{name}_dyn")


_define()


# --------------------------------------------------------------------------
# Step 4: running and comparing


@dataclass
class ModeResult:
    mode: str
    status: int | None  # None: timed out or could not start
    stdout_sha256: str
    stdout_len: int
    stdout_head: str
    seconds: float
    diagnostics: list[str]  # rrdbg's own stderr lines ("rrdbg: ...")
    stderr_tail: list[str]  # the last other stderr lines
    files: dict[str, str]
    error: str | None = None
    stdout: bytes = field(default=b"", repr=False)


@dataclass
class Outcome:
    name: str
    category: str
    expect: str
    known_failure: str | None
    argv: list[str]
    skipped: str | None = None
    native_nondeterministic: str | None = None
    run_ok: bool = False
    rr_ok: bool = False
    run_diff: list[str] = field(default_factory=list)
    rr_diff: list[str] = field(default_factory=list)
    diagnostics: list[str] = field(default_factory=list)
    modes: dict[str, ModeResult] = field(default_factory=dict)

    @property
    def works(self) -> bool:
        return self.run_ok and self.rr_ok

    @property
    def meets_expectation(self) -> bool:
        if self.native_nondeterministic:
            return False  # a corpus bug: the comparison means nothing
        if self.skipped:
            return True
        if self.known_failure is not None:
            return True
        return self.works


def snapshot_files(top: Path) -> dict[str, str]:
    """Every entry under top: kind, size and content hash (never times)."""
    files: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = str(path.relative_to(top))
            if path.is_symlink():
                files[rel] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                files[rel] = f"dir mode {path.stat().st_mode & 0o7777:o}"
            elif path.is_file():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
                st = path.stat()
                files[rel] = f"file {st.st_size} bytes mode {st.st_mode & 0o7777:o} {digest}"
            else:
                files[rel] = "other"
    return files


@dataclass(frozen=True)
class Context:
    cache: Cache
    python: str
    env: dict[str, str]


def fixed_env(sysroot: Path) -> dict[str, str]:
    return {
        "PATH": f"{sysroot}/usr/bin:{sysroot}/bin:{sysroot}/usr/sbin:{sysroot}/sbin",
        # The programs a native run starts (a shell's commands) use the host's
        # i386 loader with the sysroot's libraries; under rrdbg the sysroot's
        # loader finds the same files.
        "LD_LIBRARY_PATH": f"{sysroot}/lib/i386-linux-gnu:{sysroot}/usr/lib/i386-linux-gnu",
        "LC_ALL": "C",
        "TZ": "UTC",
        "HOME": "/nonexistent-home",
        "TERM": "dumb",
        "USER": "corpus",
        # e2fsck writes its clock into the superblock: a fixed one.
        "E2FSCK_TIME": str(FIXED_MTIME),
        "E2FSPROGS_FAKE_TIME": str(FIXED_MTIME),
    }


def program_path(ctx: Context, inv: Invocation) -> Path:
    prog = inv.argv[0]
    if prog.startswith("@"):
        return ctx.cache.cprogs / prog[1:]
    root = ctx.cache.sysroot
    if prog.startswith("/"):
        return root / prog.lstrip("/")
    for sub in ("usr/bin", "bin", "usr/sbin", "sbin"):
        path = root / sub / prog
        if path.is_symlink() or path.exists():
            return in_sysroot(root, path)
    return root / "usr/bin" / prog


def in_sysroot(root: Path, path: Path) -> Path:
    """path with its symbolic links followed inside the sysroot (an absolute
    link target is relative to the sysroot, as for the guest)."""
    for _ in range(40):
        if not path.is_symlink():
            return path
        target = os.readlink(path)
        path = root / target.lstrip("/") if target.startswith("/") else path.parent / target
    return path


def interpreter(path: Path) -> str | None:
    """The ELF32 program's PT_INTERP (its dynamic loader), or None."""
    with path.open("rb") as f:
        head = f.read(52)
        if len(head) < 52 or head[:4] != b"\x7fELF" or head[4] != 1:
            return None
        (phoff,) = struct.unpack_from("<I", head, 28)
        phentsize, phnum = struct.unpack_from("<HH", head, 42)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        for i in range(phnum):
            kind, offset, _vaddr, _paddr, size = struct.unpack_from("<IIIII", table, i * phentsize)
            if kind == 3:
                f.seek(offset)
                return f.read(size).rstrip(b"\0").decode(errors="replace")
    return None


def execute(
    mode: str,
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    stdin: Path | None,
    timeout: float,
    files_of: Path | None,
) -> ModeResult:
    start = time.monotonic()
    error: str | None = None
    status: int | None
    stdin_file = stdin.open("rb") if stdin is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=stdin_file, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=timeout)
            status = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            status = None
            error = f"timed out after {timeout:.0f} s"
    except OSError as exc:
        out, err, status = b"", b"", None
        error = f"cannot start: {exc}"
    finally:
        if stdin is not None and not isinstance(stdin_file, int):
            stdin_file.close()
    seconds = time.monotonic() - start
    err_lines = err.decode(errors="replace").splitlines()
    diagnostics = [line for line in err_lines if line.startswith("rrdbg: ")]
    others = [line for line in err_lines if not line.startswith("rrdbg: ")]
    # rrdbg's own traceback (a guest Python's names only sysroot files).
    if any(re.search(r'File ".*/rrdbg/[^"/]*(/[^"/]*)*\.py"', line) for line in others):
        diagnostics.append(f"rrdbg crashed: {last_line(chr(10).join(others))}")
    return ModeResult(
        mode=mode,
        status=status,
        stdout_sha256=hashlib.sha256(out).hexdigest(),
        stdout_len=len(out),
        stdout_head=out[:2000].decode(errors="backslashreplace"),
        seconds=round(seconds, 3),
        diagnostics=diagnostics,
        stderr_tail=others[-5:],
        files=snapshot_files(files_of) if files_of is not None else {},
        error=error,
        stdout=out,
    )


def fresh_copy(ctx: Context, directory: Path) -> Path:
    shutil.rmtree(directory, ignore_errors=True)
    directory.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ctx.cache.inputs, directory, symlinks=True)
    return directory


def describe_stdout(a: ModeResult, b: ModeResult) -> str:
    la, lb = a.stdout.splitlines(), b.stdout.splitlines()
    for i, (x, y) in enumerate(zip(la, lb, strict=False)):
        if x != y:
            return f"stdout differs at line {i + 1}: {a.mode} {x[:60]!r} vs {b.mode} {y[:60]!r}"
    return f"stdout differs: {a.mode} {len(la)} lines/{a.stdout_len} bytes vs {b.mode} " \
        f"{len(lb)} lines/{b.stdout_len} bytes"  # fmt: skip


def compare(a: ModeResult, b: ModeResult, *, files: bool) -> list[str]:
    """What differs between two runs ([] when nothing does)."""
    diffs: list[str] = []
    if b.error:
        diffs.append(f"{b.mode} {b.error}")
    if a.status != b.status:
        diffs.append(f"status {a.mode} {a.status} vs {b.mode} {b.status}")
    if a.stdout != b.stdout:
        diffs.append(describe_stdout(a, b))
    if files and a.files != b.files:
        missing = sorted(set(a.files) - set(b.files))
        extra = sorted(set(b.files) - set(a.files))
        changed = sorted(k for k in set(a.files) & set(b.files) if a.files[k] != b.files[k])
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}" + ("..." if len(missing) > 3 else ""))
        if extra:
            parts.append(f"extra {', '.join(extra[:3])}" + ("..." if len(extra) > 3 else ""))
        if changed:
            parts.append(f"changed {', '.join(changed[:3])}" + ("..." if len(changed) > 3 else ""))
        diffs.append(f"files differ ({b.mode}): " + "; ".join(parts))
    return diffs


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:80]


def run_invocation(ctx: Context, inv: Invocation) -> Outcome:
    outcome = Outcome(
        name=inv.name,
        category=inv.category,
        expect=inv.expect,
        known_failure=KNOWN_FAILURES.get(inv.name),
        argv=list(inv.argv),
    )
    if inv.needs is not None and not (ctx.cache.inputs / inv.needs).exists():
        outcome.skipped = f"input {inv.needs} could not be made"
        return outcome
    program = program_path(ctx, inv)
    if not program.exists():
        outcome.skipped = f"program {inv.argv[0]} not in the sysroot"
        return outcome
    sysroot = ctx.cache.sysroot
    args = list(inv.argv[1:])
    interp = interpreter(program)
    if interp is not None and not interp.endswith("/ld-linux.so.2"):
        outcome.skipped = f"{inv.argv[0]} needs the loader {interp}: no native way to run it"
        return outcome
    if interp is not None:
        libs = f"{sysroot}/lib/i386-linux-gnu:{sysroot}/usr/lib/i386-linux-gnu"
        native_argv = [str(sysroot / "lib/ld-linux.so.2"), "--library-path", libs,
                       str(program), *args]  # fmt: skip
    else:
        native_argv = [str(program), *args]
    stdin = ctx.cache.inputs / inv.stdin if inv.stdin else None
    stdin_opt = ["--stdin", str(stdin)] if stdin else []
    base = ctx.cache.work / slug(inv.name)
    shutil.rmtree(base, ignore_errors=True)
    env = ctx.env

    natives = []
    for i in range(2):
        cwd = fresh_copy(ctx, base / f"native{i}")
        natives.append(execute("native", native_argv, cwd, env, stdin, NATIVE_TIMEOUT, cwd))
    native = natives[0]
    again = compare(natives[0], natives[1], files=True)
    if again or native.status is None:
        outcome.native_nondeterministic = "; ".join(again) or (native.error or "no status")

    rrdbg = [ctx.python, "-m", "rrdbg"]
    cwd = fresh_copy(ctx, base / "run")
    run = execute(
        "run", [*rrdbg, "run", "--sysroot", str(sysroot), *stdin_opt, str(program), *args],
        cwd, env, stdin, RRDBG_TIMEOUT, cwd,
    )  # fmt: skip
    cwd = fresh_copy(ctx, base / "record")
    rec_dir = base / "recording"
    record = execute(
        "record",
        [*rrdbg, "record", "-o", str(rec_dir), "--sysroot", str(sysroot), *stdin_opt,
         str(program), *args],
        cwd, env, stdin, RRDBG_TIMEOUT, cwd,
    )  # fmt: skip
    if rec_dir.exists():
        replay = execute(
            "replay", [*rrdbg, "replay", str(rec_dir)], base, env, None, RRDBG_TIMEOUT, None
        )
    else:
        replay = ModeResult("replay", None, "", 0, "", 0.0, [], [], {}, "no recording to replay")
    outcome.modes = {"native": native, "run": run, "record": record, "replay": replay}

    outcome.run_diff = compare(native, run, files=True)
    outcome.rr_diff = compare(native, record, files=True) + compare(record, replay, files=False)
    outcome.run_ok = not outcome.run_diff
    outcome.rr_ok = not outcome.rr_diff
    seen: dict[str, None] = {}
    for mode in (run, record, replay):
        for line in mode.diagnostics:
            seen.setdefault(line, None)
    outcome.diagnostics = list(seen)
    return outcome


# --------------------------------------------------------------------------
# Reporting


def table(outcomes: Sequence[Outcome]) -> list[str]:
    cats: dict[str, list[Outcome]] = {}
    for o in outcomes:
        cats.setdefault(o.category, []).append(o)
    header = (
        f"{'category':<17} {'invocations':>11} {'run ok':>7} {'record+replay ok':>17} {'both':>5}"
    )
    lines = [header, "-" * len(header)]
    total = [0, 0, 0, 0]
    for cat, items in cats.items():
        ran = [o for o in items if not o.skipped]
        row = [len(ran), sum(o.run_ok for o in ran), sum(o.rr_ok for o in ran),
               sum(o.works for o in ran)]  # fmt: skip
        total = [t + r for t, r in zip(total, row, strict=True)]
        lines.append(f"{cat:<17} {row[0]:>11} {row[1]:>7} {row[2]:>17} {row[3]:>5}")
    lines.append("-" * len(header))
    lines.append(f"{'total':<17} {total[0]:>11} {total[1]:>7} {total[2]:>17} {total[3]:>5}")
    return lines


def report(outcomes: Sequence[Outcome], notes: Iterable[str], seconds: float) -> list[str]:
    lines = table(outcomes)
    ran = [o for o in outcomes if not o.skipped]
    lines.append("")
    lines.append(
        f"{sum(o.works for o in ran)} of {len(ran)} invocations work "
        f"(stdout, status and files match native in rrdbg run and record+replay); "
        f"{seconds:.0f} s"
    )
    for note in notes:
        lines.append(f"note: {note}")
    for o in outcomes:
        if o.skipped:
            lines.append(f"SKIPPED {o.name}: {o.skipped}")
        if o.native_nondeterministic:
            lines.append(f"NATIVE NONDETERMINISTIC {o.name}: {o.native_nondeterministic}")
    failures = [o for o in ran if not o.works]
    if failures:
        lines.append("")
        lines.append("failures (invocation | what differed | rrdbg diagnostics):")
    for o in failures:
        tag = f"[known: {o.known_failure}]" if o.known_failure is not None else "[UNEXPECTED]"
        diffs = list(dict.fromkeys(o.run_diff + o.rr_diff))
        diag = " / ".join(o.diagnostics) or "(none)"
        tail = ""
        mode = "run" if not o.run_ok else "record"
        if mode in o.modes and o.modes[mode].stderr_tail:
            tail = f" | {mode} stderr: {' / '.join(o.modes[mode].stderr_tail[-2:])}"
        lines.append(f"{tag} {o.name} | {'; '.join(diffs)} | {diag}{tail}")
    for o in ran:
        if o.known_failure is not None and o.works:
            lines.append(f"known failure now works (remove it from KNOWN_FAILURES): {o.name}")
    unmet = [o for o in outcomes if not o.meets_expectation]
    lines.append("")
    lines.append(
        "expectations met" if not unmet
        else f"EXPECTATIONS NOT MET: {len(unmet)} invocation(s): "
        + "; ".join(o.name for o in unmet)
    )  # fmt: skip
    return lines


def to_json(outcomes: Sequence[Outcome], notes: Sequence[str], seconds: float) -> dict[str, Any]:
    def mode_dict(m: ModeResult) -> dict[str, Any]:
        d = asdict(m)
        d.pop("stdout", None)
        return d

    return {
        "seconds": round(seconds, 1),
        "notes": list(notes),
        "table": table(outcomes),
        "outcomes": [
            {
                **{k: v for k, v in asdict(o).items() if k != "modes"},
                "works": o.works,
                "meets_expectation": o.meets_expectation,
                "modes": {k: mode_dict(m) for k, m in o.modes.items()},
            }
            for o in outcomes
        ],
    }


# --------------------------------------------------------------------------
# Main


def select(only: Sequence[str], keyword: Sequence[str]) -> list[Invocation]:
    chosen = INVOCATIONS
    if only:
        wanted = {c.lower() for c in only}
        chosen = [i for i in chosen if i.category.lower() in wanted]
    if keyword:
        chosen = [i for i in chosen if any(k.lower() in i.name.lower() for k in keyword)]
    return chosen


def default_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="corpus.py",
        description="Run real i386 programs natively, under rrdbg run and as rrdbg "
        "record + replay, and compare stdout, exit status and files left.",
    )
    parser.add_argument("--cache", type=Path, default=None,
                        help="cache directory (default $RRDBG_CORPUS_CACHE or "
                        "~/.cache/rrdbg-corpus)")  # fmt: skip
    parser.add_argument("--only", action="append", default=[], metavar="CATEGORY",
                        help="run only this category (repeatable)")  # fmt: skip
    parser.add_argument("-k", action="append", default=[], metavar="SUBSTRING",
                        help="run only invocations whose name contains SUBSTRING")  # fmt: skip
    parser.add_argument("--jobs", "-j", type=int, default=2, help="parallel invocations (2)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="write the full results to FILE")  # fmt: skip
    parser.add_argument("--refresh", action="store_true",
                        help="fetch and unpack the packages again")  # fmt: skip
    parser.add_argument("--fetch-only", action="store_true",
                        help="fetch, build and generate inputs; run nothing")  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the invocations and exit")
    parser.add_argument("--python", default=default_python(),
                        help="the Python that runs rrdbg (default: the repo's .venv)")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    ns = parse_args(argv)
    chosen = select(ns.only, ns.k)
    if ns.list:
        for inv in chosen:
            print(f"{inv.name}  [{inv.expect}]  {' '.join(inv.argv)}")
        return EXIT_OK
    if not chosen and not ns.fetch_only:
        print("corpus: no invocation matches --only/-k", file=sys.stderr)
        return EXIT_SETUP
    cache = Cache((ns.cache or default_cache()).resolve())
    cache.root.mkdir(parents=True, exist_ok=True)
    # One corpus run per cache at a time (each remakes inputs/ and work/).
    with (cache.root / "lock").open("w") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another corpus run using {cache.root}")
            fcntl.flock(lock_file, fcntl.LOCK_EX)
        return _main_locked(ns, chosen, cache)


def _main_locked(ns: argparse.Namespace, chosen: list[Invocation], cache: Cache) -> int:
    start = time.monotonic()
    try:
        fetch(cache, refresh=ns.refresh)
        build_c_programs(cache)
        notes = write_inputs(cache)
    except Unreachable as exc:
        print(f"{UNREACHABLE_PREFIX}{exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except SetupError as exc:
        print(f"corpus: {exc}", file=sys.stderr)
        return EXIT_SETUP
    if ns.fetch_only:
        return EXIT_OK

    ctx = Context(cache, ns.python, fixed_env(cache.sysroot))
    shutil.rmtree(cache.work, ignore_errors=True)
    log(f"running {len(chosen)} invocations with {ns.jobs} jobs (work dirs in {cache.work})")
    lock = threading.Lock()
    done = [0]

    def one(inv: Invocation) -> Outcome:
        outcome = run_invocation(ctx, inv)
        with lock:
            done[0] += 1
            mark = "ok" if outcome.works else "skipped" if outcome.skipped else "FAIL"
            log(f"[{done[0]}/{len(chosen)}] {mark:7} {inv.name}")
        return outcome

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, ns.jobs)) as pool:
        outcomes = list(pool.map(one, chosen))
    seconds = time.monotonic() - start
    lines = report(outcomes, notes, seconds)
    print("\n".join(lines))
    if ns.json is not None:
        ns.json.write_text(json.dumps(to_json(outcomes, notes, seconds), indent=1) + "\n")
    return EXIT_OK if all(o.meets_expectation for o in outcomes) else EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
