"""One ``impl`` fixture: every implementation of the contract, by name.

Tests that take ``impl`` run once per implementation: loops, vectorized NumPy,
and the native C library on each instruction set this machine can run.
"""

import functools
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from softmax_lib import loops, vectorized

FUNCTIONS = (
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_vjp",
    "log_softmax_vjp",
    "softmax_jacobian",
)


def _bind(module, name, **kwargs):
    """A namespace with the contract's functions of `module`, `kwargs` bound."""
    funcs = {f: functools.partial(getattr(module, f), **kwargs) for f in FUNCTIONS}
    return types.SimpleNamespace(name=name, **funcs)


def _impls():
    params = [
        pytest.param(_bind(loops, "loops"), id="loops"),
        pytest.param(_bind(vectorized, "vectorized"), id="vectorized"),
    ]
    try:
        from softmax_lib import native
    except ImportError as exc:
        reason = f"native library not built: {exc}"
        return params + [
            pytest.param(None, id=f"native-{isa}", marks=pytest.mark.skip(reason=reason))
            for isa in ("scalar", "avx2", "neon")
        ]
    for isa in ("scalar", "avx2", "neon"):
        marks = []
        if isa not in native.available_isas():
            marks = [pytest.mark.skip(reason=f"{isa} is not available in this build/CPU")]
        params.append(
            pytest.param(_bind(native, f"native-{isa}", isa=isa), id=f"native-{isa}", marks=marks)
        )
    return params


IMPLS = _impls()


@pytest.fixture(params=IMPLS)
def impl(request):
    return request.param


def unit_roundoff(dtype):
    """u = eps / 2: one rounding to nearest changes a normal value by at most u relative."""
    return np.finfo(dtype).eps / 2


def tolerance(dtype, n):
    r"""delta(n): the error bound of softmax and log-softmax of rows of `n` logits in `dtype`.

    With u the unit roundoff, m the row's max, d_j = x_j - m, S = sum_j e^{d_j} >= 1,
    and s = softmax(x); the errors of each step, relative unless said:

    - d_j = fl(x_j - m): u |d_j|, which exp amplifies into u |d_j| relative in e^{d_j}
      (exp's condition number is |d|);
    - exp and log: <= 4 ulp = 8u (NumPy's SIMD float32 exp / log: 2.52 / 3.83 ulp; libm
      < 1 ulp; this library's AVX2 exp <= 1.5 / 2 ulp, test_exp_accuracy.py);
    - S: (n - 1) u for any order of summing n terms >= 0, plus the s-weighted mean of the
      terms' errors, u sum_j s_j |d_j| + 8u <= u (ln n + 8), since
      sum_j s_j |d_j| = H(s) - ln S <= ln n;
    - the scaling (a division, or a reciprocal and a product): 2u; the float64 rounding
      of the 50-digit oracle: u.

    Softmax: |s^_i - s_i| <= s_i u (|d_i| + n + ln n + 19) <= delta s_i + u/e, because
    s_i |d_i| <= |d_i| e^{-|d_i|} <= 1/e. Log-softmax, y = d - ln S:
    |y^_i - y_i| <= u |d_i| + u (n + ln n + 7) + 8u ln n (log) + u |y_i| (subtraction)
    <= 2u |y_i| + delta. So ``rtol = atol = delta`` holds for both, with

        delta = u (n + 9 ln n + 20),

    whatever the logits' scale. float64 n = 9: 6.8e-15; float32 n = 70: 7.7e-6. Tests
    derive the bounds of the VJPs and the Jacobian from it where they use it.
    A real mistake (J's diagonal alone, a lost term) is off by ~1e-2 or more.
    """
    n = max(int(n), 1)
    return unit_roundoff(dtype) * (n + 9 * np.log(n) + 20)


def machine_summary():
    """One line: NumPy's SIMD groups in effect and the C library's ISAs."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    groups = [g for g in __cpu_dispatch__ if __cpu_features__.get(g)] or ["baseline only"]
    try:
        from softmax_lib import native

        isas = ", ".join(native.available_isas())
    except ImportError:
        isas = "not built"
    return f"numpy {np.__version__} dispatch: {' '.join(groups)}; softmax_lib native ISAs: {isas}"


def pytest_report_header(config):
    return machine_summary()


def fresh_native_import(expression, variable, value):
    """Print `expression` of ``softmax_lib.native`` (as ``n``) in a fresh interpreter
    whose environment has `variable` set to `value` (unset when None), all warnings
    shown: the import-time reading of the environment. Returns (stdout, stderr)."""
    code = (
        "import warnings\nwarnings.simplefilter('always')\n"
        f"import softmax_lib.native as n\nprint({expression})\n"
    )
    env = {k: v for k, v in os.environ.items() if k != variable}
    if value is not None:
        env[variable] = value
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip(), done.stderr
