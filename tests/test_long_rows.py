"""Accuracy that does not depend on the row length (issue 10, item 1), on every ISA.

One float32 row of 2^23 logits N(0, 3^2), where a float lane that kept the whole
sum used to lose 4e-4. The reference is the same float32 inputs computed in
float64 by :mod:`softmax_lib.vectorized` (its own error, a few 2^-53 per element,
is negligible next to the float32 bounds below).

Every bound is built from u = 2^-24, the unit roundoff of float32, by counting
roundings (the count is in native/kernels_avx2.c, flush_ps):

- x - m is rounded once: |fl(x - m) - (x - m)| <= u |x - m|, and exp turns that
  absolute error into a relative one, u |x - m|;
- the kernels' exp is within GOAL ulp (exp_accuracy.GOALS), and 1 ulp <= 2u
  relative, so 2 GOAL u;
- a float32 sum of terms of one sign: at most 9 float roundings per term (AVX2,
  blocks flushed to double; the scalar kernels sum in double), so 9u relative,
  plus the double part, about 2^-53 n / 256 relative, 4e-12 here: negligible; a
  dot product by FMA rounds its first product too: 10u;
- each conversion to float32 and each multiplication or subtraction: u.

None of these grows with n: that is the point of item 1. Along an inner axis the
AVX2 log-softmax keeps a running maximum and rescales its double sum each time
the maximum grows (kernels_avx2.c): at most n / 8 rescales of about 2^-52 each,
2^-32 relative at 2^23, as negligible as the double part of the sums.
"""

import numpy as np
import pytest

from softmax_lib import exp_accuracy, vectorized

native = pytest.importorskip("softmax_lib.native", reason="the C library was not built")

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

U = 2.0**-24  # float32 unit roundoff
EXP = 2 * exp_accuracy.GOALS[np.dtype(np.float32)]  # exp's relative error, in u
N = 2**23


@pytest.fixture(scope="module")
def row():
    """The 2^23 logits, their max, and the exact (float64) shifted values."""
    x = (np.random.default_rng(23).standard_normal(N) * 3).astype(np.float32)
    m = np.float64(x.max())
    return x, m, x.astype(np.float64) - m


def _exact(x, d):
    """The float64 softmax of float32 logits `x` (d = x - max), and the weighted
    mean of |d|."""
    s = vectorized.softmax(x.astype(np.float64))
    # The sum's relative error from its terms' own errors is the weighted mean
    # of those errors, sum(e_j |x_j - m|) / sum(e_j) u + EXP u: computed from the
    # inputs, not measured from any kernel.
    return s, float(np.sum(s * np.abs(d)))


def _softmax_bound(d, weighted):
    """Relative: own subtraction and exp, the sum (its terms' errors and 9
    roundings), 1/sum to float (u, plus 2^-53), the product (u); 1u for second
    order terms."""
    return (np.abs(d) + EXP + (weighted + EXP + 9) + 1 + 1 + 1) * U


def _log_softmax_bound(d, weighted, want):
    """Absolute: x - m (u |x - m|), lse = log of a sum with relative error
    (weighted + EXP + 9) u, then rounded (u |lse|), the subtraction (u |result|);
    1u for the double log and second order terms."""
    lse = float(-np.max(want))
    return (np.abs(d) + (weighted + EXP + 9) + lse + np.abs(want) + 1) * U


@pytest.fixture(scope="module")
def exact(row):
    x, _, d = row
    return _exact(x, d)


@pytest.mark.parametrize("isa", ISAS)
def test_softmax_of_a_long_float32_row(isa, row, exact):
    x, m, d = row
    s, weighted = exact
    y = native.softmax(x, isa=isa)
    rel = np.abs(y - s) / s
    bound = _softmax_bound(d, weighted)
    assert bound.max() <= 4e-6  # the goal is within the bound for these inputs
    worst = np.argmax(rel - bound)
    assert np.all(rel <= bound), (
        f"rel error {rel[worst]:.3g} > {bound[worst]:.3g} at x-m={d[worst]}"
    )
    # The terms' own errors cancel out of the normalisation: sum error 9u, 1/sum u,
    # the products at most u on average; 1u for the float64 sum here and 2nd order.
    total = float(np.sum(y, dtype=np.float64))
    assert abs(total - 1) <= 12 * U  # = 7.2e-7, within the 1e-6


@pytest.mark.parametrize("isa", ISAS)
def test_log_softmax_of_a_long_float32_row(isa, row, exact):
    x, m, d = row
    s, weighted = exact
    got = native.log_softmax(x, isa=isa)
    want = np.log(s)
    bound = _log_softmax_bound(d, weighted, want)
    err = np.abs(got - want)
    worst = np.argmax(err - bound)
    assert np.all(err <= bound), f"error {err[worst]:.3g} > {bound[worst]:.3g}"


@pytest.mark.parametrize("isa", ISAS)
def test_softmax_vjp_of_a_long_float32_row(isa, row):
    # dy > 0, so that <y, dy> has terms of one sign and its error is relative.
    x, _, _ = row
    y = native.softmax(x, isa="scalar")  # any valid y; the VJP's inputs are exact
    dy = np.random.default_rng(1).uniform(0.5, 1.5, N).astype(np.float32)
    y64, dy64 = y.astype(np.float64), dy.astype(np.float64)
    dot = float(np.dot(y64, dy64))
    want = y64 * (dy64 - dot)
    got = native.softmax_vjp(y, dy, isa=isa)
    # the dot: 10u, to float32: u; dy - dot: u |dy - dot|; times y: u |result|;
    # 1u for second order terms
    bound = y64 * (12 * dot + 2 * np.abs(dy64 - dot)) * U
    err = np.abs(got - want)
    worst = np.argmax(err - bound)
    assert np.all(err <= bound), f"error {err[worst]:.3g} > {bound[worst]:.3g}"


@pytest.mark.parametrize("isa", ISAS)
def test_log_softmax_vjp_of_a_long_float32_row(isa, row):
    x, _, _ = row
    y = native.log_softmax(x, isa="scalar")
    dy = np.random.default_rng(2).uniform(0.5, 1.5, N).astype(np.float32)
    y64, dy64 = y.astype(np.float64), dy.astype(np.float64)
    total = float(np.sum(dy64))
    s = np.exp(y64)
    want = dy64 - s * total
    got = native.log_softmax_vjp(y, dy, isa=isa)
    # sum(dy): 9u, to float32: u; exp(y): EXP u; the fused dy - s T: u |result|;
    # 1u for second order terms
    bound = (s * total * (9 + 1 + EXP + 1) + np.abs(want)) * U
    err = np.abs(got - want)
    worst = np.argmax(err - bound)
    assert np.all(err <= bound), f"error {err[worst]:.3g} > {bound[worst]:.3g}"


@pytest.fixture(scope="module")
def columns():
    """2^20 rows of 9 columns, along axis 0: N(0, 3^2) logits, and columns whose
    maximum grows at every row (ascending) or only at the first (descending); the
    9th column is the masked lane of the AVX2 kernels' last vector."""
    rng = np.random.default_rng(20)
    n = 2**20
    x = (rng.standard_normal((n, 9)) * 3).astype(np.float32)
    x[:, 1] = np.sort(x[:, 1])
    x[:, 2] = np.sort(x[:, 2])[::-1]
    x[:, 8] = np.sort(x[:, 8])
    return x


@pytest.fixture(scope="module")
def column_exact(columns):
    """Per column: d = x - max, the float64 softmax and the weighted mean of |d|."""
    refs = []
    for x in columns.T:
        d = x.astype(np.float64) - float(x.max())
        refs.append((d, *_exact(x, d)))
    return refs


@pytest.mark.parametrize("isa", ISAS)
def test_log_softmax_of_long_float32_columns(isa, columns, column_exact):
    got = native.log_softmax(columns, axis=0, isa=isa)
    for j, (d, s, weighted) in enumerate(column_exact):
        want = np.log(s)
        # as for the long row; the rescales of the running sum add < 2^-32
        bound = _log_softmax_bound(d, weighted, want)
        err = np.abs(got[:, j] - want)
        worst = np.argmax(err - bound)
        assert np.all(err <= bound), f"column {j}: error {err[worst]:.3g} > {bound[worst]:.3g}"


@pytest.mark.parametrize("isa", ISAS)
def test_softmax_of_long_float32_columns(isa, columns, column_exact):
    got = native.softmax(columns, axis=0, isa=isa)
    for j, (d, s, weighted) in enumerate(column_exact):
        rel = np.abs(got[:, j] - s) / s
        bound = _softmax_bound(d, weighted)
        worst = np.argmax(rel - bound)
        assert np.all(rel <= bound), f"column {j}: rel error {rel[worst]:.3g} > {bound[worst]:.3g}"
