"""cffi builder (API, out-of-line) for ``softmax_lib._native``.

setup.py names it (``cffi_modules=["native/build_ffi.py:ffibuilder"]``) so that
``pip install`` compiles the C library in place; ``python native/build_ffi.py
OUTDIR`` builds a variant into ``OUTDIR/softmax_lib/`` (``make sanitize``).
The cdef is read from softmax.h, the single declaration of the API.
Environment overrides:

- ``SOFTMAX_LIB_NO_SIMD=1`` compiles no SIMD code at all (no AVX2 on x86-64,
  no NEON on AArch64): the scalar kernels only.
- ``SOFTMAX_LIB_CFLAGS`` / ``SOFTMAX_LIB_LDFLAGS``: extra compiler / linker flags,
  e.g. ``-fsanitize=address,undefined`` for ``make sanitize``.
"""
import os
import re
import shlex
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
SOURCES = ["dispatch.c", "kernels_scalar.c", "kernels_avx2.c", "kernels_neon.c"]
# No fast-math flags: with gcc they set flush-to-zero for the whole process
# (tests/test_native.py checks that subnormals survive importing the library).
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror"]


def read_cdef(header=HERE / "softmax.h"):
    """The declarations between the cffi markers of `header`, without # lines."""
    text = header.read_text()
    body = re.search(r"/\* cffi-cdef-begin \*/(.*)/\* cffi-cdef-end \*/", text, re.S).group(1)
    return "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("#"))


def _source(name):
    # setuptools wants paths relative to the project root, where pip runs us;
    # as a script, cffi compiles from inside OUTDIR, so absolute paths then.
    return str(HERE / name) if __name__ == "__main__" else os.path.relpath(HERE / name)


cflags = CFLAGS + shlex.split(os.environ.get("SOFTMAX_LIB_CFLAGS", ""))
if os.environ.get("SOFTMAX_LIB_NO_SIMD", "") not in ("", "0"):
    cflags.append("-DSOFTMAX_NO_SIMD")

ffibuilder = FFI()
ffibuilder.cdef(read_cdef())
ffibuilder.set_source(
    "softmax_lib._native",
    '#include "softmax.h"',
    sources=[_source(name) for name in SOURCES],
    include_dirs=[str(HERE)],
    extra_compile_args=cflags,
    extra_link_args=shlex.split(os.environ.get("SOFTMAX_LIB_LDFLAGS", "")),
    libraries=["m"] + (["pthread"] if os.name == "posix" else []),  # dispatch.c: row threads
)

if __name__ == "__main__":  # python native/build_ffi.py OUTDIR -> OUTDIR/softmax_lib/_native*.so
    import sys

    ffibuilder.compile(tmpdir=sys.argv[1] if len(sys.argv) > 1 else "build/native", verbose=True)
