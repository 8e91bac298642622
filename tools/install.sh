#!/usr/bin/env bash
# Install rrdbg into .venv on a Debian machine, with the system packages it
# needs (a C compiler and Python headers for the native icount hook, venv,
# gdb, the debugger rrdbg serves, and cmake, make and git to build Unicorn with
# rrdbg's CPU patches, tools/build_unicorn.sh).
#   tools/install.sh          rrdbg itself
#   tools/install.sh --dev    plus the test and lint tools, gcc-multilib, qemu-utils,
#                             qemu-system-x86, lldb, dejagnu
#                             (tools/test.sh uses this)
# Re-running it reuses .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v gdb >/dev/null 2>&1 || need+=(gdb)
# Unicorn is built from source with rrdbg's CPU patches (tools/build_unicorn.sh).
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v make >/dev/null 2>&1 || need+=(make)
command -v git >/dev/null 2>&1 || need+=(git)
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need+=(python3-venv)
python3 - <<'PY' || need+=(python3-dev)
import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
PY
# The tests also check rrdbg's snapshot images with the real qemu-img/qemu-io,
# and run the pc machine's test kernels under qemu-system-i386 for comparison.
need_lean=()
if [ -n "$extras" ]; then
    # The tests build small C programs with `gcc -m32 -static`, as users do.
    echo 'int main(void){return 0;}' | gcc -m32 -static -x c -o /dev/null - >/dev/null 2>&1 ||
        need+=(gcc-multilib)
    command -v qemu-img >/dev/null 2>&1 && command -v qemu-io >/dev/null 2>&1 || need+=(qemu-utils)
    # Without recommends: the GUI, OVMF and block plugins are not needed.
    command -v qemu-system-i386 >/dev/null 2>&1 || need_lean+=(qemu-system-x86)
    # The CodeLLDB configuration in docs/ide.md is checked with lldb itself.
    command -v lldb >/dev/null 2>&1 || need_lean+=(lldb)
    # gdb's own testsuite runs against rrdbg under DejaGnu (tools/gdb_testsuite.py).
    command -v runtest >/dev/null 2>&1 || need_lean+=(dejagnu)
fi
all=("${need[@]}" "${need_lean[@]}")
if [ "${#all[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    echo "tools/install.sh: installing ${all[*]} with apt-get"
    # A mirror in mid-sync can fail one index; the lists we have may still do.
    $SUDO apt-get update -qq || echo "tools/install.sh: apt-get update failed; trying the install anyway" >&2
    if [ "${#need[@]}" -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    if [ "${#need_lean[@]}" -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
            "${need_lean[@]}" >/dev/null
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# pip's and setuptools' warnings (an editable install, an unused extra index)
# are noise here: show them only if the install fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { .venv/bin/python -m pip install -q --upgrade pip >/dev/null &&
    .venv/bin/python -m pip install -q -e ".$extras"; } 2>"$log"; then
    cat "$log" >&2
    echo "tools/install.sh: installing rrdbg into .venv failed (pip's messages above)" >&2
    exit 1
fi
# The wheel's Unicorn, replaced by one built with rrdbg's CPU patches
# (third_party/unicorn); does nothing if .venv has it already.
tools/build_unicorn.sh
