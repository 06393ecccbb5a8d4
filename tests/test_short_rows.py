"""Rows shorter than one vector (issue 10, item 5): their own AVX2 kernels (one
masked load, plain stores), the scalar kernels for 1 or 2 elements. Values are
checked by test_native.py (every length 0-65, hypothesis) on both ISAs; here the
paths that only short rows take. No timings: those are in the commit notes."""

import numpy as np
import pytest

from softmax_lib import vectorized

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


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp"])
def test_short_rows_leave_the_neighbours_alone(isa, name, dtype):
    # Plain 4-, 2- and 1-element stores must write exactly n elements: rows of
    # every short length inside a buffer whose other elements are sentinels.
    rng = np.random.default_rng(11)
    for n in range(1, 9):
        buf = np.full((6, n + 3), 123.0, dtype)
        out = buf[:, 1 : n + 1]  # rows n + 3 apart, a sentinel before and 2 after
        x = rng.normal(scale=3.0, size=(6, n)).astype(dtype)
        if name.endswith("vjp"):
            fwd = vectorized.softmax if name == "softmax_vjp" else vectorized.log_softmax
            args = (fwd(x), rng.normal(size=x.shape).astype(dtype))
        else:
            args = (x,)
        getattr(native, name)(*args, out=out, isa=isa)
        np.testing.assert_array_equal(out, getattr(native, name)(*args, isa=isa))
        assert (buf[:, 0] == 123).all() and (buf[:, n + 1 :] == 123).all()


@pytest.mark.parametrize("isa", ISAS)
def test_short_rows_with_special_values(isa):
    for dtype in (np.float32, np.float64):
        x = np.array(
            [
                [0.0, -np.inf, 1.0],
                [-np.inf] * 3,
                [np.nan, 1.0, 2.0],
                [np.inf, 0.0, 1.0],
                [5.0, 5.0, -1e30],
                [1e30, -1e30, 0.0],
            ],
            dtype,
        )
        with np.errstate(invalid="ignore"):
            want = vectorized.softmax(x)
            want_log = vectorized.log_softmax(x)
        np.testing.assert_array_equal(np.isnan(native.softmax(x, isa=isa)), np.isnan(want))
        got_log = native.log_softmax(x, isa=isa)
        np.testing.assert_array_equal(np.isnan(got_log), np.isnan(want_log))
        finite = np.isfinite(want_log)
        np.testing.assert_array_equal(np.isinf(got_log), np.isinf(want_log))
        # a few roundings of values up to 1e30 in size: 4 ulp of the row's scale
        np.testing.assert_allclose(got_log[finite], want_log[finite], rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("isa", ISAS)
def test_short_rows_through_the_streaming_vjp(isa):
    # Past sm_stream_bytes() of output the AVX2 VJPs stream; short rows go to
    # the short kernels from there too: the results of small batches, row for row.
    n = 5
    rows = native.lib.sm_stream_bytes() // (4 * n) + 1
    rng = np.random.default_rng(12)
    x = rng.normal(size=(rows, n)).astype(np.float32)
    y, dy = vectorized.log_softmax(x), rng.normal(size=x.shape).astype(np.float32)
    got = native.log_softmax_vjp(y, dy, isa=isa)
    for start in (0, 1, rows // 2, rows - 3):
        np.testing.assert_array_equal(
            got[start : start + 3],
            native.log_softmax_vjp(y[start : start + 3], dy[start : start + 3], isa=isa),
        )
