"""The exp inside the native kernels: ulp accuracy and special values, on each ISA.

A smaller sample than ``python -m softmax_lib.exp_accuracy`` (10**7 points), with
the same goals: float32 <= 1.5 ulp, float64 <= 2 ulp.
"""
import numpy as np
import pytest

native = pytest.importorskip("softmax_lib.native", reason="the C library was not built")
from softmax_lib import exp_accuracy  # noqa: E402

ISAS = [pytest.param(isa, id=isa, marks=[] if isa in native.available_isas() else
                     [pytest.mark.skip(reason=f"{isa} is not available in this build/CPU")])
        for isa in ("scalar", "avx2", "neon")]
DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_max_ulp_error(isa, dtype):
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
    # exp(log(k * smallest subnormal)) must give k subnormal ulps, +-1 (rounding)
    tiny = np.finfo(dtype).smallest_subnormal
    k = np.array([1, 2, 3, 100, 12345], dtype=np.float64)
    x = np.log(k * float(tiny)).astype(dtype)
    got = native._exp(x, isa=isa) / tiny
    assert np.all(got > 0) and np.all(np.abs(got - k) <= 1 + 1e-6 * k)


def test_ulp_errors_measures_ulps():
    # the yardstick itself: one float32 step above exp(1) is 1 ulp (+- reference rounding)
    x = np.array([1.0, 1.0], np.float32)
    exact = np.float32(np.exp(1.0))
    got = np.array([exact, np.nextafter(exact, np.float32(np.inf))])
    err = exp_accuracy.ulp_errors(got, x)
    assert err[0] <= 0.5 and 0.5 <= err[1] <= 1.5
