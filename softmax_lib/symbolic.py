"""Softmax's derivatives derived with SymPy, and a 50-digit oracle for the tests.

The first half derives: the softmax of ``n`` symbols, its Jacobian by
:func:`sympy.diff`, the two closed forms the book uses (Kronecker and matrix),
and proofs that they are the same matrix. The second half is an oracle: the
contract's functions evaluated with :mod:`mpmath` at 50 significant digits, so
every implementation can be compared against values far more precise than
float64. Nothing is derived at import time; each function does its own work.
"""

from __future__ import annotations

from collections.abc import Iterable

import mpmath
import numpy as np
import sympy as sp
from numpy.typing import ArrayLike, NDArray

#: Working precision of the oracle, in significant decimal digits.
ORACLE_DIGITS = 50


def softmax_symbols(n: int) -> tuple[tuple[sp.Symbol, ...], sp.Matrix]:
    """The logits ``x1..xn`` and the softmax of them, ``exp(x_i) / sum exp(x_j)``.

    Returns
    -------
    x : tuple of sympy.Symbol
        The real logits.
    s : sympy.Matrix
        Column vector of the ``n`` softmax expressions.
    """
    x = sp.symbols(f"x1:{n + 1}", real=True)
    total = sum(sp.exp(xj) for xj in x)
    s = sp.Matrix([sp.exp(xi) / total for xi in x])
    return x, s


def softmax_jacobian_by_diff(n: int) -> sp.Matrix:
    """The softmax Jacobian ``J[i, j] = d s_i / d x_j``, entry by entry with diff."""
    x, s = softmax_symbols(n)
    return sp.Matrix(n, n, lambda i, j: sp.diff(s[i], x[j]))


def kronecker_form(n: int) -> sp.Matrix:
    """The Jacobian, Kronecker form: ``J[i, j] = s_i (delta_ij - s_j)``."""
    _, s = softmax_symbols(n)
    delta = sp.KroneckerDelta
    return sp.Matrix(n, n, lambda i, j: s[i] * (delta(i, j) - s[j]))


def matrix_form(n: int) -> sp.Matrix:
    """The Jacobian in matrix form: ``diag(s) - s s^T``."""
    _, s = softmax_symbols(n)
    return sp.diag(*s) - s * s.T


def is_zero_matrix(m: sp.Matrix) -> bool:
    """True when every entry of `m` simplifies to exactly 0."""
    return sp.simplify(m) == sp.zeros(*m.shape)


def forms_agree(n: int) -> bool:
    """Prove, for this `n`, that diff's Jacobian equals both closed forms.

    Each difference is simplified symbolically and must be the zero matrix:
    a proof for this `n`, not a numerical check at sample points.
    """
    by_diff = softmax_jacobian_by_diff(n)
    kronecker_ok = is_zero_matrix(by_diff - kronecker_form(n))
    return kronecker_ok and is_zero_matrix(by_diff - matrix_form(n))


def log_softmax_jacobian_by_diff(n: int) -> sp.Matrix:
    """The log-softmax Jacobian ``d log(s_i) / d x_j``, entry by entry with diff."""
    x, s = softmax_symbols(n)
    return sp.Matrix(n, n, lambda i, j: sp.diff(sp.log(s[i]), x[j]))


def log_softmax_matrix_form(n: int) -> sp.Matrix:
    """The log-softmax Jacobian in matrix form: ``I - 1 s^T`` (every row is ``e_i - s``)."""
    _, s = softmax_symbols(n)
    return sp.eye(n) - sp.ones(n, 1) * s.T


def log_softmax_forms_agree(n: int) -> bool:
    """Prove, for this `n`, that diff's log-softmax Jacobian equals ``I - 1 s^T``."""
    return is_zero_matrix(log_softmax_jacobian_by_diff(n) - log_softmax_matrix_form(n))


# ---------------------------------------------------------------------------
# The oracle. mpmath numbers have an unbounded exponent, so the oracle needs no
# max-shift: exp(1e4) is just a large number. Inputs are converted exactly
# (every float is a binary fraction), results are rounded once to float64.


def _mpf_list(values: ArrayLike) -> list[mpmath.mpf]:
    """The entries of a 1-D sequence of floats as exact mpmath numbers."""
    return [mpmath.mpf(float(v)) for v in np.asarray(values, dtype=np.float64).ravel()]


def _to_float64(values: Iterable[mpmath.mpf]) -> NDArray[np.float64]:
    """Round a list of mpmath numbers to a float64 array (each correctly rounded)."""
    return np.array([float(v) for v in values], dtype=np.float64)


def _mp_softmax(x: list[mpmath.mpf]) -> list[mpmath.mpf]:
    """Softmax of a list of mpf, at the current mpmath precision."""
    exps = [mpmath.exp(v) for v in x]
    total = mpmath.fsum(exps)
    return [e / total for e in exps]


def oracle_softmax(x: ArrayLike) -> NDArray[np.float64]:
    """Softmax of the 1-D sequence `x`, to 50 digits, rounded to float64."""
    with mpmath.workdps(ORACLE_DIGITS):
        return _to_float64(_mp_softmax(_mpf_list(x)))


def oracle_log_softmax(x: ArrayLike) -> NDArray[np.float64]:
    """Log-softmax ``x_i - log(sum exp(x_j))`` of `x`, to 50 digits, as float64."""
    with mpmath.workdps(ORACLE_DIGITS):
        x = _mpf_list(x)
        log_total = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in x))
        return _to_float64([v - log_total for v in x])


def oracle_softmax_vjp(x: ArrayLike, g: ArrayLike) -> NDArray[np.float64]:
    """``J^T g = s * (g - <s, g>)`` at ``s = softmax(x)``, to 50 digits, as float64."""
    with mpmath.workdps(ORACLE_DIGITS):
        s, g = _mp_softmax(_mpf_list(x)), _mpf_list(g)
        dot = mpmath.fsum(si * gi for si, gi in zip(s, g, strict=True))
        return _to_float64([si * (gi - dot) for si, gi in zip(s, g, strict=True)])


def oracle_log_softmax_vjp(x: ArrayLike, g: ArrayLike) -> NDArray[np.float64]:
    """``g - s * sum(g)`` at ``s = softmax(x)``, to 50 digits, as float64."""
    with mpmath.workdps(ORACLE_DIGITS):
        s, g = _mp_softmax(_mpf_list(x)), _mpf_list(g)
        total = mpmath.fsum(g)
        return _to_float64([gi - si * total for si, gi in zip(s, g, strict=True)])


def oracle_jacobian(x: ArrayLike) -> NDArray[np.float64]:
    """The ``n x n`` Jacobian ``s_i (delta_ij - s_j)`` at ``s = softmax(x)``, as float64."""
    with mpmath.workdps(ORACLE_DIGITS):
        s = _mp_softmax(_mpf_list(x))
        n = len(s)
        entries = [s[i] * ((1 if i == j else 0) - s[j]) for i in range(n) for j in range(n)]
        return _to_float64(entries).reshape(n, n)
