"""Losses with ``value(y, target) -> float`` and ``grad(y, target) -> dL/dy``.

One reduction convention for all: the class axis is the last axis, each row's
loss is the **sum over its classes**, and the batch loss is the **mean over the
rows** (every leading axis counts as batch; a 1-D `y` is a single row; an empty
batch has loss 0). `y` and `target` must have the same shape. The gradient
is of that reduced value, so it carries the ``1 / rows`` factor.

A loss never needs to know which activation produced `y`: it hands ``dL/dy`` to
the activation's ``backward``, which applies the Jacobian (see :mod:`.layers`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Looked up on the package at call time (the fastest module's functions), as in
# layers.py: softmax_lib is in sys.modules while its __init__ imports this module.
import softmax_lib

from ._checks import check_pair

#: What every forward, backward, value and grad returns: a float32/float64 array.
FloatArray = NDArray[np.floating]


__all__ = [
    "Loss",
    "MSE",
    "CrossEntropy",
    "NLL",
    "BinaryCrossEntropy",
    "KLDivergence",
    "CrossEntropyWithLogits",
]


def n_rows(y: FloatArray) -> int:
    """Number of rows: the product of every axis but the last (the class axis)."""
    return math.prod(y.shape[:-1])


def batch_mean(per_element: FloatArray, y: FloatArray) -> float:
    """Sum `per_element` over classes and rows, then divide by the number of rows."""
    return float(np.sum(per_element)) / max(n_rows(y), 1)


def xlogy(a: FloatArray, b: FloatArray) -> FloatArray:
    """``a * log(b)``, taken as 0 where ``a == 0`` (so ``0 log 0 = 0``)."""
    safe_b = np.where(a == 0, 1, b)  # log(1) = 0: no warning, no NaN from 0 * -inf
    with np.errstate(divide="ignore"):  # log(0) where a != 0: a genuine infinite loss
        return a * np.log(safe_b)


def probabilities(y: ArrayLike, target: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validate a (y, target) pair whose `y` must hold probabilities in [0, 1]."""
    y, target = check_pair(y, target, "y", "target")
    if np.any(y < 0) or np.any(y > 1):
        raise ValueError(
            f"y must hold probabilities in [0, 1], got values in [{np.min(y)}, {np.max(y)}]"
        )
    return y, target


class Loss:
    """The protocol: ``value(y, target) -> float``, ``grad(y, target) -> dL/dy``."""

    def value(self, y: ArrayLike, target: ArrayLike) -> float:
        """The loss, summed over classes and averaged over rows."""
        raise NotImplementedError

    def grad(self, y: ArrayLike, target: ArrayLike) -> FloatArray:
        """``dL/dy``, the shape of `y`."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSE(Loss):
    r"""Squared error: :math:`L = \frac{1}{B} \sum_b \sum_i (y_{bi} - t_{bi})^2`.

    Summed over classes, so it is ``n_classes`` times PyTorch's ``MSELoss()``
    (which averages over every element). ``grad = 2 (y - t) / B``.
    """

    def value(self, y: ArrayLike, target: ArrayLike) -> float:
        y, target = check_pair(y, target, "y", "target")
        return batch_mean((y - target) ** 2, y)

    def grad(self, y: ArrayLike, target: ArrayLike) -> FloatArray:
        y, target = check_pair(y, target, "y", "target")
        return 2 * (y - target) / max(n_rows(y), 1)


class CrossEntropy(Loss):
    r"""Cross-entropy on probabilities: :math:`L = -\frac{1}{B} \sum_b \sum_i t_{bi} \log y_{bi}`.

    `y` holds probabilities (e.g. a softmax output), `target` a one-hot or soft
    distribution per row; terms with ``t = 0`` count as 0. ``grad = -t / (B y)``.
    """

    def value(self, y: ArrayLike, target: ArrayLike) -> float:
        y, target = probabilities(y, target)
        return -batch_mean(xlogy(target, y), y)

    def grad(self, y: ArrayLike, target: ArrayLike) -> FloatArray:
        y, target = probabilities(y, target)
        ratio = np.divide(target, y, out=np.zeros_like(y), where=target != 0)
        return -ratio / max(n_rows(y), 1)


class NLL(Loss):
    r"""Negative log-likelihood on log-probabilities.

    :math:`L = -\frac{1}{B} \sum_b \sum_i t_{bi} y_{bi}`.

    `y` holds log-probabilities (e.g. a log-softmax output), `target` a one-hot
    or soft distribution of the same shape; terms with ``t = 0`` count as 0, even
    where ``y = -inf``. ``grad = -t / B``. ``NLL`` after ``LogSoftmax`` is
    ``CrossEntropy`` after ``Softmax``, computed stably.
    """

    def value(self, y: ArrayLike, target: ArrayLike) -> float:
        y, target = check_pair(y, target, "y", "target")
        return -batch_mean(np.where(target != 0, target * y, 0), y)

    def grad(self, y: ArrayLike, target: ArrayLike) -> FloatArray:
        y, target = check_pair(y, target, "y", "target")
        return -target / max(n_rows(y), 1)


class BinaryCrossEntropy(Loss):
    r"""Binary cross-entropy, each output an independent probability.

    .. math:: L = -\frac{1}{B} \sum_b \sum_i \left[t \log y + (1 - t) \log(1 - y)\right]

    `y` in (0, 1) (e.g. a sigmoid output), `target` in [0, 1].
    ``grad = (y - t) / (B y (1 - y))``.
    """

    def value(self, y: ArrayLike, target: ArrayLike) -> float:
        y, target = probabilities(y, target)
        return -batch_mean(xlogy(target, y) + xlogy(1 - target, 1 - y), y)

    def grad(self, y: ArrayLike, target: ArrayLike) -> FloatArray:
        y, target = probabilities(y, target)
        return (y - target) / (y * (1 - y)) / max(n_rows(y), 1)


class KLDivergence(Loss):
    r"""Kullback-Leibler divergence :math:`KL(t \| y)`, `y` and `target` probabilities.

    .. math:: L = \frac{1}{B} \sum_b \sum_i t_{bi} (\log t_{bi} - \log y_{bi})

    It is cross-entropy minus the target's entropy, so it has the same gradient,
    ``-t / (B y)``, and is 0 exactly when ``y = t``.
    """

    def value(self, y: ArrayLike, target: ArrayLike) -> float:
        y, target = probabilities(y, target)
        return batch_mean(xlogy(target, target) - xlogy(target, y), y)

    def grad(self, y: ArrayLike, target: ArrayLike) -> FloatArray:
        y, target = probabilities(y, target)
        ratio = np.divide(target, y, out=np.zeros_like(y), where=target != 0)
        return -ratio / max(n_rows(y), 1)


class CrossEntropyWithLogits(Loss):
    r"""Cross-entropy on logits: softmax and cross-entropy fused, finite at any logit gap.

    .. math:: L = -\frac{1}{B} \sum_b \sum_i t_{bi} \log \operatorname{softmax}(z_b)_i

    `y` holds logits `z` (put :class:`~softmax_lib.layers.Identity` before it, not
    ``Softmax``); `target` a one-hot or soft distribution per row (the last axis).
    The value is :class:`NLL` of ``softmax_lib.log_softmax``, the log-sum-exp
    route, so no probability is ever formed and divided by. The gradient is

    .. math:: \frac{\partial L}{\partial z_b} = \frac{1}{B}
              \Bigl(\operatorname{softmax}(z_b) \sum_i t_{bi} - t_b\Bigr),

    which is ``(softmax(z) - t) / B`` for targets that sum to 1: bounded by
    ``1 / B`` in every entry, whatever the logits. ``Softmax`` followed by
    :class:`CrossEntropy` computes the same thing in exact arithmetic, but divides
    ``-t / s``: once a logit gap makes ``s`` underflow (about 88 in float32, 708 in
    float64) that is ``inf`` and the VJP turns it into ``nan``. PyTorch's
    ``cross_entropy`` and JAX/optax's ``softmax_cross_entropy`` take logits for
    this reason.

    Examples
    --------
    The target's logit is 100 below the other one:

    >>> z = np.array([[0.0, -100.0]], dtype=np.float32)
    >>> t = np.array([[0.0, 1.0]], dtype=np.float32)
    >>> CrossEntropyWithLogits().value(z, t)
    100.0
    >>> CrossEntropyWithLogits().grad(z, t)
    array([[ 1., -1.]], dtype=float32)
    """

    def value(self, y: ArrayLike, target: ArrayLike) -> float:
        y, target = check_pair(y, target, "y", "target")
        return NLL().value(softmax_lib.log_softmax(y), target)

    def grad(self, y: ArrayLike, target: ArrayLike) -> FloatArray:
        y, target = check_pair(y, target, "y", "target")
        s = softmax_lib.softmax(y)
        # 1 for a distribution
        total = np.sum(target, axis=-1, keepdims=True)
        return (s * total - target) / max(n_rows(y), 1)
