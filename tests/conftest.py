"""One ``impl`` fixture: every implementation of the contract, by name.

Tests that take ``impl`` run once per implementation: loops, vectorized NumPy,
and the native C library on each instruction set this machine can run.
"""
import functools
import types

import numpy as np
import pytest

from softmax_lib import loops, vectorized

FUNCTIONS = ("softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp", "softmax_jacobian")


def _bind(module, name, **kwargs):
    """A namespace with the contract's functions of `module`, `kwargs` bound."""
    funcs = {f: functools.partial(getattr(module, f), **kwargs) for f in FUNCTIONS}
    return types.SimpleNamespace(name=name, **funcs)


def _impls():
    params = [
        pytest.param(_bind(loops, "loops"), id="loops"),
        pytest.param(_bind(vectorized, "vectorized"), id="vectorized"),
    ]
    try:
        from softmax_lib import native
    except ImportError as exc:
        reason = f"native library not built: {exc}"
        return params + [pytest.param(None, id=f"native-{isa}", marks=pytest.mark.skip(reason=reason))
                         for isa in ("scalar", "avx2", "neon")]
    for isa in ("scalar", "avx2", "neon"):
        marks = []
        if isa not in native.available_isas():
            marks = [pytest.mark.skip(reason=f"{isa} is not available in this build/CPU")]
        params.append(pytest.param(_bind(native, f"native-{isa}", isa=isa), id=f"native-{isa}", marks=marks))
    return params


IMPLS = _impls()


@pytest.fixture(params=IMPLS)
def impl(request):
    return request.param


def tolerance(dtype):
    """Relative tolerance for comparing results of one dtype: a few hundred ulps."""
    return 256 * np.finfo(dtype).eps
