"""Gradient checking by central finite differences, in float64.

:func:`gradcheck` compares an activation's analytic ``backward`` (fed the loss's
``grad``) with the numerical gradient of ``loss.value(activation.forward(x))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["numerical_gradient", "relative_error", "gradcheck"]


def numerical_gradient(
    f: Callable[[NDArray[np.float64]], float], x: ArrayLike, eps: float = 1e-6
) -> NDArray[np.float64]:
    r"""Central-difference gradient of the scalar function `f` at `x`, in float64.

    .. math:: \frac{\partial f}{\partial x_k} \approx
              \frac{f(x + h e_k) - f(x - h e_k)}{2h}

    The error is :math:`O(h^2)` from truncation plus about
    :math:`\epsilon |f| / h` from rounding; ``h = 1e-6`` balances the two for
    functions of moderate size, to roughly 1e-10. The divisor is the step
    actually taken, ``(x + h) - (x - h)`` as rounded, not ``2h``.

    Parameters
    ----------
    f : callable
        Maps a float64 array shaped like `x` to a float.
    x : array_like
        Where to differentiate.
    eps : float, optional
        The step ``h``.

    Returns
    -------
    ndarray
        float64, the shape of `x`.
    """
    x = np.array(x, dtype=np.float64)  # a copy: entries are nudged in place below
    grad = np.empty_like(x)
    for k in np.ndindex(x.shape):
        centre = x[k]
        x[k] = centre + eps
        f_plus, step_up = f(x.copy()), x[k]
        x[k] = centre - eps
        f_minus, step_down = f(x.copy()), x[k]
        x[k] = centre
        grad[k] = (f_plus - f_minus) / (step_up - step_down)
    return grad


def relative_error(analytic: ArrayLike, numerical: ArrayLike, tiny: float = 1e-30) -> float:
    r"""``max |a - n| / max(max |a|, max |n|, tiny)``: the error relative to the gradient's scale.

    One scale for the whole gradient, not one per entry: an entry whose true value
    is ~0 (common, e.g. softmax gradients sum to 0) would make an elementwise
    ratio explode from rounding noise alone, while a real error anywhere still
    shows at its full size against the largest entry. `tiny` keeps an all-zero
    gradient from dividing by zero.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numerical, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"analytic has shape {a.shape} but numerical has shape {n.shape}")
    if a.size == 0:
        return 0.0
    scale = max(np.max(np.abs(a)), np.max(np.abs(n)), tiny)
    return float(np.max(np.abs(a - n)) / scale)


def gradcheck(
    activation: Any,
    loss: Any,
    x: ArrayLike,
    target: ArrayLike,
    eps: float = 1e-6,
) -> float:
    """Max relative error between the analytic and the numerical ``dL/dx``.

    The analytic gradient is ``activation.backward(x, y, loss.grad(y, target))``
    with ``y = activation.forward(x)``; the numerical one differentiates
    ``loss.value(activation.forward(x), target)`` by :func:`numerical_gradient`.

    Parameters
    ----------
    activation : Activation
        Has ``forward(x)`` and ``backward(x, y, dy)``.
    loss : Loss
        Has ``value(y, target)`` and ``grad(y, target)``.
    x, target : array_like
        The input and the target; computed in float64.
    eps : float, optional
        Finite-difference step.

    Returns
    -------
    float
        :func:`relative_error` of the two; about 1e-9 or less when `backward` is
        right, about the size of the mistake when it is wrong.
    """
    x = np.asarray(x, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    y = activation.forward(x)
    analytic = activation.backward(x, y, loss.grad(y, target))

    def value(z):
        return loss.value(activation.forward(z), target)

    numerical = numerical_gradient(value, x, eps)
    return relative_error(analytic, numerical)
