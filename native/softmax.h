/*
 * softmax.h -- the public C API of softmax_lib's native library.
 *
 * Softmax, log-softmax and their vector-Jacobian products over `rows` rows of
 * `n` contiguous elements each, in float32 (`_f32`) and float64 (`_f64`).
 * Consecutive rows start `*_stride` ELEMENTS apart (not bytes; may be negative
 * or 0 when rows == 1), so a row-strided view of a larger array needs no copy.
 * Pointers need only the alignment of their element type (C's own rule), no
 * vector alignment. `out` may be the very same memory as an input (same
 * pointer, same stride); any other overlap is refused (SM_ERR_LAYOUT).
 *
 * Every entry point takes the instruction set to use (an sm_isa; SM_ISA_AUTO
 * picks the best one) and returns the sm_isa it actually used (> 0), or an
 * sm_error (< 0). An explicit request is never silently downgraded (rows of 1
 * or 2 elements run the portable code on every ISA: it is the fastest there).
 *
 * This header is also the cffi cdef: native/build_ffi.py feeds cffi the text
 * between the two "cffi" marker lines, minus preprocessor lines, so keep that
 * part plain C declarations.
 */
#ifndef SOFTMAX_LIB_SOFTMAX_H
#define SOFTMAX_LIB_SOFTMAX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported: exactly these functions. build_ffi.py compiles with
 * -fvisibility=hidden (ELF, Mach-O), so nothing else leaves the library;
 * PE/COFF (Windows) exports only what is marked, i.e. Python's PyInit. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32)
#pragma GCC visibility push(default)
#endif

/* cffi-cdef-begin */

/* Instruction sets; the values are stable (Python and tests use them). */
typedef enum {
    SM_ISA_AUTO = 0,    /* request only: the best available */
    SM_ISA_SCALAR = 1,  /* portable C, every platform */
    SM_ISA_AVX2 = 2,    /* x86-64 with AVX2 + FMA and OS-enabled YMM state */
    SM_ISA_NEON = 3     /* AArch64 Advanced SIMD (architectural: every AArch64 CPU) */
} sm_isa;

/* Errors, returned as negative values. */
typedef enum {
    SM_ERR_ISA_UNAVAILABLE = -1,  /* the requested ISA is not compiled in or not on this CPU */
    SM_ERR_BAD_ISA = -2,          /* not an sm_isa value */
    SM_ERR_NULL = -3,             /* a NULL pointer with rows * n > 0 */
    SM_ERR_LAYOUT = -4,           /* a pointer not aligned for its type, or out partly
                                     overlapping an input (bounds checked, as NumPy's
                                     may_share_memory): nothing is written */
    SM_ERR_BAD_STORE = -5,        /* not an sm_store value */
    SM_ERR_SIZE = -6,             /* rows, n and a stride whose byte extent does not fit
                                     in a ptrdiff_t: nothing is read or written */
    SM_ERR_BAD_THREADS = -7       /* a thread count below 1 */
} sm_error;

/* Store kinds of the bandwidth-floor kernels below. */
typedef enum {
    SM_STORE_NORMAL = 0,       /* ordinary stores (read-for-ownership of each line) */
    SM_STORE_NONTEMPORAL = 1   /* streaming stores that bypass the cache (needs AVX2) */
} sm_store;

/* The ISA SM_ISA_AUTO resolves to: on x86-64 cpuid + xgetbv, detected once;
 * on AArch64 NEON (compiled in unless SOFTMAX_NO_SIMD). The environment
 * variable SOFTMAX_LIB_ISA (read at detection) caps it: "scalar" forces
 * SM_ISA_SCALAR; "avx2", "neon", "auto" or empty allow the best the CPU has. Other values are ignored here (C cannot warn); softmax_lib.native
 * warns about them, naming the valid values. */
int32_t sm_best_isa(void);

/* Bit mask (1 << sm_isa) of the ISAs compiled into this build, whatever the CPU. */
int32_t sm_compiled_isas(void);

/* The AVX2 VJPs write an output of more than this many bytes with streaming
 * (non-temporal) stores: the size of the last-level cache where the C library
 * reports it (glibc's sysconf), else 32 MiB. */
size_t sm_stream_bytes(void);

/* out = exp(x - max) / sum(exp(x - max)), per row.
 * @param x        first element of the first input row
 * @param x_stride distance between row starts of x, in elements
 * @param out      first element of the first output row (may equal x)
 * @param out_stride distance between row starts of out, in elements
 * @param rows     number of rows
 * @param n        elements per row
 * @param isa      an sm_isa
 * @return the sm_isa used, or a negative sm_error */
int32_t sm_softmax_f32(const float *x, ptrdiff_t x_stride, float *out, ptrdiff_t out_stride,
                       size_t rows, size_t n, int32_t isa);
int32_t sm_softmax_f64(const double *x, ptrdiff_t x_stride, double *out, ptrdiff_t out_stride,
                       size_t rows, size_t n, int32_t isa);

/* out = (x - max) - log1p(rest), per row, subtracted in that order, where rest
 * sums exp(x - max) over all entries but one maximum (other maxima count 1
 * each): log(sum) would round the top class to 0 when rest is tiny.
 * Parameters and return as sm_softmax_f32. */
int32_t sm_log_softmax_f32(const float *x, ptrdiff_t x_stride, float *out, ptrdiff_t out_stride,
                           size_t rows, size_t n, int32_t isa);
int32_t sm_log_softmax_f64(const double *x, ptrdiff_t x_stride, double *out, ptrdiff_t out_stride,
                           size_t rows, size_t n, int32_t isa);

/* out = y * (dy - sum(y * dy)), per row: the softmax VJP given y = softmax(x).
 * @param y, y_stride   softmax output rows
 * @param dy, dy_stride upstream gradient rows
 * @param out, out_stride result rows (may equal y or dy)
 * Other parameters and return as sm_softmax_f32. */
int32_t sm_softmax_vjp_f32(const float *y, ptrdiff_t y_stride, const float *dy, ptrdiff_t dy_stride,
                           float *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa);
int32_t sm_softmax_vjp_f64(const double *y, ptrdiff_t y_stride, const double *dy, ptrdiff_t dy_stride,
                           double *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa);

/* out = dy - exp(y) * sum(dy), per row: the log-softmax VJP given y = log_softmax(x);
 * where y > -ln 2, (dy - sum(dy)) - expm1(y) * sum(dy), which keeps 1 - exp(y).
 * Parameters and return as sm_softmax_vjp_f32. */
int32_t sm_log_softmax_vjp_f32(const float *y, ptrdiff_t y_stride, const float *dy, ptrdiff_t dy_stride,
                               float *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa);
int32_t sm_log_softmax_vjp_f64(const double *y, ptrdiff_t y_stride, const double *dy, ptrdiff_t dy_stride,
                               double *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa);

/* The same eight functions on `threads` threads (>= 1; SM_ERR_BAD_THREADS
 * otherwise): the rows are split into contiguous blocks, one per thread (at
 * most one per row, and at most 256), each computed by the same kernel as with
 * one thread, so the results are identical for any thread count. Threads are
 * started for the call and joined before it returns; where no POSIX threads
 * exist, or one cannot be started, the calling thread does those rows. The
 * functions above are these with threads = 1. */
int32_t sm_softmax_f32_mt(const float *x, ptrdiff_t x_stride, float *out, ptrdiff_t out_stride,
                          size_t rows, size_t n, int32_t isa, int32_t threads);
int32_t sm_softmax_f64_mt(const double *x, ptrdiff_t x_stride, double *out, ptrdiff_t out_stride,
                          size_t rows, size_t n, int32_t isa, int32_t threads);
int32_t sm_log_softmax_f32_mt(const float *x, ptrdiff_t x_stride, float *out, ptrdiff_t out_stride,
                              size_t rows, size_t n, int32_t isa, int32_t threads);
int32_t sm_log_softmax_f64_mt(const double *x, ptrdiff_t x_stride, double *out, ptrdiff_t out_stride,
                              size_t rows, size_t n, int32_t isa, int32_t threads);
int32_t sm_softmax_vjp_f32_mt(const float *y, ptrdiff_t y_stride, const float *dy, ptrdiff_t dy_stride,
                              float *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa,
                              int32_t threads);
int32_t sm_softmax_vjp_f64_mt(const double *y, ptrdiff_t y_stride, const double *dy, ptrdiff_t dy_stride,
                              double *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa,
                              int32_t threads);
int32_t sm_log_softmax_vjp_f32_mt(const float *y, ptrdiff_t y_stride, const float *dy, ptrdiff_t dy_stride,
                                  float *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa,
                                  int32_t threads);
int32_t sm_log_softmax_vjp_f64_mt(const double *y, ptrdiff_t y_stride, const double *dy, ptrdiff_t dy_stride,
                                  double *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa,
                                  int32_t threads);

/* The four functions along the middle axis of a C-contiguous array of shape
 * (outer, n, inner) -- any axis but the last of a C-contiguous array --
 * without a transposing copy: element (o, i, k) at x[(o * n + i) * inner + k],
 * the function taken over i for each (o, k). The result has the same layout
 * and the same values as the row functions give for the transposed data (the
 * same accuracy rules: float32 sums in double, log1p, expm1). out may be an
 * input itself (the same pointer); any other overlap: SM_ERR_LAYOUT. outer n
 * inner elements whose byte size does not fit in a ptrdiff_t: SM_ERR_SIZE.
 * The _mt forms share the columns among `threads` threads (>= 1), with results
 * identical for any thread count, as the row functions' _mt forms. Every ISA
 * has them (scalar, AVX2, NEON).
 * @param x, y, dy  first element of the (outer, n, inner) input(s)
 * @param out       first element of the (outer, n, inner) output
 * @param outer     product of the axes before the softmax axis (1 for axis 0)
 * @param n         length of the softmax axis
 * @param inner     product of the axes after it
 * @param isa       an sm_isa
 * @param threads   (the _mt forms) the thread count, >= 1
 * @return the sm_isa used, or a negative sm_error */
int32_t sm_softmax_inner_f32(const float *x, float *out, size_t outer, size_t n, size_t inner,
                             int32_t isa);
int32_t sm_softmax_inner_f64(const double *x, double *out, size_t outer, size_t n, size_t inner,
                             int32_t isa);
int32_t sm_log_softmax_inner_f32(const float *x, float *out, size_t outer, size_t n, size_t inner,
                                 int32_t isa);
int32_t sm_log_softmax_inner_f64(const double *x, double *out, size_t outer, size_t n, size_t inner,
                                 int32_t isa);
int32_t sm_softmax_vjp_inner_f32(const float *y, const float *dy, float *out, size_t outer,
                                 size_t n, size_t inner, int32_t isa);
int32_t sm_softmax_vjp_inner_f64(const double *y, const double *dy, double *out, size_t outer,
                                 size_t n, size_t inner, int32_t isa);
int32_t sm_log_softmax_vjp_inner_f32(const float *y, const float *dy, float *out, size_t outer,
                                     size_t n, size_t inner, int32_t isa);
int32_t sm_log_softmax_vjp_inner_f64(const double *y, const double *dy, double *out, size_t outer,
                                     size_t n, size_t inner, int32_t isa);
int32_t sm_softmax_inner_f32_mt(const float *x, float *out, size_t outer, size_t n, size_t inner,
                                int32_t isa, int32_t threads);
int32_t sm_softmax_inner_f64_mt(const double *x, double *out, size_t outer, size_t n, size_t inner,
                                int32_t isa, int32_t threads);
int32_t sm_log_softmax_inner_f32_mt(const float *x, float *out, size_t outer, size_t n,
                                    size_t inner, int32_t isa, int32_t threads);
int32_t sm_log_softmax_inner_f64_mt(const double *x, double *out, size_t outer, size_t n,
                                    size_t inner, int32_t isa, int32_t threads);
int32_t sm_softmax_vjp_inner_f32_mt(const float *y, const float *dy, float *out, size_t outer,
                                    size_t n, size_t inner, int32_t isa, int32_t threads);
int32_t sm_softmax_vjp_inner_f64_mt(const double *y, const double *dy, double *out, size_t outer,
                                    size_t n, size_t inner, int32_t isa, int32_t threads);
int32_t sm_log_softmax_vjp_inner_f32_mt(const float *y, const float *dy, float *out, size_t outer,
                                        size_t n, size_t inner, int32_t isa, int32_t threads);
int32_t sm_log_softmax_vjp_inner_f64_mt(const double *y, const double *dy, double *out,
                                        size_t outer, size_t n, size_t inner, int32_t isa,
                                        int32_t threads);

/* Masked softmax / log-softmax (where=, JAX's meaning): a row is its entries
 * whose mask byte is nonzero; outside them softmax writes 0 and log-softmax
 * -inf, and a row with no entry gives zeros / -inf (never NaN).
 * @param w, w_stride the mask: n bytes per row (nonzero: take part), rows
 *                    w_stride bytes apart (0: one mask row for every row); it
 *                    must not overlap out
 * Other parameters as sm_softmax_f32; out may equal x (same stride). Scalar and
 * AVX2 kernels: SM_ISA_NEON returns SM_ERR_ISA_UNAVAILABLE, and SM_ISA_AUTO is
 * AVX2 or scalar. Each function has an _mt variant with the threads of
 * sm_softmax_f32_mt (the rows in contiguous blocks; identical results for any
 * count); without _mt, one thread. @return the sm_isa used, or a negative sm_error */
int32_t sm_softmax_masked_f32(const float *x, ptrdiff_t x_stride, const uint8_t *w, ptrdiff_t w_stride,
                              float *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa);
int32_t sm_softmax_masked_f64(const double *x, ptrdiff_t x_stride, const uint8_t *w, ptrdiff_t w_stride,
                              double *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa);
int32_t sm_log_softmax_masked_f32(const float *x, ptrdiff_t x_stride, const uint8_t *w, ptrdiff_t w_stride,
                                  float *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa);
int32_t sm_log_softmax_masked_f64(const double *x, ptrdiff_t x_stride, const uint8_t *w, ptrdiff_t w_stride,
                                  double *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa);
int32_t sm_softmax_masked_f32_mt(const float *x, ptrdiff_t x_stride, const uint8_t *w,
                                 ptrdiff_t w_stride, float *out, ptrdiff_t out_stride, size_t rows,
                                 size_t n, int32_t isa, int32_t threads);
int32_t sm_softmax_masked_f64_mt(const double *x, ptrdiff_t x_stride, const uint8_t *w,
                                 ptrdiff_t w_stride, double *out, ptrdiff_t out_stride,
                                 size_t rows, size_t n, int32_t isa, int32_t threads);
int32_t sm_log_softmax_masked_f32_mt(const float *x, ptrdiff_t x_stride, const uint8_t *w,
                                     ptrdiff_t w_stride, float *out, ptrdiff_t out_stride,
                                     size_t rows, size_t n, int32_t isa, int32_t threads);
int32_t sm_log_softmax_masked_f64_mt(const double *x, ptrdiff_t x_stride, const uint8_t *w,
                                     ptrdiff_t w_stride, double *out, ptrdiff_t out_stride,
                                     size_t rows, size_t n, int32_t isa, int32_t threads);

/* The masked VJPs (where=, the forward pass's mask): sm_softmax_vjp_f32 and
 * sm_log_softmax_vjp_f32 over the masked-in entries of each row (<y, dy> and
 * sum(dy) taken over them only), 0 outside them whatever y and dy hold there
 * (NaN and inf included); a row with no entry gives zeros.
 * @param w, w_stride the mask, as sm_softmax_masked_f32 (must not overlap out)
 * Other parameters as sm_softmax_vjp_f32 (out may equal y or dy, same stride);
 * ISAs, threads and return as sm_softmax_masked_f32. */
int32_t sm_softmax_vjp_masked_f32(const float *y, ptrdiff_t y_stride, const float *dy, ptrdiff_t dy_stride,
                                  const uint8_t *w, ptrdiff_t w_stride, float *out, ptrdiff_t out_stride,
                                  size_t rows, size_t n, int32_t isa);
int32_t sm_softmax_vjp_masked_f64(const double *y, ptrdiff_t y_stride, const double *dy, ptrdiff_t dy_stride,
                                  const uint8_t *w, ptrdiff_t w_stride, double *out, ptrdiff_t out_stride,
                                  size_t rows, size_t n, int32_t isa);
int32_t sm_log_softmax_vjp_masked_f32(const float *y, ptrdiff_t y_stride, const float *dy,
                                      ptrdiff_t dy_stride, const uint8_t *w, ptrdiff_t w_stride,
                                      float *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa);
int32_t sm_log_softmax_vjp_masked_f64(const double *y, ptrdiff_t y_stride, const double *dy,
                                      ptrdiff_t dy_stride, const uint8_t *w, ptrdiff_t w_stride,
                                      double *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa);
int32_t sm_softmax_vjp_masked_f32_mt(const float *y, ptrdiff_t y_stride, const float *dy,
                                     ptrdiff_t dy_stride, const uint8_t *w, ptrdiff_t w_stride,
                                     float *out, ptrdiff_t out_stride, size_t rows, size_t n,
                                     int32_t isa, int32_t threads);
int32_t sm_softmax_vjp_masked_f64_mt(const double *y, ptrdiff_t y_stride, const double *dy,
                                     ptrdiff_t dy_stride, const uint8_t *w, ptrdiff_t w_stride,
                                     double *out, ptrdiff_t out_stride, size_t rows, size_t n,
                                     int32_t isa, int32_t threads);
int32_t sm_log_softmax_vjp_masked_f32_mt(const float *y, ptrdiff_t y_stride, const float *dy,
                                         ptrdiff_t dy_stride, const uint8_t *w, ptrdiff_t w_stride,
                                         float *out, ptrdiff_t out_stride, size_t rows, size_t n,
                                         int32_t isa, int32_t threads);
int32_t sm_log_softmax_vjp_masked_f64_mt(const double *y, ptrdiff_t y_stride, const double *dy,
                                         ptrdiff_t dy_stride, const uint8_t *w, ptrdiff_t w_stride,
                                         double *out, ptrdiff_t out_stride, size_t rows, size_t n,
                                         int32_t isa, int32_t threads);

/* out[r * out_stride] = log(sum(exp(x))) of row r (of its masked-in entries when
 * w is not NULL), as m + log1p(rest) with the maxima counted apart; NaN in a row
 * gives NaN, else +inf gives +inf; only -inf, or no entry (n may be 0), -inf.
 * out must not overlap x. ISAs, threads (_mt) and return as sm_softmax_masked_f32. */
int32_t sm_logsumexp_f32(const float *x, ptrdiff_t x_stride, const uint8_t *w, ptrdiff_t w_stride,
                         float *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa);
int32_t sm_logsumexp_f64(const double *x, ptrdiff_t x_stride, const uint8_t *w, ptrdiff_t w_stride,
                         double *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa);
int32_t sm_logsumexp_f32_mt(const float *x, ptrdiff_t x_stride, const uint8_t *w,
                            ptrdiff_t w_stride, float *out, ptrdiff_t out_stride, size_t rows,
                            size_t n, int32_t isa, int32_t threads);
int32_t sm_logsumexp_f64_mt(const double *x, ptrdiff_t x_stride, const uint8_t *w,
                            ptrdiff_t w_stride, double *out, ptrdiff_t out_stride, size_t rows,
                            size_t n, int32_t isa, int32_t threads);

/* out[i] = exp(x[i]) with the exp the given ISA's kernels use (libm for scalar);
 * for accuracy measurements. @param n number of elements; out may equal x.
 * @return the sm_isa used, or a negative sm_error */
int32_t sm_exp_f32(const float *x, float *out, size_t n, int32_t isa);
int32_t sm_exp_f64(const double *x, double *out, size_t n, int32_t isa);

/* Memory-bandwidth floor kernels (float32, n elements, no overlap):
 * copy: dst[i] = src[i]; triad: a[i] = b[i] + s * c[i].
 * @param store an sm_store
 * @return the sm_isa used (AVX2 loads/stores whenever available), or a negative
 *         sm_error (SM_STORE_NONTEMPORAL without AVX2: SM_ERR_ISA_UNAVAILABLE;
 *         not an sm_store: SM_ERR_BAD_STORE) */
int32_t sm_copy_f32(const float *src, float *dst, size_t n, int32_t store);
int32_t sm_triad_f32(float *a, const float *b, const float *c, float s, size_t n, int32_t store);

/* cffi-cdef-end */

#if (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* SOFTMAX_LIB_SOFTMAX_H */
