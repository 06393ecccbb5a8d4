/*
 * exp_neon.h -- exp(x) for 4 floats / 2 doubles with AArch64 Advanced SIMD.
 *
 * The same algorithm, constants and special-value handling as exp_avx2.h
 * (which explains them): x = n ln2 + r by Cody-Waite, exp(r) by a polynomial
 * with fused multiply-adds (vfmaq: FMA is architectural on AArch64), then 2^n
 * added to the exponent field; vectors with a lane beyond the fast range (or
 * NaN) clamp x and scale by 2^(n/2) twice, so subnormal results are rounded
 * once and overflow gives +inf. AArch64's FMAX/FMIN return NaN when either
 * operand is NaN, so the clamp keeps NaN whatever the operand order.
 *
 * Accuracy: tests/c/test_kernels.c sweeps it (make test-c, under qemu).
 * Include only from code compiled for AArch64 (SM_HAVE_NEON).
 */
#ifndef SOFTMAX_LIB_EXP_NEON_H
#define SOFTMAX_LIB_EXP_NEON_H

#include <arm_neon.h>

/* neon-exp-f32-begin */
/* Steps 1 and 2 for x already in range: exp(r), and t holding n in its low bits. */
static inline float32x4_t exp_reduced_f32x4(float32x4_t x, float32x4_t *t)
{
    /* n = round(x / ln2): adding 1.5 * 2^23 rounds to an integer, left in t's low bits */
    const float32x4_t shift = vdupq_n_f32(12582912.0f);
    *t = vfmaq_f32(shift, x, vdupq_n_f32(1.44269504088896341f));
    const float32x4_t n = vsubq_f32(*t, shift);
    /* ln2_hi has 9 significant bits: n * ln2_hi is exact for |n| <= 2^15 */
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    /* Cephes expf: exp(r) ~ 1 + r + r^2 p(r) on |r| <= ln2/2 */
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    return vaddq_f32(vfmaq_f32(r, p, vmulq_f32(r, r)), vdupq_n_f32(1.0f));
}

static inline float32x4_t sm_exp_f32x4(float32x4_t x)
{
    float32x4_t t;
    /* Usually every |x| <= 86 (NaN fails the test): the result is normal */
    const uint32x4_t near = vcleq_f32(vabsq_f32(x), vdupq_n_f32(86.0f));
    if (vminvq_u32(near) != 0) {
        const float32x4_t e = exp_reduced_f32x4(x, &t);
        const int32x4_t nbits = vshlq_n_s32(vreinterpretq_s32_f32(t), 23);  /* n << 23 */
        return vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(e), nbits));
    }
    /* Else clamp where the answer is 0 or +inf anyway (as exp_avx2.h) */
    const float32x4_t xc = vminq_f32(vdupq_n_f32(88.8f), vmaxq_f32(vdupq_n_f32(-104.0f), x));
    const float32x4_t e = exp_reduced_f32x4(xc, &t);
    /* and multiply by 2^n1 * 2^n2, n1 = floor(n/2): both normal for n in [-151, 128] */
    const int32x4_t ni = vshrq_n_s32(vshlq_n_s32(vreinterpretq_s32_f32(t), 23), 23);
    const int32x4_t n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
    const int32x4_t bias = vdupq_n_s32(127);
    const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
    const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
    return vmulq_f32(vmulq_f32(e, s1), s2);  /* NaN * s = NaN */
}
/* neon-exp-f32-end */

static inline float64x2_t exp_reduced_f64x2(float64x2_t x, float64x2_t *t)
{
    const float64x2_t shift = vdupq_n_f64(6755399441055744.0);  /* 1.5 * 2^52 */
    *t = vfmaq_f64(shift, x, vdupq_n_f64(1.4426950408889634074));
    const float64x2_t n = vsubq_f64(*t, shift);
    /* Cephes' split: ln2_hi = 22713 / 2^15 has 15 significant bits, so n * ln2_hi
     * is exact for |n| < 2^38 (here |n| <= 1075) */
    float64x2_t r = vfmsq_f64(x, n, vdupq_n_f64(6.93145751953125e-1));
    r = vfmsq_f64(r, n, vdupq_n_f64(1.42860682030941723212e-6));
    /* Taylor to degree 13 as two chains in r^2 (exp_avx2.h says why) */
    const float64x2_t r2 = vmulq_f64(r, r);
    float64x2_t pe = vdupq_n_f64(1.0 / 479001600.0);                 /* 1/12! */
    float64x2_t po = vdupq_n_f64(1.0 / 6227020800.0);                /* 1/13! */
    pe = vfmaq_f64(vdupq_n_f64(1.0 / 3628800.0), pe, r2);            /* 1/10! */
    po = vfmaq_f64(vdupq_n_f64(1.0 / 39916800.0), po, r2);           /* 1/11! */
    pe = vfmaq_f64(vdupq_n_f64(1.0 / 40320.0), pe, r2);
    po = vfmaq_f64(vdupq_n_f64(1.0 / 362880.0), po, r2);
    pe = vfmaq_f64(vdupq_n_f64(1.0 / 720.0), pe, r2);
    po = vfmaq_f64(vdupq_n_f64(1.0 / 5040.0), po, r2);
    pe = vfmaq_f64(vdupq_n_f64(1.0 / 24.0), pe, r2);
    po = vfmaq_f64(vdupq_n_f64(1.0 / 120.0), po, r2);
    pe = vfmaq_f64(vdupq_n_f64(0.5), pe, r2);
    po = vfmaq_f64(vdupq_n_f64(1.0 / 6.0), po, r2);
    const float64x2_t p = vfmaq_f64(pe, po, r);
    return vaddq_f64(vfmaq_f64(r, p, r2), vdupq_n_f64(1.0));
}

static inline float64x2_t sm_exp_f64x2(float64x2_t x)
{
    float64x2_t t;
    const uint64x2_t near = vcleq_f64(vabsq_f64(x), vdupq_n_f64(707.0));
    if (vminvq_u32(vreinterpretq_u32_u64(near)) != 0) {
        const float64x2_t e = exp_reduced_f64x2(x, &t);
        const int64x2_t nbits = vshlq_n_s64(vreinterpretq_s64_f64(t), 52);  /* n << 52 */
        return vreinterpretq_f64_s64(vaddq_s64(vreinterpretq_s64_f64(e), nbits));
    }
    /* exp(710) > DBL_MAX; exp(-746) < 2^-1075, half the smallest subnormal */
    const float64x2_t xc = vminq_f64(vdupq_n_f64(710.0), vmaxq_f64(vdupq_n_f64(-746.0), x));
    const float64x2_t e = exp_reduced_f64x2(xc, &t);
    /* 2^n1 * 2^n2 for n in [-1077, 1025] (a NaN lane converts to 0: e is NaN) */
    const int64x2_t ni = vcvtq_s64_f64(vsubq_f64(t, vdupq_n_f64(6755399441055744.0)));
    const int64x2_t n1 = vshrq_n_s64(ni, 1), n2 = vsubq_s64(ni, n1);
    const int64x2_t bias = vdupq_n_s64(1023);
    const float64x2_t s1 = vreinterpretq_f64_s64(vshlq_n_s64(vaddq_s64(n1, bias), 52));
    const float64x2_t s2 = vreinterpretq_f64_s64(vshlq_n_s64(vaddq_s64(n2, bias), 52));
    return vmulq_f64(vmulq_f64(e, s1), s2);
}

#endif /* SOFTMAX_LIB_EXP_NEON_H */
