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
            f"{name} must hold real numbers (float32, float64, or integers), "
            f"got dtype {dtype}"
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
        raise ValueError(
            f"{name}={axis} is out of range for an array with {ndim} dimension(s)"
        )
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
            f"{y_name} and {dy_name} must have the same shape, "
            f"got {y.shape} and {dy.shape}"
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


def jacobian_shape(shape, axis):
    """Shape of the stacked Jacobians: the other axes in order, then ``(n, n)``."""
    n = shape[axis]
    return shape[:axis] + shape[axis + 1:] + (n, n)
