#!/usr/bin/env bash
# The README's first command: install rrdbg (tools/install.sh, which also
# installs gdb), record a bundled example program, and run a scripted gdb
# session that finds the last write to a variable with a reverse watchpoint.
#
# debugme (tests/guests/debugme.c) calls bump(i) for i = 1..5; bump adds to
# the global `counter` (0, 1, 3, 6, 10, 15).  At the end of main, gdb watches
# `counter` and runs *backwards*: it stops in bump, at the instruction that
# wrote the final value, showing the value before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo
echo "== rrdbg record: run debugme under emulation, recording every input"
status=0
.venv/bin/rrdbg record -o "$work/debugme.rr" tests/guests/bin/debugme || status=$?
echo "   (debugme exited with status $status, as it always does)"

echo
echo "== gdb: stop at the end of main, watch 'counter', then reverse-continue"
gdb -q -nx -batch \
    -ex "set pagination off" \
    -ex "target remote | .venv/bin/rrdbg replay --gdb stdio --quiet $work/debugme.rr" \
    -ex "break debugme.c:45" \
    -ex "continue" \
    -ex "print counter" \
    -ex "watch counter" \
    -ex "reverse-continue" \
    -ex "backtrace" \
    -ex "monitor when" \
    -ex "reverse-continue" \
    tests/guests/bin/debugme 2>&1
echo
echo "The reverse watchpoint stopped where counter was last written (15 <- 10),"
echo "then at the write before it.  Next: README.md, docs/debugging.md."
