"""Issue 11's API, run against every implementation (the ``impl`` fixture): axis=None
and tuples of axes, 0-d input, float16, NumPy's AxisError, ``where=`` masks and
``logsumexp``.

Tolerances are the bounds of ``test_contract`` (delta(n) = u (n + 9 ln n + 20) from
``conftest.tolerance``, the ``ATOL`` scales of the VJPs), with n the length of the
slice (the product of the axes' lengths). References are vectorized NumPy in
float64 on an array whose axes the test moves and reshapes itself, or hand-derived
values. float16 results are computed in float32 and rounded once to float16:
their error is at most delta_32(n) s + u_32/e + u_16 s, below delta_16(n) (u_16 =
2^-11 dominates: delta_16(n) >= 20 u_16), so delta_16 is their bound.
"""

import math
import warnings

import numpy as np
import pytest
from test_contract import ATOL, assert_close

from softmax_lib import symbolic, vectorized
from softmax_lib.gradcheck import numerical_gradient

DTYPES = [np.float32, np.float64]
FORWARD = ["softmax", "log_softmax"]
BACKWARD = ["softmax_vjp", "log_softmax_vjp"]
AxisError = np.exceptions.AxisError


def rows_reference(name, axes, *arrays):
    """vectorized `name` in float64 with `axes` moved last and merged (the test's own
    reshaping), brought back to the arrays' shape."""
    ndim = arrays[0].ndim
    axes = tuple(a % ndim for a in axes)
    k, lead = len(axes), ndim - len(axes)
    moved = [np.moveaxis(np.asarray(a, np.float64), axes, range(lead, ndim)) for a in arrays]
    shape = moved[0].shape
    rows = [m.reshape(shape[:lead] + (-1,)) if k else m[..., None] for m in moved]
    result = getattr(vectorized, name)(*rows, axis=-1).reshape(shape)
    return np.moveaxis(result, range(lead, ndim), axes)


AXES = [None, (0,), (2,), (0, 2), (2, 0), (-1, -3), (1, 2), (0, 1, 2), ()]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", AXES, ids=str)
def test_none_and_tuple_axes_match_the_moved_and_reshaped_array(impl, axis, dtype):
    rng = np.random.default_rng(7)
    x = rng.normal(scale=3.0, size=(3, 4, 5)).astype(dtype)
    g = rng.normal(size=(3, 4, 5)).astype(dtype)
    axes = tuple(range(3)) if axis is None else axis
    n = math.prod(x.shape[a] for a in axes)  # the slice's length
    y, log_y = impl.softmax(x, axis=axis), impl.log_softmax(x, axis=axis)
    got = {
        "softmax": y,
        "log_softmax": log_y,
        "softmax_vjp": impl.softmax_vjp(y, g, axis=axis),
        "log_softmax_vjp": impl.log_softmax_vjp(log_y, g, axis=axis),
    }
    # the VJPs' references are taken at the same y (the VJP's own bound, as in
    # test_contract's out= tests), the forward ones at x
    want = {
        "softmax": rows_reference("softmax", axes, x),
        "log_softmax": rows_reference("log_softmax", axes, x),
        "softmax_vjp": rows_reference("softmax_vjp", axes, y, g),
        "log_softmax_vjp": rows_reference("log_softmax_vjp", axes, log_y, g),
    }
    g_rows = rows_reference_shape(g, axes)
    for name in want:
        assert got[name].shape == x.shape, name
        assert got[name].flags.c_contiguous, name
        assert_close(got[name], want[name], dtype, n, scale=ATOL[name](g_rows), sources=2)


def rows_reference_shape(a, axes):
    """`a` with `axes` moved last and merged (the slices as rows, for the ATOL scales)."""
    lead = a.ndim - len(axes)
    moved = np.moveaxis(a, tuple(x % a.ndim for x in axes), range(lead, a.ndim))
    return moved.reshape(moved.shape[:lead] + (-1,)) if axes else moved[..., None]


@pytest.mark.parametrize("name", FORWARD + BACKWARD)
def test_tuple_axes_with_out(impl, name):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 3, 4))
    args = (impl.softmax(x, axis=(0, 2)), x) if name in BACKWARD else (x,)
    f = getattr(impl, name)
    want = f(*[a.copy() for a in args], axis=(0, 2))
    out = args[0]  # aliasing the input, as with one axis
    assert f(*args, axis=(0, 2), out=out) is out
    # The same computation on the same values, then copied into out: identical.
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("dtype", DTYPES + [np.float16])
@pytest.mark.parametrize("axis", [-1, 0, None, (), (0,), (-1,)], ids=str)
def test_zero_dimensional_input(impl, axis, dtype):
    # One slice of one element: exp(x - x) / exp(0) = 1 and (x - x) - log1p(0) = 0
    # exactly; the VJPs s (g - s g) = 0 and g - exp(0) g = 0 exactly.
    x, g = np.array(2.5, dtype), np.array(-1.5, dtype)
    results = {
        "softmax": (impl.softmax(x, axis=axis), 1.0),
        "log_softmax": (impl.log_softmax(x, axis=axis), 0.0),
        "softmax_vjp": (impl.softmax_vjp(np.array(1.0, dtype), g, axis=axis), 0.0),
        "log_softmax_vjp": (impl.log_softmax_vjp(np.array(0.0, dtype), g, axis=axis), 0.0),
        "logsumexp": (impl.logsumexp(x, axis=axis), 2.5),  # log(exp(x)) = x, exactly here
    }
    for name, (got, want) in results.items():
        assert got.shape == () and got.dtype == dtype, name
        assert got == want, name
    out = np.empty((), dtype)
    assert impl.softmax(x, axis=axis, out=out) is out and out == 1.0
    assert impl.softmax_jacobian(np.array(1.0, dtype)).shape == (1, 1)
    with pytest.raises(AxisError):
        impl.softmax(x, axis=1)


def test_python_scalars_are_zero_dimensional(impl):
    assert impl.softmax(3.0) == 1.0 and impl.log_softmax(7) == 0.0


@pytest.mark.parametrize("n", [3, 9, 33])
def test_float16_round_trip(impl, n):
    rng = np.random.default_rng(n)
    x = rng.normal(scale=3.0, size=(4, n)).astype(np.float16)
    g = rng.normal(size=(4, n)).astype(np.float16)
    y, log_y = impl.softmax(x), impl.log_softmax(x)
    got = {
        "softmax": y,
        "log_softmax": log_y,
        "softmax_vjp": impl.softmax_vjp(y, g),
        "log_softmax_vjp": impl.log_softmax_vjp(log_y, g),
        "softmax_jacobian": impl.softmax_jacobian(y),
    }
    x64 = x.astype(np.float64)  # the exact float16 values
    want = {
        "softmax": vectorized.softmax(x64),
        "log_softmax": vectorized.log_softmax(x64),
        "softmax_vjp": vectorized.softmax_vjp(y.astype(np.float64), g.astype(np.float64)),
        "log_softmax_vjp": vectorized.log_softmax_vjp(
            log_y.astype(np.float64), g.astype(np.float64)
        ),
        "softmax_jacobian": vectorized.softmax_jacobian(y.astype(np.float64)),
    }
    g64 = g.astype(np.float64)
    for name in want:
        # float16's u = 2^-11 dominates the float32 computation's error (module docstring)
        assert_close(got[name], want[name], np.float16, n, scale=ATOL[name](g64))
    lse = impl.logsumexp(x)
    assert lse.dtype == np.float16
    # lse = x_k - log s_k for any k: from the float64 reference, within delta_16 (rtol, atol)
    assert_close(lse, x64[:, 0] - want["log_softmax"][:, 0], np.float16, n, scale=2.0)
    out = np.empty_like(x)
    assert impl.softmax(x, out=out) is out
    with pytest.raises(TypeError, match="out has dtype float32, expected float16"):
        impl.softmax(x, out=np.empty(x.shape, np.float32))
    # float16 with float32 gives float32, as NumPy promotes
    assert impl.softmax_vjp(y, g.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("name", FORWARD + BACKWARD + ["logsumexp"])
@pytest.mark.parametrize(
    "axis, message",
    [
        (2, r"axis=2 is out of range for an array with 2 dimension"),
        (-3, r"axis=-3 is out of range"),
        ((0, 2), r"axis=\(0, 2\) is out of range"),
        ((0, 0), r"axis=\(0, 0\) repeats an axis"),
        ((1, -1), r"axis=\(1, -1\) repeats an axis"),
    ],
    ids=["2", "-3", "(0, 2)", "(0, 0)", "(1, -1)"],
)
def test_bad_axes_raise_axis_error(impl, name, axis, message):
    x = np.ones((2, 3))
    args = (x, x) if name in BACKWARD else (x,)
    with pytest.raises(AxisError, match=message) as caught:
        getattr(impl, name)(*args, axis=axis)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, IndexError)


@pytest.mark.parametrize("axis", [None, (0,), (0, 1)], ids=str)
def test_jacobian_keeps_one_axis(impl, axis):
    with pytest.raises(TypeError, match="softmax_jacobian takes a single integer axis"):
        impl.softmax_jacobian(np.full((2, 3), 1 / 3), axis=axis)


def test_axis_tuple_of_non_integers_is_a_type_error(impl):
    with pytest.raises(TypeError, match=r"axis must be an integer, a tuple of integers or None"):
        impl.softmax(np.ones((2, 3)), axis=(0, 1.0))


# ---------------------------------------------------------------------------
# where=


def subset_reference(name, x, mask, *more):
    """`name` computed by vectorized float64 on each row's entries inside `mask`,
    the others 0 (softmax, the VJPs) or -inf (log_softmax)."""
    fill = -np.inf if name == "log_softmax" else 0.0
    result = np.full(x.shape, fill)
    for r in range(x.shape[0]):
        keep = mask[r]
        if keep.any():
            args = [np.asarray(a, np.float64)[r][keep] for a in (x, *more)]
            result[r, keep] = getattr(vectorized, name)(*args)
    return result


@pytest.mark.parametrize("dtype", DTYPES)
def test_where_agrees_with_the_unmasked_subset(impl, dtype):
    rng = np.random.default_rng(11)
    n = 17
    x = rng.normal(scale=3.0, size=(6, n)).astype(dtype)
    g = rng.normal(size=(6, n)).astype(dtype)
    mask = rng.random((6, n)) < 0.6
    mask[0] = False  # a fully masked row
    mask[1] = True  # an unmasked row
    mask[2] = np.arange(n) == 4  # one entry
    x[~mask] = np.where(rng.random((~mask).sum()) < 0.5, np.nan, np.inf)  # ignored
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning, even for the fully masked row
        y = impl.softmax(x, where=mask)
        log_y = impl.log_softmax(x, where=mask)
        dx = impl.softmax_vjp(y, g, where=mask)
        dlog = impl.log_softmax_vjp(log_y, g, where=mask)
    # delta(n) for the full length bounds the shorter subsets' (it grows with n)
    assert_close(y, subset_reference("softmax", x, mask), dtype, n)
    assert_close(log_y, subset_reference("log_softmax", x, mask), dtype, n)
    g_in = np.where(mask, g, 0)
    want_dx = subset_reference("softmax_vjp", y, mask, g)
    want_dlog = subset_reference("log_softmax_vjp", log_y, mask, g)
    assert_close(dx, want_dx, dtype, n, scale=ATOL["softmax_vjp"](g_in), sources=2)
    assert_close(dlog, want_dlog, dtype, n, scale=ATOL["log_softmax_vjp"](g_in), sources=2)
    # exactly 0 / -inf outside the mask; the fully masked row gives zeros and -inf, no NaN
    assert np.all(y[~mask] == 0) and np.all(np.isneginf(log_y[~mask]))
    assert np.all(dx[~mask] == 0) and np.all(dlog[~mask] == 0)
    for a in (y, dx, dlog):
        assert not np.isnan(a).any()
    assert not np.isnan(log_y).any()


@pytest.mark.parametrize(
    "mask_shape", [(9,), (1, 9), (4, 1), (4, 9)], ids=["row", "(1, n)", "(B, 1)", "full"]
)
def test_where_broadcasts(impl, mask_shape):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(4, 9))
    mask = rng.random(mask_shape) < 0.5
    mask.flat[0] = True
    if mask_shape == (4, 1):
        mask[:] = [[True], [False], [True], [False]]  # whole rows in or out
    full = np.broadcast_to(mask, x.shape)
    assert_close(impl.softmax(x, where=mask), subset_reference("softmax", x, full), np.float64, 9)
    assert_close(
        impl.log_softmax(x, where=mask), subset_reference("log_softmax", x, full), np.float64, 9
    )


def test_where_with_other_axes(impl):
    rng = np.random.default_rng(13)
    x = rng.normal(size=(5, 3, 4))
    mask = rng.random((5, 3, 4)) < 0.7
    mask[:, 0, 0] = False  # a fully masked column along axis 0
    # along axis 0: the same as along the last axis of the moved arrays
    got = impl.softmax(x, axis=0, where=mask)
    want = impl.softmax(np.moveaxis(x, 0, -1), where=np.moveaxis(mask, 0, -1))
    assert_close(got, np.moveaxis(want, -1, 0), np.float64, 5, sources=2)
    assert np.all(got[:, 0, 0] == 0)
    # over a tuple of axes: the slices are rows of the reshaped arrays
    got = impl.log_softmax(x, axis=(1, 2), where=mask)
    want = subset_reference("log_softmax", x.reshape(5, 12), mask.reshape(5, 12))
    assert_close(got, want.reshape(5, 3, 4), np.float64, 12)


def test_all_true_mask_changes_nothing(impl):
    x = np.random.default_rng(14).normal(size=(3, 8))
    for name in FORWARD:
        f = getattr(impl, name)
        assert_close(f(x, where=True), f(x), np.float64, 8, sources=2)


def test_bad_where(impl):
    x = np.ones((2, 3))
    with pytest.raises(TypeError, match="where must be a boolean mask, got dtype int64"):
        impl.softmax(x, where=np.ones((2, 3), np.int64))
    with pytest.raises(ValueError, match=r"where has shape \(3, 2\).*\(2, 3\)"):
        impl.log_softmax(x, where=np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="where has shape"):
        impl.softmax_vjp(x, x, where=np.ones(2, bool))


# ---------------------------------------------------------------------------
# logsumexp

INF, NAN = math.inf, math.nan

# Hand-derived: lse = m + log1p(sum over all but one maximum of e^(x - m)); SciPy's
# rules where the max is not finite (NaN wins, then +inf; only -inf or nothing: -inf).
LSE_CASES = [
    ([1.0, 2.0, 3.0], 3 + math.log1p(math.exp(-1) + math.exp(-2))),
    ([1000.0, 1000.0], 1000 + math.log(2)),
    ([-1000.0, -1000.0, -1000.0], -1000 + math.log(3)),
    ([0.0], 0.0),
    ([-INF, 0.0], 0.0),
    ([-INF, -INF], -INF),
    ([INF, 1.0], INF),
    ([INF, INF], INF),
    ([INF, -INF], INF),
    ([NAN, 1.0], NAN),
    ([NAN, INF], NAN),
    ([-INF, NAN], NAN),
    ([], -INF),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("row, want", LSE_CASES, ids=[str(r) for r, _ in LSE_CASES])
def test_logsumexp_cases(impl, row, want, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = impl.logsumexp(np.array(row, dtype))
    assert got.shape == () and got.dtype == dtype
    if math.isnan(want) or math.isinf(want):
        np.testing.assert_array_equal(got, want)
    else:
        # |lse^ - lse| <= u |lse| + 2u ln n + delta (log1p(rest) <= ln n has log-softmax's
        # bound; m + it, one rounding): rtol delta, atol 2 delta
        assert_close(got, want, dtype, max(len(row), 1), scale=2.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 5, 16, 33])
def test_logsumexp_agrees_with_oracle(impl, n, dtype):
    rng = np.random.default_rng(20 + n)
    x = rng.normal(scale=4.0, size=(3, n)).astype(dtype)
    # lse = x_k - log s_k for any k, from the 50-digit oracle
    want = [float(row[0]) - symbolic.oracle_log_softmax(row.astype(np.float64))[0] for row in x]
    assert_close(impl.logsumexp(x), want, dtype, n, scale=2.0)  # bound: test_logsumexp_cases
    assert impl.logsumexp(x, keepdims=True).shape == (3, 1)


def test_logsumexp_axes_keepdims_and_where(impl):
    rng = np.random.default_rng(21)
    x = rng.normal(size=(3, 4, 5))
    for axis, shape in [(None, ()), (0, (4, 5)), ((0, 2), (4,)), ((), (3, 4, 5))]:
        got = impl.logsumexp(x, axis=axis)
        assert got.shape == shape
        axes = tuple(range(3)) if axis is None else (axis,) if isinstance(axis, int) else axis
        kept = impl.logsumexp(x, axis=axis, keepdims=True)
        assert kept.shape == tuple(1 if i in axes else n for i, n in enumerate(x.shape))
        # log sum exp = log(sum(exp)) for these small normal logits, in float64
        want = np.log(np.sum(np.exp(x), axis=axis))
        n = math.prod(x.shape[a] for a in axes)
        assert_close(got, want, np.float64, n, scale=2.0, sources=2)
    mask = rng.random((3, 4, 5)) < 0.5
    mask[0, 0] = False
    got = impl.logsumexp(x, where=mask)
    with np.errstate(divide="ignore"):  # log(0) = -inf for [0, 0]
        want = np.log(np.sum(np.exp(x), axis=-1, where=mask))
    assert got[0, 0] == -np.inf
    assert_close(got, want, np.float64, 5, scale=2.0, sources=2)


def test_logsumexp_gradient_is_softmax(impl):
    # Central differences in float64 with h = 1e-6 (gradcheck.numerical_gradient): the
    # truncation error h^2/6 max|d^3 lse| <= h^2/6 (|s(1-s)(1-2s)| <= 0.1) is ~2e-14,
    # the rounding error ~ u |lse| / h <= 1.2e-16 * 10 / 1e-6 = 1.2e-9 for |lse| <= 10:
    # 2e-9 bounds the difference; a wrong gradient (a lost term) is off by > 1e-2.
    rng = np.random.default_rng(22)
    x = rng.normal(scale=2.0, size=7)
    lse = impl.logsumexp(x)
    assert abs(float(lse)) <= 10

    def f(v):
        return float(impl.logsumexp(v))

    np.testing.assert_allclose(numerical_gradient(f, x), impl.softmax(x), rtol=0, atol=2e-9)


def test_top_level_has_logsumexp():
    import importlib

    import softmax_lib

    backend = importlib.import_module(f"softmax_lib.{softmax_lib.BACKEND}")
    # the backend's function behind the front-end dispatch (softmax_lib._frontends)
    unwrapped = getattr(backend.logsumexp, "__wrapped__", backend.logsumexp)
    assert softmax_lib.logsumexp.__wrapped__ is unwrapped
    np.testing.assert_allclose(softmax_lib.logsumexp([0.0, 0.0]), math.log(2), rtol=1e-15)


# ---------------------------------------------------------------------------
# The native module's masked and logsumexp C kernels (native/kernels_masked.c)


def native_isas_with_masked_kernels():
    try:
        from softmax_lib import native
    except ImportError:
        return []
    return [isa for isa in native.available_isas() if isa in ("scalar", "avx2")]


@pytest.mark.parametrize("isa", native_isas_with_masked_kernels())
@pytest.mark.parametrize("dtype", DTYPES)
def test_native_masked_calls_run_in_c(isa, dtype, monkeypatch):
    from softmax_lib import native

    def refuse(*args, **kwargs):
        raise AssertionError("the NumPy fallback ran")

    for name in ("_masked_softmax", "_masked_log_softmax", "_logsumexp"):
        monkeypatch.setattr(vectorized, name, refuse)
    rng = np.random.default_rng(30)
    # lengths around the AVX2 blocks (8 float32, 4 float64 lanes) and their tails
    for n in [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33]:
        x = rng.normal(scale=3.0, size=(5, n)).astype(dtype)
        mask = rng.random((5, n)) < 0.6
        mask[0] = False
        mask[1, 0] = True
        y = native.softmax(x, where=mask, isa=isa)
        log_y = native.log_softmax(x, where=mask, isa=isa)
        lse = native.logsumexp(x, where=mask, isa=isa)
        monkeypatch.undo()  # the references below use the NumPy code
        assert_close(y, subset_reference("softmax", x, mask), dtype, n)
        assert_close(log_y, subset_reference("log_softmax", x, mask), dtype, n)
        assert lse[0] == -np.inf
        want = [
            vectorized.logsumexp(x[r][mask[r]].astype(np.float64)) for r in range(1, 5)
        ]  # bound: test_logsumexp_cases
        assert_close(lse[1:], want, dtype, n, scale=2.0)
        assert_close(native.logsumexp(x, isa=isa), vectorized.logsumexp(x), dtype, n, 2.0, 2)
        for name in ("_masked_softmax", "_masked_log_softmax", "_logsumexp"):
            monkeypatch.setattr(vectorized, name, refuse)


@pytest.mark.parametrize("isa", native_isas_with_masked_kernels())
def test_native_masked_layouts(isa):
    # The mask read in place with a row stride of 0 (broadcast rows), copied when its
    # rows are not contiguous ((B, 1) broadcast, a transposed mask), along axis 0,
    # and a strided input: each as the NumPy code computes it.
    from softmax_lib import native

    rng = np.random.default_rng(31)
    base = rng.normal(size=(12, 20))
    x = base[::2, 1::2]  # strided, (6, 10)
    for mask in [
        rng.random(10) < 0.5,
        rng.random((6, 1)) < 0.5,
        (rng.random((10, 6)) < 0.5).T,
        np.ones((6, 10), bool),
    ]:
        for axis in (-1, 0):
            m = mask if axis == -1 or mask.ndim == 2 else mask[:6, None]
            for name in FORWARD + ["logsumexp"]:
                got = getattr(native, name)(x, axis=axis, where=m, isa=isa)
                want = getattr(vectorized, name)(x, axis=axis, where=m)
                assert np.array_equal(np.isneginf(got), np.isneginf(want)), name
                finite = np.isfinite(want)
                assert_close(got[finite], want[finite], np.float64, 10, scale=2.0, sources=2)


def refuse_vjp_fallback(monkeypatch):
    """Make the masked VJPs' NumPy fallback (``vectorized.<vjp>.__wrapped__``) raise."""

    def refuse(*args, **kwargs):
        raise AssertionError("the NumPy fallback ran")

    refuse.__wrapped__ = refuse
    for name in BACKWARD:
        monkeypatch.setattr(vectorized, name, refuse)


@pytest.mark.parametrize("isa", native_isas_with_masked_kernels())
@pytest.mark.parametrize("dtype", DTYPES)
def test_native_masked_vjps_run_in_c(isa, dtype, monkeypatch):
    # The bounds are ATOL's (test_contract) with g's entries inside the mask; y is
    # taken as exact here (the reference gets the same y), which only tightens them.
    from softmax_lib import native

    rng = np.random.default_rng(32)
    # lengths around the AVX2 blocks (8 float32, 4 float64 lanes) and their tails
    for n in [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33]:
        x = rng.normal(scale=3.0, size=(6, n)).astype(dtype)
        x[5, 0] = 40.0  # a top class with s near 1 (the expm1 path), when it is in the mask
        g = rng.normal(size=(6, n)).astype(dtype)
        mask = rng.random((6, n)) < 0.6
        mask[0] = False  # a fully masked row: zeros
        mask[1, 0] = mask[5, 0] = True
        y = vectorized.softmax(x, where=mask)
        log_y = vectorized.log_softmax(x, where=mask)
        # outside the mask y and dy take no part, NaN and inf included
        out_of_mask = np.where(rng.random((~mask).sum()) < 0.5, np.nan, -np.inf)
        g_bad = g.copy()
        g_bad[~mask] = np.where(rng.random((~mask).sum()) < 0.5, np.nan, np.inf)
        y_bad, log_y_bad = y.copy(), log_y.copy()
        y_bad[~mask] = out_of_mask
        log_y_bad[~mask] = -out_of_mask
        want_dx = subset_reference("softmax_vjp", y, mask, g)
        want_dlog = subset_reference("log_softmax_vjp", log_y, mask, g)
        g_in = np.where(mask, g, 0)
        refuse_vjp_fallback(monkeypatch)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            dx = native.softmax_vjp(y_bad, g_bad, where=mask, isa=isa)
            dlog = native.log_softmax_vjp(log_y_bad, g_bad, where=mask, isa=isa)
            # in place: out=dy and out=y
            dx_dy, dlog_dy, dx_y = g_bad.copy(), g_bad.copy(), y_bad.copy()
            assert native.softmax_vjp(y_bad, dx_dy, where=mask, out=dx_dy, isa=isa) is dx_dy
            assert native.log_softmax_vjp(
                log_y_bad, dlog_dy, where=mask, out=dlog_dy, isa=isa
            ) is (dlog_dy)
            assert native.softmax_vjp(dx_y, g_bad, where=mask, out=dx_y, isa=isa) is dx_y
        monkeypatch.undo()  # the NumPy code again, for the references
        assert_close(dx, want_dx, dtype, n, scale=ATOL["softmax_vjp"](g_in), sources=2)
        assert_close(dlog, want_dlog, dtype, n, scale=ATOL["log_softmax_vjp"](g_in), sources=2)
        assert np.all(dx[~mask] == 0) and np.all(dlog[~mask] == 0)
        assert not np.isnan(dx).any() and not np.isnan(dlog).any()
        for a, b in [(dx_dy, dx), (dlog_dy, dlog), (dx_y, dx)]:
            assert np.array_equal(a, b)  # the same kernel, the same numbers
        # what the NumPy code gives for the same bad entries outside the mask
        with np.errstate(invalid="ignore"):  # NumPy's exp(nan) in the rows it masks after
            np_dx = vectorized.softmax_vjp(y_bad, g_bad, where=mask)
            np_dlog = vectorized.log_softmax_vjp(log_y_bad, g_bad, where=mask)
        assert_close(dx, np_dx, dtype, n, scale=ATOL["softmax_vjp"](g_in), sources=2)
        assert_close(dlog, np_dlog, dtype, n, scale=ATOL["log_softmax_vjp"](g_in), sources=2)


@pytest.mark.parametrize("isa", native_isas_with_masked_kernels())
def test_native_masked_vjp_layouts(isa, monkeypatch):
    # As test_native_masked_layouts for the VJPs, with the fallback refused: a mask
    # broadcast over the rows (row stride 0), (B, 1) and transposed masks (copied),
    # along axis 0, strided inputs. float64 against the NumPy code in float64.
    from softmax_lib import native

    rng = np.random.default_rng(33)
    x = rng.normal(size=(12, 20))[::2, 1::2]  # strided, (6, 10)
    g = rng.normal(size=(6, 20))[:, ::2]
    for mask in [
        rng.random(10) < 0.5,
        rng.random((6, 1)) < 0.5,
        (rng.random((10, 6)) < 0.5).T,
        np.ones((6, 10), bool),
    ]:
        for axis in (-1, 0):
            m = mask if axis == -1 or mask.ndim == 2 else mask[:6, None]
            y = vectorized.softmax(x, axis=axis, where=m)
            log_y = vectorized.log_softmax(x, axis=axis, where=m)
            want = {
                "softmax_vjp": vectorized.softmax_vjp(y, g, axis=axis, where=m),
                "log_softmax_vjp": vectorized.log_softmax_vjp(log_y, g, axis=axis, where=m),
            }
            scale = ATOL["log_softmax_vjp"](np.moveaxis(g, axis, -1))
            refuse_vjp_fallback(monkeypatch)
            got = {
                "softmax_vjp": native.softmax_vjp(y, g, axis=axis, where=m, isa=isa),
                "log_softmax_vjp": native.log_softmax_vjp(log_y, g, axis=axis, where=m, isa=isa),
            }
            monkeypatch.undo()
            for name in BACKWARD:  # ATOL's scales; log_softmax_vjp's is the larger
                assert_close(got[name], want[name], np.float64, 10, scale=scale, sources=2)
                assert np.all(got[name][~np.broadcast_to(m, x.shape)] == 0), name


@pytest.mark.parametrize("isa", native_isas_with_masked_kernels())
@pytest.mark.parametrize("dtype", DTYPES)
def test_native_masked_vjp_entry_points(isa, dtype):
    # The C entry points themselves: out may be y or dy (same stride), a mask row
    # stride of 0 repeats one mask row; NEON, NULL and a shifted overlapping out are
    # refused with their error codes.
    from softmax_lib import native

    ffi, lib = native.ffi, native.lib
    code = {"scalar": lib.SM_ISA_SCALAR, "avx2": lib.SM_ISA_AVX2}[isa]
    ctype = "float *" if dtype == np.float32 else "double *"
    suffix = "f32" if dtype == np.float32 else "f64"
    rng = np.random.default_rng(34)
    rows, n = 4, 19
    mask = (rng.random(n) < 0.6).astype(np.uint8)
    y = vectorized.log_softmax(rng.normal(size=(rows, n)).astype(dtype), where=mask.astype(bool))
    g = rng.normal(size=(rows, n)).astype(dtype)

    def p(a):
        return ffi.cast(ctype, a.ctypes.data)

    w = ffi.cast("uint8_t *", mask.ctypes.data)
    for name in ("softmax_vjp_masked", "log_softmax_vjp_masked"):
        f = getattr(lib, f"sm_{name}_{suffix}")
        want = np.empty_like(y)
        assert f(p(y), n, p(g), n, w, 0, p(want), n, rows, n, code) == code
        y_out, g_out = y.copy(), g.copy()  # out=y, then out=dy
        assert f(p(y_out), n, p(g), n, w, 0, p(y_out), n, rows, n, code) == code
        assert f(p(y), n, p(g_out), n, w, 0, p(g_out), n, rows, n, code) == code
        assert np.array_equal(y_out, want) and np.array_equal(g_out, want)
        assert np.all(want[:, mask == 0] == 0)
        ref = getattr(vectorized, name.replace("_masked", ""))(
            y.astype(np.float64), g.astype(np.float64), where=np.broadcast_to(mask, y.shape) > 0
        )
        scale = ATOL["log_softmax_vjp"](g)  # the larger of the two VJPs' scales
        assert_close(want, ref, dtype, n, scale=scale)
        out = np.empty_like(y)
        assert f(p(y), n, p(g), n, w, 0, p(out), n, rows, n, lib.SM_ISA_NEON) == (
            lib.SM_ERR_ISA_UNAVAILABLE
        )
        assert f(p(y), n, ffi.NULL, n, w, 0, p(out), n, rows, n, code) == lib.SM_ERR_NULL
        shifted = g.copy()
        assert (
            f(
                p(y),
                n,
                p(shifted),
                n,
                w,
                0,
                ffi.cast(ctype, shifted.ctypes.data + 8),
                n,
                rows,
                n - 2,
                code,
            )
            == lib.SM_ERR_LAYOUT
        )
