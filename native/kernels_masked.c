/*
 * kernels_masked.c -- softmax, log-softmax, their VJPs and logsumexp with a mask
 * (where=), and logsumexp itself: the kernels and their entry points (softmax.h).
 *
 * A row is the entries whose mask byte is nonzero; the mask is read in place
 * (uint8 rows with their own stride, 0 for a mask broadcast over the rows), so
 * neither the input nor a masked copy of it is made. Outside the mask softmax
 * writes 0 and log-softmax -inf; a row with no entry gives zeros / -inf, never
 * NaN. Inside, the arithmetic is that of the unmasked kernels (the max, then
 * exp(x - max) and its sum -- in double for float32 -- then the scaling;
 * log-softmax and logsumexp as m + log1p(rest), the maxima counted apart), so
 * the same error bound holds with n the number of entries.
 *
 * Scalar and AVX2 (+FMA, chosen at run time as in dispatch.c); the rows split
 * over threads by dispatch.c's sm_parallel_for (kernels.h).
 * NEON has no masked kernels: an explicit SM_ISA_NEON request returns
 * SM_ERR_ISA_UNAVAILABLE and SM_ISA_AUTO runs the scalar kernels there.
 * The entry points repeat dispatch.c's small argument checks (kept static
 * there) rather than share them.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"
#include "softmax.h"

/* The AVX2 kernels of this file mix with scalar code, so they rely on per-function
 * target attributes. MSVC has none: there, unless the whole build targets AVX2, the
 * masked kernels are the scalar ones (setup.py gives /arch:AVX2 to kernels_avx2.c
 * alone, so that no scalar code is compiled for AVX2). */
#if SM_HAVE_AVX2 && !(defined(_MSC_VER) && !defined(__clang__) && !defined(__AVX2__))
#define SM_MASKED_AVX2 1
#else
#define SM_MASKED_AVX2 0
#endif

/* ---------------------------------------------------------------- scalar */

/* The max over the masked-in entries (NaN ignored, as in kernels_scalar.c: it
 * reaches the result through exp), and how many there are. */
#define SCALAR_MAX(T, S)                                                                \
    static T max_masked_##S(const T *x, const uint8_t *w, size_t n, size_t *count)     \
    {                                                                                   \
        T m = -INFINITY;                                                                \
        size_t c = 0;                                                                   \
        for (size_t i = 0; i < n; ++i) {                                                \
            if (w[i]) {                                                                 \
                ++c;                                                                    \
                m = x[i] > m ? x[i] : m;                                                \
            }                                                                           \
        }                                                                               \
        *count = c;                                                                     \
        return m;                                                                       \
    }
SCALAR_MAX(float, f32)
SCALAR_MAX(double, f64)

static void softmax_masked_scalar_f32(const float *x, const uint8_t *w, float *out, size_t n)
{
    size_t count;
    const float m = max_masked_f32(x, w, n, &count);
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const float e = w[i] ? expf(x[i] - m) : 0.0f;
        out[i] = e;
        sum += e;
    }
    const double inv = count ? 1.0 / sum : 0.0;  /* no entry: zeros, not 0/0 */
    for (size_t i = 0; i < n; ++i)
        out[i] = w[i] ? (float)(out[i] * inv) : 0.0f;
}

static void softmax_masked_scalar_f64(const double *x, const uint8_t *w, double *out, size_t n)
{
    size_t count;
    const double m = max_masked_f64(x, w, n, &count);
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double e = w[i] ? exp(x[i] - m) : 0.0;
        out[i] = e;
        sum += e;
    }
    const double inv = count ? 1.0 / sum : 0.0;
    for (size_t i = 0; i < n; ++i)
        out[i] = w[i] ? out[i] * inv : 0.0;
}

/* rest = sum of exp(x - m) over the masked-in entries below m, tops = how many
 * equal m; log1p(rest + tops - 1) = log(sum) - m, keeping the small part. */
#define SCALAR_REST(T, S, EXP)                                                          \
    static double rest_masked_##S(const T *x, const uint8_t *w, size_t n, T m)          \
    {                                                                                   \
        double rest = 0.0, tops = 0.0;                                                  \
        for (size_t i = 0; i < n; ++i) {                                                \
            if (w == NULL || w[i]) {                                                    \
                const T d = x[i] - m;                                                   \
                if (d == 0)                                                             \
                    tops += 1.0;                                                        \
                else                                                                    \
                    rest += EXP(d);                                                     \
            }                                                                           \
        }                                                                               \
        return rest + (tops - 1.0);                                                     \
    }
SCALAR_REST(float, f32, expf)
SCALAR_REST(double, f64, exp)

#define SCALAR_LOG_SOFTMAX(T, S)                                                        \
    static void log_softmax_masked_scalar_##S(const T *x, const uint8_t *w, T *out,     \
                                              size_t n)                                 \
    {                                                                                   \
        size_t count;                                                                   \
        const T m = max_masked_##S(x, w, n, &count);                                    \
        const T lse = count ? (T)log1p(rest_masked_##S(x, w, n, m)) : 0;                \
        for (size_t i = 0; i < n; ++i)                                                  \
            out[i] = w[i] ? (x[i] - m) - lse : -INFINITY;                               \
    }
SCALAR_LOG_SOFTMAX(float, f32)
SCALAR_LOG_SOFTMAX(double, f64)

/* logsumexp of a row (w NULL: every entry), SciPy's rules where the max is not
 * finite: NaN anywhere gives NaN; else +inf gives +inf; only -inf, or no entry,
 * gives -inf. */
#define SCALAR_LSE(T, S)                                                                \
    static T logsumexp_scalar_##S(const T *x, const uint8_t *w, size_t n)               \
    {                                                                                   \
        T m = -INFINITY;                                                                \
        int nan = 0;                                                                    \
        for (size_t i = 0; i < n; ++i) {                                                \
            if (w == NULL || w[i]) {                                                    \
                nan |= x[i] != x[i];                                                    \
                m = x[i] > m ? x[i] : m;                                                \
            }                                                                           \
        }                                                                               \
        if (nan)                                                                        \
            return (T)NAN;                                                              \
        if (isinf(m))                                                                   \
            return m;                                                                   \
        return (T)((double)m + log1p(rest_masked_##S(x, w, n, m)));                     \
    }
SCALAR_LSE(float, f32)
SCALAR_LSE(double, f64)

/* The VJPs with a mask: the unmasked row kernels' arithmetic (kernels_scalar.c)
 * over the masked-in entries -- <y, dy> or sum(dy) in double, the log-softmax
 * VJP's top class (y > -ln 2) by expm1 -- and 0 outside the mask, where y and dy
 * are never read into the result (NaN or inf there take no part); a row with no
 * entry gives zeros. out may be y or dy: entry i is written after it is read. */
static void softmax_vjp_masked_scalar_f32(const float *y, const float *dy, const uint8_t *w,
                                          float *out, size_t n)
{
    double dot = 0.0;  /* <y, dy> over the mask */
    for (size_t i = 0; i < n; ++i)
        if (w[i])
            dot += (double)y[i] * dy[i];
    for (size_t i = 0; i < n; ++i)
        out[i] = w[i] ? (float)(y[i] * (dy[i] - dot)) : 0.0f;
}

static void softmax_vjp_masked_scalar_f64(const double *y, const double *dy, const uint8_t *w,
                                          double *out, size_t n)
{
    double dot = 0.0;
    for (size_t i = 0; i < n; ++i)
        if (w[i])
            dot += y[i] * dy[i];
    for (size_t i = 0; i < n; ++i)
        out[i] = w[i] ? y[i] * (dy[i] - dot) : 0.0;
}

static void log_softmax_vjp_masked_scalar_f32(const float *y, const float *dy, const uint8_t *w,
                                              float *out, size_t n)
{
    double total = 0.0;  /* sum(dy) over the mask */
    for (size_t i = 0; i < n; ++i)
        if (w[i])
            total += dy[i];
    for (size_t i = 0; i < n; ++i)
        out[i] = !w[i] ? 0.0f
                 : (float)(y[i] > -SM_LN2 ? (dy[i] - total) - expm1f(y[i]) * total
                                          : dy[i] - expf(y[i]) * total);
}

static void log_softmax_vjp_masked_scalar_f64(const double *y, const double *dy, const uint8_t *w,
                                              double *out, size_t n)
{
    double total = 0.0;
    for (size_t i = 0; i < n; ++i)
        if (w[i])
            total += dy[i];
    for (size_t i = 0; i < n; ++i)
        out[i] = !w[i] ? 0.0
                 : y[i] > -SM_LN2 ? (dy[i] - total) - expm1(y[i]) * total
                                  : dy[i] - exp(y[i]) * total;
}

/* ---------------------------------------------------------------- AVX2 */

#if SM_MASKED_AVX2
#include "exp_avx2.h"

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#define POPCOUNT(v) ((int)__popcnt(v))
#else
#define POPCOUNT(v) __builtin_popcount(v)
#endif

/* 8 mask bytes as 8 lanes of all-ones (nonzero byte) or zeros. */
SM_AVX2 static inline __m256 lanes_ps(const uint8_t *w)
{
    int64_t bytes;
    memcpy(&bytes, w, 8);
    const __m256i v = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(bytes));
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(v, _mm256_setzero_si256()));
}

/* 4 mask bytes as 4 lanes. */
SM_AVX2 static inline __m256d lanes_pd(const uint8_t *w)
{
    int32_t bytes;
    memcpy(&bytes, w, 4);
    const __m256i v = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(bytes));
    return _mm256_castsi256_pd(_mm256_cmpgt_epi64(v, _mm256_setzero_si256()));
}

/* The lanes of entries i..i+7 (w NULL: all of them). */
SM_AVX2 static inline __m256 take_ps(const uint8_t *w, size_t i)
{
    return w ? lanes_ps(w + i) : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
}

SM_AVX2 static inline __m256d take_pd(const uint8_t *w, size_t i)
{
    return w ? lanes_pd(w + i) : _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
}

SM_AVX2 static inline float hmax8(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

SM_AVX2 static inline double hmax4(__m256d v)
{
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)));
}

SM_AVX2 static inline double hsum4(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* float32 lanes added into a double accumulator: the sums in double, as scalar. */
SM_AVX2 static inline __m256d add_ps_to_pd(__m256d acc, __m256 v)
{
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

/* Max over the masked-in entries (NaN ignored: max_ps returns its second operand,
 * the running max, when the first is NaN), their count, and whether one is NaN. */
SM_AVX2 static float max_masked_avx2_f32(const float *x, const uint8_t *w, size_t n,
                                         size_t *count, int *nan)
{
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 mv = ninf, bad = _mm256_setzero_ps();
    size_t c = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 k = take_ps(w, i), v = _mm256_loadu_ps(x + i);
        mv = _mm256_max_ps(_mm256_blendv_ps(ninf, v, k), mv);
        bad = _mm256_or_ps(bad, _mm256_and_ps(k, _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
        c += (size_t)POPCOUNT((unsigned)_mm256_movemask_ps(k));
    }
    float m = hmax8(mv);
    int b = _mm256_movemask_ps(bad) != 0;
    for (; i < n; ++i) {
        if (w == NULL || w[i]) {
            ++c;
            b |= x[i] != x[i];
            m = x[i] > m ? x[i] : m;
        }
    }
    *count = c;
    *nan = b;
    return m;
}

SM_AVX2 static double max_masked_avx2_f64(const double *x, const uint8_t *w, size_t n,
                                          size_t *count, int *nan)
{
    const __m256d ninf = _mm256_set1_pd(-INFINITY);
    __m256d mv = ninf, bad = _mm256_setzero_pd();
    size_t c = 0, i = 0;
    for (; i + 4 <= n; i += 4) {
        const __m256d k = take_pd(w, i), v = _mm256_loadu_pd(x + i);
        mv = _mm256_max_pd(_mm256_blendv_pd(ninf, v, k), mv);
        bad = _mm256_or_pd(bad, _mm256_and_pd(k, _mm256_cmp_pd(v, v, _CMP_UNORD_Q)));
        c += (size_t)POPCOUNT((unsigned)_mm256_movemask_pd(k));
    }
    double m = hmax4(mv);
    int b = _mm256_movemask_pd(bad) != 0;
    for (; i < n; ++i) {
        if (w == NULL || w[i]) {
            ++c;
            b |= x[i] != x[i];
            m = x[i] > m ? x[i] : m;
        }
    }
    *count = c;
    *nan = b;
    return m;
}

/* sum of exp(x - m) over the masked-in entries, storing the terms (0 outside the
 * mask: the and with the lanes also clears exp(NaN) of masked-out NaN) in out
 * when out != NULL; with tops != NULL, the entries equal to m are left out of the
 * sum and counted there instead (log-softmax, logsumexp). */
SM_AVX2 static double exp_sum_masked_avx2_f32(const float *x, const uint8_t *w, float m,
                                              float *out, size_t n, double *tops)
{
    const __m256 mv = _mm256_set1_ps(m);
    __m256d acc = _mm256_setzero_pd();
    double t = 0.0, tail = 0.0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 k = take_ps(w, i);
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), mv);
        if (tops != NULL) {
            const __m256 top = _mm256_and_ps(k, _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ));
            t += POPCOUNT((unsigned)_mm256_movemask_ps(top));
            k = _mm256_andnot_ps(top, k);
        }
        const __m256 e = _mm256_and_ps(sm_exp256_ps(d), k);
        if (out != NULL)
            _mm256_storeu_ps(out + i, e);
        acc = add_ps_to_pd(acc, e);
    }
    for (; i < n; ++i) {
        float e = 0.0f;
        if (w == NULL || w[i]) {
            const float d = x[i] - m;
            if (tops != NULL && d == 0.0f)
                t += 1.0;
            else
                e = expf(d);
        }
        if (out != NULL)
            out[i] = e;
        tail += e;
    }
    if (tops != NULL)
        *tops = t;
    return hsum4(acc) + tail;
}

SM_AVX2 static double exp_sum_masked_avx2_f64(const double *x, const uint8_t *w, double m,
                                              double *out, size_t n, double *tops)
{
    const __m256d mv = _mm256_set1_pd(m);
    __m256d acc = _mm256_setzero_pd();
    double t = 0.0, tail = 0.0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d k = take_pd(w, i);
        const __m256d d = _mm256_sub_pd(_mm256_loadu_pd(x + i), mv);
        if (tops != NULL) {
            const __m256d top = _mm256_and_pd(k, _mm256_cmp_pd(d, _mm256_setzero_pd(), _CMP_EQ_OQ));
            t += POPCOUNT((unsigned)_mm256_movemask_pd(top));
            k = _mm256_andnot_pd(top, k);
        }
        const __m256d e = _mm256_and_pd(sm_exp256_pd(d), k);
        if (out != NULL)
            _mm256_storeu_pd(out + i, e);
        acc = _mm256_add_pd(acc, e);
    }
    for (; i < n; ++i) {
        double e = 0.0;
        if (w == NULL || w[i]) {
            const double d = x[i] - m;
            if (tops != NULL && d == 0.0)
                t += 1.0;
            else
                e = exp(d);
        }
        if (out != NULL)
            out[i] = e;
        tail += e;
    }
    if (tops != NULL)
        *tops = t;
    return hsum4(acc) + tail;
}

SM_AVX2 static void softmax_masked_avx2_f32(const float *x, const uint8_t *w, float *out, size_t n)
{
    size_t count;
    int nan;
    const float m = max_masked_avx2_f32(x, w, n, &count, &nan);
    const double sum = exp_sum_masked_avx2_f32(x, w, m, out, n, NULL);
    const __m256 inv = _mm256_set1_ps(count ? (float)(1.0 / sum) : 0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)  /* the and keeps 0 outside even when inv is NaN */
        _mm256_storeu_ps(out + i, _mm256_and_ps(_mm256_mul_ps(_mm256_loadu_ps(out + i), inv),
                                                lanes_ps(w + i)));
    const float s = _mm256_cvtss_f32(inv);
    for (; i < n; ++i)
        out[i] = w[i] ? out[i] * s : 0.0f;
}

SM_AVX2 static void softmax_masked_avx2_f64(const double *x, const uint8_t *w, double *out, size_t n)
{
    size_t count;
    int nan;
    const double m = max_masked_avx2_f64(x, w, n, &count, &nan);
    const double sum = exp_sum_masked_avx2_f64(x, w, m, out, n, NULL);
    const __m256d inv = _mm256_set1_pd(count ? 1.0 / sum : 0.0);
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        _mm256_storeu_pd(out + i, _mm256_and_pd(_mm256_mul_pd(_mm256_loadu_pd(out + i), inv),
                                                lanes_pd(w + i)));
    const double s = _mm256_cvtsd_f64(inv);
    for (; i < n; ++i)
        out[i] = w[i] ? out[i] * s : 0.0;
}

SM_AVX2 static void log_softmax_masked_avx2_f32(const float *x, const uint8_t *w, float *out, size_t n)
{
    size_t count;
    int nan;
    const float m = max_masked_avx2_f32(x, w, n, &count, &nan);
    double tops = 0.0;
    const double rest = count ? exp_sum_masked_avx2_f32(x, w, m, NULL, n, &tops) : 0.0;
    const float lse = count ? (float)log1p(rest + (tops - 1.0)) : 0.0f;
    const __m256 mv = _mm256_set1_ps(m), lv = _mm256_set1_ps(lse), ninf = _mm256_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {  /* (x - m) first: exact near the max */
        const __m256 y = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv), lv);
        _mm256_storeu_ps(out + i, _mm256_blendv_ps(ninf, y, lanes_ps(w + i)));
    }
    for (; i < n; ++i)
        out[i] = w[i] ? (x[i] - m) - lse : -INFINITY;
}

SM_AVX2 static void log_softmax_masked_avx2_f64(const double *x, const uint8_t *w, double *out, size_t n)
{
    size_t count;
    int nan;
    const double m = max_masked_avx2_f64(x, w, n, &count, &nan);
    double tops = 0.0;
    const double rest = count ? exp_sum_masked_avx2_f64(x, w, m, NULL, n, &tops) : 0.0;
    const double lse = count ? log1p(rest + (tops - 1.0)) : 0.0;
    const __m256d mv = _mm256_set1_pd(m), lv = _mm256_set1_pd(lse), ninf = _mm256_set1_pd(-INFINITY);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const __m256d y = _mm256_sub_pd(_mm256_sub_pd(_mm256_loadu_pd(x + i), mv), lv);
        _mm256_storeu_pd(out + i, _mm256_blendv_pd(ninf, y, lanes_pd(w + i)));
    }
    for (; i < n; ++i)
        out[i] = w[i] ? (x[i] - m) - lse : -INFINITY;
}

SM_AVX2 static float logsumexp_avx2_f32(const float *x, const uint8_t *w, size_t n)
{
    size_t count;
    int nan;
    const float m = max_masked_avx2_f32(x, w, n, &count, &nan);
    if (nan)
        return NAN;
    if (isinf(m))  /* +inf; or -inf: only -inf, or no entry */
        return m;
    double tops = 0.0;
    const double rest = exp_sum_masked_avx2_f32(x, w, m, NULL, n, &tops);
    return (float)((double)m + log1p(rest + (tops - 1.0)));
}

SM_AVX2 static double logsumexp_avx2_f64(const double *x, const uint8_t *w, size_t n)
{
    size_t count;
    int nan;
    const double m = max_masked_avx2_f64(x, w, n, &count, &nan);
    if (nan)
        return NAN;
    if (isinf(m))
        return m;
    double tops = 0.0;
    const double rest = exp_sum_masked_avx2_f64(x, w, m, NULL, n, &tops);
    return m + log1p(rest + (tops - 1.0));
}
/* The masked VJPs in AVX2. Lanes outside the mask have y = -1 and dy = 0 before
 * any arithmetic (-1: neither the top-class path nor exp's slow path for -inf,
 * kernels_avx2.c's maskload_y_ps) and are cleared before the store; <y, dy> and
 * sum(dy) are summed in double for float32 too. The top class (y > -ln 2, at
 * most one entry of a row) is redone lane by lane with libm's expm1, out of
 * line, as the scalar kernel computes it, before anything is stored (out may be
 * y or dy). */
SM_AVX2 static inline __m256 masked_y_ps(const float *y, __m256 k)
{
    return _mm256_blendv_ps(_mm256_set1_ps(-1.0f), _mm256_loadu_ps(y), k);
}

SM_AVX2 static inline __m256d masked_y_pd(const double *y, __m256d k)
{
    return _mm256_blendv_pd(_mm256_set1_pd(-1.0), _mm256_loadu_pd(y), k);
}

SM_AVX2 static void softmax_vjp_masked_avx2_f32(const float *y, const float *dy, const uint8_t *w,
                                                float *out, size_t n)
{
    __m256d acc = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 k = lanes_ps(w + i);
        const __m256 a = _mm256_and_ps(_mm256_loadu_ps(y + i), k);
        const __m256 b = _mm256_and_ps(_mm256_loadu_ps(dy + i), k);
        acc = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)),
                              _mm256_cvtps_pd(_mm256_castps256_ps128(b)), acc);
        acc = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)),
                              _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1)), acc);
    }
    double dot = 0.0;
    for (size_t j = i; j < n; ++j)
        if (w[j])
            dot += (double)y[j] * dy[j];
    dot += hsum4(acc);
    const __m256 dv = _mm256_set1_ps((float)dot);
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 k = lanes_ps(w + i);
        const __m256 g = _mm256_sub_ps(_mm256_loadu_ps(dy + i), dv);
        _mm256_storeu_ps(out + i, _mm256_and_ps(_mm256_mul_ps(_mm256_loadu_ps(y + i), g), k));
    }
    for (; i < n; ++i)
        out[i] = w[i] ? (float)(y[i] * (dy[i] - dot)) : 0.0f;
}

SM_AVX2 static void softmax_vjp_masked_avx2_f64(const double *y, const double *dy, const uint8_t *w,
                                                double *out, size_t n)
{
    __m256d acc = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const __m256d k = lanes_pd(w + i);
        acc = _mm256_fmadd_pd(_mm256_and_pd(_mm256_loadu_pd(y + i), k),
                              _mm256_and_pd(_mm256_loadu_pd(dy + i), k), acc);
    }
    double dot = 0.0;
    for (size_t j = i; j < n; ++j)
        if (w[j])
            dot += y[j] * dy[j];
    dot += hsum4(acc);
    const __m256d dv = _mm256_set1_pd(dot);
    for (i = 0; i + 4 <= n; i += 4) {
        const __m256d k = lanes_pd(w + i);
        const __m256d g = _mm256_sub_pd(_mm256_loadu_pd(dy + i), dv);
        _mm256_storeu_pd(out + i, _mm256_and_pd(_mm256_mul_pd(_mm256_loadu_pd(y + i), g), k));
    }
    for (; i < n; ++i)
        out[i] = w[i] ? y[i] * (dy[i] - dot) : 0.0;
}

/* The lanes `top` (a movemask) of r redone as (dy - T) - expm1(y) T. */
SM_AVX2 __attribute__((noinline)) static __m256 top_masked_ps(const float *y, const float *dy,
                                                              __m256 r, int top, double total)
{
    float v[8];
    _mm256_storeu_ps(v, r);
    for (int j = 0; j < 8; ++j)
        if (top & (1 << j))
            v[j] = (float)((dy[j] - total) - expm1f(y[j]) * total);
    return _mm256_loadu_ps(v);
}

SM_AVX2 __attribute__((noinline)) static __m256d top_masked_pd(const double *y, const double *dy,
                                                               __m256d r, int top, double total)
{
    double v[4];
    _mm256_storeu_pd(v, r);
    for (int j = 0; j < 4; ++j)
        if (top & (1 << j))
            v[j] = (dy[j] - total) - expm1(y[j]) * total;
    return _mm256_loadu_pd(v);
}

SM_AVX2 static void log_softmax_vjp_masked_avx2_f32(const float *y, const float *dy, const uint8_t *w,
                                                    float *out, size_t n)
{
    __m256d acc = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = add_ps_to_pd(acc, _mm256_and_ps(_mm256_loadu_ps(dy + i), lanes_ps(w + i)));
    double total = 0.0;
    for (size_t j = i; j < n; ++j)
        if (w[j])
            total += dy[j];
    total += hsum4(acc);
    const __m256 tv = _mm256_set1_ps((float)total), cut = _mm256_set1_ps((float)-SM_LN2);
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 k = lanes_ps(w + i), yv = masked_y_ps(y + i, k);
        const __m256 dv = _mm256_and_ps(_mm256_loadu_ps(dy + i), k);
        __m256 r = _mm256_fnmadd_ps(sm_exp256_ps(yv), tv, dv);  /* exp(y) = softmax(x) */
        const int top = _mm256_movemask_ps(_mm256_cmp_ps(yv, cut, _CMP_GT_OQ));
        if (top)
            r = top_masked_ps(y + i, dy + i, r, top, total);
        _mm256_storeu_ps(out + i, _mm256_and_ps(r, k));
    }
    for (; i < n; ++i)
        out[i] = !w[i] ? 0.0f
                 : (float)(y[i] > -SM_LN2 ? (dy[i] - total) - expm1f(y[i]) * total
                                          : dy[i] - expf(y[i]) * total);
}

SM_AVX2 static void log_softmax_vjp_masked_avx2_f64(const double *y, const double *dy, const uint8_t *w,
                                                    double *out, size_t n)
{
    __m256d acc = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        acc = _mm256_add_pd(acc, _mm256_and_pd(_mm256_loadu_pd(dy + i), lanes_pd(w + i)));
    double total = 0.0;
    for (size_t j = i; j < n; ++j)
        if (w[j])
            total += dy[j];
    total += hsum4(acc);
    const __m256d tv = _mm256_set1_pd(total), cut = _mm256_set1_pd(-SM_LN2);
    for (i = 0; i + 4 <= n; i += 4) {
        const __m256d k = lanes_pd(w + i), yv = masked_y_pd(y + i, k);
        const __m256d dv = _mm256_and_pd(_mm256_loadu_pd(dy + i), k);
        __m256d r = _mm256_fnmadd_pd(sm_exp256_pd(yv), tv, dv);
        const int top = _mm256_movemask_pd(_mm256_cmp_pd(yv, cut, _CMP_GT_OQ));
        if (top)
            r = top_masked_pd(y + i, dy + i, r, top, total);
        _mm256_storeu_pd(out + i, _mm256_and_pd(r, k));
    }
    for (; i < n; ++i)
        out[i] = !w[i] ? 0.0
                 : y[i] > -SM_LN2 ? (dy[i] - total) - expm1(y[i]) * total
                                  : dy[i] - exp(y[i]) * total;
}
#endif /* SM_MASKED_AVX2 */

/* ---------------------------------------------------------------- entry points */

/* The ISA to run, as dispatch.c's resolve() but without NEON kernels here. */
static int32_t resolve_masked(int32_t isa)
{
    const int32_t best = sm_best_isa();
    switch (isa) {
    case SM_ISA_AUTO:
        return best == SM_ISA_AVX2 ? SM_ISA_AVX2 : SM_ISA_SCALAR;
    case SM_ISA_SCALAR:
        return SM_ISA_SCALAR;
    case SM_ISA_AVX2:
        return best == SM_ISA_AVX2 ? SM_ISA_AVX2 : SM_ERR_ISA_UNAVAILABLE;
    case SM_ISA_NEON:
        return SM_ERR_ISA_UNAVAILABLE;  /* no masked NEON kernels */
    default:
        return SM_ERR_BAD_ISA;
    }
}

#if defined(_MSC_VER) && !defined(__clang__)
#define ALIGN_OF(T) __alignof(T)
#else
#define ALIGN_OF(T) _Alignof(T)
#endif
#define BAD_ALIGN(p, T) (((uintptr_t)(p) % ALIGN_OF(T)) != 0)

/* Whether rows of n elements of `size` bytes, `stride` elements apart, span a
 * byte range that fits in a ptrdiff_t (dispatch.c's sizes_fit). */
static int fits(size_t rows, size_t n, ptrdiff_t stride, size_t size)
{
    const size_t max = (size_t)PTRDIFF_MAX;
    if (n > max / size)
        return 0;
    const size_t step = stride < 0 ? (size_t)0 - (size_t)stride : (size_t)stride;
    if (rows <= 1 || step == 0)
        return 1;
    if (step > max / size)
        return 0;
    return rows - 1 <= (max - n * size) / (step * size);
}

/* Whether out may be written while x is read row by row: the very same rows, or
 * no byte in common (dispatch.c's may_write). */
static int apart_widths(const void *x, ptrdiff_t xs, size_t xn, const void *out, ptrdiff_t os,
                        size_t on, size_t rows, size_t size)
{
    if (x == out && (xs == os || rows == 1) && xn == on)
        return 1;
    const ptrdiff_t last_x = (ptrdiff_t)(rows - 1) * xs * (ptrdiff_t)size;
    const ptrdiff_t last_o = (ptrdiff_t)(rows - 1) * os * (ptrdiff_t)size;
    const uintptr_t x_lo = (uintptr_t)x + (last_x < 0 ? (uintptr_t)last_x : 0);
    const uintptr_t x_hi = (uintptr_t)x + (last_x < 0 ? 0 : (uintptr_t)last_x) + xn * size;
    const uintptr_t o_lo = (uintptr_t)out + (last_o < 0 ? (uintptr_t)last_o : 0);
    const uintptr_t o_hi = (uintptr_t)out + (last_o < 0 ? 0 : (uintptr_t)last_o) + on * size;
    return x_hi <= o_lo || o_hi <= x_lo;
}

/* Rows of n elements of x and of out share no byte, or are the very same rows. */
static int apart(const void *x, ptrdiff_t xs, const void *out, ptrdiff_t os, size_t rows,
                 size_t n, size_t size)
{
    return apart_widths(x, xs, n, out, os, n, rows, size);
}

#if SM_MASKED_AVX2
#define PICK_MASKED(use, name) ((use) == SM_ISA_AVX2 ? name##_avx2 : name##_scalar)
#else
#define PICK_MASKED(use, name) name##_scalar
#endif

#define softmax_masked_f32_scalar softmax_masked_scalar_f32
#define softmax_masked_f64_scalar softmax_masked_scalar_f64
#define log_softmax_masked_f32_scalar log_softmax_masked_scalar_f32
#define log_softmax_masked_f64_scalar log_softmax_masked_scalar_f64
#define softmax_masked_f32_avx2 softmax_masked_avx2_f32
#define softmax_masked_f64_avx2 softmax_masked_avx2_f64
#define log_softmax_masked_f32_avx2 log_softmax_masked_avx2_f32
#define log_softmax_masked_f64_avx2 log_softmax_masked_avx2_f64
#define logsumexp_f32_scalar logsumexp_scalar_f32
#define logsumexp_f64_scalar logsumexp_scalar_f64
#define logsumexp_f32_avx2 logsumexp_avx2_f32
#define logsumexp_f64_avx2 logsumexp_avx2_f64

/* One call's rows, for sm_parallel_for: a kernel, pointers and element strides. */
#define MASKED_JOB(name, T, R, params)                                                  \
    typedef struct {                                                                    \
        R(*row) params;                                                                 \
        const T *a, *b;                                                                 \
        const uint8_t *w;                                                               \
        T *out;                                                                         \
        ptrdiff_t sa, sb, sw, so;                                                       \
        size_t n;                                                                       \
    } name##_job

/* The masked forward entry points: the ISA, the threads, the arguments checked,
 * then the rows (sm_parallel_for: each row computed the same on any thread);
 * the entry point without _mt is the same on one thread. */
#define MASKED_ENTRY(name, T)                                                           \
    MASKED_JOB(name, T, void, (const T *, const uint8_t *, T *, size_t));              \
    static void name##_range(const void *ctx, size_t first, size_t last)                \
    {                                                                                   \
        const name##_job *j = (const name##_job *)ctx;                                  \
        for (size_t r = first; r < last; ++r)                                           \
            j->row(j->a + (ptrdiff_t)r * j->sa, j->w + (ptrdiff_t)r * j->sw,            \
                   j->out + (ptrdiff_t)r * j->so, j->n);                                \
    }                                                                                   \
    int32_t sm_##name##_mt(const T *x, ptrdiff_t x_stride, const uint8_t *w, ptrdiff_t w_stride, \
                           T *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa, \
                           int32_t threads)                                             \
    {                                                                                   \
        const int32_t use = resolve_masked(isa);                                        \
        if (use < 0)                                                                    \
            return use;                                                                 \
        if (threads < 1)                                                                \
            return SM_ERR_BAD_THREADS;                                                  \
        if (rows == 0 || n == 0)                                                        \
            return use;                                                                 \
        if (x == NULL || w == NULL || out == NULL)                                      \
            return SM_ERR_NULL;                                                         \
        if (!fits(rows, n, x_stride, sizeof(T)) || !fits(rows, n, out_stride, sizeof(T)) \
            || !fits(rows, n, w_stride, 1))                                             \
            return SM_ERR_SIZE;                                                         \
        if (BAD_ALIGN(x, T) || BAD_ALIGN(out, T)                                        \
            || !apart(x, x_stride, out, out_stride, rows, n, sizeof(T)))                \
            return SM_ERR_LAYOUT;                                                       \
        const name##_job job = {PICK_MASKED(use, name), x, NULL, w, out,                \
                                x_stride, 0, w_stride, out_stride, n};                  \
        sm_parallel_for(rows, (size_t)threads, name##_range, &job);                     \
        return use;                                                                     \
    }                                                                                   \
    int32_t sm_##name(const T *x, ptrdiff_t x_stride, const uint8_t *w, ptrdiff_t w_stride, \
                      T *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa)   \
    {                                                                                   \
        return sm_##name##_mt(x, x_stride, w, w_stride, out, out_stride, rows, n, isa, 1); \
    }
MASKED_ENTRY(softmax_masked_f32, float)
MASKED_ENTRY(softmax_masked_f64, double)
MASKED_ENTRY(log_softmax_masked_f32, float)
MASKED_ENTRY(log_softmax_masked_f64, double)


#define softmax_vjp_masked_f32_scalar softmax_vjp_masked_scalar_f32
#define softmax_vjp_masked_f64_scalar softmax_vjp_masked_scalar_f64
#define log_softmax_vjp_masked_f32_scalar log_softmax_vjp_masked_scalar_f32
#define log_softmax_vjp_masked_f64_scalar log_softmax_vjp_masked_scalar_f64
#define softmax_vjp_masked_f32_avx2 softmax_vjp_masked_avx2_f32
#define softmax_vjp_masked_f64_avx2 softmax_vjp_masked_avx2_f64
#define log_softmax_vjp_masked_f32_avx2 log_softmax_vjp_masked_avx2_f32
#define log_softmax_vjp_masked_f64_avx2 log_softmax_vjp_masked_avx2_f64

/* The masked VJPs: MASKED_ENTRY's checks for the two inputs y and dy. */
#define MASKED_VJP_ENTRY(name, T)                                                       \
    MASKED_JOB(name, T, void, (const T *, const T *, const uint8_t *, T *, size_t));   \
    static void name##_range(const void *ctx, size_t first, size_t last)                \
    {                                                                                   \
        const name##_job *j = (const name##_job *)ctx;                                  \
        for (size_t r = first; r < last; ++r)                                           \
            j->row(j->a + (ptrdiff_t)r * j->sa, j->b + (ptrdiff_t)r * j->sb,            \
                   j->w + (ptrdiff_t)r * j->sw, j->out + (ptrdiff_t)r * j->so, j->n);   \
    }                                                                                   \
    int32_t sm_##name##_mt(const T *y, ptrdiff_t y_stride, const T *dy, ptrdiff_t dy_stride, \
                           const uint8_t *w, ptrdiff_t w_stride, T *out, ptrdiff_t out_stride, \
                           size_t rows, size_t n, int32_t isa, int32_t threads)         \
    {                                                                                   \
        const int32_t use = resolve_masked(isa);                                        \
        if (use < 0)                                                                    \
            return use;                                                                 \
        if (threads < 1)                                                                \
            return SM_ERR_BAD_THREADS;                                                  \
        if (rows == 0 || n == 0)                                                        \
            return use;                                                                 \
        if (y == NULL || dy == NULL || w == NULL || out == NULL)                        \
            return SM_ERR_NULL;                                                         \
        if (!fits(rows, n, y_stride, sizeof(T)) || !fits(rows, n, dy_stride, sizeof(T)) \
            || !fits(rows, n, out_stride, sizeof(T)) || !fits(rows, n, w_stride, 1))    \
            return SM_ERR_SIZE;                                                         \
        if (BAD_ALIGN(y, T) || BAD_ALIGN(dy, T) || BAD_ALIGN(out, T)                    \
            || !apart(y, y_stride, out, out_stride, rows, n, sizeof(T))                 \
            || !apart(dy, dy_stride, out, out_stride, rows, n, sizeof(T)))              \
            return SM_ERR_LAYOUT;                                                       \
        const name##_job job = {PICK_MASKED(use, name), y, dy, w, out,                  \
                                y_stride, dy_stride, w_stride, out_stride, n};          \
        sm_parallel_for(rows, (size_t)threads, name##_range, &job);                     \
        return use;                                                                     \
    }                                                                                   \
    int32_t sm_##name(const T *y, ptrdiff_t y_stride, const T *dy, ptrdiff_t dy_stride,  \
                      const uint8_t *w, ptrdiff_t w_stride, T *out, ptrdiff_t out_stride, \
                      size_t rows, size_t n, int32_t isa)                               \
    {                                                                                   \
        return sm_##name##_mt(y, y_stride, dy, dy_stride, w, w_stride, out, out_stride, \
                              rows, n, isa, 1);                                         \
    }
MASKED_VJP_ENTRY(softmax_vjp_masked_f32, float)
MASKED_VJP_ENTRY(softmax_vjp_masked_f64, double)
MASKED_VJP_ENTRY(log_softmax_vjp_masked_f32, float)
MASKED_VJP_ENTRY(log_softmax_vjp_masked_f64, double)

/* One value per row, out[r * out_stride]; w may be NULL (every entry); n may be
 * 0 (-inf per row). */
#define LSE_ENTRY(name, T)                                                              \
    MASKED_JOB(name, T, T, (const T *, const uint8_t *, size_t));                      \
    static void name##_range(const void *ctx, size_t first, size_t last)                \
    {                                                                                   \
        const name##_job *j = (const name##_job *)ctx;                                  \
        for (size_t r = first; r < last; ++r)                                           \
            j->out[(ptrdiff_t)r * j->so] =                                              \
                j->row(j->n ? j->a + (ptrdiff_t)r * j->sa : j->a,                       \
                       j->w ? j->w + (ptrdiff_t)r * j->sw : NULL, j->n);                \
    }                                                                                   \
    int32_t sm_##name##_mt(const T *x, ptrdiff_t x_stride, const uint8_t *w, ptrdiff_t w_stride, \
                           T *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa, \
                           int32_t threads)                                             \
    {                                                                                   \
        const int32_t use = resolve_masked(isa);                                        \
        if (use < 0)                                                                    \
            return use;                                                                 \
        if (threads < 1)                                                                \
            return SM_ERR_BAD_THREADS;                                                  \
        if (rows == 0)                                                                  \
            return use;                                                                 \
        if (out == NULL || (n > 0 && x == NULL))                                        \
            return SM_ERR_NULL;                                                         \
        if (!fits(rows, n, x_stride, sizeof(T)) || !fits(rows, 1, out_stride, sizeof(T)) \
            || (w != NULL && !fits(rows, n, w_stride, 1)))                              \
            return SM_ERR_SIZE;                                                         \
        if ((n > 0 && BAD_ALIGN(x, T)) || BAD_ALIGN(out, T)                             \
            || (n > 0 && !apart_widths(x, x_stride, n, out, out_stride, 1, rows, sizeof(T)))) \
            return SM_ERR_LAYOUT; /* out: one element per row */                         \
        const name##_job job = {PICK_MASKED(use, name), x, NULL, w, out,                \
                                x_stride, 0, w_stride, out_stride, n};                  \
        sm_parallel_for(rows, (size_t)threads, name##_range, &job);                     \
        return use;                                                                     \
    }                                                                                   \
    int32_t sm_##name(const T *x, ptrdiff_t x_stride, const uint8_t *w, ptrdiff_t w_stride, \
                      T *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa)   \
    {                                                                                   \
        return sm_##name##_mt(x, x_stride, w, w_stride, out, out_stride, rows, n, isa, 1); \
    }
LSE_ENTRY(logsumexp_f32, float)
LSE_ENTRY(logsumexp_f64, double)
