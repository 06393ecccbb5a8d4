"""Softmax, log-softmax, logsumexp, the vector-Jacobian products and the Jacobian as plain loops.

Written to teach, not to be fast: every 1-D slice along ``axis`` is read into a
list of Python floats, computed with one loop per idea, and written back. The
arithmetic is in double precision; a float32 result is rounded once when stored.
Reading a whole slice before writing any of it is what lets ``out`` be the input.
With ``where=``, a slice is the list of its entries inside the mask, and the
entries outside get the value of an empty softmax (0) or log-softmax (-inf).

``axis=None`` and tuples of axes (the slice is their product), 0-d input and
float16 (computed here in double, returned as float16) are brought to one integer
axis by ``softmax_lib._checks``. What differs from SciPy's
``scipy.special.softmax`` / ``log_softmax`` / ``logsumexp``: the default axis is
-1 here (None there); ``where=``, ``out=`` and the VJPs exist here,
``logsumexp``'s ``b=`` and ``return_sign=`` do not.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import (
    along_one_axis,
    copy_into,
    detach,
    jacobian_args,
    jacobian_shape,
    overlaps_itself,
    reduce,
    vjp_along_one_axis,
)

Axis = int | tuple[int, ...] | None

LN2 = math.log(2.0)  # exp(y) > 1/2 where y > -LN2

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_vjp",
    "log_softmax_vjp",
    "softmax_jacobian",
]


def slices_along(shape, axis):
    """Yield ``(index, row)``: each other-axes index and the selector of its 1-D slice.

    ``a[row]`` is the slice of `a` along `axis` at the other-axes position `index`.
    """
    other_axes = shape[:axis] + shape[axis + 1 :]
    for index in np.ndindex(other_axes):
        yield index, index[:axis] + (slice(None),) + index[axis:]


def softmax_row(x):
    """Softmax of a list of floats: find the max, exponentiate and sum, scale."""
    if not x:
        return []
    m = x[0]
    # 1. the max, so that every exponent below is <= 0 and cannot overflow
    for v in x:
        if v > m:
            m = v
    exps, total = [], 0.0
    for v in x:  # 2. exponentiate the shifted logits and add them up
        e = math.exp(v - m)
        exps.append(e)
        total += e
    return [e / total for e in exps]  # 3. scale so that the row sums to 1


def log_softmax_row(x):
    """Log-softmax of a list of floats: ``(x_i - m) - log1p(rest)``.

    ``rest`` sums ``exp(x_j - m)`` over every entry but one maximum (other entries
    equal to the maximum count 1 each). ``log(sum)`` would round away the small
    part of ``sum = 1 + rest``; ``log1p(rest)`` keeps it, so the top class, whose
    log-probability is ``-log1p(rest)``, is right to the last bits.
    """
    if not x:
        return []
    m = x[0]
    for v in x:  # 1. the max
        if v > m:
            m = v
    rest, skipped = 0.0, False
    for v in x:  # 2. the shifted exponentials, except one maximum's exp(0) = 1
        if v - m == 0 and not skipped:  # (never when m is inf or NaN: the row is NaN)
            skipped = True
            continue
        rest += math.exp(v - m)
    log_total = math.log1p(rest)  # log(1 + rest) = log(sum exp(x - m))
    return [(v - m) - log_total for v in x]  # 3. subtract; x - m first keeps it exact


def logsumexp_row(x):
    """``log(sum(exp(x)))`` of a list of floats: ``m + log1p(rest)``, as in
    :func:`log_softmax_row` (whose top class is ``m - logsumexp``).

    SciPy's rules where the max is not finite: NaN anywhere gives NaN; else
    ``+inf`` gives ``+inf``; only ``-inf``, or an empty list (a sum of nothing is
    0), gives ``-inf``.
    """
    if not x:
        return -math.inf
    if any(math.isnan(v) for v in x):
        return math.nan
    m = max(x)  # 1. the max
    if math.isinf(m):
        return m
    rest, skipped = 0.0, False
    for v in x:  # 2. the shifted exponentials, except one maximum's exp(0) = 1
        if v == m and not skipped:
            skipped = True
            continue
        rest += math.exp(v - m)
    return m + math.log1p(rest)  # 3. log(sum) = m + log(1 + rest)


def softmax_vjp_row(s, g):
    """``J^T g`` for one row: the dot ``<s, g>`` once, then ``s_i (g_i - <s, g>)``."""
    dot = 0.0
    for si, gi in zip(s, g, strict=True):  # 1. one O(n) dot product
        dot += si * gi
    # 2. scale: O(n), no matrix
    return [si * (gi - dot) for si, gi in zip(s, g, strict=True)]


def log_softmax_vjp_row(y, g):
    """``J^T g`` of log-softmax for one row: ``g_i - exp(y_i) * sum(g)``.

    Where ``exp(y_i) > 1/2`` (at most one entry, the top class) it is computed as
    ``(g_i - sum(g)) - expm1(y_i) * sum(g)``: ``exp(y_i)`` near 1 would round away
    the ``1 - exp(y_i)`` that the result (e.g. NLL's gradient ``s - 1``) is made of.
    """
    total = 0.0
    for gi in g:  # 1. the sum of the upstream gradient
        total += gi
    return [
        (gi - total) - math.expm1(yi) * total if yi > -LN2 else gi - math.exp(yi) * total
        for yi, gi in zip(y, g, strict=True)
    ]  # 2. subtract s * sum


def jacobian_row(s):
    """The ``n x n`` matrix ``J[i][j] = s_i (delta_ij - s_j)``, by a double loop."""
    n = len(s)
    jac = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            delta = 1.0 if i == j else 0.0  # the Kronecker delta
            jac[i][j] = s[i] * (delta - s[j])
    return jac


def on_slice(row_func, row, where, fill, *arrays):
    """`row_func` on the lists of the slice `row` of `arrays`; with a mask `where`,
    on the entries inside it only, the others of the slice getting `fill`."""
    if where is None:
        return row_func(*(a[row].tolist() for a in arrays))
    keep = where[row]
    values = np.full(keep.shape, fill)
    values[keep] = row_func(*(a[row][keep].tolist() for a in arrays))
    return values


def _logsumexp(x, axis, mask):
    """logsumexp along `axis`, which is kept with length 1."""
    result = np.empty(x.shape[:axis] + (1,) + x.shape[axis + 1 :], dtype=x.dtype)
    for index, row in slices_along(x.shape, axis):
        values = x[row] if mask is None else x[row][mask[row]]
        result[index[:axis] + (0,) + index[axis:]] = logsumexp_row(values.tolist())
    return result


@along_one_axis
def softmax(
    x: ArrayLike,
    axis: Axis = -1,
    out: NDArray[np.floating] | None = None,
    where: ArrayLike | None = None,
) -> NDArray[np.floating]:
    r"""Softmax along `axis`, one slice at a time.

    Parameters
    ----------
    x : array_like
        Logits. float16/32/64 keep their dtype (float16 computed in float32);
        integers give float64.
    axis : int, tuple of ints or None, optional
        Axis or axes to normalise over (default: the last); None: all of them,
        as one slice.
    out : ndarray, optional
        Where to write the result; same shape and dtype as the result. May be `x`.
    where : array_like of bool, optional
        Mask broadcastable to `x`: only the entries where it is True take part;
        the result is 0 elsewhere, and throughout a slice with no entry.

    Returns
    -------
    ndarray
        Non-negative values that sum to 1 along `axis`. A slice that holds NaN or
        ``+inf``, or only ``-inf``, gives NaN throughout that slice.

    Notes
    -----
    .. math:: s_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \quad m = \max_j x_j

    Examples
    --------
    >>> softmax([1.0, 2.0])
    array([0.26894142, 0.73105858])
    """
    if out is None:
        out = np.empty_like(x)
    elif overlaps_itself(out):  # an as_strided out: as if x were copied first
        return copy_into(out, softmax(x, axis, where=where))
    x = detach(x, out)  # out overlapping x elsewhere than row for row: read a copy
    for _, row in slices_along(x.shape, axis):
        out[row] = on_slice(softmax_row, row, where, 0.0, x)
    return out


@along_one_axis
def log_softmax(
    x: ArrayLike,
    axis: Axis = -1,
    out: NDArray[np.floating] | None = None,
    where: ArrayLike | None = None,
) -> NDArray[np.floating]:
    r"""Log of the softmax along `axis`, one slice at a time.

    Parameters
    ----------
    x : array_like
        Logits. float16/32/64 keep their dtype (float16 computed in float32);
        integers give float64.
    axis : int, tuple of ints or None, optional
        Axis or axes to normalise over (default: the last); None: all of them,
        as one slice.
    out : ndarray, optional
        Where to write the result; may be `x`.
    where : array_like of bool, optional
        Mask broadcastable to `x`: only the entries where it is True take part;
        the result is ``-inf`` elsewhere, and throughout a slice with no entry.

    Returns
    -------
    ndarray
        Values :math:`\le 0` whose exponentials sum to 1 along `axis`.

    Notes
    -----
    .. math:: \log s_i = (x_i - m) - \operatorname{log1p} \sum_{j \ne k} e^{x_j - m}

    where :math:`x_k = m` is one maximum (``log_softmax_row`` above).

    Examples
    --------
    >>> log_softmax([1000.0, 0.0])
    array([    0., -1000.])
    """
    if out is None:
        out = np.empty_like(x)
    elif overlaps_itself(out):  # an as_strided out: as if x were copied first
        return copy_into(out, log_softmax(x, axis, where=where))
    x = detach(x, out)  # out overlapping x elsewhere than row for row: read a copy
    for _, row in slices_along(x.shape, axis):
        out[row] = on_slice(log_softmax_row, row, where, -math.inf, x)
    return out


def logsumexp(
    x: ArrayLike, axis: Axis = -1, keepdims: bool = False, where: ArrayLike | None = None
) -> NDArray[np.floating]:
    r"""``log(sum(exp(x)))`` along `axis`, one slice at a time (``logsumexp_row``).

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
        The shape of `x` without the reduced axes (0-d for a full reduction).
        NaN in a slice gives NaN, else ``+inf`` gives ``+inf``; only ``-inf``,
        or no entry, gives ``-inf`` (SciPy's rules).

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
    r"""Vector-Jacobian product of softmax, ``y * (dy - sum(y * dy))``, slice by slice.

    Parameters
    ----------
    y : array_like
        Softmax output.
    dy : array_like
        Upstream gradient ``dL/dy``, same shape as `y`.
    axis : int, tuple of ints or None, optional
        The axis or axes softmax was taken over (default: the last).
    out : ndarray, optional
        Where to write the result; may be `y` or `dy`.
    where : array_like of bool, optional
        The mask the forward pass used; the gradient is 0 outside it.

    Returns
    -------
    ndarray
        ``dL/dx = J^T dy``, the shape of `y`; it sums to 0 along `axis`.

    Notes
    -----
    .. math:: J^T g = s \odot (g - \langle s, g \rangle)

    Examples
    --------
    >>> softmax_vjp(softmax([1.0, 2.0]), [1.0, 0.0])
    array([ 0.19661193, -0.19661193])
    """
    if out is None:
        out = np.empty_like(y)
    elif overlaps_itself(out):
        # an as_strided out: as if y, dy were copied first
        return copy_into(out, softmax_vjp(y, dy, axis, where=where))
    y, dy = detach(y, out), detach(dy, out)
    for _, row in slices_along(y.shape, axis):
        out[row] = on_slice(softmax_vjp_row, row, where, 0.0, y, dy)
    return out


@vjp_along_one_axis
def log_softmax_vjp(
    y: ArrayLike,
    dy: ArrayLike,
    axis: Axis = -1,
    out: NDArray[np.floating] | None = None,
    where: ArrayLike | None = None,
) -> NDArray[np.floating]:
    r"""Vector-Jacobian product of log-softmax, ``dy - exp(y) * sum(dy)``, slice by slice.

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
    The Jacobian is :math:`I - \mathbf{1} s^T`, so :math:`J^T g = g - s \sum_i g_i`.

    Examples
    --------
    >>> log_softmax_vjp(log_softmax([1.0, 2.0]), [1.0, 0.0])
    array([ 0.73105858, -0.73105858])
    """
    if out is None:
        out = np.empty_like(y)
    elif overlaps_itself(out):  # an as_strided out: as if y, dy were copied first
        return copy_into(out, log_softmax_vjp(y, dy, axis, where=where))
    y, dy = detach(y, out), detach(dy, out)
    for _, row in slices_along(y.shape, axis):
        out[row] = on_slice(log_softmax_vjp_row, row, where, 0.0, y, dy)
    return out


def softmax_jacobian(y: ArrayLike, axis: int = -1) -> NDArray[np.floating]:
    r"""The explicit softmax Jacobians, filled entry by entry.

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
        Shape ``(..., n, n)``: the other axes of `y` in order, then the matrix
        :math:`J_{ij} = s_i (\delta_{ij} - s_j)`, symmetric with rows summing to 0.

    Examples
    --------
    >>> softmax_jacobian(softmax([1.0, 2.0]))
    array([[ 0.19661193, -0.19661193],
           [-0.19661193,  0.19661193]])
    """
    y, axis, dtype = jacobian_args(y, axis)
    jac = np.empty(jacobian_shape(y.shape, axis), dtype=y.dtype)
    for index, row in slices_along(y.shape, axis):
        jac[index] = jacobian_row(y[row].tolist())
    return jac.astype(dtype, copy=False)
