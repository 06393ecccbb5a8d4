"""Dask arrays: lazy results, computed blockwise by the native kernels, on a cluster too.

Each block holds whole slices along the softmax axis (the front end rechunks a split
axis), and each block is computed by the same function as the whole NumPy array:
the same kernels on the same rows. So the results are compared with the NumPy
results at the contract's bound of the two (conftest ``tolerance``: rtol = atol =
2 delta for the forward functions, which for float64 rows of 300 is 2 * 3.9e-14 =
7.8e-14, below the issue's 1e-12), not at 0: a row's kernel may be chosen by its
position in the block (e.g. the multi-threaded split at AUTO_THREADS_MIN_SIZE).
"""

import os
import sys

import numpy as np
import pytest
from conftest import tolerance

import softmax_lib
from softmax_lib import vectorized

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

FORWARD = ("softmax", "log_softmax")
BACKWARD = ("softmax_vjp", "log_softmax_vjp")


def inputs(shape, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = (4 * rng.standard_normal(shape)).astype(dtype)
    y = softmax_lib.softmax(x)
    log_y = softmax_lib.log_softmax(x)
    return x, y, log_y, rng.standard_normal(shape).astype(dtype)


def vjp_atol(name, dtype, dy):
    """Twice the contract's VJP bound (test_contract): 5 delta max|g|, 2 delta sum|g|."""
    delta = tolerance(dtype, dy.shape[-1])
    if name == "softmax_vjp":
        return 2 * 5 * delta * float(np.max(np.abs(dy)))
    return 2 * 2 * delta * float(np.max(np.sum(np.abs(dy), axis=-1)))


def all_four(module, x, y, log_y, dy, **kwargs):
    return {
        "softmax": module.softmax(x, **kwargs),
        "log_softmax": module.log_softmax(x, **kwargs),
        "softmax_vjp": module.softmax_vjp(y, dy, **kwargs),
        "log_softmax_vjp": module.log_softmax_vjp(log_y, dy, **kwargs),
    }


def check(got, want, dtype, n, dy):
    for name in FORWARD + BACKWARD:
        assert isinstance(got[name], da.Array), name
        assert got[name].dtype == want[name].dtype, name  # the metadata, before computing
        value = got[name].compute()
        assert type(value) is np.ndarray and value.dtype == want[name].dtype, name
        if name in FORWARD:
            tol = 2 * tolerance(dtype, n)
            np.testing.assert_allclose(value, want[name], rtol=tol, atol=tol, err_msg=name)
        else:
            np.testing.assert_allclose(
                value, want[name], rtol=0, atol=vjp_atol(name, dtype, dy), err_msg=name
            )


@pytest.mark.parametrize("module", [softmax_lib, vectorized], ids=["top", "vectorized"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_softmax_axis_is_rechunked_and_equals_numpy(module, dtype):
    x, y, log_y, dy = inputs((400, 60), dtype)
    chunks = (100, 25)  # the softmax axis in three pieces
    lazy = [da.from_array(a, chunks=chunks) for a in (x, y, log_y, dy)]
    got = all_four(module, *lazy)
    for name in FORWARD:
        assert got[name].chunks[1] == (60,)  # made whole
        assert got[name].chunks[0] == (100,) * 4  # the other axis kept
    check(got, all_four(vectorized, x, y, log_y, dy), dtype, 60, dy)


def test_other_axis_and_a_numpy_gradient_are_chunked_alike():
    x, _, _, dy = inputs((30, 8, 5))
    y0 = softmax_lib.softmax(x, axis=0)
    lazy_y = da.from_array(y0, chunks=(7, 3, 5))
    got = softmax_lib.softmax_vjp(lazy_y, dy, axis=0)  # dy stays NumPy
    assert isinstance(got, da.Array) and got.chunks[0] == (30,)
    want = vectorized.softmax_vjp(y0, dy, axis=0)
    atol = vjp_atol("softmax_vjp", np.float64, np.moveaxis(dy, 0, -1))
    np.testing.assert_allclose(got.compute(), want, rtol=0, atol=atol)


def test_the_graph_calls_the_native_kernels_per_block():
    x, *_ = inputs((40, 6))
    lazy = softmax_lib.softmax(da.from_array(x, chunks=(10, 6)))
    assert lazy.npartitions == 4  # unsplit axis: no rechunk, one task per block
    block = lazy.blocks[1].compute()
    tol = tolerance(np.float64, 6)  # both within delta of the exact values: 2 delta
    want = softmax_lib._fastest.softmax(x[10:20])
    np.testing.assert_allclose(block, want, rtol=2 * tol, atol=2 * tol)


def test_bad_input_is_refused_at_once_with_the_numpy_errors():
    x = da.ones((4, 3), chunks=2)
    with pytest.raises(ValueError, match="axis=2"):
        softmax_lib.softmax(x, axis=2)
    with pytest.raises(TypeError, match="real numbers"):
        softmax_lib.softmax(da.ones((2, 2), dtype=complex))
    with pytest.raises(TypeError, match="out= is not supported"):
        softmax_lib.softmax(x, -1, np.empty((4, 3)))
    with pytest.raises(ValueError, match=r"same shape, got \(4, 3\) and \(3, 4\)"):
        softmax_lib.softmax_vjp(x, da.ones((3, 4)))


def test_integers_and_float16_get_the_numpy_result_dtype():
    for dtype in (np.int32, np.float16):
        x = np.arange(12, dtype=dtype).reshape(3, 4)
        want = vectorized.softmax(x)
        got = softmax_lib.softmax(da.from_array(x, chunks=(1, 2)))
        assert got.dtype == want.dtype
        tol = 2 * tolerance(want.dtype if want.dtype != np.float16 else np.float32, 4)
        np.testing.assert_allclose(got.compute(), want, rtol=tol, atol=tol)


# ------------------------------------------------------------- dask.distributed


@pytest.fixture(scope="module")
def client():
    """Two worker processes on 127.0.0.1: the blocks are pickled to other processes,
    which import softmax_lib themselves (installed editable)."""
    cluster = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        # No dashboard; its HTTP server (health routes) starts anyway, at 8787 when the
        # address is None: taken by any other cluster on the machine, that is a warning
        # (an error here) and a leaked socket. Port 0: a free one.
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False},
        timeout="60s",
    )
    with cluster, distributed.Client(cluster, timeout="60s") as client:
        yield client


def test_on_a_local_cluster_of_two_processes(client):
    # The case: 4000 x 300, the softmax axis split; NumPy's to 1e-12 (float64:
    # the bound asserted is 2 delta(300) = 7.8e-14, rtol and atol). The data are made
    # on the workers (a seeded generator), the whole chain is lazy and computed there.
    rng = da.random.default_rng(0)
    x = 4 * rng.standard_normal((4000, 300), chunks=(1000, 100))
    dy = rng.standard_normal((4000, 300), chunks=(1000, 100))
    y, log_y = softmax_lib.softmax(x), softmax_lib.log_softmax(x)
    lazy = [
        x,
        dy,
        y,
        log_y,
        softmax_lib.softmax_vjp(y, dy),
        softmax_lib.log_softmax_vjp(log_y, dy),
    ]
    assert all(isinstance(a, da.Array) for a in lazy)
    x, dy, y, log_y, vjp, log_vjp = client.gather(client.compute(lazy))
    tol = 2 * tolerance(np.float64, 300)
    assert tol < 1e-12
    np.testing.assert_allclose(y, vectorized.softmax(x), rtol=tol, atol=tol)
    np.testing.assert_allclose(log_y, vectorized.log_softmax(x), rtol=tol, atol=tol)
    want = vectorized.softmax_vjp(y, dy)
    np.testing.assert_allclose(vjp, want, rtol=0, atol=vjp_atol("softmax_vjp", np.float64, dy))
    want = vectorized.log_softmax_vjp(log_y, dy)
    atol = vjp_atol("log_softmax_vjp", np.float64, dy)
    np.testing.assert_allclose(log_vjp, want, rtol=0, atol=atol)
    # the workers are two other processes, and they imported softmax_lib to run the blocks
    pids = client.run(os.getpid)
    assert len(pids) == 2 and os.getpid() not in pids.values()
    loaded = client.run(lambda: "softmax_lib.dask_blockwise" in sys.modules)
    assert all(loaded.values())


# ------------------------------------------------- the contract's other arguments
# axis=None, tuples of axes, 0-d input and where= masks (issue 11 items 1-2) are the
# NumPy path's to define: the dask front end must give what it gives (every block
# holding whole reductions), or raise the same exception type at once.

MASK = np.array(
    [[1, 1, 0, 1, 0, 1], [0, 0, 0, 0, 0, 0], [1, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], bool
)
EXTENSIONS = {
    "axis=None": ((3, 4), {"axis": None}, 12),
    "axis=(0, 2)": ((3, 4, 5), {"axis": (0, 2)}, 15),
    "0-d": ((), {}, 1),
    "where": ((4, 6), {"where": MASK}, 6),  # row 1 fully masked
    "where, lazy": ((4, 6), {"where": da.from_array(MASK, chunks=(2, 3))}, 6),
}


def outcome(f):
    """(result, None) or (None, the exception's type); a dask result is computed."""
    try:
        result = f()
        return (result.compute() if isinstance(result, da.Array) else result), None
    except Exception as exc:
        return None, type(exc)


@pytest.mark.parametrize("case", list(EXTENSIONS))
@pytest.mark.parametrize("name", FORWARD + BACKWARD)
def test_other_arguments_as_the_numpy_path(case, name):
    shape, kwargs, n = EXTENSIONS[case]
    rng = np.random.default_rng(1)
    x, dy = 4 * rng.standard_normal(shape), rng.standard_normal(shape)
    np_kwargs = {k: np.asarray(v) if k == "where" else v for k, v in kwargs.items()}
    forward = vectorized.log_softmax if name.startswith("log") else vectorized.softmax
    y, _ = outcome(lambda: forward(x, **np_kwargs))
    if y is None:
        y = np.zeros(shape)
    args = (x,) if name in FORWARD else (y, dy)
    want, error = outcome(lambda: getattr(vectorized, name)(*args, **np_kwargs))
    chunks = tuple(max(1, s // 2) for s in shape)
    lazy = [da.from_array(a, chunks=chunks) for a in args]
    got, got_error = outcome(lambda: getattr(softmax_lib, name)(*lazy, **kwargs))
    assert got_error is error, (got_error, error)
    if error is None:
        assert got.shape == want.shape and got.dtype == want.dtype
        if name in FORWARD:
            tol = 2 * tolerance(np.float64, n)
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        else:  # the VJPs' bounds, twice; dy has at most n entries per reduction
            g = float(np.max(np.abs(dy)))
            atol = 2 * (5 * g if name == "softmax_vjp" else 2 * n * g) * tolerance(np.float64, n)
            np.testing.assert_allclose(got, want, rtol=0, atol=atol)


# ------------------------------------------------------------------- logsumexp
# Each block reduces whole slices with softmax_lib.logsumexp; compared with
# vectorized.logsumexp at twice the bound of one result: |error| <= u |lse| + delta(n)
# (lse = m + log1p(rest): 1 + rest is conftest's S, relative error <= u (n + ln n + 8),
# log1p adds 8u ln n, the final sum rounds by u |lse|; ~ u (|m| + n)). So
# rtol = atol = 2 delta(n), delta(n) >= 20u covering the u |lse| terms.

LSE_CASES = {
    "axis=-1": ({"axis": -1}, 5),
    "axis=0, keepdims": ({"axis": 0, "keepdims": True}, 4),
    "axis=None": ({"axis": None}, 120),
    "axis=(0, 2)": ({"axis": (0, 2)}, 20),
    "axis=(2, 0), keepdims": ({"axis": (2, 0), "keepdims": True}, 20),
    "where": ({"axis": 1, "where": np.arange(6)[:, None] % 3 != 1}, 6),
    "where, lazy, keepdims": ({"where": "lazy", "keepdims": True}, 5),
}


@pytest.mark.parametrize("case", list(LSE_CASES))
def test_logsumexp_is_lazy_and_equals_numpy(case):
    kwargs, n = LSE_CASES[case]
    rng = np.random.default_rng(3)
    x = 4 * rng.standard_normal((4, 6, 5)) + 300  # |m| ~ 300: the u |lse| term counts
    np_kwargs = dict(kwargs)
    if isinstance(kwargs.get("where"), str):
        mask = rng.random(x.shape) < 0.7
        mask[0, 0] = False  # one slice with no entry: -inf
        np_kwargs["where"] = mask
        kwargs = dict(kwargs, where=da.from_array(mask, chunks=(2, 3, 2)))
    want = vectorized.logsumexp(x, **np_kwargs)
    lazy = softmax_lib.logsumexp(da.from_array(x, chunks=(2, 3, 2)), **kwargs)
    assert isinstance(lazy, da.Array)
    assert lazy.shape == want.shape and lazy.dtype == want.dtype
    got = lazy.compute(scheduler="threads")
    assert got.shape == want.shape and got.dtype == want.dtype
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite], want[~finite])
    tol = 2 * tolerance(np.float64, n)
    np.testing.assert_allclose(got[finite], want[finite], rtol=tol, atol=tol)
    # and the vectorized front end gives the same lazy result
    again = vectorized.logsumexp(da.from_array(x, chunks=(2, 3, 2)), **kwargs)
    assert isinstance(again, da.Array)
    np.testing.assert_array_equal(again.compute(scheduler="threads"), got)


def test_logsumexp_non_finite_rows_dtypes_and_edge_shapes_as_numpy():
    inf, nan = np.inf, np.nan
    x = np.array([[0.0, -inf, 1.0], [nan, 1.0, 2.0], [-inf, -inf, -inf], [inf, 1.0, 2.0]])
    got = softmax_lib.logsumexp(da.from_array(x, chunks=(1, 1))).compute(scheduler="threads")
    want = vectorized.logsumexp(x)
    np.testing.assert_array_equal(got[1:], want[1:])  # NaN, -inf, +inf: exact
    assert np.isnan(want[1]) and want[2] == -inf and want[3] == inf
    tol = 2 * tolerance(np.float64, 3)
    np.testing.assert_allclose(got[0], want[0], rtol=tol, atol=tol)
    for dtype in (np.int32, np.float16, np.float32):
        x = np.arange(12, dtype=dtype).reshape(3, 4)
        lazy = softmax_lib.logsumexp(da.from_array(x, chunks=(1, 2)), axis=0)
        want = vectorized.logsumexp(x, axis=0)
        assert lazy.dtype == want.dtype
        got = lazy.compute(scheduler="threads")
        assert got.dtype == want.dtype
        tol = 2 * tolerance(want.dtype if want.dtype != np.float16 else np.float32, 3)
        if want.dtype == np.float16:  # plus each result's rounding to float16: 2 u16
            tol += float(np.finfo(np.float16).eps)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    for shape, kwargs in (((), {}), ((3, 0), {"axis": 1}), ((2, 3), {"axis": None})):
        x = np.ones(shape)
        got = softmax_lib.logsumexp(da.from_array(x), **kwargs).compute(scheduler="threads")
        want = vectorized.logsumexp(x, **kwargs)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=2 * tolerance(np.float64, max(1, x.size)))


def test_logsumexp_bad_input_is_refused_at_once_with_the_numpy_errors():
    x = da.ones((4, 3), chunks=2)
    for bad in ({"axis": 2}, {"axis": (0, 0)}, {"nonsense": 1}):
        try:
            vectorized.logsumexp(np.ones((4, 3)), **bad)
        except Exception as exc:
            error = type(exc)
        with pytest.raises(error):
            softmax_lib.logsumexp(x, **bad)  # no compute: raised while building the graph
    with pytest.raises(TypeError, match="real numbers"):
        softmax_lib.logsumexp(da.ones((2, 2), dtype=complex))


def test_logsumexp_on_the_local_cluster(client):
    rng = da.random.default_rng(1)
    x = 4 * rng.standard_normal((400, 300), chunks=(100, 100))
    lse = softmax_lib.logsumexp(x)
    x, lse = client.gather(client.compute([x, lse]))
    tol = 2 * tolerance(np.float64, 300)
    np.testing.assert_allclose(lse, vectorized.logsumexp(x), rtol=tol, atol=tol)
