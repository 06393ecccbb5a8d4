"""Softmax, log-softmax and their vector-Jacobian products in vectorized NumPy.

Every function works along one ``axis`` of an array of any shape, passing that
axis with ``keepdims=True`` to each reduction, and writes into ``out`` when given
(``out`` may be the input itself). None of them forms an ``n x n`` matrix except
:func:`softmax_jacobian`, which exists for teaching and tests.
"""

import numpy as np

from ._checks import copy_into, overlaps_itself, prepare, prepare_vjp

__all__ = ["softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp", "softmax_jacobian"]


def softmax(x, axis=-1, out=None):
    r"""Softmax along `axis`: ``exp(x - max) / sum(exp(x - max))``.

    Parameters
    ----------
    x : array_like
        Logits. float32 stays float32; integers are promoted to float64.
    axis : int, optional
        Axis to normalise over (default: the last).
    out : ndarray, optional
        Where to write the result; same shape and dtype as the result. May be `x`.

    Returns
    -------
    ndarray
        Non-negative values that sum to 1 along `axis`. A slice that holds NaN or
        ``+inf``, or only ``-inf``, gives NaN throughout that slice.

    Notes
    -----
    .. math:: s_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}}, \quad m = \max_j x_j

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
    x, axis, out = prepare(x, axis, out)
    if x.size == 0:
        return np.empty_like(x) if out is None else out
    if out is not None and overlaps_itself(out):  # an as_strided out: as NumPy's ufuncs
        return copy_into(out, softmax(x, axis))
    m = np.max(x, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):  # -inf - -inf in an all--inf slice -> NaN
        out = np.subtract(x, m, out=out)
    np.exp(out, out=out)
    out /= np.sum(out, axis=axis, keepdims=True)
    return out


def log_softmax(x, axis=-1, out=None):
    r"""Log of the softmax along `axis`: ``x - max - log(sum(exp(x - max)))``.

    Parameters
    ----------
    x : array_like
        Logits. float32 stays float32; integers are promoted to float64.
    axis : int, optional
        Axis to normalise over (default: the last).
    out : ndarray, optional
        Where to write the result; same shape and dtype as the result. May be `x`.

    Returns
    -------
    ndarray
        Values :math:`\le 0` whose exponentials sum to 1 along `axis`.

    Notes
    -----
    .. math:: \log s_i = (x_i - m) - \operatorname{log1p}\Big(\sum_{j \ne k} e^{x_j - m}\Big)

    where :math:`x_k = m` is one maximum (the others equal to it count 1 each).
    The sum of all the exponentials is :math:`1 + \text{rest}`; ``log`` of it would
    round away the small part, ``log1p(rest)`` keeps it, so the top class (the
    entry an NLL loss reads) is right to a few ulp. The terms are subtracted in
    that order: ``x - m`` is exact for the largest entries.

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
    x, axis, out = prepare(x, axis, out)
    if x.size == 0:
        return np.empty_like(x) if out is None else out
    if out is not None and overlaps_itself(out):  # an as_strided out: as NumPy's ufuncs
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


def softmax_vjp(y, dy, axis=-1, out=None):
    r"""Vector-Jacobian product of softmax: ``y * (dy - sum(y * dy))``.

    Given ``y = softmax(x)`` and the upstream gradient ``dy = dL/dy``, returns
    ``dL/dx = J^T dy`` in O(n) per slice, without forming the Jacobian.

    Parameters
    ----------
    y : array_like
        Softmax output.
    dy : array_like
        Upstream gradient, same shape as `y`.
    axis : int, optional
        The axis softmax was taken over (default: the last).
    out : ndarray, optional
        Where to write the result; may be `y` or `dy`.

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
    y, dy, axis, out = prepare_vjp(y, dy, axis, out)
    if y.size == 0:
        return np.empty_like(y) if out is None else out
    if out is not None and overlaps_itself(out):  # an as_strided out: as NumPy's ufuncs
        return copy_into(out, softmax_vjp(y, dy, axis))
    dot = np.expand_dims(np.vecdot(y, dy, axis=axis), axis)  # <s, g> per slice
    if out is None:
        out = dy - dot
        out *= y
    elif np.shares_memory(out, y):  # writing dy - dot into out would destroy y
        np.multiply(y, dy - dot, out=out)
    else:
        np.subtract(dy, dot, out=out)
        out *= y
    return out


def log_softmax_vjp(y, dy, axis=-1, out=None):
    r"""Vector-Jacobian product of log-softmax: ``dy - exp(y) * sum(dy)``.

    Parameters
    ----------
    y : array_like
        Log-softmax output.
    dy : array_like
        Upstream gradient, same shape as `y`.
    axis : int, optional
        The axis log-softmax was taken over (default: the last).
    out : ndarray, optional
        Where to write the result; may be `y` or `dy`.

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
    y, dy, axis, out = prepare_vjp(y, dy, axis, out)
    if y.size == 0:
        return np.empty_like(y) if out is None else out
    if out is not None and overlaps_itself(out):  # an as_strided out: as NumPy's ufuncs
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


def softmax_jacobian(y, axis=-1):
    r"""The explicit softmax Jacobians ``diag(s) - s s^T``, one per slice.

    For teaching and tests: backpropagation needs only :func:`softmax_vjp`.

    Parameters
    ----------
    y : array_like
        Softmax output.
    axis : int, optional
        The axis softmax was taken over (default: the last).

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
    y, axis, _ = prepare(y, axis, None, name="y")
    s = np.moveaxis(y, axis, -1)
    jac = -s[..., :, None] * s[..., None, :]
    diagonal = np.einsum("...ii->...i", jac)  # a writable view of the diagonals
    diagonal += s
    return jac


# issue 11 items 5-6 (array API, dask): other array types keep their type here too.
from ._frontends import dispatching as _dispatching  # noqa: E402

softmax = _dispatching(softmax, "softmax")
log_softmax = _dispatching(log_softmax, "log_softmax")
softmax_vjp = _dispatching(softmax_vjp, "softmax_vjp", arrays=2)
log_softmax_vjp = _dispatching(log_softmax_vjp, "log_softmax_vjp", arrays=2)
# end issue 11 items 5-6
