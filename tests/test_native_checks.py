"""The C library's checks (issue 10, item 7): the environment, sizes, store kinds,
and the prefetch of long rows at their real stride. On every ISA."""

import numpy as np
import pytest
from conftest import fresh_native_import, tolerance

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
CODES = {"scalar": lib.SM_ISA_SCALAR, "avx2": lib.SM_ISA_AVX2, "neon": lib.SM_ISA_NEON}


def import_native(value):
    """best_isa() and the warnings of a fresh import with SOFTMAX_LIB_ISA=value."""
    return fresh_native_import("n.best_isa()", "SOFTMAX_LIB_ISA", value)


def test_unknown_isa_in_the_environment_warns_naming_the_valid_values():
    default, _ = import_native(None)
    for bad in ("sse", "AVX2", "scalar ", "arm"):
        best, err = import_native(bad)
        assert f"SOFTMAX_LIB_ISA={bad!r} is not one of 'auto', 'scalar', 'avx2'" in err
        assert "RuntimeWarning" in err
        assert best == default  # ignored, as the message says


def test_valid_isa_values_in_the_environment():
    default, _ = import_native(None)
    for value, expected in (
        ("auto", default),
        ("avx2", default),
        ("neon", default),
        ("", default),
        ("scalar", "scalar"),
    ):
        best, err = import_native(value)
        assert best == expected and "Warning" not in err, value


@pytest.mark.parametrize("isa", ISAS)
def test_sizes_whose_byte_extent_overflows_are_refused(isa):
    code = CODES[isa]
    buf = np.zeros(64, np.float32)
    out = np.full(64, 7.0, np.float32)
    p, q = ffi.from_buffer("float[]", buf), ffi.from_buffer("float[]", out)
    big = 2**62  # n * 4 bytes > PTRDIFF_MAX
    size = lib.SM_ERR_SIZE
    assert lib.sm_softmax_f32(p, 0, q, 0, 1, big, code) == size
    assert lib.sm_log_softmax_f32(p, 0, q, 0, 1, big, code) == size
    assert lib.sm_softmax_vjp_f32(p, 0, p, 0, q, 0, 1, big, code) == size
    assert lib.sm_softmax_f32(p, 8, q, 8, 2**61, 8, code) == size  # (rows - 1) stride
    assert lib.sm_softmax_f32(p, -(2**63), q, 8, 2, 8, code) == size  # |PTRDIFF_MIN|
    assert lib.sm_log_softmax_vjp_f32(p, 8, p, 2**62, q, 8, 2, 8, code) == size
    assert lib.sm_exp_f32(p, q, big, code) == size
    assert lib.sm_copy_f32(p, q, big, lib.SM_STORE_NORMAL) == size
    assert lib.sm_triad_f32(q, p, p, 1.0, big, lib.SM_STORE_NORMAL) == size
    assert (out == 7).all()  # nothing written
    # the largest sizes that fit are not refused by this check (only layout ones)
    assert lib.sm_softmax_f32(p, 8, q, 8, 8, 8, code) == code


def test_a_bad_store_kind_is_its_own_error():
    a = np.zeros(8, np.float32)
    p = ffi.from_buffer("float[]", a)
    assert lib.SM_ERR_BAD_STORE not in (lib.SM_ERR_BAD_ISA, lib.SM_ERR_ISA_UNAVAILABLE)
    assert lib.sm_copy_f32(p, p + 0, 0, 7) == lib.SM_ERR_BAD_STORE
    assert lib.sm_triad_f32(p, p, p, 1.0, 0, -1) == lib.SM_ERR_BAD_STORE


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_long_rows_at_any_stride(isa, name, dtype):
    # Rows past 32 KB prefetch the next row at the real row stride (positive,
    # negative, or the gap of a slice of rows): the same results as contiguous.
    n = (40 << 10) // np.dtype(dtype).itemsize
    rng = np.random.default_rng(3)
    x = rng.normal(scale=3.0, size=(4, n)).astype(dtype)
    f = getattr(native, name)
    expected = f(x, isa=isa)
    spaced = np.zeros((12, n), dtype)[::3]
    spaced[...] = x
    spaced_back = np.zeros((12, n), dtype)[::-3]  # rows 3 rows apart, backwards
    spaced_back[...] = x
    for view in (spaced, x[::-1].copy()[::-1], spaced_back):
        assert native._rows(view) is not None  # goes to C without a copy
        np.testing.assert_array_equal(f(view, isa=isa), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_out_just_before_x_is_not_an_overlap(dtype):
    """logsumexp writes one element per row: an `out` that ends where `x` begins
    shares no byte with it (the check once counted out's rows n wide, and refused
    such neighbours, which malloc produces at random)."""
    rows, n = 5, 17
    buffer = np.zeros(rows + rows * n, dtype)
    out, x = buffer[:rows], buffer[rows:].reshape(rows, n)
    x[...] = np.random.default_rng(0).normal(size=(rows, n))
    f = lib.sm_logsumexp_f32 if dtype == np.float32 else lib.sm_logsumexp_f64
    ctype = "float *" if dtype == np.float32 else "double *"
    px, po = ffi.cast(ctype, x.ctypes.data), ffi.cast(ctype, out.ctypes.data)
    for isa in (lib.SM_ISA_SCALAR, lib.SM_ISA_AUTO):
        rc = f(px, n, ffi.NULL, 0, po, 1, rows, n, isa)
        assert rc >= 0, rc
        # m + log1p(rest) is off by at most about delta(n) (the sum's rounding, with
        # x - m's amplified by exp's condition |x - m| <= 2 max|x|), absolutely
        exact = np.log(np.exp(x.astype(np.float64)).sum(axis=1))
        bound = tolerance(dtype, n) * (1 + 2 * np.abs(x).max())
        np.testing.assert_allclose(out, exact, rtol=0, atol=bound)
