"""Reading the rows of :func:`softmax_lib.benchmark.run` in a chapter.

The performance chapter needs a few small helpers to look up a measurement,
plot a sweep and turn two measurements into a sentence. They live here so that
readers of the chapter read results, not plumbing.

Comparisons are worded from intervals, never from a bare ``>``: a ratio of two
medians comes with the range from the quartiles (the faster quartile of one
over the slower of the other, and the reverse); when that range contains 1 the
two are called indistinguishable. Numbers are printed with no more digits than
their spread supports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

Row = dict[str, Any]


def pick(rows: Iterable[Row], shape: Sequence[int], dtype: str, op: str, impl: str) -> Row | None:
    """The measured row for one implementation, or None if it was not run.

    Parameters
    ----------
    rows : iterable of dict
        Result rows of :func:`softmax_lib.benchmark.run`.
    shape : sequence of int
        The array shape, e.g. ``(4096, 1000)``.
    dtype, op, impl : str
        The dtype name, the operation and the implementation name.

    Returns
    -------
    dict or None
        The first row that matches all four, or None.

    Examples
    --------
    >>> rows = [{"shape": [1, 10], "dtype": "float32", "op": "softmax", "impl": "numpy"}]
    >>> pick(rows, (1, 10), "float32", "softmax", "numpy")["impl"]
    'numpy'
    >>> pick(rows, (1, 10), "float64", "softmax", "numpy") is None
    True
    """
    shape = tuple(shape)
    for r in rows:
        if (tuple(r["shape"]), r["dtype"], r["op"], r["impl"]) == (shape, dtype, op, impl):
            return r
    return None


def ratio(a: Row, b: Row) -> tuple[float, float, float]:
    """Measurement `a` as a multiple of measurement `b`, with its spread.

    Parameters
    ----------
    a, b : dict
        Rows with ``median``, ``q1`` and ``q3`` times.

    Returns
    -------
    (float, float, float)
        The ratio of the medians, and the low and high ends of the range from
        the quartiles: ``a.q1 / b.q3`` and ``a.q3 / b.q1``. The low end is at
        most the ratio, the high end at least.

    Examples
    --------
    >>> r = ratio({"median": 2.0, "q1": 1.8, "q3": 2.2}, {"median": 1.0, "q1": 0.9, "q3": 1.1})
    >>> [round(v, 3) for v in r]
    [2.0, 1.636, 2.444]
    """
    for r in (a, b):
        if not r["q1"] <= r["median"] <= r["q3"] or r["q1"] <= 0:
            raise ValueError(f"need 0 < q1 <= median <= q3, got {r['q1'], r['median'], r['q3']}")
    return a["median"] / b["median"], a["q1"] / b["q3"], a["q3"] / b["q1"]


def fmt(value: float, spread: float) -> str:
    """`value` with no more digits than `spread` supports.

    The last digit printed is the one at the order of magnitude of `spread` (two
    significant digits at least, so that a value is never printed as 0).

    Parameters
    ----------
    value : float
        The number to print.
    spread : float
        Its uncertainty, e.g. the interquartile range; must be non-negative.

    Returns
    -------
    str

    Examples
    --------
    >>> fmt(68.62, 4.1)
    '69'
    >>> fmt(1.0834, 0.12)
    '1.1'
    >>> fmt(3552.4, 800)
    '3600'
    """
    if not spread >= 0:
        raise ValueError(f"spread must be >= 0, got {spread}")
    if value == 0:
        return "0"
    mag_value = math.floor(math.log10(abs(value)))
    last = math.floor(math.log10(spread)) if spread > 0 else mag_value - 3
    last = min(last, mag_value - 1)  # two significant digits at least
    if last >= 0:
        return str(int(round(value, -last)))
    return f"{value:.{-last}f}"


def compare(a: Row, b: Row, other: str) -> str:
    """A sentence fragment comparing `a` with `b` (named `other`), from the intervals.

    Parameters
    ----------
    a, b : dict
        Rows with ``median``, ``q1`` and ``q3`` times.
    other : str
        How to name `b` in the text, e.g. ``"NumPy"``.

    Returns
    -------
    str
        "took r times as long as ... (from lo to hi between quartiles)", where the
        wording says "indistinguishable from ..." when the quartile range contains
        1, and "faster" / "slower" otherwise.

    Examples
    --------
    >>> fast = {"median": 1.0, "q1": 0.95, "q3": 1.05}
    >>> slow = {"median": 3.0, "q1": 2.9, "q3": 3.2}
    >>> compare(fast, slow, "NumPy")
    'was faster than NumPy: 0.33 times its time (0.30 to 0.36 between quartiles)'
    >>> close = {"median": 1.08, "q1": 0.9, "q3": 1.2}
    >>> print(compare(fast, close, "NumPy"))  # doctest: +NORMALIZE_WHITESPACE
    was indistinguishable from NumPy within the spread: 0.93 times its time (0.79 to 1.2
    between quartiles)
    """
    r, low, high = ratio(a, b)
    if low <= 1 <= high:
        verdict = f"was indistinguishable from {other} within the spread"
    elif high < 1:
        verdict = f"was faster than {other}"
    else:
        verdict = f"was slower than {other}"
    spread = high - low
    return (
        f"{verdict}: {fmt(r, spread)} times its time "
        f"({fmt(low, spread)} to {fmt(high, spread)} between quartiles)"
    )


def per_element(
    rows: Iterable[Row],
    shapes: Iterable[Sequence[int]],
    x_of: Callable[[Sequence[int]], float],
    dtype: str,
    op: str,
    impl: str,
    key: str = "median",
) -> list[tuple[float, float]]:
    """Points (x, nanoseconds per element) of one implementation over `shapes`.

    Parameters
    ----------
    rows : iterable of dict
        Result rows of :func:`softmax_lib.benchmark.run`.
    shapes : iterable of sequence of int
        The shapes to look up; shapes that were not measured are left out.
    x_of : callable
        Maps a shape to the x coordinate (e.g. the row length).
    dtype, op, impl : str
        Which measurement.
    key : str
        The time to use: ``"median"`` (default), ``"q1"``, ``"q3"``, ``"floor"``
        or ``"exp_only"``.

    Returns
    -------
    list of (float, float)
    """
    rows = list(rows)
    points = []
    for s in shapes:
        r = pick(rows, s, dtype, op, impl)
        if r is not None and r.get(key) is not None:
            points.append((x_of(s), r[key] / math.prod(s) * 1e9))
    return points


def plot_sweep(
    ax: Any,
    rows: Sequence[dict[str, Any]],
    impls: Iterable[str],
    shapes: Sequence[Sequence[int]],
    x_of: Callable[[Sequence[int]], float],
    dtype: str,
    op: str,
) -> None:
    """Draw nanoseconds per element of each of `impls` over `shapes` on `ax`.

    Each implementation is a line of medians with its quartiles as error bars;
    the bandwidth floor (measured with NumPy's row) is dashed black and, for the
    forward ops, the exp-only time dotted.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    rows : list of dict
        Result rows of :func:`softmax_lib.benchmark.run`.
    impls : iterable of str
        The implementations to draw.
    shapes, x_of, dtype, op
        As for :func:`per_element`.
    """
    rows = list(rows)
    for impl in impls:
        pts = per_element(rows, shapes, x_of, dtype, op, impl)
        if not pts:
            continue
        lo = per_element(rows, shapes, x_of, dtype, op, impl, "q1")
        hi = per_element(rows, shapes, x_of, dtype, op, impl, "q3")
        xs, ys = zip(*pts, strict=True)
        err = [
            [y - q for y, (_, q) in zip(ys, lo, strict=True)],
            [q - y for y, (_, q) in zip(ys, hi, strict=True)],
        ]
        ax.errorbar(xs, ys, yerr=err, fmt="o-", ms=4, capsize=2, label=impl)
    for key, style, label in (("floor", "k--", "copy floor"), ("exp_only", "k:", "exp only")):
        pts = per_element(rows, shapes, x_of, dtype, op, "numpy", key=key)
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")


def markdown_table(header: Sequence[str], body: Iterable[Sequence[str]]) -> str:
    """A Markdown table from a header and rows of strings.

    Examples
    --------
    >>> print(markdown_table(["a", "b"], [["1", "2"]]))
    | a | b |
    | --- | --- |
    | 1 | 2 |
    """
    lines = [list(header), ["---"] * len(header), *map(list, body)]
    return "\n".join("| " + " | ".join(r) + " |" for r in lines)


def numpy_passes(x: np.ndarray, out: np.ndarray) -> dict[str, tuple[Callable[[], Any], int]]:
    """NumPy's softmax along the last axis as its five whole-array passes.

    Each value is a zero-argument callable running one pass of
    :func:`softmax_lib.vectorized.softmax` and the number of array-sized reads
    plus writes that pass makes. The library does the last three passes in
    place in `out`; here each pass reads its own copy of its input (two scratch
    arrays of the size of `x`), so that timing one pass again and again sees the
    same numbers every time, and moves the same bytes. Calling them in order
    leaves the softmax of `x` in `out`.

    Parameters
    ----------
    x : ndarray
        Logits, at least 1-D, float32 or float64.
    out : ndarray
        Same shape and dtype as `x`.

    Returns
    -------
    dict
        ``{name: (call, arrays_moved)}`` in the order the passes run.

    Examples
    --------
    >>> x = np.array([[1.0, 2.0, 3.0]]); out = np.empty_like(x)
    >>> for call, _ in numpy_passes(x, out).values():
    ...     _ = call()
    >>> bool(np.allclose(out.sum(), 1.0))
    True
    """
    if out.shape != x.shape or out.dtype != x.dtype:
        raise ValueError(f"out must match x: {out.shape} {out.dtype} vs {x.shape} {x.dtype}")
    shifted, exps, red = np.empty_like(x), np.empty_like(x), {}

    def max_pass():
        red["m"] = np.max(x, axis=-1, keepdims=True)

    def sum_pass():
        red["s"] = np.sum(exps, axis=-1, keepdims=True)

    max_pass()
    np.exp(np.subtract(x, red["m"], out=shifted), out=exps)
    sum_pass()
    return {
        "max": (max_pass, 1),
        "subtract": (lambda: np.subtract(x, red["m"], out=shifted), 2),
        "exp": (lambda: np.exp(shifted, out=exps), 2),
        "sum": (sum_pass, 1),
        "divide": (lambda: np.divide(exps, red["s"], out=out), 2),
    }


def exp_call(x: np.ndarray, out: np.ndarray, isa: str) -> Callable[[], Any]:
    """A zero-argument call of the exp inside the native `isa` kernels, `x` into `out`.

    Pointers are prepared once, so a timed call is the C loop and one cffi call.
    `x` and `out` must be C-contiguous, of one shape and of float32 or float64.
    """
    from . import native

    dt = np.dtype(x.dtype)
    if (
        out.shape != x.shape
        or out.dtype != dt
        or not (x.flags.c_contiguous and out.flags.c_contiguous)
    ):
        raise ValueError("x and out must be C-contiguous arrays of one shape and dtype")
    kernel, code = native._KERNELS["exp"][dt], native._isa_code(isa)
    px = native._from_buffer(native._BUFFER[dt], x)
    po = native._from_buffer(native._BUFFER[dt], out)
    return lambda: kernel(px, po, x.size, code)


def quartiles(times: Sequence[float]) -> Row:
    """``{"q1", "median", "q3"}`` of a list of timings (as the benchmark reports them)."""
    q1, med, q3 = np.percentile(np.asarray(times, dtype=float), [25, 50, 75])
    return {"q1": float(q1), "median": float(med), "q3": float(q3)}
