"""The exp inside the native kernels: ulp accuracy and special values, on each ISA.

A smaller sample than ``python -m softmax_lib.exp_accuracy`` (10**7 points), with
the same goals: float32 <= 1.5 ulp, float64 <= 2 ulp.
"""

import numpy as np
import pytest

native = pytest.importorskip("softmax_lib.native", reason="the C library was not built")
from softmax_lib import exp_accuracy  # noqa: E402

ISAS = [
    pytest.param(
        isa,
        id=isa,
        marks=[]
        if isa in native.available_isas()
        else [pytest.mark.skip(reason=f"{isa} is not available in this build/CPU")],
    )
    for isa in ("scalar", "avx2", "neon")
]
DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_max_ulp_error(isa, dtype):
    # The goals are the kernels' error budget: 0.5 ulp for the final rounding, the rest for
    # the reduction x - n ln2 (Cody-Waite, n ln2_hi exact), the polynomial's remainder
    # (float64: 0.04 ulp) and its evaluation (exp_avx2.h); libm's exp, the scalar kernels',
    # is < 1 ulp. The yardstick's own error, float64 (or 64-bit long double) for float32
    # (float64) results, is 2^-29 (2^-11) ulp.
    result = exp_accuracy.measure(dtype, isa, points=300_000, seed=1)
    assert result["max_ulp"] <= exp_accuracy.GOALS[np.dtype(dtype)], result


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_special_values(isa, dtype):
    for name, (got, expected) in exp_accuracy.special_values(dtype, isa).items():
        assert got == expected or (np.isnan(got) and np.isnan(expected)), name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_subnormal_results(isa, dtype):
    # exp(log(k * smallest subnormal)) must give k subnormal ulps: x rounded to `dtype` is
    # off by u|x|, which exp turns into k u |x| subnormal ulps; the result's rounding to a
    # subnormal ulp 0.5, the kernel's error before it (an ulp budget of a normal result,
    # here a fraction of a subnormal ulp) 0.5 at most: 1 + k u |x|.
    tiny = np.finfo(dtype).smallest_subnormal
    k = np.array([1, 2, 3, 100, 12345], dtype=np.float64)
    x = np.log(k * float(tiny)).astype(dtype)
    got = native._exp(x, isa=isa) / tiny
    u = np.finfo(dtype).eps / 2
    assert np.all(got > 0) and np.all(np.abs(got - k) <= 1 + k * u * np.abs(x.astype(np.float64)))


def test_ulp_errors_measures_ulps():
    # the yardstick itself: float32(exp(1)) is the same float64 reference rounded, so within
    # 0.5 ulp; one float32 step above it is 1 ulp away from that, so within 1 +- 0.5 ulp
    x = np.array([1.0, 1.0], np.float32)
    exact = np.float32(np.exp(1.0))
    got = np.array([exact, np.nextafter(exact, np.float32(np.inf))])
    err = exp_accuracy.ulp_errors(got, x)
    assert err[0] <= 0.5 and 0.5 <= err[1] <= 1.5
