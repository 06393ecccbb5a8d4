"""The package as installed: exported symbols, build flags, the no-compiler fallback.

The build itself (sdist, wheel from the sdist, installs in clean venvs) is
``make dist-check``; cross-compilation for macOS and Windows is ``make cross-check``.
"""

import ctypes
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import softmax_lib

ROOT = Path(__file__).resolve().parent.parent
NATIVE = ROOT / "native"
SPEC = importlib.util.find_spec("softmax_lib._native")
# CI and cibuildwheel set this: there a missing C library is a failure, not a skip.
REQUIRED = os.environ.get("SOFTMAX_LIB_REQUIRE_NATIVE", "") not in ("", "0")
needs_native = pytest.mark.skipif(
    SPEC is None and not REQUIRED, reason="the C library is not built"
)


def _load_builder():
    spec = importlib.util.spec_from_file_location("_build_ffi_under_test", NATIVE / "build_ffi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def public_api():
    """The function names native/softmax.h declares (its cffi cdef)."""
    declarations = re.sub(r"/\*.*?\*/", "", _load_builder().read_cdef(), flags=re.S)
    return set(re.findall(r"\b(sm_\w+)\s*\(", declarations))


def internal_kernels():
    """The per-row kernel names native/kernels.h declares, every ISA prefix expanded."""
    text = (NATIVE / "kernels.h").read_text()
    suffixes = re.findall(r"prefix##(\w+)\(", text)
    prefixes = re.findall(r"^SM_DECLARE_KERNELS\((\w+)\)", text, re.M)
    names = {p + s for p in prefixes for s in suffixes}
    names |= set(re.findall(r"^void (sm_\w+)\(", text, re.M))
    return names


@pytest.mark.skipif(not REQUIRED, reason="SOFTMAX_LIB_REQUIRE_NATIVE is not set")
def test_the_c_library_is_built_where_required():
    assert SPEC is not None, "SOFTMAX_LIB_REQUIRE_NATIVE is set but softmax_lib._native is missing"
    assert softmax_lib.BACKEND == "native"


def test_header_parsing_finds_the_api_and_the_kernels():
    # Guards the two tests below against passing on empty sets.
    assert {
        "sm_softmax_f32",
        "sm_log_softmax_vjp_f64_mt",
        "sm_exp_f64",
        "sm_best_isa",
    } <= public_api()
    assert {
        "sm_scalar_softmax_f32",
        "sm_avx2_log_softmax_vjp_f64",
        "sm_avx2_copy_f32",
    } <= internal_kernels()


@needs_native
def test_internal_kernels_are_not_exported():
    lib = ctypes.CDLL(SPEC.origin)
    leaked = sorted(name for name in internal_kernels() if hasattr(lib, name))
    assert not leaked, f"internal symbols exported by {SPEC.origin}: {leaked}"
    if sys.platform != "win32":  # a .pyd exports PyInit only, by design
        missing = sorted(name for name in public_api() if not hasattr(lib, name))
        assert not missing, f"public API not exported: {missing}"


@needs_native
@pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("nm") is None,
    reason="ELF symbol table via nm (Linux)",
)
def test_exported_symbols_are_exactly_the_public_api():
    out = subprocess.run(
        ["nm", "-D", "--defined-only", SPEC.origin], capture_output=True, text=True, check=True
    ).stdout
    # Instrumented builds (make sanitize) add the sanitizers' own __asan/__ubsan
    # and _init/_fini-like hooks; those are not ours.
    exported = {
        line.split()[-1]
        for line in out.splitlines()
        if line.split()[1] in "TtDdBbRrVvWwi" and not line.split()[-1].startswith("_")
    }
    assert exported == public_api() | {"PyInit__native"}


def test_default_flags_are_portable_and_never_warnings_as_errors(monkeypatch):
    for name in ("SOFTMAX_LIB_WERROR", "SOFTMAX_LIB_NO_SIMD", "SOFTMAX_LIB_CFLAGS"):
        monkeypatch.delenv(name, raising=False)
    builder = _load_builder()
    gcc, mingw, msvc = (
        builder.compile_args(c, p)
        for c, p in (("unix", "linux"), ("mingw32", "win32"), ("msvc", "win32"))
    )
    assert "-fvisibility=hidden" in gcc and "-fvisibility=hidden" not in mingw
    assert not any(f.startswith("-") for f in msvc), msvc  # no GCC flag reaches MSVC
    for flags in (gcc, mingw, msvc):
        assert not {"-Werror", "/WX"} & set(flags), flags
        assert not any("fast" in f.lower() for f in flags), flags  # -ffast-math, /fp:fast
    monkeypatch.setenv("SOFTMAX_LIB_WERROR", "1")
    assert "-Werror" in builder.compile_args("unix", "linux")
    assert "/WX" in builder.compile_args("msvc", "win32")


def test_version_is_the_installed_distributions():
    assert softmax_lib.__version__ == importlib.metadata.version("softmax_lib")


# Imports softmax_lib as if the C library had not been compiled.
_WITHOUT_NATIVE = """
import json, sys, warnings

class NoNative:
    def find_spec(self, name, path=None, target=None):
        if name == "softmax_lib._native":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoNative())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import softmax_lib
    import softmax_lib.layers  # more imports of the package: no second warning
    y = softmax_lib.softmax([1.0, 2.0])
print(json.dumps({"backend": softmax_lib.BACKEND, "y": y.tolist(),
                  "warnings": [(w.category.__name__, str(w.message)) for w in caught]}))
"""


def test_without_the_c_library_numpy_is_used_and_that_is_said_once():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_NATIVE],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    seen = json.loads(result.stdout)
    assert seen["backend"] == "vectorized"
    assert seen["y"] == pytest.approx([0.2689414213699951, 0.7310585786300049], rel=1e-15)
    assert len(seen["warnings"]) == 1, seen["warnings"]
    category, message = seen["warnings"][0]
    assert category == "NativeLibraryWarning"
    # names what is missing, what is used instead, and how to get the native backend
    for part in ("softmax_lib._native", "C compiler", "vectorized", "pip install", "--no-binary"):
        assert part in message, (part, message)
