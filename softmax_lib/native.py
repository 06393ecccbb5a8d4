"""The contract of :mod:`softmax_lib.vectorized`, computed by the C library.

The kernels live in ``native/`` (portable C; AVX2+FMA chosen at run time on
x86-64; NEON on AArch64, where it is architectural)
and are compiled by cffi into ``softmax_lib._native`` when the package is
installed; importing this module raises ``ImportError`` if that did not happen.
Each function takes ``isa="auto" | "avx2" | "neon" | "scalar"``: ``"auto"`` is
:func:`best_isa`, an explicit ISA is used or refused (``ValueError``), never
silently replaced. ``SOFTMAX_LIB_ISA=scalar`` in the environment makes the scalar
kernels the only ones available (``auto``, ``avx2``, ``neon`` or empty: the best the CPU
has; any other value is ignored with a ``RuntimeWarning`` naming these).

The C kernels work on rows: the softmax axis is moved last, and the array goes
to C without a copy whenever its rows are contiguous and evenly spaced (any
C-contiguous array, a slice of rows, ...). Other layouts are copied once. The GIL
is released while the kernels run. ``axis=None`` and tuples of axes move those
axes last and merge them into one (a copy unless they already are last and
contiguous), 0-d input is a row of one, float16 is computed by the float32
kernels: the result is C-contiguous in each case.

``where=`` in the forward functions, in the VJPs and :func:`logsumexp` have their
own C kernels (``native/kernels_masked.c``: scalar and AVX2, the rows split over
``threads`` as elsewhere; the mask is read in place, the inputs are not copied
for it). Not in C: anything masked
with ``isa="neon"`` (no NEON masked kernels yet) and :func:`softmax_jacobian` run
the NumPy code of :mod:`softmax_lib.vectorized`, with the same contract and bounds.

What differs from SciPy's ``scipy.special.softmax`` / ``log_softmax`` /
``logsumexp``: the default axis is -1 here (None there); ``where=``, ``out=``,
``isa=``, ``threads=`` and the VJPs exist here, ``logsumexp``'s ``b=`` and
``return_sign=`` do not; other array types are converted to NumPy.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import vectorized
from ._checks import backward, copy_into, forward, overlaps_itself, reduce
from ._native import ffi, lib

Axis = int | tuple[int, ...] | None

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_vjp",
    "log_softmax_vjp",
    "softmax_jacobian",
    "best_isa",
    "available_isas",
    "default_threads",
    "AUTO_THREADS_MIN_SIZE",
]

# SOFTMAX_LIB_ISA: the C library reads it (dispatch.c, detect_best_isa) but cannot
# warn; a value it does not know is ignored there, and named here.
_ENV_VALUES = ("auto", "scalar", "avx2", "neon", "")
_env_isa = os.environ.get("SOFTMAX_LIB_ISA")
if _env_isa is not None and _env_isa not in _ENV_VALUES:
    warnings.warn(
        f"SOFTMAX_LIB_ISA={_env_isa!r} is not one of 'auto', 'scalar', 'avx2', 'neon' "
        "(or empty) and is ignored: the best available ISA is used",
        RuntimeWarning,
        stacklevel=2,
    )

_NAMES = {lib.SM_ISA_SCALAR: "scalar", lib.SM_ISA_AVX2: "avx2", lib.SM_ISA_NEON: "neon"}
_CODES = {"auto": lib.SM_ISA_AUTO, **{name: code for code, name in _NAMES.items()}}
_BEST = lib.sm_best_isa()
# scalar, and the one SIMD ISA the build has and the CPU runs (if any)
_AVAILABLE = ("scalar",) if _BEST == lib.SM_ISA_SCALAR else ("scalar", _NAMES[_BEST])

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_BUFFER = {_F32: ffi.typeof("float[]"), _F64: ffi.typeof("double[]")}
_POINTER = {_F32: ffi.typeof("float *"), _F64: ffi.typeof("double *")}
_KERNELS = {  # the contract's functions take a thread count: their _mt entry points
    name: {_F32: getattr(lib, f"sm_{name}_f32_mt"), _F64: getattr(lib, f"sm_{name}_f64_mt")}
    for name in ("softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp")
}
_KERNELS["exp"] = {_F32: lib.sm_exp_f32, _F64: lib.sm_exp_f64}


def _env_threads():
    """SOFTMAX_LIB_NUM_THREADS as a positive int, or None (unset, or warned about)."""
    value = os.environ.get("SOFTMAX_LIB_NUM_THREADS", "")
    if value == "":
        return None
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        warnings.warn(
            f"SOFTMAX_LIB_NUM_THREADS={value!r} is not a positive integer and is "
            "ignored: the number of available cores is used",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return threads


def _cores():
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: Below this many elements a call with threads=None runs on one thread, because
#: starting a thread costs tens of microseconds, the time of about 2^15 exponentials.
AUTO_THREADS_MIN_SIZE = 1 << 17
_AUTO_THREADS = _env_threads() or _cores()


def default_threads() -> int:
    """The thread count of ``threads=None`` for calls on at least
    :data:`AUTO_THREADS_MIN_SIZE` elements (fewer: 1): ``SOFTMAX_LIB_NUM_THREADS``
    if set, else the number of cores this process may use."""
    return _AUTO_THREADS


def _thread_count(threads, size):
    """The number of threads for a call on `size` elements; ValueError if `threads` is bad."""
    if threads is None:
        return _AUTO_THREADS if size >= AUTO_THREADS_MIN_SIZE else 1
    if type(threads) is int and threads >= 1:  # the usual case, before the slower isinstance
        return threads if threads <= 256 else 256  # the C library uses at most 256
    if (
        isinstance(threads, (bool, np.bool_))
        or not isinstance(threads, (int, np.integer))
        or threads < 1
    ):
        raise ValueError(f"threads must be None or a positive integer, got {threads!r}")
    return int(min(threads, 256))  # the C library uses at most 256


# Bound once: attribute look-ups are a measurable part of a small call.
_from_buffer, _cast = ffi.from_buffer, ffi.cast
_may_share_memory, _empty, _ndarray = np.may_share_memory, np.empty, np.ndarray


def best_isa() -> str:
    """The instruction set ``isa="auto"`` uses: ``"avx2"``, ``"neon"`` or ``"scalar"``.

    AVX2 needs an x86-64 CPU with AVX2 and FMA and an OS that saves the YMM
    registers; NEON, an AArch64 CPU (every one has it). Both need a build with
    SIMD code (not ``SOFTMAX_LIB_NO_SIMD=1``) and no ``SOFTMAX_LIB_ISA=scalar``
    in the environment.
    """
    return _NAMES[_BEST]


def available_isas() -> tuple[str, ...]:
    """The instruction sets this build can run on this CPU, e.g. ``("scalar", "avx2")``
    or ``("scalar", "neon")``."""
    return _AVAILABLE


def _isa_code(isa):
    """The sm_isa to request for `isa`, never SM_ISA_AUTO; ValueError if unusable."""
    try:
        code = _CODES[isa]
    except (KeyError, TypeError):
        raise ValueError(f"isa must be 'auto', 'avx2', 'neon' or 'scalar', got {isa!r}") from None
    if code == lib.SM_ISA_AUTO:
        return _BEST
    if _NAMES[code] not in _AVAILABLE:
        compiled = lib.sm_compiled_isas() & (1 << code)
        if compiled:
            why = "SOFTMAX_LIB_ISA=scalar is set or the CPU lacks AVX2+FMA"
        elif lib.sm_compiled_isas() != 1 << lib.SM_ISA_SCALAR:  # another SIMD ISA is built
            why = "AVX2 exists only on x86-64, NEON only on AArch64"
        else:
            why = "the library was built without SIMD code"
        raise ValueError(f"isa={isa!r} is not available: {why}; available: {_AVAILABLE}")
    return code


def _check_rc(rc, code):
    """Turn the C return value into an exception unless it is the ISA asked for."""
    if rc != code:
        raise RuntimeError(f"the C library returned {rc}, expected ISA {_NAMES[code]!r}")


def _rows(a):
    """`a` (axis last) as a ``(rows, n)`` view C can take, or None if that needs a copy.

    C needs contiguous rows starting a whole number of elements apart, and a
    pointer aligned for the element type.
    """
    n = a.shape[-1]
    try:
        v = a.reshape(-1, n, copy=False)
    except ValueError:  # the other axes do not collapse into one stride
        return None
    rs, es = v.strides
    if (es != v.itemsize and n > 1) or rs % v.itemsize or not v.flags.aligned:
        return None
    return v


def _pointer(v):
    """A C pointer to the first element of `v`, a view from :func:`_rows`."""
    if v.flags.c_contiguous:  # the fast path; keeps the buffer alive too
        return _from_buffer(_BUFFER[v.dtype], v)
    return _cast(_POINTER[v.dtype], v.__array_interface__["data"][0])


def _same_layout(a, b):
    return a.strides == b.strides and (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


def _output(out, axis, ins):
    """``(rows view to write, array to copy it into afterwards or None)``.

    `out` is written directly when C can take its layout and it overlaps the
    inputs `ins` only by being one of them exactly; otherwise via a temporary.
    """
    om = out if axis == out.ndim - 1 else np.moveaxis(out, axis, -1)
    view = _rows(om)
    if view is not None and not any(
        _may_share_memory(view, a) and not _same_layout(view, a) for a in ins
    ):
        return view, None
    return np.empty(om.shape, out.dtype).reshape(-1, om.shape[-1]), om


def _inputs(arrays, axis):
    """Each array with `axis` last, as a rows view (copied only when unavoidable)."""
    views = []
    for a in arrays:
        if axis != a.ndim - 1:
            a = np.moveaxis(a, axis, -1)
        v = _rows(a)
        if v is None:  # a new array: ascontiguousarray would keep a misaligned one
            v = np.array(a, order="C").reshape(-1, a.shape[-1])
        views.append(v)
    return views


# The thin path takes `axis` only as the int -1 and `isa` only as a str: by value
# (==), not by identity, which would rely on CPython sharing the objects -1 and
# "auto"; the type tests keep -1.0, True or an array out (the checked path
# decides about those).
_USABLE = {name: _CODES[name] for name in _AVAILABLE}
_LAYOUT = lib.SM_ERR_LAYOUT
_SOFTMAX, _LOG_SOFTMAX = _KERNELS["softmax"], _KERNELS["log_softmax"]
_SOFTMAX_VJP, _LOG_SOFTMAX_VJP = _KERNELS["softmax_vjp"], _KERNELS["log_softmax_vjp"]


def _thin_forward(kernels, x, axis, out, isa, threads):
    """The common call without the general machinery, or None to take that.

    Taken only when the call is certainly valid: `x` an ndarray of float32 or
    float64, at least 1-D with non-empty rows, C-contiguous, the last axis, and
    `out` None or a C-contiguous writeable ndarray of the same shape and dtype.
    ``from_buffer`` refuses non-contiguous arrays (and a read-only `out`), and C
    refuses misaligned pointers and partial overlap (SM_ERR_LAYOUT) without
    writing: then, as for every other call, the checked path decides.
    """
    if type(x) is not _ndarray or type(axis) is not int or axis != -1:
        return None
    dtype, shape = x.dtype, x.shape
    kernel = kernels.get(dtype)  # None unless native float32 or float64
    code = (_BEST if isa == "auto" else _USABLE.get(isa)) if type(isa) is str else None
    if kernel is None or not shape or not shape[-1] or code is None:
        return None
    if out is None:
        out = _empty(shape, dtype)
    elif type(out) is not _ndarray or out.dtype is not dtype or out.shape != shape:
        return None
    buffer, n = _BUFFER[dtype], shape[-1]
    try:
        px, po = _from_buffer(buffer, x), _from_buffer(buffer, out, True)
    except ValueError:  # not C-contiguous, or out read-only
        return None
    size = x.size
    nthreads = (
        (1 if size < AUTO_THREADS_MIN_SIZE else _AUTO_THREADS)
        if threads is None
        else _thread_count(threads, size)
    )
    rc = kernel(px, n, po, n, size // n, n, code, nthreads)
    if rc == code:
        return out
    if rc != _LAYOUT:
        _check_rc(rc, code)
    return None


def _thin_vjp(kernels, y, dy, axis, out, isa, threads):
    """:func:`_thin_forward` for the VJPs: `y` and `dy` both qualify and share
    shape and dtype; `out` may be either of them, not partly overlap them."""
    if type(y) is not _ndarray or type(dy) is not _ndarray or type(axis) is not int or axis != -1:
        return None
    dtype, shape = y.dtype, y.shape
    kernel = kernels.get(dtype)
    code = (_BEST if isa == "auto" else _USABLE.get(isa)) if type(isa) is str else None
    if (
        kernel is None
        or dy.dtype is not dtype
        or dy.shape != shape
        or not shape
        or not shape[-1]
        or code is None
    ):
        return None
    if out is None:
        out = _empty(shape, dtype)
    elif type(out) is not _ndarray or out.dtype is not dtype or out.shape != shape:
        return None
    buffer, n = _BUFFER[dtype], shape[-1]
    try:
        py, pdy, po = (
            _from_buffer(buffer, y),
            _from_buffer(buffer, dy),
            _from_buffer(buffer, out, True),
        )
    except ValueError:
        return None
    size = y.size
    nthreads = (
        (1 if size < AUTO_THREADS_MIN_SIZE else _AUTO_THREADS)
        if threads is None
        else _thread_count(threads, size)
    )
    rc = kernel(py, n, pdy, n, po, n, size // n, n, code, nthreads)
    if rc == code:
        return out
    if rc != _LAYOUT:
        _check_rc(rc, code)
    return None


_INNER = {  # along a non-last axis of C-contiguous arrays, no transpose (every ISA)
    name: {
        _F32: getattr(lib, f"sm_{name}_inner_f32_mt"),
        _F64: getattr(lib, f"sm_{name}_inner_f64_mt"),
    }
    for name in ("softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp")
}


def _inner_ok(arrays, axis):
    """Whether the inner-axis kernels (scalar, AVX2 and NEON) take these inputs:
    a non-last `axis` and C-contiguous aligned arrays."""
    return axis != arrays[0].ndim - 1 and all(
        a.flags.c_contiguous and a.flags.aligned for a in arrays
    )


def _run_inner(name, arrays, axis, out, code, threads):
    """Kernel `name` along a non-last `axis` of C-contiguous `arrays` with the
    kernels that walk down the axis a block of columns at a time: no
    transposing copy, a C-contiguous result, `threads` shared over the columns.
    `out` is written directly when C-contiguous, aligned and either disjoint
    from the inputs or one of them exactly; otherwise via a temporary."""
    a0 = arrays[0]
    shape, dtype = a0.shape, a0.dtype
    outer, n = int(np.prod(shape[:axis], dtype=np.int64)), shape[axis]
    inner = int(np.prod(shape[axis + 1 :], dtype=np.int64))
    if out is None:
        dest = result = np.empty(shape, dtype)
    elif (
        out.flags.c_contiguous
        and out.flags.aligned
        and not any(_may_share_memory(out, a) and not _same_layout(out, a) for a in arrays)
    ):
        dest = result = out
    else:
        dest, result = np.empty(shape, dtype), out
    buffer = _BUFFER[dtype]
    pointers = [_from_buffer(buffer, a) for a in arrays]
    rc = _INNER[name][dtype](
        *pointers,
        _from_buffer(buffer, dest, True),
        outer,
        n,
        inner,
        code,
        _thread_count(threads, a0.size),
    )
    _check_rc(rc, code)
    if dest is not result:
        np.copyto(result, dest)
    return result


def _run(name, arrays, axis, out, isa, threads=None):
    """Validated `arrays` (same shape and dtype) -> result of kernel `name` in `out`."""
    code = _BEST if type(isa) is str and isa == "auto" else _isa_code(isa)
    a0 = arrays[0]
    if a0.size == 0:
        return np.empty_like(a0) if out is None else out
    if out is not None and overlaps_itself(out):  # an as_strided out: as NumPy's ufuncs
        return copy_into(out, _run(name, arrays, axis, None, isa, threads))
    if _inner_ok(arrays, axis):
        return _run_inner(name, arrays, axis, out, code, threads)
    if out is None and axis != a0.ndim - 1:
        # a C-contiguous result, as loops and vectorized give (the kernels write
        # rows: a temporary, then one copy into it)
        out = np.empty(a0.shape, a0.dtype)
    ins = _inputs(arrays, axis)
    if out is None:
        shape = a0.shape if axis == a0.ndim - 1 else np.moveaxis(a0, axis, -1).shape
        result = np.empty(shape, a0.dtype)
        dest, copy_to = result.reshape(-1, shape[-1]), None
    else:
        dest, copy_to = _output(out, axis, ins)
    rows, n = dest.shape
    args: list[Any] = []
    for v in (*ins, dest):
        args += (_pointer(v), v.strides[0] // v.itemsize)
    nthreads = _thread_count(threads, rows * n)
    _check_rc(_KERNELS[name][a0.dtype](*args, rows, n, code, nthreads), code)
    if copy_to is not None:
        np.copyto(copy_to, dest.reshape(copy_to.shape))
    if out is not None:
        return out
    return result if axis == a0.ndim - 1 else np.moveaxis(result, -1, axis)


_MASKED = {
    name: {
        _F32: getattr(lib, f"sm_{name}_masked_f32_mt"),
        _F64: getattr(lib, f"sm_{name}_masked_f64_mt"),
    }
    for name in ("softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp")
}
_LOGSUMEXP = {_F32: lib.sm_logsumexp_f32_mt, _F64: lib.sm_logsumexp_f64_mt}


def _mask_rows(mask, n):
    """The boolean `mask` (axis last) as ``(rows, n)`` bytes C can read in place:
    contiguous within a row, rows evenly spaced (0 apart when broadcast over
    them); else a contiguous copy of the mask (never of the input)."""
    try:
        v = mask.reshape(-1, n, copy=False)
    except ValueError:
        v = None
    if v is None or (n > 1 and v.strides[1] != 1):
        v = np.ascontiguousarray(mask).reshape(-1, n)
    return v


def _run_masked(name, arrays, axis, out, mask, code, threads):
    """Kernel `name` (a (log-)softmax or its VJP) of `arrays` (x, or y and dy:
    same shape and dtype) along `axis` where `mask`, by the masked C kernels on
    `threads` threads (None: automatic)."""
    a0 = arrays[0]
    if a0.size == 0:
        return np.empty_like(a0) if out is None else out
    ins = _inputs(arrays, axis)
    rows, n = ins[0].shape
    mv = _mask_rows(mask if axis == a0.ndim - 1 else np.moveaxis(mask, axis, -1), n)
    dest = np.empty((rows, n), a0.dtype)  # then copied into out: out may be an input
    args: list[Any] = []
    for v in ins:
        args += (_pointer(v), v.strides[0] // v.itemsize)
    rc = _MASKED[name][a0.dtype](
        *args,
        _cast("uint8_t *", mv.__array_interface__["data"][0]),
        mv.strides[0],
        _from_buffer(_BUFFER[a0.dtype], dest, True),
        n,
        rows,
        n,
        code,
        _thread_count(threads, a0.size),
    )
    _check_rc(rc, code)
    moved = a0.shape if axis == a0.ndim - 1 else np.moveaxis(a0, axis, -1).shape
    result = dest.reshape(moved)
    if axis != a0.ndim - 1:
        result = np.moveaxis(result, -1, axis)
    if out is not None:
        np.copyto(out, result)
        return out
    return np.ascontiguousarray(result)


def _forward_core(name, isa, threads):
    """The core that :func:`softmax_lib._checks.forward` calls: the C kernels
    along one axis, the masked ones for a `mask` -- NumPy's
    :mod:`~softmax_lib.vectorized` code for ``isa="neon"``, which has none."""

    def core(x, axis, out, mask):
        if mask is None:
            return _run(name, (x,), axis, out, isa, threads)
        code = _isa_code(isa)
        if code == lib.SM_ISA_NEON:
            _thread_count(threads, 1)  # checked as for any other call
            return getattr(vectorized, name).__wrapped__(x, axis, out, mask)
        return _run_masked(name, (x,), axis, out, mask, code, threads)

    return core


def _logsumexp_core(isa, threads):
    """The core of :func:`logsumexp` for :func:`softmax_lib._checks.reduce` (the
    axis is last there): the C kernels on `threads` threads; NumPy for
    ``isa="neon"`` and empty input."""
    code = _isa_code(isa)

    def core(x, axis, mask):
        if code == lib.SM_ISA_NEON or x.size == 0:
            return vectorized._logsumexp(x, axis, mask)
        (xv,) = _inputs((x,), axis)
        rows, n = xv.shape
        result = np.empty(rows, x.dtype)
        if mask is None:
            w, ws = ffi.NULL, 0
        else:
            mv = _mask_rows(mask, n)
            w, ws = _cast("uint8_t *", mv.__array_interface__["data"][0]), mv.strides[0]
        rc = _LOGSUMEXP[x.dtype](
            _pointer(xv),
            xv.strides[0] // xv.itemsize,
            w,
            ws,
            _from_buffer(_BUFFER[x.dtype], result, True),
            1,
            rows,
            n,
            code,
            _thread_count(threads, x.size),
        )
        _check_rc(rc, code)
        return result.reshape(x.shape[:-1] + (1,))

    return core


def _backward_core(name, isa, threads):
    """:func:`_forward_core` for the VJPs."""

    def core(y, dy, axis, out, mask):
        if mask is None:
            return _run(name, (y, dy), axis, out, isa, threads)
        code = _isa_code(isa)
        if code == lib.SM_ISA_NEON:
            _thread_count(threads, 1)  # checked as for any other call
            return getattr(vectorized, name).__wrapped__(y, dy, axis, out, mask)
        return _run_masked(name, (y, dy), axis, out, mask, code, threads)

    return core


def softmax(
    x: ArrayLike,
    axis: Axis = -1,
    out: NDArray[np.floating] | None = None,
    where: ArrayLike | None = None,
    *,
    isa: str = "auto",
    threads: int | None = None,
) -> NDArray[np.floating]:
    """Softmax along `axis`; see :func:`softmax_lib.vectorized.softmax`.

    Parameters
    ----------
    x : array_like
        Logits. float16/32/64 keep their dtype (float16 computed in float32);
        integers give float64.
    axis : int, tuple of ints or None, optional
        Axis or axes to normalise over (default: the last); None: all of them.
    out : ndarray, optional
        Where to write the result; may be `x`.
    where : array_like of bool, optional
        Mask broadcastable to `x` (the masked C kernels);
        the result is 0 outside it and throughout a slice with no entry.
    isa : {"auto", "avx2", "neon", "scalar"}, optional
        Kernels to use; ``ValueError`` if unavailable (see :func:`available_isas`).
    threads : int, optional
        Threads to split the rows over (identical results for any count). None:
        :func:`default_threads` for calls on at least
        :data:`AUTO_THREADS_MIN_SIZE` elements, else 1.

    Returns
    -------
    ndarray
        Non-negative values that sum to 1 along `axis`; NaN throughout a slice
        holding NaN or ``+inf``, or only ``-inf``.

    Examples
    --------
    >>> softmax([1.0, 2.0])
    array([0.26894142, 0.73105858])
    """
    result = None if where is not None else _thin_forward(_SOFTMAX, x, axis, out, isa, threads)
    if result is None:
        result = forward(_forward_core("softmax", isa, threads), x, axis, out, where)
    return result


def log_softmax(
    x: ArrayLike,
    axis: Axis = -1,
    out: NDArray[np.floating] | None = None,
    where: ArrayLike | None = None,
    *,
    isa: str = "auto",
    threads: int | None = None,
) -> NDArray[np.floating]:
    """Log-softmax along `axis`; see :func:`softmax_lib.vectorized.log_softmax`.

    Parameters
    ----------
    x : array_like
        Logits.
    axis : int, tuple of ints or None, optional
        Axis or axes to normalise over (default: the last); None: all of them.
    out : ndarray, optional
        Where to write the result; may be `x`.
    where : array_like of bool, optional
        Mask broadcastable to `x` (the masked C kernels);
        the result is ``-inf`` outside it and throughout a slice with no entry.
    isa : {"auto", "avx2", "neon", "scalar"}, optional
        Kernels to use.
    threads : int, optional
        Threads to split the rows over (identical results for any count). None:
        :func:`default_threads` for calls on at least
        :data:`AUTO_THREADS_MIN_SIZE` elements, else 1.

    Returns
    -------
    ndarray
        ``(x - max) - log1p(rest)``, in that order, where ``rest`` sums
        ``exp(x - max)`` over all entries but one maximum: the top class is right
        to a few ulp (:func:`softmax_lib.vectorized.log_softmax`).

    Examples
    --------
    >>> log_softmax([1000.0, 0.0])
    array([    0., -1000.])
    """
    result = None if where is not None else _thin_forward(_LOG_SOFTMAX, x, axis, out, isa, threads)
    if result is None:
        result = forward(_forward_core("log_softmax", isa, threads), x, axis, out, where)
    return result


def logsumexp(
    x: ArrayLike,
    axis: Axis = -1,
    keepdims: bool = False,
    where: ArrayLike | None = None,
    *,
    isa: str = "auto",
    threads: int | None = None,
) -> NDArray[np.floating]:
    """``log(sum(exp(x)))`` along `axis`: :func:`softmax_lib.vectorized.logsumexp` in C.

    The kernel's max and sum passes are those of log-softmax (``m + log1p(rest)``,
    the maxima counted apart), the rows shared among `threads`; ``isa="neon"`` runs
    the NumPy code (no NEON kernel yet).

    Parameters
    ----------
    x : array_like
        Logits.
    axis : int, tuple of ints or None, optional
        Axis or axes to reduce (default: the last); None: all of them.
    keepdims : bool, optional
        Keep the reduced axes as dimensions of length 1.
    where : array_like of bool, optional
        Mask broadcastable to `x`: only the entries where it is True are summed.
    isa : {"auto", "avx2", "neon", "scalar"}, optional
        Kernels to use.
    threads : int, optional
        Threads to split the rows over (identical results for any count). None:
        :func:`default_threads` for calls on at least
        :data:`AUTO_THREADS_MIN_SIZE` elements, else 1.

    Returns
    -------
    ndarray
        The shape of `x` without the reduced axes; SciPy's rules for NaN and
        ``±inf``.

    Examples
    --------
    >>> logsumexp([1000.0, 1000.0])
    array(1000.69314718)
    """
    _thread_count(threads, 1)
    return reduce(_logsumexp_core(isa, threads), x, axis, keepdims, where)


def softmax_vjp(
    y: ArrayLike,
    dy: ArrayLike,
    axis: Axis = -1,
    out: NDArray[np.floating] | None = None,
    where: ArrayLike | None = None,
    *,
    isa: str = "auto",
    threads: int | None = None,
) -> NDArray[np.floating]:
    """Softmax VJP ``y * (dy - sum(y * dy))``; see :func:`softmax_lib.vectorized.softmax_vjp`.

    Parameters
    ----------
    y : array_like
        Softmax output.
    dy : array_like
        Upstream gradient, same shape as `y`.
    axis : int, tuple of ints or None, optional
        The axis or axes softmax was taken over (default: the last).
    out : ndarray, optional
        Where to write the result; may be `y` or `dy`.
    where : array_like of bool, optional
        The forward pass's mask; the gradient is 0 outside it (the masked C
        kernels; NumPy for ``isa="neon"``).
    isa : {"auto", "avx2", "neon", "scalar"}, optional
        Kernels to use.
    threads : int, optional
        Threads to split the rows over (identical results for any count). None:
        :func:`default_threads` for calls on at least
        :data:`AUTO_THREADS_MIN_SIZE` elements, else 1.

    Returns
    -------
    ndarray
        ``dL/dx``, the shape of `y`; sums to 0 along `axis`.

    Examples
    --------
    >>> softmax_vjp(softmax([1.0, 2.0]), [1.0, 0.0])
    array([ 0.19661193, -0.19661193])
    """
    result = None if where is not None else _thin_vjp(_SOFTMAX_VJP, y, dy, axis, out, isa, threads)
    if result is None:
        result = backward(_backward_core("softmax_vjp", isa, threads), y, dy, axis, out, where)
    return result


def log_softmax_vjp(
    y: ArrayLike,
    dy: ArrayLike,
    axis: Axis = -1,
    out: NDArray[np.floating] | None = None,
    where: ArrayLike | None = None,
    *,
    isa: str = "auto",
    threads: int | None = None,
) -> NDArray[np.floating]:
    """Log-softmax VJP ``dy - exp(y) * sum(dy)``.

    The maths: :func:`softmax_lib.vectorized.log_softmax_vjp`.

    Parameters
    ----------
    y : array_like
        Log-softmax output.
    dy : array_like
        Upstream gradient, same shape as `y`.
    axis : int, tuple of ints or None, optional
        The axis or axes log-softmax was taken over (default: the last).
    out : ndarray, optional
        Where to write the result; may be `y` or `dy`.
    where : array_like of bool, optional
        The forward pass's mask; the gradient is 0 outside it (the masked C
        kernels; NumPy for ``isa="neon"``).
    isa : {"auto", "avx2", "neon", "scalar"}, optional
        Kernels to use.
    threads : int, optional
        Threads to split the rows over (identical results for any count). None:
        :func:`default_threads` for calls on at least
        :data:`AUTO_THREADS_MIN_SIZE` elements, else 1.

    Returns
    -------
    ndarray
        ``dL/dx``, the shape of `y`; sums to 0 along `axis`.

    Examples
    --------
    >>> log_softmax_vjp(log_softmax([1.0, 2.0]), [1.0, 0.0])
    array([ 0.73105858, -0.73105858])
    """
    result = None
    if where is None:
        result = _thin_vjp(_LOG_SOFTMAX_VJP, y, dy, axis, out, isa, threads)
    if result is None:
        result = backward(_backward_core("log_softmax_vjp", isa, threads), y, dy, axis, out, where)
    return result


def softmax_jacobian(y: ArrayLike, axis: int = -1, *, isa: str = "auto") -> NDArray[np.floating]:
    """The explicit Jacobians ``diag(s) - s s^T``: :func:`softmax_lib.vectorized.softmax_jacobian`.

    Teaching and tests only, so computed in NumPy; `isa` is checked and ignored.

    Parameters
    ----------
    y : array_like
        Softmax output.
    axis : int, optional
        The axis softmax was taken over (default: the last); one axis only.
    isa : {"auto", "avx2", "neon", "scalar"}, optional
        Accepted for a uniform signature.

    Returns
    -------
    ndarray
        Shape ``(..., n, n)``: the other axes of `y` in order, then the matrix.
    """
    _isa_code(isa)
    return vectorized.softmax_jacobian(y, axis)


def _exp(x, isa="auto"):
    """``exp(x)`` by the exp inside the `isa` kernels (libm for scalar); for accuracy tests.

    `x` must be a 1-D float32 or float64 array; returns a new array.
    """
    x = np.ascontiguousarray(x)
    code = _isa_code(isa)
    result = np.empty_like(x)
    if x.size:
        rc = _KERNELS["exp"][x.dtype](
            _from_buffer(_BUFFER[x.dtype], x), _from_buffer(_BUFFER[x.dtype], result), x.size, code
        )
        _check_rc(rc, code)
    return result


def _bandwidth(kernel, arrays, *scalars, nontemporal=False):
    store = lib.SM_STORE_NONTEMPORAL if nontemporal else lib.SM_STORE_NORMAL
    for a in arrays:
        if a.dtype != _F32 or not a.flags.c_contiguous or a.shape != arrays[0].shape:
            raise ValueError("arrays must be C-contiguous float32 of one shape")
    rc = kernel(*(_from_buffer(_BUFFER[_F32], a) for a in arrays), *scalars, arrays[0].size, store)
    if rc == lib.SM_ERR_ISA_UNAVAILABLE:
        raise ValueError("non-temporal stores need AVX2, which is not available")
    if rc < 0:
        raise RuntimeError(f"the C library returned {rc}")
    return _NAMES[rc]


def _copy_f32(src, dst, nontemporal=False):
    """``dst[:] = src`` in C (the copy bandwidth floor); returns the ISA used."""
    return _bandwidth(lib.sm_copy_f32, (src, dst), nontemporal=nontemporal)


def _triad_f32(a, b, c, s, nontemporal=False):
    """``a[:] = b + s * c`` in C (the triad bandwidth floor); returns the ISA used."""
    return _bandwidth(lib.sm_triad_f32, (a, b, c), s, nontemporal=nontemporal)
