"""Activations with a loss-agnostic backward: each returns a vector-Jacobian product.

Every activation has ``forward(x) -> y`` and ``backward(x, y, dy) -> dx``, where
``dy = dL/dy`` comes from whatever loss follows and ``dx = dL/dx = J^T dy``. An
elementwise activation has a diagonal Jacobian, so its VJP is ``f'(x) * dy``;
softmax's Jacobian is not diagonal, and its VJP is
:func:`~softmax_lib.vectorized.softmax_vjp`. Because the loss only ever hands
over ``dy``, any activation composes with any loss.

When to fuse instead: ``Softmax`` followed by
:class:`~softmax_lib.losses.CrossEntropy` is right in exact arithmetic, but its
``dy = -t / s`` overflows once a logit gap makes ``s`` underflow (about 88 in
float32, 708 in float64), and the VJP then returns ``nan``. For training a
classifier, use ``Identity`` followed by
:class:`~softmax_lib.losses.CrossEntropyWithLogits`, whose gradient
``(softmax(z) - t) / B`` is finite at any logit gap, or ``LogSoftmax`` followed
by :class:`~softmax_lib.losses.NLL`. Keep the composed route for what it is
for: checking that any activation composes with any loss.

Example
-------
>>> from softmax_lib.losses import MSE
>>> act, loss = Softmax(), MSE()
>>> x, target = np.array([1.0, 2.0]), np.array([0.0, 1.0])
>>> y = act.forward(x)
>>> act.backward(x, y, loss.grad(y, target))
array([ 0.21150837, -0.21150837])
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

# The softmax functions are looked up on the package at call time, so that they
# are the fastest module's (native when it is built, else NumPy), and so that
# softmax_lib/__init__.py may import this module at any point without a cycle:
# ``softmax_lib`` is already in sys.modules while its __init__ runs.
import softmax_lib

from ._checks import check_pair, float_array

#: What every forward, backward, value and grad returns: a float32/float64 array.
FloatArray = NDArray[np.floating]


__all__ = ["Activation", "Identity", "Sigmoid", "Tanh", "ReLU", "Softmax", "LogSoftmax"]


class Activation:
    """Protocol: ``forward(x) -> y`` and ``backward(x, y, dy) -> dL/dx``."""

    def forward(self, x: ArrayLike) -> FloatArray:
        """Return ``y = f(x)``."""
        raise NotImplementedError

    def backward(self, x: ArrayLike, y: ArrayLike, dy: ArrayLike) -> FloatArray:
        """``dL/dx`` from ``x``, ``y = forward(x)`` and ``dy = dL/dy``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Elementwise(Activation):
    """``y_i = f(x_i)``: diagonal Jacobian, so the VJP is ``f'(x) * dy``."""

    def derivative(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """``f'(x)`` elementwise, from `x` or `y`, whichever is simpler."""
        raise NotImplementedError

    def backward(self, x: ArrayLike, y: ArrayLike, dy: ArrayLike) -> FloatArray:
        y, dy = check_pair(y, dy)
        return self.derivative(float_array(x, "x"), y) * dy


class Identity(Elementwise):
    """``f(x) = x``; ``f'(x) = 1``."""

    def forward(self, x: ArrayLike) -> FloatArray:
        return float_array(x, "x").copy()

    def derivative(self, x: FloatArray, y: FloatArray) -> FloatArray:
        return np.ones_like(y)


class Sigmoid(Elementwise):
    """``f(x) = 1 / (1 + exp(-x))``; ``f'(x) = y (1 - y)``."""

    def forward(self, x: ArrayLike) -> FloatArray:
        x = float_array(x, "x")
        # exp(-log(1 + exp(-x))): no overflow for large |x|, full relative precision
        return np.exp(-np.logaddexp(0, -x))

    def derivative(self, x: FloatArray, y: FloatArray) -> FloatArray:
        return y * (1 - y)


class Tanh(Elementwise):
    """``f(x) = tanh(x)``; ``f'(x) = 1 - y^2``."""

    def forward(self, x: ArrayLike) -> FloatArray:
        return np.tanh(float_array(x, "x"))

    def derivative(self, x: FloatArray, y: FloatArray) -> FloatArray:
        return 1 - y * y


class ReLU(Elementwise):
    """``f(x) = max(x, 0)``; ``f'(x) = 1`` where ``x > 0``, else 0 (also at 0)."""

    def forward(self, x: ArrayLike) -> FloatArray:
        return np.maximum(float_array(x, "x"), 0)

    def derivative(self, x: FloatArray, y: FloatArray) -> FloatArray:
        return (x > 0).astype(y.dtype)


class AlongAxis(Activation):
    """An activation that normalises along one axis (softmax and log-softmax).

    Parameters
    ----------
    axis : int, optional
        The axis to normalise over (default: the last, the class axis).
    """

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def __repr__(self) -> str:
        return f"{type(self).__name__}(axis={self.axis})"


class Softmax(AlongAxis):
    """Softmax along `axis`; backward: O(n) VJP ``y * (dy - <y, dy>)``."""

    def forward(self, x: ArrayLike) -> FloatArray:
        return softmax_lib.softmax(x, axis=self.axis)

    def backward(self, x: ArrayLike, y: ArrayLike, dy: ArrayLike) -> FloatArray:
        return softmax_lib.softmax_vjp(y, dy, axis=self.axis)


class LogSoftmax(AlongAxis):
    """Log-softmax along `axis`; the backward is ``dy - exp(y) * sum(dy)``."""

    def forward(self, x: ArrayLike) -> FloatArray:
        return softmax_lib.log_softmax(x, axis=self.axis)

    def backward(self, x: ArrayLike, y: ArrayLike, dy: ArrayLike) -> FloatArray:
        return softmax_lib.log_softmax_vjp(y, dy, axis=self.axis)
