"""The top class of log-softmax and of its VJP, to a few ulp (issue 10, item 2).

lse = m + log1p(rest), rest = the sum of exp(x_j - m) over all entries but one
maximum; log(sum) used to round the top class to 0 (``[20, 0, 0, 0]`` in
float32, ``[40, 0]`` in float64). Every implementation, against the 50-digit
oracle of :mod:`softmax_lib.symbolic`.

Error bounds, in ulps of the result (1 ulp is between u and 2u of it, u the
unit roundoff, so a relative error of k u is at most k ulp):

- the top class is ``0 - lse``, lse = log1p(rest) rounded once. rest has the
  error of exp (the native kernels: exp_accuracy.GOALS, at most 2 ulp; glibc's
  exp/expf below 1 ulp; NumPy's own float32 SIMD exp is documented below 4 ulp),
  so at most 8u, plus at most one rounding per term of its sum (these rows have
  at most 9 other terms, 9u); log1p(r) = r (1 - r/2 ...) adds its own rounding
  (u) and the final rounding (u). Total below 20u: asserted as 20 ulp, far
  below the 100 % error of the old code.
- the VJP's top entry with dy = -onehot (NLL's gradient, s - 1 = -rest/(1+rest)):
  (dy - T) = 0 exactly, then expm1(y) T with y itself within 20 ulp (above),
  expm1 within 2 ulp, one product: 24 ulp.
"""

import numpy as np
import pytest

from softmax_lib import symbolic

TOP_ULPS = 20
VJP_ULPS = 24

CASES = [  # (logits, dtype): the exact top class is -log1p(rest), tiny
    ([20.0, 0.0, 0.0, 0.0], np.float32),  # -6.18e-9: log(sum) gave 0.0
    ([15.0] + [0.0] * 9, np.float32),  # -2.75e-6: log(sum) was 3.9% off
    ([17.0, 1.0, -3.0, 2.5, 0.0, 0.25, -1.0, 3.0, 1.5], np.float32),
    ([40.0, 0.0], np.float64),  # -4.25e-18: log(sum) gave 0.0
    ([38.0, 1.0, -2.0, 0.5], np.float64),
    ([60.0] + [25.0] * 9, np.float64),
]


def ulps(got, want, dtype):
    """|got - want| in ulps of `want` in `dtype`."""
    return abs(float(got) - want) / float(np.spacing(abs(dtype(want))))


@pytest.mark.parametrize("logits, dtype", CASES, ids=lambda v: str(v)[:14])
def test_log_softmax_top_class(impl, logits, dtype):
    x = np.array(logits, dtype=dtype)
    want = symbolic.oracle_log_softmax(x)
    got = impl.log_softmax(x)
    assert got.dtype == dtype
    top = int(np.argmax(x))
    assert got[top] < 0  # not rounded to 0
    assert ulps(got[top], want[top], dtype) <= TOP_ULPS


@pytest.mark.parametrize("logits, dtype", CASES, ids=lambda v: str(v)[:14])
def test_log_softmax_top_class_along_any_axis(impl, logits, dtype):
    # The same rows in a batch, along axis 0, and beside a tie: the axis
    # handling and the SIMD lanes must not change the rule.
    x = np.array(logits, dtype=dtype)
    batch = np.stack([x, x[::-1], np.roll(x, 3)]).T  # axis 0 holds the rows
    got = impl.log_softmax(batch, axis=0)
    for col in range(3):
        row = batch[:, col]
        want = symbolic.oracle_log_softmax(row)
        top = int(np.argmax(row))
        assert ulps(got[top, col], want[top], dtype) <= TOP_ULPS


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [2, 3, 9, 17, 40])
def test_ties_with_the_maximum_count_one_each(impl, n, dtype):
    # Two maxima: lse = m + log1p(1 + rest). Both get -log(2 + small), the same.
    x = np.zeros(n, dtype)
    x[[0, n - 1]] = 30.0 if dtype == np.float64 else 12.0
    want = symbolic.oracle_log_softmax(x)
    got = impl.log_softmax(x)
    assert got[0] == got[-1]
    # log(2 + r) is not small: one rounding of lse and of the subtraction,
    # and rest's error scaled by r / (2 + r) < 1: a few ulp
    assert ulps(got[0], want[0], dtype) <= TOP_ULPS


@pytest.mark.parametrize("logits, dtype", CASES, ids=lambda v: str(v)[:14])
def test_log_softmax_vjp_top_class(impl, logits, dtype):
    # NLL's gradient on logits: log_softmax_vjp(y, -onehot) = s - onehot; at the
    # top class s - 1, which exp(y) = 1 used to round to 0.
    x = np.array(logits, dtype=dtype)
    top = int(np.argmax(x))
    dy = np.zeros_like(x)
    dy[top] = -1
    y = impl.log_softmax(x)
    got = impl.log_softmax_vjp(y, dy)
    want = symbolic.oracle_log_softmax_vjp(x, dy)
    assert got[top] < 0
    assert ulps(got[top], want[top], dtype) <= VJP_ULPS
    # the others are exp(y) times 1, as before: y within a few ulp absolute
    # (|y| ulps), so exp(y) within |y| + 2 ulp; asserted generously as 4|y| + 8
    others = np.arange(x.size) != top
    for i in np.flatnonzero(others):
        assert ulps(got[i], want[i], dtype) <= 4 * abs(float(y[i])) + 8


def test_vjp_with_y_not_from_a_log_softmax(impl):
    # y > -ln 2 in several entries (not a log-softmax row): each entry still gets
    # dy - exp(y) sum(dy), by whichever formula; compared in float64 with numpy.
    y = np.array([-0.1, -0.5, -0.7, 0.0, -3.0, 0.2])
    dy = np.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.25])
    want = dy - np.exp(y) * dy.sum()
    got = impl.log_softmax_vjp(y, dy)
    # |error| <= a few u of the terms' size (|dy| + exp(y) |sum(dy)| <= 10 here)
    np.testing.assert_allclose(got, want, rtol=0, atol=10 * 8 * np.finfo(float).eps)
