"""Print the lower NumPy SIMD dispatch levels this CPU has, one per line.

NumPy compiles its loops (exp, log, sums, ...) for several dispatch groups and picks
the highest the CPU supports, so two machines can round differently. Setting
``NPY_DISABLE_CPU_FEATURES`` to the groups above a level makes NumPy compute as on
a CPU that stops at that level. Each line is the environment for one level below
this machine's own, highest first, as ``NAME=value`` words for ``env``; the last
line is the baseline (every group off), which also forces the portable C kernels
(``SOFTMAX_LIB_ISA=scalar``), the arithmetic of a machine with no SIMD at all.
"""

from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

present = [group for group in __cpu_dispatch__ if __cpu_features__.get(group)]
# Levels below the top one present: keep groups[:k], disable the rest. The
# baseline (k = 0) is printed even on a CPU with no group above it, so every
# machine runs the suite with NumPy's dispatch off at least once.
for keep in range(max(len(present) - 1, 0), -1, -1):
    disabled = [group for group in __cpu_dispatch__ if group not in present[:keep]]
    level = present[keep - 1] if keep else "baseline"
    words = [f"NPY_DISABLE_CPU_FEATURES={','.join(disabled)}"]
    if not keep:
        words.append("SOFTMAX_LIB_ISA=scalar")
    print(level, *words)
