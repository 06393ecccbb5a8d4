/* The O(n^2) softmax backward pass of the Stack Overflow question's third answer,
 * written for chapter 8 as kernels to time against the library's O(n) VJP.
 *
 * For every output i it multiplies row i of the Jacobian J = diag(s) - s s^T by g:
 *   dx_i = s_i g_i - sum_j s_i s_j g_j,
 * which recomputes the same sum_j s_j g_j n times. Not library code: a teaching
 * file, compiled by the chapter (with -mavx2 -mfma where the CPU has them). */
#include <stddef.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

/* naive-scalar-begin */
void naive_vjp_scalar(const float *s, const float *g, float *dx, size_t rows, size_t n)
{
    for (size_t r = 0; r < rows; r++, s += n, g += n, dx += n)
        for (size_t i = 0; i < n; i++) {
            float acc = 0.0f;              /* one accumulator: each add waits */
            for (size_t j = 0; j < n; j++) /* for the previous one            */
                acc += -s[i] * s[j] * g[j];
            dx[i] = acc + s[i] * g[i];
        }
}
/* naive-scalar-end */

#if defined(__AVX2__) && defined(__FMA__)
/* naive-avx2-begin */
/* The answer's SIMD loop: 8 lanes, one accumulator, n a multiple of 8 (the
 * caller checks), and the horizontal sum done by storing the register. */
void naive_vjp_avx2(const float *s, const float *g, float *dx, size_t rows, size_t n)
{
    for (size_t r = 0; r < rows; r++, s += n, g += n, dx += n)
        for (size_t i = 0; i < n; i++) {
            __m256 minus_si = _mm256_set1_ps(-s[i]);
            __m256 acc = _mm256_setzero_ps();
            for (size_t j = 0; j < n; j += 8) {
                __m256 sg = _mm256_mul_ps(_mm256_loadu_ps(s + j),
                                          _mm256_loadu_ps(g + j));
                acc = _mm256_fmadd_ps(minus_si, sg, acc);
            }
            float lanes[8];
            _mm256_storeu_ps(lanes, acc);
            float sum = 0.0f;
            for (int k = 0; k < 8; k++)
                sum += lanes[k];
            dx[i] = sum + s[i] * g[i];
        }
}
/* naive-avx2-end */

/* The same with four accumulators (n a multiple of 32): four independent
 * chains of additions keep the adder busy while each waits on its latency. */
void naive_vjp_avx2_acc4(const float *s, const float *g, float *dx, size_t rows,
                         size_t n)
{
    for (size_t r = 0; r < rows; r++, s += n, g += n, dx += n)
        for (size_t i = 0; i < n; i++) {
            __m256 m = _mm256_set1_ps(-s[i]);
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (size_t j = 0; j < n; j += 32) {
#define SG(k) _mm256_mul_ps(_mm256_loadu_ps(s + j + k), _mm256_loadu_ps(g + j + k))
                a0 = _mm256_fmadd_ps(m, SG(0), a0);
                a1 = _mm256_fmadd_ps(m, SG(8), a1);
                a2 = _mm256_fmadd_ps(m, SG(16), a2);
                a3 = _mm256_fmadd_ps(m, SG(24), a3);
#undef SG
            }
            float lanes[8];
            _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1),
                                                  _mm256_add_ps(a2, a3)));
            float sum = 0.0f;
            for (int k = 0; k < 8; k++)
                sum += lanes[k];
            dx[i] = sum + s[i] * g[i];
        }
}
#endif

/* 1 when the AVX2 kernels were compiled in. */
int naive_has_avx2(void)
{
#if defined(__AVX2__) && defined(__FMA__)
    return 1;
#else
    return 0;
#endif
}
