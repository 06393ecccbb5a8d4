"""The SymPy derivation proves what it claims, and the 50-digit oracle is sound."""
import numpy as np
import pytest
import sympy as sp

from softmax_lib import symbolic

# Sample logits exactly representable in binary, so SymPy (exact rationals) and
# the oracle (floats converted exactly) evaluate at the very same point.
POINT = [sp.Rational(1, 2), sp.Rational(-5, 4), sp.Integer(2)]


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_jacobian_by_diff_equals_kronecker_and_matrix_forms(n):
    assert symbolic.forms_agree(n)


@pytest.mark.parametrize("n", [2, 3])
def test_diagonal_alone_is_not_the_jacobian(n):
    # The proof can fail: keeping only s_i (1 - s_i), J's diagonal, is refuted.
    _, s = symbolic.softmax_symbols(n)
    diagonal_only = sp.diag(*[si * (1 - si) for si in s])
    assert not symbolic.is_zero_matrix(symbolic.softmax_jacobian_by_diff(n) - diagonal_only)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_log_softmax_jacobian_is_identity_minus_ones_s_transpose(n):
    assert symbolic.log_softmax_forms_agree(n)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_askers_elementwise_formula_is_the_jacobian_diagonal(n):
    # The question's delta_i = 1 / (2 + e/o + o/e), e = exp(x_i), o = sum_{j != i} exp(x_j).
    x, s = symbolic.softmax_symbols(n)
    jac = symbolic.softmax_jacobian_by_diff(n)
    for i in range(n):
        e = sp.exp(x[i])
        o = sum(sp.exp(xj) for j, xj in enumerate(x) if j != i)
        assert sp.simplify(1 / (2 + e / o + o / e) - jac[i, i]) == 0


def test_oracle_seed_example():
    np.testing.assert_allclose(symbolic.oracle_softmax([1.0, 2.0]),
                               [0.26894142, 0.73105858], atol=5e-9)
    np.testing.assert_allclose(symbolic.oracle_jacobian([1.0, 2.0]),
                               [[0.19661193, -0.19661193], [-0.19661193, 0.19661193]],
                               atol=5e-9)


def test_oracle_jacobian_is_the_derived_jacobian_evaluated():
    x, _ = symbolic.softmax_symbols(len(POINT))
    exact = symbolic.softmax_jacobian_by_diff(len(POINT)).subs(dict(zip(x, POINT)))
    expected = np.array(exact.evalf(30).tolist(), dtype=np.float64)
    got = symbolic.oracle_jacobian([float(p) for p in POINT])
    # Both are correctly rounded from far more than 17 digits: equal to the last bit
    # except where a 30-digit value lies within 1e-30 of a rounding boundary.
    np.testing.assert_allclose(got, expected, rtol=2 * np.finfo(np.float64).eps, atol=0)


def test_oracle_log_softmax_is_the_derived_log_softmax_evaluated():
    x, s = symbolic.softmax_symbols(len(POINT))
    exact = [sp.log(si).subs(dict(zip(x, POINT))).evalf(30) for si in s]
    np.testing.assert_allclose(symbolic.oracle_log_softmax([float(p) for p in POINT]),
                               np.array(exact, dtype=np.float64),
                               rtol=2 * np.finfo(np.float64).eps, atol=0)


def test_oracle_vjps_are_jacobian_transpose_times_g():
    x = [0.5, -1.25, 2.0, 0.0]
    g = [1.0, -2.0, 0.25, 3.0]
    s = symbolic.oracle_softmax(x)
    tol = 16 * np.finfo(np.float64).eps
    np.testing.assert_allclose(symbolic.oracle_softmax_vjp(x, g),
                               symbolic.oracle_jacobian(x).T @ g, rtol=tol, atol=tol)
    log_jac = np.eye(len(x)) - np.outer(np.ones(len(x)), s)
    np.testing.assert_allclose(symbolic.oracle_log_softmax_vjp(x, g),
                               log_jac.T @ g, rtol=tol, atol=tol)


def test_oracle_needs_no_max_shift():
    # mpmath's exponent is unbounded: exp(1e4) is representable, nothing overflows.
    np.testing.assert_array_equal(symbolic.oracle_softmax([1e4, 0.0, -1e4]), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(symbolic.oracle_log_softmax([1e4, 0.0]), [0.0, -1e4])


def test_oracle_rows_sum_to_one():
    rng = np.random.default_rng(0)
    for n in range(1, 7):
        s = symbolic.oracle_softmax(rng.normal(scale=3.0, size=n))
        assert abs(s.sum() - 1.0) <= n * np.finfo(np.float64).eps


def test_oracle_empty_input():
    assert symbolic.oracle_softmax([]).shape == (0,)
    assert symbolic.oracle_jacobian([]).shape == (0, 0)
