"""Array-API arrays keep their type: array_api_strict (always), torch (when installed).

``array_api_strict`` is a real non-NumPy array type backed by NumPy, in the test
extra, so the namespace-generic path (softmax_lib.array_api) runs in every CI job;
torch is optional (the ``compare`` extra) and its tests skip without it.

Bounds: each result is within the contract's bound of the exact values (conftest
``tolerance``, delta = u (n + 9 ln n + 20), rtol = atol = delta for the forward
functions), and so is the NumPy result it is compared with: ``sources=2``. The VJPs
carry the contract's bounds too (test_contract: 5 delta max|g| for softmax's, 2 delta
sum|g| for log-softmax's), again twice.
"""

import numpy as np
import pytest
from conftest import tolerance

import softmax_lib
from softmax_lib import vectorized

xp = pytest.importorskip("array_api_strict")
pytest.importorskip("array_api_compat")
from softmax_lib import array_api  # noqa: E402  (needs array_api_compat at call time only)

FORWARD = ("softmax", "log_softmax")
BACKWARD = ("softmax_vjp", "log_softmax_vjp")
# The three entry points that must keep an array-API array's type.
MODULES = {"top": softmax_lib, "vectorized": vectorized, "array_api": array_api}


def inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (4 * rng.standard_normal(shape)).astype(dtype)
    return x, rng.standard_normal(shape).astype(dtype)


def bounds(name, dtype, n, dy):
    """(rtol, atol) between two results that each meet the contract's bound."""
    delta = tolerance(dtype, n)
    if name in FORWARD:
        return 2 * delta, 2 * delta
    scale = np.max(np.abs(dy)) if name == "softmax_vjp" else np.max(np.sum(np.abs(dy), -1))
    factor = 5 if name == "softmax_vjp" else 2
    return 0.0, 2 * factor * delta * float(scale)


def call(module, name, x, dy, y, **kwargs):
    f = getattr(module, name)
    return f(x, **kwargs) if name in FORWARD else f(y, dy, **kwargs)


@pytest.mark.parametrize("where", list(MODULES))
@pytest.mark.parametrize("name", FORWARD + BACKWARD)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [-1, 0])
def test_strict_arrays_come_back_as_strict_arrays_equal_to_numpy(where, name, dtype, axis):
    x, dy = inputs((7, 33), dtype)
    y = (vectorized.log_softmax if name.startswith("log") else vectorized.softmax)(x, axis=axis)
    want = call(vectorized, name, x, dy, y, axis=axis)
    got = call(MODULES[where], name, xp.asarray(x), xp.asarray(dy), xp.asarray(y), axis=axis)
    assert type(got) is type(xp.asarray(x))
    assert got.dtype == xp.asarray(x).dtype
    assert got.device == xp.asarray(x).device
    rtol, atol = bounds(name, dtype, x.shape[axis], np.moveaxis(dy, axis, -1))
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


def test_the_top_class_of_log_softmax_keeps_log1p_accuracy():
    # log(1 + e^-40) = 4.2e-18 rounds away in log(sum); log1p(rest) keeps it (to a few ulp).
    got = array_api.log_softmax(xp.asarray([40.0, 0.0]))
    want = -np.log1p(np.exp(-40.0))
    assert abs(float(got[0]) - want) <= 4 * np.finfo(np.float64).eps * abs(want)


def test_non_finite_rows_as_numpy():
    x = np.array([[0.0, -np.inf, 1.0], [np.nan, 1.0, 2.0], [-np.inf, -np.inf, -np.inf]])
    for name in FORWARD:
        got = np.asarray(getattr(array_api, name)(xp.asarray(x)))
        np.testing.assert_array_equal(got, getattr(vectorized, name)(x))


def test_integers_and_bool_get_the_numpy_result_dtype():
    # (the standard has no float16: that is tested with torch below)
    for dtype in (xp.int32, xp.bool):
        x = xp.asarray([[1, 0, 1]], dtype=dtype)
        np_x = np.asarray(x)
        for name in FORWARD:
            want = getattr(vectorized, name)(np_x)
            got = getattr(softmax_lib, name)(x)
            assert isinstance(got, type(x))
            assert np.asarray(got).dtype == want.dtype, (dtype, name)
            tol = 2 * tolerance(want.dtype, 3)  # both within delta of the exact values
            np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=tol, atol=tol)


def test_bad_input_raises_the_numpy_paths_errors():
    x = xp.asarray([[1.0, 2.0]])
    with pytest.raises(type(_error(lambda: vectorized.softmax(np.ones((1, 2)), axis=2)))):
        softmax_lib.softmax(x, axis=2)
    with pytest.raises(TypeError, match="complex|real"):
        softmax_lib.softmax(xp.asarray([1j, 2.0]))
    with pytest.raises(TypeError, match="unexpected keyword|isa"):
        vectorized.softmax(x, isa="avx2")
    with pytest.raises(ValueError, match=r"same shape, got \(1, 2\) and \(2, 1\)"):
        softmax_lib.softmax_vjp(x, xp.asarray([[1.0], [2.0]]))
    with pytest.raises(TypeError, match="one array library"):
        array_api.softmax_vjp(x, np.ones((1, 2)))


def _error(f):
    try:
        f()
    except Exception as exc:  # the exception the NumPy path raises
        return exc
    raise AssertionError("the NumPy path accepted it")


def test_out_is_written_and_returned():
    x, _ = inputs((3, 5), np.float64)
    out = xp.zeros((3, 5), dtype=xp.float64)
    got = softmax_lib.softmax(xp.asarray(x), out=out)
    assert got is out
    np.testing.assert_allclose(np.asarray(out), vectorized.softmax(x), rtol=2e-15, atol=2e-15)
    with pytest.raises(ValueError, match="out has shape"):
        softmax_lib.softmax(xp.asarray(x), out=xp.zeros((5, 3), dtype=xp.float64))


def test_numpy_lists_and_scalars_keep_the_numpy_path():
    x, _ = inputs((2, 4), np.float64)
    assert type(softmax_lib.softmax(x)) is np.ndarray
    assert type(softmax_lib.softmax(x.tolist())) is np.ndarray
    assert type(vectorized.softmax(np.float64(1.0) * np.ones(3))) is np.ndarray
    masked = np.ma.masked_array(x)  # a subclass: the NumPy path as before
    assert isinstance(softmax_lib.softmax(masked), np.ndarray)


# --------------------------------------------------------------------------- torch


def test_torch_tensors_come_back_as_tensors():
    torch = pytest.importorskip("torch")
    for dtype, np_dtype in ((torch.float32, np.float32), (torch.float64, np.float64)):
        x, dy = inputs((5, 40), np_dtype)
        for name in FORWARD + BACKWARD:
            y = (vectorized.log_softmax if name.startswith("log") else vectorized.softmax)(x)
            want = call(vectorized, name, x, dy, y)
            got = call(
                softmax_lib, name, torch.from_numpy(x), torch.from_numpy(dy), torch.from_numpy(y)
            )
            assert isinstance(got, torch.Tensor) and got.dtype == dtype
            assert got.device == torch.from_numpy(x).device
            rtol, atol = bounds(name, np_dtype, x.shape[-1], dy)
            np.testing.assert_allclose(got.numpy(), want, rtol=rtol, atol=atol)
    half = softmax_lib.softmax(torch.tensor([1.0, 2.0], dtype=torch.float16))
    assert isinstance(half, torch.Tensor)
    assert (
        np.dtype(str(half.dtype).removeprefix("torch."))
        == vectorized.softmax(np.array([1.0, 2.0], np.float16)).dtype
    )


# ------------------------------------------------- the contract's other arguments
# axis=None, tuples of axes, 0-d input and where= masks (issue 11 items 1-2) are the
# NumPy path's to define: the front end must give what it gives, or raise the same
# exception type when it refuses them.

MASK = np.array(
    [[1, 1, 0, 1, 0, 1], [0, 0, 0, 0, 0, 0], [1, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], bool
)
EXTENSIONS = {
    "axis=None": ((3, 4), {"axis": None}, 12),
    "axis=(0, 2)": ((3, 4, 5), {"axis": (0, 2)}, 15),
    "0-d": ((), {}, 1),
    "where": ((4, 6), {"where": MASK}, 6),  # row 1 fully masked
}


def outcome(f):
    """(result, None) or (None, the exception's type)."""
    try:
        return f(), None
    except Exception as exc:
        return None, type(exc)


def compare(got, want, name, dtype, n, dy):
    if name in FORWARD:
        tol = 2 * tolerance(dtype, n)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=name)
    else:  # the VJPs' bounds, twice; dy has at most n entries per reduction
        g = float(np.max(np.abs(dy)))
        atol = 2 * (5 * g if name == "softmax_vjp" else 2 * n * g) * tolerance(dtype, n)
        np.testing.assert_allclose(got, want, rtol=0, atol=atol, err_msg=name)


@pytest.mark.parametrize("case", list(EXTENSIONS))
@pytest.mark.parametrize("name", FORWARD + BACKWARD)
def test_other_arguments_as_the_numpy_path(case, name):
    shape, kwargs, n = EXTENSIONS[case]
    x, dy = inputs(shape, np.float64)
    forward = vectorized.log_softmax if name.startswith("log") else vectorized.softmax
    y, y_error = outcome(lambda: forward(x, **kwargs))
    if y is None:
        y = np.zeros(shape)
    want, error = outcome(lambda: call(vectorized, name, x, dy, y, **kwargs))
    xp_kwargs = {k: xp.asarray(v) if k == "where" else v for k, v in kwargs.items()}
    got, got_error = outcome(
        lambda: call(softmax_lib, name, xp.asarray(x), xp.asarray(dy), xp.asarray(y), **xp_kwargs)
    )
    assert got_error is error, (got_error, error)
    if error is None:
        assert type(got) is type(xp.asarray(x)) and got.shape == want.shape
        compare(np.asarray(got), want, name, np.float64, n, dy)


# ------------------------------------------------------------------- logsumexp
# Bound: lse = m + log1p(rest), rest = sum of e^{x_j - m} over all but one maximum.
# 1 + rest is the S of conftest's tolerance, relative error <= u (n + ln n + 8); log1p
# turns that into the same absolute error, plus 8u |ln S| <= 8u ln n of its own; the
# final m + log1p(rest) rounds by u |lse|. So |error| <= u |lse| + delta(n), delta(n)
# = u (n + 9 ln n + 20) (conftest), i.e. ~ u (|m| + n) as |lse| <= |m| + ln n. Two
# results each within it differ by <= 2 u |lse| + 2 delta <= 2 delta (|lse| + 1):
# rtol = atol = 2 delta(n) (delta >= 20 u covers the rounding of lse in `want`).

LSE_CASES = {
    "axis=-1": {"axis": -1},
    "axis=0, keepdims": {"axis": 0, "keepdims": True},
    "axis=None": {"axis": None},
    "axis=(0, 2)": {"axis": (0, 2)},
    "axis=(2, 0), keepdims": {"axis": (2, 0), "keepdims": True},
}


def reduced(shape, axis):
    axes = range(len(shape)) if axis is None else np.atleast_1d(axis)
    return int(np.prod([shape[a] for a in axes]))


@pytest.mark.parametrize("module", list(MODULES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(LSE_CASES))
def test_logsumexp_strict_arrays_agree_with_numpy(module, dtype, case):
    kwargs = LSE_CASES[case]
    x, _ = inputs((5, 7, 9), dtype)
    x += 300  # |m| ~ 300: the u |lse| term of the bound counts
    want = vectorized.logsumexp(x, **kwargs)
    got = MODULES[module].logsumexp(xp.asarray(x), **kwargs)
    assert type(got) is type(xp.asarray(x))
    assert got.dtype == xp.asarray(x).dtype and got.device == xp.asarray(x).device
    assert got.shape == want.shape
    tol = 2 * tolerance(dtype, reduced(x.shape, kwargs["axis"]))
    np.testing.assert_allclose(np.asarray(got), want, rtol=tol, atol=tol)


def test_logsumexp_non_finite_rows_exact_as_numpy():
    inf, nan = np.inf, np.nan
    x = np.array(
        [[0.0, -inf, 1.0], [nan, 1.0, 2.0], [-inf, -inf, -inf], [inf, 1.0, 2.0], [inf, nan, -inf]]
        + [[inf, inf, 0.0], [2.0, 2.0, 2.0]]
    )
    mask = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1], [0, 0, 0], [1, 1, 0]])
    mask = mask.astype(bool)  # rows: NaN masked out, +inf masked out, one row fully masked
    # (NaN, -inf, +inf) rows: the cases are there, so the exact comparison means something
    for kwargs, counts in (({}, (2, 1, 2)), ({"where": mask}, (0, 2, 1))):
        want = vectorized.logsumexp(x, **kwargs)
        assert (np.isnan(want).sum(), (want == -inf).sum(), (want == inf).sum()) == counts
        strict = {k: xp.asarray(v) for k, v in kwargs.items()}
        got = np.asarray(array_api.logsumexp(xp.asarray(x), **strict))
        finite = np.isfinite(want)
        np.testing.assert_array_equal(got[~finite], want[~finite])  # NaN, +-inf: exact
        tol = 2 * tolerance(np.float64, 3)
        np.testing.assert_allclose(got[finite], want[finite], rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "shape, kwargs",
    [((), {}), ((), {"keepdims": True}), ((3, 0), {"axis": 1}), ((0, 3), {"axis": None})]
    + [((4, 6), {"where": MASK}), ((4, 6), {"where": MASK[0], "keepdims": True})],
)
def test_logsumexp_edge_shapes_as_numpy(shape, kwargs):
    x = 4 * np.random.default_rng(2).standard_normal(shape)
    want = vectorized.logsumexp(x, **kwargs)
    strict = {k: xp.asarray(v) if k == "where" else v for k, v in kwargs.items()}
    got = array_api.logsumexp(xp.asarray(x), **strict)
    assert got.shape == want.shape and got.dtype == xp.float64
    tol = 2 * tolerance(np.float64, max(1, x.size))
    np.testing.assert_allclose(np.asarray(got), want, rtol=tol, atol=tol)


def test_logsumexp_integers_and_bad_input_as_numpy():
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    got = softmax_lib.logsumexp(xp.asarray(x))
    assert got.dtype == xp.float64  # the NumPy path's result dtype for integers
    tol = 2 * tolerance(np.float64, 3)
    np.testing.assert_allclose(np.asarray(got), vectorized.logsumexp(x), rtol=tol, atol=tol)
    one = xp.ones((1, 2))
    for bad in ({"axis": 2}, {"axis": (0, 0)}, {"isa": "scalar"}):
        error = _error(lambda bad=bad: vectorized.logsumexp(np.ones((1, 2)), **bad))
        with pytest.raises(type(error)):
            softmax_lib.logsumexp(one, **bad)
    with pytest.raises(TypeError, match="complex|real"):
        array_api.logsumexp(xp.ones((2,), dtype=xp.complex128))


def test_logsumexp_torch_tensors_come_back_as_tensors():
    torch = pytest.importorskip("torch")
    x, _ = inputs((5, 40), np.float64)
    got = softmax_lib.logsumexp(torch.from_numpy(x), axis=(0, 1), keepdims=True)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64 and got.shape == (1, 1)
    tol = 2 * tolerance(np.float64, 200)
    want = vectorized.logsumexp(x, axis=(0, 1), keepdims=True)
    np.testing.assert_allclose(got.numpy(), want, rtol=tol, atol=tol)
    half = softmax_lib.logsumexp(torch.tensor([1.0, 2.0], dtype=torch.float16))
    assert isinstance(half, torch.Tensor) and half.dtype == torch.float16
