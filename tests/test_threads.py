"""Rows split over threads (issue 10, item 6): identical results for any thread
count, on every ISA, masked (``where=``) and ``logsumexp`` too; ``threads=`` and
``SOFTMAX_LIB_NUM_THREADS`` checked. No timings here (the commit notes have them)."""

import numpy as np
import pytest
from conftest import fresh_native_import

from softmax_lib import vectorized

native = pytest.importorskip("softmax_lib.native", reason="the C library was not built")
from softmax_lib._native import ffi, lib  # noqa: E402  (after the importorskip)

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
NAMES = ("softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp")


def arguments(name, x, rng):
    if name in ("softmax", "log_softmax"):
        return (x,)
    fwd = vectorized.softmax if name == "softmax_vjp" else vectorized.log_softmax
    return fwd(x), rng.normal(size=x.shape).astype(x.dtype)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "shape, axis",
    [
        ((37, 1001), -1),
        ((5, 3), -1),
        ((2, 9), -1),
        # along an inner axis (C-contiguous: the kernels that walk down the axis):
        # one slice whose columns are cut into narrower blocks for more threads,
        # several slices, n past a float32 flush block, inner wider than a block
        ((64, 300), 0),
        ((3, 4, 50), 1),
        ((1, 2, 3), 1),
        ((2, 7, 3, 33), 1),
        ((20, 1030), 0),
    ],
)
def test_identical_results_for_any_thread_count(isa, name, dtype, shape, axis):
    rng = np.random.default_rng(13)
    args = arguments(name, rng.normal(scale=3.0, size=shape).astype(dtype), rng)
    f = getattr(native, name)
    one = f(*args, axis=axis, isa=isa, threads=1)
    for threads in (2, 3, 7, 64, np.int64(2), None):  # more threads than rows too
        np.testing.assert_array_equal(f(*args, axis=axis, isa=isa, threads=threads), one)
    out = np.empty_like(one)
    assert f(*args, axis=axis, isa=isa, threads=2, out=out) is out
    np.testing.assert_array_equal(out, one)


MASKED_ISAS = ISAS[:2]  # the masked kernels: scalar and AVX2 (NEON runs NumPy)


@pytest.mark.parametrize("isa", MASKED_ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("axis", [-1, 0])
def test_masked_results_identical_for_any_thread_count(isa, name, dtype, axis, monkeypatch):
    rng = np.random.default_rng(15)
    args = arguments(name, rng.normal(scale=3.0, size=(37, 1001)).astype(dtype), rng)
    mask = rng.random((37, 1001)) < 0.7
    mask[5] = False  # a row with no entry
    f = getattr(native, name)
    kernel = native._MASKED[name][np.dtype(dtype)]
    seen = []

    def spy(*a):
        seen.append(a[-1])  # the thread count, the C function's last argument
        return kernel(*a)

    monkeypatch.setitem(native._MASKED[name], np.dtype(dtype), spy)
    one = f(*args, axis=axis, where=mask, isa=isa, threads=1)
    for threads in (2, 3, 64):
        np.testing.assert_array_equal(
            f(*args, axis=axis, where=mask, isa=isa, threads=threads), one
        )
    # a mask broadcast over the rows (read with stride 0) too
    row = mask[:1] if axis == -1 else mask[:, :1]
    np.testing.assert_array_equal(
        f(*args, axis=axis, where=row, isa=isa, threads=3),
        f(*args, axis=axis, where=row, isa=isa, threads=1),
    )
    assert seen == [1, 2, 3, 64, 3, 1]


@pytest.mark.parametrize("isa", MASKED_ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_identical_for_any_thread_count(isa, dtype, monkeypatch):
    rng = np.random.default_rng(16)
    x = rng.normal(scale=3.0, size=(41, 333)).astype(dtype)
    mask = rng.random(x.shape) < 0.5
    kernel = native._LOGSUMEXP[np.dtype(dtype)]
    seen = []

    def spy(*a):
        seen.append(a[-1])
        return kernel(*a)

    monkeypatch.setitem(native._LOGSUMEXP, np.dtype(dtype), spy)
    for where in (None, mask):
        one = native.logsumexp(x, where=where, isa=isa, threads=1)
        for threads in (2, 7):
            np.testing.assert_array_equal(
                native.logsumexp(x, where=where, isa=isa, threads=threads), one
            )
    assert seen == [1, 2, 7] * 2


@pytest.mark.parametrize("isa", ISAS)
def test_automatic_threads_above_the_size_threshold(isa):
    # big enough for threads=None to use default_threads(); rows of every tail
    rows = native.AUTO_THREADS_MIN_SIZE // 1003 + 3
    x = np.random.default_rng(14).normal(size=(rows, 1003)).astype(np.float32)
    np.testing.assert_array_equal(
        native.softmax(x, isa=isa), native.softmax(x, isa=isa, threads=1)
    )
    np.testing.assert_array_equal(
        native.log_softmax(x, isa=isa, threads=2), native.log_softmax(x, isa=isa, threads=1)
    )


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, [2]])
def test_bad_thread_counts_are_a_clear_error(bad):
    x = np.ones((4, 8))
    for name in NAMES:
        args = (x,) if name in ("softmax", "log_softmax") else (x, x)
        with pytest.raises(ValueError, match="threads must be None or a positive integer"):
            getattr(native, name)(*args, threads=bad)
        with pytest.raises(ValueError, match="threads must be None or a positive integer"):
            getattr(native, name)(*(a.T for a in args), axis=0, threads=bad)  # the checked path


def test_thread_counts_are_capped_at_the_c_librarys_256():
    # a Python int takes a fast path, NumPy integers the general one: the same rule
    for threads in (1, 7, 256, 1000, np.int64(7), np.int64(1000)):
        assert native._thread_count(threads, 10) == min(int(threads), 256)
        assert type(native._thread_count(threads, 10)) is int


def test_c_refuses_a_thread_count_below_one():
    x = np.zeros(8, np.float32)
    p = ffi.from_buffer("float[]", x)
    assert lib.sm_softmax_f32_mt(p, 8, p, 8, 1, 8, 0, 0) == lib.SM_ERR_BAD_THREADS
    assert lib.sm_log_softmax_vjp_f32_mt(p, 8, p, 8, p, 8, 1, 8, 0, -3) == lib.SM_ERR_BAD_THREADS
    assert lib.sm_softmax_f32_mt(p, 8, p, 8, 1, 8, 0, 1000) == lib.sm_best_isa()  # capped
    # along an inner axis: the same rule
    assert lib.sm_softmax_inner_f32_mt(p, p, 1, 4, 2, 1, 0) == lib.SM_ERR_BAD_THREADS
    assert lib.sm_log_softmax_vjp_inner_f32_mt(p, p, p, 2, 2, 2, 1, -1) == lib.SM_ERR_BAD_THREADS
    assert lib.sm_softmax_inner_f32_mt(p, p, 2, 2, 2, 1, 1000) == lib.SM_ISA_SCALAR
    # the masked kernels and logsumexp: the same rule
    w = ffi.from_buffer("uint8_t[]", np.ones(8, np.uint8))
    assert lib.sm_softmax_masked_f32_mt(p, 8, w, 8, p, 8, 1, 8, 0, 0) == lib.SM_ERR_BAD_THREADS
    assert (
        lib.sm_log_softmax_vjp_masked_f32_mt(p, 8, p, 8, w, 8, p, 8, 1, 8, 0, -1)
        == lib.SM_ERR_BAD_THREADS
    )
    o = ffi.from_buffer("float[]", np.zeros(1, np.float32))
    assert lib.sm_logsumexp_f32_mt(p, 8, w, 8, o, 1, 1, 8, 0, 0) == lib.SM_ERR_BAD_THREADS
    assert lib.sm_logsumexp_f32_mt(p, 8, w, 8, o, 1, 1, 8, 1, 1000) == lib.SM_ISA_SCALAR


def default_threads_with(value):
    out, err = fresh_native_import("n.default_threads()", "SOFTMAX_LIB_NUM_THREADS", value)
    return int(out), err


def test_environment_sets_the_thread_count():
    cores, err = default_threads_with(None)
    assert cores >= 1 and not err
    assert default_threads_with("3") == (3, "")
    assert default_threads_with("1") == (1, "")
    for bad in ("0", "-2", "two", "1.5"):
        threads, err = default_threads_with(bad)
        assert threads == cores
        assert f"SOFTMAX_LIB_NUM_THREADS={bad!r} is not a positive integer" in err
