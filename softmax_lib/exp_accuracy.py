"""How accurate is the native library's ``exp``? ``python -m softmax_lib.exp_accuracy``.

Measures, in units in the last place (ulp) of the result's dtype, the error of
the exp inside the native kernels (the polynomial of ``native/exp_avx2.h`` or
``native/exp_neon.h``, or libm for the scalar kernels) against a reference precise
enough to judge it:
float64 for float32 results, and x87 ``long double`` (64-bit significand) or
mpmath for float64 results. The points cover the whole range where ``exp`` is
finite and not 0 (including the subnormal results), with extra points near 0,
near the underflow limit and near overflow. Special values are checked
separately: ``NaN -> NaN``, ``+inf -> +inf``, ``-inf -> 0``, beyond-range inputs
to ``+inf`` or ``0``, ``exp(0) == 1``.
"""

import argparse
import math
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from . import native

#: The accuracy goals, in ulps.
GOALS: dict[np.dtype[Any], float] = {np.dtype(np.float32): 1.5, np.dtype(np.float64): 2.0}


def finite_range(dtype: DTypeLike) -> tuple[np.floating, np.floating]:
    """``(lo, hi)``: the inputs whose exp is neither 0 nor inf (to rounding) in `dtype`."""
    info = np.finfo(dtype)
    scalar: Any = np.dtype(dtype).type
    lo = math.log(float(info.smallest_subnormal)) - math.log(2.0)  # exp(lo) = half a subnormal
    hi = math.log(float(info.max))
    zero = scalar(0)
    return np.nextafter(scalar(lo), zero), np.nextafter(scalar(hi), zero)


def sample(dtype: DTypeLike, n: int, rng: np.random.Generator) -> NDArray[np.floating]:
    """`n` points of `dtype`: half uniform over the finite range, the rest near 0,
    near the underflow limit (subnormal results) and near overflow."""
    dtype = np.dtype(dtype)
    lo, hi = (float(v) for v in finite_range(dtype))
    normal = math.log(float(np.finfo(dtype).smallest_normal))
    parts = [
        (lo, hi, n // 2),
        (-1.0, 1.0, n // 6),
        (lo, normal + 2.0, n // 6),
        (hi - 2.0, hi, n - n // 2 - 2 * (n // 6)),
    ]
    x = np.concatenate([rng.uniform(a, b, k) for a, b, k in parts]).astype(dtype)
    return np.clip(x, lo, hi)


def _extended_long_double() -> bool:
    return np.finfo(np.longdouble).nmant >= 63


def reference(x: NDArray[np.floating]) -> NDArray[Any]:
    """exp(x) more precisely than x's dtype holds: float64 or long double."""
    if x.dtype == np.float32:
        return np.exp(x.astype(np.float64))
    if _extended_long_double():
        return np.exp(x.astype(np.longdouble))
    import mpmath  # slow: the caller keeps the sample small on such platforms

    with mpmath.workprec(120):
        return np.array([mpmath.exp(mpmath.mpf(float(v))) for v in x], dtype=object)


def ulp_errors(got: NDArray[np.floating], x: NDArray[np.floating]) -> NDArray[np.float64]:
    """|got - exp(x)| in ulps of the exact result in got's dtype (subnormal ulps below)."""
    ref = reference(x)
    info = np.finfo(got.dtype)
    if ref.dtype == object:  # mpmath values: exact differences, then floats
        import mpmath

        ref_f = np.array([float(v) for v in ref])
        _, e = np.frexp(ref_f)
        ulp = np.maximum(np.ldexp(1.0, e - info.nmant - 1), float(info.smallest_subnormal))
        return (
            np.array([float(abs(mpmath.mpf(float(g)) - r)) for g, r in zip(got, ref, strict=True)])
            / ulp
        )
    _, e = np.frexp(ref)  # ref = m * 2**e, 0.5 <= m < 1: ulp = 2**(e - 1 - nmant)
    ulp = np.maximum(
        np.ldexp(ref.dtype.type(1), e - info.nmant - 1), ref.dtype.type(info.smallest_subnormal)
    )
    return np.asarray(np.abs(got.astype(ref.dtype) - ref) / ulp, dtype=np.float64)


def measure(
    dtype: DTypeLike, isa: str = "auto", points: int = 10**7, seed: int = 0, chunk: int = 10**6
) -> dict[str, Any]:
    """Max ulp error of the `isa` exp for `dtype` over `points` points.

    Returns
    -------
    dict
        ``max_ulp``, the input ``at`` which it occurs, ``points`` and ``reference``.
    """
    dtype = np.dtype(dtype)
    if dtype == np.float64 and not _extended_long_double():
        points = min(points, 20_000)  # mpmath reference: keep it finite
    rng = np.random.default_rng(seed)
    worst, at = -1.0, None
    for start in range(0, points, chunk):
        x = sample(dtype, min(chunk, points - start), rng)
        err = ulp_errors(native._exp(x, isa=isa), x)
        i = int(np.argmax(err))
        if err[i] > worst:
            worst, at = float(err[i]), x[i]
    ref = (
        "float64"
        if dtype == np.float32
        else "long double"
        if _extended_long_double()
        else "mpmath"
    )
    return {"max_ulp": worst, "at": at, "points": points, "reference": ref}


def special_values(
    dtype: DTypeLike, isa: str = "auto"
) -> dict[str, tuple[np.floating, np.floating]]:
    """``{name: (got, expected)}`` for the inputs with an exact answer."""
    dtype = np.dtype(dtype)
    lo, hi = (float(v) for v in finite_range(dtype))
    cases = {
        "nan": (np.nan, np.nan),
        "+inf": (np.inf, np.inf),
        "-inf": (-np.inf, 0.0),
        "0": (0.0, 1.0),
        "beyond overflow": (hi * 1.01, np.inf),
        "huge": (1e30, np.inf),
        "beyond underflow": (lo * 1.01, 0.0),
        "-huge": (-1e30, 0.0),
    }
    got = native._exp(np.array([c[0] for c in cases.values()], dtype), isa=isa)
    scalar: Any = dtype.type
    return {name: (g, scalar(c[1])) for name, g, c in zip(cases, got, cases.values(), strict=True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=10**7, help="points per dtype and ISA")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"{'isa':7} {'dtype':8} {'points':>10} {'max ulp':>8} {'goal':>5}  at x =  (reference)")
    ok = True
    for isa in native.available_isas():
        for dtype in GOALS:
            r = measure(dtype, isa, args.points, args.seed)
            specials = special_values(dtype, isa)
            bad = [
                k
                for k, (g, e) in specials.items()
                if not (g == e or (np.isnan(g) and np.isnan(e)))
            ]
            ok &= r["max_ulp"] <= GOALS[dtype] and not bad
            print(
                f"{isa:7} {dtype.name:8} {r['points']:>10} {r['max_ulp']:8.3f} {GOALS[dtype]:5}"
                f"  {float(r['at'])!r} ({r['reference']})" + (f"  WRONG: {bad}" if bad else "")
            )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
