"""cffi builder (API, out-of-line) for ``softmax_lib._native``.

setup.py names it (``cffi_modules=["native/build_ffi.py:ffibuilder"]``) so that
``pip install`` compiles the C library; setup.py's ``build_ext`` then swaps in
:func:`compile_args` for the compiler it actually found (GCC/Clang or MSVC).
``python native/build_ffi.py OUTDIR`` builds a variant into
``OUTDIR/softmax_lib/`` (``make sanitize``). The cdef is read from softmax.h,
the single declaration of the API. Environment overrides:

- ``SOFTMAX_LIB_NO_SIMD=1`` compiles no SIMD code at all (no AVX2 on x86-64,
  no NEON on AArch64): the scalar kernels only.
- ``SOFTMAX_LIB_CFLAGS`` / ``SOFTMAX_LIB_LDFLAGS``: extra compiler / linker flags,
  e.g. ``-fsanitize=address,undefined`` for ``make sanitize``.
- ``SOFTMAX_LIB_WERROR=1`` (CI only): compiler warnings are errors. Never the
  default: a new compiler's new warning must not break a user's install.
"""

import os
import re
import shlex
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
SOURCES = [
    "dispatch.c",
    "kernels_scalar.c",
    "kernels_avx2.c",
    "kernels_neon.c",
    "kernels_masked.c",
]
# The file of AVX2 kernels: MSVC has no per-function target attribute, so
# setup.py compiles it alone with /arch:AVX2 (dispatch still decides at run time).
# kernels_masked.c mixes scalar and AVX2 code, so it gets no /arch (which would
# let MSVC put AVX2 into its scalar code); MSVC compiles the intrinsics anyway.
AVX2_SOURCE = "kernels_avx2.c"
# No fast-math flags: with gcc they set flush-to-zero for the whole process
# (tests/test_native.py checks that subnormals survive importing the library).
# -fvisibility=hidden: only what softmax.h declares (its visibility pragma) is
# exported; PE/COFF (Windows) exports only what is marked, i.e. PyInit__native.
GCC_FLAGS = ["-O2", "-Wall", "-Wextra"]
GCC_HIDDEN = ["-fvisibility=hidden"]
MSVC_FLAGS = ["/O2", "/W3"]


def _flag(name):
    return os.environ.get(name, "") not in ("", "0")


def compile_args(compiler_type="unix", platform=sys.platform):
    """Compiler flags for a distutils `compiler_type` ("unix", "mingw32", "msvc").

    Parameters
    ----------
    compiler_type : str
        ``build_ext.compiler.compiler_type`` of the compiler in use.
    platform : str
        ``sys.platform`` of the target; Windows has no ELF/Mach-O visibility.

    Returns
    -------
    list of str
    """
    if compiler_type == "msvc":
        flags = MSVC_FLAGS + (["/WX"] if _flag("SOFTMAX_LIB_WERROR") else [])
        no_simd = "/DSOFTMAX_NO_SIMD"
    else:
        windows = platform in ("win32", "cygwin") or compiler_type in ("mingw32", "cygwin")
        flags = GCC_FLAGS + ([] if windows else GCC_HIDDEN)
        flags += ["-Werror"] if _flag("SOFTMAX_LIB_WERROR") else []
        no_simd = "-DSOFTMAX_NO_SIMD"
    if _flag("SOFTMAX_LIB_NO_SIMD"):
        flags.append(no_simd)
    return flags + shlex.split(os.environ.get("SOFTMAX_LIB_CFLAGS", ""))


def read_cdef(header=HERE / "softmax.h"):
    """The declarations between the cffi markers of `header`, without # lines."""
    text = header.read_text()
    body = re.search(r"/\* cffi-cdef-begin \*/(.*)/\* cffi-cdef-end \*/", text, re.S).group(1)
    return "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("#"))


def _source(name):
    # setuptools wants paths relative to the project root, where pip runs us;
    # as a script, cffi compiles from inside OUTDIR, so absolute paths then.
    return str(HERE / name) if __name__ == "__main__" else os.path.relpath(HERE / name)


ffibuilder = FFI()
ffibuilder.cdef(read_cdef())
ffibuilder.set_source(
    "softmax_lib._native",
    '#include "softmax.h"',
    sources=[_source(name) for name in SOURCES],
    include_dirs=[str(HERE)],
    extra_compile_args=compile_args("msvc" if sys.platform == "win32" else "unix"),
    extra_link_args=shlex.split(os.environ.get("SOFTMAX_LIB_LDFLAGS", "")),
    # MSVC's CRT has the maths (no m.lib); dispatch.c's row threads are POSIX threads.
    libraries=[] if sys.platform == "win32" else ["m", "pthread"],
)

if __name__ == "__main__":  # python native/build_ffi.py OUTDIR -> OUTDIR/softmax_lib/_native*.so
    import shutil

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "build/native").resolve()
    # Compiled in a folder of its own: setuptools would read a pyproject.toml where
    # it runs (OUTDIR may be a copy of the project), with whatever version is here.
    module = Path(ffibuilder.compile(tmpdir=str(out / "build-ffi"), verbose=True))
    (out / "softmax_lib").mkdir(parents=True, exist_ok=True)
    shutil.copy2(module, out / "softmax_lib" / module.name)
