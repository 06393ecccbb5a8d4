/*
 * kernels_scalar.c -- portable per-row kernels, float32 and float64.
 *
 * Three passes per row (as PyTorch's CPU softmax): the maximum, then
 * exp(x - max) and its sum, then the scaling. float32 rows accumulate their
 * sums in double and scale in double, so a long row costs no precision; the
 * float64 rows have nothing wider to use and accumulate in double.
 */
#include <math.h>

#include "kernels.h"

/* The row maximum, ignoring NaN: a NaN still reaches the result, because its
 * exp(x - max) is NaN and so is the row's sum. */
static float max_f32(const float *x, size_t n)
{
    float m = -INFINITY;
    for (size_t i = 0; i < n; ++i)
        m = x[i] > m ? x[i] : m;
    return m;
}

static double max_f64(const double *x, size_t n)
{
    double m = -INFINITY;
    for (size_t i = 0; i < n; ++i)
        m = x[i] > m ? x[i] : m;
    return m;
}

void sm_scalar_softmax_f32(const float *x, float *out, size_t n, ptrdiff_t next)
{
    (void)next;  /* the scalar loops are no faster with prefetching */
    const float m = max_f32(x, n);
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const float e = expf(x[i] - m);  /* <= 1: x - m <= 0 */
        out[i] = e;
        sum += e;
    }
    const double inv = 1.0 / sum;  /* sum >= 1 (the max contributes exp(0)) unless NaN */
    for (size_t i = 0; i < n; ++i)
        out[i] = (float)(out[i] * inv);
}

void sm_scalar_softmax_f64(const double *x, double *out, size_t n, ptrdiff_t next)
{
    (void)next;  /* the scalar loops are no faster with prefetching */
    const double m = max_f64(x, n);
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double e = exp(x[i] - m);
        out[i] = e;
        sum += e;
    }
    const double inv = 1.0 / sum;
    for (size_t i = 0; i < n; ++i)
        out[i] *= inv;
}

/* log-softmax as (x - m) - log1p(rest), rest = sum(exp(x - m)) over all but one
 * maximum: lse = m + log1p(rest) keeps the small part of 1 + rest that log(sum)
 * would round away, so the top class (x = m, the entry an NLL loss reads) is
 * right to a few ulp. Ties with the maximum count 1 each; NaN or an infinite
 * maximum leave no x - m == 0 and make rest NaN, so the row is NaN as before. */
void sm_scalar_log_softmax_f32(const float *x, float *out, size_t n, ptrdiff_t next)
{
    (void)next;  /* the scalar loops are no faster with prefetching */
    const float m = max_f32(x, n);
    double rest = 0.0, tops = 0.0;  /* sum over x < m, and how many x == m */
    for (size_t i = 0; i < n; ++i) {
        const float d = x[i] - m;
        if (d == 0.0f)
            tops += 1.0;
        else
            rest += expf(d);
    }
    const float lse = (float)log1p(rest + (tops - 1.0));
    /* (x - m) first: exact for the entries near the max, the likeliest classes */
    for (size_t i = 0; i < n; ++i)
        out[i] = (x[i] - m) - lse;
}

void sm_scalar_log_softmax_f64(const double *x, double *out, size_t n, ptrdiff_t next)
{
    (void)next;  /* the scalar loops are no faster with prefetching */
    const double m = max_f64(x, n);
    double rest = 0.0, tops = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double d = x[i] - m;
        if (d == 0.0)
            tops += 1.0;
        else
            rest += exp(d);
    }
    const double lse = log1p(rest + (tops - 1.0));
    for (size_t i = 0; i < n; ++i)
        out[i] = (x[i] - m) - lse;
}

void sm_scalar_softmax_vjp_f32(const float *y, const float *dy, float *out, size_t n)
{
    double dot = 0.0;  /* <y, dy> */
    for (size_t i = 0; i < n; ++i)
        dot += (double)y[i] * dy[i];
    for (size_t i = 0; i < n; ++i)
        out[i] = (float)(y[i] * (dy[i] - dot));
}

void sm_scalar_softmax_vjp_f64(const double *y, const double *dy, double *out, size_t n)
{
    double dot = 0.0;
    for (size_t i = 0; i < n; ++i)
        dot += y[i] * dy[i];
    for (size_t i = 0; i < n; ++i)
        out[i] = y[i] * (dy[i] - dot);
}

/* The log-softmax VJP dy - s sum(dy), s = exp(y). Where s > 1/2 (y > -ln 2: at
 * most one entry of a log-softmax row, the top class) it is computed as
 * (dy - sum(dy)) - expm1(y) sum(dy) instead: expm1 keeps 1 - s, which exp(y)
 * rounds away when s is near 1 (NLL's gradient at the top class is s - 1). */
void sm_scalar_log_softmax_vjp_f32(const float *y, const float *dy, float *out, size_t n)
{
    double total = 0.0;  /* sum(dy) */
    for (size_t i = 0; i < n; ++i)
        total += dy[i];
    for (size_t i = 0; i < n; ++i)  /* exp(y) = softmax(x) */
        out[i] = (float)(y[i] > -SM_LN2 ? (dy[i] - total) - expm1f(y[i]) * total
                                        : dy[i] - expf(y[i]) * total);
}

void sm_scalar_log_softmax_vjp_f64(const double *y, const double *dy, double *out, size_t n)
{
    double total = 0.0;
    for (size_t i = 0; i < n; ++i)
        total += dy[i];
    for (size_t i = 0; i < n; ++i)
        out[i] = y[i] > -SM_LN2 ? (dy[i] - total) - expm1(y[i]) * total : dy[i] - exp(y[i]) * total;
}

void sm_scalar_exp_f32(const float *x, float *out, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        out[i] = expf(x[i]);
}

void sm_scalar_exp_f64(const double *x, double *out, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        out[i] = exp(x[i]);
}

/* ---------------------------------------------------- along an inner axis */

/* The same arithmetic as the row kernels above, one column at a time down the
 * n rows of a (n, inner) slice (kernels.h), with the per-column maxima and
 * sums in small stack arrays: no transposing copy, and each column's result
 * is exactly what the row kernel gives for that column copied out. Each pass
 * walks the rows in order, reading `width` contiguous elements per row. */
#define SCALAR_INNER(T, sfx, EXP, EXPM1)                                                     \
    void sm_scalar_softmax_inner_##sfx(const T *x, T *out, size_t n, size_t inner, size_t width) \
    {                                                                                        \
        T m[SM_INNER_MAX_COLS];                                                              \
        double sum[SM_INNER_MAX_COLS];                                                       \
        for (size_t j = 0; j < width; ++j) {                                                 \
            m[j] = -INFINITY;                                                                \
            sum[j] = 0.0;                                                                    \
        }                                                                                    \
        for (size_t i = 0; i < n; ++i)                                                       \
            for (size_t j = 0; j < width; ++j)                                               \
                m[j] = x[i * inner + j] > m[j] ? x[i * inner + j] : m[j];                    \
        for (size_t i = 0; i < n; ++i)                                                       \
            for (size_t j = 0; j < width; ++j) {                                             \
                const T e = EXP(x[i * inner + j] - m[j]);                                    \
                out[i * inner + j] = e;                                                      \
                sum[j] += e;                                                                 \
            }                                                                                \
        for (size_t j = 0; j < width; ++j)                                                   \
            sum[j] = 1.0 / sum[j];                                                           \
        for (size_t i = 0; i < n; ++i)                                                       \
            for (size_t j = 0; j < width; ++j)                                               \
                out[i * inner + j] = (T)(out[i * inner + j] * sum[j]);                       \
    }                                                                                        \
    void sm_scalar_log_softmax_inner_##sfx(const T *x, T *out, size_t n, size_t inner,       \
                                           size_t width)                                     \
    {                                                                                        \
        T m[SM_INNER_MAX_COLS], lse[SM_INNER_MAX_COLS];                                      \
        double rest[SM_INNER_MAX_COLS], tops[SM_INNER_MAX_COLS];                             \
        for (size_t j = 0; j < width; ++j) {                                                 \
            m[j] = -INFINITY;                                                                \
            rest[j] = tops[j] = 0.0;                                                         \
        }                                                                                    \
        for (size_t i = 0; i < n; ++i)                                                       \
            for (size_t j = 0; j < width; ++j)                                               \
                m[j] = x[i * inner + j] > m[j] ? x[i * inner + j] : m[j];                    \
        for (size_t i = 0; i < n; ++i)                                                       \
            for (size_t j = 0; j < width; ++j) {                                             \
                const T d = x[i * inner + j] - m[j];                                         \
                if (d == 0)                                                                  \
                    tops[j] += 1.0;                                                          \
                else                                                                         \
                    rest[j] += EXP(d);                                                       \
            }                                                                                \
        for (size_t j = 0; j < width; ++j)                                                   \
            lse[j] = (T)log1p(rest[j] + (tops[j] - 1.0));                                    \
        for (size_t i = 0; i < n; ++i)                                                       \
            for (size_t j = 0; j < width; ++j)                                               \
                out[i * inner + j] = (x[i * inner + j] - m[j]) - lse[j];                     \
    }                                                                                        \
    void sm_scalar_softmax_vjp_inner_##sfx(const T *y, const T *dy, T *out, size_t n,        \
                                           size_t inner, size_t width)                       \
    {                                                                                        \
        double dot[SM_INNER_MAX_COLS];                                                       \
        for (size_t j = 0; j < width; ++j)                                                   \
            dot[j] = 0.0;                                                                    \
        for (size_t i = 0; i < n; ++i)                                                       \
            for (size_t j = 0; j < width; ++j)                                               \
                dot[j] += (double)y[i * inner + j] * dy[i * inner + j];                      \
        for (size_t i = 0; i < n; ++i)                                                       \
            for (size_t j = 0; j < width; ++j) {                                             \
                const size_t at = i * inner + j;                                             \
                out[at] = (T)(y[at] * (dy[at] - dot[j]));                                    \
            }                                                                                \
    }                                                                                        \
    void sm_scalar_log_softmax_vjp_inner_##sfx(const T *y, const T *dy, T *out, size_t n,    \
                                               size_t inner, size_t width)                   \
    {                                                                                        \
        double total[SM_INNER_MAX_COLS];                                                     \
        for (size_t j = 0; j < width; ++j)                                                   \
            total[j] = 0.0;                                                                  \
        for (size_t i = 0; i < n; ++i)                                                       \
            for (size_t j = 0; j < width; ++j)                                               \
                total[j] += dy[i * inner + j];                                               \
        for (size_t i = 0; i < n; ++i)                                                       \
            for (size_t j = 0; j < width; ++j) {                                             \
                const size_t at = i * inner + j;                                             \
                const double t = total[j];                                                   \
                out[at] = (T)(y[at] > -SM_LN2 ? (dy[at] - t) - EXPM1(y[at]) * t              \
                                              : dy[at] - EXP(y[at]) * t);                    \
            }                                                                                \
    }

SCALAR_INNER(float, f32, expf, expm1f)
SCALAR_INNER(double, f64, exp, expm1)
