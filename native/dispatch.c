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

/* One call's rows: byte pointers and byte strides, and the row kernel. */
typedef struct {
    int kind;
    union {
        sm_fwd_f32 fwd_f32;
        sm_fwd_f64 fwd_f64;
        sm_vjp_row_f32 vjp_f32;
        sm_vjp_row_f64 vjp_f64;
    } kernel;
    const char *a, *b;  /* x, or y and dy */
    char *out;
    ptrdiff_t sa, sb, so;
    size_t rows, n;
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
    run_rows(b->job, b->first, b->last);
    return NULL;
}
#endif

static void run_job(const sm_job *j, size_t threads)
{
    if (threads > j->rows)
        threads = j->rows;
    if (threads > SM_MAX_THREADS)
        threads = SM_MAX_THREADS;
#if SM_HAVE_THREADS
    if (threads > 1) {
        pthread_t ids[SM_MAX_THREADS];
        sm_block blocks[SM_MAX_THREADS];
        int started[SM_MAX_THREADS];
        for (size_t t = 1; t < threads; ++t) {
            blocks[t].job = j;
            blocks[t].first = block_start(j->rows, threads, t);
            blocks[t].last = block_start(j->rows, threads, t + 1);
            started[t] = pthread_create(&ids[t], NULL, block_main, &blocks[t]) == 0;
        }
        run_rows(j, 0, block_start(j->rows, threads, 1));
        for (size_t t = 1; t < threads; ++t) {
            if (started[t])
                pthread_join(ids[t], NULL);
            else  /* could not start it: this thread does those rows */
                run_rows(j, blocks[t].first, blocks[t].last);
        }
        return;
    }
#endif
    run_rows(j, 0, j->rows);
}

#if SM_HAVE_AVX2
/* VJP outputs at least this large (about a large L3 cache) are written with
 * streaming stores: they would only evict everything else from the caches. */
#define STREAM_BYTES ((size_t)32 << 20)

static int stream(int32_t use, size_t rows, size_t n, size_t size)
{
    return use == SM_ISA_AVX2 && rows >= STREAM_BYTES / size / n;
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

/* Softmax along the middle axis of a C-contiguous (outer, n, inner) array,
 * without a transposing copy: AVX2 only (kernels_avx2.c, inner_block_f32). */
static int32_t inner_f32(const float *x, float *out, size_t outer, size_t n, size_t inner,
                         int32_t isa, int take_log)
{
    (void)take_log;  /* unused without AVX2 */
    const int32_t use = resolve(isa);
    if (use < 0)
        return use;
    if (use != SM_ISA_AVX2)
        return SM_ERR_ISA_UNAVAILABLE;
    if (outer == 0 || n == 0 || inner == 0)
        return use;
    if (x == NULL || out == NULL)
        return SM_ERR_NULL;
    if (inner > (size_t)PTRDIFF_MAX / n || outer > (size_t)PTRDIFF_MAX / (n * inner) ||
        !sizes_fit(1, outer * n * inner, 0, sizeof(float)))
        return SM_ERR_SIZE;
    if (MISALIGNED(x, float) || MISALIGNED(out, float) ||
        !may_write(x, 0, out, 0, 1, outer * n * inner, sizeof(float)))
        return SM_ERR_LAYOUT;
#if SM_HAVE_AVX2
    for (size_t o = 0; o < outer; ++o)
        sm_avx2_softmax_inner_f32(x + o * n * inner, out + o * n * inner, n, inner, take_log);
#endif
    return use;
}

int32_t sm_softmax_inner_f32(const float *x, float *out, size_t outer, size_t n, size_t inner,
                             int32_t isa)
{
    return inner_f32(x, out, outer, n, inner, isa, 0);
}

int32_t sm_log_softmax_inner_f32(const float *x, float *out, size_t outer, size_t n, size_t inner,
                                 int32_t isa)
{
    return inner_f32(x, out, outer, n, inner, isa, 1);
}

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
