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
    # The question's figures, to its 8 decimals: within half a unit of the 8th, 5e-9.
    np.testing.assert_allclose(
        symbolic.oracle_softmax([1.0, 2.0]), [0.26894142, 0.73105858], atol=5e-9
    )
    np.testing.assert_allclose(
        symbolic.oracle_jacobian([1.0, 2.0]),
        [[0.19661193, -0.19661193], [-0.19661193, 0.19661193]],
        atol=5e-9,
    )


def test_oracle_jacobian_is_the_derived_jacobian_evaluated():
    x, _ = symbolic.softmax_symbols(len(POINT))
    exact = symbolic.softmax_jacobian_by_diff(len(POINT)).subs(dict(zip(x, POINT, strict=True)))
    expected = np.array(exact.evalf(30).tolist(), dtype=np.float64)
    got = symbolic.oracle_jacobian([float(p) for p in POINT])
    # Both are correctly rounded from far more than 17 digits: equal to the last bit
    # except where a 30-digit value lies within 1e-30 of a rounding boundary: then 1 ulp,
    # which is at most eps |v|.
    np.testing.assert_allclose(got, expected, rtol=np.finfo(np.float64).eps, atol=0)


def test_oracle_log_softmax_is_the_derived_log_softmax_evaluated():
    x, s = symbolic.softmax_symbols(len(POINT))
    exact = [sp.log(si).subs(dict(zip(x, POINT, strict=True))).evalf(30) for si in s]
    # Both correctly rounded from > 17 digits: equal, or 1 ulp <= eps |v| apart (as above).
    np.testing.assert_allclose(
        symbolic.oracle_log_softmax([float(p) for p in POINT]),
        np.array(exact, dtype=np.float64),
        rtol=np.finfo(np.float64).eps,
        atol=0,
    )


def test_oracle_vjps_are_jacobian_transpose_times_g():
    x = [0.5, -1.25, 2.0, 0.0]
    g = [1.0, -2.0, 0.25, 3.0]
    s = symbolic.oracle_softmax(x)
    # The oracle's VJP is correctly rounded (u |v|); J^T g in float64 from J rounded entry by
    # entry (u |J|) is off by (n + 1) u (|J|^T |g|) (Higham's dot product bound, n terms).
    # I - 1 s^T: 1 - s_i rounds once more, covered by the same (n + 1).
    u, n = np.finfo(np.float64).eps / 2, len(x)

    def assert_within(got, jac):
        bound = u * np.abs(jac.T @ g) + (n + 1) * u * (np.abs(jac).T @ np.abs(g))
        assert np.all(np.abs(got - jac.T @ g) <= bound), (got - jac.T @ g, bound)

    assert_within(symbolic.oracle_softmax_vjp(x, g), symbolic.oracle_jacobian(x))
    assert_within(symbolic.oracle_log_softmax_vjp(x, g), np.eye(n) - np.outer(np.ones(n), s))


def test_oracle_needs_no_max_shift():
    # mpmath's exponent is unbounded: exp(1e4) is representable, nothing overflows.
    np.testing.assert_array_equal(symbolic.oracle_softmax([1e4, 0.0, -1e4]), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(symbolic.oracle_log_softmax([1e4, 0.0]), [0.0, -1e4])


def test_oracle_rows_sum_to_one():
    rng = np.random.default_rng(0)
    for n in range(1, 7):
        s = symbolic.oracle_softmax(rng.normal(scale=3.0, size=n))
        # each s_i correctly rounded (u s_i, u in all), the float64 sum of n: (n - 1) u
        assert abs(s.sum() - 1.0) <= n * np.finfo(np.float64).eps / 2


def test_oracle_empty_input():
    assert symbolic.oracle_softmax([]).shape == (0,)
    assert symbolic.oracle_jacobian([]).shape == (0, 0)
