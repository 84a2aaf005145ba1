/* gc_core.h: status codes and error messages, the library version, memory locations, the one
 * matrix-product function and the counter-based random generator.
 *
 * Conventions: every fallible function returns gc_status; on failure a message describing the
 * problem is kept per thread and read with gc_last_error(). The library never prints and never
 * exits. Matrices are row-major float32. */
#ifndef GC_CORE_H
#define GC_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Status and errors */

typedef enum gc_status {
    GC_OK = 0,
    GC_ERR_INVALID_ARG = 1, /* a caller passed something impossible (NULL, 0 chunk, ...) */
    GC_ERR_NOMEM = 2,       /* an allocation failed */
    GC_ERR_IO = 3,          /* open/read/write/rename failed */
    GC_ERR_FORMAT = 4,      /* an outside file is malformed */
    GC_ERR_NUMERIC = 5,     /* NaN or infinity where a finite number is required */
    GC_ERR_UNSUPPORTED = 6, /* valid but not implemented (dtype, activation, ...) */
    GC_ERR_INTERNAL = 7,    /* a library bug or a third-party library failure */
    GC_ERR_INTERRUPTED = 8, /* stopped on request (signal) */
} gc_status;

/* Name of a status ("invalid argument", ...). Never NULL. */
const char *gc_status_str(gc_status s);
/* The message of the last failure on this thread ("" if none). */
const char *gc_last_error(void);
/* Record a message (printf-style) for status s on this thread and return s. */
gc_status gc_set_error(gc_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void gc_clear_error(void);

/* ------------------------------------------------------------------------------------------ */
/* Version: from the CMake project version (one source for the library and the CLI). */

/* "MAJOR.MINOR.PATCH" of the library that is linked. */
const char *gc_version(void);

/* The project's own vectorized kernels (oneDNN chooses its own path for matrix products). The
 * best path the CPU supports is used; the environment variable GC_CPU (generic, avx2, avx512)
 * caps it, as ONEDNN_MAX_CPU_ISA caps oneDNN. The results are the same bit for bit on every
 * path. */
typedef enum gc_cpu_path {
    GC_CPU_GENERIC = 0, /* portable C, baseline x86-64 or any other architecture */
    GC_CPU_AVX2 = 1,    /* AVX2 + FMA */
    GC_CPU_AVX512 = 2,  /* AVX-512F (+ AVX2 + FMA) */
} gc_cpu_path;
/* The path in use, decided once per process (thread-safe). */
gc_cpu_path gc_cpu_path_get(void);
/* "generic", "avx2", "avx512". Never NULL. */
const char *gc_cpu_path_name(gc_cpu_path p);

/* Where a buffer lives: host memory, or the memory of an accelerator (reachable from the host
 * only through copy functions). */
typedef enum gc_mem { GC_MEM_HOST = 0, GC_MEM_DEVICE = 1 } gc_mem;

/* ------------------------------------------------------------------------------------------ */
/* The one matrix-product function.
 *
 * C (M,N) = op(A) (M,K) @ op(B) (K,N)            when accumulate == 0
 * C (M,N) += op(A) (M,K) @ op(B) (K,N)           when accumulate != 0
 * op(A) is A (M,K) when trans_a == 0, else A is stored (K,M) and transposed; likewise for B
 * ((K,N) or stored (N,K)). Row-major, contiguous. Backed by oneDNN's matmul primitive (runtime
 * sizes or per shape, see gc_matmul_prims below); tiny
 * products (M*N*K <= 32768) run in plain loops. gc_matmul_ref is the plain reference kept
 * beside it. M, N or K of 0 is a no-op (K == 0 with accumulate == 0 zeroes C). */
gc_status gc_matmul(float *C, const float *A, const float *B, int M, int N, int K, int trans_a,
                    int trans_b, int accumulate);
/* Free cached primitives (optional; for leak checkers). */
void gc_matmul_cleanup(void);

/* Element types of matrix-product inputs (gc_dtype in gc_io.h names file dtypes). */
typedef enum gc_mm_type {
    GC_MM_F32 = 0,  /* float */
    GC_MM_BF16 = 1, /* bfloat16 (uint16_t: the upper half of a float), fp32 accumulation */
} gc_mm_type;
/* gc_matmul with A and B of type dtype (float or uint16_t bf16); C and the accumulation are
 * always float. The primitive cache is keyed by dtype too (sixteen at most). A bf16 product
 * computes every bf16 x bf16 term exactly and sums in fp32. gc_matmul(...) is
 * gc_matmul_ex(..., GC_MM_F32). Where oneDNN cannot build a bf16 product (a CPU without
 * AVX-512), GC_ERR_UNSUPPORTED. */
gc_status gc_matmul_ex(float *C, const void *A, const void *B, int M, int N, int K, int trans_a,
                       int trans_b, int accumulate, gc_mm_type dtype);
/* Which kind of oneDNN primitive serves a type's products: built with runtime dimensions (one
 * per transposition/accumulation, reused for every shape) or per exact shape (a bounded
 * per-thread cache, least recently used evicted; products of independent rows run in blocks
 * of a fixed row count, so a row's bits never depend on the product's row count). AUTO:
 * GC_MATMUL_PRIMS (runtime|shape) if set, else runtime, the faster in a measured step (see
 * src/core/matmul.c, bench/matmul_prims). gc_matmul_set_prims is process-wide (both kinds stay
 * cached when it changes). */
typedef enum gc_mm_prims {
    GC_MM_PRIMS_AUTO = 0,
    GC_MM_PRIMS_RUNTIME = 1,
    GC_MM_PRIMS_SHAPE = 2,
} gc_mm_prims;
void gc_matmul_set_prims(gc_mm_type dtype, gc_mm_prims kind);
gc_mm_prims gc_matmul_prims(gc_mm_type dtype); /* the effective kind, never AUTO */
const char *gc_matmul_prims_name(gc_mm_prims kind);
/* The plain reference of a bf16 product (terms and sums in fp32, k in order). */
void gc_matmul_bf16_ref(float *C, const uint16_t *A, const uint16_t *B, int M, int N, int K,
                        int trans_a, int trans_b, int accumulate);

/* bf16 conversions. To bf16: round to nearest, ties to even; NaN stays NaN (quiet); subnormal
 * inputs become zero of their sign (as the AVX-512 BF16 instruction does, so every path gives
 * the same bits). gc_bf16_from_f32 uses AVX512_BF16 where the CPU has it (and GC_CPU allows
 * AVX-512), a portable loop otherwise; gc_bf16_from_f32_ref is one element at a time. */
void gc_bf16_from_f32(uint16_t *out, const float *in, size_t n);
void gc_bf16_from_f32_ref(uint16_t *out, const float *in, size_t n);
void gc_bf16_to_f32(float *out, const uint16_t *in, size_t n);
static inline float gc_bf16_value(uint16_t h) {
    union {
        uint32_t u;
        float f;
    } v = {(uint32_t)h << 16};
    return v.f;
}
/* Whether the CPU has AVX512_BF16 (the native bf16 dot product; GC_CPU below avx512 hides it
 * from the project's own kernels, not from oneDNN). */
int gc_cpu_has_bf16(void);
/* What oneDNN will run bf16 products with: 1 native (its ISA includes AVX512_BF16 or AMX), 0
 * emulated or not at all (ONEDNN_MAX_CPU_ISA or the CPU caps it). isa: oneDNN's effective ISA
 * name ("avx512_core_bf16", "avx2", ...), may be NULL. */
int gc_matmul_bf16_native(const char **isa);

/* ------------------------------------------------------------------------------------------ */
/* Counter-based random numbers (Philox-4x32-10).
 *
 * A number is addressed, not drawn: the same address always gives the same value, so the
 * dropout mask of an example does not depend on which chunk it is in or whether it is computed
 * in pass 1 or pass 2 of a gradient-cache step. */

typedef struct gc_rng_addr {
    uint64_t seed;    /* the run's seed */
    uint32_t step;    /* optimizer step (or micro-batch counter) */
    uint32_t side;    /* 0 = query, 1 = passage */
    uint32_t example; /* the example's index in the global batch of its side */
    uint32_t stream;  /* which use inside the model: GC_RNG_STREAM(layer, site) */
} gc_rng_addr;

#define GC_RNG_STREAM(layer, site) ((uint32_t)(layer)*16u + (uint32_t)(site))

/* Philox-4x32-10 block: out = philox(counter, key). */
void gc_philox4x32(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2]);
/* Uniform in [0, 1) for element `element` of the stream at addr (element: position within
 * the example, e.g. token * width + feature). */
float gc_rng_uniform(const gc_rng_addr *addr, uint32_t element);
/* out[i] = gc_rng_uniform(addr, first + i) for i < n, computed four at a time. */
void gc_rng_uniform_fill(float *out, const gc_rng_addr *addr, uint32_t first, size_t n);
/* Dropout scale for elements [first, first+n): 0 where dropped, 1/(1-p) where kept. p in
 * [0,1); p == 0 fills with 1. */
void gc_dropout_mask(float *mask, const gc_rng_addr *addr, uint32_t first, size_t n, float p);

#ifdef __cplusplus
}
#endif

#endif /* GC_CORE_H */
