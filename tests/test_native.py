"""The native C library on every ISA: tails, special values, layouts, threads, dispatch.

Every test that computes runs once per instruction set (``isa`` fixture); the
wrapper raises if the C library reports any ISA other than the one requested,
and ``test_c_reports_the_isa_it_used`` checks that report at the C level. The
reference is :mod:`softmax_lib.vectorized` in float64.
"""

import os
import platform
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import tolerance
from hypothesis import given, settings
from hypothesis import strategies as st

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
DTYPES = [np.float32, np.float64]
FORWARD = ("softmax", "log_softmax")
BACKWARD = ("softmax_vjp", "log_softmax_vjp")
# Row lengths around the vector widths (4 doubles, 8 floats, 32-float unrolled loops).
LENGTHS = (0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1003)


@pytest.fixture(params=ISAS, scope="module")
def isa(request):
    return request.param


def tol(dtype, n):
    """Bound for rows of `n` vs the float64 reference: delta(n) of `dtype` plus the
    reference's own delta(n) in float64 (conftest.tolerance derives delta). Forward:
    |err| <= delta (|ref| + 1). VJPs, from the same y and dy as the reference:
    softmax_vjp's <y, dy> is off by n u max|dy|, the difference and the product by
    2u max|dy| + u|dx|; log_softmax_vjp's exp(y) by 8u, sum(dy) by (n - 1) u sum|dy|,
    the product and difference by u each; both within delta (|ref| + scale)."""
    return tolerance(dtype, n) + tolerance(np.float64, n)


def reference(name, *arrays, axis=-1):
    """The float64 NumPy result, and the per-slice absolute error scale of `name`."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    with np.errstate(all="ignore"):  # inf - inf in the reference is expected here
        ref = getattr(vectorized, name)(*arrays, axis=axis)
    if name in FORWARD:
        scale = np.ones_like(ref)  # probabilities <= 1; log-probabilities use rtol
    else:  # the VJPs cancel: their error is relative to the size of dy
        dy = np.nan_to_num(np.abs(arrays[1]), nan=0.0, posinf=0.0)
        if name == "softmax_vjp":
            size = np.max(dy, axis=axis, keepdims=True, initial=0.0)
        else:
            size = np.sum(dy, axis=axis, keepdims=True)
        scale = np.broadcast_to(size, ref.shape)
    return ref, scale


def assert_matches(got, name, *arrays, axis=-1):
    """`got` is within tol of the float64 reference; NaN and inf exactly placed.

    Where the result is not finite, `got` must match NumPy in its own dtype:
    with inf in dy, a float32 ``exp(y)`` that underflows to 0 gives
    ``0 * inf = NaN`` where float64 still has a tiny number (and -inf).
    """
    ref, scale = reference(name, *arrays, axis=axis)
    assert got.shape == ref.shape and got.dtype == arrays[0].dtype
    with np.errstate(all="ignore"):
        same_dtype = getattr(vectorized, name)(*arrays, axis=axis)
    finite = np.isfinite(same_dtype)
    np.testing.assert_array_equal(np.isfinite(got), finite, err_msg="finite positions")
    np.testing.assert_array_equal(got[~finite], same_dtype[~finite], err_msg="NaN/inf")
    finite &= np.isfinite(ref)
    err = np.abs(got[finite].astype(np.float64) - ref[finite])
    bound = tol(got.dtype, ref.shape[axis]) * (np.abs(ref[finite]) + scale[finite])
    worst = np.argmax(err - bound) if err.size else None
    assert np.all(err <= bound), f"error {err[worst]:.3g} > bound {bound[worst]:.3g}"


def call(name, arrays, isa, **kwargs):
    return getattr(native, name)(*arrays, isa=isa, **kwargs)


def inputs(name, x, rng):
    """The arguments of `name` built from logits `x`: (x,) or (y, dy)."""
    if name in FORWARD:
        return (x,)
    fwd = vectorized.softmax if name == "softmax_vjp" else vectorized.log_softmax
    y = fwd(x.astype(np.float64)).astype(x.dtype)
    return y, rng.standard_normal(x.shape).astype(x.dtype)


# ---------------------------------------------------------------- the values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("name", FORWARD + BACKWARD)
def test_every_tail_length(isa, name, n, dtype):
    rng = np.random.default_rng(n)
    args = inputs(name, (rng.standard_normal((3, n)) * 5).astype(dtype), rng)
    got = call(name, args, isa)
    assert got.dtype == dtype
    assert_matches(got, name, *args)


def test_c_reports_the_isa_it_used(isa):
    code = {"scalar": lib.SM_ISA_SCALAR, "avx2": lib.SM_ISA_AVX2, "neon": lib.SM_ISA_NEON}[isa]
    x = np.linspace(-3, 3, 37, dtype=np.float32)
    out = np.empty_like(x)
    px, po = ffi.from_buffer("float[]", x), ffi.from_buffer("float[]", out)
    assert lib.sm_softmax_f32(px, 0, po, 0, 1, x.size, code) == code
    assert lib.sm_softmax_f32(px, 0, po, 0, 1, x.size, lib.SM_ISA_AUTO) == lib.sm_best_isa()
    assert lib.sm_softmax_f32(px, 0, po, 0, 1, x.size, 7) == lib.SM_ERR_BAD_ISA
    assert lib.sm_softmax_f32(ffi.NULL, 0, po, 0, 1, x.size, code) == lib.SM_ERR_NULL
    assert lib.sm_softmax_f32(ffi.NULL, 0, ffi.NULL, 0, 0, x.size, code) == code  # nothing to do


def test_c_refuses_misaligned_pointers_and_partial_overlap(isa):
    code = {"scalar": lib.SM_ISA_SCALAR, "avx2": lib.SM_ISA_AVX2, "neon": lib.SM_ISA_NEON}[isa]
    buf = np.zeros(80, np.float32)
    p = ffi.from_buffer("float[]", buf)
    odd = ffi.cast("float *", ffi.cast("char *", p) + 1)  # 1 byte off float alignment
    layout = lib.SM_ERR_LAYOUT
    assert lib.sm_softmax_f32(odd, 8, p + 40, 8, 2, 8, code) == layout
    assert lib.sm_softmax_f32(p, 8, odd + 40, 8, 2, 8, code) == layout
    assert lib.sm_softmax_vjp_f32(p, 8, odd + 20, 8, p + 40, 8, 2, 8, code) == layout
    assert lib.sm_softmax_f32(p, 8, p + 15, 8, 2, 8, code) == layout  # rows overlap
    assert lib.sm_softmax_f32(p + 15, -8, p + 16, 8, 2, 8, code) == layout  # backwards rows
    assert lib.sm_softmax_vjp_f32(p, 8, p + 40, 8, p + 47, 8, 2, 8, code) == layout
    assert lib.sm_softmax_f32(p, 8, p, 9, 2, 8, code) == layout  # same start, other stride
    assert not buf.any()  # nothing written
    # Allowed: the very same rows, disjoint ranges, one row at the same start.
    assert lib.sm_softmax_f32(p, 8, p, 8, 2, 8, code) == code
    assert lib.sm_softmax_f32(p, 8, p + 16, 8, 2, 8, code) == code
    assert lib.sm_softmax_f32(p + 24, -8, p + 32, 8, 2, 8, code) == code  # [16, 32), [32, 48)
    assert lib.sm_softmax_vjp_f32(p, 8, p, 8, p, 7, 1, 8, code) == code


@pytest.mark.parametrize("name", FORWARD + BACKWARD)
def test_contiguous_out_partly_overlapping_an_input(isa, name):
    # Both C-contiguous, so the thin path tries them; C refuses, the checked path
    # goes through a temporary.
    rng = np.random.default_rng(5)
    args = inputs(name, rng.standard_normal(33), rng)
    expected = call(name, args, isa)
    buf = np.zeros(34)
    buf[:-1] = args[0]
    call(name, [buf[:-1], *(a.copy() for a in args[1:])], isa, out=buf[1:])
    np.testing.assert_array_equal(buf[1:], expected)


def test_wrapper_refuses_a_different_isa_from_c(monkeypatch):
    # The guard behind "every test asserts the ISA used": a C library answering
    # with another ISA than requested must not go unnoticed.
    wrong = {lib.SM_ISA_SCALAR: lib.SM_ISA_AVX2, lib.SM_ISA_AVX2: lib.SM_ISA_SCALAR}
    real = native._KERNELS["softmax"][np.dtype(np.float64)]
    monkeypatch.setitem(
        native._KERNELS["softmax"], np.dtype(np.float64), lambda *args: wrong[real(*args)]
    )
    with pytest.raises(RuntimeError, match="expected ISA"):
        native.softmax([1.0, 2.0])


SPECIALS = [np.inf, -np.inf, np.nan, 1e30, -1e30, 0.0]


@st.composite
def logits(draw, dtype):
    """A batch of rows: random logits at a drawn scale, a few special values,
    maybe one row of only -inf."""
    rows = draw(st.integers(0, 4))
    n = draw(st.one_of(st.sampled_from(LENGTHS), st.integers(0, 40)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 30.0, 1e4, 1e30]))
    x = (rng.standard_normal((rows, n)) * scale).astype(dtype)
    if x.size:
        for index, value in draw(
            st.lists(st.tuples(st.integers(0, x.size - 1), st.sampled_from(SPECIALS)), max_size=4)
        ):
            x.flat[index] = value
        if draw(st.booleans()):
            x[draw(st.integers(0, rows - 1))] = -np.inf
    return x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FORWARD + BACKWARD)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_hypothesis_matches_float64_reference(isa, name, dtype, data):
    x = data.draw(logits(dtype))
    if name in FORWARD:
        args = (x,)
    else:  # y from the forward pass of x (NaN rows included), dy with specials too
        y = call(name.removesuffix("_vjp"), (x,), isa)
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
        dy = (rng.standard_normal(x.shape) * data.draw(st.sampled_from([1.0, 1e4]))).astype(dtype)
        if dy.size and data.draw(st.booleans()):
            dy.flat[data.draw(st.integers(0, dy.size - 1))] = data.draw(st.sampled_from(SPECIALS))
        args = (y, dy)
    assert_matches(call(name, args, isa), name, *args)


def test_inf_in_dy_with_underflowing_exp(isa):
    # Found by hypothesis: exp(y) underflows to 0 in float32, times sum(dy) = inf.
    y = native.log_softmax(np.array([[39.12, -69.75, 0.0]], np.float32), isa=isa)
    dy = np.array([[np.inf, 1.0, 0.0]], np.float32)
    got = native.log_softmax_vjp(y, dy, isa=isa)
    assert np.isnan(got[0, 0]) and np.isnan(got[0, 1]) and got[0, 2] == -np.inf
    assert_matches(got, "log_softmax_vjp", y, dy)


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_rows(isa, dtype):
    x = np.array(
        [
            [0.0, -np.inf, 1.0, -np.inf],  # -inf entries: exact zeros
            [-np.inf] * 4,  # only -inf: NaN (as NumPy/PyTorch)
            [1.0, np.nan, 2.0, 3.0],  # NaN: that row only
            [1.0, np.inf, 2.0, 3.0],  # +inf: NaN
            [1e30, -1e30, 0.0, 1e30],
        ],
        dtype=dtype,
    )
    y = native.softmax(x, isa=isa)
    # sum |s^ - s| <= 2 delta (test_contract.test_rows_sum_to_one), the float64 sum adds <= delta
    assert (
        y[0, 1] == 0
        and y[0, 3] == 0
        and abs(y[0].sum(dtype=np.float64) - 1) <= 3 * tolerance(dtype, 4)
    )
    assert np.isnan(y[1:4]).all()
    np.testing.assert_array_equal(y[4], [0.5, 0.0, 0.0, 0.5])
    log_y = native.log_softmax(x, isa=isa)
    assert log_y[0, 1] == -np.inf and np.isnan(log_y[1:4]).all()
    assert_matches(log_y, "log_softmax", x)


# --------------------------------------------------------------- the layouts


def misaligned(a, offset=1):
    """A copy of `a` whose data pointer is `offset` bytes off its dtype's alignment."""
    raw = np.zeros(a.nbytes + 16, dtype=np.uint8)
    start = (-raw.ctypes.data) % 16 + offset
    m = raw[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    m[...] = a
    assert not m.flags.aligned
    return m


def layouts(x):
    """Views of the same values in layouts C must handle, by name."""
    big = np.zeros((x.shape[0] * 2, x.shape[1] * 2), x.dtype)
    big[::2, ::2] = x
    readonly = x.copy()
    readonly.flags.writeable = False
    rows_strided = np.zeros((x.shape[0] * 3, x.shape[1]), x.dtype)[::3]
    rows_strided[...] = x
    return {
        "contiguous": x,
        "rows_strided": rows_strided,  # goes to C without a copy
        "rows_reversed": x[::-1].copy()[::-1],  # negative row stride, no copy
        "elements_strided": big[::2, ::2],  # needs a copy
        "elements_reversed": x[:, ::-1].copy()[:, ::-1],
        "fortran": np.asfortranarray(x),
        "readonly": readonly,
        **{f"misaligned_{k}": misaligned(x, k) for k in (1, 2, 3)},
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FORWARD + BACKWARD)
@pytest.mark.parametrize("layout", list(layouts(np.zeros((2, 2)))))
def test_layouts(isa, name, dtype, layout):
    rng = np.random.default_rng(1)
    args = inputs(name, rng.standard_normal((6, 19)).astype(dtype), rng)
    laid = [layouts(a)[layout] for a in args]
    for a, b in zip(laid, args, strict=True):
        np.testing.assert_array_equal(a, b)
    got = call(name, laid, isa)
    np.testing.assert_array_equal(got, call(name, args, isa))  # same kernels: same bits
    assert_matches(got, name, *args)


def test_row_strided_views_need_no_copy():
    x = np.arange(60.0).reshape(6, 10)
    for view in (x, x[::2], x[::-1], x[1:4, :], x[:, 2:7], x[None, ::2]):
        rows = native._rows(view)
        assert rows is not None and np.shares_memory(rows, x)
    for view in (x[:, ::2], x[:, ::-1], x.T, misaligned(x)):
        assert native._rows(view) is None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FORWARD + BACKWARD)
@pytest.mark.parametrize("shape", [(5,), (3, 17), (2, 9, 4), (3, 1, 2, 8)])
def test_every_axis(isa, name, dtype, shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(dtype)
    for axis in range(-len(shape), len(shape)):
        if name in FORWARD:
            args = (x,)
        else:
            fwd = vectorized.softmax if name == "softmax_vjp" else vectorized.log_softmax
            args = (fwd(x, axis=axis), rng.standard_normal(shape).astype(dtype))
        got = call(name, args, isa, axis=axis)
        assert got.shape == shape and got.dtype == dtype
        assert_matches(got, name, *args, axis=axis)


@pytest.mark.parametrize("name", FORWARD + BACKWARD)
def test_out_is_honoured_in_any_layout(isa, name):
    rng = np.random.default_rng(3)
    args = inputs(name, rng.standard_normal((4, 21)).astype(np.float32), rng)
    expected = call(name, args, isa)
    for layout, out in layouts(np.zeros_like(expected)).items():
        if layout == "readonly":
            continue
        result = call(name, args, isa, out=out)
        assert result is out, layout
        np.testing.assert_array_equal(out, expected, err_msg=layout)


@pytest.mark.parametrize("name", FORWARD + BACKWARD)
def test_out_aliasing_an_input(isa, name):
    rng = np.random.default_rng(4)
    args = inputs(name, rng.standard_normal((5, 33)), rng)
    expected = call(name, args, isa)
    for i in range(len(args)):  # out is the input itself, in place
        copies = [a.copy() for a in args]
        assert call(name, copies, isa, out=copies[i]) is copies[i]
        np.testing.assert_array_equal(copies[i], expected)
    # out overlapping an input by one element: must go through a temporary
    buf = np.zeros((5, 34))
    buf[:, :-1] = args[0]
    shifted = [buf[:, :-1]] + [a.copy() for a in args[1:]]
    call(name, shifted, isa, out=buf[:, 1:])
    np.testing.assert_array_equal(buf[:, 1:], expected)
    # axis 0 of a transposed view, written into itself: as the same call into a
    # fresh array (the kernels along an inner axis sum a column in another order
    # than the row kernels sum a row: equal to them within tol, not bit for bit)
    xt = args[0].T.copy()
    other = [a.T.copy() for a in args[1:]]
    fresh = call(name, [xt, *other], isa, axis=0)
    assert_matches(fresh, name, xt, *other, axis=0)
    call(name, [xt, *other], isa, axis=0, out=xt)
    np.testing.assert_array_equal(xt, fresh)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_and_promoted(isa, dtype):
    for shape in [(0,), (3, 0), (0, 5), (2, 0, 3)]:
        x = np.zeros(shape, dtype)
        for name in FORWARD:
            assert call(name, (x,), isa).shape == shape
        for name in BACKWARD:
            assert call(name, (x, x), isa).shape == shape
    assert native.softmax(np.array([1, 2]), isa=isa).dtype == np.float64
    assert native.softmax(np.array([1, 2], np.float16), isa=isa).dtype == np.float16


def test_docstring_examples():
    import doctest

    assert doctest.testmod(native).failed == 0


def test_jacobian_is_vectorized_jacobian(isa):
    y = native.softmax(np.array([[1.0, 2.0, 0.5]]), isa=isa)
    np.testing.assert_array_equal(
        native.softmax_jacobian(y, isa=isa), vectorized.softmax_jacobian(y)
    )


# ------------------------------------------------------ dispatch and threads


def test_bad_isa_is_a_clear_error():
    for bad in ("sse", None, 2, ["avx2"]):
        with pytest.raises(ValueError, match="isa must be"):
            native.softmax([1.0, 2.0], isa=bad)


def test_available_isas():
    assert native.available_isas()[0] == "scalar"
    assert native.best_isa() == native.available_isas()[-1]
    if "avx2" not in native.available_isas():
        with pytest.raises(ValueError, match="not available"):
            native.softmax([1.0, 2.0], isa="avx2")


def cpu_flags():
    """The CPU's feature flags, lower case, as the OS reports them (None: unknown here)."""
    if sys.platform == "darwin":  # arm64 has neither key: no flags
        out = subprocess.run(
            ["sysctl", "-n", "machdep.cpu.features", "machdep.cpu.leaf7_features"],
            capture_output=True,
            text=True,
        ).stdout
        return set(out.lower().split())
    if sys.platform == "win32":  # PF_AVX2_INSTRUCTIONS_AVAILABLE; Windows has no FMA flag
        import ctypes

        return {"avx2", "fma"} if ctypes.windll.kernel32.IsProcessorFeaturePresent(40) else set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return set()  # e.g. aarch64 Linux, whose line is "Features"


def test_simd_is_used_where_the_cpu_has_it():
    # So that SIMD never goes untested by accident: on an x86-64 CPU with AVX2
    # and FMA, a SIMD build must pick AVX2, and on AArch64 NEON (unless forced
    # to scalar).
    avx2_build = bool(lib.sm_compiled_isas() & (1 << lib.SM_ISA_AVX2))
    neon_build = bool(lib.sm_compiled_isas() & (1 << lib.SM_ISA_NEON))
    simd_build = avx2_build or neon_build
    forced = os.environ.get("SOFTMAX_LIB_ISA") == "scalar"
    if platform.machine().lower() in ("aarch64", "arm64"):
        assert neon_build == (os.environ.get("SOFTMAX_LIB_NO_SIMD", "") in ("", "0"))
        expected = "neon" if neon_build and not forced else "scalar"
    else:
        flags = cpu_flags()
        if flags is None:
            pytest.skip("this OS does not tell the CPU's features in a way read here")
        expected = "avx2" if avx2_build and not forced and {"avx2", "fma"} <= flags else "scalar"
    assert native.best_isa() == expected
    if os.environ.get("SOFTMAX_LIB_NO_SIMD", "") not in ("", "0"):
        assert not simd_build


def run_python(code, **env):
    """Run `code` in a fresh interpreter (so the library is imported there first)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_environment_forces_scalar():
    out = run_python(
        "from softmax_lib import native as n\n"
        "print(n.best_isa(), n.available_isas())\n"
        "try: n.softmax([1.0], isa='avx2')\n"
        "except ValueError as e: print('refused', 'SOFTMAX_LIB_ISA' in str(e) "
        "or 'without SIMD' in str(e))\n",
        SOFTMAX_LIB_ISA="scalar",
    )
    assert out.split("\n")[:2] == ["scalar ('scalar',)", "refused True"]


def test_import_keeps_the_floating_point_state():
    # -ffast-math in any linked object would set flush-to-zero/denormals-are-zero
    # at load time: subnormals would then vanish in every NumPy computation.
    out = run_python(
        "import numpy as np\n"
        "import softmax_lib.native as n\n"
        "for isa in n.available_isas(): n.softmax(np.ones((2, 40), np.float32), isa=isa)\n"
        "print(np.float64(5e-324) * 1.0 > 0, np.float64(2.0) ** -1070 > 0,\n"
        "      np.float32(1e-45) * np.float32(1) > 0, np.nextafter(0.0, 1.0) / 2 == 0)\n"
    )
    assert out.split() == ["True"] * 4


@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_give_identical_results(isa, dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((256, 1003)).astype(dtype)
    expected = native.softmax(x, isa=isa)
    results = [None] * 8
    start = threading.Barrier(8)

    def work(i):
        start.wait()
        for _ in range(5):
            results[i] = native.softmax(x, isa=isa)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_bandwidth_kernels():
    rng = np.random.default_rng(6)
    b, c = rng.standard_normal((2, 1001)).astype(np.float32)
    for nontemporal in (False, True):
        if nontemporal and "avx2" not in native.available_isas():
            with pytest.raises(ValueError, match="AVX2"):
                native._copy_f32(b, np.empty_like(b), nontemporal=True)
            continue
        dst, a = np.empty_like(b), np.empty_like(b)
        native._copy_f32(b, dst, nontemporal=nontemporal)
        np.testing.assert_array_equal(dst, b)
        native._triad_f32(a, b, c, 0.5, nontemporal=nontemporal)
        # 0.5 c is exact, so b + 0.5 c is one rounding with or without FMA: the same bits.
        np.testing.assert_array_equal(a, b + np.float32(0.5) * c)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKWARD)
def test_large_vjp_streams_the_same_results(isa, name, dtype):
    # Past sm_stream_bytes() of output the AVX2 VJPs write with streaming stores
    # (rows of 1001 elements start at every alignment); row by row, the results
    # must be those of the ordinary kernels on a small batch.
    rows = lib.sm_stream_bytes() // (np.dtype(dtype).itemsize * 1001) + 1
    rng = np.random.default_rng(6)
    y, dy = inputs(name, rng.standard_normal((rows, 1001)).astype(dtype), rng)
    got = call(name, [y, dy], isa)
    for start in (0, 1, 2, 3, rows - 5):
        np.testing.assert_array_equal(
            got[start : start + 5], call(name, [y[start : start + 5], dy[start : start + 5]], isa)
        )


def test_stream_threshold_is_the_last_level_cache():
    # glibc reports the L3 size through sysconf (getconf prints it); elsewhere
    # the C library says nothing and the threshold is 32 MiB
    try:
        got = subprocess.run(
            ["getconf", "LEVEL3_CACHE_SIZE"], capture_output=True, text=True, check=True
        ).stdout.strip()
        llc = int(got) if got else -1
    except (OSError, ValueError, subprocess.CalledProcessError):
        llc = -1
    assert lib.sm_stream_bytes() == (llc if llc > 0 else 32 << 20)
