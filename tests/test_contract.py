"""The contract, tested once and run against every implementation (the ``impl`` fixture).

Tolerances: results are compared with ``rtol = atol = tolerance(dtype)``, which is
``256 * np.finfo(dtype).eps`` (conftest.py): about 5.7e-14 for float64 and 3.1e-5
for float32, a few hundred units in the last place, far below any real mistake
(those show at 1e-3 or more) and above the rounding of sums of up to ~100 terms.
Where a result is a difference of terms of size ``|g|``, ``atol`` is scaled by it.
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


def assert_close(got, want, dtype, scale=1.0):
    """`got` has `dtype` and matches `want` to the dtype's tolerance (atol times `scale`)."""
    assert got.dtype == dtype
    tol = tolerance(dtype)
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


def assert_results_close(got, want, dtype, g):
    scale = max(1.0, float(np.max(np.abs(g), initial=0.0)))
    for name in want:
        assert_close(got[name], want[name], dtype, scale=scale)


# ---------------------------------------------------------------------------
# The seed example and the oracle.

def test_seed_example(impl):
    # The figures from the question, to the 8 decimals it gives.
    y = impl.softmax(np.array([1.0, 2.0]))
    np.testing.assert_allclose(y, [0.26894142, 0.73105858], rtol=0, atol=5e-9)
    np.testing.assert_allclose(impl.softmax_jacobian(y),
                               [[0.19661193, -0.19661193], [-0.19661193, 0.19661193]],
                               rtol=0, atol=5e-9)


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
    x = {"strided rows": base[::3, :67], "strided columns": base[:, 1::2],
         "transposed": base.T, "fortran": np.asfortranarray(base)}[layout]
    g = rng.normal(size=x.shape).astype(dtype)
    want = results_along(reference, x.astype(np.float64), g.astype(np.float64), -1)
    assert_results_close(results_along(impl, x, g, -1), want, dtype, g)


# ---------------------------------------------------------------------------
# The VJPs are Jacobian-transpose products.

@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_vjp_is_jacobian_transpose_times_dy(impl, dtype):
    rng = np.random.default_rng(1)
    y = impl.softmax(rng.normal(scale=2.0, size=(6, 9)).astype(dtype))
    dy = rng.normal(size=(6, 9)).astype(dtype)
    jac = impl.softmax_jacobian(y)
    vjp = impl.softmax_vjp(y, dy)
    for row in range(6):
        assert_close(vjp[row], jac[row].T @ dy[row], dtype, scale=np.abs(dy[row]).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_vjp_is_log_jacobian_transpose_times_dy(impl, dtype):
    rng = np.random.default_rng(2)
    log_y = impl.log_softmax(rng.normal(scale=2.0, size=(6, 9)).astype(dtype))
    dy = rng.normal(size=(6, 9)).astype(dtype)
    vjp = impl.log_softmax_vjp(log_y, dy)
    for row in range(6):
        s = np.exp(log_y[row].astype(np.float64))
        log_jac = np.eye(9) - np.outer(np.ones(9), s)  # I - 1 s^T
        assert_close(vjp[row], log_jac.T @ dy[row], dtype, scale=np.abs(dy[row]).max())


# ---------------------------------------------------------------------------
# Properties (hypothesis). Bounded logits; small arrays because loops is slow.

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture])


def logit_batches(dtype, bound=50.0):
    """2-D batches (1-4 rows of 1-12 logits) of floats in [-bound, bound]."""
    width = 32 if dtype == np.float32 else 64
    return hnp.arrays(dtype, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
                      elements=st.floats(-bound, bound, width=width))


def grid_batches(dtype):
    """Logits on the grid k/64, |k| <= 3200: shifting them by an integer is exact
    in float32 too, so shift invariance is tested without input rounding."""
    return hnp.arrays(dtype, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
                      elements=st.integers(-3200, 3200).map(lambda k: k / 64))


@pytest.mark.parametrize("dtype", DTYPES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_rows_sum_to_one(impl, dtype, data):
    y = impl.softmax(data.draw(logit_batches(dtype)))
    assert np.all(y >= 0)
    np.testing.assert_allclose(y.sum(axis=-1, dtype=np.float64), 1.0, rtol=0, atol=tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_shift_invariance(impl, dtype, data):
    x = data.draw(grid_batches(dtype))
    c = data.draw(st.integers(-100, 100))
    assert_close(impl.softmax(x + dtype(c)), impl.softmax(x), dtype)
    assert_close(impl.log_softmax(x + dtype(c)), impl.log_softmax(x), dtype, scale=100.0)


@pytest.mark.parametrize("dtype", DTYPES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_jacobian_symmetric_rows_sum_to_zero_positive_semidefinite(impl, dtype, data):
    jac = impl.softmax_jacobian(impl.softmax(data.draw(logit_batches(dtype))))
    tol = tolerance(dtype)
    np.testing.assert_allclose(jac, np.swapaxes(jac, -1, -2), rtol=0, atol=tol)
    np.testing.assert_allclose(jac.sum(axis=-1, dtype=np.float64), 0.0, rtol=0, atol=tol)
    assert np.all(np.linalg.eigvalsh(jac.astype(np.float64)) >= -tol)


@pytest.mark.parametrize("dtype", DTYPES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_softmax_vjp_of_a_constant_is_zero(impl, dtype, data):
    # softmax ignores a constant shift, so no gradient flows along the all-ones vector.
    y = impl.softmax(data.draw(logit_batches(dtype)))
    c = data.draw(st.floats(-10, 10))
    dx = impl.softmax_vjp(y, np.full_like(y, c))
    np.testing.assert_allclose(dx, 0.0, rtol=0, atol=tolerance(dtype) * max(1.0, abs(c)))


@pytest.mark.parametrize("dtype", DTYPES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_vjps_sum_to_zero(impl, dtype, data):
    x = data.draw(logit_batches(dtype))
    dy = data.draw(hnp.arrays(dtype, x.shape, elements=st.floats(-1, 1, width=x.itemsize * 8)))
    for vjp, y in ((impl.softmax_vjp, impl.softmax(x)), (impl.log_softmax_vjp, impl.log_softmax(x))):
        total = vjp(y, dy).sum(axis=-1, dtype=np.float64)
        np.testing.assert_allclose(total, 0.0, rtol=0, atol=tolerance(dtype) * x.shape[-1])


@pytest.mark.parametrize("dtype", DTYPES)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_log_softmax_is_log_of_softmax_where_finite(impl, dtype, data):
    x = data.draw(logit_batches(dtype))
    s = impl.softmax(x)
    normal = s >= np.finfo(dtype).tiny  # subnormals have lost precision, 0 has no log
    want = np.log(s.astype(np.float64)[normal])
    got = impl.log_softmax(x)[normal]
    np.testing.assert_allclose(got, want, rtol=tolerance(dtype), atol=tolerance(dtype))


# ---------------------------------------------------------------------------
# Shapes, axes, dtypes.

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axis", [
    (shape, axis) for shape in [(7,), (3, 5), (2, 3, 4)]
    for axis in range(-len(shape), len(shape))
])
def test_any_shape_any_axis(impl, shape, axis, dtype):
    rng = np.random.default_rng(len(shape) * 10 + axis)
    x = rng.normal(scale=3.0, size=shape).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    got = results_along(impl, x, g, axis)
    other = shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
    assert got["softmax_jacobian"].shape == other + (shape[axis], shape[axis])
    assert_results_close(got, oracle_results_along(x, g, axis), dtype, g)


@pytest.mark.parametrize("given_dtype, result_dtype", [
    (np.float32, np.float32), (np.float64, np.float64), (np.float16, np.float32),
    (np.int32, np.float64), (np.int64, np.float64), (np.uint8, np.float64), (np.bool_, np.float64),
    (">f4", np.float32), (">f8", np.float64), (">i4", np.float64),  # big-endian: native results
])
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
    np.testing.assert_allclose(impl.softmax([[0, 0], [1, 1]]), 0.5, rtol=0, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_logits_do_not_overflow(impl, dtype):
    # filterwarnings=error: an overflow warning would fail this test too.
    x = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, 1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
    y = impl.softmax(x)
    assert_close(y, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3]], dtype)
    log_third = -np.log(3.0)
    assert_close(impl.log_softmax(x), [[0, -2e4, -1e4], [log_third] * 3, [log_third] * 3],
                 dtype, scale=1e4)
    assert np.all(np.isfinite(impl.softmax_vjp(y, np.ones_like(y))))


@pytest.mark.parametrize("dtype", DTYPES)
def test_minus_inf_entries_give_exact_zeros(impl, dtype):
    x = np.array([[-np.inf, 0.0, 1.0, -np.inf], [2.0, -np.inf, 2.0, 2.0]], dtype=dtype)
    y = impl.softmax(x)
    assert np.all(y[np.isneginf(x)] == 0.0)
    assert_close(y[0, 1:3], symbolic.oracle_softmax([0.0, 1.0]), dtype)
    assert_close(y[1, [0, 2, 3]], [1 / 3] * 3, dtype)
    log_y = impl.log_softmax(x)
    assert np.all(np.isneginf(log_y[np.isneginf(x)]))
    assert np.all(np.isfinite(log_y[~np.isneginf(x)]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad_row", [
    [-np.inf, -np.inf, -np.inf], [0.0, np.nan, 1.0], [np.inf, 0.0, 1.0], [np.inf, np.inf, 0.0],
], ids=["all -inf", "nan", "+inf", "two +inf"])
def test_nan_semantics(impl, bad_row, dtype):
    # A slice with NaN or +inf, or only -inf, is NaN throughout; other slices are untouched.
    x = np.array([bad_row, [0.0, 1.0, 2.0]], dtype=dtype)
    for name in FORWARD:
        out = getattr(impl, name)(x)
        assert np.all(np.isnan(out[0])), name
        assert np.all(np.isfinite(out[1])), name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axis", [((3, 0), -1), ((0, 4), -1), ((0, 4), 0), ((0,), 0), ((2, 0, 3), 1)])
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
    assert f(x, out=out) is out
    assert_close(out, want, dtype)
    np.testing.assert_array_equal(x, x_before)  # the input was left alone
    assert f(x, out=x) is x  # out aliasing the input
    assert_close(x, want, dtype)


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
    assert_close(out, want, dtype, scale=np.abs(want).max())


@pytest.mark.parametrize("name", FORWARD)
def test_out_as_a_strided_view_along_axis_0(impl, name):
    x, _ = forward_and_backward_inputs(np.float64)
    f = getattr(impl, name)
    buffer = np.zeros((9, 8))
    out = buffer[:, ::2]  # non-contiguous, shape (9, 4) = x.T's shape
    assert f(x.T, axis=0, out=out) is out
    assert_close(out, f(np.ascontiguousarray(x.T), axis=0), np.float64)
    np.testing.assert_array_equal(buffer[:, 1::2], 0.0)  # nothing written between


def test_inputs_are_not_modified(impl):
    x, dy = forward_and_backward_inputs(np.float64)
    y = impl.softmax(x)
    copies = x.copy(), y.copy(), dy.copy()
    results_along(impl, x, dy, -1)
    impl.softmax_vjp(y, dy)
    for before, after in zip(copies, (x, y, dy)):
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


@pytest.mark.skipif(np.finfo(np.longdouble).eps == np.finfo(np.float64).eps,
                    reason="long double is float64 on this platform")
def test_extended_precision_is_refused_not_silently_rounded(impl):
    x = np.ones(3, dtype=np.longdouble)
    with pytest.raises(TypeError, match=r"^x has dtype .*convert it explicitly"):
        impl.softmax(x)
    with pytest.raises(TypeError, match=r"^dy has dtype"):
        impl.softmax_vjp(np.ones(3), x)


def test_ragged_input_raises_type_error(impl):
    with pytest.raises(TypeError, match="^x could not be converted"):
        impl.softmax([[1.0, 2.0], [3.0]])


def test_zero_dimensional_input_raises_value_error(impl):
    with pytest.raises(ValueError, match="^x must have at least one dimension"):
        impl.softmax(3.0)


@pytest.mark.parametrize("name", BACKWARD)
def test_mismatched_y_dy_shapes(impl, name):
    with pytest.raises(ValueError, match=r"y and dy must have the same shape, got \(2, 3\) and \(3, 2\)"):
        getattr(impl, name)(np.ones((2, 3)), np.ones((3, 2)))


@pytest.mark.parametrize("name", FORWARD + BACKWARD)
@pytest.mark.parametrize("out, error, message", [
    (np.empty((3, 2)), ValueError, r"out has shape \(3, 2\), expected \(2, 3\)"),
    (np.empty((2, 3), dtype=np.float32), TypeError, "out has dtype float32, expected float64"),
    (np.empty((2, 3)).tolist(), TypeError, "out must be a numpy.ndarray, got list"),
    (np.lib.stride_tricks.as_strided(np.empty(3), (2, 3), (0, 8), writeable=False),
     ValueError, "out is read-only"),
], ids=["shape", "dtype", "not-ndarray", "read-only"])
def test_bad_out(impl, name, out, error, message):
    x = np.ones((2, 3))
    args = (x, x) if name in BACKWARD else (x,)
    with pytest.raises(error, match=message):
        getattr(impl, name)(*args, out=out)


@pytest.mark.parametrize("name", FORWARD + BACKWARD + ["softmax_jacobian"])
@pytest.mark.parametrize("axis, error, message", [
    (2, ValueError, r"axis=2 is out of range for an array with 2 dimension"),
    (-3, ValueError, r"axis=-3 is out of range"),
    (1.0, TypeError, "axis must be an integer, got 1.0"),
    ("0", TypeError, "axis must be an integer"),
    (None, TypeError, "axis must be an integer, got None"),
])
def test_bad_axis(impl, name, axis, error, message):
    x = np.ones((2, 3))
    args = (x, x) if name in BACKWARD else (x,)
    with pytest.raises(error, match=message):
        getattr(impl, name)(*args, axis=axis)


def test_numpy_integer_axis_is_accepted(impl):
    x = np.arange(6.0).reshape(2, 3)
    assert_close(impl.softmax(x, axis=np.int64(0)), impl.softmax(x, axis=0), np.float64)
