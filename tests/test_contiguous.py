"""Results are C-contiguous along every axis, in every module, for C-contiguous
input (issue 10, item 4): native used to return the moved-axis view of its row
buffer (strides (96, 8, 24) for a (2, 3, 4) array over axis 1)."""

import numpy as np
import pytest


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 4), (5, 7), (3, 1, 2, 8)])
def test_results_are_c_contiguous_along_every_axis(impl, shape, dtype):
    rng = np.random.default_rng(19)
    x = rng.normal(size=shape).astype(dtype)
    for axis in range(-len(shape), len(shape)):
        y = impl.softmax(x, axis=axis)
        results = [
            y,
            impl.log_softmax(x, axis=axis),
            impl.softmax_vjp(y, x, axis=axis),
            impl.log_softmax_vjp(np.log(y), x, axis=axis),
        ]
        for r in results:
            assert r.shape == shape and r.flags.c_contiguous, (axis, r.strides)
