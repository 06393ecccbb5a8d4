"""float32 softmax along any axis without a transposing copy (issue 10, item 4,
in part): the AVX2 kernel that walks down a non-last axis 8 columns at a time,
for C-contiguous float32 input. Its results are C-contiguous.

Bounds, per element, in u = 2^-24 (tests/test_long_rows.py counts them): x - m
rounds once (u |x - m|, turned relative by exp), exp within 2 GOAL u, the sum
relative (its terms' errors, at most max |x - m| u + 2 GOAL u, and 9 roundings:
float blocks of 8 rows flushed to double), 1/sum and the product (u each),
1u for second order terms. log-softmax: absolute, the same terms plus the
roundings of lse and of the subtraction."""

import numpy as np
import pytest

from softmax_lib import exp_accuracy, symbolic, vectorized

native = pytest.importorskip("softmax_lib.native", reason="the C library was not built")
pytestmark = pytest.mark.skipif(
    "avx2" not in native.available_isas(), reason="the kernel along an inner axis is AVX2 only"
)

U = 2.0**-24
EXP = 2 * exp_accuracy.GOALS[np.dtype(np.float32)]
SHAPES = [(5,), (3, 17), (2, 9, 4), (33, 9, 11), (3000, 5), (4, 1, 3)]


def check(x, axis):
    d = x.astype(np.float64) - np.max(x, axis=axis, keepdims=True)
    spread = np.max(np.abs(d), axis=axis, keepdims=True)
    s = vectorized.softmax(x.astype(np.float64), axis=axis)
    got = native.softmax(x, axis=axis, isa="avx2")
    assert got.dtype == np.float32 and got.flags.c_contiguous
    bound = (np.abs(d) + spread + 2 * EXP + 9 + 3) * U * s
    assert np.all(np.abs(got - s) <= bound)
    log_s = vectorized.log_softmax(x.astype(np.float64), axis=axis)
    got = native.log_softmax(x, axis=axis, isa="avx2")
    assert got.flags.c_contiguous
    lse = -np.max(log_s, axis=axis, keepdims=True)
    bound = (np.abs(d) + spread + 2 * EXP + 9 + lse + np.abs(log_s) + 1) * U
    assert np.all(np.abs(got - log_s) <= bound)


@pytest.mark.parametrize("shape", SHAPES)
def test_every_axis(shape):
    x = np.random.default_rng(17).normal(scale=3.0, size=shape).astype(np.float32)
    for axis in range(-len(shape), len(shape)):
        check(x, axis)


def test_top_class_and_ties_down_a_column():
    x = np.zeros((4, 10), np.float32)
    x[0, :] = 20.0  # column j: [20, 0, 0, 0]: top class -6.18e-9
    x[1, 5:] = 20.0  # columns 5-9: two maxima
    got = native.log_softmax(x, axis=0, isa="avx2")
    want = symbolic.oracle_log_softmax(x[:, 0])[0]
    assert abs(got[0, 0] - want) <= 20 * np.spacing(np.float32(abs(want)))  # test_top_class.py
    assert (got[0, 5:] == got[1, 5:]).all() and (got[0, 5:] < -0.69).all()


def test_special_values_down_columns():
    x = np.array(
        [
            [0.0, -np.inf, np.nan, np.inf, 1e30, 1.0, 2.0, 3.0, 4.0],
            [1.0, -np.inf, 1.0, 0.0, -1e30, 1.0, 2.0, 3.0, 4.0],
        ],
        np.float32,
    )
    with np.errstate(invalid="ignore"):
        want, want_log = vectorized.softmax(x, axis=0), vectorized.log_softmax(x, axis=0)
    for got, ref in (
        (native.softmax(x, axis=0, isa="avx2"), want),
        (native.log_softmax(x, axis=0, isa="avx2"), want_log),
    ):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
        finite = np.isfinite(ref)
        np.testing.assert_allclose(got[finite], ref[finite], rtol=16 * U, atol=16 * U)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_out_in_place_and_in_other_layouts(name):
    x = np.random.default_rng(18).normal(size=(6, 13, 10)).astype(np.float32)
    f = getattr(native, name)
    want = f(x, axis=1, isa="avx2")
    inplace = x.copy()
    assert f(inplace, axis=1, out=inplace, isa="avx2") is inplace
    np.testing.assert_array_equal(inplace, want)
    for out in (
        np.empty_like(x),
        np.empty((6, 13, 20), np.float32)[..., ::2],
        np.empty_like(x, order="F"),
    ):
        assert f(x, axis=1, out=out, isa="avx2") is out
        np.testing.assert_array_equal(out, want)
    buf = np.zeros(x.size + 1, np.float32)  # out overlapping x by one element
    xs, outs = buf[:-1].reshape(x.shape), buf[1:].reshape(x.shape)
    xs[...] = x
    f(xs, axis=1, out=outs, isa="avx2")
    np.testing.assert_array_equal(outs, want)
