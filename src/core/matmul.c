/* matmul.c: the project's one matrix-product function, on oneDNN's matmul primitive, and the
 * plain reference beside it.
 *
 * Primitives are built once per (M, N, K, trans_a, trans_b, accumulate) and kept in a small
 * per-thread cache with their memory objects; a call only swaps the data handles in. The cache
 * is per thread so the function may be called from inside an OpenMP region (oneDNN then runs
 * single-threaded there). */
#include "gradcache.h"

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
            if (accumulate) C[(size_t)i * N + j] += acc;
            else C[(size_t)i * N + j] = acc;
        }
    }
}

#define CACHE_SIZE 256

typedef struct mm_entry {
    int M, N, K, ta, tb, acc;
    uint64_t last_use;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
} mm_entry;

typedef struct mm_cache {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    mm_entry entries[CACHE_SIZE];
    int used;
    uint64_t clock;
} mm_cache;

static _Thread_local mm_cache *g_cache;

static void entry_release(mm_entry *e) {
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->a) dnnl_memory_destroy(e->a);
    if (e->b) dnnl_memory_destroy(e->b);
    if (e->c) dnnl_memory_destroy(e->c);
    memset(e, 0, sizeof *e);
}

void gc_matmul_cleanup(void) {
    mm_cache *c = g_cache;
    if (!c) return;
    for (int i = 0; i < c->used; i++) entry_release(&c->entries[i]);
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

static gc_status entry_build(mm_cache *c, mm_entry *e, int M, int N, int K, int ta, int tb,
                             int acc) {
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_dims_t a_dims = {M, K}, b_dims = {K, N}, c_dims = {M, N};
    dnnl_dims_t a_str = {ta ? 1 : K, ta ? M : 1};
    dnnl_dims_t b_str = {tb ? 1 : N, tb ? K : 1};
    dnnl_dims_t c_str = {N, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    gc_status st = GC_OK;

    memset(e, 0, sizeof *e);
    e->M = M, e->N = N, e->K = K, e->ta = ta, e->tb = tb, e->acc = acc;
    if (dnnl_memory_desc_init_by_strides(&a_md, 2, a_dims, dnnl_f32, a_str) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&b_md, 2, b_dims, dnnl_f32, b_str) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&c_md, 2, c_dims, dnnl_f32, c_str) != dnnl_success ||
        dnnl_matmul_desc_init(&md, &a_md, &b_md, NULL, &c_md) != dnnl_success ||
        dnnl_primitive_attr_create(&attr) != dnnl_success) {
        st = GC_ERR_INTERNAL;
        goto done;
    }
    if (acc) {
        if (dnnl_post_ops_create(&po) != dnnl_success ||
            dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success ||
            dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success) {
            st = GC_ERR_INTERNAL;
            goto done;
        }
    }
    if (dnnl_primitive_desc_create(&pd, &md, attr, c->engine, NULL) != dnnl_success ||
        dnnl_primitive_create(&e->prim, pd) != dnnl_success ||
        dnnl_memory_create(&e->a, &a_md, c->engine, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_memory_create(&e->b, &b_md, c->engine, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_memory_create(&e->c, &c_md, c->engine, DNNL_MEMORY_NONE) != dnnl_success) {
        st = GC_ERR_INTERNAL;
    }
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st != GC_OK) {
        entry_release(e);
        return gc_set_error(st, "matmul: oneDNN could not build a %dx%dx%d product", M, N, K);
    }
    return GC_OK;
}

static gc_status cache_lookup(mm_cache *c, mm_entry **out, int M, int N, int K, int ta, int tb,
                              int acc) {
    int victim = 0;
    for (int i = 0; i < c->used; i++) {
        mm_entry *e = &c->entries[i];
        if (e->M == M && e->N == N && e->K == K && e->ta == ta && e->tb == tb && e->acc == acc) {
            e->last_use = ++c->clock;
            *out = e;
            return GC_OK;
        }
        if (e->last_use < c->entries[victim].last_use) victim = i;
    }
    int slot;
    if (c->used < CACHE_SIZE) slot = c->used++;
    else {
        slot = victim;
        entry_release(&c->entries[slot]);
    }
    gc_status st = entry_build(c, &c->entries[slot], M, N, K, ta, tb, acc);
    if (st != GC_OK) {
        /* keep the table dense: move the last entry into the hole */
        if (slot == c->used - 1) c->used--;
        else {
            c->entries[slot] = c->entries[--c->used];
            memset(&c->entries[c->used], 0, sizeof(mm_entry));
        }
        return st;
    }
    c->entries[slot].last_use = ++c->clock;
    *out = &c->entries[slot];
    return GC_OK;
}

gc_status gc_matmul(float *C, const float *A, const float *B, int M, int N, int K, int trans_a,
                    int trans_b, int accumulate) {
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
    mm_cache *c = NULL;
    mm_entry *e = NULL;
    gc_status st = cache_get(&c);
    if (st != GC_OK) return st;
    st = cache_lookup(c, &e, M, N, K, trans_a, trans_b, accumulate);
    if (st != GC_OK) return st;
    dnnl_memory_set_data_handle(e->a, (void *)A);
    dnnl_memory_set_data_handle(e->b, (void *)B);
    dnnl_memory_set_data_handle(e->c, C);
    dnnl_exec_arg_t args[3] = {
        {DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
    if (dnnl_primitive_execute(e->prim, c->stream, 3, args) != dnnl_success ||
        dnnl_stream_wait(c->stream) != dnnl_success)
        return gc_set_error(GC_ERR_INTERNAL, "matmul: oneDNN execution failed (%dx%dx%d)", M, N, K);
    return GC_OK;
}
