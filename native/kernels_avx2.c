/*
 * kernels_avx2.c -- per-row kernels with AVX2 + FMA, float32 and float64.
 *
 * Same passes as kernels_scalar.c. Only functions marked SM_AVX2 (target
 * attribute) contain AVX2 code, so this file compiles without -mavx2 and is
 * called only after dispatch.c has found AVX2 + FMA at run time.
 *
 * One tail strategy everywhere: full vectors with unaligned loads, then one
 * masked load/store for the last n % width elements (maskload reads nothing
 * outside the mask, so no row needs padding); rows shorter than one vector
 * have kernels of their own (see "short rows"). Masked-off lanes load 0 and are
 * kept out of every reduction. Long loops use four accumulators, to hide the
 * FP add latency. float32 sums add at most 4 vectors per lane in float, then
 * go on in double (flush_ps): their error does not grow with the row length.
 */
#include "kernels.h"

#if SM_HAVE_AVX2

#include <math.h>
#include <stdint.h>

#include "exp_avx2.h"

/* Loading 8 (4) lanes from mask32 + 8 - k (mask64 + 4 - k) gives k all-ones lanes. */
static const int32_t mask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static const int64_t mask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

SM_AVX2 static inline __m256i tail_ps(size_t k) { return _mm256_loadu_si256((const __m256i *)(mask32 + 8 - k)); }
SM_AVX2 static inline __m256i tail_pd(size_t k) { return _mm256_loadu_si256((const __m256i *)(mask64 + 4 - k)); }

SM_AVX2 static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

SM_AVX2 static inline float hmax_ps(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

SM_AVX2 static inline double hsum_pd(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

SM_AVX2 static inline double hmax_pd(__m256d v)
{
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)));
}

/* float32 sums go on in double, in blocks: each of the four float accumulators
 * takes at most FLUSH_VECTORS vectors, then flush_ps adds the four (two more
 * float roundings) and moves the 8 lanes into a double accumulator. A term of
 * the sum so meets at most 9 float roundings (7 in its lane, 2 combining),
 * whatever n: for terms of one sign the float part of the error is at most
 * 9u |sum| (u = 2^-24; an FMA dot product rounds its first product too: 10u),
 * and the double part about (n / 256) 2^-53 |sum|, negligible below 2^40
 * elements. (A float lane that kept the whole row would have an error growing
 * as n u, and stops growing at all past 2^24 terms of equal size.) The flush
 * costs 7 instructions per 256 elements; flushing every 4 vectors measured up
 * to 6% slower at 4096 x 1000, every 8 within the noise (about 2%). */
#define FLUSH_VECTORS 8
#define FLUSH_BLOCK (4 * FLUSH_VECTORS * 8)  /* floats per block: 4 accumulators */

SM_AVX2 static inline void flush_ps(__m256 *s0, __m256 *s1, __m256 *s2, __m256 *s3, __m256d *total)
{
    const __m256 s = _mm256_add_ps(_mm256_add_ps(*s0, *s1), _mm256_add_ps(*s2, *s3));
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(s));  /* exact */
    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(s, 1));
    *total = _mm256_add_pd(*total, _mm256_add_pd(lo, hi));
    *s0 = *s1 = *s2 = *s3 = _mm256_setzero_ps();
}

/* log-softmax counts the entries equal to the maximum in int32 lanes (adding
 * the all-ones compare masks, so the count is negative); moved into a double
 * accumulator at each flush, so no lane can overflow. */
SM_AVX2 static inline void flush_count(__m256i *c, __m256d *total)
{
    const __m256d lo = _mm256_cvtepi32_pd(_mm256_castsi256_si128(*c));
    const __m256d hi = _mm256_cvtepi32_pd(_mm256_extracti128_si256(*c, 1));
    *total = _mm256_sub_pd(*total, _mm256_add_pd(lo, hi));
    *c = _mm256_setzero_si256();
}

/* Rows of at least this many bytes (larger than the L1 cache) have the exp
 * pass prefetch the next row, so that the next max pass reads the cache, not
 * memory. Shorter rows gain nothing: the hardware prefetcher keeps up. */
#define PREFETCH_ROW_BYTES ((size_t)32 << 10)

/* Ask for the line `ahead` bytes from p (the next row's, at its real stride,
 * which may be negative) into the L2 cache; a prefetch never faults. */
SM_AVX2 static inline void prefetch_ahead(const void *p, ptrdiff_t ahead)
{
    _mm_prefetch((const char *)((uintptr_t)p + (uintptr_t)ahead), _MM_HINT_T1);
}

/* The prefetch distance for a row of `bytes`: `next` (0 for the last row) if the
 * row is long enough to gain from it, else 0. */
static inline ptrdiff_t prefetch_distance(size_t bytes, ptrdiff_t next)
{
    return bytes >= PREFETCH_ROW_BYTES ? next : 0;
}

/* Rows shorter than one vector (below, "short rows"): one masked load per
 * input, the row in registers, and plain stores of 4, 2 and 1 elements. */
SM_AVX2 static void softmax_short_f32(const float *x, float *out, size_t n);
SM_AVX2 static void log_softmax_short_f32(const float *x, float *out, size_t n);
SM_AVX2 static void softmax_vjp_short_f32(const float *y, const float *dy, float *out, size_t n);
SM_AVX2 static void log_softmax_vjp_short_f32(const float *y, const float *dy, float *out, size_t n);
SM_AVX2 static void softmax_short_f64(const double *x, double *out, size_t n);
SM_AVX2 static void log_softmax_short_f64(const double *x, double *out, size_t n);
SM_AVX2 static void softmax_vjp_short_f64(const double *y, const double *dy, double *out, size_t n);
SM_AVX2 static void log_softmax_vjp_short_f64(const double *y, const double *dy, double *out, size_t n);

/* ------------------------------------------------------------------ float32 */

/* The row maximum. A NaN may or may not survive max_ps; either way the row's
 * exp(x - max) has a NaN (exp keeps NaN), so the whole row becomes NaN. */
SM_AVX2 static float max_f32(const float *x, size_t n)
{
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
        m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
        m2 = _mm256_max_ps(m2, _mm256_loadu_ps(x + i + 16));
        m3 = _mm256_max_ps(m3, _mm256_loadu_ps(x + i + 24));
    }
    for (; i + 8 <= n; i += 8)
        m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    if (i < n) {
        const __m256i k = tail_ps(n - i);
        const __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, k), _mm256_castsi256_ps(k));
        m1 = _mm256_max_ps(m1, v);
    }
    return hmax_ps(_mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
}

/* sum(exp(x - m)); stores the terms in out when out != NULL. */
SM_AVX2 static double exp_sum_f32(const float *x, float m, float *out, size_t n, ptrdiff_t next)
{
    const __m256 vm = _mm256_set1_ps(m);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    __m256d total = _mm256_setzero_pd();
    const ptrdiff_t ahead = prefetch_distance(n * sizeof(float), next);
    size_t i = 0;
    while (i + 32 <= n) {  /* blocks of FLUSH_BLOCK, each flushed to double */
        const size_t stop = n - i > FLUSH_BLOCK ? i + FLUSH_BLOCK : n;
        for (; i + 32 <= stop; i += 32) {
            if (ahead) {  /* the same place in the next row, 2 lines */
                prefetch_ahead(x + i, ahead);
                prefetch_ahead(x + i + 16, ahead);
            }
            const __m256 e0 = sm_exp256_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
            const __m256 e1 = sm_exp256_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm));
            const __m256 e2 = sm_exp256_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 16), vm));
            const __m256 e3 = sm_exp256_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 24), vm));
            if (out) {
                _mm256_storeu_ps(out + i, e0);
                _mm256_storeu_ps(out + i + 8, e1);
                _mm256_storeu_ps(out + i + 16, e2);
                _mm256_storeu_ps(out + i + 24, e3);
            }
            s0 = _mm256_add_ps(s0, e0);
            s1 = _mm256_add_ps(s1, e1);
            s2 = _mm256_add_ps(s2, e2);
            s3 = _mm256_add_ps(s3, e3);
        }
        flush_ps(&s0, &s1, &s2, &s3, &total);
    }
    for (; i + 8 <= n; i += 8) {  /* at most 3 vectors */
        const __m256 e = sm_exp256_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        if (out)
            _mm256_storeu_ps(out + i, e);
        s0 = _mm256_add_ps(s0, e);
    }
    if (i < n) {
        const __m256i k = tail_ps(n - i);
        __m256 e = sm_exp256_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), vm));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(k));  /* exp(0 - m) of the empty lanes */
        if (out)
            _mm256_maskstore_ps(out + i, k, e);
        s1 = _mm256_add_ps(s1, e);
    }
    flush_ps(&s0, &s1, &s2, &s3, &total);
    return hsum_pd(total);
}

/* sum(exp(x - m)) over all but one maximum, storing x - m in out: the `rest`
 * of lse = m + log1p(rest) (kernels_scalar.c says why). Entries with x - m == 0
 * are kept out of the sum and counted instead; rest = sum + (count - 1). */
SM_AVX2 static double shifted_rest_f32(const float *x, float m, float *out, size_t n, ptrdiff_t next)
{
    const __m256 vm = _mm256_set1_ps(m), zero = _mm256_setzero_ps();
    __m256 s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    __m256i tops = _mm256_setzero_si256();
    __m256d total = _mm256_setzero_pd(), count = _mm256_setzero_pd();
    const ptrdiff_t ahead = prefetch_distance(n * sizeof(float), next);
/* exp(d) where d != 0, and the d == 0 lanes counted (as -1s) in tops */
#define SM_REST_PS(d, e)                                         \
    do {                                                         \
        const __m256 z = _mm256_cmp_ps(d, zero, _CMP_EQ_OQ);     \
        tops = _mm256_add_epi32(tops, _mm256_castps_si256(z));   \
        e = _mm256_andnot_ps(z, e);                              \
    } while (0)
    size_t i = 0;
    while (i + 32 <= n) {
        const size_t stop = n - i > FLUSH_BLOCK ? i + FLUSH_BLOCK : n;
        for (; i + 32 <= stop; i += 32) {
            if (ahead) {  /* the same place in the next row, 2 lines */
                prefetch_ahead(x + i, ahead);
                prefetch_ahead(x + i + 16, ahead);
            }
            const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
            const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
            const __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 16), vm);
            const __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 24), vm);
            __m256 e0 = sm_exp256_ps(d0), e1 = sm_exp256_ps(d1);
            __m256 e2 = sm_exp256_ps(d2), e3 = sm_exp256_ps(d3);
            SM_REST_PS(d0, e0);
            SM_REST_PS(d1, e1);
            SM_REST_PS(d2, e2);
            SM_REST_PS(d3, e3);
            _mm256_storeu_ps(out + i, d0);
            _mm256_storeu_ps(out + i + 8, d1);
            _mm256_storeu_ps(out + i + 16, d2);
            _mm256_storeu_ps(out + i + 24, d3);
            s0 = _mm256_add_ps(s0, e0);
            s1 = _mm256_add_ps(s1, e1);
            s2 = _mm256_add_ps(s2, e2);
            s3 = _mm256_add_ps(s3, e3);
        }
        flush_ps(&s0, &s1, &s2, &s3, &total);
        flush_count(&tops, &count);
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        __m256 e = sm_exp256_ps(d);
        SM_REST_PS(d, e);
        _mm256_storeu_ps(out + i, d);
        s0 = _mm256_add_ps(s0, e);
    }
    if (i < n) {
        const __m256i k = tail_ps(n - i);
        const __m256 d = _mm256_sub_ps(_mm256_maskload_ps(x + i, k), vm);
        /* the empty lanes: exp(0 - m) cleared, and 0 - m == 0 not counted */
        const __m256 z = _mm256_and_ps(_mm256_cmp_ps(d, zero, _CMP_EQ_OQ), _mm256_castsi256_ps(k));
        tops = _mm256_add_epi32(tops, _mm256_castps_si256(z));
        const __m256 e = _mm256_and_ps(_mm256_andnot_ps(z, sm_exp256_ps(d)), _mm256_castsi256_ps(k));
        _mm256_maskstore_ps(out + i, k, d);
        s1 = _mm256_add_ps(s1, e);
    }
#undef SM_REST_PS
    flush_ps(&s0, &s1, &s2, &s3, &total);
    flush_count(&tops, &count);
    return hsum_pd(total) + (hsum_pd(count) - 1.0);
}

SM_AVX2 void sm_avx2_softmax_f32(const float *x, float *out, size_t n, ptrdiff_t next)
{
    if (n < 8) {
        softmax_short_f32(x, out, n);
        return;
    }
    const float m = max_f32(x, n);
    const double sum = exp_sum_f32(x, m, out, n, next);
    const __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(out + i), inv));
    if (i < n) {
        const __m256i k = tail_ps(n - i);
        _mm256_maskstore_ps(out + i, k, _mm256_mul_ps(_mm256_maskload_ps(out + i, k), inv));
    }
}

SM_AVX2 void sm_avx2_log_softmax_f32(const float *x, float *out, size_t n, ptrdiff_t next)
{
    if (n < 8) {
        log_softmax_short_f32(x, out, n);
        return;
    }
    const float m = max_f32(x, n);
    /* x - m goes to out during the exp pass, whose arithmetic hides the
     * memory traffic; then (x - m) - log1p(rest), in that order: exact near the max */
    const __m256 vlse = _mm256_set1_ps((float)log1p(shifted_rest_f32(x, m, out, n, next)));
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_sub_ps(_mm256_loadu_ps(out + i), vlse));
    if (i < n) {
        const __m256i k = tail_ps(n - i);
        _mm256_maskstore_ps(out + i, k, _mm256_sub_ps(_mm256_maskload_ps(out + i, k), vlse));
    }
}

/* <y, dy> with four accumulators, flushed to double every FLUSH_BLOCK elements. */
SM_AVX2 static double dot_f32(const float *y, const float *dy, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    __m256d total = _mm256_setzero_pd();
    size_t i = 0;
    while (i + 32 <= n) {
        const size_t stop = n - i > FLUSH_BLOCK ? i + FLUSH_BLOCK : n;
        for (; i + 32 <= stop; i += 32) {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(dy + i), s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(y + i + 8), _mm256_loadu_ps(dy + i + 8), s1);
            s2 = _mm256_fmadd_ps(_mm256_loadu_ps(y + i + 16), _mm256_loadu_ps(dy + i + 16), s2);
            s3 = _mm256_fmadd_ps(_mm256_loadu_ps(y + i + 24), _mm256_loadu_ps(dy + i + 24), s3);
        }
        flush_ps(&s0, &s1, &s2, &s3, &total);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(dy + i), s0);
    if (i < n) {
        const __m256i k = tail_ps(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(y + i, k), _mm256_maskload_ps(dy + i, k), s1);
    }
    flush_ps(&s0, &s1, &s2, &s3, &total);
    return hsum_pd(total);
}

SM_AVX2 void sm_avx2_softmax_vjp_f32(const float *y, const float *dy, float *out, size_t n)
{
    if (n < 8) {
        softmax_vjp_short_f32(y, dy, out, n);
        return;
    }
    const __m256 dot = _mm256_set1_ps((float)dot_f32(y, dy, n));
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_sub_ps(_mm256_loadu_ps(dy + i), dot);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), g));
    }
    if (i < n) {
        const __m256i k = tail_ps(n - i);
        const __m256 g = _mm256_sub_ps(_mm256_maskload_ps(dy + i, k), dot);
        _mm256_maskstore_ps(out + i, k, _mm256_mul_ps(_mm256_maskload_ps(y + i, k), g));
    }
}

/* sum(dy) with four accumulators, flushed to double every FLUSH_BLOCK elements. */
SM_AVX2 static double sum_f32(const float *dy, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    __m256d total = _mm256_setzero_pd();
    size_t i = 0;
    while (i + 32 <= n) {
        const size_t stop = n - i > FLUSH_BLOCK ? i + FLUSH_BLOCK : n;
        for (; i + 32 <= stop; i += 32) {
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(dy + i));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(dy + i + 8));
            s2 = _mm256_add_ps(s2, _mm256_loadu_ps(dy + i + 16));
            s3 = _mm256_add_ps(s3, _mm256_loadu_ps(dy + i + 24));
        }
        flush_ps(&s0, &s1, &s2, &s3, &total);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(dy + i));
    if (i < n)
        s1 = _mm256_add_ps(s1, _mm256_maskload_ps(dy + i, tail_ps(n - i)));
    flush_ps(&s0, &s1, &s2, &s3, &total);
    return hsum_pd(total);
}

/* expm1(y) = exp(y) - 1 for 4 doubles, for the log-softmax VJP's top class
 * (kernels_scalar.c): where |y| <= ln 2, the Taylor series y (1 + y/2! + ... +
 * y^16/17!) by Horner's rule, whose truncation is below (ln 2)^17 / 18! < 1e-17
 * relative; elsewhere exp(y) - 1, which cannot cancel there (|exp(y) - 1| >= 1/2). */
SM_AVX2 static inline __m256d expm1_pd(__m256d y)
{
    static const double inv_fact[17] = {  /* 1/k!, k = 1..17 */
        1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
        1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0,
        1.0 / 87178291200.0, 1.0 / 1307674368000.0, 1.0 / 20922789888000.0,
        1.0 / 355687428096000.0};
    __m256d p = _mm256_set1_pd(inv_fact[16]);
    for (int k = 15; k >= 0; --k)
        p = _mm256_fmadd_pd(p, y, _mm256_set1_pd(inv_fact[k]));
    const __m256d taylor = _mm256_mul_pd(y, p);
    const __m256d small = _mm256_cmp_pd(_mm256_andnot_pd(_mm256_set1_pd(-0.0), y),
                                        _mm256_set1_pd(SM_LN2), _CMP_LE_OQ);
    if (_mm256_movemask_pd(small) == 0xF)
        return taylor;
    return _mm256_blendv_pd(_mm256_sub_pd(sm_exp256_pd(y), _mm256_set1_pd(1.0)), taylor, small);
}

/* expm1 for 8 floats, as expm1_pd with 9 terms (truncation (ln 2)^9 / 10! =
 * 1.0e-8 relative, below u = 6e-8) evaluated in float. */
SM_AVX2 static inline __m256 expm1_ps(__m256 y)
{
    static const float inv_fact[9] = {1.0f, 1.0f / 2, 1.0f / 6, 1.0f / 24, 1.0f / 120, 1.0f / 720,
                                       1.0f / 5040, 1.0f / 40320, 1.0f / 362880};
    __m256 p = _mm256_set1_ps(inv_fact[8]);
    for (int k = 7; k >= 0; --k)
        p = _mm256_fmadd_ps(p, y, _mm256_set1_ps(inv_fact[k]));
    const __m256 taylor = _mm256_mul_ps(y, p);
    const __m256 small = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), y),
                                       _mm256_set1_ps((float)SM_LN2), _CMP_LE_OQ);
    if (_mm256_movemask_ps(small) == 0xFF)
        return taylor;
    return _mm256_blendv_ps(_mm256_sub_ps(sm_exp256_ps(y), _mm256_set1_ps(1.0f)), taylor, small);
}

/* A masked load of y for the log-softmax VJP: -1 in the lanes outside the mask,
 * which are computed and never stored: 0 would take the top-class path, -inf
 * the slow path of exp (subnormal arithmetic, measured 3x slower at n = 10). */
SM_AVX2 static inline __m256 maskload_y_ps(const float *y, __m256i k)
{
    return _mm256_blendv_ps(_mm256_set1_ps(-1.0f), _mm256_maskload_ps(y, k), _mm256_castsi256_ps(k));
}

SM_AVX2 static inline __m256d maskload_y_pd(const double *y, __m256i k)
{
    return _mm256_blendv_pd(_mm256_set1_pd(-1.0), _mm256_maskload_pd(y, k), _mm256_castsi256_pd(k));
}

/* The lanes `top` of r replaced by (dy - T) - expm1(y) T; out of line, so that
 * the common loop keeps its registers. */
SM_AVX2 __attribute__((noinline)) static __m256 top_vjp_ps(__m256 y, __m256 dy, __m256 r, __m256 top, __m256 total)
{
    return _mm256_blendv_ps(r, _mm256_fnmadd_ps(expm1_ps(y), total, _mm256_sub_ps(dy, total)), top);
}

/* dy - exp(y) T for 8 lanes;
 * where y > -ln 2 (exp(y) > 1/2: at most one entry of a log-softmax row),
 * (dy - T) - expm1(y) T instead, which keeps the 1 - exp(y) that exp(y) rounds
 * away (kernels_scalar.c). */
SM_AVX2 static inline __m256 log_softmax_vjp_ps(__m256 y, __m256 dy, __m256 total)
{
    const __m256 r = _mm256_fnmadd_ps(sm_exp256_ps(y), total, dy);  /* exp(y) = softmax(x) */
    const __m256 top = _mm256_cmp_ps(y, _mm256_set1_ps((float)-SM_LN2), _CMP_GT_OQ);
    return _mm256_testz_ps(top, top) ? r : top_vjp_ps(y, dy, r, top, total);
}

SM_AVX2 void sm_avx2_log_softmax_vjp_f32(const float *y, const float *dy, float *out, size_t n)
{
    if (n < 8) {
        log_softmax_vjp_short_f32(y, dy, out, n);
        return;
    }
    const __m256 total = _mm256_set1_ps((float)sum_f32(dy, n));
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, log_softmax_vjp_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(dy + i), total));
    if (i < n) {
        const __m256i k = tail_ps(n - i);
        _mm256_maskstore_ps(out + i, k, log_softmax_vjp_ps(maskload_y_ps(y + i, k),
                                                           _mm256_maskload_ps(dy + i, k), total));
    }
}

SM_AVX2 void sm_avx2_exp_f32(const float *x, float *out, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, sm_exp256_ps(_mm256_loadu_ps(x + i)));
    if (i < n) {
        const __m256i k = tail_ps(n - i);
        _mm256_maskstore_ps(out + i, k, sm_exp256_ps(_mm256_maskload_ps(x + i, k)));
    }
}

/* ------------------------------------------------------------------ float64 */

SM_AVX2 static double max_f64(const double *x, size_t n)
{
    const __m256d ninf = _mm256_set1_pd(-INFINITY);
    __m256d m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        m0 = _mm256_max_pd(m0, _mm256_loadu_pd(x + i));
        m1 = _mm256_max_pd(m1, _mm256_loadu_pd(x + i + 4));
        m2 = _mm256_max_pd(m2, _mm256_loadu_pd(x + i + 8));
        m3 = _mm256_max_pd(m3, _mm256_loadu_pd(x + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        m0 = _mm256_max_pd(m0, _mm256_loadu_pd(x + i));
    if (i < n) {
        const __m256i k = tail_pd(n - i);
        const __m256d v = _mm256_blendv_pd(ninf, _mm256_maskload_pd(x + i, k), _mm256_castsi256_pd(k));
        m1 = _mm256_max_pd(m1, v);
    }
    return hmax_pd(_mm256_max_pd(_mm256_max_pd(m0, m1), _mm256_max_pd(m2, m3)));
}

SM_AVX2 static double exp_sum_f64(const double *x, double m, double *out, size_t n, ptrdiff_t next)
{
    const __m256d vm = _mm256_set1_pd(m);
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    const ptrdiff_t ahead = prefetch_distance(n * sizeof(double), next);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        if (ahead) {  /* the same place in the next row, 2 lines */
            prefetch_ahead(x + i, ahead);
            prefetch_ahead(x + i + 8, ahead);
        }
        const __m256d e0 = sm_exp256_pd(_mm256_sub_pd(_mm256_loadu_pd(x + i), vm));
        const __m256d e1 = sm_exp256_pd(_mm256_sub_pd(_mm256_loadu_pd(x + i + 4), vm));
        const __m256d e2 = sm_exp256_pd(_mm256_sub_pd(_mm256_loadu_pd(x + i + 8), vm));
        const __m256d e3 = sm_exp256_pd(_mm256_sub_pd(_mm256_loadu_pd(x + i + 12), vm));
        if (out) {
            _mm256_storeu_pd(out + i, e0);
            _mm256_storeu_pd(out + i + 4, e1);
            _mm256_storeu_pd(out + i + 8, e2);
            _mm256_storeu_pd(out + i + 12, e3);
        }
        s0 = _mm256_add_pd(s0, e0);
        s1 = _mm256_add_pd(s1, e1);
        s2 = _mm256_add_pd(s2, e2);
        s3 = _mm256_add_pd(s3, e3);
    }
    for (; i + 4 <= n; i += 4) {
        const __m256d e = sm_exp256_pd(_mm256_sub_pd(_mm256_loadu_pd(x + i), vm));
        if (out)
            _mm256_storeu_pd(out + i, e);
        s0 = _mm256_add_pd(s0, e);
    }
    if (i < n) {
        const __m256i k = tail_pd(n - i);
        __m256d e = sm_exp256_pd(_mm256_sub_pd(_mm256_maskload_pd(x + i, k), vm));
        e = _mm256_and_pd(e, _mm256_castsi256_pd(k));
        if (out)
            _mm256_maskstore_pd(out + i, k, e);
        s1 = _mm256_add_pd(s1, e);
    }
    return hsum_pd(_mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
}

/* sum(exp(x - m)), storing x - m in out. */
/* As shifted_rest_f32; double lanes need no flushing, and count in int64. */
SM_AVX2 static double shifted_rest_f64(const double *x, double m, double *out, size_t n, ptrdiff_t next)
{
    const __m256d vm = _mm256_set1_pd(m), zero = _mm256_setzero_pd();
    __m256d s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    __m256i tops = _mm256_setzero_si256();
    const ptrdiff_t ahead = prefetch_distance(n * sizeof(double), next);
#define SM_REST_PD(d, e)                                         \
    do {                                                         \
        const __m256d z = _mm256_cmp_pd(d, zero, _CMP_EQ_OQ);    \
        tops = _mm256_add_epi64(tops, _mm256_castpd_si256(z));   \
        e = _mm256_andnot_pd(z, e);                              \
    } while (0)
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        if (ahead) {  /* the same place in the next row, 2 lines */
            prefetch_ahead(x + i, ahead);
            prefetch_ahead(x + i + 8, ahead);
        }
        const __m256d d0 = _mm256_sub_pd(_mm256_loadu_pd(x + i), vm);
        const __m256d d1 = _mm256_sub_pd(_mm256_loadu_pd(x + i + 4), vm);
        const __m256d d2 = _mm256_sub_pd(_mm256_loadu_pd(x + i + 8), vm);
        const __m256d d3 = _mm256_sub_pd(_mm256_loadu_pd(x + i + 12), vm);
        __m256d e0 = sm_exp256_pd(d0), e1 = sm_exp256_pd(d1);
        __m256d e2 = sm_exp256_pd(d2), e3 = sm_exp256_pd(d3);
        SM_REST_PD(d0, e0);
        SM_REST_PD(d1, e1);
        SM_REST_PD(d2, e2);
        SM_REST_PD(d3, e3);
        _mm256_storeu_pd(out + i, d0);
        _mm256_storeu_pd(out + i + 4, d1);
        _mm256_storeu_pd(out + i + 8, d2);
        _mm256_storeu_pd(out + i + 12, d3);
        s0 = _mm256_add_pd(s0, e0);
        s1 = _mm256_add_pd(s1, e1);
        s2 = _mm256_add_pd(s2, e2);
        s3 = _mm256_add_pd(s3, e3);
    }
    for (; i + 4 <= n; i += 4) {
        const __m256d d = _mm256_sub_pd(_mm256_loadu_pd(x + i), vm);
        __m256d e = sm_exp256_pd(d);
        SM_REST_PD(d, e);
        _mm256_storeu_pd(out + i, d);
        s0 = _mm256_add_pd(s0, e);
    }
    if (i < n) {
        const __m256i k = tail_pd(n - i);
        const __m256d d = _mm256_sub_pd(_mm256_maskload_pd(x + i, k), vm);
        const __m256d z = _mm256_and_pd(_mm256_cmp_pd(d, zero, _CMP_EQ_OQ), _mm256_castsi256_pd(k));
        tops = _mm256_add_epi64(tops, _mm256_castpd_si256(z));
        const __m256d e = _mm256_and_pd(_mm256_andnot_pd(z, sm_exp256_pd(d)), _mm256_castsi256_pd(k));
        _mm256_maskstore_pd(out + i, k, d);
        s1 = _mm256_add_pd(s1, e);
    }
#undef SM_REST_PD
    int64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, tops);
    const double count = -(double)(lanes[0] + lanes[1] + lanes[2] + lanes[3]);
    return hsum_pd(_mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3))) + (count - 1.0);
}

SM_AVX2 void sm_avx2_softmax_f64(const double *x, double *out, size_t n, ptrdiff_t next)
{
    if (n < 4) {
        softmax_short_f64(x, out, n);
        return;
    }
    const double m = max_f64(x, n);
    const double sum = exp_sum_f64(x, m, out, n, next);
    const __m256d inv = _mm256_set1_pd(1.0 / sum);
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        _mm256_storeu_pd(out + i, _mm256_mul_pd(_mm256_loadu_pd(out + i), inv));
    if (i < n) {
        const __m256i k = tail_pd(n - i);
        _mm256_maskstore_pd(out + i, k, _mm256_mul_pd(_mm256_maskload_pd(out + i, k), inv));
    }
}

SM_AVX2 void sm_avx2_log_softmax_f64(const double *x, double *out, size_t n, ptrdiff_t next)
{
    if (n < 4) {
        log_softmax_short_f64(x, out, n);
        return;
    }
    const double m = max_f64(x, n);
    const __m256d vlse = _mm256_set1_pd(log1p(shifted_rest_f64(x, m, out, n, next)));
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        _mm256_storeu_pd(out + i, _mm256_sub_pd(_mm256_loadu_pd(out + i), vlse));
    if (i < n) {
        const __m256i k = tail_pd(n - i);
        _mm256_maskstore_pd(out + i, k, _mm256_sub_pd(_mm256_maskload_pd(out + i, k), vlse));
    }
}

/* <y, dy> with four accumulators. */
SM_AVX2 static double dot_f64(const double *y, const double *dy, size_t n)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_pd(_mm256_loadu_pd(y + i), _mm256_loadu_pd(dy + i), s0);
        s1 = _mm256_fmadd_pd(_mm256_loadu_pd(y + i + 4), _mm256_loadu_pd(dy + i + 4), s1);
        s2 = _mm256_fmadd_pd(_mm256_loadu_pd(y + i + 8), _mm256_loadu_pd(dy + i + 8), s2);
        s3 = _mm256_fmadd_pd(_mm256_loadu_pd(y + i + 12), _mm256_loadu_pd(dy + i + 12), s3);
    }
    for (; i + 4 <= n; i += 4)
        s0 = _mm256_fmadd_pd(_mm256_loadu_pd(y + i), _mm256_loadu_pd(dy + i), s0);
    if (i < n) {
        const __m256i k = tail_pd(n - i);
        s1 = _mm256_fmadd_pd(_mm256_maskload_pd(y + i, k), _mm256_maskload_pd(dy + i, k), s1);
    }
    return hsum_pd(_mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
}

SM_AVX2 void sm_avx2_softmax_vjp_f64(const double *y, const double *dy, double *out, size_t n)
{
    if (n < 4) {
        softmax_vjp_short_f64(y, dy, out, n);
        return;
    }
    const __m256d dot = _mm256_set1_pd(dot_f64(y, dy, n));
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const __m256d g = _mm256_sub_pd(_mm256_loadu_pd(dy + i), dot);
        _mm256_storeu_pd(out + i, _mm256_mul_pd(_mm256_loadu_pd(y + i), g));
    }
    if (i < n) {
        const __m256i k = tail_pd(n - i);
        const __m256d g = _mm256_sub_pd(_mm256_maskload_pd(dy + i, k), dot);
        _mm256_maskstore_pd(out + i, k, _mm256_mul_pd(_mm256_maskload_pd(y + i, k), g));
    }
}

/* sum(dy) with four accumulators. */
SM_AVX2 static double sum_f64(const double *dy, size_t n)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_add_pd(s0, _mm256_loadu_pd(dy + i));
        s1 = _mm256_add_pd(s1, _mm256_loadu_pd(dy + i + 4));
        s2 = _mm256_add_pd(s2, _mm256_loadu_pd(dy + i + 8));
        s3 = _mm256_add_pd(s3, _mm256_loadu_pd(dy + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        s0 = _mm256_add_pd(s0, _mm256_loadu_pd(dy + i));
    if (i < n)
        s1 = _mm256_add_pd(s1, _mm256_maskload_pd(dy + i, tail_pd(n - i)));
    return hsum_pd(_mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
}

/* As top_vjp_ps, for 4 doubles. */
SM_AVX2 __attribute__((noinline)) static __m256d top_vjp_pd(__m256d y, __m256d dy, __m256d r, __m256d top, __m256d total)
{
    return _mm256_blendv_pd(r, _mm256_fnmadd_pd(expm1_pd(y), total, _mm256_sub_pd(dy, total)), top);
}

/* As log_softmax_vjp_ps, for 4 doubles. */
SM_AVX2 static inline __m256d log_softmax_vjp_pd(__m256d y, __m256d dy, __m256d total)
{
    const __m256d r = _mm256_fnmadd_pd(sm_exp256_pd(y), total, dy);
    const __m256d top = _mm256_cmp_pd(y, _mm256_set1_pd(-SM_LN2), _CMP_GT_OQ);
    return _mm256_testz_pd(top, top) ? r : top_vjp_pd(y, dy, r, top, total);
}

SM_AVX2 void sm_avx2_log_softmax_vjp_f64(const double *y, const double *dy, double *out, size_t n)
{
    if (n < 4) {
        log_softmax_vjp_short_f64(y, dy, out, n);
        return;
    }
    const __m256d total = _mm256_set1_pd(sum_f64(dy, n));
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        _mm256_storeu_pd(out + i, log_softmax_vjp_pd(_mm256_loadu_pd(y + i), _mm256_loadu_pd(dy + i), total));
    if (i < n) {
        const __m256i k = tail_pd(n - i);
        _mm256_maskstore_pd(out + i, k, log_softmax_vjp_pd(maskload_y_pd(y + i, k),
                                                           _mm256_maskload_pd(dy + i, k), total));
    }
}

SM_AVX2 void sm_avx2_exp_f64(const double *x, double *out, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        _mm256_storeu_pd(out + i, sm_exp256_pd(_mm256_loadu_pd(x + i)));
    if (i < n) {
        const __m256i k = tail_pd(n - i);
        _mm256_maskstore_pd(out + i, k, sm_exp256_pd(_mm256_maskload_pd(x + i, k)));
    }
}

/* -------------------------------------------------- along an inner axis */

/* The four functions along the middle axis of a C-contiguous (n, inner) slice,
 * one block of columns at a time (kernels.h; dispatch.c picks the block width):
 * as ATen does for a dim other than the last, one column per lane, each pass
 * walking down the n rows, so no transposing copy is needed. The arithmetic is
 * the row kernels' with a column in place of a row: the float32 sums go to
 * double every 8 rows (as flush_ps: at most 9 float roundings per term,
 * whatever n), log-softmax counts each column's maxima as shifted_rest_f32
 * does, and the log-softmax VJP takes the expm1 path for its top class. Only
 * the passes differ for log-softmax, which keeps a running maximum so as to
 * read a block twice, not three times (below). Empty
 * lanes of the last vector are masked off every load, store and sum. out may be
 * x (y, dy) itself: every pass that writes element (i, j) reads no other
 * element after it. No software prefetch: with runs of a whole block per row
 * the hardware prefetchers keep up, and asking for the lines 8 rows ahead made
 * every function slower (dispatch.c has the measurements). */
#define INNER_VECS (SM_INNER_MAX_COLS / 8)
#define INNER_VECS_PD (SM_INNER_MAX_COLS / 4)

/* float32 softmax in three passes, as the row kernel: the maxima; the exp
 * terms and their sums, storing the terms; then the product with 1/sum, in
 * place. (The two-pass form of log-softmax below, which has to compute the
 * exp again in its second pass here, measured 1.55 -> 1.8x the axis -1 time:
 * exp, not memory, bounds that pass.) */
SM_AVX2 static void inner_softmax_f32(const float *x, float *out, size_t n, size_t inner, size_t width)
{
    const size_t vecs = (width + 7) / 8, last = width - 8 * (vecs - 1);  /* last: 1..8 lanes */
    const size_t full = last == 8 ? vecs : vecs - 1;  /* vectors without a mask */
    const __m256i mask = tail_ps(last);
    const __m256 zero = _mm256_setzero_ps(), ones = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    __m256 m[INNER_VECS], s[INNER_VECS], f[INNER_VECS];
    __m256d lo[INNER_VECS], hi[INNER_VECS];
/* the exp pass for vector v of row `row`, with `load`, `store` and `valid` */
#define EXP_STEP(v, load, store, valid)                                                \
    do {                                                                               \
        const __m256 d = _mm256_sub_ps(load(row + 8 * (v)), m[v]);                     \
        const __m256 e = _mm256_and_ps(sm_exp256_ps(d), valid);                        \
        store(orow + 8 * (v), e);                                                      \
        s[v] = _mm256_add_ps(s[v], e);                                                 \
    } while (0)
#define MLOAD(p) _mm256_maskload_ps(p, mask)
#define MSTORE(p, val) _mm256_maskstore_ps(p, mask, val)
    for (size_t v = 0; v < vecs; ++v) {
        m[v] = _mm256_set1_ps(-INFINITY);
        s[v] = zero;
        lo[v] = hi[v] = _mm256_setzero_pd();
    }
    for (size_t i = 0; i < n; ++i) {
        const float *row = x + i * inner;
        for (size_t v = 0; v < full; ++v)
            m[v] = _mm256_max_ps(m[v], _mm256_loadu_ps(row + 8 * v));
        if (full < vecs)
            m[full] = _mm256_max_ps(m[full], MLOAD(row + 8 * full));
    }
    if (full < vecs)  /* empty lanes: 0, so that d = 0 there */
        m[full] = _mm256_and_ps(m[full], _mm256_castsi256_ps(mask));
    for (size_t i = 0; i < n; ++i) {
        const float *row = x + i * inner;
        float *orow = out + i * inner;
        for (size_t v = 0; v < full; ++v)
            EXP_STEP(v, _mm256_loadu_ps, _mm256_storeu_ps, ones);
        if (full < vecs)
            EXP_STEP(full, MLOAD, MSTORE, _mm256_castsi256_ps(mask));
        if ((i & 7) == 7 || i + 1 == n) {  /* the float sums to double, every 8 rows */
            for (size_t v = 0; v < vecs; ++v) {
                lo[v] = _mm256_add_pd(lo[v], _mm256_cvtps_pd(_mm256_castps256_ps128(s[v])));
                hi[v] = _mm256_add_pd(hi[v], _mm256_cvtps_pd(_mm256_extractf128_ps(s[v], 1)));
                s[v] = zero;
            }
        }
    }
    for (size_t v = 0; v < vecs; ++v) {  /* per column: 1/sum */
        double sums[8];
        float lane[8];
        _mm256_storeu_pd(sums, lo[v]);
        _mm256_storeu_pd(sums + 4, hi[v]);
        for (int j = 0; j < 8; ++j)
            lane[j] = (float)(1.0 / sums[j]);
        f[v] = _mm256_loadu_ps(lane);
    }
    for (size_t i = 0; i < n; ++i) {
        float *orow = out + i * inner;
        for (size_t v = 0; v < full; ++v)
            _mm256_storeu_ps(orow + 8 * v, _mm256_mul_ps(_mm256_loadu_ps(orow + 8 * v), f[v]));
        if (full < vecs)
            MSTORE(orow + 8 * full, _mm256_mul_ps(MLOAD(orow + 8 * full), f[full]));
    }
#undef EXP_STEP
#undef MLOAD
#undef MSTORE
}

SM_AVX2 void sm_avx2_softmax_inner_f32(const float *x, float *out, size_t n, size_t inner, size_t width)
{
    inner_softmax_f32(x, out, n, inner, width);
}

/* float32 log-softmax in two passes over a block, where the row kernel takes
 * three over a row: the first reads x once and keeps, per column, a running
 * maximum M, the sum S (in double) of exp(x - M) over the entries below M, and
 * the count C of entries equal to M, 8 rows at a time: the maximum of M and the
 * 8 rows first; where it grew, S = (S + C) exp(M_old - M) (in double, so that
 * a column that keeps growing adds about 2^-52 per rescale) and C = 0; then the
 * 8 rows' exp(x - M), summed in float and moved to S: at most 9 float
 * roundings per term, as the row kernels. Entries with x - M == 0 are counted
 * and kept out of the sum as in shifted_rest_f32, and only a chunk that holds
 * its column's running maximum pays for that. The second pass writes
 * (x - m) - log1p(S + C - 1), the row kernel's operations in its order. The
 * three-pass form (maxima; exp, storing x - m; subtracting in place) reads and
 * writes the output block once more: at 1024 x 4096 float32 in a C driver,
 * axis 0 over axis -1 went 1.52-1.79 -> 1.38-1.47, and float64 1.55 -> 1.39
 * (CHANGELOG). Chunks of 4 or 16 rows measured slower than 8. A NaN anywhere in a
 * column makes S NaN (the maximum may drop it, x - M does not), and +inf makes
 * x - M NaN at itself, as in the row kernel. */

/* One vector of columns over one chunk of `rows` (<= 8) rows at p (row stride
 * `inner`): the running maximum *m, the sums *lo, *hi and the counts *clo,
 * *chi of its two halves. `rows` and `masked` are constants where it is
 * inlined: the compiler unrolls the rows, and only the last vector of a block
 * pays for the mask. */
SM_AVX2 static inline void online_chunk_ps(const float *p, size_t inner, size_t rows, int masked,
                                           __m256i mask, __m256 *m, __m256d *lo, __m256d *hi,
                                           __m256d *clo, __m256d *chi)
{
    const __m256 zero = _mm256_setzero_ps(), valid = _mm256_castsi256_ps(mask);
#define LOAD_ROW(r) (masked ? _mm256_maskload_ps(p + (r) * inner, mask) : _mm256_loadu_ps(p + (r) * inner))
    __m256 top = _mm256_set1_ps(-INFINITY);  /* the chunk's maximum */
    for (size_t r = 0; r < rows; ++r)
        top = _mm256_max_ps(top, LOAD_ROW(r));
    const __m256 cm = _mm256_max_ps(*m, top);
    const __m256 grew = _mm256_cmp_ps(cm, *m, _CMP_NEQ_UQ);
    if (_mm256_movemask_ps(grew)) {  /* S = (S + C) exp(M_old - M), C = 0, where M grew */
        const __m256i g = _mm256_castps_si256(grew);
        const __m256d glo = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(g)));
        const __m256d ghi = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(g, 1)));
        const __m256d flo = sm_exp256_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(*m)),
                                                       _mm256_cvtps_pd(_mm256_castps256_ps128(cm))));
        const __m256d fhi = sm_exp256_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(*m, 1)),
                                                       _mm256_cvtps_pd(_mm256_extractf128_ps(cm, 1))));
        *lo = _mm256_blendv_pd(*lo, _mm256_mul_pd(_mm256_add_pd(*lo, *clo), flo), glo);
        *hi = _mm256_blendv_pd(*hi, _mm256_mul_pd(_mm256_add_pd(*hi, *chi), fhi), ghi);
        *clo = _mm256_andnot_pd(glo, *clo);
        *chi = _mm256_andnot_pd(ghi, *chi);
    }
    *m = cm;
    __m256 s = zero;
    __m256 has_top = _mm256_cmp_ps(top, cm, _CMP_EQ_OQ);  /* some x - M == 0 in the chunk */
    if (masked)
        has_top = _mm256_and_ps(has_top, valid);
    if (_mm256_movemask_ps(has_top)) {  /* count those lanes, keep them out of s */
        __m256i tops = _mm256_setzero_si256();
        for (size_t r = 0; r < rows; ++r) {
            const __m256 d = _mm256_sub_ps(LOAD_ROW(r), cm);
            __m256 z = _mm256_cmp_ps(d, zero, _CMP_EQ_OQ), e = sm_exp256_ps(d);
            if (masked) {
                z = _mm256_and_ps(z, valid);
                e = _mm256_and_ps(e, valid);
            }
            tops = _mm256_add_epi32(tops, _mm256_castps_si256(z));
            s = _mm256_add_ps(s, _mm256_andnot_ps(z, e));
        }
        *clo = _mm256_sub_pd(*clo, _mm256_cvtepi32_pd(_mm256_castsi256_si128(tops)));
        *chi = _mm256_sub_pd(*chi, _mm256_cvtepi32_pd(_mm256_extracti128_si256(tops, 1)));
    } else {  /* the usual chunk, without the maximum: every x - M < 0 (or NaN) */
        for (size_t r = 0; r < rows; ++r) {
            const __m256 e = sm_exp256_ps(_mm256_sub_ps(LOAD_ROW(r), cm));
            s = _mm256_add_ps(s, masked ? _mm256_and_ps(e, valid) : e);
        }
    }
#undef LOAD_ROW
    *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(s)));
    *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps(s, 1)));
}

SM_AVX2 void sm_avx2_log_softmax_inner_f32(const float *x, float *out, size_t n, size_t inner, size_t width)
{
    const size_t vecs = (width + 7) / 8, last = width - 8 * (vecs - 1);  /* last: 1..8 lanes */
    const size_t full = last == 8 ? vecs : vecs - 1;  /* vectors without a mask */
    const __m256i mask = tail_ps(last), all = _mm256_set1_epi32(-1);
    __m256 m[INNER_VECS], f[INNER_VECS];
    __m256d lo[INNER_VECS], hi[INNER_VECS], clo[INNER_VECS], chi[INNER_VECS];
    for (size_t v = 0; v < vecs; ++v) {
        m[v] = _mm256_set1_ps(-INFINITY);
        lo[v] = hi[v] = clo[v] = chi[v] = _mm256_setzero_pd();
    }
    for (size_t i0 = 0; i0 < n; i0 += 8) {
        const float *chunk = x + i0 * inner;
        if (n - i0 >= 8)  /* 8: a constant, unrolled */
            for (size_t v = 0; v < full; ++v)
                online_chunk_ps(chunk + 8 * v, inner, 8, 0, all, &m[v], &lo[v], &hi[v], &clo[v],
                                &chi[v]);
        else
            for (size_t v = 0; v < full; ++v)
                online_chunk_ps(chunk + 8 * v, inner, n - i0, 0, all, &m[v], &lo[v], &hi[v],
                                &clo[v], &chi[v]);
        if (full < vecs)
            online_chunk_ps(chunk + 8 * full, inner, n - i0 < 8 ? n - i0 : 8, 1, mask, &m[full],
                            &lo[full], &hi[full], &clo[full], &chi[full]);
    }
    for (size_t v = 0; v < vecs; ++v) {  /* per column: log1p(rest) */
        double sums[8], counts[8];
        float lane[8];
        _mm256_storeu_pd(sums, lo[v]);
        _mm256_storeu_pd(sums + 4, hi[v]);
        _mm256_storeu_pd(counts, clo[v]);
        _mm256_storeu_pd(counts + 4, chi[v]);
        for (int j = 0; j < 8; ++j)
            lane[j] = (float)log1p(sums[j] + (counts[j] - 1.0));
        f[v] = _mm256_loadu_ps(lane);
    }
    for (size_t i = 0; i < n; ++i) {  /* (x - m) - log1p(rest) */
        const float *row = x + i * inner;
        float *orow = out + i * inner;
        for (size_t v = 0; v < full; ++v)
            _mm256_storeu_ps(orow + 8 * v, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(row + 8 * v), m[v]), f[v]));
        if (full < vecs) {
            const __m256 d = _mm256_sub_ps(_mm256_maskload_ps(row + 8 * full, mask), m[full]);
            _mm256_maskstore_ps(orow + 8 * full, mask, _mm256_sub_ps(d, f[full]));
        }
    }
}

/* As inner_softmax_f32 for 4 doubles a vector (the sums need no flushing). */
SM_AVX2 static void inner_softmax_f64(const double *x, double *out, size_t n, size_t inner, size_t width)
{
    const size_t vecs = (width + 3) / 4, last = width - 4 * (vecs - 1);  /* last: 1..4 lanes */
    const size_t full = last == 4 ? vecs : vecs - 1;
    const __m256i mask = tail_pd(last);
    const __m256d zero = _mm256_setzero_pd(), ones = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
    __m256d m[INNER_VECS_PD], s[INNER_VECS_PD];
#define EXP_STEP(v, load, store, valid)                                                \
    do {                                                                               \
        const __m256d d = _mm256_sub_pd(load(row + 4 * (v)), m[v]);                    \
        const __m256d e = _mm256_and_pd(sm_exp256_pd(d), valid);                       \
        store(orow + 4 * (v), e);                                                      \
        s[v] = _mm256_add_pd(s[v], e);                                                 \
    } while (0)
#define MLOAD(p) _mm256_maskload_pd(p, mask)
#define MSTORE(p, val) _mm256_maskstore_pd(p, mask, val)
    for (size_t v = 0; v < vecs; ++v) {
        m[v] = _mm256_set1_pd(-INFINITY);
        s[v] = zero;
    }
    for (size_t i = 0; i < n; ++i) {
        const double *row = x + i * inner;
        for (size_t v = 0; v < full; ++v)
            m[v] = _mm256_max_pd(m[v], _mm256_loadu_pd(row + 4 * v));
        if (full < vecs)
            m[full] = _mm256_max_pd(m[full], MLOAD(row + 4 * full));
    }
    if (full < vecs)
        m[full] = _mm256_and_pd(m[full], _mm256_castsi256_pd(mask));
    for (size_t i = 0; i < n; ++i) {
        const double *row = x + i * inner;
        double *orow = out + i * inner;
        for (size_t v = 0; v < full; ++v)
            EXP_STEP(v, _mm256_loadu_pd, _mm256_storeu_pd, ones);
        if (full < vecs)
            EXP_STEP(full, MLOAD, MSTORE, _mm256_castsi256_pd(mask));
    }
    for (size_t v = 0; v < vecs; ++v)  /* per column: 1/sum */
        s[v] = _mm256_div_pd(_mm256_set1_pd(1.0), s[v]);
    for (size_t i = 0; i < n; ++i) {
        double *orow = out + i * inner;
        for (size_t v = 0; v < full; ++v)
            _mm256_storeu_pd(orow + 4 * v, _mm256_mul_pd(_mm256_loadu_pd(orow + 4 * v), s[v]));
        if (full < vecs)
            MSTORE(orow + 4 * full, _mm256_mul_pd(MLOAD(orow + 4 * full), s[full]));
    }
#undef EXP_STEP
#undef MLOAD
#undef MSTORE
}

SM_AVX2 void sm_avx2_softmax_inner_f64(const double *x, double *out, size_t n, size_t inner, size_t width)
{
    inner_softmax_f64(x, out, n, inner, width);
}

/* As online_chunk_ps for 4 doubles a vector: the terms are summed in double
 * directly, and the maxima counted in double lanes (exact below 2^53). */
SM_AVX2 static inline void online_chunk_pd(const double *p, size_t inner, size_t rows, int masked,
                                           __m256i mask, __m256d *m, __m256d *s, __m256d *c)
{
    const __m256d zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0), valid = _mm256_castsi256_pd(mask);
#define LOAD_ROW(r) (masked ? _mm256_maskload_pd(p + (r) * inner, mask) : _mm256_loadu_pd(p + (r) * inner))
    __m256d top = _mm256_set1_pd(-INFINITY);
    for (size_t r = 0; r < rows; ++r)
        top = _mm256_max_pd(top, LOAD_ROW(r));
    const __m256d cm = _mm256_max_pd(*m, top);
    const __m256d grew = _mm256_cmp_pd(cm, *m, _CMP_NEQ_UQ);
    if (_mm256_movemask_pd(grew)) {  /* S = (S + C) exp(M_old - M), C = 0, where M grew */
        const __m256d f = sm_exp256_pd(_mm256_sub_pd(*m, cm));
        *s = _mm256_blendv_pd(*s, _mm256_mul_pd(_mm256_add_pd(*s, *c), f), grew);
        *c = _mm256_andnot_pd(grew, *c);
    }
    *m = cm;
    __m256d has_top = _mm256_cmp_pd(top, cm, _CMP_EQ_OQ);
    if (masked)
        has_top = _mm256_and_pd(has_top, valid);
    __m256d sum = *s;
    if (_mm256_movemask_pd(has_top)) {
        __m256d count = *c;
        for (size_t r = 0; r < rows; ++r) {
            const __m256d d = _mm256_sub_pd(LOAD_ROW(r), cm);
            __m256d z = _mm256_cmp_pd(d, zero, _CMP_EQ_OQ), e = sm_exp256_pd(d);
            if (masked) {
                z = _mm256_and_pd(z, valid);
                e = _mm256_and_pd(e, valid);
            }
            count = _mm256_add_pd(count, _mm256_and_pd(z, one));
            sum = _mm256_add_pd(sum, _mm256_andnot_pd(z, e));
        }
        *c = count;
    } else {
        for (size_t r = 0; r < rows; ++r) {
            const __m256d e = sm_exp256_pd(_mm256_sub_pd(LOAD_ROW(r), cm));
            sum = _mm256_add_pd(sum, masked ? _mm256_and_pd(e, valid) : e);
        }
    }
#undef LOAD_ROW
    *s = sum;
}

/* As sm_avx2_log_softmax_inner_f32, for 4 doubles a vector. */
SM_AVX2 void sm_avx2_log_softmax_inner_f64(const double *x, double *out, size_t n, size_t inner, size_t width)
{
    const size_t vecs = (width + 3) / 4, last = width - 4 * (vecs - 1);  /* last: 1..4 lanes */
    const size_t full = last == 4 ? vecs : vecs - 1;
    const __m256i mask = tail_pd(last), all = _mm256_set1_epi64x(-1);
    __m256d m[INNER_VECS_PD], s[INNER_VECS_PD], c[INNER_VECS_PD];
    for (size_t v = 0; v < vecs; ++v) {
        m[v] = _mm256_set1_pd(-INFINITY);
        s[v] = c[v] = _mm256_setzero_pd();
    }
    for (size_t i0 = 0; i0 < n; i0 += 8) {
        const double *chunk = x + i0 * inner;
        if (n - i0 >= 8)  /* 8: a constant, unrolled */
            for (size_t v = 0; v < full; ++v)
                online_chunk_pd(chunk + 4 * v, inner, 8, 0, all, &m[v], &s[v], &c[v]);
        else
            for (size_t v = 0; v < full; ++v)
                online_chunk_pd(chunk + 4 * v, inner, n - i0, 0, all, &m[v], &s[v], &c[v]);
        if (full < vecs)
            online_chunk_pd(chunk + 4 * full, inner, n - i0 < 8 ? n - i0 : 8, 1, mask, &m[full], &s[full],
                            &c[full]);
    }
    for (size_t v = 0; v < vecs; ++v) {  /* per column: log1p(rest) */
        double sums[4], counts[4];
        _mm256_storeu_pd(sums, s[v]);
        _mm256_storeu_pd(counts, c[v]);
        for (int j = 0; j < 4; ++j)
            sums[j] = log1p(sums[j] + (counts[j] - 1.0));
        s[v] = _mm256_loadu_pd(sums);
    }
    for (size_t i = 0; i < n; ++i) {  /* (x - m) - log1p(rest) */
        const double *row = x + i * inner;
        double *orow = out + i * inner;
        for (size_t v = 0; v < full; ++v)
            _mm256_storeu_pd(orow + 4 * v, _mm256_sub_pd(_mm256_sub_pd(_mm256_loadu_pd(row + 4 * v), m[v]), s[v]));
        if (full < vecs) {
            const __m256d d = _mm256_sub_pd(_mm256_maskload_pd(row + 4 * full, mask), m[full]);
            _mm256_maskstore_pd(orow + 4 * full, mask, _mm256_sub_pd(d, s[full]));
        }
    }
}

/* The VJPs: per column <y, dy> (take_log = 0) or sum(dy) (take_log = 1) down
 * the rows, float32 flushed to double every 8 rows; then y (dy - dot), or
 * log_softmax_vjp_ps (with its top-class expm1 path), row by row. */
SM_AVX2 static inline void inner_vjp_block_f32(const float *y, const float *dy, float *out, size_t n,
                                               size_t inner, size_t width, int take_log)
{
    const size_t vecs = (width + 7) / 8, last = width - 8 * (vecs - 1);
    const size_t full = last == 8 ? vecs : vecs - 1;
    const __m256i mask = tail_ps(last);
    const __m256 zero = _mm256_setzero_ps();
    __m256 s[INNER_VECS], f[INNER_VECS];
    __m256d lo[INNER_VECS], hi[INNER_VECS];
    for (size_t v = 0; v < vecs; ++v) {
        s[v] = zero;
        lo[v] = hi[v] = _mm256_setzero_pd();
    }
    for (size_t i = 0; i < n; ++i) {
        const float *yr = y + i * inner, *dr = dy + i * inner;
        if (take_log) {
            for (size_t v = 0; v < full; ++v)
                s[v] = _mm256_add_ps(s[v], _mm256_loadu_ps(dr + 8 * v));
            if (full < vecs)
                s[full] = _mm256_add_ps(s[full], _mm256_maskload_ps(dr + 8 * full, mask));
        } else {
            for (size_t v = 0; v < full; ++v)
                s[v] = _mm256_fmadd_ps(_mm256_loadu_ps(yr + 8 * v), _mm256_loadu_ps(dr + 8 * v), s[v]);
            if (full < vecs)
                s[full] = _mm256_fmadd_ps(_mm256_maskload_ps(yr + 8 * full, mask),
                                          _mm256_maskload_ps(dr + 8 * full, mask), s[full]);
        }
        if ((i & 7) == 7 || i + 1 == n) {  /* the float sums to double, every 8 rows */
            for (size_t v = 0; v < vecs; ++v) {
                lo[v] = _mm256_add_pd(lo[v], _mm256_cvtps_pd(_mm256_castps256_ps128(s[v])));
                hi[v] = _mm256_add_pd(hi[v], _mm256_cvtps_pd(_mm256_extractf128_ps(s[v], 1)));
                s[v] = zero;
            }
        }
    }
    for (size_t v = 0; v < vecs; ++v)  /* the sums rounded to float, as the row kernels' */
        f[v] = _mm256_set_m128(_mm256_cvtpd_ps(hi[v]), _mm256_cvtpd_ps(lo[v]));
    for (size_t i = 0; i < n; ++i) {
        const float *yr = y + i * inner, *dr = dy + i * inner;
        float *orow = out + i * inner;
        if (take_log) {
            for (size_t v = 0; v < full; ++v)
                _mm256_storeu_ps(orow + 8 * v, log_softmax_vjp_ps(_mm256_loadu_ps(yr + 8 * v),
                                                                  _mm256_loadu_ps(dr + 8 * v), f[v]));
            if (full < vecs)
                _mm256_maskstore_ps(orow + 8 * full, mask,
                                    log_softmax_vjp_ps(maskload_y_ps(yr + 8 * full, mask),
                                                       _mm256_maskload_ps(dr + 8 * full, mask), f[full]));
        } else {
            for (size_t v = 0; v < full; ++v) {
                const __m256 g = _mm256_sub_ps(_mm256_loadu_ps(dr + 8 * v), f[v]);
                _mm256_storeu_ps(orow + 8 * v, _mm256_mul_ps(_mm256_loadu_ps(yr + 8 * v), g));
            }
            if (full < vecs) {
                const __m256 g = _mm256_sub_ps(_mm256_maskload_ps(dr + 8 * full, mask), f[full]);
                _mm256_maskstore_ps(orow + 8 * full, mask,
                                    _mm256_mul_ps(_mm256_maskload_ps(yr + 8 * full, mask), g));
            }
        }
    }
}

SM_AVX2 void sm_avx2_softmax_vjp_inner_f32(const float *y, const float *dy, float *out, size_t n,
                                           size_t inner, size_t width)
{
    inner_vjp_block_f32(y, dy, out, n, inner, width, 0);
}

SM_AVX2 void sm_avx2_log_softmax_vjp_inner_f32(const float *y, const float *dy, float *out, size_t n,
                                               size_t inner, size_t width)
{
    inner_vjp_block_f32(y, dy, out, n, inner, width, 1);
}

/* As inner_vjp_block_f32 for 4 doubles a vector (no flushing). */
SM_AVX2 static inline void inner_vjp_block_f64(const double *y, const double *dy, double *out, size_t n,
                                               size_t inner, size_t width, int take_log)
{
    const size_t vecs = (width + 3) / 4, last = width - 4 * (vecs - 1);
    const size_t full = last == 4 ? vecs : vecs - 1;
    const __m256i mask = tail_pd(last);
    __m256d s[INNER_VECS_PD];
    for (size_t v = 0; v < vecs; ++v)
        s[v] = _mm256_setzero_pd();
    for (size_t i = 0; i < n; ++i) {
        const double *yr = y + i * inner, *dr = dy + i * inner;
        if (take_log) {
            for (size_t v = 0; v < full; ++v)
                s[v] = _mm256_add_pd(s[v], _mm256_loadu_pd(dr + 4 * v));
            if (full < vecs)
                s[full] = _mm256_add_pd(s[full], _mm256_maskload_pd(dr + 4 * full, mask));
        } else {
            for (size_t v = 0; v < full; ++v)
                s[v] = _mm256_fmadd_pd(_mm256_loadu_pd(yr + 4 * v), _mm256_loadu_pd(dr + 4 * v), s[v]);
            if (full < vecs)
                s[full] = _mm256_fmadd_pd(_mm256_maskload_pd(yr + 4 * full, mask),
                                          _mm256_maskload_pd(dr + 4 * full, mask), s[full]);
        }
    }
    for (size_t i = 0; i < n; ++i) {
        const double *yr = y + i * inner, *dr = dy + i * inner;
        double *orow = out + i * inner;
        if (take_log) {
            for (size_t v = 0; v < full; ++v)
                _mm256_storeu_pd(orow + 4 * v, log_softmax_vjp_pd(_mm256_loadu_pd(yr + 4 * v),
                                                                  _mm256_loadu_pd(dr + 4 * v), s[v]));
            if (full < vecs)
                _mm256_maskstore_pd(orow + 4 * full, mask,
                                    log_softmax_vjp_pd(maskload_y_pd(yr + 4 * full, mask),
                                                       _mm256_maskload_pd(dr + 4 * full, mask), s[full]));
        } else {
            for (size_t v = 0; v < full; ++v) {
                const __m256d g = _mm256_sub_pd(_mm256_loadu_pd(dr + 4 * v), s[v]);
                _mm256_storeu_pd(orow + 4 * v, _mm256_mul_pd(_mm256_loadu_pd(yr + 4 * v), g));
            }
            if (full < vecs) {
                const __m256d g = _mm256_sub_pd(_mm256_maskload_pd(dr + 4 * full, mask), s[full]);
                _mm256_maskstore_pd(orow + 4 * full, mask,
                                    _mm256_mul_pd(_mm256_maskload_pd(yr + 4 * full, mask), g));
            }
        }
    }
}

SM_AVX2 void sm_avx2_softmax_vjp_inner_f64(const double *y, const double *dy, double *out, size_t n,
                                           size_t inner, size_t width)
{
    inner_vjp_block_f64(y, dy, out, n, inner, width, 0);
}

SM_AVX2 void sm_avx2_log_softmax_vjp_inner_f64(const double *y, const double *dy, double *out,
                                               size_t n, size_t inner, size_t width)
{
    inner_vjp_block_f64(y, dy, out, n, inner, width, 1);
}

/* ------------------------------------------------------------- short rows */

/* Rows shorter than one vector. The general kernels would make three passes
 * with masked loads and stores, and a masked store costs about 5 ns on AMD
 * Zen (4096 rows of n = 3 float32 took 1.47x the scalar time). Here each input
 * is loaded once (maskload is cheap, and reads nothing outside the mask), the
 * row stays in a register, and the result goes out by plain stores of 4, 2
 * and 1 elements. Empty lanes hold values that keep exp on its fast path and
 * are kept out of every reduction. (dispatch.c sends rows of 1 or 2 elements,
 * and float64 softmax VJP rows of fewer than 4, to the scalar kernels, which
 * measured faster there.) */
SM_AVX2 static inline void store_short_ps(float *out, __m256 v, size_t n)  /* n < 8 */
{
    __m128 part = _mm256_castps256_ps128(v);
    if (n & 4) {
        _mm_storeu_ps(out, part);
        out += 4;
        part = _mm256_extractf128_ps(v, 1);
    }
    if (n & 2) {
        _mm_storel_pi((__m64 *)out, part);
        out += 2;
        part = _mm_movehl_ps(part, part);
    }
    if (n & 1)
        _mm_store_ss(out, part);
}

SM_AVX2 static inline void store_short_pd(double *out, __m256d v, size_t n)  /* n < 4 */
{
    __m128d part = _mm256_castpd256_pd128(v);
    if (n & 2) {
        _mm_storeu_pd(out, part);
        out += 2;
        part = _mm256_extractf128_pd(v, 1);
    }
    if (n & 1)
        _mm_store_sd(out, part);
}

/* x - m in the row's lanes, 0 in the others (exp(0) is on exp's fast path;
 * 0 - m could be far off it); m, the row maximum, in *max. */
SM_AVX2 static inline __m256 shifted_short_ps(const float *x, __m256 valid, float *max)
{
    const __m256 v = _mm256_maskload_ps(x, _mm256_castps_si256(valid));
    *max = hmax_ps(_mm256_blendv_ps(_mm256_set1_ps(-INFINITY), v, valid));
    return _mm256_and_ps(_mm256_sub_ps(v, _mm256_set1_ps(*max)), valid);
}

SM_AVX2 static void softmax_short_f32(const float *x, float *out, size_t n)
{
    const __m256 valid = _mm256_castsi256_ps(tail_ps(n));
    float m;
    const __m256 e = _mm256_and_ps(sm_exp256_ps(shifted_short_ps(x, valid, &m)), valid);
    const __m256 inv = _mm256_set1_ps((float)(1.0 / (double)hsum_ps(e)));
    store_short_ps(out, _mm256_mul_ps(e, inv), n);
}

SM_AVX2 static void log_softmax_short_f32(const float *x, float *out, size_t n)
{
    const __m256 valid = _mm256_castsi256_ps(tail_ps(n));
    float m;
    const __m256 d = shifted_short_ps(x, valid, &m);
    /* as shifted_rest_f32: the maxima counted, the others summed */
    const __m256 top = _mm256_and_ps(_mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ), valid);
    const __m256 e = _mm256_andnot_ps(top, _mm256_and_ps(sm_exp256_ps(d), valid));
    const int tops = __builtin_popcount((unsigned)_mm256_movemask_ps(top));
    const double rest = (double)hsum_ps(e) + (double)(tops - 1);
    store_short_ps(out, _mm256_sub_ps(d, _mm256_set1_ps((float)log1p(rest))), n);
}

SM_AVX2 static void softmax_vjp_short_f32(const float *y, const float *dy, float *out, size_t n)
{
    const __m256i k = tail_ps(n);
    const __m256 yv = _mm256_maskload_ps(y, k), dv = _mm256_maskload_ps(dy, k);
    const __m256 dot = _mm256_set1_ps(hsum_ps(_mm256_mul_ps(yv, dv)));
    store_short_ps(out, _mm256_mul_ps(yv, _mm256_sub_ps(dv, dot)), n);
}

SM_AVX2 static void log_softmax_vjp_short_f32(const float *y, const float *dy, float *out, size_t n)
{
    const __m256i k = tail_ps(n);
    const __m256 dv = _mm256_maskload_ps(dy, k);
    const __m256 total = _mm256_set1_ps(hsum_ps(dv));
    store_short_ps(out, log_softmax_vjp_ps(maskload_y_ps(y, k), dv, total), n);
}

SM_AVX2 static inline __m256d shifted_short_pd(const double *x, __m256d valid, double *max)
{
    const __m256d v = _mm256_maskload_pd(x, _mm256_castpd_si256(valid));
    *max = hmax_pd(_mm256_blendv_pd(_mm256_set1_pd(-INFINITY), v, valid));
    return _mm256_and_pd(_mm256_sub_pd(v, _mm256_set1_pd(*max)), valid);
}

SM_AVX2 static void softmax_short_f64(const double *x, double *out, size_t n)
{
    const __m256d valid = _mm256_castsi256_pd(tail_pd(n));
    double m;
    const __m256d e = _mm256_and_pd(sm_exp256_pd(shifted_short_pd(x, valid, &m)), valid);
    store_short_pd(out, _mm256_mul_pd(e, _mm256_set1_pd(1.0 / hsum_pd(e))), n);
}

SM_AVX2 static void log_softmax_short_f64(const double *x, double *out, size_t n)
{
    const __m256d valid = _mm256_castsi256_pd(tail_pd(n));
    double m;
    const __m256d d = shifted_short_pd(x, valid, &m);
    const __m256d top = _mm256_and_pd(_mm256_cmp_pd(d, _mm256_setzero_pd(), _CMP_EQ_OQ), valid);
    const __m256d e = _mm256_andnot_pd(top, _mm256_and_pd(sm_exp256_pd(d), valid));
    const int tops = __builtin_popcount((unsigned)_mm256_movemask_pd(top));
    const double rest = hsum_pd(e) + (double)(tops - 1);
    store_short_pd(out, _mm256_sub_pd(d, _mm256_set1_pd(log1p(rest))), n);
}

/* A dot product and a scaling of at most 3 doubles: the scalar loop measured
 * faster than a vector version (which took 1.3x its time at n = 3). */
SM_AVX2 static void softmax_vjp_short_f64(const double *y, const double *dy, double *out, size_t n)
{
    sm_scalar_softmax_vjp_f64(y, dy, out, n);
}

SM_AVX2 static void log_softmax_vjp_short_f64(const double *y, const double *dy, double *out, size_t n)
{
    const __m256i k = tail_pd(n);
    const __m256d dv = _mm256_maskload_pd(dy, k);
    const __m256d total = _mm256_set1_pd(hsum_pd(dv));
    store_short_pd(out, log_softmax_vjp_pd(maskload_y_pd(y, k), dv, total), n);
}

/* ------------------------------------------------------- streaming variants */

/* The VJPs for data much larger than the caches (dispatch.c decides): the
 * same results, but the output is written with non-temporal stores, which skip
 * reading each destination line into the cache first: a quarter less memory
 * traffic. (The forward kernels gain nothing from them: their exp pass
 * computes long enough to hide that traffic.)
 * They need 32-byte aligned addresses: a masked store does the elements before
 * the first such address, a masked store the tail, and the sfence makes the
 * streamed lines visible before the kernel returns. */

/* How many elements of `size` bytes from p (aligned to size) before a 32-byte boundary, at most n. */
static inline size_t head_count(const void *p, size_t size, size_t n)
{
    const size_t head = ((32 - ((uintptr_t)p & 31)) & 31) / size;
    return head < n ? head : n;
}

/* The streaming loop over out[0..n): value(load, i) is the vector of results
 * from element i, reading its inputs with `load`: masked (by the k in scope)
 * for the head and the tail, unaligned full loads in between. */
#define SM_STREAM_LOOP(T, W, tail, maskload, loadu, maskstore, stream, value) \
    do {                                                                    \
        size_t i = head_count(out, sizeof(T), n);                           \
        if (i > 0) {                                                        \
            const __m256i k = tail(i);                                      \
            maskstore(out, k, value(maskload, 0));                          \
        }                                                                   \
        for (; i + W <= n; i += W)                                          \
            stream(out + i, value(loadu, i));                               \
        if (i < n) {                                                        \
            const __m256i k = tail(n - i);                                  \
            maskstore(out + i, k, value(maskload, i));                      \
        }                                                                   \
        _mm_sfence();                                                       \
    } while (0)

#define MASKLOAD_PS(p) _mm256_maskload_ps(p, k)
#define MASKLOAD_PD(p) _mm256_maskload_pd(p, k)
/* the loads of y in the log-softmax VJPs (VALUE pastes Y_ to the load's name) */
#define Y_MASKLOAD_PS(p) maskload_y_ps(p, k)
#define Y_MASKLOAD_PD(p) maskload_y_pd(p, k)
#define Y__mm256_loadu_ps(p) _mm256_loadu_ps(p)
#define Y__mm256_loadu_pd(p) _mm256_loadu_pd(p)
#define STREAM_F32(value) \
    SM_STREAM_LOOP(float, 8, tail_ps, MASKLOAD_PS, _mm256_loadu_ps, _mm256_maskstore_ps, _mm256_stream_ps, value)
#define STREAM_F64(value) \
    SM_STREAM_LOOP(double, 4, tail_pd, MASKLOAD_PD, _mm256_loadu_pd, _mm256_maskstore_pd, _mm256_stream_pd, value)

SM_AVX2 void sm_avx2_softmax_vjp_f32_stream(const float *y, const float *dy, float *out, size_t n)
{
    if (n < 8) {  /* nothing to stream */
        softmax_vjp_short_f32(y, dy, out, n);
        return;
    }
    const __m256 dot = _mm256_set1_ps((float)dot_f32(y, dy, n));
#define VALUE(load, j) _mm256_mul_ps(load(y + (j)), _mm256_sub_ps(load(dy + (j)), dot))
    STREAM_F32(VALUE);
#undef VALUE
}

SM_AVX2 void sm_avx2_log_softmax_vjp_f32_stream(const float *y, const float *dy, float *out, size_t n)
{
    if (n < 8) {  /* nothing to stream */
        log_softmax_vjp_short_f32(y, dy, out, n);
        return;
    }
    const __m256 total = _mm256_set1_ps((float)sum_f32(dy, n));
#define VALUE(load, j) log_softmax_vjp_ps(Y_##load(y + (j)), load(dy + (j)), total)
    STREAM_F32(VALUE);
#undef VALUE
}

SM_AVX2 void sm_avx2_softmax_vjp_f64_stream(const double *y, const double *dy, double *out, size_t n)
{
    if (n < 4) {  /* nothing to stream */
        softmax_vjp_short_f64(y, dy, out, n);
        return;
    }
    const __m256d dot = _mm256_set1_pd(dot_f64(y, dy, n));
#define VALUE(load, j) _mm256_mul_pd(load(y + (j)), _mm256_sub_pd(load(dy + (j)), dot))
    STREAM_F64(VALUE);
#undef VALUE
}

SM_AVX2 void sm_avx2_log_softmax_vjp_f64_stream(const double *y, const double *dy, double *out, size_t n)
{
    if (n < 4) {  /* nothing to stream */
        log_softmax_vjp_short_f64(y, dy, out, n);
        return;
    }
    const __m256d total = _mm256_set1_pd(sum_f64(dy, n));
#define VALUE(load, j) log_softmax_vjp_pd(Y_##load(y + (j)), load(dy + (j)), total)
    STREAM_F64(VALUE);
#undef VALUE
}

/* ------------------------------------------------- bandwidth-floor kernels */

/* Streaming stores need 32-byte aligned destinations: a scalar head reaches
 * the alignment, a scalar tail finishes, and the sfence orders the streamed
 * lines before anything the caller does next. */
SM_AVX2 void sm_avx2_copy_f32(const float *src, float *dst, size_t n, int nontemporal)
{
    size_t i = 0;
    if (nontemporal) {
        for (; i < n && ((uintptr_t)(dst + i) & 31) != 0; ++i)
            dst[i] = src[i];
        for (; i + 8 <= n; i += 8)
            _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
        _mm_sfence();
    } else {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_loadu_ps(src + i));
    }
    for (; i < n; ++i)
        dst[i] = src[i];
}

SM_AVX2 void sm_avx2_triad_f32(float *a, const float *b, const float *c, float s, size_t n, int nontemporal)
{
    const __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    if (nontemporal) {
        for (; i < n && ((uintptr_t)(a + i) & 31) != 0; ++i)
            a[i] = b[i] + s * c[i];
        for (; i + 8 <= n; i += 8)
            _mm256_stream_ps(a + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(c + i), _mm256_loadu_ps(b + i)));
        _mm_sfence();
    } else {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(a + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(c + i), _mm256_loadu_ps(b + i)));
    }
    for (; i < n; ++i)
        a[i] = b[i] + s * c[i];
}

#else
/* No AVX2 in this build (not x86-64, or SOFTMAX_NO_SIMD): nothing to compile. */
typedef int sm_no_avx2_kernels;
#endif
