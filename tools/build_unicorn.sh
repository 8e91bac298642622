#!/usr/bin/env bash
# Build Unicorn 2.1.1 with rrdbg's CPU patches (third_party/unicorn/*.patch)
# and put the library into .venv's unicorn package, in place of the wheel's.
#   tools/build_unicorn.sh            build unless .venv has this very build
#   tools/build_unicorn.sh --force    build again
# The source is PyPI's unicorn 2.1.1 sdist, checked against its SHA-256; only
# the x86 target is built (about a minute on two cores).  The result is cached
# in ~/.cache/rrdbg-unicorn (or $RRDBG_UNICORN_CACHE), keyed by the patches,
# this script and the machine, so a re-install copies it.  tools/install.sh
# runs this; RRDBG_STOCK_UNICORN=1 skips it (rrdbg then runs the stock wheel's
# library, with the CPU differences docs/machine.md lists).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

version=2.1.1
sha256=904f4146b09cd708fdf6b90ebb48d30eaa0ba339382964d4d08c0b9399cf4ba3
# The patch level the library reports (uc_rrdbg_patchlevel, set by the last
# patch); rrdbg's engine reads it as Unicorn "2.1.1+rrdbg.N".
level=$(sed -n 's/^+ *return \([0-9][0-9]*\); *$/\1/p' third_party/unicorn/*-marker.patch | head -n1)
python=.venv/bin/python

die() { echo "tools/build_unicorn.sh: $*" >&2; exit 1; }
if [ "${RRDBG_STOCK_UNICORN:-}" = 1 ]; then
    echo "tools/build_unicorn.sh: RRDBG_STOCK_UNICORN=1: keeping the stock Unicorn" >&2
    exit 0
fi
[ -x "$python" ] || die ".venv is missing: run tools/install.sh"
[ -n "$level" ] || die "third_party/unicorn: no patch level in the marker patch"
expected="$version+rrdbg.$level"

libdir=$("$python" -c 'import pathlib, unicorn; print(pathlib.Path(unicorn.__file__).parent / "lib")')
lib="$libdir/libunicorn.so.2"
key=$({ cat third_party/unicorn/*.patch "$0"; uname -m; } | sha256sum | cut -c1-16)
# The stamp names the build .venv has and the library's own checksum, so a
# reinstalled wheel (whose library differs) is noticed.
stamp="$libdir/rrdbg-patches"
if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] && [ -f "$lib" ] &&
    [ "$(cat "$stamp")" = "$expected $key $(sha256sum <"$lib" | cut -c1-64)" ]; then
    exit 0
fi

cache=${RRDBG_UNICORN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rrdbg-unicorn}
built="$cache/libunicorn.so.2-$expected-$key"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "${1:-}" = "--force" ] || [ ! -f "$built" ]; then
    for tool in cmake make git; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool not found (tools/install.sh installs it)"
    done
    mkdir -p "$cache"
    tarball="$cache/unicorn-$version.tar.gz"
    if [ ! -f "$tarball" ] || ! echo "$sha256  $tarball" | sha256sum -c --status; then
        echo "tools/build_unicorn.sh: downloading the unicorn $version source from PyPI"
        "$python" -m pip download -q --no-binary :all: --no-deps -d "$work/dl" \
            "unicorn==$version" >"$work/pip.log" 2>&1 ||
            { cat "$work/pip.log" >&2; die "cannot download the unicorn $version sdist"; }
        download=$(mktemp "$tarball.XXXXXX")
        mv "$work/dl/unicorn-$version.tar.gz" "$download"
        mv "$download" "$tarball"
    fi
    echo "$sha256  $tarball" | sha256sum -c --status ||
        die "$tarball: SHA-256 differs from the pinned one"
    tar -xzf "$tarball" -C "$work"
    src="$work/unicorn-$version/src"
    # The sdist flattens the cmake/ directory its CMakeLists.txt includes.
    mkdir -p "$src/cmake"
    cp "$src"/*.cmake "$src/cmake/"
    # A repository of its own: inside another one (a temporary directory in
    # a work tree), git apply would skip the paths and succeed.
    git -C "$src" init -q
    for patch in third_party/unicorn/*.patch; do
        git -C "$src" apply -p1 "$root/$patch" || die "$patch does not apply"
    done
    echo "tools/build_unicorn.sh: building Unicorn $expected (x86 only)"
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DUNICORN_ARCH=x86 \
        -DUNICORN_BUILD_TESTS=off >"$work/cmake.log" 2>&1 ||
        { cat "$work/cmake.log" >&2; die "cmake configure failed"; }
    cmake --build "$work/build" -j"$(nproc)" >>"$work/cmake.log" 2>&1 ||
        { tail -n 40 "$work/cmake.log" >&2; die "the build failed"; }
    copy=$(mktemp "$built.XXXXXX")
    cp "$work/build/libunicorn.so.2" "$copy"
    mv "$copy" "$built"
fi
# Replaced by a rename: running processes keep the library they mapped.
copy=$(mktemp "$libdir/.libunicorn.XXXXXX")
cp "$built" "$copy"
chmod 755 "$copy"
mv "$copy" "$lib"
got=$("$python" -c 'from rrdbg.machine.engine import unicorn_version; print(unicorn_version())')
[ "$got" = "$expected" ] || die ".venv's Unicorn calls itself $got after the install, not $expected"
echo "$expected $key $(sha256sum <"$lib" | cut -c1-64)" >"$stamp"
echo "tools/build_unicorn.sh: .venv now runs Unicorn $got"
