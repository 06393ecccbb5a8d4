/*
 * test_kernels.c -- the C library tested without Python: `make test-c`.
 *
 * Built from the C sources in native/ directly (natively, and cross-compiled for aarch64 and
 * run under qemu). For every ISA this build has and this CPU runs, each entry
 * point is compared with a long-double reference on row lengths 1-70, 127-129,
 * 1000 and 4099, contiguous, strided (negative stride, 3 threads, the gaps
 * checked untouched) and in place; on special values (+-inf, NaN, all -inf
 * rows, ties at the maximum, huge gaps with subnormal results); and each ISA's
 * exp is swept for its max ulp error against the goals of
 * softmax_lib/exp_accuracy.py (GOALS: 1.5 ulp float32, 2 ulp float64). The
 * entry points along a middle axis (sm_*_inner_*) are checked column by column
 * against the same references (random and special columns, the top class of
 * log-softmax and of its VJP), bit for bit across thread counts, and each ISA's
 * block kernels (kernels.h) bit for bit across block widths, writing nothing
 * past a block and reading nothing past it before a guard page.
 * Finally each SIMD ISA must differ bitwise from the scalar kernels somewhere
 * on random input: proof that a different code path really ran.
 *
 * Every tolerance is an error bound derived below (see bound_*), from
 * u (the unit roundoff of the type), G (the exp goal) and the inputs: never
 * from what some machine printed. Exit status: 0 if all checks pass.
 * Usage: test_kernels [f32_sweep_step [f64_sweep_points]].
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "softmax.h"

typedef long double LD;

static const char *const ISA_NAMES[] = {"auto", "scalar", "avx2", "neon"};
#define MAX_ISA 3

static long checks, failures;

/* Per ISA, op and type: the largest |err| / bound, and |err| / |ref| where ref is
 * normal (the VJPs' cancellation makes that large; the bound accounts for it). */
static LD worst_ratio[MAX_ISA + 1][4][2], worst_rel[MAX_ISA + 1][4][2];

#define FAIL(...)                                \
    do {                                         \
        if (failures++ < 25)                     \
            fprintf(stderr, "FAIL: " __VA_ARGS__); \
    } while (0)

/* ------------------------------------------------------------ random input */

static uint64_t rng = 0x9E3779B97F4A7C15u;

static double uniform(double a, double b)
{
    rng ^= rng << 13;  /* xorshift64 */
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return a + (b - a) * (double)(rng >> 11) * 0x1p-53;
}

/* ------------------------------------------------------------------ types */

typedef struct {
    int f32;
    const char *name;
    LD u;     /* unit roundoff: 2^-24, 2^-53 */
    LD G;     /* exp goal in ulps (exp_accuracy.GOALS); 1 ulp <= 2u relative */
    LD tiny;  /* the smallest subnormal: the absolute error floor of results there */
} dtype;

static const dtype F32 = {1, "float32", 0x1p-24L, 1.5L, 0x1p-149L};
static const dtype F64 = {0, "float64", 0x1p-53L, 2.0L, 0x1p-1074L};

static double round_to(const dtype *t, double v) { return t->f32 ? (double)(float)v : v; }

/* Relative rounding error of a sum of n terms of one sign, in units of u.
 * float32: the SIMD kernels add at most 8 vectors per float lane and 4 lanes
 * (9 float roundings; kernels_avx2.c, flush_ps), then go on in double, and the
 * scalar kernels sum in double: the double part is at most (n + 8) 2^-53.
 * float64: a double sum in any order, (n - 1) u to first order, + 8 for the
 * combining of accumulators. A dot product by FMA or in double rounds each
 * product once more: the caller adds 1. */
static LD sum_rounds(const dtype *t, size_t n)
{
    return t->f32 ? 9.0L + (LD)(n + 8) * 0x1p-53L / t->u : (LD)(n + 8);
}

/* ----------------------------------------------------- running the kernels */

enum { SOFTMAX, LOG_SOFTMAX, SOFTMAX_VJP, LOG_SOFTMAX_VJP };
static const char *const OP_NAMES[] = {"softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp"};
enum { CONTIG, STRIDED, INPLACE };
static const char *const LAYOUT_NAMES[] = {"contiguous", "strided", "in place"};
#define GAP 3
#define SENTINEL 12345.0

/* Runs `op` on rows x n inputs a (and b, the VJPs' dy), given row-major in
 * double (exactly representable in t), in `layout`; the result in res.
 * Returns 0, or -1 after a failure was reported. */
static int run(int op, const dtype *t, int isa, const double *a, const double *b, double *res,
               size_t rows, size_t n, int layout)
{
    const size_t es = t->f32 ? sizeof(float) : sizeof(double);
    const size_t s = layout == STRIDED ? n + GAP : n;  /* elements between row starts */
    const size_t total = rows * s;
    char *bufs[3];
    for (int k = 0; k < 3; ++k) {
        bufs[k] = malloc(total * es + 1);
        for (size_t i = 0; i < total; ++i) {
            if (t->f32)
                ((float *)(void *)bufs[k])[i] = (float)SENTINEL;
            else
                ((double *)(void *)bufs[k])[i] = SENTINEL;
        }
    }
    /* strided: rows at decreasing addresses (negative stride), GAP elements apart */
    const ptrdiff_t stride = layout == STRIDED ? -(ptrdiff_t)s : (ptrdiff_t)s;
    const size_t first = layout == STRIDED ? (rows - 1) * s : 0;
#define AT(k, r, i) ((first + (size_t)((ptrdiff_t)(r) * stride)) + (i))
    for (size_t r = 0; r < rows; ++r)
        for (size_t i = 0; i < n; ++i) {
            const double va = a[r * n + i], vb = b ? b[r * n + i] : 0.0;
            if (t->f32) {
                ((float *)(void *)bufs[0])[AT(0, r, i)] = (float)va;
                ((float *)(void *)bufs[1])[AT(1, r, i)] = (float)vb;
            } else {
                ((double *)(void *)bufs[0])[AT(0, r, i)] = va;
                ((double *)(void *)bufs[1])[AT(1, r, i)] = vb;
            }
        }
    /* in place: out is x; for the VJPs, y (softmax) or dy (log-softmax) */
    const int out_k = layout != INPLACE ? 2 : op == LOG_SOFTMAX_VJP ? 1 : 0;
    const int threads = layout == STRIDED ? 3 : 1;
    void *pa = bufs[0] + first * es, *pb = bufs[1] + first * es, *po = bufs[out_k] + first * es;
    int32_t rc;
    if (t->f32) {
        float *A = pa, *B = pb, *O = po;
        rc = op == SOFTMAX       ? sm_softmax_f32_mt(A, stride, O, stride, rows, n, isa, threads)
             : op == LOG_SOFTMAX ? sm_log_softmax_f32_mt(A, stride, O, stride, rows, n, isa, threads)
             : op == SOFTMAX_VJP ? sm_softmax_vjp_f32_mt(A, stride, B, stride, O, stride, rows, n, isa, threads)
                                 : sm_log_softmax_vjp_f32_mt(A, stride, B, stride, O, stride, rows, n, isa, threads);
    } else {
        double *A = pa, *B = pb, *O = po;
        rc = op == SOFTMAX       ? sm_softmax_f64_mt(A, stride, O, stride, rows, n, isa, threads)
             : op == LOG_SOFTMAX ? sm_log_softmax_f64_mt(A, stride, O, stride, rows, n, isa, threads)
             : op == SOFTMAX_VJP ? sm_softmax_vjp_f64_mt(A, stride, B, stride, O, stride, rows, n, isa, threads)
                                 : sm_log_softmax_vjp_f64_mt(A, stride, B, stride, O, stride, rows, n, isa, threads);
    }
    int status = 0;
    ++checks;
    if (rc != isa) {
        FAIL("%s %s %s n=%zu %s: returned %d, not the ISA asked for\n", ISA_NAMES[isa], OP_NAMES[op],
             t->name, n, LAYOUT_NAMES[layout], (int)rc);
        status = -1;
    }
    for (size_t i = 0; i < total && status == 0; ++i) {  /* nothing written between rows */
        if ((i % s) < n)
            continue;
        const double v = t->f32 ? ((float *)(void *)bufs[out_k])[i] : ((double *)(void *)bufs[out_k])[i];
        if (v != SENTINEL) {
            FAIL("%s %s %s n=%zu: wrote between the rows\n", ISA_NAMES[isa], OP_NAMES[op], t->name, n);
            status = -1;
        }
    }
    for (size_t r = 0; r < rows; ++r)
        for (size_t i = 0; i < n; ++i)
            res[r * n + i] = t->f32 ? ((float *)(void *)bufs[out_k])[AT(out_k, r, i)]
                                    : ((double *)(void *)bufs[out_k])[AT(out_k, r, i)];
#undef AT
    for (int k = 0; k < 3; ++k)
        free(bufs[k]);
    return status;
}

/* --------------------------------------------- references and their bounds */

/* The row maximum ignoring NaN, as the kernels take it. */
static LD row_max(const double *x, size_t n)
{
    LD m = -INFINITY;
    for (size_t i = 0; i < n; ++i)
        m = x[i] > m ? x[i] : m;
    return m;
}

/*
 * softmax: s_i = e_i / sum e_j, e_j = exp(x_j - m). The kernel's relative error:
 *   u |d_i|          rounding x_i - m, which exp turns into a relative error
 *   2G u             its exp (G ulps, 1 ulp <= 2u relative)
 *   u W + 2G u       the sum's terms: the s-weighted mean of the two above,
 *                    W = sum s_j |d_j|
 *   R u              the sum's own roundings (sum_rounds)
 *   2^-53 + 2u       1/sum in double, its conversion to float (float32 SIMD),
 *                    and the product's rounding
 *   + 2u             second-order terms (products of the above, all < 1e-3)
 * and where e_i is subnormal, an absolute (G + 1) tiny (exp's G subnormal
 * ulps, the product's half).
 */
static void ref_softmax(const dtype *t, const double *x, size_t n, LD *ref, LD *bound)
{
    const LD m = row_max(x, n);
    LD sum = 0, w = 0;
    for (size_t i = 0; i < n; ++i)
        sum += expl((LD)x[i] - m);
    for (size_t i = 0; i < n; ++i) {
        const LD e = expl((LD)x[i] - m);
        if (e > 0)
            w += e / sum * fabsl((LD)x[i] - m);
    }
    const LD u = t->u, R = sum_rounds(t, n);
    for (size_t i = 0; i < n; ++i) {
        const LD d = (LD)x[i] - m;
        ref[i] = expl(d) / sum;
        const LD rel = u * ((ref[i] > 0 ? fabsl(d) : 0) + 2 * t->G + w + 2 * t->G + R + 4) + 0x1p-53L;
        bound[i] = ref[i] * rel + (t->G + 1) * t->tiny;
    }
}

/*
 * log-softmax: d_i - L, L = log1p(rest), rest = sum of e_j over all but one
 * maximum. The kernel's absolute error:
 *   u |d_i|                    rounding x_i - m
 *   (u V + (2G + R) u E + 2^-53 rest) / (1 + rest)
 *                              L's error from rest's error (the terms' as in
 *                              softmax, V = sum_rest e_j |d_j|, E = sum_rest e_j;
 *                              the sum's roundings; adding the count of ties),
 *                              through log1p's derivative 1 / (1 + rest)
 *   (u + 2^-52) L              log1p in double (1 ulp), L to the type
 *   u |d_i - L|                the final subtraction
 *   all times (1 + 16u): second-order terms.
 */
static void ref_log_softmax(const dtype *t, const double *x, size_t n, LD *ref, LD *bound)
{
    const LD m = row_max(x, n);
    LD E = 0, v = 0, tops = 0;
    for (size_t i = 0; i < n; ++i) {
        const LD d = (LD)x[i] - m;
        if (d == 0) {
            tops += 1;
        } else {
            const LD e = expl(d);
            E += e;
            if (e > 0)
                v += e * fabsl(d);
        }
    }
    const LD rest = E + (tops - 1);
    const LD L = log1pl(rest), u = t->u, R = sum_rounds(t, n);
    for (size_t i = 0; i < n; ++i) {
        const LD d = (LD)x[i] - m;
        ref[i] = d - L;
        bound[i] = (u * fabsl(d) + (u * v + (2 * t->G + R) * u * E + 0x1p-53L * rest) / (1 + rest) +
                    (u + 0x1p-52L) * L + u * fabsl(ref[i])) * (1 + 16 * u);
    }
}

/*
 * softmax VJP: y_i (dy_i - D), D = sum y_j dy_j. Absolute error:
 *   |y_i| ((R + 1) u A + u |D|)   D's roundings (A = sum |y_j dy_j|) and its
 *                                 conversion to the type
 *   |y_i| u |dy_i - D|            the subtraction
 *   u |out_i|                     the product
 *   all times (1 + 16u), + tiny: second-order terms, subnormal products.
 */
static void ref_softmax_vjp(const dtype *t, const double *y, const double *dy, size_t n, LD *ref, LD *bound)
{
    LD D = 0, A = 0;
    for (size_t i = 0; i < n; ++i) {
        D += (LD)y[i] * dy[i];
        A += fabsl((LD)y[i] * dy[i]);
    }
    const LD u = t->u, R = sum_rounds(t, n);
    for (size_t i = 0; i < n; ++i) {
        ref[i] = y[i] * ((LD)dy[i] - D);
        bound[i] = (fabsl((LD)y[i]) * ((R + 1) * u * A + u * fabsl(D) + u * fabsl((LD)dy[i] - D)) +
                    u * fabsl(ref[i])) * (1 + 16 * u) + t->tiny;
    }
}

/*
 * log-softmax VJP: dy_i - e_i T, e_i = exp(y_i), T = sum dy_j; where
 * y_i > -ln 2, (dy_i - T) - expm1(y_i) T. Absolute error, for either form:
 *   (1 + e_i) dT          T's error, dT = R u S + u |T| (S = sum |dy_j|; its
 *                         conversion to the type), times e_i or 1 + |expm1|
 *   u (|dy_i| + |T|)      the subtraction dy_i - T (top form)
 *   (2G + 3) u (e_i + 1) |T|   exp (2G u) or expm1 (its Taylor series: the
 *                         truncation < u/6, Horner's roundings < 2G u), and the
 *                         rounding of the product
 *   u |out_i|             the final rounding
 *   all times (1 + 16u), + (G + 1) tiny: second order, subnormal e_i.
 */
static void ref_log_softmax_vjp(const dtype *t, const double *y, const double *dy, size_t n, LD *ref,
                                LD *bound)
{
    LD T = 0, S = 0;
    for (size_t i = 0; i < n; ++i) {
        T += dy[i];
        S += fabsl((LD)dy[i]);
    }
    const LD u = t->u, dT = sum_rounds(t, n) * u * S + u * fabsl(T);
    for (size_t i = 0; i < n; ++i) {
        const LD e = expl((LD)y[i]);
        ref[i] = (LD)dy[i] - e * T;
        bound[i] = ((1 + e) * dT + u * (fabsl((LD)dy[i]) + fabsl(T)) + (2 * t->G + 3) * u * (e + 1) * fabsl(T) +
                    u * fabsl(ref[i])) * (1 + 16 * u) + (t->G + 1) * t->tiny;
    }
}

/* got against ref within bound, elementwise; NaN must match NaN, inf must be exact. */
static void compare(int isa, int op, const dtype *t, size_t n, int layout, const char *what,
                    const double *got, const LD *ref, const LD *bound, size_t count)
{
    ++checks;
    for (size_t i = 0; i < count; ++i) {
        const LD g = got[i], r = ref[i];
        int ok;
        if (isnan(r))
            ok = isnan(g);
        else if (isinf(r))
            ok = g == r;
        else
            ok = isfinite(g) && fabsl(g - r) <= bound[i];
        if (isfinite(r) && isfinite(g)) {
            LD *wr = &worst_ratio[isa][op][t->f32], *wl = &worst_rel[isa][op][t->f32];
            if (fabsl(g - r) / bound[i] > *wr)
                *wr = fabsl(g - r) / bound[i];
            if (fabsl(r) >= (t->f32 ? (LD)FLT_MIN : (LD)DBL_MIN) && fabsl(g - r) / fabsl(r) > *wl)
                *wl = fabsl(g - r) / fabsl(r);
        }
        if (!ok) {
            FAIL("%s %s %s n=%zu %s (%s) [%zu]: got %.10Lg, want %.10Lg, |err| %.3Lg > bound %.3Lg\n",
                 ISA_NAMES[isa], OP_NAMES[op], t->name, n, LAYOUT_NAMES[layout], what, i, g, r,
                 fabsl(g - r), bound[i]);
            return;
        }
    }
}

/* One op on `rows` rows of inputs a (and b), every layout, against the reference. */
static void check_rows(int isa, int op, const dtype *t, const double *a, const double *b, size_t rows,
                       size_t n, const char *what)
{
    double *got = malloc(rows * n * sizeof *got);
    LD *ref = malloc(rows * n * sizeof *ref), *bound = malloc(rows * n * sizeof *bound);
    for (size_t r = 0; r < rows; ++r) {
        const double *ar = a + r * n, *br = b ? b + r * n : NULL;
        LD *rr = ref + r * n, *bb = bound + r * n;
        switch (op) {
        case SOFTMAX: ref_softmax(t, ar, n, rr, bb); break;
        case LOG_SOFTMAX: ref_log_softmax(t, ar, n, rr, bb); break;
        case SOFTMAX_VJP: ref_softmax_vjp(t, ar, br, n, rr, bb); break;
        default: ref_log_softmax_vjp(t, ar, br, n, rr, bb);
        }
    }
    for (int layout = CONTIG; layout <= INPLACE; ++layout)
        if (run(op, t, isa, a, b, got, rows, n, layout) == 0)
            compare(isa, op, t, n, layout, what, got, ref, bound, rows * n);
    free(got);
    free(ref);
    free(bound);
}

/* Rows of random logits in [-scale, scale]; for the VJPs, y is the (rounded)
 * reference softmax / log-softmax of such rows and dy is random in [-1, 1]. */
static void random_rows(int op, const dtype *t, double *a, double *b, size_t rows, size_t n, double scale)
{
    LD *tmp = malloc(n * sizeof *tmp), *unused = malloc(n * sizeof *unused);
    for (size_t r = 0; r < rows; ++r) {
        double *x = a + r * n;
        for (size_t i = 0; i < n; ++i)
            x[i] = round_to(t, uniform(-scale, scale));
        if (op == SOFTMAX_VJP || op == LOG_SOFTMAX_VJP) {
            if (op == SOFTMAX_VJP)
                ref_softmax(t, x, n, tmp, unused);
            else
                ref_log_softmax(t, x, n, tmp, unused);
            for (size_t i = 0; i < n; ++i) {
                x[i] = round_to(t, (double)tmp[i]);
                b[r * n + i] = round_to(t, uniform(-1, 1));
            }
        }
    }
    free(tmp);
    free(unused);
}

static void test_random(int isa, const dtype *t)
{
    static const size_t extra[] = {127, 128, 129, 1000, 4099};
    static const double scales[] = {1, 10, 40, 300};
    for (size_t k = 0; k < 70 + sizeof extra / sizeof *extra; ++k) {
        const size_t n = k < 70 ? k + 1 : extra[k - 70];
        const size_t rows = 3;
        double *a = malloc(rows * n * sizeof *a), *b = malloc(rows * n * sizeof *b);
        for (int op = SOFTMAX; op <= LOG_SOFTMAX_VJP; ++op) {
            const double scale = scales[(k + (size_t)op) % (t->f32 ? 3 : 4)];
            random_rows(op, t, a, b, rows, n, scale);
            check_rows(isa, op, t, a, op >= SOFTMAX_VJP ? b : NULL, rows, n, "random");
        }
        free(a);
        free(b);
    }
}

/* Special runs of 6 values (rows here, columns along an inner axis below). */
#define SPECIALS 8
static void special_values(const dtype *t, double vals[SPECIALS][6])
{
    const double big_gap = t->f32 ? 103.0 : 744.0;   /* exp(-gap): a subnormal result */
    const double huge = t->f32 ? 1e30 : 1e300;
    const double v[SPECIALS][6] = {
        {INFINITY, 1, 2, 3, 4, 5},                      /* +inf: a NaN row, as in scalar */
        {NAN, 1, 2, 3, 4, 5},                           /* NaN: a NaN row */
        {-INFINITY, 1, -INFINITY, 3, 4, 5},             /* -inf: 0 / -inf there */
        {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY},  /* all -inf */
        {7, 7, 7, 1, 7, -2},                            /* ties at the maximum */
        {0, -big_gap, -big_gap + 1.5, -big_gap - 1, -2 * big_gap, -30},  /* subnormal results */
        {0, -40, -45, -50, -36, -60},                   /* a tiny rest: log1p matters */
        {huge, huge, -huge, huge, 0, -huge},            /* huge values */
    };
    memcpy(vals, v, sizeof v);
}

/* Special rows, each placed at the start, middle and end of rows of several
 * lengths (so that they meet every lane and tail position). */
static void test_specials(int isa, const dtype *t)
{
    double vals[SPECIALS][6];
    special_values(t, vals);
    static const size_t lengths[] = {6, 7, 9, 19, 37, 70};
    for (size_t v = 0; v < SPECIALS; ++v)
        for (size_t li = 0; li < sizeof lengths / sizeof *lengths; ++li) {
            const size_t n = lengths[li], rows = 3;
            double *a = malloc(rows * n * sizeof *a), *b = malloc(rows * n * sizeof *b);
            const int all = isinf(vals[v][1]) && isinf(vals[v][5]);
            for (size_t r = 0; r < rows; ++r) {
                const size_t at = r == 0 ? 0 : r == 1 ? (n - 6) / 2 : n - 6;
                for (size_t i = 0; i < n; ++i)  /* filler well below the row's values */
                    a[r * n + i] = all ? -INFINITY : round_to(t, -60 - uniform(0, 5));
                for (size_t i = 0; i < 6; ++i)
                    a[r * n + at + i] = round_to(t, vals[v][i]);
            }
            check_rows(isa, SOFTMAX, t, a, NULL, rows, n, "special");
            check_rows(isa, LOG_SOFTMAX, t, a, NULL, rows, n, "special");
            /* the VJPs: y = those log-softmax rows (-inf, subnormal exp(y)), dy random */
            LD *ref = malloc(n * sizeof *ref), *bnd = malloc(n * sizeof *bnd);
            for (size_t r = 0; r < rows; ++r) {
                ref_log_softmax(t, a + r * n, n, ref, bnd);
                for (size_t i = 0; i < n; ++i) {
                    a[r * n + i] = round_to(t, (double)ref[i]);
                    b[r * n + i] = round_to(t, uniform(-1, 1));
                }
            }
            check_rows(isa, LOG_SOFTMAX_VJP, t, a, b, rows, n, "special y");
            for (size_t i = 0; i < rows * n; ++i)
                a[i] = round_to(t, exp(a[i]));  /* softmax rows with zeros and subnormals */
            check_rows(isa, SOFTMAX_VJP, t, a, b, rows, n, "special y");
            free(ref);
            free(bnd);
            free(a);
            free(b);
        }
}

/* ------------------------------------------------------------- exp's ulps */

/* |got - ref| in ulps of ref in t (ulps of the subnormals below the normals). */
static LD ulps(const dtype *t, LD got, LD ref)
{
    const LD min_normal = t->f32 ? (LD)FLT_MIN : (LD)DBL_MIN;
    LD ulp = t->tiny;
    if (fabsl(ref) >= min_normal) {
        int e;
        frexpl(ref, &e);  /* ref = f 2^e, 1/2 <= f < 1 */
        ulp = ldexpl(1.0L, e - (t->f32 ? 24 : 53));
    }
    return fabsl(got - ref) / ulp;
}

typedef struct {
    LD worst;
    double at;
    long points;
} sweep;

#define BATCH 4096

static void exp_batch(int isa, const dtype *t, const double *x, size_t n, sweep *s)
{
    float xf[BATCH], of[BATCH];
    double od[BATCH];
    int32_t rc;
    if (t->f32) {
        for (size_t i = 0; i < n; ++i)
            xf[i] = (float)x[i];
        rc = sm_exp_f32(xf, of, n, isa);
    } else {
        rc = sm_exp_f64(x, od, n, isa);
    }
    if (rc != isa)
        FAIL("%s exp %s: returned %d\n", ISA_NAMES[isa], t->name, (int)rc);
    for (size_t i = 0; i < n; ++i) {
        /* float32: double exp is within 1 double ulp, 2^-29 float ulps; float64:
         * long double (64- or 113-bit significand), within 2^-10 ulps or better */
        const LD ref = t->f32 ? (LD)exp(x[i]) : expl((LD)x[i]);
        const LD e = ulps(t, t->f32 ? (LD)of[i] : (LD)od[i], ref);
        if (!(e <= s->worst)) {  /* NaN counts as worst */
            s->worst = isnan(e) ? INFINITY : e;
            s->at = x[i];
        }
    }
    s->points += (long)n;
}

/* The inputs whose exp is finite and not 0 when rounded, as exp_accuracy.finite_range. */
static void finite_range(const dtype *t, double *lo, double *hi)
{
    *lo = t->f32 ? (double)nextafterf((float)(log(0x1p-149) - log(2.0)), 0.0f)
                 : nextafter(log(0x1p-1074) - log(2.0), 0.0);
    *hi = t->f32 ? (double)nextafterf((float)log(FLT_MAX), 0.0f) : nextafter(log(DBL_MAX), 0.0);
}

/* float32: every `step`-th float (by bit pattern) of the finite range, both
 * signs, dense near 0 as the floats are; float64: `points` uniform over the
 * range, plus points / 4 in [-1, 1] and near each end. */
static void test_exp(int isa, const dtype *t, uint32_t step, long points)
{
    sweep s = {0, 0, 0};
    double x[BATCH];
    size_t k = 0;
    double lo, hi;
    finite_range(t, &lo, &hi);
#define PUSH(v)                                  \
    do {                                         \
        x[k++] = (v);                            \
        if (k == BATCH) {                        \
            exp_batch(isa, t, x, k, &s);         \
            k = 0;                               \
        }                                        \
    } while (0)
    if (t->f32) {
        for (uint32_t bits = 0; bits < 0x7f800000u; bits += step) {
            float f;
            memcpy(&f, &bits, sizeof f);
            if (f <= hi)
                PUSH((double)f);
            if (-f >= lo)
                PUSH((double)-f);
            if (f > -lo)
                break;
        }
    } else {
        for (long i = 0; i < points; ++i)
            PUSH(uniform(lo, hi));
        for (long i = 0; i < points / 4; ++i) {
            PUSH(uniform(-1, 1));
            PUSH(uniform(lo, log(DBL_MIN) + 2));  /* subnormal results */
            PUSH(uniform(hi - 2, hi));
        }
    }
    if (k)
        exp_batch(isa, t, x, k, &s);
#undef PUSH
    printf("  exp %s %-7s max %.4Lf ulp at x = %.17g over %ld points (goal %.1Lf)\n", t->name,
           ISA_NAMES[isa], s.worst, s.at, s.points, t->G);
    ++checks;
    if (!(s.worst <= t->G))
        FAIL("%s exp %s: %.4Lf ulp at x = %.17g exceeds the goal %.1Lf\n", ISA_NAMES[isa], t->name,
             s.worst, s.at, t->G);

    /* special values: NaN, +-inf, beyond the range, exp(0) = 1 */
    const double sx[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e10, -1e10, hi * 1.01, lo * 1.01};
    const double want[] = {NAN, INFINITY, 0.0, 1.0, 1.0, INFINITY, 0.0, INFINITY, 0.0};
    const size_t ns = sizeof sx / sizeof *sx;
    float sf[16], of[16];
    double od[16];
    for (size_t i = 0; i < ns; ++i)
        sf[i] = (float)sx[i];
    if (t->f32)
        sm_exp_f32(sf, of, ns, isa);
    else
        sm_exp_f64(sx, od, ns, isa);
    ++checks;
    for (size_t i = 0; i < ns; ++i) {
        const double g = t->f32 ? (double)of[i] : od[i];
        if (!(isnan(want[i]) ? isnan(g) : g == want[i]))
            FAIL("%s exp %s(%g) = %g, want %g\n", ISA_NAMES[isa], t->name, sx[i], g, want[i]);
    }
}

/* ------------------------------------------------- the middle-axis kernels */

/* The sm_*_inner_* functions along the middle axis of (outer, n, inner) arrays,
 * all four ops, float32 and float64, contiguous and in place (out = x; for the
 * VJPs out = y or dy), on 1 and 3 threads, each column against the same
 * references and bounds as a row (the kernels sum a column as the row kernels
 * sum a row: float blocks of at most 8 rows flushed to double). Every ISA has
 * them: scalar, AVX2 and NEON. */
static int32_t run_inner(int op, const dtype *t, int isa, void *a, void *b, void *out, size_t outer,
                         size_t n, size_t inner, int threads)
{
    if (t->f32) {
        float *A = a, *B = b, *O = out;
        return op == SOFTMAX       ? sm_softmax_inner_f32_mt(A, O, outer, n, inner, isa, threads)
               : op == LOG_SOFTMAX ? sm_log_softmax_inner_f32_mt(A, O, outer, n, inner, isa, threads)
               : op == SOFTMAX_VJP ? sm_softmax_vjp_inner_f32_mt(A, B, O, outer, n, inner, isa, threads)
                                   : sm_log_softmax_vjp_inner_f32_mt(A, B, O, outer, n, inner, isa, threads);
    }
    double *A = a, *B = b, *O = out;
    return op == SOFTMAX       ? sm_softmax_inner_f64_mt(A, O, outer, n, inner, isa, threads)
           : op == LOG_SOFTMAX ? sm_log_softmax_inner_f64_mt(A, O, outer, n, inner, isa, threads)
           : op == SOFTMAX_VJP ? sm_softmax_vjp_inner_f64_mt(A, B, O, outer, n, inner, isa, threads)
                               : sm_log_softmax_vjp_inner_f64_mt(A, B, O, outer, n, inner, isa, threads);
}

static double get(const dtype *t, const void *p, size_t i)
{
    return t->f32 ? ((const float *)p)[i] : ((const double *)p)[i];
}

static void set(const dtype *t, void *p, size_t i, double v)
{
    if (t->f32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

/* Every column of a run of the inner-axis entry point against its reference,
 * contiguous and in place, on 1 and 3 threads, for inputs the caller built:
 * va, vb as doubles, (outer, n, inner) C-contiguous. */
static void check_columns(int isa, int op, const dtype *t, const double *va, const double *vb, size_t outer,
                          size_t n, size_t inner, const char *what)
{
    const size_t total = outer * n * inner, es = t->f32 ? sizeof(float) : sizeof(double);
    double *ca = malloc(n * sizeof *ca), *cb = malloc(n * sizeof *cb), *got = malloc(n * sizeof *got);
    LD *ref = malloc(n * sizeof *ref), *bound = malloc(n * sizeof *bound);
    void *bufs[3];
    for (int k = 0; k < 3; ++k)
        bufs[k] = malloc(total * es);
    char label[96];
    snprintf(label, sizeof label, "%s, 3 threads", what);
    for (int layout = CONTIG; layout <= INPLACE; layout += INPLACE - CONTIG)
        for (int threads = 1; threads <= 3; threads += 2) {
            for (size_t i = 0; i < total; ++i) {
                set(t, bufs[0], i, va[i]);
                set(t, bufs[1], i, vb[i]);
                set(t, bufs[2], i, SENTINEL);
            }
            const int out_k = layout != INPLACE ? 2 : op == LOG_SOFTMAX_VJP ? 1 : 0;
            const int32_t rc = run_inner(op, t, isa, bufs[0], bufs[1], bufs[out_k], outer, n, inner, threads);
            ++checks;
            if (rc != isa)
                FAIL("%s %s_inner %s (%s): returned %d, want %d\n", ISA_NAMES[isa], OP_NAMES[op], t->name,
                     what, (int)rc, isa);
            for (size_t o = 0; rc == isa && o < outer; ++o)
                for (size_t j = 0; j < inner; ++j) {
                    for (size_t i = 0; i < n; ++i) {
                        const size_t at = (o * n + i) * inner + j;
                        ca[i] = va[at];
                        cb[i] = vb[at];
                        got[i] = get(t, bufs[out_k], at);
                    }
                    switch (op) {
                    case SOFTMAX: ref_softmax(t, ca, n, ref, bound); break;
                    case LOG_SOFTMAX: ref_log_softmax(t, ca, n, ref, bound); break;
                    case SOFTMAX_VJP: ref_softmax_vjp(t, ca, cb, n, ref, bound); break;
                    default: ref_log_softmax_vjp(t, ca, cb, n, ref, bound);
                    }
                    compare(isa, op, t, n, layout, threads > 1 ? label : what, got, ref, bound, n);
                }
        }
    for (int k = 0; k < 3; ++k)
        free(bufs[k]);
    free(ca);
    free(cb);
    free(got);
    free(ref);
    free(bound);
}

static void test_inner(int isa, const dtype *t)
{
    static const size_t ns[] = {1, 2, 3, 7, 8, 9, 70, 129}, inners[] = {1, 3, 8, 13, 40, 1029};
    const size_t outer = 2;
    for (size_t a = 0; a < sizeof ns / sizeof *ns; ++a)
        for (size_t b = 0; b < sizeof inners / sizeof *inners; ++b) {
            const size_t n = ns[a], inner = inners[b], total = outer * n * inner;
            double *va = malloc(total * sizeof *va), *vb = malloc(total * sizeof *vb);
            double *ca = malloc(n * sizeof *ca), *cb = malloc(n * sizeof *cb);
            const double scale = (a + b) % 3 == 0 ? 1 : (a + b) % 3 == 1 ? 10 : 40;
            for (int op = SOFTMAX; op <= LOG_SOFTMAX_VJP; ++op) {
                for (size_t o = 0; o < outer; ++o)  /* inputs column by column */
                    for (size_t j = 0; j < inner; ++j) {
                        random_rows(op, t, ca, cb, 1, n, scale);
                        for (size_t i = 0; i < n; ++i) {
                            va[(o * n + i) * inner + j] = ca[i];
                            vb[(o * n + i) * inner + j] = cb[i];
                        }
                    }
                check_columns(isa, op, t, va, vb, outer, n, inner, "middle axis");
            }
            free(va);
            free(vb);
            free(ca);
            free(cb);
        }
}

/* The special runs of test_specials down the columns of (2, n, 7) arrays (7
 * columns: a full vector and a tail of 3 floats, 3 full vectors and a tail of
 * 1 double), at the start, middle or end of each column: the count of maxima
 * and log1p of log-softmax's top class, NaN, infinities, subnormal results; the
 * VJPs on the log-softmax (and softmax) of those columns, whose top classes
 * take the expm1 path. */
static void test_inner_specials(int isa, const dtype *t)
{
    double vals[SPECIALS][6];
    special_values(t, vals);
    static const size_t lengths[] = {6, 7, 9, 19};
    const size_t outer = 2, inner = 7;
    for (size_t v = 0; v < SPECIALS; ++v)
        for (size_t li = 0; li < sizeof lengths / sizeof *lengths; ++li) {
            const size_t n = lengths[li], total = outer * n * inner;
            double *va = malloc(total * sizeof *va), *vb = malloc(total * sizeof *vb);
            double *col = malloc(n * sizeof *col);
            LD *ref = malloc(n * sizeof *ref), *bnd = malloc(n * sizeof *bnd);
            const int all = isinf(vals[v][1]) && isinf(vals[v][5]);
            for (size_t o = 0; o < outer; ++o)
                for (size_t j = 0; j < inner; ++j) {
                    const size_t c = o * inner + j, at = c % 3 == 0 ? 0 : c % 3 == 1 ? (n - 6) / 2 : n - 6;
                    for (size_t i = 0; i < n; ++i)  /* filler well below the column's values */
                        va[(o * n + i) * inner + j] = all ? -INFINITY : round_to(t, -60 - uniform(0, 5));
                    for (size_t i = 0; i < 6; ++i)
                        va[(o * n + at + i) * inner + j] = round_to(t, vals[v][i]);
                    for (size_t i = 0; i < n; ++i)
                        vb[(o * n + i) * inner + j] = round_to(t, uniform(-1, 1));
                }
            check_columns(isa, SOFTMAX, t, va, vb, outer, n, inner, "middle axis, special");
            check_columns(isa, LOG_SOFTMAX, t, va, vb, outer, n, inner, "middle axis, special");
            for (size_t o = 0; o < outer; ++o)  /* y = the log-softmax of each column */
                for (size_t j = 0; j < inner; ++j) {
                    for (size_t i = 0; i < n; ++i)
                        col[i] = va[(o * n + i) * inner + j];
                    ref_log_softmax(t, col, n, ref, bnd);
                    for (size_t i = 0; i < n; ++i)
                        va[(o * n + i) * inner + j] = round_to(t, (double)ref[i]);
                }
            check_columns(isa, LOG_SOFTMAX_VJP, t, va, vb, outer, n, inner, "middle axis, special y");
            for (size_t i = 0; i < total; ++i)
                va[i] = round_to(t, exp(va[i]));
            check_columns(isa, SOFTMAX_VJP, t, va, vb, outer, n, inner, "middle axis, special y");
            free(va);
            free(vb);
            free(col);
            free(ref);
            free(bnd);
        }
}

/* The top class of a column [x0, 0, 0, 0] with x0 = 12 (float32) or 30
 * (float64), in blocks of 1..9 columns (every lane, full vectors and tails):
 * y0 = -log1p(rest), rest = 3 e^-x0, from the library's own log-softmax, then
 * its VJP under dy = [-1, 0, 0, 0] (NLL): s0 - 1 = -rest / (1 + rest), which
 * 1 - exp(y0) would round to a few digits (float32: 1.8e-5 against u = 6e-8).
 * Bound, relative to the result: y0's error (exp 2G u of each term, the float
 * sum 2u, log1p and the rounding to the type 2u: 8u relative to |y0|) carried
 * by expm1' ~ 1, expm1's own (2G u, truncation below u / 6), and the final
 * rounding u: below 30 u. */
static void test_inner_top_class(int isa, const dtype *t)
{
    const double x0 = t->f32 ? 12.0 : 30.0;
    const LD rest = 3 * expl(-(LD)x0), want = -rest / (1 + rest);
    const size_t n = 4, es = t->f32 ? sizeof(float) : sizeof(double);
    for (size_t inner = 1; inner <= 9; ++inner) {
        void *x = malloc(n * inner * es), *y = malloc(n * inner * es), *dy = malloc(n * inner * es);
        void *g = malloc(n * inner * es);
        for (size_t i = 0; i < n; ++i)
            for (size_t j = 0; j < inner; ++j) {
                set(t, x, i * inner + j, i == 0 ? x0 : 0.0);
                set(t, dy, i * inner + j, i == 0 ? -1.0 : 0.0);
            }
        ++checks;
        if (run_inner(LOG_SOFTMAX, t, isa, x, NULL, y, 1, n, inner, 1) != isa ||
            run_inner(LOG_SOFTMAX_VJP, t, isa, y, dy, g, 1, n, inner, 1) != isa) {
            FAIL("%s top class %s inner=%zu: refused\n", ISA_NAMES[isa], t->name, inner);
        } else {
            for (size_t j = 0; j < inner; ++j) {
                const LD got = get(t, g, j);
                if (!(fabsl(got - want) <= 30 * t->u * fabsl(want)))
                    FAIL("%s log_softmax_vjp_inner %s top class, inner=%zu column %zu: got %.10Lg, want %.10Lg\n",
                         ISA_NAMES[isa], t->name, inner, j, got, want);
            }
        }
        free(x);
        free(y);
        free(dy);
        free(g);
    }
}

/* The public entry points on 1..8 threads: bit for bit the same result (the
 * threads narrow the blocks of columns, so this also varies the block width). */
static void test_inner_threads(int isa, const dtype *t)
{
    static const size_t shapes[][3] = {{1, 9, 13}, {1, 17, 40}, {3, 9, 100}, {2, 70, 515}};
    const size_t es = t->f32 ? sizeof(float) : sizeof(double);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; ++s) {
        const size_t outer = shapes[s][0], n = shapes[s][1], inner = shapes[s][2], total = outer * n * inner;
        double *ca = malloc(n * sizeof *ca), *cb = malloc(n * sizeof *cb);
        void *a = malloc(total * es), *b = malloc(total * es), *one = malloc(total * es), *many = malloc(total * es);
        for (int op = SOFTMAX; op <= LOG_SOFTMAX_VJP; ++op) {
            for (size_t o = 0; o < outer; ++o)
                for (size_t j = 0; j < inner; ++j) {
                    random_rows(op, t, ca, cb, 1, n, 10);
                    for (size_t i = 0; i < n; ++i) {
                        set(t, a, (o * n + i) * inner + j, ca[i]);
                        set(t, b, (o * n + i) * inner + j, cb[i]);
                    }
                }
            ++checks;
            if (run_inner(op, t, isa, a, b, one, outer, n, inner, 1) != isa) {
                FAIL("%s %s_inner %s: refused\n", ISA_NAMES[isa], OP_NAMES[op], t->name);
                continue;
            }
            for (int threads = 2; threads <= 8; ++threads) {
                ++checks;
                if (run_inner(op, t, isa, a, b, many, outer, n, inner, threads) != isa ||
                    memcmp(one, many, total * es) != 0)
                    FAIL("%s %s_inner %s (%zu, %zu, %zu): %d threads differ from 1\n", ISA_NAMES[isa],
                         OP_NAMES[op], t->name, outer, n, inner, threads);
            }
        }
        free(ca);
        free(cb);
        free(a);
        free(b);
        free(one);
        free(many);
    }
}

/* The ISA's block kernels themselves (kernels.h), for any block width. */
typedef struct {
    sm_inner_fwd_f32 fwd_f32[2];  /* softmax, log-softmax */
    sm_inner_fwd_f64 fwd_f64[2];
    sm_inner_vjp_f32 vjp_f32[2];  /* softmax VJP, log-softmax VJP */
    sm_inner_vjp_f64 vjp_f64[2];
} inner_kernels;

#define INNER_SET(prefix)                                                               \
    {{prefix##softmax_inner_f32, prefix##log_softmax_inner_f32},                      \
     {prefix##softmax_inner_f64, prefix##log_softmax_inner_f64},                      \
     {prefix##softmax_vjp_inner_f32, prefix##log_softmax_vjp_inner_f32},              \
     {prefix##softmax_vjp_inner_f64, prefix##log_softmax_vjp_inner_f64}}

static const inner_kernels *kernels_of(int isa)
{
    static const inner_kernels scalar = INNER_SET(sm_scalar_);
#if SM_HAVE_AVX2
    static const inner_kernels avx2 = INNER_SET(sm_avx2_);
    if (isa == SM_ISA_AVX2)
        return &avx2;
#endif
#if SM_HAVE_NEON
    static const inner_kernels neon = INNER_SET(sm_neon_);
    if (isa == SM_ISA_NEON)
        return &neon;
#endif
    return isa == SM_ISA_SCALAR ? &scalar : NULL;
}

/* One block of `width` columns of a (n, inner) slice at a, b -> out. */
static void block(const inner_kernels *k, int op, const dtype *t, const void *a, const void *b, void *out,
                  size_t n, size_t inner, size_t width)
{
    const int f = op == LOG_SOFTMAX || op == LOG_SOFTMAX_VJP;
    if (op <= LOG_SOFTMAX) {
        if (t->f32)
            k->fwd_f32[f](a, out, n, inner, width);
        else
            k->fwd_f64[f](a, out, n, inner, width);
    } else {
        if (t->f32)
            k->vjp_f32[f](a, b, out, n, inner, width);
        else
            k->vjp_f64[f](a, b, out, n, inner, width);
    }
}

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
/* `bytes` of memory followed by a page that faults on any access. */
static char *before_guard(size_t bytes, char **map, size_t *len)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    *len = (bytes + page - 1) / page * page + page;
    *map = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (*map == MAP_FAILED || mprotect(*map + *len - page, page, PROT_NONE) != 0) {
        FAIL("mmap / mprotect for a guard page failed\n");
        return NULL;
    }
    return *map + *len - page - bytes;
}
#define HAVE_GUARD 1
#else
#define HAVE_GUARD 0
#endif

/* A (n, inner) slice cut into blocks of 1..9 columns (every tail of a vector
 * of 4 floats or 2 doubles, and each after full vectors) and of 13, 31 and 64:
 * bit for bit the one-block result (a column does not depend on its block,
 * kernels.h), contiguous and in place; each block writes nothing beyond its
 * `width` columns (the rest keep their sentinel until their block runs). Then
 * a block whose last row ends at a guard page: any read or write past `width`
 * columns of the last row faults. n = 1, 8, 9, 17: around the float32 flushes
 * every 8 rows. */
static void test_inner_blocks(int isa, const dtype *t)
{
    const inner_kernels *k = kernels_of(isa);
    static const size_t ns[] = {1, 8, 9, 17}, cuts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 31, 64};
    const size_t inner = 75, es = t->f32 ? sizeof(float) : sizeof(double);
    for (size_t a = 0; a < sizeof ns / sizeof *ns; ++a) {
        const size_t n = ns[a], total = n * inner;
        double *ca = malloc(n * sizeof *ca), *cb = malloc(n * sizeof *cb);
        void *x = malloc(total * es), *y = malloc(total * es), *whole = malloc(total * es);
        void *out = malloc(total * es), *in_a = malloc(total * es), *in_b = malloc(total * es);
        for (int op = SOFTMAX; op <= LOG_SOFTMAX_VJP; ++op) {
            for (size_t j = 0; j < inner; ++j) {
                random_rows(op, t, ca, cb, 1, n, 10);
                for (size_t i = 0; i < n; ++i) {
                    set(t, x, i * inner + j, ca[i]);
                    set(t, y, i * inner + j, cb[i]);
                }
            }
            block(k, op, t, x, y, whole, n, inner, inner);
            for (size_t c = 0; c < sizeof cuts / sizeof *cuts; ++c) {
                const size_t cut = cuts[c];
                for (size_t i = 0; i < total; ++i)
                    set(t, out, i, SENTINEL);
                int clean = 1;
                for (size_t j0 = 0; j0 < inner; j0 += cut) {
                    const size_t w = inner - j0 < cut ? inner - j0 : cut;
                    block(k, op, t, (const char *)x + j0 * es, (const char *)y + j0 * es,
                          (char *)out + j0 * es, n, inner, w);
                    for (size_t i = 0; i < n; ++i)
                        for (size_t j = j0 + w; j < inner; ++j)
                            clean &= get(t, out, i * inner + j) == SENTINEL;
                }
                ++checks;
                if (!clean)
                    FAIL("%s %s_inner %s n=%zu, blocks of %zu: wrote beyond a block\n", ISA_NAMES[isa],
                         OP_NAMES[op], t->name, n, cut);
                ++checks;
                if (memcmp(out, whole, total * es) != 0)
                    FAIL("%s %s_inner %s n=%zu: blocks of %zu differ from one block\n", ISA_NAMES[isa],
                         OP_NAMES[op], t->name, n, cut);
                /* in place: out = x; for the VJPs, y (softmax) or dy (log-softmax) */
                memcpy(in_a, x, total * es);
                memcpy(in_b, y, total * es);
                void *in_out = op == LOG_SOFTMAX_VJP ? in_b : in_a;
                for (size_t j0 = 0; j0 < inner; j0 += cut) {
                    const size_t w = inner - j0 < cut ? inner - j0 : cut;
                    block(k, op, t, (char *)in_a + j0 * es, (char *)in_b + j0 * es, (char *)in_out + j0 * es,
                          n, inner, w);
                }
                ++checks;
                if (memcmp(in_out, whole, total * es) != 0)
                    FAIL("%s %s_inner %s n=%zu: in place, blocks of %zu differ from one block\n",
                         ISA_NAMES[isa], OP_NAMES[op], t->name, n, cut);
            }
#if HAVE_GUARD
            /* columns 0..cut-1 of the slice copied into guarded buffers whose last
             * row stops after those columns (the next byte faults) */
            for (size_t c = 0; c < sizeof cuts / sizeof *cuts; ++c) {
                const size_t cut = cuts[c], used = (n - 1) * inner + cut;
                char *maps[3];
                size_t lens[3];
                char *ga = before_guard(used * es, &maps[0], &lens[0]);
                char *gb = before_guard(used * es, &maps[1], &lens[1]);
                char *go = before_guard(used * es, &maps[2], &lens[2]);
                if (!ga || !gb || !go)
                    break;
                memcpy(ga, x, used * es);
                memcpy(gb, y, used * es);
                block(k, op, t, ga, gb, go, n, inner, cut);
                int same = 1;
                for (size_t i = 0; i < n; ++i)
                    same &= memcmp(go + i * inner * es, (char *)whole + i * inner * es, cut * es) == 0;
                ++checks;
                if (!same)
                    FAIL("%s %s_inner %s n=%zu: a block of %zu before a guard page differs\n", ISA_NAMES[isa],
                         OP_NAMES[op], t->name, n, cut);
                for (int m = 0; m < 3; ++m)
                    munmap(maps[m], lens[m]);
            }
#endif
        }
        free(ca);
        free(cb);
        free(x);
        free(y);
        free(whole);
        free(out);
        free(in_a);
        free(in_b);
    }
}

/* ----------------------------------------- a different code path really ran */

static void test_differs_from_scalar(int isa)
{
    enum { N = 1000 };
    static float x[N], a[N], b[N];
    for (size_t i = 0; i < N; ++i)
        x[i] = (float)uniform(-10, 10);
    sm_softmax_f32(x, N, a, N, 1, N, SM_ISA_SCALAR);
    sm_softmax_f32(x, N, b, N, 1, N, isa);
    size_t differ = 0;
    for (size_t i = 0; i < N; ++i)
        differ += memcmp(&a[i], &b[i], sizeof a[i]) != 0;
    printf("  softmax float32 n=%d: %s differs bitwise from scalar in %zu elements\n", N,
           ISA_NAMES[isa], differ);
    ++checks;
    if (differ == 0)
        FAIL("%s: bitwise identical to scalar on random input: did its kernels run?\n", ISA_NAMES[isa]);
}

int main(int argc, char **argv)
{
    const uint32_t step = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 61;
    const long points = argc > 2 ? strtol(argv[2], NULL, 10) : 1L << 20;
    setvbuf(stdout, NULL, _IOLBF, 0);  /* progress line by line, also into a pipe (make, CI logs) */
    const int32_t compiled = sm_compiled_isas(), best = sm_best_isa();
    const char *env = getenv("SOFTMAX_LIB_ISA");
    printf("test_kernels: compiled ISAs:");
    for (int isa = 1; isa <= MAX_ISA; ++isa)
        if (compiled & (1 << isa))
            printf(" %s", ISA_NAMES[isa]);
    printf("; best: %s; SOFTMAX_LIB_ISA=%s\n", best >= 1 && best <= MAX_ISA ? ISA_NAMES[best] : "?",
           env ? env : "(unset)");
    ++checks;
    if (env && strcmp(env, "scalar") == 0 && best != SM_ISA_SCALAR)
        FAIL("SOFTMAX_LIB_ISA=scalar but the best ISA is %d\n", (int)best);
    /* the build's SIMD ISA is compiled in and chosen by default; none with SOFTMAX_NO_SIMD */
    const int forced = env && strcmp(env, "scalar") == 0;
    (void)forced;  /* used on AArch64 only */
    ++checks;
#if defined(SOFTMAX_NO_SIMD)
    if (compiled != 1 << SM_ISA_SCALAR)
        FAIL("SOFTMAX_NO_SIMD build with SIMD ISAs compiled: mask %d\n", (int)compiled);
#elif defined(__aarch64__)
    if (!(compiled & (1 << SM_ISA_NEON)) || best != (forced ? SM_ISA_SCALAR : SM_ISA_NEON))
        FAIL("AArch64: NEON compiled %d, best %d\n", !!(compiled & (1 << SM_ISA_NEON)), (int)best);
#elif defined(__x86_64__)
    if (!(compiled & (1 << SM_ISA_AVX2)))
        FAIL("x86-64 build without the AVX2 kernels\n");
#endif
    for (int isa = 1; isa <= MAX_ISA; ++isa) {
        if (!(compiled & (1 << isa)))
            continue;
        float x = 0, o;
        if (sm_softmax_f32(&x, 1, &o, 1, 1, 1, isa) == SM_ERR_ISA_UNAVAILABLE) {
            printf("%s: compiled in, not available on this CPU/environment: skipped\n", ISA_NAMES[isa]);
            continue;
        }
        printf("%s:\n", ISA_NAMES[isa]);
        const long before = failures;
        for (int f = 0; f < 2; ++f) {
            const dtype *t = f ? &F64 : &F32;
            test_random(isa, t);
            test_specials(isa, t);
            test_exp(isa, t, step, points);
            test_inner(isa, t);
            test_inner_specials(isa, t);
            test_inner_top_class(isa, t);
            test_inner_threads(isa, t);
            test_inner_blocks(isa, t);
        }
        if (isa != SM_ISA_SCALAR)
            test_differs_from_scalar(isa);
        for (int op = SOFTMAX; op <= LOG_SOFTMAX_VJP; ++op)
            for (int f = 1; f >= 0; --f)
                printf("  %-15s %s: worst |err|/bound %.3Lf, worst relative error %.3Lg\n",
                       OP_NAMES[op], f ? "float32" : "float64", worst_ratio[isa][op][f],
                       worst_rel[isa][op][f]);
        printf("  %s: %s\n", ISA_NAMES[isa], failures == before ? "ok" : "FAILED");
    }
    printf("test_kernels: %ld checks, %ld failed\n", checks, failures);
    return failures != 0;
}
