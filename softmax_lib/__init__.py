"""softmax_lib: softmax, log-softmax, logsumexp and their vector-Jacobian products.

The top-level functions are those of the fastest module available: the native C
library (AVX2+FMA when the CPU has it) if it was built, else vectorized NumPy.
``BACKEND`` names the module in use. The same functions, with the same contract,
live in :mod:`softmax_lib.loops`, :mod:`softmax_lib.vectorized` and
:mod:`softmax_lib.native`. The activation and loss classes of the loss-agnostic
layer protocol are here too (:mod:`softmax_lib.layers`, :mod:`softmax_lib.losses`).

What differs from SciPy's ``scipy.special.softmax`` / ``log_softmax`` /
``logsumexp``: the default ``axis`` is -1 here, None (all elements) there; both
take None and tuples of axes. ``where=`` (a mask, JAX's meaning), ``out=`` and
the VJPs exist here; ``logsumexp``'s ``b=`` and ``return_sign=`` do not. A bad
axis raises NumPy's ``AxisError`` in both. The API page compares the conventions
with PyTorch and JAX too.
"""

import types
import warnings

from . import vectorized

__version__ = "0.1.0"


class NativeLibraryWarning(RuntimeWarning):
    """The C library is missing, so ``softmax_lib`` runs on NumPy (same contract, slower)."""


_fastest: types.ModuleType
try:
    from . import native as _fastest
except ImportError as exc:  # not compiled (no C compiler at install): NumPy is the fastest we have
    _fastest = vectorized
    # Module code runs once per process, so this is said once.
    warnings.warn(
        f"softmax_lib's C library could not be imported ({exc}); it was probably not "
        "compiled because no C compiler was found at install. Using the NumPy backend "
        "(softmax_lib.BACKEND == 'vectorized'), which is slower. For the native "
        "backend, install a C compiler (gcc or clang; on Windows, Visual Studio's C++ "
        "Build Tools) and reinstall from source: pip install --force-reinstall "
        "--no-cache-dir --no-binary softmax_lib softmax_lib",
        NativeLibraryWarning,
        stacklevel=2,
    )

# An ndarray goes straight to _fastest after one type test; a torch tensor or other
# array-API array, or a dask array, keeps its type (softmax_lib._frontends).
from ._frontends import dispatching as _dispatching  # noqa: E402
from ._frontends import dispatching_reduction as _dispatching_reduction  # noqa: E402

softmax = _dispatching(_fastest.softmax, "softmax")
log_softmax = _dispatching(_fastest.log_softmax, "log_softmax")
softmax_vjp = _dispatching(_fastest.softmax_vjp, "softmax_vjp", arrays=2)
log_softmax_vjp = _dispatching(_fastest.log_softmax_vjp, "log_softmax_vjp", arrays=2)
logsumexp = _dispatching_reduction(_fastest.logsumexp, "logsumexp")
softmax_jacobian = _fastest.softmax_jacobian
BACKEND = _fastest.__name__.rsplit(".", 1)[-1]

# After the functions: layers.py looks them up on this package at call time.
from .layers import Identity, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh  # noqa: E402
from .losses import (  # noqa: E402
    MSE,
    NLL,
    BinaryCrossEntropy,
    CrossEntropy,
    CrossEntropyWithLogits,
    KLDivergence,
)

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_vjp",
    "log_softmax_vjp",
    "softmax_jacobian",
    "BACKEND",
    "NativeLibraryWarning",
    "__version__",
    "Identity",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "Softmax",
    "LogSoftmax",
    "MSE",
    "CrossEntropy",
    "NLL",
    "BinaryCrossEntropy",
    "KLDivergence",
    "CrossEntropyWithLogits",
]
