"""softmax_lib: softmax, log-softmax and their vector-Jacobian products.

The top-level functions are those of the fastest module available: the native C
library (AVX2+FMA when the CPU has it) if it was built, else vectorized NumPy.
``BACKEND`` names the module in use. The same functions, with the same contract,
live in :mod:`softmax_lib.loops`, :mod:`softmax_lib.vectorized` and
:mod:`softmax_lib.native`. The activation and loss classes of the loss-agnostic
layer protocol are here too (:mod:`softmax_lib.layers`, :mod:`softmax_lib.losses`).
"""
from . import vectorized

try:
    from . import native as _fastest
except ImportError:  # the C library was not built: NumPy is the fastest we have
    _fastest = vectorized

softmax = _fastest.softmax
log_softmax = _fastest.log_softmax
softmax_vjp = _fastest.softmax_vjp
log_softmax_vjp = _fastest.log_softmax_vjp
softmax_jacobian = _fastest.softmax_jacobian
BACKEND = _fastest.__name__.rsplit(".", 1)[-1]

# After the functions: layers.py looks them up on this package at call time.
from .layers import Identity, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh  # noqa: E402
from .losses import MSE, NLL, BinaryCrossEntropy, CrossEntropy, KLDivergence  # noqa: E402

__all__ = [
    "softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp", "softmax_jacobian",
    "BACKEND",
    "Identity", "Sigmoid", "Tanh", "ReLU", "Softmax", "LogSoftmax",
    "MSE", "CrossEntropy", "NLL", "BinaryCrossEntropy", "KLDivergence",
]
