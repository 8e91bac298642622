#!/usr/bin/env bash
# Install everything the test suite needs on a Debian machine, then run it:
# ruff, mypy --strict and pytest.  This is the README's test command and what
# CI runs (.ci/run).  Re-running it reuses .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools: a C compiler and Python headers build the native icount hook.
need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc)
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need+=(python3-venv)
python3 -c "import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
    || need+=(python3-dev)
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    echo "tools/test.sh: installing ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[dev]"
# The native hook must be there: a silent fallback to Python would hide a
# broken build (the extension is optional only for users without a compiler).
.venv/bin/python -c "from rrdbg.machine.icount import native_available as n; assert n(), 'C extension not built'"

.venv/bin/ruff check rrdbg tests benchmarks tools
.venv/bin/ruff format --check rrdbg tests benchmarks tools
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
