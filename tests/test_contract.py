"""The contract, tested once and run against every implementation (the ``impl`` fixture).

Tolerances come from the rounding-error bound delta(n) = u (n + 9 ln n + 20) of
softmax and log-softmax over rows of n logits (``conftest.tolerance``, derived
there; u is the dtype's unit roundoff). It does not depend on the logits' scale:
6.8e-15 for float64 rows of 9, 7.7e-6 for float32 rows of 70, far below any real
mistake (those show at 1e-2 or more). The results built on the forward pass have
bounds in units of delta, derived where they are used: the Jacobian 4 delta, the
softmax VJP 5 delta max|g|, the log-softmax VJP 2 delta sum|g| (``ATOL`` below).
The reference is the 50-digit oracle of :mod:`softmax_lib.symbolic`, rounded to
float64, unless a test says otherwise.
"""

import numpy as np
import pytest
from conftest import tolerance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softmax_lib import loops, symbolic, vectorized

DTYPES = [np.float32, np.float64]
FORWARD = ["softmax", "log_softmax"]
BACKWARD = ["softmax_vjp", "log_softmax_vjp"]


def assert_close(got, want, dtype, n, scale=1.0, sources=1):
    """`got` has `dtype` and is within ``rtol = delta(n)``, ``atol = delta(n) * scale`` of
    `want`, times `sources` when `want` was computed with the same error bound."""
    assert got.dtype == dtype
    tol = sources * tolerance(dtype, n)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


def oracle_along(func, axis, x, *more):
    """Apply the 1-D oracle `func` to every slice of `x` (and of `more`) along `axis`."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    more = [np.moveaxis(np.asarray(m, dtype=np.float64), axis, -1) for m in more]
    out = np.empty(x.shape)
    for index in np.ndindex(x.shape[:-1]):
        out[index] = func(x[index], *(m[index] for m in more))
    return np.moveaxis(out, -1, axis)


def oracle_jacobians(x, axis):
    """The oracle's Jacobian of every slice along `axis`, stacked as ``(..., n, n)``."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    jac = np.empty(x.shape + x.shape[-1:])
    for index in np.ndindex(x.shape[:-1]):
        jac[index] = symbolic.oracle_jacobian(x[index])
    return jac


def results_along(impl, x, g, axis):
    """All five functions of `impl` at logits `x`, upstream gradient `g`, along `axis`."""
    y = impl.softmax(x, axis=axis)
    log_y = impl.log_softmax(x, axis=axis)
    return {
        "softmax": y,
        "log_softmax": log_y,
        "softmax_vjp": impl.softmax_vjp(y, g, axis=axis),
        "log_softmax_vjp": impl.log_softmax_vjp(log_y, g, axis=axis),
        "softmax_jacobian": impl.softmax_jacobian(y, axis=axis),
    }


def oracle_results_along(x, g, axis):
    """What :func:`results_along` should return, from the oracle."""
    return {
        "softmax": oracle_along(symbolic.oracle_softmax, axis, x),
        "log_softmax": oracle_along(symbolic.oracle_log_softmax, axis, x),
        "softmax_vjp": oracle_along(symbolic.oracle_softmax_vjp, axis, x, g),
        "log_softmax_vjp": oracle_along(symbolic.oracle_log_softmax_vjp, axis, x, g),
        "softmax_jacobian": oracle_jacobians(x, axis),
    }


# atol of each result of `results_along`, in units of delta(n) and of the size of g
# (rtol is delta(n) for all). With |s^ - s| <= delta s + u/e and |y^ - y| <= 2u|y| + delta
# (conftest), n u <= delta and 8u <= delta:
# - J = diag(s) - s s^T from s^: off the diagonal 2 delta s_i s_j + u; on it
#   (delta s + u/e)(1 + 2 s) + u; so 4 delta.
# - softmax_vjp s^ (g - <s^, g>), G = max|g|: <s^, g> is off by G (delta + 1.4 n u), the
#   difference by 2uG more, and s^ itself by (delta s + u/e) 2G: 5 delta G in all.
# - log_softmax_vjp g - exp(y^) sum(g), A = sum|g|: exp(y^) is off by s (delta + 8u) + 0.74u
#   (s |ln s| <= 1/e), sum(g) by (n - 1) u A, the product by u: 2 delta A in all.
ATOL = {
    "softmax": lambda g: 1.0,
    "log_softmax": lambda g: 1.0,
    "softmax_jacobian": lambda g: 4.0,
    "softmax_vjp": lambda g: 5 * float(np.max(np.abs(g), initial=0.0)),
    "log_softmax_vjp": lambda g: 2 * float(np.max(np.sum(np.abs(g), axis=-1), initial=0.0)),
}


def assert_results_close(got, want, dtype, g, axis=-1, sources=1):
    """Each result within its bound (ATOL) for rows of ``g.shape[axis]``; `sources` = 2
    when `want` is a computation in the same dtype with the same bound."""
    n = g.shape[axis]
    g = np.moveaxis(g, axis, -1)
    for name in want:
        assert_close(got[name], want[name], dtype, n, scale=ATOL[name](g), sources=sources)


# ---------------------------------------------------------------------------
# The seed example and the oracle.


def test_seed_example(impl):
    # The figures from the question, to the 8 decimals it gives: within half a unit of
    # the 8th decimal, 5e-9 (they are 1.4e-9 and 3.2e-9 from the exact values, which
    # leaves far more than the computation's delta ~ 1e-15).
    y = impl.softmax(np.array([1.0, 2.0]))
    np.testing.assert_allclose(y, [0.26894142, 0.73105858], rtol=0, atol=5e-9)
    np.testing.assert_allclose(
        impl.softmax_jacobian(y),
        [[0.19661193, -0.19661193], [-0.19661193, 0.19661193]],
        rtol=0,
        atol=5e-9,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_agrees_with_oracle(impl, n, dtype):
    rng = np.random.default_rng(n)
    x = rng.normal(scale=3.0, size=n).astype(dtype)  # the oracle sees these exact values
    g = rng.normal(size=n).astype(dtype)
    assert_results_close(results_along(impl, x, g, -1), oracle_results_along(x, g, -1), dtype, g)


# Lengths around multiples of 8 (one AVX2 float32 register) and 4 (float64): tails.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33])
def test_agrees_with_oracle_on_batches(impl, n, dtype):
    rng = np.random.default_rng(100 + n)
    x = rng.normal(scale=4.0, size=(3, n)).astype(dtype)
    g = rng.normal(size=(3, n)).astype(dtype)
    assert_results_close(results_along(impl, x, g, -1), oracle_results_along(x, g, -1), dtype, g)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["strided rows", "strided columns", "transposed", "fortran"])
def test_agrees_with_another_module_in_float64_on_random_batches(impl, dtype, layout):
    # The reference is vectorized in float64, or loops for vectorized itself.
    reference = loops if impl.name == "vectorized" else vectorized
    rng = np.random.default_rng(5)
    base = rng.normal(scale=5.0, size=(40, 70)).astype(dtype)
    x = {
        "strided rows": base[::3, :67],
        "strided columns": base[:, 1::2],
        "transposed": base.T,
        "fortran": np.asfortranarray(base),
    }[layout]
    g = rng.normal(size=x.shape).astype(dtype)
    want = results_along(reference, x.astype(np.float64), g.astype(np.float64), -1)
    # The float64 reference has its own error, within the same bound in float64.
    assert_results_close(results_along(impl, x, g, -1), want, dtype, g, sources=2)


# ---------------------------------------------------------------------------
# The VJPs are Jacobian-transpose products.


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_vjp_is_jacobian_transpose_times_dy(impl, dtype):
    rng = np.random.default_rng(1)
    y = impl.softmax(rng.normal(scale=2.0, size=(6, 9)).astype(dtype))
    dy = rng.normal(size=(6, 9)).astype(dtype)
    jac = impl.softmax_jacobian(y)
    vjp = impl.softmax_vjp(y, dy)
    # Both sides are functions of the same y (J(y)^T dy = y (dy - <y, dy>) for any y):
    # the VJP is off by (n + 3) u G y_i + u|dx|; J's entries by u, and the product in
    # `dtype` by n u sum_i |J_ij| G <= 2 n u y_j G; so 3 delta G bounds the two (G = max|dy|).
    for row in range(6):
        assert_close(vjp[row], jac[row].T @ dy[row], dtype, 9, scale=3 * np.abs(dy[row]).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_vjp_is_log_jacobian_transpose_times_dy(impl, dtype):
    rng = np.random.default_rng(2)
    log_y = impl.log_softmax(rng.normal(scale=2.0, size=(6, 9)).astype(dtype))
    dy = rng.normal(size=(6, 9)).astype(dtype)
    vjp = impl.log_softmax_vjp(log_y, dy)
    for row in range(6):
        s = np.exp(log_y[row].astype(np.float64))
        log_jac = np.eye(9) - np.outer(np.ones(9), s)  # I - 1 s^T
        # Same log_y on both sides: exp(log_y) is off by 8u, sum(dy) by (n - 1) u A,
        # so each side is within delta (|dx| + A), A = sum|dy|; the reference in float64.
        assert_close(
            vjp[row], log_jac.T @ dy[row], dtype, 9, scale=np.abs(dy[row]).sum(), sources=2
        )


# ---------------------------------------------------------------------------
# Properties (hypothesis). Bounded logits; small arrays because loops is slow.

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def logit_batches(dtype, bound=50.0):
    """2-D batches (1-4 rows of 1-12 logits) of floats in [-bound, bound]."""
    width = 32 if dtype == np.float32 else 64
    return hnp.arrays(
        dtype,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.floats(-bound, bound, width=width),
    )


def grid_batches(dtype):
    """Logits on the grid k/64, |k| <= 3200: shifting them by an integer is exact
    in float32 too, so shift invariance is tested without input rounding."""
    return hnp.arrays(
        dtype,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.integers(-3200, 3200).map(lambda k: k / 64),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_rows_sum_to_one(impl, dtype, data):
    y = impl.softmax(data.draw(logit_batches(dtype)))
    assert np.all(y >= 0)
    # sum_i |s^_i - s_i| <= delta + n u/e <= 2 delta; the float64 sum adds n u64 <= delta.
    atol = 3 * tolerance(dtype, y.shape[-1])
    np.testing.assert_allclose(y.sum(axis=-1, dtype=np.float64), 1.0, rtol=0, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_shift_invariance(impl, dtype, data):
    x = data.draw(grid_batches(dtype))
    c = data.draw(st.integers(-100, 100))
    # Both sides are within the bound of the same exact values: twice delta. (x - max is
    # the same exact number for both: no term grows with |c| or with the logits.)
    n = x.shape[-1]
    assert_close(impl.softmax(x + dtype(c)), impl.softmax(x), dtype, n, sources=2)
    assert_close(impl.log_softmax(x + dtype(c)), impl.log_softmax(x), dtype, n, sources=2)


@pytest.mark.parametrize("dtype", DTYPES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_jacobian_symmetric_rows_sum_to_zero_positive_semidefinite(impl, dtype, data):
    jac = impl.softmax_jacobian(impl.softmax(data.draw(logit_batches(dtype))))
    delta = tolerance(dtype, jac.shape[-1])
    # fl(s_i s_j) == fl(s_j s_i): the computed J is exactly symmetric.
    np.testing.assert_array_equal(jac, np.swapaxes(jac, -1, -2))
    # Row i sums to s_i (1 - sum s^) (|1 - sum s^| <= 2 delta, test_rows_sum_to_one) plus the
    # products' and the diagonal's roundings, 2u s_i, and the float64 sum's, 2 n u64 s_i.
    np.testing.assert_allclose(jac.sum(axis=-1, dtype=np.float64), 0.0, rtol=0, atol=4 * delta)
    # diag(s^) - s^ s^T has v^T J v >= sum s^ v^2 (1 - sum s^) >= -2 delta |v|^2; the rounding
    # of J moves eigenvalues by <= ||E||_F <= 2u and eigvalsh by ~ n u64 ||J||: 3 delta.
    assert np.all(np.linalg.eigvalsh(jac.astype(np.float64)) >= -3 * delta)


@pytest.mark.parametrize("dtype", DTYPES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_softmax_vjp_of_a_constant_is_zero(impl, dtype, data):
    # softmax ignores a constant shift, so no gradient flows along the all-ones vector.
    y = impl.softmax(data.draw(logit_batches(dtype)))
    c = data.draw(st.floats(-10, 10))
    dx = impl.softmax_vjp(y, np.full_like(y, c))
    # c - <s^, c> = c (1 - sum s^) +- n u |c|, rounded, times s^_i <= 1: |c| (2 delta + n u + 2u)
    # <= 3 delta |c|; each product y_j c may also lose half a subnormal to underflow.
    n, c = y.shape[-1], abs(float(dtype(c)))
    atol = 3 * tolerance(dtype, n) * c + n * float(np.finfo(dtype).smallest_subnormal)
    np.testing.assert_allclose(dx, 0.0, rtol=0, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_vjps_sum_to_zero(impl, dtype, data):
    x = data.draw(logit_batches(dtype))
    dy = data.draw(hnp.arrays(dtype, x.shape, elements=st.floats(-1, 1, width=x.itemsize * 8)))
    # softmax_vjp: sum_i s^_i (g_i - d^) = <s^, g> - d^ sum s^, off by G (n u + 2 delta + 4u)
    # <= 3 delta G; log_softmax_vjp: sum(g) - sum(g)^ sum exp(y^), off by A (n u + 2 delta + 3u)
    # <= 3 delta A; the float64 sum of the results adds n u64 sum|dx| <= 2 delta (G or A).
    # G = max|dy|, A = sum|dy| per row; underflow in the products, n subnormals at most.
    n = x.shape[-1]
    underflow = n * float(np.finfo(dtype).smallest_subnormal)
    sizes = {
        impl.softmax_vjp: np.max(np.abs(dy), axis=-1),
        impl.log_softmax_vjp: np.sum(np.abs(dy), axis=-1),
    }
    for vjp, y in (
        (impl.softmax_vjp, impl.softmax(x)),
        (impl.log_softmax_vjp, impl.log_softmax(x)),
    ):
        total = vjp(y, dy).sum(axis=-1, dtype=np.float64)
        bound = 5 * tolerance(dtype, n) * sizes[vjp].astype(np.float64) + underflow
        assert np.all(np.abs(total) <= bound), (total, bound)


@pytest.mark.parametrize("dtype", DTYPES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_log_softmax_is_log_of_softmax_where_finite(impl, dtype, data):
    x = data.draw(logit_batches(dtype))
    s = impl.softmax(x)
    normal = s >= np.finfo(dtype).tiny  # subnormals have lost precision, 0 has no log
    want = np.log(s.astype(np.float64)[normal])
    got = impl.log_softmax(x)[normal]
    # s^_i is off by u(|d_i| + ...) relative, so ln s^_i by u|y_i| + delta, and log_softmax by
    # 2u|y_i| + delta (conftest); float64 log adds u64 |y_i|: rtol 4u, atol 2 delta.
    u = np.finfo(dtype).eps / 2
    np.testing.assert_allclose(got, want, rtol=4 * u, atol=2 * tolerance(dtype, x.shape[-1]))


# ---------------------------------------------------------------------------
# Shapes, axes, dtypes.


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape, axis",
    [
        (shape, axis)
        for shape in [(7,), (3, 5), (2, 3, 4)]
        for axis in range(-len(shape), len(shape))
    ],
)
def test_any_shape_any_axis(impl, shape, axis, dtype):
    rng = np.random.default_rng(len(shape) * 10 + axis)
    x = rng.normal(scale=3.0, size=shape).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    got = results_along(impl, x, g, axis)
    other = shape[: axis % len(shape)] + shape[axis % len(shape) + 1 :]
    assert got["softmax_jacobian"].shape == other + (shape[axis], shape[axis])
    assert_results_close(got, oracle_results_along(x, g, axis), dtype, g, axis)


@pytest.mark.parametrize(
    "given_dtype, result_dtype",
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.float16, np.float16),  # computed in float32, rounded back
        (np.int32, np.float64),
        (np.int64, np.float64),
        (np.uint8, np.float64),
        (np.bool_, np.float64),
        (">f4", np.float32),
        (">f8", np.float64),
        (">i4", np.float64),  # big-endian: native results
    ],
)
def test_dtype_rules(impl, given_dtype, result_dtype):
    x = np.array([[1, 0, 1], [0, 1, 1]], dtype=given_dtype)
    for name in FORWARD + BACKWARD:
        args = (x, x) if name in BACKWARD else (x,)
        assert getattr(impl, name)(*args).dtype == result_dtype, name
    assert impl.softmax_jacobian(x).dtype == result_dtype


def test_mixed_vjp_dtypes_promote_to_float64(impl):
    y = np.full(3, 1 / 3, dtype=np.float32)
    assert impl.softmax_vjp(y, np.ones(3)).dtype == np.float64


def test_python_lists_are_accepted(impl):
    # x - max = 0 and exp(0) = 1 exactly, 1 / 2 is exact: exactly 0.5.
    np.testing.assert_array_equal(impl.softmax([[0, 0], [1, 1]]), 0.5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_logits_do_not_overflow(impl, dtype):
    # filterwarnings=error: an overflow warning would fail this test too.
    x = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, 1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
    y = impl.softmax(x)
    assert_close(y, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3]], dtype, 3)
    log_third = -np.log(3.0)
    # |y^ - y| <= 2u|y| + delta: rtol covers the -2e4 and -1e4 (x - max is exact here).
    assert_close(
        impl.log_softmax(x), [[0, -2e4, -1e4], [log_third] * 3, [log_third] * 3], dtype, 3
    )
    assert np.all(np.isfinite(impl.softmax_vjp(y, np.ones_like(y))))


@pytest.mark.parametrize("dtype", DTYPES)
def test_minus_inf_entries_give_exact_zeros(impl, dtype):
    x = np.array([[-np.inf, 0.0, 1.0, -np.inf], [2.0, -np.inf, 2.0, 2.0]], dtype=dtype)
    y = impl.softmax(x)
    assert np.all(y[np.isneginf(x)] == 0.0)
    assert_close(y[0, 1:3], symbolic.oracle_softmax([0.0, 1.0]), dtype, 4)
    assert_close(y[1, [0, 2, 3]], [1 / 3] * 3, dtype, 4)
    log_y = impl.log_softmax(x)
    assert np.all(np.isneginf(log_y[np.isneginf(x)]))
    assert np.all(np.isfinite(log_y[~np.isneginf(x)]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "bad_row",
    [
        [-np.inf, -np.inf, -np.inf],
        [0.0, np.nan, 1.0],
        [np.inf, 0.0, 1.0],
        [np.inf, np.inf, 0.0],
    ],
    ids=["all -inf", "nan", "+inf", "two +inf"],
)
def test_nan_semantics(impl, bad_row, dtype):
    # A slice with NaN or +inf, or only -inf, is NaN throughout; other slices are untouched.
    x = np.array([bad_row, [0.0, 1.0, 2.0]], dtype=dtype)
    for name in FORWARD:
        out = getattr(impl, name)(x)
        assert np.all(np.isnan(out[0])), name
        assert np.all(np.isfinite(out[1])), name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape, axis", [((3, 0), -1), ((0, 4), -1), ((0, 4), 0), ((0,), 0), ((2, 0, 3), 1)]
)
def test_empty_rows_and_batches(impl, shape, axis, dtype):
    x = np.zeros(shape, dtype=dtype)
    for name in FORWARD + BACKWARD:
        args = (x, x) if name in BACKWARD else (x,)
        got = getattr(impl, name)(*args, axis=axis)
        assert got.shape == shape and got.dtype == dtype, name
    n = shape[axis]
    other = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    assert impl.softmax_jacobian(x, axis=axis).shape == other + (n, n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_of_one(impl, dtype):
    x = np.array([[5.0], [-3.0], [0.0]], dtype=dtype)
    y = impl.softmax(x)
    np.testing.assert_array_equal(y, 1.0)
    np.testing.assert_array_equal(impl.log_softmax(x), 0.0)
    np.testing.assert_allclose(impl.softmax_vjp(y, x), 0.0, atol=0)
    np.testing.assert_allclose(impl.log_softmax_vjp(np.zeros_like(x), x), 0.0, atol=0)
    np.testing.assert_array_equal(impl.softmax_jacobian(y), np.zeros((3, 1, 1)))


# ---------------------------------------------------------------------------
# out=


def forward_and_backward_inputs(dtype):
    rng = np.random.default_rng(9)
    x = rng.normal(scale=2.0, size=(4, 9)).astype(dtype)
    return x, rng.normal(size=(4, 9)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FORWARD)
def test_forward_out(impl, name, dtype):
    x, _ = forward_and_backward_inputs(dtype)
    f = getattr(impl, name)
    want = f(x.copy())
    x_before = x.copy()
    out = np.empty_like(x)
    # The same function of the same x by another path: both within delta of the truth.
    assert f(x, out=out) is out
    assert_close(out, want, dtype, 9, sources=2)
    np.testing.assert_array_equal(x, x_before)  # the input was left alone
    assert f(x, out=x) is x  # out aliasing the input
    assert_close(x, want, dtype, 9, sources=2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKWARD)
@pytest.mark.parametrize("alias", ["fresh", "y", "dy"])
def test_backward_out(impl, name, alias, dtype):
    x, dy = forward_and_backward_inputs(dtype)
    y = impl.softmax(x) if name == "softmax_vjp" else impl.log_softmax(x)
    f = getattr(impl, name)
    want = f(y.copy(), dy.copy())
    out = {"fresh": np.empty_like(y), "y": y, "dy": dy}[alias]
    assert f(y, dy, out=out) is out
    # Same y and dy, another path: each within delta (|dx| + sum|dy|) (test_log_softmax_vjp_...).
    assert_close(out, want, dtype, 9, scale=np.abs(dy).sum(axis=-1).max(), sources=2)


@pytest.mark.parametrize("name", FORWARD)
def test_out_as_a_strided_view_along_axis_0(impl, name):
    x, _ = forward_and_backward_inputs(np.float64)
    f = getattr(impl, name)
    buffer = np.zeros((9, 8))
    out = buffer[:, ::2]  # non-contiguous, shape (9, 4) = x.T's shape
    assert f(x.T, axis=0, out=out) is out
    assert_close(out, f(np.ascontiguousarray(x.T), axis=0), np.float64, 9, sources=2)
    np.testing.assert_array_equal(buffer[:, 1::2], 0.0)  # nothing written between


def test_inputs_are_not_modified(impl):
    x, dy = forward_and_backward_inputs(np.float64)
    y = impl.softmax(x)
    copies = x.copy(), y.copy(), dy.copy()
    results_along(impl, x, dy, -1)
    impl.softmax_vjp(y, dy)
    for before, after in zip(copies, (x, y, dy), strict=True):
        np.testing.assert_array_equal(before, after)


# ---------------------------------------------------------------------------
# Bad input: a TypeError or ValueError whose message names the argument.

BAD_ARRAYS = [
    (np.array([1 + 2j, 3]), "complex"),
    (np.array([1, "a"], dtype=object), "object"),
    (np.array(["1", "2"]), "string"),
    (np.array([np.datetime64("2020-01-01")]), "datetime"),
]


@pytest.mark.parametrize("bad", [b for b, _ in BAD_ARRAYS], ids=[i for _, i in BAD_ARRAYS])
def test_bad_dtypes_raise_type_error_naming_the_argument(impl, bad):
    good = np.ones(bad.shape)
    for name in FORWARD:
        with pytest.raises(TypeError, match="^x "):
            getattr(impl, name)(bad)
    for name in BACKWARD:
        with pytest.raises(TypeError, match="^y "):
            getattr(impl, name)(bad, good)
        with pytest.raises(TypeError, match="^dy "):
            getattr(impl, name)(good, bad)
    with pytest.raises(TypeError, match="^y "):
        impl.softmax_jacobian(bad)


@pytest.mark.skipif(
    np.finfo(np.longdouble).eps == np.finfo(np.float64).eps,
    reason="long double is float64 on this platform",
)
def test_extended_precision_is_refused_not_silently_rounded(impl):
    x = np.ones(3, dtype=np.longdouble)
    with pytest.raises(TypeError, match=r"^x has dtype .*convert it explicitly"):
        impl.softmax(x)
    with pytest.raises(TypeError, match=r"^dy has dtype"):
        impl.softmax_vjp(np.ones(3), x)


def test_ragged_input_raises_type_error(impl):
    with pytest.raises(TypeError, match="^x could not be converted"):
        impl.softmax([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize("name", BACKWARD)
def test_mismatched_y_dy_shapes(impl, name):
    with pytest.raises(
        ValueError, match=r"y and dy must have the same shape, got \(2, 3\) and \(3, 2\)"
    ):
        getattr(impl, name)(np.ones((2, 3)), np.ones((3, 2)))


@pytest.mark.parametrize("name", FORWARD + BACKWARD)
@pytest.mark.parametrize(
    "out, error, message",
    [
        (np.empty((3, 2)), ValueError, r"out has shape \(3, 2\), expected \(2, 3\)"),
        (np.empty((2, 3), dtype=np.float32), TypeError, "out has dtype float32, expected float64"),
        (np.empty((2, 3)).tolist(), TypeError, "out must be a numpy.ndarray, got list"),
        (
            np.lib.stride_tricks.as_strided(np.empty(3), (2, 3), (0, 8), writeable=False),
            ValueError,
            "out is read-only",
        ),
    ],
    ids=["shape", "dtype", "not-ndarray", "read-only"],
)
def test_bad_out(impl, name, out, error, message):
    x = np.ones((2, 3))
    args = (x, x) if name in BACKWARD else (x,)
    with pytest.raises(error, match=message):
        getattr(impl, name)(*args, out=out)


@pytest.mark.parametrize("name", FORWARD + BACKWARD + ["softmax_jacobian"])
@pytest.mark.parametrize(
    "axis, error, message",
    [
        # AxisError is a ValueError and an IndexError: older except clauses still catch it
        (2, np.exceptions.AxisError, r"axis=2 is out of range for an array with 2 dimension"),
        (-3, np.exceptions.AxisError, r"axis=-3 is out of range"),
        (1.0, TypeError, "axis must be an integer.*, got 1.0"),
        ("0", TypeError, "axis must be an integer"),
    ],
)
def test_bad_axis(impl, name, axis, error, message):
    x = np.ones((2, 3))
    args = (x, x) if name in BACKWARD else (x,)
    with pytest.raises(error, match=message):
        getattr(impl, name)(*args, axis=axis)


def test_numpy_integer_axis_is_accepted(impl):
    x = np.arange(6.0).reshape(2, 3)
    assert_close(
        impl.softmax(x, axis=np.int64(0)), impl.softmax(x, axis=0), np.float64, 2, sources=2
    )
