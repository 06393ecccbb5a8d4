"""Softmax, log-softmax, logsumexp and the vector-Jacobian products in vectorized NumPy.

Every function works along an ``axis`` of an array of any shape, passing that
axis with ``keepdims=True`` to each reduction, and writes into ``out`` when given
(``out`` may be the input itself). None of them forms an ``n x n`` matrix except
:func:`softmax_jacobian`, which exists for teaching and tests.

``axis`` is an int, a tuple of ints or None (all axes: the slice is their product;
``softmax_lib._checks`` moves them last and merges them); 0-d input is one
slice of one element; float16 is computed in float32 and returned as float16;
``where=`` is a boolean mask (JAX's meaning). What differs from SciPy's
``scipy.special.softmax`` / ``log_softmax`` / ``logsumexp``: the default axis is
-1 here (None there); ``where=`` and the VJPs exist here, ``logsumexp``'s ``b=``
and ``return_sign=`` do not; ``out=`` exists here. As in SciPy, an array-API
array (a torch tensor) keeps its type (``softmax_lib.array_api``), and here a
dask array stays lazy (``softmax_lib.dask_blockwise``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import (
    along_one_axis,
    copy_into,
    jacobian_args,
    overlaps_itself,
    reduce,
    vjp_along_one_axis,
)

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_vjp",
    "log_softmax_vjp",
    "softmax_jacobian",
]

Axis = int | tuple[int, ...] | None


def _finish(out, result):
    """`result` written into `out` if given, else `result`."""
    return result if out is None else copy_into(out, result)


def _masked(x, mask):
    """`x` with the entries outside `mask` set to -inf (a new array)."""
    return np.where(mask, x, -np.inf).astype(x.dtype, copy=False)


def _safe_max(x, axis):
    """The max along `axis` (keepdims); -inf for a slice of no entries."""
    return np.max(x, axis=axis, keepdims=True, initial=-np.inf)


def _masked_softmax(x, axis, mask):
    """Softmax of the entries in `mask`, 0 elsewhere; a slice with none: zeros."""
    xm = _masked(x, mask)
    m = _safe_max(xm, axis)
    empty = ~np.any(mask, axis=axis, keepdims=True)
    m[empty] = 0.0  # no entry: every term exp(-inf) = 0, not exp(NaN)
    with np.errstate(invalid="ignore"):  # unmasked entries all -inf: NaN, as without a mask
        e = np.exp(xm - m)
    total = np.sum(e, axis=axis, keepdims=True)
    total[empty] = 1.0
    result = np.zeros_like(x)
    np.divide(e, total, out=result, where=mask)
    return result


def _masked_log_softmax(x, axis, mask):
    """Log-softmax of the entries in `mask`, -inf elsewhere; a slice with none: -inf."""
    xm = _masked(x, mask)
    m = _safe_max(xm, axis)
    empty = ~np.any(mask, axis=axis, keepdims=True)
    m[empty] = 0.0
    with np.errstate(invalid="ignore"):
        d = xm - m
        top = (d == 0) & mask
        terms = np.exp(d)
        terms[top] = 0.0
        rest = np.sum(terms, axis=axis, keepdims=True)
        rest += np.sum(top, axis=axis, keepdims=True, dtype=x.dtype) - 1
        rest[empty] = 0.0  # log1p(-1) would be -inf and -inf - -inf NaN
        d -= np.log1p(rest)
    d[~mask] = -np.inf
    return d


def _logsumexp(x, axis, mask):
    """log(sum(exp(x))) along `axis` (kept, length 1), SciPy's inf/NaN rules."""
    xm = x if mask is None else _masked(x, mask)
    m = _safe_max(xm, axis)  # NaN if the slice holds one; -inf if empty
    with np.errstate(invalid="ignore", divide="ignore"):
        d = xm - m  # NaN throughout a slice whose max is not finite: replaced below
        top = d == 0
        terms = np.exp(d)
        terms[top] = 0.0
        rest = np.sum(terms, axis=axis, keepdims=True)
        rest += np.sum(top, axis=axis, keepdims=True, dtype=x.dtype) - 1
        lse = m + np.log1p(rest)
    # max +inf: +inf; max -inf (only -inf, or nothing): -inf; NaN anywhere: NaN
    return np.where(np.isfinite(m), lse, m)


@along_one_axis
def softmax(
    x: ArrayLike,
    axis: Axis = -1,
    out: NDArray[np.floating] | None = None,
    where: ArrayLike | None = None,
) -> NDArray[np.floating]:
    r"""Softmax along `axis`: ``exp(x - max) / sum(exp(x - max))``.

    Parameters
    ----------
    x : array_like
        Logits. float16/32/64 keep their dtype (float16 computed in
        float32); integers give float64.
    axis : int, tuple of ints or None, optional
        Axis or axes to normalise over (default: the last); None: all of
        them, as one slice.
    out : ndarray, optional
        Where to write the result; same shape and dtype as the result.
        May be `x`.
    where : array_like of bool, optional
        Mask broadcastable to `x`: only the entries where it is True take
        part; the result is 0 elsewhere, and throughout a slice with no
        entry.

    Returns
    -------
    ndarray
        Non-negative values that sum to 1 along `axis`. A slice that holds
        NaN or ``+inf``, or only ``-inf``, gives NaN throughout that slice.

    Notes
    -----
    .. math::

        s_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \quad m = \max_j x_j

    Subtracting the maximum changes nothing mathematically and keeps every
    exponent :math:`\le 0`, so nothing overflows.

    Examples
    --------
    >>> softmax([1.0, 2.0])
    array([0.26894142, 0.73105858])

    Without the shift, ``exp(1000)`` overflows; with it the answer is exact:

    >>> softmax([1000.0, 0.0])
    array([1., 0.])
    """
    if x.size == 0:
        return np.empty_like(x) if out is None else out
    if where is not None:
        return _finish(out, _masked_softmax(x, axis, where))
    if out is not None and overlaps_itself(out):
        # an as_strided out: as NumPy's ufuncs
        return copy_into(out, softmax(x, axis))
    m = np.max(x, axis=axis, keepdims=True)
    # -inf - -inf in an all--inf slice -> NaN
    with np.errstate(invalid="ignore"):
        out = np.subtract(x, m, out=out)
    np.exp(out, out=out)
    out /= np.sum(out, axis=axis, keepdims=True)
    return out


@along_one_axis
def log_softmax(
    x: ArrayLike,
    axis: Axis = -1,
    out: NDArray[np.floating] | None = None,
    where: ArrayLike | None = None,
) -> NDArray[np.floating]:
    r"""Log-softmax along `axis`: ``x - max - log(sum(exp(x - max)))``.

    Parameters
    ----------
    x : array_like
        Logits. float16/32/64 keep their dtype (float16 computed in
        float32); integers give float64.
    axis : int, tuple of ints or None, optional
        Axis or axes to normalise over (default: the last); None: all of
        them, as one slice.
    out : ndarray, optional
        Where to write the result; same shape and dtype as the result.
        May be `x`.
    where : array_like of bool, optional
        Mask broadcastable to `x`: only the entries where it is True take
        part; the result is ``-inf`` elsewhere, and throughout a slice
        with no entry.

    Returns
    -------
    ndarray
        Values :math:`\le 0` whose exponentials sum to 1 along `axis`.

    Notes
    -----
    .. math::

        \log s_i = (x_i - m)
        - \operatorname{log1p}\Big(\sum_{j \ne k} e^{x_j - m}\Big)

    where :math:`x_k = m` is one maximum (the others equal to it count 1
    each). The sum of all the exponentials is :math:`1 + \text{rest}`;
    ``log`` of it would round away the small part, ``log1p(rest)`` keeps
    it, so the top class (the entry an NLL loss reads) is right to a few
    ulp. The terms are subtracted in that order: ``x - m`` is exact for the
    largest entries.

    Examples
    --------
    >>> log_softmax([1.0, 2.0])
    array([-1.31326169, -0.31326169])

    ``np.log(softmax(x))`` underflows to ``-inf`` where this stays finite:

    >>> log_softmax([1000.0, 0.0])
    array([    0., -1000.])

    and ``log`` of the sum would give 0 for the top class here:

    >>> log_softmax([40.0, 0.0])[0]
    np.float64(-4.248354255291589e-18)
    """
    if x.size == 0:
        return np.empty_like(x) if out is None else out
    if where is not None:
        return _finish(out, _masked_log_softmax(x, axis, where))
    if out is not None and overlaps_itself(out):
        # an as_strided out: as NumPy's ufuncs
        return copy_into(out, log_softmax(x, axis))
    m = np.max(x, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):  # -inf - -inf, inf - inf: NaN rows
        out = np.subtract(x, m, out=out)
        top = out == 0  # the maxima: exp(0) = 1 each (none in a NaN row)
        terms = np.exp(out)
        terms[top] = 0.0
        # rest = the others' sum, plus 1 for each maximum but one
        rest = np.sum(terms, axis=axis, keepdims=True)
        rest += np.sum(top, axis=axis, keepdims=True, dtype=x.dtype) - 1
        out -= np.log1p(rest)
    return out


def logsumexp(
    x: ArrayLike, axis: Axis = -1, keepdims: bool = False, where: ArrayLike | None = None
) -> NDArray[np.floating]:
    r"""``log(sum(exp(x)))`` along `axis`, without overflow; its gradient is softmax.

    Parameters
    ----------
    x : array_like
        Logits. float16/32/64 keep their dtype; integers give float64.
    axis : int, tuple of ints or None, optional
        Axis or axes to reduce (default: the last); None: all of them.
    keepdims : bool, optional
        Keep the reduced axes as dimensions of length 1.
    where : array_like of bool, optional
        Mask broadcastable to `x`: only the entries where it is True are summed.

    Returns
    -------
    ndarray
        The shape of `x` without the reduced axes (always an ndarray, 0-d for a
        full reduction). As SciPy: a slice holding NaN gives NaN, else one holding
        ``+inf`` gives ``+inf``; only ``-inf``, or no entry at all, gives ``-inf``.

    Notes
    -----
    .. math:: \operatorname{lse}(x) = m + \operatorname{log1p}\Big(\sum_{j \ne k} e^{x_j - m}\Big)

    with :math:`x_k = m` one maximum (the others equal to it count 1 each), as in
    :func:`log_softmax`, whose top class is :math:`m - \operatorname{lse}(x)`;
    :math:`\partial \operatorname{lse} / \partial x = \operatorname{softmax}(x)`.

    Examples
    --------
    >>> logsumexp([1000.0, 1000.0])
    array(1000.69314718)
    """
    return reduce(_logsumexp, x, axis, keepdims, where)


@vjp_along_one_axis
def softmax_vjp(
    y: ArrayLike,
    dy: ArrayLike,
    axis: Axis = -1,
    out: NDArray[np.floating] | None = None,
    where: ArrayLike | None = None,
) -> NDArray[np.floating]:
    r"""Vector-Jacobian product of softmax: ``y * (dy - sum(y * dy))``.

    Given ``y = softmax(x)`` and the upstream gradient ``dy = dL/dy``, returns
    ``dL/dx = J^T dy`` in O(n) per slice, without forming the Jacobian.

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
        The mask the forward pass used; the gradient is 0 outside it.

    Returns
    -------
    ndarray
        ``dL/dx``, the shape of `y`. It sums to 0 along `axis` (softmax ignores a
        constant shift of its input, so the gradient has no component along 1).

    Notes
    -----
    With :math:`J = \operatorname{diag}(s) - s s^T` (symmetric),

    .. math:: J^T g = s \odot g - s (s^T g) = s \odot (g - \langle s, g \rangle).

    Examples
    --------
    >>> y = softmax([1.0, 2.0])
    >>> softmax_vjp(y, [1.0, 0.0])
    array([ 0.19661193, -0.19661193])

    The elementwise "derivative" ``y * (1 - y) * dy`` keeps only J's diagonal
    and gives ``[0.19661193, 0.]`` here: wrong.
    """
    if y.size == 0:
        return np.empty_like(y) if out is None else out
    if where is not None:
        # entries outside the mask take no part (inf * 0 there: ignored)
        with np.errstate(invalid="ignore", over="ignore"):
            dots = np.sum(y * dy, axis=axis, where=where)
            dot = np.expand_dims(dots, axis)
            result = np.zeros_like(y)
            np.multiply(y, dy - dot, out=result, where=where)
        return _finish(out, result)
    if out is not None and overlaps_itself(out):
        # an as_strided out: as NumPy's ufuncs
        return copy_into(out, softmax_vjp(y, dy, axis))
    # <s, g> per slice
    dot = np.expand_dims(np.vecdot(y, dy, axis=axis), axis)
    if out is None:
        out = dy - dot
        out *= y
    elif np.shares_memory(out, y):
        # writing dy - dot into out would destroy y
        np.multiply(y, dy - dot, out=out)
    else:
        np.subtract(dy, dot, out=out)
        out *= y
    return out


@vjp_along_one_axis
def log_softmax_vjp(
    y: ArrayLike,
    dy: ArrayLike,
    axis: Axis = -1,
    out: NDArray[np.floating] | None = None,
    where: ArrayLike | None = None,
) -> NDArray[np.floating]:
    r"""Vector-Jacobian product of log-softmax: ``dy - exp(y) * sum(dy)``.

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
        The mask the forward pass used; the gradient is 0 outside it.

    Returns
    -------
    ndarray
        ``dL/dx``, the shape of `y`; it sums to 0 along `axis`.

    Notes
    -----
    The Jacobian of log-softmax is :math:`I - \mathbf{1} s^T`, so
    :math:`J^T g = g - s \sum_i g_i` with :math:`s = e^{y}`; where
    :math:`s > 1/2` it is computed as :math:`(g - \sum_i g_i) - (s - 1) \sum_i g_i`
    with :math:`s - 1` = ``expm1(y)``.

    Examples
    --------
    >>> log_softmax_vjp(log_softmax([1.0, 2.0]), [1.0, 0.0])
    array([ 0.73105858, -0.73105858])
    """
    if y.size == 0:
        return np.empty_like(y) if out is None else out
    if where is not None:
        # Outside the mask y is -inf; the result there is 0 whatever y holds.
        ym, dym = np.where(where, y, -np.inf), np.where(where, dy, 0)
        result = log_softmax_vjp(ym, dym, axis)
        result[~where] = 0.0
        return _finish(out, result.astype(y.dtype, copy=False))
    if out is not None and overlaps_itself(out):
        # an as_strided out: as NumPy's ufuncs
        return copy_into(out, log_softmax_vjp(y, dy, axis))
    total = np.sum(dy, axis=axis, keepdims=True)
    # exp(y) near 1 (y > -ln 2, at most one entry per slice: the top class) would
    # round away the 1 - exp(y) the result is made of: there, expm1 keeps it.
    top = y > -np.log(2.0)
    fixed = None
    if top.any():  # computed before out is written: out may be y or dy
        t = np.broadcast_to(total, y.shape)[top]
        fixed = (dy[top] - t) - np.expm1(y[top]) * t
    s = np.exp(y)  # computed before out is written: out may be y
    s *= total
    out = np.subtract(dy, s, out=out)
    if fixed is not None:
        out[top] = fixed
    return out


def softmax_jacobian(y: ArrayLike, axis: int = -1) -> NDArray[np.floating]:
    r"""The explicit softmax Jacobians ``diag(s) - s s^T``, one per slice.

    For teaching and tests: backpropagation needs only :func:`softmax_vjp`.

    Parameters
    ----------
    y : array_like
        Softmax output.
    axis : int, optional
        The axis softmax was taken over (default: the last). One axis only:
        None or a tuple raises ``TypeError``.

    Returns
    -------
    ndarray
        Shape ``(..., n, n)``: the other axes of `y` in order, then the matrix.
        Each matrix is symmetric with rows summing to 0.

    Examples
    --------
    >>> softmax_jacobian(softmax([1.0, 2.0]))
    array([[ 0.19661193, -0.19661193],
           [-0.19661193,  0.19661193]])
    """
    y, axis, dtype = jacobian_args(y, axis)
    s = np.moveaxis(y, axis, -1)
    jac = -s[..., :, None] * s[..., None, :]
    # a writable view of the diagonals
    diagonal = np.einsum("...ii->...i", jac)
    diagonal += s
    return jac.astype(dtype, copy=False)


# Array-API and dask arrays keep their type here too (softmax_lib._frontends).
from ._frontends import dispatching as _dispatching  # noqa: E402
from ._frontends import dispatching_reduction as _dispatching_reduction  # noqa: E402

softmax = _dispatching(softmax, "softmax")
log_softmax = _dispatching(log_softmax, "log_softmax")
softmax_vjp = _dispatching(softmax_vjp, "softmax_vjp", arrays=2)
log_softmax_vjp = _dispatching(log_softmax_vjp, "log_softmax_vjp", arrays=2)
logsumexp = _dispatching_reduction(logsumexp, "logsumexp")
