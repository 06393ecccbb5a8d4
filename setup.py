"""The C library's build, the part pyproject.toml cannot say.

``cffi_modules`` makes setuptools compile ``native/`` into ``softmax_lib._native``
(the cffi builder is ``native/build_ffi.py``). :class:`BuildExt` adds three things:

- flags for the compiler actually found (GCC/Clang or MSVC, ``compile_args``);
- with MSVC, the C sources compiled one by one, ``kernels_avx2.c`` with ``/arch:AVX2``;
- when the library cannot be compiled (no C compiler, say), the install goes on
  without it: ``softmax_lib`` then uses NumPy and says so once at import. CI sets
  ``SOFTMAX_LIB_REQUIRE_NATIVE=1`` so that a broken build fails instead.
"""

import importlib.util
import os
import sys
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

HERE = Path(__file__).resolve().parent


def _load_builder():
    spec = importlib.util.spec_from_file_location(
        "_softmax_lib_build_ffi", HERE / "native" / "build_ffi.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildExt(build_ext):
    """build_ext with per-compiler flags and an optional C library."""

    def build_extension(self, ext):
        required = os.environ.get("SOFTMAX_LIB_REQUIRE_NATIVE", "") not in ("", "0")
        # optional: setuptools then skips the missing file where it copies the
        # extension afterwards (editable installs), instead of failing there.
        ext.optional = not required
        try:
            self._build_native(ext)
        except (CCompilerError, ExecError, PlatformError, OSError) as exc:
            if required:
                raise
            # pip shows this only with -v; the import-time warning is what users see.
            print(
                f"softmax_lib: the C library was not built ({type(exc).__name__}: {exc}); "
                "installing without it, softmax_lib will use NumPy",
                file=sys.stderr,
            )

    def _build_native(self, ext):
        builder = _load_builder()
        compiler_type = self.compiler.compiler_type
        flags = builder.compile_args(compiler_type)
        ext.extra_compile_args = flags
        if compiler_type == "msvc":
            # Our sources apart: kernels_avx2.c with /arch:AVX2, and /WX (CI) on our
            # code only, not on the module cffi generates (its warnings are not ours).
            for source in [s for s in ext.sources if Path(s).parent.name == "native"]:
                arch = ["/arch:AVX2"] if Path(source).name == builder.AVX2_SOURCE else []
                self._compile_apart(ext, source, flags + arch)
            ext.extra_compile_args = [f for f in flags if f != "/WX"]
        super().build_extension(ext)

    def _compile_apart(self, ext, source, flags):
        """Compile `source` of `ext` alone with `flags`; its object is linked in."""
        objects = self.compiler.compile(
            [source],
            output_dir=self.build_temp,
            macros=ext.define_macros,
            include_dirs=ext.include_dirs,
            debug=self.debug,
            extra_postargs=flags,
            depends=ext.depends,
        )
        ext.sources = [s for s in ext.sources if s != source]
        ext.extra_objects = list(ext.extra_objects or []) + objects


# The cffi module uses only the limited API (cffi defines Py_LIMITED_API), so one
# wheel, tagged cp310-abi3, serves CPython 3.10 and newer. Free-threaded builds have
# no abi3 before 3.15 (cffi then compiles without it), nor do debug builds or PyPy.
ABI3 = (
    sys.implementation.name == "cpython"
    and not sysconfig.get_config_var("Py_GIL_DISABLED")
    and not hasattr(sys, "gettotalrefcount")
)

setup(
    cffi_modules=["native/build_ffi.py:ffibuilder"],
    cmdclass={"build_ext": BuildExt},
    options={"bdist_wheel": {"py_limited_api": "cp310"}} if ABI3 else {},
)
