#!/usr/bin/env bash
# Build Unicorn 2.1.1 with rrdbg's CPU patches (third_party/unicorn/*.patch)
# and put the library into .venv's unicorn package, in place of the wheel's.
#   tools/build_unicorn.sh            build if .venv's library is not this patch level
#   tools/build_unicorn.sh --force    build again
# The source is PyPI's unicorn 2.1.1 sdist, checked against its SHA-256; only
# the x86 target is built (about a minute on two cores).  The result is cached
# in ~/.cache/rrdbg-unicorn (or $RRDBG_UNICORN_CACHE) by patch level, so a
# re-install copies it.  tools/install.sh runs this.
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
[ -x "$python" ] || die ".venv is missing: run tools/install.sh"
[ -n "$level" ] || die "third_party/unicorn: no patch level in the marker patch"

libdir=$("$python" -c 'import pathlib, unicorn; print(pathlib.Path(unicorn.__file__).parent / "lib")')
# What .venv's library was built from (written below); a stock wheel has none.
stamp="$libdir/rrdbg-patches"
patches_sum=$(cat third_party/unicorn/*.patch | sha256sum | cut -c1-16)
if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] &&
    [ "$(cat "$stamp")" = "$version+rrdbg.$level $patches_sum" ]; then
    exit 0
fi

cache=${RRDBG_UNICORN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rrdbg-unicorn}
built="$cache/libunicorn.so.2-$version-rrdbg$level-$patches_sum"
if [ "${1:-}" = "--force" ] || [ ! -f "$built" ]; then
    command -v cmake >/dev/null 2>&1 || die "cmake not found (tools/install.sh installs it)"
    mkdir -p "$cache"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    tarball="$cache/unicorn-$version.tar.gz"
    if [ ! -f "$tarball" ] || ! echo "$sha256  $tarball" | sha256sum -c --status; then
        echo "tools/build_unicorn.sh: downloading the unicorn $version source from PyPI"
        "$python" -m pip download -q --no-binary :all: --no-deps -d "$work/dl" \
            "unicorn==$version" >"$work/pip.log" 2>&1 ||
            { cat "$work/pip.log" >&2; die "cannot download the unicorn $version sdist"; }
        mv "$work/dl/unicorn-$version.tar.gz" "$tarball"
    fi
    echo "$sha256  $tarball" | sha256sum -c --status ||
        die "$tarball: SHA-256 differs from the pinned one"
    tar -xzf "$tarball" -C "$work"
    src="$work/unicorn-$version/src"
    # The sdist flattens the cmake/ directory its CMakeLists.txt includes.
    mkdir -p "$src/cmake"
    cp "$src"/*.cmake "$src/cmake/"
    for patch in third_party/unicorn/*.patch; do
        (cd "$src" && git apply -p1 "$root/$patch") || die "$patch does not apply"
    done
    echo "tools/build_unicorn.sh: building Unicorn $version+rrdbg.$level (x86 only)"
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DUNICORN_ARCH=x86 \
        -DUNICORN_BUILD_TESTS=off >"$work/cmake.log" 2>&1 ||
        { cat "$work/cmake.log" >&2; die "cmake configure failed"; }
    cmake --build "$work/build" -j"$(nproc)" >>"$work/cmake.log" 2>&1 ||
        { tail -n 40 "$work/cmake.log" >&2; die "the build failed"; }
    cp "$work/build/libunicorn.so.2" "$built.tmp"
    mv "$built.tmp" "$built"
fi
cp "$built" "$libdir/libunicorn.so.2.tmp"
mv "$libdir/libunicorn.so.2.tmp" "$libdir/libunicorn.so.2"
echo "$version+rrdbg.$level $patches_sum" >"$stamp"
got=$("$python" -c 'from rrdbg.machine.engine import unicorn_version; print(unicorn_version())')
echo "tools/build_unicorn.sh: .venv now runs Unicorn $got"
