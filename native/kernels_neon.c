/*
 * kernels_neon.c -- per-row kernels, and block kernels along an inner axis,
 * with AArch64 Advanced SIMD (NEON).
 *
 * The same passes and the same accuracy contract as kernels_avx2.c, with
 * 4-float / 2-double vectors. Advanced SIMD (with FMA) is architectural on
 * AArch64, so this file needs no target attribute and no run-time detection.
 * NEON has no masked loads: the last n % width elements go through a small
 * stack buffer filled with a value that keeps exp on its fast path, and those
 * lanes are kept out of every reduction. Long loops use four accumulators, to
 * hide the FP add latency. float32 sums add at most FLUSH_VECTORS vectors per
 * float lane and then go on in double (flush_f32): at most 9 float roundings
 * per term whatever n, as in kernels_avx2.c (which counts them).
 */
#include "kernels.h"

#if SM_HAVE_NEON

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "exp_neon.h"

/* ------------------------------------------------------------ tail helpers */

static inline float32x4_t load_tail_f32(const float *p, size_t k, float fill)  /* k < 4 */
{
    float buf[4] = {fill, fill, fill, fill};
    memcpy(buf, p, k * sizeof *p);
    return vld1q_f32(buf);
}

static inline void store_tail_f32(float *p, float32x4_t v, size_t k)
{
    float buf[4];
    vst1q_f32(buf, v);
    memcpy(p, buf, k * sizeof *p);
}

/* all-ones in the first k lanes */
static inline uint32x4_t valid_f32(size_t k)
{
    static const uint32_t lane[4] = {0, 1, 2, 3};
    return vcltq_u32(vld1q_u32(lane), vdupq_n_u32((uint32_t)k));
}

static inline float32x4_t and_f32(float32x4_t v, uint32x4_t m)
{
    return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), m));
}

static inline float32x4_t andnot_f32(float32x4_t v, uint32x4_t m)  /* v where m is 0 */
{
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(v), m));
}

/* A double row's tail is one element: lane 0 from p, lane 1 = fill. */
static inline float64x2_t load_tail_f64(const double *p, double fill)
{
    return vsetq_lane_f64(p[0], vdupq_n_f64(fill), 0);
}

static inline float64x2_t and_f64(float64x2_t v, uint64x2_t m)
{
    return vreinterpretq_f64_u64(vandq_u64(vreinterpretq_u64_f64(v), m));
}

static inline float64x2_t andnot_f64(float64x2_t v, uint64x2_t m)
{
    return vreinterpretq_f64_u64(vbicq_u64(vreinterpretq_u64_f64(v), m));
}

/* lane 0 only */
static inline uint64x2_t first_lane_f64(void)
{
    return vreinterpretq_u64_s64(vcombine_s64(vdup_n_s64(-1), vdup_n_s64(0)));
}

/* ------------------------------------------------------------------ float32 */

/* neon-flush-begin */
/* float32 sums: four float accumulators take at most FLUSH_VECTORS vectors each,
 * then flush_f32 adds them (two more float roundings) and moves the 4 lanes
 * into double, exactly: the error of a term meets at most 9 float roundings,
 * whatever the row length (kernels_avx2.c, flush_ps, counts them). */
#define FLUSH_VECTORS 8
#define FLUSH_BLOCK (4 * FLUSH_VECTORS * 4)  /* floats per block: 4 accumulators */

static inline void flush_f32(float32x4_t *s0, float32x4_t *s1, float32x4_t *s2, float32x4_t *s3,
                             float64x2_t *total)
{
    const float32x4_t s = vaddq_f32(vaddq_f32(*s0, *s1), vaddq_f32(*s2, *s3));
    const float64x2_t lo = vcvt_f64_f32(vget_low_f32(s)), hi = vcvt_high_f64_f32(s);  /* exact */
    *total = vaddq_f64(*total, vaddq_f64(lo, hi));
    *s0 = *s1 = *s2 = *s3 = vdupq_n_f32(0.0f);
}
/* neon-flush-end */

/* The row maximum; a NaN survives vmaxq, and makes the row NaN as in scalar. */
static float max_f32(const float *x, size_t n)
{
    float32x4_t m0 = vdupq_n_f32(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        m0 = vmaxq_f32(m0, vld1q_f32(x + i));
        m1 = vmaxq_f32(m1, vld1q_f32(x + i + 4));
        m2 = vmaxq_f32(m2, vld1q_f32(x + i + 8));
        m3 = vmaxq_f32(m3, vld1q_f32(x + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        m0 = vmaxq_f32(m0, vld1q_f32(x + i));
    if (i < n)
        m1 = vmaxq_f32(m1, load_tail_f32(x + i, n - i, -INFINITY));
    return vmaxvq_f32(vmaxq_f32(vmaxq_f32(m0, m1), vmaxq_f32(m2, m3)));
}

/* sum(exp(x - m)), storing the terms in out. */
static double exp_sum_f32(const float *x, float m, float *out, size_t n)
{
    const float32x4_t vm = vdupq_n_f32(m);
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    float64x2_t total = vdupq_n_f64(0.0);
    size_t i = 0;
    while (i + 16 <= n) {  /* blocks of FLUSH_BLOCK, each flushed to double */
        const size_t stop = n - i > FLUSH_BLOCK ? i + FLUSH_BLOCK : n;
        for (; i + 16 <= stop; i += 16) {
            const float32x4_t e0 = sm_exp_f32x4(vsubq_f32(vld1q_f32(x + i), vm));
            const float32x4_t e1 = sm_exp_f32x4(vsubq_f32(vld1q_f32(x + i + 4), vm));
            const float32x4_t e2 = sm_exp_f32x4(vsubq_f32(vld1q_f32(x + i + 8), vm));
            const float32x4_t e3 = sm_exp_f32x4(vsubq_f32(vld1q_f32(x + i + 12), vm));
            vst1q_f32(out + i, e0);
            vst1q_f32(out + i + 4, e1);
            vst1q_f32(out + i + 8, e2);
            vst1q_f32(out + i + 12, e3);
            s0 = vaddq_f32(s0, e0);
            s1 = vaddq_f32(s1, e1);
            s2 = vaddq_f32(s2, e2);
            s3 = vaddq_f32(s3, e3);
        }
        flush_f32(&s0, &s1, &s2, &s3, &total);
    }
    for (; i + 4 <= n; i += 4) {  /* at most 3 vectors */
        const float32x4_t e = sm_exp_f32x4(vsubq_f32(vld1q_f32(x + i), vm));
        vst1q_f32(out + i, e);
        s0 = vaddq_f32(s0, e);
    }
    if (i < n) {  /* empty lanes hold m: exp(0), then cleared */
        const float32x4_t e = and_f32(sm_exp_f32x4(vsubq_f32(load_tail_f32(x + i, n - i, m), vm)),
                                      valid_f32(n - i));
        store_tail_f32(out + i, e, n - i);
        s1 = vaddq_f32(s1, e);
    }
    flush_f32(&s0, &s1, &s2, &s3, &total);
    return vaddvq_f64(total);
}

/* sum(exp(x - m)) over all but one maximum, storing x - m in out: the `rest`
 * of lse = m + log1p(rest) (kernels_scalar.c). Entries with x - m == 0 are
 * counted instead (as -1s in int32 lanes, moved to an int64 at each flush). */
static double shifted_rest_f32(const float *x, float m, float *out, size_t n)
{
    const float32x4_t vm = vdupq_n_f32(m), zero = vdupq_n_f32(0.0f);
    float32x4_t s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    float64x2_t total = vdupq_n_f64(0.0);
    int32x4_t tops = vdupq_n_s32(0);
    int64_t count = 0;
#define SM_REST_F32(d, e)                                      \
    do {                                                       \
        const uint32x4_t z = vceqq_f32(d, zero);               \
        tops = vaddq_s32(tops, vreinterpretq_s32_u32(z));      \
        e = andnot_f32(e, z);                                  \
    } while (0)
    size_t i = 0;
    while (i + 16 <= n) {
        const size_t stop = n - i > FLUSH_BLOCK ? i + FLUSH_BLOCK : n;
        for (; i + 16 <= stop; i += 16) {
            const float32x4_t d0 = vsubq_f32(vld1q_f32(x + i), vm);
            const float32x4_t d1 = vsubq_f32(vld1q_f32(x + i + 4), vm);
            const float32x4_t d2 = vsubq_f32(vld1q_f32(x + i + 8), vm);
            const float32x4_t d3 = vsubq_f32(vld1q_f32(x + i + 12), vm);
            float32x4_t e0 = sm_exp_f32x4(d0), e1 = sm_exp_f32x4(d1);
            float32x4_t e2 = sm_exp_f32x4(d2), e3 = sm_exp_f32x4(d3);
            SM_REST_F32(d0, e0);
            SM_REST_F32(d1, e1);
            SM_REST_F32(d2, e2);
            SM_REST_F32(d3, e3);
            vst1q_f32(out + i, d0);
            vst1q_f32(out + i + 4, d1);
            vst1q_f32(out + i + 8, d2);
            vst1q_f32(out + i + 12, d3);
            s0 = vaddq_f32(s0, e0);
            s1 = vaddq_f32(s1, e1);
            s2 = vaddq_f32(s2, e2);
            s3 = vaddq_f32(s3, e3);
        }
        flush_f32(&s0, &s1, &s2, &s3, &total);
        count -= vaddlvq_s32(tops);
        tops = vdupq_n_s32(0);
    }
    for (; i + 4 <= n; i += 4) {
        const float32x4_t d = vsubq_f32(vld1q_f32(x + i), vm);
        float32x4_t e = sm_exp_f32x4(d);
        SM_REST_F32(d, e);
        vst1q_f32(out + i, d);
        s0 = vaddq_f32(s0, e);
    }
#undef SM_REST_F32
    if (i < n) {  /* empty lanes: d = 0, neither counted nor summed */
        const uint32x4_t valid = valid_f32(n - i);
        const float32x4_t d = vsubq_f32(load_tail_f32(x + i, n - i, m), vm);
        const uint32x4_t z = vandq_u32(vceqq_f32(d, zero), valid);
        tops = vaddq_s32(tops, vreinterpretq_s32_u32(z));
        s1 = vaddq_f32(s1, and_f32(andnot_f32(sm_exp_f32x4(d), z), valid));
        store_tail_f32(out + i, d, n - i);
    }
    flush_f32(&s0, &s1, &s2, &s3, &total);
    count -= vaddlvq_s32(tops);
    return vaddvq_f64(total) + ((double)count - 1.0);
}

/* The hardware prefetchers of AArch64 cores follow the row-by-row streams;
 * explicit next-row prefetching (kernels_avx2.c) was not measured on ARM, so
 * `next` is unused here. */
void sm_neon_softmax_f32(const float *x, float *out, size_t n, ptrdiff_t next)
{
    (void)next;
    const float m = max_f32(x, n);
    const float32x4_t inv = vdupq_n_f32((float)(1.0 / exp_sum_f32(x, m, out, n)));
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, vmulq_f32(vld1q_f32(out + i), inv));
    if (i < n)
        store_tail_f32(out + i, vmulq_f32(load_tail_f32(out + i, n - i, 0.0f), inv), n - i);
}

void sm_neon_log_softmax_f32(const float *x, float *out, size_t n, ptrdiff_t next)
{
    (void)next;
    const float m = max_f32(x, n);
    /* x - m to out during the exp pass, then (x - m) - log1p(rest), in that order */
    const float32x4_t lse = vdupq_n_f32((float)log1p(shifted_rest_f32(x, m, out, n)));
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, vsubq_f32(vld1q_f32(out + i), lse));
    if (i < n)
        store_tail_f32(out + i, vsubq_f32(load_tail_f32(out + i, n - i, 0.0f), lse), n - i);
}

/* sum(a * b) (b == NULL: sum(a)), flushed to double every FLUSH_BLOCK elements. */
static double dot_f32(const float *a, const float *b, size_t n)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    float64x2_t total = vdupq_n_f64(0.0);
    const float32x4_t one = vdupq_n_f32(1.0f);
#define B(j) (b ? vld1q_f32(b + (j)) : one)
    size_t i = 0;
    while (i + 16 <= n) {
        const size_t stop = n - i > FLUSH_BLOCK ? i + FLUSH_BLOCK : n;
        for (; i + 16 <= stop; i += 16) {
            s0 = vfmaq_f32(s0, vld1q_f32(a + i), B(i));
            s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), B(i + 4));
            s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), B(i + 8));
            s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), B(i + 12));
        }
        flush_f32(&s0, &s1, &s2, &s3, &total);
    }
    for (; i + 4 <= n; i += 4)
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), B(i));
#undef B
    if (i < n)
        s1 = vfmaq_f32(s1, load_tail_f32(a + i, n - i, 0.0f), b ? load_tail_f32(b + i, n - i, 0.0f) : one);
    flush_f32(&s0, &s1, &s2, &s3, &total);
    return vaddvq_f64(total);
}

void sm_neon_softmax_vjp_f32(const float *y, const float *dy, float *out, size_t n)
{
    const float32x4_t dot = vdupq_n_f32((float)dot_f32(y, dy, n));
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, vmulq_f32(vld1q_f32(y + i), vsubq_f32(vld1q_f32(dy + i), dot)));
    if (i < n) {
        const float32x4_t g = vsubq_f32(load_tail_f32(dy + i, n - i, 0.0f), dot);
        store_tail_f32(out + i, vmulq_f32(load_tail_f32(y + i, n - i, 0.0f), g), n - i);
    }
}

/* expm1 for 4 floats, as kernels_avx2.c's expm1_ps: 9 Taylor terms where
 * |y| <= ln 2 (truncation 1.0e-8 relative, below u), else exp(y) - 1. */
static inline float32x4_t expm1_f32x4(float32x4_t y)
{
    static const float inv_fact[9] = {1.0f, 1.0f / 2, 1.0f / 6, 1.0f / 24, 1.0f / 120, 1.0f / 720,
                                       1.0f / 5040, 1.0f / 40320, 1.0f / 362880};
    float32x4_t p = vdupq_n_f32(inv_fact[8]);
    for (int k = 7; k >= 0; --k)
        p = vfmaq_f32(vdupq_n_f32(inv_fact[k]), p, y);
    const float32x4_t taylor = vmulq_f32(y, p);
    const uint32x4_t small = vcleq_f32(vabsq_f32(y), vdupq_n_f32((float)SM_LN2));
    if (vminvq_u32(small) != 0)
        return taylor;
    return vbslq_f32(small, taylor, vsubq_f32(sm_exp_f32x4(y), vdupq_n_f32(1.0f)));
}

/* The lanes `top` of r replaced by (dy - T) - expm1(y) T; out of line, so that
 * the common loop keeps its registers. */
__attribute__((noinline)) static float32x4_t top_vjp_f32x4(float32x4_t y, float32x4_t dy, float32x4_t r,
                                                          uint32x4_t top, float32x4_t total)
{
    return vbslq_f32(top, vfmsq_f32(vsubq_f32(dy, total), expm1_f32x4(y), total), r);
}

/* dy - exp(y) T; where y > -ln 2, (dy - T) - expm1(y) T (kernels_scalar.c says why). */
static inline float32x4_t log_softmax_vjp_f32x4(float32x4_t y, float32x4_t dy, float32x4_t total)
{
    const float32x4_t r = vfmsq_f32(dy, sm_exp_f32x4(y), total);
    const uint32x4_t top = vcgtq_f32(y, vdupq_n_f32((float)-SM_LN2));
    return vmaxvq_u32(top) == 0 ? r : top_vjp_f32x4(y, dy, r, top, total);
}

void sm_neon_log_softmax_vjp_f32(const float *y, const float *dy, float *out, size_t n)
{
    const float32x4_t total = vdupq_n_f32((float)dot_f32(dy, NULL, n));
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, log_softmax_vjp_f32x4(vld1q_f32(y + i), vld1q_f32(dy + i), total));
    if (i < n)  /* empty lanes: y = -1 keeps exp fast and off the top-class path */
        store_tail_f32(out + i, log_softmax_vjp_f32x4(load_tail_f32(y + i, n - i, -1.0f),
                                                      load_tail_f32(dy + i, n - i, 0.0f), total), n - i);
}

void sm_neon_exp_f32(const float *x, float *out, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, sm_exp_f32x4(vld1q_f32(x + i)));
    if (i < n)
        store_tail_f32(out + i, sm_exp_f32x4(load_tail_f32(x + i, n - i, 0.0f)), n - i);
}

/* ------------------------------------------------------------------ float64 */

static double max_f64(const double *x, size_t n)
{
    float64x2_t m0 = vdupq_n_f64(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        m0 = vmaxq_f64(m0, vld1q_f64(x + i));
        m1 = vmaxq_f64(m1, vld1q_f64(x + i + 2));
        m2 = vmaxq_f64(m2, vld1q_f64(x + i + 4));
        m3 = vmaxq_f64(m3, vld1q_f64(x + i + 6));
    }
    for (; i + 2 <= n; i += 2)
        m0 = vmaxq_f64(m0, vld1q_f64(x + i));
    if (i < n)
        m1 = vmaxq_f64(m1, load_tail_f64(x + i, -INFINITY));
    return vmaxvq_f64(vmaxq_f64(vmaxq_f64(m0, m1), vmaxq_f64(m2, m3)));
}

static double exp_sum_f64(const double *x, double m, double *out, size_t n)
{
    const float64x2_t vm = vdupq_n_f64(m);
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float64x2_t e0 = sm_exp_f64x2(vsubq_f64(vld1q_f64(x + i), vm));
        const float64x2_t e1 = sm_exp_f64x2(vsubq_f64(vld1q_f64(x + i + 2), vm));
        const float64x2_t e2 = sm_exp_f64x2(vsubq_f64(vld1q_f64(x + i + 4), vm));
        const float64x2_t e3 = sm_exp_f64x2(vsubq_f64(vld1q_f64(x + i + 6), vm));
        vst1q_f64(out + i, e0);
        vst1q_f64(out + i + 2, e1);
        vst1q_f64(out + i + 4, e2);
        vst1q_f64(out + i + 6, e3);
        s0 = vaddq_f64(s0, e0);
        s1 = vaddq_f64(s1, e1);
        s2 = vaddq_f64(s2, e2);
        s3 = vaddq_f64(s3, e3);
    }
    for (; i + 2 <= n; i += 2) {
        const float64x2_t e = sm_exp_f64x2(vsubq_f64(vld1q_f64(x + i), vm));
        vst1q_f64(out + i, e);
        s0 = vaddq_f64(s0, e);
    }
    if (i < n) {
        const float64x2_t e = and_f64(sm_exp_f64x2(vsubq_f64(load_tail_f64(x + i, m), vm)), first_lane_f64());
        out[i] = vgetq_lane_f64(e, 0);
        s1 = vaddq_f64(s1, e);
    }
    return vaddvq_f64(vaddq_f64(vaddq_f64(s0, s1), vaddq_f64(s2, s3)));
}

/* As shifted_rest_f32; double lanes need no flushing, and count in int64. */
static double shifted_rest_f64(const double *x, double m, double *out, size_t n)
{
    const float64x2_t vm = vdupq_n_f64(m), zero = vdupq_n_f64(0.0);
    float64x2_t s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    int64x2_t tops = vdupq_n_s64(0);
#define SM_REST_F64(d, e)                                      \
    do {                                                       \
        const uint64x2_t z = vceqq_f64(d, zero);               \
        tops = vaddq_s64(tops, vreinterpretq_s64_u64(z));      \
        e = andnot_f64(e, z);                                  \
    } while (0)
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float64x2_t d0 = vsubq_f64(vld1q_f64(x + i), vm);
        const float64x2_t d1 = vsubq_f64(vld1q_f64(x + i + 2), vm);
        const float64x2_t d2 = vsubq_f64(vld1q_f64(x + i + 4), vm);
        const float64x2_t d3 = vsubq_f64(vld1q_f64(x + i + 6), vm);
        float64x2_t e0 = sm_exp_f64x2(d0), e1 = sm_exp_f64x2(d1);
        float64x2_t e2 = sm_exp_f64x2(d2), e3 = sm_exp_f64x2(d3);
        SM_REST_F64(d0, e0);
        SM_REST_F64(d1, e1);
        SM_REST_F64(d2, e2);
        SM_REST_F64(d3, e3);
        vst1q_f64(out + i, d0);
        vst1q_f64(out + i + 2, d1);
        vst1q_f64(out + i + 4, d2);
        vst1q_f64(out + i + 6, d3);
        s0 = vaddq_f64(s0, e0);
        s1 = vaddq_f64(s1, e1);
        s2 = vaddq_f64(s2, e2);
        s3 = vaddq_f64(s3, e3);
    }
    for (; i + 2 <= n; i += 2) {
        const float64x2_t d = vsubq_f64(vld1q_f64(x + i), vm);
        float64x2_t e = sm_exp_f64x2(d);
        SM_REST_F64(d, e);
        vst1q_f64(out + i, d);
        s0 = vaddq_f64(s0, e);
    }
#undef SM_REST_F64
    if (i < n) {
        const uint64x2_t valid = first_lane_f64();
        const float64x2_t d = vsubq_f64(load_tail_f64(x + i, m), vm);
        const uint64x2_t z = vandq_u64(vceqq_f64(d, zero), valid);
        tops = vaddq_s64(tops, vreinterpretq_s64_u64(z));
        s1 = vaddq_f64(s1, and_f64(andnot_f64(sm_exp_f64x2(d), z), valid));
        out[i] = vgetq_lane_f64(d, 0);
    }
    const double count = -(double)vaddvq_s64(tops);
    return vaddvq_f64(vaddq_f64(vaddq_f64(s0, s1), vaddq_f64(s2, s3))) + (count - 1.0);
}

void sm_neon_softmax_f64(const double *x, double *out, size_t n, ptrdiff_t next)
{
    (void)next;
    const double m = max_f64(x, n);
    const float64x2_t inv = vdupq_n_f64(1.0 / exp_sum_f64(x, m, out, n));
    size_t i = 0;
    for (; i + 2 <= n; i += 2)
        vst1q_f64(out + i, vmulq_f64(vld1q_f64(out + i), inv));
    if (i < n)
        out[i] *= vgetq_lane_f64(inv, 0);
}

void sm_neon_log_softmax_f64(const double *x, double *out, size_t n, ptrdiff_t next)
{
    (void)next;
    const double m = max_f64(x, n);
    const double lse = log1p(shifted_rest_f64(x, m, out, n));
    const float64x2_t vlse = vdupq_n_f64(lse);
    size_t i = 0;
    for (; i + 2 <= n; i += 2)
        vst1q_f64(out + i, vsubq_f64(vld1q_f64(out + i), vlse));
    if (i < n)
        out[i] -= lse;
}

/* sum(a * b) (b == NULL: sum(a)) with four accumulators. */
static double dot_f64(const double *a, const double *b, size_t n)
{
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0, s2 = s0, s3 = s0;
    const float64x2_t one = vdupq_n_f64(1.0);
#define B(j) (b ? vld1q_f64(b + (j)) : one)
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f64(s0, vld1q_f64(a + i), B(i));
        s1 = vfmaq_f64(s1, vld1q_f64(a + i + 2), B(i + 2));
        s2 = vfmaq_f64(s2, vld1q_f64(a + i + 4), B(i + 4));
        s3 = vfmaq_f64(s3, vld1q_f64(a + i + 6), B(i + 6));
    }
    for (; i + 2 <= n; i += 2)
        s0 = vfmaq_f64(s0, vld1q_f64(a + i), B(i));
#undef B
    double sum = vaddvq_f64(vaddq_f64(vaddq_f64(s0, s1), vaddq_f64(s2, s3)));
    if (i < n)
        sum += b ? a[i] * b[i] : a[i];
    return sum;
}

void sm_neon_softmax_vjp_f64(const double *y, const double *dy, double *out, size_t n)
{
    const double d = dot_f64(y, dy, n);
    const float64x2_t dot = vdupq_n_f64(d);
    size_t i = 0;
    for (; i + 2 <= n; i += 2)
        vst1q_f64(out + i, vmulq_f64(vld1q_f64(y + i), vsubq_f64(vld1q_f64(dy + i), dot)));
    if (i < n)
        out[i] = y[i] * (dy[i] - d);
}

/* As expm1_f32x4, for 2 doubles with 17 terms (truncation < 1e-17 relative). */
static inline float64x2_t expm1_f64x2(float64x2_t y)
{
    static const double inv_fact[17] = {  /* 1/k!, k = 1..17 */
        1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
        1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0,
        1.0 / 87178291200.0, 1.0 / 1307674368000.0, 1.0 / 20922789888000.0,
        1.0 / 355687428096000.0};
    float64x2_t p = vdupq_n_f64(inv_fact[16]);
    for (int k = 15; k >= 0; --k)
        p = vfmaq_f64(vdupq_n_f64(inv_fact[k]), p, y);
    const float64x2_t taylor = vmulq_f64(y, p);
    const uint64x2_t small = vcleq_f64(vabsq_f64(y), vdupq_n_f64(SM_LN2));
    if (vminvq_u32(vreinterpretq_u32_u64(small)) != 0)
        return taylor;
    return vbslq_f64(small, taylor, vsubq_f64(sm_exp_f64x2(y), vdupq_n_f64(1.0)));
}

__attribute__((noinline)) static float64x2_t top_vjp_f64x2(float64x2_t y, float64x2_t dy, float64x2_t r,
                                                          uint64x2_t top, float64x2_t total)
{
    return vbslq_f64(top, vfmsq_f64(vsubq_f64(dy, total), expm1_f64x2(y), total), r);
}

static inline float64x2_t log_softmax_vjp_f64x2(float64x2_t y, float64x2_t dy, float64x2_t total)
{
    const float64x2_t r = vfmsq_f64(dy, sm_exp_f64x2(y), total);
    const uint64x2_t top = vcgtq_f64(y, vdupq_n_f64(-SM_LN2));
    return vmaxvq_u32(vreinterpretq_u32_u64(top)) == 0 ? r : top_vjp_f64x2(y, dy, r, top, total);
}

void sm_neon_log_softmax_vjp_f64(const double *y, const double *dy, double *out, size_t n)
{
    const float64x2_t total = vdupq_n_f64(dot_f64(dy, NULL, n));
    size_t i = 0;
    for (; i + 2 <= n; i += 2)
        vst1q_f64(out + i, log_softmax_vjp_f64x2(vld1q_f64(y + i), vld1q_f64(dy + i), total));
    if (i < n)
        out[i] = vgetq_lane_f64(log_softmax_vjp_f64x2(load_tail_f64(y + i, -1.0), load_tail_f64(dy + i, 0.0),
                                                      total), 0);
}

void sm_neon_exp_f64(const double *x, double *out, size_t n)
{
    size_t i = 0;
    for (; i + 2 <= n; i += 2)
        vst1q_f64(out + i, sm_exp_f64x2(vld1q_f64(x + i)));
    if (i < n)
        out[i] = vgetq_lane_f64(sm_exp_f64x2(load_tail_f64(x + i, 0.0)), 0);
}

/* -------------------------------------------------- along an inner axis */

/* The four functions along the middle axis of a C-contiguous (n, inner) slice,
 * one block of columns at a time (kernels.h), as kernels_avx2.c does it: one
 * column per lane, each pass walking down the n rows, no transposing copy. The
 * arithmetic is the row kernels' above with a column in place of a row: the
 * float32 sums go to double every 8 rows (8 terms per float lane, so fewer
 * float roundings per term than flush_f32's 9, whatever n), log-softmax counts
 * each column's maxima as shifted_rest_f32 does, and the log-softmax VJP takes
 * the expm1 path for its top class (log_softmax_vjp_f32x4). The last partial
 * vector of a row goes through load_tail / store_tail (a stack buffer: nothing
 * past `width` columns is read or written) and its empty lanes are kept out of
 * every sum. out may be x (y, dy) itself: every pass that writes element
 * (i, j) reads no other element after it. No explicit prefetching: as for the
 * row kernels, it was not measured on ARM. */
#define INNER_VECS_F32 (SM_INNER_MAX_COLS / 4)
#define INNER_VECS_F64 (SM_INNER_MAX_COLS / 2)

/* Softmax (take_log = 0) or log-softmax (take_log = 1). Softmax stores the exp
 * terms and scales them in a third pass; log-softmax only sums in the second
 * pass and writes (x - m) - log1p(rest) in the third, reading x again. */
static inline void inner_block_f32(const float *x, float *out, size_t n, size_t inner, size_t width,
                                   int take_log)
{
    const size_t vecs = (width + 3) / 4, last = width - 4 * (vecs - 1);  /* last: 1..4 lanes */
    const size_t full = last == 4 ? vecs : vecs - 1;  /* vectors without a tail */
    const uint32x4_t valid = valid_f32(last);
    const float32x4_t zero = vdupq_n_f32(0.0f);
    float32x4_t m[INNER_VECS_F32], s[INNER_VECS_F32], f[INNER_VECS_F32];
    int32x4_t tops[INNER_VECS_F32];
    float64x2_t lo[INNER_VECS_F32], hi[INNER_VECS_F32];
    int64x2_t clo[INNER_VECS_F32], chi[INNER_VECS_F32];
/* the exp pass for vector v of `d` = x - m; `tail`: the empty lanes masked off */
#define EXP_STEP(v, d, tail)                                                        \
    do {                                                                            \
        float32x4_t e = sm_exp_f32x4(d);                                            \
        if (tail)                                                                   \
            e = and_f32(e, valid);                                                  \
        if (take_log) {                                                             \
            const uint32x4_t z = tail ? vandq_u32(vceqq_f32(d, zero), valid)        \
                                      : vceqq_f32(d, zero);                         \
            tops[v] = vaddq_s32(tops[v], vreinterpretq_s32_u32(z));                 \
            e = andnot_f32(e, z);                                                   \
        } else if (tail) {                                                          \
            store_tail_f32(orow + 4 * (v), e, last);                                \
        } else {                                                                    \
            vst1q_f32(orow + 4 * (v), e);                                           \
        }                                                                           \
        s[v] = vaddq_f32(s[v], e);                                                  \
    } while (0)
    for (size_t v = 0; v < vecs; ++v) {
        m[v] = vdupq_n_f32(-INFINITY);
        s[v] = zero;
        tops[v] = vdupq_n_s32(0);
        lo[v] = hi[v] = vdupq_n_f64(0.0);
        clo[v] = chi[v] = vdupq_n_s64(0);
    }
    for (size_t i = 0; i < n; ++i) {  /* the maxima; empty lanes: 0, so that d = 0 there */
        const float *row = x + i * inner;
        for (size_t v = 0; v < full; ++v)
            m[v] = vmaxq_f32(m[v], vld1q_f32(row + 4 * v));
        if (full < vecs)
            m[full] = vmaxq_f32(m[full], load_tail_f32(row + 4 * full, last, 0.0f));
    }
    for (size_t i = 0; i < n; ++i) {
        const float *row = x + i * inner;
        float *orow = out + i * inner;
        (void)orow;
        for (size_t v = 0; v < full; ++v) {
            const float32x4_t d = vsubq_f32(vld1q_f32(row + 4 * v), m[v]);
            EXP_STEP(v, d, 0);
        }
        if (full < vecs) {
            const float32x4_t d = vsubq_f32(load_tail_f32(row + 4 * full, last, 0.0f), m[full]);
            EXP_STEP(full, d, 1);
        }
        if ((i & 7) == 7 || i + 1 == n) {  /* the float sums to double (exactly), every 8 rows */
            for (size_t v = 0; v < vecs; ++v) {
                lo[v] = vaddq_f64(lo[v], vcvt_f64_f32(vget_low_f32(s[v])));
                hi[v] = vaddq_f64(hi[v], vcvt_high_f64_f32(s[v]));
                s[v] = zero;
                if (take_log) {  /* -1 per maximum in int32 lanes, to int64 */
                    clo[v] = vaddw_s32(clo[v], vget_low_s32(tops[v]));
                    chi[v] = vaddw_high_s32(chi[v], tops[v]);
                    tops[v] = vdupq_n_s32(0);
                }
            }
        }
    }
#undef EXP_STEP
    for (size_t v = 0; v < vecs; ++v) {  /* per column: 1/sum, or log1p(rest) */
        double sums[4];
        int64_t counts[4];
        float lane[4];
        vst1q_f64(sums, lo[v]);
        vst1q_f64(sums + 2, hi[v]);
        vst1q_s64(counts, clo[v]);
        vst1q_s64(counts + 2, chi[v]);
        for (int j = 0; j < 4; ++j)
            lane[j] = take_log ? (float)log1p(sums[j] + (-(double)counts[j] - 1.0)) : (float)(1.0 / sums[j]);
        f[v] = vld1q_f32(lane);
    }
    for (size_t i = 0; i < n; ++i) {
        float *orow = out + i * inner;
        if (take_log) {  /* (x - m) - lse, subtracted in that order (as the row kernel) */
            const float *row = x + i * inner;
            for (size_t v = 0; v < full; ++v)
                vst1q_f32(orow + 4 * v, vsubq_f32(vsubq_f32(vld1q_f32(row + 4 * v), m[v]), f[v]));
            if (full < vecs)
                store_tail_f32(orow + 4 * full,
                               vsubq_f32(vsubq_f32(load_tail_f32(row + 4 * full, last, 0.0f), m[full]), f[full]),
                               last);
        } else {
            for (size_t v = 0; v < full; ++v)
                vst1q_f32(orow + 4 * v, vmulq_f32(vld1q_f32(orow + 4 * v), f[v]));
            if (full < vecs)
                store_tail_f32(orow + 4 * full, vmulq_f32(load_tail_f32(orow + 4 * full, last, 0.0f), f[full]),
                               last);
        }
    }
}

void sm_neon_softmax_inner_f32(const float *x, float *out, size_t n, size_t inner, size_t width)
{
    inner_block_f32(x, out, n, inner, width, 0);
}

void sm_neon_log_softmax_inner_f32(const float *x, float *out, size_t n, size_t inner, size_t width)
{
    inner_block_f32(x, out, n, inner, width, 1);
}

/* As inner_block_f32 for 2 doubles a vector; the sums need no flushing, and
 * the maxima are counted in int64 lanes. A tail is one column: lane 0. */
static inline void inner_block_f64(const double *x, double *out, size_t n, size_t inner, size_t width,
                                   int take_log)
{
    const size_t vecs = (width + 1) / 2, full = width / 2;  /* full < vecs: a 1-column tail */
    const uint64x2_t valid = first_lane_f64();
    const float64x2_t zero = vdupq_n_f64(0.0);
    float64x2_t m[INNER_VECS_F64], s[INNER_VECS_F64];
    int64x2_t tops[INNER_VECS_F64];
#define EXP_STEP(v, d, tail)                                                        \
    do {                                                                            \
        float64x2_t e = sm_exp_f64x2(d);                                            \
        if (tail)                                                                   \
            e = and_f64(e, valid);                                                  \
        if (take_log) {                                                             \
            const uint64x2_t z = tail ? vandq_u64(vceqq_f64(d, zero), valid)        \
                                      : vceqq_f64(d, zero);                         \
            tops[v] = vaddq_s64(tops[v], vreinterpretq_s64_u64(z));                 \
            e = andnot_f64(e, z);                                                   \
        } else if (tail) {                                                          \
            orow[2 * (v)] = vgetq_lane_f64(e, 0);                                   \
        } else {                                                                    \
            vst1q_f64(orow + 2 * (v), e);                                           \
        }                                                                           \
        s[v] = vaddq_f64(s[v], e);                                                  \
    } while (0)
    for (size_t v = 0; v < vecs; ++v) {
        m[v] = vdupq_n_f64(-INFINITY);
        s[v] = zero;
        tops[v] = vdupq_n_s64(0);
    }
    for (size_t i = 0; i < n; ++i) {  /* the maxima; the empty lane: 0, so that d = 0 there */
        const double *row = x + i * inner;
        for (size_t v = 0; v < full; ++v)
            m[v] = vmaxq_f64(m[v], vld1q_f64(row + 2 * v));
        if (full < vecs)
            m[full] = vmaxq_f64(m[full], load_tail_f64(row + 2 * full, 0.0));
    }
    for (size_t i = 0; i < n; ++i) {
        const double *row = x + i * inner;
        double *orow = out + i * inner;
        (void)orow;
        for (size_t v = 0; v < full; ++v) {
            const float64x2_t d = vsubq_f64(vld1q_f64(row + 2 * v), m[v]);
            EXP_STEP(v, d, 0);
        }
        if (full < vecs) {
            const float64x2_t d = vsubq_f64(load_tail_f64(row + 2 * full, 0.0), m[full]);
            EXP_STEP(full, d, 1);
        }
    }
#undef EXP_STEP
    for (size_t v = 0; v < vecs; ++v) {  /* per column: 1/sum, or log1p(rest) */
        double sums[2];
        int64_t counts[2];
        vst1q_f64(sums, s[v]);
        vst1q_s64(counts, tops[v]);
        for (int j = 0; j < 2; ++j)
            sums[j] = take_log ? log1p(sums[j] + (-(double)counts[j] - 1.0)) : 1.0 / sums[j];
        s[v] = vld1q_f64(sums);
    }
    for (size_t i = 0; i < n; ++i) {
        double *orow = out + i * inner;
        if (take_log) {
            const double *row = x + i * inner;
            for (size_t v = 0; v < full; ++v)
                vst1q_f64(orow + 2 * v, vsubq_f64(vsubq_f64(vld1q_f64(row + 2 * v), m[v]), s[v]));
            if (full < vecs)
                orow[2 * full] = (row[2 * full] - vgetq_lane_f64(m[full], 0)) - vgetq_lane_f64(s[full], 0);
        } else {
            for (size_t v = 0; v < full; ++v)
                vst1q_f64(orow + 2 * v, vmulq_f64(vld1q_f64(orow + 2 * v), s[v]));
            if (full < vecs)
                orow[2 * full] *= vgetq_lane_f64(s[full], 0);
        }
    }
}

void sm_neon_softmax_inner_f64(const double *x, double *out, size_t n, size_t inner, size_t width)
{
    inner_block_f64(x, out, n, inner, width, 0);
}

void sm_neon_log_softmax_inner_f64(const double *x, double *out, size_t n, size_t inner, size_t width)
{
    inner_block_f64(x, out, n, inner, width, 1);
}

/* The VJPs: per column <y, dy> (take_log = 0) or sum(dy) (take_log = 1) down
 * the rows, float32 flushed to double every 8 rows and rounded to float once
 * (as the row kernels' dot_f32); then y (dy - dot), or log_softmax_vjp_f32x4
 * (with its top-class expm1 path), row by row. */
static inline void inner_vjp_block_f32(const float *y, const float *dy, float *out, size_t n, size_t inner,
                                       size_t width, int take_log)
{
    const size_t vecs = (width + 3) / 4, last = width - 4 * (vecs - 1);
    const size_t full = last == 4 ? vecs : vecs - 1;
    const float32x4_t zero = vdupq_n_f32(0.0f);
    float32x4_t s[INNER_VECS_F32], f[INNER_VECS_F32];
    float64x2_t lo[INNER_VECS_F32], hi[INNER_VECS_F32];
    for (size_t v = 0; v < vecs; ++v) {
        s[v] = zero;
        lo[v] = hi[v] = vdupq_n_f64(0.0);
    }
    for (size_t i = 0; i < n; ++i) {  /* empty lanes: 0, adding nothing */
        const float *yr = y + i * inner, *dr = dy + i * inner;
        if (take_log) {
            for (size_t v = 0; v < full; ++v)
                s[v] = vaddq_f32(s[v], vld1q_f32(dr + 4 * v));
            if (full < vecs)
                s[full] = vaddq_f32(s[full], load_tail_f32(dr + 4 * full, last, 0.0f));
        } else {
            for (size_t v = 0; v < full; ++v)
                s[v] = vfmaq_f32(s[v], vld1q_f32(yr + 4 * v), vld1q_f32(dr + 4 * v));
            if (full < vecs)
                s[full] = vfmaq_f32(s[full], load_tail_f32(yr + 4 * full, last, 0.0f),
                                    load_tail_f32(dr + 4 * full, last, 0.0f));
        }
        if ((i & 7) == 7 || i + 1 == n) {  /* the float sums to double, every 8 rows */
            for (size_t v = 0; v < vecs; ++v) {
                lo[v] = vaddq_f64(lo[v], vcvt_f64_f32(vget_low_f32(s[v])));
                hi[v] = vaddq_f64(hi[v], vcvt_high_f64_f32(s[v]));
                s[v] = zero;
            }
        }
    }
    for (size_t v = 0; v < vecs; ++v)  /* the sums rounded to float, as the row kernels' */
        f[v] = vcvt_high_f32_f64(vcvt_f32_f64(lo[v]), hi[v]);
    for (size_t i = 0; i < n; ++i) {
        const float *yr = y + i * inner, *dr = dy + i * inner;
        float *orow = out + i * inner;
        if (take_log) {  /* empty lanes: y = -1 keeps exp fast and off the top-class path */
            for (size_t v = 0; v < full; ++v)
                vst1q_f32(orow + 4 * v, log_softmax_vjp_f32x4(vld1q_f32(yr + 4 * v), vld1q_f32(dr + 4 * v), f[v]));
            if (full < vecs)
                store_tail_f32(orow + 4 * full,
                               log_softmax_vjp_f32x4(load_tail_f32(yr + 4 * full, last, -1.0f),
                                                     load_tail_f32(dr + 4 * full, last, 0.0f), f[full]),
                               last);
        } else {
            for (size_t v = 0; v < full; ++v) {
                const float32x4_t g = vsubq_f32(vld1q_f32(dr + 4 * v), f[v]);
                vst1q_f32(orow + 4 * v, vmulq_f32(vld1q_f32(yr + 4 * v), g));
            }
            if (full < vecs) {
                const float32x4_t g = vsubq_f32(load_tail_f32(dr + 4 * full, last, 0.0f), f[full]);
                store_tail_f32(orow + 4 * full, vmulq_f32(load_tail_f32(yr + 4 * full, last, 0.0f), g), last);
            }
        }
    }
}

void sm_neon_softmax_vjp_inner_f32(const float *y, const float *dy, float *out, size_t n, size_t inner,
                                   size_t width)
{
    inner_vjp_block_f32(y, dy, out, n, inner, width, 0);
}

void sm_neon_log_softmax_vjp_inner_f32(const float *y, const float *dy, float *out, size_t n, size_t inner,
                                       size_t width)
{
    inner_vjp_block_f32(y, dy, out, n, inner, width, 1);
}

/* As inner_vjp_block_f32 for 2 doubles a vector (no flushing); a tail is
 * one column, lane 0. */
static inline void inner_vjp_block_f64(const double *y, const double *dy, double *out, size_t n,
                                       size_t inner, size_t width, int take_log)
{
    const size_t vecs = (width + 1) / 2, full = width / 2;
    float64x2_t s[INNER_VECS_F64];
    for (size_t v = 0; v < vecs; ++v)
        s[v] = vdupq_n_f64(0.0);
    for (size_t i = 0; i < n; ++i) {
        const double *yr = y + i * inner, *dr = dy + i * inner;
        if (take_log) {
            for (size_t v = 0; v < full; ++v)
                s[v] = vaddq_f64(s[v], vld1q_f64(dr + 2 * v));
            if (full < vecs)
                s[full] = vaddq_f64(s[full], load_tail_f64(dr + 2 * full, 0.0));
        } else {
            for (size_t v = 0; v < full; ++v)
                s[v] = vfmaq_f64(s[v], vld1q_f64(yr + 2 * v), vld1q_f64(dr + 2 * v));
            if (full < vecs)
                s[full] = vfmaq_f64(s[full], load_tail_f64(yr + 2 * full, 0.0), load_tail_f64(dr + 2 * full, 0.0));
        }
    }
    for (size_t i = 0; i < n; ++i) {
        const double *yr = y + i * inner, *dr = dy + i * inner;
        double *orow = out + i * inner;
        if (take_log) {
            for (size_t v = 0; v < full; ++v)
                vst1q_f64(orow + 2 * v, log_softmax_vjp_f64x2(vld1q_f64(yr + 2 * v), vld1q_f64(dr + 2 * v), s[v]));
            if (full < vecs)
                orow[2 * full] = vgetq_lane_f64(log_softmax_vjp_f64x2(load_tail_f64(yr + 2 * full, -1.0),
                                                                      load_tail_f64(dr + 2 * full, 0.0), s[full]),
                                                0);
        } else {
            for (size_t v = 0; v < full; ++v) {
                const float64x2_t g = vsubq_f64(vld1q_f64(dr + 2 * v), s[v]);
                vst1q_f64(orow + 2 * v, vmulq_f64(vld1q_f64(yr + 2 * v), g));
            }
            if (full < vecs)
                orow[2 * full] = yr[2 * full] * (dr[2 * full] - vgetq_lane_f64(s[full], 0));
        }
    }
}

void sm_neon_softmax_vjp_inner_f64(const double *y, const double *dy, double *out, size_t n, size_t inner,
                                   size_t width)
{
    inner_vjp_block_f64(y, dy, out, n, inner, width, 0);
}

void sm_neon_log_softmax_vjp_inner_f64(const double *y, const double *dy, double *out, size_t n,
                                       size_t inner, size_t width)
{
    inner_vjp_block_f64(y, dy, out, n, inner, width, 1);
}

#else
/* No NEON in this build (not AArch64, or SOFTMAX_NO_SIMD): nothing to compile. */
typedef int sm_no_neon_kernels;
#endif
