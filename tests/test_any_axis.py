"""The four functions along any axis without a transposing copy (issue 10, item
4): the scalar, AVX2 and NEON kernels that walk down a non-last axis a block
of columns at a time, for C-contiguous input, float32 and float64, on every ISA
this machine has (the NEON ones are tested under qemu by tests/c/test_kernels.c).
Results are C-contiguous.

Forward float32 bounds (check below), per element, in u = 2^-24
(tests/test_long_rows.py counts them): x - m
rounds once (u |x - m|, turned relative by exp), exp within 2 GOAL u, the sum
relative (its terms' errors, at most max |x - m| u + 2 GOAL u, and 9 roundings:
float blocks of 8 rows flushed to double), 1/sum and the product (u each),
1u for second order terms. log-softmax: absolute, the same terms plus the
roundings of lse and of the subtraction."""

import platform

import numpy as np
import pytest
from conftest import tolerance

from softmax_lib import exp_accuracy, symbolic, vectorized

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
NAMES = ("softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp")

U = 2.0**-24
EXP = 2 * exp_accuracy.GOALS[np.dtype(np.float32)]
SHAPES = [(5,), (3, 17), (2, 9, 4), (33, 9, 11), (3000, 5), (4, 1, 3)]


def check(x, axis, isa):
    d = x.astype(np.float64) - np.max(x, axis=axis, keepdims=True)
    spread = np.max(np.abs(d), axis=axis, keepdims=True)
    s = vectorized.softmax(x.astype(np.float64), axis=axis)
    got = native.softmax(x, axis=axis, isa=isa)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    bound = (np.abs(d) + spread + 2 * EXP + 9 + 3) * U * s
    assert np.all(np.abs(got - s) <= bound)
    log_s = vectorized.log_softmax(x.astype(np.float64), axis=axis)
    got = native.log_softmax(x, axis=axis, isa=isa)
    assert got.flags.c_contiguous
    lse = -np.max(log_s, axis=axis, keepdims=True)
    bound = (np.abs(d) + spread + 2 * EXP + 9 + lse + np.abs(log_s) + 1) * U
    assert np.all(np.abs(got - log_s) <= bound)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape", SHAPES)
def test_every_axis(shape, isa):
    x = np.random.default_rng(17).normal(scale=3.0, size=shape).astype(np.float32)
    for axis in range(-len(shape), len(shape)):
        check(x, axis, isa)


@pytest.mark.parametrize("isa", ISAS)
def test_top_class_and_ties_down_a_column(isa):
    x = np.zeros((4, 10), np.float32)
    x[0, :] = 20.0  # column j: [20, 0, 0, 0]: top class -6.18e-9
    x[1, 5:] = 20.0  # columns 5-9: two maxima
    got = native.log_softmax(x, axis=0, isa=isa)
    want = symbolic.oracle_log_softmax(x[:, 0])[0]
    assert abs(got[0, 0] - want) <= 20 * np.spacing(np.float32(abs(want)))  # test_top_class.py
    assert (got[0, 5:] == got[1, 5:]).all() and (got[0, 5:] < -0.69).all()


@pytest.mark.parametrize("isa", ISAS)
def test_special_values_down_columns(isa):
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
        (native.softmax(x, axis=0, isa=isa), want),
        (native.log_softmax(x, axis=0, isa=isa), want_log),
    ):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
        finite = np.isfinite(ref)
        np.testing.assert_allclose(got[finite], ref[finite], rtol=16 * U, atol=16 * U)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_out_in_place_and_in_other_layouts(name, isa):
    x = np.random.default_rng(18).normal(size=(6, 13, 10)).astype(np.float32)
    f = getattr(native, name)
    want = f(x, axis=1, isa=isa)
    inplace = x.copy()
    assert f(inplace, axis=1, out=inplace, isa=isa) is inplace
    np.testing.assert_array_equal(inplace, want)
    for out in (
        np.empty_like(x),
        np.empty((6, 13, 20), np.float32)[..., ::2],
        np.empty_like(x, order="F"),
    ):
        assert f(x, axis=1, out=out, isa=isa) is out
        np.testing.assert_array_equal(out, want)
    buf = np.zeros(x.size + 1, np.float32)  # out overlapping x by one element
    xs, outs = buf[:-1].reshape(x.shape), buf[1:].reshape(x.shape)
    xs[...] = x
    f(xs, axis=1, out=outs, isa=isa)
    np.testing.assert_array_equal(outs, want)


# ---------------------------------------------------------------------------
# All four functions, float32 and float64, against the float64 reference and
# the row kernels applied to the transposed data.

# (shape, axis): axis 0 and middle axes; n = 1, 2, 3 and longer than a flush
# block of 8 rows; inner not a multiple of 8 (masked lanes), wider than one
# block of 1024 columns (SM_INNER_MAX_COLS), and 1.
INNER_CASES = [
    ((1, 9), 0),
    ((2, 9), 0),
    ((3, 17), 0),
    ((4, 3, 13), 1),
    ((2, 2, 1027), 1),
    ((3, 5, 7, 3), 1),
    ((3, 5, 7, 3), 2),
    ((1025, 9), 0),
    ((300, 11), 0),
    ((2, 600, 1), 1),
    ((20, 530), 0),
]


def inner_inputs(name, shape, dtype, seed=21):
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=3.0, size=shape).astype(dtype)
    if name in ("softmax", "log_softmax"):
        return (x,)
    fwd = vectorized.softmax if name == "softmax_vjp" else vectorized.log_softmax
    return fwd(x, axis=-1).astype(dtype), rng.normal(size=shape).astype(dtype)


def bound(name, arrays, axis, ref):
    """|error| allowed against the float64 reference: tolerance(dtype, n) plus the
    reference's own, times (|ref| + scale) as tests/test_native.py's tol derives:
    scale 1 for the forward ops, max|dy| (softmax VJP) or sum|dy| (log-softmax
    VJP) along the axis for the VJPs, whose results cancel."""
    dtype, n = arrays[0].dtype, arrays[0].shape[axis]
    delta = tolerance(dtype, n) + tolerance(np.float64, n)
    if name in ("softmax", "log_softmax"):
        scale = 1.0
    else:
        dy = np.abs(arrays[1].astype(np.float64))
        reduce = np.max if name == "softmax_vjp" else np.sum
        scale = reduce(dy, axis=axis, keepdims=True)
    return delta * (np.abs(ref) + scale)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape, axis", INNER_CASES)
def test_inner_axis_matches_the_rows_of_the_transposed_data(
    isa, dtype, name, shape, axis, monkeypatch
):
    arrays = inner_inputs(name, shape, dtype)
    f = getattr(native, name)
    calls = []
    kernel = native._INNER[name][np.dtype(dtype)]
    monkeypatch.setitem(
        native._INNER[name], np.dtype(dtype), lambda *a: calls.append(1) or kernel(*a)
    )
    got = f(*arrays, axis=axis, isa=isa)
    # the inner-axis kernels, on every ISA: no transpose
    assert len(calls) == 1
    assert got.dtype == dtype and got.shape == shape and got.flags.c_contiguous
    ref = getattr(vectorized, name)(*(a.astype(np.float64) for a in arrays), axis=axis)
    allowed = bound(name, arrays, axis, ref)
    err = np.abs(got.astype(np.float64) - ref)
    assert np.all(err <= allowed), f"error {np.max(err - allowed):.3g} above the bound"
    moved = [np.ascontiguousarray(np.moveaxis(a, axis, -1)) for a in arrays]
    rows = np.moveaxis(f(*moved, axis=-1, isa=isa), -1, axis)
    if isa == "scalar" and platform.machine() in ("x86_64", "AMD64"):
        # the same C operations in the same order, column for row (kernels_scalar.c),
        # and no FMA for the compiler to contract into on baseline x86-64: bit for bit
        np.testing.assert_array_equal(got, rows)
    else:  # both within the bound of the reference: each other within twice it
        assert np.all(np.abs(got.astype(np.float64) - rows) <= 2 * allowed)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["softmax_vjp", "log_softmax_vjp"])
def test_inner_axis_vjp_in_place_and_overlap(isa, dtype, name):
    y, dy = inner_inputs(name, (5, 19, 11), dtype)
    f = getattr(native, name)
    want = f(y, dy, axis=1, isa=isa)
    for which in (0, 1):  # out = y, out = dy: allowed, same layout
        ins = [y.copy(), dy.copy()]
        assert f(*ins, axis=1, out=ins[which], isa=isa) is ins[which]
        np.testing.assert_array_equal(ins[which], want)
    buf = np.zeros(y.size + 1, dtype)  # out overlapping dy by one element: via a copy
    dys, outs = buf[:-1].reshape(y.shape), buf[1:].reshape(y.shape)
    dys[...] = dy
    assert f(y, dys, axis=1, out=outs, isa=isa) is outs
    np.testing.assert_array_equal(outs, want)
    out = np.empty((5, 19, 22), dtype)[..., ::2]  # a strided out: via a copy
    assert f(y, dy, axis=1, out=out, isa=isa) is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inner_axis_top_class_of_the_log_softmax_vjp(isa, dtype):
    # column j = [t, 0, 0, 0] with t large: the top class's gradient under
    # dy = [-1, 0, 0, 0] (NLL) is s - 1 = -(3 e^-t) / (1 + 3 e^-t), which
    # 1 - exp(y) would round to 0; expm1 keeps it (tests/test_top_class.py)
    t = 12.0 if dtype == np.float32 else 30.0
    x = np.zeros((4, 9), dtype)
    x[0] = t
    y = native.log_softmax(x, axis=0, isa=isa)
    dy = np.zeros_like(x)
    dy[0] = -1.0
    got = native.log_softmax_vjp(y, dy, axis=0, isa=isa)[0]
    rest = 3 * np.exp(-t)
    want = -rest / (1 + rest)  # exp(-t) in float64: relative error ~1e-16
    # bound: y's error (a few u |y|, tests/test_top_class.py) times |d expm1| ~ 1,
    # plus expm1's and the subtraction's: 30 u relative to the result
    u = np.finfo(dtype).eps / 2
    np.testing.assert_allclose(got, want, rtol=30 * u, atol=0)


def test_inner_axis_c_api_checks():
    from softmax_lib._native import ffi, lib

    x = np.zeros(64, np.float64)
    p = ffi.from_buffer("double[]", x)
    best = lib.sm_best_isa()
    for isa in (lib.SM_ISA_SCALAR, 0):
        want = lib.SM_ISA_SCALAR if isa else best
        assert lib.sm_softmax_inner_f64(p, p, 2, 4, 8, isa) == want  # in place
        assert lib.sm_softmax_vjp_inner_f64(p, p, p, 2, 4, 8, isa) == want
        assert lib.sm_log_softmax_inner_f64(p, p, 0, 4, 8, isa) == want  # empty: nothing to do
    assert lib.sm_softmax_inner_f64(p, p, 2, 4, 8, 9) == lib.SM_ERR_BAD_ISA
    null = ffi.NULL
    assert lib.sm_softmax_inner_f64(null, p, 2, 4, 8, 1) == lib.SM_ERR_NULL
    assert lib.sm_softmax_vjp_inner_f64(p, null, p, 2, 4, 8, 1) == lib.SM_ERR_NULL
    # outer n inner elements past PTRDIFF_MAX bytes, or a product that wraps: refused
    big = 2**62
    assert lib.sm_softmax_inner_f64(p, p, big, 4, 8, 1) == lib.SM_ERR_SIZE
    assert lib.sm_log_softmax_vjp_inner_f64(p, p, p, 2, big, big, 1) == lib.SM_ERR_SIZE
    assert lib.sm_softmax_inner_f64(p, p, 1, 2**61, 1, 1) == lib.SM_ERR_SIZE  # 2^64 bytes
    # partial overlap and misalignment: nothing written
    q = ffi.from_buffer("double[]", x[1:])
    assert lib.sm_softmax_inner_f64(p, q, 2, 4, 4, 1) == lib.SM_ERR_LAYOUT
    assert lib.sm_softmax_vjp_inner_f64(p, q, p, 2, 4, 4, 1) == lib.SM_ERR_LAYOUT
    odd = ffi.cast("double *", x.ctypes.data + 4)
    assert lib.sm_softmax_inner_f64(odd, p, 1, 2, 2, 1) == lib.SM_ERR_LAYOUT
