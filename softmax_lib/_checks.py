"""Argument checks and dtype/axis/mask handling shared by every implementation module.

Every public function of ``loops``, ``vectorized`` and ``native`` validates its
arguments here first, so all three raise the same errors for the same bad input.
Each module implements its functions for one integer axis (its *core*); the
general calls (``axis=None`` or a tuple, a 0-d input, float16, ``where=``) go
through :func:`forward`, :func:`backward` and :func:`reduce`, which bring the
arguments to that form and the result back.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable

import numpy as np
from numpy.exceptions import AxisError
from numpy.typing import ArrayLike, NDArray

#: dtypes computed natively; everything else is promoted to one of them or refused.
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
F16, F32 = np.dtype(np.float16), np.dtype(np.float32)


def float_array(a: ArrayLike, name: str) -> NDArray[np.floating]:
    """Return `a` as a float32 or float64 ndarray, or raise naming `name`.

    float32 and float64 are kept (in native byte order); float16 becomes float32
    (the functions round their float16 results back: :func:`forward`);
    booleans and integers become float64. Complex, object, string and other
    dtypes raise ``TypeError`` (softmax of a complex number is not what anyone
    meant), as does extended precision (``np.longdouble``: rounding it to float64
    silently would hide a loss of precision the caller asked to avoid). 0-d arrays
    are accepted: they are one slice of one element.
    """
    if type(a) is np.ndarray and a.dtype in FLOAT_DTYPES:
        return a  # the common case, kept cheap: small calls are dominated by overhead
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be converted to an array: {exc}") from None
    dtype = arr.dtype
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        # float16 -> float32; big-endian float32/64 -> the same in native order
        native = F32 if dtype.itemsize == 2 else dtype.newbyteorder("=")
        arr = arr.astype(native, copy=False)
    elif dtype.kind in "biu":
        arr = arr.astype(np.float64)
    elif dtype.kind == "f":
        raise TypeError(
            f"{name} has dtype {dtype}; softmax_lib computes in float16, float32 or float64: "
            f"convert it explicitly, e.g. {name}.astype(np.float64)"
        )
    else:
        raise TypeError(
            f"{name} must hold real numbers (float16/32/64, or integers), got dtype {dtype}"
        )
    return arr


def _is_half(a) -> bool:
    """Whether `a` is float16 (an array or NumPy scalar): its results are float16 too."""
    dtype = getattr(a, "dtype", None)
    return isinstance(dtype, np.dtype) and dtype == F16


def check_axis(axis, ndim: int, name: str = "axis") -> int:
    """Return the integer `axis` normalised to ``0 <= axis < ndim``, or raise naming it.

    For the functions that need one axis (:func:`softmax_jacobian`). A 0-d array
    counts as 1-d here (axis 0 or -1), as in PyTorch. Out of range: ``AxisError``
    (a ``ValueError`` and an ``IndexError``).
    """
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {axis!r}") from None
    n = max(ndim, 1)
    if not -n <= axis < n:
        raise AxisError(f"{name}={axis} is out of range for an array with {ndim} dimension(s)")
    return axis % n


def check_axes(axis, ndim: int) -> int | tuple[int, ...]:
    """`axis` normalised: an int in ``[0, max(ndim, 1))``, or a sorted tuple of them.

    None means every axis (a tuple of all of them). A tuple may be empty (every
    element its own slice) and may not repeat an axis. Out of range or repeated:
    ``AxisError``; not an int, a tuple of ints or None: ``TypeError``.
    """
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, tuple):
        axes = tuple(check_axes_item(a, ndim, axis) for a in axis)
        if len(set(axes)) != len(axes):
            raise AxisError(f"axis={axis} repeats an axis")
        return tuple(sorted(axes))
    return check_axes_item(axis, ndim, axis)


def check_axes_item(a, ndim: int, axis) -> int:
    try:
        a = operator.index(a)
    except TypeError:
        raise TypeError(
            f"axis must be an integer, a tuple of integers or None, got {axis!r}"
        ) from None
    n = max(ndim, 1)  # a 0-d array counts as 1-d: axis 0 or -1
    if not -n <= a < n:
        raise AxisError(f"axis={axis} is out of range for an array with {ndim} dimension(s)")
    return a % n


def check_out(out, shape, dtype):
    """Return `out` if it can receive a result of `shape` and `dtype`; None passes."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, expected {shape}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}, expected {np.dtype(dtype)}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out


def check_where(where, shape) -> NDArray[np.bool_] | None:
    """`where` as a boolean array of `shape` (a broadcast view), or None; else raise."""
    if where is None:
        return None
    try:
        mask = np.asarray(where)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"where could not be converted to an array: {exc}") from None
    if mask.dtype != np.bool_:
        raise TypeError(f"where must be a boolean mask, got dtype {mask.dtype}")
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(
            f"where has shape {mask.shape}, which does not broadcast to the input's {shape}"
        ) from None


def check_pair(y, dy, y_name="y", dy_name="dy"):
    """Validate a (y, dy) pair for a VJP: same shape, one common float dtype."""
    y = float_array(y, y_name)
    dy = float_array(dy, dy_name)
    if y.shape != dy.shape:
        raise ValueError(
            f"{y_name} and {dy_name} must have the same shape, got {y.shape} and {dy.shape}"
        )
    dtype = np.result_type(y, dy)
    return y.astype(dtype, copy=False), dy.astype(dtype, copy=False)


def prepare(x, axis, out, name="x"):
    """Checks for a forward function on one int axis: returns ``(x, axis, out)``."""
    x = float_array(x, name)
    axis = check_axis(axis, x.ndim)
    return x, axis, check_out(out, x.shape, x.dtype)


def prepare_vjp(y, dy, axis, out):
    """Checks for a VJP function on one int axis: returns ``(y, dy, axis, out)``."""
    y, dy = check_pair(y, dy)
    axis = check_axis(axis, y.ndim)
    return y, dy, axis, check_out(out, y.shape, y.dtype)


def _to_rows(a, axes):
    """`a` with `axes` (sorted ints) moved last and merged into one axis."""
    k = len(axes)
    lead = a.ndim - k
    moved = np.moveaxis(a, axes, range(lead, a.ndim)) if k else a
    return moved.reshape(moved.shape[:lead] + (math.prod(moved.shape[lead:]),))


def _from_rows(r, shape, axes):
    """Undo :func:`_to_rows` for a result `r` of the rows' shape: an array of `shape`."""
    k = len(axes)
    lead = len(shape) - k
    others = [i for i in range(len(shape)) if i not in axes]
    moved = r.reshape(tuple(shape[i] for i in others) + tuple(shape[i] for i in axes))
    return np.moveaxis(moved, range(lead, len(shape)), axes) if k else moved


def _deliver(result, out, dtype):
    """`result` in `out` (cast), or as a C-contiguous array of `dtype`."""
    if out is not None:
        np.copyto(out, result, casting="same_kind")
        return out
    if result.dtype == dtype and result.flags.c_contiguous:
        return result
    return np.array(result, dtype=dtype, order="C")


Core = Callable[..., np.ndarray]


def forward(core: Core, x, axis, out, where, name: str = "x") -> np.ndarray:
    """Run ``core(x, axis, out, mask)`` -- an int axis, float32/64, at least 1-d,
    `mask` None or a boolean array of x's shape -- for any valid call."""
    half = _is_half(x)
    x = float_array(x, name)
    dtype = F16 if half else x.dtype
    out = check_out(out, x.shape, dtype)
    axes = check_axes(axis, x.ndim)
    mask = check_where(where, x.shape)
    if type(axes) is int and x.ndim and not half:
        return core(x, axes, out, mask)
    shape = x.shape
    if type(axes) is int:
        axes = (axes,) if x.ndim else ()
    if x.ndim == 0:  # one slice of one element
        result = core(x.reshape(1), 0, None, None if mask is None else mask.reshape(1))
        return _deliver(result.reshape(()), out, dtype)
    rows = _to_rows(x, axes)
    mrows = None if mask is None else _to_rows(mask, axes)
    result = core(rows, rows.ndim - 1, None, mrows)
    return _deliver(_from_rows(result, shape, axes), out, dtype)


def backward(core: Core, y, dy, axis, out, where) -> np.ndarray:
    """:func:`forward` for the VJPs: ``core(y, dy, axis, out, mask)``."""
    half = _is_half(y) and _is_half(dy)
    y, dy = check_pair(y, dy)
    dtype = F16 if half else y.dtype
    out = check_out(out, y.shape, dtype)
    axes = check_axes(axis, y.ndim)
    mask = check_where(where, y.shape)
    if type(axes) is int and y.ndim and not half:
        return core(y, dy, axes, out, mask)
    shape = y.shape
    if type(axes) is int:
        axes = (axes,) if y.ndim else ()
    if y.ndim == 0:
        m1 = None if mask is None else mask.reshape(1)
        result = core(y.reshape(1), dy.reshape(1), 0, None, m1)
        return _deliver(result.reshape(()), out, dtype)
    mrows = None if mask is None else _to_rows(mask, axes)
    ry, rdy = _to_rows(y, axes), _to_rows(dy, axes)
    result = core(ry, rdy, ry.ndim - 1, None, mrows)
    return _deliver(_from_rows(result, shape, axes), out, dtype)


def reduce(core: Core, x, axis, keepdims: bool, where) -> np.ndarray:
    """Run ``core(x, axis, mask)`` (a reduction along one int axis that keeps it
    as a dimension of length 1) for any valid call of ``logsumexp``."""
    half = _is_half(x)
    x = float_array(x, "x")
    dtype = F16 if half else x.dtype
    checked = check_axes(axis, x.ndim)
    mask = check_where(where, x.shape)
    axes: tuple[int, ...] = ((checked,) if x.ndim else ()) if isinstance(checked, int) else checked
    if x.ndim == 0:
        result = core(x.reshape(1), 0, None if mask is None else mask.reshape(1))
        return np.array(result.reshape(()), dtype=dtype)
    rows = _to_rows(x, axes)
    result = core(rows, rows.ndim - 1, None if mask is None else _to_rows(mask, axes))
    # The other axes keep their order in the rows: the result reshapes into place.
    kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    result = result.reshape(kept)
    if not keepdims:
        result = result.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))
    return _deliver(result, None, dtype)


def along_one_axis(func: Core) -> Core:
    """Decorator: `func(x, axis, out, where)`, written for one int `axis`, `x`
    float32/64 at least 1-d, `where` None or a boolean array of x's shape, becomes
    the public function for any valid call (:func:`forward`). Its source stays
    the computation (the book includes it); its docstring and signature are kept."""

    @functools.wraps(func)
    def public(x, axis=-1, out=None, where=None):
        return forward(func, x, axis, out, where)

    return public


def vjp_along_one_axis(func: Core) -> Core:
    """:func:`along_one_axis` for the VJPs ``func(y, dy, axis, out, where)`` (:func:`backward`)."""

    @functools.wraps(func)
    def public(y, dy, axis=-1, out=None, where=None):
        return backward(func, y, dy, axis, out, where)

    return public


def jacobian_args(y, axis) -> tuple[np.ndarray, int, np.dtype]:
    """Checks for ``softmax_jacobian``: ``(y as float32/64 at least 1-d, axis, result dtype)``.

    It keeps a single int axis: None and tuples raise ``TypeError``."""
    half = _is_half(y)
    y = float_array(y, "y")
    if axis is None or isinstance(axis, tuple):
        raise TypeError(
            f"softmax_jacobian takes a single integer axis, got {axis!r}: the Jacobian "
            "of softmax over several axes is that over their product (reshape first)"
        )
    axis = check_axis(axis, y.ndim)
    if y.ndim == 0:
        y = y.reshape(1)
    return y, axis, F16 if half else y.dtype


def overlaps_itself(a):
    """Whether two elements of ndarray `a` share memory (``as_strided`` views can).

    Writing such an `out` in place would read values already overwritten, so the
    functions compute into a new array and copy it in (:func:`copy_into`). Quick
    when the strides nest, as in every view NumPy makes itself; otherwise the byte
    offsets of all elements are compared.
    """
    if a.size <= 1:
        return False
    extent = a.itemsize  # bytes spanned by the dimensions seen so far, smallest first
    for stride, n in sorted(
        (abs(st), n) for st, n in zip(a.strides, a.shape, strict=True) if n > 1
    ):
        if stride < extent:
            break
        extent += stride * (n - 1)
    else:
        return False
    offsets = np.zeros((), np.intp)
    for stride, n in zip(a.strides, a.shape, strict=True):
        offsets = np.add.outer(offsets, np.arange(n, dtype=np.intp) * stride)
    offsets = np.sort(offsets, axis=None)
    return bool(np.any(np.diff(offsets) < a.itemsize))


def copy_into(out, result):
    """``out[...] = result`` by NumPy's assignment; returns `out`. For an `out` that
    :func:`overlaps_itself`: the call then acts as NumPy's ufuncs do, as if its
    inputs had been copied first and the result assigned."""
    np.copyto(out, result)
    return out


def detach(a, out):
    """`a`, or a copy of it where writing `out` slice by slice could change it
    before it is read: `out` shares memory with `a` without being laid out
    exactly as `a` (the very same elements are safe: each slice is read whole
    before it is written)."""
    if out is None or not np.may_share_memory(a, out):
        return a
    same = (
        a.shape == out.shape
        and a.strides == out.strides
        and a.__array_interface__["data"][0] == out.__array_interface__["data"][0]
    )
    return a if same else a.copy()


def jacobian_shape(shape, axis):
    """Shape of the stacked Jacobians: the other axes in order, then ``(n, n)``."""
    n = shape[axis]
    return shape[:axis] + shape[axis + 1 :] + (n, n)
