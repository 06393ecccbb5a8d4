"""Benchmark every implementation side by side: ``python -m softmax_lib.benchmark``.

Times softmax, log-softmax and the softmax VJP for float32 and float64 over a grid
of shapes (short rows included), along the last axis or ``--axis`` (several axes
interleaved in the same rounds: ``--axis=-1,0``), for each
implementation this machine has (loops where they finish quickly, NumPy, the
native scalar and AVX2 kernels on one thread and on the automatic thread count,
PyTorch on one thread and on all cores when installed), plus the memory-bandwidth floor: how long
merely copying the data (forward) or computing a triad (VJP) takes, and for the
forward ops a roofline, the larger of that floor and an exp over the same data.
Implementations are interleaved round by round, so a burst of noise on a shared
machine hits all of them alike, and the report gives medians with their spread
as ratios measured in the same run.

Every implementation writes into a preallocated output (``out=``): allocating
fresh pages costs as much as the softmax itself at large sizes, and that is not
what is being compared.
"""

import argparse
import functools
import json
import os
import statistics
import sys
import time
import types
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from . import loops, vectorized

OPS = ("softmax", "log_softmax", "softmax_vjp")
DTYPES = ("float32", "float64")
GRID = ((1, 10), (1, 1000), (128, 1000), (4096, 1000), (256, 32768), (4096, 3))
QUICK_GRID = ((1, 10), (1, 1000), (128, 1000), (1024, 1000))
LOOPS_MAX_SIZE = 1000  # Python loops take ~1 µs per element: only tiny shapes
K = TypeVar("K")  # the keys naming the calls that measure() times


def _native() -> types.ModuleType | None:
    """softmax_lib.native, or None when the C library was not built."""
    try:
        from . import native
    except ImportError:
        return None
    return native


def _inputs(shape, dtype, seed=0):
    """Logits, their softmax and an upstream gradient, all of `shape` and `dtype`."""
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    return x, vectorized.softmax(x), rng.standard_normal(shape).astype(dtype)


def _module_calls(module, isa=None, axis=-1, threads=1):
    """Zero-argument callables for each op of a contract module, on given arrays.

    Each makes the call as a user writes it: a ``**kwargs`` call would add a
    few hundred nanoseconds of Python to every small call. The native module
    runs on one thread (``threads=1``, as PyTorch here) unless `threads` says
    otherwise (None: its automatic choice).
    """

    def make(op, x, y, dy, out):
        f = getattr(module, op)
        if isa is None:  # loops, numpy
            if op == "softmax_vjp":
                return lambda: f(y, dy, axis, out)
            return lambda: f(x, axis, out)
        if op == "softmax_vjp":
            return lambda: f(y, dy, axis, out, isa=isa, threads=threads)
        return lambda: f(x, axis, out, isa=isa, threads=threads)

    return make


class _Timed:
    """A zero-argument call with a `before` hook that :func:`_time_once` runs
    outside the timed loop (PyTorch's thread count is global: each torch row
    sets its own before its calls)."""

    def __init__(self, call, before):
        self.call, self.before = call, before

    def __call__(self):
        return self.call()


def _torch_calls(axis=-1, threads=1):
    """PyTorch (on `threads` threads, preallocated outputs), or None when it is
    not installed."""
    try:
        import torch
    except ImportError:
        return None

    def before():
        torch.set_num_threads(threads)

    def make(op, x, y, dy, out):
        tx, ty, tdy, tout = (torch.from_numpy(a) for a in (x, y, dy, out))
        if op == "softmax":
            call = lambda: torch.softmax(tx, axis, out=tout)  # noqa: E731
        elif op == "log_softmax":
            call = lambda: torch.log_softmax(tx, axis, out=tout)  # noqa: E731
        else:
            call = lambda: torch._softmax_backward_data(  # noqa: E731
                tdy, ty, axis, ty.dtype, grad_input=tout
            )
        return _Timed(call, before)

    return make


def _kernel_calls(native, isa):
    """The C kernel alone, pointers prepared in advance: the time of the whole
    call minus this is what the Python wrapper costs."""
    code = native._isa_code(isa)

    def make(op, x, y, dy, out):
        kernel = native._KERNELS[op][x.dtype]
        ins = (y, dy) if op == "softmax_vjp" else (x,)
        rows, n = x.reshape(-1, x.shape[-1]).shape
        args: list[Any] = []
        for a in (*ins, out):
            args += (native._pointer(a.reshape(rows, n)), n)
        return lambda: kernel(*args, rows, n, code, 1)  # one thread, as torch

    return make


def implementations(axis: int = -1) -> dict[str, Callable[..., Any]]:
    """``{name: make(op, x, y, dy, out) -> callable}`` for what this machine has.

    ``native-<isa>`` runs on one thread, ``native-<best>-threads`` on the
    automatic thread count; ``kernel-<isa>`` (the C kernel alone) only along
    the last axis, where it needs no copy; ``torch`` on one thread and
    ``torch-threads`` on as many as ``native-<best>-threads`` uses for large
    calls (:func:`native.default_threads`).
    """
    impls = {
        "loops": _module_calls(loops, axis=axis),
        "numpy": _module_calls(vectorized, axis=axis),
    }
    native = _native()
    if native is not None:
        for isa in native.available_isas():
            impls[f"native-{isa}"] = _module_calls(native, isa=isa, axis=axis)
            if axis == -1:
                impls[f"kernel-{isa}"] = _kernel_calls(native, isa)
        impls[f"native-{native.best_isa()}-threads"] = _module_calls(
            native, isa=native.best_isa(), axis=axis, threads=None
        )
    torch_make = _torch_calls(axis)
    if torch_make is not None:
        impls["torch"] = torch_make
        cores = native.default_threads() if native is not None else os.cpu_count() or 1
        impls["torch-threads"] = _torch_calls(axis, threads=cores)
    return impls


def _exp_call(x, out):
    """exp over `x` by the best native ISA's exp, or None: the exp-throughput floor
    of the forward ops (a fused softmax computes one exp per element)."""
    try:
        from . import native
    except ImportError:
        return None
    dt = np.dtype(x.dtype)
    kernel, code = native._KERNELS["exp"][dt], native._isa_code("auto")
    px, po = (
        native._from_buffer(native._BUFFER[dt], x),
        native._from_buffer(native._BUFFER[dt], out),
    )
    return lambda: kernel(px, po, x.size, code)


def _floor_calls(x, y, dy, out):
    """The bandwidth floor: the fastest copy (forward) and triad (VJP) we can run."""

    def numpy_triad():  # two passes: NumPy has no fused a = b + s*c
        np.multiply(dy, 0.5, out=out)
        np.add(out, y, out=out)

    candidates: dict[str, list[Callable[[], Any]]] = {
        "copy": [lambda: np.copyto(out, x)],
        "triad": [numpy_triad],
    }
    try:
        from . import native
    except ImportError:
        return candidates
    # The C kernels move float32; any C-contiguous array can be seen as float32.
    fx, fy, fdy, fout = (a.reshape(-1).view(np.float32) for a in (x, y, dy, out))
    for nt in (False, True) if "avx2" in native.available_isas() else (False,):
        candidates["copy"].append(functools.partial(native._copy_f32, fx, fout, nt))
        candidates["triad"].append(functools.partial(native._triad_f32, fout, fy, fdy, 0.5, nt))
    return candidates


def _time_once(call, number):
    """Seconds per call, averaged over `number` back-to-back calls."""
    before = getattr(call, "before", None)
    if before is not None:
        before()
    start = time.perf_counter()
    for _ in range(number):
        call()
    return (time.perf_counter() - start) / number


def _calibrate(call, budget):
    """Calls per sample so that one sample lasts about `budget` seconds."""
    _time_once(call, 1)  # warm up: first touch of the output's pages, caches, lazy imports
    t = _time_once(call, 1)
    return max(1, min(100_000, int(budget / max(t, 1e-9))))


def measure(calls: dict[K, Callable[[], Any]], rounds: int, budget: float) -> dict[K, list[float]]:
    """Interleave `calls` for `rounds` rounds; return per-call times in seconds."""
    numbers = {name: _calibrate(call, budget) for name, call in calls.items()}
    samples: dict[K, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            samples[name].append(_time_once(call, numbers[name]))
    return samples


def _summary(times):
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"median": statistics.median(times), "q1": q[0], "q3": q[2]}


def run(
    grid: Sequence[tuple[int, ...]] = GRID,
    ops: Sequence[str] = OPS,
    dtypes: Sequence[str] = DTYPES,
    rounds: int = 9,
    budget: float = 0.02,
    progress: Callable[[tuple[int, ...], str, str], Any] | None = None,
    axis: int | Sequence[int] = -1,
) -> list[dict[str, Any]]:
    """Benchmark the grid along `axis`; returns a list of result rows (dicts).

    Besides the bandwidth floor (``vs_floor``), each forward row has a roofline
    ratio ``vs_roof``: the time over max(copy floor, exp-only time), since a
    fused softmax is bound by exp throughput as much as by bandwidth (the VJPs
    have no exp: their roof is the triad floor). Several axes are measured in the
    same rounds, on the same arrays, so that their ratios come from one run; each
    row says its ``axis``, and ``vs_torch`` compares with PyTorch along it."""
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    impls = {(a, name): make for a in axes for name, make in implementations(a).items()}
    rows = []
    for shape in grid:
        for dtype in dtypes:
            x, y, dy = _inputs(shape, dtype)
            nbytes = x.nbytes
            for op in ops:
                outs = {}
                calls: dict[tuple[int | None, str], Callable[[], Any]] = {}
                for key, make in impls.items():
                    if key[1] == "loops" and x.size > LOOPS_MAX_SIZE:
                        continue
                    outs[key] = np.empty_like(x)
                    calls[key] = make(op, x, y, dy, outs[key])
                floor_kind = "triad" if op.endswith("vjp") else "copy"
                floor_out = np.empty_like(x)
                for i, c in enumerate(_floor_calls(x, y, dy, floor_out)[floor_kind]):
                    calls[None, f"floor-{i}"] = c
                exp_call = _exp_call(x, np.empty_like(x)) if floor_kind == "copy" else None
                if exp_call is not None:
                    calls[None, "exp-only"] = exp_call
                samples = measure(calls, rounds, budget)
                floors = [k for k in samples if k[1].startswith("floor-")]
                floor = min(statistics.median(samples.pop(k)) for k in floors)
                exp_time = statistics.median(samples.pop((None, "exp-only"))) if exp_call else 0.0
                roof = max(floor, exp_time)
                # bytes that must cross the memory bus: inputs read once, output written
                moved = nbytes * (3 if floor_kind == "triad" else 2)
                for (a, name), times in samples.items():
                    s = _summary(times)
                    torch_times = samples.get((a, "torch"))
                    torch_median = statistics.median(torch_times) if torch_times else None
                    rows.append(
                        {
                            "shape": list(shape),
                            "dtype": dtype,
                            "op": op,
                            "impl": name,
                            **s,
                            "gbps": moved / s["median"] / 1e9,
                            "vs_floor": s["median"] / floor,
                            "vs_torch": s["median"] / torch_median if torch_median else None,
                            "floor": floor,
                            "floor_kind": floor_kind,
                            "exp_only": exp_time or None,
                            "vs_roof": s["median"] / roof,
                            "axis": a,
                        }
                    )
                if progress:
                    progress(shape, dtype, op)
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The results as a plain-text table, one line per (shape, dtype, op, impl)."""
    header = (
        f"{'shape':>11} {'axis':>4} {'dtype':>7} {'op':>11} {'impl':>20} {'median':>10} "
        f"{'spread':>15} {'GB/s':>6} {'/floor':>7} {'/roof':>7} {'/torch':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        vs_torch = f"{r['vs_torch']:7.2f}" if r["vs_torch"] is not None else "      -"
        lines.append(
            f"{shape:>11} {r['axis']:>4} {r['dtype']:>7} {r['op']:>11} {r['impl']:>20} "
            f"{_fmt_time(r['median']):>10} "
            f"{_fmt_time(r['q1']) + '-' + _fmt_time(r['q3']):>15} "
            f"{r['gbps']:6.1f} {r['vs_floor']:7.2f} {r['vs_roof']:7.2f} {vs_torch}"
        )
    return "\n".join(lines)


def _fmt_time(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f}us"
    return f"{seconds * 1e3:.2f}ms"


def plot(rows: Sequence[dict[str, Any]], path: str) -> None:
    """Time per element against row length, one panel per (dtype, op)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(DTYPES), len(OPS), figsize=(12, 6.5), sharex=True, facecolor="white"
    )
    for i, dtype in enumerate(DTYPES):
        for j, op in enumerate(OPS):
            ax = axes[i][j]
            sel = [r for r in rows if r["dtype"] == dtype and r["op"] == op]
            for impl in dict.fromkeys(r["impl"] for r in sel):
                pts = sorted(
                    (np.prod(r["shape"]), r["median"] / np.prod(r["shape"]) * 1e9)
                    for r in sel
                    if r["impl"] == impl
                )
                ax.loglog(*zip(*pts, strict=True), marker="o", label=impl)
            floor_pts = sorted(
                {(np.prod(r["shape"]), r["floor"] / np.prod(r["shape"]) * 1e9) for r in sel}
            )
            ax.loglog(*zip(*floor_pts, strict=True), "k--", label="bandwidth floor")
            ax.set_title(f"{op}, {dtype}")
            ax.set_xlabel("elements")
            ax.set_ylabel("ns per element")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120, facecolor="white")
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m softmax_lib.benchmark", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smaller grid and budget (about half a minute)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--plot", metavar="FILE", help="also save a plot (PNG/SVG)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per cell")
    parser.add_argument(
        "--shapes", metavar="RxN,...", help="only these shapes, e.g. 1x10,256x32768"
    )
    parser.add_argument("--ops", metavar="OP,...", help=f"only these of {','.join(OPS)}")
    parser.add_argument("--dtypes", metavar="DTYPE,...", help=f"only these of {','.join(DTYPES)}")
    parser.add_argument(
        "--axis",
        default="-1",
        metavar="AXIS,...",
        help="the axis to normalise over (default -1; e.g. 0 for columns; "
        "--axis=-1,0: both, interleaved in the same rounds)",
    )
    args = parser.parse_args(argv)
    grid: list[tuple[int, ...]]
    grid, rounds, budget = (list(QUICK_GRID), 5, 0.005) if args.quick else (list(GRID), 9, 0.02)
    rounds = args.rounds or rounds
    if args.shapes:
        grid = [tuple(int(d) for d in shape.split("x")) for shape in args.shapes.split(",")]
    ops = args.ops.split(",") if args.ops else OPS
    dtypes = args.dtypes.split(",") if args.dtypes else DTYPES

    def progress(shape, dtype, op):
        print(f"  measured {shape} {dtype} {op}", file=sys.stderr, flush=True)

    rows = run(
        grid=grid,
        ops=ops,
        dtypes=dtypes,
        rounds=rounds,
        budget=budget,
        progress=progress,
        axis=[int(a) for a in args.axis.split(",")],
    )
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
