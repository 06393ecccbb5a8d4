"""softmax_lib.report: look-ups, interval wording and digits from the spread."""

import doctest

import numpy as np
import pytest

from softmax_lib import report


def _row(median, q1, q3, shape=(1, 10), dtype="float32", op="softmax", impl="numpy", **kw):
    return {
        "shape": list(shape),
        "dtype": dtype,
        "op": op,
        "impl": impl,
        "median": median,
        "q1": q1,
        "q3": q3,
        **kw,
    }


def test_docstring_examples():
    result = doctest.testmod(report)
    assert result.attempted >= 6 and result.failed == 0


def test_pick_matches_all_four_keys():
    rows = [_row(1, 1, 1), _row(2, 2, 2, impl="native-avx2"), _row(3, 3, 3, dtype="float64")]
    assert report.pick(rows, (1, 10), "float32", "softmax", "native-avx2")["median"] == 2
    assert report.pick(rows, [1, 10], "float64", "softmax", "numpy")["median"] == 3
    assert report.pick(rows, (1, 10), "float32", "softmax_vjp", "numpy") is None


@pytest.mark.parametrize(
    ("a", "b", "word"),
    [
        ((1.0, 0.9, 1.1), (2.0, 1.9, 2.1), "faster"),
        ((2.0, 1.9, 2.1), (1.0, 0.9, 1.1), "slower"),
        # the ratio of medians 1.08 of the issue: inside the spread, so no verdict
        ((1.08, 0.95, 1.2), (1.0, 0.9, 1.1), "indistinguishable"),
    ],
)
def test_compare_words_follow_the_interval(a, b, word):
    text = report.compare(_row(*a), _row(*b), "NumPy")
    assert text.startswith(f"was {word}")
    others = {"faster", "slower", "indistinguishable"} - {word}
    assert not any(o in text for o in others)


def test_ratio_interval_contains_the_ratio():
    rng = np.random.default_rng(0)
    for _ in range(100):
        qa, qb = np.sort(rng.uniform(0.1, 10, 3)), np.sort(rng.uniform(0.1, 10, 3))
        a, b = _row(qa[1], qa[0], qa[2]), _row(qb[1], qb[0], qb[2])
        r, low, high = report.ratio(a, b)
        assert low <= r <= high


def test_ratio_rejects_unordered_quartiles():
    with pytest.raises(ValueError, match="q1 <= median <= q3"):
        report.ratio(_row(1.0, 1.2, 1.3), _row(1.0, 0.9, 1.1))


@pytest.mark.parametrize(
    ("value", "spread", "text"),
    [
        (68.62, 4.1, "69"),
        (68.62, 0.3, "68.6"),
        (1.0834, 0.12, "1.1"),
        (3552.4, 800, "3600"),
        (0.0123, 0.5, "0.012"),
        (5.0, 0.0, "5.000"),
        (0.0, 1.0, "0"),
    ],
)
def test_fmt_digits_follow_the_spread(value, spread, text):
    assert report.fmt(value, spread) == text


def test_fmt_rejects_negative_spread():
    with pytest.raises(ValueError, match="spread"):
        report.fmt(1.0, -1.0)


def test_per_element_skips_unmeasured_shapes():
    rows = [_row(1e-6, 1e-6, 1e-6, shape=(1, 10), floor=5e-7)]
    pts = report.per_element(
        rows, [(1, 10), (1, 100)], lambda s: s[1], "float32", "softmax", "numpy", key="floor"
    )
    assert pts == [(10, pytest.approx(50.0))]


def test_plot_sweep_draws_each_measured_impl():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        _row(1e-6, 0.9e-6, 1.1e-6, shape=s, impl=i, floor=1e-7, exp_only=2e-7)
        for s in ((1, 10), (1, 100))
        for i in ("numpy", "native-scalar")
    ]
    fig, ax = plt.subplots()
    report.plot_sweep(
        ax,
        rows,
        ["numpy", "native-scalar", "torch"],
        [(1, 10), (1, 100)],
        lambda s: s[1],
        "float32",
        "softmax",
    )
    labels = ax.get_legend_handles_labels()[1]
    plt.close(fig)
    assert labels == ["copy floor", "exp only", "numpy", "native-scalar"]
