/* encode.c: embeddings of many token-id sequences through an encoder (batched, grouped by
 * length), row normalization, and the retrieval evaluation of query/positive pairs built on
 * them. */
#include "gc_eval.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct len_index {
    int64_t len;
    size_t i;
} len_index;

static int by_len_desc(const void *a, const void *b) {
    const len_index *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? 1 : -1;
    return x->i < y->i ? -1 : (x->i > y->i);
}

gc_status gc_encode_sequences(gc_encoder *enc, const gc_token_batch *tb, int batch, float *out) {
    if (!enc || !enc->ops || !tb)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_encode_sequences: NULL encoder or inputs");
    if (tb->n < 0) return gc_set_error(GC_ERR_INVALID_ARG, "gc_encode_sequences: n = %d", tb->n);
    if (tb->n == 0) return GC_OK;
    if (batch < 1)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_encode_sequences: batch %d < 1", batch);
    if (!tb->ids || !tb->offsets || !out)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_encode_sequences: NULL ids, offsets or out");
    const size_t n = (size_t)tb->n;
    const int dim = enc->ops->dim(enc->ctx);
    int64_t longest = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t len = tb->offsets[i + 1] - tb->offsets[i];
        if (len < 0)
            return gc_set_error(GC_ERR_INVALID_ARG, "gc_encode_sequences: offsets decrease at %zu",
                                i);
        if (len > longest) longest = len;
    }
    if (longest > INT_MAX)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_encode_sequences: a sequence of %lld ids",
                            (long long)longest);
    /* similar lengths together, so a batch pads (or loops) over little beyond its texts */
    len_index *order = malloc(n * sizeof *order);
    int32_t *ids = malloc((size_t)batch * (size_t)(longest ? longest : 1) * sizeof(int32_t));
    int64_t *off = malloc(((size_t)batch + 1) * sizeof(int64_t));
    float *reps = malloc((size_t)batch * (size_t)dim * sizeof(float));
    gc_status st = GC_OK;
    if (!order || !ids || !off || !reps) {
        st = gc_set_error(GC_ERR_NOMEM, "out of memory encoding %zu texts", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) order[i] = (len_index){tb->offsets[i + 1] - tb->offsets[i], i};
    qsort(order, n, sizeof *order, by_len_desc);
    for (size_t b0 = 0; b0 < n; b0 += (size_t)batch) {
        int nb = n - b0 < (size_t)batch ? (int)(n - b0) : batch;
        off[0] = 0;
        for (int j = 0; j < nb; j++) {
            size_t i = order[b0 + (size_t)j].i;
            int64_t len = tb->offsets[i + 1] - tb->offsets[i];
            memcpy(ids + off[j], tb->ids + tb->offsets[i], (size_t)len * sizeof(int32_t));
            off[j + 1] = off[j] + len;
        }
        gc_token_batch chunk = {nb, ids, off};
        gc_encode_args a = {.inputs = &chunk, .side = 0, .first = 0, .count = nb, .train = 0};
        st = enc->ops->encode(enc->ctx, &a, reps);
        if (st != GC_OK) goto done;
        for (int j = 0; j < nb; j++)
            memcpy(out + order[b0 + (size_t)j].i * (size_t)dim, reps + (size_t)j * dim,
                   (size_t)dim * sizeof(float));
    }
done:
    free(order);
    free(ids);
    free(off);
    free(reps);
    return st;
}

void gc_normalize_rows(float *x, size_t rows, int dim) {
    for (size_t r = 0; r < rows; r++) {
        float *v = x + r * (size_t)dim;
        double s = 0;
        for (int c = 0; c < dim; c++) s += (double)v[c] * v[c];
        if (s > 0) {
            float inv = (float)(1.0 / sqrt(s));
            for (int c = 0; c < dim; c++) v[c] *= inv;
        }
    }
}

void gc_truncate_rows(float *x, size_t rows, int dim, int keep) {
    if (keep < 1 || keep > dim) return;
    for (size_t r = 0; r < rows; r++) /* forward: row r's new start never passes its old one */
        memmove(x + r * (size_t)keep, x + r * (size_t)dim, (size_t)keep * sizeof(float));
    gc_normalize_rows(x, rows, keep);
}

gc_status gc_eval_pairs(gc_encoder *enc, const gc_token_batch *queries,
                        const gc_token_batch *positives, int batch, const int *ks, int nk,
                        gc_retrieval_metrics *out) {
    return gc_eval_pairs_dim(enc, queries, positives, batch, 0, ks, nk, out);
}

gc_status gc_eval_pairs_dim(gc_encoder *enc, const gc_token_batch *queries,
                            const gc_token_batch *positives, int batch, int keep, const int *ks,
                            int nk, gc_retrieval_metrics *out) {
    if (!enc || !enc->ops || !queries || !positives || !out)
        return gc_set_error(GC_ERR_INVALID_ARG, "gc_eval_pairs: NULL argument");
    if (queries->n != positives->n || queries->n < 0)
        return gc_set_error(GC_ERR_INVALID_ARG, "cannot evaluate %d queries against %d passages",
                            queries->n, positives->n);
    const size_t n = (size_t)queries->n;
    const int dim = enc->ops->dim(enc->ctx);
    if (keep < 0 || keep > dim)
        return gc_set_error(GC_ERR_INVALID_ARG,
                            "cannot truncate %d-dimensional embeddings to %d dimensions", dim,
                            keep);
    float *qe = malloc((n ? n : 1) * (size_t)dim * sizeof(float));
    float *pe = malloc((n ? n : 1) * (size_t)dim * sizeof(float));
    gc_status st;
    if (!qe || !pe) {
        st = gc_set_error(GC_ERR_NOMEM, "out of memory for %zu embeddings", 2 * n);
        goto done;
    }
    st = gc_encode_sequences(enc, queries, batch, qe);
    if (st == GC_OK) st = gc_encode_sequences(enc, positives, batch, pe);
    if (st != GC_OK) goto done;
    if (keep > 0 && keep < dim) {
        gc_truncate_rows(qe, n, dim, keep);
        gc_truncate_rows(pe, n, dim, keep);
    } else {
        gc_normalize_rows(qe, n, dim);
        gc_normalize_rows(pe, n, dim);
    }
    const int d = keep > 0 ? keep : dim;
    st = gc_eval_retrieval(qe, pe, (int)n, (int)n, d, ks, nk, NULL, out, NULL);
done:
    free(qe);
    free(pe);
    return st;
}
