"""The contract for any array-API array, computed in the array's own namespace.

A torch tensor (or a CuPy, JAX, ``array_api_strict``... array) given to the
top-level functions or to :mod:`softmax_lib.vectorized`'s comes here and comes back
as the same type, on the same device: every operation is one of its namespace's,
found by ``array_api_compat.array_namespace`` (``pip install softmax_lib[array-api]``).
The formulas are those of :mod:`softmax_lib.vectorized`, written with namespace
functions only: the max shift, ``log1p`` of the sum without the maximum for
log-softmax (the top class right to a few ulp), and ``expm1`` where ``exp(y)`` is near
1 in the log-softmax VJP. So the error bounds are those of the NumPy module, with
the namespace's ``exp``, ``log1p`` and ``sum`` in place of NumPy's.

The arguments are checked by the NumPy implementation itself, on a one-element
array of the same dtype and number of dimensions (``softmax_lib._frontends.probe``):
the same errors for the same bad ``axis``, dtype or keyword, and the same result
dtype (float16 computed in float32, integers and booleans in float64, complex a
``TypeError``). NumPy arrays given to these functions are computed the same way
(through ``array_api_compat.numpy``), which is slower than the NumPy modules: the
top level sends them to the native library instead.

Differences from SciPy's ``scipy.special.softmax`` (which also keeps the array
type): the default axis is the last, not all elements; ``out=`` is written with
``out[...] = result``, so an immutable array type (JAX) cannot take it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _frontends

__all__ = ["softmax", "log_softmax", "logsumexp", "softmax_vjp", "log_softmax_vjp"]

_LN2 = float(np.log(2.0))


def _namespace(*arrays):
    try:
        from array_api_compat import array_namespace
    except ImportError:
        names = ", ".join(sorted({type(a).__module__ + "." + type(a).__name__ for a in arrays}))
        raise ImportError(
            f"softmax_lib got {names}; computing it in its own array namespace needs "
            "array-api-compat: pip install softmax_lib[array-api]"
        ) from None
    try:
        return array_namespace(*arrays)
    except TypeError as exc:  # e.g. a torch tensor with a NumPy array
        raise TypeError(f"the arrays must all be of one array library: {exc}") from None


def _numpy_dtype(xp, dtype):
    """The NumPy dtype that stands for `dtype` of namespace `xp` in the probe."""
    if xp.isdtype(dtype, "bool"):
        return np.dtype(bool)
    if xp.isdtype(dtype, "integral"):
        return np.dtype(np.int64)
    if xp.isdtype(dtype, "real floating"):
        bits = xp.finfo(dtype).bits  # bfloat16 counts as float16 (16 bits)
        return np.dtype({16: np.float16, 32: np.float32, 64: np.float64}[bits])
    if xp.isdtype(dtype, "complex floating"):  # refused by the probe, named in the message
        return np.dtype(np.complex64 if xp.finfo(dtype).bits == 32 else np.complex128)
    return np.dtype(object)  # refused by the probe with the contract's TypeError


def _prepare(name, arrays, axis, kwargs):
    """``(xp, arrays in the compute dtype, axes, result dtype, where)``.

    The probe checks `axis`, the dtypes and `kwargs`; `axes` is `axis` as a tuple of
    non-negative ints (all axes for None). 16-bit floats are computed in float32 and
    returned in their own dtype when the contract keeps float16.
    """
    xp = _namespace(*arrays)
    ndim = arrays[0].ndim
    if name.endswith("_vjp") and arrays[0].shape != arrays[1].shape:
        raise ValueError(
            f"y and dy must have the same shape, got {tuple(arrays[0].shape)} and "
            f"{tuple(arrays[1].shape)}"
        )
    dtypes = [_numpy_dtype(xp, a.dtype) for a in arrays]
    result = _frontends.probe(_frontends.reference(name), ndim, dtypes, (axis,), kwargs)
    if result == np.float16:  # float16 (or bfloat16) in, the same out
        out_dtype, compute = arrays[0].dtype, xp.float32
    else:
        out_dtype = compute = {np.float32: xp.float32, np.float64: xp.float64}[result.type]
    arrays = [a if a.dtype == compute else xp.astype(a, compute) for a in arrays]
    axes = _frontends.axes(axis, ndim)
    where = kwargs.get("where")
    if where is not None:
        where = xp.broadcast_to(xp.asarray(where, dtype=xp.bool), arrays[0].shape)
    return xp, arrays, axes, out_dtype, where


def _reduce(f, a, axes):
    """``f(a, axis=axes, keepdims=True)``; `a` itself over no axes (0-d input), which
    some libraries (torch) would otherwise read as all axes."""
    return f(a, axis=axes, keepdims=True) if axes else a


def _finish(xp, result, dtype, out):
    if result.dtype != dtype:
        result = xp.astype(result, dtype)
    if out is None:
        return result
    if out.shape != result.shape or out.dtype != result.dtype:
        raise ValueError(
            f"out has shape {tuple(out.shape)} and dtype {out.dtype}, expected "
            f"{tuple(result.shape)} and {result.dtype}"
        )
    out[...] = result
    return out


def softmax(x: Any, axis: Any = -1, out: Any = None, **kwargs: Any) -> Any:
    r"""Softmax along `axis` in `x`'s own namespace: ``exp(x - max) / sum(exp(x - max))``.

    Parameters
    ----------
    x : array
        Logits: any array-API array (a torch tensor, ...).
    axis : int, optional
        Axis to normalise over (default: the last); what the NumPy modules accept.
    out : array, optional
        Where to write the result (``out[...] = result``), same type, shape, dtype.
    **kwargs
        Further keywords of :func:`softmax_lib.vectorized.softmax` (``where=``).

    Returns
    -------
    array
        Same type, device and (float) dtype as `x`; sums to 1 along `axis`.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> softmax(xp.asarray([1.0, 2.0]))
    Array([0.26894142, 0.73105858], dtype=array_api_strict.float64)
    """
    xp, (x,), axes, dtype, where = _prepare("softmax", (x,), axis, kwargs)
    with np.errstate(invalid="ignore"):  # -inf - -inf in an all--inf slice -> NaN, as NumPy
        if where is None:
            e = xp.exp(x - _reduce(xp.max, x, axes))
            s = e / _reduce(xp.sum, e, axes)
        else:  # masked-out entries excluded, 0 there; a fully masked slice 0 throughout
            zero = xp.zeros_like(x)
            m = _reduce(xp.max, xp.where(where, x, zero - xp.inf), axes)
            e = xp.where(where, xp.exp(x - m), zero)
            s = xp.where(where, e / _reduce(xp.sum, e, axes), zero)
    return _finish(xp, s, dtype, out)


def log_softmax(x: Any, axis: Any = -1, out: Any = None, **kwargs: Any) -> Any:
    r"""Log-softmax along `axis` in `x`'s own namespace: ``(x - max) - log1p(rest)``.

    ``rest`` is the sum of ``exp(x - max)`` over all entries but one maximum, as in
    :func:`softmax_lib.vectorized.log_softmax`: the top class is right to a few ulp.

    Parameters
    ----------
    x : array
        Logits: any array-API array.
    axis : int, optional
        Axis to normalise over (default: the last).
    out : array, optional
        Where to write the result (``out[...] = result``).
    **kwargs
        Further keywords of :func:`softmax_lib.vectorized.log_softmax` (``where=``).

    Returns
    -------
    array
        Same type, device and (float) dtype as `x`; values :math:`\le 0`.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> log_softmax(xp.asarray([1000.0, 0.0]))
    Array([    0., -1000.], dtype=array_api_strict.float64)
    """
    xp, (x,), axes, dtype, where = _prepare("log_softmax", (x,), axis, kwargs)
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN rows; log1p(-1) masked out
        zero = xp.zeros_like(x)
        xm = x if where is None else xp.where(where, x, zero - xp.inf)
        z = x - _reduce(xp.max, xm, axes)
        top = z == 0  # the maxima: exp(0) = 1 each (none in a NaN row)
        if where is not None:
            top = xp.logical_and(top, where)
        terms = xp.where(top, zero, xp.exp(z))
        if where is not None:
            terms = xp.where(where, terms, zero)
        # rest = the others' sum, plus 1 for each maximum but one
        rest = _reduce(xp.sum, terms, axes) + (_reduce(xp.sum, xp.astype(top, x.dtype), axes) - 1)
        result = z - xp.log1p(rest)
        if where is not None:
            result = xp.where(where, result, zero - xp.inf)
    return _finish(xp, result, dtype, out)


def logsumexp(x: Any, axis: Any = -1, keepdims: bool = False, where: Any = None) -> Any:
    r"""``log(sum(exp(x)))`` along `axis` in `x`'s own namespace: ``m + log1p(rest)``.

    The formula and SciPy's rules of :func:`softmax_lib.vectorized.logsumexp`: ``rest``
    is the sum of ``exp(x - m)`` over all entries but one maximum (the others equal to
    it count 1 each); a slice holding NaN gives NaN, else one holding ``+inf`` gives
    ``+inf``; only ``-inf``, or no entry at all, gives ``-inf``.

    Parameters
    ----------
    x : array
        Logits: any array-API array.
    axis : int, tuple of ints or None, optional
        Axis or axes to reduce (default: the last); None: all of them.
    keepdims : bool, optional
        Keep the reduced axes as dimensions of length 1.
    where : array, optional
        Boolean mask broadcastable to `x`: only the entries where it is True are summed.

    Returns
    -------
    array
        Same type, device and (float) dtype as `x`, the reduced axes removed (kept
        with length 1 if `keepdims`).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> logsumexp(xp.asarray([1000.0, 1000.0]))
    Array(1000.69314718, dtype=array_api_strict.float64)
    """
    kwargs = {"keepdims": keepdims, "where": where}
    xp, (x,), axes, dtype, mask = _prepare("logsumexp", (x,), axis, kwargs)
    kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    if any(x.shape[i] == 0 for i in axes):  # no entry: -inf (the namespaces' max refuses)
        lse = xp.full(kept, -xp.inf, dtype=x.dtype, device=x.device)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):  # non-finite maxima: below
            xm = x if mask is None else xp.where(mask, x, xp.zeros_like(x) - xp.inf)
            m = _reduce(xp.max, xm, axes)  # NaN if the slice holds one; -inf if none left
            d = xm - m
            top = d == 0  # the maxima: exp(0) = 1 each (none in a NaN row)
            terms = xp.where(top, xp.zeros_like(d), xp.exp(d))
            rest = _reduce(xp.sum, terms, axes) + (
                _reduce(xp.sum, xp.astype(top, x.dtype), axes) - 1
            )
            lse = m + xp.log1p(rest)
            lse = xp.where(xp.isfinite(m), lse, m)  # +inf, -inf or NaN: the max decides
    if not keepdims and axes:
        lse = xp.reshape(lse, tuple(n for i, n in enumerate(x.shape) if i not in axes))
    return _finish(xp, lse, dtype, None)


def softmax_vjp(y: Any, dy: Any, axis: Any = -1, out: Any = None, **kwargs: Any) -> Any:
    r"""Softmax VJP ``y * (dy - sum(y * dy))`` in the arrays' own namespace.

    Parameters
    ----------
    y : array
        Softmax output: any array-API array.
    dy : array
        Upstream gradient, same type and shape as `y`.
    axis : int, optional
        The axis softmax was taken over (default: the last).
    out : array, optional
        Where to write the result (``out[...] = result``).
    **kwargs
        Further keywords of :func:`softmax_lib.vectorized.softmax_vjp` (``where=``).

    Returns
    -------
    array
        ``dL/dx``: the type and device of `y`, their common float dtype.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> softmax_vjp(softmax(xp.asarray([1.0, 2.0])), xp.asarray([1.0, 0.0]))
    Array([ 0.19661193, -0.19661193], dtype=array_api_strict.float64)
    """
    xp, (y, dy), axes, dtype, where = _prepare("softmax_vjp", (y, dy), axis, kwargs)
    prod = y * dy
    if where is not None:
        prod = xp.where(where, prod, xp.zeros_like(prod))
    result = y * (dy - _reduce(xp.sum, prod, axes))
    if where is not None:
        result = xp.where(where, result, xp.zeros_like(result))
    return _finish(xp, result, dtype, out)


def log_softmax_vjp(y: Any, dy: Any, axis: Any = -1, out: Any = None, **kwargs: Any) -> Any:
    r"""Log-softmax VJP ``dy - exp(y) * sum(dy)`` in the arrays' own namespace.

    Where ``exp(y) > 1/2`` it is ``(dy - sum) - expm1(y) * sum``, as in
    :func:`softmax_lib.vectorized.log_softmax_vjp`, so the top class keeps the small
    ``1 - exp(y)`` the result is made of.

    Parameters
    ----------
    y : array
        Log-softmax output: any array-API array.
    dy : array
        Upstream gradient, same type and shape as `y`.
    axis : int, optional
        The axis log-softmax was taken over (default: the last).
    out : array, optional
        Where to write the result (``out[...] = result``).
    **kwargs
        Further keywords of :func:`softmax_lib.vectorized.log_softmax_vjp` (``where=``).

    Returns
    -------
    array
        ``dL/dx``: the type and device of `y`, their common float dtype.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> log_softmax_vjp(log_softmax(xp.asarray([1.0, 2.0])), xp.asarray([1.0, 0.0]))
    Array([ 0.73105858, -0.73105858], dtype=array_api_strict.float64)
    """
    xp, (y, dy), axes, dtype, where = _prepare("log_softmax_vjp", (y, dy), axis, kwargs)
    zero = xp.zeros_like(y)
    if where is not None:
        dy = xp.where(where, dy, zero)
    total = _reduce(xp.sum, dy, axes)
    top = y > -_LN2  # exp(y) near 1: expm1 keeps 1 - exp(y)
    general = dy - xp.exp(y) * total
    near_one = (dy - total) - xp.expm1(y) * total
    result = xp.where(top, near_one, general)
    if where is not None:
        result = xp.where(where, result, zero)
    return _finish(xp, result, dtype, out)
