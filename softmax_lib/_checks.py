"""Argument checks and dtype/axis handling shared by every implementation module.

Every public function of ``loops``, ``vectorized`` and ``native`` validates its
arguments here first, so all three raise the same errors for the same bad input.
"""

import operator

import numpy as np

#: dtypes computed natively; everything else is promoted to one of them or refused.
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_array(a, name):
    """Return `a` as a float32 or float64 ndarray, or raise naming `name`.

    float32 and float64 are kept (in native byte order); float16 becomes float32;
    booleans and integers become float64. Complex, object, string and other
    dtypes raise ``TypeError`` (softmax of a complex number is not what anyone
    meant), as does extended precision (``np.longdouble``: rounding it to float64
    silently would hide a loss of precision the caller asked to avoid). 0-d arrays
    raise ``ValueError``: softmax needs an axis to normalise over.
    """
    if type(a) is np.ndarray and a.dtype in FLOAT_DTYPES and a.ndim:
        return a  # the common case, kept cheap: small calls are dominated by overhead
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be converted to an array: {exc}") from None
    dtype = arr.dtype
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        # float16 -> float32; big-endian float32/64 -> the same in native order
        native = np.dtype(np.float32) if dtype.itemsize == 2 else dtype.newbyteorder("=")
        arr = arr.astype(native, copy=False)
    elif dtype.kind in "biu":
        arr = arr.astype(np.float64)
    elif dtype.kind == "f":
        raise TypeError(
            f"{name} has dtype {dtype}; softmax_lib computes in float32 or float64: "
            f"convert it explicitly, e.g. {name}.astype(np.float64)"
        )
    else:
        raise TypeError(
            f"{name} must hold real numbers (float32, float64, or integers), got dtype {dtype}"
        )
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a 0-d array")
    return arr


def check_axis(axis, ndim, name="axis"):
    """Return `axis` normalised to ``0 <= axis < ndim``, or raise naming it."""
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {axis!r}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an array with {ndim} dimension(s)")
    return axis % ndim


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
    """Checks for a forward function: returns ``(x, axis, out)`` validated."""
    x = float_array(x, name)
    axis = check_axis(axis, x.ndim)
    return x, axis, check_out(out, x.shape, x.dtype)


def prepare_vjp(y, dy, axis, out):
    """Checks for a VJP function: returns ``(y, dy, axis, out)`` validated."""
    y, dy = check_pair(y, dy)
    axis = check_axis(axis, y.ndim)
    return y, dy, axis, check_out(out, y.shape, y.dtype)


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
