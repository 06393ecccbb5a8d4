/*
 * kernels.h -- internal: the per-row kernels behind the public entry points.
 *
 * Each kernel handles ONE row of n contiguous elements; dispatch.c picks the
 * kernel set once per call and loops over the rows (applying the row strides).
 * kernels_scalar.c, kernels_avx2.c and kernels_neon.c implement the same
 * list, prefix sm_scalar_ / sm_avx2_ / sm_neon_. `out` may equal an input pointer (never overlap
 * partially), so no pointer is `restrict`.
 */
#ifndef SOFTMAX_LIB_KERNELS_H
#define SOFTMAX_LIB_KERNELS_H

#include <stddef.h>

/* AVX2 code exists only on x86-64, with a GCC-compatible compiler (target
 * attribute) or MSVC (which compiles any intrinsic; setup.py gives kernels_avx2.c
 * /arch:AVX2 for VEX encoding), and not when the build asks for none. */
#if ((defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))) || defined(_M_X64)) \
    && !defined(SOFTMAX_NO_SIMD)
#define SM_HAVE_AVX2 1
#else
#define SM_HAVE_AVX2 0
#endif

/* NEON code on AArch64, where Advanced SIMD (with FMA) is architectural: no
 * run-time detection, only the compile target (and not when the build asks for none). */
#if defined(__aarch64__) && !defined(SOFTMAX_NO_SIMD)
#define SM_HAVE_NEON 1
#else
#define SM_HAVE_NEON 0
#endif

/* ln 2: the log-softmax VJP switches to expm1 where y > -ln 2 (kernels_scalar.c). */
#define SM_LN2 0.69314718055994530942

typedef void (*sm_row_f32)(const float *x, float *out, size_t n);
typedef void (*sm_row_f64)(const double *x, double *out, size_t n);
/* The forward kernels also get `next`: the distance in bytes from x to the next
 * row's x (0 for the last row), for prefetching long rows. */
typedef void (*sm_fwd_f32)(const float *x, float *out, size_t n, ptrdiff_t next);
typedef void (*sm_fwd_f64)(const double *x, double *out, size_t n, ptrdiff_t next);
typedef void (*sm_vjp_row_f32)(const float *y, const float *dy, float *out, size_t n);
typedef void (*sm_vjp_row_f64)(const double *y, const double *dy, double *out, size_t n);

/* Along an inner axis: one block of `width` columns of a C-contiguous (n, inner)
 * slice, element (i, j) of the block at x[i * inner + j] (x points at the
 * block's first column). Each column is computed on its own, walking down the
 * n rows in order, so a column's result does not depend on the block it is in:
 * dispatch.c may cut the columns into blocks (and share them among threads) as
 * it likes. width <= SM_INNER_MAX_COLS. */
#define SM_INNER_MAX_COLS 1024
typedef void (*sm_inner_fwd_f32)(const float *x, float *out, size_t n, size_t inner, size_t width);
typedef void (*sm_inner_fwd_f64)(const double *x, double *out, size_t n, size_t inner, size_t width);
typedef void (*sm_inner_vjp_f32)(const float *y, const float *dy, float *out, size_t n, size_t inner,
                                 size_t width);
typedef void (*sm_inner_vjp_f64)(const double *y, const double *dy, double *out, size_t n,
                                 size_t inner, size_t width);

#define SM_DECLARE_INNER_KERNELS(prefix)                                                        \
    void prefix##softmax_inner_f32(const float *x, float *out, size_t n, size_t inner, size_t width); \
    void prefix##log_softmax_inner_f32(const float *x, float *out, size_t n, size_t inner,       \
                                       size_t width);                                           \
    void prefix##softmax_inner_f64(const double *x, double *out, size_t n, size_t inner,         \
                                   size_t width);                                               \
    void prefix##log_softmax_inner_f64(const double *x, double *out, size_t n, size_t inner,     \
                                       size_t width);                                           \
    void prefix##softmax_vjp_inner_f32(const float *y, const float *dy, float *out, size_t n,    \
                                       size_t inner, size_t width);                             \
    void prefix##log_softmax_vjp_inner_f32(const float *y, const float *dy, float *out, size_t n, \
                                           size_t inner, size_t width);                         \
    void prefix##softmax_vjp_inner_f64(const double *y, const double *dy, double *out, size_t n, \
                                       size_t inner, size_t width);                             \
    void prefix##log_softmax_vjp_inner_f64(const double *y, const double *dy, double *out,       \
                                           size_t n, size_t inner, size_t width);

#define SM_DECLARE_KERNELS(prefix)                                                    \
    void prefix##softmax_f32(const float *x, float *out, size_t n, ptrdiff_t next);   \
    void prefix##softmax_f64(const double *x, double *out, size_t n, ptrdiff_t next); \
    void prefix##log_softmax_f32(const float *x, float *out, size_t n, ptrdiff_t next); \
    void prefix##log_softmax_f64(const double *x, double *out, size_t n, ptrdiff_t next); \
    void prefix##softmax_vjp_f32(const float *y, const float *dy, float *out, size_t n);     \
    void prefix##softmax_vjp_f64(const double *y, const double *dy, double *out, size_t n);  \
    void prefix##log_softmax_vjp_f32(const float *y, const float *dy, float *out, size_t n); \
    void prefix##log_softmax_vjp_f64(const double *y, const double *dy, double *out, size_t n); \
    void prefix##exp_f32(const float *x, float *out, size_t n);                       \
    void prefix##exp_f64(const double *x, double *out, size_t n);

SM_DECLARE_KERNELS(sm_scalar_)
SM_DECLARE_INNER_KERNELS(sm_scalar_)

#if SM_HAVE_AVX2
SM_DECLARE_KERNELS(sm_avx2_)
SM_DECLARE_INNER_KERNELS(sm_avx2_)
/* The VJPs with streaming stores, for data much larger than the caches. */
void sm_avx2_softmax_vjp_f32_stream(const float *y, const float *dy, float *out, size_t n);
void sm_avx2_softmax_vjp_f64_stream(const double *y, const double *dy, double *out, size_t n);
void sm_avx2_log_softmax_vjp_f32_stream(const float *y, const float *dy, float *out, size_t n);
void sm_avx2_log_softmax_vjp_f64_stream(const double *y, const double *dy, double *out, size_t n);
/* Bandwidth-floor kernels; nontemporal != 0 selects streaming stores. */
void sm_avx2_copy_f32(const float *src, float *dst, size_t n, int nontemporal);
void sm_avx2_triad_f32(float *a, const float *b, const float *c, float s, size_t n, int nontemporal);
#endif

#if SM_HAVE_NEON
SM_DECLARE_KERNELS(sm_neon_)
SM_DECLARE_INNER_KERNELS(sm_neon_)
#endif

/* range(ctx, first, last) over the units [0, units), split into contiguous
 * blocks on up to `threads` threads (dispatch.c's threads, for the entry points
 * of other files: kernels_masked.c). The calling thread takes the first block,
 * and returns when every block is done; each unit must come out the same
 * whichever block it is in. */
typedef void (*sm_range_fn)(const void *ctx, size_t first, size_t last);
void sm_parallel_for(size_t units, size_t threads, sm_range_fn range, const void *ctx);

#endif /* SOFTMAX_LIB_KERNELS_H */
