#!/usr/bin/env bash
# Build the i386 test guest programs in tests/guests/ into tests/guests/bin/.
#
#   tools/build_guests.sh [--fetch-musl]
#
# Every tests/guests/*.c and *.S becomes a static ELF32 i386 executable
# tests/guests/bin/<name>, linked against glibc with `gcc -m32` (needs
# gcc-multilib).  Finally bin/SHA256SUMS is written.  Builds are meant to be
# reproducible: the checkout path is mapped away (-ffile-prefix-map) and no
# build-id is emitted, so the same toolchain gives byte-identical binaries.
#
# Test kernels: every tests/guests/kernels/k_*.c is linked with the shared
# runtime there (runtime.S, runtime.c) into a freestanding Multiboot v1 ELF
# kernel tests/guests/bin/k_<name>, loaded at 1 MiB by kernels/kernel.ld
# (for `rrdbg run --machine pc` and `qemu-system-i386 -kernel`).
#
# Optional musl build: hello.c is additionally built as bin/hello-musl when
# an i386 musl sysroot is available.  Debian's musl-dev:i386 cannot be
# *installed* next to gcc-multilib (it depends on gcc-i686-linux-gnu, which
# conflicts with gcc-multilib), so instead the package is only downloaded and
# unpacked into tests/guests/.musl-i386/ (gitignored) and driven with
# `gcc -m32 -nostdinc -nostdlib ...`:
#   --fetch-musl   download + unpack musl-dev:i386 (needs the i386 dpkg
#                  architecture: `dpkg --add-architecture i386 && apt-get update`)
# The sysroot is looked up in $MUSL_I386_ROOT, then tests/guests/.musl-i386,
# then / (an installed musl-dev:i386).  Set MUSL_I386_ROOT=none to skip musl.
# Without a sysroot the musl step is skipped with a message.
#
# Environment: CC (default gcc), MUSL_I386_ROOT (see above).
# Exit status: 0 ok, 1 a guest failed to build, 2 `gcc -m32` cannot link.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GUEST_DIR="tests/guests"
BIN_DIR="$GUEST_DIR/bin"
MUSL_CACHE="$GUEST_DIR/.musl-i386"
CC="${CC:-gcc}"

fetch_musl=0
for arg in "$@"; do
    case "$arg" in
        --fetch-musl) fetch_musl=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "build_guests.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

# Work from the repository root with relative paths, and map the root to "."
# so that neither DW_AT_comp_dir nor file names embed the checkout location.
cd "$ROOT"
export LC_ALL=C
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}"

COMMON_FLAGS=(
    -m32 -static -g -O1 -fno-pie -no-pie
    -Wall -Wextra
    "-ffile-prefix-map=$ROOT=."
    -Wl,--build-id=none
)
LIBS=(-lm)

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# --- sanity check: can we link a static 32-bit glibc program? -------------
printf 'int main(void){return 0;}\n' > "$TMP/probe.c"
if ! "$CC" "${COMMON_FLAGS[@]}" "$TMP/probe.c" -o "$TMP/probe" >"$TMP/probe.log" 2>&1; then
    echo "build_guests.sh: '$CC -m32 -static' cannot link a 32-bit program (install gcc-multilib: apt-get install gcc-multilib)" >&2
    exit 2
fi

# --- build the glibc guests -------------------------------------------------
rm -rf "$BIN_DIR"
mkdir -p "$BIN_DIR"

shopt -s nullglob
sources=("$GUEST_DIR"/*.c "$GUEST_DIR"/*.S)
shopt -u nullglob
if [ "${#sources[@]}" -eq 0 ]; then
    echo "build_guests.sh: no sources in $GUEST_DIR" >&2
    exit 1
fi

failed=0
for src in "${sources[@]}"; do
    base="$(basename "$src")"
    name="${base%.*}"
    out="$BIN_DIR/$name"
    # A source may ask for extra flags with a "build-flags: ..." comment line.
    extra=()
    flags_line="$(sed -n 's/^.*build-flags: *\([^*]*\).*$/\1/p' "$src" | head -n 1)"
    if [ -n "$flags_line" ]; then
        read -r -a extra <<< "$flags_line"
    fi
    if "$CC" "${COMMON_FLAGS[@]}" "${extra[@]}" -frandom-seed="$name" "$src" -o "$out" "${LIBS[@]}"; then
        echo "  built $out"
    else
        echo "build_guests.sh: FAILED to build $src" >&2
        failed=1
    fi
done
if [ "$failed" -ne 0 ]; then
    exit 1
fi

# A static-pie hello (ET_DYN without an interpreter, loaded at a base address).
PIE_FLAGS=()
for flag in "${COMMON_FLAGS[@]}"; do
    case "$flag" in -static | -fno-pie | -no-pie) ;; *) PIE_FLAGS+=("$flag") ;; esac
done
if "$CC" "${PIE_FLAGS[@]}" -static-pie -fpie -frandom-seed=hello-static-pie \
        "$GUEST_DIR/hello.c" -o "$BIN_DIR/hello-static-pie"; then
    echo "  built $BIN_DIR/hello-static-pie"
else
    echo "build_guests.sh: FAILED to build hello-static-pie" >&2
    exit 1
fi

# A dynamically linked hello (what `gcc -m32 hello.c` gives, but -no-pie).
DYN_FLAGS=()
for flag in "${COMMON_FLAGS[@]}"; do
    [ "$flag" = -static ] || DYN_FLAGS+=("$flag")
done
if "$CC" "${DYN_FLAGS[@]}" -frandom-seed=hello-dynamic "$GUEST_DIR/hello.c" \
        -o "$BIN_DIR/hello-dynamic"; then
    echo "  built $BIN_DIR/hello-dynamic"
else
    echo "build_guests.sh: FAILED to build hello-dynamic" >&2
    exit 1
fi

# A dynamically linked program with its own shared library, built as
# `gcc -m32 -g prog.c` builds by default (PIE).  The program finds the library
# through its RUNPATH /opt/rrdbg-test/lib: tests provide it with --sysroot
# (or LD_LIBRARY_PATH natively).
DYN_DIR="$GUEST_DIR/dynamic"
if "$CC" -m32 -shared -fpic -g -O1 -Wall -Wextra "-ffile-prefix-map=$ROOT=." \
        -Wl,--build-id=none -Wl,-soname,libguest.so -frandom-seed=libguest \
        "$DYN_DIR/libguest.c" -o "$BIN_DIR/libguest.so" \
    && "$CC" -m32 -g -O1 -Wall -Wextra "-ffile-prefix-map=$ROOT=." -Wl,--build-id=none \
        -frandom-seed=dynamic "$DYN_DIR/dynamic.c" -o "$BIN_DIR/dynamic" \
        -L"$BIN_DIR" -lguest -Wl,-rpath,/opt/rrdbg-test/lib -Wl,--disable-new-dtags; then
    echo "  built $BIN_DIR/dynamic and $BIN_DIR/libguest.so"
else
    echo "build_guests.sh: FAILED to build the dynamic guest" >&2
    exit 1
fi

# --- bare-metal test kernels ------------------------------------------------
# No libc and no host startup code; -mgeneral-regs-only because nothing sets
# up the FPU/SSE, -fcf-protection=none so that no distribution default adds
# endbr32 instructions, and no unwind tables (nothing unwinds).
KERNEL_DIR="$GUEST_DIR/kernels"
KERNEL_FLAGS=(
    -m32 -ffreestanding -fno-pic -fno-pie -no-pie -static -nostdlib
    -fno-stack-protector -fcf-protection=none -mgeneral-regs-only
    -fno-asynchronous-unwind-tables
    -g -O1 -Wall -Wextra
    "-ffile-prefix-map=$ROOT=."
    -Wl,--build-id=none "-Wl,-T,$KERNEL_DIR/kernel.ld"
)
shopt -s nullglob
kernels=("$KERNEL_DIR"/k_*.c)
shopt -u nullglob
for src in "${kernels[@]}"; do
    name="$(basename "$src" .c)"
    if "$CC" "${KERNEL_FLAGS[@]}" -frandom-seed="$name" \
            "$KERNEL_DIR/runtime.S" "$KERNEL_DIR/runtime.c" "$src" -lgcc -o "$BIN_DIR/$name"; then
        echo "  built $BIN_DIR/$name"
    else
        echo "build_guests.sh: FAILED to build $src" >&2
        exit 1
    fi
done

# --- optional musl variant of hello ----------------------------------------
if [ "$fetch_musl" -eq 1 ]; then
    echo "  fetching musl-dev:i386 into $MUSL_CACHE"
    mkdir -p "$TMP/deb"
    chmod 777 "$TMP" "$TMP/deb"   # let apt's _apt user write the download
    if ! (cd "$TMP/deb" && apt-get download -qq musl-dev:i386 2>"$TMP/apt.log"); then
        cat "$TMP/apt.log" >&2
        echo "build_guests.sh: could not download musl-dev:i386 (is the i386 architecture enabled? dpkg --add-architecture i386 && apt-get update)" >&2
        exit 1
    fi
    rm -rf "$MUSL_CACHE"
    mkdir -p "$MUSL_CACHE"
    dpkg-deb -x "$TMP"/deb/musl-dev_*_i386.deb "$MUSL_CACHE"
fi

musl_root=""
if [ "${MUSL_I386_ROOT:-}" = "none" ]; then
    :
elif [ -n "${MUSL_I386_ROOT:-}" ]; then
    musl_root="$MUSL_I386_ROOT"
elif [ -f "$MUSL_CACHE/usr/lib/i386-linux-musl/libc.a" ]; then
    musl_root="$MUSL_CACHE"
elif [ -f /usr/lib/i386-linux-musl/libc.a ]; then
    musl_root="/"
fi

build_musl() {  # build_musl SRC OUT
    local lib="$musl_root/usr/lib/i386-linux-musl"
    local inc="$musl_root/usr/include/i386-linux-musl"
    "$CC" -m32 -static -g -O1 -fno-pie -no-pie -Wall -Wextra \
        "-ffile-prefix-map=$ROOT=." -Wl,--build-id=none \
        -nostdinc -isystem "$inc" -isystem "$("$CC" -m32 -print-file-name=include)" \
        -nostdlib \
        "$lib/crt1.o" "$lib/crti.o" "$("$CC" -m32 -print-file-name=crtbeginT.o)" \
        "$1" \
        -L"$lib" -Wl,--start-group -lc "$("$CC" -m32 -print-libgcc-file-name)" -Wl,--end-group \
        "$("$CC" -m32 -print-file-name=crtend.o)" "$lib/crtn.o" \
        -o "$2"
}

if [ -z "$musl_root" ]; then
    echo "  skipping hello-musl: no i386 musl sysroot (run with --fetch-musl to get one)"
elif [ ! -f "$musl_root/usr/lib/i386-linux-musl/libc.a" ]; then
    echo "build_guests.sh: MUSL_I386_ROOT=$musl_root has no usr/lib/i386-linux-musl/libc.a" >&2
    exit 1
elif build_musl "$GUEST_DIR/hello.c" "$BIN_DIR/hello-musl"; then
    echo "  built $BIN_DIR/hello-musl (musl, sysroot $musl_root)"
else
    echo "build_guests.sh: FAILED to build hello-musl" >&2
    exit 1
fi

# --- checksums ---------------------------------------------------------------
(
    cd "$BIN_DIR"
    find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | sort \
        | xargs sha256sum > SHA256SUMS
)
echo "  wrote $BIN_DIR/SHA256SUMS"
