#!/usr/bin/env bash
# The README's test command, and what CI runs (.ci/run): install everything
# the test suite needs, then run ruff, mypy --strict and pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install.sh --dev
# The native hook must be there: a silent fallback to the Python counter would
# hide a broken build (the extension is optional only for users).
.venv/bin/python -c "from rrdbg.machine.icount import native_available as n; assert n(), 'C extension not built'"

.venv/bin/ruff check rrdbg tests benchmarks tools
.venv/bin/ruff format --check rrdbg tests benchmarks tools
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
