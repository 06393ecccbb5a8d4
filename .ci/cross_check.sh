#!/usr/bin/env bash
# Compile the C library for platforms this machine cannot run (`make cross-check`),
# with the flags a real build there uses and warnings as errors:
#   macOS x86_64, arm64  zig cc (PyPI's ziglang): native/*.c and the cffi module
#                        (limited API, this Python's headers), linked as a Mach-O
#                        dylib; exported symbols checked against softmax.h
#   Windows x86_64 GNU   Debian's mingw-w64 gcc: native/*.c linked into a DLL
#   Windows x86_64 MSVC  clang in cl mode with __clang__ undefined, so MSVC's own
#     ABI (emulated)     branches compile (<intrin.h> cpuid, __alignof, no target
#                        attribute, kernels_avx2.c alone with /arch:AVX2); no MSVC
#                        CRT headers can be had here, so declaration-only stand-ins
#                        for the few used; linked by lld-link against mingw's import library of the UCRT.
# Each target also shows whether its AVX2 kernels are in (x86_64) or out (arm64).
# Needs: python with cffi and ziglang (PYTHON), mingw-w64, clang, lld, llvm.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=$ROOT/native
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$ROOT/build/cross}
rm -rf "$OUT" && mkdir -p "$OUT"
# The C sources as the build itself lists them (native/build_ffi.py's SOURCES), so a
# new file cannot be left out here (kernels_masked.c once was).
read -r -a SOURCES <<<"$(cd "$SRC" && "$PYTHON" -c 'import build_ffi; print(*build_ffi.SOURCES)')"
WARN=(-O2 -Wall -Wextra -Werror)  # build_ffi.py's flags, plus -Werror as in CI

for tool in x86_64-w64-mingw32-gcc clang lld-link llvm-nm llvm-objdump; do
    command -v "$tool" >/dev/null || { echo "cross-check: $tool not found (apt-get install mingw-w64 clang lld llvm)"; exit 1; }
done
"$PYTHON" -m ziglang version >/dev/null 2>&1 || { echo "cross-check: $PYTHON -m ziglang failed (pip install ziglang)"; exit 1; }
ZIG=("$PYTHON" -m ziglang)

# The public API, as softmax.h declares it (comments dropped), one name a line.
API=$(sed -n '/cffi-cdef-begin/,/cffi-cdef-end/p' "$SRC/softmax.h" | sed 's:/\*.*\*/::' \
      | grep -o '\bsm_[a-z0-9_]*(' | tr -d '(' | sort -u)
avx2_state() {  # (grep -c, not -q: an early exit would fail the pipe under pipefail)
    if [ "$(llvm-objdump -d "$1" | grep -c ymm)" -gt 0 ]; then echo "AVX2 kernels in"; else echo "no AVX2 code"; fi
}

# --- macOS: the C library and the cffi module, as setuptools would build them there
"$PYTHON" - "$OUT/_native.c" <<EOF
import importlib.util, sys
spec = importlib.util.spec_from_file_location("build_ffi", "$SRC/build_ffi.py")
builder = importlib.util.module_from_spec(spec); spec.loader.exec_module(builder)
builder.ffibuilder.emit_c_code(sys.argv[1])
EOF
PYINC=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
for arch in x86_64 aarch64; do
    dir=$OUT/macos-$arch && mkdir -p "$dir"
    target=(-target "$arch-macos.11.0")
    objs=()
    for src in "${SOURCES[@]}" ; do
        "${ZIG[@]}" cc "${target[@]}" "${WARN[@]}" -fvisibility=hidden -fPIC -I"$SRC" -c "$SRC/$src" -o "$dir/${src%.c}.o"
        objs+=("$dir/${src%.c}.o")
    done
    # cffi's generated module with the same flags: CI's macOS build uses -Werror on it too
    "${ZIG[@]}" cc "${target[@]}" "${WARN[@]}" -fvisibility=hidden -fPIC -I"$SRC" -I"$PYINC" -c "$OUT/_native.c" -o "$dir/_native.o"
    "${ZIG[@]}" cc "${target[@]}" -shared -Wl,-undefined,dynamic_lookup -o "$dir/_native.abi3.so" "$dir/_native.o" "${objs[@]}"
    # (a dylib: zig's linker has no -bundle; the linker's own __dso_handle and
    # __mh_dylib_header are left out of the comparison)
    got=$(llvm-nm -gU "$dir/_native.abi3.so" | awk '{print $3}' | grep -v '^__' | sed 's/^_//' | sort -u)
    want=$( (echo "$API"; echo PyInit__native) | sort -u)
    if [ "$got" != "$want" ]; then echo "macOS $arch: exported symbols differ from softmax.h's API:"; diff <(echo "$want") <(echo "$got"); exit 1; fi
    echo "macOS $arch: OK, C sources with -Werror and the cffi module linked; exports exactly the $(echo "$API" | wc -l) API functions + PyInit__native; $(avx2_state "$dir/_native.abi3.so")"
done

# --- Windows x86_64, GNU ABI (mingw-w64 gcc): the C library as a DLL
dir=$OUT/windows-gnu && mkdir -p "$dir"
objs=()
for src in "${SOURCES[@]}"; do
    x86_64-w64-mingw32-gcc "${WARN[@]}" -I"$SRC" -c "$SRC/$src" -o "$dir/${src%.c}.o"
    objs+=("$dir/${src%.c}.o")
done
x86_64-w64-mingw32-gcc -shared -o "$dir/softmax.dll" "${objs[@]}"
# GCC on Windows keeps the stack only 16-byte aligned yet spills ymm registers with
# aligned moves (GCC bug 54412): such a move would crash there at run time.
spills=$(x86_64-w64-mingw32-objdump -d "$dir/kernels_avx2.o" \
         | grep -cE 'vmova(p[sd]|dqa)[[:space:]].*%ymm.*\(%r[sb]p\)|vmova(p[sd]|dqa)[[:space:]]+[^,]*\(%r[sb]p\),%ymm' || true)
if [ "$spills" -gt 0 ]; then echo "Windows GNU: $spills aligned ymm stack moves in kernels_avx2.o (GCC bug 54412)"; exit 1; fi
echo "Windows x86_64 GNU (mingw-w64 gcc): OK, C sources with -Werror linked into a DLL, no unresolved symbols, no aligned ymm stack spill; $(avx2_state "$dir/softmax.dll")"

# --- Windows x86_64, MSVC ABI, MSVC's code paths (see the header comment)
dir=$OUT/windows-msvc && mkdir -p "$dir/crt"
# declared as the UCRT's headers do for the DLL CRT (/MD) that Python extensions use
cat >"$dir/crt/stdlib.h" <<'EOF'
#pragma once
#include <stddef.h>
#define _ACRTIMP __declspec(dllimport)
_ACRTIMP char *getenv(const char *); _ACRTIMP void *malloc(size_t); _ACRTIMP void free(void *);
_ACRTIMP void abort(void);
EOF
cat >"$dir/crt/string.h" <<'EOF'
#pragma once
#include <stddef.h>
#define _ACRTIMP __declspec(dllimport)
_ACRTIMP int strcmp(const char *, const char *);
void *memcpy(void *, const void *, size_t); void *memset(void *, int, size_t);  /* compiler intrinsics */
EOF
cat >"$dir/crt/math.h" <<'EOF'
#pragma once
#define _ACRTIMP __declspec(dllimport)
_ACRTIMP float expf(float); _ACRTIMP double exp(double); _ACRTIMP float logf(float);
_ACRTIMP double log(double); _ACRTIMP float log1pf(float); _ACRTIMP double log1p(double);
_ACRTIMP float fabsf(float); _ACRTIMP double fabs(double);
_ACRTIMP float expm1f(float); _ACRTIMP double expm1(double);
#define INFINITY ((float)(1e300 * 1e300))
#define isinf(x) (fabs((double)(x)) == (double)INFINITY)  /* UCRT: a macro */
#define NAN (-(float)(INFINITY * 0.0F))
EOF
printf '#pragma once\n#include <stddef.h>\nvoid *_aligned_malloc(size_t, size_t); void _aligned_free(void *);\n' >"$dir/crt/malloc.h"
printf '#pragma once\ntypedef __declspec(align(16)) struct { unsigned __int64 Part[2]; } _JBTYPE;\ntypedef _JBTYPE jmp_buf[16];\n' >"$dir/crt/setjmp.h"
printf 'int _fltused = 0x9875;  /* what the MSVC CRT defines when floating point is used */\n/* Stand-ins for the MSVC runtime (vcruntime), which is not here: it probes stack frames over a page (kernels_avx2.c inner_block_f32);\n   this DLL is only linked to find unresolved symbols, never run. */\nvoid __chkstk(void) {}\n/* Likewise its /GS buffer checks, for functions with local arrays (dispatch.c). */\nunsigned __int64 __security_cookie;\nvoid __security_check_cookie(unsigned __int64 cookie) { (void)cookie; }\n' >"$dir/fltused.c"
CL=(clang --driver-mode=cl --target=x86_64-pc-windows-msvc -fms-compatibility-version=19.40
    -U__clang__ -Wno-builtin-macro-redefined /O2 /W3 /WX -imsvc "$dir/crt" "/I$SRC")
objs=()
for src in "${SOURCES[@]}"; do
    arch=(); [ "$src" = kernels_avx2.c ] && arch=(/arch:AVX2)  # setup.py: this file alone
    "${CL[@]}" "${arch[@]}" /c "/Fo$dir/${src%.c}.obj" -- "$SRC/$src"
    objs+=("$dir/${src%.c}.obj")
done
"${CL[@]}" /c "/Fo$dir/fltused.obj" -- "$dir/fltused.c"
exports=(); for name in $API; do exports+=("/export:$name"); done
lld-link /nologo /dll /noentry /nodefaultlib /machine:x64 "/out:$dir/softmax.dll" "${exports[@]}" \
    "${objs[@]}" "$dir/fltused.obj" /libpath:/usr/x86_64-w64-mingw32/lib libucrt.a
[ "$(llvm-objdump -d "$dir/dispatch.obj" | grep -c cpuid)" -gt 0 ]  # the MSVC branch's detection is in
echo "Windows x86_64 MSVC ABI (clang-cl emulating MSVC): OK, MSVC code paths with /W3 /WX, kernels_avx2.c with /arch:AVX2, linked into a DLL with lld-link; $(avx2_state "$dir/softmax.dll")"
echo "cross-check: all targets compiled"
