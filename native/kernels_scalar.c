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

void sm_scalar_softmax_f32(const float *x, float *out, size_t n)
{
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

void sm_scalar_softmax_f64(const double *x, double *out, size_t n)
{
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

void sm_scalar_log_softmax_f32(const float *x, float *out, size_t n)
{
    const float m = max_f32(x, n);
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i)
        sum += expf(x[i] - m);
    const float lse = (float)log(sum);
    /* (x - m) first: exact for the entries near the max, the likeliest classes */
    for (size_t i = 0; i < n; ++i)
        out[i] = (x[i] - m) - lse;
}

void sm_scalar_log_softmax_f64(const double *x, double *out, size_t n)
{
    const double m = max_f64(x, n);
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i)
        sum += exp(x[i] - m);
    const double lse = log(sum);
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

void sm_scalar_log_softmax_vjp_f32(const float *y, const float *dy, float *out, size_t n)
{
    double total = 0.0;  /* sum(dy) */
    for (size_t i = 0; i < n; ++i)
        total += dy[i];
    for (size_t i = 0; i < n; ++i)
        out[i] = (float)(dy[i] - expf(y[i]) * total);  /* exp(y) = softmax(x) */
}

void sm_scalar_log_softmax_vjp_f64(const double *y, const double *dy, double *out, size_t n)
{
    double total = 0.0;
    for (size_t i = 0; i < n; ++i)
        total += dy[i];
    for (size_t i = 0; i < n; ++i)
        out[i] = dy[i] - exp(y[i]) * total;
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
