/* matmul.c: the project's one matrix-product function, on oneDNN's matmul primitive, and the
 * plain reference beside it.
 *
 * Two kinds of oneDNN primitive serve a product, chosen per element type (gc_matmul_prims):
 *  - runtime: built with runtime dimensions and strides, one per (dtype, trans_a, trans_b,
 *    accumulate), sixteen at most, built on first use and reused for every shape;
 *  - shape: built for the exact shape, kept in a small per-thread cache (SHAPE_CACHE entries,
 *    least recently used evicted), so memory does not grow with the batch while a step's few
 *    shapes (a chunk's token count times the model's widths) stay built.
 * Products whose rows are independent (A not transposed: a chunk's tokens) take the per-shape
 * kind in blocks of ROW_BLOCK rows, the last zero-padded, so one primitive serves every row
 * count and each row is summed the same way wherever it sits: a primitive built for a short
 * product would block its sums differently (by shape and thread count) and the same rows would
 * differ in their last bits from a tall product's, making an example's bf16 numbers depend on
 * its chunk-mates. Measured on a quiet 2-core AMX Xeon (oneDNN 2.6): the runtime-size GEMM
 * already runs bf16 on AMX there (1.0-1.6 TFLOP/s at MiniLM's products); per-shape blocks ran
 * 0.73-1.21x its rate by product (bench/matmul_prims) and a MiniLM step took 1.08x the CPU
 * time in fp32 and 1.05x in bf16 with them (bench/prims_step.sh), so runtime is the default;
 * GC_MATMUL_PRIMS=shape (or gc_matmul_set_prims) opts into per-shape primitives. The primitives
 * are per thread so the function may be called from inside an OpenMP region (oneDNN then
 * runs single-threaded there). */
#include "gc_core.h"
#include "gc_testing.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void gc_matmul_ref(float *C, const float *A, const float *B, int M, int N, int K, int trans_a,
                   int trans_b, int accumulate) {
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float acc = 0.0f;
            for (int k = 0; k < K; k++) {
                float a = trans_a ? A[(size_t)k * M + i] : A[(size_t)i * K + k];
                float b = trans_b ? B[(size_t)j * K + k] : B[(size_t)k * N + j];
                acc += a * b;
            }
            if (accumulate)
                C[(size_t)i * N + j] += acc;
            else
                C[(size_t)i * N + j] = acc;
        }
    }
}

void gc_matmul_bf16_ref(float *C, const uint16_t *A, const uint16_t *B, int M, int N, int K,
                        int trans_a, int trans_b, int accumulate) {
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float acc = 0.0f;
            for (int k = 0; k < K; k++) {
                float a = gc_bf16_value(trans_a ? A[(size_t)k * M + i] : A[(size_t)i * K + k]);
                float b = gc_bf16_value(trans_b ? B[(size_t)j * K + k] : B[(size_t)k * N + j]);
                acc += a * b;
            }
            if (accumulate)
                C[(size_t)i * N + j] += acc;
            else
                C[(size_t)i * N + j] = acc;
        }
    }
}

/* Products this small cost less in plain loops than oneDNN's per-call set-up (attention of a
 * short sequence is a few thousand multiply-adds). The loops are written so the inner one is
 * contiguous and vectorizes; each output's summation order depends only on the shape. */
#define SMALL_PRODUCT 32768

static void matmul_small(float *C, const float *A, const float *B, int M, int N, int K, int trans_a,
                         int trans_b, int accumulate) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * N;
        if (trans_b) { /* C[i,j] = dot(a_i, B[j,:]) with B stored (N, K) */
            for (int j = 0; j < N; j++) {
                const float *b = B + (size_t)j * K;
                float acc[8] = {0};
                int k = 0;
                if (!trans_a) {
                    const float *a = A + (size_t)i * K;
                    for (; k + 8 <= K; k += 8)
                        for (int l = 0; l < 8; l++) acc[l] += a[k + l] * b[k + l];
                    for (; k < K; k++) acc[0] += a[k] * b[k];
                } else {
                    for (; k < K; k++) acc[k & 7] += A[(size_t)k * M + i] * b[k];
                }
                float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
                            ((acc[4] + acc[5]) + (acc[6] + acc[7]));
                c[j] = accumulate ? c[j] + sum : sum;
            }
        } else { /* C[i,:] = sum_k a_ik B[k,:] */
            if (!accumulate)
                for (int j = 0; j < N; j++) c[j] = 0.0f;
            for (int k = 0; k < K; k++) {
                float a = trans_a ? A[(size_t)k * M + i] : A[(size_t)i * K + k];
                const float *b = B + (size_t)k * N;
                for (int j = 0; j < N; j++) c[j] += a * b[j];
            }
        }
    }
}

#define SHAPE_CACHE 64
#ifndef ROW_BLOCK
#define ROW_BLOCK 128 /* rows of the per-shape primitives of row-independent products */
#endif

typedef struct shape_entry {
    int key[7]; /* dtype, trans_a, trans_b, accumulate, M, N, K */
    unsigned long used;
    dnnl_primitive_t prim;
} shape_entry;

typedef struct mm_cache {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_t prim[2][2][2][2]; /* [dtype][trans_a][trans_b][accumulate], runtime dims */
    shape_entry shape[SHAPE_CACHE];
    unsigned long clock;
    void *pad_a;  /* (ROW_BLOCK, K) rows of A for a row block's tail, grown on first need */
    float *pad_c; /* (ROW_BLOCK, N) */
    size_t pad_a_bytes, pad_c_bytes;
} mm_cache;

static _Thread_local mm_cache *g_cache;

void gc_matmul_cleanup(void) {
    mm_cache *c = g_cache;
    if (!c) return;
    for (int i = 0; i < 16; i++) {
        dnnl_primitive_t p = (&c->prim[0][0][0][0])[i];
        if (p) dnnl_primitive_destroy(p);
    }
    for (int i = 0; i < SHAPE_CACHE; i++)
        if (c->shape[i].prim) dnnl_primitive_destroy(c->shape[i].prim);
    free(c->pad_a);
    free(c->pad_c);
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->engine) dnnl_engine_destroy(c->engine);
    free(c);
    g_cache = NULL;
}

int gc_matmul_shape_cache_used(void) {
    int n = 0;
    if (g_cache)
        for (int i = 0; i < SHAPE_CACHE; i++) n += g_cache->shape[i].prim != NULL;
    return n;
}

static gc_status cache_get(mm_cache **out) {
    if (g_cache) {
        *out = g_cache;
        return GC_OK;
    }
    mm_cache *c = calloc(1, sizeof *c);
    if (!c) return gc_set_error(GC_ERR_NOMEM, "matmul: out of memory for the primitive cache");
    if (dnnl_engine_create(&c->engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags) != dnnl_success) {
        if (c->engine) dnnl_engine_destroy(c->engine);
        free(c);
        return gc_set_error(GC_ERR_INTERNAL, "matmul: oneDNN engine creation failed");
    }
    g_cache = c;
    *out = c;
    return GC_OK;
}

/* Row-major (rows, cols) descriptors, transposed when t; any entry may be runtime. */
static dnnl_status_t desc2d(dnnl_memory_desc_t *md, dnnl_dim_t rows, dnnl_dim_t cols, int t,
                            dnnl_dim_t ld, dnnl_data_type_t dt) {
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {t ? 1 : ld, t ? ld : 1};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
}

static dnnl_data_type_t dnnl_type(gc_mm_type dt) {
    return dt == GC_MM_BF16 ? dnnl_bf16 : dnnl_f32;
}

/* Builds the primitive of (dt, ta, tb, acc) into *out: for any shape when M is 0 (runtime
 * dimensions), else for exactly (M, N, K). */
static gc_status build(mm_cache *c, gc_mm_type dt, int ta, int tb, int acc, int M, int N, int K,
                       dnnl_primitive_t *out) {
    const dnnl_dim_t R = DNNL_RUNTIME_DIM_VAL;
    dnnl_dim_t m = M ? M : R, n = M ? N : R, k = M ? K : R;
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_data_type_t in = dnnl_type(dt);
    int ok = desc2d(&a_md, m, k, ta, M ? (ta ? m : k) : R, in) == dnnl_success &&
             desc2d(&b_md, k, n, tb, M ? (tb ? k : n) : R, in) == dnnl_success &&
             desc2d(&c_md, m, n, 0, M ? n : R, dnnl_f32) == dnnl_success &&
             dnnl_matmul_desc_init(&md, &a_md, &b_md, NULL, &c_md) == dnnl_success &&
             dnnl_primitive_attr_create(&attr) == dnnl_success;
    if (ok && acc)
        ok = dnnl_post_ops_create(&po) == dnnl_success &&
             dnnl_post_ops_append_sum(po, 1.0f) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    int built = 0;
    if (ok) {
        dnnl_status_t r = dnnl_primitive_desc_create(&pd, &md, attr, c->engine, NULL);
        built = r == dnnl_success;
        if (r == dnnl_unimplemented && dt == GC_MM_BF16) ok = -1;
    }
    if (built) ok = dnnl_primitive_create(out, pd) == dnnl_success;
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (ok < 0)
        return gc_set_error(GC_ERR_UNSUPPORTED,
                            "matmul: oneDNN has no bf16 product on this CPU (ISA capped or "
                            "without AVX-512)");
    if (!ok || !built)
        return gc_set_error(GC_ERR_INTERNAL, "matmul: oneDNN could not build a product");
    return GC_OK;
}

static int g_prims[2];                                /* GC_MM_PRIMS_AUTO until set */
static gc_mm_prims g_env_prims = GC_MM_PRIMS_RUNTIME; /* GC_MATMUL_PRIMS, read once */
static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;

static void read_env(void) {
    const char *env = getenv("GC_MATMUL_PRIMS");
    if (env && strcmp(env, "shape") == 0) g_env_prims = GC_MM_PRIMS_SHAPE;
}

void gc_matmul_set_prims(gc_mm_type dtype, gc_mm_prims kind) {
    if ((dtype == GC_MM_F32 || dtype == GC_MM_BF16) && kind >= GC_MM_PRIMS_AUTO &&
        kind <= GC_MM_PRIMS_SHAPE)
        g_prims[dtype] = kind;
}

gc_mm_prims gc_matmul_prims(gc_mm_type dtype) {
    if (dtype != GC_MM_F32 && dtype != GC_MM_BF16) return GC_MM_PRIMS_RUNTIME;
    if (g_prims[dtype] != GC_MM_PRIMS_AUTO) return (gc_mm_prims)g_prims[dtype];
    pthread_once(&g_env_once, read_env);
    return g_env_prims;
}

const char *gc_matmul_prims_name(gc_mm_prims kind) {
    return kind == GC_MM_PRIMS_SHAPE ? "shape" : kind == GC_MM_PRIMS_RUNTIME ? "runtime" : "auto";
}

/* The primitive for this product: the runtime one, or the shape's from the cache (built on a
 * miss into the least recently used entry). */
static gc_status lookup(mm_cache *c, gc_mm_type dt, int ta, int tb, int acc, int M, int N, int K,
                        dnnl_primitive_t *out) {
    if (gc_matmul_prims(dt) != GC_MM_PRIMS_SHAPE) {
        if (!c->prim[dt][ta][tb][acc]) {
            gc_status st = build(c, dt, ta, tb, acc, 0, 0, 0, &c->prim[dt][ta][tb][acc]);
            if (st != GC_OK) return st;
        }
        *out = c->prim[dt][ta][tb][acc];
        return GC_OK;
    }
    int key[7] = {(int)dt, ta, tb, acc, M, N, K};
    shape_entry *victim = &c->shape[0];
    for (int i = 0; i < SHAPE_CACHE; i++) {
        shape_entry *e = &c->shape[i];
        if (e->prim && memcmp(e->key, key, sizeof key) == 0) {
            e->used = ++c->clock;
            *out = e->prim;
            return GC_OK;
        }
        if (!e->prim || (victim->prim && e->used < victim->used)) victim = e;
    }
    if (victim->prim) dnnl_primitive_destroy(victim->prim);
    victim->prim = NULL;
    gc_status st = build(c, dt, ta, tb, acc, M, N, K, &victim->prim);
    if (st != GC_OK) return st;
    memcpy(victim->key, key, sizeof key);
    victim->used = ++c->clock;
    *out = victim->prim;
    return GC_OK;
}

/* Runs prim on these operands; the shapes travel in the memory objects (a runtime primitive
 * takes them from there; a shape's primitive was built for them). */
static gc_status execute(mm_cache *c, dnnl_primitive_t prim, float *C, const void *A, const void *B,
                         int M, int N, int K, int ta, int tb, gc_mm_type dtype) {
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_memory_t am = NULL, bm = NULL, cm = NULL;
    dnnl_data_type_t in = dnnl_type(dtype);
    int ok = desc2d(&a_md, M, K, ta, ta ? M : K, in) == dnnl_success &&
             desc2d(&b_md, K, N, tb, tb ? K : N, in) == dnnl_success &&
             desc2d(&c_md, M, N, 0, N, dnnl_f32) == dnnl_success &&
             dnnl_memory_create(&am, &a_md, c->engine, (void *)A) == dnnl_success &&
             dnnl_memory_create(&bm, &b_md, c->engine, (void *)B) == dnnl_success &&
             dnnl_memory_create(&cm, &c_md, c->engine, C) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
        ok = dnnl_primitive_execute(prim, c->stream, 3, args) == dnnl_success &&
             dnnl_stream_wait(c->stream) == dnnl_success;
    }
    if (am) dnnl_memory_destroy(am);
    if (bm) dnnl_memory_destroy(bm);
    if (cm) dnnl_memory_destroy(cm);
    if (!ok)
        return gc_set_error(GC_ERR_INTERNAL, "matmul: oneDNN execution failed (%dx%dx%d)", M, N, K);
    return GC_OK;
}

/* The per-shape kind for a product whose rows are independent (A not transposed: the rows of a
 * chunk's tokens): one primitive of ROW_BLOCK rows runs every block of rows, the last one
 * through zero-padded copies, so each row is summed by the same kernel in the same order
 * whatever the product's row count (a chunk's rows give the bits they give in the whole batch)
 * and the cache holds one primitive per (N, K), not per row count. */
static gc_status rows_blocked(mm_cache *c, float *C, const void *A, const void *B, int M, int N,
                              int K, int tb, int acc, gc_mm_type dtype) {
    dnnl_primitive_t prim = NULL;
    gc_status st = lookup(c, dtype, 0, tb, acc, ROW_BLOCK, N, K, &prim);
    if (st != GC_OK) return st;
    const size_t es = dtype == GC_MM_BF16 ? 2 : 4, arow = (size_t)K * es;
    const char *a = A;
    int r0 = 0;
    for (; r0 + ROW_BLOCK <= M; r0 += ROW_BLOCK) {
        st = execute(c, prim, C + (size_t)r0 * N, a + (size_t)r0 * arow, B, ROW_BLOCK, N, K, 0, tb,
                     dtype);
        if (st != GC_OK) return st;
    }
    const int t = M - r0;
    if (t == 0) return GC_OK;
    size_t need_a = (size_t)ROW_BLOCK * arow, need_c = (size_t)ROW_BLOCK * N * sizeof(float);
    if (need_a > c->pad_a_bytes) {
        void *p = realloc(c->pad_a, need_a);
        if (!p) return gc_set_error(GC_ERR_NOMEM, "matmul: out of memory for a row block");
        c->pad_a = p, c->pad_a_bytes = need_a;
    }
    if (need_c > c->pad_c_bytes) {
        float *p = realloc(c->pad_c, need_c);
        if (!p) return gc_set_error(GC_ERR_NOMEM, "matmul: out of memory for a row block");
        c->pad_c = p, c->pad_c_bytes = need_c;
    }
    memcpy(c->pad_a, a + (size_t)r0 * arow, (size_t)t * arow);
    memset((char *)c->pad_a + (size_t)t * arow, 0, (size_t)(ROW_BLOCK - t) * arow);
    if (acc) memcpy(c->pad_c, C + (size_t)r0 * N, (size_t)t * N * sizeof(float));
    st = execute(c, prim, c->pad_c, c->pad_a, B, ROW_BLOCK, N, K, 0, tb, dtype);
    if (st == GC_OK) memcpy(C + (size_t)r0 * N, c->pad_c, (size_t)t * N * sizeof(float));
    return st;
}

gc_status gc_matmul(float *C, const float *A, const float *B, int M, int N, int K, int trans_a,
                    int trans_b, int accumulate) {
    return gc_matmul_ex(C, A, B, M, N, K, trans_a, trans_b, accumulate, GC_MM_F32);
}

gc_status gc_matmul_ex(float *C, const void *A, const void *B, int M, int N, int K, int trans_a,
                       int trans_b, int accumulate, gc_mm_type dtype) {
    if (dtype != GC_MM_F32 && dtype != GC_MM_BF16)
        return gc_set_error(GC_ERR_INVALID_ARG, "matmul: unknown dtype %d", (int)dtype);
    if (M < 0 || N < 0 || K < 0)
        return gc_set_error(GC_ERR_INVALID_ARG, "matmul: negative size %dx%dx%d", M, N, K);
    if (M == 0 || N == 0) return GC_OK;
    if (!C) return gc_set_error(GC_ERR_INVALID_ARG, "matmul: NULL output");
    if (K == 0) {
        if (!accumulate) memset(C, 0, (size_t)M * N * sizeof(float));
        return GC_OK;
    }
    if (!A || !B) return gc_set_error(GC_ERR_INVALID_ARG, "matmul: NULL input");
    trans_a = trans_a != 0, trans_b = trans_b != 0, accumulate = accumulate != 0;
    /* bf16 products always go to oneDNN: its sums of a row do not depend on how many rows the
     * product has (from 3 rows on), so an example's bf16 numbers do not depend on its chunk */
    if (dtype == GC_MM_F32 && (int64_t)M * N * K <= SMALL_PRODUCT) {
        matmul_small(C, A, B, M, N, K, trans_a, trans_b, accumulate);
        return GC_OK;
    }
    mm_cache *c = NULL;
    gc_status st = cache_get(&c);
    if (st != GC_OK) return st;
    if (gc_matmul_prims(dtype) == GC_MM_PRIMS_SHAPE && !trans_a)
        return rows_blocked(c, C, A, B, M, N, K, trans_b, accumulate, dtype);
    dnnl_primitive_t prim = NULL;
    st = lookup(c, dtype, trans_a, trans_b, accumulate, M, N, K, &prim);
    if (st != GC_OK) return st;
    return execute(c, prim, C, A, B, M, N, K, trans_a, trans_b, dtype);
}

int gc_matmul_bf16_native(const char **isa) {
    dnnl_cpu_isa_t i = dnnl_get_effective_cpu_isa();
    if (isa) {
        *isa = i == dnnl_cpu_isa_avx512_core_amx    ? "avx512_core_amx"
               : i == dnnl_cpu_isa_avx512_core_bf16 ? "avx512_core_bf16"
               : i == dnnl_cpu_isa_avx512_core_vnni ? "avx512_core_vnni"
               : i == dnnl_cpu_isa_avx512_core      ? "avx512_core"
               : i == dnnl_cpu_isa_avx2_vnni        ? "avx2_vnni"
               : i == dnnl_cpu_isa_avx2             ? "avx2"
               : i == dnnl_cpu_isa_avx              ? "avx"
               : i == dnnl_cpu_isa_sse41            ? "sse41"
                                                    : "other";
    }
    return ((unsigned)i & (unsigned)dnnl_cpu_isa_avx512_core_bf16) ==
           (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}
