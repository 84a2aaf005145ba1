/* batch.c: training batches that point into the tokenized data instead of holding a copy of
 * it. The engine hands the encoder one chunk at a time; an encoder wrapped around the model's
 * gathers only that chunk's token ids into a chunk-sized buffer, so memory for token ids stays
 * the same whatever the batch size. The wrapper forwards reserve (sizing its own buffer from the
 * same request) and the parameter store to the model. */
#include "train/batch.h"

#include <stdlib.h>
#include <string.h>

/* Side row r -> the tokenized text it stands for. */
static void row_text(const batch_side *s, int r, const int32_t **ids, int64_t *len) {
    const gc_token_batch *t;
    size_t at;
    if (r < s->mb) {
        t = s->texts;
        at = (size_t)s->idx[r];
    } else {
        const int j = r - s->mb;
        t = s->negatives;
        at = (size_t)s->idx[j / s->K] * (size_t)s->K + (size_t)(j % s->K);
    }
    *ids = t->ids + t->offsets[at];
    *len = t->offsets[at + 1] - t->offsets[at];
}

/* A gc_token_batch over the whole side whose offsets are filled in for [first, first+count)
 * only, pointing into the gathered ids; that range is all an encoder call reads. */
static gc_status gather(batch_gather *g, const gc_encode_args *a, gc_token_batch *tb,
                        gc_encode_args *inner) {
    const batch_side *s = a->inputs;
    if (!s) return gc_set_error(GC_ERR_INVALID_ARG, "batch: NULL inputs");
    const int rows = s->mb * (s->negatives ? 1 + s->K : 1);
    if (a->first < 0 || a->count < 1 || a->first > rows - a->count || rows > g->max_rows ||
        a->count > g->max_count)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "batch: rows [%d, %d) of %d (room for %d rows, %d per call)", a->first,
                            a->first + a->count, rows, g->max_rows, g->max_count);
    int64_t at = 0;
    for (int i = 0; i < a->count; i++) {
        const int32_t *ids;
        int64_t len;
        row_text(s, a->first + i, &ids, &len);
        if (len > g->max_len)
            return gc_set_error(GC_ERR_INVALID_ARG, "batch: row %d has %lld tokens, room for %d",
                                a->first + i, (long long)len, g->max_len);
        g->off[a->first + i] = at;
        memcpy(g->ids + at, ids, (size_t)len * sizeof(int32_t));
        at += len;
    }
    g->off[a->first + a->count] = at;
    *tb = (gc_token_batch){rows, g->ids, g->off};
    *inner = *a;
    inner->inputs = tb;
    return GC_OK;
}

static int g_dim(void *ctx) {
    batch_gather *g = ctx;
    return g->inner.ops->dim(g->inner.ctx);
}

static gc_status g_reserve(void *ctx, const gc_encoder_reserve *r) {
    batch_gather *g = ctx;
    if (!r || r->max_count < 1 || r->max_len < 1)
        return gc_set_error(GC_ERR_INVALID_ARG, "batch: empty reservation");
    free(g->ids);
    g->max_count = r->max_count;
    g->max_len = r->max_len;
    g->ids = malloc((size_t)r->max_count * (size_t)r->max_len * sizeof *g->ids);
    if (!g->ids)
        return gc_set_error(GC_ERR_NOMEM, "batch: out of memory for %d x %d token ids",
                            r->max_count, r->max_len);
    return g->inner.ops->reserve(g->inner.ctx, r);
}

static gc_param_store g_store(void *ctx) {
    batch_gather *g = ctx;
    return g->inner.ops->store(g->inner.ctx);
}

static gc_status g_encode(void *ctx, const gc_encode_args *a, float *reps) {
    batch_gather *g = ctx;
    gc_token_batch tb;
    gc_encode_args in;
    gc_status st = gather(g, a, &tb, &in);
    return st != GC_OK ? st : g->inner.ops->encode(g->inner.ctx, &in, reps);
}

static gc_status g_forward(void *ctx, const gc_encode_args *a, float *reps) {
    batch_gather *g = ctx;
    gc_token_batch tb;
    gc_encode_args in;
    gc_status st = gather(g, a, &tb, &in);
    return st != GC_OK ? st : g->inner.ops->forward(g->inner.ctx, &in, reps);
}

static gc_status g_backward(void *ctx, const gc_encode_args *a, const float *dreps) {
    batch_gather *g = ctx;
    gc_token_batch tb;
    gc_encode_args in;
    gc_status st = gather(g, a, &tb, &in);
    return st != GC_OK ? st : g->inner.ops->backward(g->inner.ctx, &in, dreps);
}

/* The inner encoder's bytes and this wrapper's token ids of one chunk. */
static size_t g_reserve_bytes(void *ctx, const gc_encoder_reserve *r) {
    batch_gather *g = ctx;
    if (!r || !g->inner.ops->reserve_bytes) return 0;
    size_t inner = g->inner.ops->reserve_bytes(g->inner.ctx, r);
    return inner ? inner + (size_t)r->max_count * (size_t)r->max_len * sizeof *g->ids : 0;
}

static void g_free(void *ctx) {
    (void)ctx; /* the wrapper and the model belong to the caller */
}

static const gc_encoder_ops gather_ops = {g_dim,      g_reserve, g_encode, g_forward,
                                          g_backward, g_store,   g_free,   g_reserve_bytes};

gc_status batch_gather_init(batch_gather *g, gc_encoder inner, int max_rows) {
    memset(g, 0, sizeof *g);
    if (max_rows < 1) return gc_set_error(GC_ERR_INVALID_ARG, "batch: empty sizes");
    g->inner = inner;
    g->max_rows = max_rows;
    /* zeroed offsets: the rows a call does not fill still read as empty */
    g->off = calloc((size_t)max_rows + 1, sizeof *g->off);
    if (!g->off) return gc_set_error(GC_ERR_NOMEM, "batch: out of memory for %d offsets", max_rows);
    return GC_OK;
}

gc_encoder batch_gather_encoder(batch_gather *g) {
    return (gc_encoder){&gather_ops, g};
}

void batch_gather_free(batch_gather *g) {
    if (!g) return;
    free(g->ids);
    free(g->off);
    memset(g, 0, sizeof *g);
}
