"""The contract for dask arrays: lazy, computed block by block by the native kernels.

A dask array given to the top-level functions (or :mod:`softmax_lib.vectorized`'s)
comes here (``pip install softmax_lib[dask]``). The result is a lazy dask array:
each block is computed by the fastest module of the process that runs it (the C
library where it was built, ``softmax_lib.BACKEND``) through ``map_blocks``, on
a thread pool or on the workers of a ``dask.distributed`` cluster alike (the block
function is a module-level function of this package, so workers that have
``softmax_lib`` installed import it by name).

Softmax needs a whole slice along its axis, so when the axis is split over several
chunks the array is first rechunked to make it whole (``x.rechunk({axis: -1})``);
the other axes keep their chunks. The VJPs rechunk both inputs alike. Each block is
then an independent set of whole slices, so the result equals the one-array result
element for element: the same kernels on the same rows.

The arguments are checked at once (not when the graph runs) by the module that
computes the blocks, on a one-element array of the same dtype and number of
dimensions (``softmax_lib._frontends.probe``): the same errors for the same bad
``axis``, dtype or keyword, and the result's dtype. ``out=`` is refused: the result
is lazy; ``dask.array.store`` writes it somewhere.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from . import _frontends

__all__ = ["softmax", "log_softmax", "logsumexp", "softmax_vjp", "log_softmax_vjp"]


def _block(name, n_inputs, *blocks, **kwargs):
    """Contract function `name` of this process's fastest module on one block each of
    its `n_inputs` inputs (then a ``where`` mask block, if there is one)."""
    import softmax_lib

    if len(blocks) > n_inputs:
        kwargs["where"] = blocks[n_inputs]
    return getattr(softmax_lib._fastest, name)(*blocks[:n_inputs], **kwargs)


def _dask():
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - only reached with a dask array in hand
        raise ImportError("dask arrays need dask: pip install softmax_lib[dask]") from None
    return da


def _map(name, arrays, axis, out, kwargs):
    da = _dask()
    import softmax_lib

    if out is not None:
        raise TypeError(
            "out= is not supported for dask arrays: the result is a lazy dask array "
            "(dask.array.store writes it into another array)"
        )
    arrays = [da.asarray(a) for a in arrays]
    if len(arrays) == 2 and arrays[0].shape != arrays[1].shape:
        raise ValueError(
            f"y and dy must have the same shape, got {arrays[0].shape} and {arrays[1].shape}"
        )
    ndim = arrays[0].ndim
    fast = getattr(softmax_lib._fastest, name)
    dtype = _frontends.probe(fast, ndim, [a.dtype for a in arrays], (axis,), kwargs)
    axes = _frontends.axes(axis, ndim)
    first = arrays[0].rechunk({a: -1 for a in axes})  # whole slices in every block
    blocks = [first] + [a.rechunk(first.chunks) for a in arrays[1:]]
    kwargs = dict(kwargs)
    where = kwargs.pop("where", None)
    if where is not None:  # a mask: one more blockwise input, chunked alike
        blocks.append(da.broadcast_to(da.asarray(where), first.shape).rechunk(first.chunks))
    func = functools.partial(_block, name, len(arrays), axis=axis, **kwargs)
    return da.map_blocks(func, *blocks, dtype=dtype, meta=np.empty((0,) * ndim, dtype))


def softmax(x: Any, axis: Any = -1, out: None = None, **kwargs: Any) -> Any:
    """Softmax along `axis` of a dask array, lazily, block by block.

    Parameters
    ----------
    x : dask.array.Array
        Logits.
    axis : int, optional
        Axis to normalise over (default: the last); rechunked whole if split.
    out : None
        Must be None: the result is lazy.
    **kwargs
        Further keywords of the top-level ``softmax_lib.softmax`` (``isa=``,
        ``threads=`` with the native library, ``where=``), passed to each block.

    Returns
    -------
    dask.array.Array
        Lazy; each block computed by ``softmax_lib.softmax`` on NumPy blocks.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.from_array(np.array([[1.0, 2.0], [0.0, 0.0]]), chunks=(1, 1))
    >>> softmax(x).compute()
    array([[0.26894142, 0.73105858],
           [0.5       , 0.5       ]])
    """
    return _map("softmax", (x,), axis, out, kwargs)


def log_softmax(x: Any, axis: Any = -1, out: None = None, **kwargs: Any) -> Any:
    """Log-softmax along `axis` of a dask array, lazily, block by block.

    Parameters
    ----------
    x : dask.array.Array
        Logits.
    axis : int, optional
        Axis to normalise over (default: the last); rechunked whole if split.
    out : None
        Must be None: the result is lazy.
    **kwargs
        Further keywords of the top-level ``softmax_lib.log_softmax``.

    Returns
    -------
    dask.array.Array
        Lazy; each block computed by ``softmax_lib.log_softmax``.
    """
    return _map("log_softmax", (x,), axis, out, kwargs)


def logsumexp(x: Any, axis: Any = -1, keepdims: bool = False, **kwargs: Any) -> Any:
    """``log(sum(exp(x)))`` along `axis` of a dask array, lazily, block by block.

    The reduced axes are rechunked whole, so each block reduces whole slices with
    ``softmax_lib.logsumexp`` (``map_blocks``, the reduced axes dropped, or kept with
    length 1 if `keepdims`): the NumPy result, slice for slice.

    Parameters
    ----------
    x : dask.array.Array
        Logits.
    axis : int, tuple of ints or None, optional
        Axis or axes to reduce (default: the last); None: all of them.
    keepdims : bool, optional
        Keep the reduced axes as dimensions of length 1.
    **kwargs
        Further keywords of the top-level ``softmax_lib.logsumexp`` (``where=``, a
        mask chunked like `x`; ``isa=``, ``threads=`` with the native library).

    Returns
    -------
    dask.array.Array
        Lazy; each block computed by ``softmax_lib.logsumexp``.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.from_array(np.array([[1.0, 1.0], [0.0, 0.0]]), chunks=(1, 1))
    >>> logsumexp(x).compute()
    array([1.69314718, 0.69314718])
    """
    da = _dask()
    import softmax_lib

    x = da.asarray(x)
    ndim = x.ndim
    kwargs = dict(kwargs, keepdims=keepdims)
    dtype = _frontends.probe(softmax_lib._fastest.logsumexp, ndim, [x.dtype], (axis,), kwargs)
    axes = _frontends.axes(axis, ndim)
    x = x.rechunk({a: -1 for a in axes})  # whole slices in every block
    blocks = [x]
    where = kwargs.pop("where", None)
    if where is not None:  # a mask: one more blockwise input, chunked alike
        blocks.append(da.broadcast_to(da.asarray(where), x.shape).rechunk(x.chunks))
    func = functools.partial(_block, "logsumexp", 1, axis=axis, **kwargs)
    if keepdims:  # the reduced axes: one chunk of length 1 each
        chunks = tuple((1,) if i in axes else c for i, c in enumerate(x.chunks))
        return da.map_blocks(
            func, *blocks, dtype=dtype, chunks=chunks, meta=np.empty((0,) * ndim, dtype)
        )
    meta = np.empty((0,) * (ndim - len(axes)), dtype)
    return da.map_blocks(func, *blocks, dtype=dtype, drop_axis=axes, meta=meta)


def softmax_vjp(y: Any, dy: Any, axis: Any = -1, out: None = None, **kwargs: Any) -> Any:
    """Softmax VJP of dask arrays (either may be NumPy), lazily, block by block.

    Parameters
    ----------
    y : dask.array.Array or array_like
        Softmax output.
    dy : dask.array.Array or array_like
        Upstream gradient, same shape; rechunked like `y`.
    axis : int, optional
        The axis softmax was taken over (default: the last).
    out : None
        Must be None: the result is lazy.
    **kwargs
        Further keywords of the top-level ``softmax_lib.softmax_vjp``.

    Returns
    -------
    dask.array.Array
        Lazy ``dL/dx``; each block computed by ``softmax_lib.softmax_vjp``.
    """
    return _map("softmax_vjp", (y, dy), axis, out, kwargs)


def log_softmax_vjp(y: Any, dy: Any, axis: Any = -1, out: None = None, **kwargs: Any) -> Any:
    """Log-softmax VJP of dask arrays (either may be NumPy), lazily, block by block.

    Parameters
    ----------
    y : dask.array.Array or array_like
        Log-softmax output.
    dy : dask.array.Array or array_like
        Upstream gradient, same shape; rechunked like `y`.
    axis : int, optional
        The axis log-softmax was taken over (default: the last).
    out : None
        Must be None: the result is lazy.
    **kwargs
        Further keywords of the top-level ``softmax_lib.log_softmax_vjp``.

    Returns
    -------
    dask.array.Array
        Lazy ``dL/dx``; each block computed by ``softmax_lib.log_softmax_vjp``.
    """
    return _map("log_softmax_vjp", (y, dy), axis, out, kwargs)
