/* matmul.c: the project's one matrix-product function, on oneDNN's matmul primitive, and the
 * plain reference beside it.
 *
 * The sizes of a training step's products change with every chunk (a chunk holds as many
 * tokens as its sequences have), so primitives are built with runtime dimensions and strides:
 * one primitive per (dtype, trans_a, trans_b, accumulate), sixteen at most, built on first use and
 * reused for every shape. Primitives keyed by exact shape would be rebuilt for nearly every
 * chunk and pile up in oneDNN's primitive cache, making memory grow with the batch. On this
 * hardware oneDNN serves both through the same jit GEMM, so nothing is lost in speed.
 * The primitives are per thread so the function may be called from inside an OpenMP region
 * (oneDNN then runs single-threaded there). */
#include "gc_core.h"
#include "gc_testing.h"

#include <oneapi/dnnl/dnnl.h>
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

typedef struct mm_cache {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_t prim[2][2][2][2]; /* [dtype][trans_a][trans_b][accumulate] */
} mm_cache;

static _Thread_local mm_cache *g_cache;

void gc_matmul_cleanup(void) {
    mm_cache *c = g_cache;
    if (!c) return;
    for (int i = 0; i < 16; i++) {
        dnnl_primitive_t p = (&c->prim[0][0][0][0])[i];
        if (p) dnnl_primitive_destroy(p);
    }
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->engine) dnnl_engine_destroy(c->engine);
    free(c);
    g_cache = NULL;
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

static gc_status build(mm_cache *c, gc_mm_type dt, int ta, int tb, int acc) {
    const dnnl_dim_t R = DNNL_RUNTIME_DIM_VAL;
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_data_type_t in = dnnl_type(dt);
    int ok = desc2d(&a_md, R, R, ta, R, in) == dnnl_success &&
             desc2d(&b_md, R, R, tb, R, in) == dnnl_success &&
             desc2d(&c_md, R, R, 0, R, dnnl_f32) == dnnl_success &&
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
    if (built) ok = dnnl_primitive_create(&c->prim[dt][ta][tb][acc], pd) == dnnl_success;
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
    if (!c->prim[dtype][trans_a][trans_b][accumulate]) {
        st = build(c, dtype, trans_a, trans_b, accumulate);
        if (st != GC_OK) return st;
    }
    /* The actual shapes travel in the memory objects of this call. */
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_memory_t am = NULL, bm = NULL, cm = NULL;
    dnnl_data_type_t in = dnnl_type(dtype);
    int ok = desc2d(&a_md, M, K, trans_a, trans_a ? M : K, in) == dnnl_success &&
             desc2d(&b_md, K, N, trans_b, trans_b ? K : N, in) == dnnl_success &&
             desc2d(&c_md, M, N, 0, N, dnnl_f32) == dnnl_success &&
             dnnl_memory_create(&am, &a_md, c->engine, (void *)A) == dnnl_success &&
             dnnl_memory_create(&bm, &b_md, c->engine, (void *)B) == dnnl_success &&
             dnnl_memory_create(&cm, &c_md, c->engine, C) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
        ok = dnnl_primitive_execute(c->prim[dtype][trans_a][trans_b][accumulate], c->stream, 3,
                                    args) == dnnl_success &&
             dnnl_stream_wait(c->stream) == dnnl_success;
    }
    if (am) dnnl_memory_destroy(am);
    if (bm) dnnl_memory_destroy(bm);
    if (cm) dnnl_memory_destroy(cm);
    if (!ok)
        return gc_set_error(GC_ERR_INTERNAL, "matmul: oneDNN execution failed (%dx%dx%d)", M, N, K);
    return GC_OK;
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
