"""In-place calls act as if the inputs were copied first (issue 10, item 3).

NumPy's rule for ufuncs: ``f(x, out=x)`` on a layout whose elements overlap each
other (an ``as_strided`` view, rows 4 elements apart but 8 long) must give what
``out[...] = f(x.copy())`` gives. The expected values here are built exactly that
way, with NumPy's own assignment, on a copy of the same buffer, from inputs in
the same layout; the results must be identical bit for bit (the same kernels
compute the same values from the same inputs in the same order, and the same
assignment writes them). Every module, every function.
"""

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from softmax_lib._checks import overlaps_itself

FORWARD = ("softmax", "log_softmax")
BACKWARD = ("softmax_vjp", "log_softmax_vjp")


def overlapping_rows(base, rows=5, n=8, step=4):
    """Rows of n elements starting `step` elements apart in `base`: they overlap."""
    s = base.itemsize
    return as_strided(base, shape=(rows, n), strides=(step * s, s), writeable=True)


def arguments(name, x, rng):
    """The function's inputs from `x`: (x,) or (y, dy), as plain new arrays."""
    if name in FORWARD:
        return [x.copy()]
    return [
        np.abs(x) / np.abs(x).sum(axis=-1, keepdims=True),
        rng.normal(size=x.shape).astype(x.dtype),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("name", FORWARD + BACKWARD)
def test_out_is_a_self_overlapping_input(impl, name, which, dtype):
    if name in FORWARD and which == 1:
        pytest.skip("forward functions have one input")
    rng = np.random.default_rng(7)
    base = rng.normal(scale=3.0, size=40).astype(dtype)
    view = overlapping_rows(base)
    args = arguments(name, view, rng)
    args[which] = view
    # the expected memory: NumPy's assignment of the result, computed from the
    # same layout on a copy of the buffer (a call without out writes nothing)
    base2 = base.copy()
    view2 = overlapping_rows(base2)
    args2 = list(args)
    args2[which] = view2
    view2[...] = getattr(impl, name)(*args2)
    assert getattr(impl, name)(*args, out=view) is view
    np.testing.assert_array_equal(base, base2)


@pytest.mark.parametrize("name", FORWARD + BACKWARD)
def test_out_overlapping_itself_but_not_the_input(impl, name):
    rng = np.random.default_rng(8)
    args = arguments(name, rng.normal(size=(5, 8)), rng)
    buffer, expected = np.zeros(40), np.zeros(40)
    out = overlapping_rows(buffer)
    overlapping_rows(expected)[...] = getattr(impl, name)(*args)
    assert getattr(impl, name)(*args, out=out) is out
    np.testing.assert_array_equal(buffer, expected)


@pytest.mark.parametrize("name", FORWARD + BACKWARD)
@pytest.mark.parametrize("shift", [1, -1])
def test_out_shifted_by_rows_over_the_input(impl, name, shift):
    # Not self-overlapping, but out's row r is the input's row r + shift: writing
    # row by row would overwrite rows not read yet (or already read).
    rng = np.random.default_rng(9)
    buf = rng.normal(scale=2.0, size=(7, 6))
    x = buf[1:] if shift > 0 else buf[:-1]
    out = buf[:-1] if shift > 0 else buf[1:]
    args = arguments(name, x, rng)
    args[0] = x
    expected = getattr(impl, name)(*[a.copy() for a in args])
    assert getattr(impl, name)(*args, out=out) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("name", FORWARD)
def test_axis_0_of_a_self_overlapping_input(impl, name):
    rng = np.random.default_rng(10)
    base = rng.normal(size=40)
    view = overlapping_rows(base).T  # (8, 5), softmax along axis 0 = the rows
    base2 = base.copy()
    view2 = overlapping_rows(base2).T
    view2[...] = getattr(impl, name)(view2, axis=0)
    getattr(impl, name)(view, axis=0, out=view)
    np.testing.assert_array_equal(base, base2)


def test_overlaps_itself():
    a = np.zeros(64)
    assert not overlaps_itself(a)
    assert not overlaps_itself(a.reshape(8, 8)[::2, 1::3])
    assert not overlaps_itself(a.reshape(8, 8).T)
    assert not overlaps_itself(a[::-1])
    assert overlaps_itself(overlapping_rows(a))
    assert overlaps_itself(as_strided(a, shape=(3, 4), strides=(0, 8)))
    # interleaved but disjoint: element offsets 0, 8, 16 and 4, 12, 20 (float32)
    b = np.zeros(8, np.float32)
    assert not overlaps_itself(as_strided(b, shape=(2, 3), strides=(4, 8)))
    assert overlaps_itself(as_strided(b, shape=(2, 3), strides=(8, 4)))
    assert not overlaps_itself(a[:1]) and not overlaps_itself(a[:0])
