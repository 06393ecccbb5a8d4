"""Activations x losses: every meaningful pair passes gradcheck; the question's
elementwise softmax "derivative" fails it, and is exactly the Jacobian's diagonal."""

import numpy as np
import pytest
from conftest import tolerance

import softmax_lib
from softmax_lib import symbolic
from softmax_lib.gradcheck import gradcheck, numerical_gradient, relative_error
from softmax_lib.layers import Identity, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from softmax_lib.losses import (
    MSE,
    NLL,
    BinaryCrossEntropy,
    CrossEntropy,
    CrossEntropyWithLogits,
    KLDivergence,
)

#: gradcheck's bound for a correct backward in float64. A central difference with step h
#: is off by h^2 |f'''| / 6 (truncation) plus k u |f| / h (rounding: f computed to k u |f|,
#: k <= 100 roundings here, u = 1.1e-16), relative to max|grad f| in `relative_error`.
#: With h = 1e-6: (1.1e-8 |f| + 1.7e-13 |f'''|) / max|grad f|. For these inputs (logits
#: N(0, 2^2), the targets of make_target, the predictions of make_prediction)
#: |f| / max|grad f| <= 34 and |f'''| / max|grad f| <= 220, so <= 3.8e-7 (observed <= 7.3e-9).
#: The question's wrong backward is off by 0.37.
GRADCHECK_TOL = 1e-6

U = np.finfo(np.float64).eps / 2  # float64's unit roundoff

# The pairs that mean something, listed explicitly:
# - MSE (targets: any reals) composes with every activation;
# - CrossEntropy, KLDivergence and BinaryCrossEntropy need y in (0, 1): they follow
#   the activations whose outputs are probabilities, Sigmoid and Softmax;
# - NLL takes log-probabilities: it follows LogSoftmax.
PAIRS = [
    (Identity(), MSE()),
    (Sigmoid(), MSE()),
    (Tanh(), MSE()),
    (ReLU(), MSE()),
    (Softmax(), MSE()),
    (LogSoftmax(), MSE()),
    (Sigmoid(), CrossEntropy()),
    (Softmax(), CrossEntropy()),
    (Sigmoid(), KLDivergence()),
    (Softmax(), KLDivergence()),
    (Sigmoid(), BinaryCrossEntropy()),
    (Softmax(), BinaryCrossEntropy()),
    (LogSoftmax(), NLL()),
    (Identity(), CrossEntropyWithLogits()),  # logits in: the fused loss
]


def make_input(activation, shape, rng):
    """Logits for `activation`: for ReLU, kept at least 0.1 from its kink at 0."""
    x = rng.normal(scale=2.0, size=shape)
    if isinstance(activation, ReLU):
        x = np.sign(x) * (0.1 + np.abs(x))
    return x


def make_target(loss, shape, rng):
    """A target valid for `loss`: reals for MSE, values in [0, 1] for BCE, else a
    distribution per row (the last axis), with some exact zeros (0 log 0 = 0)."""
    if isinstance(loss, MSE):
        return rng.normal(size=shape)
    if isinstance(loss, BinaryCrossEntropy):
        return rng.uniform(size=shape)
    t = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    t[..., 0] = 0.0
    return t / t.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("shape", [(7,), (4, 5), (2, 3, 4)])
@pytest.mark.parametrize("activation, loss", PAIRS, ids=lambda p: repr(p))
def test_every_meaningful_pair_passes_gradcheck(activation, loss, shape):
    rng = np.random.default_rng(sum(shape))
    x, t = make_input(activation, shape, rng), make_target(loss, shape, rng)
    assert gradcheck(activation, loss, x, t) <= GRADCHECK_TOL


@pytest.mark.parametrize("loss", [MSE(), CrossEntropy(), KLDivergence()], ids=repr)
def test_softmax_over_another_axis_passes_gradcheck(loss):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 3))
    t = make_target(loss, (3, 5), rng).T  # distributions down the columns
    assert gradcheck(Softmax(axis=0), loss, x, t) <= GRADCHECK_TOL


# ---------------------------------------------------------------------------
# The question: an elementwise softmax "derivative" fed to an elementwise chain rule.


class QuestionSoftmax:
    """The asker's softmax layer: no max shift, normalised over the whole array, and
    the "derivative" delta_i = 1 / (2 + e/o + o/e), e = exp(x_i), o = sum_{j!=i} exp(x_j),
    multiplied elementwise by the upstream gradient."""

    def forward(self, x):
        exps = np.exp(x)
        return exps / exps.sum()

    def delta(self, x):
        e = np.exp(x)
        o = e.sum() - e
        return 1 / (2 + e / o + o / e)

    def backward(self, x, y, dy):
        return self.delta(x) * dy


def question_example():
    rng = np.random.default_rng(7)
    return rng.normal(size=5), rng.normal(size=5)


def test_question_derivative_fails_gradcheck():
    x, t = question_example()
    error = gradcheck(QuestionSoftmax(), MSE(), x, t)
    assert error > 1e-3
    assert gradcheck(Softmax(), MSE(), x, t) <= GRADCHECK_TOL  # same setup, the VJP passes


def test_question_derivative_is_exactly_the_jacobian_diagonal():
    x, _ = question_example()
    y = softmax_lib.softmax(x)
    jac = softmax_lib.softmax_jacobian(y)
    # delta: exp 8u, the sum n u, then o = sum - e cancels: (n + 9) u sum / o relative;
    # e/o, o/e, their positive sum and the reciprocal 4u more.
    e, n = np.exp(x), x.size
    delta_error = ((n + 9) * np.max(e.sum() / (e.sum() - e)) + 12) * U
    # s - s^2 (or s (1 - s)) from s^ within u (|x_i - m| + n + ln n + 19) relative (conftest):
    # times |1 - 2s| / (1 - s), plus the roundings u s / (1 - s) + u.
    s_error = U * (np.ptp(x) + n + np.log(n) + 19)
    diag_error = np.max(
        s_error * np.maximum(1, np.abs(1 - 2 * y) / (1 - y)) + U * (y / (1 - y) + 1)
    )
    rtol = delta_error + diag_error
    np.testing.assert_allclose(QuestionSoftmax().delta(x), np.diag(jac), rtol=rtol, atol=0)
    np.testing.assert_allclose(QuestionSoftmax().delta(x), y * (1 - y), rtol=rtol, atol=0)


def test_question_error_is_the_missing_off_diagonal_part():
    x, t = question_example()
    y = softmax_lib.softmax(x)
    dy = MSE().grad(y, t)
    jac = softmax_lib.softmax_jacobian(y)
    off_diagonal = jac - np.diag(np.diag(jac))
    wrong = QuestionSoftmax().backward(x, y, dy)
    right = Softmax().backward(x, y, dy)
    # right: within 5 delta G + delta |dx| (test_contract's ATOL); J's entries within 4 delta
    # each, so the product within 4 n delta G + 2 n u G; wrong within delta |wrong| <= delta G;
    # the difference u more: (4n + 8) delta G, G = max|dy|, delta = conftest.tolerance.
    atol = (4 * dy.size + 8) * tolerance(np.float64, dy.size) * np.max(np.abs(dy))
    np.testing.assert_allclose(right - wrong, off_diagonal.T @ dy, rtol=0, atol=atol)
    assert np.max(np.abs(off_diagonal.T @ dy)) > 1e-3 * np.max(np.abs(right))


# ---------------------------------------------------------------------------
# Losses on their own.

LOSSES = [
    MSE(),
    CrossEntropy(),
    NLL(),
    BinaryCrossEntropy(),
    KLDivergence(),
    CrossEntropyWithLogits(),
]


def make_prediction(loss, shape, rng):
    """A `y` in the loss's domain: log-probabilities for NLL, else values in (0.05, 0.95)."""
    if isinstance(loss, NLL):
        return softmax_lib.log_softmax(rng.normal(size=shape))
    return rng.uniform(0.05, 0.95, size=shape)


@pytest.mark.parametrize("shape", [(6,), (3, 4), (2, 2, 3)])
@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_loss_grad_matches_numerical_gradient(loss, shape):
    rng = np.random.default_rng(len(shape))
    y, t = make_prediction(loss, shape, rng), make_target(loss, shape, rng)
    numerical = numerical_gradient(lambda z: loss.value(z, t), y)
    assert relative_error(loss.grad(y, t), numerical) <= GRADCHECK_TOL


def test_reduction_is_sum_over_classes_mean_over_rows():
    y = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]])
    t = np.zeros_like(y)
    assert MSE().value(y, t) == (0 + 1 + 4 + 1 + 1 + 1) / 2
    assert MSE().value(y[0], t[0]) == 5.0  # a 1-D y is one row
    np.testing.assert_array_equal(MSE().grad(y, t), 2 * y / 2)


def test_cross_entropy_of_one_hot_is_minus_log_of_the_true_class():
    y = np.array([[0.2, 0.7, 0.1], [0.5, 0.0, 0.5]])  # an exact 0 where t = 0
    t = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    # Each side: two logs (<= 4 ulp = 8u each, same sign), a sum (u), a halving (exact).
    assert CrossEntropy().value(y, t) == pytest.approx(
        -(np.log(0.7) + np.log(0.5)) / 2, rel=18 * U
    )
    assert np.all(np.isfinite(CrossEntropy().grad(y, t)))


def test_nll_after_log_softmax_is_cross_entropy_after_softmax():
    rng = np.random.default_rng(11)
    x, t = rng.normal(size=(4, 6)), rng.dirichlet(np.ones(6), size=4)
    # log_softmax is within 2u|y| + delta, log(softmax) within u|x_i - m| + delta + 8u|y|
    # (conftest), so per row sum_i t_i (...) differs by <= 11u max|y| + 2 delta (sum t = 1);
    # each side's products and sums of the 24 terms add 25u |L|.
    y = softmax_lib.log_softmax(x)
    nll = NLL().value(y, t)
    bound = 11 * U * np.max(np.abs(y)) + 2 * tolerance(np.float64, 6) + 2 * 25 * U * abs(nll)
    assert nll == pytest.approx(CrossEntropy().value(softmax_lib.softmax(x), t), rel=0, abs=bound)


def test_kl_is_cross_entropy_minus_entropy_and_zero_at_the_target():
    rng = np.random.default_rng(12)
    y, t = rng.dirichlet(np.ones(5), size=3), rng.dirichlet(np.ones(5), size=3)
    entropy = CrossEntropy().value(t, t)
    ce = CrossEntropy().value(y, t)
    # Every term t log(.) is within 9u (log 8u, product u) and all have one sign, so CE and
    # H are within (m + 10) u times themselves (m = t.size terms summed, then a mean); KL's
    # terms t log t - t log y the same, plus u for each difference: 2 (m + 10) u (CE + H).
    bound = 2 * (t.size + 10) * U * (ce + entropy)
    assert KLDivergence().value(y, t) == pytest.approx(ce - entropy, rel=0, abs=bound)
    # t log t - t log t is exactly 0 term by term.
    assert KLDivergence().value(t, t) == 0.0
    assert KLDivergence().value(y, t) > 0


# ---------------------------------------------------------------------------
# Cross-entropy on logits: finite where Softmax -> CrossEntropy is not.

#: Logit rows with gaps up to 1000 and mixed targets (one-hot, soft, a zero on the max).
GAP_LOGITS = [[0.0, -1000.0, 3.0, -90.0], [500.0, -500.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
GAP_TARGETS = [[0.0, 1.0, 0.0, 0.0], [0.0, 0.25, 0.25, 0.5], [0.5, 0.5, 0.0, 0.0]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logits_loss_is_finite_and_accurate_at_any_gap(dtype):
    z, t = np.array(GAP_LOGITS, dtype=dtype), np.array(GAP_TARGETS, dtype=dtype)
    loss = CrossEntropyWithLogits()
    value, grad = loss.value(z, t), loss.grad(z, t)
    assert np.all(np.isfinite(grad)) and np.isfinite(value) and grad.dtype == dtype
    rows, n = z.shape
    u, delta = np.finfo(dtype).eps / 2, tolerance(dtype, n)
    log_s = np.array([symbolic.oracle_log_softmax(row) for row in z.astype(np.float64)])
    s = np.array([symbolic.oracle_softmax(row) for row in z.astype(np.float64)])
    t64 = t.astype(np.float64)  # these targets are exact in float32 and sum to 1 exactly
    # Value: each log-softmax entry within 2u|y| + delta (conftest), the product with t
    # u|t y|, the float sum of the rows * n terms (m + 1) u sum|t y|; / rows: u.
    want = -np.sum(t64 * log_s) / rows
    terms = np.abs(t64 * log_s)
    bound = np.sum(t64 * (2 * u * np.abs(log_s) + delta)) + (z.size + 4) * u * terms.sum()
    assert abs(value - want) <= bound / rows
    # Gradient (s * sum t - t) / rows: s within delta (s + 1) (conftest, rtol = atol =
    # delta), sum t exact here, a product and a difference u each, / rows u.
    exact = (s - t64) / rows
    bound = (delta * (s + 1) + 3 * u * (s + t64)) / rows
    assert np.all(np.abs(grad - exact) <= bound)


def test_softmax_then_cross_entropy_overflows_where_logits_loss_does_not():
    # float32: a target class 90 below the max has s = e^-90 ~ 8e-40 (subnormal) or 0,
    # so dy = -t / s is ~1e39 > float32's max 3.4e38 or inf; the VJP makes it nan.
    z = np.array([[0.0, -90.0]], dtype=np.float32)
    t = np.array([[0.0, 1.0]], dtype=np.float32)
    act = Softmax()
    y = act.forward(z)
    with np.errstate(all="ignore"):
        composed = act.backward(z, y, CrossEntropy().grad(y, t))
    assert not np.all(np.isfinite(composed))
    fused = CrossEntropyWithLogits().grad(z, t)
    # exact: (s - t) with s = (1 - e^-90, e^-90); |error| <= delta (s + 1), conftest
    np.testing.assert_allclose(fused, [[1.0, -1.0]], rtol=0, atol=2 * tolerance(np.float32, 2))


def test_logits_loss_equals_log_softmax_then_nll_and_softmax_then_cross_entropy():
    rng = np.random.default_rng(21)
    z, t = rng.normal(size=(4, 6)), rng.dirichlet(np.ones(6), size=4)
    fused = CrossEntropyWithLogits()
    # The value is NLL of log_softmax by construction: the same operations, bit for bit.
    assert fused.value(z, t) == NLL().value(softmax_lib.log_softmax(z), t)
    # Both routes use the same computed s, and in exact arithmetic on that s both are
    # (s sum(t) - t) / B. Rounding: the composed VJP within (n + 4) u s_i max|g| with
    # g = -t / (B s) (ch. 4), its division u |g|; sum(t) within n u sum(t), and
    # sum(t) <= max(t / s) (sum s = 1); the fused product and difference 3u (s + t) / B.
    y = Softmax().forward(z)
    composed = Softmax().backward(z, y, CrossEntropy().grad(y, t))
    scale = y * np.max(t / y, axis=-1, keepdims=True)
    bound = ((2 * z.shape[1] + 10) * U * scale + 3 * U * (y + t)) / len(z)
    assert np.all(np.abs(fused.grad(z, t) - composed) <= bound)


def test_logits_loss_grad_is_exact_gradient_for_targets_not_summing_to_one():
    # -sum t log softmax(z) has gradient s sum(t) - t, not s - t, when sum(t) != 1.
    z, t = np.array([0.3, -1.2, 2.0]), np.array([0.0, 2.0, 1.0])
    numerical = numerical_gradient(lambda v: CrossEntropyWithLogits().value(v, t), z)
    assert relative_error(CrossEntropyWithLogits().grad(z, t), numerical) <= GRADCHECK_TOL


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_loss_shape_mismatch_names_y_and_target(loss):
    with pytest.raises(ValueError, match="y and target"):
        loss.value(np.full((2, 3), 0.5), np.full((2, 4), 0.5))
    with pytest.raises(ValueError, match="y and target"):
        loss.grad(np.full((3,), 0.5), np.full((2, 3), 0.5))


@pytest.mark.parametrize("loss", [CrossEntropy(), BinaryCrossEntropy(), KLDivergence()], ids=repr)
def test_probability_losses_refuse_y_outside_0_1(loss):
    with pytest.raises(ValueError, match="y must hold probabilities"):
        loss.value(np.array([-0.5, 1.5]), np.array([0.5, 0.5]))


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_loss_refuses_complex_target(loss):
    with pytest.raises(TypeError, match="target"):
        loss.value(np.full(2, 0.5), np.full(2, 0.5 + 1j))


# ---------------------------------------------------------------------------
# Activations on their own.

ACTIVATIONS = [Identity(), Sigmoid(), Tanh(), ReLU(), Softmax(), LogSoftmax()]


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=repr)
def test_backward_refuses_dy_of_another_shape(activation):
    x = np.ones((2, 3))
    y = activation.forward(x)
    with pytest.raises(ValueError, match="y and dy"):
        activation.backward(x, y, np.ones((3, 2)))


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=repr)
def test_forward_refuses_complex_x(activation):
    with pytest.raises(TypeError, match="x"):
        activation.forward(np.ones(3, dtype=complex))


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=repr)
def test_forward_and_backward_keep_float32(activation):
    x = np.linspace(-2, 2, 6, dtype=np.float32)
    y = activation.forward(x)
    assert y.dtype == np.float32
    assert activation.backward(x, y, np.ones_like(y)).dtype == np.float32


def test_sigmoid_is_stable_and_precise_at_large_inputs():
    y = Sigmoid().forward(np.array([-800.0, -40.0, 0.0, 40.0, 800.0]))
    # y = exp(-logaddexp(0, -x)): the log-sum-exp L is 800, 40 (+4e-18, below half an ulp),
    # ln 2, 4e-18, 0, within 4 ulp; y's relative error is |dL| + exp's 4 ulp (8u): at most
    # 0.69 * 8u + 8u at x = 0, and 8u where L is an integer. The reference: exp(-40) / 1, 8u.
    np.testing.assert_allclose(
        y, [0.0, np.exp(-40.0) / (1 + np.exp(-40.0)), 0.5, 1.0, 1.0], rtol=16 * U, atol=0
    )


def test_relative_error_uses_one_scale_for_the_whole_gradient():
    # A near-zero entry does not inflate the error; a real mistake shows at its size.
    # Exact: the double 2e-12 is twice the double 1e-12, so 2e-12 - 1e-12 is 1e-12; scale 1.
    assert relative_error([1.0, 1e-12], [1.0, 2e-12]) == 1e-12
    assert relative_error([1.0, 0.0], [1.0, 0.1]) == 0.1
    assert relative_error([0.0, 0.0], [0.0, 0.0]) == 0.0


# ---------------------------------------------------------------------------
# The docstring examples (the book shows these functions) run and print what they say.


@pytest.mark.parametrize(
    "module_name", ["softmax_lib.loops", "softmax_lib.layers", "softmax_lib.losses"]
)
def test_docstring_examples(module_name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
