"""Routing of non-NumPy arrays to the front ends that keep their type.

The top-level functions (and :mod:`softmax_lib.vectorized`'s) are wrapped by
:func:`dispatching` (``logsumexp`` by :func:`dispatching_reduction`): an ``ndarray``
goes straight to the wrapped function after one ``type(x) is ndarray`` test; a dask
array goes to :mod:`softmax_lib.dask_blockwise` and any other array-API array (a
torch tensor, ...) to :mod:`softmax_lib.array_api`.
Lists, scalars and ndarray subclasses keep the NumPy path as before.

Neither front end re-implements the contract's argument checks: :func:`probe` calls
the NumPy implementation on a one-element array of the same dtype and number of
dimensions with the same ``axis`` and keyword arguments, so a bad axis, a complex
dtype or an unknown keyword raises the very error it raises for NumPy input, at
once (not later, when a lazy dask graph runs), and its result dtype is the one the
front end produces.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

_ndarray = np.ndarray


def frontend(*arrays):
    """The front-end module for `arrays` (the function's array arguments), or None.

    Any dask array: :mod:`softmax_lib.dask_blockwise`. Else None (the NumPy path)
    when any is an ``ndarray`` (subclasses included) or none is an array of another
    library; else :mod:`softmax_lib.array_api`. Neither dask nor torch is imported here: an object
    can only be one of their arrays if its library is already loaded.
    """
    da = sys.modules.get("dask.array")
    if da is not None and any(isinstance(a, da.Array) for a in arrays):
        return _module("dask_blockwise")  # a dask array with an ndarray: still lazy
    if any(isinstance(a, _ndarray) for a in arrays) or not any(map(_is_array_api, arrays)):
        return None
    return _module("array_api")


def _is_array_api(a):
    if hasattr(type(a), "__array_namespace__"):  # the standard's marker (NumPy scalars lack it)
        return not isinstance(a, np.generic)
    torch = sys.modules.get("torch")  # torch tensors do not carry the marker
    return torch is not None and isinstance(a, torch.Tensor)


@functools.cache
def _module(name):
    import importlib

    return importlib.import_module(f"softmax_lib.{name}")


def dispatching(fast, name, arrays=1):
    """`fast` (a contract function), wrapped so other array types keep their type.

    Parameters
    ----------
    fast : callable
        The NumPy-path function, e.g. ``native.softmax``.
    name : str
        Its contract name: the front ends' function of that name takes the call.
    arrays : int, optional
        How many leading positional parameters are arrays (2 for the VJPs).

    Returns
    -------
    callable
        A function with `fast`'s signature and docstring: ``(x, axis=-1, out=None,
        **kwargs)`` or ``(y, dy, axis=-1, out=None, **kwargs)``. Keywords are
        forwarded as given, so one that `fast` gains later (``where=``) reaches it.
    """
    if getattr(fast, "_dispatching", False):  # already wrapped (vectorized, no C library)
        return fast
    # Explicit axis and out, and **kwargs passed on only when there are some: the
    # cheapest forwarding measured (a *args/**kwargs wrapper costs more per call).
    wrapper: Any
    if arrays == 1:

        def wrapper(x, axis=-1, out=None, **kwargs):
            if type(x) is _ndarray:  # the common case first: one test, then the call
                if kwargs:
                    return fast(x, axis, out, **kwargs)
                return fast(x, axis, out)
            front = frontend(x)
            return (fast if front is None else getattr(front, name))(x, axis, out, **kwargs)

    else:

        def wrapper(y, dy, axis=-1, out=None, **kwargs):
            if type(y) is _ndarray and type(dy) is _ndarray:
                if kwargs:
                    return fast(y, dy, axis, out, **kwargs)
                return fast(y, dy, axis, out)
            front = frontend(y, dy)
            return (fast if front is None else getattr(front, name))(y, dy, axis, out, **kwargs)

    functools.update_wrapper(wrapper, fast)
    wrapper._dispatching = True
    return wrapper


def dispatching_reduction(fast, name):
    """`fast` (a reduction: ``logsumexp``), wrapped as :func:`dispatching` wraps the
    others, so other array types keep their type.

    Parameters
    ----------
    fast : callable
        The NumPy-path function, e.g. ``native.logsumexp``.
    name : str
        Its contract name: the front ends' function of that name takes the call.

    Returns
    -------
    callable
        A function with `fast`'s signature and docstring: ``(x, axis=-1,
        keepdims=False, **kwargs)``; keywords (``where=``, ``isa=``...) forwarded as given.
    """
    if getattr(fast, "_dispatching", False):
        return fast

    def wrapper(x, axis=-1, keepdims=False, **kwargs):
        if type(x) is _ndarray:  # the common case first: one test, then the call
            if kwargs:
                return fast(x, axis, keepdims, **kwargs)
            return fast(x, axis, keepdims)
        front = frontend(x)
        return (fast if front is None else getattr(front, name))(x, axis, keepdims, **kwargs)

    wrapped: Any = functools.update_wrapper(wrapper, fast)
    wrapped._dispatching = True
    return wrapped


def reference(name):
    """The unwrapped NumPy function `name` of :mod:`softmax_lib.vectorized`, whose
    checks every module shares: what the array-API front end probes with."""
    from . import vectorized

    f = getattr(vectorized, name)
    return getattr(f, "__wrapped__", f)


def probe(func, ndim, dtypes, args=(), kwargs=None):
    """The result dtype of NumPy-path function `func` for inputs of `dtypes`.

    Calls it on one-element arrays of `ndim` dimensions (and an all-true ``where``
    mask if one is given), so its checks of the axis, the dtypes and the keyword
    arguments apply; their errors propagate unchanged.
    """
    kwargs = dict(kwargs or {})
    shape = (1,) * ndim
    if kwargs.get("where") is not None:
        kwargs["where"] = np.ones(shape, bool)
    ins = [np.zeros(shape, dtype) for dtype in dtypes]
    return np.asarray(func(*ins, *args, **kwargs)).dtype


def axes(axis, ndim):
    """`axis`, already checked by :func:`probe`, as a tuple of non-negative ints: every
    axis for None, none for a 0-d array (one slice of one element, whatever the axis)."""
    if ndim == 0:
        return ()
    return tuple(range(ndim)) if axis is None else normalize_axis_tuple(axis, ndim)
