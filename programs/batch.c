/* batch.c: training batches that point into the tokenized data instead of holding a copy of
 * it. The engine hands the encoder one chunk at a time; an encoder wrapped around the model's
 * gathers only that chunk's token ids into a chunk-sized buffer, so memory for token ids stays
 * the same whatever the batch size. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* Side row r -> the tokenized text it stands for. */
static void row_text(const cli_batch_side *s, int r, const int32_t **ids, int64_t *len) {
    const cli_tokens *t;
    size_t at;
    if (r < s->mb) {
        t = s->texts;
        at = (size_t)s->idx[r];
    } else {
        const int j = r - s->mb;
        t = s->negatives;
        at = (size_t)s->idx[j / s->K] * (size_t)s->K + (size_t)(j % s->K);
    }
    *ids = t->ids + t->off[at];
    *len = t->off[at + 1] - t->off[at];
}

/* A gc_token_batch over the whole side whose offsets are filled in for [first, first+count)
 * only, pointing into the gathered ids; that range is all an encoder call reads. */
static gc_status gather(cli_gather *g, const gc_encode_args *a, gc_token_batch *tb,
                        gc_encode_args *inner) {
    const cli_batch_side *s = a->inputs;
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
    cli_gather *g = ctx;
    return g->inner.ops->dim(g->inner.ctx);
}

static size_t g_num_params(void *ctx) {
    cli_gather *g = ctx;
    return g->inner.ops->num_params(g->inner.ctx);
}

static float *g_params(void *ctx) {
    cli_gather *g = ctx;
    return g->inner.ops->params(g->inner.ctx);
}

static float *g_grads(void *ctx) {
    cli_gather *g = ctx;
    return g->inner.ops->grads(g->inner.ctx);
}

static gc_status g_encode(void *ctx, const gc_encode_args *a, float *reps) {
    cli_gather *g = ctx;
    gc_token_batch tb;
    gc_encode_args in;
    gc_status st = gather(g, a, &tb, &in);
    return st != GC_OK ? st : g->inner.ops->encode(g->inner.ctx, &in, reps);
}

static gc_status g_forward(void *ctx, const gc_encode_args *a, float *reps) {
    cli_gather *g = ctx;
    gc_token_batch tb;
    gc_encode_args in;
    gc_status st = gather(g, a, &tb, &in);
    return st != GC_OK ? st : g->inner.ops->forward(g->inner.ctx, &in, reps);
}

static gc_status g_backward(void *ctx, const gc_encode_args *a, const float *dreps) {
    cli_gather *g = ctx;
    gc_token_batch tb;
    gc_encode_args in;
    gc_status st = gather(g, a, &tb, &in);
    return st != GC_OK ? st : g->inner.ops->backward(g->inner.ctx, &in, dreps);
}

static void g_free(void *ctx) {
    (void)ctx; /* the wrapper and the model belong to the caller */
}

static const gc_encoder_ops gather_ops = {g_dim,    g_num_params, g_params,   g_grads,
                                          g_encode, g_forward,    g_backward, g_free};

gc_status cli_gather_init(cli_gather *g, gc_encoder inner, int max_rows, int max_count,
                          int max_len) {
    memset(g, 0, sizeof *g);
    if (max_rows < 1 || max_count < 1 || max_len < 1)
        return gc_set_error(GC_ERR_INVALID_ARG, "batch: empty sizes");
    g->inner = inner;
    g->max_rows = max_rows;
    g->max_count = max_count;
    g->max_len = max_len;
    /* zeroed offsets: the rows a call does not fill still read as empty */
    g->off = calloc((size_t)max_rows + 1, sizeof *g->off);
    g->ids = malloc((size_t)max_count * (size_t)max_len * sizeof *g->ids);
    if (!g->off || !g->ids) {
        cli_gather_free(g);
        return gc_set_error(GC_ERR_NOMEM, "batch: out of memory for %d x %d token ids", max_count,
                            max_len);
    }
    return GC_OK;
}

gc_encoder cli_gather_encoder(cli_gather *g) {
    return (gc_encoder){&gather_ops, g};
}

void cli_gather_free(cli_gather *g) {
    if (!g) return;
    free(g->ids);
    free(g->off);
    memset(g, 0, sizeof *g);
}
