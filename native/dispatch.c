/*
 * dispatch.c -- ISA detection (once) and the public entry points of softmax.h.
 *
 * Detection reads cpuid and xgetbv itself rather than __builtin_cpu_supports,
 * which some toolchains leave returning 0: AVX2 needs the CPU's AVX, AVX2 and
 * FMA bits AND the OS saving the YMM registers (OSXSAVE, then XCR0 bits 1-2).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h> /* sysconf */
#endif

#include "softmax.h"
#include "kernels.h"

#if SM_HAVE_AVX2 && defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>

/* MSVC has no <cpuid.h> nor GNU asm: the same checks through its intrinsics. */
static int cpu_has_avx2_fma(void)
{
    int r[4];  /* eax, ebx, ecx, edx */
    __cpuid(r, 0);
    const int max_leaf = r[0];
    if (max_leaf < 7)
        return 0;
    __cpuid(r, 1);
    const unsigned int ecx = (unsigned int)r[2];
    if (!((ecx >> 27) & 1 && (ecx >> 28) & 1 && (ecx >> 12) & 1))  /* OSXSAVE, AVX, FMA */
        return 0;
    if ((_xgetbv(0) & 0x6) != 0x6)  /* XMM and YMM state enabled by the OS */
        return 0;
    __cpuidex(r, 7, 0);
    return ((unsigned int)r[1] >> 5) & 1;  /* AVX2 */
}
#elif SM_HAVE_AVX2
#include <cpuid.h>

static int cpu_has_avx2_fma(void)
{
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return 0;
    const int osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1, fma = (ecx >> 12) & 1;
    if (!(osxsave && avx && fma))
        return 0;
    unsigned int xcr0_lo, xcr0_hi;
    /* xgetbv as raw asm: the _xgetbv intrinsic would need -mxsave for the whole file */
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    (void)xcr0_hi;
    if ((xcr0_lo & 0x6) != 0x6)  /* XMM and YMM state enabled by the OS */
        return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
        return 0;
    return (ebx >> 5) & 1;  /* AVX2 */
}
#endif

static int32_t detect_best_isa(void)
{
    /* SOFTMAX_LIB_ISA: "scalar" caps the choice; "avx2", "neon", "auto", "" or anything
     * else leave it to the CPU (softmax_lib.native warns about other values) */
    const char *forced = getenv("SOFTMAX_LIB_ISA");
    if (forced != NULL && strcmp(forced, "scalar") == 0)
        return SM_ISA_SCALAR;
#if SM_HAVE_AVX2
    if (cpu_has_avx2_fma())
        return SM_ISA_AVX2;
#endif
#if SM_HAVE_NEON
    return SM_ISA_NEON;  /* architectural on AArch64 */
#endif
    return SM_ISA_SCALAR;
}

#if defined(__GNUC__) || defined(__clang__)
#define LOAD_RELAXED(p) __atomic_load_n(p, __ATOMIC_RELAXED)
#define STORE_RELAXED(p, v) __atomic_store_n(p, v, __ATOMIC_RELAXED)
#else /* softmax_lib.native calls sm_best_isa once at import, before any threads */
#define LOAD_RELAXED(p) (*(p))
#define STORE_RELAXED(p, v) (*(p) = (v))
#endif

int32_t sm_best_isa(void)
{
    /* Detected on first use; threads racing here compute the same value. */
    static int32_t best = 0;
    int32_t isa = LOAD_RELAXED(&best);
    if (isa == 0) {
        isa = detect_best_isa();
        STORE_RELAXED(&best, isa);
    }
    return isa;
}

int32_t sm_compiled_isas(void)
{
    return (1 << SM_ISA_SCALAR) | (SM_HAVE_AVX2 << SM_ISA_AVX2) | (SM_HAVE_NEON << SM_ISA_NEON);
}

/* The ISA to run for a request, or a negative sm_error. */
static int32_t resolve(int32_t isa)
{
    const int32_t best = sm_best_isa();
    switch (isa) {
    case SM_ISA_AUTO:
        return best;
    case SM_ISA_SCALAR:
        return SM_ISA_SCALAR;
    case SM_ISA_AVX2:
        return best == SM_ISA_AVX2 ? SM_ISA_AVX2 : SM_ERR_ISA_UNAVAILABLE;
    case SM_ISA_NEON:
        return best == SM_ISA_NEON ? SM_ISA_NEON : SM_ERR_ISA_UNAVAILABLE;
    default:
        return SM_ERR_BAD_ISA;
    }
}

#if SM_HAVE_AVX2
#define PICK(isa, name) ((isa) == SM_ISA_AVX2 ? sm_avx2_##name : sm_scalar_##name)
/* for the VJPs: their streaming-store kernels when the output is large */
#define PICK_VJP(isa, name, rows, n, size) \
    (stream(isa, rows, n, size) ? sm_avx2_##name##_stream : PICK(isa, name))
#elif SM_HAVE_NEON
#define PICK(isa, name) ((isa) == SM_ISA_NEON ? sm_neon_##name : sm_scalar_##name)
#define PICK_VJP(isa, name, rows, n, size) PICK(isa, name)  /* no streaming variants */
#else
#define PICK(isa, name) sm_scalar_##name
#define PICK_VJP(isa, name, rows, n, size) sm_scalar_##name
#endif

/* The address range [*lo, *hi) that `rows` rows of n elements of `size` bytes,
 * starting `stride` elements apart, span (stride may be negative). */
static void span(const void *p, ptrdiff_t stride, size_t rows, size_t n, size_t size,
                 uintptr_t *lo, uintptr_t *hi)
{
    const uintptr_t last = (uintptr_t)((ptrdiff_t)(rows - 1) * stride * (ptrdiff_t)size);
    const int backwards = stride < 0 && rows > 1;
    *lo = (uintptr_t)p + (backwards ? last : 0);
    *hi = (uintptr_t)p + (backwards ? 0 : last) + n * size;
}

/* Whether `out` may be written while `in` is read row by row: the very same
 * rows, or no byte in common between their ranges. */
static int may_write(const void *in, ptrdiff_t in_stride, const void *out, ptrdiff_t out_stride,
                     size_t rows, size_t n, size_t size)
{
    if (in == out && (in_stride == out_stride || rows == 1))
        return 1;
    uintptr_t in_lo, in_hi, out_lo, out_hi;
    span(in, in_stride, rows, n, size, &in_lo, &in_hi);
    span(out, out_stride, rows, n, size, &out_lo, &out_hi);
    return in_hi <= out_lo || out_hi <= in_lo;
}

#if defined(_MSC_VER) && !defined(__clang__)
#define ALIGNOF(T) __alignof(T)  /* MSVC's C has _Alignof only under /std:c11 */
#else
#define ALIGNOF(T) _Alignof(T)
#endif
#define MISALIGNED(p, T) (((uintptr_t)(p) % ALIGNOF(T)) != 0)

/* Whether `rows` rows of n elements of `size` bytes, `stride` elements apart,
 * span a byte range that fits in a ptrdiff_t (so that span() and the row
 * pointers cannot overflow): n size + (rows - 1) |stride| size <= PTRDIFF_MAX.
 * Each product is checked by division before it is formed. */
static int sizes_fit(size_t rows, size_t n, ptrdiff_t stride, size_t size)
{
    const size_t max = (size_t)PTRDIFF_MAX;
    if (n > max / size)
        return 0;
    const size_t row_bytes = n * size;
    /* |stride| without negating PTRDIFF_MIN in signed arithmetic */
    const size_t step = stride < 0 ? (size_t)0 - (size_t)stride : (size_t)stride;
    if (rows <= 1 || step == 0)
        return 1;
    if (step > max / size)
        return 0;
    return rows - 1 <= (max - row_bytes) / (step * size);
}

/* Rows shorter than `below` run the scalar kernels whatever the ISA: for 1 or 2
 * elements (and float64 softmax VJPs of up to 3) a vector exp or reduction
 * costs more than the scalar loop; 4096 rows measured 1.1-2.6x slower with
 * the AVX2 kernels, 1.0x this way. */
#define SCALAR_BELOW 3
#define SCALAR_BELOW_SOFTMAX_VJP_F64 4

/* ---------------------------------------------------------------- threads */

/* Rows split over threads in contiguous blocks, each row computed by the same
 * kernel as with one thread: the results are identical for any thread count.
 * POSIX threads where they exist, started per call and joined before it
 * returns (the Python caller decides when a call is large enough to pay for
 * that); elsewhere, and whenever a thread cannot be started, the calling
 * thread runs the rows itself. */
#if defined(__unix__) || defined(__APPLE__)
#define SM_HAVE_THREADS 1
#include <pthread.h>
#else
#define SM_HAVE_THREADS 0
#endif
#define SM_MAX_THREADS 256

enum { JOB_FWD_F32, JOB_FWD_F64, JOB_VJP_F32, JOB_VJP_F64 };

/* One call's work: `units` units (rows, or blocks of columns along an inner
 * axis) that `range` computes from first to last, each unit on its own. For
 * rows: byte pointers and byte strides, and the row kernel. */
typedef struct sm_job {
    void (*range)(const struct sm_job *j, size_t first, size_t last);
    size_t units;
    int kind;
    union {
        sm_fwd_f32 fwd_f32;
        sm_fwd_f64 fwd_f64;
        sm_vjp_row_f32 vjp_f32;
        sm_vjp_row_f64 vjp_f64;
        sm_inner_fwd_f32 inner_fwd_f32;
        sm_inner_fwd_f64 inner_fwd_f64;
        sm_inner_vjp_f32 inner_vjp_f32;
        sm_inner_vjp_f64 inner_vjp_f64;
    } kernel;
    const char *a, *b;  /* x, or y and dy */
    char *out;
    ptrdiff_t sa, sb, so;
    size_t rows, n;
    size_t inner, block, blocks;  /* along an inner axis: see INNER below */
    sm_range_fn ctx_range;        /* sm_parallel_for's */
    const void *ctx;
} sm_job;

static void run_rows(const sm_job *j, size_t first, size_t last)
{
    for (size_t r = first; r < last; ++r) {
        const char *a = j->a + (ptrdiff_t)r * j->sa, *b = j->b + (ptrdiff_t)r * j->sb;
        char *out = j->out + (ptrdiff_t)r * j->so;
        const ptrdiff_t next = r + 1 < j->rows ? j->sa : 0;  /* where to prefetch */
        switch (j->kind) {
        case JOB_FWD_F32:
            j->kernel.fwd_f32((const float *)(const void *)a, (float *)(void *)out, j->n, next);
            break;
        case JOB_FWD_F64:
            j->kernel.fwd_f64((const double *)(const void *)a, (double *)(void *)out, j->n, next);
            break;
        case JOB_VJP_F32:
            j->kernel.vjp_f32((const float *)(const void *)a, (const float *)(const void *)b,
                              (float *)(void *)out, j->n);
            break;
        default:
            j->kernel.vjp_f64((const double *)(const void *)a, (const double *)(const void *)b,
                              (double *)(void *)out, j->n);
        }
    }
}

#if SM_HAVE_THREADS
typedef struct {
    const sm_job *job;
    size_t first, last;
} sm_block;

/* The first row of block t of `blocks` (sizes differ by at most one row). */
static size_t block_start(size_t rows, size_t blocks, size_t t)
{
    const size_t base = rows / blocks, extra = rows % blocks;
    return t * base + (t < extra ? t : extra);
}

static void *block_main(void *arg)
{
    const sm_block *b = (const sm_block *)arg;
    b->job->range(b->job, b->first, b->last);
    return NULL;
}
#endif

static void run_job(const sm_job *j, size_t threads)
{
    if (threads > j->units)
        threads = j->units;
    if (threads > SM_MAX_THREADS)
        threads = SM_MAX_THREADS;
#if SM_HAVE_THREADS
    if (threads > 1) {
        pthread_t ids[SM_MAX_THREADS];
        sm_block blocks[SM_MAX_THREADS];
        int started[SM_MAX_THREADS];
        for (size_t t = 1; t < threads; ++t) {
            blocks[t].job = j;
            blocks[t].first = block_start(j->units, threads, t);
            blocks[t].last = block_start(j->units, threads, t + 1);
            started[t] = pthread_create(&ids[t], NULL, block_main, &blocks[t]) == 0;
        }
        j->range(j, 0, block_start(j->units, threads, 1));
        for (size_t t = 1; t < threads; ++t) {
            if (started[t])
                pthread_join(ids[t], NULL);
            else  /* could not start it: this thread does those rows */
                j->range(j, blocks[t].first, blocks[t].last);
        }
        return;
    }
#endif
    j->range(j, 0, j->units);
}

static void run_ctx(const sm_job *j, size_t first, size_t last)
{
    j->ctx_range(j->ctx, first, last);
}

void sm_parallel_for(size_t units, size_t threads, sm_range_fn range, const void *ctx)
{
    const sm_job job = {.range = run_ctx, .units = units, .ctx_range = range, .ctx = ctx};
    run_job(&job, threads);
}

/* VJP outputs larger than the last-level cache are written with streaming
 * stores: they cannot stay in it anyway, and skipping the read of each
 * destination line saves a quarter of the memory traffic. Smaller ones are
 * written normally and stay in the cache for whatever reads them next.
 * Measured at 256 x 32768 float32 (32 MiB out): streaming 30% faster on the
 * machine that introduced it (a fixed 32 MiB threshold then), 15% slower on a
 * Xeon with a 33 MiB L3 (CHANGELOG). Threads racing here compute the same value. */
size_t sm_stream_bytes(void)
{
    static size_t bytes = 0;
    size_t b = LOAD_RELAXED(&bytes);
    if (b == 0) {
        long llc = -1;
#ifdef _SC_LEVEL3_CACHE_SIZE
        llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
        b = llc > 0 ? (size_t)llc : (size_t)32 << 20;
        STORE_RELAXED(&bytes, b);
    }
    return b;
}

#if SM_HAVE_AVX2
static int stream(int32_t use, size_t rows, size_t n, size_t size)
{
    return use == SM_ISA_AVX2 && rows > sm_stream_bytes() / size / n;
}
#endif

/* One forward entry point: resolve the ISA, check the arguments, then the rows
 * (run_job: one kernel call per row, on `threads` threads); the entry point
 * without _mt is the same with one thread. */
#define FORWARD(name, T, rowfn, job_kind)                                               \
    int32_t sm_##name##_mt(const T *x, ptrdiff_t x_stride, T *out, ptrdiff_t out_stride, \
                           size_t rows, size_t n, int32_t isa, int32_t threads)         \
    {                                                                                   \
        const int32_t use = resolve(isa);                                               \
        if (use < 0)                                                                    \
            return use;                                                                 \
        if (threads < 1)                                                                \
            return SM_ERR_BAD_THREADS;                                                  \
        if (rows == 0 || n == 0)                                                        \
            return use;                                                                 \
        if (x == NULL || out == NULL)                                                   \
            return SM_ERR_NULL;                                                         \
        if (!sizes_fit(rows, n, x_stride, sizeof(T)) ||                                 \
            !sizes_fit(rows, n, out_stride, sizeof(T)))                                 \
            return SM_ERR_SIZE;                                                         \
        if (MISALIGNED(x, T) || MISALIGNED(out, T) ||                                   \
            !may_write(x, x_stride, out, out_stride, rows, n, sizeof(T)))               \
            return SM_ERR_LAYOUT;                                                       \
        sm_job job;                                                                     \
        job.range = run_rows;                                                           \
        job.units = rows;                                                               \
        job.kind = job_kind;                                                            \
        job.kernel.job_field = n < SCALAR_BELOW ? sm_scalar_##name : PICK(use, name);   \
        job.a = (const char *)x;                                                        \
        job.b = job.a;                                                                  \
        job.out = (char *)out;                                                          \
        job.sa = x_stride * (ptrdiff_t)sizeof(T);                                       \
        job.sb = job.sa;                                                                \
        job.so = out_stride * (ptrdiff_t)sizeof(T);                                     \
        job.rows = rows;                                                                \
        job.n = n;                                                                      \
        run_job(&job, (size_t)threads);                                                 \
        return use;                                                                     \
    }                                                                                   \
    int32_t sm_##name(const T *x, ptrdiff_t x_stride, T *out, ptrdiff_t out_stride,     \
                      size_t rows, size_t n, int32_t isa)                               \
    {                                                                                   \
        return sm_##name##_mt(x, x_stride, out, out_stride, rows, n, isa, 1);           \
    }

#define BACKWARD(name, T, rowfn, below, job_kind)                                         \
    int32_t sm_##name##_mt(const T *y, ptrdiff_t y_stride, const T *dy, ptrdiff_t dy_stride, \
                           T *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa, \
                           int32_t threads)                                                \
    {                                                                                      \
        const int32_t use = resolve(isa);                                                  \
        if (use < 0)                                                                       \
            return use;                                                                    \
        if (threads < 1)                                                                   \
            return SM_ERR_BAD_THREADS;                                                     \
        if (rows == 0 || n == 0)                                                           \
            return use;                                                                    \
        if (y == NULL || dy == NULL || out == NULL)                                        \
            return SM_ERR_NULL;                                                            \
        if (!sizes_fit(rows, n, y_stride, sizeof(T)) ||                                    \
            !sizes_fit(rows, n, dy_stride, sizeof(T)) ||                                   \
            !sizes_fit(rows, n, out_stride, sizeof(T)))                                    \
            return SM_ERR_SIZE;                                                            \
        if (MISALIGNED(y, T) || MISALIGNED(dy, T) || MISALIGNED(out, T) ||                 \
            !may_write(y, y_stride, out, out_stride, rows, n, sizeof(T)) ||                \
            !may_write(dy, dy_stride, out, out_stride, rows, n, sizeof(T)))                \
            return SM_ERR_LAYOUT;                                                          \
        sm_job job;                                                                        \
        job.range = run_rows;                                                              \
        job.units = rows;                                                                  \
        job.kind = job_kind;                                                               \
        job.kernel.job_field = n < (below) ? sm_scalar_##name                              \
                                           : PICK_VJP(use, name, rows, n, sizeof(T));      \
        job.a = (const char *)y;                                                           \
        job.b = (const char *)dy;                                                          \
        job.out = (char *)out;                                                             \
        job.sa = y_stride * (ptrdiff_t)sizeof(T);                                          \
        job.sb = dy_stride * (ptrdiff_t)sizeof(T);                                         \
        job.so = out_stride * (ptrdiff_t)sizeof(T);                                        \
        job.rows = rows;                                                                   \
        job.n = n;                                                                         \
        run_job(&job, (size_t)threads);                                                    \
        return use;                                                                        \
    }                                                                                      \
    int32_t sm_##name(const T *y, ptrdiff_t y_stride, const T *dy, ptrdiff_t dy_stride,    \
                      T *out, ptrdiff_t out_stride, size_t rows, size_t n, int32_t isa)    \
    {                                                                                      \
        return sm_##name##_mt(y, y_stride, dy, dy_stride, out, out_stride, rows, n, isa, 1); \
    }

#define job_field fwd_f32
FORWARD(softmax_f32, float, sm_fwd_f32, JOB_FWD_F32)
FORWARD(log_softmax_f32, float, sm_fwd_f32, JOB_FWD_F32)
#undef job_field
#define job_field fwd_f64
FORWARD(softmax_f64, double, sm_fwd_f64, JOB_FWD_F64)
FORWARD(log_softmax_f64, double, sm_fwd_f64, JOB_FWD_F64)
#undef job_field
#define job_field vjp_f32
BACKWARD(softmax_vjp_f32, float, sm_vjp_row_f32, SCALAR_BELOW, JOB_VJP_F32)
BACKWARD(log_softmax_vjp_f32, float, sm_vjp_row_f32, SCALAR_BELOW, JOB_VJP_F32)
#undef job_field
#define job_field vjp_f64
BACKWARD(softmax_vjp_f64, double, sm_vjp_row_f64, SCALAR_BELOW_SOFTMAX_VJP_F64, JOB_VJP_F64)
BACKWARD(log_softmax_vjp_f64, double, sm_vjp_row_f64, SCALAR_BELOW, JOB_VJP_F64)
#undef job_field

/* ------------------------------------------------------ along an inner axis */

/* The middle axis of a C-contiguous (outer, n, inner) array, without a
 * transposing copy: each (n, inner) slice is cut into blocks of columns, and
 * a block kernel (kernels.h) walks down its n rows. A block is as wide as the
 * slice, up to SM_INNER_MAX_COLS columns (4 KB of a float32 row), whatever n:
 * each row is usually pages away from the next, and what costs is a short
 * contiguous run per row, not a block too large for the caches (on the Xeon
 * that measured it, whose L3 reuse barely beats memory). Measured at 1024 x
 * 4096 and 32768 x 256 float32, axis 0 over axis -1 of the same data, one
 * thread (CHANGELOG): blocks of 1024 columns beat blocks sized to keep
 * 4 MB, 2 MB or 256 KB per pass, and 2048 columns gained nothing more. The
 * units shared among threads are the (slice, block) pairs; with fewer pairs
 * than threads the blocks are made narrower (down to 8 columns) so that each
 * thread gets some. A column's result does not depend on the block it lands in
 * (kernels.h), so the output is identical for any thread count. Scalar, AVX2
 * and NEON kernels. */

static void run_inner(const sm_job *j, size_t first, size_t last)
{
    for (size_t u = first; u < last; ++u) {
        const size_t o = u / j->blocks, k = (u % j->blocks) * j->block;
        const size_t width = j->inner - k < j->block ? j->inner - k : j->block;
        const size_t at = o * j->n * j->inner + k;  /* < outer n inner: fits (checked) */
        switch (j->kind) {
        case JOB_FWD_F32:
            j->kernel.inner_fwd_f32((const float *)(const void *)j->a + at,
                                    (float *)(void *)j->out + at, j->n, j->inner, width);
            break;
        case JOB_FWD_F64:
            j->kernel.inner_fwd_f64((const double *)(const void *)j->a + at,
                                    (double *)(void *)j->out + at, j->n, j->inner, width);
            break;
        case JOB_VJP_F32:
            j->kernel.inner_vjp_f32((const float *)(const void *)j->a + at,
                                    (const float *)(const void *)j->b + at,
                                    (float *)(void *)j->out + at, j->n, j->inner, width);
            break;
        default:
            j->kernel.inner_vjp_f64((const double *)(const void *)j->a + at,
                                    (const double *)(const void *)j->b + at,
                                    (double *)(void *)j->out + at, j->n, j->inner, width);
        }
    }
}

#if SM_HAVE_AVX2
#define PICK_INNER(isa, name) ((isa) == SM_ISA_AVX2 ? sm_avx2_##name : sm_scalar_##name)
#elif SM_HAVE_NEON
#define PICK_INNER(isa, name) ((isa) == SM_ISA_NEON ? sm_neon_##name : sm_scalar_##name)
#else
#define PICK_INNER(isa, name) sm_scalar_##name
#endif

/* Checks shared by the inner-axis entry points, after the ISA and the pointers:
 * outer n inner elements of `size` bytes must fit in a ptrdiff_t (each product
 * checked by division before it is formed). */
static int inner_sizes_fit(size_t outer, size_t n, size_t inner, size_t size)
{
    const size_t max = (size_t)PTRDIFF_MAX;
    return inner <= max / n && outer <= max / (n * inner) && sizes_fit(1, outer * n * inner, 0, size);
}

/* The job for (outer, n, inner) on `threads` threads:
 * the block width and the (slice, block) units (see above). */
static void inner_job(sm_job *job, int kind, const void *a, const void *b, void *out, size_t outer,
                      size_t n, size_t inner, size_t threads)
{
    size_t block = inner < SM_INNER_MAX_COLS ? inner : SM_INNER_MAX_COLS;
    if (threads > SM_MAX_THREADS)
        threads = SM_MAX_THREADS;
    if (outer * ((inner + block - 1) / block) < threads) {  /* narrower blocks, for every thread */
        const size_t per_slice = (threads + outer - 1) / outer;
        size_t narrow = ((inner + per_slice - 1) / per_slice + 7) / 8 * 8;
        narrow = narrow < 8 ? 8 : narrow;
        block = narrow < block ? narrow : block;
    }
    job->range = run_inner;
    job->kind = kind;
    job->a = (const char *)a;
    job->b = (const char *)b;
    job->out = (char *)out;
    job->sa = job->sb = job->so = 0;
    job->rows = outer;
    job->n = n;
    job->inner = inner;
    job->block = block;
    job->blocks = (inner + block - 1) / block;
    job->units = outer * job->blocks;
}

#define INNER_FORWARD(name, T, job_kind)                                                   \
    int32_t sm_##name##_inner_##T##_mt(const sm_##T *x, sm_##T *out, size_t outer, size_t n, \
                                       size_t inner, int32_t isa, int32_t threads)          \
    {                                                                                      \
        const int32_t use = resolve(isa);                                                  \
        if (use < 0)                                                                       \
            return use;                                                                    \
        if (threads < 1)                                                                   \
            return SM_ERR_BAD_THREADS;                                                     \
        if (outer == 0 || n == 0 || inner == 0)                                            \
            return use;                                                                    \
        if (x == NULL || out == NULL)                                                      \
            return SM_ERR_NULL;                                                            \
        if (!inner_sizes_fit(outer, n, inner, sizeof(sm_##T)))                             \
            return SM_ERR_SIZE;                                                            \
        const size_t total = outer * n * inner;                                            \
        if (MISALIGNED(x, sm_##T) || MISALIGNED(out, sm_##T) ||                            \
            !may_write(x, 0, out, 0, 1, total, sizeof(sm_##T)))                            \
            return SM_ERR_LAYOUT;                                                          \
        sm_job job;                                                                        \
        inner_job(&job, job_kind, x, x, out, outer, n, inner, (size_t)threads); \
        job.kernel.inner_fwd_##T = PICK_INNER(use, name##_inner_##T);                      \
        run_job(&job, (size_t)threads);                                                    \
        return use;                                                                        \
    }                                                                                      \
    int32_t sm_##name##_inner_##T(const sm_##T *x, sm_##T *out, size_t outer, size_t n,    \
                                  size_t inner, int32_t isa)                               \
    {                                                                                      \
        return sm_##name##_inner_##T##_mt(x, out, outer, n, inner, isa, 1);                \
    }

#define INNER_BACKWARD(name, T, job_kind)                                                  \
    int32_t sm_##name##_inner_##T##_mt(const sm_##T *y, const sm_##T *dy, sm_##T *out,      \
                                       size_t outer, size_t n, size_t inner, int32_t isa,   \
                                       int32_t threads)                                    \
    {                                                                                      \
        const int32_t use = resolve(isa);                                                  \
        if (use < 0)                                                                       \
            return use;                                                                    \
        if (threads < 1)                                                                   \
            return SM_ERR_BAD_THREADS;                                                     \
        if (outer == 0 || n == 0 || inner == 0)                                            \
            return use;                                                                    \
        if (y == NULL || dy == NULL || out == NULL)                                        \
            return SM_ERR_NULL;                                                            \
        if (!inner_sizes_fit(outer, n, inner, sizeof(sm_##T)))                             \
            return SM_ERR_SIZE;                                                            \
        const size_t total = outer * n * inner;                                            \
        if (MISALIGNED(y, sm_##T) || MISALIGNED(dy, sm_##T) || MISALIGNED(out, sm_##T) ||  \
            !may_write(y, 0, out, 0, 1, total, sizeof(sm_##T)) ||                          \
            !may_write(dy, 0, out, 0, 1, total, sizeof(sm_##T)))                           \
            return SM_ERR_LAYOUT;                                                          \
        sm_job job;                                                                        \
        inner_job(&job, job_kind, y, dy, out, outer, n, inner, (size_t)threads); \
        job.kernel.inner_vjp_##T = PICK_INNER(use, name##_inner_##T);                      \
        run_job(&job, (size_t)threads);                                                    \
        return use;                                                                        \
    }                                                                                      \
    int32_t sm_##name##_inner_##T(const sm_##T *y, const sm_##T *dy, sm_##T *out,          \
                                  size_t outer, size_t n, size_t inner, int32_t isa)       \
    {                                                                                      \
        return sm_##name##_inner_##T##_mt(y, dy, out, outer, n, inner, isa, 1);            \
    }

typedef float sm_f32;
typedef double sm_f64;
INNER_FORWARD(softmax, f32, JOB_FWD_F32)
INNER_FORWARD(log_softmax, f32, JOB_FWD_F32)
INNER_FORWARD(softmax, f64, JOB_FWD_F64)
INNER_FORWARD(log_softmax, f64, JOB_FWD_F64)
INNER_BACKWARD(softmax_vjp, f32, JOB_VJP_F32)
INNER_BACKWARD(log_softmax_vjp, f32, JOB_VJP_F32)
INNER_BACKWARD(softmax_vjp, f64, JOB_VJP_F64)
INNER_BACKWARD(log_softmax_vjp, f64, JOB_VJP_F64)

/* exp over one array, with the exp the ISA's kernels use. */
#define EXP(name, T, rowfn)                                      \
    int32_t sm_##name(const T *x, T *out, size_t n, int32_t isa) \
    {                                                            \
        const int32_t use = resolve(isa);                        \
        if (use < 0 || n == 0)                                   \
            return use;                                          \
        if (x == NULL || out == NULL)                            \
            return SM_ERR_NULL;                                  \
        if (!sizes_fit(1, n, 0, sizeof(T)))                      \
            return SM_ERR_SIZE;                                  \
        PICK(use, name)(x, out, n);                              \
        return use;                                              \
    }

EXP(exp_f32, float, sm_row_f32)
EXP(exp_f64, double, sm_row_f64)

/* Bandwidth floor. Ordinary stores: AVX2 loads/stores when available (not
 * memcpy, which may itself switch to streaming stores for large n), else a
 * plain loop. Streaming stores: AVX2 only. */
int32_t sm_copy_f32(const float *src, float *dst, size_t n, int32_t store)
{
    if (store != SM_STORE_NORMAL && store != SM_STORE_NONTEMPORAL)
        return SM_ERR_BAD_STORE;
    if (!sizes_fit(1, n, 0, sizeof(float)))
        return SM_ERR_SIZE;
#if SM_HAVE_AVX2
    if (sm_best_isa() == SM_ISA_AVX2) {
        sm_avx2_copy_f32(src, dst, n, store == SM_STORE_NONTEMPORAL);
        return SM_ISA_AVX2;
    }
#endif
    if (store == SM_STORE_NONTEMPORAL)
        return SM_ERR_ISA_UNAVAILABLE;
    for (size_t i = 0; i < n; ++i)
        dst[i] = src[i];
    return SM_ISA_SCALAR;
}

int32_t sm_triad_f32(float *a, const float *b, const float *c, float s, size_t n, int32_t store)
{
    if (store != SM_STORE_NORMAL && store != SM_STORE_NONTEMPORAL)
        return SM_ERR_BAD_STORE;
    if (!sizes_fit(1, n, 0, sizeof(float)))
        return SM_ERR_SIZE;
#if SM_HAVE_AVX2
    if (sm_best_isa() == SM_ISA_AVX2) {
        sm_avx2_triad_f32(a, b, c, s, n, store == SM_STORE_NONTEMPORAL);
        return SM_ISA_AVX2;
    }
#endif
    if (store == SM_STORE_NONTEMPORAL)
        return SM_ERR_ISA_UNAVAILABLE;
    for (size_t i = 0; i < n; ++i)
        a[i] = b[i] + s * c[i];
    return SM_ISA_SCALAR;
}
