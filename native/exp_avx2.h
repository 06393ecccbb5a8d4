/*
 * exp_avx2.h -- exp(x) for 8 floats / 4 doubles with AVX2 + FMA.
 *
 * The classic three steps (Cephes, Eigen's pexp):
 *  1. range reduction: x = n ln2 + r, n = round(x / ln2), |r| <= ln2/2, with
 *     ln2 split in two (Cody-Waite) so that n * ln2_hi and x - n * ln2_hi are
 *     exact;
 *  2. exp(r) by a polynomial evaluated with FMA;
 *  3. exp(x) = exp(r) * 2^n, by adding n to the exponent field of exp(r).
 * Step 3 is that simple only while the result is a normal number. The rare
 * vectors with a lane beyond (a bit inside the underflow and overflow limits,
 * or NaN) take a second branch, which multiplies by 2^(n/2) twice: 2^n itself
 * is not a normal number below the underflow limit (n < -126 in float), but
 * each half is, so results that are subnormal come out correctly rounded (one
 * rounding, in the last multiplication) and overflow gives +inf.
 * That branch first clamps x to where the answer is 0 or +inf anyway, which
 * also maps -inf to 0 and +inf to +inf; _mm256_max/min return their second
 * operand when one is NaN, so x goes second and NaN passes through.
 *
 * Accuracy, measured by `python -m softmax_lib.exp_accuracy`: see that module.
 * Include only from code compiled for x86-64 (SM_HAVE_AVX2).
 */
#ifndef SOFTMAX_LIB_EXP_AVX2_H
#define SOFTMAX_LIB_EXP_AVX2_H

#include <immintrin.h>

#if defined(__GNUC__) || defined(__clang__)
#define SM_AVX2 __attribute__((target("avx2,fma")))
#else /* MSVC: no target attribute, and none needed to use the intrinsics */
#define SM_AVX2
#endif

/* Steps 1 and 2 for x already in range: exp(r), and t holding n in its low bits. */
SM_AVX2 static inline __m256 exp_reduced_ps(__m256 x, __m256 *t)
{
    /* n = round(x / ln2): adding 1.5 * 2^23 rounds to an integer, left in t's low bits */
    const __m256 shift = _mm256_set1_ps(12582912.0f);
    *t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), shift);
    const __m256 n = _mm256_sub_ps(*t, shift);
    /* ln2_hi has 9 significant bits: n * ln2_hi is exact for |n| <= 2^15 */
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    /* Cephes expf: exp(r) ~ 1 + r + r^2 p(r) on |r| <= ln2/2 */
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    return _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
}

SM_AVX2 static inline __m256 sm_exp256_ps(__m256 x)
{
    __m256 t;
    /* Usually every |x| <= 86: no clamping, and the result is a normal number
     * (|n| <= 124), so 2^n is added to the exponent field of exp(r). */
    const __m256 far = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x),
                                     _mm256_set1_ps(86.0f), _CMP_NLE_UQ);  /* or NaN */
    if (_mm256_testz_ps(far, far)) {
        const __m256 e = exp_reduced_ps(x, &t);
        const __m256i nbits = _mm256_slli_epi32(_mm256_castps_si256(t), 23);  /* n << 23 */
        return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(e), nbits));
    }
    /* Else clamp where the answer is 0 or +inf anyway: exp(88.8) > FLT_MAX,
     * exp(-104) < 2^-150, half the smallest subnormal. max/min return their
     * second operand if either is NaN: x, so NaN passes. */
    const __m256 xc = _mm256_min_ps(_mm256_set1_ps(88.8f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
    const __m256 e = exp_reduced_ps(xc, &t);
    /* and multiply by 2^n1 * 2^n2, n1 = floor(n/2): both normal for n in [-151, 128] */
    const __m256i ni = _mm256_srai_epi32(_mm256_slli_epi32(_mm256_castps_si256(t), 23), 23);
    const __m256i n1 = _mm256_srai_epi32(ni, 1);
    const __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(e, s1), s2);  /* NaN * s = NaN */
}

SM_AVX2 static inline __m256d exp_reduced_pd(__m256d x, __m256d *t)
{
    /* n = round(x / ln2), by adding 1.5 * 2^52 as in the float version */
    const __m256d shift = _mm256_set1_pd(6755399441055744.0);
    *t = _mm256_fmadd_pd(x, _mm256_set1_pd(1.4426950408889634074), shift);
    const __m256d n = _mm256_sub_pd(*t, shift);
    /* Cephes' split: ln2_hi = 22713 / 2^15 has 15 significant bits, so n * ln2_hi
     * is exact for |n| < 2^38 (here |n| <= 1075) */
    __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93145751953125e-1), x);
    r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.42860682030941723212e-6), r);
    /* Taylor to degree 13: the remainder, (ln2/2)^14 / 14!, is 4e-18 (0.04 ulp).
     * p(r) = sum r^k / (k+2)! as even(r^2) + r odd(r^2): two chains of half
     * the length, for the pipelines to overlap. */
    const __m256d r2 = _mm256_mul_pd(r, r);
    __m256d pe = _mm256_set1_pd(1.0 / 479001600.0);                   /* 1/12! */
    __m256d po = _mm256_set1_pd(1.0 / 6227020800.0);                  /* 1/13! */
    pe = _mm256_fmadd_pd(pe, r2, _mm256_set1_pd(1.0 / 3628800.0));    /* 1/10! */
    po = _mm256_fmadd_pd(po, r2, _mm256_set1_pd(1.0 / 39916800.0));   /* 1/11! */
    pe = _mm256_fmadd_pd(pe, r2, _mm256_set1_pd(1.0 / 40320.0));
    po = _mm256_fmadd_pd(po, r2, _mm256_set1_pd(1.0 / 362880.0));
    pe = _mm256_fmadd_pd(pe, r2, _mm256_set1_pd(1.0 / 720.0));
    po = _mm256_fmadd_pd(po, r2, _mm256_set1_pd(1.0 / 5040.0));
    pe = _mm256_fmadd_pd(pe, r2, _mm256_set1_pd(1.0 / 24.0));
    po = _mm256_fmadd_pd(po, r2, _mm256_set1_pd(1.0 / 120.0));
    pe = _mm256_fmadd_pd(pe, r2, _mm256_set1_pd(0.5));                /* 1/2! */
    po = _mm256_fmadd_pd(po, r2, _mm256_set1_pd(1.0 / 6.0));          /* 1/3! */
    const __m256d p = _mm256_fmadd_pd(po, r, pe);
    /* 1 + r + r^2 p: adding the 1 last keeps r's low bits */
    return _mm256_add_pd(_mm256_fmadd_pd(p, r2, r), _mm256_set1_pd(1.0));
}

SM_AVX2 static inline __m256d sm_exp256_pd(__m256d x)
{
    __m256d t;
    /* As in the float version: every |x| <= 707 gives |n| <= 1020, a normal result */
    const __m256d far = _mm256_cmp_pd(_mm256_andnot_pd(_mm256_set1_pd(-0.0), x),
                                      _mm256_set1_pd(707.0), _CMP_NLE_UQ);
    if (_mm256_testz_pd(far, far)) {
        const __m256d e = exp_reduced_pd(x, &t);
        const __m256i nbits = _mm256_slli_epi64(_mm256_castpd_si256(t), 52);  /* n << 52 */
        return _mm256_castsi256_pd(_mm256_add_epi64(_mm256_castpd_si256(e), nbits));
    }
    /* exp(710) > DBL_MAX; exp(-746) < 2^-1075, half the smallest subnormal */
    const __m256d xc = _mm256_min_pd(_mm256_set1_pd(710.0), _mm256_max_pd(_mm256_set1_pd(-746.0), x));
    const __m256d e = exp_reduced_pd(xc, &t);
    /* 2^n1 * 2^n2 for n in [-1077, 1025] */
    const __m128i ni = _mm256_cvtpd_epi32(_mm256_sub_pd(t, _mm256_set1_pd(6755399441055744.0)));
    const __m128i n1 = _mm_srai_epi32(ni, 1);
    const __m128i n2 = _mm_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi64x(1023);
    const __m256d s1 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(n1), bias), 52));
    const __m256d s2 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(n2), bias), 52));
    return _mm256_mul_pd(_mm256_mul_pd(e, s1), s2);
}

#endif /* SOFTMAX_LIB_EXP_AVX2_H */
